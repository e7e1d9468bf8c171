//! Street addresses, triggered by house numbers. Around each number at a
//! word start the detector tries the conventions of several countries:
//! number first (`221B Baker Street`, `12 rue de la Paix`, `5/120 George St`,
//! `Flat 3, 12 Mill Lane`), street first (`Hauptstraße 12`, `Keizersgracht
//! 123-II`, `Calle Mayor, 5`, `Via Roma 10/A`), then a tail of units
//! (`Apt 4B`, `Suite 200`, `3º izda.`), cities, state codes and postcodes
//! (US ZIP, UK, Canada, Netherlands, 4–6 digits). A tail is kept only up to
//! its last postcode, so a city mentioned after an address is not swallowed
//! by accident. Also US military addresses (`PSC 1234, Box 5678 / APO AE
//! 09876`) and bare `Name Street` with a strong street type.
//!
//! European conventions beyond those: lower-case street types after the name
//! (`Tom Wilhelmsens vei 83`, `Bécsi utca 53.`, `Tas vezér u. 62.`), one-word
//! streets by their suffix (Nordic `-vænget`, `-stígur`, Finnish `-tie`,
//! Dutch `-plaats`, German `-brücke`), leading abbreviations (`Avda.`,
//! `Ctra.`, `C/`, `ul.`, `Λεωφ.`), a lot number before the house number
//! (`12045 Via Carlo Cattaneo 88`, `0169 262 Pavlou Drandaki`), postcode-last
//! lines (`Cyprus (Greek) 44762`), district numbers (`Praha 1`), streets
//! with no type at all (`Jiráskova 986`) when an address word comes before
//! and the number ends the clause, and `the corner of X and Y`. The looser
//! rules require an unfamiliar proper name (not an ordinary English word).

use crate::scan::{boundary_after, boundary_before, digits_at, is_capitalised_at, next_char, prev_char, word_end};
use crate::{Kind, Span};

/// Street types written after the street name (USPS Publication 28 suffixes, UK, AU, IN conventions).
const STRONG_TYPES: &[&str] = &[
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Av",
    "Road",
    "Rd",
    "Boulevard",
    "Blvd",
    "Drive",
    "Dr",
    "Lane",
    "Ln",
    "Court",
    "Ct",
    "Way",
    "Place",
    "Pl",
    "Close",
    "Crescent",
    "Cres",
    "Terrace",
    "Tce",
    "Ter",
    "Parade",
    "Pde",
    "Highway",
    "Hwy",
    "Parkway",
    "Pkwy",
    "Square",
    "Sq",
    "Grove",
    "Gardens",
    "Gdns",
    "Circle",
    "Cir",
    "Trail",
    "Trl",
    "Alley",
    "Row",
    "Mews",
    "Cross",
    "Marg",
    "Expressway",
    "Freeway",
    "Turnpike",
    "Pike",
    "Broadway",
    "Esplanade",
    "Embankment",
    "Wharf",
    "Quay",
    "Hill",
    "Rise",
    "Walk",
    "Loop",
    "Plaza",
    "Causeway",
    "Boulevarde",
    "Strasse",
    "Straße",
    "Str",
];

/// Further USPS suffixes: ordinary words too, so they score lower unless a unit or postcode follows.
const WEAK_TYPES: &[&str] = &[
    "Annex",
    "Arcade",
    "Bayou",
    "Beach",
    "Bend",
    "Bluff",
    "Bluffs",
    "Bottom",
    "Branch",
    "Bridge",
    "Brook",
    "Brooks",
    "Burg",
    "Burgs",
    "Bypass",
    "Camp",
    "Canyon",
    "Cape",
    "Center",
    "Centre",
    "Centers",
    "Circles",
    "Cliff",
    "Cliffs",
    "Club",
    "Common",
    "Commons",
    "Corner",
    "Corners",
    "Course",
    "Courts",
    "Cove",
    "Coves",
    "Creek",
    "Crest",
    "Crossing",
    "Crossroad",
    "Curve",
    "Dale",
    "Dam",
    "Divide",
    "Drives",
    "Estate",
    "Estates",
    "Extension",
    "Extensions",
    "Fall",
    "Falls",
    "Ferry",
    "Field",
    "Fields",
    "Flat",
    "Flats",
    "Ford",
    "Fords",
    "Forest",
    "Forge",
    "Forges",
    "Fork",
    "Forks",
    "Fort",
    "Garden",
    "Gateway",
    "Glen",
    "Glens",
    "Green",
    "Greens",
    "Groves",
    "Harbor",
    "Harbors",
    "Haven",
    "Heights",
    "Hills",
    "Hollow",
    "Inlet",
    "Island",
    "Islands",
    "Isle",
    "Junction",
    "Junctions",
    "Key",
    "Keys",
    "Knoll",
    "Knolls",
    "Lake",
    "Lakes",
    "Land",
    "Landing",
    "Light",
    "Lights",
    "Loaf",
    "Lock",
    "Locks",
    "Lodge",
    "Mall",
    "Manor",
    "Manors",
    "Meadow",
    "Meadows",
    "Mill",
    "Mills",
    "Mission",
    "Motorway",
    "Mount",
    "Mountain",
    "Mountains",
    "Neck",
    "Orchard",
    "Oval",
    "Overpass",
    "Park",
    "Parks",
    "Parkways",
    "Pass",
    "Passage",
    "Path",
    "Pines",
    "Plain",
    "Plains",
    "Point",
    "Points",
    "Port",
    "Ports",
    "Prairie",
    "Radial",
    "Ramp",
    "Ranch",
    "Rapid",
    "Rapids",
    "Rest",
    "Ridge",
    "Ridges",
    "River",
    "Roads",
    "Route",
    "Run",
    "Shoal",
    "Shoals",
    "Shore",
    "Shores",
    "Skyway",
    "Spring",
    "Springs",
    "Spur",
    "Spurs",
    "Squares",
    "Station",
    "Stravenue",
    "Stream",
    "Streets",
    "Summit",
    "Throughway",
    "Trace",
    "Track",
    "Trafficway",
    "Tunnel",
    "Underpass",
    "Union",
    "Unions",
    "Valley",
    "Valleys",
    "Viaduct",
    "View",
    "Views",
    "Village",
    "Villages",
    "Ville",
    "Vista",
    "Walks",
    "Wall",
    "Ways",
    "Well",
    "Wells",
    "Apartments",
    "Residency",
    "Towers",
    "Enclave",
    "Nagar",
    "Layout",
    "Colony",
    "Chowk",
    "Salai",
];

/// Street types written before the name (ES, IT, PT, FR, CA-FR).
const LEADING_TYPES: &[&str] = &[
    "Calle",
    "Carrer",
    "Avenida",
    "Avinguda",
    "Plaza",
    "Plaça",
    "Paseo",
    "Passeig",
    "Rambla",
    "Gran",
    "Camino",
    "Ronda",
    "Travesía",
    "Via",
    "Viale",
    "Corso",
    "Piazza",
    "Piazzale",
    "Largo",
    "Vicolo",
    "Strada",
    "Rua",
    "Travessa",
    "Rue",
    "Avenue",
    "Boulevard",
    "Place",
    "Allée",
    "Impasse",
    "Chemin",
    "Quai",
    "Route",
    "Cours",
    "Ulica",
    "ul",
];

/// French street types that follow the house number, written in lower case.
const FR_TYPES: &[&str] = &[
    "rue",
    "avenue",
    "boulevard",
    "bd",
    "place",
    "allée",
    "impasse",
    "chemin",
    "quai",
    "route",
    "cours",
    "square",
    "passage",
    "voie",
    "Rue",
    "Avenue",
    "Boulevard",
    "Place",
    "Allée",
    "Impasse",
    "Chemin",
    "Quai",
    "Route",
    "Cours",
];

/// Endings of one-word street names (DE, AT, CH, NL, BE, Nordic).
const SUFFIXES: &[&str] = &[
    "straße", "strasse", "str", "weg", "allee", "platz", "gasse", "ring", "damm", "ufer", "chaussee", "steig", "pfad",
    "gracht", "straat", "laan", "plein", "kade", "singel", "dijk", "steeg", "markt", "vej", "gatan", "gata", "väg",
    "vägen", "veien", "gade", "plaats", "brücke", "bakken", "vænget", "vangen", "stígur", "vegur", "braut", "tie",
    "katu", "kuja", "polku", "torget", "stræde", "gränd", "hof", "matt", "gässli", "rain", "vangur", "byggð", "gasse",
];

/// Street types written in lower case after the name (Estonian, Hungarian, Nordic, Finnish, Baltic, Slavic, Dutch):
/// `Luite tee 87`, `Csabai kapu 60`, `Martin Linges veg 149`.
const LOWER_TYPES: &[&str] = &[
    "tee",
    "põik",
    "puiestee",
    "utca",
    "út",
    "u",
    "kapu",
    "köz",
    "tér",
    "sor",
    "körút",
    "rakpart",
    "veg",
    "vei",
    "vej",
    "gate",
    "gata",
    "gatan",
    "vägen",
    "väg",
    "gränd",
    "katu",
    "tie",
    "kuja",
    "polku",
    "iela",
    "gatvė",
    "ulica",
    "straat",
    "weg",
    "laan",
    "cesta",
    "ulice",
    "náměstí",
    "trg",
    "sokak",
    "caddesi",
    "fasor",
    "sétány",
    "průhon",
    "nábřeží",
    "vegen",
    "vejen",
    "stræde",
    "allé",
    "gränd",
    "torg",
    "ulica",
    "aleja",
];

/// Words that introduce a unit before or after the street.
const UNITS: &[&str] = &[
    "Apt",
    "Apartment",
    "Suite",
    "Ste",
    "Unit",
    "Flat",
    "Floor",
    "Fl",
    "Room",
    "Rm",
    "Bldg",
    "Building",
    "Bât",
    "Box",
    "Dept",
    "Office",
    "Level",
    "Piso",
    "Escalera",
    "Esc",
    "Interno",
    "Int",
    "Stage",
    "Etage",
    "apt",
    "suite",
    "unit",
    "flat",
    "#",
];

/// Lower-case words allowed inside street and city names.
const PARTICLES: &[&str] = &[
    "de", "del", "della", "delle", "dei", "degli", "di", "da", "do", "dos", "das", "du", "des", "la", "las", "los",
    "le", "les", "el", "y", "e", "am", "an", "im", "der", "den", "van", "von", "sur", "en", "of", "the", "upon", "on",
    "d'", "l'", "à", "au", "aux", "zum", "zur", "op", "nad",
];

fn word_at(text: &str, i: usize) -> Option<(usize, &str)> {
    let e = word_end(text, i);
    (e > i).then(|| (e, &text[i..e]))
}

/// The word at `i` with its end, skipping a trailing `.` of an abbreviation.
fn word_dot(text: &str, i: usize) -> Option<(usize, &str)> {
    let (e, w) = word_at(text, i)?;
    let e = if text.as_bytes().get(e) == Some(&b'.') { e + 1 } else { e };
    Some((e, w))
}

/// Skips one separator: `, ` or spaces (no newline).
fn sep(b: &[u8], mut i: usize) -> usize {
    if b.get(i) == Some(&b',') {
        i += 1;
    }
    crate::scan::skip_blanks(b, i)
}

/// A house number at `i`: `12`, `12a`, `12-14`, `5/120`, `10/A`, `12 bis`, `123-II`, `123 hs`; returns its end.
fn house_number(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let n = digits_at(b, i);
    if n == 0 || n > 5 {
        return None;
    }
    let mut j = i + n;
    match b.get(j) {
        Some(b'/') | Some(b'-') if b.get(j + 1).is_some_and(u8::is_ascii_digit) => {
            j += 1 + digits_at(b, j + 1);
        }
        Some(b'/') | Some(b'-') if b.get(j + 1).is_some_and(u8::is_ascii_uppercase) && boundary_after(text, j + 2) => {
            j += 2;
        }
        Some(b'-')
            if b[j + 1..].starts_with(b"III") || b[j + 1..].starts_with(b"II") || b[j + 1..].starts_with(b"I") =>
        {
            j += 1;
            while b.get(j) == Some(&b'I') {
                j += 1;
            }
        }
        Some(c) if c.is_ascii_alphabetic() && boundary_after(text, j + 1) => j += 1,
        _ => {}
    }
    if !boundary_after(text, j) {
        return None;
    }
    for suffix in [" bis", " ter", " hs"] {
        if b[j..].starts_with(suffix.as_bytes()) && boundary_after(text, j + suffix.len()) {
            j += suffix.len();
        }
    }
    Some(j)
}

/// Ordinary English words (SCOWL, as the person detector uses them): a street name made only of them needs a
/// street type, an unfamiliar one may stand alone before its number after an address cue.
static ENGLISH: std::sync::LazyLock<crate::scan::WordSet> =
    std::sync::LazyLock::new(|| include_str!("../data/english_words.txt").lines().collect());

/// True for an ordinary English word (any case).
fn is_english(w: &str) -> bool {
    let mut buf = [0u8; 24];
    let Some(dst) = buf.get_mut(..w.len()) else { return false };
    dst.copy_from_slice(w.as_bytes());
    dst.make_ascii_lowercase();
    std::str::from_utf8(dst).is_ok_and(|l| ENGLISH.contains(l))
}

/// A capitalised word that is not an ordinary English word, of three letters or more: a foreign proper name.
fn foreign_name(w: &str) -> bool {
    w.chars().count() >= 3 && w.chars().next().is_some_and(char::is_uppercase) && !is_english(w)
}

static STRONG: std::sync::LazyLock<crate::scan::WordSet> =
    std::sync::LazyLock::new(|| crate::scan::word_set(&[STRONG_TYPES]));
static WEAK: std::sync::LazyLock<crate::scan::WordSet> =
    std::sync::LazyLock::new(|| crate::scan::word_set(&[WEAK_TYPES]));

fn is_type(w: &str) -> Option<f32> {
    if STRONG.contains(w) {
        Some(0.85)
    } else if WEAK.contains(w) {
        Some(0.6)
    } else {
        None
    }
}

/// Word that may be part of a street name: capitalised, an ordinal (`2nd`), or an all-caps abbreviation (`MG`).
fn name_word(w: &str) -> bool {
    let first = w.chars().next().unwrap_or(' ');
    if first.is_uppercase() {
        return true;
    }
    if first.is_ascii_digit() {
        let lw = w.to_ascii_lowercase();
        return ["st", "nd", "rd", "th"].iter().any(|s| lw.ends_with(s)) && lw.len() <= 6;
    }
    false
}

/// Number-first street: number, optional comma, name words, street type. Returns (core end, score).
fn number_first(text: &str, i: usize) -> Option<(usize, f32)> {
    let b = text.as_bytes();
    let num_end = house_number(text, i)?;
    let mut k = sep(b, num_end);
    if k == num_end {
        return None;
    }
    // French: `12 rue de la Paix`.
    if let Some((e, w)) = word_at(text, k)
        && FR_TYPES.contains(&w)
    {
        let mut end = e;
        let mut names = 0;
        let mut j = crate::scan::skip_blanks(b, e);
        for _ in 0..6 {
            let Some((we, nw)) = word_at(text, j) else { break };
            let part = PARTICLES.contains(&nw) || nw.starts_with("d'") || nw.starts_with("l'");
            if !(name_word(nw) || part) {
                break;
            }
            if name_word(nw) {
                names += 1;
                end = we;
            }
            j = crate::scan::skip_blanks(b, we);
            if j == we {
                break;
            }
        }
        if names > 0 {
            return Some((end, 0.85));
        }
    }
    // `Sector 5` after an Indian block number (`B-12, Sector 5`).
    if text[k..].starts_with("Sector ") && digits_at(b, k + 7) > 0 {
        return Some((k + 7 + digits_at(b, k + 7), 0.8));
    }
    for words in 0..5 {
        let (e, w) = word_at(text, k)?;
        if words > 0
            && let Some(score) = is_type(w)
        {
            let abbr = w.len() <= 4
                && !matches!(
                    w,
                    "Lane"
                        | "Road"
                        | "Way"
                        | "Row"
                        | "Hill"
                        | "Rise"
                        | "Walk"
                        | "Loop"
                        | "Pike"
                        | "Quay"
                        | "Mews"
                        | "Marg"
                );
            let end = if b.get(e) == Some(&b'.') && abbr { e + 1 } else { e };
            return Some((end, score));
        }
        if !name_word(w) && w != "&" {
            return None;
        }
        let e = if b.get(e) == Some(&b'.') && e - k <= 2 { e + 1 } else { e };
        let j = crate::scan::skip_blanks(b, e);
        if j == e || j - e > 2 {
            return None;
        }
        k = j;
    }
    None
}

/// Street-first: the words before the number at `i` name the street. Returns (start, score).
fn street_first(text: &str, i: usize) -> Option<(usize, f32)> {
    let b = text.as_bytes();
    // Previous word, separated by a blank or `, `.
    let mut p = i;
    while p > 0 && b[p - 1] == b' ' {
        p -= 1;
    }
    if p == i {
        return None;
    }
    if p > 0 && b[p - 1] == b',' {
        p -= 1;
    }
    let dotted = p > 0 && b[p - 1] == b'.';
    let we = if dotted { p - 1 } else { p };
    let ws = crate::scan::word_start(text, we);
    if ws == we {
        return None;
    }
    let w = &text[ws..we];
    let lw = w.to_lowercase();
    // One-word street with a suffix, or `Berliner Straße`.
    // Short suffixes need a longer word (`Siikasaarentie`, not `Katie`; `Lahof`, not `Hof`).
    let long_enough = |s: &str| lw.len() > s.len() + if s.len() <= 4 { 3 } else { 1 };
    if SUFFIXES.iter().any(|s| lw.ends_with(s) && long_enough(s) || lw == "straße" || lw == "strasse") {
        let mut start = ws;
        if let Some(before) = prev_word(text, ws)
            && is_capitalised_at(text, before)
        {
            let prev = &text[before..word_end(text, before)];
            if matches!(lw.as_str(), "straße" | "strasse" | "weg" | "allee" | "platz")
                || prev.ends_with("er")
                || prev.ends_with('e')
                || matches!(prev, "Nieuwe" | "Oude" | "Lange" | "Korte" | "Grote" | "Kleine" | "Sankt" | "St")
            {
                start = before;
            }
        }
        return is_capitalised_at(text, start).then_some((start, 0.85));
    }
    // A lower-case street type after the name (`Tom Wilhelmsens vei 83`, `Bécsi utca 53`, `Dózsa György út 78.`,
    // `Tas vezér u. 62.`): 1–3 words before it, the first capitalised, one an unfamiliar proper name.
    if LOWER_TYPES.contains(&lw.as_str()) || (dotted && matches!(w, "u" | "rkp" | "krt")) {
        let (mut start, mut t, mut foreign) = (None, ws, false);
        for _ in 0..3 {
            let Some(p) = prev_word(text, t) else { break };
            let pw = &text[p..word_end(text, p)];
            if is_capitalised_at(text, p) {
                foreign |= foreign_name(pw);
                start = Some(p);
            } else if !pw.chars().all(char::is_lowercase) || is_english(pw) {
                break;
            }
            t = p;
        }
        // The name must open with a capitalised word.
        return start.filter(|&st| foreign && is_capitalised_at(text, st)).map(|st| (st, 0.85));
    }
    // Leading type: `Calle de Alcalá 12`, `Via Giuseppe Garibaldi, 7`, `Corso Vittorio Emanuele II 3`.
    let mut s = ws;
    for _ in 0..6 {
        let word = &text[s..word_end(text, s)];
        if LEADING_TYPES.contains(&word) && s != ws {
            return Some((s, 0.85));
        }
        if LEADING_TYPES.contains(&word) && s == ws {
            return None;
        }
        let ok = name_word(word) || PARTICLES.contains(&word);
        if !ok {
            return None;
        }
        s = prev_word(text, s)?;
    }
    None
}

/// Start of the word before the one starting at `i`, if only one blank separates them.
fn prev_word(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    if i < 2 || b[i - 1] != b' ' || !prev_char(text, i - 1).is_some_and(char::is_alphanumeric) {
        return None;
    }
    let s = crate::scan::word_start(text, i - 1);
    (s < i - 1).then_some(s)
}

/// A postcode at `i`; returns its end.
fn postcode(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let n = digits_at(b, i);
    if (4..=6).contains(&n) {
        let mut j = i + n;
        // US ZIP+4.
        if n == 5 && b.get(j) == Some(&b'-') && digits_at(b, j + 1) == 4 {
            j += 5;
        }
        // Dutch `1012 AB`.
        if n == 4
            && b.get(j) == Some(&b' ')
            && b.get(j + 1).is_some_and(u8::is_ascii_uppercase)
            && b.get(j + 2).is_some_and(u8::is_ascii_uppercase)
            && boundary_after(text, j + 3)
        {
            j += 3;
        }
        return boundary_after(text, j).then_some(j);
    }
    if n > 0 {
        return None;
    }
    // Canada `K1A 0B1`.
    let g = |k: usize, up: bool| b.get(k).is_some_and(|c| if up { c.is_ascii_uppercase() } else { c.is_ascii_digit() });
    if g(i, true)
        && g(i + 1, false)
        && g(i + 2, true)
        && b.get(i + 3) == Some(&b' ')
        && g(i + 4, false)
        && g(i + 5, true)
        && g(i + 6, false)
        && boundary_after(text, i + 7)
    {
        return Some(i + 7);
    }
    // UK: outward (A9, A99, AA9, AA99, A9A, AA9A) space inward (9AA).
    let mut j = i;
    let letters = b[i..].iter().take_while(|c| c.is_ascii_uppercase()).count();
    if !(1..=2).contains(&letters) {
        return None;
    }
    j += letters;
    let d = digits_at(b, j);
    if !(1..=2).contains(&d) {
        return None;
    }
    j += d;
    if b.get(j).is_some_and(u8::is_ascii_uppercase) {
        j += 1;
    }
    if b.get(j) == Some(&b' ') && g(j + 1, false) && g(j + 2, true) && g(j + 3, true) && boundary_after(text, j + 4) {
        return Some(j + 4);
    }
    None
}

/// Unit after the street (`Apt 4B`, `Suite 200`, `Bât. A`, `3º izda.`); returns its end.
fn unit(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    // Spanish floor/door: `3º izda.`, `2º B`.
    let n = digits_at(b, i);
    if (1..=2).contains(&n) && (text[i + n..].starts_with('º') || text[i + n..].starts_with('ª')) {
        let mut j = i + n + 2;
        if b.get(j) == Some(&b' ')
            && let Some((e, w)) = word_dot(text, j + 1)
            && w.len() <= 5
        {
            j = e;
        }
        return Some(j);
    }
    let (e, w) = if b.get(i) == Some(&b'#') { (i + 1, "#") } else { word_dot(text, i)? };
    if !UNITS.contains(&w) {
        return None;
    }
    let j = crate::scan::skip_blanks(b, e);
    let j = if b.get(j) == Some(&b'#') { j + 1 } else { j };
    let n = digits_at(b, j);
    let mut k = j + n;
    if n > 0 && b.get(k).is_some_and(u8::is_ascii_alphabetic) && boundary_after(text, k + 1) {
        k += 1;
    }
    if n == 0 && b.get(j).is_some_and(u8::is_ascii_uppercase) && boundary_after(text, j + 1) {
        k = j + 1;
    }
    (k > j && boundary_after(text, k)).then_some(k)
}

/// Consumes units, cities, state codes and postcodes after `core_end`; returns (end, had postcode).
fn tail(text: &str, core_end: usize) -> (usize, bool) {
    let b = text.as_bytes();
    let mut end = core_end;
    let mut had_postcode = false;
    let mut i = core_end;
    let limit = core_end + 160;
    for _ in 0..8 {
        if i >= limit || i >= b.len() {
            break;
        }
        // Separator: `, `, ` `, ` - `, `,\n` or a single newline.
        let mut k = i;
        if b.get(k) == Some(&b',') {
            k += 1;
        }
        // Up to two line breaks, real or escaped (`\\n` in text copied from JSON), each maybe followed by a short
        // bullet or quote prefix (`• `, `> `, `?? `, `}} `).
        for _ in 0..2 {
            let at_break = k;
            if b.get(k) == Some(&b'\n') {
                k += 1;
            } else if b.get(k) == Some(&b'\\') && b.get(k + 1) == Some(&b'n') {
                k += 2;
            }
            if k > at_break {
                let p = crate::scan::skip_blanks(b, k);
                let q = p + b.get(p..).map_or(0, |r| r.iter().take(4).take_while(|c| b"?}>*|#-".contains(c)).count());
                if q > p && (b.get(q) == Some(&b' ') || b.get(q).is_some_and(u8::is_ascii_alphanumeric)) {
                    k = q;
                }
            }
        }
        k = crate::scan::skip_blanks(b, k);
        if b[k..].starts_with(b"- ") {
            k += 2;
        }
        if k == i || k >= b.len() {
            break;
        }
        if let Some(e) = unit(text, k) {
            end = e;
            i = e;
            continue;
        }
        // One postcode per address, and not the first group of a phone number on the next line (`0494 41 18 24`).
        let phone_group =
            |e: usize| matches!(b.get(e), Some(b' ') | Some(b'-')) && b.get(e + 1).is_some_and(u8::is_ascii_digit);
        if let Some(e) = postcode(text, k).filter(|&e| !had_postcode && !phone_group(e)) {
            had_postcode = true;
            end = e;
            i = e;
            // A city right after the postcode (`75001 Paris`, `1012 AB Amsterdam`).
            if b.get(e) == Some(&b' ') && is_capitalised_at(text, e + 1) {
                let mut j = e + 1;
                while let Some((we, w)) = word_at(text, j) {
                    if !(name_word(w) || PARTICLES.contains(&w)) {
                        break;
                    }
                    end = we;
                    if b.get(we) != Some(&b' ')
                        || !(is_capitalised_at(text, we + 1)
                            || word_at(text, we + 1).is_some_and(|(_, w)| PARTICLES.contains(&w)))
                    {
                        break;
                    }
                    j = we + 1;
                }
                i = end;
            }
            continue;
        }
        // City or state words (stopping before a postcode such as `NW1 6XE`).
        let mut j = k;
        let mut any = false;
        loop {
            // A parenthesised qualifier inside a place (`Cyprus (Greek) 47782`).
            if any && b.get(j) == Some(&b'(') {
                let close = b.get(j..(j + 24).min(b.len())).and_then(|r| memchr::memchr(b')', r));
                match close {
                    Some(c) if b.get(j + c + 1) == Some(&b' ') && postcode(text, j + c + 2).is_some() => {
                        j += c + 1;
                        break;
                    }
                    Some(c) if b.get(j + c + 1) == Some(&b' ') => {
                        j += c + 2;
                        continue;
                    }
                    _ => break,
                }
            }
            let Some((we, w)) = word_at(text, j) else { break };
            if any && w.len() <= 2 && w.bytes().all(|c| c.is_ascii_digit()) {
                j = we;
                break;
            }
            let link = any && w.len() <= 3 && w.bytes().all(|c| c.is_ascii_lowercase());
            if !(name_word(w) || (any && PARTICLES.contains(&w)) || link) || postcode(text, j).is_some() {
                break;
            }

            any = true;
            j = we;
            // Short lower-case links inside a place name (`Bystré u Policky`, `Ždár nad Sázavou`) count as particles.
            let link = |w: &str| PARTICLES.contains(&w) || (w.len() <= 3 && w.bytes().all(|c| c.is_ascii_lowercase()));
            let next_ok = b.get(we) == Some(&b' ')
                && postcode(text, we + 1).is_none()
                && (word_at(text, we + 1).is_some_and(|(_, w)| {
                    name_word(w) || link(w) || (w.len() <= 2 && w.bytes().all(|c| c.is_ascii_digit()))
                }) || b.get(we + 1) == Some(&b'('));
            if next_ok {
                j = we + 1;
            } else {
                break;
            }
        }
        if !any {
            break;
        }
        i = j;
    }
    (end, had_postcode)
}

/// Tries an address around the house number at `i` (an ASCII digit at a word start); returns where scanning may resume.
pub fn at_number(text: &str, i: usize, out: &mut Vec<Span>) -> Option<usize> {
    let before = out.len();
    let r = at_number_core(text, i, out);
    // A lone building or lot number before the address (`083 254 Damvergi Street`, `35116 Rua Arapiraca 1943`)
    // belongs to it.
    if out.len() > before
        && let Some(last) = out.last_mut()
    {
        last.start = lone_number_before(text, last.start);
        if let Some(u) = unit_before(text, last.start) {
            last.start = u;
        }
    }
    r
}

/// Start of a lone number (1–6 digits, at a line start or after a blank, colon or comma) that ends one blank before
/// `start`; `start` itself when there is none.
fn lone_number_before(text: &str, start: usize) -> usize {
    let b = text.as_bytes();
    if start < 2 || b[start - 1] != b' ' || !b[start - 2].is_ascii_digit() {
        return start;
    }
    let q = start - 1;
    let mut s = q;
    while s > 0 && b[s - 1].is_ascii_digit() && q - s < 7 {
        s -= 1;
    }
    let n = q - s;
    if !(1..=6).contains(&n) || !boundary_before(text, s) {
        return start;
    }
    let ok = s == 0
        || matches!(b[s - 1], b' ' | b'\n' | b'\t' | b':' | b',' | b'}' | b'?' | b'>' | b'|' | b'*')
        || crate::scan::escaped_break_before(b, s);
    if ok { s } else { start }
}

fn at_number_core(text: &str, i: usize, out: &mut Vec<Span>) -> Option<usize> {
    let b = text.as_bytes();
    // Number first, with an optional unit before it (`Flat 3, 12 Mill Lane`, `Unit 5, 123 George St`).
    if let Some((core_end, score)) = number_first(text, i) {
        let mut start = i;
        if let Some(s) = unit_before(text, i).or_else(|| unit_word_before(text, i)) {
            start = s;
        } else if i >= 2 && b[i - 1] == b'-' && b[i - 2].is_ascii_uppercase() && boundary_before(text, i - 2) {
            start = i - 2;
        }
        let (end, post) = tail(text, core_end);
        let score = if post || end > core_end { score.max(0.8) + 0.1 } else { score };
        out.push(Span::new(start, end, Kind::Address, score));
        return Some(end);
    }
    // Street first.
    let num_end = house_number(text, i)?;
    if let Some((start, score)) = street_first(text, i) {
        let (end, post) = tail(text, num_end);
        out.push(Span::new(start, end, Kind::Address, if post { score + 0.1 } else { score }));
        return Some(end);
    }
    // Abbreviated lower-case street types: Polish `ul. Szczytnowska 136`, Hungarian `Király u. 23`.
    if let Some(start) = abbreviated_street_before(text, i) {
        let (end, post) = tail(text, num_end);
        out.push(Span::new(start, end, Kind::Address, if post { 0.9 } else { 0.8 }));
        return Some(end);
    }
    // Unfamiliar street name then number after a locative cue (`lives on Letališka 103`, `is on Buerlia 227 street`).
    if let Some(start) = cued_name_before(text, i) {
        let (end, post) = tail(text, num_end);
        out.push(Span::new(start, end, Kind::Address, if post { 0.85 } else { 0.75 }));
        return Some(end);
    }
    // Number, unfamiliar street name, number (`637 Strojírenská 1006`, `788 Fitjabraut 87`).
    if b.get(num_end) == Some(&b' ') {
        let mut k = num_end + 1;
        let mut words = 0;
        // A leading abbreviation (`Avda.`, `Ctra.`, `ul.`, `Λεωφ.`) or `C/` opens the street.
        if b[k..].starts_with(b"C/ ") {
            k += 3;
        }
        while let Some((we, w)) = word_at(text, k) {
            let lower_type = words > 0 && LOWER_TYPES.contains(&w);
            let lead_abbr = words == 0 && b.get(we) == Some(&b'.') && matches!(w, "ul" | "al" | "pl" | "os" | "av");
            if !(name_word(w) || PARTICLES.contains(&w) || lower_type || lead_abbr)
                || w.bytes().all(|c| c.is_ascii_digit())
            {
                break;
            }
            words += 1;
            k = we;
            // An abbreviation's dot (`Avda. Rio Nalon 58`, `N. Stadion`).
            let dot = usize::from(b.get(we) == Some(&b'.') && we - crate::scan::word_start(text, we) <= 5);
            if b.get(we + dot) == Some(&b' ') && words < 5 {
                k = we + dot + 1;
            } else {
                break;
            }
        }
        if words > 0
            && k > num_end + 1
            && b.get(k.saturating_sub(1)) == Some(&b' ')
            && let Some(e2) = house_number(text, k)
        {
            let (end, post) = tail(text, e2);
            let cue = address_cue(text, i) || post || end > e2;
            // `5 Musicians Of The 70s`: ordinary words between two numbers are a title, not a street.
            let foreign = text[num_end..k].split(' ').any(foreign_name);
            if cue || foreign {
                out.push(Span::new(i, end, Kind::Address, if cue { 0.85 } else { 0.65 }));
                return Some(end);
            }
        }
    }
    // A lot number, a house number and an untyped street (`0169 262 Pavlou Drandaki`, `52410 185 M. Sfakianaki`),
    // after an address word or with a unit or postcode after it.
    let year = digits_at(b, i) == 4 && matches!(&b[i..i + 2], b"19" | b"20");
    if !year
        && b.get(num_end) == Some(&b' ')
        && let Some(e2) = house_number(text, num_end + 1)
        && b.get(e2) == Some(&b' ')
    {
        let (mut k, mut words, mut end) = (e2 + 1, 0, e2);
        while let Some((we, w)) = word_at(text, k) {
            if !name_word(w) || w.bytes().all(|c| c.is_ascii_digit()) {
                break;
            }
            words += 1;
            end = we;
            let dot = usize::from(b.get(we) == Some(&b'.') && we - k <= 2);
            if b.get(we + dot) == Some(&b' ') && words < 4 {
                k = we + dot + 1;
            } else {
                break;
            }
        }
        if words > 0 {
            let (tail_end, _) = tail(text, end);
            if tail_end > end || address_word_before(text, i) {
                out.push(Span::new(i, tail_end, Kind::Address, 0.75));
                return Some(tail_end);
            }
        }
    }
    // A unit followed by a building and a street (`Flat 302, Sunrise Apartments, MG Road`).
    if let Some(s) = unit_word_before(text, i).filter(|_| b.get(num_end) == Some(&b',')) {
        let mut k = sep(b, num_end);
        for _ in 0..3 {
            let mut j = k;
            let mut last_word = "";
            while let Some((we, w)) = word_at(text, j) {
                if !name_word(w) {
                    break;
                }
                last_word = w;
                j = we;
                if b.get(we) == Some(&b' ') {
                    j = we + 1;
                } else {
                    break;
                }
            }
            let seg_end = if b.get(j.saturating_sub(1)) == Some(&b' ') { j - 1 } else { j };
            if last_word.is_empty() {
                break;
            }
            if is_type(last_word).is_some() {
                let (end, _) = tail(text, seg_end);
                out.push(Span::new(s, end, Kind::Address, 0.85));
                return Some(end);
            }
            if b.get(seg_end) != Some(&b',') {
                break;
            }
            k = sep(b, seg_end);
        }
    }
    None
}

/// Lower-case words that stay lower-case when chat text is read as if capitalised: function words, so a run of
/// ordinary words does not look like a street name.
const KEEP_LOWER: &[&str] = &[
    "the",
    "a",
    "an",
    "and",
    "or",
    "of",
    "to",
    "at",
    "in",
    "on",
    "is",
    "are",
    "was",
    "were",
    "be",
    "for",
    "with",
    "my",
    "your",
    "our",
    "his",
    "her",
    "their",
    "me",
    "you",
    "we",
    "they",
    "it",
    "this",
    "that",
    "from",
    "by",
    "as",
    "i",
    "im",
    "i'm",
    "its",
    "it's",
    "if",
    "so",
    "but",
    "not",
    "no",
    "yes",
    "ok",
    "pls",
    "please",
    "thanks",
    "here",
    "there",
    "near",
    "next",
    "now",
    "then",
    "just",
    "can",
    "will",
    "would",
    "could",
    "should",
    "do",
    "does",
    "did",
    "have",
    "has",
    "had",
    "am",
    "live",
    "lives",
    "moved",
    "send",
    "sent",
    "meet",
    "address",
    "new",
    "old",
    "is:",
    "north",
    "south",
    "east",
    "west",
    "side",
    "corner",
    "end",
    "top",
    "front",
    "back",
    "left",
    "right",
    "middle",
    "part",
    "area",
    "city",
    "town",
    "centre",
    "center",
    "number",
    "house",
    "home",
    "office",
    "restaurant",
    "station",
];

/// Addresses in text written without capitals (`i live at 12 hauptstraße, 10115 berlin`): the number-led rules run
/// over a copy whose words are capitalised, except function words, particles and lower-case street types, so the
/// street grammar applies unchanged; byte offsets are the same (only ASCII letters change case). The word-led rules
/// (a bare `baker street`, a lone `flat 3`) are not tried: in lower-case text they would match ordinary phrases.
pub fn in_lower_case(text: &str, out: &mut Vec<Span>) {
    static KEEP: std::sync::LazyLock<crate::scan::WordSet> = std::sync::LazyLock::new(|| {
        crate::scan::word_set(&[KEEP_LOWER, PARTICLES, FR_TYPES, LOWER_TYPES, UNITS, SUFFIXES])
    });
    let b = text.as_bytes();
    let mut shadow: Vec<u8> = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        // The `n` of an escaped `\\n` stays as it is: it is a line break, not a word.
        if b[i].is_ascii_lowercase() && boundary_before(text, i) && !(i > 0 && b[i - 1] == b'\\') {
            let e = word_end(text, i);
            if !KEEP.contains(&text[i..e]) {
                shadow[i] = b[i].to_ascii_uppercase();
            }
            i = e.max(i + 1);
        } else {
            i += 1;
        }
    }
    // Only ASCII bytes changed, so the copy is valid UTF-8 with the same char boundaries.
    let Ok(shadow) = String::from_utf8(shadow) else { return };
    let sb = shadow.as_bytes();
    let mut next = 0;
    let mut i = 0;
    while i < sb.len() {
        if sb[i].is_ascii_digit() {
            if i >= next
                && boundary_before(&shadow, i)
                && let Some(e) = at_number(&shadow, i, out)
            {
                next = e;
            }
            i += digits_at(sb, i).max(1);
        } else {
            i += 1;
        }
    }
}

/// Start of `ul. Name` / `al. Name` or `Name u.` ending one blank before the number at `i`.
fn abbreviated_street_before(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    // `Name u. 23`: a dot, the abbreviation, a blank, a capitalised word.
    if i >= 4 && b[i - 1] == b' ' && b[i - 2] == b'.' {
        let a = crate::scan::word_start(text, i - 2);
        if matches!(&text[a..i - 2], "u" | "krt" | "ut") && a >= 2 && b[a - 1] == b' ' {
            let s = crate::scan::word_start(text, a - 1);
            if s < a - 1 && is_capitalised_at(text, s) {
                return Some(s);
            }
        }
    }
    // `ul. Name 136`, `ul. Paderewskiego Ignacego 35`: 1–3 capitalised words before the number, after `ul. `.
    let mut s = prev_word(text, i)?;
    for _ in 0..2 {
        if s >= 4 && b[s - 1] == b' ' && b[s - 2] == b'.' {
            break;
        }
        match prev_word(text, s) {
            Some(p) if is_capitalised_at(text, p) => s = p,
            _ => break,
        }
    }
    if !is_capitalised_at(text, s) || s < 4 || b[s - 1] != b' ' || b[s - 2] != b'.' {
        return None;
    }
    let a = crate::scan::word_start(text, s - 2);
    matches!(&text[a..s - 2], "ul" | "al" | "pl" | "os" | "ulica" | "Ul" | "Al").then_some(a)
}

/// Start of 1–3 capitalised words (a single letter such as the `R` of `R Portela` allowed) that end one blank before
/// the house number at `i` and follow a locative cue (`lives on`, `is on`, `located at`, `north side of`).
fn cued_name_before(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut s = prev_word(text, i)?;
    if !is_capitalised_at(text, s) {
        return None;
    }
    for _ in 0..3 {
        match prev_word(text, s) {
            Some(p) if is_capitalised_at(text, p) => s = p,
            // A particle inside the name (`Fuente del Gallo`), if a capitalised word precedes it.
            Some(p) if PARTICLES.contains(&&text[p..word_end(text, p)]) => match prev_word(text, p) {
                Some(q) if is_capitalised_at(text, q) => s = q,
                _ => break,
            },
            _ => break,
        }
    }
    // Not a year or a version (`PyCon 2024`, `Windows 10`), nor a quantity (`moved to Berlin 3 years ago`), nor one
    // ordinary word (`moved to Room 4`).
    let n = digits_at(b, i);
    if n == 4 && matches!(&b[i..i + 2], b"19" | b"20") || !number_ends_clause(text, i) {
        return None;
    }
    if prev_word(text, s).is_none_or(|p| !is_capitalised_at(text, p)) && is_english(&text[s..word_end(text, s)]) {
        return None;
    }
    let w = crate::scan::before_lower(text, s, 24);
    let w = w.trim_end();
    [
        "lives on",
        "live on",
        "lived on",
        "is on",
        "located at",
        "located on",
        "side of",
        "refers to",
        "address is",
        "address:",
        "enter on",
        "corner of",
        "moved to",
        "address to",
        "lives at",
        "live at",
    ]
    .iter()
    .any(|c| w.ends_with(c))
    .then_some(s)
    .or_else(|| unfamiliar_street_before(text, s, i))
}

/// Words before a place that say an address is being given, looked for in the clause before an unfamiliar street.
const ADDRESS_WORDS: &[&str] = &[
    "address",
    "live",
    "lives",
    "lived",
    "living",
    "located",
    "meet",
    "meeting",
    "taxi",
    "office",
    "offices",
    "deliver",
    "send",
    "sent",
    "return",
    "moved",
    "move",
    "restaurant",
    "station",
    "drops",
    "ship",
    "mail",
    "visit",
    "stay",
    "headquarters",
    "arrived",
    "letter",
    "parcel",
    "package",
    "driver",
    "corner",
    "street",
    "road",
    "avenue",
    "home",
    "house",
    "flat",
    "apartment",
    "adresse",
    "dirección",
    "indirizzo",
    "endereço",
    "adres",
    "addresses",
];

/// Start `s` of unfamiliar capitalised words (at least one not an English word) before the number at `i`, when the
/// number ends its clause (`Meet me at Metsa 68`, `… to Nábřežní 243.`) and an address word comes up to 120 bytes
/// before: a street written without a type, as many European streets are (`Jiráskova 986`, `Cagancha 4752`).
fn unfamiliar_street_before(text: &str, s: usize, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let n = digits_at(b, i);
    if !(1..=4).contains(&n) || (n == 4 && matches!(&b[i..i + 2], b"19" | b"20")) {
        return None;
    }
    if !number_ends_clause(text, i) {
        return None;
    }
    let mut foreign = false;
    let mut k = s;
    while k < i {
        let we = word_end(text, k);
        if we == k {
            break;
        }
        let w = &text[k..we];
        if is_capitalised_at(text, k) && foreign_name(w) {
            foreign = true;
        }
        k = crate::scan::skip_blanks(b, we);
    }
    if !foreign {
        return None;
    }
    address_word_before(text, s).then_some(s)
}

/// True when the house number at `i` ends its clause: the end, punctuation, a line break, or a word that cannot
/// continue a quantity (`… 68 for post mail`, `… 103 street.`), so `Berlin 3 years ago` is no address.
fn number_ends_clause(text: &str, i: usize) -> bool {
    let b = text.as_bytes();
    let e = house_number(text, i).unwrap_or(i + digits_at(b, i));
    match b.get(e) {
        None => true,
        Some(b'.' | b',' | b'?' | b'!' | b';' | b')' | b'\n' | b'\\' | b':') => true,
        Some(b' ') => {
            let (_, w) = word_at(text, e + 1).unwrap_or((e, ""));
            matches!(
                w,
                "for"
                    | "in"
                    | "last"
                    | "and"
                    | "St"
                    | "street"
                    | "Street"
                    | "please"
                    | "if"
                    | "after"
                    | "is"
                    | "was"
                    | "Str"
                    | "but"
                    | "or"
                    | "where"
                    | "which"
                    | "near"
            )
        }
        _ => false,
    }
}

/// True when one of [`ADDRESS_WORDS`] occurs in the 120 bytes before `i`.
fn address_word_before(text: &str, i: usize) -> bool {
    static WORDS: std::sync::LazyLock<crate::scan::WordSet> =
        std::sync::LazyLock::new(|| crate::scan::word_set(&[ADDRESS_WORDS]));
    let from = crate::scan::floor_boundary(text, i.saturating_sub(120));
    let mut buf = [0u8; 16];
    text[from..i].split(|c: char| !c.is_alphanumeric()).any(|w| {
        let Some(dst) = buf.get_mut(..w.len()) else { return false };
        dst.copy_from_slice(w.as_bytes());
        dst.make_ascii_lowercase();
        std::str::from_utf8(dst).is_ok_and(|l| WORDS.contains(l))
    })
}

/// True when the words before `i` announce an address (`address:`, `lives at`, `ship to`).
fn address_cue(text: &str, i: usize) -> bool {
    let w = crate::scan::before_lower(text, i, 24);
    let w = w.trim_end();
    [
        "address:",
        "address is",
        "lives at",
        "live at",
        "located at",
        "ship to",
        "sent to",
        "send to",
        "return to",
        "deliver to",
        "office is at",
        "lives on",
        "live on",
        "moved to",
    ]
    .iter()
    .any(|c| w.ends_with(c))
}

/// Start of a unit word (`Flat`, `Apt.`) right before the number at `i`.
fn unit_word_before(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    if i < 2 || b.get(i - 1) != Some(&b' ') {
        return None;
    }
    let mut r = i - 1;
    if b[r - 1] == b'.' {
        r -= 1;
    }
    let s = crate::scan::word_start(text, r);
    UNITS.contains(&&text[s..r]).then_some(s)
}

/// Start of a unit phrase (`Flat 3, `, `Unit 5 `, `Apt. 4B, `) that ends just before `i`.
fn unit_before(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    if i > b.len() {
        return None;
    }
    let mut p = i;
    while p > 0 && b[p - 1] == b' ' {
        p -= 1;
    }
    if p > 0 && b[p - 1] == b',' {
        p -= 1;
    }
    if p == i {
        return None;
    }
    // The unit number.
    let mut q = p;
    if q > 0 && b[q - 1].is_ascii_alphabetic() {
        q -= 1;
    }
    let mut digits = 0;
    while q > 0 && b[q - 1].is_ascii_digit() {
        q -= 1;
        digits += 1;
    }
    if digits == 0 {
        return None;
    }
    let mut r = q;
    while r > 0 && b[r - 1] == b' ' {
        r -= 1;
    }
    if r > 0 && b[r - 1] == b'.' {
        r -= 1;
    }
    let s = crate::scan::word_start(text, r);
    UNITS.contains(&&text[s..r]).then_some(s)
}

/// Tries the addresses that start with a word: US military (`PSC 1234, Box 5678`, `USNS Smith`) followed by `APO/FPO/DPO AA 12345`, and bare `Name Street`.
pub fn at_word(text: &str, i: usize, out: &mut Vec<Span>) -> Option<usize> {
    let b = text.as_bytes();
    // Cheap reject: most capitalised words are neither military markers nor units nor followed by a capitalised word.
    let e0 = i + b.get(i..).map_or(0, |r| r.iter().take_while(|c| c.is_ascii_alphanumeric()).count());
    if b.get(e0).is_none_or(u8::is_ascii) {
        let special = matches!(
            &b[i..e0],
            b"PSC"
                | b"P"
                | b"PO"
                | b"Postbox"
                | b"Post"
                | b"USNS"
                | b"USS"
                | b"USCGC"
                | b"USNV"
                | b"Unit"
                | b"CMR"
                | b"Apt"
                | b"Apartment"
                | b"Suite"
                | b"Flat"
        );
        let capital_next = b.get(e0) == Some(&b' ') && b.get(e0 + 1).is_some_and(u8::is_ascii_uppercase);
        if !special && !capital_next {
            return None;
        }
    } else if !matches!(b.get(i), Some(b'P') | Some(b'U') | Some(b'C') | Some(b'A') | Some(b'S') | Some(b'F')) {
        let sp = memchr::memchr(b' ', &b[i..(i + 40).min(b.len())])?;
        if !b.get(i + sp + 1).is_some_and(u8::is_ascii_uppercase) {
            return None;
        }
    }
    let (e, w) = word_at(text, i)?;
    if matches!(w, "PSC" | "USNS" | "USS" | "USCGC" | "USNV" | "Unit" | "CMR") {
        // Up to the end of the next line, which must be `APO|FPO|DPO AA|AE|AP 12345`.
        let nl = memchr::memchr(b'\n', &b[e..]).map(|x| e + x)?;
        if nl - i > 40 {
            return None;
        }
        let line = &b[nl + 1..];
        let military = line.len() >= 12
            && matches!(&line[..4], b"APO " | b"FPO " | b"DPO ")
            && matches!(&line[4..7], b"AA " | b"AE " | b"AP ")
            && digits_at(line, 7) == 5;
        if military {
            let end = nl + 13;
            out.push(Span::new(i, end, Kind::Address, 0.9));
            return Some(end);
        }
        return None;
    }
    // A post-office box (`P.O. Box 52`, `PO Box 52`, `Postbox 78`), with a lone number before it.
    let rest = &b[i..];
    let po = [&b"P.O. Box "[..], b"PO Box ", b"P. O. Box ", b"Postbox ", b"Post Box "]
        .into_iter()
        .find(|p| rest.starts_with(p));
    if let Some(p) = po {
        let n = digits_at(b, i + p.len());
        if (1..=6).contains(&n) && boundary_after(text, i + p.len() + n) {
            let (end, _) = tail(text, i + p.len() + n);
            out.push(Span::new(lone_number_before(text, i), end, Kind::Address, 0.85));
            return Some(end);
        }
    }
    // A unit on its own (`Apt. 559`, `Suite 026`): part of an address whose other lines may be elsewhere.
    if matches!(w, "Apt" | "Apartment" | "Suite" | "Flat" | "Unit")
        && let Some(end) = unit(text, i)
    {
        let after = sep(b, end);
        if after > end && b.get(after).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        out.push(Span::new(i, end, Kind::Address, 0.6));
        // Not `Some(end)`: the number trigger may still find the whole address (`Flat 302, Sunrise Apartments, …`).
        return None;
    }
    // `Baker Street`, `Smith Plains Apt. 4`: a capitalised name then a strong type, no number.
    if !name_word(w) || is_type(w).is_some() || b.get(e) != Some(&b' ') {
        return None;
    }
    let (te, t) = word_at(text, e + 1)?;
    // `Carine Summit Street`, `Peres Falls St.`: a name, a weak type, then a strong one.
    let mut double = false;
    let (te, t) = match word_at(text, te + 1) {
        Some((te2, t2)) if WEAK.contains(t) && b.get(te) == Some(&b' ') && STRONG.contains(t2) => {
            double = true;
            (te2, "Street")
        }
        _ => (te, t),
    };
    // After `the corner of`, a name and any street type is a street (`the corner of Gallo Creek and Sari Gardens`).
    let corner = || {
        let from = crate::scan::floor_boundary(text, i.saturating_sub(90));
        text[from..i].contains("corner of ")
    };
    let typed = STRONG.contains(t) && !matches!(t, "St" | "Dr" | "Pl" | "Ct" | "Rd" | "Ln" | "Cir");
    if !typed && !((WEAK.contains(t) || STRONG.contains(t) || t == "Ways" || t == "Walks") && corner()) {
        return None;
    }
    if !boundary_after(text, te) || next_char(text, te).is_some_and(|c| c == '\'') {
        return None;
    }
    // A house number follows: the number trigger handles it (`Berliner Straße 5`).
    if b.get(te) == Some(&b' ') && b.get(te + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    // `Quarry Hill Ventures`: a capitalised word after the type makes it a company or place name, unless it is a
    // street type itself (`Viva Crescent Street`, `Masaev Place St.`).
    let mut te = te;
    if b.get(te) == Some(&b' ') && is_capitalised_at(text, te + 1) {
        match word_at(text, te + 1) {
            Some((e2, t2)) if matches!(t2, "Street" | "St" | "Road" | "Avenue") => {
                double = true;
                te = if t2 == "St" && b.get(e2) == Some(&b'.') { e2 + 1 } else { e2 };
            }
            _ => return None,
        }
    }
    let (end, post) = tail(text, te);
    let score = if post || end > te || double || corner() { 0.8 } else { 0.52 };
    out.push(Span::new(i, end, Kind::Address, score));
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        let b = t.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() && boundary_before(t, i) {
                if let Some(e) = at_number(t, i, &mut v) {
                    i = e.max(i + 1);
                    continue;
                }
                i += digits_at(b, i).max(1);
            } else if b[i].is_ascii_uppercase() && boundary_before(t, i) {
                if let Some(e) = at_word(t, i, &mut v) {
                    i = e.max(i + 1);
                    continue;
                }
                i += 1;
            } else {
                i += 1;
            }
        }
        crate::resolve(v.into_iter().filter(|s| s.score >= 0.5).collect()).iter().map(|s| &t[s.start..s.end]).collect()
    }

    #[test]
    fn addresses() {
        for a in [
            "1234 Maple Ave., Apt 4B, Springfield, IL 62701",
            "221B Baker Street, London NW1 6XE",
            "Flat 3, 12 Mill Lane",
            "Hauptstraße 12a, 10115 Berlin",
            "Berliner Straße 5, 60306 Frankfurt am Main",
            "12 bis rue de la Paix, 75002 Paris",
            "Keizersgracht 123-II, 1015 CJ Amsterdam",
            "Calle de Alcalá, 45, 2º izda., 28014 Madrid",
            "Via Giuseppe Garibaldi 10/A, 20121 Milano",
            "Unit 5, 120 George St, Sydney NSW 2000",
            "5/120 Collins Street, Melbourne VIC 3000",
            "400 Bay Street, Suite 200, Toronto, ON M5H 2Y4",
            "Flat 302, Sunrise Apartments, MG Road, Indiranagar, Bengaluru 560001",
            "12 MG Road, Bengaluru 560001",
            "8510 Ortiz Mountains Suite 919\nSouth Jamesmouth, OR 01919",
            "PSC 1234, Box 5678\nAPO AE 12345",
        ] {
            let t = format!("Send it to {a}. Thanks");
            assert_eq!(find(&t), [a], "{a}");
        }
        assert!(find("We hired 12 Senior Engineers and 3 people in 2024.").is_empty());
        // A lone lot number before the street, escaped line breaks and a country with its postcode.
        assert_eq!(
            find("Helena Carlsen\\n\\n637 Strojírenská 1006\\n Suite 026\\n Svratka\\n Czech Republic 45098"),
            ["637 Strojírenská 1006\\n Suite 026\\n Svratka\\n Czech Republic 45098"]
        );
        assert_eq!(find("Csanád gave his address: 083 254 Damvergi Street, Nicosia"), ["083 254 Damvergi Street"]);
        assert_eq!(find("The restaurant is at 89611 P.O. Box 52"), ["89611 P.O. Box 52"]);
        assert_eq!(find("He lives on Letališka 103 street."), ["Letališka 103"]);
    }
}
