//! Benchmark: append N withdrawals of members of the live job-recommendation model in a data directory, then
//! time one unlearning pass (intake, one retrain of the affected shards, swap).
//!
//! `cargo run --release -p consentry-lineage --example withdrawal_batch -- DATA_DIR [N]` on a directory made by
//! `consentry synth/ledger import/gate/train` and `consentry lineage register-model`.

use consentry_ledger::{Ledger, LedgerOptions, LogKey, NewEvent};
use consentry_lineage::{ModelStatus, Registry, WorkerOptions, run_once};
use consentry_policy::{Action, Policy, Source};
use std::path::PathBuf;
use std::time::Instant;

const JOBS: &str = "train_ai_system.job_recommendations";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().ok_or("usage: withdrawal_batch DATA_DIR [N]")?);
    let n: usize = args.next().map_or(Ok(1000), |s| s.parse())?;
    // The CLI records directories relative to the data directory.
    // The worker registers (and so signs) new versions with the ledger's key.
    let reg = Registry::open_sqlite(&data.join("ledger.db"))?
        .with_base(&data)
        .with_key(LogKey::load(&data.join("ledger.key"))?);
    let model = reg
        .models(Some(JOBS), Some(ModelStatus::Live))?
        .into_iter()
        .find(|m| m.kind == "job-recs")
        .ok_or("no live job-recs model: run `consentry lineage register-model` first")?;
    let shards = reg.shard_members(&model.id)?;
    let all: Vec<u64> = shards.iter().flat_map(|b| b.iter()).collect();
    let step = (all.len() / n.max(1)).max(1);
    let picked: Vec<u64> = all.iter().step_by(step).take(n).copied().collect();
    let policy = Policy::from_toml("policy.toml", &std::fs::read_to_string(data.join("policy.toml"))?)?;
    let ledger = Ledger::new(
        Box::new(consentry_ledger::sqlite::SqliteStore::open(&data.join("ledger.db"))?),
        policy,
        LogKey::load(&data.join("ledger.key"))?,
        LedgerOptions::default(),
    );
    let now = consentry_lineage::now();
    let batch: Vec<NewEvent> = picked
        .iter()
        .map(|&m| NewEvent {
            member_id: m,
            purpose: JOBS.into(),
            action: Action::Withdraw,
            notice_version: 1,
            source: Source::Ui,
            actor: format!("member:{m}"),
            event_time: now,
            idempotency_key: format!("bench-withdraw-{now}-{m}"),
        })
        .collect();
    ledger.append(batch)?;
    let started = Instant::now();
    let report = run_once(&reg, &ledger, &WorkerOptions::default())?;
    let secs = started.elapsed().as_secs_f64();
    for r in &report.retrains {
        println!(
            "{} v{}: removed {} members, retrained {} of {} shards in {:.2} s",
            r.kind,
            r.version,
            r.members.len(),
            r.shards.len(),
            r.shards_total,
            r.seconds
        );
    }
    println!(
        "{} withdrawals over {} model members: one pass in {secs:.2} s ({} requests opened)",
        picked.len(),
        all.len(),
        report.requests_opened
    );
    Ok(())
}
