//! The ledger's commits (SQLite): appends, member facts, checkpoints.

use crate::common::{consentry, ok};
use crate::{Expect, assert_fired, assert_recovered, data_dir, expect, fault, run_faulty};
use consentry_app::DataDir;
use std::path::Path;

fn count(data: &Path, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(DataDir::new(data).ledger_db()).unwrap();
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn events(data: &Path) -> i64 {
    count(data, "SELECT COUNT(*) FROM events")
}

/// `ledger append` with an idempotency key: the event is there after the fault exactly when the point is past the
/// commit (never a partial row), and a retry with the same key records it exactly once.
fn append(point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    let before = events(&data);
    let args = [
        "--quiet",
        "ledger",
        "append",
        "--member",
        "7",
        "--purpose",
        crate::JOBS,
        "--action",
        "withdraw",
        "--idempotency-key",
        "fault-append-1",
    ];
    let o = run_faulty(&data, point, action, &args);
    assert_fired(&o, point, action);
    let after = events(&data);
    let keyed = count(&data, "SELECT COUNT(*) FROM events WHERE idem_key = 'fault-append-1'");
    match expect(point) {
        Expect::Old => assert_eq!((after, keyed), (before, 0), "{point}={action}"),
        Expect::New => assert_eq!((after, keyed), (before + 1, 1), "{point}={action}"),
    }
    // The retry (same key) succeeds and the event is recorded once.
    ok(&consentry(&data, &args));
    assert_eq!(events(&data), before + 1, "{point}={action}: the retry");
    assert_recovered(&data, &format!("{point}={action}"));
}

fault!(append_before_commit, "ledger::append::before_commit", append, ["io", "enospc", "crash"]);
fault!(append_after_commit, "ledger::append::after_commit", append, ["io", "crash"]);

/// `ledger import` into an empty ledger: member facts and events are all there or none (per batch), and the
/// import run again completes to exactly what an uninterrupted import writes.
fn import(point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), false);
    let reference = tmp.path().join("reference");
    crate::common::copy_dir(&data, &reference);
    let choices = DataDir::new(&data).network_dir().join("consent_choices.parquet");
    let args = ["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()];
    ok(&consentry(&reference, &args));
    let (all_facts, all_events) = (count(&reference, "SELECT COUNT(*) FROM facts"), events(&reference));
    let o = run_faulty(&data, point, action, &args);
    assert_fired(&o, point, action);
    let facts = count(&data, "SELECT COUNT(*) FROM facts");
    match expect(point) {
        Expect::Old => assert_eq!((facts, events(&data)), (0, 0), "{point}={action}"),
        Expect::New => assert_eq!(facts, all_facts, "{point}={action}"),
    }
    ok(&consentry(&data, &args));
    assert_eq!((count(&data, "SELECT COUNT(*) FROM facts"), events(&data)), (all_facts, all_events));
    assert_recovered(&data, &format!("{point}={action}"));
}

fault!(facts_before_commit, "ledger::facts::before_commit", import, ["io", "crash"]);
fault!(facts_after_commit, "ledger::facts::after_commit", import, ["crash"]);

/// `ledger checkpoint`: the signed head is stored or not, and a rerun signs one.
fn checkpoint(point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    // A new event so the checkpoint is a new head.
    ok(&consentry(&data, &crate::common::withdrawal("9", crate::JOBS, "ui")));
    let before = count(&data, "SELECT COUNT(*) FROM checkpoints");
    let o = run_faulty(&data, point, action, &["--quiet", "ledger", "checkpoint"]);
    assert_fired(&o, point, action);
    let after = count(&data, "SELECT COUNT(*) FROM checkpoints");
    match expect(point) {
        Expect::Old => assert_eq!(after, before, "{point}={action}"),
        Expect::New => assert_eq!(after, before + 1, "{point}={action}"),
    }
    ok(&consentry(&data, &["--quiet", "ledger", "checkpoint"]));
    assert_eq!(count(&data, "SELECT COUNT(*) FROM checkpoints"), before + 1, "{point}={action}: the rerun");
    assert_recovered(&data, &format!("{point}={action}"));
}

fault!(checkpoint_before_commit, "ledger::checkpoint::before_commit", checkpoint, ["io", "crash"]);
fault!(checkpoint_after_commit, "ledger::checkpoint::after_commit", checkpoint, ["crash"]);
