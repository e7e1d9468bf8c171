//! `Session::open_dataset` on the fixture data directory's gated dataset: withdrawals since the cut counted (and those
//! past the unlearning deadline), an altered dataset refused as failed evidence naming the file.

use consentry_app::ledger::AppendRequest;
use consentry_app::{DataDir, ErrorKind, Session};
use consentry_ledger::position::At;
use consentry_policy::{Action, Source};
use consentry_test_support::cli::{copy_dir, read_bitmap};
use std::path::{Path, PathBuf};

const JOBS: &str = "train_ai_system.job_recommendations";

/// A private copy of the fixture data directory, and its dataset.
fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry/tests/fixtures/datadir-v1"), &data);
    let ds = data.join("datasets/job_recommendations");
    (dir, data, ds)
}

fn append(s: &Session, member: u64, action: Action, event_time: i64) {
    s.append(AppendRequest {
        member,
        purpose: JOBS.into(),
        action,
        notice_version: None,
        source: Source::Api,
        actor: None,
        event_time: Some(event_time),
        idempotency_key: None,
        key_prefix: "test",
    })
    .unwrap();
}

#[test]
fn withdrawals_since_the_cut_are_counted_with_those_past_the_deadline() {
    let (_guard, data, ds) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let before = s.open_dataset(&ds).unwrap();
    assert_eq!(before.members, before.dataset.manifest.members.count);
    assert_eq!(before.deadline_secs, 24 * 3600);
    let snap = s.snapshot(JOBS, At::Now).unwrap();
    let mut still_allowed = read_bitmap(&ds.join("members.roaring")).into_iter().filter(|m| snap.is_allowed(*m));
    let (a, b, c) = (still_allowed.next().unwrap(), still_allowed.next().unwrap(), still_allowed.next().unwrap());
    let now = consentry_ledger::now();
    append(&s, a, Action::Withdraw, now);
    append(&s, b, Action::Withdraw, now - 3 * 86_400);
    // Withdrawn and granted again: allowed now, not counted.
    append(&s, c, Action::Withdraw, now);
    append(&s, c, Action::Grant, now);
    let after = s.open_dataset(&ds).unwrap();
    assert_eq!(after.withdrawn, before.withdrawn + 2);
    assert_eq!(after.past_deadline, before.past_deadline + 1);
    assert_eq!(after.position, before.position + 4);
}

#[test]
fn an_altered_file_is_an_integrity_error_naming_it() {
    let (_guard, data, ds) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let f = ds.join("jobs/part-00000.parquet");
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&f, bytes).unwrap();
    let e = s.open_dataset(&ds).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("jobs/part-00000.parquet"), "{e}");
    let e = consentry_app::dataset::check_dataset_files(&ds).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
}
