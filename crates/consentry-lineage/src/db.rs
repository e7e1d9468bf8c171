//! One thin SQL layer over both backends, so every registry operation is written once: statements use `$1`-style
//! placeholders (rewritten to `?1` for SQLite), parameters are [`P`] values, and rows come back as [`Val`]s.

use crate::LineageError;
#[cfg(feature = "postgres")]
use ::postgres::Client;
#[cfg(feature = "postgres")]
use ::postgres::types::{ToSql as PgToSql, Type};
#[cfg(feature = "sqlite")]
use rusqlite::types::{ToSqlOutput, ValueRef};
#[cfg(feature = "sqlite")]
use std::path::Path;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::sync::Mutex;
#[cfg(feature = "postgres")]
use std::time::Duration;

/// Key of the advisory lock that serialises schema creation on PostgreSQL ("CONSLINE" in ASCII).
#[cfg(feature = "postgres")]
const SCHEMA_LOCK: i64 = 0x434f_4e53_4c49_4e45;

/// Key of the advisory lock every registry write transaction takes on PostgreSQL ("CONSLREG"), so a
/// read-check-write sequence (is the old model still live? is the cursor where we left it?) cannot interleave
/// with another writer under READ COMMITTED — the same guarantee SQLite's `BEGIN IMMEDIATE` gives.
#[cfg(feature = "postgres")]
const WRITE_LOCK: i64 = 0x434f_4e53_4c52_4547;

/// How often a PostgreSQL transaction that hit a serialisation failure, deadlock or race is re-run.
#[cfg(feature = "postgres")]
const MAX_ATTEMPTS: u32 = 6;

/// The registry's schema version and its migration steps (see `consentry_ledger::schema`): a version-2 change is
/// a function appended here.
pub(crate) static REGISTRY: consentry_ledger::schema::Component =
    consentry_ledger::schema::Component { name: "registry", migrations: &[] };

/// The registry tables as of schema version 1; `{BLOB}`, `{REAL}` and `{SERIAL}` are filled in per backend.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registry_datasets (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    dir TEXT NOT NULL,
    ledger_position BIGINT NOT NULL,
    ledger_at BIGINT NOT NULL,
    members BIGINT NOT NULL,
    members_commitment TEXT NOT NULL,
    members_bitmap {BLOB} NOT NULL,
    manifest_json TEXT NOT NULL,
    created BIGINT NOT NULL,
    signature TEXT
);
CREATE TABLE IF NOT EXISTS registry_models (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    purpose TEXT NOT NULL,
    dataset_id TEXT NOT NULL REFERENCES registry_datasets (id),
    version BIGINT NOT NULL,
    supersedes TEXT REFERENCES registry_models (id),
    status TEXT NOT NULL CHECK (status IN ('live', 'superseded', 'retired')),
    status_changed BIGINT,
    dir TEXT NOT NULL,
    shard_function_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    dp_json TEXT,
    created BIGINT NOT NULL,
    cause_json TEXT,
    signature TEXT
);
CREATE INDEX IF NOT EXISTS registry_models_purpose ON registry_models (purpose, status);
CREATE INDEX IF NOT EXISTS registry_models_supersedes ON registry_models (supersedes);
CREATE TABLE IF NOT EXISTS registry_shards (
    model_id TEXT NOT NULL REFERENCES registry_models (id),
    idx BIGINT NOT NULL,
    file_blake3 TEXT NOT NULL,
    members BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    members_bitmap {BLOB} NOT NULL,
    PRIMARY KEY (model_id, idx)
);
CREATE TABLE IF NOT EXISTS registry_runs (
    id {SERIAL} PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES registry_models (id),
    started BIGINT NOT NULL,
    finished BIGINT NOT NULL,
    shards_trained TEXT NOT NULL,
    seconds {REAL} NOT NULL,
    cause_json TEXT
);
CREATE INDEX IF NOT EXISTS registry_runs_model ON registry_runs (model_id);
CREATE TABLE IF NOT EXISTS registry_model_events (
    model_id TEXT NOT NULL REFERENCES registry_models (id),
    event_seq BIGINT NOT NULL,
    member BIGINT NOT NULL,
    PRIMARY KEY (model_id, event_seq)
);
CREATE INDEX IF NOT EXISTS registry_model_events_seq ON registry_model_events (event_seq);
CREATE INDEX IF NOT EXISTS registry_model_events_member ON registry_model_events (member, model_id);
CREATE TABLE IF NOT EXISTS registry_unlearning (
    member BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    old_model TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    new_model TEXT,
    completed_at BIGINT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'missed')),
    PRIMARY KEY (member, purpose, event_seq, old_model)
);
CREATE INDEX IF NOT EXISTS registry_unlearning_member ON registry_unlearning (member);
CREATE INDEX IF NOT EXISTS registry_unlearning_status ON registry_unlearning (status, old_model);
CREATE TABLE IF NOT EXISTS registry_cursors (name TEXT PRIMARY KEY, seq BIGINT NOT NULL);
";

/// A statement parameter (typed, so PostgreSQL NULLs carry a type).
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) enum P<'a> {
    I(i64),
    OptI(Option<i64>),
    F(f64),
    T(&'a str),
    OptT(Option<&'a str>),
    B(&'a [u8]),
}

/// A value read back.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One result row with typed accessors; a value of the wrong type is a corrupt store.
pub(crate) struct Row(pub Vec<Val>);

impl Row {
    fn at(&self, i: usize) -> Result<&Val, LineageError> {
        self.0.get(i).ok_or_else(|| LineageError::Corrupt(format!("result row has no column {i}")))
    }

    fn wrong(&self, i: usize, expected: &str) -> LineageError {
        LineageError::Corrupt(format!("column {i} holds {:?}, expected {expected}", self.0.get(i)))
    }

    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, LineageError> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(*v)),
            _ => Err(self.wrong(i, "an integer")),
        }
    }

    pub fn i64(&self, i: usize) -> Result<i64, LineageError> {
        self.opt_i64(i)?.ok_or_else(|| self.wrong(i, "an integer"))
    }

    pub fn u64(&self, i: usize) -> Result<u64, LineageError> {
        let v = self.i64(i)?;
        u64::try_from(v).map_err(|_| LineageError::Corrupt(format!("column {i} holds negative {v}")))
    }

    pub fn u32(&self, i: usize) -> Result<u32, LineageError> {
        let v = self.i64(i)?;
        u32::try_from(v).map_err(|_| LineageError::Corrupt(format!("column {i} holds {v}, out of range")))
    }

    pub fn f64(&self, i: usize) -> Result<f64, LineageError> {
        match self.at(i)? {
            Val::Real(v) => Ok(*v),
            Val::Int(v) => Ok(*v as f64),
            _ => Err(self.wrong(i, "a number")),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, LineageError> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Text(s) => Ok(Some(s.clone())),
            _ => Err(self.wrong(i, "text")),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, LineageError> {
        self.opt_text(i)?.ok_or_else(|| self.wrong(i, "text"))
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>, LineageError> {
        match self.at(i)? {
            Val::Blob(b) => Ok(b.clone()),
            _ => Err(self.wrong(i, "bytes")),
        }
    }
}

/// What every registry operation runs against: one open transaction.
pub(crate) trait Db {
    /// Runs a statement; returns the number of rows it changed.
    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, LineageError>;
    /// Runs a query; returns every row.
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>, LineageError>;
    /// Adds a row to the ledger's outbox (in the same database) inside this transaction, with its id allocated as
    /// the ledger allocates them; nothing when the database has no outbox (a registry without a ledger).
    fn outbox_push(&mut self, kind: &str, payload: &str, created: i64) -> Result<(), LineageError>;
}

#[cfg(feature = "sqlite")]
impl rusqlite::ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            P::I(v) | P::OptI(Some(v)) => ToSqlOutput::from(*v),
            P::OptI(None) | P::OptT(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            P::F(v) => ToSqlOutput::from(*v),
            P::T(s) | P::OptT(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            P::B(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// `$1` → `?1`: SQLite's numbered placeholders (no statement here contains a literal `$`).
#[cfg(feature = "sqlite")]
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

#[cfg(feature = "sqlite")]
impl Db for rusqlite::Transaction<'_> {
    fn outbox_push(&mut self, kind: &str, payload: &str, created: i64) -> Result<(), LineageError> {
        let has: i64 =
            self.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbox'", [], |r| {
                r.get(0)
            })?;
        if has > 0 {
            // The write transaction holds SQLite's one write lock: ids are allocated in commit order.
            self.execute(
                "INSERT INTO outbox (kind, payload, created) VALUES (?1, ?2, ?3)",
                rusqlite::params![kind, payload, created],
            )?;
        }
        Ok(())
    }

    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, LineageError> {
        let mut stmt = self.prepare_cached(&sqlite_sql(sql))?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>, LineageError> {
        let mut stmt = self.prepare_cached(&sqlite_sql(sql))?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(match r.get_ref(i)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Real(v) => Val::Real(v),
                    ValueRef::Text(t) => Val::Text(
                        String::from_utf8(t.to_vec())
                            .map_err(|_| LineageError::Corrupt(format!("column {i} holds text that is not UTF-8")))?,
                    ),
                    ValueRef::Blob(b) => Val::Blob(b.to_vec()),
                });
            }
            out.push(Row(vals));
        }
        Ok(out)
    }
}

#[cfg(feature = "postgres")]
fn pg_params<'a>(params: &'a [P<'a>]) -> Vec<&'a (dyn PgToSql + Sync)> {
    params
        .iter()
        .map(|p| -> &(dyn PgToSql + Sync) {
            match p {
                P::I(v) => v,
                P::OptI(v) => v,
                P::F(v) => v,
                P::T(v) => v,
                P::OptT(v) => v,
                P::B(v) => v,
            }
        })
        .collect()
}

#[cfg(feature = "postgres")]
fn pg_row(r: &::postgres::Row) -> Result<Row, LineageError> {
    let mut vals = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let t = c.type_();
        let v = if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int)
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map_or(Val::Null, |v| Val::Int(i64::from(v)))
        } else if *t == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?.map_or(Val::Null, |v| Val::Int(i64::from(v)))
        } else if *t == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map_or(Val::Null, Val::Real)
        } else if *t == Type::TEXT || *t == Type::VARCHAR || *t == Type::NAME {
            r.try_get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text)
        } else if *t == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Val::Null, Val::Blob)
        } else {
            return Err(LineageError::Corrupt(format!("column {} has unexpected type {t}", c.name())));
        };
        vals.push(v);
    }
    Ok(Row(vals))
}

#[cfg(feature = "postgres")]
impl Db for ::postgres::Transaction<'_> {
    fn outbox_push(&mut self, kind: &str, payload: &str, created: i64) -> Result<(), LineageError> {
        if self.query_one("SELECT to_regclass('outbox') IS NOT NULL", &[])?.try_get::<_, bool>(0)? {
            // The ledger's append lock: ids are allocated (max + 1) and committed in order, as appends do.
            self.execute("SELECT pg_advisory_xact_lock($1)", &[&consentry_ledger::postgres::APPEND_LOCK])?;
            self.execute(
                "INSERT INTO outbox (id, kind, payload, created) SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3 FROM outbox",
                &[&kind, &payload, &created],
            )?;
        }
        Ok(())
    }

    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, LineageError> {
        Ok(self.execute(sql, &pg_params(params))?)
    }

    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>, LineageError> {
        let rows = ::postgres::Transaction::query(self, sql, &pg_params(params))?;
        rows.iter().map(pg_row).collect()
    }
}

/// The open store: SQLite (the ledger's `ledger.db`) or PostgreSQL (the ledger's database).
pub(crate) enum Conn {
    #[cfg(feature = "sqlite")]
    Sqlite(Mutex<rusqlite::Connection>),
    #[cfg(feature = "postgres")]
    // Boxed: a client is large (and larger with more of tokio compiled in), a SQLite connection small.
    Postgres { url: String, client: Mutex<Option<Box<Client>>> },
    /// Built without a backend: no registry can be opened, so none exists.
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[allow(dead_code)]
    NoBackend(std::convert::Infallible),
}

#[cfg(feature = "postgres")]
fn pg_connect(url: &str) -> Result<Client, LineageError> {
    Ok(consentry_ledger::postgres::connect(url, "consentry-lineage")?)
}

#[cfg(feature = "postgres")]
/// True for PostgreSQL errors after which re-running the whole transaction can succeed (the ledger's rule).
fn retryable(e: &LineageError) -> bool {
    matches!(e, LineageError::Postgres(e) if consentry_ledger::postgres::retryable_error(e))
}

impl Conn {
    #[cfg(feature = "sqlite")]
    /// Opens (and creates the registry tables in) the SQLite file the ledger uses, with the ledger's connection
    /// settings.
    pub fn open_sqlite(path: &Path) -> Result<Conn, LineageError> {
        let mut conn = consentry_ledger::sqlite::open_conn(path)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // As the ledger's own schema: once the tables are current and stamped nothing here writes, so read-only
        // commands never wait for (or block) a writer; a first open creates and stamps them in one transaction.
        let schema = SCHEMA.replace("{BLOB}", "BLOB").replace("{REAL}", "REAL").replace("{SERIAL}", "INTEGER");
        consentry_ledger::sqlite::ensure_schema(&mut conn, &REGISTRY, &schema, path)?;
        Ok(Conn::Sqlite(Mutex::new(conn)))
    }

    #[cfg(feature = "sqlite")]
    /// Opens the registry in the ledger's SQLite file for reading only (`open_conn_read_only`): nothing in the
    /// file is created or written. A ledger without registry tables reads as an empty registry (the tables are
    /// made in the connection's temporary schema, which lives in memory).
    pub fn open_sqlite_read_only(path: &Path) -> Result<Conn, LineageError> {
        let conn = consentry_ledger::sqlite::open_conn_read_only(path)?;
        consentry_ledger::sqlite::check_schema_read_only(&conn, &REGISTRY, path)?;
        let present: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'registry_models'",
            [],
            |r| r.get(0),
        )?;
        if present == 0 {
            let schema = SCHEMA.replace("{BLOB}", "BLOB").replace("{REAL}", "REAL").replace("{SERIAL}", "INTEGER");
            for stmt in schema.split(';').map(str::trim).filter(|s| s.starts_with("CREATE TABLE")) {
                conn.execute_batch(&stmt.replacen("CREATE TABLE", "CREATE TEMP TABLE", 1))?;
            }
        }
        Ok(Conn::Sqlite(Mutex::new(conn)))
    }

    #[cfg(feature = "postgres")]
    /// Connects to the ledger's PostgreSQL database and creates the registry tables.
    pub fn connect_postgres(url: &str) -> Result<Conn, LineageError> {
        let mut client = pg_connect(url)?;
        let schema =
            SCHEMA.replace("{BLOB}", "BYTEA").replace("{REAL}", "DOUBLE PRECISION").replace("{SERIAL}", "BIGSERIAL");
        // Several processes may start at once: create the tables under a lock.
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
        consentry_ledger::postgres::ensure_schema(&mut tx, &REGISTRY, &schema, url)?;
        tx.commit()?;
        Ok(Conn::Postgres { url: url.to_string(), client: Mutex::new(Some(Box::new(client))) })
    }

    /// Runs `f` in one transaction and commits it; any error rolls everything back. `write` takes SQLite's write
    /// lock up front (so a read-check-write sequence cannot interleave with another writer). PostgreSQL
    /// transactions that lose a race are re-run.
    pub fn transaction<R>(
        &self,
        write: bool,
        mut f: impl FnMut(&mut dyn Db) -> Result<R, LineageError>,
    ) -> Result<R, LineageError> {
        match self {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(m) => {
                let mut conn = m.lock().map_err(|_| LineageError::Poisoned)?;
                let behavior = if write {
                    rusqlite::TransactionBehavior::Immediate
                } else {
                    rusqlite::TransactionBehavior::Deferred
                };
                let mut tx = conn.transaction_with_behavior(behavior)?;
                let out = f(&mut tx)?;
                tx.commit()?;
                Ok(out)
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres { url, client } => {
                let mut g = client.lock().map_err(|_| LineageError::Poisoned)?;
                let mut attempt = 0u32;
                loop {
                    if g.as_ref().is_none_or(|c| c.is_closed()) {
                        *g = None;
                        *g = Some(Box::new(pg_connect(url)?));
                    }
                    let c = g.as_mut().ok_or(LineageError::Poisoned)?;
                    let result = (|| {
                        let mut tx = c.transaction()?;
                        if write {
                            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
                        } else {
                            // A lineage query reads several tables: one snapshot for all of them.
                            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
                        }
                        let out = f(&mut tx)?;
                        tx.commit()?;
                        Ok(out)
                    })();
                    match result {
                        Err(e) if write && retryable(&e) && attempt + 1 < MAX_ATTEMPTS => {
                            attempt += 1;
                            std::thread::sleep(Duration::from_millis(u64::from(attempt) * 5));
                        }
                        other => return other,
                    }
                }
            }
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Conn::NoBackend(never) => {
                let _ = (write, &mut f);
                match *never {}
            }
        }
    }
}
