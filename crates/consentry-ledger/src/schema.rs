//! Schema versions of the tables in a store, one mechanism for every component that keeps tables there (the
//! ledger, the lineage registry) and both backends.
//!
//! Each component records its version in one row of `consentry_schema (component, version)`. Version 1 is the
//! format from before versions were recorded: a store with the tables but no row is version 1. Opening for
//! writing migrates forward in one transaction — the version-1 tables (`CREATE … IF NOT EXISTS`), then each step
//! of [`Component::migrations`] from the found version, then the row — so a crash leaves the old version or the
//! new one, never a mix. A version newer than the code knows is refused ([`LedgerError::SchemaTooNew`]), never
//! read. Read-only opens write nothing: they read the current version (or an unstamped version 1 while that is
//! current) and refuse any other.
//!
//! A version-2 change is one function appended to a component's `migrations` list; its version number follows.

use crate::LedgerError;

/// The table that holds each component's schema version (the same statement on both backends).
pub const VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS consentry_schema (component TEXT PRIMARY KEY, version BIGINT NOT NULL)";

/// Reads one component's version row (`$1` is the component; SQLite reads `$1` as `?1`).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const SELECT_VERSION: &str = "SELECT version FROM consentry_schema WHERE component = $1";

/// Writes one component's version row.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const UPSERT_VERSION: &str = "INSERT INTO consentry_schema (component, version) VALUES ($1, $2) \
     ON CONFLICT (component) DO UPDATE SET version = excluded.version";

/// Which backend a migration step runs on, for the SQL that differs between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The open write transaction a migration step runs in.
pub trait SchemaTx {
    /// The backend, for steps whose SQL differs between them.
    fn backend(&self) -> Backend;
    /// Runs statements (no parameters, no results).
    fn execute_batch(&mut self, sql: &str) -> Result<(), LedgerError>;
}

/// One migration step: from version `i + 1` to `i + 2`, where `i` is its index in [`Component::migrations`].
pub type Migration = fn(&mut dyn SchemaTx) -> Result<(), LedgerError>;

/// A component keeping tables in the store, with its migration steps.
#[derive(Debug)]
pub struct Component {
    /// Its key in `consentry_schema` and its name in messages (`ledger`, `registry`).
    pub name: &'static str,
    /// The steps from version 1 on, oldest first.
    pub migrations: &'static [Migration],
}

impl Component {
    /// The version this code writes and reads: 1 plus one per migration step.
    pub const fn version(&self) -> u32 {
        1 + self.migrations.len() as u32
    }

    /// The version a store holds (no row: version 1, the format from before versions were recorded), or the
    /// refusal for one this code does not understand. `place` names the store in messages.
    pub fn found(&self, row: Option<i64>, place: &str) -> Result<u32, LedgerError> {
        let found = match row {
            None => 1,
            Some(v) => u32::try_from(v).ok().filter(|&v| v >= 1).ok_or_else(|| {
                LedgerError::Corrupt(format!("the {} in {place} records schema version {v}", self.name))
            })?,
        };
        if found > self.version() {
            return Err(LedgerError::SchemaTooNew {
                component: self.name,
                place: place.to_string(),
                found,
                supported: self.version(),
            });
        }
        Ok(found)
    }

    /// For a read-only open: the version found must be the current one (migrating would write).
    pub fn readable(&self, row: Option<i64>, place: &str) -> Result<(), LedgerError> {
        let found = self.found(row, place)?;
        if found < self.version() {
            return Err(LedgerError::SchemaTooOld {
                component: self.name,
                place: place.to_string(),
                found,
                supported: self.version(),
            });
        }
        Ok(())
    }

    /// Inside the caller's write transaction, with the version row read under it: creates the version-1 tables
    /// (`tables`, every statement `IF NOT EXISTS`), runs the steps from the found version on and returns the
    /// version to record, or `None` when the row already says it.
    pub fn migrate(
        &self,
        tx: &mut dyn SchemaTx,
        row: Option<i64>,
        tables: &str,
        place: &str,
    ) -> Result<Option<u32>, LedgerError> {
        let found = self.found(row, place)?;
        tx.execute_batch(tables)?;
        for step in &self.migrations[(found - 1) as usize..] {
            step(tx)?;
        }
        Ok((row != Some(i64::from(self.version()))).then_some(self.version()))
    }
}

/// The ledger's tables (`purposes`, `events`, `checkpoints`, `facts`, `meta`).
pub static LEDGER: Component = Component { name: "ledger", migrations: &[] };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_and_refused() {
        let c = Component { name: "ledger", migrations: &[] };
        assert_eq!(c.version(), 1);
        assert_eq!(c.found(None, "x").unwrap(), 1);
        assert_eq!(c.found(Some(1), "x").unwrap(), 1);
        let e = c.found(Some(3), "/data/ledger.db").unwrap_err();
        assert!(matches!(e, LedgerError::SchemaTooNew { component: "ledger", found: 3, supported: 1, .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "the ledger in /data/ledger.db has schema version 3 but this consentry understands up to 1: upgrade \
             consentry"
        );
        assert!(matches!(c.found(Some(0), "x"), Err(LedgerError::Corrupt(_))));
        assert!(c.readable(None, "x").is_ok());
    }

    struct Log(Vec<String>);
    impl SchemaTx for Log {
        fn backend(&self) -> Backend {
            Backend::Sqlite
        }
        fn execute_batch(&mut self, sql: &str) -> Result<(), LedgerError> {
            self.0.push(sql.to_string());
            Ok(())
        }
    }

    /// A version-2 step is a function in the list: it runs from version 1, not at 2, and read-only opens of a
    /// version-1 store are refused as too old.
    #[test]
    fn steps_run_from_the_found_version() {
        fn add_column(tx: &mut dyn SchemaTx) -> Result<(), LedgerError> {
            tx.execute_batch("ALTER TABLE t ADD COLUMN c")
        }
        let c = Component { name: "registry", migrations: &[add_column] };
        assert_eq!(c.version(), 2);
        let mut log = Log(Vec::new());
        assert_eq!(c.migrate(&mut log, None, "CREATE TABLE IF NOT EXISTS t (a)", "x").unwrap(), Some(2));
        assert_eq!(log.0, ["CREATE TABLE IF NOT EXISTS t (a)", "ALTER TABLE t ADD COLUMN c"]);
        let mut log = Log(Vec::new());
        assert_eq!(c.migrate(&mut log, Some(2), "CREATE TABLE IF NOT EXISTS t (a)", "x").unwrap(), None);
        assert_eq!(log.0.len(), 1);
        assert!(matches!(c.readable(Some(1), "x"), Err(LedgerError::SchemaTooOld { found: 1, supported: 2, .. })));
        assert!(c.readable(Some(2), "x").is_ok());
    }
}
