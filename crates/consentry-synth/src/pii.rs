//! Generators for realistic PII values (emails, phones, URLs, IPs, cards, IBANs,
//! SSNs, postal addresses, person names) plus validators for the checksummed ones.
//!
//! Every generator is a pure function of the supplied RNG, so the synthetic
//! network is reproducible from its seed. Values are written the way people
//! actually type them (mixed national/international phone formats, grouped or
//! compact card numbers, ...), because detectors must cope with that variety.

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::names;

/// Picks one element of a slice; returns `T::default()` for an empty slice so callers cannot panic.
pub(crate) fn pick<T: Copy + Default, R: Rng + ?Sized>(rng: &mut R, items: &[T]) -> T {
    items.choose(rng).copied().unwrap_or_default()
}

/// Picks an index with probability proportional to `weights` (0 when all weights are zero).
pub(crate) fn weighted<R: Rng + ?Sized>(rng: &mut R, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    if total == 0 {
        return 0;
    }
    let mut x = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

/// `n` random decimal digits.
fn digits<R: Rng + ?Sized>(rng: &mut R, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

/// `n` random lowercase hexadecimal digits.
fn hex<R: Rng + ?Sized>(rng: &mut R, n: usize) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    (0..n).map(|_| char::from(pick(rng, HEX))).collect()
}

/// `n` random characters from `alphabet` (ASCII only).
fn from_alphabet<R: Rng + ?Sized>(rng: &mut R, alphabet: &[u8], n: usize) -> String {
    (0..n).map(|_| char::from(pick(rng, alphabet))).collect()
}

/// Lowercase ASCII transliteration of a name, dropping anything that cannot appear in an email local part or host name.
///
/// Exists because people with accented names still use ASCII addresses
/// (`José Müller` → `josemuller`). Returns only `[a-z0-9]`.
pub fn ascii_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let mapped: &str = match c {
            'a'..='z' | '0'..='9' => {
                out.push(c);
                continue;
            }
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ầ' | 'ấ' | 'ạ' | 'ả' => "a",
            'æ' => "ae",
            'ç' | 'ć' | 'č' | 'ĉ' => "c",
            'ď' | 'đ' | 'ð' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' | 'ễ' | 'ề' | 'ế' | 'ệ' => "e",
            'ğ' => "g",
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' | 'į' => "i",
            'ł' | 'ľ' | 'ĺ' => "l",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' | 'ồ' | 'ố' | 'ơ' => "o",
            'œ' => "oe",
            'ř' | 'ŕ' => "r",
            'ß' => "ss",
            'ś' | 'š' | 'ş' | 'ș' => "s",
            'ť' | 'ţ' | 'ț' => "t",
            'þ' => "th",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' | 'ư' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            _ => "",
        };
        out.push_str(mapped);
    }
    out
}

/// Host-name style slug of a company name (`"Lumen & Finch"` → `"lumen-finch"` or `"lumenfinch"`).
fn company_slug(company: &str, hyphen: bool) -> String {
    let words: Vec<String> = company.split_whitespace().map(ascii_fold).filter(|w| !w.is_empty()).collect();
    let slug = words.join(if hyphen { "-" } else { "" });
    if slug.is_empty() { "example".to_owned() } else { slug }
}

/// Folded name parts with non-empty fallbacks (names in non-Latin scripts fold to nothing).
fn folded_parts(given: &str, surname: &str) -> (String, String) {
    let mut f = ascii_fold(given);
    let mut l = ascii_fold(surname);
    if f.is_empty() {
        f = "alex".to_owned();
    }
    if l.is_empty() {
        l = "lee".to_owned();
    }
    (f, l)
}

fn first_char(s: &str) -> &str {
    s.get(..1).unwrap_or("x")
}

/// Random `(given, surname)` pair from [`names`], so callers can invent people who are not members.
pub fn person_name<R: Rng + ?Sized>(rng: &mut R) -> (String, String) {
    (pick(rng, names::GIVEN_NAMES).to_owned(), pick(rng, names::SURNAMES).to_owned())
}

const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "icloud.com",
    "web.de",
    "gmx.de",
    "gmx.net",
    "orange.fr",
    "libero.it",
    "proton.me",
    "protonmail.com",
    "fastmail.com",
    "hotmail.co.uk",
    "outlook.de",
    "live.com",
    "yahoo.fr",
    "uol.com.br",
    "rediffmail.com",
];

const OTHER_MAIL: &[&str] =
    &["mail.example.org", "example.com", "posteo.de", "alumni.example.edu", "cs.uni-example.de", "mailbox.org"];

const COMPANY_TLDS: &[&str] = &["com", "com", "io", "co", "de", "co.uk", "net", "ai", "tech"];

/// A company-style domain such as `acme-corp.io`.
fn company_domain<R: Rng + ?Sized>(rng: &mut R) -> String {
    let company = pick(rng, names::COMPANIES);
    let hyphen = rng.random_bool(0.6);
    format!("{}.{}", company_slug(company, hyphen), pick(rng, COMPANY_TLDS))
}

/// Email address for a person, with varied local-part patterns, providers and occasional plus-addressing.
pub fn email<R: Rng + ?Sized>(rng: &mut R, given: &str, surname: &str) -> String {
    let (f, l) = folded_parts(given, surname);
    let fi = first_char(&f);
    let li = first_char(&l);
    let local = match weighted(rng, &[26, 12, 8, 8, 10, 5, 5, 6, 6, 4]) {
        0 => format!("{f}.{l}"),
        1 => format!("{fi}{l}"),
        2 => format!("{f}_{l}{}", rng.random_range(1..100)),
        3 => f.clone(),
        4 => format!("{f}{l}"),
        5 => format!("{l}.{f}"),
        6 => format!("{f}.{li}"),
        7 => format!("{f}{}", rng.random_range(70..100)),
        8 => format!("{fi}.{l}"),
        _ => format!("{f}-{l}"),
    };
    let local = if rng.random_bool(0.07) {
        let tag = pick(rng, &["jobs", "linkedin", "work", "news", "recruiting", "cv"]);
        format!("{local}+{tag}")
    } else {
        local
    };
    let domain = match weighted(rng, &[62, 30, 8]) {
        0 => pick(rng, FREE_MAIL).to_owned(),
        1 => company_domain(rng),
        _ => pick(rng, OTHER_MAIL).to_owned(),
    };
    format!("{local}@{domain}")
}

/// Parts of a phone number, shared by the national and international renderings.
struct Ph {
    /// Country calling code without `+`.
    cc: &'static str,
    /// National trunk prefix dropped in international form (`"0"` or `""`).
    trunk: &'static str,
    /// Area or mobile prefix (without trunk).
    area: String,
    /// Remaining subscriber digit groups.
    rest: Vec<String>,
}

impl Ph {
    fn national(&self, sep: &str) -> String {
        let mut s = format!("{}{}", self.trunk, self.area);
        for g in &self.rest {
            s.push_str(sep);
            s.push_str(g);
        }
        s
    }

    fn intl(&self, sep: &str) -> String {
        let mut s = format!("+{}{sep}{}", self.cc, self.area);
        for g in &self.rest {
            s.push_str(sep);
            s.push_str(g);
        }
        s
    }

    /// `+44 (0)20 7946 0958` style, common in European business signatures.
    fn intl_paren_trunk(&self) -> String {
        let mut s = format!("+{} ({}){}", self.cc, self.trunk, self.area);
        for g in &self.rest {
            s.push(' ');
            s.push_str(g);
        }
        s
    }

    fn e164(&self) -> String {
        let mut s = format!("+{}{}", self.cc, self.area);
        for g in &self.rest {
            s.push_str(g);
        }
        s
    }

    fn rest_joined(&self) -> String {
        self.rest.concat()
    }
}

/// Countries for which [`phone`] knows national numbering conventions.
pub const PHONE_COUNTRIES: &[&str] =
    &["US", "CA", "GB", "DE", "FR", "IN", "NL", "ES", "IT", "BR", "JP", "AU", "SG", "IE", "CH"];

/// Builds the number parts for a supported country; `mobile` selects mobile vs landline plans.
fn phone_parts<R: Rng + ?Sized>(rng: &mut R, country: &str, mobile: bool) -> Option<Ph> {
    let ph = match country {
        "US" | "CA" => {
            let areas: &[&str] = if country == "US" {
                &[
                    "415", "212", "646", "312", "617", "206", "512", "303", "404", "305", "213", "310", "702", "202",
                    "470", "214", "615", "503", "919", "858",
                ]
            } else {
                &["416", "647", "604", "778", "514", "403", "613", "902", "587"]
            };
            Ph {
                cc: "1",
                trunk: "",
                area: pick(rng, areas).to_owned(),
                rest: vec![format!("{}{}", rng.random_range(2..10), digits(rng, 2)), digits(rng, 4)],
            }
        }
        "GB" => {
            if mobile {
                Ph {
                    cc: "44",
                    trunk: "0",
                    area: format!("7{}{}", rng.random_range(4..10), digits(rng, 2)),
                    rest: vec![digits(rng, 6)],
                }
            } else if rng.random_bool(0.5) {
                Ph {
                    cc: "44",
                    trunk: "0",
                    area: "20".to_owned(),
                    rest: vec![format!("{}{}", pick(rng, &["7", "8", "3"]), digits(rng, 3)), digits(rng, 4)],
                }
            } else {
                Ph {
                    cc: "44",
                    trunk: "0",
                    area: pick(rng, &["161", "121", "131", "141", "113", "117", "114"]).to_owned(),
                    rest: vec![format!("{}{}", rng.random_range(2..9), digits(rng, 2)), digits(rng, 4)],
                }
            }
        }
        "DE" => {
            if mobile {
                let area = pick(
                    rng,
                    &[
                        "151", "152", "157", "159", "160", "162", "163", "170", "171", "172", "173", "174", "175",
                        "176", "177", "178", "179",
                    ],
                );
                let len = if area.starts_with("15") { 8 } else { 7 + rng.random_range(0..2) };
                Ph {
                    cc: "49",
                    trunk: "0",
                    area: area.to_owned(),
                    rest: vec![format!("{}{}", rng.random_range(1..10), digits(rng, len - 1))],
                }
            } else {
                let (area, len) = pick(
                    rng,
                    &[("30", 8), ("40", 8), ("89", 8), ("69", 8), ("221", 7), ("211", 7), ("711", 7), ("341", 7)],
                );
                Ph {
                    cc: "49",
                    trunk: "0",
                    area: area.to_owned(),
                    rest: vec![format!("{}{}", rng.random_range(2..10), digits(rng, len - 1))],
                }
            }
        }
        "FR" => Ph {
            cc: "33",
            trunk: "0",
            area: if mobile { pick(rng, &["6", "7"]).to_owned() } else { rng.random_range(1..6).to_string() },
            rest: (0..4).map(|_| digits(rng, 2)).collect(),
        },
        "IN" => {
            if mobile {
                Ph {
                    cc: "91",
                    trunk: "0",
                    area: format!("{}{}", rng.random_range(6..10), digits(rng, 4)),
                    rest: vec![digits(rng, 5)],
                }
            } else {
                Ph {
                    cc: "91",
                    trunk: "0",
                    area: pick(rng, &["11", "22", "80", "44", "33", "40"]).to_owned(),
                    rest: vec![format!("{}{}", rng.random_range(2..7), digits(rng, 3)), digits(rng, 4)],
                }
            }
        }
        "NL" => {
            if mobile {
                Ph {
                    cc: "31",
                    trunk: "0",
                    area: "6".to_owned(),
                    rest: vec![format!("{}{}", rng.random_range(1..7), digits(rng, 7))],
                }
            } else {
                Ph {
                    cc: "31",
                    trunk: "0",
                    area: pick(rng, &["20", "10", "30", "70", "40", "50"]).to_owned(),
                    rest: vec![format!("{}{}", rng.random_range(2..9), digits(rng, 2)), digits(rng, 4)],
                }
            }
        }
        "ES" => {
            let first = if mobile {
                format!("{}{}", pick(rng, &["6", "7"]), digits(rng, 2))
            } else {
                format!("{}{}", pick(rng, &["91", "93", "96", "95", "94"]), digits(rng, 1))
            };
            Ph { cc: "34", trunk: "", area: first, rest: vec![digits(rng, 3), digits(rng, 3)] }
        }
        "IT" => {
            if mobile {
                Ph {
                    cc: "39",
                    trunk: "",
                    area: format!("3{}{}", rng.random_range(2..10), digits(rng, 1)),
                    rest: vec![digits(rng, 3), digits(rng, 4)],
                }
            } else {
                Ph {
                    cc: "39",
                    trunk: "",
                    area: pick(rng, &["02", "06", "011", "055", "051", "081"]).to_owned(),
                    rest: vec![digits(rng, 4), digits(rng, 4)],
                }
            }
        }
        "BR" => {
            let ddd = pick(rng, &["11", "21", "31", "41", "51", "61", "71", "81", "85", "19"]);
            let first = if mobile {
                format!("9{}{}", rng.random_range(1..10), digits(rng, 3))
            } else {
                format!("{}{}", rng.random_range(2..6), digits(rng, 3))
            };
            Ph { cc: "55", trunk: "0", area: ddd.to_owned(), rest: vec![first, digits(rng, 4)] }
        }
        "JP" => {
            if mobile {
                Ph {
                    cc: "81",
                    trunk: "0",
                    area: pick(rng, &["90", "80", "70"]).to_owned(),
                    rest: vec![digits(rng, 4), digits(rng, 4)],
                }
            } else if rng.random_bool(0.7) {
                Ph {
                    cc: "81",
                    trunk: "0",
                    area: pick(rng, &["3", "6"]).to_owned(),
                    rest: vec![digits(rng, 4), digits(rng, 4)],
                }
            } else {
                Ph {
                    cc: "81",
                    trunk: "0",
                    area: pick(rng, &["45", "52", "92", "75", "11"]).to_owned(),
                    rest: vec![digits(rng, 3), digits(rng, 4)],
                }
            }
        }
        "AU" => {
            if mobile {
                Ph {
                    cc: "61",
                    trunk: "0",
                    area: format!("4{}", digits(rng, 2)),
                    rest: vec![digits(rng, 3), digits(rng, 3)],
                }
            } else {
                Ph {
                    cc: "61",
                    trunk: "0",
                    area: pick(rng, &["2", "3", "7", "8"]).to_owned(),
                    rest: vec![format!("{}{}", rng.random_range(3..10), digits(rng, 3)), digits(rng, 4)],
                }
            }
        }
        "SG" => Ph {
            cc: "65",
            trunk: "",
            area: format!("{}{}", if mobile { pick(rng, &["8", "9"]) } else { "6" }, digits(rng, 3)),
            rest: vec![digits(rng, 4)],
        },
        "IE" => {
            if mobile {
                Ph {
                    cc: "353",
                    trunk: "0",
                    area: pick(rng, &["83", "85", "86", "87", "89"]).to_owned(),
                    rest: vec![format!("{}{}", rng.random_range(1..10), digits(rng, 2)), digits(rng, 4)],
                }
            } else {
                Ph {
                    cc: "353",
                    trunk: "0",
                    area: pick(rng, &["1", "21", "61", "91"]).to_owned(),
                    rest: vec![format!("{}{}", rng.random_range(2..10), digits(rng, 2)), digits(rng, 4)],
                }
            }
        }
        "CH" => Ph {
            cc: "41",
            trunk: "0",
            area: if mobile {
                pick(rng, &["76", "77", "78", "79"]).to_owned()
            } else {
                pick(rng, &["44", "22", "31", "61", "41", "21"]).to_owned()
            },
            rest: vec![format!("{}{}", rng.random_range(2..10), digits(rng, 2)), digits(rng, 2), digits(rng, 2)],
        },
        _ => return None,
    };
    Some(ph)
}

/// Phone number in one of the formats people in `country` (ISO 3166-1 alpha-2) actually write.
///
/// National and international forms are mixed. Unsupported countries get an
/// E.164 number (`+4915123456789`) of a randomly chosen supported country.
pub fn phone<R: Rng + ?Sized>(rng: &mut R, country: &str) -> String {
    let cc = country.trim().to_ascii_uppercase();
    let cc = match cc.as_str() {
        "UK" => "GB".to_owned(),
        _ => cc,
    };
    let mobile = rng.random_bool(0.6);
    let Some(ph) = phone_parts(rng, &cc, mobile) else {
        let other = pick(rng, PHONE_COUNTRIES);
        return match phone_parts(rng, other, mobile) {
            Some(ph) => ph.e164(),
            None => format!("+1415{}", digits(rng, 7)),
        };
    };
    let a = ph.area.clone();
    let r0 = ph.rest.first().cloned().unwrap_or_default();
    let r1 = ph.rest.get(1).cloned().unwrap_or_default();
    match cc.as_str() {
        "US" | "CA" => match weighted(rng, &[22, 20, 14, 4, 10, 8, 6, 5, 3]) {
            0 => format!("({a}) {r0}-{r1}"),
            1 => format!("{a}-{r0}-{r1}"),
            2 => ph.intl(" "),
            3 => format!("+1-{a}-{r0}-{r1} ext. {}", rng.random_range(100..1000)),
            4 => format!("{a}.{r0}.{r1}"),
            5 => format!("+1 ({a}) {r0}-{r1}"),
            6 => format!("1-{a}-{r0}-{r1}"),
            7 => ph.e164(),
            _ => format!("({a}) {r0}-{r1} x{}", rng.random_range(10..1000)),
        },
        "GB" => match weighted(rng, &[40, 35, 15, 10]) {
            0 => ph.national(" "),
            1 => ph.intl(" "),
            2 => ph.intl_paren_trunk(),
            _ => ph.e164(),
        },
        "DE" => match weighted(rng, &[30, 30, 18, 12, 6, 4]) {
            0 => ph.national(" "),
            1 => ph.intl(" "),
            2 => ph.national("/"),
            3 => ph.intl_paren_trunk(),
            4 => ph.e164(),
            _ => format!("0{a}-{}", ph.rest_joined()),
        },
        "FR" => match weighted(rng, &[40, 30, 12, 8, 5, 5]) {
            0 => ph.national(" "),
            1 => ph.intl(" "),
            2 => ph.national("."),
            3 => ph.intl_paren_trunk(),
            4 => ph.national(""),
            _ => ph.e164(),
        },
        "IN" => {
            if mobile {
                match weighted(rng, &[35, 15, 15, 20, 15]) {
                    0 => ph.intl(" "),
                    1 => ph.national(" "),
                    2 => format!("+91-{a}{r0}"),
                    3 => format!("{a}{r0}"),
                    _ => format!("+91 {a}{r0}"),
                }
            } else {
                match weighted(rng, &[40, 40, 20]) {
                    0 => ph.intl(" "),
                    1 => ph.national(" "),
                    _ => ph.national("-"),
                }
            }
        }
        "NL" => {
            if mobile {
                let tail = ph.rest_joined();
                match weighted(rng, &[30, 20, 25, 15, 10]) {
                    0 => format!("06 {tail}"),
                    1 => format!("06-{tail}"),
                    2 => format!("+31 6 {tail}"),
                    3 => format!("+31 (0)6 {} {}", &tail[..4], &tail[4..]),
                    _ => ph.e164(),
                }
            } else {
                match weighted(rng, &[40, 35, 25]) {
                    0 => ph.national(" "),
                    1 => ph.intl(" "),
                    _ => format!("0{a}-{}", ph.rest_joined()),
                }
            }
        }
        "ES" => {
            let all = format!("{a}{}", ph.rest_joined());
            let pairs = format!("{} {} {} {}", &all[..3], &all[3..5], &all[5..7], &all[7..]);
            match weighted(rng, &[30, 25, 20, 15, 10]) {
                0 => ph.national(" "),
                1 => format!("+34 {pairs}"),
                2 => pairs,
                3 => ph.intl(" "),
                _ => format!("+34{all}"),
            }
        }
        "IT" => match weighted(rng, &[35, 35, 15, 15]) {
            0 => ph.intl(" "),
            1 => ph.national(" "),
            2 => format!("{a} {}", ph.rest_joined()),
            _ => ph.e164(),
        },
        "BR" => match weighted(rng, &[35, 35, 15, 10, 5]) {
            0 => format!("+55 {a} {r0}-{r1}"),
            1 => format!("({a}) {r0}-{r1}"),
            2 => format!("+55 ({a}) {r0}-{r1}"),
            3 => format!("{a} {r0}-{r1}"),
            _ => format!("({a}) {r0}{r1}"),
        },
        "JP" => match weighted(rng, &[35, 40, 10, 10, 5]) {
            0 => ph.intl("-").replacen('-', " ", 1),
            1 => ph.national("-"),
            2 => ph.national(" "),
            3 => format!("(0{a}) {r0}-{r1}"),
            _ => ph.e164(),
        },
        "AU" => {
            if mobile {
                match weighted(rng, &[45, 35, 20]) {
                    0 => format!("0{a} {r0} {r1}"),
                    1 => ph.intl(" "),
                    _ => ph.national(""),
                }
            } else {
                match weighted(rng, &[35, 30, 35]) {
                    0 => format!("(0{a}) {r0} {r1}"),
                    1 => ph.national(" "),
                    _ => ph.intl(" "),
                }
            }
        }
        "SG" => match weighted(rng, &[45, 25, 20, 10]) {
            0 => ph.intl(" "),
            1 => format!("{a} {r0}"),
            2 => ph.e164(),
            _ => format!("(+65) {a} {r0}"),
        },
        "IE" => match weighted(rng, &[35, 35, 15, 15]) {
            0 => ph.national(" "),
            1 => ph.intl(" "),
            2 => ph.intl_paren_trunk(),
            _ => ph.national(""),
        },
        "CH" => match weighted(rng, &[35, 40, 15, 10]) {
            0 => ph.national(" "),
            1 => ph.intl(" "),
            2 => ph.intl_paren_trunk(),
            _ => ph.e164(),
        },
        _ => ph.e164(),
    }
}

const ARTICLE_SLUGS: &[&str] = &[
    "lessons-from-scaling-our-data-team",
    "why-we-rewrote-our-billing-system",
    "what-i-learned-in-my-first-year-as-a-manager",
    "hiring-without-whiteboards",
    "remote-work-two-years-later",
    "a-practical-guide-to-feature-flags",
    "notes-from-the-conference",
    "how-we-cut-cloud-costs-by-40-percent",
];

/// URL a person might paste into a message: profile, code host, personal site, careers page, scheduling link, shared doc.
pub fn url<R: Rng + ?Sized>(rng: &mut R, given: &str, surname: &str) -> String {
    let (f, l) = folded_parts(given, surname);
    let fi = first_char(&f);
    match weighted(rng, &[30, 12, 15, 12, 6, 5, 5, 5, 3, 4, 3]) {
        0 => {
            let n = rng.random_range(5..=9);
            let suffix = hex(rng, n);
            match weighted(rng, &[45, 20, 20, 15]) {
                0 => format!("https://www.linkedin.com/in/{f}-{l}-{suffix}"),
                1 => format!("linkedin.com/in/{f}{l}"),
                2 => format!("https://linkedin.com/in/{f}-{l}/"),
                _ => format!("www.linkedin.com/in/{fi}{l}{}", rng.random_range(1..100)),
            }
        }
        1 => match weighted(rng, &[40, 35, 25]) {
            0 => format!("github.com/{f}{l}"),
            1 => format!("https://github.com/{fi}{l}"),
            _ => format!("https://github.com/{f}-{l}"),
        },
        2 => match weighted(rng, &[20, 20, 25, 15, 10, 10]) {
            0 => format!("http://{f}{l}.dev/portfolio"),
            1 => format!("https://www.{f}{l}.com"),
            2 => format!("{f}{l}.me"),
            3 => format!("https://{f}-{l}.netlify.app"),
            4 => format!("{f}{l}.io/blog"),
            _ => format!("https://{f}.{l}.name/cv.pdf"),
        },
        3 => {
            let domain = company_domain(rng);
            let id = rng.random_range(100..100_000);
            match weighted(rng, &[35, 35, 30]) {
                0 => format!("www.{domain}/careers?id={id}"),
                1 => format!("https://{domain}/jobs/{id}"),
                _ => format!("https://careers.{domain}/job/{id}-{}", pick(rng, ARTICLE_SLUGS)),
            }
        }
        4 => match weighted(rng, &[60, 40]) {
            0 => format!("https://calendly.com/{f}-{l}/30min"),
            _ => format!("calendly.com/{f}{l}"),
        },
        5 => {
            let id = from_alphabet(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", 33);
            match weighted(rng, &[50, 50]) {
                0 => format!("https://docs.google.com/document/d/1{id}/edit"),
                _ => format!("https://drive.google.com/file/d/1{id}/view?usp=sharing"),
            }
        }
        6 => match weighted(rng, &[50, 50]) {
            0 => format!("https://medium.com/@{f}{l}/{}-{}", pick(rng, ARTICLE_SLUGS), hex(rng, 12)),
            _ => format!("https://{f}{l}.substack.com/p/{}", pick(rng, ARTICLE_SLUGS)),
        },
        7 => match weighted(rng, &[50, 50]) {
            0 => format!("https://x.com/{f}_{l}"),
            _ => format!("twitter.com/{f}{l}"),
        },
        8 => match weighted(rng, &[50, 50]) {
            0 => format!("https://www.behance.net/{f}{l}"),
            _ => format!("dribbble.com/{f}{l}"),
        },
        9 => match weighted(rng, &[55, 45]) {
            0 => format!("https://zoom.us/j/{}{}", rng.random_range(1..10), digits(rng, 9)),
            _ => {
                const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
                format!(
                    "https://meet.google.com/{}-{}-{}",
                    from_alphabet(rng, LOWER, 3),
                    from_alphabet(rng, LOWER, 4),
                    from_alphabet(rng, LOWER, 3)
                )
            }
        },
        _ => format!(
            "https://bit.ly/{}",
            from_alphabet(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 7)
        ),
    }
}

/// IPv4 address in dotted-quad form, mixing private ranges (as pasted from configs) and public addresses.
pub fn ipv4<R: Rng + ?Sized>(rng: &mut R) -> String {
    let o = |rng: &mut R| rng.random_range(0..=255u8);
    match weighted(rng, &[20, 12, 8, 60]) {
        0 => format!("192.168.{}.{}", o(rng), rng.random_range(1..=254u8)),
        1 => format!("10.{}.{}.{}", o(rng), o(rng), rng.random_range(1..=254u8)),
        2 => format!("172.{}.{}.{}", rng.random_range(16..=31u8), o(rng), rng.random_range(1..=254u8)),
        _ => {
            let mut first = rng.random_range(1..=223u8);
            if first == 10 || first == 127 {
                first += 1;
            }
            format!("{first}.{}.{}.{}", o(rng), o(rng), rng.random_range(1..=254u8))
        }
    }
}

/// IPv6 address in lowercase hex, either with all eight groups or RFC 5952 `::`-compressed.
pub fn ipv6<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut g = [0u16; 8];
    for v in g.iter_mut() {
        *v = rng.random();
    }
    match weighted(rng, &[15, 20, 35, 15, 15]) {
        0 => {
            // Link-local: fe80::/64 with a random interface id.
            g[0] = 0xfe80;
            g[1] = 0;
            g[2] = 0;
            g[3] = 0;
        }
        1 => {
            g[0] = 0x2001;
            g[1] = 0x0db8;
        }
        2 => g[0] = rng.random_range(0x2001..0x2c00),
        3 => g[0] = 0xfd00 | rng.random_range(0..0x100),
        _ => {
            // Server-style address: provider prefix, zeros, small host id.
            g[0] = rng.random_range(0x2001..0x2c00);
            for v in g.iter_mut().skip(3).take(4) {
                *v = 0;
            }
            g[7] = rng.random_range(1..0x100);
        }
    }
    if rng.random_bool(0.35) {
        let start = rng.random_range(2..7);
        let len = rng.random_range(1..=(8 - start).min(4));
        for v in g.iter_mut().skip(start).take(len) {
            *v = 0;
        }
    }
    match weighted(rng, &[60, 25, 15]) {
        0 => std::net::Ipv6Addr::from(g).to_string(),
        1 => g.iter().map(|v| format!("{v:x}")).collect::<Vec<_>>().join(":"),
        _ => g.iter().map(|v| format!("{v:04x}")).collect::<Vec<_>>().join(":"),
    }
}

/// Luhn check digit for a payload of decimal digit values (each 0..=9).
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let mut sum = 0u32;
    for (i, &d) in payload.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    // `sum % 10` is < 10, so the result is a single digit.
    ((10 - sum % 10) % 10) as u8
}

/// True when `digits` (spaces and dashes ignored) is at least two decimal digits passing the Luhn checksum.
///
/// Exists so tests and detectors can confirm a card number is structurally valid.
pub fn luhn_valid(digits: &str) -> bool {
    let mut vals = Vec::with_capacity(digits.len());
    for c in digits.chars() {
        match c {
            ' ' | '-' => {}
            _ => match c.to_digit(10) {
                Some(d) => vals.push(d),
                None => return false,
            },
        }
    }
    if vals.len() < 2 {
        return false;
    }
    let sum: u32 = vals
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let v = d * 2;
                if v > 9 { v - 9 } else { v }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Group sizes used when printing a card number of the given length.
fn card_groups(len: usize) -> &'static [usize] {
    match len {
        15 => &[4, 6, 5],
        17 => &[4, 4, 4, 5],
        18 => &[4, 4, 4, 6],
        19 => &[4, 4, 4, 4, 3],
        _ => &[4, 4, 4, 4],
    }
}

/// Luhn-valid payment card number of a random scheme (Visa, Mastercard, Amex, Discover, JCB, UnionPay, Maestro), compact or grouped.
pub fn credit_card<R: Rng + ?Sized>(rng: &mut R) -> String {
    let (prefix, len): (String, usize) = match weighted(rng, &[35, 3, 20, 6, 12, 8, 5, 6, 5]) {
        0 => ("4".to_owned(), 16),
        1 => ("4".to_owned(), 19),
        2 => (rng.random_range(51..=55u32).to_string(), 16),
        3 => (rng.random_range(2221..=2720u32).to_string(), 16),
        4 => (pick(rng, &["34", "37"]).to_owned(), 15),
        5 => (pick(rng, &["6011", "65", "644", "649"]).to_owned(), 16),
        6 => (rng.random_range(3528..=3589u32).to_string(), 16),
        7 => ("62".to_owned(), rng.random_range(16..=19)),
        _ => (pick(rng, &["5018", "5020", "5038", "6304", "6759", "6761", "6763"]).to_owned(), 19),
    };
    let mut vals: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    while vals.len() + 1 < len {
        vals.push(rng.random_range(0..10));
    }
    let check = luhn_check_digit(&vals);
    vals.push(check);
    let number: String = vals.iter().map(|&d| char::from(b'0' + d)).collect();
    let sep = match weighted(rng, &[40, 45, 15]) {
        0 => return number,
        1 => " ",
        _ => "-",
    };
    let mut out = String::with_capacity(number.len() + 4);
    let mut pos = 0;
    for &g in card_groups(len) {
        let end = (pos + g).min(number.len());
        if pos >= end {
            break;
        }
        if pos > 0 {
            out.push_str(sep);
        }
        out.push_str(&number[pos..end]);
        pos = end;
    }
    if pos < number.len() {
        out.push_str(sep);
        out.push_str(&number[pos..]);
    }
    out
}

/// One BBAN field: `n` digits, `a` uppercase letters, or `b` a 4-letter bank code from the country's list.
#[derive(Clone, Copy)]
enum Field {
    Digits(usize),
    Letters(usize),
    Bank,
}

/// IBAN country layouts: (country, total length, BBAN fields, bank codes).
const IBAN_SPECS: &[(&str, usize, &[Field], &[&str])] = &[
    ("DE", 22, &[Field::Digits(18)], &[]),
    (
        "GB",
        22,
        &[Field::Bank, Field::Digits(14)],
        &["NWBK", "BARC", "HBUK", "LOYD", "MIDL", "NAIA", "MONZ", "SRLG", "REVO"],
    ),
    ("FR", 27, &[Field::Digits(23)], &[]),
    ("NL", 18, &[Field::Bank, Field::Digits(10)], &["ABNA", "INGB", "RABO", "SNSB", "TRIO", "KNAB", "BUNQ", "ASNB"]),
    ("ES", 24, &[Field::Digits(20)], &[]),
    ("IT", 27, &[Field::Letters(1), Field::Digits(22)], &[]),
    ("BE", 16, &[Field::Digits(12)], &[]),
    ("CH", 21, &[Field::Digits(17)], &[]),
    ("IE", 22, &[Field::Bank, Field::Digits(14)], &["AIBK", "BOFI", "IPBS", "ULSB"]),
    ("PL", 28, &[Field::Digits(24)], &[]),
    ("AT", 20, &[Field::Digits(16)], &[]),
    ("SE", 24, &[Field::Digits(20)], &[]),
    ("PT", 25, &[Field::Digits(21)], &[]),
    ("DK", 18, &[Field::Digits(14)], &[]),
    ("NO", 15, &[Field::Digits(11)], &[]),
    ("FI", 18, &[Field::Digits(14)], &[]),
    ("LU", 20, &[Field::Digits(16)], &[]),
];

/// Remainder mod 97 of the IBAN numeric expansion (letters A=10 … Z=35); `None` on other characters.
fn mod97(chars: impl Iterator<Item = char>) -> Option<u32> {
    let mut r: u32 = 0;
    for c in chars {
        match c {
            '0'..='9' => r = (r * 10 + (c as u32 - '0' as u32)) % 97,
            'A'..='Z' => r = (r * 100 + (c as u32 - 'A' as u32 + 10)) % 97,
            _ => return None,
        }
    }
    Some(r)
}

/// IBAN with correct per-country length and mod-97 check digits, printed compact or in space-separated groups of four.
pub fn iban<R: Rng + ?Sized>(rng: &mut R) -> String {
    let weights: Vec<u32> = IBAN_SPECS
        .iter()
        .map(|(cc, ..)| match *cc {
            "DE" | "GB" | "FR" | "NL" | "ES" | "IT" => 12,
            "PT" | "DK" | "NO" | "FI" | "LU" => 2,
            _ => 5,
        })
        .collect();
    let Some(&(cc, _, fields, banks)) = IBAN_SPECS.get(weighted(rng, &weights)) else {
        return String::new();
    };
    let mut bban = String::new();
    for field in fields {
        match *field {
            Field::Digits(n) => bban.push_str(&digits(rng, n)),
            Field::Letters(n) => bban.push_str(&from_alphabet(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", n)),
            Field::Bank => {
                let bank = pick(rng, banks);
                if bank.is_empty() {
                    bban.push_str(&from_alphabet(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4));
                } else {
                    bban.push_str(bank);
                }
            }
        }
    }
    let rem = mod97(bban.chars().chain(cc.chars()).chain("00".chars())).unwrap_or(0);
    let compact = format!("{cc}{:02}{bban}", 98 - rem);
    if rng.random_bool(0.45) {
        return compact;
    }
    let mut out = String::with_capacity(compact.len() + compact.len() / 4);
    for (i, c) in compact.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// True when `s` (spaces ignored) is an IBAN with valid mod-97 check digits and, for known countries, the right length.
pub fn iban_valid(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| *c != ' ').map(|c| c.to_ascii_uppercase()).collect();
    if !(15..=34).contains(&compact.len()) || !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, bban) = compact.split_at(4);
    let (cc, check) = head.split_at(2);
    if !cc.chars().all(|c| c.is_ascii_uppercase()) || !check.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let known_len = IBAN_SPECS.iter().find(|(c, ..)| *c == cc).map(|(_, len, ..)| *len);
    if known_len.is_some_and(|len| len != compact.len()) {
        return false;
    }
    mod97(bban.chars().chain(head.chars())) == Some(1)
}

/// US Social Security number in the issuable ranges (area 001–899 except 666, group 01–99, serial 0001–9999).
pub fn ssn<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut area = rng.random_range(1..=898u32);
    if area >= 666 {
        area += 1;
    }
    let group = rng.random_range(1..=99u32);
    let serial = rng.random_range(1..=9999u32);
    if rng.random_bool(0.85) {
        format!("{area:03}-{group:02}-{serial:04}")
    } else {
        format!("{area:03} {group:02} {serial:04}")
    }
}

/// True when `s` is `AAA-GG-SSSS`, `AAA GG SSSS` or nine bare digits with all parts in the issuable ranges.
pub fn ssn_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let digits: String = match b.len() {
        11 => {
            let sep = b[3];
            if (sep != b'-' && sep != b' ') || b[6] != sep {
                return false;
            }
            match (s.get(..3), s.get(4..6), s.get(7..)) {
                (Some(a), Some(g), Some(n)) => format!("{a}{g}{n}"),
                _ => return false,
            }
        }
        9 => s.to_owned(),
        _ => return false,
    };
    if digits.len() != 9 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|p| p.parse::<u32>().ok());
    match (num(0..3), num(3..5), num(5..9)) {
        (Some(area), Some(group), Some(serial)) => {
            (1..=899).contains(&area) && area != 666 && group >= 1 && serial >= 1
        }
        _ => false,
    }
}

/// Countries for which [`address`] knows local conventions.
pub const ADDRESS_COUNTRIES: &[&str] = &["US", "GB", "DE", "FR", "NL", "ES", "IT", "IN", "AU", "CA"];

const US_STREETS: &[&str] = &[
    "Maple",
    "Oak",
    "Pine",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Main",
    "2nd",
    "3rd",
    "Sunset",
    "Highland",
    "Madison",
    "Jefferson",
    "Lincoln",
    "Church",
    "Willow",
    "River",
    "Spring",
    "Mill",
    "Chestnut",
    "Walnut",
    "Franklin",
    "Ridge",
];
const US_TYPES: &[&str] = &[
    "Avenue",
    "Ave",
    "Ave.",
    "Street",
    "St",
    "St.",
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
];
const US_CITIES: &[(&str, &str, &str)] = &[
    ("Springfield", "IL", "627"),
    ("Austin", "TX", "787"),
    ("Portland", "OR", "972"),
    ("Denver", "CO", "802"),
    ("Seattle", "WA", "981"),
    ("Boston", "MA", "021"),
    ("Chicago", "IL", "606"),
    ("San Jose", "CA", "951"),
    ("Brooklyn", "NY", "112"),
    ("Atlanta", "GA", "303"),
    ("Columbus", "OH", "432"),
    ("Madison", "WI", "537"),
    ("Raleigh", "NC", "276"),
    ("Phoenix", "AZ", "850"),
    ("Nashville", "TN", "372"),
    ("San Diego", "CA", "921"),
];

const GB_STREETS: &[&str] = &[
    "Baker", "Victoria", "Church", "Station", "High", "Park", "Queen's", "King's", "Mill", "Albert", "York", "Windsor",
    "Manor", "Chapel", "Grange", "Elm", "Castle", "Bridge",
];
const GB_TYPES: &[&str] =
    &["Street", "Road", "Lane", "Avenue", "Close", "Gardens", "Crescent", "Terrace", "Way", "Drive", "Place", "Grove"];
const GB_CITIES: &[(&str, &[&str])] = &[
    ("London", &["NW1", "SE1", "E14", "N1", "SW11", "W2", "EC1A", "WC2H"]),
    ("Manchester", &["M1", "M14", "M20"]),
    ("Leeds", &["LS1", "LS6"]),
    ("Bristol", &["BS1", "BS8"]),
    ("Edinburgh", &["EH1", "EH3"]),
    ("Birmingham", &["B1", "B15"]),
    ("Glasgow", &["G2", "G12"]),
    ("Cambridge", &["CB1", "CB2"]),
];

const DE_STREET_ROOTS: &[&str] = &[
    "Haupt",
    "Bahnhof",
    "Schiller",
    "Goethe",
    "Linden",
    "Garten",
    "Kirch",
    "Schul",
    "Wald",
    "Rosen",
    "Friedrich",
    "Mozart",
    "Beethoven",
    "Kant",
    "Berg",
    "Markt",
    "Burg",
];
const DE_SUFFIXES: &[&str] = &["straße", "straße", "str.", "weg", "allee", "platz", "gasse", "ring"];
const DE_CITIES: &[(&str, u32, u32)] = &[
    ("Berlin", 10115, 14199),
    ("Hamburg", 20095, 22769),
    ("München", 80331, 81929),
    ("Köln", 50667, 51149),
    ("Frankfurt am Main", 60306, 60599),
    ("Stuttgart", 70173, 70629),
    ("Düsseldorf", 40210, 40629),
    ("Leipzig", 4103, 4357),
];

const FR_TYPES: &[&str] = &["rue", "rue", "avenue", "boulevard", "place", "allée", "impasse", "chemin", "quai"];
const FR_NAMES: &[&str] = &[
    "de la Paix",
    "Victor Hugo",
    "de la République",
    "des Lilas",
    "Jean Jaurès",
    "Saint-Honoré",
    "Pasteur",
    "de Rivoli",
    "Gambetta",
    "des Écoles",
    "du Général Leclerc",
    "de la Gare",
    "Voltaire",
];
const FR_CITIES: &[(&str, &str, u32)] = &[
    ("Paris", "750", 20),
    ("Lyon", "6900", 9),
    ("Marseille", "130", 16),
    ("Toulouse", "3100", 0),
    ("Bordeaux", "3300", 0),
    ("Lille", "5900", 0),
    ("Nantes", "4400", 0),
    ("Strasbourg", "6700", 0),
];

const NL_STREETS: &[&str] = &[
    "Keizersgracht",
    "Herengracht",
    "Prinsengracht",
    "Damrak",
    "Kalverstraat",
    "Coolsingel",
    "Lange Voorhout",
    "Oudegracht",
    "Stationsweg",
    "Kerkstraat",
    "Dorpsstraat",
    "Nieuwe Binnenweg",
];
const NL_CITIES: &[(&str, u32)] = &[
    ("Amsterdam", 10),
    ("Rotterdam", 30),
    ("Utrecht", 35),
    ("Den Haag", 25),
    ("Eindhoven", 56),
    ("Groningen", 97),
    ("Leiden", 23),
];

const ES_STREETS: &[&str] = &[
    "Calle Mayor",
    "Calle de Alcalá",
    "Avenida Diagonal",
    "Plaza de España",
    "Calle de Serrano",
    "Gran Vía",
    "Paseo de la Castellana",
    "Calle del Carmen",
    "Avenida de la Constitución",
    "Rambla de Catalunya",
];
const ES_CITIES: &[(&str, &str)] = &[
    ("Madrid", "280"),
    ("Barcelona", "080"),
    ("Valencia", "460"),
    ("Sevilla", "410"),
    ("Bilbao", "480"),
    ("Málaga", "290"),
];

const IT_STREETS: &[&str] = &[
    "Via Roma",
    "Via Giuseppe Garibaldi",
    "Corso Vittorio Emanuele II",
    "Piazza Navona",
    "Viale Europa",
    "Via Dante",
    "Via Torino",
    "Corso Buenos Aires",
    "Via dei Mille",
    "Via Nazionale",
];
const IT_CITIES: &[(&str, &str)] =
    &[("Milano", "201"), ("Roma", "001"), ("Torino", "101"), ("Napoli", "801"), ("Bologna", "401"), ("Firenze", "501")];

const IN_CITIES: &[(&str, &str, &[&str])] = &[
    ("Bengaluru", "5600", &["Indiranagar", "Koramangala", "Whitefield", "HSR Layout"]),
    ("Mumbai", "4000", &["Andheri West", "Bandra", "Powai", "Lower Parel"]),
    ("New Delhi", "1100", &["Saket", "Hauz Khas", "Connaught Place", "Dwarka"]),
    ("Chennai", "6000", &["Adyar", "T. Nagar", "Velachery"]),
    ("Hyderabad", "5000", &["Banjara Hills", "Gachibowli", "Madhapur"]),
    ("Pune", "4110", &["Hinjewadi", "Kothrud", "Baner"]),
    ("Kolkata", "7000", &["Salt Lake", "Park Street", "Ballygunge"]),
];
const IN_ROADS: &[&str] = &[
    "MG Road",
    "Anna Salai",
    "14th Cross",
    "Link Road",
    "Residency Road",
    "100 Feet Road",
    "Station Road",
    "Nehru Street",
];
const IN_BUILDINGS: &[&str] =
    &["Sunrise Apartments", "Green Park Residency", "Prestige Towers", "Lakeview Enclave", "Shanti Niwas"];

const AU_STREETS: &[&str] = &[
    "George",
    "Collins",
    "Queen",
    "King",
    "Elizabeth",
    "Pitt",
    "Flinders",
    "Murray",
    "Hay",
    "Bourke",
    "Oxford",
    "Beach",
];
const AU_TYPES: &[&str] = &["Street", "St", "Road", "Rd", "Parade", "Avenue", "Terrace"];
const AU_CITIES: &[(&str, &str, u32, u32)] = &[
    ("Sydney", "NSW", 2000, 2234),
    ("Melbourne", "VIC", 3000, 3207),
    ("Brisbane", "QLD", 4000, 4179),
    ("Perth", "WA", 6000, 6199),
    ("Adelaide", "SA", 5000, 5199),
    ("Canberra", "ACT", 2600, 2617),
];

const CA_STREETS: &[&str] =
    &["Bay", "Yonge", "King", "Queen", "Robson", "Granville", "Portage", "Sparks", "Bank", "Jasper", "Barrington"];
const CA_TYPES: &[&str] = &["Street", "St", "Avenue", "Ave", "Road", "Boulevard"];
const CA_CITIES: &[(&str, &str, &str)] = &[
    ("Toronto", "ON", "M"),
    ("Vancouver", "BC", "V"),
    ("Calgary", "AB", "T"),
    ("Ottawa", "ON", "K"),
    ("Halifax", "NS", "B"),
    ("Winnipeg", "MB", "R"),
];

/// Street address following the conventions of `country` (ISO 3166-1 alpha-2); unsupported countries use a random supported one.
pub fn address<R: Rng + ?Sized>(rng: &mut R, country: &str) -> String {
    let upper = country.trim().to_ascii_uppercase();
    let code = match upper.as_str() {
        "UK" => "GB",
        c if ADDRESS_COUNTRIES.contains(&c) => c,
        _ => pick(rng, ADDRESS_COUNTRIES),
    };
    match code {
        "US" => address_us(rng),
        "GB" => address_gb(rng),
        "DE" => address_de(rng),
        "FR" => address_fr(rng),
        "NL" => address_nl(rng),
        "ES" => address_es(rng),
        "IT" => address_it(rng),
        "IN" => address_in(rng),
        "AU" => address_au(rng),
        _ => address_ca(rng),
    }
}

fn address_us<R: Rng + ?Sized>(rng: &mut R) -> String {
    let num = rng.random_range(1..10_000u32);
    let mut s = format!("{num} {} {}", pick(rng, US_STREETS), pick(rng, US_TYPES));
    let unit = match weighted(rng, &[60, 15, 15, 10]) {
        0 => None,
        1 => Some(format!("Apt {}{}", rng.random_range(1..30), char::from(pick(rng, b"ABCDEF")))),
        2 => Some(format!("Suite {}", rng.random_range(1..20) * 100)),
        _ => Some(format!("Unit {}", rng.random_range(1..60))),
    };
    if let Some(u) = unit {
        s.push_str(if rng.random_bool(0.6) { ", " } else { " " });
        s.push_str(&u);
    }
    if rng.random_bool(0.75) {
        let (city, state, zip3) = pick(rng, US_CITIES);
        s.push_str(&format!(", {city}, {state} {zip3}{}", digits(rng, 2)));
        if rng.random_bool(0.1) {
            s.push_str(&format!("-{}", digits(rng, 4)));
        }
    }
    s
}

fn address_gb<R: Rng + ?Sized>(rng: &mut R) -> String {
    let street = match pick(rng, GB_STREETS) {
        "High" => "High Street".to_owned(),
        name => format!("{name} {}", pick(rng, GB_TYPES)),
    };
    let mut s = String::new();
    if rng.random_bool(0.25) {
        s.push_str(&format!("Flat {}, ", rng.random_range(1..40)));
    }
    s.push_str(&format!("{} {street}", rng.random_range(1..250)));
    if rng.random_bool(0.75) {
        let (city, outward) = pick(rng, GB_CITIES);
        let outward = pick(rng, outward);
        let inward = format!("{}{}", rng.random_range(1..10), from_alphabet(rng, b"ABDEFGHJLNPQRSTUWXYZ", 2));
        s.push_str(&format!(", {city} {outward} {inward}"));
    }
    s
}

fn address_de<R: Rng + ?Sized>(rng: &mut R) -> String {
    let street = if rng.random_bool(0.15) {
        format!("{} Straße", pick(rng, &["Berliner", "Münchner", "Hamburger", "Frankfurter"]))
    } else {
        format!("{}{}", pick(rng, DE_STREET_ROOTS), pick(rng, DE_SUFFIXES))
    };
    let mut num = rng.random_range(1..180u32).to_string();
    if rng.random_bool(0.12) {
        num.push(char::from(pick(rng, b"abc")));
    }
    let mut s = format!("{street} {num}");
    if rng.random_bool(0.8) {
        let (city, lo, hi) = pick(rng, DE_CITIES);
        s.push_str(&format!(", {:05} {city}", rng.random_range(lo..=hi.max(lo))));
    }
    s
}

fn address_fr<R: Rng + ?Sized>(rng: &mut R) -> String {
    let num = rng.random_range(1..150u32);
    let bis = if rng.random_bool(0.08) { " bis" } else { "" };
    let comma = if rng.random_bool(0.2) { "," } else { "" };
    let mut s = format!("{num}{bis}{comma} {} {}", pick(rng, FR_TYPES), pick(rng, FR_NAMES));
    if rng.random_bool(0.12) {
        s.push_str(&format!(", Bât. {}", char::from(pick(rng, b"ABCD"))));
    }
    if rng.random_bool(0.8) {
        let (city, prefix, max_arr) = pick(rng, FR_CITIES);
        let cp = if max_arr > 0 {
            let arr = rng.random_range(1..=max_arr);
            if prefix.len() == 3 { format!("{prefix}{arr:02}") } else { format!("{prefix}{arr}") }
        } else {
            format!("{prefix}0")
        };
        s.push_str(&format!(", {cp} {city}"));
    }
    s
}

fn address_nl<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut num = rng.random_range(1..400u32).to_string();
    match weighted(rng, &[75, 10, 10, 5]) {
        0 => {}
        1 => num.push(char::from(pick(rng, b"ABC"))),
        2 => num.push_str(pick(rng, &["-I", "-II", "-III", "-hs"])),
        _ => num.push_str(" hs"),
    }
    let mut s = format!("{} {num}", pick(rng, NL_STREETS));
    if rng.random_bool(0.8) {
        let (city, prefix) = pick(rng, NL_CITIES);
        let letters = nl_postcode_letters(rng);
        s.push_str(&format!(", {prefix}{:02} {letters} {city}", rng.random_range(0..100u32)));
    }
    s
}

/// Two postcode letters, avoiding the combinations Dutch postcodes never use (SA, SD, SS).
fn nl_postcode_letters<R: Rng + ?Sized>(rng: &mut R) -> String {
    let l = from_alphabet(rng, b"ABCDEFGHJKLMNPRTVWXZ", 2);
    match l.as_str() {
        "SA" | "SD" | "SS" => "SB".to_owned(),
        _ => l,
    }
}

fn address_es<R: Rng + ?Sized>(rng: &mut R) -> String {
    let street = pick(rng, ES_STREETS);
    let num = rng.random_range(1..200u32);
    let mut s = if rng.random_bool(0.5) { format!("{street} {num}") } else { format!("{street}, {num}") };
    if rng.random_bool(0.35) {
        s.push_str(&format!(", {}º {}", rng.random_range(1..9), pick(rng, &["A", "B", "C", "izda.", "dcha."])));
    }
    if rng.random_bool(0.7) {
        let (city, prefix) = pick(rng, ES_CITIES);
        s.push_str(&format!(", {prefix}{:02} {city}", rng.random_range(1..60u32)));
    }
    s
}

fn address_it<R: Rng + ?Sized>(rng: &mut R) -> String {
    let street = pick(rng, IT_STREETS);
    let mut num = rng.random_range(1..200u32).to_string();
    if rng.random_bool(0.1) {
        num.push_str(pick(rng, &["/A", "/B"]));
    }
    let mut s = if rng.random_bool(0.5) { format!("{street} {num}") } else { format!("{street}, {num}") };
    if rng.random_bool(0.7) {
        let (city, prefix) = pick(rng, IT_CITIES);
        s.push_str(&format!(", {prefix}{:02} {city}", rng.random_range(0..100u32)));
    }
    s
}

fn address_in<R: Rng + ?Sized>(rng: &mut R) -> String {
    let (city, pin, localities) = pick(rng, IN_CITIES);
    let locality = pick(rng, localities);
    let pin = format!("{pin}{:02}", rng.random_range(1..100u32));
    match weighted(rng, &[35, 25, 25, 15]) {
        0 => format!(
            "Flat {}{:02}, {}, {}, {locality}, {city} {pin}",
            rng.random_range(1..15),
            rng.random_range(1..12),
            pick(rng, IN_BUILDINGS),
            pick(rng, IN_ROADS)
        ),
        1 => format!(
            "{}-{}, Sector {}, {locality}, {city} {pin}",
            char::from(pick(rng, b"ABCDEFGH")),
            rng.random_range(1..200),
            rng.random_range(1..80)
        ),
        2 => format!("{} {}, {city} {pin}", rng.random_range(1..300), pick(rng, IN_ROADS)),
        _ => format!(
            "{}/{} {}, {locality}, {city} - {pin}",
            rng.random_range(1..100),
            rng.random_range(1..10),
            pick(rng, IN_ROADS)
        ),
    }
}

fn address_au<R: Rng + ?Sized>(rng: &mut R) -> String {
    let street = format!("{} {}", pick(rng, AU_STREETS), pick(rng, AU_TYPES));
    let num = rng.random_range(1..400u32);
    let mut s = match weighted(rng, &[60, 20, 20]) {
        0 => format!("{num} {street}"),
        1 => format!("Unit {}, {num} {street}", rng.random_range(1..40)),
        _ => format!("{}/{num} {street}", rng.random_range(1..40)),
    };
    if rng.random_bool(0.8) {
        let (city, state, lo, hi) = pick(rng, AU_CITIES);
        s.push_str(&format!(", {city} {state} {:04}", rng.random_range(lo..=hi.max(lo))));
    }
    s
}

fn address_ca<R: Rng + ?Sized>(rng: &mut R) -> String {
    let num = rng.random_range(1..3000u32);
    let mut s = format!("{num} {} {}", pick(rng, CA_STREETS), pick(rng, CA_TYPES));
    if rng.random_bool(0.3) {
        s.push_str(&format!(", Suite {}", rng.random_range(1..30) * 100));
    }
    if rng.random_bool(0.8) {
        const POSTAL_LETTERS: &[u8] = b"ABCEGHJKLMNPRSTVWXYZ";
        let (city, prov, first) = pick(rng, CA_CITIES);
        s.push_str(&format!(
            ", {city}, {prov} {first}{}{} {}{}{}",
            rng.random_range(0..10),
            char::from(pick(rng, POSTAL_LETTERS)),
            rng.random_range(0..10),
            char::from(pick(rng, POSTAL_LETTERS)),
            rng.random_range(0..10)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn ascii_fold_transliterates() {
        assert_eq!(ascii_fold("José"), "jose");
        assert_eq!(ascii_fold("Müller"), "muller");
        assert_eq!(ascii_fold("Søren"), "soren");
        assert_eq!(ascii_fold("Łukasz"), "lukasz");
        assert_eq!(ascii_fold("Weiß"), "weiss");
        assert_eq!(ascii_fold("O'Brien"), "obrien");
        assert_eq!(ascii_fold("van der Berg"), "vanderberg");
        assert_eq!(ascii_fold("Nguyễn"), "nguyen");
    }

    #[test]
    fn emails_are_ascii_and_well_formed() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2000 {
            let (g, s) = person_name(&mut rng);
            let e = email(&mut rng, &g, &s);
            assert!(e.is_ascii(), "{e}");
            assert_eq!(e.matches('@').count(), 1, "{e}");
            let (local, domain) = e.split_once('@').unwrap_or_default();
            assert!(!local.is_empty() && domain.contains('.'), "{e}");
            assert!(!e.contains(' ') && !e.contains('\''), "{e}");
        }
    }

    #[test]
    fn phones_use_plausible_characters() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for country in PHONE_COUNTRIES.iter().chain(&["ZZ", "uk", ""]) {
            for _ in 0..300 {
                let p = phone(&mut rng, country);
                let digit_count = p.chars().filter(char::is_ascii_digit).count();
                assert!((8..=16).contains(&digit_count), "{country}: {p}");
                assert!(p.chars().all(|c| c.is_ascii_digit() || " +()-./ext".contains(c)), "{country}: {p}");
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..100 {
            let p = phone(&mut rng, "XX");
            assert!(p.starts_with('+') && p[1..].bytes().all(|b| b.is_ascii_digit()), "{p}");
        }
    }

    #[test]
    fn uk_and_de_mobiles_have_real_prefixes() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..500 {
            if let Some(ph) = phone_parts(&mut rng, "GB", true) {
                assert!(ph.national("").starts_with("07"));
            }
            if let Some(ph) = phone_parts(&mut rng, "DE", true) {
                let n = ph.national("");
                assert!(n.starts_with("015") || n.starts_with("016") || n.starts_with("017"));
            }
        }
    }

    #[test]
    fn urls_have_no_whitespace() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..2000 {
            let (g, s) = person_name(&mut rng);
            let u = url(&mut rng, &g, &s);
            assert!(u.is_ascii() && !u.contains(char::is_whitespace), "{u}");
            assert!(u.contains('.'), "{u}");
        }
    }

    #[test]
    fn ip_addresses_parse() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut compressed = 0;
        for _ in 0..2000 {
            let v4 = ipv4(&mut rng);
            assert!(v4.parse::<std::net::Ipv4Addr>().is_ok(), "{v4}");
            let v6 = ipv6(&mut rng);
            assert!(v6.parse::<std::net::Ipv6Addr>().is_ok(), "{v6}");
            assert_eq!(v6, v6.to_lowercase());
            if v6.contains("::") {
                compressed += 1;
            }
        }
        assert!(compressed > 200, "{compressed}");
    }

    #[test]
    fn credit_cards_are_luhn_valid() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut amex_grouped = false;
        for _ in 0..5000 {
            let cc = credit_card(&mut rng);
            assert!(luhn_valid(&cc), "{cc}");
            let n: String = cc.chars().filter(char::is_ascii_digit).collect();
            assert!((15..=19).contains(&n.len()), "{cc}");
            if n.len() == 15 {
                assert!(n.starts_with("34") || n.starts_with("37"), "{cc}");
                if cc.len() == 17 && cc.as_bytes()[4] == b' ' && cc.as_bytes()[11] == b' ' {
                    amex_grouped = true;
                }
            }
        }
        assert!(amex_grouped);
        assert!(luhn_valid("4111 1111 1111 1111"));
        assert!(luhn_valid("3782-822463-10005"));
        assert!(!luhn_valid("4111 1111 1111 1112"));
        assert!(!luhn_valid("4111x1111"));
        assert!(!luhn_valid(""));
    }

    #[test]
    fn ibans_pass_mod97_and_length() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..5000 {
            let i = iban(&mut rng);
            assert!(iban_valid(&i), "{i}");
            let compact: String = i.chars().filter(|c| *c != ' ').collect();
            let cc = &compact[..2];
            let spec = IBAN_SPECS.iter().find(|(c, ..)| *c == cc);
            assert!(spec.is_some(), "{i}");
            if let Some((_, len, ..)) = spec {
                assert_eq!(compact.len(), *len, "{i}");
            }
            seen.insert(cc.to_owned());
        }
        for cc in ["DE", "GB", "FR", "NL", "ES", "IT", "BE", "CH", "IE", "PL", "AT", "SE"] {
            assert!(seen.contains(cc), "{cc}");
        }
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(!iban_valid("DE8937040044053201300"));
    }

    #[test]
    fn ssns_are_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..20_000 {
            let s = ssn(&mut rng);
            assert!(ssn_valid(&s), "{s}");
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            let area: u32 = digits[..3].parse().unwrap_or(0);
            let group: u32 = digits[3..5].parse().unwrap_or(0);
            let serial: u32 = digits[5..].parse().unwrap_or(0);
            assert!((1..=899).contains(&area) && area != 666, "{s}");
            assert!((1..=99).contains(&group), "{s}");
            assert!((1..=9999).contains(&serial), "{s}");
        }
        assert!(!ssn_valid("666-12-3456"));
        assert!(!ssn_valid("900-12-3456"));
        assert!(!ssn_valid("123-00-3456"));
        assert!(!ssn_valid("123-45-0000"));
        assert!(!ssn_valid("123-45 6789"));
        assert!(ssn_valid("123 45 6789"));
    }

    #[test]
    fn addresses_follow_country_conventions() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        for country in ADDRESS_COUNTRIES.iter().chain(&["JP", ""]) {
            for _ in 0..300 {
                let a = address(&mut rng, country);
                assert!(!a.is_empty() && a.trim() == a, "{a}");
                assert!(a.chars().any(|c| c.is_ascii_digit()), "{a}");
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..200 {
            // German addresses put the house number after the street name.
            let a = address(&mut rng, "DE");
            assert!(!a.starts_with(|c: char| c.is_ascii_digit()), "{a}");
            // US addresses start with the house number.
            let a = address(&mut rng, "US");
            assert!(a.starts_with(|c: char| c.is_ascii_digit()), "{a}");
        }
    }

    #[test]
    fn generators_are_deterministic() {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut out = Vec::new();
            for _ in 0..50 {
                let (g, s) = person_name(&mut rng);
                out.push(email(&mut rng, &g, &s));
                out.push(phone(&mut rng, "DE"));
                out.push(url(&mut rng, &g, &s));
                out.push(ipv6(&mut rng));
                out.push(credit_card(&mut rng));
                out.push(iban(&mut rng));
                out.push(ssn(&mut rng));
                out.push(address(&mut rng, "FR"));
            }
            out
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }
}
