//! IBANs: two letters and two digits at a word start, then exactly the
//! registered length for that country in compact or grouped form, then the
//! mod-97 check. Letters may be lower-case (`de89 3704 …` typed in a chat):
//! the checksum, not the case, is what makes an IBAN.

use crate::checks::{iban_length, iban_mod97};
use crate::scan::boundary_after;
use crate::{Kind, Span};

/// Tries an IBAN starting at byte `i` (which holds an ASCII letter at a word start); one case throughout.
pub fn at(text: &str, i: usize, out: &mut Vec<Span>) -> Option<usize> {
    let b = text.as_bytes();
    let head = b.get(i..i + 4)?;
    let lower = head[0].is_ascii_lowercase();
    let letter = |c: u8| if lower { c.is_ascii_lowercase() } else { c.is_ascii_uppercase() };
    if !(letter(head[0]) && letter(head[1]) && head[2].is_ascii_digit() && head[3].is_ascii_digit()) {
        return None;
    }
    let len = iban_length([head[0].to_ascii_uppercase(), head[1].to_ascii_uppercase()])?;
    let mut compact = Vec::with_capacity(len);
    let mut j = i;
    while compact.len() < len && j < b.len() {
        let c = b[j];
        if c.is_ascii_digit() || letter(c) {
            compact.push(c.to_ascii_uppercase());
            j += 1;
        } else if c == b' ' && compact.len() % 4 == 0 && b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric) {
            j += 1;
        } else {
            return None;
        }
    }
    if compact.len() != len || !boundary_after(text, j) || iban_mod97(&compact) != Some(1) {
        return None;
    }
    out.push(Span::new(i, j, Kind::Iban, 0.97));
    Some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans() {
        let t = "IBAN GB82 WEST 1234 5698 7654 32 and DE89370400440532013000.";
        let mut v = Vec::new();
        at(t, 5, &mut v);
        at(t, 37, &mut v);
        let got: Vec<&str> = v.iter().map(|s| &t[s.start..s.end]).collect();
        assert_eq!(got, ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"]);
        assert!(at("DE89370400440532013001", 0, &mut v).is_none());
        // Lower case, as typed in a chat; mixed case within one IBAN is not accepted.
        let t = "my iban is de89 3704 0044 0532 0130 00 ok";
        let mut v = Vec::new();
        assert_eq!(at(t, 11, &mut v), Some(38));
        assert_eq!(&t[v[0].start..v[0].end], "de89 3704 0044 0532 0130 00");
        assert!(at("gb82 West 1234 5698 7654 32", 0, &mut v).is_none());
        assert!(at("de89370400440532013001", 0, &mut v).is_none());
    }
}
