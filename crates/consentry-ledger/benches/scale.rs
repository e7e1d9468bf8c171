//! Snapshot and concurrent-append scale measurements on both backends, one step per process so each step's peak
//! memory is its own (`bench/scale/snapshot.sh` drives it and prints the table).
//!
//! ```text
//! cargo bench -p consentry-ledger --bench scale -- load     <sqlite PATH | postgres URL> MEMBERS EVENTS
//! cargo bench -p consentry-ledger --bench scale -- snapshot <sqlite PATH | postgres URL> [RUNS]
//! cargo bench -p consentry-ledger --bench scale -- appends  <sqlite PATH | postgres URL> [EVENTS_PER_CALLER]
//! ```
//!
//! `load` writes the member directory and the events straight through the store (no Merkle tree: a snapshot reads
//! the store, and a tree of 100 M leaves would measure the tree, not the backend). `snapshot` builds the full
//! snapshot of every purpose of the default policy and prints one tab-separated line: backend, members, events,
//! best wall seconds, peak RSS (KiB, this process; a PostgreSQL server's own memory is not counted) and database
//! size (bytes). `appends` times durable single-event appends from 1, 4 and 16 threads on one store (group commit)
//! and from 16 stores (one session each, so nothing groups across them).

mod common;

use chrono::NaiveDate;
use common::{JAN, events, status_kib};
use consentry_ledger::postgres::PgStore;
use consentry_ledger::snapshot::Snapshot;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{MemberRecord, NewEvent, Store};
use consentry_policy::Policy;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

const NOW: i64 = JAN + 400 * 86_400;

/// Events generated and appended per batch while loading.
const LOAD_BATCH: u64 = 100_000;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn member(id: u64) -> MemberRecord {
    MemberRecord {
        member_id: id,
        jurisdiction: ["US-CA", "US", "DE", "GB", "IN", "FR"][(id % 6) as usize].to_string(),
        birth_date: NaiveDate::from_ymd_opt(1960 + (id % 45) as i32, 1 + (id % 12) as u32, 1).unwrap_or_default(),
    }
}

fn open(backend: &str, target: &str) -> Res<Box<dyn Store>> {
    Ok(match backend {
        "sqlite" => Box::new(SqliteStore::open(std::path::Path::new(target))?),
        "postgres" => Box::new(PgStore::connect(target)?),
        other => return Err(format!("unknown backend `{other}` (sqlite or postgres)").into()),
    })
}

/// Bytes the database takes: the SQLite file and its WAL, or `pg_database_size`.
fn db_size(backend: &str, target: &str) -> Res<u64> {
    if backend == "sqlite" {
        let wal = format!("{target}-wal");
        return Ok([target, wal.as_str()].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum());
    }
    let mut c = postgres::Client::connect(target, postgres::NoTls)?;
    let n: i64 = c.query_one("SELECT pg_database_size(current_database())", &[])?.get(0);
    Ok(n as u64)
}

fn load(store: &dyn Store, members: u64, n_events: u64) -> Res<()> {
    let policy = Policy::default_policy();
    let t = Instant::now();
    // One call: every call reads the latest facts of the whole directory to find what changed.
    store.append_facts((1..=members).map(member).collect(), "import", JAN)?;
    eprintln!("members: {members} in {:.1}s", t.elapsed().as_secs_f64());
    // Generation runs one batch ahead of the appends, on its own thread.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<NewEvent>>(2);
    let t = Instant::now();
    std::thread::scope(|s| -> Res<()> {
        s.spawn(move || {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let mut i = 0;
            while i < n_events {
                let hi = (i + LOAD_BATCH).min(n_events);
                if tx.send(events(&mut rng, &policy, i..hi, members, "e")).is_err() {
                    return;
                }
                i = hi;
            }
        });
        let mut done = 0u64;
        for batch in rx {
            done += batch.len() as u64;
            store.append(batch, NOW)?;
            if done.is_multiple_of(10_000_000) {
                eprintln!("events: {done} in {:.0}s", t.elapsed().as_secs_f64());
            }
        }
        Ok(())
    })?;
    eprintln!("events: {n_events} in {:.1}s", t.elapsed().as_secs_f64());
    Ok(())
}

fn snapshot(backend: &str, target: &str, store: &dyn Store, runs: u32) -> Res<()> {
    let policy = Policy::default_policy();
    let ids: Vec<_> = policy.purpose_ids().collect();
    let len = store.len()?;
    let mut best = f64::INFINITY;
    let mut members = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let snaps = Snapshot::build_many(store, &policy, &ids, len, NOW, [0; 32])?;
        best = best.min(t.elapsed().as_secs_f64());
        members = snaps.first().map_or(0, |s| s.counts().members);
        let allowed: u64 = snaps.iter().map(|s| s.allowed().len()).sum();
        eprintln!(
            "{backend}: snapshot of {members} members × {} purposes ({allowed} allowed) in {best:.2}s",
            ids.len()
        );
    }
    println!("{backend}\t{members}\t{len}\t{best:.3}\t{}\t{}", status_kib("VmHWM"), db_size(backend, target)?);
    Ok(())
}

fn appends(backend: &str, target: &str, per: u64) -> Res<()> {
    let policy = Policy::default_policy();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut next = 0u64;
    let mut batch = |rng: &mut ChaCha8Rng, callers: u64, tag: &str| -> Vec<Vec<NewEvent>> {
        (0..callers)
            .map(|_| {
                let mut v = events(rng, &policy, next..next + per, 1_000, "e");
                for e in &mut v {
                    e.idempotency_key = format!("{tag}{}", e.idempotency_key);
                }
                next += per;
                v
            })
            .collect()
    };
    let run = |stores: &[&dyn Store], work: Vec<Vec<NewEvent>>| -> Res<f64> {
        let n: usize = work.iter().map(Vec::len).sum();
        let t = Instant::now();
        std::thread::scope(|s| {
            let handles: Vec<_> = work
                .into_iter()
                .enumerate()
                .map(|(i, evs)| {
                    let store = stores[i % stores.len()];
                    s.spawn(move || -> Result<(), consentry_ledger::LedgerError> {
                        for e in evs {
                            store.append(vec![e], NOW)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| h.join().map_err(|_| "an appender panicked")?.map_err(Into::into))
        })
        .map_err(|e: Box<dyn std::error::Error>| e)?;
        Ok(n as f64 / t.elapsed().as_secs_f64())
    };
    let store = open(backend, target)?;
    for callers in [1u64, 4, 16] {
        let rate = run(&[store.as_ref()], batch(&mut rng, callers, "a"))?;
        println!("{backend}\tone store, {callers} callers\t{}\t{rate:.0}", callers * per);
    }
    // One store per caller: each has its own writer session, so each append is its own transaction and fsync.
    let many: Vec<Box<dyn Store>> = (0..16).map(|_| open(backend, target)).collect::<Res<_>>()?;
    let refs: Vec<&dyn Store> = many.iter().map(AsRef::as_ref).collect();
    let rate = run(&refs, batch(&mut rng, 16, "b"))?;
    println!("{backend}\t16 stores, 1 caller each\t{}\t{rate:.0}", 16 * per);
    Ok(())
}

fn main() -> Res<()> {
    // `cargo bench` adds `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or_else(|| format!("missing argument {i}; see the doc"));
    let num = |i: usize| -> Res<u64> { Ok(arg(i)?.replace('_', "").parse()?) };
    let (cmd, backend, target) = (arg(0)?, arg(1)?, arg(2)?);
    match cmd {
        "load" => load(open(backend, target)?.as_ref(), num(3)?, num(4)?),
        "snapshot" => {
            let runs = if args.len() > 3 { num(3)? as u32 } else { 1 };
            snapshot(backend, target, open(backend, target)?.as_ref(), runs)
        }
        "phases" => {
            // Where a snapshot's time goes: the two reads alone, each timed on its own.
            let store = open(backend, target)?;
            let len = store.len()?;
            let t = Instant::now();
            let mut n = 0u64;
            store.scan_member_facts(len, &mut |_, _, _| n += 1)?;
            println!("scan_member_facts\t{n}\t{:.3}", t.elapsed().as_secs_f64());
            let t = Instant::now();
            let mut n = 0u64;
            store.scan_consent(1, len, &mut |_, _, _| n += 1)?;
            println!("scan_consent\t{n}\t{:.3}", t.elapsed().as_secs_f64());
            Ok(())
        }
        "appends" => appends(backend, target, if args.len() > 3 { num(3)? } else { 200 }),
        other => Err(format!("unknown command `{other}` (load, snapshot or appends)").into()),
    }
}
