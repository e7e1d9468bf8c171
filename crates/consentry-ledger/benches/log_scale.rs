//! The ledger at scale, one phase per process so each phase's peak memory is its own (`bench/scale/ledger.sh`
//! runs them under `/usr/bin/time -v` and prints the table):
//!
//! ```text
//! log_scale append  --db URL_OR_PATH --events N --members M [--batch B]
//! log_scale verify  --db URL_OR_PATH
//! log_scale proofs  --db URL_OR_PATH [--count C]
//! ```
//!
//! `--db` is a SQLite file path or a `postgres://` URL. Events are seeded (ChaCha8, seed 20), so two runs build
//! the same log. `append` prints one line per tenth of the run (rate so far) and a summary line `append events=…
//! seconds=… rate=…`; `verify` prints `verify events=… seconds=… ok=…`; `proofs` prints the cold start (the first
//! verification of a new process, which reads the whole log) and the latency of inclusion and consistency proofs
//! at the end of the log.

mod common;

use common::{JAN, events, status_kib};
use consentry_ledger::postgres::PgStore;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, Store};
use consentry_policy::Policy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn num(args: &[String], name: &str, default: u64) -> u64 {
    arg(args, name).and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn open(db: &str) -> Ledger {
    let store: Box<dyn Store> = if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        Box::new(PgStore::connect(db).expect("connect to PostgreSQL"))
    } else {
        Box::new(SqliteStore::open(std::path::Path::new(db)).expect("open SQLite"))
    };
    // The log alone: appends are not checked against a member directory (the member facts cost is the snapshot
    // bench's); heads are signed at the default interval (every 10 000 entries).
    let opts = LedgerOptions { require_known_members: false, ..LedgerOptions::default() };
    Ledger::new(store, Policy::default_policy(), LogKey::from_seed([9; 32]), opts)
}

fn append(args: &[String], db: &str) {
    let total = num(args, "--events", 1_000_000);
    let members = num(args, "--members", total / 5);
    let batch = num(args, "--batch", 10_000);
    let ledger = open(db);
    let from = ledger.store().len().expect("length");
    let policy = Policy::default_policy();
    let mut rng = ChaCha8Rng::seed_from_u64(20 + from);
    let start = Instant::now();
    let mut done = 0;
    let mut next_report = total / 10;
    while done < total {
        let n = batch.min(total - done);
        ledger
            .append_at(events(&mut rng, &policy, from + done..from + done + n, members, "s"), JAN + 310 * 86_400)
            .expect("append");
        done += n;
        if done >= next_report {
            let s = start.elapsed().as_secs_f64();
            eprintln!("  {:>12} events  {:>8.1} s  {:>10.0} events/s", from + done, s, done as f64 / s);
            next_report += total / 10;
        }
    }
    ledger.checkpoint().expect("checkpoint");
    let s = start.elapsed().as_secs_f64();
    println!("append events={} seconds={s:.2} rate={:.0}", from + done, done as f64 / s);
}

fn verify(db: &str) {
    let ledger = open(db);
    let start = Instant::now();
    let v = ledger.verify().expect("verify");
    println!("verify events={} seconds={:.2} ok={}", v.events, start.elapsed().as_secs_f64(), v.ok());
    assert!(v.ok(), "{:?}", v.problems.first());
}

fn proofs(args: &[String], db: &str) {
    let count = num(args, "--count", 2_000);
    let ledger = open(db);
    let start = Instant::now();
    let len = ledger.verify_through().expect("verify");
    let cold = start.elapsed().as_secs_f64();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut inclusion = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let seq = rng.random_range(1..=len);
        let t = Instant::now();
        ledger.inclusion_proof(seq, len).expect("inclusion proof");
        inclusion.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut consistency = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let first = rng.random_range(1..=len);
        let t = Instant::now();
        ledger.consistency_proof(first, len).expect("consistency proof");
        consistency.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p) as usize]
    };
    println!(
        "proofs events={len} cold_start_seconds={cold:.2} inclusion_p50_us={:.0} inclusion_p99_us={:.0} \
         consistency_p50_us={:.0} consistency_p99_us={:.0}",
        pct(&mut inclusion, 0.5),
        pct(&mut inclusion, 0.99),
        pct(&mut consistency, 0.5),
        pct(&mut consistency, 0.99)
    );
}

/// Samples `RssAnon` every 10 ms and prints its peak at exit: `/usr/bin/time`'s peak RSS also counts the
/// pages of the database SQLite memory-maps (up to 1 GiB), which are the page cache's, not the ledger's memory.
struct AnonPeak(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl AnonPeak {
    fn start() -> AnonPeak {
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let p = peak.clone();
        std::thread::spawn(move || {
            loop {
                p.fetch_max(status_kib("RssAnon"), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        AnonPeak(peak)
    }
}

impl Drop for AnonPeak {
    fn drop(&mut self) {
        let peak = self.0.load(std::sync::atomic::Ordering::Relaxed).max(status_kib("RssAnon"));
        println!("peak_anon_mib={}", peak / 1024);
    }
}

fn main() {
    let _peak = AnonPeak::start();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; the phase is the first word that is not a flag.
    let phase = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_default();
    let Some(db) = arg(&args, "--db") else {
        eprintln!(
            "usage: log_scale append|verify|proofs --db PATH_OR_URL [--events N --members M --batch B --count C]"
        );
        return;
    };
    match phase.as_str() {
        "append" => append(&args, &db),
        "verify" => verify(&db),
        "proofs" => proofs(&args, &db),
        other => {
            eprintln!("unknown phase {other:?}: append, verify or proofs");
        }
    }
}
