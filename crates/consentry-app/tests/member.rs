//! Member tokens and the member use cases on a real data directory (the CLI's fixture `datadir-v1`): the token key
//! is a secret of its own, tokens are minted only for members the ledger knows, a stale notice is refused with the
//! current version, and a member's receipts are their own. The privacy centre's use cases: the member's data by
//! category from their own rows only, where their data went, the cards' plain words, and the GPC rule as a browser
//! exercises it (with a property test through the session and its ledger).

use consentry_app::member::{CardState, MemberChoice, StaleNotice};
use consentry_app::privacy::UseStatus;
use consentry_app::{DataDir, ErrorKind, Session};
use consentry_policy::{Action, DenyReason, Source};
use consentry_test_support::cli::copy_dir;
use std::path::{Path, PathBuf};

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry/tests/fixtures/datadir-v1"), &data);
    (dir, data)
}

const A: u64 = 5;
const B: u64 = 6;
const JOBS: &str = "train_ai_system.job_recommendations";
const REPLIES: &str = "train_ai_system.reply_suggestions";
const CONTENT: &str = "train_ai_system.content_suggestions";

fn choice(member: u64, purpose: &str, notice_version: u32) -> MemberChoice {
    MemberChoice {
        member,
        purpose: purpose.into(),
        action: Action::Grant,
        notice_version,
        source: Source::Api,
        idempotency_key: None,
        gpc: false,
    }
}

#[test]
fn the_token_key_is_a_0600_secret_of_its_own_and_tokens_name_known_members_only() {
    let (_guard, data) = fixture();
    let dir = DataDir::new(&data);
    let s = Session::open(dir.clone(), None).unwrap();
    let now = consentry_ledger::now();
    // Before any token is minted, none verifies.
    assert_eq!(s.verify_member_token("x.y", now).unwrap_err().kind(), ErrorKind::Unauthenticated);
    let minted = s.mint_member_token(A, 3600, now).unwrap();
    assert!(minted.claims.iss.starts_with("consentry:"));
    assert_eq!(s.verify_member_token(&minted.token, now).unwrap(), A);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.token_key_file()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_ne!(std::fs::read(dir.token_key_file()).unwrap(), std::fs::read(dir.key_file()).unwrap());
    // A second mint reuses the key: the first token still verifies.
    s.mint_member_token(B, 60, now).unwrap();
    assert_eq!(s.verify_member_token(&minted.token, now).unwrap(), A);
    assert_eq!(s.mint_member_token(999_999, 60, now).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(s.mint_member_token(A, 0, now).unwrap_err().kind(), ErrorKind::BadInput);
    assert_eq!(s.mint_member_token(A, 31 * 86_400, now).unwrap_err().kind(), ErrorKind::BadInput);
}

#[test]
fn a_stale_notice_is_a_conflict_naming_the_current_version_and_writes_nothing() {
    let (_guard, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let len = s.ledger().unwrap().store().len().unwrap();
    let e = s.member_choice(choice(A, REPLIES, 1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let stale = e.downcast_ref::<StaleNotice>().unwrap();
    assert_eq!((stale.given, stale.current), (1, 2));
    assert_eq!(s.ledger().unwrap().store().len().unwrap(), len);
    assert_eq!(s.member_choice(choice(A, "no.such.purpose", 1)).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(s.member_choice(choice(999_999, JOBS, 1)).unwrap_err().kind(), ErrorKind::NotFound);
    // Under the current notice the choice is recorded, and decides the member's state.
    let out = s.member_choice(choice(A, REPLIES, 2)).unwrap();
    let now = consentry_ledger::now();
    let replies = s.member_consents(A, now).unwrap().into_iter().find(|c| c.purpose == REPLIES).unwrap();
    assert!(replies.allowed);
    assert_eq!(replies.deciding_seq, Some(out.appended.event.seq));
}

#[test]
fn a_member_gets_only_their_own_receipts_and_history() {
    let (_guard, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let theirs = s.member_choice(choice(B, JOBS, 1)).unwrap().appended.event.seq;
    let mine = s.member_choice(choice(A, JOBS, 1)).unwrap().appended.event.seq;
    assert!(s.member_receipt(A, mine).is_ok());
    assert_eq!(s.member_receipt(A, theirs).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(s.member_receipt(A, 10_000_000).unwrap_err().kind(), ErrorKind::NotFound);
    let page = s.member_history(A, 500, None).unwrap();
    assert_eq!(page.events.first().map(|e| e.seq), Some(mine));
    assert!(page.events.iter().all(|e| e.body.member_id == A));
    assert_eq!(s.member_history(A, 0, None).unwrap_err().kind(), ErrorKind::BadInput);
}

/// A choice of `action`, with or without a GPC signal.
fn choice_with(member: u64, purpose: &str, action: Action, notice_version: u32, gpc: bool) -> MemberChoice {
    MemberChoice { action, gpc, ..choice(member, purpose, notice_version) }
}

fn state(s: &Session, member: u64, purpose: &str) -> consentry_app::member::MemberConsent {
    s.member_consents(member, consentry_ledger::now()).unwrap().into_iter().find(|c| c.purpose == purpose).unwrap()
}

fn category<'a>(
    d: &'a consentry_app::privacy::MemberData,
    key: &str,
) -> Option<&'a consentry_app::privacy::DataCategory> {
    d.categories.iter().find(|c| c.category.key == key)
}

#[test]
fn a_members_data_shows_their_own_rows_by_category_with_free_text_redacted() {
    let (_guard, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let mine = s.member_data(A).unwrap();
    assert!(mine.notes.is_empty(), "{:?}", mine.notes);
    // Member A's own profile row, read here independently through the gate's declaration.
    let sources = s.dir().load_sources(None, None).unwrap().sources;
    let members = sources.table("members").unwrap();
    let det = consentry_redact::Detector::new().unwrap();
    let own = |m: u64| consentry_gate::own::own_rows(members, m, &["title".into()], 1, Some(&det)).unwrap().samples;
    let title = own(A)[0][0].clone().unwrap();
    let job = category(&mine, "user.job_title").unwrap();
    assert_eq!(job.rows, 1);
    assert!(job.examples[0].starts_with(&title), "{:?} vs {title}", job.examples);
    assert_eq!(job.category.description, "A member's current job title and seniority.");
    assert_eq!(job.tables, ["members"]);
    assert!(job.purposes.iter().any(|p| p.purpose == JOBS && p.name == "Job recommendations"), "{job:?}");
    // Several rows of activity, at most three examples; a category no feature uses says so.
    let activity = category(&mine, "user.behavior.job_activity").unwrap();
    assert!(activity.rows >= 3 && activity.examples.len() == 3, "{activity:?}");
    assert!(category(&mine, "user.contact.email").unwrap().purposes.is_empty());
    // Non-personal catalogue data is no member's.
    assert!(category(&mine, "system.catalog").is_none());
    // Every category carries its count and the member's data only: the same call for B shows B's title.
    let theirs = s.member_data(B).unwrap();
    let b_title = own(B)[0][0].clone().unwrap();
    assert!(category(&theirs, "user.job_title").unwrap().examples[0].starts_with(&b_title));

    // Private messages: a count and one snippet, from a message the member wrote, redacted as training sees it.
    let m26 = s.member_data(26).unwrap();
    let private = category(&m26, "user.content.private").unwrap();
    assert!(private.category.sensitive && private.examples.len() == 1, "{private:?}");
    assert!(private.examples[0].contains("<EMAIL>") && !private.examples[0].contains('@'), "{private:?}");
    assert!(private.examples[0].chars().count() <= 81 && !private.examples[0].contains('\n'));
    assert!(private.purposes.iter().all(|p| p.purpose == REPLIES), "never bundled: {private:?}");
    // Member 7 only received a message: it counts, but another member's words are never shown.
    let m7 = s.member_data(7).unwrap();
    let received = category(&m7, "user.content.private").unwrap();
    assert_eq!((received.rows, received.examples.len()), (1, 0), "{received:?}");
    // An unknown member is not found.
    assert_eq!(s.member_data(999_999).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn missing_or_odd_tables_are_notes_not_failures() {
    let (_guard, data) = fixture();
    let network = DataDir::new(&data).network_dir();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    std::fs::write(network.join("job_activity.parquet"), b"not parquet at all").unwrap();
    let d = s.member_data(A).unwrap();
    assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
    assert!(d.notes[0].contains("`job_activity`"), "{:?}", d.notes);
    assert!(category(&d, "user.behavior.job_activity").is_none() && category(&d, "user.job_title").is_some());
    std::fs::remove_dir_all(&network).unwrap();
    let d = s.member_data(A).unwrap();
    assert!(d.categories.is_empty() && d.notes.len() == 1, "{d:?}");
}

#[test]
fn where_my_data_went_lists_each_model_version_with_its_status_and_the_privacy_loss() {
    let (_guard, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let lineage = s.member_lineage(A).unwrap();
    let uses = s.member_data_uses(A).unwrap();
    assert_eq!(uses.items.len(), lineage.models.len());
    for (u, m) in uses.items.iter().zip(&lineage.models) {
        assert_eq!((&u.model, u.shard, u.version), (&m.model, m.shard, m.version));
        assert_eq!(u.version_label, format!("v{}", m.version));
        assert_eq!(u.purpose.name, "Job recommendations");
        assert!(u.status == UseStatus::InUse || u.status == UseStatus::RemovalPending, "{u:?}");
    }
    assert!(!uses.privacy.explanation.is_empty());
    assert_eq!(
        uses.privacy.lines.len() + uses.privacy.without_bound.len(),
        lineage.privacy.lines.len() + lineage.privacy.without_bound.len()
    );
    // A withdrawal makes every version holding the member a pending removal, with its deadline.
    assert!(!uses.items.is_empty(), "the fixture's job model holds member A");
    {
        let notice = state(&s, A, JOBS).notice.version;
        s.member_choice(choice_with(A, JOBS, Action::Withdraw, notice, false)).unwrap();
        s.unlearn_queue(&consentry_app::unlearn::UnlearnOptions::service()).unwrap();
        let after = s.member_data_uses(A).unwrap();
        for u in after.items.iter().filter(|u| u.purpose.purpose == JOBS) {
            assert_eq!(u.status, UseStatus::RemovalPending, "{u:?}");
            assert!(u.deadline.is_some() && u.withdrawal_seq.is_some(), "{u:?}");
        }
        // The unlearning pass: removed, by the next version of the line, some seconds after the withdrawal.
        s.unlearn_once(&consentry_app::unlearn::UnlearnOptions::service()).unwrap();
        let done = s.member_data_uses(A).unwrap();
        let removed: Vec<_> = done.items.iter().filter(|u| u.purpose.purpose == JOBS).collect();
        assert!(!removed.is_empty());
        for u in removed {
            assert_eq!(u.status, UseStatus::Removed, "{u:?}");
            assert!(u.removed_at.is_some() && u.replaced_by.is_some(), "{u:?}");
            assert_eq!(u.replaced_by_label, Some(format!("v{}", u.version + 1)));
            assert!(u.seconds_after_withdrawal.is_some_and(|s| s >= 0), "{u:?}");
        }
    }
    assert_eq!(s.member_data_uses(999_999).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn gpc_withdraws_what_is_in_use_once_and_never_overrides_a_knowing_grant() {
    let (_guard, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    let now = consentry_ledger::now();
    assert!(state(&s, A, JOBS).allowed && state(&s, A, REPLIES).allowed && !state(&s, A, CONTENT).allowed);
    // In use: jobs and replies are withdrawn; content, never agreed to, gets nothing.
    let first = s.honour_gpc(A, now, "member:5/gpc/test-1").unwrap();
    let mut withdrawn: Vec<&str> = first.iter().map(|a| a.event.body.purpose.as_str()).collect();
    withdrawn.sort();
    assert_eq!(withdrawn, [JOBS, REPLIES]);
    assert!(first.iter().all(|a| a.event.body.source == Source::Gpc && !a.duplicate));
    let jobs = state(&s, A, JOBS);
    assert_eq!(
        (jobs.state, jobs.reason),
        (CardState::NotUsed, "Not used: Global Privacy Control is on in your browser.")
    );
    assert_eq!(jobs.decided_at, Some(now));
    // The same request retried: its withdrawals, nothing new. The next request's signal: nothing at all.
    let len = s.ledger().unwrap().store().len().unwrap();
    let again = s.honour_gpc(A, now + 5, "member:5/gpc/test-1").unwrap();
    assert!(again.len() == 2 && again.iter().all(|a| a.duplicate));
    assert!(s.honour_gpc(A, now + 5, "member:5/gpc/test-2").unwrap().is_empty());
    assert_eq!(s.ledger().unwrap().store().len().unwrap(), len);
    // The member grants jobs again with GPC on: a knowing choice, which later signals leave alone.
    let notice = jobs.notice.version;
    let out = s.member_choice(choice_with(A, JOBS, Action::Grant, notice, true)).unwrap();
    assert!(out.gpc.is_empty(), "{:?}", out.gpc);
    assert!(s.member_gpc(A, None).unwrap().appended.is_empty());
    assert!(state(&s, A, JOBS).allowed);
    // Granting content (never signalled for it) with GPC on records the signal first, then the grant, which stands.
    let notice = state(&s, A, CONTENT).notice.version;
    let out = s.member_choice(choice_with(A, CONTENT, Action::Grant, notice, true)).unwrap();
    assert_eq!(out.gpc.iter().map(|a| a.event.body.purpose.as_str()).collect::<Vec<_>>(), [CONTENT]);
    assert!(out.gpc[0].event.seq < out.appended.event.seq);
    let after = s.member_gpc(A, Some("k")).unwrap();
    assert!(after.appended.is_empty(), "{:?}", after.appended);
    let content = after.consents.iter().find(|c| c.purpose == CONTENT).unwrap();
    assert_eq!((content.state, content.reason), (CardState::Used, "Used: you agreed."));
    // A member the ledger does not know.
    assert_eq!(s.member_gpc(999_999, None).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn each_card_has_a_plain_state_reason_summary_and_category_descriptions() {
    let (_guard, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap();
    for c in s.member_consents(B, consentry_ledger::now()).unwrap() {
        assert_eq!(c.category_details.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), c.categories);
        assert!(c.category_details.iter().all(|d| !d.description.is_empty()));
        assert_eq!(c.allowed, c.state == CardState::Used, "{c:?}");
        assert!(c.deciding_seq.is_some() == c.decided_at.is_some(), "{c:?}");
        // The fixture's policy predates summaries.
        assert!(c.summary.is_none());
    }
    // B grants replies under notice 1, before notice 2 took effect (2026-06-01): that grant has lapsed.
    s.append(consentry_app::ledger::AppendRequest {
        member: B,
        purpose: REPLIES.into(),
        action: Action::Grant,
        notice_version: Some(1),
        source: Source::Ui,
        actor: None,
        event_time: Some(1_777_593_600), // 2026-05-01
        idempotency_key: None,
        key_prefix: "test",
    })
    .unwrap();
    // Across the fixture's members: a lapsed grant is "paused", and every sentence is the one for its decision.
    let mut paused = 0;
    for m in 1..=40 {
        let Ok(cards) = s.member_consents(m, consentry_ledger::now()) else { continue };
        for c in cards {
            assert_eq!((c.state, c.reason), consentry_app::member::plain_state(c.decision), "{c:?}");
            if c.decision == consentry_policy::Decision::Denied(DenyReason::NoticeLapsed) {
                assert_eq!(c.reason, "Paused: the notice changed — please review it and choose again.");
                paused += 1;
            }
        }
    }
    assert!(paused > 0, "B's grant under reply notice 1 is paused");
}

/// One step of a member's life in the privacy centre: a choice about a purpose (with or without GPC on), or a
/// page load with GPC on.
#[derive(Debug, Clone)]
enum Step {
    Choose { purpose: usize, grant: bool, gpc: bool },
    Signal,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (0usize..3, any::<bool>(), any::<bool>()).prop_map(|(purpose, grant, gpc)| Step::Choose {
            purpose,
            grant,
            gpc
        }),
        Just(Step::Signal),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Through the session and its ledger: after `honour_gpc`, every purpose honouring GPC is denied unless the
    /// member granted it after a GPC signal recorded for it; a second signal appends nothing.
    #[test]
    fn after_honouring_gpc_only_knowing_grants_stand_and_a_repeat_appends_nothing(
        steps in proptest::collection::vec(step(), 0..8),
    ) {
        let (_guard, data) = fixture();
        let s = Session::open(DataDir::new(&data), None).unwrap();
        let purposes = [JOBS, REPLIES, CONTENT];
        for (i, st) in steps.iter().enumerate() {
            match *st {
                Step::Choose { purpose, grant, gpc } => {
                    let p = purposes[purpose];
                    let action = if grant { Action::Grant } else { Action::Withdraw };
                    let notice = state(&s, A, p).notice.version;
                    s.member_choice(choice_with(A, p, action, notice, gpc)).unwrap();
                }
                Step::Signal => {
                    s.honour_gpc(A, consentry_ledger::now(), &format!("member:5/prop/{i}")).unwrap();
                }
            }
        }
        let now = consentry_ledger::now();
        s.honour_gpc(A, now, "member:5/prop/final").unwrap();
        let events = s.member_history(A, 500, None).unwrap().events;
        for c in s.member_consents(A, now).unwrap().into_iter().filter(|c| c.gpc_withdraws) {
            if c.allowed {
                let deciding = c.deciding_seq.expect("an allowed purpose here rests on a grant");
                proptest::prop_assert!(
                    events.iter().any(|e| e.body.purpose == c.purpose
                        && e.body.source == Source::Gpc
                        && e.seq < deciding),
                    "{} is allowed by #{deciding} with no GPC signal before it", c.purpose
                );
            }
        }
        // A grant made with GPC on is a knowing choice: whatever signals follow, it stands.
        for (i, p) in purposes.iter().enumerate() {
            let last = steps.iter().rev().find_map(|st| match *st {
                Step::Choose { purpose, grant, gpc } if purpose == i => Some((grant, gpc)),
                _ => None,
            });
            if last == Some((true, true)) {
                proptest::prop_assert!(state(&s, A, p).allowed, "{p}: a grant made with GPC on was overridden");
            }
        }
        proptest::prop_assert!(s.honour_gpc(A, now, "member:5/prop/again").unwrap().is_empty());
    }
}
