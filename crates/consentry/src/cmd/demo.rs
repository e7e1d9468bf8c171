//! `consentry demo`: the whole pipeline, stage by stage, on a synthetic network (`consentry_app::demo` runs it;
//! this module renders each step).

use crate::ui::{self, Ctx, OK};
use consentry_app::demo::{DatasetInfo, DemoRequest, DemoStep, StageCost, live_model_dir};
use consentry_ledger::snapshot::SnapshotCounts;
use consentry_policy::DenyReason;
use std::process::ExitCode;

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

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let req = DemoRequest { members: args.members, seed: args.seed, deadline: args.deadline };
    let bars = ctx.progress();
    let report = consentry_app::demo::run(
        &ctx.dir,
        ctx.database.as_deref(),
        &req,
        &bars,
        &mut |step| show(ctx, step),
        &consentry_server::report::render,
    );
    bars.finish();
    let report = report?;
    if ctx.human() {
        let data = if ctx.dir.root() == std::path::Path::new("consentry-data") {
            String::new()
        } else {
            format!(" --data {}", ctx.dir.root().display())
        };
        print_stages(&report.stages);
        println!("\n{}", super::report::written(std::path::Path::new(&report.report), report.report_bytes as usize));
        let live = live_model_dir(&ctx.dir, &report, "job-recs");
        let w = &report.withdrawals;
        println!(
            "\nNext: `consentry{data} lineage member {}` (where a member's data went), `consentry{data} audit export \
             --out bundle` then `consentry audit --offline bundle` (the audit without the service), `consentry{data} \
             ledger receipt --event {}` (that member's withdrawal), `consentry{data} ledger snapshot --purpose {}`, `consentry{data} recommend \
             --model {} --member ID`.",
            w.get(1).map_or(0, |w| w.member),
            w.get(1).map_or(1, |w| w.seq),
            report.consent.first().map_or("…", |c| c.purpose.as_str()),
            live.display()
        );
    }
    if ctx.json {
        ctx.print_json(&report)?;
    }
    Ok(OK)
}

/// Renders one step of the demo as it happens (human output only: `--json` prints the report at the end).
fn show(ctx: &Ctx, step: DemoStep<'_>) {
    if !ctx.human() {
        return;
    }
    match step {
        DemoStep::Policy { file, policy } => {
            ctx.say(format!("Consentry demo in {}\n", ctx.dir.root().display()));
            ctx.say(format!("[1/8] policy in force: {}", file.display()));
            ctx.say(format!(
                "      version {}, {} purposes, {} jurisdiction rules — valid\n",
                policy.version,
                policy.purposes.len(),
                policy.jurisdictions.len()
            ));
        }
        DemoStep::NetworkStart { members, seed } => {
            ctx.say(format!("[2/8] synthetic network: {} members, seed {seed}", ui::thousands(members)));
        }
        DemoStep::Network { generated, out } => {
            super::synth::print_generated(ctx, generated, out);
            print_jurisdictions(&generated.summary);
        }
        DemoStep::LedgerStart => ctx.say("[3/8] consent ledger: import, checkpoint, verify"),
        DemoStep::Imported(report) => super::ledger::say_imported(ctx, report),
        DemoStep::LedgerReady(sth) => ctx.say(format!(
            "      {} events, checkpoint root {}…, signed; `ledger verify` ok\n",
            ui::thousands(sth.head.tree_size),
            &hex::encode(sth.head.root_hash)[..16]
        )),
        DemoStep::Consent { as_of, consent } => {
            ctx.say(format!("[4/8] snapshots: effective consent on {as_of} (opt-in by default)"));
            print_consent(consent);
        }
        DemoStep::GateStart => ctx.say(
            "\n[5/8] gate: one training set per purpose — only allowed members, only declared columns, text redacted",
        ),
        DemoStep::Datasets(datasets) => print_datasets(datasets),
        DemoStep::TrainStart => {
            ctx.say("\n[6/8] train: the three AI features, one model per shard, only on the gated datasets")
        }
        DemoStep::Trained { meta, out } => {
            println!("{} ({} shards, {:.1} s) → {}", meta.kind, meta.shards.len(), meta.train_seconds, out.display());
            super::train::print_metrics(ctx, &meta.kind, &meta.metrics);
        }
        DemoStep::NotTrained { reason } => ctx.say(reason),
        DemoStep::Withdrawals(out) => {
            let by = |s: &str| out.iter().filter(|w| w.source == s).count();
            ctx.say(format!(
                "\n[7/8] withdrawals: {} events — {} in the privacy centre, {} by Global Privacy Control, {} by erasure",
                out.len(),
                by("ui"),
                by("gpc"),
                by("erasure")
            ));
        }
        DemoStep::UnlearnStart { deadline } => {
            ctx.say(format!("      unlearning: retrain the affected shards, deadline {deadline} s"))
        }
        DemoStep::Unlearned(report) => {
            // Only the JSON form can fail to print, and this is the human form.
            let _ = super::unlearn::print_report(ctx, report);
        }
        DemoStep::AuditStart => ctx.say(
            "\n[8/8] audit: ledger, consent of every live model's members (recomputed), deadlines, commitments, DP",
        ),
        DemoStep::Audited(report) => {
            // Only the JSON form can fail to print, and this is the human form.
            let _ = super::audit::print(ctx, report);
        }
        _ => {}
    }
}

/// What each stage cost, so a run at scale shows where the time and the memory went.
fn print_stages(stages: &[StageCost]) {
    let mib = |b: Option<u64>| b.map_or_else(|| "–".to_string(), |b| format!("{:.0}", b as f64 / (1024.0 * 1024.0)));
    let mut t = ui::table(&["stage", "seconds", "peak MiB"]);
    for s in stages {
        t.add_row(vec![s.name.clone(), format!("{:.2}", s.seconds), mib(s.peak_rss_bytes)]);
    }
    // The stages cover the run: its peak is the largest stage's (unknown if any stage's is).
    let peak = stages.iter().map(|s| s.peak_rss_bytes).try_fold(0, |m, b| b.map(|b| m.max(b)));
    t.add_row(vec![
        "whole run".to_string(),
        format!("{:.2}", stages.iter().map(|s| s.seconds).sum::<f64>()),
        mib(peak),
    ]);
    ui::align_numbers(&mut t);
    println!("\ncost per stage\n{t}");
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
