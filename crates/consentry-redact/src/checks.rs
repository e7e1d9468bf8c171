//! Exact validators for checksummed and ranged identifiers: Luhn for cards,
//! ISO 13616 mod-97 and the SWIFT registry's country lengths for IBANs, and
//! the SSA's issuable ranges for SSNs. Hand-written because each is a few
//! lines of arithmetic and no well-kept crate covers all three.

/// True when `s` (spaces and dashes ignored) is at least two digits passing the Luhn checksum.
pub fn luhn_valid(s: &str) -> bool {
    let mut digits = Vec::with_capacity(s.len());
    for c in s.bytes() {
        match c {
            b' ' | b'-' => {}
            b'0'..=b'9' => digits.push(c - b'0'),
            _ => return false,
        }
    }
    digits.len() >= 2 && luhn_digits(&digits)
}

/// Luhn over digit values (each 0..=9).
pub(crate) fn luhn_digits(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &v) in d.iter().rev().enumerate() {
        let mut v = u32::from(v);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The card scheme whose issuer prefix and length fit, if any.
pub(crate) fn card_scheme(d: &[u8]) -> Option<&'static str> {
    let n = d.len();
    let p = |k: usize| d.iter().take(k).fold(0u32, |acc, &x| acc * 10 + u32::from(x));
    let (p1, p2, p3, p4, p6) = (p(1), p(2), p(3), p(4), p(6));
    if p1 == 4 && matches!(n, 13 | 16 | 19) {
        return Some("visa");
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16 {
        return Some("mastercard");
    }
    if (p2 == 34 || p2 == 37) && n == 15 {
        return Some("amex");
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622126..=622925).contains(&p6))
        && (16..=19).contains(&n)
    {
        return Some("discover");
    }
    if (3528..=3589).contains(&p4) && (16..=19).contains(&n) {
        return Some("jcb");
    }
    if p2 == 62 && (16..=19).contains(&n) {
        return Some("unionpay");
    }
    if (p2 == 36 || p2 == 38 || p2 == 39 || (300..=305).contains(&p3)) && (14..=19).contains(&n) {
        return Some("diners");
    }
    if (2200..=2204).contains(&p4) && (16..=19).contains(&n) {
        return Some("mir");
    }
    if (p2 == 50 || (56..=69).contains(&p2)) && (12..=19).contains(&n) {
        return Some("maestro");
    }
    None
}

/// IBAN lengths by country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// The IBAN length of a country code, if the country uses IBANs.
pub(crate) fn iban_length(cc: [u8; 2]) -> Option<usize> {
    IBAN_LENGTHS.iter().find(|(c, _)| **c == cc).map(|(_, n)| *n)
}

/// Mod-97 of an IBAN given compact and upper-case (check digits moved to the end).
pub(crate) fn iban_mod97(compact: &[u8]) -> Option<u32> {
    if compact.len() < 5 {
        return None;
    }
    let (head, rest) = compact.split_at(4);
    let mut r: u32 = 0;
    for &c in rest.iter().chain(head) {
        match c {
            b'0'..=b'9' => r = (r * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => r = (r * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return None,
        }
    }
    Some(r)
}

/// True when `s` (spaces ignored, any case) is an IBAN of a registered country with its length and a valid mod-97.
pub fn iban_valid(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|c| *c != b' ').map(|c| c.to_ascii_uppercase()).collect();
    let Some(&[a, b]) = compact.get(..2) else { return false };
    iban_length([a, b]) == Some(compact.len())
        && compact.get(2..4).is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        && iban_mod97(&compact) == Some(1)
}

/// True when area, group and serial are in the ranges the SSA issues (no 000, 666, 9xx areas; no 00 group; no 0000 serial).
pub(crate) fn ssn_parts_valid(area: u32, group: u32, serial: u32) -> bool {
    (1..=899).contains(&area) && area != 666 && (1..=99).contains(&group) && (1..=9999).contains(&serial)
}

/// True when `s` is `AAA-GG-SSSS`, `AAA GG SSSS` or nine digits in the issuable ranges.
pub fn ssn_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let digits: Vec<u8> = match b.len() {
        11 if (b[3] == b'-' || b[3] == b' ') && b[6] == b[3] => {
            b.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 6).map(|(_, c)| *c).collect()
        }
        9 => b.to_vec(),
        _ => return false,
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| digits[r].iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'));
    ssn_parts_valid(num(0..3), num(3..5), num(5..9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111 1111 1111 1111"));
        assert!(luhn_valid("3782-822463-10005"));
        assert!(!luhn_valid("4111 1111 1111 1112"));
        assert!(!luhn_valid("x"));
    }

    #[test]
    fn schemes() {
        let d = |s: &str| s.bytes().map(|c| c - b'0').collect::<Vec<_>>();
        assert_eq!(card_scheme(&d("2221000000000009")), Some("mastercard"));
        assert_eq!(card_scheme(&d("4111111111111111111")), Some("visa"));
        assert_eq!(card_scheme(&d("378282246310005")), Some("amex"));
        assert_eq!(card_scheme(&d("6761000000000000000")), Some("maestro"));
        assert_eq!(card_scheme(&d("1234567812345678")), None);
    }

    #[test]
    fn ibans() {
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(!iban_valid("DE8937040044053201300"));
        assert!(!iban_valid("XX89370400440532013000"));
    }

    #[test]
    fn ssns() {
        assert!(ssn_valid("123-45-6789"));
        assert!(ssn_valid("123 45 6789"));
        assert!(!ssn_valid("666-12-3456"));
        assert!(!ssn_valid("900-12-3456"));
        assert!(!ssn_valid("123-00-3456"));
        assert!(!ssn_valid("123-45-0000"));
        assert!(!ssn_valid("123-45 6789"));
    }
}
