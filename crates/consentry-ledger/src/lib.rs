//! The consent ledger: the single source of truth for consent.
//!
//! An append-only log of consent events, hash-chained and covered by an
//! RFC 9162 Merkle tree whose heads are signed with Ed25519 (checkpoints).
//! Members get receipts (an event plus its inclusion proof and a signed head)
//! that verify offline; anyone holding a checkpoint detects a rewrite through
//! a consistency proof. Storage is a trait with two backends run by one test
//! suite: SQLite (embedded default, group commit) and PostgreSQL (several
//! processes, one gap-free chain), each behind its cargo feature (`sqlite`, `postgres`): everything else
//! (events, proofs, checkpoints, receipts, snapshots, the `Store` trait) compiles without either. Snapshots turn the log into roaring
//! bitmaps of members allowed per purpose.

pub mod checkpoint;
pub mod event;
pub mod keys;
mod ledger;
pub mod merkle;
pub mod note;
pub mod outbox;
pub mod position;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod receipt;
pub mod schema;
pub mod snapshot;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;
pub mod tiles;
pub mod witness;

pub use checkpoint::{LogKey, PublicKey, SignedTreeHead, TreeHead};
pub use event::{Entry, Event, FactsEntry, NewEvent, StoredEntry, StoredEvent, StoredFacts};
pub use keys::{KeyChain, KeyChainError, KeyHandover, LabelledVerifier, TrustedKey};
pub use ledger::{Ledger, LedgerOptions, Verification, now, verify_store, verify_store_with};
pub use store::{Appended, MemberRecord, Store};

use std::path::{Path, PathBuf};

/// The schema version of the ledger's tables this code reads and writes (recorded in the store's
/// `consentry_schema` table; see [`schema`]).
pub const SCHEMA_VERSION: u32 = schema::LEDGER.version();

/// A 32-byte BLAKE3 digest.
pub type Hash = [u8; 32];

/// What went wrong in the ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The input is malformed (a field too long, a bad flag value).
    #[error("{0}")]
    Invalid(String),
    /// A batch was refused; nothing of it was written.
    #[error("event {index} of the batch was refused: {reason}")]
    Rejected {
        /// 0-based position of the first bad event in the batch.
        index: usize,
        /// Why, and what to do.
        reason: String,
    },
    /// An idempotency key already names a different request; nothing of the batch was written.
    #[error(
        "idempotency key `{key}` was already used for event {seq}, a different request ({fields} differ); \
         use a new key for a new request"
    )]
    IdempotencyConflict {
        /// The reused key.
        key: String,
        /// The event the key names.
        seq: u64,
        /// The fields that differ.
        fields: String,
    },
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The stored log does not match its hashes or signatures.
    #[error("the ledger was tampered with: {0}")]
    Tampered(String),
    /// A stored entry does not match its hashes, the chain or a signed checkpoint: the log was altered.
    #[error(
        "the ledger was tampered with at entry {seq}: {reason}; nothing was read from or written to it \
         (run `consentry ledger verify` for every problem)"
    )]
    BadEntry {
        /// The first entry that does not verify.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A key file is missing or malformed.
    #[error("signing key: {0}")]
    Key(String),
    /// A key hand-over or a signed head is refused by the log's chain of keys.
    #[error(transparent)]
    KeyChain(#[from] KeyChainError),
    /// SQLite failed.
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[cfg(feature = "postgres")]
    #[error("postgres: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Parquet failed while exporting.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow failed while building what is exported.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The store holds a value this version cannot read (a newer schema, or corruption).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store's tables are of a newer schema than this code understands: never read, never migrated back.
    #[error(
        "the {component} in {place} has schema version {found} but this consentry understands up to {supported}: \
         upgrade consentry"
    )]
    SchemaTooNew {
        /// `ledger` or `registry`.
        component: &'static str,
        /// The store (a file, or a PostgreSQL database).
        place: String,
        /// The version the store records.
        found: u32,
        /// The newest version this code knows.
        supported: u32,
    },
    /// A read-only open found tables of an older schema, which only a writing open migrates.
    #[error(
        "the {component} in {place} has schema version {found} and this consentry reads version {supported}: open \
         it once with a command that writes (on a writable copy) to migrate it"
    )]
    SchemaTooOld {
        /// `ledger` or `registry`.
        component: &'static str,
        /// The store (a file, or a PostgreSQL database).
        place: String,
        /// The version the store records.
        found: u32,
        /// The version this code reads.
        supported: u32,
    },
    /// The background writer stopped (the process is shutting down or it hit an I/O error).
    #[error("the ledger writer stopped: {0}")]
    WriterGone(String),
}

impl LedgerError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> LedgerError {
        LedgerError::Io { path: path.to_path_buf(), source }
    }
}

/// The error a fail point injects into the store (`what` names the write in the message).
#[allow(dead_code)] // Only the fail points call it, and they compile to nothing without `failpoints`.
pub(crate) fn injected(what: &str, arg: Option<String>) -> LedgerError {
    LedgerError::io(Path::new(what), consentry_files::fault::injected(arg))
}

impl LedgerError {
    /// True when the caller's input is at fault (exit code 2 in the CLI).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            LedgerError::Invalid(_)
                | LedgerError::Rejected { .. }
                | LedgerError::IdempotencyConflict { .. }
                | LedgerError::NotFound(_)
                | LedgerError::Key(_)
        )
    }
}

/// Serde helpers: fixed-size byte arrays as lowercase hex.
pub(crate) mod hexbytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// Only lowercase hex is accepted: one value, one spelling (signed records stay canonical).
    pub(crate) fn lower(s: &str) -> Result<(), String> {
        match s.bytes().find(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Some(b) => Err(format!("expected lowercase hex, found {:?}", b as char)),
            None => Ok(()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        lower(&s).map_err(serde::de::Error::custom)?;
        let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
        v.try_into().map_err(|_| serde::de::Error::custom(format!("expected {N} bytes of hex")))
    }

    /// An optional fixed-size byte array as hex (absent or null: `None`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer, const N: usize>(v: &Option<[u8; N]>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(b) => super::serialize(b, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<Option<[u8; N]>, D::Error> {
            let s: Option<String> = Option::deserialize(d)?;
            s.map(|s| {
                super::lower(&s).map_err(serde::de::Error::custom)?;
                let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
                v.try_into().map_err(|_| serde::de::Error::custom(format!("expected {N} bytes of hex")))
            })
            .transpose()
        }
    }

    /// A list of hashes as hex strings.
    pub mod list {
        use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

        pub fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for h in v {
                seq.serialize_element(&hex::encode(h))?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
            let v: Vec<String> = Vec::deserialize(d)?;
            v.iter()
                .map(|s| {
                    super::lower(s).map_err(serde::de::Error::custom)?;
                    let b = hex::decode(s).map_err(serde::de::Error::custom)?;
                    b.try_into().map_err(|_| serde::de::Error::custom("expected 32 bytes of hex"))
                })
                .collect()
        }
    }
}
