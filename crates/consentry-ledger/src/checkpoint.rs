//! Signed tree heads (checkpoints) and the Ed25519 key that signs them.

use crate::{Hash, LedgerError};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a checkpoint commits to: the first `tree_size` events, by Merkle root and by chain head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// Number of events covered.
    pub tree_size: u64,
    /// RFC 9162 Merkle tree hash of those events.
    #[serde(with = "crate::hexbytes")]
    pub root_hash: Hash,
    /// The hash chain's value after the last covered event.
    #[serde(with = "crate::hexbytes")]
    pub chain_hash: Hash,
    /// When the head was signed (Unix seconds, UTC).
    pub timestamp: i64,
}

/// A tree head with the ledger's signature over it.
///
/// In JSON `key_id` is written only when it differs from `log_id` (a head signed by a key the log rotated to):
/// heads written before keys rotated have no `key_id` and read as signed by the log's genesis key, and one value
/// has one spelling (receipts refuse any text that is not the canonical form of what they parse to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SthJson", into = "SthJson")]
pub struct SignedTreeHead {
    /// The head.
    pub head: TreeHead,
    /// The log's identity: BLAKE3 of its first (genesis) public key, the same across key rotations.
    pub log_id: Hash,
    /// BLAKE3 of the public key that signed this head (equal to `log_id` for the genesis key).
    pub key_id: Hash,
    /// Ed25519 signature over [`SignedTreeHead::signed_bytes`] (or, for a head stored before keys had ids,
    /// over [`TreeHead::signed_bytes`]).
    pub signature: [u8; 64],
}

/// The JSON form of a [`SignedTreeHead`]: `key_id` absent means the genesis key.
#[derive(Serialize, Deserialize)]
struct SthJson {
    #[serde(flatten)]
    head: TreeHead,
    #[serde(with = "crate::hexbytes")]
    log_id: Hash,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::hexbytes::option")]
    key_id: Option<Hash>,
    #[serde(with = "crate::hexbytes")]
    signature: [u8; 64],
}

impl From<SthJson> for SignedTreeHead {
    fn from(j: SthJson) -> SignedTreeHead {
        SignedTreeHead { head: j.head, log_id: j.log_id, key_id: j.key_id.unwrap_or(j.log_id), signature: j.signature }
    }
}

impl From<SignedTreeHead> for SthJson {
    fn from(s: SignedTreeHead) -> SthJson {
        SthJson {
            head: s.head,
            log_id: s.log_id,
            key_id: (s.key_id != s.log_id).then_some(s.key_id),
            signature: s.signature,
        }
    }
}

impl SignedTreeHead {
    /// The exact bytes a key signs for a head (version 2): the head bound to the log and to the signing key's id,
    /// so a signature cannot be moved to another log or claimed by another key.
    pub fn signed_bytes(&self) -> Vec<u8> {
        v2_bytes(&self.head, &self.log_id, &self.key_id)
    }
}

fn v2_bytes(head: &TreeHead, log_id: &Hash, key_id: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + 32 + 32 + 8 + 32 + 32 + 8);
    out.extend_from_slice(b"consentry-sth-v2\0");
    out.extend_from_slice(log_id);
    out.extend_from_slice(key_id);
    out.extend_from_slice(&head.tree_size.to_be_bytes());
    out.extend_from_slice(&head.root_hash);
    out.extend_from_slice(&head.chain_hash);
    out.extend_from_slice(&head.timestamp.to_be_bytes());
    out
}

impl TreeHead {
    /// The bytes version-1 heads signed (before keys had ids; still the input of [`TreeHead::digest`]).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + 8 + 32 + 32 + 8);
        out.extend_from_slice(b"consentry-sth-v1\0");
        out.extend_from_slice(&self.tree_size.to_be_bytes());
        out.extend_from_slice(&self.root_hash);
        out.extend_from_slice(&self.chain_hash);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out
    }

    /// BLAKE3 of the signed bytes: a short name for this head (recorded in snapshots and manifests).
    pub fn digest(&self) -> Hash {
        *blake3::hash(&self.signed_bytes()).as_bytes()
    }
}

/// The ledger's signing key.
pub struct LogKey {
    key: SigningKey,
}

impl LogKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<LogKey, LedgerError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| LedgerError::Key(format!("no randomness available: {e}")))?;
        Ok(LogKey { key: SigningKey::from_bytes(&seed) })
    }

    /// A key from a 32-byte seed (tests and deterministic demos).
    pub fn from_seed(seed: [u8; 32]) -> LogKey {
        LogKey { key: SigningKey::from_bytes(&seed) }
    }

    /// Reads a key file written by [`LogKey::save`] (hex seed).
    pub fn load(path: &Path) -> Result<LogKey, LedgerError> {
        let text = read_key_file(path)?;
        let bytes = hex::decode(text.trim())
            .map_err(|_| LedgerError::Key(format!("{} is not a hex-encoded Ed25519 seed", path.display())))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| LedgerError::Key(format!("{} must hold 32 bytes (64 hex digits)", path.display())))?;
        Ok(LogKey::from_seed(seed))
    }

    /// Writes the secret seed (mode 0600 on Unix); refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<(), LedgerError> {
        use std::io::Write;
        let mut f = consentry_files::create_secret(path).map_err(|e| LedgerError::io(path, e))?;
        writeln!(f, "{}", hex::encode(self.key.to_bytes())).map_err(|e| LedgerError::io(path, e))?;
        f.sync_all().map_err(|e| LedgerError::io(path, e))
    }

    /// The public half, for verifiers.
    pub fn public(&self) -> PublicKey {
        PublicKey { key: self.key.verifying_key() }
    }

    /// Signs a tree head as the genesis key of its own log (a log that never rotated its key).
    pub fn sign(&self, head: TreeHead) -> SignedTreeHead {
        self.sign_for(self.public().key_id(), head)
    }

    /// Signs a tree head of the log `log_id` (BLAKE3 of the log's genesis key), naming this key's id.
    pub fn sign_for(&self, log_id: Hash, head: TreeHead) -> SignedTreeHead {
        let key_id = self.public().key_id();
        let signature = self.key.sign(&v2_bytes(&head, &log_id, &key_id)).to_bytes();
        SignedTreeHead { head, log_id, key_id, signature }
    }

    /// Signs arbitrary bytes under a domain label (used for receipts).
    pub fn sign_labelled(&self, label: &str, bytes: &[u8]) -> [u8; 64] {
        self.key.sign(&labelled(label, bytes)).to_bytes()
    }

    /// Signs `msg` as is, with no domain label: a C2SP note body, whose format is its own domain separation.
    pub fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

/// Reads a key file; a missing or unreadable one is the caller's mistake (a typo in a path), so it is
/// a key error that names the resolved path, not an I/O failure of the ledger.
fn read_key_file(path: &Path) -> Result<String, LedgerError> {
    std::fs::read_to_string(path).map_err(|e| {
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        match e.kind() {
            std::io::ErrorKind::NotFound => LedgerError::Key(format!("{}: no such key file", shown.display())),
            _ => LedgerError::Key(format!("cannot read key file {}: {e}", shown.display())),
        }
    })
}

fn labelled(label: &str, bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(label.len() + 1 + bytes.len());
    msg.extend_from_slice(label.as_bytes());
    msg.push(0);
    msg.extend_from_slice(bytes);
    msg
}

/// The ledger's public key: all a verifier needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// Parses a hex-encoded 32-byte public key (the format of `ledger.pub`).
    pub fn from_hex(text: &str) -> Result<PublicKey, LedgerError> {
        let bytes = hex::decode(text.trim()).map_err(|_| LedgerError::Key("the public key is not hex".into()))?;
        let raw: [u8; 32] =
            bytes.try_into().map_err(|_| LedgerError::Key("the public key must be 32 bytes (64 hex digits)".into()))?;
        let key =
            VerifyingKey::from_bytes(&raw).map_err(|e| LedgerError::Key(format!("not an Ed25519 public key: {e}")))?;
        Ok(PublicKey { key })
    }

    /// Reads a public key file.
    pub fn load(path: &Path) -> Result<PublicKey, LedgerError> {
        let text = read_key_file(path)?;
        PublicKey::from_hex(&text).map_err(|e| LedgerError::Key(format!("{}: {e}", path.display())))
    }

    /// A key from its 32 raw bytes (a hand-over's new key).
    pub fn from_bytes(raw: &[u8; 32]) -> Result<PublicKey, LedgerError> {
        let key =
            VerifyingKey::from_bytes(raw).map_err(|e| LedgerError::Key(format!("not an Ed25519 public key: {e}")))?;
        Ok(PublicKey { key })
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Hex form, as written to `ledger.pub`.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// BLAKE3 of the key bytes: the id of the log whose genesis key this is.
    pub fn log_id(&self) -> Hash {
        self.key_id()
    }

    /// BLAKE3 of the key bytes: the key's id, named by every head it signs.
    pub fn key_id(&self) -> Hash {
        *blake3::hash(self.key.as_bytes()).as_bytes()
    }

    /// True when `sth` names this key as its log's genesis key and this key signed it (a log that never rotated;
    /// across rotations verify with a [`crate::KeyChain`]).
    pub fn verify(&self, sth: &SignedTreeHead) -> bool {
        sth.log_id == self.log_id() && self.signed(sth)
    }

    /// True when `sth` names this key as its signer and the signature holds, whatever log it names (the key
    /// chain checks the log and the tree sizes this key may sign). A head naming the log's genesis key may carry
    /// a version-1 signature (heads stored before keys had ids).
    pub(crate) fn signed(&self, sth: &SignedTreeHead) -> bool {
        if sth.key_id != self.key_id() {
            return false;
        }
        let sig = Signature::from_bytes(&sth.signature);
        self.key.verify(&sth.signed_bytes(), &sig).is_ok()
            || (sth.key_id == sth.log_id && self.key.verify(&sth.head.signed_bytes(), &sig).is_ok())
    }

    /// Checks a signature made by [`LogKey::sign_labelled`].
    pub fn verify_labelled(&self, label: &str, bytes: &[u8], signature: &[u8; 64]) -> bool {
        self.key.verify(&labelled(label, bytes), &Signature::from_bytes(signature)).is_ok()
    }

    /// Checks a signature made by [`LogKey::sign_raw`] (a C2SP note body).
    pub fn verify_raw(&self, msg: &[u8], signature: &[u8; 64]) -> bool {
        self.key.verify(msg, &Signature::from_bytes(signature)).is_ok()
    }

    /// The raw 32 bytes of the Ed25519 key (what C2SP key ids and verifier keys are made of).
    pub fn as_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> TreeHead {
        TreeHead { tree_size: 3, root_hash: [1; 32], chain_hash: [2; 32], timestamp: 1_700_000_000 }
    }

    #[test]
    fn signatures_verify_and_bind_every_field() {
        let k = LogKey::from_seed([7; 32]);
        let sth = k.sign(head());
        assert!(k.public().verify(&sth));
        let mut bad = sth.clone();
        bad.head.tree_size = 4;
        assert!(!k.public().verify(&bad));
        let mut bad = sth.clone();
        bad.head.chain_hash[0] ^= 1;
        assert!(!k.public().verify(&bad));
        let other = LogKey::from_seed([8; 32]);
        assert!(!other.public().verify(&sth));
    }

    #[test]
    fn keys_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let k = LogKey::generate().unwrap();
        k.save(&path).unwrap();
        assert!(k.save(&path).is_err(), "must not overwrite a key");
        let back = LogKey::load(&path).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(PublicKey::from_hex(&k.public().to_hex()).unwrap(), k.public());
        assert!(PublicKey::from_hex("zz").is_err());
        // A key file that is not there is the caller's typo: bad input naming the path.
        let e = PublicKey::load(&dir.path().join("typo.pub")).unwrap_err();
        assert!(e.is_bad_input() && e.to_string().contains("typo.pub"), "{e}");
        let Err(e) = LogKey::load(&dir.path().join("typo.key")) else { panic!("a missing key file must not load") };
        assert!(e.is_bad_input() && e.to_string().contains("no such key file"), "{e}");
        // Written with mode 0600 whatever the umask.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// A head stored before keys had ids (v1 signature, no `key_id` in JSON) still verifies, reads with
    /// `key_id = log_id`, and writes back without `key_id`.
    #[test]
    fn version_one_heads_still_verify() {
        let k = LogKey::from_seed([7; 32]);
        let h = head();
        let signature = k.key.sign(&h.signed_bytes()).to_bytes();
        let log_id = k.public().log_id();
        let json = format!(
            r#"{{"tree_size":3,"root_hash":"{}","chain_hash":"{}","timestamp":1700000000,"log_id":"{}","signature":"{}"}}"#,
            hex::encode(h.root_hash),
            hex::encode(h.chain_hash),
            hex::encode(log_id),
            hex::encode(signature)
        );
        let old: SignedTreeHead = serde_json::from_str(&json).unwrap();
        assert_eq!(old.key_id, log_id);
        assert!(k.public().verify(&old));
        assert_eq!(serde_json::to_string(&old).unwrap(), json);
        // A v1 signature is only accepted for the genesis key: claimed for another key id it fails.
        let mut moved = old.clone();
        moved.key_id = [9; 32];
        assert!(!k.public().signed(&moved));
        // A new head signs v2 bytes, which bind the log and key ids.
        let new = k.sign(h);
        assert_ne!(new.signature, old.signature);
        let mut other_log = new.clone();
        other_log.log_id = [1; 32];
        assert!(!k.public().signed(&other_log));
    }

    #[test]
    fn sth_json_round_trips() {
        let sth = LogKey::from_seed([7; 32]).sign(head());
        let json = serde_json::to_string(&sth).unwrap();
        let back: SignedTreeHead = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sth);
        assert!(!json.contains("key_id"), "the genesis key's heads need no key_id: {json}");
        let rotated = LogKey::from_seed([8; 32]).sign_for([1; 32], head());
        let json = serde_json::to_string(&rotated).unwrap();
        assert!(json.contains("key_id"), "{json}");
        assert_eq!(serde_json::from_str::<SignedTreeHead>(&json).unwrap(), rotated);
    }
}
