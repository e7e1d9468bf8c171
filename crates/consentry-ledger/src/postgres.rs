//! PostgreSQL backend: for services where several processes share one ledger.
//!
//! Every append runs in one transaction that first takes a transaction-scoped
//! advisory lock, so sequence assignment is serialised across processes and
//! the chain never forks: the holder reads the chain head, looks up the
//! batch's idempotency keys, extends the chain with [`prepare_rows`] and
//! inserts, then commits (releasing the lock). Appends from many threads are
//! group-committed: callers queue their batches, and whichever holds the
//! writer session commits everything queued in one such transaction (one lock
//! hold, one commit), answering each caller; if that transaction fails, each
//! request is tried alone, so one bad request fails only itself. Conflicts that can still occur
//! (a writer that bypasses the lock, deadlocks, serialisation failures) make
//! the whole transaction retry a bounded number of times. Commits are durable
//! (`synchronous_commit = on` is forced on every session).
//!
//! The tables mirror the SQLite backend's. Only plain (non-TLS) connections
//! are supported.

use crate::event::{
    Event, FactsEntry, NewEvent, StoredEvent, StoredFacts, action_from_code, action_to_code, days_from_date,
    source_from_code, source_to_code,
};
use crate::keys::KEYS;
use crate::outbox::{CONSENT_CHANGED, ConsentChanged, OUTBOX, OutboxRow};
use crate::schema::{Component, LEDGER, SELECT_VERSION, UPSERT_VERSION, VERSION_TABLE};
use crate::store::{Appended, MemberRecord, Prepared, Store, bound, date_col, hash_col, prepare_facts, prepare_rows};
use crate::{Hash, KeyHandover, LedgerError, SignedTreeHead, TreeHead};
use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::error::SqlState;
use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::{ToSql, Type};
use ::postgres::{Client, IsolationLevel, NoTls, Row, Statement, Transaction};
use chrono::NaiveDate;
use consentry_policy::ConsentEvent;
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TryRecvError, sync_channel};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Key of the advisory lock that serialises appends ("CONSENTR" in ASCII); the registry takes it too when its
/// unlearning swap adds an outbox row in its own transaction.
pub const APPEND_LOCK: i64 = 0x434f_4e53_454e_5452;

/// Key of the advisory lock that serialises schema creation.
const SCHEMA_LOCK: i64 = APPEND_LOCK + 1;

/// How often a conflicting append transaction is retried before giving up.
const MAX_ATTEMPTS: u32 = 12;

/// Rows per INSERT statement (bounds the size of one bind message).
const INSERT_CHUNK: usize = 20_000;

/// Batches of at least this many new rows are written with binary COPY instead of INSERT.
const COPY_THRESHOLD: usize = 512;

/// Column types of `events`, in table order, for binary COPY.
const EVENT_TYPES: [Type; 12] = [
    Type::INT8,
    Type::INT8,
    Type::INT4,
    Type::INT2,
    Type::INT8,
    Type::INT2,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::BYTEA,
    Type::BYTEA,
];

/// Rows fetched per round trip when scanning whole events.
const FETCH_ROWS: i32 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS purposes (id SERIAL PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT PRIMARY KEY,
    member_id BIGINT NOT NULL,
    purpose_id INTEGER NOT NULL,
    action SMALLINT NOT NULL,
    notice_version BIGINT NOT NULL,
    source SMALLINT NOT NULL,
    actor TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    recorded_time BIGINT NOT NULL,
    idem_key TEXT NOT NULL UNIQUE,
    leaf_hash BYTEA NOT NULL,
    chain_hash BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root_hash BYTEA NOT NULL,
    chain_hash BYTEA NOT NULL,
    timestamp BIGINT NOT NULL,
    log_id BYTEA NOT NULL,
    signature BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (
    seq BIGINT PRIMARY KEY,
    member_id BIGINT NOT NULL,
    jurisdiction TEXT NOT NULL,
    birth_date BIGINT NOT NULL,
    actor TEXT NOT NULL,
    recorded_time BIGINT NOT NULL,
    leaf_hash BYTEA NOT NULL,
    chain_hash BYTEA NOT NULL
);
-- Covering: the member directory as of a position is read from the index alone.
CREATE INDEX IF NOT EXISTS facts_member ON facts (member_id, seq, jurisdiction, birth_date);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// The index member reads use ([`Store::member_events`]); outside the versioned schema, as in the SQLite backend:
/// it changes no stored data, so a writable open adds it to a store of any version where it is missing.
const MEMBER_INDEX: &str = "CREATE INDEX IF NOT EXISTS events_member ON events (member_id, seq)";

const SELECT_EVENTS: &str = "SELECT e.seq, e.member_id, p.key, e.action, e.notice_version, e.source, e.actor,
        e.event_time, e.recorded_time, e.idem_key, e.leaf_hash, e.chain_hash
     FROM events e LEFT JOIN purposes p ON p.id = e.purpose_id";

/// The writer's prepared statements that insert events and their purposes.
struct InsertStatements {
    ensure_purposes: Statement,
    purpose_ids: Statement,
    insert: Statement,
    /// The highest outbox id, and the outbox rows of a group: prepared once, as every group commit runs them.
    outbox_max: Statement,
    outbox_insert: Statement,
}

/// The writer session with its prepared statements and the purpose ids it has seen committed.
struct Writer {
    client: Client,
    lock: Statement,
    last: Statement,
    find: Statement,
    statements: InsertStatements,
    /// Purpose key → id; only ids from committed transactions (ids are never reused).
    purposes: HashMap<String, i32>,
}

impl Writer {
    fn connect(url: &str) -> Result<Writer, LedgerError> {
        let mut client = connect(url, "consentry-ledger-writer")?;
        let lock = client.prepare("SELECT pg_advisory_xact_lock($1)")?;
        let last = client.prepare(
            "(SELECT seq, chain_hash FROM events ORDER BY seq DESC LIMIT 1)
             UNION ALL (SELECT seq, chain_hash FROM facts ORDER BY seq DESC LIMIT 1) ORDER BY 1 DESC LIMIT 1",
        )?;
        let find = client.prepare(&format!("{SELECT_EVENTS} WHERE e.idem_key = ANY($1::text[])"))?;
        let ensure_purposes =
            client.prepare("INSERT INTO purposes (key) SELECT unnest($1::text[]) ON CONFLICT (key) DO NOTHING")?;
        let purpose_ids = client.prepare("SELECT id, key FROM purposes WHERE key = ANY($1::text[])")?;
        let insert = client.prepare(
            "INSERT INTO events (seq, member_id, purpose_id, action, notice_version, source, actor, event_time,
                                 recorded_time, idem_key, leaf_hash, chain_hash)
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::int2[], $5::int8[], $6::int2[], $7::text[],
                                  $8::int8[], $9::int8[], $10::text[], $11::bytea[], $12::bytea[])",
        )?;
        let outbox_max = client.prepare(OUTBOX_MAX)?;
        let outbox_insert = client.prepare(OUTBOX_INSERT)?;
        let statements = InsertStatements { ensure_purposes, purpose_ids, insert, outbox_max, outbox_insert };
        Ok(Writer { client, lock, last, find, statements, purposes: HashMap::new() })
    }

    /// One attempt at appending fact entries: a single transaction under the advisory lock, like events.
    fn try_append_facts(
        &mut self,
        members: &[MemberRecord],
        actor: &str,
        recorded_time: i64,
    ) -> Result<Vec<StoredFacts>, LedgerError> {
        let mut tx = self.client.transaction()?;
        let (last_seq, last_chain) = lock_head(&mut tx, &self.lock, &self.last)?;
        let mut latest: HashMap<u64, MemberRecord> = HashMap::new();
        for r in tx.query(LATEST_FACTS, &[&i64::MAX])? {
            let m = member_from_row(&r)?;
            latest.insert(m.member_id, m);
        }
        let rows = prepare_facts(members.to_vec(), &latest, actor, recorded_time, last_seq, last_chain)?;
        let stmt = tx.prepare(
            "INSERT INTO facts (seq, member_id, jurisdiction, birth_date, actor, recorded_time, leaf_hash, chain_hash)
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::text[], $6::int8[],
                                  $7::bytea[], $8::bytea[])",
        )?;
        for chunk in rows.chunks(INSERT_CHUNK) {
            let seq: Vec<i64> = chunk.iter().map(|s| s.facts.seq as i64).collect();
            let ids: Vec<i64> = chunk.iter().map(|s| s.facts.member_id as i64).collect();
            let js: Vec<&str> = chunk.iter().map(|s| s.facts.jurisdiction.as_str()).collect();
            let ds: Vec<i64> = chunk.iter().map(|s| i64::from(days_from_date(s.facts.birth_date))).collect();
            let actors: Vec<&str> = chunk.iter().map(|s| s.facts.actor.as_str()).collect();
            let rec: Vec<i64> = chunk.iter().map(|s| s.facts.recorded_time).collect();
            let leaf: Vec<&[u8]> = chunk.iter().map(|s| &s.leaf_hash[..]).collect();
            let chain: Vec<&[u8]> = chunk.iter().map(|s| &s.chain_hash[..]).collect();
            let params: [&(dyn ToSql + Sync); 8] = [&seq, &ids, &js, &ds, &actors, &rec, &leaf, &chain];
            tx.execute(&stmt, &params)?;
        }
        fail::fail_point!("ledger::facts::before_commit", |a| Err(crate::injected("facts", a)));
        tx.commit()?;
        fail::fail_point!("ledger::facts::after_commit", |a| Err(crate::injected("facts", a)));
        Ok(rows)
    }

    /// One attempt at appending a group of requests (each a batch and its recording time) in a single transaction
    /// under the advisory lock, with one commit for all of them. The group's idempotency keys are looked up at
    /// once; the requests are then prepared in order, each seeing the rows of those before it, so a key repeated
    /// across requests is a duplicate exactly as it is across separate appends. A request that cannot be prepared
    /// (an idempotency conflict, a field too long to encode) gets its own error and writes nothing, and the others
    /// go on. The outer error is the transaction's: nothing was written (the caller retries, or falls back to one
    /// request per transaction).
    fn try_append(
        &mut self,
        group: &[(&[NewEvent], i64)],
    ) -> Result<Vec<Result<Vec<Appended>, LedgerError>>, LedgerError> {
        let mut tx = self.client.transaction()?;
        let (mut last_seq, mut last_chain) = lock_head(&mut tx, &self.lock, &self.last)?;
        let keys: Vec<&str> =
            group.iter().flat_map(|(batch, _)| batch.iter().map(|e| e.idempotency_key.as_str())).collect();
        let mut existing = HashMap::new();
        for row in tx.query(&self.find, &[&keys])? {
            let s = row_to_stored(&row)?;
            existing.insert(
                s.event.body.idempotency_key.clone(),
                Appended { event: s.event, chain_hash: s.chain_hash, duplicate: true },
            );
        }
        let mut prepared: Vec<Result<Prepared, LedgerError>> = Vec::with_capacity(group.len());
        for (i, (batch, recorded_time)) in group.iter().enumerate() {
            let p = prepare_rows(batch, *recorded_time, last_seq, last_chain, &existing);
            if let Ok(p) = &p
                && let Some((e, _, chain)) = p.rows.last()
            {
                last_seq = e.seq;
                last_chain = *chain;
                // Later requests of the group see these rows as already in the log.
                if i + 1 < group.len() {
                    for (e, _, chain) in &p.rows {
                        existing.insert(
                            e.body.idempotency_key.clone(),
                            Appended { event: e.clone(), chain_hash: *chain, duplicate: true },
                        );
                    }
                }
            }
            prepared.push(p);
        }
        let rows: Vec<&(Event, Hash, Hash)> = prepared.iter().flatten().flat_map(|p| p.rows.iter()).collect();
        let fresh = insert_events(&mut tx, &self.statements, &self.purposes, &rows)?;
        insert_outbox(&mut tx, &self.statements, &rows)?;
        fail::fail_point!("ledger::append::before_commit", |a| Err(crate::injected("append", a)));
        tx.commit()?;
        fail::fail_point!("ledger::append::after_commit", |a| Err(crate::injected("append", a)));
        self.purposes.extend(fresh);
        Ok(prepared.into_iter().map(|p| p.map(Prepared::finish)).collect())
    }
}

/// Inserts prepared event rows in `tx`, adding purposes not in `known`; returns the ids of those purposes (to
/// remember once the transaction commits).
fn insert_events(
    tx: &mut Transaction<'_>,
    st: &InsertStatements,
    known: &HashMap<String, i32>,
    rows: &[&(Event, Hash, Hash)],
) -> Result<HashMap<String, i32>, LedgerError> {
    let mut fresh: HashMap<String, i32> = HashMap::new();
    if rows.is_empty() {
        return Ok(fresh);
    }
    let mut missing: Vec<&str> = Vec::new();
    for (e, _, _) in rows {
        let k = e.body.purpose.as_str();
        if !known.contains_key(k) && !missing.contains(&k) {
            missing.push(k);
        }
    }
    if !missing.is_empty() {
        tx.execute(&st.ensure_purposes, &[&missing])?;
        for row in tx.query(&st.purpose_ids, &[&missing])? {
            fresh.insert(row.try_get(1)?, row.try_get(0)?);
        }
    }
    let id_of = |purpose: &String| {
        known
            .get(purpose)
            .or_else(|| fresh.get(purpose))
            .copied()
            .ok_or_else(|| LedgerError::Corrupt(format!("purpose `{purpose}` has no id after insertion")))
    };
    if rows.len() >= COPY_THRESHOLD {
        // Big batches: binary COPY, the fastest way into a table.
        let sink = tx.copy_in(
            "COPY events (seq, member_id, purpose_id, action, notice_version, source, actor, event_time,
                          recorded_time, idem_key, leaf_hash, chain_hash) FROM STDIN (FORMAT binary)",
        )?;
        let mut w = BinaryCopyInWriter::new(sink, &EVENT_TYPES);
        for (e, l, c) in rows.iter().copied() {
            let b = &e.body;
            w.write(&[
                &(e.seq as i64),
                &(b.member_id as i64),
                &id_of(&b.purpose)?,
                &(action_to_code(b.action) as i16),
                &i64::from(b.notice_version),
                &(source_to_code(b.source) as i16),
                &b.actor,
                &b.event_time,
                &e.recorded_time,
                &b.idempotency_key,
                &&l[..],
                &&c[..],
            ])?;
        }
        w.finish()?;
        return Ok(fresh);
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        let seq: Vec<i64> = chunk.iter().map(|(e, _, _)| e.seq as i64).collect();
        let member: Vec<i64> = chunk.iter().map(|(e, _, _)| e.body.member_id as i64).collect();
        let pid: Vec<i32> = chunk.iter().map(|(e, _, _)| id_of(&e.body.purpose)).collect::<Result<_, _>>()?;
        let action: Vec<i16> = chunk.iter().map(|(e, _, _)| action_to_code(e.body.action) as i16).collect();
        let notice: Vec<i64> = chunk.iter().map(|(e, _, _)| i64::from(e.body.notice_version)).collect();
        let source: Vec<i16> = chunk.iter().map(|(e, _, _)| source_to_code(e.body.source) as i16).collect();
        let actor: Vec<&str> = chunk.iter().map(|(e, _, _)| e.body.actor.as_str()).collect();
        let event_time: Vec<i64> = chunk.iter().map(|(e, _, _)| e.body.event_time).collect();
        let recorded: Vec<i64> = chunk.iter().map(|(e, _, _)| e.recorded_time).collect();
        let idem: Vec<&str> = chunk.iter().map(|(e, _, _)| e.body.idempotency_key.as_str()).collect();
        let leaf: Vec<&[u8]> = chunk.iter().map(|(_, l, _)| &l[..]).collect();
        let chain: Vec<&[u8]> = chunk.iter().map(|(_, _, c)| &c[..]).collect();
        let params: [&(dyn ToSql + Sync); 12] =
            [&seq, &member, &pid, &action, &notice, &source, &actor, &event_time, &recorded, &idem, &leaf, &chain];
        tx.execute(&st.insert, &params)?;
    }
    Ok(fresh)
}

/// Writes the outbox rows of freshly appended events inside the append transaction, which holds the append lock:
/// ids continue from the highest committed one, so they are gap-free and commit in id order (see
/// [`crate::outbox`]; a free-running sequence would let a consumer skip a row committed late with a smaller id).
fn insert_outbox(
    tx: &mut Transaction<'_>,
    st: &InsertStatements,
    rows: &[&(Event, Hash, Hash)],
) -> Result<(), LedgerError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut next: i64 = tx.query_one(&st.outbox_max, &[])?.try_get(0)?;
    for chunk in rows.chunks(INSERT_CHUNK) {
        let ids: Vec<i64> = chunk
            .iter()
            .map(|_| {
                next += 1;
                next
            })
            .collect();
        let kinds: Vec<&str> = chunk.iter().map(|_| CONSENT_CHANGED).collect();
        let payloads: Vec<String> = chunk.iter().map(|(e, _, _)| ConsentChanged::of(e).json()).collect();
        let created: Vec<i64> = chunk.iter().map(|(e, _, _)| e.recorded_time).collect();
        tx.execute(&st.outbox_insert, &[&ids, &kinds, &payloads, &created])?;
    }
    Ok(())
}

/// The highest outbox id (0 when empty); under the append lock, the last one committed.
fn outbox_max(tx: &mut Transaction<'_>) -> Result<i64, LedgerError> {
    Ok(tx.query_one(OUTBOX_MAX, &[])?.try_get(0)?)
}

const OUTBOX_MAX: &str = "SELECT COALESCE(MAX(id), 0)::int8 FROM outbox";

const OUTBOX_INSERT: &str = "INSERT INTO outbox (id, kind, payload, created)
     SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[])";

/// Takes the append lock in `tx` and reads the chain head (last sequence number and chain hash of either entry kind).
fn lock_head(tx: &mut Transaction<'_>, lock: &Statement, last: &Statement) -> Result<(u64, Hash), LedgerError> {
    tx.execute(lock, &[&APPEND_LOCK])?;
    Ok(match tx.query_opt(last, &[])? {
        Some(r) => (seq_col(r.try_get(0)?)?, hash_col(r.try_get(1)?, "chain_hash")?),
        None => (0, [0; 32]),
    })
}

/// Runs `query` (sequence bounds `$1` and `$2`) in one read-only repeatable-read transaction, so the rows are one
/// consistent state of the log, and hands them to `f` in order, fetching [`FETCH_ROWS`] per round trip.
fn scan_range(
    c: &mut Client,
    query: &str,
    from: u64,
    to: u64,
    f: &mut dyn FnMut(&Row) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    let mut tx = c.build_transaction().read_only(true).isolation_level(IsolationLevel::RepeatableRead).start()?;
    let portal = tx.bind(query, &[&bound(from), &bound(to)])?;
    loop {
        let rows = tx.query_portal(&portal, FETCH_ROWS)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            f(r)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Most append requests folded into one group commit.
const GROUP_MAX_REQUESTS: usize = 256;

/// An append waiting for the writer session: whichever caller holds the writer commits every waiting request in
/// one transaction and answers each on its channel.
struct Pending {
    batch: Vec<NewEvent>,
    recorded_time: i64,
    reply: SyncSender<Result<Vec<Appended>, LedgerError>>,
}

/// The group-commit queue.
#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    /// A caller is committing a group (and has not yet answered it).
    leading: bool,
}

/// Ends a caller's turn as leader even if committing panicked, so the others are not left waiting for it.
struct Leading<'a>(&'a PgStore);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut q = self.0.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        q.leading = false;
        drop(q);
        self.0.led.notify_all();
    }
}

/// The PostgreSQL store.
pub struct PgStore {
    url: String,
    writer: Mutex<Option<Writer>>,
    /// Appends waiting for the writer, and whether a caller is leading (group commit: see [`PgStore::append`]).
    queue: Mutex<Queue>,
    /// Signalled when a leader finishes a group: a waiting caller whose request is still queued leads next.
    led: Condvar,
    /// Reader sessions, so concurrent reads (a service's requests) do not wait for each other.
    readers: Vec<Mutex<Option<Client>>>,
    next_reader: AtomicUsize,
}

/// Reader sessions per store.
const READERS: usize = 4;

/// Connects to `url` as `application` with the settings every consentry session needs (a 30 s connect timeout
/// unless the URL sets one, durable commits); public so the lineage registry's sessions are set up the same way.
pub fn connect(url: &str, application: &str) -> Result<Client, LedgerError> {
    let mut config: ::postgres::Config =
        url.parse().map_err(|e| LedgerError::Invalid(format!("bad PostgreSQL connection string: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name(application);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(30));
    }
    let mut client = config.connect(NoTls)?;
    // Durable commits whatever the server's default: an acknowledged event must survive a crash.
    client.batch_execute("SET synchronous_commit TO on")?;
    Ok(client)
}

fn seq_col(v: i64) -> Result<u64, LedgerError> {
    u64::try_from(v).map_err(|_| LedgerError::Corrupt(format!("negative sequence number {v}")))
}

fn row_to_stored(r: &Row) -> Result<StoredEvent, LedgerError> {
    let seq: i64 = r.try_get(0)?;
    let corrupt = |what: &str| LedgerError::Corrupt(format!("event {seq}: {what}"));
    let member: i64 = r.try_get(1)?;
    let purpose: Option<String> = r.try_get(2)?;
    let action: i16 = r.try_get(3)?;
    let notice: i64 = r.try_get(4)?;
    let source: i16 = r.try_get(5)?;
    Ok(StoredEvent {
        event: Event {
            seq: seq as u64,
            recorded_time: r.try_get(8)?,
            body: NewEvent {
                member_id: member as u64,
                purpose: purpose.ok_or_else(|| corrupt("unknown purpose id"))?,
                action: action_from_code(i64::from(action)).ok_or_else(|| corrupt("unknown action code"))?,
                notice_version: u32::try_from(notice).map_err(|_| corrupt("notice version out of range"))?,
                source: source_from_code(i64::from(source)).ok_or_else(|| corrupt("unknown source code"))?,
                actor: r.try_get(6)?,
                event_time: r.try_get(7)?,
                idempotency_key: r.try_get(9)?,
            },
        },
        leaf_hash: hash_col(r.try_get(10)?, "leaf_hash")?,
        chain_hash: hash_col(r.try_get(11)?, "chain_hash")?,
    })
}

fn row_to_sth(r: &Row) -> Result<SignedTreeHead, LedgerError> {
    let size: i64 = r.try_get(0)?;
    let sig: Vec<u8> = r.try_get(5)?;
    let log_id = hash_col(r.try_get(4)?, "checkpoint log id")?;
    let key_id: Option<Vec<u8>> = r.try_get(6)?;
    Ok(SignedTreeHead {
        head: TreeHead {
            tree_size: seq_col(size)?,
            root_hash: hash_col(r.try_get(1)?, "checkpoint root")?,
            chain_hash: hash_col(r.try_get(2)?, "checkpoint chain")?,
            timestamp: r.try_get(3)?,
        },
        log_id,
        key_id: key_id.map(|k| hash_col(k, "checkpoint key id")).transpose()?.unwrap_or(log_id),
        signature: sig.try_into().map_err(|_| LedgerError::Corrupt("checkpoint signature is not 64 bytes".into()))?,
    })
}

/// Each member's latest facts at or before a position (`$1`), by id.
const LATEST_FACTS: &str = "SELECT DISTINCT ON (member_id) member_id, jurisdiction, birth_date FROM facts
     WHERE seq <= $1 ORDER BY member_id, seq DESC";

const SELECT_FACTS: &str =
    "SELECT seq, member_id, jurisdiction, birth_date, actor, recorded_time, leaf_hash, chain_hash FROM facts";

fn member_from_row(r: &Row) -> Result<MemberRecord, LedgerError> {
    let id: i64 = r.try_get(0)?;
    Ok(MemberRecord { member_id: id as u64, jurisdiction: r.try_get(1)?, birth_date: date_col(r.try_get(2)?, id)? })
}

fn facts_from_row(r: &Row) -> Result<StoredFacts, LedgerError> {
    let id: i64 = r.try_get(1)?;
    Ok(StoredFacts {
        facts: FactsEntry {
            seq: seq_col(r.try_get(0)?)?,
            recorded_time: r.try_get(5)?,
            member_id: id as u64,
            jurisdiction: r.try_get(2)?,
            birth_date: date_col(r.try_get(3)?, id)?,
            actor: r.try_get(4)?,
        },
        leaf_hash: hash_col(r.try_get(6)?, "leaf_hash")?,
        chain_hash: hash_col(r.try_get(7)?, "chain_hash")?,
    })
}

/// True for errors after which re-running the whole append transaction can succeed.
fn retryable(e: &LedgerError) -> bool {
    matches!(e, LedgerError::Postgres(e) if retryable_error(e))
}

/// True for PostgreSQL errors after which re-running the whole transaction can succeed (a serialisation failure,
/// a deadlock, a lost insert race, a lock wait cut off by `lock_timeout`); public so the lineage registry retries
/// exactly what the ledger retries.
pub fn retryable_error(e: &::postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
            || *c == SqlState::LOCK_NOT_AVAILABLE
    )
}

impl crate::schema::SchemaTx for Transaction<'_> {
    fn backend(&self) -> crate::schema::Backend {
        crate::schema::Backend::Postgres
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), LedgerError> {
        Ok(self.batch_execute(sql)?)
    }
}

/// How messages name the PostgreSQL database at `url` (never its password).
pub fn describe(url: &str) -> String {
    let config: Option<::postgres::Config> = url.parse().ok();
    match config.as_ref().and_then(|c| c.get_dbname()) {
        Some(db) => format!("PostgreSQL database `{db}`"),
        None => "the PostgreSQL database".to_string(),
    }
}

/// Makes `component`'s tables current in the PostgreSQL database (see [`crate::schema`]), inside the caller's
/// transaction, which holds the component's schema lock: creates them in a fresh database, stamps an unstamped
/// version-1 store, migrates an older one and refuses a newer one. `tables` is the component's version-1 schema;
/// `url` only names the database in messages. Public for the lineage registry.
pub fn ensure_schema(
    tx: &mut Transaction<'_>,
    component: &Component,
    tables: &str,
    url: &str,
) -> Result<(), LedgerError> {
    tx.batch_execute(VERSION_TABLE)?;
    let row: Option<i64> = tx.query_opt(SELECT_VERSION, &[&component.name])?.map(|r| r.try_get(0)).transpose()?;
    if let Some(version) = component.migrate(tx, row, tables, &describe(url))? {
        tx.execute(UPSERT_VERSION, &[&component.name, &i64::from(version)])?;
    }
    Ok(())
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and creates the tables if missing.
    pub fn connect(url: &str) -> Result<PgStore, LedgerError> {
        let mut client = connect(url, "consentry-ledger")?;
        // Several processes may start at once: create the schema under a lock.
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
        ensure_schema(&mut tx, &LEDGER, SCHEMA, url)?;
        // Checked first: creating an index locks out writers for a moment even when it exists.
        if tx.query_one("SELECT to_regclass('events_member') IS NULL", &[])?.try_get::<_, bool>(0)? {
            tx.batch_execute(MEMBER_INDEX)?;
        }
        ensure_schema(&mut tx, &OUTBOX, crate::outbox::PG_TABLES, url)?;
        ensure_schema(&mut tx, &KEYS, crate::keys::PG_TABLES, url)?;
        ensure_schema(&mut tx, &crate::tiles::TILES, crate::tiles::PG_TABLES, url)?;
        tx.commit()?;
        let writer = Writer::connect(url)?;
        Ok(PgStore {
            url: url.to_string(),
            writer: Mutex::new(Some(writer)),
            queue: Mutex::new(Queue::default()),
            led: Condvar::new(),
            readers: std::iter::once(Some(client))
                .chain(std::iter::repeat_with(|| None))
                .take(READERS)
                .map(Mutex::new)
                .collect(),
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The connection string this store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A reader session: a free connected one if any, else a free one (connected now), else the next in turn
    /// once it is free; so a process opens a second session only when reads overlap. Reconnected if the server
    /// closed it.
    fn read(&self) -> Result<MutexGuard<'_, Option<Client>>, LedgerError> {
        let n = self.readers.len();
        let connected = self.readers.iter().find_map(|r| r.try_lock().ok().filter(|g| g.is_some()));
        let mut g = match connected.or_else(|| self.readers.iter().find_map(|r| r.try_lock().ok())) {
            Some(g) => g,
            None => {
                let next = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
                self.readers[next].lock().map_err(|_| LedgerError::WriterGone("a reader panicked".into()))?
            }
        };
        if g.as_ref().is_none_or(|c| c.is_closed()) {
            *g = None;
            *g = Some(connect(&self.url, "consentry-ledger")?);
        }
        Ok(g)
    }

    /// Runs `f` on the reader session.
    fn with_reader<R>(&self, f: impl FnOnce(&mut Client) -> Result<R, LedgerError>) -> Result<R, LedgerError> {
        let mut g = self.read()?;
        let client = g.as_mut().ok_or_else(|| LedgerError::WriterGone("no reader connection".into()))?;
        f(client)
    }

    /// Commits `group` in one transaction (retried on conflicts) and answers every request; when that transaction
    /// fails, each request is tried alone, so one request's problem never fails another.
    fn commit_group(&self, g: &mut Option<Writer>, group: Vec<Pending>) {
        let requests: Vec<(&[NewEvent], i64)> = group.iter().map(|p| (p.batch.as_slice(), p.recorded_time)).collect();
        match self.retrying(g, |w| w.try_append(&requests)) {
            Ok(results) => {
                for (p, r) in group.iter().zip(results) {
                    let _ = p.reply.send(r);
                }
            }
            Err(e) if group.len() == 1 => {
                let _ = group[0].reply.send(Err(e));
            }
            Err(_) => {
                for (p, request) in group.iter().zip(&requests) {
                    let r = self.retrying(g, |w| w.try_append(std::slice::from_ref(request))).and_then(|mut v| {
                        v.pop().unwrap_or_else(|| Err(LedgerError::Corrupt("the append returned no result".into())))
                    });
                    let _ = p.reply.send(r);
                }
            }
        }
    }

    /// [`Store::scan_consent`], in bulk (ranges on sessions of their own: see [`bulk_copy`]) or on a reader session.
    fn consent_scan(
        &self,
        from: u64,
        to: u64,
        bulk: bool,
        f: &mut dyn FnMut(u64, &str, ConsentEvent),
    ) -> Result<(), LedgerError> {
        self.with_reader(|c| {
            let mut tx =
                c.build_transaction().read_only(true).isolation_level(IsolationLevel::RepeatableRead).start()?;
            let mut names: HashMap<i64, String> = HashMap::new();
            for r in tx.query("SELECT id::int8, key FROM purposes", &[])? {
                names.insert(r.try_get(0)?, r.try_get(1)?);
            }
            let name =
                |pid: i64| names.get(&pid).ok_or_else(|| LedgerError::Corrupt(format!("unknown purpose id {pid}")));
            let last: i64 = tx.query_one("SELECT COALESCE(MAX(seq), 0)::int8 FROM events", &[])?.try_get(0)?;
            let to = to.min(seq_col(last)?);
            if from > to {
                tx.commit()?;
                return Ok(());
            }
            if bulk {
                // Bulk: every range on a session of its own, all in this transaction's snapshot. The first range
                // streams into `f` here while the others are read into memory at the same time, then handed over
                // in order.
                let snapshot: String = tx.query_one("SELECT pg_export_snapshot()", &[])?.try_get(0)?;
                let ranges = bulk_ranges(from, to);
                let url = self.url.as_str();
                let snapshot = Some(snapshot.as_str());
                std::thread::scope(|scope| -> Result<(), LedgerError> {
                    let later: Vec<_> = ranges[1..]
                        .iter()
                        .map(|&(lo, hi)| {
                            scope.spawn(move || -> Result<Vec<(u64, i64, ConsentEvent)>, LedgerError> {
                                let mut rows = Vec::with_capacity((hi - lo + 1).min(1 << 24) as usize);
                                bulk_copy(
                                    url,
                                    snapshot,
                                    &consent_copy(lo, hi),
                                    4,
                                    ints_of(&mut |r| {
                                        rows.push(consent_row(r)?);
                                        Ok(())
                                    }),
                                )?;
                                Ok(rows)
                            })
                        })
                        .collect();
                    let (lo, hi) = ranges[0];
                    let first = bulk_copy(
                        url,
                        snapshot,
                        &consent_copy(lo, hi),
                        4,
                        ints_of(&mut |r| {
                            let (member, pid, ev) = consent_row(r)?;
                            f(member, name(pid)?, ev);
                            Ok(())
                        }),
                    );
                    let mut outcome = first;
                    for h in later {
                        let rows =
                            h.join().unwrap_or_else(|_| Err(LedgerError::Corrupt("a reader thread panicked".into())));
                        // After a failure the other ranges are still joined, but nothing more is handed over.
                        if outcome.is_ok() {
                            outcome = rows.and_then(|rows| {
                                rows.into_iter().try_for_each(|(member, pid, ev)| {
                                    f(member, name(pid)?, ev);
                                    Ok(())
                                })
                            });
                        }
                    }
                    outcome
                })?;
                tx.commit()?;
                return Ok(());
            }
            let mut reader = tx.copy_out(consent_copy(from, to).as_str())?;
            let parsed = read_copy_ints(&mut reader, |r| {
                let (member, pid, ev) = consent_row(r)?;
                f(member, name(pid)?, ev);
                Ok(())
            });
            // Read to the end of the stream, even after an error, so the session stays usable.
            let drained = std::io::copy(&mut reader, &mut std::io::sink());
            parsed?;
            drained.map_err(|e| LedgerError::Corrupt(format!("reading the COPY stream: {e}")))?;
            drop(reader);
            tx.commit()?;
            Ok(())
        })
    }

    /// [`Store::scan_member_facts`], in bulk (one COPY on a session of its own) or on a reader session.
    fn member_facts_scan(
        &self,
        upto: u64,
        bulk: bool,
        f: &mut dyn FnMut(u64, &str, NaiveDate),
    ) -> Result<(), LedgerError> {
        if bulk {
            // Bulk: the covering index `facts_member` read in order (an index-only scan; `DISTINCT ON` would sort
            // the table, latest first), each member's last row kept here, over a COPY on a session of its own.
            let copy = format!(
                "COPY (SELECT member_id, jurisdiction, birth_date FROM facts WHERE seq <= {} ORDER BY member_id, seq)
                 TO STDOUT (FORMAT binary)",
                bound(upto)
            );
            let mut current: Option<(i64, String, i64)> = None;
            let emit = |(id, jurisdiction, days): (i64, String, i64), f: &mut dyn FnMut(u64, &str, NaiveDate)| {
                f(id as u64, &jurisdiction, date_col(days, id)?);
                Ok::<(), LedgerError>(())
            };
            bulk_copy(&self.url, None, &copy, 3, |fields| {
                let id = int_field(fields[0])?;
                let jurisdiction = std::str::from_utf8(fields[1])
                    .map_err(|_| LedgerError::Corrupt(format!("member {id}: jurisdiction is not UTF-8")))?;
                let days = int_field(fields[2])?;
                match &mut current {
                    Some(c) if c.0 == id => {
                        c.1.clear();
                        c.1.push_str(jurisdiction);
                        c.2 = days;
                    }
                    _ => {
                        if let Some(done) = current.replace((id, jurisdiction.to_string(), days)) {
                            emit(done, f)?;
                        }
                    }
                }
                Ok(())
            })?;
            if let Some(done) = current {
                emit(done, f)?;
            }
            return Ok(());
        }
        self.with_reader(|c| {
            let mut tx = c.build_transaction().read_only(true).start()?;
            let portal = tx.bind(LATEST_FACTS, &[&bound(upto)])?;
            loop {
                let rows = tx.query_portal(&portal, FETCH_ROWS * 5)?;
                if rows.is_empty() {
                    break;
                }
                for r in &rows {
                    let m = member_from_row(r)?;
                    f(m.member_id, &m.jurisdiction, m.birth_date);
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Runs `f` on the writer session, reconnecting if the server closed it, and re-runs it after a conflict
    /// that a fresh transaction can get past, backing off a little more each time, up to [`MAX_ATTEMPTS`] runs.
    fn with_writer<T>(&self, f: impl FnMut(&mut Writer) -> Result<T, LedgerError>) -> Result<T, LedgerError> {
        let mut g = self.writer.lock().map_err(|_| LedgerError::WriterGone("a writer panicked".into()))?;
        self.retrying(&mut g, f)
    }

    /// [`PgStore::with_writer`] for a caller already holding the writer session.
    fn retrying<T>(
        &self,
        g: &mut Option<Writer>,
        mut f: impl FnMut(&mut Writer) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut attempt = 0u32;
        loop {
            if g.as_ref().is_none_or(|w| w.client.is_closed()) {
                *g = None;
                *g = Some(Writer::connect(&self.url)?);
            }
            let w = g.as_mut().ok_or_else(|| LedgerError::WriterGone("no writer connection".into()))?;
            match f(w) {
                Ok(out) => return Ok(out),
                Err(e) if retryable(&e) && attempt + 1 < MAX_ATTEMPTS => {
                    attempt += 1;
                    // Back off a little, more each time, so racing writers spread out.
                    std::thread::sleep(Duration::from_millis(u64::from(attempt) * 3));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads the binary COPY stream of `N` integer columns, calling `f` per row.
///
/// Format: an 11-byte signature, flags (i32), a header extension (i32 length +
/// bytes), then per tuple an i16 field count (-1 ends the stream) and per field
/// an i32 length (-1 for NULL) followed by the value in network byte order.
fn read_copy_ints<const N: usize, R: BufRead>(
    mut reader: R,
    mut f: impl FnMut([i64; N]) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    let io = |e: std::io::Error| LedgerError::Corrupt(format!("reading the COPY stream: {e}"));
    let mut parser = CopyParser::new(N);
    let mut ints = ints_of(&mut f);
    while !parser.ended {
        let chunk = reader.fill_buf().map_err(io)?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        parser.feed(chunk, &mut ints)?;
        reader.consume(n);
    }
    parser.finish()
}

/// Adapts a row callback over integers to [`CopyParser::feed`]'s field slices (every field 2, 4 or 8 bytes).
fn ints_of<const N: usize>(
    f: &mut impl FnMut([i64; N]) -> Result<(), LedgerError>,
) -> impl FnMut(&[&[u8]]) -> Result<(), LedgerError> + '_ {
    move |fields| {
        let mut out = [0i64; N];
        for (v, b) in out.iter_mut().zip(fields) {
            *v = int_field(b)?;
        }
        f(out)
    }
}

/// One integer field of a binary COPY row, by its width.
fn int_field(b: &[u8]) -> Result<i64, LedgerError> {
    Ok(match *b {
        [a, b] => i64::from(i16::from_be_bytes([a, b])),
        [a, b, c, d] => i64::from(i32::from_be_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => i64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => return Err(LedgerError::Corrupt("malformed COPY stream: unexpected integer width".into())),
    })
}

/// Most fields a [`CopyParser`] row may have.
const COPY_MAX_FIELDS: usize = 8;

/// An incremental parser of a binary COPY stream (format: see [`read_copy_ints`]) of rows of a fixed field count
/// without NULLs. It is fed the stream piece by piece as the server sends it (one CopyData message is usually
/// one row) and parses straight from each piece, copying only a row that a piece boundary cuts: a bulk scan
/// touches each byte once.
struct CopyParser {
    fields: usize,
    /// The unparsed tail of earlier pieces (a row cut by a piece boundary).
    carry: Vec<u8>,
    header_done: bool,
    /// The trailer was read: whatever follows is ignored.
    ended: bool,
}

impl CopyParser {
    fn new(fields: usize) -> CopyParser {
        CopyParser { fields: fields.min(COPY_MAX_FIELDS), carry: Vec::new(), header_done: false, ended: false }
    }

    /// Parses what `piece` completes, calling `f` with each row's fields.
    fn feed(
        &mut self,
        piece: &[u8],
        f: &mut impl FnMut(&[&[u8]]) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        if self.ended {
            return Ok(());
        }
        if self.carry.is_empty() {
            let used = self.parse(piece, f)?;
            self.carry.extend_from_slice(&piece[used..]);
        } else {
            let mut carry = std::mem::take(&mut self.carry);
            carry.extend_from_slice(piece);
            let used = self.parse(&carry, f)?;
            carry.drain(..used);
            self.carry = carry;
        }
        Ok(())
    }

    /// At the end of the stream: an error unless the trailer was read.
    fn finish(&self) -> Result<(), LedgerError> {
        if self.ended { Ok(()) } else { Err(copy_malformed("the stream ended without a trailer")) }
    }

    /// Parses every complete header or row at the start of `bytes`; returns how many bytes that was.
    fn parse(
        &mut self,
        bytes: &[u8],
        f: &mut impl FnMut(&[&[u8]]) -> Result<(), LedgerError>,
    ) -> Result<usize, LedgerError> {
        const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
        let mut pos = 0usize;
        let mut row: [&[u8]; COPY_MAX_FIELDS] = [&[]; COPY_MAX_FIELDS];
        loop {
            let rest = &bytes[pos..];
            if !self.header_done {
                if rest.len() < 19 {
                    return Ok(pos);
                }
                if &rest[..11] != SIGNATURE {
                    return Err(copy_malformed("bad signature"));
                }
                let ext = u32::from_be_bytes([rest[15], rest[16], rest[17], rest[18]]) as usize;
                if rest.len() < 19 + ext {
                    return Ok(pos);
                }
                pos += 19 + ext;
                self.header_done = true;
                continue;
            }
            if rest.len() < 2 {
                return Ok(pos);
            }
            let count = i16::from_be_bytes([rest[0], rest[1]]);
            if count == -1 {
                self.ended = true;
                return Ok(bytes.len());
            }
            if count as usize != self.fields || count < 0 {
                return Err(copy_malformed("unexpected field count"));
            }
            let mut at = 2usize;
            for field in row.iter_mut().take(self.fields) {
                if rest.len() < at + 4 {
                    return Ok(pos);
                }
                let len = i32::from_be_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
                at += 4;
                let len = usize::try_from(len).map_err(|_| copy_malformed("NULL in a NOT NULL column"))?;
                if rest.len() < at + len {
                    return Ok(pos);
                }
                *field = &rest[at..at + len];
                at += len;
            }
            f(&row[..self.fields])?;
            pos += at;
        }
    }
}

fn copy_malformed(what: &str) -> LedgerError {
    LedgerError::Corrupt(format!("malformed COPY stream: {what}"))
}

/// Scans of at least this many sequence numbers are bulk scans: split into ranges read at once, each on a session
/// of its own (see [`bulk_copy`]). Smaller ones (a snapshot refresh) use a pooled reader session.
const BULK_SCAN_MIN: u64 = 200_000;

/// Ranges a bulk scan is split into: one per core, at least two (the server works on one range while the client
/// parses another), at most four (each is a server process and a session).
fn bulk_ranges(from: u64, to: u64) -> Vec<(u64, u64)> {
    let parts = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4) as u64;
    let step = (to - from + 1).div_ceil(parts);
    (0..parts).map(|i| (from + i * step, (from + (i + 1) * step - 1).min(to))).filter(|(lo, hi)| lo <= hi).collect()
}

/// Runs the COPY `copy` on a new session of `url` inside a read-only repeatable-read transaction, which adopts the
/// exported `snapshot` when given (so every range of a bulk scan reads one state of the log), feeding `f` the
/// stream's rows of `fields` fields.
///
/// Why not the synchronous client: it enters its runtime once per message, and a COPY sends a message per row;
/// measured on 5 M events, that cost the client 4.4 s against the server's 1.3 s for the whole scan. Here one
/// `block_on` drives the whole stream on a runtime of this call's own.
fn bulk_copy(
    url: &str,
    snapshot: Option<&str>,
    copy: &str,
    fields: usize,
    mut f: impl FnMut(&[&[u8]]) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    use futures_util::StreamExt;
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| LedgerError::Invalid(format!("bad PostgreSQL connection string: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name("consentry-ledger-scan");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(30));
    }
    let mut begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_string();
    if let Some(snapshot) = snapshot {
        // Exported snapshot names are hex digits and dashes; anything else is not put into SQL.
        if snapshot.is_empty() || !snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(LedgerError::Corrupt(format!("unexpected snapshot name `{snapshot}`")));
        }
        begin.push_str(&format!("; SET TRANSACTION SNAPSHOT '{snapshot}'"));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LedgerError::io(std::path::Path::new("(PostgreSQL scan runtime)"), e))?;
    rt.block_on(async {
        let (client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        client.batch_execute(&begin).await?;
        let stream = client.copy_out(copy).await?;
        let mut stream = std::pin::pin!(stream);
        let mut parser = CopyParser::new(fields);
        while let Some(piece) = stream.next().await {
            parser.feed(&piece?, &mut f)?;
        }
        parser.finish()?;
        client.batch_execute("COMMIT").await?;
        drop(client);
        // The session ends with the client; the driver then finishes.
        let _ = driver.await;
        Ok(())
    })
}

/// The COPY of what effective consent needs from events `lo..=hi`, in sequence order: the member, the purpose id
/// with the action and the source packed losslessly into one `int8` (see [`consent_row`]), the notice version and
/// the event time.
///
/// Why packed: a COPY's server cost is mostly per field sent; measured on 5 M events, four fields cost the server
/// 1.7 s of CPU where the six plain columns cost 1.9 s. (Aggregating each chunk of rows into arrays, which spares
/// the client a message per row, cost the server more than it saved: 2.0–2.5 s.)
fn consent_copy(lo: u64, hi: u64) -> String {
    // COPY takes no parameters; the bounds are integers formatted here.
    format!(
        "COPY (SELECT member_id,
                      (purpose_id::int8 << 32) | ((action::int8 & 65535) << 16) | (source::int8 & 65535),
                      notice_version, event_time
               FROM events WHERE seq BETWEEN {} AND {} ORDER BY seq) TO STDOUT (FORMAT binary)",
        bound(lo),
        bound(hi)
    )
}

/// A row of [`consent_copy`] as the member, the purpose id and the event. Unpacking is exact: the purpose id is
/// the high half, the action and the source the two 16-bit two's-complement fields below it.
fn consent_row([member, packed, notice, at]: [i64; 4]) -> Result<(u64, i64, ConsentEvent), LedgerError> {
    let pid = packed >> 32;
    let action = i64::from((packed >> 16) as u16 as i16);
    let source = i64::from(packed as u16 as i16);
    let ev = ConsentEvent {
        at,
        action: action_from_code(action).ok_or_else(|| LedgerError::Corrupt("unknown action code".into()))?,
        notice_version: u32::try_from(notice).map_err(|_| LedgerError::Corrupt("bad notice version".into()))?,
        source: source_from_code(source).ok_or_else(|| LedgerError::Corrupt("unknown source code".into()))?,
    };
    Ok((member as u64, pid, ev))
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn append(&self, batch: Vec<NewEvent>, recorded_time: i64) -> Result<Vec<Appended>, LedgerError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = sync_channel(1);
        let gone = || LedgerError::WriterGone("a writer panicked".into());
        let mut q = self.queue.lock().map_err(|_| gone())?;
        q.waiting.push(Pending { batch, recorded_time, reply });
        // Group commit. While one caller (the leader) commits a group, the others queue and sleep; when it has
        // answered its group it wakes them, the answered ones return and one still queued leads the next group,
        // taking everything queued meanwhile. A caller answered by a leader never touches the writer session or
        // waits in line for it: handing the session from caller to caller (each taking it only to find its answer)
        // let barely one or two requests queue per group.
        loop {
            match answer.try_recv() {
                Ok(result) => return result,
                Err(TryRecvError::Disconnected) => return Err(gone()),
                Err(TryRecvError::Empty) => {}
            }
            if q.leading {
                q = self.led.wait(q).map_err(|_| gone())?;
                continue;
            }
            // No leader and our request unanswered: it is queued (a leader answers all it takes before letting go).
            q.leading = true;
            let n = q.waiting.len().min(GROUP_MAX_REQUESTS);
            let group: Vec<Pending> = q.waiting.drain(..n).collect();
            drop(q);
            let turn = Leading(self);
            {
                let mut g = self.writer.lock().map_err(|_| gone())?;
                self.commit_group(&mut g, group);
            }
            drop(turn);
            q = self.queue.lock().map_err(|_| gone())?;
        }
    }

    fn len(&self) -> Result<u64, LedgerError> {
        self.with_reader(|c| {
            let n: i64 = c
                .query_typed_one(
                    "SELECT GREATEST((SELECT COALESCE(MAX(seq), 0) FROM events),
                                     (SELECT COALESCE(MAX(seq), 0) FROM facts))::int8",
                    &[],
                )?
                .try_get(0)?;
            seq_col(n)
        })
    }

    fn scan(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredEvent) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let query = format!("{SELECT_EVENTS} WHERE e.seq BETWEEN $1 AND $2 ORDER BY e.seq");
        self.with_reader(|c| scan_range(c, &query, from, to, &mut |r| f(row_to_stored(r)?)))
    }

    fn scan_consent(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, ConsentEvent)) -> Result<(), LedgerError> {
        self.consent_scan(from, to, to.saturating_sub(from) + 1 >= BULK_SCAN_MIN, f)
    }

    fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError> {
        self.with_reader(|c| {
            let params: [&(dyn ToSql + Sync); 2] = [&bound(from), &bound(to)];
            let mut rows = c.query_raw(
                "SELECT seq, leaf_hash FROM events WHERE seq BETWEEN $1 AND $2
                 UNION ALL SELECT seq, leaf_hash FROM facts WHERE seq BETWEEN $1 AND $2 ORDER BY 1",
                params,
            )?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(hash_col(r.try_get(1)?, "leaf_hash")?);
            }
            Ok(out)
        })
    }

    fn event(&self, seq: u64) -> Result<Option<StoredEvent>, LedgerError> {
        self.with_reader(|c| {
            c.query_opt(&format!("{SELECT_EVENTS} WHERE e.seq = $1"), &[&bound(seq)])?
                .map(|r| row_to_stored(&r))
                .transpose()
        })
    }

    fn put_checkpoint(&self, sth: &SignedTreeHead) -> Result<(), LedgerError> {
        let size = i64::try_from(sth.head.tree_size)
            .map_err(|_| LedgerError::Invalid(format!("tree size {} is too large", sth.head.tree_size)))?;
        fail::fail_point!("ledger::checkpoint::before_commit", |a| Err(crate::injected("checkpoint", a)));
        self.with_reader(|c| {
            let mut tx = c.transaction()?;
            let fresh = tx.execute(
                "INSERT INTO checkpoints (tree_size, root_hash, chain_hash, timestamp, log_id, signature)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tree_size) DO NOTHING",
                &[
                    &size,
                    &&sth.head.root_hash[..],
                    &&sth.head.chain_hash[..],
                    &sth.head.timestamp,
                    &&sth.log_id[..],
                    &&sth.signature[..],
                ],
            )?;
            // Only heads of a key the log rotated to need a row: the others' key id is the log id.
            if fresh > 0 && sth.key_id != sth.log_id {
                tx.execute(
                    "INSERT INTO checkpoint_keys (tree_size, key_id) VALUES ($1, $2)",
                    &[&size, &&sth.key_id[..]],
                )?;
            }
            tx.commit()?;
            Ok(())
        })?;
        fail::fail_point!("ledger::checkpoint::after_commit", |a| Err(crate::injected("checkpoint", a)));
        Ok(())
    }

    fn tiles(&self, level: u32, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let level = i32::try_from(level).map_err(|_| LedgerError::Invalid(format!("no tile level {level}")))?;
        self.with_reader(|c| {
            c.query(
                "SELECT idx, hashes FROM merkle_tiles WHERE level = $1 AND idx BETWEEN $2 AND $3",
                &[&level, &bound(from), &bound(to)],
            )?
            .iter()
            .map(|r| Ok((r.try_get::<_, i64>(0)? as u64, r.try_get(1)?)))
            .collect()
        })
    }

    fn put_tiles(&self, tiles: &[(u32, u64, Vec<u8>)]) -> Result<bool, LedgerError> {
        self.with_reader(|c| {
            let mut tx = c.transaction()?;
            let stmt = tx.prepare(
                "INSERT INTO merkle_tiles (level, idx, hashes) VALUES ($1, $2, $3) ON CONFLICT (level, idx) DO NOTHING",
            )?;
            for (level, index, bytes) in tiles {
                let level =
                    i32::try_from(*level).map_err(|_| LedgerError::Invalid(format!("no tile level {level}")))?;
                tx.execute(&stmt, &[&level, &bound(*index), bytes])?;
            }
            tx.commit()?;
            Ok(true)
        })
    }

    fn key_handovers(&self) -> Result<Vec<KeyHandover>, LedgerError> {
        self.with_reader(|c| {
            let mut out = Vec::new();
            for r in c.query("SELECT idx, handover FROM key_handovers ORDER BY idx", &[])? {
                let idx: i64 = r.try_get(0)?;
                if idx != out.len() as i64 {
                    return Err(LedgerError::Corrupt(format!("key hand-over {} is missing", out.len() + 1)));
                }
                out.push(crate::keys::parse_row(idx, r.try_get(1)?)?);
            }
            Ok(out)
        })
    }

    fn put_key_handover(&self, index: usize, handover: &KeyHandover) -> Result<(), LedgerError> {
        crate::keys::put_row(index, handover, |idx, text| {
            self.with_reader(|c| {
                Ok(c.execute(
                    "INSERT INTO key_handovers (idx, handover) VALUES ($1, $2) ON CONFLICT (idx) DO NOTHING",
                    &[&idx, &text],
                )?)
            })
        })
    }

    fn checkpoints(&self) -> Result<Vec<SignedTreeHead>, LedgerError> {
        self.with_reader(|c| {
            c.query_typed(
                "SELECT c.tree_size, c.root_hash, c.chain_hash, c.timestamp, c.log_id, c.signature, k.key_id
                 FROM checkpoints c LEFT JOIN checkpoint_keys k ON k.tree_size = c.tree_size ORDER BY c.tree_size",
                &[],
            )?
            .iter()
            .map(row_to_sth)
            .collect()
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
        self.with_writer(|w| w.try_append_facts(&members, actor, recorded_time))
    }

    fn member_events(&self, member_id: u64, upto: u64) -> Result<Vec<Event>, LedgerError> {
        self.with_reader(|c| {
            let rows = c.query_typed(
                &format!("{SELECT_EVENTS} WHERE e.member_id = $1 AND e.seq <= $2 ORDER BY e.seq"),
                &[(&bound(member_id), Type::INT8), (&bound(upto), Type::INT8)],
            )?;
            rows.iter().map(|r| row_to_stored(r).map(|s| s.event)).collect()
        })
    }

    fn member_history(&self, member_id: u64) -> Result<Vec<FactsEntry>, LedgerError> {
        self.with_reader(|c| {
            let rows = c.query(&format!("{SELECT_FACTS} WHERE member_id = $1 ORDER BY seq"), &[&bound(member_id)])?;
            rows.iter().map(|r| facts_from_row(r).map(|s| s.facts)).collect()
        })
    }

    fn scan_facts(
        &self,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(StoredFacts) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let query = format!("{SELECT_FACTS} WHERE seq BETWEEN $1 AND $2 ORDER BY seq");
        self.with_reader(|c| scan_range(c, &query, from, to, &mut |r| f(facts_from_row(r)?)))
    }

    fn scan_member_facts(&self, upto: u64, f: &mut dyn FnMut(u64, &str, NaiveDate)) -> Result<(), LedgerError> {
        self.member_facts_scan(upto, upto >= BULK_SCAN_MIN, f)
    }

    fn member(&self, member_id: u64) -> Result<Option<MemberRecord>, LedgerError> {
        self.with_reader(|c| {
            c.query_typed_opt(
                "SELECT member_id, jurisdiction, birth_date FROM facts WHERE member_id = $1 ORDER BY seq DESC LIMIT 1",
                &[(&bound(member_id), Type::INT8)],
            )?
            .map(|r| member_from_row(&r))
            .transpose()
        })
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, LedgerError> {
        self.with_reader(|c| {
            c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?.map(|r| Ok(r.try_get(0)?)).transpose()
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.with_reader(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )?;
            Ok(())
        })
    }

    fn update_meta(
        &self,
        key: &str,
        f: &mut dyn FnMut(Option<String>) -> Result<String, LedgerError>,
    ) -> Result<String, LedgerError> {
        self.with_reader(|c| {
            let mut tx = c.transaction()?;
            // A lock on the key's name (the row may not exist yet, so a row lock would not do), held to commit.
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1::text)::bigint)", &[&key])?;
            let current: Option<String> =
                tx.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?.map(|r| r.try_get(0)).transpose()?;
            let value = f(current)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )?;
            tx.commit()?;
            Ok(value)
        })
    }

    fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxRow>, LedgerError> {
        self.with_reader(|c| {
            c.query(
                "SELECT id, kind, payload, created FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
                &[&bound(after), &bound(limit as u64)],
            )?
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: seq_col(r.try_get(0)?)?,
                    kind: r.try_get(1)?,
                    payload: r.try_get(2)?,
                    created: r.try_get(3)?,
                })
            })
            .collect()
        })
    }

    fn outbox_push(&self, kind: &str, payload: &str, created: i64) -> Result<u64, LedgerError> {
        self.with_writer(|w| {
            let lock = w.lock.clone();
            let mut tx = w.client.transaction()?;
            // The append lock: ids are allocated exactly as appends allocate them.
            tx.execute(&lock, &[&APPEND_LOCK])?;
            let id = outbox_max(&mut tx)? + 1;
            tx.execute(
                "INSERT INTO outbox (id, kind, payload, created) VALUES ($1, $2, $3, $4)",
                &[&id, &kind, &payload, &created],
            )?;
            tx.commit()?;
            seq_col(id)
        })
    }

    fn outbox_last(&self) -> Result<u64, LedgerError> {
        self.with_reader(|c| seq_col(c.query_one("SELECT COALESCE(MAX(id), 0)::int8 FROM outbox", &[])?.try_get(0)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_stream(rows: &[[i64; 6]]) -> Vec<u8> {
        let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(b"abcd");
        for r in rows {
            out.extend_from_slice(&6i16.to_be_bytes());
            for (i, v) in r.iter().enumerate() {
                match i % 3 {
                    0 => {
                        out.extend_from_slice(&8i32.to_be_bytes());
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    1 => {
                        out.extend_from_slice(&4i32.to_be_bytes());
                        out.extend_from_slice(&(*v as i32).to_be_bytes());
                    }
                    _ => {
                        out.extend_from_slice(&2i32.to_be_bytes());
                        out.extend_from_slice(&(*v as i16).to_be_bytes());
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    /// A reader that hands out the stream in tiny pieces, to exercise refills mid-tuple.
    struct Trickle<'a>(&'a [u8], usize);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn copy_parser_reads_every_width_across_refills() {
        let rows: Vec<[i64; 6]> = (0..500).map(|i| [i * 1_000_000_007, i, -i, i * 3, 7, -(i << 40)]).collect();
        let expect: Vec<[i64; 6]> =
            rows.iter().map(|r| [r[0], r[1], r[2] as i16 as i64, r[3], r[4], r[5] as i16 as i64]).collect();
        let bytes = copy_stream(&rows);
        for piece in [1, 3, 7, 64, 1 << 16] {
            let mut got = Vec::new();
            let reader = std::io::BufReader::with_capacity(piece, Trickle(&bytes, piece));
            read_copy_ints(reader, |r| {
                got.push(r);
                Ok(())
            })
            .unwrap();
            assert_eq!(got, expect, "piece {piece}");
        }
    }

    fn ev(member: u64, key: &str) -> NewEvent {
        NewEvent {
            member_id: member,
            purpose: "p".into(),
            action: consentry_policy::Action::Grant,
            notice_version: 1,
            source: consentry_policy::Source::Api,
            actor: format!("member:{member}"),
            event_time: 10,
            idempotency_key: key.into(),
        }
    }

    /// Commits `batches` as one group, as concurrent callers of `append` would, and returns each caller's answer.
    fn group_commit(store: &PgStore, batches: Vec<Vec<NewEvent>>) -> Vec<Result<Vec<Appended>, LedgerError>> {
        let (group, answers): (Vec<Pending>, Vec<_>) = batches
            .into_iter()
            .map(|batch| {
                let (reply, answer) = sync_channel(1);
                (Pending { batch, recorded_time: 20, reply }, answer)
            })
            .unzip();
        store.commit_group(&mut store.writer.lock().unwrap(), group);
        answers.into_iter().map(|a| a.recv().unwrap()).collect()
    }

    /// The transactions the given events were written in (PostgreSQL's `xmin` of their rows).
    fn transactions(db: &consentry_test_support::pg::PgDb, seqs: &[u64]) -> usize {
        let seqs: Vec<i64> = seqs.iter().map(|&s| s as i64).collect();
        let row = db
            .client()
            .query_one("SELECT COUNT(DISTINCT xmin::text) FROM events WHERE seq = ANY($1)", &[&seqs])
            .unwrap();
        row.get::<_, i64>(0) as usize
    }

    fn seqs(r: &Result<Vec<Appended>, LedgerError>) -> Vec<(u64, bool)> {
        r.as_ref().unwrap().iter().map(|a| (a.event.seq, a.duplicate)).collect()
    }

    #[test]
    fn a_group_commits_in_one_transaction_and_a_bad_request_fails_alone() {
        let Some(db) = consentry_test_support::pg::pg() else { return };
        let store = PgStore::connect(&db.url).unwrap();
        store.append(vec![ev(1, "seen")], 5).unwrap();
        let out = group_commit(
            &store,
            vec![
                vec![ev(4, "a")],
                // The key names event 1, a different request: a conflict for this caller only.
                vec![ev(3, "seen")],
                // A retry of event 1, and a retry of the group's first request: duplicates, as in separate appends.
                vec![ev(1, "seen")],
                vec![ev(4, "a")],
                vec![ev(5, "b"), ev(6, "c")],
            ],
        );
        assert_eq!(seqs(&out[0]), [(2, false)]);
        assert!(matches!(&out[1], Err(LedgerError::IdempotencyConflict { key, seq: 1, .. }) if key == "seen"));
        assert_eq!(seqs(&out[2]), [(1, true)]);
        assert_eq!(seqs(&out[3]), [(2, true)]);
        assert_eq!(out[3].as_ref().unwrap()[0], Appended { duplicate: true, ..out[0].as_ref().unwrap()[0].clone() });
        assert_eq!(seqs(&out[4]), [(3, false), (4, false)]);
        assert_eq!(transactions(&db, &[2, 3, 4]), 1, "one group, one transaction");

        // A request the database refuses (PostgreSQL text holds no NUL) fails the group's transaction; every
        // request is then tried alone, and only the bad one fails.
        let mut nul = ev(7, "nul");
        nul.actor = "a\0b".into();
        let out = group_commit(&store, vec![vec![ev(8, "d")], vec![nul], vec![ev(9, "e")]]);
        assert_eq!(seqs(&out[0]), [(5, false)]);
        assert!(matches!(&out[1], Err(LedgerError::Postgres(_))), "{:?}", out[1]);
        assert_eq!(seqs(&out[2]), [(6, false)]);
        assert_eq!(store.len().unwrap(), 6);
        let mut keys = Vec::new();
        store
            .scan(1, 6, &mut |s| {
                keys.push(s.event.body.idempotency_key);
                Ok(())
            })
            .unwrap();
        assert_eq!(keys, ["seen", "a", "b", "c", "d", "e"]);
        let v = crate::ledger::verify_store(&store, &crate::LogKey::from_seed([1; 32]).public()).unwrap();
        assert!(v.ok(), "{v:?}");
    }

    #[test]
    fn bulk_scans_read_what_the_reader_session_reads() {
        let Some(db) = consentry_test_support::pg::pg() else { return };
        let store = PgStore::connect(&db.url).unwrap();
        let record = |id: u64, j: &str| MemberRecord {
            member_id: id,
            jurisdiction: j.into(),
            birth_date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        };
        store.append_facts((1..=40).map(|id| record(id, "DE")).collect(), "import", 1).unwrap();
        let mut n = 0;
        for round in 0..5 {
            let batch: Vec<NewEvent> = (1..=40)
                .map(|m| {
                    n += 1;
                    let mut e = ev(m, &format!("k{n}"));
                    e.purpose = ["p", "q", "r"][(m as usize + round) % 3].into();
                    e.event_time = n as i64;
                    e.notice_version = (n % 5) as u32 + 1;
                    if n % 3 == 0 {
                        e.action = consentry_policy::Action::Withdraw;
                    }
                    e.source = [
                        consentry_policy::Source::Api,
                        consentry_policy::Source::Gpc,
                        consentry_policy::Source::Ui,
                        consentry_policy::Source::Erasure,
                    ][n % 4];
                    e
                })
                .collect();
            store.append(batch, 20).unwrap();
            // Later facts of some members: the directory keeps each member's last.
            store
                .append_facts((1..=40).filter(|m| m % 7 == round as u64).map(|id| record(id, "FR")).collect(), "x", 2)
                .unwrap();
        }
        let len = store.len().unwrap();
        for (from, to) in [(1, len), (3, len - 5), (len, len), (len + 1, len + 9)] {
            let mut plain = Vec::new();
            store.consent_scan(from, to, false, &mut |m, p, e| plain.push((m, p.to_string(), e))).unwrap();
            let mut bulk = Vec::new();
            store.consent_scan(from, to, true, &mut |m, p, e| bulk.push((m, p.to_string(), e))).unwrap();
            assert_eq!(bulk, plain, "{from}..={to}");
        }
        for upto in [1, 40, 100, len] {
            let mut plain = Vec::new();
            store.member_facts_scan(upto, false, &mut |m, j, d| plain.push((m, j.to_string(), d))).unwrap();
            let mut bulk = Vec::new();
            store.member_facts_scan(upto, true, &mut |m, j, d| bulk.push((m, j.to_string(), d))).unwrap();
            assert_eq!(bulk, plain, "upto {upto}");
        }
    }

    #[test]
    fn copy_parser_rejects_truncation_and_nulls() {
        let bytes = copy_stream(&[[1, 2, 3, 4, 5, 6]]);
        let cut = &bytes[..bytes.len() - 3];
        assert!(matches!(read_copy_ints(cut, |_: [i64; 6]| Ok(())), Err(LedgerError::Corrupt(_))));
        let mut null = copy_stream(&[]);
        let trailer = null.split_off(null.len() - 2);
        null.extend_from_slice(&6i16.to_be_bytes());
        null.extend_from_slice(&(-1i32).to_be_bytes());
        null.extend_from_slice(&trailer);
        assert!(matches!(read_copy_ints(&null[..], |_: [i64; 6]| Ok(())), Err(LedgerError::Corrupt(_))));
        assert!(matches!(
            read_copy_ints(&b"NOTPGCOPY\n\0\0\0\0\0\0\0\0\0\0"[..], |_: [i64; 6]| Ok(())),
            Err(LedgerError::Corrupt(_))
        ));
    }
}
