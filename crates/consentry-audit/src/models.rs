//! Where the list of models (and which of them are live) comes from.
//!
//! The CLI audits the lineage registry's models, passed as a `Vec<ModelEntry>` (which implements
//! [`ModelSource`]). For a data directory whose models were never registered, every directory under
//! `DATA/models` with a `model.json` is a model ([`DirectoryModels`]): live, unless another one names its
//! `model.json` BLAKE3 as the version it was unlearned from (`unlearning.previous`), which makes it superseded.

use crate::AuditError;
use consentry_lineage::{CitedPosition, DatasetRecord, RegisteredFiles, Registry};
use std::path::{Path, PathBuf};

/// A model's lifecycle state: the registry's own type, so the two can never disagree.
pub use consentry_lineage::ModelStatus;

/// One model the audit must look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// Stable id (the directory name for [`DirectoryModels`]); also its directory name in the bundle.
    pub id: String,
    /// The model directory holding `model.json` and its shard files.
    pub dir: PathBuf,
    /// Lifecycle state.
    pub status: ModelStatus,
    /// What the lineage registry recorded for it (its id and shard hashes); `None` for a model read from a
    /// directory scan.
    pub registered: Option<RegisteredFiles>,
}

/// The source of the model list and the withdrawal deadline in force.
pub trait ModelSource {
    /// Every model to export and audit, by id.
    fn models(&self) -> Result<Vec<ModelEntry>, AuditError>;

    /// Seconds from a withdrawal being recorded to "no live model contains the member".
    fn deadline_seconds(&self) -> i64 {
        consentry_lineage::registry::DEFAULT_DEADLINE_SECS
    }

    /// Model directories in the data directory that the registry does not know (each a violation), relative to
    /// the data directory where possible.
    fn unregistered(&self) -> Result<Vec<String>, AuditError> {
        Ok(Vec::new())
    }

    /// The ledger positions the registry cites (cursors, datasets, requests, model events); the audit checks
    /// that none lies beyond the log's end. Read before the log is exported, so the log can only be longer.
    fn cited_positions(&self) -> Result<Vec<CitedPosition>, AuditError> {
        Ok(Vec::new())
    }

    /// The registered datasets with their signed fields and signatures; the audit checks each signature.
    fn registered_datasets(&self) -> Result<Vec<DatasetRecord>, AuditError> {
        Ok(Vec::new())
    }
}

/// The lineage registry's models, what it cites and the model directories it does not know, as read once.
#[derive(Debug, Clone)]
pub struct RegistryModels {
    /// Every registered version (or, for a registry without models, every directory under `DATA/models`).
    pub entries: Vec<ModelEntry>,
    /// Model directories anywhere in the data directory the registry does not know.
    pub unregistered: Vec<String>,
    /// The positions the registry cites.
    pub cited: Vec<CitedPosition>,
    /// Every registered dataset, with its signature.
    pub datasets: Vec<DatasetRecord>,
}

impl RegistryModels {
    /// Reads the registry beside a data directory: every registered version with its id and shard hashes (named by
    /// directory where that is unique, else directory and short id), the positions it cites, and the model
    /// directories in the data directory it does not know. A registry without models falls back to a directory scan
    /// ([`DirectoryModels`]) so those models are still checked — each one reported as unregistered.
    pub fn load(reg: &Registry, data_dir: &Path, models_dir: &Path) -> Result<RegistryModels, AuditError> {
        let cited = reg.cited_positions()?;
        let datasets = reg.datasets()?;
        let root = models_dir;
        let unregistered = reg
            .unregistered_model_dirs(data_dir)?
            .iter()
            .map(|p| p.strip_prefix(data_dir).unwrap_or(p).display().to_string())
            .collect();
        let records = reg.models(None, None)?;
        if records.is_empty() {
            return Ok(RegistryModels { entries: DirectoryModels::new(root).models()?, unregistered, cited, datasets });
        }
        let name = |r: &consentry_lineage::ModelRecord| {
            Path::new(&r.dir).file_name().map_or_else(|| r.id.clone(), |n| n.to_string_lossy().into_owned())
        };
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for r in &records {
            *seen.entry(name(r)).or_default() += 1;
        }
        let mut entries = Vec::with_capacity(records.len());
        for r in &records {
            let n = name(r);
            entries.push(ModelEntry {
                id: if seen[&n] == 1 { n } else { format!("{n}-{}", consentry_lineage::registry::short(&r.id)) },
                dir: reg.resolve(&r.dir),
                status: r.status,
                registered: Some(reg.registered_files(&r.id)?),
            });
        }
        Ok(RegistryModels { entries, unregistered, cited, datasets })
    }
}

impl ModelSource for RegistryModels {
    fn models(&self) -> Result<Vec<ModelEntry>, AuditError> {
        Ok(self.entries.clone())
    }

    fn unregistered(&self) -> Result<Vec<String>, AuditError> {
        Ok(self.unregistered.clone())
    }

    fn cited_positions(&self) -> Result<Vec<CitedPosition>, AuditError> {
        Ok(self.cited.clone())
    }

    fn registered_datasets(&self) -> Result<Vec<DatasetRecord>, AuditError> {
        Ok(self.datasets.clone())
    }
}

/// A list already built (the lineage registry's models, as the CLI reads them).
impl ModelSource for Vec<ModelEntry> {
    fn models(&self) -> Result<Vec<ModelEntry>, AuditError> {
        Ok(self.clone())
    }
}

/// Every directory under a models directory that holds a `model.json`; live unless a later version names it.
#[derive(Debug, Clone)]
pub struct DirectoryModels {
    /// The models directory (`DATA/models`).
    pub root: PathBuf,
}

impl DirectoryModels {
    /// The models under `root`.
    pub fn new(root: &Path) -> DirectoryModels {
        DirectoryModels { root: root.to_path_buf() }
    }
}

impl ModelSource for DirectoryModels {
    fn models(&self) -> Result<Vec<ModelEntry>, AuditError> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut hashes = Vec::new();
        let mut previous = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(&self.root).map_err(|e| AuditError::io(&self.root, e))? {
            let e = e.map_err(|e| AuditError::io(&self.root, e))?;
            let dir = e.path();
            // Never through a link: a model directory is read only from inside the models directory.
            if e.file_type().map_err(|err| AuditError::io(&dir, err))?.is_symlink() {
                return Err(AuditError::Link(consentry_gate::GateError::Link { path: dir }));
            }
            let meta = dir.join(consentry_learn::model::MODEL_FILE);
            if !meta.is_file() {
                continue;
            }
            let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if !crate::safe_relative(&id) {
                continue;
            }
            let bytes = std::fs::read(&meta).map_err(|e| AuditError::io(&meta, e))?;
            // An unreadable model.json stays live: the audit reports it rather than skipping it.
            if let Ok(m) = serde_json::from_slice::<consentry_learn::model::ModelMeta>(&bytes)
                && let Some(u) = m.unlearning
            {
                previous.insert(u.previous);
            }
            hashes.push(crate::b3(&bytes));
            out.push(ModelEntry { id, dir, status: ModelStatus::Live, registered: None });
        }
        for (entry, hash) in out.iter_mut().zip(&hashes) {
            if previous.contains(hash) {
                entry.status = ModelStatus::Superseded;
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_named_as_previous_is_superseded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let v1 = serde_json::json!({
            "format": 1, "kind": "job-recs", "purpose": "p", "seed": 1, "hyper": null, "metrics": null,
            "dataset": {"path": "", "manifest_blake3": "", "members_commitment": "", "members": 0, "ledger_position": 0},
            "shard_function": {"algorithm": "a", "key": "", "shards": 1},
            "shards": [], "train_seconds": 0.0, "tool": "t", "created": 0
        });
        let v1_bytes = serde_json::to_vec(&v1).unwrap();
        let mut v2 = v1.clone();
        v2["unlearning"] = serde_json::json!({
            "excluded": 0, "file": "excluded.roaring", "commitment": "", "retrained_shards": [],
            "previous": crate::b3(&v1_bytes)
        });
        for (name, bytes) in [("job-recs", v1_bytes), ("job-recs.v2", serde_json::to_vec(&v2).unwrap())] {
            std::fs::create_dir_all(root.join(name)).unwrap();
            std::fs::write(root.join(name).join("model.json"), bytes).unwrap();
        }
        std::fs::create_dir_all(root.join("not-a-model")).unwrap();
        let list = DirectoryModels::new(root).models().unwrap();
        let got: Vec<(&str, ModelStatus)> = list.iter().map(|m| (m.id.as_str(), m.status)).collect();
        assert_eq!(got, vec![("job-recs", ModelStatus::Superseded), ("job-recs.v2", ModelStatus::Live)]);
    }
}
