//! A member's export (GDPR Art. 15 and 20) and erasure: everything recorded about them in one document, and
//! "withdraw everything and forget me" with its progress.
//!
//! An erasure is a batch of withdrawals with source `erasure`, one per purpose the member had not withdrawn,
//! appended in one transaction: those ledger entries are the signed record of the request. Unlearning then starts
//! at once through the lineage worker's own intake ([`Session::unlearn_queue`]: the withdrawals become unlearning
//! requests with their deadlines); the retrains are the worker's next pass (`consentry unlearn`, or an operator's
//! `POST /v1/jobs/unlearn`). Progress is read back from the registry's requests about the member.

use crate::error::Result;
use crate::member::MemberConsent;
use crate::session::Session;
use crate::unlearn::UnlearnOptions;
use consentry_ledger::receipt::AnyReceipt;
use consentry_ledger::{Appended, Event, LedgerError, NewEvent};
use consentry_lineage::{MemberLineage, UnlearningRequest};
use consentry_policy::{Action, Source};

/// Everything Consentry holds about one member.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberExport {
    /// The member.
    pub member: u64,
    /// When the export was made (Unix seconds).
    pub exported_at: i64,
    /// The ledger's length the export read.
    pub ledger_length: u64,
    /// Their effective consent per purpose now.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub consents: Vec<MemberConsent>,
    /// Every consent event of theirs, in log order (each has a receipt by its `seq`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub events: Vec<Event>,
    /// Their facts as recorded, datasets, models and shards, unlearning requests and privacy loss.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub lineage: MemberLineage,
}

/// One request of an erasure's progress: one affected model version (and shard).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureItem {
    /// The model version that held the member.
    pub model: String,
    /// The model's kind (`job-recs`, `content`, `replies`), if the registry still has it.
    pub kind: Option<String>,
    /// Purpose the withdrawal was for.
    pub purpose: String,
    /// The shard their rows trained.
    pub shard: Option<u32>,
    /// The withdrawal behind the request.
    pub event_seq: u64,
    /// `queued`, `done` or `missed` (past its deadline, open or completed late).
    pub state: String,
    /// When the member withdrew.
    pub requested_at: i64,
    /// When no live model may hold them any more.
    pub deadline: i64,
    /// The version retrained without them.
    pub new_model: Option<String>,
    /// When that version went live (or the model was retired).
    pub completed_at: Option<i64>,
}

/// Where a member's erasure stands.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureProgress {
    /// The member.
    pub member: u64,
    /// Whether the member ever asked for erasure.
    pub requested: bool,
    /// The erasure's withdrawals (source `erasure`), in log order.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub withdrawals: Vec<Event>,
    /// The deadline (seconds after a withdrawal) the service's unlearning applies.
    pub deadline_secs: i64,
    /// Per affected model version and shard.
    pub items: Vec<ErasureItem>,
    /// True when every request is done (or there is none).
    pub complete: bool,
    /// Live models still holding the member whose withdrawal the worker has not read yet.
    pub awaiting_intake: Vec<String>,
}

/// What an erasure request did.
#[derive(Debug, Clone)]
pub struct ErasureOutcome {
    /// The withdrawals (a retry with the same key gets the originals, `duplicate` set).
    pub withdrawals: Vec<Appended>,
    /// Each withdrawal's receipt (same order): verifiable offline with the ledger's public key.
    pub receipts: Vec<AnyReceipt>,
    /// Why unlearning did not start at once (another worker held the queue, a registry problem), if it did not:
    /// the next pass starts it.
    pub queue_note: Option<String>,
    /// Progress after the request.
    pub progress: ErasureProgress,
}

impl Session {
    /// Everything recorded about `member`: consents, every event, facts, lineage and privacy loss.
    pub fn member_export(&self, member: u64, now: i64) -> Result<MemberExport> {
        self.known_member(member)?;
        let consents = self.member_consents(member, now)?;
        let ledger_length = self.ledger()?.store().len()?;
        let events = self.member_events(member)?;
        let lineage = self.member_lineage(member)?;
        Ok(MemberExport { member, exported_at: now, ledger_length, consents, events, lineage })
    }

    /// Erases `member`: withdraws every purpose their latest event has not withdrawn (source `erasure`, one
    /// transaction), then opens the unlearning requests at once. A retry with the same client key returns the same
    /// withdrawals; a second erasure withdraws nothing new.
    pub fn member_erasure(&self, member: u64, idempotency_key: Option<&str>) -> Result<ErasureOutcome> {
        self.known_member(member)?;
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let base = match idempotency_key {
            Some(k) => format!("member:{member}/{k}/erasure"),
            None => format!("member:{member}/erasure/{}", crate::ledger::random_key("api")?),
        };
        let events = self.member_events(member)?;
        let key_of = |purpose: &str| format!("{base}/{purpose}");
        let wanted: Vec<&consentry_policy::Purpose> = policy
            .purposes
            .iter()
            .filter(|p| {
                let last = events.iter().rev().find(|e| e.body.purpose == p.key);
                // Not withdrawn yet, or withdrawn by this very request (a retry).
                last.is_none_or(|e| e.body.action != Action::Withdraw || e.body.idempotency_key == key_of(&p.key))
            })
            .collect();
        let actor = format!("member:{member}");
        let batch = |at: i64| -> Vec<NewEvent> {
            wanted.iter().map(|p| crate::ledger::withdrawal(member, p, Source::Erasure, &actor, at, &base)).collect()
        };
        let withdrawals = if wanted.is_empty() {
            Vec::new()
        } else {
            match ledger.append(batch(consentry_ledger::now())) {
                // A retry a second later: the first attempt's time stands (one batch, one time).
                Err(LedgerError::IdempotencyConflict { seq, fields, .. }) if fields == "event time" => {
                    let first = self.keyed_event(seq)?.event.body.event_time;
                    ledger.append(batch(first))?
                }
                other => other?,
            }
        };
        // The withdrawals are committed: whatever keeps the queue from moving now (another worker holding it, a
        // registry problem for the operator) delays unlearning to the next pass, and the member is told so.
        let queue_note = match self.unlearn_queue(&UnlearnOptions::service()) {
            Ok(_) => None,
            Err(e) => Some(format!("unlearning starts at the next worker pass ({}: {e})", e.kind().as_str())),
        };
        let receipts = withdrawals.iter().map(|a| self.receipt(a.event.seq)).collect::<Result<Vec<_>>>()?;
        let progress = self.member_erasure_progress(member)?;
        Ok(ErasureOutcome { withdrawals, receipts, queue_note, progress })
    }

    /// Where `member`'s erasure stands: their erasure withdrawals and, per affected model version and shard, the
    /// unlearning request's state, dates and deadline.
    pub fn member_erasure_progress(&self, member: u64) -> Result<ErasureProgress> {
        self.known_member(member)?;
        let withdrawals: Vec<Event> =
            self.member_events(member)?.into_iter().filter(|e| e.body.source == Source::Erasure).collect();
        let lineage = self.member_lineage(member)?;
        let reg = self.registry()?;
        let now = consentry_ledger::now();
        let item = |r: &UnlearningRequest| -> Result<ErasureItem> {
            let model = reg.model(&r.model).ok();
            let shard = model.as_ref().and_then(|m| m.shard_function.shard_of(member));
            let state = match (r.status, r.completed_at) {
                (consentry_lineage::RequestStatus::Missed, _) => "missed",
                (_, Some(_)) => "done",
                _ if r.deadline < now => "missed",
                _ => "queued",
            };
            Ok(ErasureItem {
                model: r.model.clone(),
                kind: model.map(|m| m.kind),
                purpose: r.purpose.clone(),
                shard,
                event_seq: r.event_seq,
                state: state.to_string(),
                requested_at: r.requested_at,
                deadline: r.deadline,
                new_model: r.new_model.clone(),
                completed_at: r.completed_at,
            })
        };
        let items = lineage.requests.iter().map(item).collect::<Result<Vec<_>>>()?;
        let cursor = reg.cursor(consentry_lineage::worker::DEFAULT_CURSOR)?;
        let awaiting_intake = if withdrawals.iter().any(|e| e.seq > cursor) {
            lineage
                .models
                .iter()
                .filter(|m| m.status == consentry_lineage::ModelStatus::Live)
                .map(|m| m.model.clone())
                .collect()
        } else {
            Vec::new()
        };
        let complete = items.iter().all(|i| i.completed_at.is_some()) && awaiting_intake.is_empty();
        Ok(ErasureProgress {
            member,
            requested: !withdrawals.is_empty(),
            withdrawals,
            deadline_secs: UnlearnOptions::service().deadline_secs,
            items,
            complete,
            awaiting_intake,
        })
    }
}
