//! Property tests for the effective-consent rules of DESIGN.md ("Default
//! policy") and promise 1 (default deny).

use chrono::NaiveDate;
use consentry_policy::{
    Action, AllowBasis, ConsentEvent, Decision, DenyReason, MemberFacts, Policy, PurposeId, Source, Timestamp,
};
use proptest::prelude::*;

/// Notice 2 of the reply purpose is material and takes effect at this time.
const T2: Timestamp = 1_780_000_000;
const T1: Timestamp = 1_760_000_000;

const TEST_POLICY: &str = r#"
[policy]
version = "test"
controller = "Test"

[categories."user.professional.skills"]
sensitive = false
[categories."user.content.private"]
sensitive = true

[purposes."train_ai_system.jobs"]
name = "Jobs"
categories = ["user.professional.skills"]
gpc_withdraws = true
[[purposes."train_ai_system.jobs".notices]]
version = 1
effective = 2025-10-09T08:53:20Z
material = true
text = "jobs v1"
[[purposes."train_ai_system.jobs".notices]]
version = 2
effective = 2026-05-28T20:26:40Z
material = false
text = "jobs v2, a typo fixed"

[purposes."train_ai_system.replies"]
name = "Replies"
categories = ["user.content.private"]
gpc_withdraws = false
[[purposes."train_ai_system.replies".notices]]
version = 1
effective = 2025-10-09T08:53:20Z
material = true
text = "replies v1"
[[purposes."train_ai_system.replies".notices]]
version = 2
effective = 2026-05-28T20:26:40Z
material = true
text = "replies v2, materially different"

[jurisdictions.default]
default = "opt_in"

[jurisdictions.US]
default = "opt_out"
purposes = { "train_ai_system.replies" = "opt_in" }

[jurisdictions.DE]
default = "opt_in"
min_age = 21
"#;

fn policy() -> Policy {
    Policy::from_toml("test.toml", TEST_POLICY).expect("test policy is valid")
}

fn adult(policy: &Policy, code: &str) -> MemberFacts {
    MemberFacts {
        jurisdiction: policy.resolve_jurisdiction(code),
        birth_date: NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
    }
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![Just(Source::Ui), Just(Source::Api), Just(Source::Gpc), Just(Source::Import), Just(Source::Erasure)]
}

fn event() -> impl Strategy<Value = ConsentEvent> {
    (T1 - 10_000_000..T2 + 30_000_000, any::<bool>(), 1u32..=3, source()).prop_map(|(at, grant, v, s)| ConsentEvent {
        at,
        action: if grant { Action::Grant } else { Action::Withdraw },
        notice_version: v,
        source: s,
    })
}

fn purpose() -> impl Strategy<Value = PurposeId> {
    (0u16..2).prop_map(PurposeId)
}

fn jurisdiction() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("US"), Just("US-CA"), Just("DE"), Just("FR"), Just("JP"), Just("")]
}

/// Events with strictly increasing times, so "later" is unambiguous.
fn history() -> impl Strategy<Value = Vec<ConsentEvent>> {
    prop::collection::vec(event(), 0..12).prop_map(|mut v| {
        v.sort_by_key(|e| e.at);
        v.dedup_by_key(|e| e.at);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Opt-in default: without any grant, nobody is allowed.
    #[test]
    fn opt_in_denies_without_grant(p in purpose(), events in history(), at in T1..T2 + 40_000_000) {
        let pol = policy();
        let withdrawals: Vec<_> = events.into_iter().filter(|e| e.action == Action::Withdraw).collect();
        for code in ["DE", "FR", "JP", ""] {
            let d = pol.evaluate(p, &adult(&pol, code), &withdrawals, at);
            prop_assert!(!d.is_allowed(), "{code}: {d:?}");
        }
        // The sensitive purpose is opt-in even where the jurisdiction defaults to opt-out.
        prop_assert!(!pol.evaluate(PurposeId(1), &adult(&pol, "US"), &withdrawals, at).is_allowed());
    }

    /// A withdrawal denies at every later time until a new grant.
    #[test]
    fn withdrawal_denies_until_next_grant(p in purpose(), code in jurisdiction(), events in history(), pick in any::<prop::sample::Index>(), offset in 0i64..50_000_000) {
        let pol = policy();
        let m = adult(&pol, code);
        let honoured: Vec<usize> = events.iter().enumerate()
            .filter(|(_, e)| e.action == Action::Withdraw && (e.source != Source::Gpc || pol.purpose(p).gpc_withdraws))
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!honoured.is_empty());
        let w = honoured[pick.index(honoured.len())];
        let next_grant = events[w + 1..].iter().find(|e| e.action == Action::Grant).map_or(Timestamp::MAX, |e| e.at);
        let at = events[w].at.saturating_add(offset);
        prop_assume!(at < next_grant);
        let d = pol.evaluate(p, &m, &events, at);
        prop_assert!(matches!(d, Decision::Denied(DenyReason::Withdrawn | DenyReason::Gpc | DenyReason::Minor)), "{d:?}");
    }

    /// `deciding_event` names the event `evaluate` decides by: a withdrawal exactly when consent is withdrawn.
    #[test]
    fn the_deciding_event_is_the_one_evaluate_uses(p in purpose(), code in jurisdiction(), events in prop::collection::vec(event(), 0..12), at in T1..T2 + 40_000_000) {
        let pol = policy();
        let d = pol.evaluate(p, &adult(&pol, code), &events, at);
        prop_assume!(d != Decision::Denied(DenyReason::JurisdictionDefault));
        let withdrawn = pol.deciding_event(p, &events, at).is_some_and(|i| events[i].action == Action::Withdraw);
        prop_assert_eq!(withdrawn, matches!(d, Decision::Denied(DenyReason::Withdrawn | DenyReason::Gpc)), "{:?}", d);
    }

    /// A grant under a notice that a later material notice superseded lapses when that notice takes effect.
    #[test]
    fn material_notice_lapses_older_grants(granted in T1..T2, after in 0i64..100_000_000, before in 0i64..1_000_000, code in prop_oneof![Just("DE"), Just("JP"), Just("US")]) {
        let pol = policy();
        let replies = PurposeId(1);
        let m = adult(&pol, code);
        let grant = [ConsentEvent { at: granted, action: Action::Grant, notice_version: 1, source: Source::Ui }];
        prop_assert_eq!(pol.evaluate(replies, &m, &grant, T2 + after), Decision::Denied(DenyReason::NoticeLapsed));
        let t = (granted + before).min(T2 - 1);
        prop_assert_eq!(pol.evaluate(replies, &m, &grant, t), Decision::Allowed(AllowBasis::Grant));
        // A grant under the new notice holds after it takes effect.
        let regrant = [grant[0], ConsentEvent { at: T2 + 1, action: Action::Grant, notice_version: 2, source: Source::Ui }];
        prop_assert_eq!(pol.evaluate(replies, &m, &regrant, T2 + 1 + after), Decision::Allowed(AllowBasis::Grant));
        // A non-material notice does not lapse grants.
        prop_assert_eq!(pol.evaluate(PurposeId(0), &m, &grant, T2 + after), Decision::Allowed(AllowBasis::Grant));
    }

    /// A minor is always denied, whatever they or their jurisdiction say.
    #[test]
    fn minors_are_always_denied(p in purpose(), code in jurisdiction(), events in history(), at in T1..T2 + 40_000_000, age_days in 0i64..(18 * 365)) {
        let pol = policy();
        let today = chrono::DateTime::from_timestamp(at, 0).unwrap().date_naive();
        let birth = today - chrono::Duration::days(age_days);
        let m = MemberFacts { jurisdiction: pol.resolve_jurisdiction(code), birth_date: birth };
        let grants: Vec<_> = events.iter().map(|e| ConsentEvent { action: Action::Grant, ..*e }).collect();
        prop_assert_eq!(pol.evaluate(p, &m, &events, at), Decision::Denied(DenyReason::Minor));
        prop_assert_eq!(pol.evaluate(p, &m, &grants, at), Decision::Denied(DenyReason::Minor));
    }

    /// A GPC signal denies a GPC-withdrawable purpose even after an earlier grant.
    #[test]
    fn gpc_beats_earlier_grant(code in jurisdiction(), granted in T1..T2, gap in 1i64..1_000_000, later in 0i64..50_000_000, v in 1u32..=2) {
        let pol = policy();
        let jobs = PurposeId(0);
        let m = adult(&pol, code);
        let events = [
            ConsentEvent { at: granted, action: Action::Grant, notice_version: 1, source: Source::Ui },
            ConsentEvent { at: granted + gap, action: Action::Withdraw, notice_version: v, source: Source::Gpc },
        ];
        prop_assert_eq!(pol.evaluate(jobs, &m, &events, granted + gap + later), Decision::Denied(DenyReason::Gpc));
    }

    /// Evaluation never depends on events after the time asked about.
    #[test]
    fn future_events_are_ignored(p in purpose(), code in jurisdiction(), events in prop::collection::vec(event(), 0..12), future in prop::collection::vec(event(), 0..6), at in T1..T2 + 30_000_000) {
        let pol = policy();
        let m = adult(&pol, code);
        let past: Vec<_> = events.iter().copied().filter(|e| e.at <= at).collect();
        let mut with_future = events.clone();
        with_future.extend(future.into_iter().map(|e| ConsentEvent { at: at + 1 + (e.at - T1).abs(), ..e }));
        let d = pol.evaluate(p, &m, &past, at);
        prop_assert_eq!(pol.evaluate(p, &m, &events, at), d);
        prop_assert_eq!(pol.evaluate(p, &m, &with_future, at), d);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Nothing changes between `at` and `next_change`, so snapshots may skip those members.
    #[test]
    fn decisions_hold_until_next_change(p in purpose(), code in jurisdiction(), events in history(), at in T1 - 20_000_000..T2 + 40_000_000, birth_days in 5_000i64..12_000, probes in prop::collection::vec(0.0f64..1.0, 1..8)) {
        let pol = policy();
        let today = chrono::DateTime::from_timestamp(at, 0).unwrap().date_naive();
        let m = MemberFacts { jurisdiction: pol.resolve_jurisdiction(code), birth_date: today - chrono::Duration::days(birth_days) };
        let d = pol.evaluate(p, &m, &events, at);
        let until = pol.next_change(p, &m, &events, at).unwrap_or(at + 400_000_000);
        prop_assert!(until > at);
        for f in probes {
            let t = at + ((until - at - 1) as f64 * f) as i64;
            prop_assert_eq!(pol.evaluate(p, &m, &events, t), d, "changed at {} before next_change {}", t, until);
        }
    }
}

#[test]
fn opt_out_jurisdiction_allows_until_withdrawn() {
    let pol = policy();
    let m = adult(&pol, "US-NY");
    let jobs = PurposeId(0);
    assert_eq!(pol.evaluate(jobs, &m, &[], T2), Decision::Allowed(AllowBasis::OptOutDefault));
    let w = [ConsentEvent { at: T1, action: Action::Withdraw, notice_version: 1, source: Source::Ui }];
    assert_eq!(pol.evaluate(jobs, &m, &w, T2), Decision::Denied(DenyReason::Withdrawn));
    // Before the withdrawal the default applied.
    assert_eq!(pol.evaluate(jobs, &m, &w, T1 - 1), Decision::Allowed(AllowBasis::OptOutDefault));
}

#[test]
fn jurisdiction_can_raise_minimum_age() {
    let pol = policy();
    let at = T2;
    let today = chrono::DateTime::from_timestamp(at, 0).unwrap().date_naive();
    let twenty = today - chrono::Duration::days(20 * 365 + 10);
    let grant = [ConsentEvent { at: T1, action: Action::Grant, notice_version: 1, source: Source::Ui }];
    let de = MemberFacts { jurisdiction: pol.resolve_jurisdiction("DE"), birth_date: twenty };
    let fr = MemberFacts { jurisdiction: pol.resolve_jurisdiction("FR"), birth_date: twenty };
    assert_eq!(pol.evaluate(PurposeId(0), &de, &grant, at), Decision::Denied(DenyReason::Minor));
    assert!(pol.evaluate(PurposeId(0), &fr, &grant, at).is_allowed());
}

#[test]
fn unknown_notice_version_is_denied() {
    let pol = policy();
    let g = [ConsentEvent { at: T1, action: Action::Grant, notice_version: 9, source: Source::Ui }];
    assert_eq!(pol.evaluate(PurposeId(0), &adult(&pol, "FR"), &g, T2), Decision::Denied(DenyReason::UnknownNotice));
}

#[test]
fn gpc_is_ignored_for_purposes_that_do_not_honour_it() {
    let pol = policy();
    let replies = PurposeId(1);
    let events = [
        ConsentEvent { at: T2 + 1, action: Action::Grant, notice_version: 2, source: Source::Ui },
        ConsentEvent { at: T2 + 2, action: Action::Withdraw, notice_version: 2, source: Source::Gpc },
    ];
    assert_eq!(pol.evaluate(replies, &adult(&pol, "FR"), &events, T2 + 3), Decision::Allowed(AllowBasis::Grant));
}

#[test]
fn a_later_explicit_grant_overrides_gpc() {
    let pol = policy();
    let events = [
        ConsentEvent { at: T1, action: Action::Withdraw, notice_version: 1, source: Source::Gpc },
        ConsentEvent { at: T1 + 10, action: Action::Grant, notice_version: 1, source: Source::Ui },
    ];
    assert_eq!(pol.evaluate(PurposeId(0), &adult(&pol, "FR"), &events, T1 + 11), Decision::Allowed(AllowBasis::Grant));
}
