//! The registry's schema version on both backends, recorded beside the ledger's: a fresh registry is stamped, an
//! unstamped one of today's tables (version 1) is stamped when opened for writing and read as it is when opened
//! read-only, and one whose version is newer than this code is refused with `SchemaTooNew`.

use consentry_test_support::pg as support;

use consentry_ledger::LedgerError;
use consentry_lineage::{LineageError, Registry, SCHEMA_VERSION};

const ROW: &str = "SELECT version FROM consentry_schema WHERE component = 'registry'";

fn too_new(e: LineageError, place: &str) {
    assert!(
        matches!(&e, LineageError::Ledger(LedgerError::SchemaTooNew { component: "registry", found: 99, supported, .. })
            if *supported == SCHEMA_VERSION),
        "{e}"
    );
    let m = e.to_string();
    assert!(m.contains(&format!("the registry in {place} has schema version 99")) && m.contains("upgrade"), "{m}");
}

#[test]
fn the_version_is_one() {
    assert_eq!(SCHEMA_VERSION, 1);
}

#[test]
fn sqlite_registry_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let version = || rusqlite::Connection::open(&path).unwrap().query_row(ROW, [], |r| r.get::<_, i64>(0)).ok();
    let exec = |sql: &str| rusqlite::Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    // Fresh: stamped, beside the ledger.
    drop(Registry::open_sqlite(&path).unwrap());
    assert_eq!(version(), Some(i64::from(SCHEMA_VERSION)));
    let ledger: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT version FROM consentry_schema WHERE component = 'ledger'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ledger, i64::from(consentry_ledger::SCHEMA_VERSION));
    // Unstamped version 1: read as it is read-only (nothing written), stamped when opened for writing.
    exec("DELETE FROM consentry_schema WHERE component = 'registry'");
    let ro = Registry::open_sqlite_read_only(&path).unwrap();
    assert!(ro.models(None, None).unwrap().is_empty());
    drop(ro);
    assert_eq!(version(), None);
    drop(Registry::open_sqlite(&path).unwrap());
    assert_eq!(version(), Some(1));
    // Newer: refused both ways, and left as it was.
    exec("UPDATE consentry_schema SET version = 99 WHERE component = 'registry'");
    let place = path.display().to_string();
    too_new(Registry::open_sqlite(&path).err().expect("refused"), &place);
    too_new(Registry::open_sqlite_read_only(&path).err().expect("refused"), &place);
    assert_eq!(version(), Some(99));
}

#[test]
fn postgres_registry_versions() {
    let Some(db) = support::pg() else { return };
    let version = || db.client().query_opt(ROW, &[]).unwrap().map(|r| r.get::<_, i64>(0));
    let exec = |sql: &str| db.client().batch_execute(sql).unwrap();
    drop(Registry::connect_postgres(&db.url).unwrap());
    assert_eq!(version(), Some(i64::from(SCHEMA_VERSION)));
    exec("DELETE FROM consentry_schema WHERE component = 'registry'");
    drop(Registry::connect_postgres(&db.url).unwrap());
    assert_eq!(version(), Some(1));
    exec("UPDATE consentry_schema SET version = 99 WHERE component = 'registry'");
    too_new(Registry::connect_postgres(&db.url).err().expect("refused"), &format!("PostgreSQL database `{}`", db.name));
    assert_eq!(version(), Some(99));
}
