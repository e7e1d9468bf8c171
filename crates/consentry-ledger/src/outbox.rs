//! The outbox: what the platform's other systems hear of (webhooks, `GET /v1/events`). Every consent event
//! appended fresh gets a row in the same transaction as the append (`consent.changed`), so a consumer can never
//! miss an acknowledged change nor hear of one that was rolled back; unlearning completions are pushed right after
//! the registry commits them (`unlearning.completed`, [`crate::Store::outbox_push`]).
//!
//! Ids are gap-free and increase in commit order: on SQLite the single writer assigns `max + 1`; on PostgreSQL
//! they are `max + 1` read under the append advisory lock, which is held until commit, so a consumer that read
//! `after = N` never later finds a row with an id `<= N`. The outbox is a notification channel, not evidence:
//! the ledger (hash chain, Merkle tree, signed checkpoints) is what proves consent; an outbox row edited in the
//! database is delivered as edited, and a receiver that must be sure checks the ledger position the payload names.
//!
//! The tables are their own schema component (`outbox`, version 1): a writable open creates them in a store that
//! predates them (events appended before that have no rows: there is no backfill — the ledger holds them, and
//! `GET /v1/events` starts where the outbox starts); a read-only open of such a store reads an empty outbox.

use crate::event::Event;
use crate::schema::Component;
use consentry_policy::{Action, Source};
use serde::{Deserialize, Serialize};

/// The kind of a row for a consent event.
pub const CONSENT_CHANGED: &str = "consent.changed";
/// The kind of a row for a completed unlearning retrain.
pub const UNLEARNING_COMPLETED: &str = "unlearning.completed";

/// The outbox's tables, a schema component of their own beside the ledger's.
pub static OUTBOX: Component = Component { name: "outbox", migrations: &[] };

/// The outbox table on SQLite (ids are the rowid: `max + 1` under the single writer).
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_TABLES: &str = "CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created INTEGER NOT NULL
);";

/// The outbox table on PostgreSQL (ids assigned under the append lock, never by a sequence).
#[cfg(feature = "postgres")]
pub(crate) const PG_TABLES: &str = "CREATE TABLE IF NOT EXISTS outbox (
    id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created BIGINT NOT NULL
);";

/// One outbox row: what a consumer receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    /// Gap-free, increasing in commit order; the stable id of every delivery of this row.
    pub id: u64,
    /// [`CONSENT_CHANGED`] or [`UNLEARNING_COMPLETED`].
    pub kind: String,
    /// The JSON payload, as stored.
    pub payload: String,
    /// When the row was written (Unix seconds, UTC).
    pub created: i64,
}

/// The payload of a `consent.changed` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChanged {
    /// The member.
    pub member: u64,
    /// The purpose key.
    pub purpose: String,
    /// Grant or withdraw.
    pub action: Action,
    /// The event's ledger position (where its receipt and proofs are).
    pub seq: u64,
    /// When the member acted.
    pub event_time: i64,
    /// The notice version the member saw.
    pub notice_version: u32,
    /// Where the event came from.
    pub source: Source,
    /// When the ledger accepted it.
    pub recorded_time: i64,
}

impl ConsentChanged {
    /// The payload for a freshly appended event.
    pub fn of(e: &Event) -> ConsentChanged {
        ConsentChanged {
            member: e.body.member_id,
            purpose: e.body.purpose.clone(),
            action: e.body.action,
            seq: e.seq,
            event_time: e.body.event_time,
            notice_version: e.body.notice_version,
            source: e.body.source,
            recorded_time: e.recorded_time,
        }
    }

    /// The payload as stored in the outbox.
    pub fn json(&self) -> String {
        // A struct of numbers, strings and unit enums always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The meta key of a consumer's delivery cursor.
pub(crate) fn cursor_key(consumer: &str) -> String {
    format!("outbox.cursor.{consumer}")
}
