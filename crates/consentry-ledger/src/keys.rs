//! Key rotation: hand-over checkpoints and the chain of keys verifiers trust.
//!
//! A log keeps its identity (`log_id`, BLAKE3 of its genesis public key) for life; the key that signs can change.
//! A rotation is a [`KeyHandover`] signed by BOTH the retiring key and its successor over the log id, the old key's
//! id, the new public key and the tree size at which the new key takes over. A [`KeyChain`] is the genesis public
//! key plus the hand-overs in order, each verified against the key before it, so anyone holding only the genesis
//! key (`ledger.pub`) can check a head signed after any number of rotations: the head names its key by id, the
//! key must be in the chain, and a retired key is trusted only for heads up to its hand-over's tree size (a head
//! it signs for a later size is refused, so a leaked retired key cannot extend the log).
//!
//! What the chain cannot tell on its own: a retired key that leaks can sign a second, conflicting hand-over; a
//! verifier that only holds the genesis key and a forged chain cannot tell it from the real one. Verifiers that
//! hold the log's chain (the store, an audit bundle, an earlier receipt) refuse a chain that does not extend
//! theirs; witnesses cosigning heads close the rest.

use crate::Hash;
use crate::checkpoint::{LogKey, PublicKey, SignedTreeHead};
use crate::schema::Component;
use serde::{Deserialize, Serialize};

/// The tables of key hand-overs and of the key ids of heads not signed by the genesis key: a schema component of
/// their own (like the outbox), so a store from before rotations opened read-only reads as never rotated.
pub static KEYS: Component = Component { name: "keys", migrations: &[] };

/// The `meta` key under which a store records its log's genesis public key (hex) once the key rotated.
pub const GENESIS_META: &str = "log_public_key";

/// The key tables on SQLite.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS key_handovers (idx INTEGER PRIMARY KEY, handover TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint_keys (tree_size INTEGER PRIMARY KEY, key_id BLOB NOT NULL);
";

/// The key tables on PostgreSQL.
#[cfg(feature = "postgres")]
pub(crate) const PG_TABLES: &str = "
CREATE TABLE IF NOT EXISTS key_handovers (idx BIGINT PRIMARY KEY, handover TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint_keys (tree_size BIGINT PRIMARY KEY, key_id BYTEA NOT NULL);
";

/// Parses a stored hand-over row.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn parse_row(idx: i64, text: &str) -> Result<KeyHandover, crate::LedgerError> {
    serde_json::from_str(text)
        .map_err(|e| crate::LedgerError::Corrupt(format!("key hand-over {}: not a hand-over ({e})", idx + 1)))
}

/// Stores a hand-over row through `insert(index, text)`, which returns how many rows it inserted (0: the index
/// was taken, by a rotation that happened meanwhile).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn put_row(
    index: usize,
    handover: &KeyHandover,
    insert: impl FnOnce(i64, &str) -> Result<u64, crate::LedgerError>,
) -> Result<(), crate::LedgerError> {
    let text = serde_json::to_string(handover)
        .map_err(|e| crate::LedgerError::Invalid(format!("cannot encode the hand-over: {e}")))?;
    let idx = i64::try_from(index).map_err(|_| crate::LedgerError::Invalid("too many key hand-overs".into()))?;
    if insert(idx, &text)? == 0 {
        return Err(crate::LedgerError::Invalid(format!(
            "key hand-over {} is already recorded: another rotation happened meanwhile; run `consentry ledger keys` \
             and rotate from the current key",
            index + 1
        )));
    }
    Ok(())
}

/// The domain label of hand-over signatures.
const HANDOVER_LABEL: &str = "consentry-key-handover-v1";

/// A rotation: the old key hands the log over to a new key from `tree_size` on; signed by both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyHandover {
    /// The log's identity (BLAKE3 of its genesis key).
    #[serde(with = "crate::hexbytes")]
    pub log_id: Hash,
    /// The id of the key that retires.
    #[serde(with = "crate::hexbytes")]
    pub old_key_id: Hash,
    /// The Ed25519 public key that takes over.
    #[serde(with = "crate::hexbytes")]
    pub new_public_key: [u8; 32],
    /// The tree size at which the new key takes over: the old key signs heads up to it, the new key from it on.
    pub tree_size: u64,
    /// When the hand-over was signed (Unix seconds, UTC).
    pub timestamp: i64,
    /// The retiring key's signature over [`KeyHandover::signed_bytes`].
    #[serde(with = "crate::hexbytes")]
    pub old_signature: [u8; 64],
    /// The new key's signature over the same bytes (it accepts the hand-over: nobody can hand a log to a key
    /// whose holder did not agree).
    #[serde(with = "crate::hexbytes")]
    pub new_signature: [u8; 64],
}

impl KeyHandover {
    /// Signs a hand-over of the log `log_id` from `old` to `new` at `tree_size`, with both keys.
    pub fn sign(log_id: Hash, old: &LogKey, new: &LogKey, tree_size: u64, timestamp: i64) -> KeyHandover {
        let mut h = KeyHandover {
            log_id,
            old_key_id: old.public().key_id(),
            new_public_key: new.public().to_bytes(),
            tree_size,
            timestamp,
            old_signature: [0; 64],
            new_signature: [0; 64],
        };
        let body = h.signed_bytes();
        h.old_signature = old.sign_labelled(HANDOVER_LABEL, &body);
        h.new_signature = new.sign_labelled(HANDOVER_LABEL, &body);
        h
    }

    /// The bytes both keys sign: every field but the signatures.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 * 3 + 16);
        out.extend_from_slice(&self.log_id);
        out.extend_from_slice(&self.old_key_id);
        out.extend_from_slice(&self.new_public_key);
        out.extend_from_slice(&self.tree_size.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out
    }

    /// The key that takes over, or why the bytes are not an Ed25519 public key.
    pub fn new_key(&self) -> Result<PublicKey, KeyChainError> {
        PublicKey::from_bytes(&self.new_public_key).map_err(|e| KeyChainError::BadHandover {
            index: None,
            reason: format!("the new public key is not an Ed25519 key ({e})"),
        })
    }
}

/// One key of a chain and the tree sizes it may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    /// The public key.
    pub key: PublicKey,
    /// BLAKE3 of it.
    pub key_id: Hash,
    /// The smallest tree size it may sign (0 for the genesis key, else its hand-over's tree size).
    pub from_size: u64,
    /// The largest tree size it may sign: its retiring hand-over's tree size; `None` while it is current.
    pub until_size: Option<u64>,
    /// When it took over (the hand-over's timestamp; `None` for the genesis key).
    pub since: Option<i64>,
}

/// The keys a verifier trusts for one log: its genesis key and every verified hand-over after it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChain {
    handovers: Vec<KeyHandover>,
    keys: Vec<TrustedKey>,
}

/// Why a hand-over or a signed head is refused by a key chain. Every message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyChainError {
    /// A hand-over does not verify against the chain before it.
    #[error("key hand-over{}: {reason}", index.map(|i| format!(" {}", i + 1)).unwrap_or_default())]
    BadHandover {
        /// 0-based position of the hand-over in the chain, when known.
        index: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// The head names another log.
    #[error(
        "the tree head names log {}…, not this log ({}…): check the public key file",
        hex::encode(&found[..8]),
        hex::encode(&expected[..8])
    )]
    WrongLog {
        /// The log the head names.
        found: Hash,
        /// This chain's log.
        expected: Hash,
    },
    /// The head names a key that is not in the chain.
    #[error(
        "the tree head of {tree_size} entries is signed by an unknown key {}; the trusted keys are {}; if the log \
         rotated its key, fetch its hand-over checkpoints (`consentry ledger keys --json` where the ledger \
         runs) and verify with them",
        hex::encode(key_id),
        trusted.iter().map(hex::encode).collect::<Vec<_>>().join(", ")
    )]
    UnknownKey {
        /// The id the head names.
        key_id: Hash,
        /// The head's tree size.
        tree_size: u64,
        /// The ids of the keys in the chain, oldest first.
        trusted: Vec<Hash>,
    },
    /// The head is signed by a key outside the tree sizes it may sign (a retired key signing past its hand-over).
    #[error(
        "the tree head of {tree_size} entries is signed by key {}…, which may only sign tree sizes {from_size}..={}: \
         a retired key signing after its hand-over is refused (the key may have leaked; the log's current key \
         signs new heads)",
        hex::encode(&key_id[..8]),
        until_size.map_or_else(|| "".to_string(), |u| u.to_string())
    )]
    OutsideTerm {
        /// The signing key.
        key_id: Hash,
        /// The head's tree size.
        tree_size: u64,
        /// The key's first signable size.
        from_size: u64,
        /// The key's last signable size.
        until_size: Option<u64>,
    },
    /// The head's signature fails under the key it names.
    #[error("the tree head of {tree_size} entries does not verify under the key it names (its signature fails)")]
    BadSignature {
        /// The head's tree size.
        tree_size: u64,
    },
}

impl KeyChain {
    /// A chain of only the genesis key (a log that never rotated).
    pub fn new(genesis: PublicKey) -> KeyChain {
        KeyChain {
            handovers: Vec::new(),
            keys: vec![TrustedKey {
                key: genesis,
                key_id: genesis.key_id(),
                from_size: 0,
                until_size: None,
                since: None,
            }],
        }
    }

    /// The genesis key followed by `handovers`, each verified against the key before it.
    pub fn from_handovers(
        genesis: PublicKey,
        handovers: impl IntoIterator<Item = KeyHandover>,
    ) -> Result<KeyChain, KeyChainError> {
        let mut chain = KeyChain::new(genesis);
        for h in handovers {
            chain.push(h)?;
        }
        Ok(chain)
    }

    /// Appends a hand-over after checking it: it names this log and the current key, hands over to a key not in
    /// the chain yet, at a tree size no smaller than the last hand-over's, and both signatures hold.
    pub fn push(&mut self, h: KeyHandover) -> Result<(), KeyChainError> {
        let index = self.handovers.len();
        let bad = |reason: String| KeyChainError::BadHandover { index: Some(index), reason };
        let current = *self.current();
        if h.log_id != self.log_id() {
            return Err(bad(format!(
                "it names log {}…, not this log ({}…)",
                hex::encode(&h.log_id[..8]),
                hex::encode(&self.log_id()[..8])
            )));
        }
        if h.old_key_id != current.key_id {
            return Err(bad(format!(
                "it hands over from key {}…, but the key in force is {}… (hand-overs must be applied in order)",
                hex::encode(&h.old_key_id[..8]),
                hex::encode(&current.key_id[..8])
            )));
        }
        let new = h.new_key().map_err(|e| bad(e.to_string()))?;
        let new_id = new.key_id();
        if self.keys.iter().any(|k| k.key_id == new_id) {
            return Err(bad(format!("it hands over to key {}…, already in the chain", hex::encode(&new_id[..8]))));
        }
        if h.tree_size < current.from_size {
            return Err(bad(format!(
                "it takes effect at tree size {}, before the key in force took over ({})",
                h.tree_size, current.from_size
            )));
        }
        let body = h.signed_bytes();
        if !current.key.verify_labelled(HANDOVER_LABEL, &body, &h.old_signature) {
            return Err(bad("the retiring key's signature fails: only the key in force can hand the log over".into()));
        }
        if !new.verify_labelled(HANDOVER_LABEL, &body, &h.new_signature) {
            return Err(bad("the new key's signature fails: the new key must sign its own hand-over".into()));
        }
        if let Some(last) = self.keys.last_mut() {
            last.until_size = Some(h.tree_size);
        }
        self.keys.push(TrustedKey {
            key: new,
            key_id: new_id,
            from_size: h.tree_size,
            until_size: None,
            since: Some(h.timestamp),
        });
        self.handovers.push(h);
        Ok(())
    }

    /// This chain extended by `more`, which must repeat this chain's hand-overs first (a receipt or a bundle
    /// carrying a chain that does not extend the one a verifier holds is refused).
    pub fn extended(&self, more: &[KeyHandover]) -> Result<KeyChain, KeyChainError> {
        let mut chain = KeyChain::new(self.genesis());
        for (i, h) in more.iter().enumerate() {
            if let Some(known) = self.handovers.get(i)
                && known != h
            {
                return Err(KeyChainError::BadHandover {
                    index: Some(i),
                    reason: "it differs from the hand-over this verifier already trusts at that place: two \
                             conflicting rotations of one log (a retired key may have leaked)"
                        .into(),
                });
            }
            chain.push(h.clone())?;
        }
        for h in self.handovers.iter().skip(more.len()) {
            chain.push(h.clone())?;
        }
        Ok(chain)
    }

    /// The log's identity: BLAKE3 of the genesis key.
    pub fn log_id(&self) -> Hash {
        self.keys[0].key_id
    }

    /// The log's first key (what `ledger.pub` holds).
    pub fn genesis(&self) -> PublicKey {
        self.keys[0].key
    }

    /// The key that signs now (the last hand-over's new key, or the genesis key).
    pub fn current(&self) -> &TrustedKey {
        // Never empty: `new` puts the genesis key in.
        &self.keys[self.keys.len() - 1]
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// The hand-overs, oldest first.
    pub fn handovers(&self) -> &[KeyHandover] {
        &self.handovers
    }

    /// The key with this id, if the chain has it.
    pub fn key(&self, key_id: &Hash) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| &k.key_id == key_id)
    }

    /// Checks a signed head: it names this log, a key of the chain that may sign its tree size, and that key's
    /// signature holds.
    pub fn check(&self, sth: &SignedTreeHead) -> Result<(), KeyChainError> {
        let tree_size = sth.head.tree_size;
        if sth.log_id != self.log_id() {
            return Err(KeyChainError::WrongLog { found: sth.log_id, expected: self.log_id() });
        }
        let Some(k) = self.key(&sth.key_id) else {
            return Err(KeyChainError::UnknownKey {
                key_id: sth.key_id,
                tree_size,
                trusted: self.keys.iter().map(|k| k.key_id).collect(),
            });
        };
        if tree_size < k.from_size || k.until_size.is_some_and(|u| tree_size > u) {
            return Err(KeyChainError::OutsideTerm {
                key_id: k.key_id,
                tree_size,
                from_size: k.from_size,
                until_size: k.until_size,
            });
        }
        if !k.key.signed(sth) {
            return Err(KeyChainError::BadSignature { tree_size });
        }
        Ok(())
    }

    /// True when [`KeyChain::check`] passes.
    pub fn verify(&self, sth: &SignedTreeHead) -> bool {
        self.check(sth).is_ok()
    }

    /// Checks a signature made by [`LogKey::sign_labelled`] with any key of the chain (records that carry no
    /// tree size: registry records, operator actions, audit runs), newest key first.
    pub fn verify_labelled(&self, label: &str, bytes: &[u8], signature: &[u8; 64]) -> bool {
        self.keys.iter().rev().any(|k| k.key.verify_labelled(label, bytes, signature))
    }

    /// The ids of the keys, short, for messages (`1a2b3c4d…, 5e6f…`).
    pub fn describe(&self) -> String {
        self.keys.iter().map(|k| format!("{}…", hex::encode(&k.key_id[..8]))).collect::<Vec<_>>().join(", ")
    }
}

/// Anything that checks signatures made by [`LogKey::sign_labelled`] with the ledger's key: one key, or the chain
/// of a log's keys (so checks of registry records, operator actions and audit runs hold across rotations).
pub trait LabelledVerifier {
    /// True when `signature` is a signature of `bytes` under `label` by a trusted key.
    fn verify_labelled(&self, label: &str, bytes: &[u8], signature: &[u8; 64]) -> bool;
}

impl LabelledVerifier for PublicKey {
    fn verify_labelled(&self, label: &str, bytes: &[u8], signature: &[u8; 64]) -> bool {
        PublicKey::verify_labelled(self, label, bytes, signature)
    }
}

impl LabelledVerifier for KeyChain {
    fn verify_labelled(&self, label: &str, bytes: &[u8], signature: &[u8; 64]) -> bool {
        KeyChain::verify_labelled(self, label, bytes, signature)
    }
}

impl From<PublicKey> for KeyChain {
    fn from(genesis: PublicKey) -> KeyChain {
        KeyChain::new(genesis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::TreeHead;
    use proptest::prelude::*;

    fn head(size: u64) -> TreeHead {
        TreeHead { tree_size: size, root_hash: [size as u8; 32], chain_hash: [2; 32], timestamp: 1_700_000_000 }
    }

    fn key(i: u8) -> LogKey {
        LogKey::from_seed([i; 32])
    }

    /// Keys 1..=n, rotated at the given sizes; returns the chain and the keys.
    fn rotated(sizes: &[u64]) -> (KeyChain, Vec<LogKey>) {
        let keys: Vec<LogKey> = (1..=sizes.len() as u8 + 1).map(key).collect();
        let log_id = keys[0].public().key_id();
        let mut chain = KeyChain::new(keys[0].public());
        for (i, &size) in sizes.iter().enumerate() {
            chain.push(KeyHandover::sign(log_id, &keys[i], &keys[i + 1], size, i as i64)).unwrap();
        }
        (chain, keys)
    }

    #[test]
    fn heads_verify_by_key_id_within_their_terms() {
        let (chain, keys) = rotated(&[10, 20]);
        let log_id = chain.log_id();
        assert!(chain.verify(&keys[0].sign(head(5))));
        assert!(chain.verify(&keys[0].sign(head(10))), "the old key signs up to its hand-over");
        assert!(chain.verify(&keys[1].sign_for(log_id, head(10))), "the new key signs from it");
        assert!(chain.verify(&keys[2].sign_for(log_id, head(99))));
        // A retired key for a later head.
        let e = chain.check(&keys[0].sign(head(11))).unwrap_err();
        assert!(matches!(e, KeyChainError::OutsideTerm { tree_size: 11, .. }), "{e}");
        assert!(e.to_string().contains("retired key"), "{e}");
        let e = chain.check(&keys[1].sign_for(log_id, head(21))).unwrap_err();
        assert!(matches!(e, KeyChainError::OutsideTerm { .. }), "{e}");
        // A new key for an earlier head.
        assert!(matches!(chain.check(&keys[2].sign_for(log_id, head(3))), Err(KeyChainError::OutsideTerm { .. })));
        // An unknown key.
        let e = chain.check(&key(9).sign_for(log_id, head(30))).unwrap_err();
        assert!(matches!(e, KeyChainError::UnknownKey { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("unknown key") && text.contains("consentry ledger keys"), "{text}");
        assert!(text.contains(&hex::encode(keys[2].public().key_id())), "{text}");
        // Another log.
        assert!(matches!(chain.check(&key(9).sign(head(1))), Err(KeyChainError::WrongLog { .. })));
        // A head that claims another key's id.
        let mut forged = key(9).sign_for(log_id, head(30));
        forged.key_id = keys[2].public().key_id();
        assert_eq!(chain.check(&forged), Err(KeyChainError::BadSignature { tree_size: 30 }));
    }

    #[test]
    fn a_handover_needs_both_signatures() {
        let (old, new) = (key(1), key(2));
        let log_id = old.public().key_id();
        let honest = KeyHandover::sign(log_id, &old, &new, 5, 0);
        assert!(KeyChain::from_handovers(old.public(), [honest.clone()]).is_ok());
        // Signed only by the attacker's key (old signature by the attacker too).
        let attacker = key(66);
        let mut only_new = honest.clone();
        only_new.new_public_key = attacker.public().to_bytes();
        only_new.new_signature = attacker.sign_labelled(HANDOVER_LABEL, &only_new.signed_bytes());
        only_new.old_signature = attacker.sign_labelled(HANDOVER_LABEL, &only_new.signed_bytes());
        let e = KeyChain::from_handovers(old.public(), [only_new]).unwrap_err();
        assert!(e.to_string().contains("retiring key's signature fails"), "{e}");
        // Signed only by the old key (the new key's signature missing).
        let mut only_old = honest.clone();
        only_old.new_signature = [0; 64];
        let e = KeyChain::from_handovers(old.public(), [only_old]).unwrap_err();
        assert!(e.to_string().contains("new key must sign"), "{e}");
        // Back to a key already in the chain.
        let back = KeyHandover::sign(log_id, &new, &old, 6, 1);
        assert!(KeyChain::from_handovers(old.public(), [honest.clone(), back]).is_err());
        // Out of order, or going back in tree size.
        let next = KeyHandover::sign(log_id, &new, &key(3), 4, 1);
        assert!(KeyChain::from_handovers(old.public(), [honest.clone(), next]).is_err());
        let skip = KeyHandover::sign(log_id, &new, &key(3), 9, 1);
        assert!(KeyChain::from_handovers(old.public(), [skip]).is_err());
    }

    #[test]
    fn extending_refuses_a_conflicting_chain() {
        let (chain, keys) = rotated(&[10]);
        let fork = KeyHandover::sign(chain.log_id(), &keys[0], &key(50), 10, 0);
        assert!(chain.extended(&[fork]).is_err());
        assert_eq!(chain.extended(&[]).unwrap(), chain);
        let more = KeyHandover::sign(chain.log_id(), &keys[1], &key(51), 12, 0);
        let longer = chain.extended(&[chain.handovers()[0].clone(), more]).unwrap();
        assert_eq!(longer.keys().len(), 3);
    }

    #[test]
    fn handover_json_round_trips() {
        let h = KeyHandover::sign([1; 32], &key(1), &key(2), 5, 7);
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<KeyHandover>(&text).unwrap(), h);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Any sequence of rotations: every head signed by a key within its term verifies, and the same head
        /// signed by any other key of the chain is refused.
        #[test]
        fn every_head_verifies_across_rotations(steps in proptest::collection::vec(0u64..5, 0..6), probe in 0u64..40) {
            let mut sizes = Vec::new();
            let mut at = 0;
            for s in steps {
                at += s;
                sizes.push(at);
            }
            let (chain, keys) = rotated(&sizes);
            let log_id = chain.log_id();
            for (i, k) in keys.iter().enumerate() {
                let t = chain.keys()[i];
                let size = t.from_size + probe % (t.until_size.map_or(40, |u| u - t.from_size + 1));
                prop_assert!(chain.verify(&k.sign_for(log_id, head(size))), "key {} at {}", i, size);
                if let Some(u) = t.until_size {
                    prop_assert!(!chain.verify(&k.sign_for(log_id, head(u + 1 + probe))));
                }
            }
        }

        /// Flipping any bit of any hand-over breaks the chain (or leaves one that no longer vouches for the
        /// heads the real keys sign).
        #[test]
        fn any_flipped_byte_breaks_a_handover(n in 1usize..4, which in 0usize..4, byte in 0usize..400, bit in 0u8..8) {
            let sizes: Vec<u64> = (1..=n as u64).map(|i| i * 3).collect();
            let (chain, keys) = rotated(&sizes);
            let which = which % n;
            let mut text = serde_json::to_value(&chain.handovers()[which]).unwrap();
            // Flip a bit of one field's value (numbers by one bit, hex strings by one nibble).
            let fields = ["log_id", "old_key_id", "new_public_key", "tree_size", "timestamp", "old_signature", "new_signature"];
            let field = fields[byte % fields.len()];
            match &text[field] {
                serde_json::Value::Number(v) => {
                    let v = v.as_u64().unwrap_or(0) ^ (1 << bit);
                    text[field] = serde_json::json!(v);
                }
                serde_json::Value::String(s) => {
                    let mut b = hex::decode(s).unwrap();
                    let i = byte % b.len();
                    b[i] ^= 1 << bit;
                    text[field] = serde_json::json!(hex::encode(b));
                }
                _ => unreachable!(),
            }
            let bad: KeyHandover = serde_json::from_value(text).unwrap();
            let mut all = chain.handovers().to_vec();
            all[which] = bad;
            prop_assert!(KeyChain::from_handovers(keys[0].public(), all).is_err());
        }
    }
}
