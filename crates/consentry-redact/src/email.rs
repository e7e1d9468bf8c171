//! E-mail addresses: found from each `@`, expanded over the characters RFC
//! 5321 allows in practice, then checked for a dotted host with an
//! alphabetic top-level label.

use crate::{Kind, Span};

fn local_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn host_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

/// Appends every e-mail address in `text` to `out`.
pub fn detect(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut last_end = 0;
    for at in memchr::memchr_iter(b'@', b) {
        if at < last_end {
            continue;
        }
        // Local part: ASCII atoms plus letters of any script (RFC 6531 addresses such as `zoë@…`).
        let mut s = at;
        while let Some(c) = crate::scan::prev_char(text, s) {
            if (c.is_ascii() && local_byte(c as u8))
                || (!c.is_ascii() && c.is_alphanumeric() && !crate::scan::is_cjk(c))
            {
                s -= c.len_utf8();
            } else {
                break;
            }
        }
        while s < at && matches!(b[s], b'.' | b'\'' | b'-') {
            s += 1;
        }
        if s == at || b[at - 1] == b'.' {
            continue;
        }
        let mut e = at + 1;
        while let Some(c) = crate::scan::next_char(text, e) {
            if (c.is_ascii() && host_byte(c as u8)) || (!c.is_ascii() && c.is_alphanumeric() && !crate::scan::is_cjk(c))
            {
                e += c.len_utf8();
            } else {
                break;
            }
        }
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        let Some(host) = text.get(at + 1..e) else { continue };
        let labels: Vec<&str> = host.split('.').collect();
        let tld = labels.last().copied().unwrap_or("");
        let ok = labels.len() >= 2
            && labels.iter().all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'))
            && tld.len() >= 2
            && tld.chars().all(char::is_alphabetic);
        if ok {
            out.push(Span::new(s, e, Kind::Email, 0.97));
            last_end = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        detect(t, &mut v);
        v.iter().map(|s| &t[s.start..s.end]).collect()
    }

    #[test]
    fn emails() {
        assert_eq!(find("mail me at anna.smith+jobs@mail.example.co.uk."), ["anna.smith+jobs@mail.example.co.uk"]);
        assert_eq!(find("(j_o'neil@ex-ample.io)"), ["j_o'neil@ex-ample.io"]);
        assert!(find("@handle and a@b and x@localhost").is_empty());
        assert_eq!(find("Zoë: zoe@example.com!"), ["zoe@example.com"]);
        assert_eq!(find("Mail zoë@example.com、ありがとう"), ["zoë@example.com"]);
    }
}
