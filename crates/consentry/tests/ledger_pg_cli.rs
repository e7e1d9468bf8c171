//! `consentry --database postgres://… ledger …` against a real, throwaway PostgreSQL server.

mod common;
use consentry_test_support::pg as support;

use common::ok;

use consentry_app::DataDir;
use std::path::Path;
use std::process::{Command, Output};

fn consentry(data: &Path, url: &str, args: &[&str]) -> Output {
    common::command(data).arg("--database").arg(url).args(args).output().expect("the consentry binary runs")
}

#[test]
fn the_ledger_verbs_work_on_postgres() {
    let Some(db) = support::pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let net = dir.path().join("net");
    let status = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["--quiet", "synth", "--members", "800", "--seed", "4", "--out", net.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let init = ok(&consentry(&data, &db.url, &["ledger", "init"]));
    assert!(init.contains("postgres"), "{init}");
    let choices = net.join("consent_choices.parquet");
    let v: serde_json::Value = serde_json::from_str(&ok(&consentry(
        &data,
        &db.url,
        &["--json", "ledger", "import", "--choices", choices.to_str().unwrap()],
    )))
    .unwrap();
    assert!(v["appended"].as_u64().unwrap() > 100);
    ok(&consentry(&data, &db.url, &["ledger", "checkpoint"]));
    assert!(ok(&consentry(&data, &db.url, &["ledger", "verify"])).starts_with("ok:"));
    let s: serde_json::Value = serde_json::from_str(&ok(&consentry(
        &data,
        &db.url,
        &["--json", "ledger", "snapshot", "--purpose", "train_ai_system.content_suggestions"],
    )))
    .unwrap();
    assert_eq!(s["members"], 800);

    // The SQLite file is never created when the ledger lives on PostgreSQL.
    assert!(!DataDir::new(&data).ledger_db().exists());

    // A rewritten row on the server is caught.
    // (the 800 members' fact entries come first in the log: 809 is the ninth event)
    db.client().batch_execute("UPDATE events SET event_time = event_time + 1 WHERE seq = 809").unwrap();
    let o = consentry(&data, &db.url, &["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(1));

    // A URL that is not PostgreSQL is bad input.
    let o = consentry(&data, "mysql://x", &["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(2));
}
