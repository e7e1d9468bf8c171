//! `Session::service_stats`, the gauges `/metrics` reads: appends this session made, the ledger's size, the open
//! unlearning requests and the deadline misses, on a copy of the CLI's fixture (a trained job-recommendations model).

use consentry_app::member::MemberChoice;
use consentry_app::unlearn::UnlearnOptions;
use consentry_app::{DataDir, Session};
use consentry_policy::{Action, Source};
use consentry_test_support::cli::copy_dir;
use std::path::Path;

const JOBS: &str = "train_ai_system.job_recommendations";

#[test]
fn stats_count_appends_entries_open_requests_and_missed_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry/tests/fixtures/datadir-v1"), &data);
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let now = consentry_ledger::now();
    let before = s.service_stats(now).unwrap();
    assert_eq!(before.appends, 0);
    assert_eq!(before.ledger_entries, s.ledger().unwrap().store().len().unwrap());
    assert_eq!((before.unlearning_open, before.deadline_misses), (0, 0), "{before:?}");

    // A member whose data is in the live model withdraws; the worker records the request (retraining waits for
    // its batch window), due an hour later.
    let member = (1..500u64)
        .find(|m| s.member_lineage(*m).is_ok_and(|l| !l.models.is_empty()))
        .expect("a member in the fixture's model");
    let notice = s.member_consents(member, now).unwrap().into_iter().find(|c| c.purpose == JOBS).unwrap().notice;
    let choice = MemberChoice {
        member,
        purpose: JOBS.into(),
        action: Action::Withdraw,
        notice_version: notice.version,
        source: Source::Api,
        idempotency_key: Some("stats-test".into()),
        gpc: false,
    };
    s.member_choice(choice.clone()).unwrap();
    s.member_choice(choice).unwrap(); // a retry appends nothing
    let opts = UnlearnOptions { deadline_secs: 3600, batch_window_secs: Some(3000), threads: 1, interval_secs: 1.0 };
    s.unlearn_once(&opts).unwrap();

    let after = s.service_stats(now + 7200).unwrap();
    assert_eq!(after.appends, 1, "{after:?}");
    assert_eq!(after.ledger_entries, before.ledger_entries + 1);
    assert!(after.unlearning_open >= 1, "{after:?}");
    assert_eq!(
        after.deadline_misses, after.unlearning_open,
        "two hours on, every open request is past its deadline: {after:?}"
    );
    // Before the deadline, nothing is missed.
    assert_eq!(s.service_stats(now).unwrap().deadline_misses, 0);
}
