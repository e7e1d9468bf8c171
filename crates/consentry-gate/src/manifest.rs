//! The manifest: the JSON record written beside a dataset, and the shard function.
//!
//! Everything an auditor needs to re-derive the dataset: the purpose, the
//! policy (version and hash), the ledger position with its Merkle root and a
//! signed tree head covering it, the snapshot's member-set hash, every source
//! file with its BLAKE3, rows in and out per table, exclusions by reason,
//! redactions by type, the member-set commitment (BLAKE3 of `members.roaring`,
//! stored beside it), a mergeable row commitment per table, and the shard
//! function later training uses.

use crate::GateError;
use crate::verify::Difference;
use consentry_ledger::SignedTreeHead;
use consentry_ledger::position::MAX_CLOCK_SKEW;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The manifest's file name inside a dataset directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The bitmap of included members (roaring's portable treemap format) inside a dataset directory.
pub const MEMBERS_FILE: &str = "members.roaring";
/// Default number of shards.
pub const DEFAULT_SHARDS: u32 = 8;
/// The manifest format version.
pub const FORMAT: u32 = 1;

/// The policy the dataset was cut under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// The policy's own version string.
    pub version: String,
    /// BLAKE3 of the policy text, hex.
    pub hash: String,
}

/// The ledger state the snapshot was taken at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRef {
    /// Last sequence number included.
    pub position: u64,
    /// Evaluation time (Unix seconds).
    pub at: i64,
    /// Merkle root of the first `position` events, hex.
    pub tree_root: String,
    /// A signed tree head covering `position` (its tree may be larger; a consistency proof links the two).
    pub checkpoint: Option<SignedTreeHead>,
}

/// The snapshot the rules were applied with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// BLAKE3 of the serialized bitmap of allowed members, hex.
    pub hash: String,
    /// Members allowed.
    pub allowed: u64,
    /// Members evaluated.
    pub members: u64,
}

/// One source file that fed the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct SourceFile {
    /// The table it belongs to.
    pub table: String,
    /// Its path relative to the declaration's base directory (absolute when outside it).
    pub path: String,
    /// BLAKE3 of its bytes, hex.
    pub blake3: String,
    /// Its size.
    pub bytes: u64,
    /// Rows it holds.
    pub rows: u64,
}

/// The source declaration and the files read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcesRef {
    /// Where the declaration came from: the built-in one's name, or its file (relative to the data directory
    /// when inside it, else absolute).
    pub declaration: String,
    /// BLAKE3 of the declaration text, hex.
    pub declaration_hash: String,
    /// The files read, by table and path.
    pub files: Vec<SourceFile>,
}

/// Which share of the input a partial result covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// 0-based index.
    pub index: u32,
    /// Number of partitions.
    pub count: u32,
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TableStats {
    /// False when the purpose declares none of the table's categories: nothing of it is written.
    pub included: bool,
    /// Member-id columns.
    pub member_columns: Vec<String>,
    /// Columns written, in order.
    pub columns: Vec<String>,
    /// Declared columns left out because the purpose does not declare their category.
    pub minimised: Vec<String>,
    /// Columns in the files that the declaration does not name (never pass).
    pub undeclared: Vec<String>,
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Rows excluded, by reason.
    pub excluded: BTreeMap<String, u64>,
    /// Rows kept with a refusing droppable party's columns nulled.
    pub parties_dropped: u64,
    /// Redactions by PII type.
    pub redactions: BTreeMap<String, u64>,
    /// LtHash of the written rows (1024 lanes, hex).
    pub row_commitment: String,
}

/// The set of members whose data entered the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSet {
    /// How many.
    pub count: u64,
    /// BLAKE3 of [`MEMBERS_FILE`], hex.
    pub commitment: String,
    /// The bitmap's file name.
    pub file: String,
}

/// How members map to training shards: `keyed BLAKE3(member id) mod shards`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFunction {
    /// `blake3-keyed-u64le-mod`: BLAKE3 keyed by `key` over the id's 8 little-endian bytes, first 8 output bytes as a little-endian u64, modulo `shards`.
    pub algorithm: String,
    /// The 32-byte key, hex, derived from the purpose.
    pub key: String,
    /// Number of shards.
    pub shards: u32,
}

impl ShardFunction {
    /// The shard function for a purpose: key = `blake3::derive_key("consentry-gate shard v1", purpose)`.
    pub fn for_purpose(purpose: &str, shards: u32) -> ShardFunction {
        let key = blake3::derive_key("consentry-gate shard v1", purpose.as_bytes());
        ShardFunction { algorithm: "blake3-keyed-u64le-mod".into(), key: hex::encode(key), shards: shards.max(1) }
    }

    /// The key as 32 bytes, decoded once by callers that map many members; `None` when it is not 64 hex digits.
    pub fn key_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.key).ok()?.try_into().ok()
    }

    /// The shard of `member_id`; `None` when the key in the manifest is malformed. Decodes the key on each call: a
    /// loop over many members decodes it once with [`ShardFunction::key_bytes`] and calls [`shard_of`].
    pub fn shard_of(&self, member_id: u64) -> Option<u32> {
        Some(shard_of(&self.key_bytes()?, self.shards, member_id))
    }
}

/// The shard of `member_id` under a 32-byte key and a shard count (0 is treated as 1).
pub fn shard_of(key: &[u8; 32], shards: u32, member_id: u64) -> u32 {
    let h = blake3::keyed_hash(key, &member_id.to_le_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    (u64::from_le_bytes(b) % u64::from(shards.max(1))) as u32
}

/// A file of the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct OutputFile {
    /// Path relative to the dataset directory.
    pub path: String,
    /// BLAKE3 of its bytes, hex.
    pub blake3: String,
    /// Its size.
    pub bytes: u64,
    /// Rows it holds.
    pub rows: u64,
}

/// Whether and how free text was redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionRef {
    /// False only for benchmarks; a dataset for training always redacts.
    pub enabled: bool,
    /// Member names in the PERSON detector.
    pub member_names: u64,
}

/// The manifest of one dataset (or of a partial result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// The purpose key.
    pub purpose: String,
    /// The policy.
    pub policy: PolicyRef,
    /// The ledger state.
    pub ledger: LedgerRef,
    /// The snapshot.
    pub snapshot: SnapshotRef,
    /// The sources.
    pub sources: SourcesRef,
    /// `Some` for a partial result of `gate --partition`.
    pub partition: Option<Partition>,
    /// Per table, by name.
    pub tables: BTreeMap<String, TableStats>,
    /// Rows in, over all included tables.
    pub rows_in: u64,
    /// Rows out, over all tables.
    pub rows_out: u64,
    /// Rows excluded by reason, over all tables.
    pub excluded: BTreeMap<String, u64>,
    /// Redactions by type, over all tables.
    pub redactions: BTreeMap<String, u64>,
    /// Redaction settings.
    pub redaction: RedactionRef,
    /// The included members.
    pub members: MemberSet,
    /// The shard function.
    pub shard: ShardFunction,
    /// The data files, sorted by path.
    pub files: Vec<OutputFile>,
    /// The tool that wrote it.
    pub tool: String,
    /// When it was written (Unix seconds).
    pub created: i64,
}

impl Manifest {
    /// Reads `DIR/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest, GateError> {
        // Never through a link (see `fsguard`).
        let path = crate::fsguard::inside(dir, MANIFEST_FILE)?;
        let text = std::fs::read_to_string(&path).map_err(|source| GateError::ManifestRead {
            path: path.clone(),
            dir: dir.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| GateError::Manifest { path, message: e.to_string() })
    }

    /// Writes `DIR/manifest.json`.
    pub fn write(&self, dir: &Path) -> Result<(), GateError> {
        let path = dir.join(MANIFEST_FILE);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| GateError::Manifest { path: path.clone(), message: e.to_string() })?;
        consentry_files::write_part("gate::manifest::write", &path, text.as_bytes())
            .map_err(|e| GateError::io(&path, e))
    }

    /// Why the dataset's evaluation time cannot stand: consent evaluated after the dataset was created or after
    /// `now` (a time in the future counts today's minors as adults), a creation time after `now`, or — given the
    /// recorded time of the event after the dataset's position — an evaluation time after the log had moved on
    /// past that position. Times may run ahead by [`MAX_CLOCK_SKEW`] (clock skew between machines); empty when
    /// all is well.
    pub fn time_differences(&self, now: i64, next_recorded: Option<i64>) -> Vec<Difference> {
        let (at, created) = (self.ledger.at, self.created);
        let mut out = Vec::new();
        let mut push = |what: &str, expected: String, found: i64| {
            out.push(Difference { what: what.into(), expected, found: time(found) });
        };
        if at > created.saturating_add(MAX_CLOCK_SKEW) {
            push("evaluation time", format!("at or before the dataset's creation, {}", time(created)), at);
        }
        if at > now.saturating_add(MAX_CLOCK_SKEW) {
            push("evaluation time", format!("at or before the present, {}", time(now)), at);
        }
        if created > now.saturating_add(MAX_CLOCK_SKEW) {
            push("creation time", format!("at or before the present, {}", time(now)), created);
        }
        if let Some(next) = next_recorded
            && at > next.saturating_add(MAX_CLOCK_SKEW)
        {
            push(
                "evaluation time",
                format!(
                    "before event {} was recorded, {} (the log at position {} ended there)",
                    self.ledger.position + 1,
                    time(next),
                    self.ledger.position
                ),
                at,
            );
        }
        out
    }

    /// The manifest with the fields that legitimately differ between equal runs (creation time) cleared.
    pub fn normalized(&self) -> Manifest {
        let mut m = self.clone();
        m.created = 0;
        m
    }
}

/// A time for messages: RFC 3339 with the Unix seconds, or the raw number when out of range.
fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| format!("{} ({t})", d.to_rfc3339()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory without a manifest is bad input naming it, with the operating system's error kept as the source.
    #[test]
    fn a_missing_manifest_keeps_its_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = Manifest::read(dir.path()).unwrap_err();
        assert!(matches!(e, GateError::ManifestRead { .. }) && e.is_bad_input(), "{e}");
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.downcast_ref::<std::io::Error>().map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
        assert!(e.to_string().contains("is") && e.to_string().contains("a dataset written by `consentry gate`"), "{e}");
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let f = ShardFunction::for_purpose("train_ai_system.job_recommendations", 8);
        let mut counts = [0u32; 8];
        for m in 1..=8000u64 {
            let s = f.shard_of(m).unwrap();
            assert_eq!(Some(s), f.shard_of(m));
            counts[s as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800 && c < 1200), "{counts:?}");
        let g = ShardFunction::for_purpose("train_ai_system.content_suggestions", 8);
        assert_ne!(f.key, g.key);
    }

    #[test]
    fn a_malformed_key_has_no_bytes() {
        let f = ShardFunction::for_purpose("train_ai_system.job_recommendations", 8);
        assert_eq!(f.key_bytes().map(hex::encode), Some(f.key.clone()));
        for key in ["", "zz", &f.key[..62]] {
            let bad = ShardFunction { key: key.into(), ..f.clone() };
            assert_eq!((bad.key_bytes(), bad.shard_of(1)), (None, None), "{key:?}");
        }
    }
}
