//! What binds the files on disk and the registry's own records to what was registered and to the log:
//!
//! - a registered model's directory must still hold the `model.json` whose BLAKE3 is its id, and every shard file
//!   and member bitmap the registry recorded ([`Registry::check_model_files`]); serving checks this before loading
//!   ([`Registry::servable`]), and refuses a model the registry does not know unless the caller opts in for an
//!   experiment outside the data directory;
//! - every model directory in the data directory is registered ([`Registry::unregistered_model_dirs`]);
//! - nothing in the store cites a ledger position beyond the log's end ([`Registry::positions_beyond`]): a
//!   rolled-back log would otherwise let the unlearning cursor skip the withdrawals that refill it.

use crate::db::P;
use crate::registry::{ModelRecord, ModelStatus, get_model, short};
use crate::{LineageError, Registry};
use consentry_learn::model::{MODEL_FILE, ModelMeta};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The hashes the registry recorded for one shard when its model was registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredShard {
    /// Shard index.
    pub index: u32,
    /// BLAKE3 of the shard's safetensors file.
    pub file_blake3: String,
    /// BLAKE3 of the shard's member bitmap.
    pub members_blake3: String,
}

/// What a registered model version's directory must still hold (`model.json` with BLAKE3 `id`, and these shards),
/// with the other fields its registration signed and the signature ([`crate::signing`]): everything an auditor
/// needs to check, with the ledger's public key only, that the registry's hashes are the ones registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredFiles {
    /// The model id: BLAKE3 of its `model.json`.
    pub id: String,
    /// Its kind (the model line's name: `job-recs`, `content`, `replies`).
    pub kind: String,
    /// The purpose of its dataset.
    pub purpose: String,
    /// The id of the dataset it was trained on (BLAKE3 of that dataset's `manifest.json`).
    pub dataset: String,
    /// Its version in its model line.
    pub version: u64,
    /// The version it replaced.
    pub supersedes: Option<String>,
    /// The shards, by index.
    pub shards: Vec<RegisteredShard>,
    /// The registration's signature by the ledger's key (hex), over [`crate::signing::model_bytes`].
    #[serde(default)]
    pub signature: Option<String>,
    /// When this version went live in place of `supersedes`, signed ([`crate::signing::live_since`]); `None` for
    /// a first version and for versions registered before the record existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_since: Option<LiveSince>,
}

/// The signed record of when a version went live in place of the one it replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSince {
    /// When the registry swapped it in (Unix seconds).
    pub at: i64,
    /// The ledger key's signature (hex) over [`crate::signing::live_bytes`].
    pub signature: String,
}

impl LiveSince {
    /// The record as a version's `cause_json` keeps it (`live_since`, `live_since_signature`), if it is there.
    pub(crate) fn from_cause(cause: &serde_json::Value) -> Option<LiveSince> {
        Some(LiveSince {
            at: cause.get("live_since")?.as_i64()?,
            signature: cause.get("live_since_signature")?.as_str()?.to_string(),
        })
    }
}

/// A file of a model directory that does not hold what the registry recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileMismatch {
    /// The file, relative to the model directory.
    pub file: String,
    /// The BLAKE3 the registry recorded.
    pub expected: String,
    /// What the directory holds (a BLAKE3, `absent`, or why it cannot be read).
    pub found: String,
}

impl fmt::Display for FileMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: registered BLAKE3 {}, found {}", self.file, self.expected, self.found)
    }
}

/// A position in the log that something in the store cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitedPosition {
    /// What cites it, for people (`unlearning cursor \`unlearning\``, `dataset 1a2b3c4d5e6f`, …).
    pub what: String,
    /// The position (a sequence number; events are numbered from 1, so a log of N events ends at N).
    pub position: u64,
}

/// What serving may load.
#[derive(Debug, Clone, PartialEq)]
pub enum Servable {
    /// A live registered version whose files match the registry.
    Registered(Box<ModelRecord>),
    /// A model the registry does not know, outside the data directory, served because the caller opted in.
    Unregistered,
}

/// How deep [`Registry::unregistered_model_dirs`] looks below the data directory (`models/NAME` is depth 2).
pub const MAX_SCAN_DEPTH: usize = 6;

/// The index file of an evidence bundle (`consentry-audit`'s `INDEX.json`): a bundle exported into the data
/// directory holds copies of `model.json` without weights, which are evidence, not models.
const BUNDLE_INDEX: &str = "INDEX.json";

/// `model.json`'s bytes in `dir` and their BLAKE3.
fn model_json(dir: &Path) -> Result<(Vec<u8>, String), std::io::Error> {
    let bytes = std::fs::read(consentry_gate::fsguard::inside(dir, MODEL_FILE).map_err(std::io::Error::other)?)?;
    let h = blake3::hash(&bytes).to_hex().to_string();
    Ok((bytes, h))
}

/// BLAKE3 of `dir/rel` without following links, or why it cannot be read.
fn hash_or_problem(dir: &Path, rel: &str) -> Result<String, String> {
    match consentry_gate::fsguard::hash_inside(dir, rel) {
        Ok((h, _)) => Ok(h),
        Err(consentry_gate::GateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Err("absent".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

impl Registry {
    /// The hashes the registry recorded for model `id` (full id), with the fields its registration signed and the
    /// signature (not checked here: see [`Registry::verify_model_signature`]).
    pub fn registered_files(&self, id: &str) -> Result<RegisteredFiles, LineageError> {
        self.conn().transaction(false, |db| {
            let rows = db.query(
                "SELECT kind, purpose, dataset_id, version, supersedes, signature, cause_json FROM registry_models \
                 WHERE id = $1",
                &[P::T(id)],
            )?;
            let m = rows.first().ok_or_else(|| LineageError::NotFound {
                what: "model",
                id: id.to_string(),
                hint: "register it with `consentry lineage register-model DIR`",
            })?;
            let (kind, purpose, dataset, version, supersedes, signature) =
                (m.text(0)?, m.text(1)?, m.text(2)?, m.u64(3)?, m.opt_text(4)?, m.opt_text(5)?);
            // An unparsable cause carries no going-live record (the audit then finds none, and says so).
            let live_since = m
                .opt_text(6)?
                .and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
                .and_then(|c| LiveSince::from_cause(&c));
            let rows = db.query(
                "SELECT idx, file_blake3, members_bitmap FROM registry_shards WHERE model_id = $1 ORDER BY idx",
                &[P::T(id)],
            )?;
            let shards = rows
                .iter()
                .map(|r| {
                    Ok(RegisteredShard {
                        index: r.u32(0)?,
                        file_blake3: r.text(1)?,
                        members_blake3: blake3::hash(&r.blob(2)?).to_hex().to_string(),
                    })
                })
                .collect::<Result<Vec<_>, LineageError>>()?;
            Ok(RegisteredFiles {
                id: id.to_string(),
                kind,
                purpose,
                dataset,
                version,
                supersedes,
                shards,
                signature,
                live_since,
            })
        })
    }

    /// Checks that model `id`'s registration is signed by the ledger's key over the fields and hashes the registry
    /// now holds ([`crate::signing`]), and returns them: an error naming the model when the row was altered or
    /// made without the key.
    pub fn verify_model_signature(&self, id: &str) -> Result<RegisteredFiles, LineageError> {
        let files = self.registered_files(id)?;
        let key = self.key_chain().ok_or_else(|| LineageError::NoPublicKey { what: format!("model {}", short(id)) })?;
        match crate::signing::model_problem(key, &files) {
            None => Ok(files),
            Some(message) => Err(LineageError::Signature { what: "model", id: id.to_string(), message }),
        }
    }

    /// Checks a registered model's directory against the registry: `model.json`'s BLAKE3 against the model's id,
    /// every shard file and member bitmap against the hashes recorded at registration. A version that is no longer
    /// live may lack its shard weights (unlearning deletes them); an altered file is a mismatch all the same.
    /// Returns every mismatch (none: the directory is the registered version).
    /// The registration's signature is checked first: a row that was altered or made without the signing key is an
    /// error ([`LineageError::Signature`]), not a list of mismatches against hashes nobody vouches for.
    pub fn check_model_files(&self, rec: &ModelRecord) -> Result<Vec<FileMismatch>, LineageError> {
        let files = self.verify_model_signature(&rec.id)?;
        Ok(compare_files(&self.resolve(&rec.dir), rec.status, &files))
    }

    /// Decides whether the model in `dir` may be served, before anything is loaded from it: a live registered
    /// version whose `model.json` and every shard file and member bitmap match the registry. A version no longer
    /// live is refused, naming its live successor; a directory whose `model.json` changed since registration is
    /// refused with both hashes; a model the registry does not know is refused unless `allow_unregistered` is set
    /// and it lies outside the data directory (an experiment no withdrawal will ever reach).
    pub fn servable(&self, dir: &Path, allow_unregistered: bool) -> Result<Servable, LineageError> {
        let refuse = |message: String| LineageError::NotServed { dir: dir.to_path_buf(), message };
        if let Some(rec) = self.verify_registered_dir(dir)? {
            // A live version that a registered version names as the one it replaced was revived behind the
            // registry's back (status is not signed; the successor's `supersedes` is).
            let replaced_by = self.conn().transaction(false, |db| crate::registry::successor(db, &rec.id))?;
            if let (ModelStatus::Live, Some(next)) = (rec.status, replaced_by) {
                return Err(refuse(format!(
                    "version {} ({}) is marked live, but the registered version {} names it as the version it \
                     replaced: its status was altered in the registry; it may hold data of members who withdrew",
                    rec.version,
                    short(&rec.id),
                    short(&next)
                )));
            }
            if rec.status != ModelStatus::Live {
                let instead = match self.live_successor(&rec.id)? {
                    Some(next) => format!("; use version {} in {}", next.version, self.resolve(&next.dir).display()),
                    None => String::new(),
                };
                return Err(refuse(format!(
                    "version {} ({}) is {}: it may hold data of members who withdrew{instead}",
                    rec.version,
                    short(&rec.id),
                    rec.status
                )));
            }
            return Ok(Servable::Registered(Box::new(rec)));
        }
        let canonical = dir.canonicalize().map_err(|e| refuse(format!("the directory cannot be opened: {e}")))?;
        let (_, id) = model_json(&canonical).map_err(|e| refuse(format!("{MODEL_FILE} cannot be read: {e}")))?;
        if self.inside_base(&canonical) {
            return Err(refuse(format!(
                "the lineage registry does not know this model (BLAKE3 of {MODEL_FILE} {id}), so no withdrawal would \
                 ever reach it; a model in the data directory is served only once registered: `consentry lineage \
                 register-model {}`",
                dir.display()
            )));
        }
        if !allow_unregistered {
            return Err(refuse(format!(
                "the lineage registry does not know this model (BLAKE3 of {MODEL_FILE} {id}), so no withdrawal would \
                 ever reach it; register it with `consentry lineage register-model {}`, or pass --unregistered to \
                 serve an experiment outside the data directory",
                dir.display()
            )));
        }
        Ok(Servable::Unregistered)
    }

    /// The registered version the model in `dir` is, after checking its files against the registry (its
    /// `model.json` BLAKE3 is a registered id, and every shard file and member bitmap is as registered; a version no
    /// longer live may lack its weights). `None` when the registry knows neither its `model.json` nor its
    /// directory; a directory registered with another `model.json` is an error naming both hashes.
    pub fn verify_registered_dir(&self, dir: &Path) -> Result<Option<ModelRecord>, LineageError> {
        let refuse = |message: String| LineageError::NotServed { dir: dir.to_path_buf(), message };
        let canonical = dir.canonicalize().map_err(|e| refuse(format!("the directory cannot be opened: {e}")))?;
        let (_, id) = model_json(&canonical).map_err(|e| refuse(format!("{MODEL_FILE} cannot be read: {e}")))?;
        if let Some(rec) = self.conn().transaction(false, |db| get_model(db, &id))? {
            let files = self.verify_model_signature(&rec.id).map_err(|e| refuse(e.to_string()))?;
            let bad = compare_files(&canonical, rec.status, &files);
            if !bad.is_empty() {
                let list: Vec<String> = bad.iter().map(|m| m.to_string()).collect();
                return Err(refuse(format!(
                    "its files were altered since it was registered as model {}: {}; restore the registered files \
                     or retrain",
                    short(&rec.id),
                    list.join("; ")
                )));
            }
            return Ok(Some(rec));
        }
        if let Some(rec) = self.registered_at(&canonical)? {
            return Err(refuse(format!(
                "{MODEL_FILE} differs from registered model version {} ({MODEL_FILE}: registered BLAKE3 {}, found \
                 {id}): the directory was altered since it was registered; restore it or retrain",
                rec.version, rec.id
            )));
        }
        Ok(None)
    }

    /// The registered version recorded at directory `canonical`, if any (the newest); `train` asks it before finishing
    /// what an interrupted run left.
    pub fn registered_at(&self, canonical: &Path) -> Result<Option<ModelRecord>, LineageError> {
        let models = self.models(None, None)?;
        Ok(models.into_iter().rev().find(|m| self.resolve(&m.dir).canonicalize().is_ok_and(|p| p == canonical)))
    }

    /// True when `canonical` lies inside the data directory the registry was opened for.
    fn inside_base(&self, canonical: &Path) -> bool {
        self.base().is_some_and(|b| canonical.starts_with(b))
    }

    /// Refuses `dir` as the output of a new training when it already holds a model, with what to do: a directory
    /// left by an interrupted `consentry train` (renamed into place, never registered) is named as such.
    pub fn check_train_target(&self, dir: &Path) -> Result<(), LineageError> {
        if std::fs::symlink_metadata(dir).is_err() {
            return Ok(());
        }
        let refuse = |message: String| LineageError::ModelFiles { dir: dir.to_path_buf(), message };
        let canonical = dir.canonicalize().map_err(|e| refuse(format!("cannot open the directory: {e}")))?;
        if let Some(rec) = self.registered_at(&canonical)? {
            return Err(refuse(format!(
                "already exists and holds registered model version {} ({}, {}); choose another --out",
                rec.version,
                short(&rec.id),
                rec.status
            )));
        }
        let d = dir.display();
        Err(refuse(if model_json(&canonical).is_ok() {
            format!(
                "already exists and holds a model the lineage registry does not know (left by an interrupted \
                 `consentry train`, or trained with --no-register); register it with `consentry lineage register-model {d}` if you want \
                 it, or remove {d} and train again"
            )
        } else {
            "already exists and is not a model; remove it or choose another --out".to_string()
        }))
    }

    /// Every model directory (holding a `model.json`) under `root` — the data directory — that the registry does
    /// not know, sorted. The walk never follows a link and skips hidden entries (temporary directories, locks); it
    /// does not descend into a model directory, an evidence bundle, or below [`MAX_SCAN_DEPTH`] levels.
    pub fn unregistered_model_dirs(&self, root: &Path) -> Result<Vec<PathBuf>, LineageError> {
        let registered: BTreeSet<PathBuf> =
            self.models(None, None)?.iter().filter_map(|m| self.resolve(&m.dir).canonicalize().ok()).collect();
        let mut out = Vec::new();
        let mut stack = vec![(root.to_path_buf(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries {
                let e = e.map_err(|err| LineageError::io(&dir, err))?;
                let hidden = e.file_name().to_string_lossy().starts_with('.');
                // `file_type` describes the entry itself: a link is never followed.
                if hidden || !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let p = e.path();
                if std::fs::symlink_metadata(p.join(MODEL_FILE)).is_ok() {
                    if !p.canonicalize().is_ok_and(|c| registered.contains(&c)) {
                        out.push(p);
                    }
                } else if depth + 1 < MAX_SCAN_DEPTH && std::fs::symlink_metadata(p.join(BUNDLE_INDEX)).is_err() {
                    stack.push((p, depth + 1));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every ledger position the registry cites: each cursor, each dataset's position, and the highest event
    /// sequence number among the unlearning requests and among the consent events models rest on.
    pub fn cited_positions(&self) -> Result<Vec<CitedPosition>, LineageError> {
        self.conn().transaction(false, |db| {
            let mut out = Vec::new();
            for r in db.query("SELECT name, seq FROM registry_cursors ORDER BY name", &[])? {
                out.push(CitedPosition { what: format!("unlearning cursor `{}`", r.text(0)?), position: r.u64(1)? });
            }
            for r in db.query("SELECT id, ledger_position FROM registry_datasets ORDER BY id", &[])? {
                out.push(CitedPosition {
                    what: format!("registered dataset {}", short(&r.text(0)?)),
                    position: r.u64(1)?,
                });
            }
            let top = db.query(
                "SELECT member, event_seq, old_model FROM registry_unlearning ORDER BY event_seq DESC LIMIT 1",
                &[],
            )?;
            if let Some(r) = top.first() {
                out.push(CitedPosition {
                    what: format!(
                        "the unlearning request of member {} against model {}",
                        r.u64(0)?,
                        short(&r.text(2)?)
                    ),
                    position: r.u64(1)?,
                });
            }
            let top =
                db.query("SELECT model_id, event_seq FROM registry_model_events ORDER BY event_seq DESC LIMIT 1", &[])?;
            if let Some(r) = top.first() {
                out.push(CitedPosition {
                    what: format!("a consent event model {} rests on", short(&r.text(0)?)),
                    position: r.u64(1)?,
                });
            }
            Ok(out)
        })
    }

    /// What the registry cites beyond the end of the ledger it sits beside, with the ledger's length: anything
    /// there means the log was rolled back (or replaced) under the registry, an integrity violation.
    pub fn positions_beyond(&self) -> Result<(u64, Vec<CitedPosition>), LineageError> {
        let cited = self.cited_positions()?;
        let len = self.store().len()?;
        Ok((len, cited.into_iter().filter(|c| c.position > len).collect()))
    }

    /// Refuses to go on when the registry cites a position beyond the ledger's end ([`Registry::positions_beyond`]),
    /// naming the first such record and the ledger's length.
    pub fn require_positions_within_log(&self) -> Result<(), LineageError> {
        let len = self.store().len()?;
        let cursors = self.conn().transaction(false, |db| {
            db.query("SELECT name, seq FROM registry_cursors ORDER BY name", &[])?
                .iter()
                .map(|r| Ok((r.text(0)?, r.u64(1)?)))
                .collect::<Result<Vec<_>, LineageError>>()
        })?;
        if let Some((name, cursor)) = cursors.into_iter().find(|(_, seq)| *seq > len) {
            return Err(LineageError::CursorAhead { name, cursor, ledger: len });
        }
        let beyond: Vec<CitedPosition> = self.cited_positions()?.into_iter().filter(|c| c.position > len).collect();
        match beyond.first() {
            None => Ok(()),
            Some(c) => Err(LineageError::BeyondLog { what: c.what.clone(), position: c.position, ledger: len }),
        }
    }

    /// Finishes what a worker killed after its swap left undone: deletes the shard weights of every superseded
    /// version still holding them (they hold the removed members' data), and removes the lock file beside every
    /// registered model directory whose holder is gone. Returns what it removed.
    pub fn finish_interrupted(&self) -> Result<Vec<String>, LineageError> {
        let mut removed = Vec::new();
        for m in self.models(None, None)? {
            let dir = self.resolve(&m.dir);
            // Superseded means a newer version replaced it (whatever became of that one since).
            if m.status == ModelStatus::Superseded {
                // Only files model.json names, only if model.json is still the registered one.
                if let Ok((bytes, id)) = model_json(&dir)
                    && id == m.id
                    && let Ok(meta) = serde_json::from_slice::<ModelMeta>(&bytes)
                {
                    for s in &meta.shards {
                        if let Ok(p) = consentry_gate::fsguard::inside(&dir, &s.file)
                            && std::fs::symlink_metadata(&p).is_ok()
                        {
                            std::fs::remove_file(&p).map_err(|e| LineageError::io(&p, e))?;
                            removed.push(p.display().to_string());
                        }
                    }
                }
            }
            if crate::worker::remove_stale_lock(&dir)? {
                removed.push(crate::worker::lock_path(&dir).display().to_string());
            }
        }
        Ok(removed)
    }
}

/// Compares a model directory with the registered hashes (see [`Registry::check_model_files`]).
fn compare_files(dir: &Path, status: ModelStatus, files: &RegisteredFiles) -> Vec<FileMismatch> {
    let mut out = Vec::new();
    let meta = match model_json(dir) {
        Ok((bytes, id)) => {
            if id != files.id {
                out.push(FileMismatch { file: MODEL_FILE.into(), expected: files.id.clone(), found: id });
                return out;
            }
            match serde_json::from_slice::<ModelMeta>(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    out.push(FileMismatch {
                        file: MODEL_FILE.into(),
                        expected: files.id.clone(),
                        found: e.to_string(),
                    });
                    return out;
                }
            }
        }
        Err(e) => {
            let found = if e.kind() == std::io::ErrorKind::NotFound { "absent".into() } else { e.to_string() };
            out.push(FileMismatch { file: MODEL_FILE.into(), expected: files.id.clone(), found });
            return out;
        }
    };
    if meta.shards.len() != files.shards.len() {
        out.push(FileMismatch {
            file: MODEL_FILE.into(),
            expected: format!("{} shards", files.shards.len()),
            found: format!("{} shards", meta.shards.len()),
        });
    }
    for r in &files.shards {
        let Some(s) = meta.shards.iter().find(|s| s.index == r.index) else { continue };
        match hash_or_problem(dir, &s.file) {
            Ok(h) if h == r.file_blake3 => {}
            Err(a) if a == "absent" && status != ModelStatus::Live => {}
            Ok(h) => out.push(FileMismatch { file: s.file.clone(), expected: r.file_blake3.clone(), found: h }),
            Err(p) => out.push(FileMismatch { file: s.file.clone(), expected: r.file_blake3.clone(), found: p }),
        }
        match hash_or_problem(dir, &s.members_file) {
            Ok(h) if h == r.members_blake3 => {}
            Ok(h) => {
                out.push(FileMismatch { file: s.members_file.clone(), expected: r.members_blake3.clone(), found: h })
            }
            Err(p) => {
                out.push(FileMismatch { file: s.members_file.clone(), expected: r.members_blake3.clone(), found: p })
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatches_name_file_and_both_hashes() {
        let m = FileMismatch { file: "shard-000.safetensors".into(), expected: "aa".into(), found: "bb".into() };
        assert_eq!(m.to_string(), "shard-000.safetensors: registered BLAKE3 aa, found bb");
    }
}
