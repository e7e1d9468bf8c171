//! The detector: built once (the name automaton is the expensive part),
//! immutable afterwards, and shared by reference across threads.

use crate::person::NameIndex;
use crate::scan::boundary_before;
use crate::{Kind, Numbering, RedactError, Span, address, email, iban, ip, numbers, person, url};

/// Options for building a [`Detector`]; start from [`Detector::builder`].
#[derive(Debug, Clone)]
pub struct DetectorBuilder {
    members: Vec<String>,
    gazetteer: bool,
    min_score: f32,
    kinds: [bool; 9],
}

impl Default for DetectorBuilder {
    fn default() -> Self {
        DetectorBuilder { members: Vec::new(), gazetteer: true, min_score: 0.5, kinds: [true; 9] }
    }
}

impl DetectorBuilder {
    /// Adds members' full names (`"Given Surname"`) to the directory automaton.
    pub fn member_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.members.extend(names.into_iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// Uses (default) or leaves out the shipped Census gazetteer of given names and surnames.
    pub fn gazetteer(mut self, on: bool) -> Self {
        self.gazetteer = on;
        self
    }

    /// Keeps only detections at or above this confidence (default 0.5); lower trades precision for recall.
    pub fn min_score(mut self, score: f32) -> Self {
        self.min_score = score;
        self
    }

    /// Restricts detection to these kinds (default: all nine).
    pub fn kinds(mut self, kinds: &[Kind]) -> Self {
        self.kinds = [false; 9];
        for k in kinds {
            self.kinds[k.index()] = true;
        }
        self
    }

    /// Builds the automaton; fails only on an out-of-range option or an automaton too large to build.
    pub fn build(self) -> Result<Detector, RedactError> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(RedactError::Config(format!("min score {} must lie in 0..=1", self.min_score)));
        }
        let names = if self.kinds[Kind::Person.index()] {
            NameIndex::build(&self.members, self.gazetteer)?
        } else {
            NameIndex::build(std::iter::empty::<&str>(), false)?
        };
        Ok(Detector { names, min_score: self.min_score, kinds: self.kinds })
    }
}

/// Finds PII in text. Immutable once built, `Send + Sync`: build once, share by reference.
pub struct Detector {
    names: NameIndex,
    min_score: f32,
    kinds: [bool; 9],
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector").field("names", &self.names.len()).field("min_score", &self.min_score).finish()
    }
}

impl Detector {
    /// A detector with the gazetteer and no member directory, all kinds, threshold 0.5.
    pub fn new() -> Result<Detector, RedactError> {
        DetectorBuilder::default().build()
    }

    /// Starts configuring a detector (member names, threshold, kinds).
    pub fn builder() -> DetectorBuilder {
        DetectorBuilder::default()
    }

    /// Distinct names in the automaton (members and gazetteer), for reports.
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// Heap bytes held by the name automaton, for capacity planning.
    pub fn memory_usage(&self) -> usize {
        self.names.memory_usage()
    }

    /// The confidence threshold in force.
    pub fn min_score(&self) -> f32 {
        self.min_score
    }

    /// Every candidate of the enabled kinds before thresholding and overlap resolution (for evaluation and tuning).
    pub fn candidates(&self, text: &str) -> Vec<Span> {
        let mut out = Vec::new();
        let on = |k: Kind| self.kinds[k.index()];
        if on(Kind::Email) {
            email::detect(text, &mut out);
        }
        if on(Kind::Url) {
            url::detect(text, &mut out);
        }
        if on(Kind::Ip) {
            ip::detect_v6(text, &mut out);
        }
        let b = text.as_bytes();
        let (mut num_next, mut addr_next, mut iban_next) = (0, 0, 0);
        let person = on(Kind::Person);
        // Capitalised word starts, found once here and handed to the person detector.
        let mut caps: Vec<usize> = Vec::with_capacity(if person { b.len() / 16 } else { 0 });
        // Lower-case word starts (approximately: letters after a non-letter), to recognise chat-style text.
        let mut lower_words = 0usize;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_digit() {
                if i >= addr_next
                    && boundary_before(text, i)
                    && on(Kind::Address)
                    && let Some(e) = address::at_number(text, i, &mut out)
                {
                    addr_next = e;
                }
                if i >= num_next {
                    num_next = numbers::chunk_at(text, i, &mut out);
                }
                i += crate::scan::digits_at(b, i).max(1);
            } else if c.is_ascii_uppercase() {
                if boundary_before(text, i) {
                    if person {
                        caps.push(i);
                    }
                    if i >= iban_next
                        && on(Kind::Iban)
                        && let Some(e) = iban::at(text, i, &mut out)
                    {
                        iban_next = e;
                    }
                    if i >= addr_next
                        && on(Kind::Address)
                        && let Some(e) = address::at_word(text, i, &mut out)
                    {
                        addr_next = e;
                    }
                }
                i += 1;
            } else if c.is_ascii_lowercase() && !(i > 0 && b[i - 1] == b'\\') {
                // A lower-case IBAN (`de89 3704 …`): two letters and two digits at a word start, checked by mod 97.
                if i >= iban_next
                    && b.get(i + 2).is_some_and(u8::is_ascii_digit)
                    && on(Kind::Iban)
                    && boundary_before(text, i)
                    && let Some(e) = iban::at(text, i, &mut out)
                {
                    iban_next = e;
                }
                lower_words += 1;
                // The rest of a word starts nothing (digits glued to letters are not identifiers; the `n` of an
                // escaped `\\n` is not skipped, so what follows it still starts a word).
                i += 1;
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
            } else {
                if person && c >= 0xC0 && boundary_before(text, i) && crate::scan::is_capitalised_at(text, i) {
                    caps.push(i);
                }
                i += 1;
            }
        }
        // Text written (nearly) without capitals (chat): names and addresses are looked for among lower-case words
        // too, with stricter evidence. Ordinary text never pays for these passes.
        let lower_mode = lower_words >= 2 && (caps.len() * 16 <= lower_words || (text.len() <= 280 && caps.len() <= 2));
        if person {
            person::detect_at(&self.names, text, &caps, &mut out);
            if lower_mode {
                person::detect_lower(&self.names, text, &mut out);
            }
        }
        if lower_mode && on(Kind::Address) {
            address::in_lower_case(text, &mut out);
        }
        out.retain(|s| on(s.kind) && s.start < s.end && text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        out
    }

    /// Detections at or above the threshold, disjoint, sorted by start.
    pub fn detect(&self, text: &str) -> Vec<Span> {
        let mut c = self.candidates(text);
        c.retain(|s| s.score >= self.min_score);
        drop_inside_addresses(text, &mut c);
        crate::resolve(c)
    }

    /// `text` with every detection replaced by `<TYPE>`.
    pub fn redact(&self, text: &str) -> String {
        crate::redact(text, &self.detect(text))
    }

    /// `text` with every detection replaced by `<TYPE_n>`, numbered consistently across calls sharing `numbering`.
    pub fn redact_numbered(&self, text: &str, numbering: &mut Numbering) -> String {
        crate::redact_with(text, &self.detect(text), numbering)
    }
}

/// Drops names and phone-like digit groups that lie inside a kept address: streets are named after people
/// (`Via Carlo Cattaneo 88`, `Kieler Strasse 90`) and a lot number may precede the house number (`9335 2733 Jasper
/// Ave`); the address is the better reading of those words, whatever the scores.
fn drop_inside_addresses(text: &str, c: &mut Vec<Span>) {
    let mut addresses: Vec<(usize, usize)> =
        c.iter().filter(|s| s.kind == Kind::Address).map(|s| (s.start, s.end)).collect();
    if addresses.is_empty() {
        return;
    }
    // Sorted by start, each end replaced by the furthest end so far: one binary search per span.
    addresses.sort_unstable();
    let mut furthest = 0;
    for a in &mut addresses {
        furthest = furthest.max(a.1);
        a.1 = furthest;
    }
    let ends: Vec<usize> = {
        let mut e: Vec<usize> = c.iter().filter(|s| s.kind == Kind::Address).map(|s| s.end).collect();
        e.sort_unstable();
        e
    };
    let b = text.as_bytes();
    c.retain(|s| {
        if !matches!(s.kind, Kind::Person | Kind::Phone) {
            return true;
        }
        let k = addresses.partition_point(|a| a.0 <= s.start);
        if k > 0 && addresses[k - 1].1 >= s.end {
            return false;
        }
        // A place right after an address, on its line or the next (`…, Apt. 789 Jacareí São Paulo`,
        // `…Street\nColorado Springs`), is its town or region, not a person, unless the directory knows the name.
        if s.kind == Kind::Person && s.score < 0.9 {
            let e = ends.partition_point(|&e| e <= s.start);
            if e > 0 {
                let gap = &b[ends[e - 1]..s.start];
                let joins = gap.len() <= 4
                    && gap.iter().all(|c| matches!(c, b' ' | b',' | b'\n' | b'\\' | b'n'))
                    && gap.iter().filter(|&&c| c == b'n').count() <= gap.iter().filter(|&&c| c == b'\\').count();
                let line_ends = matches!(b.get(s.end), None | Some(b'\n' | b',' | b'\\' | b'.' | b'?' | b' '));
                if joins && line_ends {
                    return false;
                }
            }
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn shareable() {
        assert_send_sync::<Detector>();
    }

    #[test]
    fn end_to_end() {
        let d = Detector::builder().member_names(["Aoife Kowalczyk"]).build().unwrap_or_else(|e| panic!("{e}"));
        let t = "Hi Aoife,\n\nCall me on +44 20 7946 0958 or mail aoife.k@example.com. My IBAN is \
                 DE89 3704 0044 0532 0130 00, card 4111 1111 1111 1111, SSN 123-45-6789, server 10.0.0.12 \
                 and fe80::1, see github.com/aoife. Office: 221B Baker Street, London NW1 6XE.\n\nBest,\nTomás Ó Briain";
        let r = d.redact(t);
        assert_eq!(
            r,
            "Hi <PERSON>,\n\nCall me on <PHONE> or mail <EMAIL>. My IBAN is <IBAN>, card <CREDIT_CARD>, SSN <SSN>, \
             server <IP> and <IP>, see <URL>. Office: <ADDRESS>.\n\nBest,\n<PERSON>"
        );
    }
}
