//! Audit runs: the online audit ([`Session::audit`]) started by an operator, recorded with who asked, when, the
//! verdict and every finding, and read back later.
//!
//! A run is begun ([`Session::begin_audit`]: `bundles/audit-runs/<id>.running`, locked by the process running it)
//! and finished ([`Session::finish_audit`]: `<id>.json` with the ledger key's signature over those exact bytes in
//! `<id>.sig`, label `consentry audit run v1`; or `<id>.failed` with the error), so a front end can answer at once
//! and let the caller poll: the audit of a large log takes longer than a request may. A finished record whose
//! signature fails is refused on read ([`ErrorKind::Integrity`]); a `.running` file nobody holds the lock of is a
//! run whose process died ([`AuditStatus::Interrupted`]).

use crate::error::{AppError, ErrorKind, Result};
use crate::keys::Principal;
use crate::session::Session;
use consentry_audit::AuditOptions;
use consentry_files::OutputOptions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The label audit-run records are signed under (`LogKey::sign_labelled`), so no other signed record passes for one.
const RUN_LABEL: &str = "consentry audit run v1";
/// The longest audit-run id looked up (ids made here are shorter).
const MAX_RUN_ID: usize = 64;

/// Where an audit run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuditStatus {
    /// The audit is running.
    Running,
    /// The audit finished; its verdict and report are recorded and signed.
    Done,
    /// The audit could not run to the end (the error says why); no verdict.
    Failed,
    /// The process running it stopped before it finished; no verdict.
    Interrupted,
}

/// Who started a run, and when: what exists from the moment it begins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ticket {
    id: String,
    started: i64,
    requested_by: String,
}

/// A finished audit run: the online audit's report, when it ran and who asked for it (signed when recorded).
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

/// An audit run as a poller sees it: always its id, status, start and requester; the rest once known.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// The run's id.
    pub id: String,
    /// Where the run is.
    pub status: AuditStatus,
    /// When the audit started (Unix seconds).
    pub started: i64,
    /// Who asked for it.
    pub requested_by: String,
    /// When it finished (done runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<i64>,
    /// True when the audit found no violation (done runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// Violations found (done runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<usize>,
    /// Why the run failed (failed runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The whole run with its report (done runs, when asked for one run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<AuditRun>,
}

impl AuditRecord {
    fn of(ticket: Ticket, status: AuditStatus) -> AuditRecord {
        AuditRecord {
            id: ticket.id,
            status,
            started: ticket.started,
            requested_by: ticket.requested_by,
            finished: None,
            ok: None,
            violations: None,
            error: None,
            run: None,
        }
    }

    fn done(run: AuditRun) -> AuditRecord {
        AuditRecord {
            id: run.id.clone(),
            status: AuditStatus::Done,
            started: run.started,
            requested_by: run.requested_by.clone(),
            finished: Some(run.finished),
            ok: Some(run.ok),
            violations: Some(run.violations),
            error: None,
            run: Some(run),
        }
    }
}

/// A run begun and not finished yet: holds the lock that tells pollers it is running.
#[derive(Debug)]
pub struct PendingAudit {
    ticket: Ticket,
    running: PathBuf,
    _lock: std::fs::File,
}

impl PendingAudit {
    /// The run as a poller sees it now (status running).
    pub fn record(&self) -> AuditRecord {
        AuditRecord::of(self.ticket.clone(), AuditStatus::Running)
    }
}

/// Ids made here: digits, a dash, lowercase hex; anything else names no file.
fn valid_run_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_RUN_ID && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'-'))
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> AppError {
    AppError::wrap(ErrorKind::Internal, e).context(format!("{what} {}", path.display()))
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| AppError::internal(format!("encoding an audit run: {e}")))
}

impl Session {
    /// Starts recording an audit run for `by`: its ticket written and locked, to be finished by
    /// [`Session::finish_audit`] (on another thread, if the front end answers at once).
    pub fn begin_audit(&self, by: &Principal) -> Result<PendingAudit> {
        // The key is needed to sign the verdict: refuse now, not after the audit, where it is missing.
        self.dir().load_signing_key()?;
        let started = consentry_ledger::now();
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).map_err(|e| AppError::internal(format!("no randomness available: {e}")))?;
        let ticket = Ticket { id: format!("{started}-{}", hex::encode(random)), started, requested_by: by.describe() };
        let dir = self.dir().audit_runs_dir();
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, "creating", e))?;
        let running = dir.join(format!("{}.running", ticket.id));
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&running)
            .map_err(|e| io_error(&running, "creating", e))?;
        lock.try_lock().map_err(|e| AppError::internal(format!("cannot lock {}: {e}", running.display())))?;
        std::io::Write::write_all(&mut &lock, &encode(&ticket)?).map_err(|e| io_error(&running, "writing", e))?;
        Ok(PendingAudit { ticket, running, _lock: lock })
    }

    /// Runs the online audit of a begun run and records the outcome: the signed run, or the error as a failed run
    /// (which is also returned).
    pub fn finish_audit(&self, pending: PendingAudit) -> Result<AuditRun> {
        let clock = std::time::Instant::now();
        let outcome = self.audit_for(&pending.ticket, clock);
        let dir = self.dir().audit_runs_dir();
        let opts = OutputOptions::MEMBER_DATA.no_follow();
        let written = match &outcome {
            Ok((run, json)) => {
                let key = self.dir().load_signing_key()?;
                let signature = hex::encode(key.sign_labelled(RUN_LABEL, json));
                // The signature first: a crash between the two writes leaves a stray `.sig`, never an unsigned run.
                consentry_files::write(&dir.join(format!("{}.sig", run.id)), format!("{signature}\n").as_bytes(), opts)
                    .and_then(|_| consentry_files::write(&dir.join(format!("{}.json", run.id)), json, opts))
                    .map_err(AppError::from)
            }
            Err(e) => {
                let failed = serde_json::json!({ "ticket": pending.ticket, "error": e.to_string() });
                consentry_files::write(&dir.join(format!("{}.failed", pending.ticket.id)), &encode(&failed)?, opts)
                    .map_err(AppError::from)
            }
        };
        written?;
        let _ = std::fs::remove_file(&pending.running);
        outcome.map(|(run, _)| run)
    }

    /// The online audit for a ticket, and the run's JSON as it will be signed.
    fn audit_for(&self, ticket: &Ticket, clock: std::time::Instant) -> Result<(AuditRun, Vec<u8>)> {
        let log_entries = self.verified_len()?;
        let report = self.audit(&AuditOptions::at(ticket.started))?;
        let run = AuditRun {
            id: ticket.id.clone(),
            started: ticket.started,
            finished: consentry_ledger::now(),
            seconds: clock.elapsed().as_secs_f64(),
            requested_by: ticket.requested_by.clone(),
            ok: report.ok,
            violations: report.violations,
            log_entries,
            report: serde_json::to_value(&report)
                .map_err(|e| AppError::internal(format!("encoding the audit report: {e}")))?,
        };
        let json = encode(&run)?;
        Ok((run, json))
    }

    /// Runs the online audit for `by` and records it, in one call.
    pub fn run_audit(&self, by: &Principal) -> Result<AuditRun> {
        let pending = self.begin_audit(by)?;
        self.finish_audit(pending)
    }

    /// Every audit run, newest first, without reports; a finished record whose signature fails is an integrity
    /// error naming it.
    pub fn audit_runs(&self) -> Result<Vec<AuditRecord>> {
        let dir = self.dir().audit_runs_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&dir, "reading", e)),
        };
        let mut ids = std::collections::BTreeSet::new();
        for entry in entries {
            let name = entry.map_err(|e| io_error(&dir, "reading", e))?.file_name();
            let Some(name) = name.to_str() else { continue };
            let id = [".json", ".running", ".failed"].iter().find_map(|ext| name.strip_suffix(ext));
            if let Some(id) = id.filter(|id| valid_run_id(id)) {
                ids.insert(id.to_string());
            }
        }
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            let mut record = self.audit_run(&id)?;
            record.run = None;
            runs.push(record);
        }
        runs.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.id.cmp(&a.id)));
        Ok(runs)
    }

    /// One audit run: finished (signature checked with the ledger's public key, report included), failed, running
    /// or interrupted.
    pub fn audit_run(&self, id: &str) -> Result<AuditRecord> {
        let not_found =
            || AppError::new(ErrorKind::NotFound, format!("no audit run `{id}`; GET /v1/audits lists them"));
        if !valid_run_id(id) {
            return Err(not_found());
        }
        let dir = self.dir().audit_runs_dir();
        let path = |ext: &str| dir.join(format!("{id}.{ext}"));
        if let Some(text) = read_if_there(&path("json"))? {
            return self.verified_run(id, &path("json"), &text).map(AuditRecord::done);
        }
        if let Some(text) = read_if_there(&path("failed"))? {
            #[derive(Deserialize)]
            struct Failed {
                ticket: Ticket,
                error: String,
            }
            let f: Failed = serde_json::from_slice(&text).map_err(|e| altered(&path("failed"), &e.to_string()))?;
            return Ok(AuditRecord { error: Some(f.error), ..AuditRecord::of(f.ticket, AuditStatus::Failed) });
        }
        let running = path("running");
        let file = match std::fs::File::open(&running) {
            Ok(f) => f,
            // Finished between the looks above and this one: read it as finished.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && (path("json").exists() || path("failed").exists()) =>
            {
                return self.audit_run(id);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(io_error(&running, "reading", e)),
        };
        let text = std::io::read_to_string(&file).map_err(|e| io_error(&running, "reading", e))?;
        // Written right after the lock is taken: an empty ticket is a run beginning this instant.
        let ticket: Ticket = match serde_json::from_str(&text) {
            Ok(t) => t,
            Err(_) if text.is_empty() => return Err(not_found()),
            Err(e) => return Err(altered(&running, &e.to_string())),
        };
        let status = match file.try_lock_shared() {
            Ok(()) => AuditStatus::Interrupted,
            Err(_) => AuditStatus::Running,
        };
        Ok(AuditRecord::of(ticket, status))
    }

    /// A finished run's record, refused unless the ledger key's signature over its bytes verifies.
    fn verified_run(&self, id: &str, path: &Path, text: &[u8]) -> Result<AuditRun> {
        let signature: [u8; 64] = std::fs::read_to_string(path.with_extension("sig"))
            .ok()
            .and_then(|s| hex::decode(s.trim()).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| altered(path, &format!("no readable signature beside it ({id}.sig)")))?;
        if !self.key_chain()?.verify_labelled(RUN_LABEL, text, &signature) {
            return Err(altered(path, "it does not match its signature"));
        }
        let run: AuditRun = serde_json::from_slice(text).map_err(|e| altered(path, &e.to_string()))?;
        if run.id != id {
            return Err(altered(path, &format!("it names run `{}`", run.id)));
        }
        Ok(run)
    }
}

/// A file's bytes, or `None` when there is no such file.
fn read_if_there(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, "reading", e)),
    }
}

/// A run record that is not as it was written.
fn altered(path: &Path, why: &str) -> AppError {
    AppError::new(
        ErrorKind::Integrity,
        format!("the audit run record {} was altered after it was written: {why}", path.display()),
    )
}
