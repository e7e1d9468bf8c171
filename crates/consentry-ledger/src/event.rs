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
//! Hashes are BLAKE3 with RFC 9162 domain separation: a leaf is
//! `H(0x00 ‖ encoding)`, an inner node `H(0x01 ‖ left ‖ right)`, and the hash
//! chain links `chain[n] = H(0x02 ‖ chain[n-1] ‖ leaf[n])` from `chain[0] = 0³²`.

use crate::{Hash, LedgerError};
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
