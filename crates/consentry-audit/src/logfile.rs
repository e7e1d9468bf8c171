//! A read-only [`Store`] over a bundle's event and fact files that streams them on every scan, so the ledger's own
//! verification runs offline unchanged in memory that does not grow with the log. The member directory is derived
//! from the fact entries (the latest per member), never taken from a separate list.

use crate::bundle::FactsLine;
use consentry_ledger::{
    FactsEntry, Hash, KeyHandover, LedgerError, MemberRecord, NewEvent, SignedTreeHead, Store, StoredEntry,
    StoredEvent, StoredFacts,
};
use consentry_policy::ConsentEvent;
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

fn read_only() -> LedgerError {
    LedgerError::Invalid("an evidence bundle is read-only".into())
}

/// Each byte's value as a hex digit, 0xff for a byte that is none: a table, because the digits of a hash are random
/// and a branch per digit mispredicts half the time (that branch was a third of each pass over a million lines).
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// 32 bytes from exactly 64 hex digits (either case), as `hex::decode` reads them; `None` otherwise.
fn hex32(s: &str) -> Option<[u8; 32]> {
    let b: &[u8; 64] = s.as_bytes().try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (i, o) in out.iter_mut().enumerate() {
        let (hi, lo) = (HEX[usize::from(b[2 * i])], HEX[usize::from(b[2 * i + 1])]);
        bad |= hi | lo;
        *o = (hi << 4) | lo;
    }
    (bad & 0xf0 == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::hex32;

    #[test]
    fn hashes_decode_as_the_hex_crate_decodes_them() {
        let h = blake3::hash(b"x");
        let lower = h.to_hex().to_string();
        assert_eq!(hex32(&lower), Some(*h.as_bytes()));
        assert_eq!(hex32(&lower.to_uppercase()), Some(*h.as_bytes()));
        for bad in
            ["", &lower[..62], &format!("{lower}00"), &format!("g{}", &lower[1..]), &format!("{}é", &lower[..62])]
        {
            assert_eq!(hex32(bad), None, "{bad}");
            assert!(hex::decode(bad).ok().and_then(|v| <[u8; 32]>::try_from(v).ok()).is_none(), "{bad}");
        }
    }
}

/// One line of a bundle's JSON Lines file, parsed: what a bad line is called in a finding when it is not.
pub(crate) trait Line: DeserializeOwned {
    /// The entry it stores.
    type Stored;
    /// The stored entry, or why its hashes are unreadable.
    fn stored(self) -> Result<Self::Stored, String>;
}

/// One line of `ledger/events.jsonl` read field by field: the same JSON as [`EventLine`], parsed without serde's
/// `flatten` (which buffers every field of every line into an intermediate tree first, most of a pass's CPU time).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct EventRow {
    seq: u64,
    recorded_time: i64,
    member_id: u64,
    purpose: String,
    action: consentry_policy::Action,
    notice_version: u32,
    source: consentry_policy::Source,
    actor: String,
    event_time: i64,
    idempotency_key: String,
    leaf_hash: String,
    chain_hash: String,
}

impl Line for EventRow {
    type Stored = StoredEvent;
    fn stored(self) -> Result<StoredEvent, String> {
        match (hex32(&self.leaf_hash), hex32(&self.chain_hash)) {
            (Some(leaf_hash), Some(chain_hash)) => Ok(StoredEvent {
                event: consentry_ledger::Event {
                    seq: self.seq,
                    recorded_time: self.recorded_time,
                    body: consentry_ledger::NewEvent {
                        member_id: self.member_id,
                        purpose: self.purpose,
                        action: self.action,
                        notice_version: self.notice_version,
                        source: self.source,
                        actor: self.actor,
                        event_time: self.event_time,
                        idempotency_key: self.idempotency_key,
                    },
                },
                leaf_hash,
                chain_hash,
            }),
            _ => Err("a hash is not 32 bytes of hex".into()),
        }
    }
}

impl Line for FactsLine {
    type Stored = StoredFacts;
    fn stored(self) -> Result<StoredFacts, String> {
        match (hex32(&self.leaf_hash), hex32(&self.chain_hash)) {
            (Some(leaf_hash), Some(chain_hash)) => Ok(StoredFacts { facts: self.facts, leaf_hash, chain_hash }),
            _ => Err("a hash is not 32 bytes of hex".into()),
        }
    }
}

/// One line of a log file: its 1-based number and its entry, or why it cannot be read.
pub(crate) type NumberedLine<S> = (usize, Result<S, String>);

/// A JSON Lines file read one line at a time (the line buffer is the only memory it holds).
pub(crate) struct Lines<L> {
    path: PathBuf,
    reader: Option<BufReader<std::fs::File>>,
    buf: Vec<u8>,
    number: usize,
    _line: std::marker::PhantomData<L>,
}

impl<L: Line> Lines<L> {
    /// Opens `path`; an absent file (`None`) reads as empty.
    pub(crate) fn open(path: Option<&Path>) -> Result<Lines<L>, LedgerError> {
        let reader = match path {
            None => None,
            Some(p) => Some(BufReader::with_capacity(
                1 << 16,
                std::fs::File::open(p).map_err(|source| LedgerError::Io { path: p.to_path_buf(), source })?,
            )),
        };
        Ok(Lines {
            path: path.map(Path::to_path_buf).unwrap_or_default(),
            reader,
            buf: Vec::new(),
            number: 0,
            _line: std::marker::PhantomData,
        })
    }

    /// The next line: its 1-based number and the stored entry or why it is unreadable; `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<NumberedLine<L::Stored>>, LedgerError> {
        let Some(reader) = self.reader.as_mut() else { return Ok(None) };
        self.buf.clear();
        let n = reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| LedgerError::Io { path: self.path.clone(), source })?;
        if n == 0 {
            return Ok(None);
        }
        // As `BufRead::lines` splits: without the `\n` or `\r\n` that ends it.
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        self.number += 1;
        let parsed = match std::str::from_utf8(&self.buf) {
            Err(_) => Err("stream did not contain valid UTF-8".to_string()),
            Ok(text) => serde_json::from_str::<L>(text).map_err(|e| e.to_string()).and_then(Line::stored),
        };
        Ok(Some((self.number, parsed)))
    }

    /// The next readable entry (unreadable lines were noted when the bundle was opened and are skipped).
    pub(crate) fn next_stored(&mut self) -> Result<Option<L::Stored>, LedgerError> {
        while let Some((_, parsed)) = self.next_line()? {
            if let Ok(s) = parsed {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }
}

/// The evidence of a ledger, read from the bundle's files on every scan; every write is refused.
#[derive(Debug, Clone, Default)]
pub struct BundleStore {
    events: Option<PathBuf>,
    facts: Option<PathBuf>,
    checkpoints: Vec<SignedTreeHead>,
    handovers: Vec<KeyHandover>,
    len: u64,
    entries: (u64, u64),
}

impl BundleStore {
    /// A store over the event and fact files (`None`: absent, read as empty) and `checkpoints` (sorted by tree size,
    /// as stores return them), with the highest sequence number and the readable entries of each kind the files
    /// held when the bundle was opened.
    pub(crate) fn new(
        events: Option<PathBuf>,
        facts: Option<PathBuf>,
        mut checkpoints: Vec<SignedTreeHead>,
        len: u64,
        entries: (u64, u64),
    ) -> BundleStore {
        checkpoints.sort_by_key(|c| c.head.tree_size);
        BundleStore { events, facts, checkpoints, handovers: Vec::new(), len, entries }
    }

    /// The same store with the log's key hand-overs (a bundle of a log whose key rotated).
    pub(crate) fn with_handovers(mut self, handovers: Vec<KeyHandover>) -> BundleStore {
        self.handovers = handovers;
        self
    }

    /// Readable consent events and fact entries in the files.
    pub fn entry_counts(&self) -> (u64, u64) {
        self.entries
    }

    /// Every member's latest facts, by id (the member directory the log records).
    pub fn members(&self) -> Result<Vec<MemberRecord>, LedgerError> {
        let mut out = Vec::new();
        self.scan_members(&mut |m| out.push(m))?;
        Ok(out)
    }

    fn event_lines(&self) -> Result<Lines<EventRow>, LedgerError> {
        Lines::open(self.events.as_deref())
    }

    fn fact_lines(&self) -> Result<Lines<FactsLine>, LedgerError> {
        Lines::open(self.facts.as_deref())
    }

    /// Every readable event in file order until `f` breaks.
    fn each_event(
        &self,
        f: &mut dyn FnMut(StoredEvent) -> Result<ControlFlow<()>, LedgerError>,
    ) -> Result<(), LedgerError> {
        let mut lines = self.event_lines()?;
        while let Some(e) = lines.next_stored()? {
            if f(e)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Every readable fact entry in file order.
    fn each_fact(&self, f: &mut dyn FnMut(StoredFacts) -> Result<(), LedgerError>) -> Result<(), LedgerError> {
        let mut lines = self.fact_lines()?;
        while let Some(s) = lines.next_stored()? {
            f(s)?;
        }
        Ok(())
    }
}

impl Store for BundleStore {
    fn backend(&self) -> &'static str {
        "bundle"
    }

    fn append(
        &self,
        _batch: Vec<NewEvent>,
        _recorded_time: i64,
    ) -> Result<Vec<consentry_ledger::Appended>, LedgerError> {
        Err(read_only())
    }

    fn len(&self) -> Result<u64, LedgerError> {
        Ok(self.len)
    }

    fn scan(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEvent) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.each_event(&mut |e| {
            if (from..=to).contains(&e.event.seq) {
                f(e)?;
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    fn scan_consent(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, ConsentEvent)) -> Result<(), LedgerError> {
        self.scan(from, to, &mut |e| {
            let b = &e.event.body;
            f(b.member_id, &b.purpose, b.consent());
            Ok(())
        })
    }

    /// Both files at once, merged as the default merges them (a fact entry before the first event with a sequence
    /// number at or above its own), but neither held in memory.
    fn scan_entries(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let in_range = |seq: u64| (from..=to).contains(&seq);
        let mut facts = self.fact_lines()?;
        let mut next_fact = || -> Result<Option<StoredFacts>, LedgerError> {
            while let Some(s) = facts.next_stored()? {
                if in_range(s.facts.seq) {
                    return Ok(Some(s));
                }
            }
            Ok(None)
        };
        let mut pending = next_fact()?;
        self.scan(from, to, &mut |s| {
            while let Some(p) = pending.take_if(|p| p.facts.seq <= s.event.seq) {
                f(p.into())?;
                pending = next_fact()?;
            }
            f(s.into())
        })?;
        while let Some(p) = pending.take() {
            f(p.into())?;
            pending = next_fact()?;
        }
        Ok(())
    }

    fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError> {
        let mut out = Vec::new();
        self.scan_entries(from, to, &mut |s| {
            out.push(s.leaf_hash);
            Ok(())
        })?;
        Ok(out)
    }

    fn append_facts(
        &self,
        _members: Vec<MemberRecord>,
        _actor: &str,
        _recorded_time: i64,
    ) -> Result<Vec<StoredFacts>, LedgerError> {
        Err(read_only())
    }

    fn member_history(&self, member_id: u64) -> Result<Vec<FactsEntry>, LedgerError> {
        let mut out = Vec::new();
        self.each_fact(&mut |s| {
            if s.facts.member_id == member_id {
                out.push(s.facts);
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn scan_facts(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredFacts) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.each_fact(&mut |s| if (from..=to).contains(&s.facts.seq) { f(s) } else { Ok(()) })
    }

    fn event(&self, seq: u64) -> Result<Option<StoredEvent>, LedgerError> {
        let mut found = None;
        self.each_event(&mut |e| {
            if e.event.seq == seq {
                found = Some(e);
                return Ok(ControlFlow::Break(()));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(found)
    }

    fn put_checkpoint(&self, _sth: &SignedTreeHead) -> Result<(), LedgerError> {
        Err(read_only())
    }

    fn checkpoints(&self) -> Result<Vec<SignedTreeHead>, LedgerError> {
        Ok(self.checkpoints.clone())
    }

    fn key_handovers(&self) -> Result<Vec<KeyHandover>, LedgerError> {
        Ok(self.handovers.clone())
    }

    fn member(&self, member_id: u64) -> Result<Option<MemberRecord>, LedgerError> {
        let mut latest: Option<FactsEntry> = None;
        self.each_fact(&mut |s| {
            if s.facts.member_id == member_id && latest.as_ref().is_none_or(|l| s.facts.seq >= l.seq) {
                latest = Some(s.facts);
            }
            Ok(())
        })?;
        Ok(latest.as_ref().map(MemberRecord::from))
    }

    fn get_meta(&self, _key: &str) -> Result<Option<String>, LedgerError> {
        Ok(None)
    }

    fn set_meta(&self, _key: &str, _value: &str) -> Result<(), LedgerError> {
        Err(read_only())
    }
}
