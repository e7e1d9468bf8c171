//! Snapshots: effective consent for every member for one purpose at one
//! ledger position, as roaring bitmaps, with incremental refresh.
//!
//! A snapshot covers the members in the ledger's member directory as of its
//! position (the latest fact entry of each member at or before it). It records
//! the position (last sequence number replayed), the evaluation time, and the
//! Merkle root at that position, so a manifest can say exactly which log state
//! a dataset was cut from. Refreshing replays only newer events, plus the
//! members whose answer can change with the passage of time alone (coming of
//! age, a notice lapsing), found through [`Policy::next_change`], and the
//! members whose facts were recorded anew.
//!
//! These functions read the store as it is; [`crate::Ledger::snapshots`]
//! verifies the entries against the signed log first, and is what callers
//! holding a ledger use.

use crate::{Hash, LedgerError, Store};
use consentry_policy::{ConsentEvent, Decision, DenyReason, MemberFacts, Policy, PurposeId, Timestamp};
use roaring::RoaringTreemap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Counts of a snapshot, for printing and manifests.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotCounts {
    /// Purpose key.
    pub purpose: String,
    /// Last sequence number included.
    pub position: u64,
    /// Evaluation time (Unix seconds).
    pub at: Timestamp,
    /// Members evaluated.
    pub members: u64,
    /// Members allowed.
    pub allowed: u64,
    /// Members denied, by reason.
    pub denied: BTreeMap<&'static str, u64>,
}

/// Effective consent of every member for one purpose.
#[derive(Debug, Clone)]
pub struct Snapshot {
    purpose: PurposeId,
    purpose_key: String,
    position: u64,
    at: Timestamp,
    /// Merkle root of the log at `position`.
    pub tree_root: Hash,
    allowed: RoaringTreemap,
    denied: BTreeMap<DenyReason, RoaringTreemap>,
    /// The member directory, sorted by id (shared by the snapshots of one build).
    facts: Arc<Vec<(u64, MemberFacts)>>,
    /// Members of the build's events, sorted; `base_events[i]` belongs to `base_members[i]`.
    base_members: Vec<u64>,
    /// Events of the build, by member and, within a member, in log order.
    base_events: Vec<ConsentEvent>,
    /// Events replayed by refreshes since, per member, in log order.
    extra: HashMap<u64, Vec<ConsentEvent>>,
    /// Time → members whose answer may change then.
    triggers: BTreeSet<(Timestamp, u64)>,
    next_of: HashMap<u64, Timestamp>,
}

/// What one member's evaluation produced during a build.
struct Evaluated {
    member: u64,
    decision: Decision,
    next: Option<Timestamp>,
}

impl Snapshot {
    /// Builds snapshots for several purposes in one pass over the log, one thread per purpose.
    pub fn build_many(
        store: &dyn Store,
        policy: &Policy,
        purposes: &[PurposeId],
        position: u64,
        at: Timestamp,
        tree_root: Hash,
    ) -> Result<Vec<Snapshot>, LedgerError> {
        let keys: Vec<String> = purposes.iter().map(|p| policy.purpose(*p).key.clone()).collect();
        // The member directory and the log are read at the same time.
        let (facts, per) = std::thread::scope(|scope| {
            let members = scope.spawn(|| -> Result<Vec<(u64, MemberFacts)>, LedgerError> {
                let mut facts: Vec<(u64, MemberFacts)> = Vec::new();
                store.scan_member_facts(position, &mut |id, code, birth_date| {
                    facts.push((id, MemberFacts { jurisdiction: policy.resolve_jurisdiction(code), birth_date }));
                })?;
                if !facts.is_sorted_by_key(|(id, _)| *id) {
                    facts.sort_by_key(|(id, _)| *id);
                }
                Ok(facts)
            });
            let mut per: Vec<Vec<(u64, ConsentEvent)>> = vec![Vec::new(); purposes.len()];
            let scanned = store.scan_consent(1, position, &mut |member, purpose, ev| {
                // A handful of purposes: comparing beats hashing.
                if let Some(i) = keys.iter().position(|k| k == purpose) {
                    per[i].push((member, ev));
                }
            });
            let facts = members.join().unwrap_or_else(|_| Err(LedgerError::Corrupt("a reader thread panicked".into())));
            scanned.and(facts.map(|f| (f, per)))
        })?;
        let facts = Arc::new(facts);
        let built: Vec<Snapshot> = std::thread::scope(|scope| {
            let handles: Vec<_> = purposes
                .iter()
                .zip(keys)
                .zip(per)
                .map(|((&purpose, purpose_key), base)| {
                    let facts = Arc::clone(&facts);
                    scope.spawn(move || {
                        // Stable: a member's events stay in log order.
                        let (base_members, base_events) = sort_by_member(base).into_iter().unzip();
                        let mut s = Snapshot {
                            purpose,
                            purpose_key,
                            position,
                            at,
                            tree_root,
                            allowed: RoaringTreemap::new(),
                            denied: BTreeMap::new(),
                            facts,
                            base_members,
                            base_events,
                            extra: HashMap::new(),
                            triggers: BTreeSet::new(),
                            next_of: HashMap::new(),
                        };
                        s.evaluate_all(policy);
                        s
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect::<Result<Vec<_>, _>>()
        })
        .map_err(|_| LedgerError::Corrupt("a snapshot thread panicked".into()))?;
        Ok(built)
    }

    /// Builds the snapshot of one purpose.
    pub fn build(
        store: &dyn Store,
        policy: &Policy,
        purpose: PurposeId,
        position: u64,
        at: Timestamp,
        tree_root: Hash,
    ) -> Result<Snapshot, LedgerError> {
        let mut v = Snapshot::build_many(store, policy, &[purpose], position, at, tree_root)?;
        v.pop().ok_or_else(|| LedgerError::Corrupt("no snapshot built".into()))
    }

    /// Evaluates every member by walking the sorted directory and the sorted events together.
    fn evaluate_all(&mut self, policy: &Policy) {
        let mut out: Vec<Evaluated> = Vec::with_capacity(self.facts.len());
        let (ids, all) = (&self.base_members, &self.base_events);
        let mut j = 0;
        for (member, facts) in self.facts.iter() {
            while j < ids.len() && ids[j] < *member {
                j += 1;
            }
            let start = j;
            while j < ids.len() && ids[j] == *member {
                j += 1;
            }
            let events = &all[start..j];
            out.push(Evaluated {
                member: *member,
                decision: policy.evaluate(self.purpose, facts, events, self.at),
                next: policy.next_change(self.purpose, facts, events, self.at),
            });
        }
        let mut allowed = Vec::new();
        let mut denied: BTreeMap<DenyReason, Vec<u64>> = BTreeMap::new();
        for e in out {
            match e.decision {
                Decision::Allowed(_) => allowed.push(e.member),
                Decision::Denied(r) => denied.entry(r).or_default().push(e.member),
            }
            if let Some(t) = e.next {
                self.triggers.insert((t, e.member));
                self.next_of.insert(e.member, t);
            }
        }
        // Ids come in ascending order, so the bitmaps are built by appending.
        self.allowed = allowed.into_iter().collect();
        self.denied = denied.into_iter().map(|(r, ids)| (r, ids.into_iter().collect())).collect();
    }

    /// All events of one member for this purpose, in log order.
    fn history(&self, member: u64) -> Vec<ConsentEvent> {
        let lo = self.base_members.partition_point(|m| *m < member);
        let hi = self.base_members.partition_point(|m| *m <= member);
        let mut v: Vec<ConsentEvent> = self.base_events[lo..hi].to_vec();
        if let Some(more) = self.extra.get(&member) {
            v.extend_from_slice(more);
        }
        v
    }

    /// Re-evaluates one member at the snapshot's time and files them under the new answer.
    fn reevaluate(&mut self, policy: &Policy, member: u64) {
        let Ok(i) = self.facts.binary_search_by_key(&member, |(id, _)| *id) else { return };
        let facts = self.facts[i].1;
        let events = self.history(member);
        let d = policy.evaluate(self.purpose, &facts, &events, self.at);
        let next = policy.next_change(self.purpose, &facts, &events, self.at);
        if !self.allowed.remove(member) {
            for b in self.denied.values_mut() {
                if b.remove(member) {
                    break;
                }
            }
        }
        match d {
            Decision::Allowed(_) => {
                self.allowed.insert(member);
            }
            Decision::Denied(r) => {
                self.denied.entry(r).or_default().insert(member);
            }
        }
        if let Some(prev) = self.next_of.remove(&member) {
            self.triggers.remove(&(prev, member));
        }
        if let Some(t) = next {
            self.triggers.insert((t, member));
            self.next_of.insert(member, t);
        }
    }

    /// Moves the snapshot to a later position and time, replaying only what changed.
    /// Returns how many members were re-evaluated.
    pub fn refresh(
        &mut self,
        store: &dyn Store,
        policy: &Policy,
        position: u64,
        at: Timestamp,
        tree_root: Hash,
    ) -> Result<usize, LedgerError> {
        if position < self.position || at < self.at {
            return Err(LedgerError::Invalid(format!(
                "a snapshot only moves forward (it is at position {} and time {}); build a new one for an earlier state",
                self.position, self.at
            )));
        }
        let mut touched: BTreeSet<u64> = BTreeSet::new();
        // Facts recorded since: the member's new jurisdiction or birth date (or a new member).
        let mut changed: Vec<(u64, MemberFacts)> = Vec::new();
        store.scan_facts(self.position + 1, position, &mut |s| {
            let f = &s.facts;
            let facts =
                MemberFacts { jurisdiction: policy.resolve_jurisdiction(&f.jurisdiction), birth_date: f.birth_date };
            changed.push((f.member_id, facts));
            Ok(())
        })?;
        if !changed.is_empty() {
            let dir = Arc::make_mut(&mut self.facts);
            for (id, facts) in changed {
                match dir.binary_search_by_key(&id, |(m, _)| *m) {
                    Ok(i) => dir[i].1 = facts,
                    Err(i) => dir.insert(i, (id, facts)),
                }
                touched.insert(id);
            }
        }
        let key = self.purpose_key.clone();
        let extra = &mut self.extra;
        store.scan_consent(self.position + 1, position, &mut |member, purpose, ev| {
            if purpose == key {
                extra.entry(member).or_default().push(ev);
                touched.insert(member);
            }
        })?;
        let due: Vec<u64> = self.triggers.iter().take_while(|(t, _)| *t <= at).map(|(_, m)| *m).collect();
        touched.extend(due);
        self.position = position;
        self.at = at;
        self.tree_root = tree_root;
        for &m in &touched {
            self.reevaluate(policy, m);
        }
        Ok(touched.len())
    }

    /// The purpose.
    pub fn purpose(&self) -> PurposeId {
        self.purpose
    }

    /// The purpose key.
    pub fn purpose_key(&self) -> &str {
        &self.purpose_key
    }

    /// Last sequence number included.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Evaluation time.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// Members allowed for the purpose.
    pub fn allowed(&self) -> &RoaringTreemap {
        &self.allowed
    }

    /// True when `member`'s data may be used.
    pub fn is_allowed(&self, member: u64) -> bool {
        self.allowed.contains(member)
    }

    /// Why `member` is denied, or `None` when allowed or unknown.
    pub fn reason(&self, member: u64) -> Option<DenyReason> {
        self.denied.iter().find(|(_, b)| b.contains(member)).map(|(r, _)| *r)
    }

    /// Members denied for `reason`.
    pub fn denied(&self, reason: DenyReason) -> Option<&RoaringTreemap> {
        self.denied.get(&reason)
    }

    /// The member directory the snapshot evaluated (id and facts, sorted by id): coverage groups it by jurisdiction.
    pub fn members(&self) -> &[(u64, MemberFacts)] {
        &self.facts
    }

    /// Counts for printing.
    pub fn counts(&self) -> SnapshotCounts {
        SnapshotCounts {
            purpose: self.purpose_key.clone(),
            position: self.position,
            at: self.at,
            members: self.facts.len() as u64,
            allowed: self.allowed.len(),
            denied: self.denied.iter().filter(|(_, b)| !b.is_empty()).map(|(r, b)| (r.as_str(), b.len())).collect(),
        }
    }

    /// The allowed set in roaring's portable format, and its BLAKE3: the member-set commitment.
    pub fn allowed_bytes(&self) -> Result<(Vec<u8>, Hash), LedgerError> {
        let mut buf = Vec::with_capacity(self.allowed.serialized_size());
        self.allowed.serialize_into(&mut buf).map_err(|e| LedgerError::Corrupt(format!("bitmap: {e}")))?;
        let h = *blake3::hash(&buf).as_bytes();
        Ok((buf, h))
    }

    /// Every member with its answer, by id: what `export-snapshot` writes.
    pub fn rows(&self) -> Vec<(u64, bool, Option<DenyReason>)> {
        self.facts
            .iter()
            .map(|(m, _)| {
                let m = *m;
                let allowed = self.allowed.contains(m);
                (m, allowed, if allowed { None } else { self.reason(m) })
            })
            .collect()
    }
}

/// Sorts events by member, stably (a member's events stay in log order): a least-significant-digit radix sort
/// on the member id, 11 bits a pass, skipping the digits every id shares, so ids below 2^22 take two passes over
/// the events where a comparison sort of a few million takes twenty-odd (it was a seventh of a full snapshot).
fn sort_by_member<T: Copy>(mut v: Vec<(u64, T)>) -> Vec<(u64, T)> {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    if v.len() < 4096 || v.is_sorted_by_key(|(m, _)| *m) {
        v.sort_by_key(|(m, _)| *m);
        return v;
    }
    let (mut all_or, mut all_and) = (0u64, u64::MAX);
    for (m, _) in &v {
        all_or |= m;
        all_and &= m;
    }
    let varying = all_or ^ all_and;
    let mut scratch: Vec<(u64, T)> = Vec::with_capacity(v.len());
    let mut shift = 0u32;
    while shift < 64 {
        let mask = (BUCKETS as u64 - 1) << shift;
        if varying & mask != 0 {
            let digit = |m: u64| ((m >> shift) as usize) & (BUCKETS - 1);
            let mut start = vec![0usize; BUCKETS];
            for (m, _) in &v {
                start[digit(*m)] += 1;
            }
            let mut sum = 0;
            for c in start.iter_mut() {
                let n = *c;
                *c = sum;
                sum += n;
            }
            scratch.clear();
            scratch.resize(v.len(), v[0]);
            for &item in &v {
                let d = digit(item.0);
                scratch[start[d]] = item;
                start[d] += 1;
            }
            std::mem::swap(&mut v, &mut scratch);
        }
        shift += BITS;
    }
    v
}

/// Writes `(member_id, allowed, reason)` for every member as Parquet, so any
/// engine (Spark, DataFusion, DuckDB) can join against the snapshot. The caller owns the
/// destination (a file written atomically, a pipe, a device), so this only writes bytes.
pub fn export_parquet<W: std::io::Write + Send>(snapshot: &Snapshot, out: W) -> Result<u64, LedgerError> {
    use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    let schema = Arc::new(Schema::new(vec![
        Field::new("member_id", DataType::UInt64, false),
        Field::new("allowed", DataType::Boolean, false),
        Field::new("reason", DataType::Utf8, true),
    ]));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_key_value_metadata(Some(vec![
            parquet::file::metadata::KeyValue::new("consentry.purpose".into(), snapshot.purpose_key().to_string()),
            parquet::file::metadata::KeyValue::new("consentry.position".into(), snapshot.position().to_string()),
            parquet::file::metadata::KeyValue::new("consentry.at".into(), snapshot.at().to_string()),
            parquet::file::metadata::KeyValue::new("consentry.tree_root".into(), hex::encode(snapshot.tree_root)),
        ]))
        .build();
    let mut w = ArrowWriter::try_new(out, schema.clone(), Some(props))?;
    let rows = snapshot.rows();
    for chunk in rows.chunks(256 * 1024) {
        let ids: ArrayRef = Arc::new(UInt64Array::from_iter_values(chunk.iter().map(|r| r.0)));
        let allowed: ArrayRef = Arc::new(BooleanArray::from(chunk.iter().map(|r| r.1).collect::<Vec<_>>()));
        let reasons: ArrayRef = Arc::new(StringArray::from_iter(chunk.iter().map(|r| r.2.map(|x| x.as_str()))));
        let batch = RecordBatch::try_new(schema.clone(), vec![ids, allowed, reasons])?;
        w.write(&batch)?;
    }
    w.close()?;
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::sort_by_member;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_radix_sort_is_a_stable_sort_by_member() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (n, top) in [(10, 100), (5_000, 1_000), (50_000, 20_000_000), (50_000, u64::MAX), (70_000, 1 << 40)] {
            // The payload is the position, so stability shows as ascending payloads within a member.
            let v: Vec<(u64, usize)> = (0..n).map(|i| (rng.random_range(0..=top) & !0xF00, i)).collect();
            let mut expect = v.clone();
            expect.sort_by_key(|(m, _)| *m);
            assert_eq!(sort_by_member(v), expect, "{n} items below {top}");
        }
        let sorted: Vec<(u64, u8)> = (0..10_000).map(|i| (i / 3, 0)).collect();
        assert_eq!(sort_by_member(sorted.clone()), sorted);
    }
}
