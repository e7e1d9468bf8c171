//! Child process for the crash-safety and multi-process tests.
//!
//! Opens a ledger (`--sqlite PATH` or `--postgres URL`) and appends events
//! from a few threads, single events and small batches, with idempotency keys
//! `<run-id>-<n>`. After `append` returns — and only then — it prints
//! `ack <seq> <idempotency_key>` per event and flushes, so the parent knows
//! exactly what was acknowledged when it kills this process with SIGKILL.
//! With `--count N` it stops after N events; otherwise it runs until killed.

use consentry_ledger::postgres::PgStore;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, NewEvent, Store};
use consentry_policy::{Action, Policy, Source};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const USAGE: &str = "usage: consentry-ledger-crashtest (--sqlite PATH | --postgres URL) --run-id ID \
                     [--count N] [--threads T] [--checkpoint-every K]";

struct Args {
    sqlite: Option<PathBuf>,
    postgres: Option<String>,
    run_id: String,
    count: Option<u64>,
    threads: usize,
    checkpoint_every: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a =
        Args { sqlite: None, postgres: None, run_id: String::new(), count: None, threads: 3, checkpoint_every: 64 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--sqlite" => a.sqlite = Some(PathBuf::from(value()?)),
            "--postgres" => a.postgres = Some(value()?),
            "--run-id" => a.run_id = value()?,
            "--count" => a.count = Some(value()?.parse().map_err(|e| format!("--count: {e}"))?),
            "--threads" => a.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--checkpoint-every" => {
                a.checkpoint_every = value()?.parse().map_err(|e| format!("--checkpoint-every: {e}"))?
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.run_id.is_empty() || a.sqlite.is_some() == a.postgres.is_some() || a.threads == 0 {
        return Err(USAGE.to_string());
    }
    Ok(a)
}

fn open(a: &Args) -> Result<Box<dyn Store>, String> {
    match (&a.sqlite, &a.postgres) {
        (Some(path), _) => SqliteStore::open(path).map(|s| Box::new(s) as Box<dyn Store>).map_err(|e| e.to_string()),
        (_, Some(url)) => PgStore::connect(url).map(|s| Box::new(s) as Box<dyn Store>).map_err(|e| e.to_string()),
        _ => Err(USAGE.to_string()),
    }
}

/// Event number `n` of this run: deterministic fields, a unique key.
fn event(policy: &Policy, run_id: &str, n: u64, now: i64) -> NewEvent {
    let purpose = &policy.purposes[(n % policy.purposes.len() as u64) as usize];
    NewEvent {
        member_id: n % 1000 + 1,
        purpose: purpose.key.clone(),
        action: if n.is_multiple_of(3) { Action::Withdraw } else { Action::Grant },
        notice_version: purpose.latest_notice().version,
        source: Source::Api,
        actor: format!("crashtest:{run_id}"),
        event_time: now - 60,
        idempotency_key: format!("{run_id}-{n}"),
    }
}

fn worker(ledger: &Ledger, a: &Args, next: &AtomicU64, thread: usize) -> Result<(), String> {
    let policy = ledger.policy();
    let mut round = 0u64;
    loop {
        round += 1;
        // Every third round a small batch (2..=5 events), otherwise one event.
        let want = if (round + thread as u64).is_multiple_of(3) { 2 + (round % 4) } else { 1 };
        let start = next.fetch_add(want, Ordering::SeqCst);
        let end = match a.count {
            Some(limit) if start >= limit => return Ok(()),
            Some(limit) => (start + want).min(limit),
            None => start + want,
        };
        let now = chrono::Utc::now().timestamp();
        let batch: Vec<NewEvent> = (start..end).map(|n| event(policy, &a.run_id, n, now)).collect();
        let out = ledger.append(batch).map_err(|e| format!("append failed: {e}"))?;
        let mut text = String::new();
        for r in &out {
            text.push_str(&format!("ack {} {}\n", r.event.seq, r.event.body.idempotency_key));
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| format!("stdout: {e}"))?;
    }
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let store = match open(&a) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open the ledger: {e}");
            std::process::exit(1);
        }
    };
    // Crash points of the log alone: no member directory.
    let opts = LedgerOptions {
        checkpoint_every: a.checkpoint_every,
        require_known_members: false,
        ..LedgerOptions::default()
    };
    let ledger = Arc::new(Ledger::new(store, Policy::default_policy(), LogKey::from_seed([1; 32]), opts));
    let next = AtomicU64::new(0);
    let failed = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads)
            .map(|t| {
                s.spawn({
                    let (ledger, a, next) = (&ledger, &a, &next);
                    move || worker(ledger, a, next, t)
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("a worker panicked".to_string()),
            })
            .collect::<Vec<_>>()
    });
    if !failed.is_empty() {
        for e in failed {
            eprintln!("{e}");
        }
        std::process::exit(1);
    }
}
