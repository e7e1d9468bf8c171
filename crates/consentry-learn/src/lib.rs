//! The three AI features, trained per shard (SISA: Bourtoule et al., "Machine Unlearning", IEEE S&P 2021) and
//! deterministically, only on datasets the consent gate materialised.
//!
//! - [`recs`]: job recommendations and content suggestions (implicit ALS with profile and item tokens);
//! - [`items`]: any declared interactions table (member, item, optional weight and time) through the same recommender;
//! - replies (`consentry-replies`, glued in [`replies`]): a k-anonymous response inventory and an intent ranker;
//! - [`dp`]: differentially private training (joint DP for job recommendations, DP-SGD for replies) and the
//!   privacy claim a model records;
//! - [`model`]: the model directory format; [`data`]: reading a dataset after checking it against its manifest.
//!
//! Members are split into shards by the keyed hash the gate records in the manifest; a row belongs to the shard of
//! the member it is about, and a shard's file depends only on its rows, the hyper-parameters and the seed (and, for a
//! DP model, the secret noise key) — byte for byte, whatever the thread count or file order — so forgetting a member
//! retrains one shard, exactly.

pub mod data;
pub mod dp;
pub mod ials;
pub mod interval;
pub mod items;
pub mod mia;
pub mod model;
pub mod recs;
pub mod replies;
pub mod train;

use std::path::{Path, PathBuf};

pub use train::{TrainOptions, TrainReport, train};

/// What can go wrong while training or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LearnError {
    /// The dataset is not usable as given.
    #[error("dataset {dir}: {message}")]
    Dataset {
        /// Its directory.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The dataset's files are not what its manifest says (a file changed, added or removed, the member bitmap
    /// edited): kept apart from [`LearnError::Dataset`] so a front end can report it as failed evidence.
    #[error("dataset {dir}: {message}")]
    Altered {
        /// Its directory.
        dir: PathBuf,
        /// The differences (the first few) and what to do.
        message: String,
    },
    /// A dataset file could not be read as Parquet.
    #[error("dataset {dir}: {file}: {source}")]
    DatasetFile {
        /// The dataset's directory.
        dir: PathBuf,
        /// The file, relative to it.
        file: String,
        /// The Parquet or Arrow error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A column has the wrong type or nulls.
    #[error("column `{column}` {message}")]
    Column {
        /// Its name.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// The gate's manifest could not be read.
    #[error(transparent)]
    Gate(#[from] consentry_gate::GateError),
    /// A model directory is unusable.
    #[error("model {dir}: {message}")]
    Model {
        /// Its directory.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file of a model directory could not be read (missing, a link, an I/O error).
    #[error("model {dir}: {message}")]
    ModelFile {
        /// Its directory.
        dir: PathBuf,
        /// What could not be read, and what to do.
        message: String,
        /// The reader's error (boxed: it is large, and rare).
        source: Box<consentry_gate::GateError>,
    },
    /// A model file is damaged.
    #[error("{file}: {message}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Bad hyper-parameters.
    #[error("hyper-parameters: {0}")]
    Hyper(String),
    /// Training produced non-finite values.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// Nothing to train on.
    #[error("nothing to train on: {0}")]
    Empty(String),
    /// The member is not in the model's training set.
    #[error(
        "member {0} is not in this model's training set (no consent for the purpose, or no data when it was trained)"
    )]
    UnknownMember(u64),
    /// The output exists already.
    #[error("{0} already exists; remove it or choose another --out")]
    Exists(PathBuf),
    /// File-system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The reply model refused its input.
    #[error(transparent)]
    Replies(#[from] consentry_replies::ReplyError),
    /// A bug: please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl LearnError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> LearnError {
        LearnError::Io { path: path.to_path_buf(), source }
    }

    /// Whether the caller gave something unusable (exit code 2) rather than a failure (1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, LearnError::Io { .. } | LearnError::Internal(_) | LearnError::Diverged(_))
    }
}

/// The tool string recorded in model files.
pub const TOOL_VERSION: &str = concat!("consentry-learn ", env!("CARGO_PKG_VERSION"));
