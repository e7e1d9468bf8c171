//! Consent events and their canonical byte encoding.
//!
//! The encoding is the contract between the ledger and every verifier: a
//! receipt holder recomputes it from the receipt's fields, hashes it, and
//! checks the inclusion proof. It is stable across versions (a new layout
//! would get a new magic) and documented here byte by byte:
//!
//! ```text
//! magic            4 bytes  "CSE1"
//! seq              u64, big-endian (1-based position in the log)
//! member_id        u64, big-endian
//! purpose          u16 length (big-endian) + UTF-8 bytes
//! action           u8: 1 grant, 2 withdraw
//! notice_version   u32, big-endian
//! source           u8: 1 ui, 2 api, 3 gpc, 4 import, 5 erasure
//! actor            u16 length + UTF-8 bytes
//! event_time       i64, big-endian (Unix seconds, UTC)
//! recorded_time    i64, big-endian (Unix seconds, UTC)
//! idempotency_key  u16 length + UTF-8 bytes
//! ```
//!
//! The log holds a second kind of entry, a member's **facts** (what the
//! policy reads about a member besides their consent events: that they are a
//! member, their jurisdiction and date of birth). Fact entries share the
//! sequence numbers, leaves and hash chain with consent events, so a changed
//! birth date is a new signed entry and an edited one breaks the chain:
//!
//! ```text
//! magic            4 bytes  "CSF1"
//! seq              u64, big-endian (1-based position in the log)
//! member_id        u64, big-endian
//! jurisdiction     u16 length (big-endian) + UTF-8 bytes (ISO 3166 code)
//! birth_date       i32, big-endian (days since 1970-01-01, proleptic Gregorian)
//! actor            u16 length + UTF-8 bytes (who recorded the facts: `import`, `operator:alice`, …)
//! recorded_time    i64, big-endian (Unix seconds, UTC)
//! ```
//!
//! The two magics keep the kinds apart: no consent event encodes to the
//! bytes of a fact entry or the other way round.
//!
//! Hashes are BLAKE3 with RFC 9162 domain separation: a leaf is
//! `H(0x00 ‖ encoding)`, an inner node `H(0x01 ‖ left ‖ right)`, and the hash
//! chain links `chain[n] = H(0x02 ‖ chain[n-1] ‖ leaf[n])` from `chain[0] = 0³²`.

use crate::{Hash, LedgerError};
use chrono::NaiveDate;
use consentry_policy::{Action, ConsentEvent, Source};
use serde::{Deserialize, Serialize};

/// An event as a client submits it; the ledger adds `seq` and `recorded_time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The member the consent is about.
    pub member_id: u64,
    /// Purpose key, e.g. `train_ai_system.job_recommendations`.
    pub purpose: String,
    /// Grant or withdraw.
    pub action: Action,
    /// The notice version the member saw.
    pub notice_version: u32,
    /// Where the event came from.
    pub source: Source,
    /// Who recorded it: `member:42`, `gpc-signal`, `operator:alice`, …
    pub actor: String,
    /// When the member acted (Unix seconds, UTC).
    pub event_time: i64,
    /// A retried append with the same key returns the original event.
    pub idempotency_key: String,
}

/// An accepted event, as stored and as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1-based position in the log; gap-free.
    pub seq: u64,
    /// When the ledger accepted it (Unix seconds, UTC).
    pub recorded_time: i64,
    /// The submitted fields.
    #[serde(flatten)]
    pub body: NewEvent,
}

/// An event with the hashes the store keeps beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event.
    pub event: Event,
    /// Leaf hash as stored (verification recomputes and compares).
    pub leaf_hash: Hash,
    /// Chain hash as stored.
    pub chain_hash: Hash,
}

const MAGIC: &[u8; 4] = b"CSE1";
const FACTS_MAGIC: &[u8; 4] = b"CSF1";

/// A member's facts as recorded in the log: the policy's inputs about a member other than consent events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactsEntry {
    /// 1-based position in the log (shared with consent events).
    pub seq: u64,
    /// When the ledger accepted it (Unix seconds, UTC).
    pub recorded_time: i64,
    /// The member.
    pub member_id: u64,
    /// ISO 3166 code of the jurisdiction (`US-CA`, `DE`).
    pub jurisdiction: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Who recorded the facts (`import`, `operator:alice`).
    pub actor: String,
}

/// A fact entry with the hashes the store keeps beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFacts {
    /// The entry.
    pub facts: FactsEntry,
    /// Leaf hash as stored (verification recomputes and compares).
    pub leaf_hash: Hash,
    /// Chain hash as stored.
    pub chain_hash: Hash,
}

/// One entry of the log: a consent event or a member's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A grant or withdrawal.
    Consent(Event),
    /// A member's facts.
    Facts(FactsEntry),
}

/// An entry of either kind with its stored hashes, as verification reads the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry.
    pub entry: Entry,
    /// Leaf hash as stored.
    pub leaf_hash: Hash,
    /// Chain hash as stored.
    pub chain_hash: Hash,
}

impl From<StoredEvent> for StoredEntry {
    fn from(s: StoredEvent) -> StoredEntry {
        StoredEntry { entry: Entry::Consent(s.event), leaf_hash: s.leaf_hash, chain_hash: s.chain_hash }
    }
}

impl From<StoredFacts> for StoredEntry {
    fn from(s: StoredFacts) -> StoredEntry {
        StoredEntry { entry: Entry::Facts(s.facts), leaf_hash: s.leaf_hash, chain_hash: s.chain_hash }
    }
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a date"),
};

/// Days from 1970-01-01 to `d` (negative before), as the fact encoding stores a birth date.
pub fn days_from_date(d: NaiveDate) -> i32 {
    // NaiveDate spans about ±262 000 years: always within i32 days.
    d.signed_duration_since(EPOCH).num_days() as i32
}

/// Inverse of [`days_from_date`]; `None` outside the dates chrono represents.
pub fn date_from_days(days: i64) -> Option<NaiveDate> {
    EPOCH.checked_add_signed(chrono::Duration::try_days(days)?)
}

impl FactsEntry {
    /// The canonical encoding (see the module documentation).
    pub fn encode(&self) -> Result<Vec<u8>, LedgerError> {
        let mut out = Vec::with_capacity(40 + self.jurisdiction.len() + self.actor.len());
        out.extend_from_slice(FACTS_MAGIC);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.member_id.to_be_bytes());
        put_str(&mut out, "jurisdiction", &self.jurisdiction)?;
        out.extend_from_slice(&days_from_date(self.birth_date).to_be_bytes());
        put_str(&mut out, "actor", &self.actor)?;
        out.extend_from_slice(&self.recorded_time.to_be_bytes());
        Ok(out)
    }

    /// The Merkle leaf hash of this entry.
    pub fn leaf_hash(&self) -> Result<Hash, LedgerError> {
        Ok(leaf_hash(&self.encode()?))
    }
}

impl Entry {
    /// Position in the log.
    pub fn seq(&self) -> u64 {
        match self {
            Entry::Consent(e) => e.seq,
            Entry::Facts(f) => f.seq,
        }
    }

    /// When the ledger accepted it.
    pub fn recorded_time(&self) -> i64 {
        match self {
            Entry::Consent(e) => e.recorded_time,
            Entry::Facts(f) => f.recorded_time,
        }
    }

    /// The member it is about.
    pub fn member_id(&self) -> u64 {
        match self {
            Entry::Consent(e) => e.body.member_id,
            Entry::Facts(f) => f.member_id,
        }
    }

    /// The same entry at another position (to recognise a row pushed down by an insertion).
    pub fn with_seq(&self, seq: u64) -> Entry {
        match self {
            Entry::Consent(e) => Entry::Consent(Event { seq, ..e.clone() }),
            Entry::Facts(f) => Entry::Facts(FactsEntry { seq, ..f.clone() }),
        }
    }

    /// The canonical encoding of either kind.
    pub fn encode(&self) -> Result<Vec<u8>, LedgerError> {
        match self {
            Entry::Consent(e) => e.encode(),
            Entry::Facts(f) => f.encode(),
        }
    }

    /// The Merkle leaf hash.
    pub fn leaf_hash(&self) -> Result<Hash, LedgerError> {
        Ok(leaf_hash(&self.encode()?))
    }
}

fn action_code(a: Action) -> u8 {
    match a {
        Action::Grant => 1,
        Action::Withdraw => 2,
    }
}

fn source_code(s: Source) -> u8 {
    match s {
        Source::Ui => 1,
        Source::Api => 2,
        Source::Gpc => 3,
        Source::Import => 4,
        Source::Erasure => 5,
    }
}

/// Inverse of the action byte, for stores that keep it as a number.
pub fn action_from_code(c: i64) -> Option<Action> {
    match c {
        1 => Some(Action::Grant),
        2 => Some(Action::Withdraw),
        _ => None,
    }
}

/// Inverse of the source byte, for stores that keep it as a number.
pub fn source_from_code(c: i64) -> Option<Source> {
    Source::ALL.into_iter().find(|s| i64::from(source_code(*s)) == c)
}

/// The action byte of the canonical encoding.
pub fn action_to_code(a: Action) -> i64 {
    i64::from(action_code(a))
}

/// The source byte of the canonical encoding.
pub fn source_to_code(s: Source) -> i64 {
    i64::from(source_code(s))
}

fn put_str(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), LedgerError> {
    let len = u16::try_from(s.len())
        .map_err(|_| LedgerError::Invalid(format!("{field} is {} bytes; at most 65535 are allowed", s.len())))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

impl NewEvent {
    /// Checks the fields the encoding constrains (string lengths), so a batch fails before anything is written.
    pub fn check_encodable(&self) -> Result<(), LedgerError> {
        for (field, s) in
            [("purpose", &self.purpose), ("actor", &self.actor), ("idempotency key", &self.idempotency_key)]
        {
            if u16::try_from(s.len()).is_err() {
                return Err(LedgerError::Invalid(format!("{field} is {} bytes; at most 65535 are allowed", s.len())));
            }
        }
        Ok(())
    }

    /// An idempotency key derived from the event's content (every field but the key): the same request
    /// gets the same key wherever it comes from, so an import of the same rows, however the file is
    /// encoded, appends nothing, and a row repeated within one file counts once.
    pub fn content_key(&self, prefix: &str) -> Result<String, LedgerError> {
        let body = NewEvent { idempotency_key: String::new(), ..self.clone() };
        let bytes = Event { seq: 0, recorded_time: 0, body }.encode()?;
        let digest = blake3::hash(&bytes);
        Ok(format!("{prefix}:{}", hex::encode(&digest.as_bytes()[..16])))
    }

    /// What `Policy::evaluate` needs of this event (what `Store::scan_consent` yields for it).
    pub fn consent(&self) -> ConsentEvent {
        ConsentEvent {
            at: self.event_time,
            action: self.action,
            notice_version: self.notice_version,
            source: self.source,
        }
    }
}

impl Event {
    /// The canonical encoding (see the module documentation).
    pub fn encode(&self) -> Result<Vec<u8>, LedgerError> {
        let b = &self.body;
        let mut out = Vec::with_capacity(64 + b.purpose.len() + b.actor.len() + b.idempotency_key.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&b.member_id.to_be_bytes());
        put_str(&mut out, "purpose", &b.purpose)?;
        out.push(action_code(b.action));
        out.extend_from_slice(&b.notice_version.to_be_bytes());
        out.push(source_code(b.source));
        put_str(&mut out, "actor", &b.actor)?;
        out.extend_from_slice(&b.event_time.to_be_bytes());
        out.extend_from_slice(&self.recorded_time.to_be_bytes());
        put_str(&mut out, "idempotency key", &b.idempotency_key)?;
        Ok(out)
    }

    /// The Merkle leaf hash of this event.
    pub fn leaf_hash(&self) -> Result<Hash, LedgerError> {
        Ok(leaf_hash(&self.encode()?))
    }
}

/// `H(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(data);
    *h.finalize().as_bytes()
}

/// `H(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

/// `H(0x02 ‖ previous ‖ leaf)`: the hash chain's next link.
pub fn chain_hash(previous: &Hash, leaf: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x02]);
    h.update(previous);
    h.update(leaf);
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            seq: 1,
            recorded_time: 1_700_000_100,
            body: NewEvent {
                member_id: 42,
                purpose: "train_ai_system.job_recommendations".into(),
                action: Action::Grant,
                notice_version: 1,
                source: Source::Ui,
                actor: "member:42".into(),
                event_time: 1_700_000_000,
                idempotency_key: "k1".into(),
            },
        }
    }

    /// A fixed vector: changing the encoding breaks every receipt ever issued.
    #[test]
    fn encoding_is_stable() {
        let e = sample();
        let bytes = e.encode().unwrap();
        assert_eq!(&bytes[..4], b"CSE1");
        assert_eq!(bytes.len(), 4 + 8 + 8 + 2 + 35 + 1 + 4 + 1 + 2 + 9 + 8 + 8 + 2 + 2);
        assert_eq!(e.leaf_hash().unwrap(), leaf_hash(&bytes));
        // Recorded when the format was fixed.
        assert_eq!(
            hex::encode(e.leaf_hash().unwrap()),
            "3225c9ff1b6e9291df36c979a92a017846bf7bc3cbc5b81c88721226518e21fd",
            "the canonical encoding changed"
        );
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = sample().leaf_hash().unwrap();
        let mut variants = Vec::new();
        let mut e = sample();
        e.seq = 2;
        variants.push(e);
        let mut e = sample();
        e.recorded_time += 1;
        variants.push(e);
        let mut e = sample();
        e.body.member_id = 43;
        variants.push(e);
        let mut e = sample();
        e.body.purpose.push('x');
        variants.push(e);
        let mut e = sample();
        e.body.action = Action::Withdraw;
        variants.push(e);
        let mut e = sample();
        e.body.notice_version = 2;
        variants.push(e);
        let mut e = sample();
        e.body.source = Source::Api;
        variants.push(e);
        let mut e = sample();
        e.body.actor = "member:4".into();
        variants.push(e);
        let mut e = sample();
        e.body.event_time -= 1;
        variants.push(e);
        let mut e = sample();
        e.body.idempotency_key = "k2".into();
        variants.push(e);
        for v in variants {
            assert_ne!(v.leaf_hash().unwrap(), base, "{v:?}");
        }
    }

    fn sample_facts() -> FactsEntry {
        FactsEntry {
            seq: 2,
            recorded_time: 1_700_000_100,
            member_id: 42,
            jurisdiction: "US-CA".into(),
            birth_date: NaiveDate::from_ymd_opt(2009, 6, 30).unwrap(),
            actor: "import".into(),
        }
    }

    /// A fixed vector for fact entries, byte by byte.
    #[test]
    fn facts_encoding_is_stable() {
        let f = sample_facts();
        let bytes = f.encode().unwrap();
        let mut expect = b"CSF1".to_vec();
        expect.extend_from_slice(&2u64.to_be_bytes());
        expect.extend_from_slice(&42u64.to_be_bytes());
        expect.extend_from_slice(&[0, 5]);
        expect.extend_from_slice(b"US-CA");
        // 2009-06-30 is day 14425 after 1970-01-01.
        expect.extend_from_slice(&14_425i32.to_be_bytes());
        expect.extend_from_slice(&[0, 6]);
        expect.extend_from_slice(b"import");
        expect.extend_from_slice(&1_700_000_100i64.to_be_bytes());
        assert_eq!(bytes, expect);
        assert_eq!(
            hex::encode(f.leaf_hash().unwrap()),
            "04de4d637577f8d9b46ef7d2726122d82c95993558458a381ee33c10ea7ac0ae",
            "the canonical fact encoding changed"
        );
        assert_eq!(Entry::Facts(f.clone()).leaf_hash().unwrap(), f.leaf_hash().unwrap());
    }

    #[test]
    fn every_fact_changes_the_hash() {
        let base = sample_facts().leaf_hash().unwrap();
        let mut variants = Vec::new();
        let mut f = sample_facts();
        f.seq = 3;
        variants.push(f);
        let mut f = sample_facts();
        f.recorded_time += 1;
        variants.push(f);
        let mut f = sample_facts();
        f.member_id = 43;
        variants.push(f);
        let mut f = sample_facts();
        f.jurisdiction = "US".into();
        variants.push(f);
        let mut f = sample_facts();
        f.birth_date = NaiveDate::from_ymd_opt(2000, 6, 30).unwrap();
        variants.push(f);
        let mut f = sample_facts();
        f.actor = "operator:eve".into();
        variants.push(f);
        for v in variants {
            assert_ne!(v.leaf_hash().unwrap(), base, "{v:?}");
        }
        assert_eq!(
            date_from_days(i64::from(days_from_date(sample_facts().birth_date))),
            Some(sample_facts().birth_date)
        );
        assert_eq!(date_from_days(i64::MAX), None);
    }

    #[test]
    fn content_keys_follow_the_content_only() {
        let a = sample().body;
        let mut b = a.clone();
        b.idempotency_key = "other".into();
        assert_eq!(a.content_key("import").unwrap(), b.content_key("import").unwrap());
        let mut c = a.clone();
        c.action = Action::Withdraw;
        assert_ne!(a.content_key("import").unwrap(), c.content_key("import").unwrap());
        assert!(a.content_key("import").unwrap().starts_with("import:"));
    }

    #[test]
    fn oversized_strings_are_rejected() {
        let mut e = sample();
        e.body.actor = "a".repeat(70_000);
        assert!(matches!(e.encode(), Err(LedgerError::Invalid(_))));
    }

    #[test]
    fn codes_round_trip() {
        for s in Source::ALL {
            assert_eq!(source_from_code(source_to_code(s)), Some(s));
        }
        assert_eq!(action_from_code(action_to_code(Action::Withdraw)), Some(Action::Withdraw));
        assert_eq!(action_from_code(9), None);
    }
}
