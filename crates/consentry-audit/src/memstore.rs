//! A read-only, in-memory [`Store`] over a bundle's events, checkpoints and member facts, so the
//! ledger's own verification and snapshot code runs offline unchanged.

use chrono::NaiveDate;
use consentry_ledger::{Hash, LedgerError, MemberRecord, NewEvent, SignedTreeHead, Store, StoredEvent};
use consentry_policy::ConsentEvent;

/// The evidence of a ledger, held in memory; every write is refused.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    events: Vec<StoredEvent>,
    checkpoints: Vec<SignedTreeHead>,
    members: Vec<MemberRecord>,
}

fn read_only() -> LedgerError {
    LedgerError::Invalid("an evidence bundle is read-only".into())
}

impl MemStore {
    /// A store holding `events` in the order given (verification reports gaps and reordering),
    /// `checkpoints` (sorted by tree size, as stores return them) and `members` (sorted by id).
    pub fn new(
        events: Vec<StoredEvent>,
        mut checkpoints: Vec<SignedTreeHead>,
        mut members: Vec<MemberRecord>,
    ) -> MemStore {
        checkpoints.sort_by_key(|c| c.head.tree_size);
        members.sort_by_key(|m| m.member_id);
        MemStore { events, checkpoints, members }
    }

    /// The events, in bundle order.
    pub fn events(&self) -> &[StoredEvent] {
        &self.events
    }

    /// The member records, by id.
    pub fn members(&self) -> &[MemberRecord] {
        &self.members
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
        Ok(self.events.iter().map(|e| e.event.seq).max().unwrap_or(0))
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
        Ok(self.in_range(from, to).map(|e| e.leaf_hash).collect())
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

    fn put_members(&self, _members: &[MemberRecord]) -> Result<(), LedgerError> {
        Err(read_only())
    }

    fn scan_members(&self, f: &mut dyn FnMut(MemberRecord)) -> Result<(), LedgerError> {
        for m in &self.members {
            f(m.clone());
        }
        Ok(())
    }

    fn scan_member_facts(&self, f: &mut dyn FnMut(u64, &str, NaiveDate)) -> Result<(), LedgerError> {
        for m in &self.members {
            f(m.member_id, &m.jurisdiction, m.birth_date);
        }
        Ok(())
    }

    fn member(&self, member_id: u64) -> Result<Option<MemberRecord>, LedgerError> {
        Ok(self.members.binary_search_by_key(&member_id, |m| m.member_id).ok().map(|i| self.members[i].clone()))
    }

    fn get_meta(&self, _key: &str) -> Result<Option<String>, LedgerError> {
        Ok(None)
    }

    fn set_meta(&self, _key: &str, _value: &str) -> Result<(), LedgerError> {
        Err(read_only())
    }
}
