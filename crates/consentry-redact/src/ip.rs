//! IPv6 addresses: candidates are runs of hex digits, colons and dots around
//! each `:`; `std::net::Ipv6Addr` does the parsing, so every accepted span is
//! a real address. IPv4 is found with the other numbers (`numbers.rs`).

use crate::{Kind, Span};

fn v6_byte(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

/// Appends every IPv6 address in `text` to `out`.
pub fn detect_v6(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut next = 0;
    for colon in memchr::memchr_iter(b':', b) {
        if colon < next {
            continue;
        }
        let mut s = colon;
        while s > 0 && v6_byte(b[s - 1]) {
            s -= 1;
        }
        let mut e = colon + 1;
        while e < b.len() && v6_byte(b[e]) {
            e += 1;
        }
        next = e;
        // Word boundaries: not glued to other letters or digits.
        if (s > 0 && (b[s - 1].is_ascii_alphanumeric() || b[s - 1] >= 0x80))
            || (e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] >= 0x80))
        {
            continue;
        }
        // Trailing sentence punctuation is not part of the address.
        let mut end = e;
        while end > s && matches!(b[end - 1], b'.' | b':') && !b[s..end].ends_with(b"::") {
            end -= 1;
        }
        let Some(cand) = text.get(s..end) else { continue };
        if cand.bytes().filter(|c| *c == b':').count() < 2 || cand.len() < 3 {
            continue;
        }
        if cand.parse::<std::net::Ipv6Addr>().is_ok() {
            out.push(Span::new(s, end, Kind::Ip, 0.95));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6() {
        let t = "from fe80::1ff:fe23:4567:890a and 2001:db8:0:0:0:0:2:1. Not 10:30:00 or ab:cd:ef.";
        let mut v = Vec::new();
        detect_v6(t, &mut v);
        let got: Vec<&str> = v.iter().map(|s| &t[s.start..s.end]).collect();
        assert_eq!(got, ["fe80::1ff:fe23:4567:890a", "2001:db8:0:0:0:0:2:1"]);
    }
}
