//! The audit a skeptic can run offline (promise 8 of DESIGN.md).
//!
//! - [`bundle`] exports an **evidence bundle** from a data directory and its
//!   ledger store (signed tree heads, every event, the member facts, the
//!   policy, the public key, dataset manifests and member bitmaps, model
//!   metadata and shard member bitmaps, the live-model list and the deadline
//!   in force, an index with the BLAKE3 of every file), and reads one back.
//!   The format is documented in `FORMAT.md` beside this crate's sources.
//! - [`check`] runs every check on a loaded bundle — the same code online and
//!   offline: the ledger (chain, tree, signatures, consistency of every signed
//!   head with every earlier one), consent of every dataset member at the
//!   dataset's ledger position *recomputed from the events and the policy*,
//!   shard bitmaps inside the dataset minus the excluded members, withdrawals
//!   older than the deadline still in a live model, bitmap commitments and
//!   DP records. [`audit_online`] exports to a temporary directory, checks
//!   the bundle, then adds what only the live files can show (dataset files
//!   against their manifests, shard weight files against `model.json`).
//! - [`models`] is the source of the model list ([`ModelSource`]): the CLI
//!   passes the lineage registry's models, or a model directory scan
//!   ([`DirectoryModels`]) for models that were never registered.
//! - [`report`] is the result: findings with a kind, the model, dataset,
//!   member and sequence number involved, and expected-versus-found evidence.

#![warn(missing_docs)]

pub mod bundle;
pub mod check;
mod logfile;
pub mod models;
pub mod report;

pub use bundle::{Bundle, ExportInput, ExportSummary, check_export_target, export};
pub use check::{AuditOptions, audit_bundle, audit_online, check_bundle};
pub use logfile::BundleStore;
pub use models::{DirectoryModels, ModelEntry, ModelSource, ModelStatus, RegistryModels};
pub use report::{Finding, Report, Severity, ViolationKind};

use std::path::{Path, PathBuf};

/// What can stop an audit from running at all (a violation is a [`Finding`], not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The directory is not an evidence bundle (no readable index).
    #[error("{path} is not an evidence bundle: {message}")]
    NotABundle {
        /// The directory.
        path: PathBuf,
        /// What is missing or malformed.
        message: String,
    },
    /// The export target already exists; a bundle is never overwritten.
    #[error("{0} already exists; remove it or choose another --out")]
    OutputExists(PathBuf),
    /// A model asked for is not in the model list.
    #[error("no model `{id}`; known models: {known}")]
    UnknownModel {
        /// The id asked for.
        id: String,
        /// The ids there are.
        known: String,
    },
    /// The data directory's own files (policy, manifests, model.json) cannot be exported.
    #[error("{path}: {message}")]
    Source {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The lineage registry could not be read.
    #[error("lineage registry: {0}")]
    Lineage(Box<consentry_lineage::LineageError>),
    /// A symbolic link, or a path leaving its directory, inside a bundle or a data directory.
    #[error(transparent)]
    Link(consentry_gate::GateError),
    /// The ledger store failed while exporting.
    #[error("ledger: {0}")]
    Ledger(#[from] consentry_ledger::LedgerError),
    /// A JSON document could not be written.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<consentry_lineage::LineageError> for AuditError {
    fn from(e: consentry_lineage::LineageError) -> AuditError {
        AuditError::Lineage(Box::new(e))
    }
}

impl AuditError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> AuditError {
        AuditError::Io { path: path.to_path_buf(), source }
    }

    /// True when the caller's input is at fault (exit code 2 in the CLI).
    pub fn is_bad_input(&self) -> bool {
        match self {
            AuditError::NotABundle { .. }
            | AuditError::OutputExists(_)
            | AuditError::UnknownModel { .. }
            | AuditError::Source { .. }
            | AuditError::Link(_) => true,
            AuditError::Ledger(e) => e.is_bad_input(),
            AuditError::Lineage(e) => e.is_bad_input(),
            AuditError::Io { .. } | AuditError::Json(_) => false,
        }
    }
}

/// BLAKE3 of bytes, lowercase hex.
pub(crate) fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// True when `rel` is a plain relative path inside its directory (no `..`, no root, no drive), so a
/// file-controlled name from `model.json` can never make the audit read or write outside the bundle.
pub(crate) fn safe_relative(rel: &str) -> bool {
    let p = Path::new(rel);
    !rel.is_empty() && p.components().all(|c| matches!(c, std::path::Component::Normal(_))) && !rel.contains('\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_confined() {
        assert!(safe_relative("shard-000.members.roaring"));
        assert!(safe_relative("a/b.roaring"));
        for bad in ["", "../x", "/etc/passwd", "a/../../b", "./a", "a\\..\\b"] {
            assert!(!safe_relative(bad), "{bad}");
        }
    }
}
