//! `consentry demo`: the whole pipeline, stage by stage, on a synthetic network.

use super::gate as gate_cmd;
use super::ledger::{self as ledger_cmd, DB_FILE, ledger_err};
use super::train as train_cmd;
use super::{POLICY_FILE, init_data_dir, load_policy, synth};
use crate::ui::{self, Ctx, OK, bad_input};
use anyhow::Context;
use consentry_learn::LearnError;
use consentry_learn::model::ModelMeta;
use consentry_learn::train::{ModelKind, TrainOptions};
use consentry_ledger::snapshot::{Snapshot, SnapshotCounts};
use consentry_ledger::{Ledger, NewEvent};
use consentry_policy::DenyReason;
use consentry_policy::{Action, Source};
use consentry_replies::ReplyError;
use consentry_synth::SynthConfig;
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

/// Marks a data directory as made by `demo`, so a rerun may replace its ledger.
const DEMO_MARKER: &str = ".consentry-demo";

#[derive(clap::Args)]
pub struct Args {
    /// Number of synthetic members.
    #[arg(long, default_value_t = 20_000)]
    pub members: u64,
    /// Seed of every random stream.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seconds from a withdrawal to "no live model contains the member" (the product's default is 24 h).
    #[arg(long, default_value_t = 60)]
    pub deadline: i64,
}

#[derive(Serialize)]
struct DemoReport {
    data_dir: String,
    policy: PolicyInfo,
    network: consentry_synth::SynthSummary,
    ledger: LedgerInfo,
    consent: Vec<SnapshotCounts>,
    datasets: Vec<DatasetInfo>,
    models: Vec<consentry_learn::model::ModelMeta>,
    withdrawals: Vec<Withdrawal>,
    unlearning: consentry_lineage::WorkerReport,
    audit: consentry_audit::Report,
}

/// A withdrawal the demo made.
#[derive(Serialize)]
struct Withdrawal {
    member: u64,
    purpose: String,
    source: &'static str,
    seq: u64,
}

#[derive(Serialize)]
struct DatasetInfo {
    purpose: String,
    dir: String,
    seconds: f64,
    manifest: consentry_gate::Manifest,
}

#[derive(Serialize)]
struct PolicyInfo {
    version: String,
    hash: String,
    purposes: usize,
}

#[derive(Serialize)]
struct LedgerInfo {
    backend: &'static str,
    events: u64,
    checkpoint_root: String,
    public_key: String,
    import: ledger_cmd::ImportReport,
}

/// Removes a previous demo's ledger, refusing to touch a ledger the demo did not make.
fn fresh_ledger(ctx: &Ctx) -> anyhow::Result<()> {
    let marker = ctx.data_path(DEMO_MARKER);
    let db = ctx.data_path(DB_FILE);
    if ctx.database.is_some() {
        return Err(bad_input("the demo runs on the embedded SQLite ledger; drop --database"));
    }
    if db.exists() && !marker.exists() {
        return Err(bad_input(format!(
            "{} holds a ledger the demo did not create; pass another --data directory",
            ctx.data.display()
        )));
    }
    for suffix in ["", "-wal", "-shm"] {
        let p = ctx.data_path(format!("{DB_FILE}{suffix}"));
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing the previous demo's {}", p.display()))?;
        }
    }
    std::fs::write(&marker, "made by `consentry demo`; the demo may replace this directory's ledger\n")
        .with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    init_data_dir(ctx)?;
    ctx.say(format!("Consentry demo in {}\n", ctx.data.display()));

    ctx.say(format!("[1/8] policy in force: {}", ctx.data_path(POLICY_FILE).display()));
    let policy = load_policy(ctx, None)?;
    ctx.say(format!(
        "      version {}, {} purposes, {} jurisdiction rules — valid\n",
        policy.version,
        policy.purposes.len(),
        policy.jurisdictions.len()
    ));

    ctx.say(format!("[2/8] synthetic network: {} members, seed {}", ui::thousands(args.members), args.seed));
    let out = ctx.data_path("network");
    let synth_args = synth::Args {
        members: args.members,
        seed: args.seed,
        out: Some(out.clone()),
        as_of: SynthConfig::default_as_of(),
        policy: None,
    };
    let network = synth::generate(ctx, &synth_args, &out)?;
    if ctx.human() {
        print_jurisdictions(&network);
    }

    ctx.say("[3/8] consent ledger: import, checkpoint, verify");
    fresh_ledger(ctx)?;
    ledger_cmd::init_ledger(ctx)?;
    let ledger = ledger_cmd::open(ctx)?;
    let import =
        ledger_cmd::import(ctx, &ledger, &out.join("members.parquet"), &out.join("consent_choices.parquet"), 50_000)?;
    let sth = ledger.checkpoint().map_err(ledger_err)?;
    let verification = ledger.verify().map_err(ledger_err)?;
    if !verification.ok() {
        anyhow::bail!("the fresh ledger does not verify: {}", verification.problems.join("; "));
    }
    ctx.say(format!(
        "      {} events, checkpoint root {}…, signed; `ledger verify` ok\n",
        ui::thousands(sth.head.tree_size),
        &hex(&sth.head.root_hash)[..16]
    ));

    let at = network.config.as_of_timestamp();
    ctx.say(format!("[4/8] snapshots: effective consent on {} (opt-in by default)", network.config.as_of));
    let purposes: Vec<_> = policy.purpose_ids().collect();
    let snaps = ledger.snapshots(&purposes, sth.head.tree_size, at).map_err(ledger_err)?;
    let consent: Vec<SnapshotCounts> = snaps.iter().map(Snapshot::counts).collect();
    if ctx.human() {
        print_consent(&consent);
    }

    ctx.say("\n[5/8] gate: one training set per purpose — only allowed members, only declared columns, text redacted");
    let (sources, declaration_hash) = gate_cmd::load_sources(ctx, None, None)?;
    let datasets_dir = ctx.data_path("datasets");
    if datasets_dir.exists() {
        std::fs::remove_dir_all(&datasets_dir)
            .with_context(|| format!("removing the previous demo's {}", datasets_dir.display()))?;
    }
    let mut datasets = Vec::new();
    for snap in &snaps {
        let out = datasets_dir.join(snap.purpose_key().trim_start_matches("train_ai_system."));
        let (manifest, seconds) = gate_cmd::run_gate(
            ctx,
            &ledger,
            &sources,
            declaration_hash.clone(),
            snap,
            &out,
            consentry_gate::materialize::GateOptions::default(),
        )?;
        gate_cmd::register_dataset(ctx, &manifest, &out)?;
        datasets.push(DatasetInfo {
            purpose: manifest.purpose.clone(),
            dir: out.display().to_string(),
            seconds,
            manifest,
        });
    }
    if ctx.human() {
        print_datasets(&datasets);
    }

    ctx.say("\n[6/8] train: the three AI features, one model per shard, only on the gated datasets");
    let models_dir = ctx.data_path("models");
    if models_dir.exists() {
        std::fs::remove_dir_all(&models_dir)
            .with_context(|| format!("removing the previous demo's {}", models_dir.display()))?;
    }
    let reg = super::lineage::open_registry(ctx)?;
    let mut models = Vec::new();
    for kind in [ModelKind::JobRecs, ModelKind::Content, ModelKind::Replies] {
        let out = models_dir.join(kind.name());
        let opts = TrainOptions::new(kind);
        let r = match train_cmd::train_model(ctx, &train_cmd::default_dataset(ctx, kind), &out, &opts) {
            Ok(r) => r,
            // A small network may have no reply that k members wrote: then there is nothing to suggest.
            Err(e @ LearnError::Replies(ReplyError::EmptyInventory { .. })) => {
                ctx.say(format!(
                    "replies: not trained — {e}; a larger network (e.g. --members 20000) has enough common replies"
                ));
                continue;
            }
            Err(e) => return Err(train_cmd::learn_err(e)),
        };
        reg.register_model_dir(&out).map_err(super::lineage::lineage_err)?;
        if ctx.human() {
            println!(
                "{} ({} shards, {:.1} s) → {}",
                kind.name(),
                r.meta.shards.len(),
                r.meta.train_seconds,
                out.display()
            );
            train_cmd::print_metrics(ctx, &r.meta.kind, &r.meta.metrics);
        }
        models.push(r.meta);
    }
    let withdrawals = withdraw_sample(ctx, &ledger, &models_dir)?;
    ctx.say(format!("      unlearning: retrain the affected shards, deadline {} s", args.deadline));
    let wopts = consentry_lineage::WorkerOptions { deadline_secs: args.deadline, ..Default::default() };
    let unlearning = consentry_lineage::run_once(&reg, &ledger, &wopts).map_err(super::lineage::lineage_err)?;
    if ctx.human() {
        super::unlearn::print_report(ctx, &unlearning)?;
    }

    ctx.say("\n[8/8] audit: ledger, consent of every live model's members (recomputed), deadlines, commitments, DP");
    let aopts = consentry_audit::AuditOptions {
        deadline_seconds: Some(args.deadline),
        ..consentry_audit::AuditOptions::at(chrono::Utc::now().timestamp())
    };
    let audit = super::audit::online(ctx, &ledger, &aopts)?;
    if ctx.human() {
        super::audit::print(ctx, &audit)?;
    }
    if !audit.ok {
        anyhow::bail!("the demo's own audit found {} violation(s); see above", audit.violations);
    }

    if ctx.human() {
        let data = if ctx.data == std::path::Path::new("consentry-data") {
            String::new()
        } else {
            format!(" --data {}", ctx.data.display())
        };
        let live = models_dir.join(unlearning.retrains.iter().find(|r| r.kind == "job-recs").map_or("job-recs", |r| {
            std::path::Path::new(&r.new_dir).file_name().and_then(|n| n.to_str()).unwrap_or("job-recs")
        }));
        println!(
            "\nNext: `consentry{data} lineage member {}` (where a member's data went), `consentry{data} audit export \
             --out bundle` then `consentry audit --offline bundle` (the audit without the service), `consentry{data} \
             ledger receipt --event {}` (that member's withdrawal), `consentry{data} ledger snapshot --purpose {}`, `consentry{data} recommend \
             --model {} --member ID`.",
            withdrawals.get(1).map_or(0, |w| w.member),
            withdrawals.get(1).map_or(1, |w| w.seq),
            policy.purposes.first().map_or("…", |p| p.key.as_str()),
            live.display()
        );
    }
    if ctx.json {
        ctx.print_json(&DemoReport {
            data_dir: ctx.data.display().to_string(),
            policy: PolicyInfo {
                version: policy.version.clone(),
                hash: policy.hash.clone(),
                purposes: policy.purposes.len(),
            },
            network,
            ledger: LedgerInfo {
                backend: ledger.store().backend(),
                events: sth.head.tree_size,
                checkpoint_root: hex(&sth.head.root_hash),
                public_key: ledger.public_key().to_hex(),
                import,
            },
            consent,
            datasets,
            models,
            withdrawals,
            unlearning,
            audit,
        })?;
    }
    Ok(OK)
}

/// Stage 7: a sample of the job-recommendation model's members withdraw — one by Global Privacy Control, one by
/// erasure (every purpose), the rest in the privacy centre — and one member of each other model withdraws too.
fn withdraw_sample(ctx: &Ctx, ledger: &Ledger, models_dir: &Path) -> anyhow::Result<Vec<Withdrawal>> {
    let members = |kind: ModelKind| -> anyhow::Result<Vec<u64>> {
        let dir = models_dir.join(kind.name());
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let all = ModelMeta::read(&dir).and_then(|m| m.members(&dir)).map_err(train_cmd::learn_err)?;
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
    let now = chrono::Utc::now().timestamp();
    let events: Vec<NewEvent> = plan
        .iter()
        .enumerate()
        .map(|(i, &(m, kind, source))| {
            let pid = ledger.policy().purpose_id(kind.purpose()).context("the policy lacks a demo purpose")?;
            Ok(NewEvent {
                member_id: m,
                purpose: kind.purpose().to_string(),
                action: Action::Withdraw,
                notice_version: ledger.policy().purpose(pid).latest_notice().version,
                source: Source::parse(source).context("unknown event source")?,
                actor: if source == "gpc" { "browser:sec-gpc".into() } else { format!("member:{m}") },
                event_time: now,
                idempotency_key: format!("demo-withdrawal:{now}:{i}"),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let appended = ledger.append(events).map_err(ledger_err)?;
    // A signed tree head over the withdrawals too, so the audit can vouch for every event.
    ledger.checkpoint().map_err(ledger_err)?;
    let out: Vec<Withdrawal> = plan
        .iter()
        .zip(&appended)
        .map(|(&(member, kind, source), a)| Withdrawal {
            member,
            purpose: kind.purpose().to_string(),
            source,
            seq: a.event.seq,
        })
        .collect();
    let by = |s: &str| out.iter().filter(|w| w.source == s).count();
    ctx.say(format!(
        "\n[7/8] withdrawals: {} events — {} in the privacy centre, {} by Global Privacy Control, {} by erasure",
        out.len(),
        by("ui"),
        by("gpc"),
        by("erasure")
    ));
    Ok(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn print_jurisdictions(network: &consentry_synth::SynthSummary) {
    let mut t = ui::table(&["jurisdiction", "members", "share"]);
    let mut by: Vec<(&String, &u64)> = network.members_by_jurisdiction.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let total = network.config.members;
    let shown = 10;
    for (j, n) in by.iter().take(shown) {
        t.add_row(vec![(*j).clone(), ui::thousands(**n), ui::percent(**n, total)]);
    }
    let rest: u64 = by.iter().skip(shown).map(|(_, n)| **n).sum();
    if rest > 0 {
        t.add_row(vec![format!("{} others", by.len() - shown), ui::thousands(rest), ui::percent(rest, total)]);
    }
    ui::align_numbers(&mut t);
    println!("{t}\n{} members are under 18 and never included.\n", ui::thousands(network.minors));
}

fn print_datasets(datasets: &[DatasetInfo]) {
    let mut reasons: Vec<&str> = datasets.iter().flat_map(|d| d.manifest.excluded.keys().map(String::as_str)).collect();
    reasons.sort_unstable();
    reasons.dedup();
    let labels: Vec<String> = reasons.iter().map(|r| format!("excluded: {r}")).collect();
    let mut header = vec!["purpose", "rows in", "rows out", "members", "redactions"];
    header.extend(labels.iter().map(String::as_str));
    let mut t = ui::table(&header);
    for d in datasets {
        let m = &d.manifest;
        let mut row = vec![
            d.purpose.trim_start_matches("train_ai_system.").to_string(),
            ui::thousands(m.rows_in),
            ui::thousands(m.rows_out),
            ui::thousands(m.members.count),
            ui::thousands(m.redactions.values().sum()),
        ];
        row.extend(reasons.iter().map(|r| ui::thousands(m.excluded.get(*r).copied().unwrap_or(0))));
        t.add_row(row);
    }
    ui::align_numbers(&mut t);
    println!("{t}");
    for d in datasets {
        println!("  {} → {}", d.purpose, d.dir);
    }
}

fn print_consent(consent: &[SnapshotCounts]) {
    // Only the denial reasons that occur, so the table fits a terminal.
    let reasons: Vec<&str> = DenyReason::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|r| consent.iter().any(|c| c.denied.contains_key(r)))
        .collect();
    let labels: Vec<String> = reasons.iter().map(|r| format!("denied: {r}")).collect();
    let mut header = vec!["purpose", "allowed"];
    header.extend(labels.iter().map(String::as_str));
    let mut t = ui::table(&header);
    for c in consent {
        let mut row = vec![
            c.purpose.trim_start_matches("train_ai_system.").to_string(),
            format!("{} ({})", ui::thousands(c.allowed), ui::percent(c.allowed, c.members)),
        ];
        row.extend(reasons.iter().map(|r| ui::thousands(c.denied.get(r).copied().unwrap_or(0))));
        t.add_row(row);
    }
    ui::align_numbers(&mut t);
    println!("{t}");
}
