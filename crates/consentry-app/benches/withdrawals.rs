//! Withdrawal → removal under load (issue 23): on a demo's data directory, the unlearning worker watches the ledger
//! (`Session::unlearn_watch`, the batch window derived from the deadline, as `consentry unlearn --watch` runs it)
//! while this driver appends withdrawals of live models' members: first a steady stream (`--rate` per second for
//! `--minutes`), then, once that has drained, a burst of `--burst` in one second. Prints, per phase and per model,
//! the requests and the p50 / p99 / max time from withdrawal to removal against the deadline, and the retrains the
//! worker made.
//!
//!   cargo bench -p consentry-app --bench withdrawals -- --data DIR [--minutes 10] [--rate 1] [--burst 1000]
//!       [--deadline 60] [--threads 0] [--seed 7] [--drain 900]
//!
//! DIR is a `consentry demo` data directory (see `bench/learn/withdrawals.sh`); the run withdraws members from it
//! for good, so run it on a copy.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use consentry_app::datadir::DataDir;
use consentry_app::session::Session;
use consentry_app::unlearn::UnlearnOptions;
use consentry_ledger::NewEvent;
use consentry_lineage::registry::{ModelStatus, RequestStatus};
use consentry_policy::{Action, Source};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

struct Args {
    data: PathBuf,
    minutes: f64,
    rate: f64,
    burst: usize,
    deadline: i64,
    threads: usize,
    seed: u64,
    drain: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        data: PathBuf::new(),
        minutes: 10.0,
        rate: 1.0,
        burst: 1000,
        deadline: 60,
        threads: 0,
        seed: 7,
        drain: 900,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue;
        }
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().with_context(|| format!("{flag} {v}: expected a number"));
        match flag.as_str() {
            "--data" => a.data = PathBuf::from(v),
            "--minutes" => a.minutes = num(&v)?,
            "--rate" => a.rate = num(&v)?,
            "--burst" => a.burst = num(&v)? as usize,
            "--deadline" => a.deadline = num(&v)? as i64,
            "--threads" => a.threads = num(&v)? as usize,
            "--seed" => a.seed = num(&v)? as u64,
            "--drain" => a.drain = num(&v)? as u64,
            _ => bail!("unknown flag {flag}"),
        }
    }
    if a.data.as_os_str().is_empty() {
        bail!("--data DIR (a `consentry demo` data directory) is required");
    }
    if !(a.rate > 0.0 && a.minutes >= 0.0) {
        bail!("--rate must be positive and --minutes 0 or more");
    }
    Ok(a)
}

/// One withdrawal the driver made.
struct Made {
    seq: u64,
    phase: &'static str,
    model: String,
}

/// The live models' kinds and purposes, with their members in a shuffled pool (each member withdraws once).
fn pools(session: &Session, seed: u64) -> anyhow::Result<Vec<(String, String, Vec<u64>)>> {
    let reg = session.registry()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for m in reg.models(None, Some(ModelStatus::Live))? {
        let mut members: Vec<u64> = Vec::new();
        for b in reg.shard_members(&m.id)? {
            members.extend(b.iter());
        }
        members.shuffle(&mut rng);
        out.push((m.kind.clone(), m.purpose.clone(), members));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    if out.is_empty() {
        bail!("no live model in {}: run `consentry demo` into it first", session.dir().root().display());
    }
    Ok(out)
}

fn withdrawal(session: &Session, member: u64, purpose: &str, key: String) -> anyhow::Result<NewEvent> {
    let ledger = session.ledger()?;
    let pid = session.purpose_id(purpose)?;
    Ok(NewEvent {
        member_id: member,
        purpose: purpose.to_string(),
        action: Action::Withdraw,
        notice_version: ledger.policy().purpose(pid).latest_notice().version,
        source: Source::Ui,
        actor: format!("member:{member}"),
        event_time: consentry_ledger::now(),
        idempotency_key: key,
    })
}

/// Appends `n` withdrawals, taking members round-robin over the models' pools.
fn append(
    session: &Session,
    pools: &mut [(String, String, Vec<u64>)],
    next: &mut usize,
    n: usize,
    phase: &'static str,
    made: &mut Vec<Made>,
) -> anyhow::Result<()> {
    let mut events = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let stamp = consentry_ledger::now();
    for i in 0..n {
        let k = *next % pools.len();
        *next += 1;
        let (kind, purpose, members) = &mut pools[k];
        let m = members.pop().with_context(|| format!("model {kind} ran out of members to withdraw"))?;
        events.push(withdrawal(session, m, purpose, format!("bench-withdrawal:{phase}:{stamp}:{i}:{m}"))?);
        kinds.push(kind.clone());
    }
    for (a, model) in session.ledger()?.append(events)?.into_iter().zip(kinds) {
        made.push(Made { seq: a.event.seq, phase, model });
    }
    Ok(())
}

/// Waits until every request opened for `made` is completed, or `limit` passes; true when all are.
fn drain(session: &Session, made: &[Made], limit: Duration) -> anyhow::Result<bool> {
    let started = Instant::now();
    let seqs: std::collections::HashSet<u64> = made.iter().map(|m| m.seq).collect();
    let last = made.iter().map(|m| m.seq).max().unwrap_or(0);
    loop {
        let reg = session.registry()?;
        let cursor = reg.cursor(consentry_lineage::worker::DEFAULT_CURSOR)?;
        let open = reg.open_requests()?.into_iter().filter(|r| seqs.contains(&r.event_seq)).count();
        if cursor >= last && open == 0 {
            return Ok(true);
        }
        if started.elapsed() > limit {
            eprintln!("  drain: {open} request(s) still open after {} s", limit.as_secs());
            return Ok(false);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let dir = DataDir::new(a.data.clone());
    let session = Session::open(dir.clone(), None)?;
    let mut pools = pools(&session, a.seed)?;
    let kinds: Vec<String> = pools.iter().map(|p| format!("{} ({} members)", p.0, p.2.len())).collect();
    eprintln!("live models: {}", kinds.join(", "));
    let opts =
        UnlearnOptions { deadline_secs: a.deadline, batch_window_secs: None, threads: a.threads, interval_secs: 1.0 };
    let window = consentry_lineage::worker::derived_batch_window(a.deadline);
    let stop = AtomicBool::new(false);
    let mut made: Vec<Made> = Vec::new();
    let mut retrains: Vec<consentry_lineage::worker::Retrain> = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed ^ 0x5eed);
    let result = std::thread::scope(|s| -> anyhow::Result<()> {
        let worker = s.spawn(|| -> anyhow::Result<Vec<consentry_lineage::worker::Retrain>> {
            // The worker has its own session (its own database connections), as a separate process would.
            let ws = Session::open(dir.clone(), None)?;
            let mut seen = Vec::new();
            ws.unlearn_watch(&opts, &stop, None, &mut |r| {
                for x in &r.retrains {
                    eprintln!(
                        "  retrain {} v{}: {} member(s), {} of {} shards, {:.1} s",
                        x.kind,
                        x.version,
                        x.members.len(),
                        x.shards.len(),
                        x.shards_total,
                        x.seconds
                    );
                }
                seen.extend(r.retrains.iter().cloned());
            })?;
            Ok(seen)
        });
        let mut next = 0usize;
        let run = (|| -> anyhow::Result<()> {
            let n = (a.minutes * 60.0 * a.rate).round() as usize;
            eprintln!(
                "steady: {n} withdrawal(s) at {}/s, deadline {} s, batch window {window} s (a quarter of it)",
                a.rate, a.deadline
            );
            let t0 = Instant::now();
            for i in 0..n {
                let at = t0 + Duration::from_secs_f64(i as f64 / a.rate);
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                append(&session, &mut pools, &mut next, 1, "steady", &mut made)?;
                if i % 60 == 59 {
                    session.ledger()?.checkpoint()?;
                    eprintln!("  {} of {n} withdrawals made ({:.0} s)", i + 1, t0.elapsed().as_secs_f64());
                }
            }
            session.ledger()?.checkpoint()?;
            drain(&session, &made, Duration::from_secs(a.drain))?;
            if a.burst > 0 {
                // A second's pause, then the burst in one append at a random offset into the round-robin.
                std::thread::sleep(Duration::from_secs(1));
                next += rng.random_range(0..pools.len());
                eprintln!("burst: {} withdrawals at once", a.burst);
                append(&session, &mut pools, &mut next, a.burst, "burst", &mut made)?;
                session.ledger()?.checkpoint()?;
                drain(&session, &made, Duration::from_secs(a.drain))?;
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        let seen = worker.join().map_err(|_| anyhow::anyhow!("the worker thread panicked"))??;
        retrains = seen;
        run
    });
    result?;

    let reg = session.registry()?;
    let by_seq: HashMap<u64, &Made> = made.iter().map(|m| (m.seq, m)).collect();
    // Per (phase, model kind): latencies of completed requests, and requests still open.
    let mut lat: BTreeMap<(&str, String), (Vec<i64>, u64, u64)> = BTreeMap::new();
    for r in reg.requests()? {
        let Some(m) = by_seq.get(&r.event_seq) else { continue };
        let e = lat.entry((m.phase, m.model.clone())).or_default();
        match r.completed_at {
            Some(c) => {
                e.0.push(c - r.requested_at);
                if r.status == RequestStatus::Missed {
                    e.2 += 1;
                }
            }
            None => e.1 += 1,
        }
    }
    println!(
        "\nwithdrawal → removal, deadline {} s, batch window {window} s, {} withdrawals made ({} steady at {}/s for {} \
         min, burst of {}):\n",
        a.deadline,
        made.len(),
        made.iter().filter(|m| m.phase == "steady").count(),
        a.rate,
        a.minutes,
        a.burst
    );
    println!("| phase | model | requests | p50 s | p99 s | max s | missed | still open |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for ((phase, model), (mut v, open, missed)) in lat {
        v.sort_unstable();
        println!(
            "| {phase} | {model} | {} | {} | {} | {} | {missed} | {open} |",
            v.len() as u64 + open,
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v.last().copied().unwrap_or(0)
        );
        eprintln!(
            "RESULT withdrawals {phase} {model} n={} p50={} p99={} max={} missed={missed} open={open}",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v.last().copied().unwrap_or(0)
        );
    }
    println!("\n| model | retrains | members removed | shards retrained (mean of total) | retrain s (mean / max) |");
    println!("|---|---:|---:|---:|---:|");
    let mut per: BTreeMap<String, Vec<&consentry_lineage::worker::Retrain>> = BTreeMap::new();
    for r in &retrains {
        per.entry(r.kind.clone()).or_default().push(r);
    }
    for (kind, rs) in per {
        let n = rs.len() as f64;
        let secs: Vec<f64> = rs.iter().map(|r| r.seconds).collect();
        println!(
            "| {kind} | {} | {} | {:.1} of {} | {:.1} / {:.1} |",
            rs.len(),
            rs.iter().map(|r| r.members.len()).sum::<usize>(),
            rs.iter().map(|r| r.shards.len()).sum::<usize>() as f64 / n,
            rs.first().map_or(0, |r| r.shards_total),
            secs.iter().sum::<f64>() / n,
            secs.iter().copied().fold(0.0, f64::max)
        );
    }
    Ok(())
}
