//! Faults injected on purpose (issue 19): every named fail point of the write, rename and commit paths is driven
//! here by the real `consentry` binary, with the `FAILPOINTS` environment variable of that one child process
//! (`name=return(io|enospc|short|crash)`, see `consentry_files::fault`). The binary under `cargo test` has its
//! fail points because this crate's dev-dependencies turn `consentry-app/failpoints` on; `cargo build` has none.
//!
//! After each fault: the state is the old one (a fail point before a rename or commit) or the new one (after),
//! never a mix; nothing acknowledged (a command that exited 0) is lost; the next run recovers without a human
//! (`ledger verify` and `audit` pass, the interrupted command run again succeeds, no temporary file is left).
//!
//! One `#[test]` per fail point (the `fault!` macro); each runs on its own copy of one small fixture (300
//! members), so they run in parallel.

#[path = "../common/mod.rs"]
mod common;

mod files;
mod gate;
mod learn;
mod ledger;
mod ledger_pg;
mod outbox;
mod rotation;
mod unlearn;

use common::{consentry, ok, text};
use consentry_app::DataDir;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

/// The purpose the fixture gates and trains for.
pub const JOBS: &str = "train_ai_system.job_recommendations";

/// One test per fail point: `fault!(test_name, "crate::what::when", scenario, ["io", "crash", ...])` runs
/// `scenario(point, action)` for each action on a fresh copy of the fixture.
#[macro_export]
macro_rules! fault {
    ($test:ident, $point:literal, $scenario:path, [$($action:literal),+ $(,)?]) => {
        #[test]
        fn $test() {
            for action in [$($action),+] {
                $scenario($point, action);
            }
        }
    };
}

/// Which state a fault at a point must leave: the old one (before a rename or commit, or while writing) or the new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// As before the command.
    Old,
    /// As after a successful command.
    New,
}

/// `after_*` points leave the new state, every other point the old one.
pub fn expect(point: &str) -> Expect {
    if point.rsplit("::").next().is_some_and(|w| w.starts_with("after")) { Expect::New } else { Expect::Old }
}

/// The fixture, built once per test process: a synthetic network of 300 members, the ledger (`ledger init`
/// only in `fresh`, imported in `imported`), the job-recommendations dataset and a registered model.
pub fn fixture() -> &'static (PathBuf, PathBuf) {
    static F: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        let root = tempfile::tempdir().expect("a temporary directory").keep();
        let fresh = root.join("fresh");
        ok(&consentry(&fresh, &["--quiet", "synth", "--members", "300", "--seed", "19"]));
        ok(&consentry(&fresh, &["--quiet", "ledger", "init"]));
        let imported = root.join("imported");
        common::copy_dir(&fresh, &imported);
        let choices = DataDir::new(&imported).network_dir().join("consent_choices.parquet");
        ok(&consentry(&imported, &["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]));
        let ds = DataDir::new(&imported).dataset_dir(JOBS);
        let model = DataDir::new(&imported).model_dir("job-recs");
        common::gate_and_train(|args| consentry(&imported, args), JOBS, &ds, &model);
        (fresh, imported)
    })
}

/// A data directory of its own (kept in `tmp`): a copy of the fixture, imported or only initialised.
pub fn data_dir(tmp: &Path, imported: bool) -> PathBuf {
    let (fresh, full) = fixture();
    let data = tmp.join("data");
    common::copy_dir(if imported { full } else { fresh }, &data);
    data
}

/// Runs `consentry ARGS` on `data` with the fail point `point` set to `return(action)`.
pub fn run_faulty(data: &Path, point: &str, action: &str, args: &[&str]) -> Output {
    common::command(data).args(args).env("FAILPOINTS", format!("{point}=return({action})")).output().unwrap()
}

/// The fault fired as asked: a crash is a SIGABRT, an error a failed command naming it. Otherwise the test would
/// pass without testing anything (a misspelled point, a path that no longer runs through it).
pub fn assert_fired(o: &Output, point: &str, action: &str) {
    use std::os::unix::process::ExitStatusExt;
    let err = text(&o.stderr);
    match action {
        "crash" => assert_eq!(o.status.signal(), Some(6), "{point}={action}: expected an abort; stderr:\n{err}"),
        "io" => {
            assert!(!o.status.success(), "{point}={action}: the command succeeded; stderr:\n{err}");
            assert!(err.contains("injected fault"), "{point}={action}: stderr:\n{err}");
        }
        _ => {
            assert!(!o.status.success(), "{point}={action}: the command succeeded; stderr:\n{err}");
            assert!(err.contains("os error 28"), "{point}={action}: stderr:\n{err}");
        }
    }
}

/// What recovery means everywhere: the log verifies, the audit passes, and no temporary file of a dead
/// process is left anywhere in the data directory (after the rerun that recovered).
pub fn assert_recovered(data: &Path, context: &str) {
    assert_recovered_with(data, context, |args| consentry(data, args));
}

/// [`assert_recovered`], with `run` running `consentry ARGS` on `data` (a ledger elsewhere: `--database URL`).
pub fn assert_recovered_with(data: &Path, context: &str, run: impl Fn(&[&str]) -> Output) {
    let v = run(&["ledger", "verify"]);
    assert!(v.status.success(), "{context}: ledger verify:\n{}{}", text(&v.stdout), text(&v.stderr));
    let a = run(&["audit"]);
    assert!(a.status.success(), "{context}: audit:\n{}{}", text(&a.stdout), text(&a.stderr));
    let junk = junk(data);
    assert!(junk.is_empty(), "{context}: temporary files left: {junk:?}");
}

/// Temporary files and directories of the write paths (`.NAME.PID.tmp`, `.NAME.partial-PID`, `.NAME.tmp-PID`)
/// under `dir`.
pub fn junk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') && (n.ends_with(".tmp") || n.contains(".partial-") || n.contains(".tmp-")) {
                out.push(e.path());
            } else if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}
