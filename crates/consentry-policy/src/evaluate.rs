//! Effective consent: the one pure function every later stage trusts.
//!
//! `Policy::evaluate` answers "may member M's data be used for purpose P at
//! time T?" from the policy, the member's jurisdiction and birth date, and the
//! member's consent events for P. It never allocates and never looks at an
//! event recorded for a time after T, so a snapshot can evaluate it for a
//! billion member–purpose pairs and replay any past position exactly.

use crate::{JurisdictionId, Policy, PurposeId};
use chrono::{DateTime, Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, UTC: the one time scale of consent events.
pub type Timestamp = i64;

/// No purpose ever includes a member younger than this, whatever a jurisdiction says.
pub const MIN_AGE_FLOOR: u8 = 18;

/// What a member did about a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The member agreed, under a notice version.
    Grant,
    /// The member took agreement back.
    Withdraw,
}

/// Where an event came from; `Gpc` events follow the purpose's GPC rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The member's privacy centre.
    Ui,
    /// An authenticated API client acting for the member.
    Api,
    /// A Global Privacy Control signal (`Sec-GPC: 1`).
    Gpc,
    /// A bulk import of earlier records.
    Import,
    /// An erasure request, which withdraws every purpose.
    Erasure,
}

impl Source {
    /// All sources, in their stable code order.
    pub const ALL: [Source; 5] = [Source::Ui, Source::Api, Source::Gpc, Source::Import, Source::Erasure];

    /// The lowercase name used in files and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ui => "ui",
            Source::Api => "api",
            Source::Gpc => "gpc",
            Source::Import => "import",
            Source::Erasure => "erasure",
        }
    }

    /// Parses the lowercase wire name.
    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl Action {
    /// The lowercase name used in files and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Grant => "grant",
            Action::Withdraw => "withdraw",
        }
    }

    /// Parses the lowercase wire name.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "grant" => Some(Action::Grant),
            "withdraw" => Some(Action::Withdraw),
            _ => None,
        }
    }
}

/// One consent event as the evaluator needs it: small and `Copy` so batches stay flat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentEvent {
    /// When the member acted (event time, not recording time).
    pub at: Timestamp,
    /// Grant or withdraw.
    pub action: Action,
    /// The notice version shown when the member acted.
    pub notice_version: u32,
    /// Where the event came from.
    pub source: Source,
}

/// The member facts evaluation depends on, resolved once per member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberFacts {
    /// The jurisdiction rule that applies, from [`Policy::resolve_jurisdiction`].
    pub jurisdiction: JurisdictionId,
    /// Date of birth, for the minimum-age rule.
    pub birth_date: NaiveDate,
}

/// Why data may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowBasis {
    /// The member granted under a notice that is still in force.
    Grant,
    /// The jurisdiction is opt-out for this purpose and the member has not objected.
    OptOutDefault,
}

/// Why data may not be used; every denial names one, so excluded counts can be explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// Opt-in applies and the member never granted (or not before the time asked about).
    NoGrant,
    /// The member's latest event withdrew consent.
    Withdrawn,
    /// The grant was made under a notice that a later material notice superseded.
    NoticeLapsed,
    /// The grant names a notice version the policy does not declare.
    UnknownNotice,
    /// The member is younger than the jurisdiction's minimum age (never below 18).
    Minor,
    /// A Global Privacy Control signal withdrew a purpose that honours it.
    Gpc,
    /// The jurisdiction prohibits the purpose outright.
    JurisdictionDefault,
}

impl DenyReason {
    /// All reasons, in their stable code order (used for counts and exports).
    pub const ALL: [DenyReason; 7] = [
        DenyReason::NoGrant,
        DenyReason::Withdrawn,
        DenyReason::NoticeLapsed,
        DenyReason::UnknownNotice,
        DenyReason::Minor,
        DenyReason::Gpc,
        DenyReason::JurisdictionDefault,
    ];

    /// The snake_case name used in reports and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NoGrant => "no_grant",
            DenyReason::Withdrawn => "withdrawn",
            DenyReason::NoticeLapsed => "notice_lapsed",
            DenyReason::UnknownNotice => "unknown_notice",
            DenyReason::Minor => "minor",
            DenyReason::Gpc => "gpc",
            DenyReason::JurisdictionDefault => "jurisdiction_default",
        }
    }
}

/// The answer of [`Policy::evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "decision", content = "reason", rename_all = "snake_case")]
pub enum Decision {
    /// The data may be used, and why.
    Allowed(AllowBasis),
    /// The data may not be used, and why.
    Denied(DenyReason),
}

impl Decision {
    /// True for [`Decision::Allowed`].
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
}

/// What a jurisdiction does for a purpose when the member has said nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultRule {
    /// Denied until the member grants.
    OptIn,
    /// Allowed until the member withdraws.
    OptOut,
    /// Denied whatever the member says (a regulator's ban).
    Prohibited,
}

/// Age in whole years on the UTC date of `at`; no allocation.
pub fn age_at(birth_date: NaiveDate, at: Timestamp) -> i32 {
    let today = match DateTime::from_timestamp(at, 0) {
        Some(t) => t.date_naive(),
        // Out of chrono's range: far past or far future. Far past means "not yet born".
        None if at < 0 => return -1,
        None => NaiveDate::MAX,
    };
    let mut age = today.year() - birth_date.year();
    if (today.month(), today.day()) < (birth_date.month(), birth_date.day()) {
        age -= 1;
    }
    age
}

impl Policy {
    /// Effective consent of one member for one purpose at time `at`.
    ///
    /// Rules, in order:
    /// 1. a member younger than the jurisdiction's minimum age (never below
    ///    [`MIN_AGE_FLOOR`]) is denied;
    /// 2. a jurisdiction that prohibits the purpose denies it;
    /// 3. events after `at` are ignored, and so are GPC signals for a purpose
    ///    that does not honour GPC; of the rest the one with the latest event
    ///    time decides (ties: the later one in `events`, i.e. ledger order);
    /// 4. a withdrawal denies (`Gpc` when it came from a GPC signal);
    /// 5. a grant allows unless its notice version is unknown or a later
    ///    material notice took effect at or before `at`;
    /// 6. with no deciding event (or a lapsed grant under opt-out) the
    ///    jurisdiction's default applies: opt-out allows, opt-in denies.
    pub fn evaluate(
        &self,
        purpose: PurposeId,
        member: &MemberFacts,
        events: &[ConsentEvent],
        at: Timestamp,
    ) -> Decision {
        let p = &self.purposes[purpose.index()];
        let j = &self.jurisdictions[member.jurisdiction.index()];
        if age_at(member.birth_date, at) < i32::from(j.min_age.max(MIN_AGE_FLOOR)) {
            return Decision::Denied(DenyReason::Minor);
        }
        let default = j.default_for(purpose);
        if default == DefaultRule::Prohibited {
            return Decision::Denied(DenyReason::JurisdictionDefault);
        }
        let deciding = self.deciding_event(purpose, events, at).map(|i| &events[i]);
        let fallback = match default {
            DefaultRule::OptOut => Decision::Allowed(AllowBasis::OptOutDefault),
            _ => Decision::Denied(DenyReason::NoGrant),
        };
        match deciding {
            None => fallback,
            Some(e) if e.action == Action::Withdraw => {
                Decision::Denied(if e.source == Source::Gpc { DenyReason::Gpc } else { DenyReason::Withdrawn })
            }
            Some(e) => match p.notice_lapses_at(e.notice_version) {
                None => Decision::Denied(DenyReason::UnknownNotice),
                Some(lapse) if at >= lapse => match default {
                    DefaultRule::OptOut => fallback,
                    _ => Decision::Denied(DenyReason::NoticeLapsed),
                },
                Some(_) => Decision::Allowed(AllowBasis::Grant),
            },
        }
    }
}

impl Policy {
    /// The index in `events` of the event that decides consent at `at` (rule 3 of [`Policy::evaluate`]), so
    /// an auditor can name the event behind a decision without restating the rule.
    pub fn deciding_event(&self, purpose: PurposeId, events: &[ConsentEvent], at: Timestamp) -> Option<usize> {
        let p = &self.purposes[purpose.index()];
        let mut deciding: Option<usize> = None;
        for (i, e) in events.iter().enumerate() {
            if e.at > at || (e.source == Source::Gpc && !p.gpc_withdraws) {
                continue;
            }
            if deciding.is_none_or(|d| e.at >= events[d].at) {
                deciding = Some(i);
            }
        }
        deciding
    }

    /// The earliest time after `at` at which [`Policy::evaluate`] could answer
    /// differently with no new events: the member reaching the minimum age, a
    /// granted notice lapsing, or an event whose time is still ahead. `None`
    /// when nothing can change. Snapshots use it to refresh only those members
    /// when time moves on.
    pub fn next_change(
        &self,
        purpose: PurposeId,
        member: &MemberFacts,
        events: &[ConsentEvent],
        at: Timestamp,
    ) -> Option<Timestamp> {
        let p = &self.purposes[purpose.index()];
        let j = &self.jurisdictions[member.jurisdiction.index()];
        let min_age = i32::from(j.min_age.max(MIN_AGE_FLOOR));
        let mut next: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| {
            if t > at && next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        if let Some(adult) = member.birth_date.with_year(member.birth_date.year() + min_age).or_else(|| {
            // Born on 29 February: of age on 1 March.
            NaiveDate::from_ymd_opt(member.birth_date.year() + min_age, 3, 1)
        }) && let Some(t) = adult.and_hms_opt(0, 0, 0)
        {
            consider(t.and_utc().timestamp());
        }
        for e in events {
            consider(e.at);
            if e.action == Action::Grant
                && let Some(lapse) = p.notice_lapses_at(e.notice_version)
                && lapse != Timestamp::MAX
            {
                consider(lapse);
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_birthdays() {
        let b = NaiveDate::from_ymd_opt(2008, 6, 15).unwrap();
        let t = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
        assert_eq!(age_at(b, t(2026, 6, 14)), 17);
        assert_eq!(age_at(b, t(2026, 6, 15)), 18);
        let leap = NaiveDate::from_ymd_opt(2008, 2, 29).unwrap();
        assert_eq!(age_at(leap, t(2026, 2, 28)), 17);
        assert_eq!(age_at(leap, t(2026, 3, 1)), 18);
        assert_eq!(age_at(b, i64::MIN), -1);
    }

    #[test]
    fn wire_names_round_trip() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Action::parse("grant"), Some(Action::Grant));
        assert_eq!(Action::parse("nope"), None);
    }
}
