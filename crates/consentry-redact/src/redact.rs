//! Replacing spans by typed placeholders, optionally numbered so that the
//! same value keeps the same number within a document or thread
//! (`<PERSON_1>` stays the same person, even when later called by first name
//! only).

use crate::{Kind, Span};
use std::collections::HashMap;

/// Placeholder numbers for one document or thread: the same value (normalised) always gets the same number.
#[derive(Debug, Default, Clone)]
pub struct Numbering {
    ids: HashMap<(Kind, String), u32>,
    next: [u32; 9],
    people: Vec<(Vec<String>, u32)>,
}

impl Numbering {
    /// An empty numbering, for a new document or thread.
    pub fn new() -> Numbering {
        Numbering::default()
    }

    /// The number of `value` of `kind`, assigning the next free one on first sight.
    pub fn id(&mut self, kind: Kind, value: &str) -> u32 {
        let key = normalise(kind, value);
        if let Some(&n) = self.ids.get(&(kind, key.clone())) {
            return n;
        }
        let n = if kind == Kind::Person { self.person_id(&key) } else { None };
        let n = n.unwrap_or_else(|| {
            let slot = &mut self.next[kind.index()];
            *slot += 1;
            *slot
        });
        if kind == Kind::Person {
            self.people.push((key.split(' ').map(str::to_string).collect(), n));
        }
        self.ids.insert((kind, key), n);
        n
    }

    /// A person already seen whose name shares a word with `key` (`Anna` after `Anna Smith`), if exactly one does.
    fn person_id(&self, key: &str) -> Option<u32> {
        let words: Vec<&str> = key.split(' ').collect();
        let mut found: Option<u32> = None;
        for (seen, n) in &self.people {
            if seen.iter().any(|w| words.contains(&w.as_str())) {
                match found {
                    Some(f) if f != *n => return None,
                    _ => found = Some(*n),
                }
            }
        }
        found
    }
}

/// The form under which two mentions count as the same value.
fn normalise(kind: Kind, value: &str) -> String {
    match kind {
        Kind::Phone | Kind::CreditCard | Kind::Iban | Kind::Ssn => {
            value.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
        }
        Kind::Person => value.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" "),
        _ => value.to_lowercase(),
    }
}

fn write(text: &str, spans: &[Span], mut numbering: Option<&mut Numbering>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for s in spans {
        let valid = s.start >= pos
            && s.start < s.end
            && s.end <= text.len()
            && text.is_char_boundary(s.start)
            && text.is_char_boundary(s.end);
        if !valid {
            continue;
        }
        out.push_str(&text[pos..s.start]);
        out.push('<');
        out.push_str(s.kind.as_str());
        if let Some(n) = numbering.as_deref_mut() {
            out.push('_');
            out.push_str(&n.id(s.kind, &text[s.start..s.end]).to_string());
        }
        out.push('>');
        pos = s.end;
    }
    out.push_str(&text[pos..]);
    out
}

/// Replaces each span (sorted, disjoint, as [`crate::Detector::detect`] returns) by `<TYPE>`; invalid spans are skipped.
pub fn redact(text: &str, spans: &[Span]) -> String {
    write(text, spans, None)
}

/// Replaces each span by `<TYPE_n>`, numbering values consistently across calls that share `numbering`.
pub fn redact_with(text: &str, spans: &[Span], numbering: &mut Numbering) -> String {
    write(text, spans, Some(numbering))
}

/// Numberings of many threads in bounded memory: the `capacity` most recently used threads keep
/// theirs; a thread unused for longer starts afresh. Input grouped by thread (the usual export
/// order) therefore numbers every thread consistently, whatever the input's length.
#[derive(Debug)]
pub struct ThreadNumberings {
    capacity: usize,
    clock: u64,
    /// Thread → (its numbering, when it was last used).
    threads: HashMap<String, (Numbering, u64)>,
    /// Last use → thread, oldest first, to find whom to evict.
    by_use: std::collections::BTreeMap<u64, String>,
}

impl ThreadNumberings {
    /// How many threads keep their numbering by default.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// Keeps at most `capacity` (at least one) threads' numberings.
    pub fn new(capacity: usize) -> ThreadNumberings {
        ThreadNumberings {
            capacity: capacity.max(1),
            clock: 0,
            threads: HashMap::new(),
            by_use: std::collections::BTreeMap::new(),
        }
    }

    /// The numbering of `thread`, evicting the least recently used thread when full.
    pub fn get(&mut self, thread: &str) -> &mut Numbering {
        self.clock += 1;
        let now = self.clock;
        if !self.threads.contains_key(thread)
            && self.threads.len() >= self.capacity
            && let Some((_, oldest)) = self.by_use.pop_first()
        {
            self.threads.remove(&oldest);
        }
        let entry = self.threads.entry(thread.to_string()).or_insert_with(|| (Numbering::new(), now));
        self.by_use.remove(&entry.1);
        entry.1 = now;
        self.by_use.insert(now, thread.to_string());
        &mut entry.0
    }

    /// How many threads currently keep a numbering.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// True when no thread keeps a numbering.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_is_consistent() {
        let mut n = Numbering::new();
        let t = "Anna Smith met Bob. Anna called +1 415 555 0100, then 14155550100.";
        let spans = [
            Span::new(0, 10, Kind::Person, 0.9),
            Span::new(15, 18, Kind::Person, 0.9),
            Span::new(20, 24, Kind::Person, 0.9),
            Span::new(32, 47, Kind::Phone, 0.9),
            Span::new(54, 65, Kind::Phone, 0.9),
        ];
        assert_eq!(
            redact_with(t, &spans, &mut n),
            "<PERSON_1> met <PERSON_2>. <PERSON_1> called <PHONE_1>, then <PHONE_1>."
        );
        assert_eq!(redact(t, &spans[..1]), "<PERSON> met Bob. Anna called +1 415 555 0100, then 14155550100.");
    }

    #[test]
    fn thread_numberings_stay_bounded_and_consistent_within_the_window() {
        let mut t = ThreadNumberings::new(2);
        assert_eq!(t.get("a").id(Kind::Email, "x@example.com"), 1);
        assert_eq!(t.get("a").id(Kind::Email, "y@example.com"), 2);
        assert_eq!(t.get("b").id(Kind::Email, "z@example.com"), 1);
        // "a" was used before "b": touching it keeps it; "c" then evicts "b".
        assert_eq!(t.get("a").id(Kind::Email, "x@example.com"), 1);
        t.get("c");
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("a").id(Kind::Email, "y@example.com"), 2);
        assert_eq!(t.get("b").id(Kind::Email, "y@example.com"), 1, "an evicted thread starts afresh");
        for i in 0..10_000 {
            t.get(&i.to_string());
        }
        assert!(t.len() <= 2 && t.by_use.len() == t.len());
    }
}
