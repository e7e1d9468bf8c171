//! The unlearning worker: follows the ledger from a durable cursor, turns withdrawals (any source: the
//! privacy centre, the API, a GPC signal, an erasure) into unlearning requests against the live models that
//! contain the member, and retrains each affected model once per batch with `consentry_learn::train::unlearn`,
//! swapping the new version in with one registry transaction.
//!
//! Crash safety: requests and the cursor advance together in one transaction, so no withdrawal is skipped or
//! lost. The retrain writes a new directory beside the old one; only the swap transaction (new version live,
//! old superseded, requests completed) makes it count. A crash before the swap leaves the old version live and
//! at most an unregistered directory, which the next run removes and rebuilds; after it, the new version.

use crate::db::P;
use crate::registry::{
    CheckedModel, ModelRecord, ModelStatus, RequestStatus, RunRecord, UnlearningRequest, by_model, check_model_dir,
    get_cursor, get_dataset, get_model, hand_over, insert_events, insert_request, insert_run, list_models,
    live_successor, mark_status, model_problem, shard_bitmaps, short, to_i64,
};
use crate::{LineageError, Registry};
use consentry_learn::model::{MODEL_FILE, ModelMeta};
use consentry_ledger::{Event, Ledger};
use consentry_policy::Action;
use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The cursor the worker keeps in `registry_cursors` unless told otherwise.
pub const DEFAULT_CURSOR: &str = "unlearning";

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Name of its cursor in `registry_cursors`.
    pub cursor: String,
    /// Seconds from withdrawal (event time) to "no live model contains the member".
    pub deadline_secs: i64,
    /// A model is retrained only once its oldest open request has waited this long (so later withdrawals join
    /// the same retrain), unless a request is already past its deadline.
    pub batch_window_secs: i64,
    /// Training threads, 0 = all cores; never changes the result.
    pub threads: usize,
    /// The clock (Unix seconds); `None` reads the system clock.
    pub now: Option<i64>,
}

impl Default for WorkerOptions {
    fn default() -> WorkerOptions {
        WorkerOptions {
            cursor: DEFAULT_CURSOR.into(),
            deadline_secs: crate::registry::DEFAULT_DEADLINE_SECS,
            batch_window_secs: 0,
            threads: 0,
            now: None,
        }
    }
}

/// The batch window a watching worker applies when none is given: a quarter of the deadline. Under a steady stream
/// of withdrawals each model is then retrained at most once per window, for the withdrawals of that window, and
/// every request still has three quarters of its deadline for the pass interval and the retrain (the shard rule,
/// `consentry_learn::train::shards_for`, keeps even a retrain of every shard within a quarter).
pub fn derived_batch_window(deadline_secs: i64) -> i64 {
    deadline_secs.max(0) / 4
}

impl WorkerOptions {
    fn clock(&self) -> i64 {
        self.now.unwrap_or_else(crate::now)
    }
}

/// One retrain: a model version replaced by one trained without some members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrain {
    /// The version that was live.
    pub old_model: String,
    /// The version now live.
    pub new_model: String,
    /// Its directory.
    pub new_dir: String,
    /// Its version number.
    pub version: u64,
    /// Model kind.
    pub kind: String,
    /// Purpose.
    pub purpose: String,
    /// Members removed.
    pub members: Vec<u64>,
    /// The withdrawal events that caused it.
    pub events: Vec<u64>,
    /// Shards retrained (the others were copied byte for byte).
    pub shards: Vec<u32>,
    /// Shards in the model.
    pub shards_total: u32,
    /// Seconds the retrain and swap took.
    pub seconds: f64,
    /// When the new version went live.
    pub completed_at: i64,
    /// Requests of this batch completed after their deadline.
    pub missed: u64,
}

/// Deadline figures over every request the registry holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeadlineFigures {
    /// The deadline this run applied to new requests (seconds).
    pub deadline_secs: i64,
    /// Requests completed, ever.
    pub completed: u64,
    /// Of those, completed by their deadline.
    pub within_deadline: u64,
    /// Requests that missed their deadline (completed late or still open past it).
    pub missed: u64,
    /// Longest withdrawal-to-removal time among completed requests (seconds).
    pub max_latency_secs: Option<i64>,
    /// Mean withdrawal-to-removal time among completed requests (seconds).
    pub mean_latency_secs: Option<f64>,
    /// Requests still open.
    pub open: u64,
    /// Open requests already past their deadline.
    pub open_overdue: u64,
    /// The earliest deadline among open requests.
    pub next_deadline: Option<i64>,
}

/// What one worker run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The cursor before the run.
    pub cursor_from: u64,
    /// The cursor after it (= the ledger's length then).
    pub cursor_to: u64,
    /// Withdrawal events read: those after the earliest live model's dataset position (the gate applied the
    /// earlier ones).
    pub withdrawals: u64,
    /// New unlearning requests (one per member per live model containing them).
    pub requests_opened: u64,
    /// Retrains done, one per affected model.
    pub retrains: Vec<Retrain>,
    /// Requests closed without a retrain (their model was retired, or a newer version no longer has them).
    pub closed_without_retrain: u64,
    /// What an interrupted earlier run left and this one removed: unregistered directories, superseded versions'
    /// shard weights, stale locks.
    pub orphans_removed: Vec<String>,
    /// Requests still open after the run (waiting for their batch window).
    pub open: Vec<UnlearningRequest>,
    /// Deadline figures.
    pub figures: DeadlineFigures,
}

/// Live models of one purpose with their shard bitmaps, loaded once per run.
struct LiveSet {
    /// Per purpose: the model, its dataset's ledger position, its shard bitmaps.
    models: HashMap<String, Vec<(ModelRecord, u64, Vec<RoaringTreemap>)>>,
}

impl LiveSet {
    fn load(reg: &Registry) -> Result<LiveSet, LineageError> {
        reg.conn().transaction(false, |db| {
            let mut models: HashMap<String, Vec<(ModelRecord, u64, Vec<RoaringTreemap>)>> = HashMap::new();
            for m in list_models(db, None, Some(ModelStatus::Live))? {
                let bitmaps = shard_bitmaps(db, &m.id)?;
                let position = get_dataset(db, &m.dataset)?
                    .ok_or_else(|| LineageError::Corrupt(format!("dataset {} of model {} vanished", m.dataset, m.id)))?
                    .ledger_position;
                models.entry(m.purpose.clone()).or_default().push((m, position, bitmaps));
            }
            Ok(LiveSet { models })
        })
    }

    /// Live models of `purpose` whose shard bitmap holds `member` and whose dataset was gated before event
    /// `seq` (an earlier withdrawal was already applied by the gate).
    fn containing(&self, purpose: &str, member: u64, seq: u64) -> Vec<&ModelRecord> {
        let Some(list) = self.models.get(purpose) else { return Vec::new() };
        list.iter().filter(|(m, position, b)| seq > *position && holds(m, b, member)).map(|(m, _, _)| m).collect()
    }
}

/// True when `member` is in its shard of `model`, whose shard bitmaps are `bitmaps`.
fn holds(model: &ModelRecord, bitmaps: &[RoaringTreemap], member: u64) -> bool {
    model.shard_function.shard_of(member).and_then(|s| bitmaps.get(s as usize)).is_some_and(|b| b.contains(member))
}

/// The withdrawals at ledger positions `from + 1 ..= to` and the request each opens per live model containing the
/// member (what intake records; read only).
fn requests_between(
    reg: &Registry,
    from: u64,
    to: u64,
    deadline_secs: i64,
) -> Result<(Vec<Event>, Vec<UnlearningRequest>), LineageError> {
    // A withdrawal at or before a live model's dataset position was applied by the gate: only later events can open
    // a request, so the scan starts after the earliest such position (a first pass over a long log reads only the
    // events since the models' datasets were gated, not the whole history).
    let earliest = reg.conn().transaction(false, |db| {
        let mut earliest: Option<u64> = None;
        for m in list_models(db, None, Some(ModelStatus::Live))? {
            if let Some(d) = get_dataset(db, &m.dataset)? {
                earliest = Some(earliest.map_or(d.ledger_position, |e| e.min(d.ledger_position)));
            }
        }
        Ok(earliest)
    })?;
    let Some(earliest) = earliest else { return Ok((Vec::new(), Vec::new())) };
    let mut withdrawals = Vec::new();
    if from.max(earliest) < to {
        reg.store().scan(from.max(earliest) + 1, to, &mut |s| {
            if s.event.body.action == Action::Withdraw {
                withdrawals.push(s.event);
            }
            Ok(())
        })?;
    }
    // The live models and their bitmaps are loaded only when there is a withdrawal to match against them.
    let mut requests = Vec::new();
    if !withdrawals.is_empty() {
        let live = LiveSet::load(reg)?;
        for e in &withdrawals {
            for m in live.containing(&e.body.purpose, e.body.member_id, e.seq) {
                requests.push(UnlearningRequest::pending(
                    e.body.member_id,
                    &e.body.purpose,
                    e.seq,
                    &m.id,
                    e.body.event_time,
                    deadline_secs,
                ));
            }
        }
    }
    Ok((withdrawals, requests))
}

/// The requests the next intake will open: withdrawals past the cursor that hit a live model, with the deadlines
/// intake will give them. Writes nothing, so a dashboard shows a withdrawal in the queue the moment it is made.
pub fn awaiting_intake(reg: &Registry, opts: &WorkerOptions) -> Result<Vec<UnlearningRequest>, LineageError> {
    let len = reg.store().len()?;
    let cursor = reg.cursor(&opts.cursor)?;
    if cursor >= len {
        return Ok(Vec::new());
    }
    Ok(requests_between(reg, cursor, len, opts.deadline_secs)?.1)
}

/// Reads the ledger past the cursor and records one request per (withdrawal, live model containing the
/// member), advancing the cursor in the same transaction.
fn intake(reg: &Registry, opts: &WorkerOptions, report: &mut WorkerReport) -> Result<(), LineageError> {
    let store = reg.store();
    let len = store.len()?;
    let cursor = reg.cursor(&opts.cursor)?;
    report.cursor_from = cursor;
    report.cursor_to = cursor;
    if cursor > len {
        return Err(LineageError::CursorAhead { name: opts.cursor.clone(), cursor, ledger: len });
    }
    if cursor == len {
        return Ok(());
    }
    let (withdrawals, requests) = requests_between(reg, cursor, len, opts.deadline_secs)?;
    let name = opts.cursor.clone();
    let opened = reg.conn().transaction(true, |db| {
        let now_at = get_cursor(db, &name)?;
        if now_at != cursor {
            return Err(LineageError::Conflict(format!(
                "cursor `{name}` moved from {cursor} to {now_at} while this worker read the ledger (another worker \
                 is running?)"
            )));
        }
        let mut opened = 0u64;
        for r in &requests {
            if insert_request(db, r)? {
                opened += 1;
            }
        }
        db.exec(
            "INSERT INTO registry_cursors (name, seq) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
            &[P::T(&name), P::I(to_i64(len, "cursor")?)],
        )?;
        Ok(opened)
    })?;
    report.cursor_to = len;
    report.withdrawals = withdrawals.len() as u64;
    report.requests_opened = opened;
    Ok(())
}

/// Settles requests whose model is no longer live: closed if no live version contains the member, moved to
/// the live successor otherwise. Returns how many were closed.
fn settle_stale(reg: &Registry, model: &ModelRecord, at: i64) -> Result<u64, LineageError> {
    reg.conn().transaction(true, |db| {
        let live = live_successor(db, &model.id)?;
        let bitmaps = match &live {
            Some(m) => shard_bitmaps(db, &m.id)?,
            None => Vec::new(),
        };
        let to = live.as_ref().map(|m| m.id.as_str());
        let closed =
            hand_over(db, &model.id, to, at, |member| live.as_ref().is_some_and(|m| holds(m, &bitmaps, member)))?;
        Ok(closed.len() as u64)
    })
}

/// The last component of a model directory (`model` when it has none, as `write_model_dir` names it).
fn dir_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
}

/// True when process `pid` exists and is not this one (whose leftovers are its own to replace).
fn other_process_alive(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

/// `models/job-recs` → `models/job-recs.v2`; `models/job-recs.v2` → `models/job-recs.v3`.
fn next_dir(old: &Path, version: u64) -> PathBuf {
    let name = dir_name(old);
    let stem = match name.rsplit_once(".v") {
        Some((s, v)) if !s.is_empty() && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => s.to_string(),
        _ => name,
    };
    old.with_file_name(format!("{stem}.v{version}"))
}

/// Removes what an interrupted run left at `target`: the unregistered directory itself, and temporary
/// directories `write_model_dir` makes beside it for processes that no longer exist.
fn clean_orphans(reg: &Registry, target: &Path, removed: &mut Vec<String>) -> Result<(), LineageError> {
    let target_s = target.display().to_string();
    if target.exists() {
        let registered = reg.conn().transaction(false, |db| {
            Ok(!db.query("SELECT id FROM registry_models WHERE dir = $1", &[P::T(&target_s)])?.is_empty())
        })?;
        if registered {
            return Err(LineageError::Conflict(format!("{target_s} is already a registered model directory")));
        }
        std::fs::remove_dir_all(target).map_err(|e| LineageError::io(target, e))?;
        removed.push(target_s);
    }
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else { return Ok(()) };
    // The temporary directory `consentry_learn::model::write_model_dir` writes a model into: `.{name}.tmp-{pid}`.
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else { return Ok(()) };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n.strip_prefix(&prefix) else { continue };
        if !pid.parse().is_ok_and(other_process_alive) {
            let p = e.path();
            std::fs::remove_dir_all(&p).map_err(|err| LineageError::io(&p, err))?;
            removed.push(p.display().to_string());
        }
    }
    Ok(())
}

/// A lock file beside the model directories (`.job-recs.v2.lock`, holding the owner's pid), so two workers never
/// build the same next version; one left by a killed worker (its pid gone) is taken over.
struct DirLock {
    path: PathBuf,
}

/// The lock file that guards building `target`: `.NAME.lock` beside it.
pub(crate) fn lock_path(target: &Path) -> PathBuf {
    target.with_file_name(format!(".{}.lock", dir_name(target)))
}

/// Removes the lock file guarding `target` when its holder is gone (a worker killed after its swap leaves one
/// beside the version it built); a lock held by a live process stays. True when one was removed.
pub(crate) fn remove_stale_lock(target: &Path) -> Result<bool, LineageError> {
    let path = lock_path(target);
    let held = held_locks();
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(false) };
    if text.trim().parse::<u32>().is_ok_and(|pid| owner_alive(&held, &path, pid)) {
        return Ok(false);
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(LineageError::io(&path, e)),
    }
}

/// The lock files this process holds. A lock file naming this process's pid is held by another of its threads
/// (two unlearning passes at once in one `serve`: the job endpoint called twice) when listed here, and was left by
/// an earlier process that had the same pid (a container's pid 1, killed and restarted) when not.
static HELD: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<PathBuf>>> =
    std::sync::LazyLock::new(Default::default);

fn held_locks() -> std::sync::MutexGuard<'static, std::collections::HashSet<PathBuf>> {
    // A panic while holding the set leaves it as it was: still the truth about the files.
    HELD.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the lock at `path`, naming `pid`, is held by a live worker.
fn owner_alive(held: &std::collections::HashSet<PathBuf>, path: &Path, pid: u32) -> bool {
    if pid == std::process::id() { held.contains(path) } else { other_process_alive(pid) }
}

impl DirLock {
    fn acquire(target: &Path) -> Result<DirLock, LineageError> {
        let path = lock_path(target);
        let me = std::process::id();
        // Held for the whole acquisition: this process's threads take locks one at a time.
        let mut held = held_locks();
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(me.to_string().as_bytes()).map_err(|e| LineageError::io(&path, e))?;
                    held.insert(path.clone());
                    return Ok(DirLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                    if let Some(pid) = owner
                        && owner_alive(&held, &path, pid)
                    {
                        return Err(LineageError::Conflict(format!(
                            "another unlearning worker (pid {pid}) is building {}; {} is its lock",
                            target.display(),
                            path.display()
                        )));
                    }
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(LineageError::io(&path, e)),
                    }
                }
                Err(e) => return Err(LineageError::io(&path, e)),
            }
        }
        Err(LineageError::Conflict(format!("cannot take the lock {}", path.display())))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = held_locks();
        let _ = std::fs::remove_file(&self.path);
        held.remove(&self.path);
    }
}

/// Checks the live model's directory is the one registered (present, `model.json` unchanged); its directory and
/// metadata.
fn check_registered_dir(reg: &Registry, model: &ModelRecord) -> Result<(PathBuf, ModelMeta), LineageError> {
    let dir = reg.resolve(&model.dir);
    let (meta, id) = match ModelMeta::read_hashed(&dir) {
        Ok(read) => read,
        Err(e) => {
            return Err(LineageError::ModelFiles {
                message: format!(
                    "live model {} cannot be read ({}): restore the directory, or retire the model",
                    short(&model.id),
                    model_problem(e)
                ),
                dir,
            });
        }
    };
    if id != model.id {
        return Err(LineageError::ModelFiles {
            dir,
            message: format!(
                "{MODEL_FILE} was altered since model {} was registered: restore it, or retire the model",
                short(&model.id)
            ),
        });
    }
    // Nothing is built on (and signed over) a version the ledger's key did not register, or whose files are not
    // the registered ones: a successor would launder planted shards into a signed record.
    let bad = reg.check_model_files(model)?;
    if !bad.is_empty() {
        let list: Vec<String> = bad.iter().map(|m| m.to_string()).collect();
        return Err(LineageError::ModelFiles {
            dir,
            message: format!(
                "live model {} differs from what was registered ({}): restore the registered files, or retire the \
                 model",
                short(&model.id),
                list.join("; ")
            ),
        });
    }
    Ok((dir, meta))
}

/// Retrains one live model without the members of `batch` and swaps the new version in.
fn retrain(
    reg: &Registry,
    model: &ModelRecord,
    batch: &[UnlearningRequest],
    opts: &WorkerOptions,
    orphans: &mut Vec<String>,
) -> Result<Retrain, LineageError> {
    let started = Instant::now();
    let (old_dir, old_meta) = check_registered_dir(reg, model)?;
    let dataset = reg.dataset(&model.dataset)?;
    reg.verify_dataset(&dataset)?;
    let mut remove = RoaringTreemap::new();
    for r in batch {
        remove.insert(r.member);
    }
    let version = model.version + 1;
    let new_dir = next_dir(&old_dir, version);
    let _lock = DirLock::acquire(&new_dir)?;
    if reg.model(&model.id)?.status != ModelStatus::Live {
        return Err(LineageError::Conflict(format!(
            "model {} was superseded by another worker meanwhile; run again",
            short(&model.id)
        )));
    }
    clean_orphans(reg, &new_dir, orphans)?;
    let report = consentry_learn::train::unlearn(
        &old_dir,
        &reg.resolve(&dataset.dir),
        &remove,
        &new_dir,
        opts.threads,
        &|_| {},
    )?;
    let swap = (|| {
        fail::fail_point!("unlearn::swap::before_commit", |a| Err(LineageError::io(
            &new_dir,
            consentry_files::fault::injected(a)
        )));
        let checked: CheckedModel = check_model_dir(&new_dir)?;
        for (i, (_, b)) in checked.bitmaps.iter().enumerate() {
            let left = b & &remove;
            if let Some(m) = left.min() {
                return Err(LineageError::Corrupt(format!(
                    "unlearning left member {m} in shard {i} of {}; the new version was not registered",
                    new_dir.display()
                )));
            }
        }
        let members: Vec<u64> = remove.iter().collect();
        let mut events: Vec<u64> = batch.iter().map(|r| r.event_seq).collect();
        events.sort_unstable();
        events.dedup();
        let cause = serde_json::json!({
            "kind": "unlearning", "previous": model.id, "events": events, "members": members,
            "retrained_shards": report.retrained,
        });
        let started_at = opts.clock() - started.elapsed().as_secs() as i64;
        reg.conn().transaction(true, |db| {
            let at = opts.clock();
            match get_model(db, &model.id)? {
                Some(m) if m.status == ModelStatus::Live => {}
                _ => {
                    return Err(LineageError::Conflict(format!(
                        "model {} stopped being live during its retrain",
                        short(&model.id)
                    )));
                }
            }
            mark_status(db, &model.id, ModelStatus::Superseded, at)?;
            let rec = reg.live_record(&checked, &model.dataset, version, Some(model.id.clone()), Some(cause.clone()));
            reg.insert_model(db, &rec, &checked, at)?;
            // The new version rests on the same grants, minus those of the members taken out.
            let kept: Vec<(u64, u64)> = db
                .query("SELECT event_seq, member FROM registry_model_events WHERE model_id = $1", &[P::T(&model.id)])?
                .iter()
                .map(|r| Ok((r.u64(0)?, r.u64(1)?)))
                .collect::<Result<Vec<_>, LineageError>>()?
                .into_iter()
                .filter(|(_, m)| !remove.contains(*m))
                .collect();
            insert_events(db, &rec.id, &kept)?;
            insert_run(
                db,
                &RunRecord {
                    model: rec.id.clone(),
                    started: started_at,
                    finished: at,
                    shards_trained: report.retrained.clone(),
                    seconds: report.seconds,
                    cause: Some(cause.clone()),
                },
            )?;
            // The batch's requests are done (the new version excludes their members); requests that arrived
            // during the retrain move to the new version, which still holds their members.
            let completed = hand_over(db, &model.id, Some(&rec.id), at, |member| !checked.excluded.contains(member))?;
            // The completion notice (`unlearning.completed`) commits with the swap: never one without the other.
            let notice = serde_json::json!({
                "members": members,
                "model_kind": rec.kind,
                "purpose": rec.purpose,
                "model": rec.id,
                "version": version,
                "shards": report.retrained,
                "completed_at": at,
                "withdrawals": events,
            });
            db.outbox_push(consentry_ledger::outbox::UNLEARNING_COMPLETED, &notice.to_string(), at)?;
            let missed = completed.iter().filter(|s| **s == RequestStatus::Missed).count() as u64;
            Ok(Retrain {
                old_model: model.id.clone(),
                new_model: rec.id.clone(),
                new_dir: rec.dir.clone(),
                version,
                kind: rec.kind.clone(),
                purpose: rec.purpose.clone(),
                members: members.clone(),
                events: events.clone(),
                shards: report.retrained.clone(),
                shards_total: model.shard_function.shards,
                seconds: started.elapsed().as_secs_f64(),
                completed_at: at,
                missed,
            })
        })
    })();
    if swap.is_ok() {
        consentry_files::crash_point("unlearn::swap::after_commit");
    }
    match &swap {
        // Not registered: the old version stays live; the directory would only be an orphan.
        Err(_) => {
            let _ = std::fs::remove_dir_all(&new_dir);
        }
        Ok(_) => discard_superseded_weights(&old_dir, &old_meta),
    }
    swap
}

/// Retrains the due models side by side, up to as many at once as there are training threads (at least two): the
/// models' deadlines run together, so one model's retrain must not wait for another's (a withdrawal wave that
/// touches every model is removed from all of them in about the time of the slowest, not the sum). Retrains come
/// back in the order of `due`; each commits on its own, so an error in one leaves the others done (and reported
/// by the next pass), and the first error is returned.
fn retrain_all(
    reg: &Registry,
    due: &[(ModelRecord, Vec<UnlearningRequest>)],
    opts: &WorkerOptions,
    orphans: &mut Vec<String>,
) -> Result<Vec<Retrain>, LineageError> {
    let workers = consentry_learn::ials::resolve_threads(opts.threads).max(2).min(due.len());
    if workers <= 1 {
        return due.iter().map(|(model, batch)| retrain(reg, model, batch, opts, orphans)).collect();
    }
    let results = consentry_learn::ials::par_map(due.len(), workers, |i| {
        let (model, batch) = &due[i];
        let mut removed = Vec::new();
        (retrain(reg, model, batch, opts, &mut removed), removed)
    });
    let mut done = Vec::with_capacity(due.len());
    let mut first_error = None;
    for (r, removed) in results {
        orphans.extend(removed);
        match r {
            Ok(r) => done.push(r),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// Deletes the shard weights of the superseded version: they hold the removed members' data (and, for a DP
/// model, share their noise with the new version, so both together would reveal the removed members' clipped
/// contribution). `model.json` and the member bitmaps stay for lineage and audit. A failure leaves the files (the
/// audit still sees them) and is not fatal: the swap has happened.
fn discard_superseded_weights(old_dir: &Path, meta: &ModelMeta) {
    for s in &meta.shards {
        let _ = std::fs::remove_file(old_dir.join(&s.file));
    }
}

/// Computes the deadline figures over every request in the registry: the completed side in one aggregate query,
/// the open side from `open` (the open requests, as reported), so the two parts of the report agree.
fn figures(
    reg: &Registry,
    deadline_secs: i64,
    open: &[UnlearningRequest],
    at: i64,
) -> Result<DeadlineFigures, LineageError> {
    let (completed, within_deadline, missed, max_latency, total_latency) = reg.conn().transaction(false, |db| {
        let rows = db.query(
            "SELECT COUNT(completed_at), \
             COALESCE(SUM(CASE WHEN completed_at IS NOT NULL AND status = 'done' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'missed' THEN 1 ELSE 0 END), 0), \
             MAX(completed_at - requested_at), \
             CAST(COALESCE(SUM(completed_at - requested_at), 0) AS BIGINT) \
             FROM registry_unlearning",
            &[],
        )?;
        let r = rows.first().ok_or_else(|| LineageError::Corrupt("an aggregate query returned no row".into()))?;
        Ok((r.u64(0)?, r.u64(1)?, r.u64(2)?, r.opt_i64(3)?, r.i64(4)?))
    })?;
    Ok(DeadlineFigures {
        deadline_secs,
        completed,
        within_deadline,
        missed,
        max_latency_secs: max_latency,
        mean_latency_secs: (completed > 0).then(|| total_latency as f64 / completed as f64),
        open: open.len() as u64,
        open_overdue: open.iter().filter(|r| r.deadline < at).count() as u64,
        next_deadline: open.iter().map(|r| r.deadline).min(),
    })
}

/// The first half of a pass, without any retrain: verify the log, turn new withdrawals into requests (due
/// `opts.deadline_secs` after each withdrawal) and report the queue. A front end calls it to start unlearning at
/// once (an erasure) and leaves the retrains to the next [`run_once`].
pub fn queue(reg: &Registry, log: &Ledger, opts: &WorkerOptions) -> Result<WorkerReport, LineageError> {
    log.verify_through()?;
    reg.require_positions_within_log()?;
    let mut report = WorkerReport::default();
    intake(reg, opts, &mut report)?;
    report.open = reg.open_requests()?;
    report.figures = figures(reg, opts.deadline_secs, &report.open, opts.clock())?;
    Ok(report)
}

/// One pass: verify the log it follows (`log`, the ledger over the registry's store), read new ledger events into
/// requests, mark overdue requests `missed`, retrain every model whose
/// batch is due (one retrain per model), and report the deadline figures.
pub fn run_once(reg: &Registry, log: &Ledger, opts: &WorkerOptions) -> Result<WorkerReport, LineageError> {
    // The events the pass follows must be the ones the signed chain vouches for: a withdrawal turned into a grant
    // in the database would otherwise never be unlearned. Incremental: a process checks each entry once.
    log.verify_through()?;
    // The figures are computed once the pass is done.
    let mut report = WorkerReport::default();
    // A registry citing positions the log no longer has means the log was rolled back: following it would skip
    // the withdrawals that refill those positions.
    reg.require_positions_within_log()?;
    // What a worker killed after its swap left: superseded weights and its lock.
    report.orphans_removed.extend(reg.finish_interrupted()?);
    intake(reg, opts, &mut report)?;
    let at = opts.clock();
    reg.conn().transaction(true, |db| {
        db.exec(
            "UPDATE registry_unlearning SET status = 'missed' WHERE status = 'pending' AND completed_at IS NULL \
             AND deadline < $1",
            &[P::I(at)],
        )
    })?;
    // A second round only when the first moved requests from a stale version to its live successor.
    for _round in 0..2 {
        let mut moved = false;
        let mut due = Vec::new();
        for (model_id, batch) in by_model(reg.open_requests()?) {
            let model = reg.model(&model_id)?;
            if model.status != ModelStatus::Live {
                let before = batch.len() as u64;
                let closed = settle_stale(reg, &model, opts.clock())?;
                report.closed_without_retrain += closed;
                moved |= closed < before;
                continue;
            }
            let oldest = batch.iter().map(|r| r.requested_at).min().unwrap_or(at);
            // `<=`: a request at its deadline cannot wait for the window without missing it.
            let overdue = batch.iter().any(|r| r.status == RequestStatus::Missed || r.deadline <= at);
            if opts.batch_window_secs > 0 && !overdue && oldest > at - opts.batch_window_secs {
                continue;
            }
            due.push((model, batch));
        }
        report.retrains.extend(retrain_all(reg, &due, opts, &mut report.orphans_removed)?);
        if !moved {
            break;
        }
    }
    report.open = reg.open_requests()?;
    report.figures = figures(reg, opts.deadline_secs, &report.open, opts.clock())?;
    Ok(report)
}

/// Runs [`run_once`] every `interval` until `stop` is set (checked at least every 100 ms) or `max_polls`
/// passes were made; `on_report` hears each pass. Returns the number of passes.
pub fn watch(
    reg: &Registry,
    log: &Ledger,
    opts: &WorkerOptions,
    interval: Duration,
    stop: &AtomicBool,
    max_polls: Option<u64>,
    on_report: &mut dyn FnMut(&WorkerReport),
) -> Result<u64, LineageError> {
    let mut polls = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let report = run_once(reg, log, opts)?;
        polls += 1;
        on_report(&report);
        if max_polls.is_some_and(|m| polls >= m) {
            break;
        }
        let until = Instant::now() + interval;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())));
        }
    }
    Ok(polls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_versions_sit_beside_the_first() {
        assert_eq!(next_dir(Path::new("/m/job-recs"), 2), PathBuf::from("/m/job-recs.v2"));
        assert_eq!(next_dir(Path::new("/m/job-recs.v2"), 3), PathBuf::from("/m/job-recs.v3"));
        assert_eq!(next_dir(Path::new("/m/a.vx"), 2), PathBuf::from("/m/a.vx.v2"));
        assert_eq!(next_dir(Path::new("/m/.v7"), 8), PathBuf::from("/m/.v7.v8"));
    }

    #[test]
    fn a_live_owner_keeps_the_lock_and_a_dead_one_loses_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("job-recs.v2");
        let lock = dir.path().join(".job-recs.v2.lock");
        // pid 1 always exists.
        std::fs::write(&lock, "1").unwrap();
        assert!(matches!(DirLock::acquire(&target), Err(LineageError::Conflict(_))));
        // A pid that cannot exist (above the kernel's maximum) is a dead owner.
        std::fs::write(&lock, "4294967295").unwrap();
        let held = DirLock::acquire(&target).unwrap();
        assert_eq!(std::fs::read_to_string(&lock).unwrap(), std::process::id().to_string());
        drop(held);
        assert!(!lock.exists());
    }

    /// Two unlearning passes at once in one process (the service's job endpoint called twice) must not both
    /// build the same next version: the lock naming this process's own pid was taken for a dead owner's, so the
    /// second pass removed it and built (and cleaned) the same directory as the first.
    #[test]
    fn a_second_thread_of_the_same_process_does_not_take_a_held_lock() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("job-recs.v2");
        let lock = dir.path().join(".job-recs.v2.lock");
        let held = DirLock::acquire(&target).unwrap();
        let second = std::thread::scope(|s| s.spawn(|| DirLock::acquire(&target).map(|_| ())).join().unwrap());
        assert!(matches!(second, Err(LineageError::Conflict(_))), "{second:?}");
        // Nor does the stale-lock sweep remove it.
        assert!(!remove_stale_lock(&target).unwrap());
        assert!(lock.exists());
        drop(held);
        assert!(!lock.exists());
        // A lock naming this pid that this process does not hold was left by an earlier process with the same
        // pid (a restarted container's pid 1): taken over, and swept.
        std::fs::write(&lock, std::process::id().to_string()).unwrap();
        assert!(remove_stale_lock(&target).unwrap());
        std::fs::write(&lock, std::process::id().to_string()).unwrap();
        drop(DirLock::acquire(&target).unwrap());
        assert!(!lock.exists());
    }
}
