//! The consent gate: materialises a training dataset for one purpose from
//! source tables, using a consent snapshot (promises 1, 2, 3 and 8).
//!
//! - [`sources`] reads the TOML declaration of the source tables: which
//!   columns identify members, which of them may be dropped, the data
//!   category of every other column and which columns are free text.
//!   Undeclared columns never pass.
//! - [`materialize`] streams the Parquet row groups through the rules on all
//!   cores — keep a row only if every party allows it (or null a droppable
//!   party), keep only the purpose's categories, redact free text — and writes
//!   Parquet into a temporary directory renamed into place when complete.
//! - [`distributed`] applies the same rules to record batches another engine (Spark) schedules: a spec shipped to
//!   the workers, a gate per partition, partials assembled into the manifest the single-machine gate writes.
//! - [`commit`] is the order-independent, mergeable row commitment (LtHash).
//! - [`manifest`] is the JSON record beside the data, and the shard function.
//! - [`own`] reads one member's own rows of a declared table (counted, a few shown, free text redacted as the
//!   gate redacts it), for the member's privacy centre.
//! - [`verify`] recomputes a dataset from the ledger snapshot and the sources
//!   and reports every difference.

pub mod commit;
pub mod distributed;
pub mod fsguard;
pub mod manifest;
pub mod materialize;
pub mod own;
pub mod sources;
pub mod verify;

pub use commit::LtHash;
pub use distributed::{GateSpec, PartWriter, Partial, PartitionGate};
pub use manifest::{Manifest, ShardFunction, shard_of};
pub use materialize::{GateOptions, GateRequest, Outcome, Progress, check_output, materialize, merge};
pub use sources::{Sources, TableDecl};
pub use verify::{Difference, verify_files, verify_recompute, verify_times};

use std::path::{Path, PathBuf};

/// What can go wrong in the gate; every variant names the file, table or column at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The source declaration is malformed or inconsistent.
    #[error("source declaration {file}: {message}")]
    Declaration {
        /// The declaration file.
        file: String,
        /// What is wrong and where.
        message: String,
    },
    /// A source file does not have a declared column.
    #[error(
        "{path}: table `{table}` has no column `{column}` (declared in the sources); regenerate the file or fix the declaration"
    )]
    MissingColumn {
        /// The source file.
        path: PathBuf,
        /// The table.
        table: String,
        /// The missing column.
        column: String,
    },
    /// A column has a type the declaration does not allow.
    #[error("{path}: column `{table}.{column}` is {found}, expected {expected}")]
    ColumnType {
        /// The source file.
        path: PathBuf,
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// What the file holds.
        found: String,
        /// What the gate needs.
        expected: String,
    },
    /// A Parquet file could not be read or written.
    #[error("{path}: {source}")]
    Parquet {
        /// The file at fault.
        path: PathBuf,
        /// The Parquet or Arrow error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The output directory already exists; the gate never overwrites a dataset.
    #[error("{0} already exists; remove it or choose another --out")]
    OutputExists(PathBuf),
    /// A symbolic link inside a dataset, bundle or model directory ([`fsguard`] never follows one).
    #[error(
        "{path} is a symbolic link; datasets, evidence bundles and model directories are read without following \
         links: replace it with the file or directory it points to"
    )]
    Link {
        /// The link.
        path: PathBuf,
    },
    /// The request does not fit the policy, snapshot or partials (unknown purpose, mismatched partials).
    #[error("{0}")]
    Invalid(String),
    /// A manifest could not be read or written.
    #[error("manifest {path}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A dataset's manifest could not be read (missing, unreadable): probably not a dataset directory.
    #[error("manifest {path}: cannot read: {source}; is {dir} a dataset written by `consentry gate`?")]
    ManifestRead {
        /// The manifest file.
        path: PathBuf,
        /// The directory given as a dataset.
        dir: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The redaction detector could not be built.
    #[error("redaction: {0}")]
    Redact(#[from] consentry_redact::RedactError),
    /// A worker thread stopped unexpectedly.
    #[error("a worker thread failed: {0}")]
    Worker(String),
}

impl GateError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> GateError {
        GateError::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn parquet(path: &Path, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> GateError {
        GateError::Parquet { path: path.to_path_buf(), source: e.into() }
    }

    /// True when the caller's input is at fault (exit code 2 in the CLI).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            GateError::Declaration { .. }
                | GateError::MissingColumn { .. }
                | GateError::ColumnType { .. }
                | GateError::Parquet { .. }
                | GateError::OutputExists(_)
                | GateError::Link { .. }
                | GateError::Invalid(_)
                | GateError::Manifest { .. }
                | GateError::ManifestRead { .. }
        )
    }
}

/// The tool version recorded in manifests.
pub const TOOL_VERSION: &str = concat!("consentry-gate ", env!("CARGO_PKG_VERSION"));

/// BLAKE3 of a file, hex, streamed.
pub fn hash_file(path: &Path) -> Result<(String, u64), GateError> {
    let mut f = std::fs::File::open(path).map_err(|e| GateError::io(path, e))?;
    let mut h = blake3::Hasher::new();
    h.update_reader(&mut f).map_err(|e| GateError::io(path, e))?;
    Ok((h.finalize().to_hex().to_string(), h.count()))
}
