//! Schema versions on both backends: a fresh store is stamped, an unstamped store of today's tables (version 1)
//! is stamped when opened for writing and read as it is when opened read-only, and a store whose version is newer
//! than this code is refused with `SchemaTooNew`, never read.

use consentry_test_support::pg as support;

use consentry_ledger::postgres::PgStore;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{LedgerError, SCHEMA_VERSION, Store};

const ROW: &str = "SELECT version FROM consentry_schema WHERE component = 'ledger'";

fn sqlite_version(path: &std::path::Path) -> Option<i64> {
    let c = rusqlite::Connection::open(path).unwrap();
    let table: i64 =
        c.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'consentry_schema'", [], |r| r.get(0)).unwrap();
    if table == 0 {
        return None;
    }
    c.query_row(ROW, [], |r| r.get(0)).ok()
}

fn sqlite_exec(path: &std::path::Path, sql: &str) {
    rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

fn too_new(e: LedgerError, place: &str) {
    assert!(
        matches!(e, LedgerError::SchemaTooNew { component: "ledger", found: 99, supported, .. } if supported == SCHEMA_VERSION),
        "{e}"
    );
    let m = e.to_string();
    assert!(
        m.contains(place)
            && m.contains("schema version 99")
            && m.contains(&format!("up to {SCHEMA_VERSION}"))
            && m.contains("upgrade consentry"),
        "{m}"
    );
}

#[test]
fn the_version_is_one() {
    assert_eq!(SCHEMA_VERSION, 1);
}

#[test]
fn sqlite_fresh_store_is_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(sqlite_version(&path), Some(i64::from(SCHEMA_VERSION)));
}

#[test]
fn sqlite_unstamped_store_is_read_as_is_then_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(SqliteStore::open(&path).unwrap());
    // Today's tables without a version row: what every release before versions wrote.
    sqlite_exec(&path, "DROP TABLE consentry_schema");
    let ro = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(ro.len().unwrap(), 0);
    drop(ro);
    assert_eq!(sqlite_version(&path), None, "a read-only open writes nothing");
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(sqlite_version(&path), Some(1));
}

#[test]
fn sqlite_newer_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(SqliteStore::open(&path).unwrap());
    sqlite_exec(&path, "UPDATE consentry_schema SET version = 99 WHERE component = 'ledger'");
    too_new(SqliteStore::open(&path).err().expect("refused"), &path.display().to_string());
    too_new(SqliteStore::open_read_only(&path).err().expect("refused"), &path.display().to_string());
    assert_eq!(sqlite_version(&path), Some(99), "left as it was");
}

#[test]
fn postgres_versions() {
    let Some(db) = support::pg() else { return };
    let version = |c: &mut postgres::Client| c.query_opt(ROW, &[]).unwrap().map(|r| r.get::<_, i64>(0));
    let mut c = db.client();
    // Fresh: stamped.
    drop(PgStore::connect(&db.url).unwrap());
    assert_eq!(version(&mut c), Some(i64::from(SCHEMA_VERSION)));
    // Unstamped version 1 (no row, then no table): stamped on open.
    c.batch_execute("DELETE FROM consentry_schema").unwrap();
    drop(PgStore::connect(&db.url).unwrap());
    assert_eq!(version(&mut c), Some(1));
    c.batch_execute("DROP TABLE consentry_schema").unwrap();
    let store = PgStore::connect(&db.url).unwrap();
    assert_eq!(store.len().unwrap(), 0);
    drop(store);
    assert_eq!(version(&mut c), Some(1));
    // Newer: refused, and left as it was.
    c.batch_execute("UPDATE consentry_schema SET version = 99 WHERE component = 'ledger'").unwrap();
    too_new(PgStore::connect(&db.url).err().expect("refused"), &format!("PostgreSQL database `{}`", db.name));
    assert_eq!(version(&mut c), Some(99));
}
