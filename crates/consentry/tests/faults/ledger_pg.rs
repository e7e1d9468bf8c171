//! The ledger's commits on PostgreSQL (a throwaway cluster, `consentry_test_support::pg`): the same fail points
//! as on SQLite, in `PgStore`'s append, fact and checkpoint transactions.

use crate::common::{command, ok, text};
use crate::{Expect, assert_fired, expect, fault};
use consentry_app::DataDir;
use consentry_test_support::pg as support;
use std::path::Path;
use std::process::Output;

fn run(data: &Path, url: &str, fail: Option<(&str, &str)>, args: &[&str]) -> Output {
    let mut c = command(data);
    c.arg("--database").arg(url).args(args);
    if let Some((point, action)) = fail {
        c.env("FAILPOINTS", format!("{point}=return({action})"));
    }
    c.output().unwrap()
}

fn count(db: &support::PgDb, sql: &str) -> i64 {
    db.client().query_one(sql, &[]).unwrap().get(0)
}

/// `ledger import` into a fresh PostgreSQL ledger (the fixture's network), the faulty command, then the log
/// verifies and a rerun converges.
fn pg(point: &str, action: &str, scenario: &str) {
    let Some(db) = support::pg() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let choices = DataDir::new(&crate::fixture().0).network_dir().join("consent_choices.parquet");
    let import = ["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()];
    ok(&run(&data, &db.url, None, &["--quiet", "ledger", "init"]));
    let (sql, args): (&str, Vec<&str>) = match scenario {
        "import" => ("SELECT COUNT(*) FROM facts", import.to_vec()),
        "append" => {
            ok(&run(&data, &db.url, None, &import));
            (
                "SELECT COUNT(*) FROM events WHERE idem_key = 'fault-pg-1'",
                vec![
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
                    "fault-pg-1",
                ],
            )
        }
        _ => {
            ok(&run(&data, &db.url, None, &import));
            ok(&run(
                &data,
                &db.url,
                None,
                &["--quiet", "ledger", "append", "--member", "8", "--purpose", crate::JOBS, "--action", "withdraw"],
            ));
            ("SELECT COUNT(*) FROM checkpoints", vec!["--quiet", "ledger", "checkpoint"])
        }
    };
    let before = count(&db, sql);
    let o = run(&data, &db.url, Some((point, action)), &args);
    assert_fired(&o, point, action);
    let after = count(&db, sql);
    match expect(point) {
        Expect::Old => assert_eq!(after, before, "{point}={action}"),
        Expect::New => assert!(after > before, "{point}={action}"),
    }
    ok(&run(&data, &db.url, None, &args));
    let done = count(&db, sql);
    assert!(done > before, "{point}={action}: the rerun");
    if scenario == "append" {
        assert_eq!(done, 1, "{point}={action}: recorded once");
    }
    let v = run(&data, &db.url, None, &["ledger", "verify"]);
    assert!(v.status.success(), "{point}={action}: {}{}", text(&v.stdout), text(&v.stderr));
}

fn append(point: &str, action: &str) {
    pg(point, action, "append");
}

fn import(point: &str, action: &str) {
    pg(point, action, "import");
}

fn checkpoint(point: &str, action: &str) {
    pg(point, action, "checkpoint");
}

fault!(append_before_commit, "ledger::append::before_commit", append, ["io", "crash"]);
fault!(append_after_commit, "ledger::append::after_commit", append, ["crash"]);
fault!(facts_before_commit, "ledger::facts::before_commit", import, ["io", "crash"]);
fault!(facts_after_commit, "ledger::facts::after_commit", import, ["crash"]);
fault!(checkpoint_before_commit, "ledger::checkpoint::before_commit", checkpoint, ["io", "crash"]);
fault!(checkpoint_after_commit, "ledger::checkpoint::after_commit", checkpoint, ["crash"]);
