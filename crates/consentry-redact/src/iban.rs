//! IBANs: two capital letters and two digits at a word start, then exactly
//! the registered length for that country in compact or grouped form, then
//! the mod-97 check.

use crate::checks::{iban_length, iban_mod97};
use crate::scan::boundary_after;
use crate::{Kind, Span};

/// Tries an IBAN starting at byte `i` (which holds an upper-case ASCII letter at a word start).
pub fn at(text: &str, i: usize, out: &mut Vec<Span>) -> Option<usize> {
    let b = text.as_bytes();
    let head = b.get(i..i + 4)?;
    if !(head[0].is_ascii_uppercase()
        && head[1].is_ascii_uppercase()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
    {
        return None;
    }
    let len = iban_length([head[0], head[1]])?;
    let mut compact = Vec::with_capacity(len);
    let mut j = i;
    while compact.len() < len && j < b.len() {
        let c = b[j];
        if c.is_ascii_digit() || c.is_ascii_uppercase() {
            compact.push(c);
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
    }
}
