//! Tampering with what the platform's other systems hear (issue 15, item 6). A delivery whose signature, id,
//! timestamp or body was changed in transit, or signed with another secret, or replayed late, is refused by
//! `verify_webhook_signature`. An outbox row edited in the database is another matter: delivery sends what the
//! outbox holds (it is a notification channel, signed by the service as it reads it), so the edit reaches the
//! receivers — but the outbox is not evidence: the ledger is unchanged, `ledger verify` and the audit pass, and the
//! ledger position every payload names (`data.seq`) still shows the member's real choice, with a receipt that
//! verifies offline. A receiver acting on consent checks that position, not the notification.

use crate::common::{consentry, ok, withdrawal};
use crate::{JOBS, audit, fresh, ledger_db, withdrawn_member};
use consentry_app::webhooks::{SignatureError, event_json, secret_bytes, sign, verify_webhook_signature};
use consentry_app::{DataDir, Session};
use consentry_policy::Action;

#[test]
fn a_tampered_or_replayed_delivery_is_refused() {
    let secret = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let body = br#"{"id":7,"type":"consent.changed","created":1,"data":{"member":5,"action":"withdraw"}}"#;
    let now = 1_790_000_000;
    let sig = sign(&secret, "7", now, body);
    let check = |id: &str, ts: &str, body: &[u8], sig: &str, at: i64| {
        verify_webhook_signature(&secret, id, ts, body, sig, at, 300)
    };
    assert_eq!(check("7", &now.to_string(), body, &sig, now), Ok(()));
    // The body edited in transit (a withdrawal turned into a grant).
    let edited = String::from_utf8_lossy(body).replace("withdraw", "grant");
    assert_eq!(check("7", &now.to_string(), edited.as_bytes(), &sig, now), Err(SignatureError::Mismatch));
    // Another id (to slip past the receiver's duplicate check) or another timestamp (to outlive the tolerance).
    assert_eq!(check("8", &now.to_string(), body, &sig, now), Err(SignatureError::Mismatch));
    assert_eq!(check("7", &(now + 100).to_string(), body, &sig, now + 100), Err(SignatureError::Mismatch));
    // A signature flipped by one character, and one made with a guessed secret.
    let mut flipped = sig.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        check("7", &now.to_string(), body, &String::from_utf8(flipped).unwrap(), now),
        Err(SignatureError::Mismatch)
    );
    let forged = sign(b"a-guessed-secret-of-some-length", "7", now, body);
    assert_eq!(check("7", &now.to_string(), body, &forged, now), Err(SignatureError::Mismatch));
    // The genuine delivery replayed an hour later.
    assert!(matches!(check("7", &now.to_string(), body, &sig, now + 3600), Err(SignatureError::Stale { .. })));
    // No signature of the scheme at all.
    assert!(matches!(check("7", &now.to_string(), body, "", now), Err(SignatureError::Malformed(_))));
}

#[test]
fn an_outbox_row_edited_in_the_database_is_delivered_as_edited_while_the_ledger_keeps_the_truth() {
    let (_guard, data) = fresh();
    ok(&consentry(&data, &withdrawal("5", JOBS, "ui")));
    let open = || Session::open_read_only(DataDir::new(&data), None).unwrap();
    let rows = open().outbox_after(0, usize::MAX).unwrap();
    let row = rows.last().expect("the withdrawal has an outbox row").clone();
    let before = event_json(&row);
    assert_eq!(before["type"], "consent.changed");
    assert_eq!((before["data"]["member"].as_u64(), before["data"]["action"].as_str()), (Some(5), Some("withdraw")));
    let seq = before["data"]["seq"].as_u64().unwrap();

    // An insider with write access to the database turns the notification of the withdrawal into a grant.
    let changed = ledger_db(&data)
        .execute(
            "UPDATE outbox SET payload = replace(payload, '\"withdraw\"', '\"grant\"') WHERE id = ?1",
            [row.id as i64],
        )
        .unwrap();
    assert_eq!(changed, 1);

    // Delivery (and `GET /v1/events`) sends what the outbox holds, under the same id.
    let after = event_json(&open().outbox_after(row.id - 1, 1).unwrap()[0]);
    assert_eq!((after["id"].as_u64(), after["data"]["action"].as_str()), (Some(row.id), Some("grant")));

    // The evidence is untouched: the ledger verifies, the audit passes, and the position the payload names is the
    // member's withdrawal.
    assert!(ok(&consentry(&data, &["ledger", "verify"])).starts_with("ok:"));
    let (code, report) = audit(&data, &[]);
    assert_eq!(code, Some(0), "{report}");
    let session = open();
    let event = session.ledger().unwrap().store().event(seq).unwrap().expect("the named position exists");
    assert_eq!((event.event.body.member_id, event.event.body.action), (5, Action::Withdraw));
}

/// The demo's unlearning pass is in the outbox too: one `unlearning.completed` row per retrain, naming the members
/// removed, after the consent changes that caused it.
#[test]
fn unlearning_completions_are_in_the_outbox() {
    let (_guard, data) = fresh();
    let rows = Session::open_read_only(DataDir::new(&data), None).unwrap().outbox_after(0, usize::MAX).unwrap();
    let done: Vec<serde_json::Value> =
        rows.iter().filter(|r| r.kind == "unlearning.completed").map(|r| event_json(r)["data"].clone()).collect();
    assert!(!done.is_empty(), "no unlearning.completed row among {} rows", rows.len());
    let removed = withdrawn_member(&data);
    let jobs = done
        .iter()
        .find(|d| d["purpose"] == JOBS && d["members"].as_array().unwrap().iter().any(|m| m.as_u64() == Some(removed)))
        .unwrap_or_else(|| panic!("member {removed} is in no completion: {done:?}"));
    assert_eq!(jobs["version"], 2, "{jobs}");
    let first_done = rows.iter().position(|r| r.kind == "unlearning.completed").unwrap();
    assert!(rows[..first_done].iter().all(|r| r.kind == "consent.changed"));
}
