//! Opening the SQLite ledger for reading only: nothing is created or written, and an append is refused, so
//! verification and the audit work on a read-only copy of a data directory.

use consentry_ledger::sqlite::{SqliteStore, open_conn_read_only};
use consentry_ledger::{LedgerError, Store};

#[test]
fn a_read_only_store_creates_nothing_and_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    // An odd directory name: the immutable fallback passes the path as a URI.
    let sub = dir.path().join("a?b#c%d");
    std::fs::create_dir_all(&sub).unwrap();
    let path = sub.join("ledger.db");

    // Absent: an error, and no file appears.
    assert!(matches!(SqliteStore::open_read_only(&path), Err(LedgerError::NotFound(_))));
    assert!(!path.exists());

    drop(SqliteStore::open(&path).unwrap());
    let store = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(store.len().unwrap(), 0);
    let e = store.append(Vec::new(), 0);
    assert!(e.is_ok(), "an empty batch writes nothing");
    let e = store
        .append(
            vec![consentry_ledger::NewEvent {
                member_id: 1,
                purpose: "train_ai_system.job_recommendations".into(),
                action: consentry_policy::Action::Grant,
                notice_version: 1,
                source: consentry_policy::Source::Ui,
                actor: "member:1".into(),
                event_time: 1,
                idempotency_key: "k".into(),
            }],
            2,
        )
        .unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");

    let conn = open_conn_read_only(&path).unwrap();
    assert!(conn.execute_batch("CREATE TABLE x (a INTEGER)").is_err(), "a read-only connection wrote");
}
