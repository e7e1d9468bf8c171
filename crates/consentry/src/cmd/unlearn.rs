//! `consentry unlearn`: turn withdrawals in the ledger into exact shard retrains of the live models.

use super::lineage::print_requests;
use crate::ui::{self, Ctx, OK};
use anyhow::Context as _;
use consentry_app::unlearn::UnlearnOptions;
use consentry_lineage::registry::{format_time, short};
use consentry_lineage::worker::WorkerReport;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(clap::Args)]
pub struct Args {
    /// Keep following the ledger, one pass every --interval seconds; Ctrl-C or SIGTERM stops it after the
    /// current pass (and even a hard kill is safe: every pass commits atomically).
    #[arg(long)]
    watch: bool,
    /// Seconds between passes with --watch.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    interval: f64,
    /// With --watch, stop after this many passes.
    #[arg(long, value_name = "N")]
    max_polls: Option<u64>,
    /// Seconds from a withdrawal to "no live model contains the member"; later completions count as missed.
    #[arg(long, default_value_t = consentry_lineage::registry::DEFAULT_DEADLINE_SECS, value_name = "SECS")]
    deadline: i64,
    /// Retrain a model only once its oldest open request has waited this long, so withdrawals batch up
    /// (requests past their deadline never wait) [default: 0 for one pass; with --watch, a quarter of --deadline].
    #[arg(long, value_name = "SECS")]
    batch_window: Option<i64>,
    /// Training threads (0 = all cores); never changes the retrained shards.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Send OpenLineage run events (START, then COMPLETE or FAIL) here: file:///path/events.jsonl (or a
    /// plain path) appends one JSON event per line, http://host:port/api/v1/lineage POSTs each (no https: use a
    /// local collector or the file) [env: CONSENTRY_OPENLINEAGE; without either, OPENLINEAGE_URL (+
    /// OPENLINEAGE_ENDPOINT, OPENLINEAGE_API_KEY) as the OpenLineage clients read it; OPENLINEAGE_NAMESPACE names
    /// the job namespace]. A failed send only warns.
    #[arg(long, value_name = "FILE|URL")]
    openlineage: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let opts = UnlearnOptions {
        deadline_secs: args.deadline,
        batch_window_secs: args.batch_window,
        threads: args.threads,
        interval_secs: args.interval,
    };
    let session = ctx.lineage_session(args.openlineage.as_deref())?;
    if !args.watch {
        let report = session.unlearn_once(&opts)?;
        print_report(ctx, &report)?;
        return Ok(OK);
    }
    let stop = stop_on_signals()?;
    let mut failed: Option<anyhow::Error> = None;
    let mut on_report = |r: &WorkerReport| {
        if let Err(e) = print_pass(ctx, r) {
            failed.get_or_insert(e);
        }
    };
    let passes = session.unlearn_watch(&opts, &stop, args.max_polls, &mut on_report)?;
    if !ctx.json {
        ctx.say(format!("stopped after {passes} pass(es)"));
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(OK),
    }
}

/// A flag that SIGINT and SIGTERM set, so `--watch` finishes its pass and exits 0 (`signal-hook` does the
/// async-signal-safe part).
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing the SIGINT/SIGTERM handler")?;
    }
    Ok(stop)
}

/// One pass in watch mode: a JSON line, or the human report when something happened.
fn print_pass(ctx: &Ctx, r: &WorkerReport) -> anyhow::Result<()> {
    if ctx.json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    if r.retrains.is_empty() && r.requests_opened == 0 {
        return Ok(());
    }
    print_report(ctx, r)
}

/// Prints what a worker pass did and the deadline figures; shared with `demo`.
pub fn print_report(ctx: &Ctx, r: &WorkerReport) -> anyhow::Result<()> {
    if ctx.json {
        return ctx.print_json(r);
    }
    ctx.say(format!(
        "ledger events {}..{}: {} withdrawal(s), {} new unlearning request(s)",
        r.cursor_from + 1,
        r.cursor_to,
        r.withdrawals,
        r.requests_opened
    ));
    for o in &r.orphans_removed {
        ctx.say(format!("removed {o}, left by an interrupted run"));
    }
    if r.retrains.is_empty() {
        ctx.say("nothing to retrain");
    } else {
        let mut t = ui::table(&["model", "version", "members removed", "shards retrained", "seconds", "now live"]);
        for x in &r.retrains {
            t.add_row(vec![
                format!("{} {}", x.kind, short(&x.old_model)),
                format!("v{} → v{}", x.version - 1, x.version),
                ui::thousands(x.members.len() as u64),
                format!("{} of {}", x.shards.len(), x.shards_total),
                format!("{:.1}", x.seconds),
                format!("{} ({})", short(&x.new_model), x.new_dir),
            ]);
        }
        ui::align_numbers(&mut t);
        ctx.say(t.to_string());
    }
    if r.closed_without_retrain > 0 {
        ctx.say(format!(
            "{} request(s) closed without a retrain (model retired or member already gone)",
            r.closed_without_retrain
        ));
    }
    let f = &r.figures;
    let mut t = ui::table(&["deadline figures", ""]);
    t.add_row(vec!["deadline".into(), format!("{} s", ui::thousands(f.deadline_secs.max(0) as u64))]);
    t.add_row(vec!["completed".into(), ui::thousands(f.completed)]);
    t.add_row(vec!["within deadline".into(), ui::thousands(f.within_deadline)]);
    t.add_row(vec!["missed".into(), ui::thousands(f.missed)]);
    if let Some(m) = f.max_latency_secs {
        t.add_row(vec!["longest withdrawal → removal".into(), format!("{} s", ui::thousands(m.max(0) as u64))]);
    }
    if let Some(m) = f.mean_latency_secs {
        t.add_row(vec!["mean withdrawal → removal".into(), format!("{m:.0} s")]);
    }
    t.add_row(vec!["open".into(), ui::thousands(f.open)]);
    t.add_row(vec!["open and overdue".into(), ui::thousands(f.open_overdue)]);
    if let Some(d) = f.next_deadline {
        t.add_row(vec!["next deadline".into(), format_time(d)]);
    }
    ui::align_numbers(&mut t);
    ctx.say(t.to_string());
    if !r.open.is_empty() {
        print_requests(ctx, &r.open);
    }
    Ok(())
}
