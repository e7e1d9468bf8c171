//! On-disk formats carry a version: a data directory written by the release before versions existed (the
//! fixture `tests/fixtures/datadir-v1`: ledger, registry, a dataset and a model) is read as it is and stamped
//! forward by the first command that writes; one from a newer release is refused, never misread.

mod common;

use common::{consentry, copy_dir, ok, text};
use consentry_app::DataDir;
use std::path::{Path, PathBuf};

/// A private copy of the fixture.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1"), &data);
    (dir, data)
}

#[test]
fn an_older_data_directory_is_read_as_it_is_and_stamped_forward_on_write() {
    let (_guard, data) = fixture();
    let dd = DataDir::new(&data);
    assert!(!dd.format_file().exists(), "the fixture predates format stamps");
    // Reading commands work on it and write nothing.
    assert!(ok(&consentry(&data, &["ledger", "verify"])).starts_with("ok:"));
    let jobs = dd.dataset_dir("train_ai_system.job_recommendations");
    assert!(ok(&consentry(&data, &["gate", "verify", jobs.to_str().unwrap()])).starts_with("ok:"));
    ok(&consentry(&data, &["--quiet", "audit"]));
    let model = dd.model_dir("job-recs");
    ok(&consentry(&data, &["recommend", "--model", model.to_str().unwrap(), "--member", "5"]));
    let lineage = ok(&consentry(&data, &["--json", "lineage", "models"]));
    assert!(lineage.contains("job-recs"), "{lineage}");
    assert!(!dd.format_file().exists(), "a reading command stamped the data directory");
    // The first command that writes stamps the current format.
    ok(&consentry(&data, &["--quiet", "ledger", "checkpoint"]));
    let stamp = std::fs::read_to_string(dd.format_file()).expect("the format stamp");
    assert!(stamp.contains(&format!("format = {}", consentry_app::FORMAT_VERSION)), "{stamp}");
    ok(&consentry(&data, &["--quiet", "audit"]));
}

#[test]
fn a_data_directory_from_a_newer_release_is_refused_by_every_command() {
    let (_guard, data) = fixture();
    let dd = DataDir::new(&data);
    std::fs::write(dd.format_file(), "format = 99\nwritten_by = \"consentry 9.0.0\"\n").unwrap();
    let before = std::fs::read(dd.ledger_db()).unwrap();
    for args in [
        &["ledger", "verify"][..],
        &["ledger", "checkpoint"][..],
        &["lineage", "models"][..],
        &["audit"][..],
        &["unlearn"][..],
    ] {
        let o = consentry(&data, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(err.contains("format 99") && err.contains("upgrade consentry"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(dd.ledger_db()).unwrap(), before, "a refused command touched the ledger");
}

#[test]
fn tables_from_a_newer_release_are_refused_and_an_older_store_is_migrated() {
    let (_guard, data) = fixture();
    let db = DataDir::new(&data).ledger_db();
    let versions = || -> Vec<(String, i64)> {
        let c = rusqlite::Connection::open(&db).unwrap();
        let mut st = c.prepare("SELECT component, version FROM consentry_schema ORDER BY component").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    // The release before versions wrote no version rows: reading leaves it so, the first write stamps both.
    assert!(ok(&consentry(&data, &["ledger", "verify"])).starts_with("ok:"));
    ok(&consentry(&data, &["--quiet", "ledger", "checkpoint"]));
    let jobs = DataDir::new(&data).dataset_dir("train_ai_system.job_recommendations");
    ok(&consentry(&data, &["--quiet", "lineage", "register-dataset", jobs.to_str().unwrap()]));
    let v = versions();
    assert!(v.contains(&("ledger".into(), 1)) && v.contains(&("registry".into(), 1)), "{v:?}");
    for (component, args) in [("ledger", &["ledger", "verify"][..]), ("registry", &["lineage", "models"][..])] {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute("UPDATE consentry_schema SET version = 99 WHERE component = ?1", [component]).unwrap();
        drop(c);
        let o = consentry(&data, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{component}: {err}");
        assert!(err.contains("schema version 99") && err.contains("upgrade consentry"), "{component}: {err}");
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute("UPDATE consentry_schema SET version = 1 WHERE component = ?1", [component]).unwrap();
    }
}
