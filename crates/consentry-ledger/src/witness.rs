//! Witnesses: third parties that keep the latest checkpoint they saw of a log, cosign a newer one only when a
//! consistency proof shows it extends the old one, and so make a split view (the log showing different
//! histories to different people) detectable — as Certificate Transparency, Sigsum and the Go checksum
//! database do.
//!
//! Three parts:
//! - [`Witness`]: a witness's own state in a directory (its Ed25519 key, and per log origin the log's key and
//!   the latest checkpoint it cosigned, written atomically), and [`Witness::accept`], the one door a checkpoint
//!   goes through to be cosigned;
//! - the log side ([`Ledger::checkpoint_note`], [`Ledger::add_cosignature`], [`Ledger::witnessed`]): the ledger
//!   signs its checkpoints as C2SP notes and keeps the cosignatures witnesses send back;
//! - the verifier side ([`WitnessPolicy`]): how many cosignatures by which witnesses a receipt or an audit
//!   requires, and the tally that names who did and did not cosign.

use crate::checkpoint::{LogKey, PublicKey, SignedTreeHead};
use crate::keys::{KeyChain, KeyChainError, KeyHandover};
use crate::merkle::{empty_root, verify_consistency};
use crate::note::{
    Checkpoint, Cosignature, Note, NoteError, NoteSignature, TYPE_COSIGNATURE, TYPE_ED25519, VerifierKey, b64_encode,
    check_name, key_id,
};
use crate::{Hash, Ledger, LedgerError};
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The witness's secret key file in its directory.
pub const KEY_FILE: &str = "witness.key";
/// The witness's verifier key (`name+keyid+base64`), to hand to log operators and verifiers.
pub const VKEY_FILE: &str = "witness.vkey";
/// The witness's state: the logs it watches and the latest checkpoint it cosigned of each.
pub const STATE_FILE: &str = "state.json";
/// Version of [`STATE_FILE`]'s format.
pub const STATE_VERSION: u32 = 1;

/// Meta key of an operator-chosen origin line (absent: [`default_origin`]).
const ORIGIN_META: &str = "log.origin";
/// Meta key listing the tree sizes that have cosignatures (comma-separated, ascending).
const COSIGNED_SIZES_META: &str = "cosignatures/sizes";

fn cosignatures_meta(tree_size: u64) -> String {
    format!("cosignatures/{tree_size}")
}

/// The stored cosignature lines of the checkpoint of `tree_size`.
fn parse_cosignatures(text: &str, tree_size: u64) -> Result<Vec<Cosignature>, LedgerError> {
    text.lines()
        .map(|l| {
            Cosignature::parse_line(l)
                .map_err(|e| LedgerError::Corrupt(format!("stored cosignature of size {tree_size}: {e}")))
        })
        .collect()
}

/// The stored list of cosigned tree sizes (comma-separated, ascending).
fn parse_sizes(text: &str) -> Result<Vec<u64>, LedgerError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| LedgerError::Corrupt(format!("cosigned sizes list holds `{s}`"))))
        .collect()
}

/// Why a witness refused a checkpoint, or could not work: each refusal says which check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The note or checkpoint text is malformed.
    #[error("{0}")]
    Malformed(#[from] NoteError),
    /// The witness does not watch a log of this origin.
    #[error(
        "this witness does not watch a log with origin `{origin}`: add it with `consentry witness add-log --origin \
         {origin} --public-key FILE` (with the log's public key obtained out of band)"
    )]
    UnknownLog {
        /// The origin line of the checkpoint offered.
        origin: String,
    },
    /// The checkpoint carries no valid signature by the log's key.
    #[error(
        "the checkpoint of `{origin}` is not signed by the log's key ({reason}): refused; check the log's public key"
    )]
    BadSignature {
        /// The log.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The key hand-overs offered with the checkpoint do not extend the chain of keys this witness trusts.
    #[error(
        "the key hand-overs offered by `{origin}` are refused ({0}): this witness keeps trusting the keys it knew; \
         a rotation it cannot verify is what a stolen or retired key would offer",
        .source
    )]
    BadHandover {
        /// The log.
        origin: String,
        /// What the key chain refused.
        #[source]
        source: KeyChainError,
    },
    /// The checkpoint is smaller than the one already cosigned: the log went back.
    #[error(
        "rollback: the log `{origin}` offers a checkpoint of {offered} entries but this witness already cosigned \
         {stored}: a log never shrinks; refused"
    )]
    Rollback {
        /// The log.
        origin: String,
        /// Size of the cosigned checkpoint.
        stored: u64,
        /// Size offered.
        offered: u64,
    },
    /// Same size as the cosigned checkpoint, another root: the log has (at least) two histories.
    #[error(
        "FORK: the log `{origin}` signed two different trees of {tree_size} entries: root {} (cosigned by this \
         witness) and root {} (offered now); the log shows different histories to different people — keep both \
         signed checkpoints as evidence; refused",
        hex::encode(stored_root),
        hex::encode(offered_root)
    )]
    Fork {
        /// The log.
        origin: String,
        /// The size both checkpoints have.
        tree_size: u64,
        /// The root this witness cosigned.
        stored_root: Hash,
        /// The root offered.
        offered_root: Hash,
    },
    /// The consistency proof does not show the new checkpoint extends the cosigned one.
    #[error(
        "no consistency proof: the checkpoint of {offered} entries (root {}) offered by `{origin}` is not shown to \
         extend the one of {stored} entries (root {}) this witness cosigned — the log was forked or rewritten (or \
         the proof is wrong); refused",
        hex::encode(offered_root),
        hex::encode(stored_root)
    )]
    BadProof {
        /// The log.
        origin: String,
        /// Size of the cosigned checkpoint.
        stored: u64,
        /// Its root.
        stored_root: Hash,
        /// Size offered.
        offered: u64,
        /// Root offered.
        offered_root: Hash,
    },
    /// The witness's key file is missing, malformed or too open.
    #[error("witness key: {0}")]
    Key(String),
    /// The witness directory's state is missing or unreadable.
    #[error("witness state: {0}")]
    State(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl WitnessError {
    /// The refusal's name in snake_case, stable for JSON output and scripts.
    pub fn check(&self) -> &'static str {
        match self {
            WitnessError::Malformed(_) => "malformed",
            WitnessError::UnknownLog { .. } => "unknown_log",
            WitnessError::BadSignature { .. } => "bad_signature",
            WitnessError::BadHandover { .. } => "bad_handover",
            WitnessError::Rollback { .. } => "rollback",
            WitnessError::Fork { .. } => "fork",
            WitnessError::BadProof { .. } => "bad_proof",
            WitnessError::Key(_) => "key",
            WitnessError::State(_) => "state",
            WitnessError::Io { .. } => "io",
        }
    }

    /// True when the log (not the witness) is at fault: the checkpoint was refused.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            WitnessError::Malformed(_)
                | WitnessError::UnknownLog { .. }
                | WitnessError::BadSignature { .. }
                | WitnessError::BadHandover { .. }
                | WitnessError::Rollback { .. }
                | WitnessError::Fork { .. }
                | WitnessError::BadProof { .. }
        )
    }

    fn io(path: &Path, source: std::io::Error) -> WitnessError {
        WitnessError::Io { path: path.to_path_buf(), source }
    }
}

/// The origin line of a log whose operator chose none: `consentry/<first 16 hex of log id>`.
pub fn default_origin(log_id: &Hash) -> String {
    format!("consentry/{}", hex::encode(&log_id[..8]))
}

/// The verifier key of a log's checkpoint notes: the origin as key name, the log's key, type Ed25519.
pub fn log_verifier_key(origin: &str, key: &PublicKey) -> Result<VerifierKey, NoteError> {
    VerifierKey::new(origin, TYPE_ED25519, key.as_bytes())
}

/// The tlog checkpoint of a signed tree head under `origin` (no extension lines: witnesses vouch for the
/// origin, size and root only; the root commits to every entry).
pub fn checkpoint_of(origin: &str, sth: &SignedTreeHead) -> Checkpoint {
    Checkpoint {
        origin: origin.to_string(),
        tree_size: sth.head.tree_size,
        root_hash: sth.head.root_hash,
        extensions: Vec::new(),
    }
}

/// Signs a checkpoint as a C2SP note with the log's key (raw Ed25519 over the body, key name = origin).
pub fn sign_checkpoint(key: &LogKey, checkpoint: &Checkpoint) -> Result<Note, NoteError> {
    let body = checkpoint.body();
    let mut note = Note::new(&body)?;
    let vkey = log_verifier_key(&checkpoint.origin, &key.public())?;
    note.add_signature(NoteSignature {
        name: checkpoint.origin.clone(),
        key_id: vkey.key_id(),
        signature: key.sign_raw(body.as_bytes()).to_vec(),
    });
    Ok(note)
}

// ---------------------------------------------------------------------------------------------------------
// The witness.

/// A witness's Ed25519 key and name.
pub struct WitnessKey {
    name: String,
    key: SigningKey,
}

impl WitnessKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(name: &str) -> Result<WitnessKey, WitnessError> {
        check_name(name).map_err(|e| WitnessError::Key(format!("witness name: {e}")))?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| WitnessError::Key(format!("no randomness available: {e}")))?;
        Ok(WitnessKey { name: name.to_string(), key: SigningKey::from_bytes(&seed) })
    }

    /// A key from a seed (tests).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<WitnessKey, WitnessError> {
        check_name(name).map_err(|e| WitnessError::Key(format!("witness name: {e}")))?;
        Ok(WitnessKey { name: name.to_string(), key: SigningKey::from_bytes(&seed) })
    }

    /// The witness's name (its cosignatures' key name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key of its cosignatures (type 0x04).
    pub fn verifier_key(&self) -> Result<VerifierKey, WitnessError> {
        Ok(VerifierKey::new(&self.name, TYPE_COSIGNATURE, self.key.verifying_key().to_bytes())?)
    }

    /// Cosigns a checkpoint body at `timestamp`.
    pub fn cosign(&self, body: &str, timestamp: u64) -> Cosignature {
        let public = self.key.verifying_key().to_bytes();
        Cosignature {
            name: self.name.clone(),
            key_id: key_id(&self.name, TYPE_COSIGNATURE, &public),
            timestamp,
            signature: self.key.sign(&Cosignature::signed_message(timestamp, body)).to_bytes(),
        }
    }

    /// The secret key text: `PRIVATE+KEY+<name>+<keyid>+base64(0x04 || seed)` (the Go note signer format).
    fn encode_secret(&self) -> String {
        let public = self.key.verifying_key().to_bytes();
        let mut raw = vec![TYPE_COSIGNATURE];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}\n",
            self.name,
            hex::encode(key_id(&self.name, TYPE_COSIGNATURE, &public)),
            b64_encode(&raw)
        )
    }

    /// Reads a key file written by [`Witness::init`]; refuses one that group or others may read.
    pub fn load(path: &Path) -> Result<WitnessKey, WitnessError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            WitnessError::Key(format!("cannot read {}: {e}; create one with `consentry witness init`", path.display()))
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(WitnessError::Key(format!(
                "{} is readable by group or others (mode {mode:o}): a witness key must be private; run `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| WitnessError::io(path, e))?;
        let bad =
            || WitnessError::Key(format!("{} is not a witness key (PRIVATE+KEY+name+keyid+base64)", path.display()));
        let rest = text.trim_end().strip_prefix("PRIVATE+KEY+").ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| bad())?;
        let (Some(&TYPE_COSIGNATURE), Ok(seed)) = (raw.first(), <[u8; 32]>::try_from(raw.get(1..).unwrap_or(&[])))
        else {
            return Err(bad());
        };
        let key = WitnessKey::from_seed(name, seed)?;
        if hex::encode(key.verifier_key()?.key_id()) != id {
            return Err(WitnessError::Key(format!("{}: the key id does not match the name and key", path.display())));
        }
        Ok(key)
    }
}

/// What a witness keeps about one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogState {
    /// The log's Ed25519 public key (hex, as in `ledger.pub`): its genesis key, never replaced.
    pub public_key: String,
    /// The key hand-overs from that key to the key the log signs with now, each verified before it was kept
    /// (absent for a log that never rotated, so state files from before rotation read unchanged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_handovers: Vec<KeyHandover>,
    /// Size of the latest checkpoint cosigned (0 before the first).
    pub tree_size: u64,
    /// Its root hash (hex).
    pub root_hash: String,
    /// The latest checkpoint as the log signed it, with this witness's cosignature (empty before the first).
    pub checkpoint: String,
    /// When it was cosigned (Unix seconds; 0 before the first).
    pub cosigned_at: u64,
}

/// A witness's whole state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The witness's name.
    pub name: String,
    /// Per origin line.
    pub logs: BTreeMap<String, LogState>,
}

/// A checkpoint the witness accepted and cosigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The log's origin.
    pub origin: String,
    /// The size cosigned before (0 for the first).
    pub previous_size: u64,
    /// The size cosigned now.
    pub tree_size: u64,
    /// The root cosigned now.
    pub root_hash: Hash,
    /// The cosignature.
    pub cosignature: Cosignature,
    /// The log's note with the cosignature added.
    pub note: String,
}

/// A witness working from its directory.
pub struct Witness {
    dir: PathBuf,
    key: WitnessKey,
    state: WitnessState,
}

impl Witness {
    /// Creates a witness directory: a fresh key (mode 0600), its verifier key and an empty state.
    pub fn init(dir: &Path, name: &str) -> Result<Witness, WitnessError> {
        let key = WitnessKey::generate(name)?;
        Witness::init_with(dir, key)
    }

    /// [`Witness::init`] with a given key (tests).
    pub fn init_with(dir: &Path, key: WitnessKey) -> Result<Witness, WitnessError> {
        use std::io::Write as _;
        std::fs::create_dir_all(dir).map_err(|e| WitnessError::io(dir, e))?;
        let key_path = dir.join(KEY_FILE);
        if key_path.exists() || dir.join(STATE_FILE).exists() {
            return Err(WitnessError::State(format!(
                "{} already holds a witness; use another directory (a witness key is made once)",
                dir.display()
            )));
        }
        let mut f = consentry_files::create_secret(&key_path).map_err(|e| WitnessError::io(&key_path, e))?;
        f.write_all(key.encode_secret().as_bytes()).map_err(|e| WitnessError::io(&key_path, e))?;
        f.sync_all().map_err(|e| WitnessError::io(&key_path, e))?;
        let vkey_path = dir.join(VKEY_FILE);
        write_atomic(&vkey_path, format!("{}\n", key.verifier_key()?.encode()).as_bytes(), false)?;
        let state = WitnessState { version: STATE_VERSION, name: key.name.clone(), logs: BTreeMap::new() };
        let w = Witness { dir: dir.to_path_buf(), key, state };
        w.save()?;
        Ok(w)
    }

    /// Opens a witness directory made by [`Witness::init`].
    pub fn open(dir: &Path) -> Result<Witness, WitnessError> {
        let key = WitnessKey::load(&dir.join(KEY_FILE))?;
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            WitnessError::State(format!(
                "cannot read {}: {e}; is {} a witness directory?",
                path.display(),
                dir.display()
            ))
        })?;
        let state: WitnessState = serde_json::from_str(&text)
            .map_err(|e| WitnessError::State(format!("{} is not a witness state file: {e}", path.display())))?;
        if state.version != STATE_VERSION {
            return Err(WitnessError::State(format!(
                "{} has version {}, this consentry reads {STATE_VERSION}",
                path.display(),
                state.version
            )));
        }
        if state.name != key.name {
            return Err(WitnessError::State(format!(
                "{} belongs to witness `{}` but the key is `{}`",
                path.display(),
                state.name,
                key.name
            )));
        }
        Ok(Witness { dir: dir.to_path_buf(), key, state })
    }

    /// The witness's key.
    pub fn key(&self) -> &WitnessKey {
        &self.key
    }

    /// What the witness knows.
    pub fn state(&self) -> &WitnessState {
        &self.state
    }

    /// Starts watching a log: its origin line and public key (obtained out of band); the first checkpoint
    /// offered after this is trusted on first use. Re-adding the same key is a no-op; another key is refused.
    pub fn add_log(&mut self, origin: &str, key: &PublicKey) -> Result<(), WitnessError> {
        check_name(origin)?;
        if let Some(existing) = self.state.logs.get(origin) {
            if existing.public_key == key.to_hex() {
                return Ok(());
            }
            return Err(WitnessError::State(format!(
                "this witness already watches `{origin}` with another public key; a witness never swaps a log's key \
                 silently (make a new witness directory if the log really changed keys)"
            )));
        }
        self.state.logs.insert(
            origin.to_string(),
            LogState {
                public_key: key.to_hex(),
                key_handovers: Vec::new(),
                tree_size: 0,
                root_hash: hex::encode(empty_root()),
                checkpoint: String::new(),
                cosigned_at: 0,
            },
        );
        self.save()
    }

    /// The stored head of `origin`: its size and root.
    pub fn head(&self, origin: &str) -> Option<(u64, Hash)> {
        let log = self.state.logs.get(origin)?;
        let root: Hash = hex::decode(&log.root_hash).ok()?.try_into().ok()?;
        Some((log.tree_size, root))
    }

    /// The one door: checks a signed checkpoint note and a consistency proof from the stored head, then
    /// cosigns it at `now` and stores it as the new head (atomically, before the cosignature is returned).
    ///
    /// `handovers` is the log's chain of key hand-overs from its genesis key (empty for a log that never rotated;
    /// it may repeat the ones already kept). They must extend the chain this witness trusts, each signed by the
    /// retiring and the new key; the note must then be signed by the key whose term covers its tree size.
    ///
    /// Refuses (and changes nothing) when the note is malformed, names a log not watched, carries a hand-over
    /// that does not verify, is not signed by the key in force at its size (an unknown key, or a retired key
    /// past its hand-over), is smaller than the stored head (rollback), has its size but another root (fork),
    /// or the proof does not lead from the stored head to it.
    pub fn accept(
        &mut self,
        note: &str,
        proof: &[Hash],
        handovers: &[KeyHandover],
        now: u64,
    ) -> Result<Accepted, WitnessError> {
        let parsed = Note::parse(note)?;
        let cp = Checkpoint::parse(parsed.text())?;
        let origin = cp.origin.clone();
        let log = self.state.logs.get(&origin).ok_or_else(|| WitnessError::UnknownLog { origin: origin.clone() })?;
        let corrupt = |what: &str| WitnessError::State(format!("the stored {what} of `{origin}` is corrupt"));
        let genesis = PublicKey::from_hex(&log.public_key).map_err(|_| corrupt("public key"))?;
        let known = KeyChain::from_handovers(genesis, log.key_handovers.iter().cloned())
            .map_err(|_| corrupt("key hand-overs"))?;
        // The offered hand-overs must repeat the kept ones and may add more (fewer is a log that hides a rotation
        // or has not caught up: the note's signature then decides).
        let chain =
            known.extended(handovers).map_err(|source| WitnessError::BadHandover { origin: origin.clone(), source })?;
        check_note_signer(&parsed, &origin, &chain, cp.tree_size)?;
        let stored = log.tree_size;
        let stored_root: Hash =
            hex::decode(&log.root_hash).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| corrupt("root hash"))?;
        if cp.tree_size < stored {
            return Err(WitnessError::Rollback { origin, stored, offered: cp.tree_size });
        }
        if cp.tree_size == stored && cp.root_hash != stored_root && stored > 0 {
            return Err(WitnessError::Fork { origin, tree_size: stored, stored_root, offered_root: cp.root_hash });
        }
        if !verify_consistency(stored, cp.tree_size, &stored_root, &cp.root_hash, proof) {
            return Err(WitnessError::BadProof {
                origin,
                stored,
                stored_root,
                offered: cp.tree_size,
                offered_root: cp.root_hash,
            });
        }
        // Never sign a time before the last cosignature of this log: a cosignature says "the latest as of t".
        let timestamp = now.max(log.cosigned_at).min(i64::MAX as u64);
        let cosignature = self.key.cosign(parsed.text(), timestamp);
        let mut cosigned = parsed.clone();
        cosigned.add_signature(cosignature.to_signature());
        let accepted = Accepted {
            origin: origin.clone(),
            previous_size: stored,
            tree_size: cp.tree_size,
            root_hash: cp.root_hash,
            cosignature,
            note: cosigned.encode(),
        };
        let mut next = self.state.clone();
        if let Some(l) = next.logs.get_mut(&origin) {
            l.key_handovers = chain.handovers().to_vec();
            l.tree_size = cp.tree_size;
            l.root_hash = hex::encode(cp.root_hash);
            l.checkpoint = accepted.note.clone();
            l.cosigned_at = timestamp;
        }
        write_state(&self.dir, &next)?;
        self.state = next;
        Ok(accepted)
    }

    fn save(&self) -> Result<(), WitnessError> {
        write_state(&self.dir, &self.state)
    }
}

/// Requires a valid signature on `note` by a key of `chain` whose term covers `tree_size` (a hand-over at size
/// T lets both the retiring and the new key sign T). Names the keys the note is signed by when none qualifies.
fn check_note_signer(note: &Note, origin: &str, chain: &KeyChain, tree_size: u64) -> Result<(), WitnessError> {
    let mut retired = None;
    for k in chain.keys() {
        let vkey = log_verifier_key(origin, &k.key)?;
        if note.signatures_by(&vkey).next().is_none() {
            continue;
        }
        let in_term = tree_size >= k.from_size && k.until_size.is_none_or(|u| tree_size <= u);
        if !in_term {
            retired = Some((k.key_id, k.until_size.unwrap_or(k.from_size)));
            continue;
        }
        if note.verify_ed25519(&vkey) {
            return Ok(());
        }
        return Err(WitnessError::BadSignature { origin: origin.to_string(), reason: "its signature fails".into() });
    }
    let reason = match retired {
        Some((id, until)) => format!(
            "it is signed by key {}…, retired at tree size {until}, for a tree of {tree_size} entries",
            hex::encode(&id[..8])
        ),
        None => format!("no signature by a key this witness trusts for `{origin}` ({}) on it", chain.describe()),
    };
    Err(WitnessError::BadSignature { origin: origin.to_string(), reason })
}

fn write_state(dir: &Path, state: &WitnessState) -> Result<(), WitnessError> {
    let json = serde_json::to_vec_pretty(state).map_err(|e| WitnessError::State(format!("cannot encode: {e}")))?;
    write_atomic(&dir.join(STATE_FILE), &json, false)
}

fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), WitnessError> {
    let opts = if secret { consentry_files::OutputOptions::SECRET } else { consentry_files::OutputOptions::PUBLIC };
    consentry_files::write(path, bytes, opts.no_follow())
        .map(|_| ())
        .map_err(|e| WitnessError::State(format!("cannot write {}: {e}", path.display())))
}

// ---------------------------------------------------------------------------------------------------------
// The log side.

/// The cosignatures a receipt carries for its tree head: the checkpoint's origin line and one signature line per
/// witness (without the final newline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Witnessed {
    /// The checkpoint's origin line.
    pub origin: String,
    /// `cosignature/v1` signature lines, `— name base64`.
    pub cosignatures: Vec<String>,
}

impl Ledger {
    /// The log's origin line: the operator's choice, else [`default_origin`] of the log id its signed heads name
    /// (the log's identity, which a key rotation keeps), or of the current key's for a log with no head yet.
    pub fn origin(&self) -> Result<String, LedgerError> {
        if let Some(o) = self.store().get_meta(ORIGIN_META)? {
            return Ok(o);
        }
        let log_id = match self.latest_checkpoint()? {
            Some(sth) => sth.log_id,
            None => self.public_key().log_id(),
        };
        Ok(default_origin(&log_id))
    }

    /// Names the log's origin line (a schema-less URL such as `example.com/consent`); refused once a witness
    /// cosigned under the old one (the witnesses would see a new, unknown log).
    pub fn set_origin(&self, origin: &str) -> Result<(), LedgerError> {
        check_name(origin).map_err(|e| LedgerError::Invalid(format!("origin: {e}")))?;
        if !self.cosigned_sizes()?.is_empty() && self.origin()? != origin {
            return Err(LedgerError::Invalid(
                "witnesses already cosigned checkpoints under the current origin; it can no longer change".into(),
            ));
        }
        self.store().set_meta(ORIGIN_META, origin)
    }

    /// The log's verifier key (`origin+keyid+base64`) for the key that signs its notes now (the genesis key until
    /// a rotation): what a note verifier is configured with. A witness is configured with the genesis key and
    /// follows rotations through hand-overs.
    pub fn verifier_key(&self) -> Result<VerifierKey, LedgerError> {
        let current = self.key_chain()?.current().key;
        log_verifier_key(&self.origin()?, &current).map_err(|e| LedgerError::Key(e.to_string()))
    }

    /// A stored checkpoint as a C2SP signed note (tlog-checkpoint body signed by the log's current key), with the
    /// cosignatures stored for it. A checkpoint from before the current key took over is refused: its note would
    /// carry a signature no verifier may accept (witnesses cosign the newest checkpoint).
    pub fn checkpoint_note(&self, sth: &SignedTreeHead) -> Result<String, LedgerError> {
        let chain = self.signing_chain()?;
        if sth.head.tree_size < chain.current().from_size {
            return Err(LedgerError::Invalid(format!(
                "the checkpoint of {} entries predates the key in force (it signs from tree size {}): cosign a newer \
                 checkpoint",
                sth.head.tree_size,
                chain.current().from_size
            )));
        }
        let cp = checkpoint_of(&self.origin()?, sth);
        let mut note = sign_checkpoint(self.key()?, &cp).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        for c in self.cosignatures(sth.head.tree_size)? {
            note.add_signature(c.to_signature());
        }
        Ok(note.encode())
    }

    /// Stores a witness's cosignature of the checkpoint of `tree_size` after checking it with the witness's
    /// verifier key; a second cosignature by the same witness replaces the first. Returns the witnesses' names
    /// that now cosigned it.
    pub fn add_cosignature(
        &self,
        tree_size: u64,
        witness: &VerifierKey,
        line: &str,
    ) -> Result<Vec<String>, LedgerError> {
        let cosig = Cosignature::parse_line(line).map_err(|e| LedgerError::Invalid(format!("cosignature: {e}")))?;
        let sth = self
            .store()
            .checkpoints()?
            .into_iter()
            .find(|c| c.head.tree_size == tree_size)
            .ok_or_else(|| LedgerError::NotFound(format!("no checkpoint of {tree_size} entries to cosign")))?;
        let body = checkpoint_of(&self.origin()?, &sth).body();
        if !cosig.verify(witness, &body) {
            return Err(LedgerError::Invalid(format!(
                "the cosignature is not a valid cosignature by {} of the checkpoint of {tree_size} entries",
                witness.encode()
            )));
        }
        // Each list is read and rewritten as one step: witnesses cosigning at once each keep their cosignature.
        let mut names = Vec::new();
        self.store().update_meta(&cosignatures_meta(tree_size), &mut |current| {
            let mut all = parse_cosignatures(current.as_deref().unwrap_or(""), tree_size)?;
            all.retain(|c| !(c.name == cosig.name && c.key_id == cosig.key_id));
            all.push(cosig.clone());
            names = all.iter().map(|c| c.name.clone()).collect();
            Ok(all.iter().map(Cosignature::line).collect())
        })?;
        self.store().update_meta(COSIGNED_SIZES_META, &mut |current| {
            let mut sizes = parse_sizes(current.as_deref().unwrap_or(""))?;
            if let Err(i) = sizes.binary_search(&tree_size) {
                sizes.insert(i, tree_size);
            }
            Ok(sizes.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
        })?;
        Ok(names)
    }

    /// The cosignatures stored for the checkpoint of `tree_size` (checked when stored; verifiers check again).
    pub fn cosignatures(&self, tree_size: u64) -> Result<Vec<Cosignature>, LedgerError> {
        let text = self.store().get_meta(&cosignatures_meta(tree_size))?;
        parse_cosignatures(text.as_deref().unwrap_or(""), tree_size)
    }

    /// The tree sizes whose checkpoints have cosignatures, ascending.
    pub fn cosigned_sizes(&self) -> Result<Vec<u64>, LedgerError> {
        parse_sizes(self.store().get_meta(COSIGNED_SIZES_META)?.as_deref().unwrap_or(""))
    }

    /// What a receipt against `sth` carries: the origin and the cosignatures stored for it (`None` when none).
    pub fn witnessed(&self, sth: &SignedTreeHead) -> Result<Option<Witnessed>, LedgerError> {
        let cosigs = self.cosignatures(sth.head.tree_size)?;
        if cosigs.is_empty() {
            return Ok(None);
        }
        let cosignatures = cosigs.iter().map(|c| c.line().trim_end_matches('\n').to_string()).collect();
        Ok(Some(Witnessed { origin: self.origin()?, cosignatures }))
    }

    /// The oldest cosigned checkpoint covering `seq`, if any: receipts prefer it so they carry cosignatures.
    pub fn cosigned_checkpoint_covering(&self, seq: u64) -> Result<Option<SignedTreeHead>, LedgerError> {
        let Some(size) = self.cosigned_sizes()?.into_iter().find(|s| *s >= seq) else { return Ok(None) };
        Ok(self.store().checkpoints()?.into_iter().find(|c| c.head.tree_size == size))
    }
}

// ---------------------------------------------------------------------------------------------------------
// The verifier side.

/// What a verifier requires of a tree head: cosignatures by at least `required` of the witnesses `keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessPolicy {
    /// The witnesses trusted (type 0x04 verifier keys).
    pub keys: Vec<VerifierKey>,
    /// How many of them must have cosigned (0: no requirement, today's behaviour).
    pub required: usize,
}

/// Who cosigned a tree head, of the witnesses a verifier trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WitnessTally {
    /// Trusted witnesses with a valid cosignature.
    pub cosigned: Vec<String>,
    /// Trusted witnesses with no cosignature.
    pub missing: Vec<String>,
    /// Trusted witnesses whose cosignature does not verify (altered, or of another checkpoint).
    pub invalid: Vec<String>,
    /// Names on cosignatures by no trusted witness (ignored).
    pub unknown: Vec<String>,
}

impl WitnessPolicy {
    /// Reads verifier keys (one `name+keyid+base64` per non-empty line) from text; type 0x04 is required.
    pub fn parse_keys(text: &str) -> Result<Vec<VerifierKey>, NoteError> {
        let mut out = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let k = VerifierKey::parse(line)?;
            if k.key_type() != TYPE_COSIGNATURE {
                return Err(NoteError::BadKey(format!(
                    "{} is not a witness key (type 0x04 cosignature/v1); a log's note key cannot cosign",
                    k.name()
                )));
            }
            out.push(k);
        }
        Ok(out)
    }

    /// Tallies cosignature lines over a checkpoint body.
    pub fn tally(&self, body: &str, lines: &[String]) -> WitnessTally {
        let parsed: Vec<Option<Cosignature>> = lines.iter().map(|l| Cosignature::parse_line(l).ok()).collect();
        let mut t = WitnessTally::default();
        for k in &self.keys {
            let mine: Vec<&Cosignature> =
                parsed.iter().flatten().filter(|c| c.name == k.name() && c.key_id == k.key_id()).collect();
            if mine.iter().any(|c| c.verify(k, body)) {
                t.cosigned.push(k.name().to_string());
            } else if mine.is_empty() {
                t.missing.push(k.name().to_string());
            } else {
                t.invalid.push(k.name().to_string());
            }
        }
        for (line, c) in lines.iter().zip(&parsed) {
            let trusted =
                c.as_ref().is_some_and(|c| self.keys.iter().any(|k| c.name == k.name() && c.key_id == k.key_id()));
            if !trusted {
                let name = c.as_ref().map_or_else(
                    || format!("(unreadable: {})", line.chars().take(40).collect::<String>()),
                    |c| c.name.clone(),
                );
                t.unknown.push(name);
            }
        }
        t
    }

    /// Checks a signed tree head's cosignatures: `Ok(tally)` when at least `required` trusted witnesses cosigned.
    pub fn check(&self, sth: &SignedTreeHead, witnessed: Option<&Witnessed>) -> Result<WitnessTally, WitnessShortfall> {
        let tally = match witnessed {
            Some(w) => self.tally(&checkpoint_of(&w.origin, sth).body(), &w.cosignatures),
            None => {
                WitnessTally { missing: self.keys.iter().map(|k| k.name().to_string()).collect(), ..Default::default() }
            }
        };
        if tally.cosigned.len() >= self.required {
            Ok(tally)
        } else {
            Err(WitnessShortfall { required: self.required, tree_size: sth.head.tree_size, tally })
        }
    }
}

/// Too few trusted witnesses cosigned a tree head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error(
    "the tree head of {tree_size} entries has {} valid cosignature(s) by the witnesses you trust but {required} \
     are required (cosigned: {}; not cosigned: {}; cosignature failing: {}; ignored, by unknown witnesses: {}): ask \
     the operator for a receipt against a witnessed checkpoint (after `consentry witness cosign`), or pass the \
     right --witness-key files",
    tally.cosigned.len(), names(&tally.cosigned), names(&tally.missing), names(&tally.invalid), names(&tally.unknown)
)]
pub struct WitnessShortfall {
    /// How many were required.
    pub required: usize,
    /// The tree head's size.
    pub tree_size: u64,
    /// Who did and did not cosign.
    pub tally: WitnessTally,
}

fn names(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

#[cfg(test)]
mod tests;
