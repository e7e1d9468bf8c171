//! The storage trait both backends implement, and the append algorithm they share.

use crate::event::{Event, NewEvent, StoredEvent, chain_hash};
use crate::{Hash, LedgerError, SignedTreeHead};
use chrono::NaiveDate;
use consentry_policy::ConsentEvent;
use std::collections::HashMap;

/// The result of appending one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stored event (the original one when the key was seen before).
    pub event: Event,
    /// Chain hash after this event.
    pub chain_hash: Hash,
    /// True when the idempotency key was already in the log and nothing new was written.
    pub duplicate: bool,
}

/// What the ledger knows about a member: enough to evaluate consent and fill receipts. Serialisable so an
/// evidence bundle can carry the member directory as is (one JSON object per member).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberRecord {
    /// Member id.
    pub member_id: u64,
    /// ISO 3166 code of the jurisdiction (`US-CA`, `DE`).
    pub jurisdiction: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
}

/// Storage for the log, its checkpoints, the member directory and small settings.
///
/// Implementations must make `append` atomic and durable before returning, assign
/// gap-free sequence numbers even with several writers, and compute leaf and
/// chain hashes with [`prepare_rows`] inside the same transaction that reads the
/// previous chain head.
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Appends a batch atomically at `recorded_time`; duplicates by idempotency key return the stored event.
    fn append(&self, batch: Vec<NewEvent>, recorded_time: i64) -> Result<Vec<Appended>, LedgerError>;

    /// Number of events in the log (= the highest sequence number).
    fn len(&self) -> Result<u64, LedgerError>;

    /// True when the log is empty.
    fn is_empty(&self) -> Result<bool, LedgerError> {
        Ok(self.len()? == 0)
    }

    /// Calls `f` with every stored event with `from <= seq <= to`, in sequence order.
    fn scan(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEvent) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;

    /// Like [`Store::scan`] but only what effective consent needs, as fast as the backend allows.
    fn scan_consent(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, ConsentEvent)) -> Result<(), LedgerError>;

    /// Leaf hashes of events `from..=to`, in order.
    fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError>;

    /// One event by sequence number.
    fn event(&self, seq: u64) -> Result<Option<StoredEvent>, LedgerError>;

    /// Stores a checkpoint (idempotent for the same tree size).
    fn put_checkpoint(&self, sth: &SignedTreeHead) -> Result<(), LedgerError>;

    /// All checkpoints, by tree size.
    fn checkpoints(&self) -> Result<Vec<SignedTreeHead>, LedgerError>;

    /// Inserts or replaces member records.
    fn put_members(&self, members: &[MemberRecord]) -> Result<(), LedgerError>;

    /// Calls `f` with every member record, by id.
    fn scan_members(&self, f: &mut dyn FnMut(MemberRecord)) -> Result<(), LedgerError>;

    /// Like [`Store::scan_members`] without building records, for bulk readers such as snapshots.
    fn scan_member_facts(&self, f: &mut dyn FnMut(u64, &str, NaiveDate)) -> Result<(), LedgerError> {
        self.scan_members(&mut |m| f(m.member_id, &m.jurisdiction, m.birth_date))
    }

    /// One member record.
    fn member(&self, member_id: u64) -> Result<Option<MemberRecord>, LedgerError>;

    /// A small named setting (unlearning cursor, controller name, …).
    fn get_meta(&self, key: &str) -> Result<Option<String>, LedgerError>;

    /// Sets a small named setting.
    fn set_meta(&self, key: &str, value: &str) -> Result<(), LedgerError>;
}

/// Rows to insert for a batch, computed from the previous chain head.
pub struct Prepared {
    /// The new rows (fresh events only), with their leaf and chain hashes.
    pub rows: Vec<(Event, Hash, Hash)>,
    /// One entry per input event, in input order.
    slots: Vec<Slot>,
}

enum Slot {
    /// The `i`-th new row.
    Fresh(usize),
    /// Already in the log, or earlier in the same batch.
    Duplicate(Appended),
}

impl Prepared {
    /// Gives the events back as submitted, for a retry on another path (only for [`prepare_fresh`] output).
    pub fn into_batch(self) -> Vec<NewEvent> {
        self.rows.into_iter().map(|(e, _, _)| e.body).collect()
    }

    /// One result per input event, in input order (call after the rows were written).
    pub fn finish(self) -> Vec<Appended> {
        let mut rows: Vec<Option<(Event, Hash, Hash)>> = self.rows.into_iter().map(Some).collect();
        self.slots
            .into_iter()
            .filter_map(|slot| match slot {
                Slot::Fresh(i) => rows.get_mut(i).and_then(Option::take).map(|(event, _, chain)| Appended {
                    event,
                    chain_hash: chain,
                    duplicate: false,
                }),
                Slot::Duplicate(a) => Some(a),
            })
            .collect()
    }
}

/// Batches at least this large hash their leaves on two threads.
const PARALLEL_LEAVES: usize = 4096;

/// The append algorithm shared by every backend: dedupe by idempotency key
/// (against the log via `existing` and within the batch), assign sequence
/// numbers after `last_seq`, and extend the hash chain from `last_chain`.
///
/// Leaf hashes of a large batch are computed on two threads (they depend only
/// on each event and its sequence number); the chain is then extended in order.
pub fn prepare_rows(
    batch: &[NewEvent],
    recorded_time: i64,
    last_seq: u64,
    last_chain: Hash,
    existing: &HashMap<String, Appended>,
) -> Result<Prepared, LedgerError> {
    let mut slots = Vec::with_capacity(batch.len());
    let mut fresh: Vec<Event> = Vec::with_capacity(batch.len());
    let mut in_batch: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    let mut dup_of: Vec<(usize, usize)> = Vec::new();
    let mut seq = last_seq;
    for body in batch {
        if let Some(prev) = existing.get(&body.idempotency_key) {
            slots.push(Slot::Duplicate(Appended { duplicate: true, ..prev.clone() }));
            continue;
        }
        if let Some(&i) = in_batch.get(body.idempotency_key.as_str()) {
            // Filled in once the chain is known.
            dup_of.push((slots.len(), i));
            slots.push(Slot::Fresh(usize::MAX));
            continue;
        }
        seq += 1;
        in_batch.insert(&body.idempotency_key, fresh.len());
        slots.push(Slot::Fresh(fresh.len()));
        fresh.push(Event { seq, recorded_time, body: body.clone() });
    }
    let rows = chain_rows(fresh, last_chain)?;
    for (slot, i) in dup_of {
        let (e, _, c) = &rows[i];
        slots[slot] = Slot::Duplicate(Appended { event: e.clone(), chain_hash: *c, duplicate: true });
    }
    Ok(Prepared { rows, slots })
}

/// [`prepare_rows`] for a batch believed free of repeated keys, taking the
/// events without copying them: a backend that tries this must let its
/// unique index catch a repeat and then retry with [`prepare_rows`].
pub fn prepare_fresh(
    batch: Vec<NewEvent>,
    recorded_time: i64,
    last_seq: u64,
    last_chain: Hash,
) -> Result<Prepared, LedgerError> {
    let fresh: Vec<Event> =
        batch.into_iter().zip(last_seq + 1..).map(|(body, seq)| Event { seq, recorded_time, body }).collect();
    let rows = chain_rows(fresh, last_chain)?;
    let slots = (0..rows.len()).map(Slot::Fresh).collect();
    Ok(Prepared { rows, slots })
}

/// Each new event with its leaf hash and the chain extended from `last_chain`.
fn chain_rows(fresh: Vec<Event>, last_chain: Hash) -> Result<Vec<(Event, Hash, Hash)>, LedgerError> {
    let leaves = leaf_hashes(&fresh)?;
    let mut chain = last_chain;
    Ok(fresh
        .into_iter()
        .zip(leaves)
        .map(|(event, leaf)| {
            chain = chain_hash(&chain, &leaf);
            (event, leaf, chain)
        })
        .collect())
}

fn leaf_hashes(events: &[Event]) -> Result<Vec<Hash>, LedgerError> {
    if events.len() < PARALLEL_LEAVES {
        return events.iter().map(Event::leaf_hash).collect();
    }
    let (a, b) = events.split_at(events.len() / 2);
    let (left, right) = std::thread::scope(|scope| {
        let h = scope.spawn(|| b.iter().map(Event::leaf_hash).collect::<Result<Vec<_>, _>>());
        let left = a.iter().map(Event::leaf_hash).collect::<Result<Vec<_>, _>>();
        (left, h.join())
    });
    let mut out = left?;
    out.extend(right.map_err(|_| LedgerError::Corrupt("a hashing thread panicked".into()))??);
    Ok(out)
}
