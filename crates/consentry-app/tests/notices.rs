//! Publishing a notice changes the policy in force; datasets cut before it were cut under the earlier policy, which
//! the operator-actions record keeps, so the audit (online and offline) still recomputes their consent.

use consentry_app::notices::NewNotice;
use consentry_app::{DataDir, Session};
use consentry_audit::AuditOptions;
use consentry_test_support::cli::copy_dir;
use std::path::Path;

#[test]
fn the_audit_recomputes_a_dataset_cut_before_a_notice_was_published() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry/tests/fixtures/datadir-v1"), &data);
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let now = consentry_ledger::now();
    assert_eq!(s.audit(&AuditOptions::at(now)).unwrap().violations, 0);
    let notice = NewNotice { text: "New words.".into(), material: true, language: None };
    s.publish_notice("train_ai_system.job_recommendations", notice, "operator key ktest", now).unwrap();
    let report = s.audit(&AuditOptions::at(consentry_ledger::now())).unwrap();
    assert_eq!(report.violations, 0, "{}", serde_json::to_string(&report).unwrap());
    assert!(report.datasets.iter().all(|d| d.allowed_recomputed > 0), "consent recomputed under the earlier policy");

    let bundle = tmp.path().join("bundle");
    s.export_bundle(&bundle).unwrap();
    let offline = consentry_app::audit::audit_bundle(&bundle, &AuditOptions::at(consentry_ledger::now())).unwrap();
    assert_eq!(offline.violations, 0, "{}", serde_json::to_string(&offline).unwrap());

    // Without the earlier policy the dataset's consent cannot be recomputed: the mismatch is reported.
    std::fs::remove_file(s.dir().operator_actions_file()).unwrap();
    let report = s.audit(&AuditOptions::at(consentry_ledger::now())).unwrap();
    assert!(report.violations > 0);
}
