//! URLs and bare domains. Three triggers: `://` after a scheme, `www.` at a
//! word start, and a dot followed by a lower-case letter inside a token whose
//! last label is a known top-level domain (`linkedin.com/in/x`, `anna.dev`).
//! File names with TLD-like extensions (`main.rs`, `app.py`) are excluded by
//! leaving those TLDs out of the list.

use crate::{Kind, Span};

/// Top-level domains accepted without a scheme: generic ones people type plus country codes.
const TLDS: &[&str] = &[
    "com",
    "org",
    "net",
    "edu",
    "gov",
    "mil",
    "int",
    "io",
    "dev",
    "app",
    "ai",
    "co",
    "me",
    "info",
    "biz",
    "name",
    "pro",
    "tech",
    "site",
    "online",
    "blog",
    "cloud",
    "xyz",
    "page",
    "link",
    "ly",
    "gg",
    "tv",
    "fm",
    "to",
    "so",
    "us",
    "uk",
    "de",
    "fr",
    "nl",
    "es",
    "it",
    "be",
    "ch",
    "at",
    "ie",
    "pl",
    "se",
    "no",
    "dk",
    "fi",
    "pt",
    "gr",
    "cz",
    "hu",
    "ro",
    "bg",
    "hr",
    "si",
    "sk",
    "lt",
    "lv",
    "ee",
    "lu",
    "eu",
    "ru",
    "ua",
    "tr",
    "il",
    "ae",
    "sa",
    "in",
    "cn",
    "jp",
    "kr",
    "tw",
    "hk",
    "sg",
    "my",
    "th",
    "vn",
    "id",
    "ph",
    "au",
    "nz",
    "ca",
    "mx",
    "br",
    "ar",
    "cl",
    "pe",
    "za",
    "ng",
    "ke",
    "eg",
    "ma",
    "news",
    "works",
    "agency",
    "studio",
    "design",
    "digital",
    "email",
    "jobs",
    "careers",
    "team",
    "network",
    "social",
    "store",
    "shop",
    "club",
    "live",
    "world",
    "space",
    "art",
    "health",
    "finance",
    "capital",
    "consulting",
    "solutions",
    "systems",
    "academy",
    "school",
    "global",
    "group",
    "company",
    "events",
    "media",
];

/// Characters that may appear in a URL after its host.
fn url_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&c)
}

fn host_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
}

/// Extends a URL from `from` over URL characters, then drops trailing punctuation (keeping balanced parentheses).
fn extend(b: &[u8], start: usize, from: usize) -> usize {
    let mut e = from;
    while e < b.len() && url_byte(b[e]) {
        e += 1;
    }
    while e > from {
        let Some(&last) = b.get(e - 1) else { break };
        let drop = match last {
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'*' => true,
            b')' => {
                let open = b[start..e].iter().filter(|c| **c == b'(').count();
                let close = b[start..e].iter().filter(|c| **c == b')').count();
                close > open
            }
            b']' => true,
            _ => false,
        };
        if drop {
            e -= 1;
        } else {
            break;
        }
    }
    e
}

/// True when `host` is `label(.label)+` with a known, lower-case top-level label.
fn plausible_host(host: &[u8]) -> bool {
    let Ok(h) = std::str::from_utf8(host) else { return false };
    let labels: Vec<&str> = h.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let ok_labels = labels.iter().all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    let tld = labels.last().copied().unwrap_or("");
    let first_alpha = labels.first().is_some_and(|l| l.bytes().any(|c| c.is_ascii_alphabetic()));
    ok_labels && first_alpha && TLDS.contains(&tld)
}

/// The `://` searcher, built once (building one per text cost more than the search).
static SCHEME_SEP: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"://"));

/// Appends every URL and bare domain in `text` to `out`.
pub fn detect(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut covered = 0usize;
    let first = out.len();
    // 1. scheme://
    for p in SCHEME_SEP.find_iter(b) {
        let mut s = p;
        while s > 0 && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'+' | b'.' | b'-')) {
            s -= 1;
        }
        if s == p || !b[s].is_ascii_alphabetic() || s < covered {
            continue;
        }
        let e = extend(b, s, p + 3);
        if e > p + 3 && b[p + 3].is_ascii_alphanumeric() {
            out.push(Span::new(s, e, Kind::Url, 0.97));
            covered = e;
        }
    }
    // 2. www. and bare domains: a dot followed by a lower-case letter.
    let schemes: Vec<(usize, usize)> = out[first..].iter().map(|u| (u.start, u.end)).collect();
    let mut k = 0;
    let mut next = 0usize;
    for dot in memchr::memchr_iter(b'.', b) {
        if dot < next || dot == 0 || !b.get(dot + 1).is_some_and(u8::is_ascii_lowercase) {
            continue;
        }
        if !b[dot - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut s = dot;
        while s > 0 && host_byte(b[s - 1]) {
            s -= 1;
        }
        while s < dot && !b[s].is_ascii_alphanumeric() {
            s += 1;
        }
        // Part of an e-mail address, a scheme URL or a longer word: not ours.
        if s > 0 && (b[s - 1] == b'@' || b[s - 1] == b'/' || b[s - 1] >= 0x80 || b[s - 1].is_ascii_alphanumeric()) {
            next = dot + 1;
            continue;
        }
        while k < schemes.len() && schemes[k].1 <= s {
            k += 1;
        }
        if schemes.get(k).is_some_and(|&(us, ue)| us <= s && s < ue) {
            continue;
        }
        let mut h = dot + 1;
        while h < b.len() && host_byte(b[h]) {
            h += 1;
        }
        while h > dot && matches!(b[h - 1], b'.' | b'-') {
            h -= 1;
        }
        next = h;
        if b.get(h) == Some(&b'@') || (h < b.len() && b[h] >= 0x80) {
            continue;
        }
        let host = &b[s..h];
        let www = host.len() > 4 && host[..4].eq_ignore_ascii_case(b"www.");
        if !plausible_host(host) && !www {
            continue;
        }
        let has_path = matches!(b.get(h), Some(b'/') | Some(b':') | Some(b'?') | Some(b'#'));
        let e = if has_path { extend(b, s, h) } else { h };
        let score = if www || has_path { 0.92 } else { 0.8 };
        out.push(Span::new(s, e, Kind::Url, score));
        next = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        detect(t, &mut v);
        v.sort_by_key(|s| s.start);
        v.iter().map(|s| &t[s.start..s.end]).collect()
    }

    #[test]
    fn urls() {
        assert_eq!(
            find("See https://x.com/a_b?q=1, then (www.acme.io/jobs)."),
            ["https://x.com/a_b?q=1", "www.acme.io/jobs"]
        );
        assert_eq!(find("My site: annasmith.dev and github.com/anna-s."), ["annasmith.dev", "github.com/anna-s"]);
        assert_eq!(find("Edit main.rs, app.py and ASP.NET. e.g. this. Node.js"), Vec::<&str>::new());
        assert_eq!(find("mail anna@gmail.com"), Vec::<&str>::new());
        assert_eq!(find("https://medium.com/@anna/post-1"), ["https://medium.com/@anna/post-1"]);
    }
}
