//! Crash safety (promise 5): a child process appends events and prints each
//! acknowledged one; the test kills it with SIGKILL at random moments,
//! restarts it, and finally checks that every acknowledged event is in the
//! log at the acknowledged position and that the whole log verifies.
//!
//! `CONSENTRY_CRASH_KILLS=N` sets the number of kills per backend (default 60);
//! `CONSENTRY_CRASH_SEED=S` replays a particular schedule.

use consentry_test_support::pg as support;

use consentry_ledger::postgres::PgStore;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, Store};
use consentry_policy::Policy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = env!("CARGO_BIN_EXE_consentry-ledger-crashtest");

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

/// Parses `ack <seq> <key>` lines; a line cut short by the kill has no newline and is ignored.
fn parse_acks(stdout: &[u8]) -> Vec<(u64, String)> {
    let text = String::from_utf8_lossy(stdout);
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            let mut w = l.split(' ');
            assert_eq!(w.next(), Some("ack"), "unexpected child output {l:?}");
            let seq = w.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad ack line {l:?}"));
            let key = w.next().unwrap_or_else(|| panic!("bad ack line {l:?}")).to_string();
            (seq, key)
        })
        .collect()
}

/// A child's standard output read on a thread: a signal at its first complete line, and all of it at the end.
struct Background {
    first_line: std::sync::mpsc::Receiver<()>,
    all: std::thread::JoinHandle<Vec<u8>>,
}

fn read_in_background(mut out: std::process::ChildStdout) -> Background {
    let (tx, first_line) = std::sync::mpsc::channel();
    let all = std::thread::spawn(move || {
        use std::io::Read;
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut told = false;
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if !told && all.contains(&b'\n') {
                told = true;
                let _ = tx.send(());
            }
        }
        all
    });
    Background { first_line, all }
}

struct Outcome {
    kills: u64,
    acked: usize,
    events: u64,
    elapsed: Duration,
}

/// Runs the kill loop against the store named by `target` (`["--sqlite", path]` or `["--postgres", url]`), with
/// `threads` appending threads in each child and `kills` kills unless `CONSENTRY_CRASH_KILLS` says otherwise.
fn crash_loop(
    name: &str,
    target: [&str; 2],
    open: &dyn Fn() -> Box<dyn Store>,
    seed: u64,
    threads: u32,
    kills: u64,
) -> Outcome {
    let kills = env_u64("CONSENTRY_CRASH_KILLS", kills);
    let seed = env_u64("CONSENTRY_CRASH_SEED", seed);
    eprintln!("{name}: {kills} kills, seed {seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    let mut acked: HashMap<String, u64> = HashMap::new();
    for round in 0..kills {
        // Mostly while appending: 5–150 ms after the child's first acknowledgement (counted from there, not from
        // the spawn, so a loaded machine, where connecting and opening the log take longer, still gets appends
        // into every such round); sometimes during start-up, 0–5 ms after the spawn.
        let during_startup = rng.random_bool(0.1);
        let delay_us = if during_startup { rng.random_range(0..5_000) } else { rng.random_range(5_000..150_000) };
        let mut child = Command::new(CHILD)
            .args(target)
            .args(["--run-id", &format!("{name}{round}"), "--threads", &threads.to_string()])
            .args(["--checkpoint-every", "64"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the crash-test child");
        let stdout = read_in_background(child.stdout.take().expect("the child's stdout"));
        if !during_startup {
            // Up to a minute for the first acknowledgement; a child that ends first is reported below.
            let _ = stdout.first_line.recv_timeout(Duration::from_secs(60));
        }
        std::thread::sleep(Duration::from_micros(delay_us));
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!("{name}: the child exited on its own ({status}): {}", String::from_utf8_lossy(&out.stderr));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let acks = parse_acks(&stdout.all.join().expect("the stdout reader"));
        for (seq, key) in &acks {
            if let Some(old) = acked.insert(key.clone(), *seq) {
                panic!("{name}: key {key} acknowledged twice (at {old} and {seq})");
            }
        }
        // The newest acknowledgement of this round must already be readable after the kill.
        if let Some((seq, key)) = acks.last() {
            let store = open();
            let e = store.event(*seq).unwrap().unwrap_or_else(|| panic!("{name}: acknowledged event {seq} lost"));
            assert_eq!(&e.event.body.idempotency_key, key, "{name}: event {seq} is not the acknowledged one");
        }
    }
    // A last, uninterrupted run: the log carries on after all those crashes, and signs at least one checkpoint
    // (every 8 events: the rounds' children may all have been killed before one of theirs).
    let out = Command::new(CHILD)
        .args(target)
        .args(["--run-id", &format!("{name}-final"), "--count", "40", "--checkpoint-every", "8"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    let last = parse_acks(&out.stdout);
    assert_eq!(last.len(), 40);
    acked.extend(last.into_iter().map(|(s, k)| (k, s)));

    let ledger = Ledger::new(open(), Policy::default_policy(), LogKey::from_seed([1; 32]), LedgerOptions::default());
    let mut stored: HashMap<u64, String> = HashMap::new();
    ledger
        .store()
        .scan(1, u64::MAX, &mut |s| {
            stored.insert(s.event.seq, s.event.body.idempotency_key);
            Ok(())
        })
        .unwrap();
    for (key, seq) in &acked {
        assert_eq!(stored.get(seq), Some(key), "{name}: acknowledged event {seq} ({key}) is missing or different");
    }
    let v = ledger.verify().unwrap();
    assert!(v.ok(), "{name}: {v:?}");
    assert!(v.checkpoints > 0, "{name}: no checkpoint was ever made");
    assert!(
        acked.len() as u64 >= kills,
        "{name}: only {} events were acknowledged in {kills} runs; the children hardly ran",
        acked.len()
    );
    let o = Outcome { kills, acked: acked.len(), events: v.events, elapsed: started.elapsed() };
    eprintln!(
        "{name}: {} kills, {} acknowledged events all present, {} events in the log, verify ok, {:.1?}",
        o.kills, o.acked, o.events, o.elapsed
    );
    o
}

/// The outbox survived the same kills as the log: exactly one row per stored event, in log order, gap-free ids —
/// it is written in the append's transaction, so a kill leaves both or neither.
fn outbox_matches_log(name: &str, store: &dyn Store) {
    let mut seqs: Vec<u64> = Vec::new();
    store
        .scan(1, u64::MAX, &mut |s| {
            seqs.push(s.event.seq);
            Ok(())
        })
        .unwrap();
    let rows = store.outbox_after(0, usize::MAX).unwrap();
    let ids: Vec<u64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, (1..=rows.len() as u64).collect::<Vec<_>>(), "{name}: outbox ids have a gap");
    let named: Vec<u64> = rows
        .iter()
        .map(|r| serde_json::from_str::<consentry_ledger::outbox::ConsentChanged>(&r.payload).unwrap().seq)
        .collect();
    assert_eq!(named, seqs, "{name}: the outbox and the log disagree after the kills");
}

#[test]
fn sqlite_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let path_str = path.to_str().unwrap().to_string();
    let open = || Box::new(SqliteStore::open(&path).unwrap()) as Box<dyn Store>;
    let o = crash_loop("sqlite", ["--sqlite", &path_str], &open, 0x5157_11fe, 3, 60);
    assert!(o.events >= o.acked as u64);
    outbox_matches_log("sqlite", &*open());
}

#[test]
fn postgres_survives_sigkill() {
    let Some(db) = support::pg() else { return };
    let open = || Box::new(PgStore::connect(&db.url).unwrap()) as Box<dyn Store>;
    let o = crash_loop("postgres", ["--postgres", &db.url], &open, 0x0090_57e5, 3, 60);
    assert!(o.events >= o.acked as u64);
    outbox_matches_log("postgres", &*open());
}

/// Red team for PostgreSQL's group commit: sixteen threads per child keep a group in flight nearly all the time,
/// so most kills land while a leader holds other callers' requests (queued, in its open transaction, or in the
/// commit): every request a caller saw acknowledged must be in the log, and nothing half-committed may be.
#[test]
fn postgres_survives_sigkill_mid_group() {
    let Some(db) = support::pg() else { return };
    let open = || Box::new(PgStore::connect(&db.url).unwrap()) as Box<dyn Store>;
    let o = crash_loop("postgres-groups", ["--postgres", &db.url], &open, 0x0067_0c0d, 16, 20);
    assert!(o.events >= o.acked as u64);
    outbox_matches_log("postgres-groups", &*open());
}
