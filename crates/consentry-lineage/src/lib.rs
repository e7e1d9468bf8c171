//! Lineage: the registry of datasets, models and unlearning, kept in the ledger's own store (the same SQLite
//! file or PostgreSQL database), the member → dataset → model → shard queries that answer "where did my data
//! go", and the worker that turns withdrawals into exact shard retrains.
//!
//! The registry records facts it can check: a dataset is registered from its directory (manifest plus the
//! member bitmap it commits to), a model from its directory (every shard file and member bitmap against the
//! hashes in `model.json`), and each model's dependence on consent events is read from the ledger, never
//! trusted from the files. Ids are content hashes: a dataset's id is the BLAKE3 of its `manifest.json`, a
//! model's the BLAKE3 of its `model.json`, so an altered directory no longer matches its id. Every registration
//! is signed by the ledger's key ([`signing`]), so a registry row rewritten to match other files, without the
//! key, is refused by serving, training and the audit.

mod db;
pub mod integrity;
pub mod registry;
pub mod signing;
pub mod worker;

pub use integrity::{CitedPosition, FileMismatch, LiveSince, RegisteredFiles, RegisteredShard, Servable};
pub use registry::{
    DatasetRecord, MemberDataset, MemberLineage, MemberModel, MemberPrivacy, ModelLineage, ModelRecord, ModelStatus,
    Registry, RequestStatus, RunRecord, ShardRecord, UnlearningRequest,
};
pub use worker::{DeadlineFigures, Retrain, WorkerOptions, WorkerReport, queue, run_once, watch};

/// The schema version of the registry tables this code reads and writes (recorded in the store's
/// `consentry_schema` table beside the ledger's, see `consentry_ledger::schema`).
pub const SCHEMA_VERSION: u32 = db::REGISTRY.version();

/// The registry's clock is the ledger's (Unix seconds; tests pass explicit times where it matters).
pub use consentry_ledger::now;

use std::path::{Path, PathBuf};

/// What went wrong in the registry or the unlearning worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineageError {
    /// The input is malformed (an id that is not hex, an ambiguous prefix, a bad connection string).
    #[error("{0}")]
    Invalid(String),
    /// No such dataset or model in the registry.
    #[error("no {what} `{id}` in the registry; {hint}")]
    NotFound {
        /// `dataset` or `model`.
        what: &'static str,
        /// The id asked for.
        id: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The member is neither in the ledger's member directory nor in any registered dataset.
    #[error("member {0} is unknown: not in the ledger's member directory and in no registered dataset")]
    UnknownMember(u64),
    /// The dataset directory does not match its manifest (or has none).
    #[error("dataset {dir}: {message}")]
    Dataset {
        /// The directory at fault.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A model directory is missing, incomplete or altered since it was written or registered.
    #[error("model {dir}: {message}")]
    ModelFiles {
        /// The directory at fault.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A registry record's signature by the ledger's key is missing or does not verify: the row was altered, or
    /// made without the signing key.
    #[error(
        "{what} {id}: {message}; the registry row was altered or made without the ledger's signing key \
         (DATA/ledger.key), so the registry does not vouch for it; restore the registry or gate/train again"
    )]
    Signature {
        /// `dataset` or `model`.
        what: &'static str,
        /// The record's id (or its directory when no record could be read).
        id: String,
        /// What is wrong with the signature.
        message: String,
    },
    /// Registering needs the ledger's signing key and the registry was opened without it.
    #[error(
        "registering {what} needs the ledger's signing key (DATA/ledger.key): every registry record is signed; \
         run this where the ledger's key is"
    )]
    NoSigningKey {
        /// What was being registered.
        what: String,
    },
    /// Verifying a registry record needs the ledger's public key and the registry was opened without it.
    #[error("checking {what} needs the ledger's public key (DATA/ledger.pub or DATA/ledger.key)")]
    NoPublicKey {
        /// What was being checked.
        what: String,
    },
    /// The unlearning cursor points past the end of the ledger (the ledger was replaced or truncated).
    #[error(
        "the unlearning cursor `{name}` is at event {cursor}, but the ledger has only {ledger} events: the ledger was \
         replaced or truncated; check `ledger verify` before resetting the cursor"
    )]
    CursorAhead {
        /// Cursor name.
        name: String,
        /// Where the cursor is.
        cursor: u64,
        /// Events in the ledger.
        ledger: u64,
    },
    /// Something in the store cites a ledger position beyond the log's end: the log was rolled back or replaced.
    #[error(
        "{what} cites ledger position {position}, but the ledger has only {ledger} events: the log was rolled back \
         or replaced under the registry (an integrity violation); restore the ledger before unlearning"
    )]
    BeyondLog {
        /// What cites it.
        what: String,
        /// The position it cites.
        position: u64,
        /// Events in the ledger.
        ledger: u64,
    },
    /// A model that must not be served: not live, altered since registration, or unknown to the registry.
    #[error("model {dir} is not served: {message}")]
    NotServed {
        /// The model directory.
        dir: PathBuf,
        /// Why, and what to do.
        message: String,
    },
    /// A status change that the lifecycle does not allow (e.g. reviving a retired model).
    #[error("model {id} is {from}; it cannot become {to}")]
    Transition {
        /// The model.
        id: String,
        /// Its current status.
        from: ModelStatus,
        /// The status asked for.
        to: ModelStatus,
    },
    /// Another process changed the registry under us (the work is safe to retry).
    #[error("concurrent change: {0}")]
    Conflict(String),
    /// The store holds something this version cannot read.
    #[error("corrupt registry: {0}")]
    Corrupt(String),
    /// A lock was poisoned by a panic in another thread.
    #[error("the registry connection lock was poisoned")]
    Poisoned,
    /// SQLite failed.
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[cfg(feature = "postgres")]
    #[error("postgres: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] consentry_ledger::LedgerError),
    /// Training (unlearning) failed.
    #[error(transparent)]
    Learn(#[from] consentry_learn::LearnError),
    /// Reading a dataset failed.
    #[error(transparent)]
    Gate(#[from] consentry_gate::GateError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl LineageError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> LineageError {
        LineageError::Io { path: path.to_path_buf(), source }
    }

    /// True when the caller's input is at fault (exit code 2 in the CLI).
    pub fn is_bad_input(&self) -> bool {
        match self {
            LineageError::Invalid(_)
            | LineageError::NotFound { .. }
            | LineageError::UnknownMember(_)
            | LineageError::Dataset { .. }
            | LineageError::ModelFiles { .. }
            | LineageError::CursorAhead { .. }
            | LineageError::NotServed { .. }
            | LineageError::Transition { .. }
            | LineageError::NoSigningKey { .. }
            | LineageError::NoPublicKey { .. } => true,
            LineageError::Ledger(e) => e.is_bad_input(),
            LineageError::Learn(e) => e.is_bad_input(),
            _ => false,
        }
    }
}
