//! Member self-service use cases (the privacy centre behind `/v1/me/…`): a member's effective consent per purpose,
//! their choices, their own history and receipts. Every call names the member it acts for; none reaches another
//! member's entries.

use crate::error::{AppError, ErrorKind, Result};
use crate::ledger::AppendRequest;
use crate::session::Session;
use consentry_ledger::receipt::AnyReceipt;
use consentry_ledger::{Appended, Entry, Event, LedgerError};
use consentry_policy::{
    Action, AllowBasis, ConsentEvent, Decision, DenyReason, MemberFacts, Notice, Policy, PurposeId, Source,
};

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
    /// How the feature stands for the member, in the privacy centre's three words.
    pub state: CardState,
    /// One plain sentence saying so and why, shown as is (no dates: the page formats `decided_at` itself).
    #[cfg_attr(feature = "openapi", schema(example = "Not used: you have not agreed."))]
    pub reason: &'static str,
    /// When the deciding event happened (its event time, Unix seconds); none when no event decided it.
    pub decided_at: Option<i64>,
    /// One sentence on what the feature does, from the policy (none when the policy gives none).
    pub summary: Option<String>,
    /// `categories` with the policy's description of each, in the same order.
    pub category_details: Vec<CategoryInfo>,
}

/// How a feature stands for the member: the privacy centre shows one of three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CardState {
    /// The member's data may be used for it now.
    Used,
    /// It may not.
    NotUsed,
    /// The member agreed, but under a notice that no longer holds: they must review it and choose again.
    Paused,
}

/// A data category as the policy describes it, for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryInfo {
    /// Category key, e.g. `user.professional.skills`.
    pub key: String,
    /// What it holds, in plain words (the policy's `description`).
    pub description: String,
    /// Whether the policy marks it sensitive (private messages).
    pub sensitive: bool,
}

impl CategoryInfo {
    /// The policy's description of `key` (an undeclared key, which validation rules out, is described by itself).
    pub(crate) fn of(policy: &Policy, key: &str) -> CategoryInfo {
        match policy.category(key) {
            Some(c) => CategoryInfo { key: c.key.clone(), description: c.description.clone(), sensitive: c.sensitive },
            None => CategoryInfo { key: key.to_string(), description: key.to_string(), sensitive: false },
        }
    }
}

/// The privacy centre's state and sentence for a decision: the one place a decision is put in plain words.
pub fn plain_state(decision: Decision) -> (CardState, &'static str) {
    match decision {
        Decision::Allowed(AllowBasis::Grant) => (CardState::Used, "Used: you agreed."),
        Decision::Allowed(AllowBasis::OptOutDefault) => {
            (CardState::Used, "Used: allowed by default where you live; you can say no.")
        }
        Decision::Denied(DenyReason::NoGrant) => (CardState::NotUsed, "Not used: you have not agreed."),
        Decision::Denied(DenyReason::Withdrawn) => (CardState::NotUsed, "Not used: you withdrew."),
        Decision::Denied(DenyReason::Gpc) => {
            (CardState::NotUsed, "Not used: Global Privacy Control is on in your browser.")
        }
        Decision::Denied(DenyReason::NoticeLapsed) => {
            (CardState::Paused, "Paused: the notice changed — please review it and choose again.")
        }
        Decision::Denied(DenyReason::UnknownNotice) => (
            CardState::Paused,
            "Paused: the notice you agreed to is no longer on record — please review it and choose again.",
        ),
        Decision::Denied(DenyReason::Minor) => {
            (CardState::NotUsed, "Not used: it is never used for members under the minimum age where you live.")
        }
        Decision::Denied(DenyReason::JurisdictionDefault) => {
            (CardState::NotUsed, "Not used: it is not allowed where you live.")
        }
    }
}

/// A member's events for one purpose, in log order, as the policy reads them.
fn consent_events(mine: &[&Event]) -> Vec<ConsentEvent> {
    mine.iter()
        .map(|e| ConsentEvent {
            at: e.body.event_time,
            action: e.body.action,
            notice_version: e.body.notice_version,
            source: e.body.source,
        })
        .collect()
}

/// THE Global Privacy Control rule: whether a GPC signal at `now` withdraws purpose `pid` for a member whose events
/// for it are `mine` (log order). Only a purpose that honours GPC, only while the member may be used for it, and
/// never when what allows it is a grant recorded after a GPC signal for it (the member chose it knowingly, despite
/// the signal). So a signal repeated on every request withdraws once, and never overrides a knowing choice.
pub fn gpc_would_withdraw(policy: &Policy, pid: PurposeId, facts: &MemberFacts, mine: &[&Event], now: i64) -> bool {
    if !policy.purpose(pid).gpc_withdraws {
        return false;
    }
    let consent = consent_events(mine);
    match policy.evaluate(pid, facts, &consent, now) {
        Decision::Denied(_) => false,
        Decision::Allowed(AllowBasis::OptOutDefault) => true,
        Decision::Allowed(AllowBasis::Grant) => match policy.deciding_event(pid, &consent, now) {
            Some(d) => !mine[..d].iter().any(|e| e.body.source == Source::Gpc),
            None => true,
        },
    }
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

/// What honouring a member's GPC signal did, and where that leaves them.
#[derive(Debug, Clone)]
pub struct GpcOutcome {
    /// The GPC withdrawals appended (none when nothing the signal covers was in use, or on a repeat).
    pub appended: Vec<Appended>,
    /// The member's consents after it.
    pub consents: Vec<MemberConsent>,
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

/// A client's idempotency key scoped to the member, so two members' keys never meet.
fn member_key(member: u64, key: &str) -> String {
    format!("member:{member}/{key}")
}

/// The key of the GPC signal a request carries.
struct GpcKey {
    key: String,
    /// The client named it: a retry returns the first attempt's withdrawals. Else it is one per member and second,
    /// so concurrent requests of one page load record the signal once, and a later repeat finds nothing to do.
    client: bool,
}

impl GpcKey {
    /// Under the client's key, or one per member and second.
    fn of(member: u64, client_key: Option<&str>) -> GpcKey {
        match client_key {
            Some(k) => GpcKey { key: format!("{}/gpc", member_key(member, k)), client: true },
            None => GpcKey { key: format!("member:{member}/gpc/{}", consentry_ledger::now()), client: false },
        }
    }
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

    /// A known member's facts as the policy reads them, and their consent events from the verified log.
    fn member_state(&self, member: u64) -> Result<(MemberFacts, Vec<Event>)> {
        let ledger = self.ledger()?;
        let record = self.known_member(member)?;
        let facts = MemberFacts {
            jurisdiction: ledger.policy().resolve_jurisdiction(&record.jurisdiction),
            birth_date: record.birth_date,
        };
        Ok((facts, self.member_events(member)?))
    }

    /// Effective consent of `member` for every purpose at `now`, by [`consentry_policy::Policy::evaluate`] over
    /// their facts and events, with the notice a choice is made under.
    pub fn member_consents(&self, member: u64, now: i64) -> Result<Vec<MemberConsent>> {
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let (facts, events) = self.member_state(member)?;
        Ok(policy
            .purpose_ids()
            .map(|pid| {
                let p = policy.purpose(pid);
                let mine: Vec<&Event> = events.iter().filter(|e| e.body.purpose == p.key).collect();
                let consent = consent_events(&mine);
                let decision = policy.evaluate(pid, &facts, &consent, now);
                let deciding = policy.deciding_event(pid, &consent, now).map(|i| mine[i]);
                let (state, reason) = plain_state(decision);
                MemberConsent {
                    purpose: p.key.clone(),
                    name: p.name.clone(),
                    allowed: decision.is_allowed(),
                    decision,
                    deciding_seq: deciding.map(|e| e.seq),
                    notice: p.latest_notice().clone(),
                    categories: p.categories.clone(),
                    gpc_withdraws: p.gpc_withdraws,
                    state,
                    reason,
                    decided_at: deciding.map(|e| e.body.event_time),
                    summary: p.summary.clone(),
                    category_details: p.categories.iter().map(|c| CategoryInfo::of(policy, c)).collect(),
                }
            })
            .collect())
    }

    /// Refuses to personalise for `member` with a model of `purpose` unless the policy allows the purpose for them
    /// at `now` (a withdrawal, a GPC signal or no grant is refused at once): serving follows the ledger, whatever
    /// model version is live, so a withdrawal's deadline bounds only the weights, never what the member is shown.
    /// The refusal is the one a member outside the model's training set gets. A member the ledger does not know is
    /// left to the model (which knows only its training set).
    pub fn require_consent_to_serve(&self, member: u64, purpose: &str, now: i64) -> Result<()> {
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let pid = policy.purpose_id(purpose).ok_or_else(|| {
            AppError::bad_input(format!(
                "the model was trained for `{purpose}`, which the policy in force does not declare: nothing is \
                 personalised with it"
            ))
        })?;
        if ledger.store().member(member)?.is_none() {
            return Ok(());
        }
        let (facts, events) = self.member_state(member)?;
        let mine: Vec<&Event> = events.iter().filter(|e| e.body.purpose == purpose).collect();
        let consent = consent_events(&mine);
        let decision = policy.evaluate(pid, &facts, &consent, now);
        if decision.is_allowed() {
            return Ok(());
        }
        let since = match policy.deciding_event(pid, &consent, now).map(|i| mine[i]) {
            Some(e) => format!(" since event {} ({})", e.seq, e.body.action.as_str()),
            None => String::new(),
        };
        Err(AppError::new(
            ErrorKind::NotFound,
            format!(
                "member {member} does not allow `{purpose}` now ({}){since}: nothing is personalised for them, \
                 whatever version of the model is live",
                plain_state(decision).1.trim_end_matches('.')
            ),
        ))
    }

    /// Honours a Global Privacy Control signal (`Sec-GPC: 1`) from `member` at `now`: a GPC withdrawal of each
    /// purpose [`gpc_would_withdraw`] says it withdraws, in one append, and nothing else. A browser sends the
    /// signal with every request, so this is called as often: a repeat appends nothing, and a purpose the member
    /// granted knowingly after a signal stays granted. With `key` (scoped to the member by the caller), a retry
    /// returns the first attempt's withdrawals as duplicates.
    pub fn honour_gpc(&self, member: u64, now: i64, key: &str) -> Result<Vec<Appended>> {
        self.gpc_for(member, now, &GpcKey { key: key.to_string(), client: true }, None)
    }

    /// [`Session::honour_gpc`], and when the request also grants `granting` (a purpose honouring GPC with no GPC
    /// signal recorded for it yet), the signal recorded for that purpose too: the grant that follows is then, in
    /// the log, a knowing choice made after the signal, which later signals leave alone.
    fn gpc_for(&self, member: u64, now: i64, key: &GpcKey, granting: Option<PurposeId>) -> Result<Vec<Appended>> {
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let (facts, events) = self.member_state(member)?;
        let mut retried = Vec::new();
        let mut withdraw = Vec::new();
        for pid in policy.purpose_ids() {
            let p = policy.purpose(pid);
            let own_key = format!("{}/{}", key.key, p.key);
            if let Some(first) = events.iter().find(|e| key.client && e.body.idempotency_key == own_key) {
                retried.push(first.seq);
                continue;
            }
            let mine: Vec<&Event> = events.iter().filter(|e| e.body.purpose == p.key).collect();
            let first_signal =
                granting == Some(pid) && p.gpc_withdraws && !mine.iter().any(|e| e.body.source == Source::Gpc);
            if first_signal || gpc_would_withdraw(policy, pid, &facts, &mine, now) {
                withdraw.push(crate::ledger::withdrawal(member, p, Source::Gpc, "gpc-signal", now, &key.key));
            }
        }
        if !retried.is_empty() {
            // A retry of a signal this key already recorded: its withdrawals, nothing new.
            return retried.into_iter().map(|seq| self.duplicate_of(seq)).collect();
        }
        self.append_counted(withdraw)
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
        let key = choice.idempotency_key.as_deref().map(|k| member_key(choice.member, k));
        let gpc = if choice.gpc {
            let granting = (choice.action == Action::Grant).then_some(pid);
            self.gpc_retry(choice.member, &GpcKey::of(choice.member, choice.idempotency_key.as_deref()), granting)?
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

    /// `POST /v1/me/gpc`: the member's browser sent Global Privacy Control; [`Session::honour_gpc`] now (a retry
    /// with the client's `idempotency_key` returns the first attempt's withdrawals), then the member's consents.
    pub fn member_gpc(&self, member: u64, idempotency_key: Option<&str>) -> Result<GpcOutcome> {
        self.known_member(member)?;
        let appended = self.gpc_retry(member, &GpcKey::of(member, idempotency_key), None)?;
        Ok(GpcOutcome { appended, consents: self.member_consents(member, consentry_ledger::now())? })
    }

    /// A GPC signal stamped now; a retry (same key) after the clock moved on is the duplicate of its first
    /// attempt, whose time stands (as [`Session::append`] treats a retry that named no event time).
    fn gpc_retry(&self, member: u64, key: &GpcKey, granting: Option<PurposeId>) -> Result<Vec<Appended>> {
        match self.gpc_for(member, consentry_ledger::now(), key, granting) {
            Err(e) => {
                let first = match e.downcast_ref::<LedgerError>() {
                    Some(LedgerError::IdempotencyConflict { seq, fields, .. }) if fields == "event time" => *seq,
                    _ => return Err(e),
                };
                self.gpc_for(member, self.keyed_event(first)?.event.body.event_time, key, granting)
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

#[cfg(test)]
mod tests {
    use super::*;
    use consentry_ledger::NewEvent;
    use proptest::prelude::*;

    /// Purpose `a` honours GPC and has two material notices; `b` does not honour it; `US` is opt-out.
    const POLICY: &str = r#"
[policy]
version = "t"
controller = "t"
[categories."user.job_title"]
description = "A member's job title."
[purposes."train_ai_system.a"]
name = "A"
categories = ["user.job_title"]
gpc_withdraws = true
[[purposes."train_ai_system.a".notices]]
version = 1
effective = 2026-01-01T00:00:00Z
material = true
text = "a, first"
[[purposes."train_ai_system.a".notices]]
version = 2
effective = 2026-06-01T00:00:00Z
material = true
text = "a, second"
[purposes."train_ai_system.b"]
name = "B"
categories = ["user.job_title"]
[[purposes."train_ai_system.b".notices]]
version = 1
effective = 2026-01-01T00:00:00Z
text = "b"
[jurisdictions.default]
default = "opt_in"
min_age = 18
[jurisdictions.US]
default = "opt_out"
min_age = 18
"#;

    const JAN: i64 = 1_767_225_600; // 2026-01-01
    const JULY: i64 = 1_782_864_000; // 2026-07-01

    fn policy() -> Policy {
        Policy::from_toml("t.toml", POLICY).unwrap()
    }

    fn facts(policy: &Policy, jurisdiction: &str) -> MemberFacts {
        MemberFacts {
            jurisdiction: policy.resolve_jurisdiction(jurisdiction),
            birth_date: chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        }
    }

    fn event(seq: u64, purpose: &str, action: Action, notice_version: u32, source: Source, at: i64) -> Event {
        Event {
            seq,
            recorded_time: at,
            body: NewEvent {
                member_id: 1,
                purpose: purpose.into(),
                action,
                notice_version,
                source,
                actor: "t".into(),
                event_time: at,
                idempotency_key: format!("k{seq}"),
            },
        }
    }

    #[test]
    fn every_decision_has_a_plain_state_and_sentence() {
        for d in DenyReason::ALL {
            let (state, reason) = plain_state(Decision::Denied(d));
            assert_ne!(state, CardState::Used, "{d:?}");
            assert!(reason.starts_with(if state == CardState::Paused { "Paused: " } else { "Not used: " }), "{reason}");
            assert!(reason.ends_with('.') && !reason.chars().any(|c| c.is_ascii_digit()), "{reason}");
        }
        assert_eq!(plain_state(Decision::Denied(DenyReason::NoGrant)).1, "Not used: you have not agreed.");
        assert_eq!(plain_state(Decision::Denied(DenyReason::NoticeLapsed)).0, CardState::Paused);
        assert_eq!(
            plain_state(Decision::Denied(DenyReason::Gpc)).1,
            "Not used: Global Privacy Control is on in your browser."
        );
        assert_eq!(plain_state(Decision::Allowed(AllowBasis::Grant)), (CardState::Used, "Used: you agreed."));
        assert_eq!(plain_state(Decision::Allowed(AllowBasis::OptOutDefault)).0, CardState::Used);
        assert_eq!(serde_json::to_value(CardState::NotUsed).unwrap(), "not_used");
    }

    #[test]
    fn the_gpc_rule_spares_a_knowing_grant_and_purposes_that_do_not_honour_it() {
        let p = policy();
        let (a, b) = (p.purpose_id("train_ai_system.a").unwrap(), p.purpose_id("train_ai_system.b").unwrap());
        let fr = facts(&p, "FR");
        let now = JULY;
        let grant = event(1, "train_ai_system.a", Action::Grant, 2, Source::Ui, JULY - 10);
        // Granted, no signal before: withdrawn.
        assert!(gpc_would_withdraw(&p, a, &fr, &[&grant], now));
        // Granted after a signal: the member chose knowingly.
        let signal = event(1, "train_ai_system.a", Action::Withdraw, 2, Source::Gpc, JULY - 20);
        let after = event(2, "train_ai_system.a", Action::Grant, 2, Source::Ui, JULY - 10);
        assert!(!gpc_would_withdraw(&p, a, &fr, &[&signal, &after], now));
        // Not in use (never granted, or a lapsed grant): nothing to withdraw.
        assert!(!gpc_would_withdraw(&p, a, &fr, &[], now));
        let lapsed = event(1, "train_ai_system.a", Action::Grant, 1, Source::Ui, JAN + 10);
        assert!(!gpc_would_withdraw(&p, a, &fr, &[&lapsed], now));
        // Opt-out by default where the member lives: withdrawn, once.
        let us = facts(&p, "US");
        assert!(gpc_would_withdraw(&p, a, &us, &[], now));
        let withdrawn = event(1, "train_ai_system.a", Action::Withdraw, 2, Source::Gpc, now);
        assert!(!gpc_would_withdraw(&p, a, &us, &[&withdrawn], now));
        // A purpose that does not honour GPC never is.
        let grant_b = event(1, "train_ai_system.b", Action::Grant, 1, Source::Ui, JULY - 10);
        assert!(!gpc_would_withdraw(&p, b, &fr, &[&grant_b], now));
        assert!(!gpc_would_withdraw(&p, b, &us, &[], now));
    }

    /// One generated event: purpose a or b, grant (notice 1 or 2) / withdraw / GPC signal, at a time.
    fn arb_event() -> impl Strategy<Value = (bool, u8, u32, i64)> {
        (any::<bool>(), 0u8..3, 1u32..=2, JAN..JULY)
    }

    proptest! {
        /// After the signal is honoured, every purpose that honours GPC is denied unless explicitly granted after a
        /// recorded GPC signal; honouring it again appends nothing.
        #[test]
        fn honouring_gpc_leaves_only_knowing_grants_and_is_idempotent(
            raw in proptest::collection::vec(arb_event(), 0..12),
            opt_out in any::<bool>(),
        ) {
            let p = policy();
            let f = facts(&p, if opt_out { "US" } else { "FR" });
            let now = JULY;
            let mut events: Vec<Event> = raw
                .iter()
                .enumerate()
                .map(|(i, &(is_a, kind, notice, at))| {
                    let purpose = if is_a { "train_ai_system.a" } else { "train_ai_system.b" };
                    let notice = if is_a { notice } else { 1 };
                    let (action, source) = match kind {
                        0 => (Action::Grant, Source::Ui),
                        1 => (Action::Withdraw, Source::Ui),
                        _ => (Action::Withdraw, Source::Gpc),
                    };
                    event(i as u64 + 1, purpose, action, notice, source, at)
                })
                .collect();
            // Honour the signal: what the rule says, appended at `now`.
            let honour = |events: &[Event]| -> Vec<Event> {
                p.purpose_ids()
                    .filter_map(|pid| {
                        let key = &p.purpose(pid).key;
                        let mine: Vec<&Event> = events.iter().filter(|e| &e.body.purpose == key).collect();
                        gpc_would_withdraw(&p, pid, &f, &mine, now).then(|| {
                            event(events.len() as u64 + 1, key, Action::Withdraw, 2, Source::Gpc, now)
                        })
                    })
                    .collect()
            };
            let added = honour(&events);
            events.extend(added);
            for pid in p.purpose_ids().filter(|&pid| p.purpose(pid).gpc_withdraws) {
                let key = &p.purpose(pid).key;
                let mine: Vec<&Event> = events.iter().filter(|e| &e.body.purpose == key).collect();
                let consent = consent_events(&mine);
                match p.evaluate(pid, &f, &consent, now) {
                    Decision::Denied(_) => {}
                    Decision::Allowed(basis) => {
                        prop_assert_eq!(basis, AllowBasis::Grant);
                        let d = p.deciding_event(pid, &consent, now).unwrap();
                        prop_assert!(mine[..d].iter().any(|e| e.body.source == Source::Gpc), "{:?}", mine);
                    }
                }
            }
            prop_assert!(honour(&events).is_empty(), "a second signal appended: {:?}", events);
        }
    }
}
