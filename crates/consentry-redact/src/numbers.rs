//! Digit-led identifiers: phone numbers, payment cards, SSNs and IPv4
//! addresses. A *chunk* is a run of digit groups joined by short separators
//! (`space - . / ( )`), optionally led by `+` or `(` and followed by an
//! extension (`ext. 12`, `x12`). Each chunk is classified once, in order:
//! IPv4, date (ignored), SSN, card (Luhn + issuer prefix), phone (digit
//! count, grouping, trunk or country prefix, and cue words nearby).

use crate::checks::{card_scheme, luhn_digits, ssn_parts_valid};
use crate::scan::{before_lower, boundary_after, next_char, prev_char};
use crate::{Kind, Span};

const SEP: &[u8] = b" -./()";

/// Words before a number that say it is a phone number.
const PHONE_CUES: &[&str] = &[
    "phone",
    "call",
    "tel",
    "mobile",
    "mob",
    "cell",
    "whatsapp",
    "number",
    "fax",
    "reach me",
    "text me",
    "sms",
    "m:",
    "t:",
    "p:",
    "ph.",
    "ph:",
    "contact",
    "dial",
    "ring",
    "landline",
    "office:",
    "direct:",
    "signal",
    "desk:",
    "registered",
    "messages to",
    "message to",
    "reach you",
];

fn has_cue(text: &str, at: usize, cues: &[&str]) -> bool {
    let w = before_lower(text, at, 40);
    cues.iter().any(|c| w.contains(c))
}

/// Classifies the chunk that starts at digit `i` (where no digit precedes); returns where scanning may resume.
pub fn chunk_at(text: &str, i: usize, out: &mut Vec<Span>) -> usize {
    let b = text.as_bytes();
    let mut s = i;
    if s > 0 && b[s - 1] == b'+' {
        s -= 1;
    }
    if s > 0 && b[s - 1] == b'(' {
        s -= 1;
    }
    // Glued to a word, or the tail of a decimal or time (`3.14`, `10:30`): not an identifier.
    if let Some(p) = prev_char(text, s) {
        let glued = (p.is_alphanumeric() && !crate::scan::escaped_break_before(b, s))
            || p == '_'
            || (matches!(p, '.' | ',' | ':' | '/' | '-') && prev_char(text, s - 1).is_some_and(|c| c.is_ascii_digit()));
        if glued {
            return i + crate::scan::digits_at(b, i);
        }
    }
    // Digit groups.
    let mut groups: Vec<(usize, usize)> = Vec::with_capacity(6);
    let mut seps: Vec<u8> = Vec::with_capacity(6);
    let mut j = i;
    loop {
        let n = crate::scan::digits_at(b, j);
        groups.push((j, n));
        j += n;
        let mut k = j;
        let mut sep_kind = 0u8;
        while k < b.len() && k - j < 3 && SEP.contains(&b[k]) {
            if k > j && b[k] == b[k - 1] {
                break;
            }
            sep_kind = if sep_kind == 0 { b[k] } else { sep_kind };
            if b[k] != b' ' && b[k] != b'(' && b[k] != b')' {
                sep_kind = b[k];
            }
            k += 1;
        }
        if k > j && b.get(k).is_some_and(u8::is_ascii_digit) && groups.len() < 12 {
            seps.push(sep_kind);
            j = k;
        } else {
            break;
        }
    }
    let e = j;
    let resume = e;
    if !boundary_after(text, e) && !matches!(b.get(e), Some(b'x') | Some(b'X')) {
        return resume;
    }
    let digits: Vec<u8> = b[i..e].iter().filter(|c| c.is_ascii_digit()).map(|c| c - b'0').collect();
    let d = digits.len();
    let g = groups.len();
    let glen: Vec<usize> = groups.iter().map(|x| x.1).collect();
    let same_sep = seps.windows(2).all(|w| w[0] == w[1]);
    let plus = b[s] == b'+' || (b[s] == b'(' && b.get(s + 1) == Some(&b'+'));
    let paren = b[s..e].contains(&b'(');

    // IPv4.
    if g == 4 && seps.iter().all(|c| *c == b'.') && glen.iter().all(|n| (1..=3).contains(n)) && !plus && !paren {
        let ok = groups.iter().all(|&(p, n)| {
            let v = b[p..p + n].iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
            v <= 255 && (n == 1 || b[p] != b'0')
        });
        if ok {
            out.push(Span::new(i, e, Kind::Ip, 0.9));
        }
        return resume;
    }
    // Dates (`2024-05-17`, `17/05/2024`, `17.05.24`) and dotted versions are not PII here.
    if g == 3 && same_sep && matches!(seps.first(), Some(b'/') | Some(b'.') | Some(b'-')) {
        let date = (glen[0] <= 2 && glen[1] <= 2 && (glen[2] == 2 || glen[2] == 4))
            || (glen[0] == 4 && glen[1] <= 2 && glen[2] <= 2);
        if date {
            return resume;
        }
    }
    if seps.contains(&b'.') && !same_sep && g > 4 && glen.iter().all(|n| *n <= 2) {
        return resume;
    }
    // SSN.
    if g == 3 && glen == [3, 2, 4] && same_sep && matches!(seps.first(), Some(b'-') | Some(b' ')) && !plus && !paren {
        let num = |r: std::ops::Range<usize>| digits[r].iter().fold(0u32, |a, &c| a * 10 + u32::from(c));
        if ssn_parts_valid(num(0..3), num(3..5), num(5..9)) {
            let score = if has_cue(text, s, &["ssn", "social security", "social-security"]) { 0.97 } else { 0.85 };
            out.push(Span::new(i, e, Kind::Ssn, score));
        }
        return resume;
    }
    if g == 1 && d == 9 && has_cue(text, s, &["ssn", "social security"]) {
        let num = |r: std::ops::Range<usize>| digits[r].iter().fold(0u32, |a, &c| a * 10 + u32::from(c));
        if ssn_parts_valid(num(0..3), num(3..5), num(5..9)) {
            out.push(Span::new(i, e, Kind::Ssn, 0.8));
            return resume;
        }
    }
    // Payment cards.
    if (12..=19).contains(&d) && !plus && !paren && same_sep && seps.iter().all(|c| *c == b' ' || *c == b'-') {
        let grouped = g == 1
            || glen.iter().take(g - 1).all(|n| *n == 4) && glen.last().is_some_and(|n| (1..=7).contains(n))
            || glen == [4, 6, 5]
            || glen == [4, 6, 4];
        if grouped && luhn_digits(&digits) {
            if card_scheme(&digits).is_some() {
                out.push(Span::new(i, e, Kind::CreditCard, 0.95));
                return resume;
            }
            if g > 1 || has_cue(text, s, &["card", "visa", "mastercard", "amex", "credit", "debit", "cc"]) {
                out.push(Span::new(i, e, Kind::CreditCard, 0.7));
                return resume;
            }
        }
    }
    // Phones.
    // A label right after the number (`4746-3459-Office`, `738 3565 office`, `+41 53 147 37 99 fax`).
    let label = {
        let mut k = e;
        if matches!(b.get(k), Some(b' ') | Some(b'-')) {
            k += 1;
        }
        let we = k + b.get(k..).map_or(0, |r| r.iter().take_while(|c| c.is_ascii_alphabetic()).count());
        let w = b.get(k..we).unwrap_or(b"").to_ascii_lowercase();
        we > k
            && matches!(w.as_slice(), b"office" | b"fax" | b"mobile" | b"cell" | b"home" | b"work" | b"phone" | b"tel")
    };
    // Six digits in groups (`61 60 34`) only with a cue or label.
    if !(6..=15).contains(&d) || d == 6 && g < 2 {
        return resume;
    }
    let cue = has_cue(text, s, PHONE_CUES);
    if d == 6 && !(cue || label) {
        return resume;
    }
    if g == 2 && glen == [4, 4] && [digits[0], digits[4]].iter().all(|v| *v == 1 || *v == 2) {
        // Year ranges such as 2019-2023.
        let y = |k: usize| digits[k..k + 4].iter().fold(0u32, |a, &c| a * 10 + u32::from(c));
        if (1900..=2100).contains(&y(0)) && (1900..=2100).contains(&y(4)) {
            return resume;
        }
    }
    if let Some(c) = prev_char(text, s).and_then(|c| if c == ' ' { prev_char(text, s - 1) } else { Some(c) })
        && matches!(c, '$' | '€' | '£' | '¥' | '₹' | '#')
    {
        return resume;
    }
    if next_char(text, e).is_some_and(|c| c == '%') {
        return resume;
    }
    let max_group = glen.iter().copied().max().unwrap_or(0);
    let trunk = digits.first() == Some(&0);
    let nanp = glen == [3, 3, 4] || (glen.len() == 4 && glen[0] == 1 && glen[1..] == [3, 3, 4]);
    let mut score: f32 = if plus {
        if d >= 8 { 0.92 } else { 0.6 }
    } else if d >= 10 && digits.starts_with(&[0, 0]) {
        0.8
    } else if paren && d >= 8 {
        0.88
    } else if g >= 2 && d >= 8 && max_group <= 8 {
        if trunk || nanp { 0.85 } else { 0.72 }
    } else if g >= 2 && d == 7 {
        0.42
    } else if g == 1 && (10..=12).contains(&d) {
        if trunk || digits.first().is_some_and(|v| *v >= 6) { 0.62 } else { 0.45 }
    } else if g == 1 && d >= 8 {
        0.4
    } else {
        0.3
    };
    if cue || label {
        score += 0.25;
    }
    // Two space-separated groups followed by a capitalised word are a lot and house number before a street
    // (`32664 283 Hickory Ridge Drive`), not a phone.
    if g == 2
        && seps.first() == Some(&b' ')
        && !plus
        && !paren
        && !cue
        && !label
        && b.get(e) == Some(&b' ')
        && b.get(e + 1).is_some_and(u8::is_ascii_uppercase)
    {
        score -= 0.3;
    }
    // Extension.
    let mut end = e;
    let mut k = crate::scan::skip_blanks(b, e);
    let rest = &b[k.min(b.len())..];
    let lower = |n: usize| rest.get(..n).map(|x| x.to_ascii_lowercase());
    let ext_len = if lower(9).as_deref() == Some(b"extension") {
        9
    } else if lower(4).as_deref() == Some(b"ext.") {
        4
    } else if lower(3).as_deref() == Some(b"ext") {
        3
    } else if matches!(rest.first(), Some(b'x') | Some(b'X') | Some(b'#')) {
        1
    } else {
        0
    };
    if ext_len > 0 {
        k = crate::scan::skip_blanks(b, k + ext_len);
        let n = crate::scan::digits_at(b, k);
        if (1..=6).contains(&n) && boundary_after(text, k + n) {
            end = k + n;
        }
    }
    if end == e && !boundary_after(text, e) {
        return resume;
    }
    out.push(Span::new(s, end, Kind::Phone, score));
    end.max(resume)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(t: &str) -> Vec<(Kind, &str)> {
        let mut v = Vec::new();
        let b = t.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
                i = chunk_at(t, i, &mut v).max(i + 1);
            } else {
                i += 1;
            }
        }
        v.iter().filter(|s| s.score >= 0.5).map(|s| (s.kind, &t[s.start..s.end])).collect()
    }

    #[test]
    fn phones() {
        for p in [
            "(415) 555-0132",
            "+1-415-555-0132 ext. 204",
            "+44 (0)20 7946 0958",
            "030 12345678",
            "+49 151 23456789",
            "06-12345678",
            "+33 6 12 34 56 78",
            "(+65) 9123 4567",
            "+91 98765 43210",
            "(11) 91234-5678",
            "(415) 555-0132 x42",
            "+4915123456789",
            "415.555.0132",
            "03-1234-5678",
        ] {
            let t = format!("Call me on {p}.");
            assert_eq!(find(&t), [(Kind::Phone, p)], "{p}");
        }
        assert_eq!(find("Belgium 34866\\n0494 41 18 24-Office"), [(Kind::Phone, "0494 41 18 24")]);
        assert_eq!(find("738 3565 office"), [(Kind::Phone, "738 3565")]);
        assert_eq!(find("You can call 61 60 34"), [(Kind::Phone, "61 60 34")]);
        assert!(find("it is at 32664 283 Hickory Ridge Drive").is_empty());
        assert!(find("In 2019-2023 we grew 12.5% to $1 200 000 on 2024-05-17 and 17/05/2024, v1.2.3.4.5").is_empty());
    }

    #[test]
    fn ids() {
        assert_eq!(find("ssn 123-45-6789"), [(Kind::Ssn, "123-45-6789")]);
        assert!(find("ssn 666-45-6789").is_empty());
        assert_eq!(find("card 4111 1111 1111 1111"), [(Kind::CreditCard, "4111 1111 1111 1111")]);
        assert_eq!(find("card 2221000000000009!"), [(Kind::CreditCard, "2221000000000009")]);
        assert_eq!(find("amex 3782-822463-10005"), [(Kind::CreditCard, "3782-822463-10005")]);
        assert_eq!(find("ip 192.168.1.20."), [(Kind::Ip, "192.168.1.20")]);
        assert!(find("ip 192.168.1.300").is_empty());
    }
}
