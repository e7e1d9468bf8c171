//! The demo pipeline: policy, synthetic network, ledger, snapshots, gate, training, withdrawals, unlearning and
//! audit, in one data directory, telling the front end each step as it happens.

use crate::datadir::DataDir;
use crate::error::{AppError, Context as _, ErrorKind, Result};
use crate::ledger::ImportReport;
use crate::progress::Progress;
use crate::session::Session;
use crate::synth::Generated;
use consentry_gate::materialize::GateOptions;
use consentry_learn::LearnError;
use consentry_learn::model::ModelMeta;
use consentry_learn::train::{ModelKind, TrainOptions};
use consentry_ledger::NewEvent;
use consentry_ledger::SignedTreeHead;
use consentry_ledger::snapshot::{Snapshot, SnapshotCounts};
use consentry_policy::{Action, Policy, Source};
use consentry_replies::ReplyError;
use consentry_synth::SynthConfig;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the demo is asked to do.
#[derive(Debug, Clone)]
pub struct DemoRequest {
    /// Synthetic members.
    pub members: u64,
    /// Seed of every random stream.
    pub seed: u64,
    /// Seconds from a withdrawal to "no live model contains the member".
    pub deadline: i64,
}

/// Everything the demo did.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// The data directory.
    pub data_dir: String,
    /// The policy in force.
    pub policy: PolicyInfo,
    /// The synthetic network.
    pub network: consentry_synth::SynthSummary,
    /// The ledger after the import.
    pub ledger: LedgerInfo,
    /// Effective consent per purpose on the network's day.
    pub consent: Vec<SnapshotCounts>,
    /// The gated datasets.
    pub datasets: Vec<DatasetInfo>,
    /// The trained models.
    pub models: Vec<ModelMeta>,
    /// The withdrawals the demo made.
    pub withdrawals: Vec<Withdrawal>,
    /// The unlearning pass.
    pub unlearning: consentry_lineage::WorkerReport,
    /// The audit.
    pub audit: consentry_audit::Report,
    /// The privacy officer's report the demo wrote (`DATA/report.html`).
    pub report: String,
    /// Its size in bytes.
    pub report_bytes: u64,
    /// What each stage cost, in order; together they cover the whole run.
    pub stages: Vec<StageCost>,
}

/// What one stage of the demo cost, so a run at scale shows where the time and the memory go.
#[derive(Debug, Clone, Serialize)]
pub struct StageCost {
    /// The stage, e.g. `ledger import` or `gate job_recommendations`.
    pub name: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The process's peak resident memory during the stage, in bytes (Linux's `VmHWM`, reset as the stage
    /// begins); `None` where the kernel cannot reset or report it.
    pub peak_rss_bytes: Option<u64>,
}

/// Times the demo's stages one after another: beginning a stage ends the previous one.
#[derive(Default)]
struct StageClock {
    /// The stages already ended.
    done: Vec<StageCost>,
    /// The stage under way: its name, its start, and whether the high-water mark was reset at its start.
    current: Option<(String, Instant, bool)>,
}

impl StageClock {
    /// Ends the stage under way, if any, and begins `name`.
    fn begin(&mut self, name: impl Into<String>) {
        self.end();
        let reset = reset_peak_rss();
        self.current = Some((name.into(), Instant::now(), reset));
    }

    /// Ends the stage under way, if any.
    fn end(&mut self) {
        if let Some((name, start, reset)) = self.current.take() {
            let seconds = start.elapsed().as_secs_f64();
            // Without a reset the mark would be an earlier stage's peak: reported as unknown rather than wrong.
            let peak_rss_bytes = if reset { peak_rss() } else { None };
            self.done.push(StageCost { name, seconds, peak_rss_bytes });
        }
    }

    /// Every stage, the one under way ended.
    fn finish(mut self) -> Vec<StageCost> {
        self.end();
        self.done
    }
}

/// Resets the kernel's high-water mark of this process's resident memory to its current size, so `peak_rss`
/// reports the peak since now; false where that is not possible (not Linux, `/proc` hidden or read-only).
fn reset_peak_rss() -> bool {
    cfg!(target_os = "linux") && std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak resident memory of this process since it started or since the last `reset_peak_rss`, in bytes
/// (`VmHWM` of `/proc/self/status`); `None` where the kernel does not report it.
fn peak_rss() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// A withdrawal the demo made.
#[derive(Debug, Clone, Serialize)]
pub struct Withdrawal {
    /// The member.
    pub member: u64,
    /// The purpose withdrawn.
    pub purpose: String,
    /// `ui`, `gpc` or `erasure`.
    pub source: &'static str,
    /// Its ledger sequence number.
    pub seq: u64,
}

/// A dataset the demo gated.
#[derive(Debug, Serialize)]
pub struct DatasetInfo {
    /// Purpose key.
    pub purpose: String,
    /// Its directory.
    pub dir: String,
    /// Seconds to materialise.
    pub seconds: f64,
    /// Its manifest.
    pub manifest: consentry_gate::Manifest,
}

/// The policy in force, in brief.
#[derive(Debug, Serialize)]
pub struct PolicyInfo {
    /// Its version.
    pub version: String,
    /// BLAKE3 of its canonical form.
    pub hash: String,
    /// How many purposes it declares.
    pub purposes: usize,
}

/// The ledger after the import, in brief.
#[derive(Debug, Serialize)]
pub struct LedgerInfo {
    /// `sqlite`.
    pub backend: &'static str,
    /// Entries in the log.
    pub events: u64,
    /// The checkpoint's Merkle root, hex.
    pub checkpoint_root: String,
    /// The ledger's public key, hex.
    pub public_key: String,
    /// What the import did.
    pub import: ImportReport,
}

/// One step of the demo, as it happens, for the front end to show.
#[non_exhaustive]
pub enum DemoStep<'a> {
    /// Stage 1: the policy in force.
    Policy {
        /// Its file.
        file: &'a Path,
        /// The policy.
        policy: &'a Policy,
    },
    /// Stage 2 begins.
    NetworkStart {
        /// Members to generate.
        members: u64,
        /// Seed.
        seed: u64,
    },
    /// Stage 2: the network was generated.
    Network {
        /// What was written.
        generated: &'a Generated,
        /// Where.
        out: &'a Path,
    },
    /// Stage 3 begins.
    LedgerStart,
    /// Stage 3: the network's members and choices are in the ledger.
    Imported(&'a ImportReport),
    /// Stage 3: checkpoint signed and the ledger verified.
    LedgerReady(&'a SignedTreeHead),
    /// Stage 4: effective consent on the network's day.
    Consent {
        /// The day.
        as_of: chrono::NaiveDate,
        /// Counts per purpose.
        consent: &'a [SnapshotCounts],
    },
    /// Stage 5 begins.
    GateStart,
    /// Stage 5: every purpose's dataset.
    Datasets(&'a [DatasetInfo]),
    /// Stage 6 begins.
    TrainStart,
    /// Stage 6: one model trained and registered.
    Trained {
        /// Its metadata.
        meta: &'a ModelMeta,
        /// Its directory.
        out: &'a Path,
    },
    /// Stage 6: a model could not be trained on this network (too small), and why.
    NotTrained {
        /// The reason, with what to do.
        reason: String,
    },
    /// Stage 7: the withdrawals made.
    Withdrawals(&'a [Withdrawal]),
    /// Stage 7: unlearning begins.
    UnlearnStart {
        /// The deadline in seconds.
        deadline: i64,
    },
    /// Stage 7: the unlearning pass.
    Unlearned(&'a consentry_lineage::WorkerReport),
    /// Stage 8 begins.
    AuditStart,
    /// Stage 8: the audit's report.
    Audited(&'a consentry_audit::Report),
}

/// Removes a previous demo's ledger, refusing to touch a ledger the demo did not make.
fn fresh_ledger(dir: &DataDir) -> Result<()> {
    let marker = dir.demo_marker();
    if dir.ledger_db().exists() && !marker.exists() {
        return Err(AppError::new(
            ErrorKind::Conflict,
            format!("{} holds a ledger the demo did not create; pass another --data directory", dir.root().display()),
        ));
    }
    for p in dir.ledger_db_files() {
        if p.exists() {
            std::fs::remove_file(&p)
                .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e))
                .with_context(|| format!("removing the previous demo's {}", p.display()))?;
        }
    }
    std::fs::write(&marker, "made by `consentry demo`; the demo may replace this directory's ledger\n")
        .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e))
        .with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

/// Removes what a previous demo left in `path`.
fn clear(path: &Path) -> Result<()> {
    if path.exists() {
        std::fs::remove_dir_all(path)
            .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e))
            .with_context(|| format!("removing the previous demo's {}", path.display()))?;
    }
    Ok(())
}

/// Turns the privacy officer's report into the file the demo writes (the front end's renderer: the application
/// layer draws nothing).
pub type RenderReport<'a> = &'a dyn Fn(&crate::report::Report) -> String;

/// Runs the whole pipeline in `dir` on the embedded SQLite ledger; `on_step` hears each step, `progress` the long
/// work; the last stage writes the privacy officer's report (with the demo's own audit) through `render`. Fails
/// when the demo's own audit finds a violation.
pub fn run(
    dir: &DataDir,
    database: Option<&str>,
    req: &DemoRequest,
    progress: &dyn Progress,
    on_step: &mut dyn FnMut(DemoStep<'_>),
    render: RenderReport<'_>,
) -> Result<DemoReport> {
    let mut clock = StageClock::default();
    clock.begin("policy");
    dir.init()?;
    let policy = dir.load_policy(None)?;
    on_step(DemoStep::Policy { file: &dir.policy_file(), policy: &policy });

    clock.begin("synthesis");
    on_step(DemoStep::NetworkStart { members: req.members, seed: req.seed });
    let out = dir.network_dir();
    let cfg = SynthConfig { members: req.members, seed: req.seed, as_of: SynthConfig::default_as_of() };
    let generated = dir.generate_network(&cfg, None, &out, progress)?;
    on_step(DemoStep::Network { generated: &generated, out: &out });
    let network = generated.summary;

    clock.begin("ledger import");
    on_step(DemoStep::LedgerStart);
    if database.is_some() {
        return Err(AppError::bad_input("the demo runs on the embedded SQLite ledger; drop --database"));
    }
    fresh_ledger(dir)?;
    let session = Session::open(dir.clone(), None)?;
    session.init_ledger()?;
    let import =
        session.import(&out.join("members.parquet"), &out.join("consent_choices.parquet"), 50_000, progress)?;
    on_step(DemoStep::Imported(&import));
    clock.begin("ledger checkpoint + verify");
    let ledger = session.ledger()?;
    let sth = ledger.checkpoint()?;
    let verification = ledger.verify()?;
    if !verification.ok() {
        return Err(AppError::new(
            ErrorKind::Integrity,
            format!("the fresh ledger does not verify: {}", verification.problems.join("; ")),
        ));
    }
    on_step(DemoStep::LedgerReady(&sth));

    clock.begin("snapshots");
    let at = network.config.as_of_timestamp();
    let purposes: Vec<_> = policy.purpose_ids().collect();
    let snaps = ledger.snapshots(&purposes, sth.head.tree_size, at)?;
    let consent: Vec<SnapshotCounts> = snaps.iter().map(Snapshot::counts).collect();
    on_step(DemoStep::Consent { as_of: network.config.as_of, consent: &consent });

    clock.begin("gate sources");
    on_step(DemoStep::GateStart);
    let loaded = dir.load_sources(None, None)?;
    clear(&dir.datasets_dir())?;
    let mut datasets = Vec::new();
    for snap in &snaps {
        let out = dir.dataset_dir(snap.purpose_key());
        clock.begin(format!("gate {}", out.file_name().and_then(|n| n.to_str()).unwrap_or(snap.purpose_key())));
        // The shard function sized for the demo's deadline (the shard rule): the models train on it.
        let shards = crate::gate::shards_for_deadline(snap, req.deadline);
        let options = GateOptions { shards, ..GateOptions::default() };
        let (manifest, seconds) = session.materialize(&loaded, snap, &out, options, progress)?;
        session.register_gated(&manifest, &out)?;
        datasets.push(DatasetInfo {
            purpose: manifest.purpose.clone(),
            dir: out.display().to_string(),
            seconds,
            manifest,
        });
    }
    on_step(DemoStep::Datasets(&datasets));

    clock.begin("train setup");
    on_step(DemoStep::TrainStart);
    clear(&dir.models_dir())?;
    let reg = session.registry()?;
    let mut models = Vec::new();
    for kind in [ModelKind::JobRecs, ModelKind::Content, ModelKind::Replies] {
        clock.begin(format!("train {}", kind.name()));
        let out = dir.model_dir(kind.name());
        let opts = TrainOptions::new(kind);
        let r = match crate::train::train_model_with_oracle(
            &dir.dataset_dir(kind.purpose()),
            &out,
            &opts,
            &cfg,
            progress,
        ) {
            Ok(r) => r,
            // A small network may have no reply that k members wrote: then there is nothing to suggest.
            Err(e @ LearnError::Replies(ReplyError::EmptyInventory { .. })) => {
                on_step(DemoStep::NotTrained {
                    reason: format!(
                        "replies: not trained — {e}; a larger network (e.g. --members 20000) has enough common replies"
                    ),
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        reg.register_model_dir(&out)?;
        let mut meta = r.meta;
        if kind == ModelKind::Replies {
            // The oracle and `model ÷ oracle` beside the model's own held-out figures (shown, not stored in the model).
            let dataset = dir.dataset_dir(kind.purpose());
            let joined = crate::replies_oracle::evaluate(&out, &dataset, &dir.network_dir())?;
            if let (Some(m), Some(j)) = (meta.metrics.as_object_mut(), joined.as_object()) {
                m.extend(j.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        on_step(DemoStep::Trained { meta: &meta, out: &out });
        models.push(meta);
    }
    clock.begin("withdrawals");
    let withdrawals = withdraw_sample(&session, dir)?;
    on_step(DemoStep::Withdrawals(&withdrawals));
    clock.begin("unlearning");
    on_step(DemoStep::UnlearnStart { deadline: req.deadline });
    let wopts = consentry_lineage::WorkerOptions { deadline_secs: req.deadline, ..Default::default() };
    let unlearning = consentry_lineage::run_once(reg, ledger, &wopts)?;
    on_step(DemoStep::Unlearned(&unlearning));

    clock.begin("audit");
    on_step(DemoStep::AuditStart);
    let aopts = consentry_audit::AuditOptions {
        deadline_seconds: Some(req.deadline),
        ..consentry_audit::AuditOptions::at(consentry_ledger::now())
    };
    let audit = session.audit(&aopts)?;
    on_step(DemoStep::Audited(&audit));
    // The report is written whatever the audit found: a failed audit is when the privacy officer needs it most.
    clock.begin("report");
    let report = session.report(consentry_ledger::now(), crate::report::AuditChoice::Given(Box::new(audit.clone())))?;
    let html = render(&report);
    let report_path = dir.report_file();
    consentry_files::write(&report_path, html.as_bytes(), consentry_files::OutputOptions::MEMBER_DATA)?;
    // The summary above and the audit must never disagree: a removal past its deadline is a violation the audit
    // reports (`withdrawal_removed_late`, or `withdrawal_deadline_missed` while the member is still in).
    let missed = unlearning.figures.missed;
    if audit.ok && missed > 0 {
        return Err(AppError::new(
            ErrorKind::Integrity,
            format!(
                "the unlearning pass missed {missed} deadline(s) but the audit reports none: the summary and the \
                 audit disagree"
            ),
        ));
    }
    if !audit.ok {
        return Err(AppError::new(
            ErrorKind::Integrity,
            format!(
                "the demo's own audit found {} violation(s); see above, and the report at {}",
                audit.violations,
                report_path.display()
            ),
        ));
    }
    let stages = clock.finish();
    Ok(DemoReport {
        data_dir: dir.root().display().to_string(),
        policy: PolicyInfo {
            version: policy.version.clone(),
            hash: policy.hash.clone(),
            purposes: policy.purposes.len(),
        },
        network,
        ledger: LedgerInfo {
            backend: ledger.store().backend(),
            events: sth.head.tree_size,
            checkpoint_root: hex::encode(sth.head.root_hash),
            public_key: ledger.public_key().to_hex(),
            import,
        },
        consent,
        datasets,
        models,
        withdrawals,
        unlearning,
        audit,
        report: report_path.display().to_string(),
        report_bytes: html.len() as u64,
        stages,
    })
}

/// The model directory of a kind, by the name the unlearning pass gave its live version (the demo's "next" hint).
pub fn live_model_dir(dir: &DataDir, report: &DemoReport, kind: &str) -> PathBuf {
    let name = report
        .unlearning
        .retrains
        .iter()
        .find(|r| r.kind == kind)
        .and_then(|r| Path::new(&r.new_dir).file_name().and_then(|n| n.to_str()).map(str::to_string))
        .unwrap_or_else(|| kind.to_string());
    dir.model_dir(&name)
}

/// Stage 7: a sample of the job-recommendation model's members withdraw — one by Global Privacy Control, one by
/// erasure (every purpose), the rest in the privacy centre — and one member of each other model withdraws too.
fn withdraw_sample(session: &Session, dir: &DataDir) -> Result<Vec<Withdrawal>> {
    let ledger = session.ledger()?;
    let members = |kind: ModelKind| -> Result<Vec<u64>> {
        let d = dir.model_dir(kind.name());
        if !d.exists() {
            return Ok(Vec::new());
        }
        let all = ModelMeta::read(&d).and_then(|m| m.members(&d))?;
        Ok(all.iter().collect())
    };
    let jobs = members(ModelKind::JobRecs)?;
    let content = members(ModelKind::Content)?;
    let replies = members(ModelKind::Replies)?;
    // About one in 200 job-recommendation members, at least three, spread over the id range.
    let n = (jobs.len() / 200).max(3).min(jobs.len());
    let step = (jobs.len() / n.max(1)).max(1);
    let sample: Vec<u64> = jobs.iter().copied().step_by(step).take(n).collect();
    let mut plan: Vec<(u64, ModelKind, &'static str)> = Vec::new();
    for (i, &m) in sample.iter().enumerate() {
        match i {
            0 => plan.push((m, ModelKind::JobRecs, "gpc")),
            1 => {
                for k in [ModelKind::JobRecs, ModelKind::Content, ModelKind::Replies] {
                    plan.push((m, k, "erasure"));
                }
            }
            _ => plan.push((m, ModelKind::JobRecs, "ui")),
        }
    }
    for (list, kind) in [(&content, ModelKind::Content), (&replies, ModelKind::Replies)] {
        if let Some(&m) = list.iter().find(|m| !sample.contains(m)) {
            plan.push((m, kind, "ui"));
        }
    }
    let now = consentry_ledger::now();
    let events: Vec<NewEvent> = plan
        .iter()
        .enumerate()
        .map(|(i, &(m, kind, source))| {
            let pid = session.purpose_id(kind.purpose()).context("the policy lacks a demo purpose")?;
            Ok(NewEvent {
                member_id: m,
                purpose: kind.purpose().to_string(),
                action: Action::Withdraw,
                notice_version: ledger.policy().purpose(pid).latest_notice().version,
                source: Source::parse(source).ok_or_else(|| AppError::internal("unknown event source"))?,
                actor: if source == "gpc" { "browser:sec-gpc".into() } else { format!("member:{m}") },
                event_time: now,
                idempotency_key: format!("demo-withdrawal:{now}:{i}"),
            })
        })
        .collect::<Result<_>>()?;
    let appended = ledger.append(events)?;
    // A signed tree head over the withdrawals too, so the audit can vouch for every event.
    ledger.checkpoint()?;
    Ok(plan
        .iter()
        .zip(&appended)
        .map(|(&(member, kind, source), a)| Withdrawal {
            member,
            purpose: kind.purpose().to_string(),
            source,
            seq: a.event.seq,
        })
        .collect())
}
