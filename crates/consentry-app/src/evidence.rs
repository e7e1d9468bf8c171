//! Evidence use cases for auditors and operators: signed tree heads (latest and by size), inclusion and
//! consistency proofs with what a client needs to check them against a head it holds, any entry's receipt, the
//! evidence bundle `audit --offline` reads as one archive. (Audit runs are in `audit_runs.rs`.)
//!
//! Proofs come from the ledger's own Merkle tree (`consentry_ledger::merkle`), after
//! [`consentry_ledger::Ledger::verify_through`]: nothing is proven about a log that no longer matches its hashes
//! and signatures.

use crate::error::{AppError, ErrorKind, Result};
use crate::session::Session;
use consentry_audit::ExportSummary;
use consentry_ledger::{Entry, Event, FactsEntry, Hash, SignedTreeHead};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One entry of the log, as a client re-encodes it to recompute its leaf hash (`Event::leaf_hash`,
/// `FactsEntry::leaf_hash` in `consentry-ledger`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LogEntry {
    /// A consent event.
    Consent {
        /// Every field of the canonical encoding (`CSE1`).
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        event: Event,
    },
    /// A member-facts entry.
    Facts {
        /// Every field of the canonical encoding (`CSF1`).
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        facts: FactsEntry,
    },
}

impl From<Entry> for LogEntry {
    fn from(e: Entry) -> LogEntry {
        match e {
            Entry::Consent(event) => LogEntry::Consent { event },
            Entry::Facts(facts) => LogEntry::Facts { facts },
        }
    }
}

/// An RFC 9162 inclusion proof of one entry in the tree of `tree_size` entries (leaf index `seq - 1`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    /// The entry's position (1-based).
    pub seq: u64,
    /// The tree the proof leads to.
    pub tree_size: u64,
    /// The entry's leaf hash, hex: BLAKE3 of `0x00 ‖ encoding` (recompute it from `entry`).
    pub leaf_hash: String,
    /// The Merkle root of the first `tree_size` entries, hex: compare it with a signed head of that size.
    pub root_hash: String,
    /// The audit path, hex, leaf to root.
    pub proof: Vec<String>,
    /// The entry itself.
    pub entry: LogEntry,
    /// The signed tree head of exactly `tree_size` entries, when one was signed.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub checkpoint: Option<SignedTreeHead>,
}

/// An RFC 9162 consistency proof: the tree of `to` entries extends the tree of `from` entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub from: u64,
    /// The newer tree's size.
    pub to: u64,
    /// The older tree's root, hex.
    pub from_root: String,
    /// The newer tree's root, hex.
    pub to_root: String,
    /// The proof's hashes, hex.
    pub proof: Vec<String>,
}

/// The evidence bundle exported to a private temporary directory, ready to be packed; removed when dropped.
pub struct EvidenceBundle {
    /// Holds the temporary directory (removed on drop) until the bundle is packed.
    _dir: tempfile::TempDir,
    summary: ExportSummary,
    name: String,
    created: i64,
}

impl std::fmt::Debug for EvidenceBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceBundle").field("name", &self.name).field("summary", &self.summary).finish()
    }
}

impl EvidenceBundle {
    /// The top directory inside the archive (and the download's file name, with `.tar`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What was exported.
    pub fn summary(&self) -> &ExportSummary {
        &self.summary
    }

    /// Writes the bundle as a ustar archive whose one top directory is [`EvidenceBundle::name`]: unpacked, that
    /// directory is what `consentry audit --offline` checks. Entries are in path order with fixed owners, modes
    /// and times, so one bundle always packs to the same bytes.
    pub fn write_tar(&self, out: impl Write) -> Result<()> {
        let root = self.summary.dir.as_path();
        let mut files = Vec::new();
        collect(root, Path::new(""), &mut files)?;
        files.sort();
        let mut tar = tar::Builder::new(out);
        let top = Path::new(&self.name);
        tar.append_data(&mut dir_header(self.created), top, std::io::empty()).map_err(|e| pack_error(top, e))?;
        for (rel, is_dir) in files {
            let name = top.join(&rel);
            if is_dir {
                tar.append_data(&mut dir_header(self.created), &name, std::io::empty())
                    .map_err(|e| pack_error(&name, e))?;
                continue;
            }
            let path = root.join(&rel);
            let file = std::fs::File::open(&path).map_err(|e| pack_error(&path, e))?;
            let len = file.metadata().map_err(|e| pack_error(&path, e))?.len();
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(len);
            h.set_mode(0o644);
            h.set_mtime(u64::try_from(self.created).unwrap_or(0));
            tar.append_data(&mut h, &name, file).map_err(|e| pack_error(&name, e))?;
        }
        tar.into_inner().and_then(|mut w| w.flush()).map_err(|e| pack_error(top, e))?;
        Ok(())
    }
}

fn dir_header(mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(u64::try_from(mtime).unwrap_or(0));
    h
}

fn pack_error(path: &Path, e: std::io::Error) -> AppError {
    AppError::wrap(ErrorKind::Internal, e).context(format!("packing the evidence bundle ({})", path.display()))
}

/// Every file and directory below `root` (relative paths), refusing anything else: the exporter writes only those.
fn collect(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<()> {
    let dir = root.join(rel);
    let entries = std::fs::read_dir(&dir).map_err(|e| pack_error(&dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| pack_error(&dir, e))?;
        let kind = entry.file_type().map_err(|e| pack_error(&entry.path(), e))?;
        let child = rel.join(entry.file_name());
        if kind.is_dir() {
            out.push((child.clone(), true));
            collect(root, &child, out)?;
        } else if kind.is_file() {
            out.push((child, false));
        } else {
            return Err(AppError::internal(format!(
                "the exported bundle holds {}, neither a file nor a directory",
                entry.path().display()
            )));
        }
    }
    Ok(())
}

fn hexes(v: &[Hash]) -> Vec<String> {
    v.iter().map(hex::encode).collect()
}

impl Session {
    /// The newest signed tree head.
    pub fn latest_checkpoint(&self) -> Result<SignedTreeHead> {
        self.ledger()?.latest_checkpoint()?.ok_or_else(|| {
            AppError::new(
                ErrorKind::NotFound,
                "no tree head has been signed yet (`consentry ledger checkpoint` signs one)",
            )
        })
    }

    /// The tree head signed at exactly `size` entries.
    pub fn checkpoint_at_size(&self, size: u64) -> Result<SignedTreeHead> {
        let checkpoints = self.ledger()?.store().checkpoints()?;
        checkpoints.into_iter().find(|c| c.head.tree_size == size).ok_or_else(|| {
            AppError::new(
                ErrorKind::NotFound,
                format!("no tree head was signed at {size} entries; the latest is at /v1/log/checkpoint"),
            )
        })
    }

    /// Every signed tree head, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<SignedTreeHead>> {
        Ok(self.ledger()?.store().checkpoints()?)
    }

    /// The log's length after checking it against its hashes and signed heads.
    pub(crate) fn verified_len(&self) -> Result<u64> {
        Ok(self.ledger()?.verify_through()?)
    }

    /// The verified log's length and the tree size a proof is asked for (none: the newest signed head's), refusing
    /// a tree the log has not reached.
    fn proof_tree(&self, size: Option<u64>) -> Result<(u64, u64)> {
        let len = self.verified_len()?;
        let size = match size {
            Some(s) => s,
            None => self.latest_checkpoint()?.head.tree_size,
        };
        if size > len {
            return Err(AppError::new(
                ErrorKind::NotFound,
                format!("the log has {len} entries, not {size}: there is no tree of {size} entries yet"),
            ));
        }
        Ok((len, size))
    }

    /// Inclusion proof of entry `seq` in the tree of `size` entries [default: the newest signed head's size].
    pub fn inclusion_proof(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof> {
        let ledger = self.ledger()?;
        let (len, size) = self.proof_tree(size)?;
        if seq == 0 || seq > size {
            return Err(AppError::bad_input(format!(
                "entry {seq} is not in a tree of {size} entries: seq runs from 1 to the tree size"
            )));
        }
        let stored =
            ledger.store().entry(seq)?.ok_or_else(|| AppError::internal(format!("entry {seq} of {len} is missing")))?;
        let proof = ledger.inclusion_proof(seq, size)?;
        let root = ledger.root(size)?;
        let checkpoint = ledger.store().checkpoints()?.into_iter().find(|c| c.head.tree_size == size);
        Ok(InclusionProof {
            seq,
            tree_size: size,
            leaf_hash: hex::encode(stored.leaf_hash),
            root_hash: hex::encode(root),
            proof: hexes(&proof),
            entry: stored.entry.into(),
            checkpoint,
        })
    }

    /// Consistency proof from the tree of `from` entries to the tree of `to` [default: the newest signed head's size].
    pub fn consistency_proof(&self, from: u64, to: Option<u64>) -> Result<ConsistencyProof> {
        let ledger = self.ledger()?;
        let (_, to) = self.proof_tree(to)?;
        if from > to {
            return Err(AppError::bad_input(format!(
                "from ({from}) is past to ({to}): a consistency proof goes from an older tree to a newer one"
            )));
        }
        let proof = ledger.consistency_proof(from, to)?;
        Ok(ConsistencyProof {
            from,
            to,
            from_root: hex::encode(ledger.root(from)?),
            to_root: hex::encode(ledger.root(to)?),
            proof: hexes(&proof),
        })
    }

    /// Exports the evidence bundle into a private temporary directory, to be packed for a download.
    pub fn evidence_bundle(&self) -> Result<EvidenceBundle> {
        let dir = tempfile::Builder::new()
            .prefix("consentry-evidence-")
            .tempdir()
            .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e).context("making a temporary directory"))?;
        let now = consentry_ledger::now();
        let size = self.verified_len()?;
        let name = format!("consentry-evidence-{size}-{now}");
        let summary = self.export_bundle(&dir.path().join(&name))?;
        Ok(EvidenceBundle { _dir: dir, summary, name, created: now })
    }
}
