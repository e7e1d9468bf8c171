//! A read-only, in-memory [`Store`] over a bundle's events, fact entries and checkpoints, so the
//! ledger's own verification and snapshot code runs offline unchanged. The member directory is derived
//! from the fact entries (the latest per member), never taken from a separate list.

use consentry_ledger::{
    FactsEntry, Hash, LedgerError, MemberRecord, NewEvent, SignedTreeHead, Store, StoredEvent, StoredFacts,
};
use consentry_policy::ConsentEvent;

/// The evidence of a ledger, held in memory; every write is refused.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    events: Vec<StoredEvent>,
    facts: Vec<StoredFacts>,
    checkpoints: Vec<SignedTreeHead>,
    handovers: Vec<consentry_ledger::KeyHandover>,
}

fn read_only() -> LedgerError {
    LedgerError::Invalid("an evidence bundle is read-only".into())
}

impl MemStore {
    /// A store holding `events` and `facts` in the order given (verification reports gaps and
    /// reordering) and `checkpoints` (sorted by tree size, as stores return them).
    pub fn new(events: Vec<StoredEvent>, facts: Vec<StoredFacts>, mut checkpoints: Vec<SignedTreeHead>) -> MemStore {
        checkpoints.sort_by_key(|c| c.head.tree_size);
        MemStore { events, facts, checkpoints, handovers: Vec::new() }
    }

    /// The same store with the log's key hand-overs (a bundle of a log whose key rotated).
    pub fn with_handovers(mut self, handovers: Vec<consentry_ledger::KeyHandover>) -> MemStore {
        self.handovers = handovers;
        self
    }

    /// The events, in bundle order.
    pub fn events(&self) -> &[StoredEvent] {
        &self.events
    }

    /// The fact entries, in bundle order.
    pub fn facts(&self) -> &[StoredFacts] {
        &self.facts
    }

    /// Every member's latest facts, by id (the member directory the log records).
    pub fn members(&self) -> Vec<MemberRecord> {
        let mut out = Vec::new();
        let _ = self.scan_members(&mut |m| out.push(m));
        out
    }

    fn in_range(&self, from: u64, to: u64) -> impl Iterator<Item = &StoredEvent> {
        self.events.iter().filter(move |e| e.event.seq >= from && e.event.seq <= to)
    }
}

impl Store for MemStore {
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
        let events = self.events.iter().map(|e| e.event.seq);
        Ok(events.chain(self.facts.iter().map(|f| f.facts.seq)).max().unwrap_or(0))
    }

    fn scan(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEvent) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        for e in self.in_range(from, to) {
            f(e.clone())?;
        }
        Ok(())
    }

    fn scan_consent(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, ConsentEvent)) -> Result<(), LedgerError> {
        for e in self.in_range(from, to) {
            let b = &e.event.body;
            f(b.member_id, &b.purpose, b.consent());
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
        Ok(self.facts.iter().filter(|s| s.facts.member_id == member_id).map(|s| s.facts.clone()).collect())
    }

    fn scan_facts(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredFacts) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        for s in self.facts.iter().filter(|s| s.facts.seq >= from && s.facts.seq <= to) {
            f(s.clone())?;
        }
        Ok(())
    }

    fn event(&self, seq: u64) -> Result<Option<StoredEvent>, LedgerError> {
        Ok(self.events.iter().find(|e| e.event.seq == seq).cloned())
    }

    fn put_checkpoint(&self, _sth: &SignedTreeHead) -> Result<(), LedgerError> {
        Err(read_only())
    }

    fn checkpoints(&self) -> Result<Vec<SignedTreeHead>, LedgerError> {
        Ok(self.checkpoints.clone())
    }

    fn key_handovers(&self) -> Result<Vec<consentry_ledger::KeyHandover>, LedgerError> {
        Ok(self.handovers.clone())
    }

    fn member(&self, member_id: u64) -> Result<Option<MemberRecord>, LedgerError> {
        let latest = self.facts.iter().filter(|s| s.facts.member_id == member_id).max_by_key(|s| s.facts.seq);
        Ok(latest.map(|s| MemberRecord::from(&s.facts)))
    }

    fn get_meta(&self, _key: &str) -> Result<Option<String>, LedgerError> {
        Ok(None)
    }

    fn set_meta(&self, _key: &str, _value: &str) -> Result<(), LedgerError> {
        Err(read_only())
    }
}
