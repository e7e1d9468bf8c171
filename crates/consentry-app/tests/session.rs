//! Use cases on a real data directory (the CLI's fixture `datadir-v1`): the Global Privacy Control rule, and one
//! session shared by many threads.

use consentry_app::ledger::AppendRequest;
use consentry_app::{DataDir, ErrorKind, Session};
use consentry_ledger::position::At;
use consentry_policy::{Action, DenyReason, Source};
use consentry_test_support::cli::copy_dir;
use std::path::{Path, PathBuf};

/// A private copy of the fixture data directory.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry/tests/fixtures/datadir-v1"), &data);
    (dir, data)
}

const JOBS: &str = "train_ai_system.job_recommendations";

/// A member the fixture's ledger knows.
const MEMBER: u64 = 5;

#[test]
fn a_gpc_signal_withdraws_exactly_the_purposes_that_honour_it_once() {
    let (_guard, data) = fixture();
    // The policy in force says GPC does not withdraw job recommendations.
    let policy_file = DataDir::new(&data).policy_file();
    let policy = std::fs::read_to_string(&policy_file).unwrap();
    let at = policy.find("gpc_withdraws = true").unwrap();
    std::fs::write(&policy_file, format!("{}gpc_withdraws = false{}", &policy[..at], &policy[at + 20..])).unwrap();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let honouring: Vec<String> =
        s.ledger().unwrap().policy().purposes.iter().filter(|p| p.gpc_withdraws).map(|p| p.key.clone()).collect();
    assert!(!honouring.iter().any(|k| k == JOBS) && !honouring.is_empty(), "{honouring:?}");

    let now = consentry_ledger::now();
    let first = s.gpc_signal(MEMBER, now, "sec-gpc:req-1").unwrap();
    let purposes: Vec<&str> = first.iter().map(|a| a.event.body.purpose.as_str()).collect();
    assert_eq!(purposes, honouring.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(first.iter().all(|a| !a.duplicate && a.event.body.source == Source::Gpc));
    assert!(first.iter().all(|a| a.event.body.action == Action::Withdraw));
    // The same signal retried (same key) adds nothing.
    let again = s.gpc_signal(MEMBER, now, "sec-gpc:req-1").unwrap();
    assert!(again.iter().all(|a| a.duplicate), "a retried signal appended events");
    assert_eq!(
        again.iter().map(|a| a.event.seq).collect::<Vec<_>>(),
        first.iter().map(|a| a.event.seq).collect::<Vec<_>>()
    );
    // The member is denied by GPC for the purposes that honour it.
    for p in &honouring {
        let snap = s.snapshot(p, At::Now).unwrap();
        assert_eq!(snap.reason(MEMBER), Some(DenyReason::Gpc), "{p}");
    }
}

#[test]
fn one_session_serves_many_threads_without_losing_an_event() {
    let (_guard, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let before = s.ledger().unwrap().store().len().unwrap();
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..5u64 {
                    s.append(AppendRequest {
                        member: 1 + (t * 5 + i) % 40,
                        purpose: JOBS.to_string(),
                        action: if i % 2 == 0 { Action::Grant } else { Action::Withdraw },
                        notice_version: None,
                        source: Source::Api,
                        actor: None,
                        event_time: None,
                        idempotency_key: Some(format!("thread-{t}-{i}")),
                        key_prefix: "test",
                    })
                    .unwrap();
                }
            });
        }
    });
    let l = s.ledger().unwrap();
    assert_eq!(l.store().len().unwrap(), before + 20);
    assert!(l.verify().unwrap().ok());
}

#[test]
fn use_case_errors_carry_a_kind_a_front_end_can_branch_on() {
    let (_guard, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    assert_eq!(s.snapshot("no.such.purpose", At::Now).unwrap_err().kind(), ErrorKind::BadInput);
    assert_eq!(s.model_lineage("ffffffffffff").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(s.receipt(1_000_000).unwrap_err().kind(), ErrorKind::NotFound);
    let mut req = AppendRequest {
        member: MEMBER,
        purpose: JOBS.to_string(),
        action: Action::Grant,
        notice_version: None,
        source: Source::Api,
        actor: None,
        event_time: None,
        idempotency_key: Some("k".into()),
        key_prefix: "test",
    };
    s.append(req.clone()).unwrap();
    req.action = Action::Withdraw;
    assert_eq!(s.append(req).unwrap_err().kind(), ErrorKind::Conflict, "a key reused for another event");
    let empty = tempfile::tempdir().unwrap();
    let none = Session::open(DataDir::new(empty.path()), None).unwrap();
    assert_eq!(none.ledger().map(|_| ()).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn a_retry_that_names_no_event_time_is_the_duplicate_it_is() {
    let (_guard, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let req = |event_time| AppendRequest {
        member: MEMBER,
        purpose: JOBS.to_string(),
        action: Action::Grant,
        notice_version: None,
        source: Source::Ui,
        actor: None,
        event_time,
        idempotency_key: Some("retry-1".into()),
        key_prefix: "test",
    };
    // The first attempt was stamped a while ago; the retry, with no time of its own, gets "now" again.
    let first = s.append(req(Some(consentry_ledger::now() - 30))).unwrap();
    let retry = s.append(req(None)).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.event.seq, first.event.seq);
    assert_eq!(retry.event.body.event_time, first.event.body.event_time);
    // A retry that names another time is another request: a conflict.
    assert_eq!(s.append(req(Some(consentry_ledger::now() - 5))).unwrap_err().kind(), ErrorKind::Conflict);
}
