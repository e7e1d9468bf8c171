//! The storage trait both backends implement, and the append algorithm they share.

use crate::event::{Event, FactsEntry, NewEvent, StoredEntry, StoredEvent, StoredFacts, chain_hash};
use crate::outbox::{OutboxRow, cursor_key};
use crate::{Hash, KeyHandover, LedgerError, SignedTreeHead};
use chrono::NaiveDate;
use consentry_policy::ConsentEvent;
use std::collections::{BTreeMap, HashMap};

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

impl MemberRecord {
    /// The facts as a log entry at `seq`.
    pub fn entry(&self, seq: u64, actor: &str, recorded_time: i64) -> FactsEntry {
        FactsEntry {
            seq,
            recorded_time,
            member_id: self.member_id,
            jurisdiction: self.jurisdiction.clone(),
            birth_date: self.birth_date,
            actor: actor.to_string(),
        }
    }
}

impl From<&FactsEntry> for MemberRecord {
    fn from(f: &FactsEntry) -> MemberRecord {
        MemberRecord { member_id: f.member_id, jurisdiction: f.jurisdiction.clone(), birth_date: f.birth_date }
    }
}

/// Storage for the log, its checkpoints, the member directory and small settings.
///
/// The log holds two kinds of entries sharing one sequence space, one Merkle
/// tree and one hash chain: consent events and member facts. The member
/// directory is not a table of its own but the latest fact entry per member,
/// so it is exactly as tamper-evident as the consent events.
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

    /// Number of entries (consent events and fact entries) in the log (= the highest sequence number).
    fn len(&self) -> Result<u64, LedgerError>;

    /// True when the log is empty.
    fn is_empty(&self) -> Result<bool, LedgerError> {
        Ok(self.len()? == 0)
    }

    /// Calls `f` with every stored consent event with `from <= seq <= to`, in sequence order (fact entries
    /// are skipped: see [`Store::scan_entries`]).
    fn scan(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEvent) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;

    /// Like [`Store::scan`] but only what effective consent needs, as fast as the backend allows.
    fn scan_consent(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, ConsentEvent)) -> Result<(), LedgerError>;

    /// Appends a fact entry for every member whose facts differ from the latest recorded ones (a member
    /// repeated in `members` counts once, the last record winning), atomically, in member-id order, at
    /// `recorded_time`. Returns the new entries; unchanged members add nothing.
    fn append_facts(
        &self,
        members: Vec<MemberRecord>,
        actor: &str,
        recorded_time: i64,
    ) -> Result<Vec<StoredFacts>, LedgerError>;

    /// Calls `f` with every stored fact entry with `from <= seq <= to`, in sequence order.
    fn scan_facts(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredFacts) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;

    /// Every fact entry recorded about `member_id`, oldest first: the member's own history of the facts that
    /// decide their consent (what `lineage member` and a privacy centre show).
    fn member_history(&self, member_id: u64) -> Result<Vec<FactsEntry>, LedgerError>;

    /// Every consent event about `member_id` at or before position `upto`, in sequence order: what a member's
    /// own consent and history are computed from. Backends read it through an index on the member; this default
    /// scans the log.
    fn member_events(&self, member_id: u64, upto: u64) -> Result<Vec<Event>, LedgerError> {
        let mut out = Vec::new();
        self.scan(1, upto, &mut |s| {
            if s.event.body.member_id == member_id {
                out.push(s.event);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` with every entry of either kind with `from <= seq <= to`, in sequence order.
    fn scan_entries(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        // Fact entries are few (one per member and change): held in memory and merged into the event stream.
        let mut facts: Vec<StoredFacts> = Vec::new();
        self.scan_facts(from, to, &mut |s| {
            facts.push(s);
            Ok(())
        })?;
        let mut pending = facts.into_iter().peekable();
        self.scan(from, to, &mut |s| {
            while let Some(next) = pending.next_if(|p| p.facts.seq <= s.event.seq) {
                f(next.into())?;
            }
            f(s.into())
        })?;
        for rest in pending {
            f(rest.into())?;
        }
        Ok(())
    }

    /// One entry of either kind by sequence number.
    fn entry(&self, seq: u64) -> Result<Option<StoredEntry>, LedgerError> {
        if let Some(e) = self.event(seq)? {
            return Ok(Some(e.into()));
        }
        let mut found = None;
        self.scan_facts(seq, seq, &mut |s| {
            found = Some(s.into());
            Ok(())
        })?;
        Ok(found)
    }

    /// Leaf hashes of entries `from..=to`, in order.
    fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError>;

    /// Full Merkle tiles of `level` with `from <= index <= to`, as `(index, bytes)` (see [`crate::tiles`]); a
    /// store that keeps none (in memory, or from before tiles and opened read-only) has none.
    fn tiles(&self, level: u32, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let _ = (level, from, to);
        Ok(Vec::new())
    }

    /// Stores full tiles `(level, index, bytes)`, leaving any already stored as they are; `false` when this store
    /// keeps no tiles, so the caller keeps them in memory.
    fn put_tiles(&self, tiles: &[(u32, u64, Vec<u8>)]) -> Result<bool, LedgerError> {
        let _ = tiles;
        Ok(false)
    }

    /// One event by sequence number.
    fn event(&self, seq: u64) -> Result<Option<StoredEvent>, LedgerError>;

    /// Stores a checkpoint (idempotent for the same tree size).
    fn put_checkpoint(&self, sth: &SignedTreeHead) -> Result<(), LedgerError>;

    /// All checkpoints, by tree size.
    fn checkpoints(&self) -> Result<Vec<SignedTreeHead>, LedgerError>;

    /// The log's key hand-overs, oldest first (empty for a log that never rotated its key, or a store from
    /// before rotations opened read-only). Unverified: [`crate::KeyChain::from_handovers`] checks them.
    fn key_handovers(&self) -> Result<Vec<KeyHandover>, LedgerError> {
        Ok(Vec::new())
    }

    /// Stores hand-over number `index` (0-based); refused when one is already stored there (another rotation
    /// won the race).
    fn put_key_handover(&self, index: usize, handover: &KeyHandover) -> Result<(), LedgerError> {
        let _ = (index, handover);
        Err(LedgerError::Invalid(format!("the {} store cannot record key hand-overs", self.backend())))
    }

    /// Records member facts now as `import` (see [`Store::append_facts`]); kept for callers that only load a
    /// directory. Validation lives in [`crate::Ledger::record_members`].
    fn put_members(&self, members: &[MemberRecord]) -> Result<(), LedgerError> {
        self.append_facts(members.to_vec(), "import", crate::now()).map(|_| ())
    }

    /// Calls `f` with every member's latest facts, by id.
    fn scan_members(&self, f: &mut dyn FnMut(MemberRecord)) -> Result<(), LedgerError> {
        self.scan_member_facts(u64::MAX, &mut |member_id, jurisdiction, birth_date| {
            f(MemberRecord { member_id, jurisdiction: jurisdiction.to_string(), birth_date })
        })
    }

    /// The member directory as of log position `upto`: each member's latest facts recorded at or before it,
    /// by id, without building records (for bulk readers such as snapshots).
    fn scan_member_facts(&self, upto: u64, f: &mut dyn FnMut(u64, &str, NaiveDate)) -> Result<(), LedgerError> {
        let mut latest: BTreeMap<u64, FactsEntry> = BTreeMap::new();
        self.scan_facts(1, upto, &mut |s| {
            latest.insert(s.facts.member_id, s.facts);
            Ok(())
        })?;
        for (id, m) in &latest {
            f(*id, &m.jurisdiction, m.birth_date);
        }
        Ok(())
    }

    /// One member's latest facts.
    fn member(&self, member_id: u64) -> Result<Option<MemberRecord>, LedgerError>;

    /// A small named setting (unlearning cursor, controller name, …).
    fn get_meta(&self, key: &str) -> Result<Option<String>, LedgerError>;

    /// Sets a small named setting.
    fn set_meta(&self, key: &str, value: &str) -> Result<(), LedgerError>;

    /// Replaces a setting by `f(current value)` as one step no other writer of the same key interleaves with
    /// (two witnesses storing their cosignatures of one checkpoint at once must both be kept); returns the value
    /// written. The SQLite and PostgreSQL stores do it in one transaction; this default is for stores with one
    /// writer.
    fn update_meta(
        &self,
        key: &str,
        f: &mut dyn FnMut(Option<String>) -> Result<String, LedgerError>,
    ) -> Result<String, LedgerError> {
        let value = f(self.get_meta(key)?)?;
        self.set_meta(key, &value)?;
        Ok(value)
    }

    /// Up to `limit` outbox rows with an id after `after`, by id (see [`crate::outbox`]); empty for a store
    /// without an outbox (one that predates it, opened read-only).
    fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxRow>, LedgerError> {
        let _ = (after, limit);
        Ok(Vec::new())
    }

    /// Adds an outbox row that no ledger append carries (an unlearning completion), with the next id, under the
    /// same serialisation as appends; returns its id.
    fn outbox_push(&self, kind: &str, payload: &str, created: i64) -> Result<u64, LedgerError> {
        let _ = (kind, payload, created);
        Err(LedgerError::Invalid(format!("the {} store keeps no outbox", self.backend())))
    }

    /// The highest outbox id (0 when empty).
    fn outbox_last(&self) -> Result<u64, LedgerError> {
        Ok(0)
    }

    /// The last outbox id `consumer` (a webhook's name) has taken delivery of; `None` for a consumer never seen.
    fn outbox_cursor(&self, consumer: &str) -> Result<Option<u64>, LedgerError> {
        self.get_meta(&cursor_key(consumer))?
            .map(|v| {
                v.parse().map_err(|_| {
                    LedgerError::Corrupt(format!("the outbox cursor of `{consumer}` is `{v}`, not a number"))
                })
            })
            .transpose()
    }

    /// Records that `consumer` has taken delivery of every row up to `id`.
    fn set_outbox_cursor(&self, consumer: &str, id: u64) -> Result<(), LedgerError> {
        fail::fail_point!("ledger::outbox_cursor::before_commit", |a| Err(crate::injected("outbox cursor", a)));
        self.set_meta(&cursor_key(consumer), &id.to_string())?;
        fail::fail_point!("ledger::outbox_cursor::after_commit", |a| Err(crate::injected("outbox cursor", a)));
        Ok(())
    }
}

/// A 32-byte hash column, or `Corrupt` naming the column; shared so both SQL backends decode stored rows alike.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn hash_col(v: Vec<u8>, what: &str) -> Result<Hash, LedgerError> {
    v.try_into().map_err(|_| LedgerError::Corrupt(format!("{what} is not 32 bytes")))
}

/// Member `id`'s birth-date column (days from 1970), or `Corrupt`; shared so both SQL backends report it alike.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn date_col(days: i64, id: i64) -> Result<NaiveDate, LedgerError> {
    crate::event::date_from_days(days)
        .ok_or_else(|| LedgerError::Corrupt(format!("member {id}: birth date {days} days from 1970 is out of range")))
}

/// Clamps a sequence bound to what a 64-bit SQL integer holds (both backends store `seq` as one).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn bound(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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
/// (against the log via `existing` and within the batch; a key reused for a
/// different request is [`LedgerError::IdempotencyConflict`]), assign sequence
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
            same_request(body, &prev.event)?;
            slots.push(Slot::Duplicate(Appended { duplicate: true, ..prev.clone() }));
            continue;
        }
        if let Some(&i) = in_batch.get(body.idempotency_key.as_str()) {
            same_request(body, &fresh[i])?;
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

/// A retry must be the same request: a key reused for another one is a conflict, never a silent duplicate.
fn same_request(body: &NewEvent, original: &Event) -> Result<(), LedgerError> {
    if *body == original.body {
        return Ok(());
    }
    let o = &original.body;
    let mut differs: Vec<&str> = Vec::new();
    for (field, same) in [
        ("member", body.member_id == o.member_id),
        ("purpose", body.purpose == o.purpose),
        ("action", body.action == o.action),
        ("notice version", body.notice_version == o.notice_version),
        ("source", body.source == o.source),
        ("actor", body.actor == o.actor),
        ("event time", body.event_time == o.event_time),
    ] {
        if !same {
            differs.push(field);
        }
    }
    Err(LedgerError::IdempotencyConflict {
        key: body.idempotency_key.clone(),
        seq: original.seq,
        fields: differs.join(", "),
    })
}

/// The fact entries to append for `members` after `last_seq`/`last_chain`: the last record per member wins
/// within the call, members whose facts equal `latest` (their newest recorded facts) are skipped, and the
/// rest get sequence numbers in member-id order, leaf hashes and the chain extended. Shared by every
/// backend, like [`prepare_rows`].
pub fn prepare_facts(
    members: Vec<MemberRecord>,
    latest: &HashMap<u64, MemberRecord>,
    actor: &str,
    recorded_time: i64,
    last_seq: u64,
    last_chain: Hash,
) -> Result<Vec<StoredFacts>, LedgerError> {
    let mut last: BTreeMap<u64, MemberRecord> = BTreeMap::new();
    for m in members {
        last.insert(m.member_id, m);
    }
    let mut chain = last_chain;
    let mut seq = last_seq;
    let mut out = Vec::new();
    for (id, m) in last {
        if latest.get(&id) == Some(&m) {
            continue;
        }
        seq += 1;
        let facts = m.entry(seq, actor, recorded_time);
        let leaf = facts.leaf_hash()?;
        chain = chain_hash(&chain, &leaf);
        out.push(StoredFacts { facts, leaf_hash: leaf, chain_hash: chain });
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use consentry_policy::{Action, Source};

    fn ev(member: u64, key: &str) -> NewEvent {
        NewEvent {
            member_id: member,
            purpose: "p".into(),
            action: Action::Grant,
            notice_version: 1,
            source: Source::Ui,
            actor: "a".into(),
            event_time: 10,
            idempotency_key: key.into(),
        }
    }

    #[test]
    fn a_key_reused_for_another_request_is_a_conflict() {
        let first = prepare_rows(&[ev(1, "k")], 5, 0, [0; 32], &HashMap::new()).unwrap().finish().remove(0);
        let existing = HashMap::from([("k".to_string(), first.clone())]);
        // The same request again: a duplicate returning the original.
        let again = prepare_rows(&[ev(1, "k")], 9, 1, first.chain_hash, &existing).unwrap();
        assert!(again.rows.is_empty());
        assert_eq!(again.finish()[0].event, first.event);
        // Another member, action or time under the same key: refused, naming key and event.
        let mut withdraw = ev(1, "k");
        withdraw.action = Action::Withdraw;
        for other in [ev(2, "k"), withdraw] {
            let err = prepare_rows(&[other], 9, 1, first.chain_hash, &existing).err().unwrap();
            assert!(matches!(&err, LedgerError::IdempotencyConflict { key, seq: 1, .. } if key == "k"), "{err:?}");
        }
        // Within one batch.
        let err = prepare_rows(&[ev(1, "j"), ev(2, "j")], 9, 1, first.chain_hash, &existing).err().unwrap();
        assert!(
            matches!(&err, LedgerError::IdempotencyConflict { key, fields, .. } if key == "j" && fields == "member")
        );
    }

    #[test]
    fn facts_are_appended_only_when_they_change() {
        let d = |y| NaiveDate::from_ymd_opt(y, 1, 1).unwrap();
        let m = |id, y| MemberRecord { member_id: id, jurisdiction: "DE".into(), birth_date: d(y) };
        let latest = HashMap::from([(1, m(1, 1980)), (2, m(2, 2010))]);
        // Member 1 unchanged, member 2 changed, member 3 new and repeated (the last record wins).
        let out = prepare_facts(vec![m(3, 1990), m(2, 1980), m(1, 1980), m(3, 1991)], &latest, "import", 7, 4, [0; 32])
            .unwrap();
        let got: Vec<(u64, u64, NaiveDate)> =
            out.iter().map(|s| (s.facts.seq, s.facts.member_id, s.facts.birth_date)).collect();
        assert_eq!(got, vec![(5, 2, d(1980)), (6, 3, d(1991))]);
        assert_eq!(out[1].chain_hash, chain_hash(&out[0].chain_hash, &out[1].leaf_hash));
        assert_eq!(out[0].leaf_hash, out[0].facts.leaf_hash().unwrap());
    }
}
