//! Gate throughput on the DuckDB comparison input: 10 M rows over 1 M members,
//! 40 % of members allowed, every column passed.
//!
//! `cargo bench -p consentry-gate --bench gate -- [--dir DIR] [--rows N] [--members N]
//! [--files N] [--threads N] [--batch-rows N] [--window N] [--mode all|generate|gate|gate-redact|commit]`. The input (Parquet event
//! files, `consent.parquet` with the allowed member ids for other engines, and a
//! ledger granting exactly those members) is generated once into DIR
//! (default `target/tmp/bench-gate`, Cargo's temporary directory) and reused. `bench/gate/run.sh` runs this
//! side by side with DuckDB and measures peak memory.

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array};
use consentry_gate::materialize::{GateOptions, GateRequest, NoProgress};
use consentry_gate::{Sources, materialize};
use consentry_ledger::snapshot::Snapshot;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, MemberRecord, NewEvent};
use consentry_policy::{Action, Policy, Source};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const PURPOSE: &str = "train_ai_system.job_recommendations";
const NOW: i64 = 1_790_000_000;

struct Opts {
    dir: PathBuf,
    rows: u64,
    members: u64,
    files: u64,
    mode: String,
    threads: Option<usize>,
    batch_rows: Option<usize>,
    window: Option<usize>,
}

fn opts() -> Opts {
    let mut o = Opts {
        dir: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-gate")),
        rows: 10_000_000,
        members: 1_000_000,
        files: 8,
        mode: "all".into(),
        threads: None,
        batch_rows: None,
        window: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--dir" => o.dir = PathBuf::from(v),
            "--rows" => o.rows = v.parse().unwrap_or(o.rows),
            "--members" => o.members = v.parse().unwrap_or(o.members),
            "--files" => o.files = v.parse().unwrap_or(o.files),
            "--mode" => o.mode = v,
            "--threads" => o.threads = v.parse().ok(),
            "--batch-rows" => o.batch_rows = v.parse().ok(),
            "--window" => o.window = v.parse().ok(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// Member m is allowed when this says so (40 %).
fn allowed(m: u64) -> bool {
    ChaCha8Rng::seed_from_u64(m).next_u64() % 100 < 40
}

const WORDS: [&str; 12] =
    ["great", "role", "team", "remote", "senior", "data", "platform", "hiring", "apply", "today", "cloud", "engineer"];

fn generate(o: &Opts) {
    let events = o.dir.join("events");
    std::fs::create_dir_all(&events).unwrap_or_else(|e| panic!("{}: {e}", events.display()));
    let t0 = Instant::now();
    let per_file = o.rows.div_ceil(o.files);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_max_row_group_row_count(Some(256 * 1024))
        .build();
    let mut written = 0u64;
    for f in 0..o.files {
        let path = events.join(format!("part-{f:04}.parquet"));
        let n_file = per_file.min(o.rows - written);
        let schema = batch(&mut rng, 1, o.members).schema();
        let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut w = ArrowWriter::try_new(file, schema, Some(props.clone())).unwrap_or_else(|e| panic!("{e}"));
        let mut left = n_file;
        while left > 0 {
            let n = left.min(64 * 1024);
            w.write(&batch(&mut rng, n as usize, o.members)).unwrap_or_else(|e| panic!("{e}"));
            left -= n;
        }
        w.close().unwrap_or_else(|e| panic!("{e}"));
        written += n_file;
    }
    // The allowed members as a Parquet file, for engines that semi-join.
    let ids: Vec<u64> = (1..=o.members).filter(|m| allowed(*m)).collect();
    let b = RecordBatch::try_from_iter(vec![("member_id", Arc::new(UInt64Array::from(ids.clone())) as ArrayRef)])
        .unwrap_or_else(|e| panic!("{e}"));
    let path = o.dir.join("consent.parquet");
    let mut w = ArrowWriter::try_new(std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}")), b.schema(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    w.write(&b).unwrap_or_else(|e| panic!("{e}"));
    w.close().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("generated {} rows in {} files in {:.1} s", o.rows, o.files, t0.elapsed().as_secs_f64());
    // The ledger: every member in an opt-in jurisdiction, a grant for the allowed ones.
    let t0 = Instant::now();
    let db = o.dir.join("ledger.db");
    let _ = std::fs::remove_file(&db);
    let ledger = open_ledger(&db);
    let members: Vec<MemberRecord> = (1..=o.members)
        .map(|m| MemberRecord { member_id: m, jurisdiction: "DE".into(), birth_date: chrono_date() })
        .collect();
    for chunk in members.chunks(100_000) {
        ledger.store().put_members(chunk).unwrap_or_else(|e| panic!("{e}"));
    }
    for chunk in ids.chunks(50_000) {
        let batch: Vec<NewEvent> = chunk
            .iter()
            .map(|&m| NewEvent {
                member_id: m,
                purpose: PURPOSE.into(),
                action: Action::Grant,
                notice_version: 1,
                source: Source::Import,
                actor: "bench".into(),
                event_time: NOW - 1000,
                idempotency_key: format!("b{m}"),
            })
            .collect();
        ledger.append_at(batch, NOW).unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!("ledger: {} members, {} grants in {:.1} s", o.members, ids.len(), t0.elapsed().as_secs_f64());
}

fn chrono_date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap_or_default()
}

fn batch(rng: &mut ChaCha8Rng, n: usize, members: u64) -> RecordBatch {
    let mut m = Vec::with_capacity(n);
    let mut item = Vec::with_capacity(n);
    let mut action = Vec::with_capacity(n);
    let mut score = Vec::with_capacity(n);
    let mut at = Vec::with_capacity(n);
    let mut text = Vec::with_capacity(n);
    for _ in 0..n {
        let r = rng.next_u64();
        m.push(r % members + 1);
        item.push((r >> 20) % 100_000);
        action.push(["view", "apply", "save"][(r >> 40) as usize % 3]);
        score.push(((r >> 8) % 1000) as f64 / 1000.0);
        at.push(1_760_000_000_000 + ((r >> 16) % 31_536_000_000) as i64);
        let s = rng.next_u64();
        let mut t = String::with_capacity(64);
        for k in 0..6 {
            if k > 0 {
                t.push(' ');
            }
            t.push_str(WORDS[((s >> (k * 5)) % 12) as usize]);
        }
        if s.is_multiple_of(20) {
            t.push_str(&format!(" mail me at user{}@example.com", s % 9973));
        }
        text.push(t);
    }
    RecordBatch::try_from_iter(vec![
        ("member_id", Arc::new(UInt64Array::from(m)) as ArrayRef),
        ("item_id", Arc::new(UInt64Array::from(item)) as ArrayRef),
        ("action", Arc::new(StringArray::from(action)) as ArrayRef),
        ("score", Arc::new(Float64Array::from(score)) as ArrayRef),
        ("at", Arc::new(TimestampMillisecondArray::from(at).with_timezone("UTC")) as ArrayRef),
        ("text", Arc::new(StringArray::from(text)) as ArrayRef),
    ])
    .unwrap_or_else(|e| panic!("{e}"))
}

fn open_ledger(db: &Path) -> Ledger {
    let store = SqliteStore::open(db).unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    Ledger::new(Box::new(store), Policy::default_policy(), LogKey::from_seed([9; 32]), LedgerOptions::default())
}

const SOURCES: &str = r#"
[tables.events]
path = "events"
members = ["member_id"]
redact = ["text"]
[tables.events.columns]
item_id = "user.behavior.job_activity"
action = "user.behavior.job_activity"
score = "user.behavior.job_activity"
at = "user.behavior.job_activity"
text = "user.behavior.job_activity"
"#;

/// CPU seconds this process has used so far, all threads (`/proc/self/stat`, Linux; 0 elsewhere): on a
/// shared machine the CPU a run takes says more than its wall time.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command's closing parenthesis; utime and stime are fields 14 and 15 (ticks of 1/100 s).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0
}

/// Runs the gate once; returns (rows in, rows out, seconds, bytes written, CPU seconds).
fn run_gate(o: &Opts, snap: &Snapshot, policy: &Policy, redact: bool) -> (u64, u64, f64, u64, f64) {
    let sources = Sources::parse("bench.toml", SOURCES, &o.dir).unwrap_or_else(|e| panic!("{e}"));
    let det = if redact { Some(consentry_redact::Detector::new().unwrap_or_else(|e| panic!("{e}"))) } else { None };
    let out = o.dir.join(if redact { "out-redact" } else { "out" });
    let _ = std::fs::remove_dir_all(&out);
    let req = GateRequest {
        policy,
        snapshot: snap,
        checkpoint: None,
        sources: &sources,
        declaration_hash: blake3::hash(SOURCES.as_bytes()).to_hex().to_string(),
        detector: det.as_ref(),
        member_names: 0,
        options: {
            let d = GateOptions::default();
            GateOptions {
                threads: o.threads.unwrap_or(d.threads),
                batch_rows: o.batch_rows.unwrap_or(d.batch_rows),
                window: o.window.unwrap_or(d.window),
                ..d
            }
        },
        created: snap.at(),
    };
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let r = materialize(&req, Some(&out), &NoProgress).unwrap_or_else(|e| panic!("{e}"));
    let (s, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    // Short digests of what was written, so runs (kernels, thread counts, versions) can be compared.
    let files: String = r.manifest.files.iter().map(|f| f.blake3.as_str()).collect();
    println!(
        "digests: row commitment {}, output files {}",
        r.manifest
            .tables
            .get("events")
            .map_or("-".into(), |t| blake3::hash(t.row_commitment.as_bytes()).to_hex()[..16].to_string()),
        &blake3::hash(files.as_bytes()).to_hex()[..16]
    );
    let _ = std::fs::remove_dir_all(&out);
    (r.manifest.rows_in, r.manifest.rows_out, s, r.manifest.files.iter().map(|f| f.bytes).sum(), cpu)
}

/// Nanoseconds per row of the row commitment alone (canonical encoding of ~100-byte rows, keyed
/// digest, 2048-byte expansion), through the batch path the gate uses.
fn commit_cost() -> f64 {
    let n = 200_000;
    let b = batch(&mut ChaCha8Rng::seed_from_u64(7), n, 1_000_000);
    let key = [7u8; 32];
    // The machine may be shared: the best of five, in this thread's CPU time where Linux tells it.
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let mut lt = consentry_gate::LtHash::new();
        let (t0, c0) = (Instant::now(), thread_cpu_ns());
        consentry_gate::commit::add_batch(&mut lt, &key, &b).unwrap_or_else(|e| panic!("{e}"));
        let ns = match (c0, thread_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64,
            _ => t0.elapsed().as_nanos() as f64,
        };
        best = best.min(ns / n as f64);
        std::hint::black_box(lt);
    }
    best
}

/// The process's peak resident memory so far in MB (`VmHWM` in `/proc/self/status`, Linux; 0 elsewhere).
fn peak_mb() -> u64 {
    rss_mb("VmHWM:")
}

/// A memory figure of `/proc/self/status` in MB (`VmRSS:` resident now, `VmHWM:` peak; 0 off Linux).
fn rss_mb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    kb.unwrap_or(0) / 1024
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`, Linux).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

fn main() {
    let o = opts();
    println!(
        "lthash kernel: {} ({}={})",
        consentry_gate::commit::kernel().name(),
        consentry_gate::commit::KERNEL_ENV,
        std::env::var(consentry_gate::commit::KERNEL_ENV).unwrap_or_default()
    );
    if o.mode == "commit" || o.mode == "all" {
        println!("row commitment: {:.0} ns per row on one core (best of 5)", commit_cost());
        if o.mode == "commit" {
            return;
        }
    }
    if o.mode == "generate" || (o.mode == "all" && !o.dir.join("ledger.db").exists()) {
        generate(&o);
        if o.mode == "generate" {
            return;
        }
    }
    let ledger = open_ledger(&o.dir.join("ledger.db"));
    let t0 = Instant::now();
    let len = ledger.store().len().unwrap_or_else(|e| panic!("{e}"));
    let pid = ledger.policy().purpose_id(PURPOSE).unwrap_or_else(|| panic!("no purpose"));
    let root = ledger.root(len).unwrap_or_else(|e| panic!("{e}"));
    let snap = Snapshot::build(ledger.store(), ledger.policy(), pid, len, NOW, root).unwrap_or_else(|e| panic!("{e}"));
    let snap_s = t0.elapsed().as_secs_f64();
    // The gate needs the snapshot and the policy, not the ledger (whose Merkle tree is large).
    let policy = ledger.policy().clone();
    drop(ledger);
    let setup_peak = peak_mb();
    let modes: Vec<bool> = match o.mode.as_str() {
        "gate" => vec![false],
        "gate-redact" => vec![true],
        _ => vec![false, true],
    };
    println!(
        "snapshot: {} of {} members allowed, built in {snap_s:.2} s (not counted below); setup peak {setup_peak} MB, \
         resident now {} MB",
        snap.allowed().len(),
        snap.counts().members,
        rss_mb("VmRSS:")
    );
    println!("| run | rows in | rows out | seconds | input rows/s | output MB | CPU seconds |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for redact in modes {
        // The peak from here on is the gate's (the snapshot it reads stays resident and counts).
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let (rin, rout, s, bytes, cpu) = run_gate(&o, &snap, &policy, redact);
        if reset {
            println!("gate peak memory (snapshot included, setup excluded): {} MB", peak_mb());
        }
        println!(
            "| consentry gate{} | {rin} | {rout} | {s:.2} | {:.2} M | {:.1} | {cpu:.2} |",
            if redact { " (redaction on)" } else { " (redaction off)" },
            rin as f64 / s / 1e6,
            bytes as f64 / 1e6
        );
    }
}
