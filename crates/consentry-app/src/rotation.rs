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
        consentry_files::crash_point("rotation::before_handover");
        let handover = ledger.rotate_key(&new).map_err(|e| {
            if new_key.is_none() {
                let _ = std::fs::remove_file(&staged);
            }
            AppError::from(e)
        })?;
        let new_key_id = new.public().key_id();
        consentry_files::crash_point("rotation::after_handover");
        let (new_key_file, retired_key_file, in_place) = if new_key.is_none() {
            let retired = retired_path(&old_path, &old_key_id);
            std::fs::rename(&old_path, &retired)
                .map_err(|e| AppError::internal(format!("moving {} away: {e}", old_path.display())))
                .context("the hand-over is stored; the next command puts the new key in place")?;
            consentry_files::crash_point("rotation::between_renames");
            std::fs::rename(&staged, &old_path)
                .map_err(|e| AppError::internal(format!("putting the new key at {}: {e}", old_path.display())))
                .context("the hand-over is stored; the next command puts the new key in place")?;
            sync_parent(&old_path)?;
            (old_path, retired, true)
        } else {
            (staged, old_path, false)
        };
        Ok(Rotation { handover, old_key_id, new_key_id, new_key_file, retired_key_file, in_place })
    }
}

impl Session {
    /// Finishes an in-place rotation a crash interrupted, so the next command runs without a human: when the
    /// staged `<key>.new` holds the key the stored hand-overs end at, the retired key moves to
    /// `<key>.retired-<id>` and the new one into place; a staged key no hand-over names (the rotation died before
    /// its hand-over was stored, so nothing ever trusted it) is removed. Called before the signing key is read.
    pub(crate) fn finish_interrupted_rotation(&self) -> Result<()> {
        let key_path = self.dir().key_file();
        let staged = sibling(&key_path, "new");
        if !staged.exists() {
            return Ok(());
        }
        let Some(chain) = self.key_chain_opt()? else { return Ok(()) };
        crate::datadir::check_key_permissions(&staged)?;
        // Not a key: no rotation wrote it (they sync the key before storing the hand-over); left for a human.
        let Ok(staged_key) = LogKey::load(&staged) else { return Ok(()) };
        let new_id = staged_key.public().key_id();
        if chain.current().key_id != new_id {
            if chain.key(&new_id).is_none() {
                std::fs::remove_file(&staged)
                    .map_err(|e| AppError::internal(format!("removing the unused key {}: {e}", staged.display())))?;
            }
            return Ok(());
        }
        if key_path.exists() {
            let old_id = LogKey::load(&key_path)?.public().key_id();
            if old_id != new_id {
                std::fs::rename(&key_path, retired_path(&key_path, &old_id))
                    .map_err(|e| AppError::internal(format!("moving the retired key {}: {e}", key_path.display())))?;
            }
        }
        std::fs::rename(&staged, &key_path)
            .map_err(|e| AppError::internal(format!("putting the new key at {}: {e}", key_path.display())))?;
        sync_parent(&key_path)
    }
}

/// Where an in-place rotation keeps the retired key: `<key>.retired-<16 hex of its id>`.
fn retired_path(key_path: &Path, key_id: &Hash) -> PathBuf {
    sibling(key_path, &format!("retired-{}", hex::encode(&key_id[..8])))
}

/// Makes the renames in `path`'s directory durable.
fn sync_parent(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AppError::internal(format!("syncing {}: {e}", dir.display())))
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
