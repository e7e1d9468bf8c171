//! The outbox on both backends: every fresh append gets exactly one row in the same transaction (duplicates and
//! refused batches none), ids are gap-free in commit order — also under concurrent writers on PostgreSQL, where a
//! consumer reading `after = N` must never later find a smaller id —, pushed rows share the id space, cursors
//! persist, and a store from before the outbox reads as an empty one when opened read-only.

use consentry_test_support::pg as support;

use consentry_ledger::outbox::{CONSENT_CHANGED, ConsentChanged, UNLEARNING_COMPLETED};
use consentry_ledger::postgres::PgStore;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{LedgerError, NewEvent, Store};
use consentry_policy::{Action, Source};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const NOW: i64 = 1_790_000_000;
const JOBS: &str = "train_ai_system.job_recommendations";

fn ev(member: u64, key: &str) -> NewEvent {
    NewEvent {
        member_id: member,
        purpose: JOBS.into(),
        action: if member.is_multiple_of(2) { Action::Grant } else { Action::Withdraw },
        notice_version: 1,
        source: Source::Api,
        actor: format!("member:{member}"),
        event_time: NOW - 100,
        idempotency_key: key.into(),
    }
}

/// Every outbox row, checked gap-free from 1.
fn all_rows(store: &dyn Store) -> Vec<consentry_ledger::outbox::OutboxRow> {
    let rows = store.outbox_after(0, usize::MAX).unwrap();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.id, i as u64 + 1, "outbox ids are gap-free from 1");
    }
    rows
}

/// The shared checks: fresh appends get rows with the event's fields, duplicates and refused batches none,
/// pushes continue the ids, cursors persist.
fn outbox_follows_appends(store: &dyn Store) {
    let first = store.append(vec![ev(1, "a"), ev(2, "b"), ev(1, "a")], NOW).unwrap();
    assert!(first[2].duplicate);
    // A retry of the whole batch: duplicates only, no rows.
    assert!(store.append(vec![ev(1, "a"), ev(2, "b")], NOW).unwrap().iter().all(|a| a.duplicate));
    // A refused batch (a key reused for another request) writes nothing at all.
    let conflict = store.append(vec![ev(3, "c"), ev(9, "a")], NOW).unwrap_err();
    assert!(matches!(conflict, LedgerError::IdempotencyConflict { .. }), "{conflict}");
    let rows = all_rows(store);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, appended) in rows.iter().zip(&first) {
        assert_eq!(row.kind, CONSENT_CHANGED);
        let payload: ConsentChanged = serde_json::from_str(&row.payload).unwrap();
        assert_eq!(payload, ConsentChanged::of(&appended.event));
        assert_eq!(row.created, NOW);
    }
    let pushed = store.outbox_push(UNLEARNING_COMPLETED, r#"{"members":[1]}"#, NOW + 5).unwrap();
    assert_eq!(pushed, 3);
    store.append(vec![ev(4, "d")], NOW + 6).unwrap();
    let rows = all_rows(store);
    assert_eq!(
        rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        [CONSENT_CHANGED, CONSENT_CHANGED, UNLEARNING_COMPLETED, CONSENT_CHANGED]
    );
    assert_eq!(store.outbox_last().unwrap(), 4);
    assert_eq!(store.outbox_after(2, 1).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [3]);
    assert_eq!(store.outbox_cursor("crm").unwrap(), None);
    store.set_outbox_cursor("crm", 3).unwrap();
    assert_eq!(store.outbox_cursor("crm").unwrap(), Some(3));
    assert_eq!(store.outbox_cursor("other").unwrap(), None);
}

#[test]
fn sqlite_outbox_follows_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    outbox_follows_appends(&SqliteStore::open(&path).unwrap());
    let reopened = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(reopened.outbox_cursor("crm").unwrap(), Some(3), "the cursor persists");
    assert_eq!(all_rows(&reopened).len(), 4);
    assert!(reopened.outbox_push(UNLEARNING_COMPLETED, "{}", NOW).is_err(), "a read-only store writes nothing");
}

/// Concurrent appenders are group-committed (the fast path) and a batch with a repeated key takes the careful
/// path: either way each fresh event has exactly one row, in log order.
#[test]
fn sqlite_group_commits_write_one_row_per_fresh_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("ledger.db")).unwrap());
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let store = Arc::clone(&store);
            s.spawn(move || {
                for i in 0..25u64 {
                    let k = format!("t{t}-{i}");
                    // Every fifth request repeats an earlier key in its batch: the careful path.
                    let batch = if i % 5 == 0 { vec![ev(t, &k), ev(t, &k)] } else { vec![ev(t * 100 + i, &k)] };
                    store.append(batch, NOW).unwrap();
                }
            });
        }
    });
    let rows = all_rows(&*store);
    assert_eq!(rows.len(), 200);
    for r in &rows {
        let p: ConsentChanged = serde_json::from_str(&r.payload).unwrap();
        let e = store.event(p.seq).unwrap().unwrap();
        assert_eq!(p, ConsentChanged::of(&e.event));
    }
    let seqs: Vec<u64> = rows.iter().map(|r| serde_json::from_str::<ConsentChanged>(&r.payload).unwrap().seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "rows follow log order");
}

/// A ledger from before the outbox: read-only, its outbox is empty; the first writable open adds the table (and
/// the `outbox` schema row) and leaves the ledger's version as it was.
#[test]
fn sqlite_store_from_before_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    SqliteStore::open(&path).unwrap().append(vec![ev(1, "a")], NOW).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("DROP TABLE outbox; DELETE FROM consentry_schema WHERE component = 'outbox'").unwrap();
    drop(c);
    let ro = SqliteStore::open_read_only(&path).unwrap();
    assert!(ro.outbox_after(0, 10).unwrap().is_empty());
    assert_eq!(ro.outbox_last().unwrap(), 0);
    drop(ro);
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.outbox_after(0, 10).unwrap().is_empty(), "no backfill: the ledger holds the earlier events");
    store.append(vec![ev(2, "b")], NOW).unwrap();
    assert_eq!(all_rows(&store).len(), 1);
    let c = rusqlite::Connection::open(&path).unwrap();
    let versions: Vec<(String, i64)> = c
        .prepare("SELECT component, version FROM consentry_schema ORDER BY component")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        versions,
        [("keys".to_string(), 1), ("ledger".to_string(), 1), ("outbox".to_string(), 1), ("tiles".to_string(), 1)]
    );
}

#[test]
fn postgres_outbox_follows_appends() {
    let Some(db) = support::pg() else { return };
    outbox_follows_appends(&PgStore::connect(&db.url).unwrap());
    // A batch large enough for the COPY path gets its rows too.
    let store = PgStore::connect(&db.url).unwrap();
    let big: Vec<NewEvent> = (0..600).map(|i| ev(1000 + i, &format!("big-{i}"))).collect();
    let appended = store.append(big, NOW).unwrap();
    let rows = all_rows(&store);
    assert_eq!(rows.len(), 4 + 600);
    let last: ConsentChanged = serde_json::from_str(&rows[603].payload).unwrap();
    assert_eq!(last, ConsentChanged::of(&appended[599].event));
}

/// Several stores (sessions) append and push at once while a consumer follows with `after = last seen`: it sees
/// every id exactly once, in order, never one below what it already read.
#[test]
fn postgres_outbox_ids_are_never_skipped_under_concurrent_writers() {
    let Some(db) = support::pg() else { return };
    drop(PgStore::connect(&db.url).unwrap());
    let done = AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let store = PgStore::connect(&db.url).unwrap();
            let mut after = 0u64;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let rows = store.outbox_after(after, 7).unwrap();
                for r in &rows {
                    assert_eq!(r.id, after + 1, "after {after} the consumer read {}: a row was skipped", r.id);
                    after = r.id;
                    seen.push(r.id);
                }
                if rows.is_empty() && finished {
                    break seen;
                }
            }
        });
        let writers: Vec<_> = (0..4u64)
            .map(|t| {
                let url = db.url.clone();
                s.spawn(move || {
                    let store = PgStore::connect(&url).unwrap();
                    for i in 0..40u64 {
                        if i % 10 == 9 {
                            store.outbox_push(UNLEARNING_COMPLETED, "{}", NOW).unwrap();
                        } else {
                            let batch = (0..(i % 3 + 1)).map(|j| ev(t * 1000 + i, &format!("{t}-{i}-{j}"))).collect();
                            store.append(batch, NOW).unwrap();
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        consumer.join().unwrap()
    });
    let store = PgStore::connect(&db.url).unwrap();
    let total = store.outbox_last().unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    // 4 writers × (4 pushes + 36 batches of 1–3 events).
    let events: u64 = (0..40u64).filter(|i| i % 10 != 9).map(|i| i % 3 + 1).sum::<u64>() * 4;
    assert_eq!(total, events + 16);
    assert_eq!(store.len().unwrap(), events);
}
