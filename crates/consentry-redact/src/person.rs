//! People's names. Three sources of evidence are combined:
//!
//! 1. the member directory: every member's full name, given name and surname
//!    in one Aho–Corasick automaton (ASCII case-insensitive, anchored
//!    searches only at capitalised word starts, so its cost grows with the
//!    number of capitalised words, not with the text);
//! 2. a gazetteer of given names and surnames from the US Census lists
//!    shipped in `data/`, in the same automaton, with the names that are also
//!    ordinary English words (`Will`, `Rose`, `Park`) marked as weak;
//! 3. context: greetings (`Hi`, `Dear`), titles (`Dr.`, `Ms`), relations
//!    (`my colleague`), verbs that follow names (`says`, `'s`), signature
//!    lines after a sign-off, and runs of capitalised words.
//!
//! Each run of adjacent capitalised words becomes one candidate span whose
//! score sums that evidence; the detector keeps those above its threshold.

use crate::RedactError;
use crate::scan::{boundary_after, is_capitalised_at, next_char, sentence_start, word_end};
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
    " Street",
    " Road",
    " Avenue",
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
const STRONG_AFTER: &[&str] =
    &["said", "says", "shouted", "asked", "told", "wrote", "replied", "whispered", "smiled", "laughed", "speaks", "called"];

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
        let stop = crate::scan::word_set(&[STOP, TITLES, GREETINGS]);
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
        Ok(NameIndex { ac, flags, common, stop, relation_last, after_words, org_words })
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

    fn is_common(&self, word: &str) -> bool {
        let mut buf = [0u8; 32];
        let Some(dst) = buf.get_mut(..word.len()) else { return false };
        dst.copy_from_slice(word.as_bytes());
        dst.make_ascii_lowercase();
        std::str::from_utf8(dst).is_ok_and(|w| self.common.contains(w))
    }
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
pub fn detect(idx: &NameIndex, text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut elems: Vec<Elem> = Vec::new();
    let mut i = 0;
    let n = b.len();
    while i < n {
        let c = b[i];
        let cand = if c.is_ascii_uppercase() {
            i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] >= 0x80 && !crate::scan::boundary_before(text, i))
        } else if c >= 0xC0 {
            crate::scan::boundary_before(text, i) && is_capitalised_at(text, i)
        } else {
            false
        };
        if !cand {
            i += 1;
            continue;
        }
        let we = word_end(text, i);
        let word = &text[i..we];
        let not_name = idx.stop.contains(word)
            || (word.len() >= 2 && word.bytes().all(|c| c.is_ascii_uppercase()))
            || word.bytes().any(|c| c.is_ascii_digit());
        if not_name {
            // A title may be followed by a particle-led surname (`Dr. van der Berg`).
            if TITLES.contains(&word) {
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
            None => (we, 0),
        };
        let words = text[i..end].split_whitespace().count().max(1) as u8;
        elems.push(Elem { start: i, end, flags, words });
        i = end.max(i + 1);
    }
    // Runs of adjacent name elements.
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
        if let Some(span) = score_run(idx, text, &elems, k, last) {
            out.push(span);
        }
        k = last + 1;
    }
}

/// True when two name elements belong to one name: one space, a middle initial, or lower-case particles between them.
fn joined(text: &str, a: &Elem, b: &Elem) -> bool {
    let Some(gap) = text.get(a.end..b.start) else { return false };
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
    let run = &elems[first..=last];
    let start = run[0].start;
    let end = run[run.len() - 1].end;
    let b = text.as_bytes();
    // A middle initial (`J` or `J.` between two names) is neither known nor unknown evidence.
    let initial = |e: &Elem| e.end - e.start == 1 && e.flags == 0;
    let inner: Vec<Elem> = if run.len() >= 3 {
        run.iter().enumerate().filter(|(k, e)| !(*k > 0 && *k + 1 < run.len() && initial(e))).map(|(_, e)| *e).collect()
    } else {
        run.to_vec()
    };
    let run = inner.as_slice();
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
    let window_start = crate::scan::floor_boundary(text, start.saturating_sub(64));
    let line_start = memchr::memrchr(b'\n', &b[window_start..start]).map_or(usize::MAX, |p| window_start + p + 1);
    let window_end = crate::scan::floor_boundary(text, (end + 8).min(text.len()));
    let line_end = memchr::memchr(b'\n', &b[end..window_end]).map_or(text.len(), |p| end + p);
    let alone = line_start != usize::MAX
        && text[line_start..start].trim().is_empty()
        && (line_end == text.len() && window_end == text.len() || line_end < text.len())
        && text[end..line_end].trim_matches([',', ' ', '.']).is_empty();
    let titled = prev_word.is_some_and(|w| TITLES.contains(&w) || GREETINGS.contains(&w));
    if known == 0 && (words > 3 || (!titled && !alone && sentence_start(text, start))) {
        return None;
    }
    let mut cue = 0.0f32;
    if let Some(w) = prev_word {
        if TITLES.contains(&w) {
            cue = cue.max(0.6);
        } else if GREETINGS.contains(&w) {
            cue = cue.max(0.55);
        }
    }
    // Relation cues: only looked at when the word before the run ends one (a cheap set lookup first).
    let pw_end = {
        let mut j = start;
        while j > 0 && b[j - 1] == b' ' {
            j -= 1;
        }
        j
    };
    let pw_start = crate::scan::word_start(text, pw_end);
    let pw = text[pw_start..pw_end].to_ascii_lowercase();
    let mut before_trim = String::new();
    if pw_end < start && idx.relation_last.contains(pw.as_str()) {
        let before = crate::scan::before_lower(text, start, 28);
        before_trim = before.trim_end().to_string();
        if RELATION_CUES.contains(&pw.as_str()) {
            cue = cue.max(if matches!(pw.as_str(), "with" | "and" | "by" | "from" | "ask" | "tell" | "meet") {
                0.2
            } else {
                0.45
            });
        }
        if RELATION_CUES.iter().any(|c| c.contains(' ') && before_trim.ends_with(c)) {
            cue = cue.max(0.45);
        }
    } else if pw == "at" || pw == "in" {
        before_trim = pw.clone();
    }
    if known == 0 && !titled && !alone && cue < 0.45 {
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
    let after = text.get(end..(end + 16).min(text.len())).unwrap_or("");
    let after = &after[..crate::scan::floor_boundary(after, after.len())];
    let ab = after.as_bytes();
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
    let speaker = ab.first() == Some(&b':')
        && ab.get(1) == Some(&b' ')
        && words <= 3
        && (start == 0 || matches!(b[start - 1], b'\n') || text[..start].ends_with("\\n"));
    if (ab.first() == Some(&b' ') && STRONG_AFTER.contains(&next_word)) || speaker {
        cue = cue.max(0.45);
    }
    if words == 1 && sentence_start(text, start) && (after.starts_with(',') || after.starts_with('!')) {
        cue = cue.max(0.2);
    }
    // Companies and places.
    if idx.org_words.contains(next_word) || after.starts_with(" & ") {
        score -= 0.4;
    }
    if before_trim.ends_with(" at") || before_trim.ends_with(" in") || before_trim == "at" || before_trim == "in" {
        // An organisation or place (`at Acme`, `in Berlin`).
        score -= 0.2;
    }
    if known == 0 {
        // Unknown words count only with a title, greeting or signature, and when short.
        if cue < 0.45 || words > 3 {
            return None;
        }
        score = cue + 0.05;
    } else {
        score += cue;
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
}
