//! Member tokens and the member use cases on a real data directory (the CLI's fixture `datadir-v1`): the token key
//! is a secret of its own, tokens are minted only for members the ledger knows, a stale notice is refused with the
//! current version, and a member's receipts are their own.

use consentry_app::member::{MemberChoice, StaleNotice};
use consentry_app::{DataDir, ErrorKind, Session};
use consentry_policy::{Action, Source};
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
