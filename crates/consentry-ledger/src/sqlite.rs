//! SQLite backend: the embedded default. WAL with `synchronous=FULL`, so a
//! commit survives a crash; one writer thread batches concurrent appends into
//! group commits (one fsync for many callers).

use crate::event::{
    Event, FactsEntry, NewEvent, StoredEvent, StoredFacts, action_from_code, action_to_code, days_from_date,
    source_from_code, source_to_code,
};
use crate::keys::KEYS;
use crate::outbox::{CONSENT_CHANGED, ConsentChanged, OUTBOX, OutboxRow};
use crate::schema::{Component, LEDGER, SELECT_VERSION, UPSERT_VERSION, VERSION_TABLE};
use crate::store::{
    Appended, MemberRecord, Prepared, Store, bound, date_col, hash_col, prepare_facts, prepare_fresh, prepare_rows,
};
use crate::tiles::TILES;
use crate::{Hash, KeyHandover, LedgerError, SignedTreeHead, TreeHead};
use chrono::NaiveDate;
use consentry_policy::ConsentEvent;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS purposes (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL,
    purpose_id INTEGER NOT NULL,
    action INTEGER NOT NULL,
    notice_version INTEGER NOT NULL,
    source INTEGER NOT NULL,
    actor TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    recorded_time INTEGER NOT NULL,
    idem_key TEXT NOT NULL UNIQUE,
    leaf_hash BLOB NOT NULL,
    chain_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root_hash BLOB NOT NULL,
    chain_hash BLOB NOT NULL,
    timestamp INTEGER NOT NULL,
    log_id BLOB NOT NULL,
    signature BLOB NOT NULL
);
-- Member facts: log entries sharing the sequence space and the chain with `events`.
CREATE TABLE IF NOT EXISTS facts (
    seq INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL,
    jurisdiction TEXT NOT NULL,
    birth_date INTEGER NOT NULL, -- days since 1970-01-01
    actor TEXT NOT NULL,
    recorded_time INTEGER NOT NULL,
    leaf_hash BLOB NOT NULL,
    chain_hash BLOB NOT NULL
);
-- Covering: the member directory as of a position is read from the index alone.
CREATE INDEX IF NOT EXISTS facts_member ON facts (member_id, seq, jurisdiction, birth_date);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Reader connections of a writable store.
const READERS: usize = 4;

/// Most requests folded into one group commit.
const GROUP_MAX_REQUESTS: usize = 256;

type Reply = SyncSender<Result<Vec<Appended>, LedgerError>>;

struct Request {
    batch: Vec<NewEvent>,
    recorded_time: i64,
    reply: Reply,
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    /// Reader connections (one for a read-only store), so concurrent reads do not wait for each other.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    writer: Mutex<Option<Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Opens a connection to the ledger's SQLite file with the settings every connection to it uses (a 30 s busy
/// timeout, WAL, full sync); public so the lineage registry's connection to the same file behaves the same.
pub fn open_conn(path: &Path) -> Result<Connection, LedgerError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// A connection for readers: memory-mapped, so scans for snapshots and verification skip a copy per page.
fn open_reader(path: &Path) -> Result<Connection, LedgerError> {
    let conn = open_conn(path)?;
    conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
    Ok(conn)
}

/// `path` as an SQLite URI path: the characters a URI gives meaning to are percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Opens a connection that never writes, for commands that only read (verification, audit, lineage queries), so
/// they work on a read-only copy of a data directory. A WAL database needs its `-shm` file; where it cannot be
/// created (a directory this process may not write, where nobody else may either), the file is read as immutable.
pub fn open_conn_read_only(path: &Path) -> Result<Connection, LedgerError> {
    use rusqlite::OpenFlags;
    if !path.is_file() {
        return Err(LedgerError::NotFound(format!("{} does not exist or is not a file", path.display())));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let probe = |conn: &Connection| conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0));
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    match probe(&conn) {
        Ok(_) => Ok(conn),
        // "unable to open database file" or "attempt to write a readonly database" (SQLITE_READONLY_DIRECTORY):
        // the -shm file cannot be made.
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly) =>
        {
            drop(conn);
            let conn = Connection::open_with_flags(format!("file:{}?immutable=1", uri_path(path)), flags)?;
            probe(&conn)?;
            Ok(conn)
        }
        Err(e) => Err(e.into()),
    }
}

impl crate::schema::SchemaTx for Transaction<'_> {
    fn backend(&self) -> crate::schema::Backend {
        crate::schema::Backend::Sqlite
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), LedgerError> {
        Ok(Connection::execute_batch(self, sql)?)
    }
}

/// `component`'s version row in an SQLite store, `None` when the store has no row (or no version table).
fn schema_row(conn: &Connection, component: &Component) -> Result<Option<i64>, LedgerError> {
    let table: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'consentry_schema'",
        [],
        |r| r.get(0),
    )?;
    if table == 0 {
        return Ok(None);
    }
    Ok(conn.query_row(&SELECT_VERSION.replace('$', "?"), [component.name], |r| r.get(0)).optional()?)
}

/// Makes `component`'s tables current in the SQLite file at `path` (see [`crate::schema`]): creates them in a
/// fresh file, stamps an unstamped version-1 store, migrates an older one — in one `BEGIN IMMEDIATE` transaction —
/// and refuses a newer one. A store already at the current version is only read, so opening never waits for a
/// writer. `tables` is the component's version-1 schema; public for the lineage registry.
pub fn ensure_schema(
    conn: &mut Connection,
    component: &Component,
    tables: &str,
    path: &Path,
) -> Result<(), LedgerError> {
    let place = path.display().to_string();
    let row = schema_row(conn, component)?;
    if component.found(row, &place)? == component.version() && row.is_some() {
        return Ok(());
    }
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(VERSION_TABLE)?;
    let row = schema_row(&tx, component)?;
    if let Some(version) = component.migrate(&mut tx, row, tables, &place)? {
        tx.execute(&UPSERT_VERSION.replace('$', "?"), params![component.name, i64::from(version)])?;
    }
    tx.commit()?;
    Ok(())
}

/// Checks, writing nothing, that `component`'s tables in a read-only SQLite connection are ones this code reads:
/// the current version, or an unstamped version 1 while that is current; public for the lineage registry.
pub fn check_schema_read_only(conn: &Connection, component: &Component, path: &Path) -> Result<(), LedgerError> {
    component.readable(schema_row(conn, component)?, &path.display().to_string())
}

/// The index member reads use ([`Store::member_events`]). Not part of the versioned schema: an index changes no
/// stored data and no reader depends on it (without it a member read scans), so a writable open adds it to a store
/// of any version where it is missing, and a store that has it reads as before.
const MEMBER_INDEX: &str = "CREATE INDEX IF NOT EXISTS events_member ON events (member_id, seq)";

/// Adds [`MEMBER_INDEX`] where it is missing (checked first, so an open of a store that has it writes nothing).
fn ensure_member_index(conn: &Connection) -> Result<(), LedgerError> {
    let present: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'events_member'",
        [],
        |r| r.get(0),
    )?;
    if present == 0 {
        conn.execute_batch(MEMBER_INDEX)?;
    }
    Ok(())
}

/// The error for a ledger that cannot be opened for writing: names the file and says which commands only read.
fn not_writable(path: &Path, e: LedgerError) -> LedgerError {
    if path.is_file() {
        LedgerError::Invalid(format!(
            "{} cannot be opened for writing ({e}): this command writes to the ledger or the registry, so it needs a \
             writable data directory; on a read-only copy, `ledger verify`, `audit`, `lineage member|model|models` and \
             `gate verify` work",
            path.display()
        ))
    } else {
        e
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the ledger database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, LedgerError> {
        let mut conn = open_reader(path).map_err(|e| not_writable(path, e))?;
        for (component, tables) in [
            (&LEDGER, SCHEMA),
            (&OUTBOX, crate::outbox::SQLITE_TABLES),
            (&KEYS, crate::keys::SQLITE_TABLES),
            (&TILES, crate::tiles::SQLITE_TABLES),
        ] {
            ensure_schema(&mut conn, component, tables, path).map_err(|e| match e {
                e @ (LedgerError::SchemaTooNew { .. } | LedgerError::Corrupt(_)) => e,
                e => not_writable(path, e),
            })?;
        }
        ensure_member_index(&conn)?;
        let mut readers = vec![Mutex::new(conn)];
        for _ in 1..READERS {
            readers.push(Mutex::new(open_reader(path)?));
        }
        let writer_conn = open_conn(path)?;
        let (tx, rx) = channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer_loop(writer_conn, rx))
            .map_err(|e| LedgerError::io(path, e))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            readers,
            next_reader: AtomicUsize::new(0),
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Opens the existing ledger database at `path` for reading only (see [`open_conn_read_only`]): nothing is
    /// created or written, and an append is refused.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, LedgerError> {
        let conn = open_conn_read_only(path)?;
        check_schema_read_only(&conn, &LEDGER, path)?;
        conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            readers: vec![Mutex::new(conn)],
            next_reader: AtomicUsize::new(0),
            writer: Mutex::new(None),
            thread: Mutex::new(None),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader connection: a free one if any, else the next in turn once it is free.
    fn read(&self) -> Result<MutexGuard<'_, Connection>, LedgerError> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        match (0..n).find_map(|i| self.readers[(start + i) % n].try_lock().ok()) {
            Some(g) => Ok(g),
            None => self.readers[start % n].lock().map_err(|_| LedgerError::WriterGone("a reader panicked".into())),
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Ok(mut t) = self.thread.lock()
            && let Some(t) = t.take()
        {
            let _ = t.join();
        }
    }
}

fn writer_loop(mut conn: Connection, rx: Receiver<Request>) {
    let mut purposes: HashMap<String, i64> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX_REQUESTS {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        // Fast path: one transaction for the whole group, no idempotency look-ups
        // (the unique index catches a repeated key, and then the careful path runs).
        let mut outcome = commit_fast(&mut conn, &mut purposes, &mut group);
        if !matches!(outcome, Ok(Ok(_))) {
            purposes.clear();
            outcome = commit_group(&mut conn, &mut purposes, &group);
        }
        match outcome {
            Ok(Ok(results)) => {
                for (req, res) in group.into_iter().zip(results) {
                    let _ = req.reply.send(Ok(res));
                }
            }
            _ => {
                // Retry each request alone so one caller's problem is not another's.
                purposes.clear();
                for req in group {
                    let res = match commit_group(&mut conn, &mut purposes, std::slice::from_ref(&req)) {
                        Ok(Ok(mut v)) => Ok(v.pop().unwrap_or_default()),
                        Ok(Err(Conflict)) => Err(LedgerError::Corrupt("idempotency conflict after look-up".into())),
                        Err(e) => Err(e),
                    };
                    if res.is_err() {
                        purposes.clear();
                    }
                    let _ = req.reply.send(res);
                }
            }
        }
    }
}

/// A fresh row hit an existing idempotency key: redo the group with look-ups.
struct Conflict;

fn purpose_id(tx: &Transaction<'_>, cache: &mut HashMap<String, i64>, key: &str) -> Result<i64, LedgerError> {
    if let Some(id) = cache.get(key) {
        return Ok(*id);
    }
    tx.execute("INSERT OR IGNORE INTO purposes (key) VALUES (?1)", [key])?;
    let id: i64 = tx.query_row("SELECT id FROM purposes WHERE key = ?1", [key], |r| r.get(0))?;
    cache.insert(key.to_string(), id);
    Ok(id)
}

/// Reads the last sequence number and chain head (over both kinds of entries) inside a transaction.
fn chain_head(tx: &Transaction<'_>) -> Result<(u64, Hash), LedgerError> {
    let mut head: Option<(i64, Vec<u8>)> = None;
    for table in ["events", "facts"] {
        let last = tx
            .query_row(&format!("SELECT seq, chain_hash FROM {table} ORDER BY seq DESC LIMIT 1"), [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()?;
        if let Some(l) = last
            && head.as_ref().is_none_or(|h| l.0 > h.0)
        {
            head = Some(l);
        }
    }
    match head {
        Some((s, c)) => Ok((s as u64, hash_col(c, "chain_hash")?)),
        None => Ok((0, [0; 32])),
    }
}

/// Every member's latest facts at or before `upto`, calling `f` in member-id order.
fn latest_facts(conn: &Connection, upto: u64, f: &mut dyn FnMut(u64, &str, NaiveDate)) -> Result<(), LedgerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT member_id, jurisdiction, birth_date FROM facts WHERE seq <= ?1 ORDER BY member_id, seq",
    )?;
    let mut rows = stmt.query([bound(upto)])?;
    let mut held: Option<(i64, String, i64)> = None;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        if let Some((hid, j, d)) = held.take_if(|h| h.0 != id) {
            f(hid as u64, &j, date_col(d, hid)?);
        }
        let jurisdiction = r.get_ref(1)?.as_str().map_err(|e| LedgerError::Corrupt(format!("member {id}: {e}")))?;
        match &mut held {
            Some(h) => {
                h.1.clear();
                h.1.push_str(jurisdiction);
                h.2 = r.get(2)?;
            }
            None => held = Some((id, jurisdiction.to_string(), r.get(2)?)),
        }
    }
    if let Some((hid, j, d)) = held {
        f(hid as u64, &j, date_col(d, hid)?);
    }
    Ok(())
}

const SELECT_FACTS: &str =
    "SELECT seq, member_id, jurisdiction, birth_date, actor, recorded_time, leaf_hash, chain_hash FROM facts";

fn row_to_facts(r: &rusqlite::Row<'_>) -> Result<StoredFacts, LedgerError> {
    let seq: i64 = r.get(0)?;
    let id: i64 = r.get(1)?;
    let days: i64 = r.get(3)?;
    Ok(StoredFacts {
        facts: FactsEntry {
            seq: seq as u64,
            recorded_time: r.get(5)?,
            member_id: id as u64,
            jurisdiction: r.get(2)?,
            birth_date: date_col(days, id)?,
            actor: r.get(4)?,
        },
        leaf_hash: hash_col(r.get(6)?, "leaf_hash")?,
        chain_hash: hash_col(r.get(7)?, "chain_hash")?,
    })
}

/// Inserts prepared rows, each with its outbox row; a repeated idempotency key is reported as [`Conflict`].
fn insert_rows(
    tx: &Transaction<'_>,
    purposes: &mut HashMap<String, i64>,
    rows: &[(Event, Hash, Hash)],
) -> Result<Result<(), Conflict>, LedgerError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (seq, member_id, purpose_id, action, notice_version, source, actor, event_time,
                             recorded_time, idem_key, leaf_hash, chain_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut outbox = tx.prepare_cached("INSERT INTO outbox (kind, payload, created) VALUES (?1, ?2, ?3)")?;
    for (e, leaf, chain) in rows {
        let pid = purpose_id(tx, purposes, &e.body.purpose)?;
        let b = &e.body;
        let inserted = insert.execute(params![
            e.seq as i64,
            b.member_id as i64,
            pid,
            action_to_code(b.action),
            i64::from(b.notice_version),
            source_to_code(b.source),
            b.actor,
            b.event_time,
            e.recorded_time,
            b.idempotency_key,
            &leaf[..],
            &chain[..],
        ]);
        match inserted {
            Ok(_) => {
                outbox.execute(params![CONSENT_CHANGED, ConsentChanged::of(e).json(), e.recorded_time])?;
            }
            // The unique index on the idempotency key caught a repeat.
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => {
                return Ok(Err(Conflict));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Ok(()))
}

/// The fast path: no idempotency look-ups and no copies of the events. On any
/// failure the transaction rolls back and every request gets its batch back,
/// so the careful path can run on it.
fn commit_fast(
    conn: &mut Connection,
    purposes: &mut HashMap<String, i64>,
    group: &mut [Request],
) -> Result<Result<Vec<Vec<Appended>>, Conflict>, LedgerError> {
    if group.iter().any(|r| r.batch.iter().any(|e| e.check_encodable().is_err())) {
        return Ok(Err(Conflict));
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (mut last_seq, mut last_chain) = chain_head(&tx)?;
    let mut prepared = Vec::with_capacity(group.len());
    let mut outcome: Result<Result<(), Conflict>, LedgerError> = Ok(Ok(()));
    for req in group.iter_mut() {
        let p = match prepare_fresh(std::mem::take(&mut req.batch), req.recorded_time, last_seq, last_chain) {
            Ok(p) => p,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        };
        if let Some((e, _, chain)) = p.rows.last() {
            last_seq = e.seq;
            last_chain = *chain;
        }
        let inserted = insert_rows(&tx, purposes, &p.rows);
        prepared.push(p);
        match inserted {
            Ok(Ok(())) => {}
            other => {
                outcome = other;
                break;
            }
        }
    }
    let outcome = match outcome {
        Ok(Ok(())) => commit_append(tx).map(Ok),
        other => other,
    };
    match outcome {
        Ok(Ok(())) => Ok(Ok(prepared.into_iter().map(Prepared::finish).collect())),
        other => {
            for (req, p) in group.iter_mut().zip(prepared) {
                req.batch = p.into_batch();
            }
            other.map(|r| r.map(|()| Vec::new()))
        }
    }
}

/// The careful path: looks every idempotency key up and dedupes within the batch.
fn commit_group(
    conn: &mut Connection,
    purposes: &mut HashMap<String, i64>,
    group: &[Request],
) -> Result<Result<Vec<Vec<Appended>>, Conflict>, LedgerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (mut last_seq, mut last_chain) = chain_head(&tx)?;
    let mut out = Vec::with_capacity(group.len());
    for req in group {
        let mut existing = HashMap::new();
        {
            let mut find = tx.prepare_cached(&format!("{SELECT_EVENTS} WHERE e.idem_key = ?1"))?;
            for e in &req.batch {
                if let Some(s) = find.query_row([&e.idempotency_key], row_to_stored).optional()? {
                    let s = s?;
                    existing.insert(
                        e.idempotency_key.clone(),
                        Appended { event: s.event, chain_hash: s.chain_hash, duplicate: true },
                    );
                }
            }
        }
        let prepared = prepare_rows(&req.batch, req.recorded_time, last_seq, last_chain, &existing)?;
        if let Err(c) = insert_rows(&tx, purposes, &prepared.rows)? {
            return Ok(Err(c));
        }
        if let Some((e, _, chain)) = prepared.rows.last() {
            last_seq = e.seq;
            last_chain = *chain;
        }
        out.push(prepared.finish());
    }
    commit_append(tx)?;
    Ok(Ok(out))
}

/// Commits an append's transaction (both paths), between the fail points the crash tests use.
fn commit_append(tx: Transaction<'_>) -> Result<(), LedgerError> {
    fail::fail_point!("ledger::append::before_commit", |a| Err(crate::injected("append", a)));
    tx.commit()?;
    fail::fail_point!("ledger::append::after_commit", |a| Err(crate::injected("append", a)));
    Ok(())
}

type RowResult = Result<StoredEvent, LedgerError>;

fn row_to_stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<RowResult> {
    let seq: i64 = r.get(0)?;
    let member: i64 = r.get(1)?;
    let purpose: String = r.get(2)?;
    let action: i64 = r.get(3)?;
    let notice: i64 = r.get(4)?;
    let source: i64 = r.get(5)?;
    let actor: String = r.get(6)?;
    let event_time: i64 = r.get(7)?;
    let recorded_time: i64 = r.get(8)?;
    let idem: String = r.get(9)?;
    let leaf: Vec<u8> = r.get(10)?;
    let chain: Vec<u8> = r.get(11)?;
    Ok((|| {
        let corrupt = |what: &str| LedgerError::Corrupt(format!("event {seq}: {what}"));
        Ok(StoredEvent {
            event: Event {
                seq: seq as u64,
                recorded_time,
                body: NewEvent {
                    member_id: member as u64,
                    purpose,
                    action: action_from_code(action).ok_or_else(|| corrupt("unknown action code"))?,
                    notice_version: u32::try_from(notice).map_err(|_| corrupt("notice version out of range"))?,
                    source: source_from_code(source).ok_or_else(|| corrupt("unknown source code"))?,
                    actor,
                    event_time,
                    idempotency_key: idem,
                },
            },
            leaf_hash: hash_col(leaf, "leaf_hash")?,
            chain_hash: hash_col(chain, "chain_hash")?,
        })
    })())
}

/// Member id, store purpose id, and what evaluation needs of one event.
type ConsentRow = (u64, i64, ConsentEvent);

/// The consent-relevant columns of events `lo..=hi`.
fn read_consent_range(conn: &Connection, lo: u64, hi: u64) -> Result<Vec<ConsentRow>, LedgerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT member_id, purpose_id, action, notice_version, source, event_time FROM events
         WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![lo as i64, bound(hi)])?;
    let mut out = Vec::with_capacity((hi - lo + 1).min(1 << 24) as usize);
    let corrupt = |what: &str| LedgerError::Corrupt(format!("event row: {what}"));
    while let Some(r) = rows.next()? {
        let ev = ConsentEvent {
            at: r.get(5)?,
            action: action_from_code(r.get(2)?).ok_or_else(|| corrupt("unknown action code"))?,
            notice_version: u32::try_from(r.get::<_, i64>(3)?).map_err(|_| corrupt("bad notice version"))?,
            source: source_from_code(r.get(4)?).ok_or_else(|| corrupt("unknown source code"))?,
        };
        out.push((r.get::<_, i64>(0)? as u64, r.get(1)?, ev));
    }
    Ok(out)
}

const SELECT_EVENTS: &str = "SELECT e.seq, e.member_id, p.key, e.action, e.notice_version, e.source, e.actor,
        e.event_time, e.recorded_time, e.idem_key, e.leaf_hash, e.chain_hash
     FROM events e LEFT JOIN purposes p ON p.id = e.purpose_id";

fn row_to_sth(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SignedTreeHead, LedgerError>> {
    let size: i64 = r.get(0)?;
    let root: Vec<u8> = r.get(1)?;
    let chain: Vec<u8> = r.get(2)?;
    let ts: i64 = r.get(3)?;
    let log_id: Vec<u8> = r.get(4)?;
    let sig: Vec<u8> = r.get(5)?;
    let key_id: Option<Vec<u8>> = r.get(6)?;
    Ok((|| {
        let log_id = hash_col(log_id, "checkpoint log id")?;
        Ok(SignedTreeHead {
            head: TreeHead {
                tree_size: size as u64,
                root_hash: hash_col(root, "checkpoint root")?,
                chain_hash: hash_col(chain, "checkpoint chain")?,
                timestamp: ts,
            },
            log_id,
            key_id: key_id.map(|k| hash_col(k, "checkpoint key id")).transpose()?.unwrap_or(log_id),
            signature: sig
                .try_into()
                .map_err(|_| LedgerError::Corrupt("checkpoint signature is not 64 bytes".into()))?,
        })
    })())
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn append(&self, batch: Vec<NewEvent>, recorded_time: i64) -> Result<Vec<Appended>, LedgerError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = sync_channel(1);
        {
            let w = self.writer.lock().map_err(|_| LedgerError::WriterGone("lock poisoned".into()))?;
            let tx = w.as_ref().ok_or_else(|| {
                LedgerError::WriterGone(
                    "the store is closing, or was opened read-only (appending needs write access)".into(),
                )
            })?;
            tx.send(Request { batch, recorded_time, reply })
                .map_err(|_| LedgerError::WriterGone("the writer thread exited".into()))?;
        }
        rx.recv().map_err(|_| LedgerError::WriterGone("the writer thread exited".into()))?
    }

    fn len(&self) -> Result<u64, LedgerError> {
        let n: Option<i64> = self
            .read()?
            .prepare_cached(
                "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM events UNION ALL SELECT MAX(seq) FROM facts)",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(n.unwrap_or(0) as u64)
    }

    fn scan(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEvent) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!("{SELECT_EVENTS} WHERE e.seq BETWEEN ?1 AND ?2 ORDER BY e.seq"))?;
        let mut rows = stmt.query(params![bound(from), bound(to)])?;
        while let Some(r) = rows.next()? {
            f(row_to_stored(r)??)?;
        }
        Ok(())
    }

    fn scan_consent(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, ConsentEvent)) -> Result<(), LedgerError> {
        let (names, last) = {
            let conn = self.read()?;
            let mut names: HashMap<i64, String> = HashMap::new();
            let mut stmt = conn.prepare("SELECT id, key FROM purposes")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                names.insert(r.get(0)?, r.get(1)?);
            }
            let last: Option<i64> = conn.query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0))?;
            (names, last.unwrap_or(0) as u64)
        };
        let to = to.min(last);
        if from > to {
            return Ok(());
        }
        // Large scans read two halves on two connections at once (WAL allows
        // concurrent readers), then hand the rows over in log order.
        let parts: u64 = if to - from > 200_000 { 2 } else { 1 };
        let step = (to - from + 1).div_ceil(parts);
        let ranges: Vec<(u64, u64)> =
            (0..parts).map(|i| (from + i * step, (from + (i + 1) * step - 1).min(to))).collect();
        let chunks: Vec<Result<Vec<ConsentRow>, LedgerError>> = if parts == 1 {
            // Small scans (snapshot refreshes) reuse the reader connection.
            vec![read_consent_range(&*self.read()?, from, to)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = ranges
                    .iter()
                    .map(|&(lo, hi)| scope.spawn(move || read_consent_range(&open_reader(&self.path)?, lo, hi)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(LedgerError::Corrupt("a reader thread panicked".into()))))
                    .collect()
            })
        };
        for chunk in chunks {
            for (member, pid, ev) in chunk? {
                let purpose =
                    names.get(&pid).ok_or_else(|| LedgerError::Corrupt(format!("unknown purpose id {pid}")))?;
                f(member, purpose, ev);
            }
        }
        Ok(())
    }

    fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, leaf_hash FROM events WHERE seq BETWEEN ?1 AND ?2
             UNION ALL SELECT seq, leaf_hash FROM facts WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![bound(from), bound(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(hash_col(r.get(1)?, "leaf_hash")?);
        }
        Ok(out)
    }

    fn tiles(&self, level: u32, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let conn = self.read()?;
        if !has_table(&conn, "merkle_tiles")? {
            return Ok(Vec::new());
        }
        let mut stmt =
            conn.prepare_cached("SELECT idx, hashes FROM merkle_tiles WHERE level = ?1 AND idx BETWEEN ?2 AND ?3")?;
        let mut rows = stmt.query(params![level, bound(from), bound(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((r.get::<_, i64>(0)? as u64, r.get(1)?));
        }
        Ok(out)
    }

    fn put_tiles(&self, tiles: &[(u32, u64, Vec<u8>)]) -> Result<bool, LedgerError> {
        if self.writer.lock().map_err(|_| LedgerError::WriterGone("lock poisoned".into()))?.is_none() {
            return Ok(false);
        }
        let mut conn = self.read()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR IGNORE INTO merkle_tiles (level, idx, hashes) VALUES (?1, ?2, ?3)")?;
            for (level, index, bytes) in tiles {
                stmt.execute(params![level, bound(*index), bytes])?;
            }
        }
        tx.commit()?;
        Ok(true)
    }

    fn event(&self, seq: u64) -> Result<Option<StoredEvent>, LedgerError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!("{SELECT_EVENTS} WHERE e.seq = ?1"))?;
        match stmt.query_row([seq as i64], row_to_stored).optional()? {
            Some(r) => Ok(Some(r?)),
            None => Ok(None),
        }
    }

    fn put_checkpoint(&self, sth: &SignedTreeHead) -> Result<(), LedgerError> {
        fail::fail_point!("ledger::checkpoint::before_commit", |a| Err(crate::injected("checkpoint", a)));
        let mut conn = self.read()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let fresh = tx.execute(
            "INSERT OR IGNORE INTO checkpoints (tree_size, root_hash, chain_hash, timestamp, log_id, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                sth.head.tree_size as i64,
                &sth.head.root_hash[..],
                &sth.head.chain_hash[..],
                sth.head.timestamp,
                &sth.log_id[..],
                &sth.signature[..]
            ],
        )?;
        // Only heads of a key the log rotated to need a row: the others' key id is the log id.
        if fresh > 0 && sth.key_id != sth.log_id {
            tx.execute(
                "INSERT INTO checkpoint_keys (tree_size, key_id) VALUES (?1, ?2)",
                params![sth.head.tree_size as i64, &sth.key_id[..]],
            )?;
        }
        tx.commit()?;
        fail::fail_point!("ledger::checkpoint::after_commit", |a| Err(crate::injected("checkpoint", a)));
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<SignedTreeHead>, LedgerError> {
        let conn = self.read()?;
        let key_id = if has_table(&conn, "checkpoint_keys")? {
            "(SELECT k.key_id FROM checkpoint_keys k WHERE k.tree_size = c.tree_size)"
        } else {
            "NULL"
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT c.tree_size, c.root_hash, c.chain_hash, c.timestamp, c.log_id, c.signature, {key_id}
             FROM checkpoints c ORDER BY c.tree_size"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(row_to_sth(r)??);
        }
        Ok(out)
    }

    fn key_handovers(&self) -> Result<Vec<KeyHandover>, LedgerError> {
        let conn = self.read()?;
        if !has_table(&conn, "key_handovers")? {
            return Ok(Vec::new());
        }
        let mut stmt = conn.prepare_cached("SELECT idx, handover FROM key_handovers ORDER BY idx")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let idx: i64 = r.get(0)?;
            if idx != out.len() as i64 {
                return Err(LedgerError::Corrupt(format!("key hand-over {} is missing", out.len() + 1)));
            }
            out.push(crate::keys::parse_row(idx, &r.get::<_, String>(1)?)?);
        }
        Ok(out)
    }

    fn put_key_handover(&self, index: usize, handover: &KeyHandover) -> Result<(), LedgerError> {
        if self.writer.lock().map_err(|_| LedgerError::WriterGone("lock poisoned".into()))?.is_none() {
            return Err(LedgerError::WriterGone(
                "the store was opened read-only (a rotation needs write access)".into(),
            ));
        }
        crate::keys::put_row(index, handover, |idx, text| {
            Ok(self
                .read()?
                .execute("INSERT OR IGNORE INTO key_handovers (idx, handover) VALUES (?1, ?2)", params![idx, text])?
                as u64)
        })
    }

    fn append_facts(
        &self,
        members: Vec<MemberRecord>,
        actor: &str,
        recorded_time: i64,
    ) -> Result<Vec<StoredFacts>, LedgerError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.read()?;
        // Immediate: the write lock is held from the chain head read to the commit, as in the event writer.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (last_seq, last_chain) = chain_head(&tx)?;
        let mut latest: HashMap<u64, MemberRecord> = HashMap::new();
        latest_facts(&tx, u64::MAX, &mut |member_id, j, birth_date| {
            latest.insert(member_id, MemberRecord { member_id, jurisdiction: j.to_string(), birth_date });
        })?;
        let rows = prepare_facts(members, &latest, actor, recorded_time, last_seq, last_chain)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO facts (seq, member_id, jurisdiction, birth_date, actor, recorded_time, leaf_hash,
                                    chain_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for s in &rows {
                let f = &s.facts;
                insert.execute(params![
                    f.seq as i64,
                    f.member_id as i64,
                    f.jurisdiction,
                    i64::from(days_from_date(f.birth_date)),
                    f.actor,
                    f.recorded_time,
                    &s.leaf_hash[..],
                    &s.chain_hash[..],
                ])?;
            }
        }
        fail::fail_point!("ledger::facts::before_commit", |a| Err(crate::injected("facts", a)));
        tx.commit()?;
        fail::fail_point!("ledger::facts::after_commit", |a| Err(crate::injected("facts", a)));
        Ok(rows)
    }

    fn scan_facts(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredFacts) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!("{SELECT_FACTS} WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq"))?;
        let mut rows = stmt.query(params![bound(from), bound(to)])?;
        while let Some(r) = rows.next()? {
            f(row_to_facts(r)?)?;
        }
        Ok(())
    }

    fn member_history(&self, member_id: u64) -> Result<Vec<FactsEntry>, LedgerError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!("{SELECT_FACTS} WHERE member_id = ?1 ORDER BY seq"))?;
        let mut rows = stmt.query([bound(member_id)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(row_to_facts(r)?.facts);
        }
        Ok(out)
    }

    fn member_events(&self, member_id: u64, upto: u64) -> Result<Vec<Event>, LedgerError> {
        let conn = self.read()?;
        let mut stmt =
            conn.prepare_cached(&format!("{SELECT_EVENTS} WHERE e.member_id = ?1 AND e.seq <= ?2 ORDER BY e.seq"))?;
        let mut rows = stmt.query(params![bound(member_id), bound(upto)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(row_to_stored(r)??.event);
        }
        Ok(out)
    }

    fn scan_member_facts(&self, upto: u64, f: &mut dyn FnMut(u64, &str, NaiveDate)) -> Result<(), LedgerError> {
        latest_facts(&*self.read()?, upto, f)
    }

    fn member(&self, member_id: u64) -> Result<Option<MemberRecord>, LedgerError> {
        let conn = self.read()?;
        let row: Option<(String, i64)> = conn
            .prepare_cached(
                "SELECT jurisdiction, birth_date FROM facts WHERE member_id = ?1 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([member_id as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(j, d)| Ok(MemberRecord { member_id, jurisdiction: j, birth_date: date_col(d, member_id as i64)? }))
            .transpose()
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, LedgerError> {
        Ok(self.read()?.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.read()?.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", [key, value])?;
        Ok(())
    }

    fn update_meta(
        &self,
        key: &str,
        f: &mut dyn FnMut(Option<String>) -> Result<String, LedgerError>,
    ) -> Result<String, LedgerError> {
        let mut conn = self.read()?;
        // IMMEDIATE takes the write lock before the read, so no other writer's update falls in between.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: Option<String> =
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?;
        let value = f(current)?;
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", [key, value.as_str()])?;
        tx.commit()?;
        Ok(value)
    }

    fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxRow>, LedgerError> {
        let conn = self.read()?;
        if !has_outbox(&conn)? {
            return Ok(Vec::new());
        }
        let mut stmt =
            conn.prepare_cached("SELECT id, kind, payload, created FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let mut rows = stmt.query(params![bound(after), bound(limit as u64)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(OutboxRow {
                id: r.get::<_, i64>(0)? as u64,
                kind: r.get(1)?,
                payload: r.get(2)?,
                created: r.get(3)?,
            });
        }
        Ok(out)
    }

    fn outbox_push(&self, kind: &str, payload: &str, created: i64) -> Result<u64, LedgerError> {
        if self.writer.lock().map_err(|_| LedgerError::WriterGone("lock poisoned".into()))?.is_none() {
            return Err(LedgerError::WriterGone(
                "the store was opened read-only (the outbox needs write access)".into(),
            ));
        }
        let conn = self.read()?;
        conn.execute(
            "INSERT INTO outbox (kind, payload, created) VALUES (?1, ?2, ?3)",
            params![kind, payload, created],
        )?;
        Ok(conn.last_insert_rowid() as u64)
    }

    fn outbox_last(&self) -> Result<u64, LedgerError> {
        let conn = self.read()?;
        if !has_outbox(&conn)? {
            return Ok(0);
        }
        let n: Option<i64> = conn.query_row("SELECT MAX(id) FROM outbox", [], |r| r.get(0))?;
        Ok(n.unwrap_or(0) as u64)
    }
}

/// Whether the store has the outbox table (a store from before it, opened read-only, has not).
fn has_outbox(conn: &Connection) -> Result<bool, LedgerError> {
    has_table(conn, "outbox")
}

/// Whether the store has table `name` (tables of a component added later are missing from an older store opened
/// read-only).
fn has_table(conn: &Connection, name: &str) -> Result<bool, LedgerError> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .query_row([name], |r| r.get(0))?;
    Ok(n > 0)
}
