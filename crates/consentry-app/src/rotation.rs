//! Rotating the ledger's signing key (`consentry ledger rotate-key`) and listing the log's keys
//! (`consentry ledger keys`): the rules live here, the CLI only renders.
//!
//! A rotation signs a checkpoint of the whole log with the key in force, then a hand-over to the new key signed by
//! both ([`consentry_ledger::keys`]), and stores it in the ledger. Auditors and receipt holders need nothing new:
//! `ledger.pub` stays the log's genesis key, receipts carry the hand-overs, evidence bundles hold them.

use crate::error::{AppError, Context as _, Result};
use crate::session::Session;
use consentry_ledger::{Hash, KeyChain, KeyHandover, LogKey};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What a rotation did, and where the keys are now.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// The stored hand-over.
    pub handover: KeyHandover,
    /// The id of the key that retired.
    #[serde(serialize_with = "hex_hash")]
    pub old_key_id: Hash,
    /// The id of the key now in force.
    #[serde(serialize_with = "hex_hash")]
    pub new_key_id: Hash,
    /// Where the new secret key is.
    pub new_key_file: PathBuf,
    /// Where the retired secret key is now (to be moved off the host or destroyed).
    pub retired_key_file: PathBuf,
    /// Whether the new key is at the path the ledger reads (no flag to change), or must be passed from now on.
    pub in_place: bool,
}

fn hex_hash<S: serde::Serializer>(h: &Hash, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

/// One key of the chain, for listing.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// BLAKE3 of the public key (what signed heads name).
    pub key_id: String,
    /// The public key (hex).
    pub public_key: String,
    /// The first tree size it signs.
    pub from_size: u64,
    /// The last tree size it signed (retired keys).
    pub until_size: Option<u64>,
    /// When it took over (Unix seconds; none for the genesis key).
    pub since: Option<i64>,
    /// Whether it signs now.
    pub current: bool,
}

/// The log's keys, for `ledger keys`: the log id, every key and the hand-overs (what a verifier holding only
/// `ledger.pub` needs to check heads signed after a rotation).
#[derive(Debug, Clone, Serialize)]
pub struct KeysReport {
    /// The log's identity.
    pub log_id: String,
    /// Every key, oldest first.
    pub keys: Vec<KeyInfo>,
    /// The hand-overs, oldest first.
    pub handovers: Vec<KeyHandover>,
}

impl KeysReport {
    /// The report of a chain.
    pub fn of(chain: &KeyChain) -> KeysReport {
        let n = chain.keys().len();
        KeysReport {
            log_id: hex::encode(chain.log_id()),
            keys: chain
                .keys()
                .iter()
                .enumerate()
                .map(|(i, k)| KeyInfo {
                    key_id: hex::encode(k.key_id),
                    public_key: k.key.to_hex(),
                    from_size: k.from_size,
                    until_size: k.until_size,
                    since: k.since,
                    current: i + 1 == n,
                })
                .collect(),
            handovers: chain.handovers().to_vec(),
        }
    }
}

impl Session {
    /// The log's keys ([`Session::key_chain`]) as a report.
    pub fn keys_report(&self) -> Result<KeysReport> {
        Ok(KeysReport::of(&self.key_chain()?))
    }

    /// Rotates the ledger's signing key to the key in `new_key` (made there, mode 0600, when the file does not
    /// exist), or, without it, to a fresh key put where the ledger reads its key, the old one renamed beside it to
    /// `<name>.retired-<key id>` for the operator to move off the host.
    pub fn rotate_key(&self, new_key: Option<&Path>) -> Result<Rotation> {
        let ledger = self.ledger()?;
        let old_path = self.dir().key_file();
        let old_key_id = ledger.signing_chain()?.current().key_id;
        let (new, staged) = match new_key {
            Some(p) if p.exists() => {
                crate::datadir::check_key_permissions(p)?;
                (LogKey::load(p)?, p.to_path_buf())
            }
            Some(p) => (generate_at(p)?, p.to_path_buf()),
            None => {
                let staged = sibling(&old_path, "new");
                (generate_at(&staged)?, staged)
            }
        };
        let handover = ledger.rotate_key(&new).map_err(|e| {
            if new_key.is_none() {
                let _ = std::fs::remove_file(&staged);
            }
            AppError::from(e)
        })?;
        let new_key_id = new.public().key_id();
        let (new_key_file, retired_key_file, in_place) = if new_key.is_none() {
            let retired = sibling(&old_path, &format!("retired-{}", hex::encode(&old_key_id[..8])));
            std::fs::rename(&old_path, &retired)
                .map_err(|e| AppError::internal(format!("moving {} away: {e}", old_path.display())))
                .context("the hand-over is stored; move the old key away and put the new one in its place by hand")?;
            std::fs::rename(&staged, &old_path)
                .map_err(|e| AppError::internal(format!("putting the new key at {}: {e}", old_path.display())))
                .with_context(|| format!("the hand-over is stored; the new key is {}", staged.display()))?;
            (old_path, retired, true)
        } else {
            (staged, old_path, false)
        };
        Ok(Rotation { handover, old_key_id, new_key_id, new_key_file, retired_key_file, in_place })
    }
}

/// `path` with `.suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

fn generate_at(path: &Path) -> Result<LogKey> {
    let key = LogKey::generate()?;
    key.save(path).with_context(|| format!("writing the new key {}", path.display()))?;
    Ok(key)
}
