//! The ledger's commits: appends, member facts, checkpoints. Each scenario takes the backend: SQLite here,
//! PostgreSQL in `ledger_pg` (the same fail points, in `PgStore`'s transactions).

use crate::common::{command, ok};
use crate::{Expect, assert_fired, expect, fault};
use consentry_app::DataDir;
use consentry_test_support::pg::{self as support, PgDb};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where a scenario's ledger lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `ledger.db` in a copy of the fixture's data directory.
    Sqlite,
    /// A fresh database on the throwaway cluster (`consentry_test_support::pg`); without PostgreSQL the scenario is
    /// skipped.
    Postgres,
}

/// A data directory of its own and the ledger it uses.
struct Ledger {
    data: PathBuf,
    db: Option<PgDb>,
}

const FACTS: &str = "SELECT COUNT(*) FROM facts";
const EVENTS: &str = "SELECT COUNT(*) FROM events";
const CHECKPOINTS: &str = "SELECT COUNT(*) FROM checkpoints";

/// The fixture's consent choices.
fn choices() -> PathBuf {
    DataDir::new(&crate::fixture().0).network_dir().join("consent_choices.parquet")
}

impl Ledger {
    /// In `tmp/name`: a ledger with the fixture's consent choices imported, or only initialised. `None` when the
    /// backend is PostgreSQL and none is installed.
    fn new(backend: Backend, tmp: &Path, name: &str, imported: bool) -> Option<Self> {
        let data = tmp.join(name);
        match backend {
            Backend::Sqlite => {
                let (fresh, full) = crate::fixture();
                crate::common::copy_dir(if imported { full } else { fresh }, &data);
                Some(Self { data, db: None })
            }
            Backend::Postgres => {
                let ledger = Self { data, db: Some(support::pg()?) };
                ok(&ledger.run(&["--quiet", "ledger", "init"]));
                if imported {
                    let choices = choices();
                    ok(&ledger.run(&["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]));
                }
                Some(ledger)
            }
        }
    }

    fn command(&self) -> Command {
        let mut c = command(&self.data);
        if let Some(db) = &self.db {
            c.arg("--database").arg(&db.url);
        }
        c
    }

    /// `consentry ARGS` on this ledger.
    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// `consentry ARGS` on this ledger with the fail point `point` set to `return(action)`.
    fn run_faulty(&self, point: &str, action: &str, args: &[&str]) -> Output {
        self.command().args(args).env("FAILPOINTS", format!("{point}=return({action})")).output().unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        match &self.db {
            None => {
                let db = rusqlite::Connection::open(DataDir::new(&self.data).ledger_db()).unwrap();
                db.query_row(sql, [], |r| r.get(0)).unwrap()
            }
            Some(db) => db.client().query_one(sql, &[]).unwrap().get(0),
        }
    }

    fn events(&self) -> i64 {
        self.count(EVENTS)
    }

    fn assert_recovered(&self, context: &str) {
        crate::assert_recovered_with(&self.data, context, |args| self.run(args));
    }
}

/// `ledger append` with an idempotency key: the event is there after the fault exactly when the point is past the
/// commit (never a partial row), and a retry with the same key records it exactly once.
pub fn append(backend: Backend, point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ledger) = Ledger::new(backend, tmp.path(), "data", true) else { return };
    let keyed = || ledger.count("SELECT COUNT(*) FROM events WHERE idem_key = 'fault-append-1'");
    let before = ledger.events();
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
    let o = ledger.run_faulty(point, action, &args);
    assert_fired(&o, point, action);
    let after = (ledger.events(), keyed());
    match expect(point) {
        Expect::Old => assert_eq!(after, (before, 0), "{point}={action}"),
        Expect::New => assert_eq!(after, (before + 1, 1), "{point}={action}"),
    }
    // The retry (same key) succeeds and the event is recorded once.
    ok(&ledger.run(&args));
    assert_eq!((ledger.events(), keyed()), (before + 1, 1), "{point}={action}: the retry");
    ledger.assert_recovered(&format!("{point}={action}"));
}

/// `ledger import` into an empty ledger: member facts and events are all there or none (per batch), and the
/// import run again completes to exactly what an uninterrupted import writes.
pub fn import(backend: Backend, point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ledger) = Ledger::new(backend, tmp.path(), "data", false) else { return };
    let reference = Ledger::new(backend, tmp.path(), "reference", false).expect("the same backend as `data`");
    let choices = choices();
    let args = ["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()];
    ok(&reference.run(&args));
    let (all_facts, all_events) = (reference.count(FACTS), reference.events());
    let o = ledger.run_faulty(point, action, &args);
    assert_fired(&o, point, action);
    let facts = ledger.count(FACTS);
    match expect(point) {
        Expect::Old => assert_eq!((facts, ledger.events()), (0, 0), "{point}={action}"),
        Expect::New => assert_eq!(facts, all_facts, "{point}={action}"),
    }
    ok(&ledger.run(&args));
    assert_eq!((ledger.count(FACTS), ledger.events()), (all_facts, all_events), "{point}={action}: the rerun");
    ledger.assert_recovered(&format!("{point}={action}"));
}

/// `ledger checkpoint`: the signed head is stored or not, and a rerun signs one.
pub fn checkpoint(backend: Backend, point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ledger) = Ledger::new(backend, tmp.path(), "data", true) else { return };
    // A new event so the checkpoint is a new head.
    ok(&ledger.run(&crate::common::withdrawal("9", crate::JOBS, "ui")));
    let before = ledger.count(CHECKPOINTS);
    let o = ledger.run_faulty(point, action, &["--quiet", "ledger", "checkpoint"]);
    assert_fired(&o, point, action);
    let after = ledger.count(CHECKPOINTS);
    match expect(point) {
        Expect::Old => assert_eq!(after, before, "{point}={action}"),
        Expect::New => assert_eq!(after, before + 1, "{point}={action}"),
    }
    ok(&ledger.run(&["--quiet", "ledger", "checkpoint"]));
    assert_eq!(ledger.count(CHECKPOINTS), before + 1, "{point}={action}: the rerun");
    ledger.assert_recovered(&format!("{point}={action}"));
}

fn sqlite_append(point: &str, action: &str) {
    append(Backend::Sqlite, point, action);
}

fn sqlite_import(point: &str, action: &str) {
    import(Backend::Sqlite, point, action);
}

fn sqlite_checkpoint(point: &str, action: &str) {
    checkpoint(Backend::Sqlite, point, action);
}

fault!(append_before_commit, "ledger::append::before_commit", sqlite_append, ["io", "enospc", "crash"]);
fault!(append_after_commit, "ledger::append::after_commit", sqlite_append, ["io", "crash"]);
fault!(facts_before_commit, "ledger::facts::before_commit", sqlite_import, ["io", "crash"]);
fault!(facts_after_commit, "ledger::facts::after_commit", sqlite_import, ["crash"]);
fault!(checkpoint_before_commit, "ledger::checkpoint::before_commit", sqlite_checkpoint, ["io", "crash"]);
fault!(checkpoint_after_commit, "ledger::checkpoint::after_commit", sqlite_checkpoint, ["crash"]);
