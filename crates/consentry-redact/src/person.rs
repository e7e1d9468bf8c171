//! People's names. Three sources of evidence are combined:
//!
//! 1. the member directory: every member's full name, given name and surname
//!    in one Aho–Corasick automaton (ASCII case-insensitive, anchored
//!    searches only at capitalised word starts, so its cost grows with the
//!    number of capitalised words, not with the text);
//! 2. a gazetteer of given names and surnames from the US Census lists
//!    shipped in `data/`, in the same automaton, with the names that are also
//!    ordinary English words (`Will`, `Rose`, `Park`) marked as weak;
//!    International given names (`data/intl_given_names.txt`, ASCII-folded so
//!    `Csanád` matches `csanad`) are looked up in a hash set for words the
//!    automaton does not know;
//! 3. context: greetings (`Hi`, `Dear`), titles (`Dr.`, `Ms`), relations
//!    (`my colleague`), verbs that follow names (`says`, `'s`), signature
//!    lines after a sign-off, dialogue speakers (`Anna: …`), vocatives
//!    (`Anna, can I …`), possessives of people's things (`Anna's kid`), lists
//!    joined to a name (`Kane and Perez`), and capitalised sequences: 2–3
//!    capitalised words none of which is an ordinary English word
//!    (`data/english_words.txt`), a country, a company form or a place prefix
//!    score as a name with a lower confidence.
//!
//! Each run of adjacent capitalised words becomes one candidate span whose
//! score sums that evidence; the detector keeps those above its threshold.

use crate::RedactError;
use crate::scan::{boundary_after, next_char, sentence_start, word_end};
use crate::{Kind, Span};
use aho_corasick::{AhoCorasick, AhoCorasickKind, Anchored, Input, MatchKind, StartKind};
use std::collections::HashMap;

const F_MEMBER_FULL: u8 = 1;
const F_MEMBER_PART: u8 = 2;
const F_GIVEN: u8 = 4;
const F_SURNAME: u8 = 8;

const GIVEN_NAMES: &str = include_str!("../data/given_names.txt");
const SURNAMES: &str = include_str!("../data/surnames.txt");
const COMMON_WORDS: &str = include_str!("../data/common_words.txt");
const INTL_GIVEN: &str = include_str!("../data/intl_given_names.txt");
const ENGLISH_WORDS: &str = include_str!("../data/english_words.txt");

/// Words that open a greeting: a capitalised word after them is very likely a name.
const GREETINGS: &[&str] = &[
    "Hi",
    "Hello",
    "Hey",
    "Dear",
    "Hallo",
    "Bonjour",
    "Hola",
    "Ciao",
    "Hej",
    "Olá",
    "Ola",
    "Greetings",
    "Morning",
    "Afternoon",
    "Evening",
    "Thanks",
    "Thank",
    "Cheers",
    "Congrats",
    "Congratulations",
    "Welcome",
    "Sorry",
    "Howdy",
    "Salut",
    "Servus",
    "Moin",
    "Buongiorno",
    "Привет",
    "Yo",
    "Bye",
    "Goodbye",
    "Night",
    "Ahoj",
    "Hei",
    "Merci",
    "Danke",
    "Gracias",
    "Grazie",
];

/// Titles and honorifics; a title makes even an unknown capitalised word a name.
const TITLES: &[&str] = &[
    "Mr",
    "Mrs",
    "Ms",
    "Miss",
    "Mx",
    "Dr",
    "Prof",
    "Professor",
    "Sir",
    "Madam",
    "Dame",
    "Lord",
    "Lady",
    "Rev",
    "Hon",
    "Herr",
    "Frau",
    "Monsieur",
    "Madame",
    "Mme",
    "Mlle",
    "Señor",
    "Señora",
    "Sr",
    "Sra",
    "Srta",
    "Signor",
    "Signora",
    "Sig",
    "Dott",
    "Ing",
    "Mag",
    "Dra",
];

/// Capitalised words that are never names here (function words, calendar words, sign-off words, company forms).
const STOP: &[&str] = &[
    "I",
    "Apt",
    "Via",
    "Viale",
    "Rua",
    "Rúa",
    "Calle",
    "Carrer",
    "Avenida",
    "Avda",
    "Rue",
    "Piazza",
    "Praça",
    "Largo",
    "Travessa",
    "Paseo",
    "Camino",
    "Strada",
    "Corso",
    "Suite",
    "Unit",
    "Flat",
    "Box",
    "Apartment",
    "I'll",
    "I've",
    "I'm",
    "I'd",
    "Viele",
    "Grüße",
    "Grüßen",
    "Liebe",
    "Saludos",
    "Cordialement",
    "Groetjes",
    "Hälsningar",
    "Pozdrawiam",
    "Atenciosamente",
    "Abraços",
    "Cordiali",
    "Saluti",
    "Bisous",
    "Cumprimentos",
    "Pharma",
    "Dynamics",
    "Fintech",
    "Care",
    "Robotics",
    "Energy",
    "Logistics",
    "Networks",
    "Digital",
    "Tech",
    "Bio",
    "Biotech",
    "Foods",
    "Motors",
    "Security",
    "Cloud",
    "Retail",
    "Insurance",
    "Airlines",
    "Therapeutics",
    "Industries",
    "Electronics",
    "The",
    "A",
    "An",
    "This",
    "That",
    "These",
    "Those",
    "It",
    "We",
    "You",
    "They",
    "He",
    "She",
    "My",
    "Our",
    "Your",
    "His",
    "Her",
    "Their",
    "Its",
    "If",
    "In",
    "On",
    "At",
    "For",
    "And",
    "But",
    "Or",
    "So",
    "As",
    "To",
    "Of",
    "By",
    "With",
    "From",
    "Just",
    "Also",
    "Please",
    "Yes",
    "No",
    "Not",
    "Let",
    "What",
    "When",
    "Where",
    "Who",
    "Why",
    "How",
    "Is",
    "Are",
    "Was",
    "Can",
    "Could",
    "Would",
    "Will",
    "Shall",
    "Should",
    "May",
    "Might",
    "Do",
    "Does",
    "Did",
    "Have",
    "Has",
    "Had",
    "Be",
    "All",
    "Any",
    "Some",
    "Best",
    "Kind",
    "Warm",
    "Regards",
    "Many",
    "Sincerely",
    "Yours",
    "Love",
    "Re",
    "Fwd",
    "Subject",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Sat",
    "Sun",
    "January",
    "February",
    "March",
    "April",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Sept",
    "Oct",
    "Nov",
    "Dec",
    "Inc",
    "Ltd",
    "LLC",
    "GmbH",
    "Corp",
    "Co",
    "Street",
    "Road",
    "Avenue",
    "Lane",
    "Email",
    "Phone",
    "Mobile",
    "Tel",
    "Web",
    "Portfolio",
    "Thanks",
    "Hi",
    "Hello",
    "Dear",
    "Hey",
    "Happy",
    "Great",
    "Good",
    "Nice",
    "Here",
    "There",
    "Then",
    "Now",
    "Today",
    "Tomorrow",
    "Yesterday",
    "Christmas",
    "Easter",
    "Sure",
    "Okay",
    "OK",
    "Well",
    "Oh",
    "Ah",
    "Wow",
    "Congrats",
    "Again",
    "Cheers",
    "One",
    "Two",
    "Three",
    "First",
    "Second",
    "Next",
    "Last",
    "New",
    "Old",
    "Big",
    "Small",
    "Senior",
    "Junior",
    "Lead",
    "Head",
    "Chief",
    "Manager",
    "Director",
    "Engineer",
    "Team",
    "Hiring",
    "Sales",
    "Marketing",
    "Data",
    "Product",
    "Design",
    "Company",
    "University",
    "College",
    "School",
    "Bank",
    "Group",
    "Labs",
    "Partners",
    "Capital",
    "Health",
    "Software",
    "Analytics",
    "Foundation",
    "Institute",
    "Ventures",
    "Consulting",
    "Studio",
    "Studios",
    "Media",
    "Systems",
    "Solutions",
    "Technologies",
    "Holdings",
    "Services",
    "Global",
    "International",
    "National",
    "North",
    "South",
    "East",
    "West",
    "Central",
    "Park",
    "Grace",
    "Hope",
    "Faith",
    "Joy",
    "Will",
    "Mark",
    "Bill",
    "Art",
    "Sunny",
    "Summer",
    "Winter",
    "Autumn",
    "Spring",
    "Dawn",
    "Rose",
    "Ruby",
    "Crystal",
    "Amber",
    "Pearl",
    "Chase",
    "Hunter",
    "Grant",
    "Frank",
    "Earnest",
    "Rich",
    "Young",
    "Long",
    "Brown",
    "White",
    "Black",
    "Green",
    "Gray",
    "Grey",
    "English",
    "French",
    "German",
    "Spanish",
    "Italian",
    "Dutch",
    "Chinese",
    "Japanese",
    "Korean",
    "Russian",
    "Arabic",
    "Hindi",
    "Portuguese",
    "Polish",
    "Greek",
    "Turkish",
    "Swedish",
    "Danish",
    "Norwegian",
    "Finnish",
    "American",
    "British",
    "European",
    "African",
    "Asian",
    "Princess",
    "Prince",
    "King",
    "Queen",
    "Duke",
    "Royal",
    "President",
    "Minister",
    "Senator",
    "Governor",
    "Mayor",
    "Captain",
    "General",
    "Name",
    "Address",
    "Fax",
    "Office",
];

/// Country names (and the words of multi-word ones): never a person here.
const COUNTRIES: &[&str] = &[
    "Afghanistan",
    "Albania",
    "Algeria",
    "Andorra",
    "Angola",
    "Argentina",
    "Armenia",
    "Australia",
    "Austria",
    "Azerbaijan",
    "Bahamas",
    "Bahrain",
    "Bangladesh",
    "Barbados",
    "Belarus",
    "Belgium",
    "Belize",
    "Benin",
    "Bhutan",
    "Bolivia",
    "Bosnia",
    "Botswana",
    "Brazil",
    "Brunei",
    "Bulgaria",
    "Burkina",
    "Burundi",
    "Cambodia",
    "Cameroon",
    "Canada",
    "Chad",
    "Chile",
    "China",
    "Colombia",
    "Comoros",
    "Congo",
    "Croatia",
    "Cuba",
    "Cyprus",
    "Czech",
    "Czechia",
    "Denmark",
    "Djibouti",
    "Dominica",
    "Ecuador",
    "Egypt",
    "Emirates",
    "England",
    "Eritrea",
    "Estonia",
    "Eswatini",
    "Ethiopia",
    "Faso",
    "Fiji",
    "Finland",
    "France",
    "Gabon",
    "Gambia",
    "Georgia",
    "Germany",
    "Ghana",
    "Greece",
    "Greenland",
    "Greenlander",
    "Grenada",
    "Guatemala",
    "Guinea",
    "Guyana",
    "Haiti",
    "Herzegovina",
    "Honduras",
    "Hungary",
    "Iceland",
    "India",
    "Indonesia",
    "Iran",
    "Iraq",
    "Ireland",
    "Islands",
    "Israel",
    "Italy",
    "Jamaica",
    "Japan",
    "Jordan",
    "Kazakhstan",
    "Kenya",
    "Kingdom",
    "Kiribati",
    "Kosovo",
    "Kuwait",
    "Kyrgyzstan",
    "Lanka",
    "Laos",
    "Latvia",
    "Lebanon",
    "Lesotho",
    "Liberia",
    "Libya",
    "Liechtenstein",
    "Lithuania",
    "Luxembourg",
    "Macedonia",
    "Madagascar",
    "Malawi",
    "Malaysia",
    "Maldives",
    "Mali",
    "Malta",
    "Marino",
    "Mauritania",
    "Mauritius",
    "Mexico",
    "Micronesia",
    "Moldova",
    "Monaco",
    "Mongolia",
    "Montenegro",
    "Morocco",
    "Mozambique",
    "Myanmar",
    "Namibia",
    "Nauru",
    "Nepal",
    "Netherlands",
    "Nicaragua",
    "Niger",
    "Nigeria",
    "Norway",
    "Oman",
    "Pakistan",
    "Palau",
    "Palestine",
    "Panama",
    "Paraguay",
    "Peru",
    "Philippines",
    "Poland",
    "Portugal",
    "Qatar",
    "Republic",
    "Romania",
    "Russia",
    "Rwanda",
    "Salvador",
    "Samoa",
    "Scotland",
    "Senegal",
    "Serbia",
    "Seychelles",
    "Singapore",
    "Slovakia",
    "Slovenia",
    "Somalia",
    "Spain",
    "Sri",
    "States",
    "Sudan",
    "Suriname",
    "Sweden",
    "Switzerland",
    "Syria",
    "Taiwan",
    "Tajikistan",
    "Tanzania",
    "Thailand",
    "Tobago",
    "Togo",
    "Tonga",
    "Trinidad",
    "Tunisia",
    "Turkey",
    "Turkmenistan",
    "Tuvalu",
    "Türkiye",
    "Uganda",
    "Ukraine",
    "Uruguay",
    "Uzbekistan",
    "Vanuatu",
    "Vatican",
    "Venezuela",
    "Vietnam",
    "Wales",
    "Yemen",
    "Zambia",
    "Zealand",
    "Zimbabwe",
    "Africa",
    "America",
    "Asia",
    "Europe",
    "Oceania",
    "Antarctica",
];

/// Company or place forms after a capitalised run: the run is not a person.
const ORG_AFTER: &[&str] = &[
    " Inc",
    " Ltd",
    " LLC",
    " GmbH",
    " Corp",
    " & ",
    " Labs",
    " Group",
    " Partners",
    " Capital",
    " Health",
    " Software",
    " Analytics",
    " University",
    " College",
    " Bank",
    " Foundation",
    " Institute",
    " Ventures",
    " Consulting",
    " AG",
    " SA",
    " plc",
    " PLC",
    " Media",
    " Studios",
    " Systems",
    " Solutions",
    " Technologies",
    " Pharma",
    " Dynamics",
    " Fintech",
    " Care",
    " Robotics",
    " Energy",
    " Logistics",
    " Networks",
    " Digital",
    " Tech",
    " Biotech",
    " Industries",
    " Street",
    " Road",
    " Avenue",
    " St",
    " Rd",
    " Ave",
    " Drive",
    " Lane",
    " Place",
    " Court",
    " Square",
    " Terrace",
    " Boulevard",
    " Blvd",
];

/// First words of place names (`São Paulo`, `Santa Cruz`): such a run is not a person.
const PLACE_PREFIXES: &[&str] = &[
    "São", "Sao", "Santa", "Santo", "San", "Los", "Las", "Rio", "Saint", "Sainte", "St", "Port", "Fort", "Mount",
    "Lake", "Bad", "Nueva", "Nuevo", "Porto", "Puerto", "Cape", "Costa", "Villa", "Ciudad", "Kuala", "Hong", "Ho",
    "Abu", "Tel",
];

/// Verbs right after a name that say a person was meant (used for words that are not English words).
const NAME_VERBS: &[&str] = &[
    "began",
    "listed",
    "spent",
    "had",
    "has",
    "is",
    "was",
    "shouted",
    "said",
    "says",
    "wrote",
    "lives",
    "lived",
    "explained",
    "told",
    "asked",
    "replied",
    "smiled",
    "laughed",
    "joined",
    "works",
    "worked",
    "went",
    "thinks",
    "thought",
    "called",
    "wants",
    "loves",
    "likes",
    "will",
    "would",
    "can",
    "could",
];

/// What people have: `Yuzuna's kid`, `Hilarion's address`.
const KIN: &[&str] = &[
    "kid", "kids", "wife", "husband", "partner", "son", "daughter", "mother", "father", "brother", "sister", "friend",
    "boss", "family", "address", "phone", "email", "account", "killers", "car", "house", "home", "birthday", "number",
    "children", "parents", "mom", "dad", "name",
];

/// What follows a lone first word when it addresses someone (`Nanase, can I …`).
const VOCATIVE_AFTER: &[&str] = &[
    ", can ", ", could ", ", would ", ", will ", ", please", ", thanks", ", thank ", ", I ", ", you ", ", are ",
    ", do ",
];

/// Phrases just before a name that say a person follows.
const RELATION_CUES: &[&str] = &[
    "colleague",
    "manager",
    "friend",
    "boss",
    "mentor",
    "recruiter",
    "introduce you to",
    "thanks to",
    "shout-out to",
    "shoutout to",
    "chatting with",
    "chatted with",
    "spoke with",
    "spoke to",
    "talked to",
    "talking to",
    "met with",
    "copied in",
    "cc:",
    "said",
    "asked",
    "told",
    "name:",
    "calls me",
    "call me",
    "sung by",
    "written by",
    "signed,",
    "contact",
    "ask for",
    "speak to",
    "speak with",
    "name is",
    "name",
    "ms",
    "mr",
    "mrs",
    "dr",
    "says",
    "starring",
    "including",
    "directed by",
    "shouted at",
    "yelled at",
    "smiled at",
    "looked at",
    "laughed at",
    "waved at",
    "named him",
    "named her",
    "produced by",
    "named",
    "called",
    "i'm",
    "i am",
    "this is",
    "wife",
    "husband",
    "partner",
    "son",
    "daughter",
    "brother",
    "sister",
    "mother",
    "father",
    "client",
    "candidate",
    "cofounder",
    "co-founder",
    "founder",
    "ceo",
    "cto",
    "cfo",
    "teammate",
    "classmate",
    "neighbour",
    "neighbor",
    "guardian",
    "kid",
    "child",
    "mom",
    "dad",
    "without",
    "with",
    "and",
    "by",
    "meet",
    "hire",
    "hired",
    "ask",
    "tell",
    "from",
    "regards,",
    "best,",
    "cheers,",
    "thanks,",
    "sincerely,",
];

/// Words right after a name that say it was one.
/// Verbs right after a name that make even an unknown capitalised word a name.
const STRONG_AFTER: &[&str] = &[
    "said",
    "says",
    "shouted",
    "asked",
    "told",
    "wrote",
    "replied",
    "whispered",
    "smiled",
    "laughed",
    "speaks",
    "called",
];

const AFTER_CUES: &[&str] = &[
    "'s ",
    "’s ",
    "'s.",
    " says",
    " said",
    " mentioned",
    " suggested",
    " thought",
    " speaks",
    " who ",
    " will ",
    " lives",
    " had",
    " did",
    " does",
    " would",
    " can",
    " went",
    " began",
    " and I",
    " has ",
    " is ",
    " was ",
    " wrote",
    " asked",
    " told",
    " recommended",
    " introduced",
    " joined",
    " – ",
    " - ",
    " here",
    ", can ",
    ", could ",
    ", would ",
    ", please",
    ", I ",
    ", thanks",
    ", thank",
];

/// The name automaton and word lists, built once and shared.
pub struct NameIndex {
    ac: Option<AhoCorasick>,
    flags: Vec<u8>,
    common: crate::scan::WordSet,
    stop: crate::scan::WordSet,
    relation_last: crate::scan::WordSet,
    after_words: crate::scan::WordSet,
    org_words: crate::scan::WordSet,
    /// International given names (ASCII-folded, lower-case), looked up only for words the automaton does not know.
    intl: crate::scan::WordSet,
    /// Ordinary lower-case English words: a capitalised run made of them is not a name.
    english: crate::scan::WordSet,
    titles: crate::scan::WordSet,
    greetings: crate::scan::WordSet,
    strong_after: crate::scan::WordSet,
    relation_words: crate::scan::WordSet,
    /// Multi-word relation cues with their last word.
    phrases: Vec<(&'static str, &'static str)>,
    name_verbs: crate::scan::WordSet,
    kin: crate::scan::WordSet,
}

impl NameIndex {
    /// Builds the automaton over member full names (`"Given Surname"`) and, if asked, the shipped gazetteer.
    pub fn build<I, S>(members: I, gazetteer: bool) -> Result<NameIndex, RedactError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut map: HashMap<String, u8> = HashMap::new();
        let mut add = |name: &str, flag: u8| {
            let key = name.trim();
            if key.chars().count() >= 2 {
                *map.entry(key.to_ascii_lowercase()).or_insert(0) |= flag;
            }
        };
        if gazetteer {
            GIVEN_NAMES.lines().for_each(|n| add(n, F_GIVEN));
            SURNAMES.lines().for_each(|n| add(n, F_SURNAME));
        }
        for full in members {
            let full = full.as_ref().trim();
            let parts: Vec<&str> = full.split_whitespace().collect();
            if parts.is_empty() {
                continue;
            }
            if parts.len() >= 2 {
                add(&parts.join(" "), F_MEMBER_FULL);
                add(&parts[1..].join(" "), F_MEMBER_PART);
            }
            for p in &parts {
                if p.chars().next().is_some_and(char::is_uppercase) {
                    add(p, F_MEMBER_PART);
                }
            }
        }
        let stop = crate::scan::word_set(&[STOP, TITLES, GREETINGS, COUNTRIES]);
        let common: crate::scan::WordSet = COMMON_WORDS.lines().map(str::trim).filter(|w| !w.is_empty()).collect();
        let n = map.len();
        let (patterns, flags): (Vec<String>, Vec<u8>) = map.into_iter().unzip();
        let ac = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .start_kind(StartKind::Anchored)
                    .ascii_case_insensitive(true)
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .build(&patterns)
                    .map_err(|e| RedactError::Automaton { names: n, message: e.to_string() })?,
            )
        };
        let relation_last: crate::scan::WordSet =
            RELATION_CUES.iter().filter_map(|c| c.rsplit(' ').next()).chain(["at", "in"]).collect();
        let words_of = |list: &[&'static str]| -> crate::scan::WordSet {
            list.iter().filter(|c| c.starts_with(' ')).map(|c| c.trim()).filter(|c| !c.contains(' ')).collect()
        };
        let after_words = words_of(AFTER_CUES);
        let org_words = words_of(ORG_AFTER);
        let (intl, english) = if gazetteer {
            (INTL_GIVEN.lines().collect(), ENGLISH_WORDS.lines().collect())
        } else {
            (crate::scan::WordSet::default(), crate::scan::WordSet::default())
        };
        Ok(NameIndex {
            ac,
            flags,
            common,
            stop,
            relation_last,
            after_words,
            org_words,
            intl,
            english,
            titles: crate::scan::word_set(&[TITLES]),
            greetings: crate::scan::word_set(&[GREETINGS]),
            strong_after: crate::scan::word_set(&[STRONG_AFTER]),
            relation_words: crate::scan::word_set(&[RELATION_CUES]),
            name_verbs: crate::scan::word_set(&[NAME_VERBS]),
            kin: crate::scan::word_set(&[KIN]),
            phrases: RELATION_CUES
                .iter()
                .filter(|c| c.contains(' '))
                .filter_map(|c| c.rsplit(' ').next().map(|last| (last, *c)))
                .collect(),
        })
    }

    /// How many distinct names (members and gazetteer) the automaton holds.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Heap bytes of the automaton.
    pub fn memory_usage(&self) -> usize {
        self.ac.as_ref().map_or(0, AhoCorasick::memory_usage) + self.flags.len()
    }

    /// The longest known name starting at `i` that ends at a word boundary: (end, flags).
    fn longest_at(&self, text: &str, i: usize, limit: usize) -> Option<(usize, u8)> {
        let ac = self.ac.as_ref()?;
        let mut end = limit.min(text.len());
        for _ in 0..4 {
            let input = Input::new(text).range(i..end).anchored(Anchored::Yes);
            let m = ac.try_find(input).ok().flatten()?;
            if boundary_after(text, m.end()) && text.is_char_boundary(m.end()) {
                let f = self.flags.get(m.pattern().as_usize()).copied().unwrap_or(0);
                return Some((m.end(), f));
            }
            // Retry with the haystack cut before the word the match ended in.
            let cut = crate::scan::word_start(text, crate::scan::floor_boundary(text, m.end()));
            if cut <= i {
                return None;
            }
            end = cut;
            while end > i && text.as_bytes()[end - 1] == b' ' {
                end -= 1;
            }
        }
        None
    }

    /// True for an international given name; `word` is folded to lower-case ASCII (`Csanád` → `csanad`).
    fn is_intl(&self, word: &str) -> bool {
        let mut buf = [0u8; 24];
        fold_ascii(word, &mut buf).is_some_and(|w| self.intl.contains(w))
    }

    /// True for an ordinary English word (case-folded).
    fn is_english(&self, word: &str) -> bool {
        let mut buf = [0u8; 24];
        fold_ascii(word, &mut buf).is_some_and(|w| self.english.contains(w))
    }

    fn is_common(&self, word: &str) -> bool {
        let mut buf = [0u8; 32];
        let Some(dst) = buf.get_mut(..word.len()) else { return false };
        dst.copy_from_slice(word.as_bytes());
        dst.make_ascii_lowercase();
        std::str::from_utf8(dst).is_ok_and(|w| self.common.contains(w))
    }
}

/// Lower-case ASCII form of `word` in `buf`, with Latin diacritics dropped; None when too long or not Latin.
fn fold_ascii<'a>(word: &str, buf: &'a mut [u8; 24]) -> Option<&'a str> {
    let wb = word.as_bytes();
    if wb.is_ascii() {
        // Fast path: plain ASCII letters only.
        let dst = buf.get_mut(..wb.len())?;
        if !wb.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        dst.copy_from_slice(wb);
        dst.make_ascii_lowercase();
        return std::str::from_utf8(dst).ok();
    }
    let mut n = 0;
    for c in word.chars() {
        let a = if c.is_ascii_alphabetic() {
            c.to_ascii_lowercase()
        } else {
            match c {
                'à'..='å' | 'À'..='Å' | 'ā' | 'ă' | 'ą' | 'Ā' | 'Ă' | 'Ą' => 'a',
                'ç' | 'Ç' | 'ć' | 'č' | 'Ć' | 'Č' => 'c',
                'ď' | 'Ď' | 'đ' | 'Đ' | 'ð' | 'Ð' => 'd',
                'è'..='ë' | 'È'..='Ë' | 'ē' | 'ė' | 'ę' | 'ě' | 'Ē' | 'Ė' | 'Ę' | 'Ě' => 'e',
                'ì'..='ï' | 'Ì'..='Ï' | 'ī' | 'į' | 'ı' | 'Ī' | 'Į' | 'İ' => 'i',
                'ñ' | 'Ñ' | 'ń' | 'ň' | 'Ń' | 'Ň' => 'n',
                'ò'..='ö' | 'Ò'..='Ö' | 'ø' | 'Ø' | 'ō' | 'ő' | 'Ō' | 'Ő' => 'o',
                'ù'..='ü' | 'Ù'..='Ü' | 'ū' | 'ů' | 'ű' | 'Ū' | 'Ů' | 'Ű' => 'u',
                'ý' | 'ÿ' | 'Ý' => 'y',
                'ś' | 'š' | 'ş' | 'Ś' | 'Š' | 'Ş' => 's',
                'ź' | 'ż' | 'ž' | 'Ź' | 'Ż' | 'Ž' => 'z',
                'ł' | 'Ł' => 'l',
                'ř' | 'Ř' => 'r',
                'ť' | 'Ť' | 'ţ' | 'Ţ' => 't',
                'ğ' | 'Ğ' => 'g',
                _ => return None,
            }
        };
        *buf.get_mut(n)? = a as u8;
        n += 1;
    }
    std::str::from_utf8(&buf[..n]).ok()
}

#[derive(Clone, Copy)]
struct Elem {
    start: usize,
    end: usize,
    flags: u8,
    words: u8,
}

const PARTICLES: &[&str] = &[
    "van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "le", "la", "dos", "das", "bin", "ibn", "al",
    "el", "ter", "ten", "y",
];

/// Appends candidate person spans (scored, possibly below threshold) to `out`.
#[cfg(test)]
pub fn detect(idx: &NameIndex, text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let caps: Vec<usize> = (0..b.len())
        .filter(|&i| {
            let c = b[i];
            (c.is_ascii_uppercase() || c >= 0xC0)
                && crate::scan::boundary_before(text, i)
                && crate::scan::is_capitalised_at(text, i)
        })
        .collect();
    detect_at(idx, text, &caps, out);
}

/// Appends candidate person spans given the capitalised word starts `caps` (ascending byte offsets where an upper-case
/// letter follows a word boundary), which the detector's single byte scan collects for all word-led detectors.
pub fn detect_at(idx: &NameIndex, text: &str, caps: &[usize], out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut elems: Vec<Elem> = Vec::with_capacity(caps.len());
    let n = b.len();
    let mut i = 0;
    let mut ci = 0;
    loop {
        while caps.get(ci).is_some_and(|&p| p < i) {
            ci += 1;
        }
        let Some(&p) = caps.get(ci) else { break };
        ci += 1;
        i = p;
        if !text.is_char_boundary(i) {
            continue;
        }
        let we = word_end(text, i);
        let word = &text[i..we];
        // `A.` is an initial, not the article.
        let not_name = (idx.stop.contains(word) && !(word.len() == 1 && b.get(we) == Some(&b'.')))
            || (word.len() >= 2 && word.bytes().all(|c| c.is_ascii_uppercase()))
            || word.bytes().any(|c| c.is_ascii_digit());
        // After a title, a name that is also a word is a name (`Mr. Rose`, `Ms Will`).
        let after_title = not_name
            && elems.last().is_some_and(|p| {
                p.words == 0
                    && matches!(text.get(p.end..i), Some(". ") | Some(" "))
                    && idx.titles.contains(&text[p.start..p.end])
            })
            && idx.is_common(word);
        if after_title {
            elems.push(Elem { start: i, end: we, flags: F_SURNAME, words: 1 });
            i = we.max(i + 1);
            continue;
        }
        if not_name {
            // A title may be followed by a particle-led surname (`Dr. van der Berg`).
            if idx.titles.contains(word) {
                let mut j = we;
                if b.get(j) == Some(&b'.') {
                    j += 1;
                }
                if b.get(j) == Some(&b' ') {
                    let pe = word_end(text, j + 1);
                    if PARTICLES.contains(&&text[j + 1..pe]) {
                        let limit = (j + 1 + 64).min(n);
                        if let Some((e, f)) = idx.longest_at(text, j + 1, limit) {
                            elems.push(Elem { start: j + 1, end: e, flags: f, words: 2 });
                            i = e;
                            continue;
                        }
                    }
                }
            }
            elems.push(Elem { start: i, end: we, flags: 0, words: 0 });
            i = we.max(i + 1);
            continue;
        }
        let limit = (i + 96).min(n);
        let (end, flags) = match idx.longest_at(text, i, limit) {
            Some((e, f)) => (e, f),
            None if idx.is_intl(word) => (we, F_GIVEN),
            None => (we, 0),
        };
        let words = if end == we { 1 } else { text[i..end].split_whitespace().count().max(1) as u8 };
        elems.push(Elem { start: i, end, flags, words });
        i = end.max(i + 1);
    }
    // Runs of adjacent name elements.
    let mut accepted: Vec<(usize, usize)> = Vec::new();
    let mut rejected: Vec<(usize, usize)> = Vec::new();
    let mut k = 0;
    while k < elems.len() {
        if elems[k].words == 0 {
            k += 1;
            continue;
        }
        let mut last = k;
        while last + 1 < elems.len() && elems[last + 1].words > 0 && joined(text, &elems[last], &elems[last + 1]) {
            last += 1;
        }
        let span = score_run(idx, text, &elems, k, last);
        let weak = span.is_none_or(|s| s.score < 0.5);
        if let Some(span) = span {
            out.push(span);
            if !weak {
                accepted.push((span.start, span.end));
            }
        }
        let (rs, re) = (elems[k].start, elems[last].end);
        if weak && last - k < 3 && (coordinated_after(b, re) || coordinated_before(b, rs)) {
            let plain = elems[k..=last].iter().all(|e| {
                let w = &text[e.start..e.end];
                if e.flags != 0 { !idx.is_common(w) } else { !idx.is_english(w) }
            });
            if plain {
                rejected.push((rs, re));
            }
        }
        k = last + 1;
    }
    // Lists of names (`Forssell, Kane and Perez`, `Sultygov and Walker`): a word that is not English, joined by a comma
    // or `and` to a name, is one too.
    for _ in 0..3 {
        let mut grew = false;
        for r in rejected.iter_mut().filter(|r| r.0 < r.1) {
            let next = accepted.partition_point(|a| a.0 < r.1);
            // A bare comma counts only inside a list: the neighbour is joined to something else as well.
            let hit_after = accepted
                .get(next)
                .is_some_and(|a| joined_by_list(b, r.1, a.0) && (b[r.1] != b',' || coordinated_after(b, a.1)));
            let hit_before = next.checked_sub(1).and_then(|p| accepted.get(p)).is_some_and(|a| {
                joined_by_list(b, a.1, r.0)
                    && (b[a.1] != b',' || b[a.1..r.0].starts_with(b", and") || coordinated_before(b, a.0))
            });
            if hit_after || hit_before {
                out.push(Span::new(r.0, r.1, Kind::Person, 0.55));
                let at = accepted.partition_point(|a| a.0 < r.0);
                accepted.insert(at, *r);
                *r = (0, 0);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    lists_and_speakers(idx, text, &elems, &accepted, out);
}

/// True when `w` is a given name or surname of the gazetteer or the directory, whatever else it is (`Bill`, `Grace`).
fn gazetteer_name(idx: &NameIndex, text: &str, start: usize, end: usize) -> bool {
    idx.longest_at(text, start, end).is_some_and(|(e, f)| e == end && f != 0) || idx.is_intl(&text[start..end])
}

/// Names that ordinary words hide, found by their company: items of a list of three or more one-word items of which
/// at least two are names already (`Piusz, Sharon, Bill, Sarah and Kim`; `founders: Waters, Long and Crosby`), and
/// dialogue speakers at a line start when the text holds two or more speaker lines (`Grace: "I'm Brooke's
/// daughter"`). Each such word must be a gazetteer name or not an English word.
fn lists_and_speakers(idx: &NameIndex, text: &str, elems: &[Elem], accepted: &[(usize, usize)], out: &mut Vec<Span>) {
    let b = text.as_bytes();
    // Elements of at most one word span exactly one word (see `detect_at`).
    let single = |e: &Elem| e.words <= 1;
    let is_accepted = |e: &Elem| accepted.binary_search_by(|a| a.0.cmp(&e.start)).is_ok();
    let name_like = |e: &Elem| {
        let w = &text[e.start..e.end];
        !idx.titles.contains(w)
            && !idx.greetings.contains(w)
            && (gazetteer_name(idx, text, e.start, e.end) || (e.flags == 0 && !idx.is_english(w) && w.len() >= 3))
    };
    let mut k = 0;
    while k < elems.len() {
        let mut last = k;
        while last + 1 < elems.len()
            && joined_by_list(b, elems[last].end, elems[last + 1].start)
            && single(&elems[last])
            && single(&elems[last + 1])
        {
            last += 1;
        }
        let group = &elems[k..=last];
        if group.len() >= 3 && group.iter().filter(|e| is_accepted(e)).count() >= 2 {
            for e in group.iter().filter(|e| !is_accepted(e) && name_like(e)) {
                out.push(Span::new(e.start, e.end, Kind::Person, 0.55));
            }
        }
        k = last + 1;
    }
    // Dialogue speakers.
    let speaker = |e: &Elem| {
        b.get(e.end) == Some(&b':')
            && matches!(b.get(e.end + 1), Some(b' ' | b'"'))
            && single(e)
            && (e.start == 0 || b[e.start - 1] == b'\n' || crate::scan::escaped_break_before(b, e.start))
    };
    if elems.iter().filter(|e| speaker(e)).count() >= 2 {
        for e in elems.iter().filter(|e| speaker(e) && !is_accepted(e) && name_like(e)) {
            out.push(Span::new(e.start, e.end, Kind::Person, 0.55));
        }
    }
}

/// Words before a lower-case name that say a person follows (`hi anna`, `my name is jan kowalski`, `ask sven`).
const LOWER_CUES_BEFORE: &[&str] = &[
    "hi", "hello", "hey", "dear", "thanks", "thx", "cheers", "bye", "morning", "evening", "is", "im", "i'm", "am",
    "me", "ask", "tell", "cc", "with", "and", "said", "asked", "told", "miss", "love", "hallo", "hej", "hola", "ciao",
    "salut", "servus", "moin", "yo",
];

/// Lower-case words that are given names somewhere but, written in chat, name a thing (`my iban is …`).
const LOWER_NOT_NAMES: &[&str] = &[
    "iban", "bic", "swift", "pin", "sms", "url", "wifi", "lol", "omg", "btw", "imo", "tbh", "pls", "plz", "asap",
    "gmail", "hotmail", "yahoo", "zoom", "teams", "slack", "skype", "linkedin", "google", "iphone", "android",
];

/// Words after a lower-case name that say it was one (`anna said`, `sven can you`).
const LOWER_CUES_AFTER: &[&str] = &[
    "said", "says", "wrote", "asked", "told", "replied", "thinks", "thought", "can", "will", "is", "was", "has", "had",
    "and", "here",
];

/// Names in text written without capitals (chat: `hey anna, can you…`, `my name is jan kowalski`). Evidence is
/// stricter than for capitalised words, since every word is a candidate: a name here is a given name of the
/// gazetteer or the directory that is not also an ordinary English word (`anna`, not `will`, `mark` or `may`), and it
/// counts with a surname right after it, a cue word before or after it, a vocative comma or a speaker's colon. A
/// surname after such a given name may be any gazetteer surname (`sarah smith`).
pub fn detect_lower(idx: &NameIndex, text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let lower_cues_before = crate::scan::word_set(&[LOWER_CUES_BEFORE]);
    let lower_cues_after = crate::scan::word_set(&[LOWER_CUES_AFTER]);
    // Lower-case ASCII words only (the name lists are ASCII-folded); `prev` is the previous word's range.
    let mut prev: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        // The `n` of an escaped `\\n` is a line break, not the start of a word.
        if !b[i].is_ascii_lowercase() || !crate::scan::boundary_before(text, i) || (i > 0 && b[i - 1] == b'\\') {
            i += 1;
            continue;
        }
        let e = word_end(text, i);
        let word = &text[i..e];
        let strong = |s: usize, e: usize| {
            let w = &text[s..e];
            w.len() >= 3
                && !idx.is_common(w)
                && !idx.is_english(w)
                && (idx.longest_at(text, s, e).is_some_and(|(me, f)| me == e && f & (F_GIVEN | F_MEMBER_PART) != 0)
                    || idx.is_intl(w))
        };
        if word.bytes().all(|c| c.is_ascii_lowercase()) && !LOWER_NOT_NAMES.contains(&word) && strong(i, e) {
            // A surname right after it.
            let mut end = e;
            let mut score: f32 = 0.0;
            if b.get(e) == Some(&b' ') && b.get(e + 1).is_some_and(u8::is_ascii_lowercase) {
                let se = word_end(text, e + 1);
                let surname = idx
                    .longest_at(text, e + 1, se)
                    .is_some_and(|(me, f)| me == se && f & (F_SURNAME | F_MEMBER_PART) != 0)
                    && text[e + 1..se].bytes().all(|c| c.is_ascii_lowercase());
                if surname && !lower_cues_after.contains(&text[e + 1..se]) {
                    end = se;
                    score = if idx.is_english(&text[e + 1..se]) { 0.6 } else { 0.75 };
                }
                // A name alone on its line (`thea kokshoorn` above an address): any unfamiliar surname.
                let line_head = i == 0 || b[i - 1] == b'\n' || crate::scan::escaped_break_before(b, i);
                let sw = &text[e + 1..se];
                let line_end = matches!(b.get(se), None | Some(b'\n')) || b[se..].starts_with(b"\\n");
                if score == 0.0
                    && line_head
                    && line_end
                    && sw.len() >= 3
                    && sw.bytes().all(|c| c.is_ascii_lowercase())
                    && !idx.is_english(sw)
                {
                    end = se;
                    score = 0.6;
                }
            }
            let before = prev.map(|(s, pe)| &text[s..pe]).filter(|_| prev.is_some_and(|(_, pe)| i - pe <= 2));
            if before.is_some_and(|w| lower_cues_before.contains(w)) {
                score = score.max(0.6);
            }
            let next_word = if b.get(end) == Some(&b' ') { &text[end + 1..word_end(text, end + 1)] } else { "" };
            let line_head = i == 0 || b[i - 1] == b'\n' || crate::scan::escaped_break_before(b, i);
            let vocative = b.get(end) == Some(&b',') || b.get(end) == Some(&b'!');
            let speaker = line_head && b.get(end) == Some(&b':');
            if lower_cues_after.contains(next_word) || vocative || speaker {
                score = score.max(0.6);
            }
            if score > 0.0 {
                out.push(Span::new(i, end, Kind::Person, score));
                prev = Some((i, end));
                i = end;
                continue;
            }
        }
        prev = Some((i, e));
        i = e.max(i + 1);
    }
}

/// True when `s` ends in a possessive `'s`.
fn possessive(s: &str) -> bool {
    s.ends_with("'s") || s.ends_with("’s")
}

/// `word` without a trailing possessive.
fn strip_possessive(word: &str) -> &str {
    word.strip_suffix("'s").or_else(|| word.strip_suffix("’s")).unwrap_or(word)
}

/// True when the word before `start` (past blanks and one `.`, `?` or `:`) ends a relation cue (`name? Gyôry`).
fn relation_before(idx: &NameIndex, text: &str, start: usize) -> bool {
    let b = text.as_bytes();
    let mut j = start;
    while j > 0 && b[j - 1] == b' ' {
        j -= 1;
    }
    if j > 1 && j < start && matches!(b[j - 1], b'.' | b'?' | b':') {
        j -= 1;
    }
    let ws = crate::scan::word_start(text, j);
    let mut buf = [0u8; 24];
    let Some(d) = buf.get_mut(..j - ws) else { return false };
    d.copy_from_slice(&b[ws..j]);
    d.make_ascii_lowercase();
    j < start && std::str::from_utf8(d).is_ok_and(|w| idx.relation_last.contains(w))
}

/// List separators between two names.
const LIST_SEPS: &[&[u8]] = &[b", ", b" and ", b", and ", b" & ", b" or "];

fn coordinated_after(b: &[u8], end: usize) -> bool {
    LIST_SEPS.iter().any(|sep| b.get(end..).is_some_and(|r| r.starts_with(sep)))
}

fn coordinated_before(b: &[u8], start: usize) -> bool {
    LIST_SEPS.iter().any(|sep| b.get(..start).is_some_and(|r| r.ends_with(sep)))
}

/// True when exactly one list separator lies between `end` and `start`.
fn joined_by_list(b: &[u8], end: usize, start: usize) -> bool {
    start > end && b.get(end..start).is_some_and(|gap| LIST_SEPS.contains(&gap))
}

/// True when two name elements belong to one name: one space, a middle initial, or lower-case particles between them.
fn joined(text: &str, a: &Elem, b: &Elem) -> bool {
    let Some(gap) = text.get(a.end..b.start) else { return false };
    // A possessive ends the name (`Anna Cressac's Cautionary Tales`).
    if text[..a.end].ends_with("'s") || text[..a.end].ends_with("’s") {
        return false;
    }
    if gap == " " || gap == "-" {
        return true;
    }
    if gap == ". " && a.end - a.start == 1 {
        return true;
    }
    let inner = gap.trim();
    gap.starts_with(' ') && gap.ends_with(' ') && !inner.is_empty() && inner.split(' ').all(|w| PARTICLES.contains(&w))
}

fn score_run(idx: &NameIndex, text: &str, elems: &[Elem], first: usize, last: usize) -> Option<Span> {
    // A leading capitalised ordinary word is not part of the name (`Producer John L Aponte`, `Meanwhile Anna`).
    let mut first = first;
    while first < last && elems[first].flags == 0 && idx.is_english(&text[elems[first].start..elems[first].end]) {
        first += 1;
    }
    let run = &elems[first..=last];
    let start = run[0].start;
    let end = run[run.len() - 1].end;
    let b = text.as_bytes();
    // A middle initial (`J` or `J.` between two names) is neither known nor unknown evidence.
    let initial = |e: &Elem| e.end - e.start == 1 && e.flags == 0;
    let has_initial = run.len() >= 3 && run[1..run.len() - 1].iter().any(initial);
    let inner: Vec<Elem> = if has_initial {
        run.iter().enumerate().filter(|(k, e)| !(*k > 0 && *k + 1 < run.len() && initial(e))).map(|(_, e)| *e).collect()
    } else {
        Vec::new()
    };
    let run = if has_initial { inner.as_slice() } else { run };
    let words: usize = run.iter().map(|e| usize::from(e.words)).sum();
    let known = run.iter().filter(|e| e.flags != 0).count();
    let member = run.iter().any(|e| e.flags & (F_MEMBER_FULL | F_MEMBER_PART) != 0);
    let strong_known = run.iter().filter(|e| e.flags != 0 && !idx.is_common(&text[e.start..e.end])).count();
    let given_first = run[0].flags & (F_GIVEN | F_MEMBER_PART) != 0;
    let surname_last = run[run.len() - 1].flags & (F_SURNAME | F_MEMBER_PART) != 0;
    let common = |e: &Elem| idx.is_common(&text[e.start..e.end]);
    let mut score: f32 = if run.len() == 1 && run[0].flags & F_MEMBER_FULL != 0 && run[0].words >= 2 {
        0.95
    } else if words >= 2 {
        if known == run.len() && given_first && surname_last {
            if member {
                0.92
            } else if strong_known >= 1 {
                0.85
            } else {
                0.7
            }
        } else if known == run.len() && strong_known >= 1 {
            0.75
        } else if known == run.len() {
            0.4
        } else if known >= 1 && run.len() == 2 && given_first && !common(&run[0]) {
            0.7
        } else if known >= 1 && run.len() == 2 && surname_last && !common(&run[1]) {
            0.55
        } else {
            0.2
        }
    } else {
        let base = if run[0].flags & (F_MEMBER_PART | F_MEMBER_FULL) != 0 {
            0.65
        } else if run[0].flags != 0 {
            0.58
        } else {
            0.0
        };
        if run[0].flags != 0 && common(&run[0]) { base - 0.2 } else { base }
    };
    if words == 1 && sentence_start(text, start) {
        score -= 0.15;
    }
    // Context before: the previous element (title or greeting) or cue phrases.
    let prev = first.checked_sub(1).map(|p| &elems[p]).filter(|p| p.words == 0);
    let prev_word = prev.and_then(|p| {
        let gap = text.get(p.end..start)?;
        (gap.len() <= 3 && gap.trim_matches(|c: char| c == '.' || c == ',' || c == ' ').is_empty())
            .then(|| &text[p.start..p.end])
    });
    // Signature: alone on a line right after a sign-off line ending in a comma.
    let at_line_start = {
        let mut j = start;
        while j > 0 && matches!(b[j - 1], b' ' | b'\t') {
            j -= 1;
        }
        j > 0 && b[j - 1] == b'\n'
    };
    let titled = prev_word.is_some_and(|w| idx.titles.contains(w) || idx.greetings.contains(w));
    // What follows the run (up to 16 bytes).
    let after = text.get(end..crate::scan::floor_boundary(text, end + 16)).unwrap_or("");
    let ab = after.as_bytes();
    let line_head = start == 0 || at_line_start || b[start - 1] == b'\n' || crate::scan::escaped_break_before(b, start);
    // A dialogue speaker (`Anna: …`, `Anna:"…` at a line start).
    let speaker = ab.first() == Some(&b':')
        && matches!(ab.get(1), Some(b' ') | Some(b'"'))
        && words <= 3
        && line_head
        && run.iter().all(|e| e.flags != 0 || !idx.is_english(&text[e.start..e.end]));
    // A vocative (`Nanase, can I …`) of a word that is not an ordinary English word.
    // Words that are not ordinary English words, addressed (`Nanase, can I …`), followed by a verb people do
    // (`Lebedeva began writing`) or owning what people own (`Yuzuna's kid`).
    let vocative = words <= 3
        && {
            fn nw(a: &str) -> &str {
                let a = a.trim_start_matches(' ');
                let e = a.bytes().take_while(u8::is_ascii_alphabetic).count();
                a.get(..e).unwrap_or("")
            }
            (words == 1 && ab.first() == Some(&b',') && VOCATIVE_AFTER.iter().any(|c| after.starts_with(c)))
                || (ab.first() == Some(&b' ') && idx.name_verbs.contains(nw(after)))
                || ((after.starts_with("'s ") || after.starts_with("’s "))
                    && idx.kin.contains(nw(&after[after.find(' ').unwrap_or(0)..])))
                || (possessive(&text[..end]) && ab.first() == Some(&b' ') && idx.kin.contains(nw(after)))
        }
        && run.iter().all(|e| e.flags != 0 || !idx.is_english(strip_possessive(&text[e.start..e.end])));
    if known == 0
        && words == 1
        && !titled
        && !at_line_start
        && !speaker
        && !vocative
        && sentence_start(text, start)
        && !(start > 0 && relation_before(idx, text, start) && !idx.is_english(strip_possessive(&text[start..end])))
    {
        return None;
    }
    // Capitalised sequence: 2–3 capitalised words, each a name that is not also an English word or an unknown word
    // that is not English either (`Tsukihiko Niita`), is a name with lower confidence.
    if run.len() >= 2 && PLACE_PREFIXES.contains(&&text[run[0].start..run[0].end]) {
        return None;
    }
    let seq = (2..=3).contains(&run.len())
        && words == run.len()
        && run.iter().all(|e| {
            let w = &text[e.start..e.end];
            if e.flags != 0 { !common(e) } else { w.len() >= 2 && !idx.is_english(w) }
        });
    // Unknown words with no title or greeting before them and not at a line start: only a relation cue before or a
    // strong verb after can still make them a name; check those cheaply before the costlier context below.
    if known == 0
        && !seq
        && !titled
        && !speaker
        && !vocative
        && !at_line_start
        && start > 0
        && !crate::scan::escaped_break_before(b, start)
    {
        let relation = relation_before(idx, text, start);
        let strong_after = b.get(end) == Some(&b' ')
            && idx.strong_after.contains(&text[end + 1..crate::scan::word_end(text, end + 1)]);
        if !relation && !strong_after {
            return None;
        }
    }
    let window_start = crate::scan::floor_boundary(text, start.saturating_sub(64));
    let line_start = memchr::memrchr(b'\n', &b[window_start..start]).map_or(usize::MAX, |p| window_start + p + 1);
    let window_end = crate::scan::floor_boundary(text, (end + 8).min(text.len()));
    let line_end = memchr::memchr(b'\n', &b[end..window_end]).map_or(text.len(), |p| end + p);
    let alone = at_line_start
        && line_start != usize::MAX
        && text[line_start..start].trim().is_empty()
        && (line_end == text.len() && window_end == text.len() || line_end < text.len())
        && text[end..line_end].trim_matches([',', ' ', '.']).is_empty();
    let at_start = sentence_start(text, start);
    if known == 0
        && !seq
        && (words > 3 || (!titled && !alone && at_start && !speaker && !vocative && !relation_before(idx, text, start)))
    {
        return None;
    }
    let mut cue: f32 = if speaker || vocative { 0.45 } else { 0.0 };
    if let Some(w) = prev_word {
        if idx.titles.contains(w) {
            cue = cue.max(0.6);
        } else if idx.greetings.contains(w) {
            cue = cue.max(0.55);
        }
    }
    // Relation cues: only looked at when the word before the run ends one (a cheap set lookup first).
    let pw_end = {
        let mut j = start;
        while j > 0 && b[j - 1] == b' ' {
            j -= 1;
        }
        if j > 1 && j < start && matches!(b[j - 1], b'.' | b'?' | b':') {
            j -= 1;
        }
        j
    };
    let pw_start = crate::scan::word_start(text, pw_end);
    let mut pw_buf = [0u8; 24];
    let pw = match pw_buf.get_mut(..pw_end - pw_start) {
        Some(dst) => {
            dst.copy_from_slice(&b[pw_start..pw_end]);
            dst.make_ascii_lowercase();
            std::str::from_utf8(dst).unwrap_or("")
        }
        None => "",
    };
    let mut phrase_hit = false;
    if pw_end < start && idx.relation_last.contains(pw) {
        if idx.relation_words.contains(pw) {
            cue = cue.max(if matches!(pw, "with" | "and" | "by" | "from" | "ask" | "tell" | "meet") {
                0.2
            } else {
                0.45
            });
        }
        // Multi-word cues (`introduce you to`) ending in this word: only then look at the text before.
        let mut phrases = idx.phrases.iter().filter(|(last, _)| *last == pw).peekable();
        if phrases.peek().is_some() {
            let before = crate::scan::before_lower(text, start, 28);
            let before_trim = before.trim_end();
            if phrases.any(|(_, c)| before_trim.ends_with(c)) {
                cue = cue.max(0.45);
                phrase_hit = true;
            }
        }
    }
    let place_before = (pw == "at" || pw == "in") && !phrase_hit;
    if known == 0 && !seq && !titled && !alone && cue < 0.45 {
        return None;
    }
    if alone {
        let prev_start = crate::scan::floor_boundary(text, line_start.saturating_sub(48));
        let prev_line = text[prev_start..line_start.saturating_sub(1)].rsplit('\n').next().unwrap_or("").trim();
        if line_start > 0 && prev_line.ends_with(',') && prev_line.len() <= 40 {
            cue = cue.max(0.65);
        } else if line_start > 0 && (prev_line.starts_with('—') || prev_line.starts_with("--")) {
            cue = cue.max(0.5);
        }
    }
    // `– Anna` or `Anna –` at a line start, vocatives, and verbs after.
    let next_word = if ab.first() == Some(&b' ') {
        let e = crate::scan::word_end(after, 1);
        &after[1..e]
    } else {
        ""
    };
    let after_cue = match ab.first() {
        Some(b'\'') | Some(0xE2) => AFTER_CUES.iter().any(|c| after.starts_with(c)),
        Some(b' ') => idx.after_words.contains(next_word) || after.starts_with(" – ") || after.starts_with(" - "),
        Some(b',') => AFTER_CUES.iter().filter(|c| c.starts_with(',')).any(|c| after.starts_with(c)),
        _ => false,
    };
    if after_cue {
        cue = cue.max(0.2);
    }
    // Strong verbs after the name, or a dialogue speaker (`Anna: …` at a line start).
    if (ab.first() == Some(&b' ') && idx.strong_after.contains(next_word)) || speaker || vocative {
        cue = cue.max(0.45);
    }
    if words == 1 && sentence_start(text, start) && (after.starts_with(',') || after.starts_with('!')) {
        cue = cue.max(0.2);
    }
    // A sequence at a sentence start needs something after it that says a person was meant.
    // A name alone on its line (address blocks, signatures): followed by a real or escaped line break or the end.
    let line_ends = after.is_empty() || after.starts_with('\n') || after.starts_with("\\n") || after.starts_with("\r");
    let seq = seq && (!at_start || after_cue || speaker || after.starts_with(',') || line_ends);
    // Companies and places.
    let mut penalty = 0.0;
    if idx.org_words.contains(next_word) || after.starts_with(" & ") || after.starts_with(" of ") && known == 0 {
        penalty += 0.4;
    }
    if place_before {
        // An organisation or place (`at Acme`, `in Berlin`).
        penalty += 0.2;
    }
    if known == 0 {
        // Unknown words count only with a title, greeting or signature, and when short, or as a capitalised sequence.
        if words > 3 {
            return None;
        }
        if cue >= 0.45 {
            score = cue + 0.05;
        } else if seq {
            score = 0.52 - penalty;
        } else {
            return None;
        }
    } else {
        score += cue - penalty;
        if seq {
            score = score.max(0.52 - penalty);
        }
    }
    // Trailing possessive is not part of the name.
    let mut end = end;
    if text[..end].ends_with("'s") && b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric()) && words == 1 {
        end -= 2;
    }
    if next_char(text, end).is_some_and(crate::scan::is_word_char) {
        return None;
    }
    (score >= 0.3).then(|| Span::new(start, end, Kind::Person, score))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(idx: &NameIndex, t: &str) -> Vec<String> {
        let mut v = Vec::new();
        detect(idx, t, &mut v);
        v.iter().filter(|s| s.score >= 0.5).map(|s| t[s.start..s.end].to_string()).collect()
    }

    #[test]
    fn gazetteer_and_context() {
        let idx =
            NameIndex::build(["Siobhán Ní Bhriain", "Pieter van der Berg"], true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names(&idx, "Hi Sarah, I met John Smith yesterday."), ["Sarah", "John Smith"]);
        assert_eq!(names(&idx, "Dear Siobhán Ní Bhriain,"), ["Siobhán Ní Bhriain"]);
        assert_eq!(names(&idx, "I asked Dr. van der Berg and Ms Xyzzy."), ["van der Berg", "Xyzzy"]);
        assert_eq!(names(&idx, "Best regards,\nQuorlin Vantablack"), ["Quorlin Vantablack"]);
        assert!(names(&idx, "We will meet in May at the Rose Garden on Park Street.").is_empty());
        let mut v = Vec::new();
        detect(&idx, "こんにちは、Sarahさん。", &mut v);
        assert_eq!(names(&idx, "こんにちは、Sarahさん。"), ["Sarah"], "{v:?}");
    }

    #[test]
    fn lower_case_names_need_strict_evidence() {
        let idx = NameIndex::build(["Aoife Kowalczyk"], true).unwrap_or_else(|e| panic!("{e}"));
        let lower = |t: &str| {
            let mut v = Vec::new();
            detect_lower(&idx, t, &mut v);
            v.iter().filter(|s| s.score >= 0.5).map(|s| t[s.start..s.end].to_string()).collect::<Vec<_>>()
        };
        assert_eq!(lower("hi anna, got it"), ["anna"]);
        assert_eq!(lower("cc aoife kowalczyk pls"), ["aoife kowalczyk"]);
        assert_eq!(lower("so sven said no"), ["sven"]);
        // Names that are ordinary words, and a name with no evidence, stay words.
        assert!(lower("hi will, mark the bill by may").is_empty());
        // A verb after the name is evidence enough.
        assert_eq!(lower("the report from anna is late"), ["anna"]);
        assert!(lower("we met in paris last june").is_empty());
        assert!(lower("my iban is de89").is_empty());
    }

    #[test]
    fn international_names_and_sequences() {
        let idx = NameIndex::build(std::iter::empty::<&str>(), true).unwrap_or_else(|e| panic!("{e}"));
        // International given name (folded `Csanád` → `csanad`) with an unknown surname.
        assert_eq!(names(&idx, "I met Csanád Batirbek yesterday."), ["Csanád Batirbek"]);
        // Capitalised sequence of words that are not English words, mid-sentence.
        assert_eq!(names(&idx, "have you heard Tsukihiko Niita speak yet?"), ["Tsukihiko Niita"]);
        // An escaped line break (`\\n` written out) starts a word.
        assert_eq!(names(&idx, "Arya: hi.\\nShawn: Remember me?"), ["Arya", "Shawn"]);
        // Ordinary capitalised words, places and sign-offs are not names.
        assert!(names(&idx, "See Guilty Pleasures and the meetup in São Paulo.\n\nViele Grüße,").is_empty());
        assert!(names(&idx, "Thanks, I'll take a look.").is_empty());
    }
}
