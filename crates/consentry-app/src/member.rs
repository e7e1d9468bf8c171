//! Member self-service use cases (the privacy centre behind `/v1/me/…`): a member's effective consent per purpose,
//! their choices, their own history and receipts. Every call names the member it acts for; none reaches another
//! member's entries.

use crate::error::{AppError, ErrorKind, Result};
use crate::ledger::AppendRequest;
use crate::session::Session;
use consentry_ledger::receipt::AnyReceipt;
use consentry_ledger::{Appended, Entry, Event, LedgerError};
use consentry_policy::{Action, ConsentEvent, Decision, MemberFacts, Notice, Source};

/// The most events one history page holds.
pub const MAX_HISTORY_PAGE: usize = 500;

/// A member's effective consent for one purpose now.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberConsent {
    /// Purpose key.
    pub purpose: String,
    /// The purpose's short human name.
    pub name: String,
    /// Whether the member's data may be used for it now.
    pub allowed: bool,
    /// The policy's decision with its basis or reason (`{"decision":"denied","reason":"withdrawn"}`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub decision: Decision,
    /// The log position of the event that decided it, if an event did.
    pub deciding_seq: Option<u64>,
    /// The notice a choice is made under now (the newest version): a choice must name its version.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub notice: Notice,
    /// The data categories the purpose uses.
    pub categories: Vec<String>,
    /// Whether a Global Privacy Control signal withdraws it.
    pub gpc_withdraws: bool,
}

/// A member's choice about one purpose, as a front end received it.
#[derive(Debug, Clone)]
pub struct MemberChoice {
    /// The member (from their credential, never from the request body).
    pub member: u64,
    /// Purpose key.
    pub purpose: String,
    /// Grant or withdraw.
    pub action: Action,
    /// The notice version the member was shown; must be the purpose's current one.
    pub notice_version: u32,
    /// Where the choice came from (`ui` or `api`).
    pub source: Source,
    /// The client's retry key (scoped to the member), or none for a fresh random one.
    pub idempotency_key: Option<String>,
    /// The request carried a Global Privacy Control signal (`Sec-GPC: 1`).
    pub gpc: bool,
}

/// What a member's choice appended.
#[derive(Debug, Clone)]
pub struct ChoiceOutcome {
    /// The choice's event (the original one on a retry, `duplicate` set).
    pub appended: Appended,
    /// The GPC withdrawals the request's signal appended (before the choice, which is the member's latest word).
    pub gpc: Vec<Appended>,
}

/// A choice made under a notice that is not the purpose's current one: the member must see the current notice.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "notice version {given} of `{purpose}` is not the current one (version {current}): show the member notice \
     {current} and send its version"
)]
pub struct StaleNotice {
    /// Purpose key.
    pub purpose: String,
    /// The version the request named.
    pub given: u32,
    /// The version in force.
    pub current: u32,
}

/// One page of a member's history, newest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryPage {
    /// The member's consent events, newest first.
    pub events: Vec<Event>,
    /// Pass as `before` for the next (older) page; none when this page reached the first event.
    pub next_before: Option<u64>,
}

impl Session {
    /// A purpose declared by the policy, or [`ErrorKind::NotFound`] (a purpose named in a URL is a resource).
    pub(crate) fn declared_purpose(&self, purpose: &str) -> Result<consentry_policy::PurposeId> {
        self.ledger()?
            .policy()
            .purpose_id(purpose)
            .ok_or_else(|| AppError::new(ErrorKind::NotFound, format!("no purpose `{purpose}` in the policy in force")))
    }

    /// Every consent event of `member`, in log order, read only from entries verified against the signed log.
    pub(crate) fn member_events(&self, member: u64) -> Result<Vec<Event>> {
        let ledger = self.ledger()?;
        let len = ledger.verify_through()?;
        Ok(ledger.store().member_events(member, len)?)
    }

    /// Effective consent of `member` for every purpose at `now`, by [`consentry_policy::Policy::evaluate`] over
    /// their facts and events, with the notice a choice is made under.
    pub fn member_consents(&self, member: u64, now: i64) -> Result<Vec<MemberConsent>> {
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let record = self.known_member(member)?;
        let facts = MemberFacts {
            jurisdiction: policy.resolve_jurisdiction(&record.jurisdiction),
            birth_date: record.birth_date,
        };
        let events = self.member_events(member)?;
        Ok(policy
            .purpose_ids()
            .map(|pid| {
                let p = policy.purpose(pid);
                let mine: Vec<&Event> = events.iter().filter(|e| e.body.purpose == p.key).collect();
                let consent: Vec<ConsentEvent> = mine
                    .iter()
                    .map(|e| ConsentEvent {
                        at: e.body.event_time,
                        action: e.body.action,
                        notice_version: e.body.notice_version,
                        source: e.body.source,
                    })
                    .collect();
                let decision = policy.evaluate(pid, &facts, &consent, now);
                MemberConsent {
                    purpose: p.key.clone(),
                    name: p.name.clone(),
                    allowed: decision.is_allowed(),
                    decision,
                    deciding_seq: policy.deciding_event(pid, &consent, now).map(|i| mine[i].seq),
                    notice: p.latest_notice().clone(),
                    categories: p.categories.clone(),
                    gpc_withdraws: p.gpc_withdraws,
                }
            })
            .collect())
    }

    /// Records a member's choice under the purpose's current notice (a stale one is [`ErrorKind::Conflict`] wrapping
    /// [`StaleNotice`], nothing written); a GPC signal with it is recorded first.
    pub fn member_choice(&self, choice: MemberChoice) -> Result<ChoiceOutcome> {
        let ledger = self.ledger()?;
        let pid = self.declared_purpose(&choice.purpose)?;
        self.known_member(choice.member)?;
        let current = ledger.policy().purpose(pid).latest_notice().version;
        if choice.notice_version != current {
            return Err(AppError::wrap(
                ErrorKind::Conflict,
                StaleNotice { purpose: choice.purpose, given: choice.notice_version, current },
            ));
        }
        // A client's key is scoped to the member, so two members' keys never meet.
        let key = choice.idempotency_key.map(|k| format!("member:{}/{k}", choice.member));
        let gpc = if choice.gpc {
            let gpc_key = match &key {
                Some(k) => format!("{k}/gpc"),
                None => format!("member:{}/gpc/{}", choice.member, consentry_ledger::now()),
            };
            self.gpc_retry(choice.member, &gpc_key)?
        } else {
            Vec::new()
        };
        let appended = self.append(AppendRequest {
            member: choice.member,
            purpose: choice.purpose,
            action: choice.action,
            notice_version: Some(current),
            source: choice.source,
            actor: Some(format!("member:{}", choice.member)),
            event_time: None,
            idempotency_key: key,
            key_prefix: "api",
        })?;
        Ok(ChoiceOutcome { appended, gpc })
    }

    /// A GPC signal stamped now; a retry (same key) after the clock moved on is the duplicate of its first
    /// attempt, whose time stands (as [`Session::append`] treats a retry that named no event time).
    fn gpc_retry(&self, member: u64, key: &str) -> Result<Vec<Appended>> {
        match self.gpc_signal(member, consentry_ledger::now(), key) {
            Err(e) => {
                let first = match e.downcast_ref::<LedgerError>() {
                    Some(LedgerError::IdempotencyConflict { seq, fields, .. }) if fields == "event time" => *seq,
                    _ => return Err(e),
                };
                self.gpc_signal(member, self.keyed_event(first)?.event.body.event_time, key)
            }
            ok => ok,
        }
    }

    /// A page of `member`'s consent events, newest first: at most `limit` (1..=[`MAX_HISTORY_PAGE`]) events with a
    /// position below `before` (none: from the newest).
    pub fn member_history(&self, member: u64, limit: usize, before: Option<u64>) -> Result<HistoryPage> {
        if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
            return Err(AppError::bad_input(format!("limit must be between 1 and {MAX_HISTORY_PAGE}, not {limit}")));
        }
        self.known_member(member)?;
        let mut events: Vec<Event> = self
            .member_events(member)?
            .into_iter()
            .rev()
            .filter(|e| before.is_none_or(|b| e.seq < b))
            .take(limit + 1)
            .collect();
        let more = events.len() > limit;
        events.truncate(limit);
        let next_before = if more { events.last().map(|e| e.seq) } else { None };
        Ok(HistoryPage { events, next_before })
    }

    /// The receipt of entry `seq` when it is about `member` (a consent event or a facts entry of theirs); any other
    /// entry is [`ErrorKind::NotFound`], exactly as a position past the log's end, so no member learns of another's.
    pub fn member_receipt(&self, member: u64, seq: u64) -> Result<AnyReceipt> {
        let ledger = self.ledger()?;
        let about = ledger.store().entry(seq)?.map(|s| match s.entry {
            Entry::Consent(e) => e.body.member_id,
            Entry::Facts(f) => f.member_id,
        });
        if about != Some(member) {
            return Err(AppError::new(ErrorKind::NotFound, format!("you have no ledger entry {seq}")));
        }
        self.receipt(seq)
    }
}
