//! Evidence use cases for auditors and operators: signed tree heads (latest and by size), inclusion and
//! consistency proofs with what a client needs to check them against a head it holds, any entry's receipt, the
//! evidence bundle `audit --offline` reads as one archive, and audit runs recorded in the data directory.
//!
//! Proofs come from the ledger's own Merkle tree (`consentry_ledger::merkle`), after
//! [`consentry_ledger::Ledger::verify_through`]: nothing is proven about a log that no longer matches its hashes
//! and signatures. An audit run is the online audit ([`Session::audit`]) plus who asked and when, written as
//! `bundles/audit-runs/<id>.json` with the ledger key's signature over those exact bytes in `<id>.sig`, so an
//! edited record is refused on read.

use crate::error::{AppError, ErrorKind, Result};
use crate::keys::Principal;
use crate::session::Session;
use consentry_audit::{AuditOptions, ExportSummary};
use consentry_files::OutputOptions;
use consentry_ledger::{Entry, Event, FactsEntry, Hash, LogKey, SignedTreeHead};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The label audit-run records are signed under (`LogKey::sign_labelled`), so no other signed record passes for one.
const RUN_LABEL: &str = "consentry audit run v1";
/// The longest audit-run id the service looks up (ids it makes are shorter).
const MAX_RUN_ID: usize = 64;

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

/// A recorded audit run: the online audit's report, when it ran and who asked for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRun {
    /// The run's id (start time and a random part).
    pub id: String,
    /// When the audit started (Unix seconds).
    pub started: i64,
    /// When it finished (Unix seconds).
    pub finished: i64,
    /// Wall-clock seconds it took.
    pub seconds: f64,
    /// Who asked for it ([`Principal::describe`]).
    pub requested_by: String,
    /// True when the audit found no violation.
    pub ok: bool,
    /// Violations found.
    pub violations: usize,
    /// The log's length when the audit ran.
    pub log_entries: u64,
    /// The audit's full report (findings, ledger, datasets, models), as `consentry audit --json` prints it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub report: serde_json::Value,
}

/// An audit run as listed: everything but the report.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRunSummary {
    /// The run's id.
    pub id: String,
    /// When the audit started (Unix seconds).
    pub started: i64,
    /// When it finished (Unix seconds).
    pub finished: i64,
    /// Who asked for it.
    pub requested_by: String,
    /// True when the audit found no violation.
    pub ok: bool,
    /// Violations found.
    pub violations: usize,
}

impl From<&AuditRun> for AuditRunSummary {
    fn from(r: &AuditRun) -> AuditRunSummary {
        AuditRunSummary {
            id: r.id.clone(),
            started: r.started,
            finished: r.finished,
            requested_by: r.requested_by.clone(),
            ok: r.ok,
            violations: r.violations,
        }
    }
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
    fn verified_len(&self) -> Result<u64> {
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

    /// Runs the online audit for `by` and records the run (signed, under the data directory) before returning it.
    pub fn run_audit(&self, by: &Principal) -> Result<AuditRun> {
        let started = consentry_ledger::now();
        let clock = std::time::Instant::now();
        let log_entries = self.verified_len()?;
        let report = self.audit(&AuditOptions::at(started))?;
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).map_err(|e| AppError::internal(format!("no randomness available: {e}")))?;
        let run = AuditRun {
            id: format!("{started}-{}", hex::encode(random)),
            started,
            finished: consentry_ledger::now(),
            seconds: clock.elapsed().as_secs_f64(),
            requested_by: by.describe(),
            ok: report.ok,
            violations: report.violations,
            log_entries,
            report: serde_json::to_value(&report)
                .map_err(|e| AppError::internal(format!("encoding the audit report: {e}")))?,
        };
        let json =
            serde_json::to_vec_pretty(&run).map_err(|e| AppError::internal(format!("encoding the audit run: {e}")))?;
        let key = LogKey::load(&self.dir().key_file())?;
        let signature = hex::encode(key.sign_labelled(RUN_LABEL, &json));
        let dir = self.dir().audit_runs_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| AppError::wrap(ErrorKind::Internal, e).context(format!("creating {}", dir.display())))?;
        // The signature first: a crash between the two writes leaves a stray `.sig`, never an unsigned run.
        let opts = OutputOptions::MEMBER_DATA.no_follow();
        consentry_files::write(&dir.join(format!("{}.sig", run.id)), format!("{signature}\n").as_bytes(), opts)?;
        consentry_files::write(&dir.join(format!("{}.json", run.id)), &json, opts)?;
        Ok(run)
    }

    /// Every recorded audit run, newest first; a record whose signature fails is an integrity error naming it.
    pub fn audit_runs(&self) -> Result<Vec<AuditRunSummary>> {
        let dir = self.dir().audit_runs_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(AppError::wrap(ErrorKind::Internal, e).context(format!("reading {}", dir.display())));
            }
        };
        let mut runs = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| AppError::wrap(ErrorKind::Internal, e).context(format!("reading {}", dir.display())))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
            if valid_run_id(id) {
                runs.push(AuditRunSummary::from(&self.audit_run(id)?));
            }
        }
        runs.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.id.cmp(&a.id)));
        Ok(runs)
    }

    /// One recorded audit run, its signature checked with the ledger's public key.
    pub fn audit_run(&self, id: &str) -> Result<AuditRun> {
        let not_found =
            || AppError::new(ErrorKind::NotFound, format!("no audit run `{id}`; GET /v1/audits lists them"));
        if !valid_run_id(id) {
            return Err(not_found());
        }
        let path = self.dir().audit_runs_dir().join(format!("{id}.json"));
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => {
                return Err(AppError::wrap(ErrorKind::Internal, e).context(format!("reading {}", path.display())));
            }
        };
        let tampered = |why: String| {
            AppError::new(
                ErrorKind::Integrity,
                format!("the audit run record {} {why}: it was altered after it was written", path.display()),
            )
        };
        let signature: [u8; 64] = std::fs::read_to_string(path.with_extension("sig"))
            .ok()
            .and_then(|s| hex::decode(s.trim()).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| tampered(format!("has no readable signature beside it ({id}.sig)")))?;
        if !self.public_key()?.verify_labelled(RUN_LABEL, &text, &signature) {
            return Err(tampered("does not match its signature".into()));
        }
        let run: AuditRun =
            serde_json::from_slice(&text).map_err(|e| tampered(format!("is not an audit run record ({e})")))?;
        if run.id != id {
            return Err(tampered(format!("names run `{}`", run.id)));
        }
        Ok(run)
    }
}

/// Ids the service makes: digits, a dash, lowercase hex; anything else names no file.
fn valid_run_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_RUN_ID && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'-'))
}
