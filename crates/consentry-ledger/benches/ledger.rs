//! Ledger throughput on SQLite, against a raw SQLite insert of the same rows
//! in the same run; snapshot build and incremental refresh.
//!
//! `cargo bench -p consentry-ledger --bench ledger` (set `LEDGER_BENCH_EVENTS`
//! and `LEDGER_BENCH_MEMBERS` to change the sizes; `LEDGER_BENCH_DIR` for the
//! directory, which should be on a real disk so fsync costs what it costs).

mod common;

use chrono::NaiveDate;
use common::{JAN, events};
use consentry_ledger::snapshot::Snapshot;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, MemberRecord, NewEvent};
use consentry_policy::Policy;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn open(dir: &std::path::Path, name: &str) -> Ledger {
    let store = SqliteStore::open(&dir.join(name)).expect("open sqlite");
    let opts = LedgerOptions { checkpoint_every: 0, ..LedgerOptions::default() };
    Ledger::new(Box::new(store), Policy::default_policy(), LogKey::from_seed([9; 32]), opts)
}

/// A ledger without a member directory, for the append-latency measurements of the log alone.
fn open_bare(dir: &std::path::Path, name: &str) -> Ledger {
    let store = SqliteStore::open(&dir.join(name)).expect("open sqlite");
    let opts = LedgerOptions { checkpoint_every: 0, require_known_members: false, ..LedgerOptions::default() };
    Ledger::new(Box::new(store), Policy::default_policy(), LogKey::from_seed([9; 32]), opts)
}

fn raw_insert(path: &std::path::Path, rows: &[NewEvent], batch: usize) -> f64 {
    let conn = rusqlite::Connection::open(path).expect("raw db");
    conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
    conn.pragma_update(None, "synchronous", "FULL").expect("sync");
    conn.execute_batch(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, member_id INTEGER NOT NULL, purpose_id INTEGER NOT NULL,
         action INTEGER NOT NULL, notice_version INTEGER NOT NULL, source INTEGER NOT NULL, actor TEXT NOT NULL,
         event_time INTEGER NOT NULL, recorded_time INTEGER NOT NULL, idem_key TEXT NOT NULL UNIQUE,
         leaf_hash BLOB NOT NULL, chain_hash BLOB NOT NULL)",
    )
    .expect("schema");
    let start = Instant::now();
    let mut conn = conn;
    let zero = [0u8; 32];
    for (c, chunk) in rows.chunks(batch).enumerate() {
        let tx = conn.transaction().expect("tx");
        {
            let mut st =
                tx.prepare_cached("INSERT INTO events VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)").expect("prep");
            for (i, e) in chunk.iter().enumerate() {
                st.execute(rusqlite::params![
                    (c * batch + i + 1) as i64,
                    e.member_id as i64,
                    1,
                    1,
                    i64::from(e.notice_version),
                    1,
                    e.actor,
                    e.event_time,
                    JAN,
                    e.idempotency_key,
                    &zero[..],
                    &zero[..]
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    let dir = match std::env::var("LEDGER_BENCH_DIR") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => std::path::PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/ledger-bench")),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let n_batched = env("LEDGER_BENCH_EVENTS", 5_000_000);
    let n_members = env("LEDGER_BENCH_MEMBERS", 1_000_000);
    let policy = Policy::default_policy();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let now = JAN + 400 * 86_400;
    println!("{:<58} {:>12} {:>14}", "measurement", "events", "result");

    // Durable single appends, one caller: one fsync each.
    let l = open_bare(&dir, "single.db");
    let evs = events(&mut rng, &policy, 0..300, n_members, "s");
    let t = Instant::now();
    for e in evs {
        l.append_at(vec![e], now).expect("append");
    }
    let s = t.elapsed().as_secs_f64();
    println!("{:<58} {:>12} {:>11.0}/s", "single appends, 1 caller (1 fsync each)", 300, 300.0 / s);

    // Durable single appends, 16 concurrent callers: group commit.
    let l = open_bare(&dir, "group.db");
    let per = 400;
    let all: Vec<Vec<NewEvent>> =
        (0..16).map(|t| events(&mut rng, &policy, 0..per, n_members, &format!("g{t}-"))).collect();
    let t = Instant::now();
    std::thread::scope(|sc| {
        for evs in all {
            let l = &l;
            sc.spawn(move || {
                for e in evs {
                    l.append_at(vec![e], now).expect("append");
                }
            });
        }
    });
    let s = t.elapsed().as_secs_f64();
    println!("{:<58} {:>12} {:>11.0}/s", "single appends, 16 callers (group commit)", 16 * per, (16 * per) as f64 / s);

    // Batched appends vs raw insert of the same rows.
    let ledger = open(&dir, "ledger.db");
    let members: Vec<MemberRecord> = (1..=n_members)
        .map(|id| MemberRecord {
            member_id: id,
            jurisdiction: ["US-CA", "US", "DE", "GB", "IN", "FR"][(id % 6) as usize].to_string(),
            birth_date: NaiveDate::from_ymd_opt(1960 + (id % 45) as i32, 1 + (id % 12) as u32, 1).expect("date"),
        })
        .collect();
    ledger.store().put_members(&members).expect("members");
    let batch = 10_000usize;
    let evs = events(&mut rng, &policy, 0..n_batched, n_members, "b");
    let raw_s = raw_insert(&dir.join("raw.db"), &evs, batch);
    // Batches are cut before the clock starts, as the raw insert gets its rows ready-made.
    let mut batches: Vec<Vec<NewEvent>> = Vec::new();
    let mut rest = evs.into_iter();
    loop {
        let b: Vec<NewEvent> = rest.by_ref().take(batch).collect();
        if b.is_empty() {
            break;
        }
        batches.push(b);
    }
    let t = Instant::now();
    for b in batches {
        ledger.append_at(b, now).expect("append batch");
    }
    let ours_s = t.elapsed().as_secs_f64();
    let (ours, raw) = (n_batched as f64 / ours_s, n_batched as f64 / raw_s);
    println!(
        "{:<58} {:>12} {:>11.0}/s",
        format!("ledger appends, batches of {batch} (hash chain, dedupe)"),
        n_batched,
        ours
    );
    println!("{:<58} {:>12} {:>11.0}/s", "raw SQLite insert of the same rows, same batches", n_batched, raw);
    println!("{:<58} {:>12} {:>13.2}×", "ledger / raw", "", ours / raw);

    // Full snapshot of every purpose, reading the events from SQLite.
    let len = ledger.store().len().expect("len");
    let root = ledger.root(len).expect("root");
    let ids: Vec<_> = policy.purpose_ids().collect();
    let at = now;
    let t = Instant::now();
    let mut snaps = Snapshot::build_many(ledger.store(), &policy, &ids, len, at, root).expect("snapshot");
    let s = t.elapsed().as_secs_f64();
    let allowed: u64 = snaps.iter().map(|s| s.allowed().len()).sum();
    println!(
        "{:<58} {:>12} {:>12.2}s",
        format!("full snapshot, {n_members} members × {} purposes ({allowed} allowed)", ids.len()),
        len,
        s
    );

    // The same through the ledger, as the CLI builds it: the first call in a process verifies every entry
    // against the chain and the checkpoints; later ones only what is new.
    let verified = open(&dir, "ledger.db");
    let t = Instant::now();
    verified.snapshots(&ids, len, at).expect("verified snapshot");
    let first = t.elapsed().as_secs_f64();
    let t = Instant::now();
    verified.snapshots(&ids, len, at).expect("verified snapshot");
    let again = t.elapsed().as_secs_f64();
    println!("{:<58} {:>12} {:>12.2}s", "verified snapshot, first in a process (full verification)", len, first);
    println!("{:<58} {:>12} {:>12.2}s", "verified snapshot, again (nothing new to verify)", len, again);
    drop(verified);

    // Incremental refresh after 10 000 new events.
    let more = events(&mut rng, &policy, 0..10_000, n_members, "i");
    ledger.append_at(more, now).expect("append more");
    let len2 = ledger.store().len().expect("len");
    let root2 = ledger.root(len2).expect("root");
    let t = Instant::now();
    let mut touched = 0;
    for s in &mut snaps {
        touched += s.refresh(ledger.store(), &policy, len2, at, root2).expect("refresh");
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{:<58} {:>12} {:>11.1}ms",
        format!("incremental refresh, 3 purposes ({touched} members re-evaluated)"),
        10_000,
        s * 1000.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
