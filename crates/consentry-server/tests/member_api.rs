//! The member endpoints over real HTTP: the router on an ephemeral port over a private copy of the CLI's fixture
//! data directory, driven by a plain HTTP/1.1 client (test-support's, so malformed and oversized requests can be
//! sent as they are). Includes red-team checks: a token for member A never reaches member B's data.

use serde_json::Value;

mod common;

use common::*;

fn purpose<'a>(consents: &'a Value, key: &str) -> &'a Value {
    consents["purposes"].as_array().unwrap().iter().find(|p| p["purpose"] == key).unwrap()
}

#[test]
fn health_and_readiness() {
    let s = Server::start();
    let r = request(s.addr, "GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = request(s.addr, "GET", "/readyz", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["entries"], s.ledger_len());
}

#[test]
fn without_a_ledger_the_service_is_alive_but_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("empty");
    std::fs::create_dir(&data).unwrap();
    let s = Server::on(dir, &data, consentry_server::router);
    assert_eq!(request(s.addr, "GET", "/healthz", &[], b"").status, 200);
    let body = problem(&request(s.addr, "GET", "/readyz", &[], b""), 503, "unavailable");
    assert!(body["detail"].as_str().unwrap().contains("ledger init"), "{body}");
}

#[test]
fn a_member_reads_every_purpose_with_its_state_notice_and_categories() {
    let s = Server::start();
    let r = s.get("/v1/me/consents", &s.token(A));
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["member"], A);
    let purposes = body["purposes"].as_array().unwrap();
    assert_eq!(purposes.len(), 3, "{body}");
    for p in purposes {
        assert!(p["allowed"].is_boolean(), "{p}");
        assert!(p["decision"]["decision"].is_string() && p["decision"]["reason"].is_string(), "{p}");
        assert!(p["notice"]["version"].as_u64().is_some_and(|v| v >= 1), "{p}");
        assert!(p["notice"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(!p["categories"].as_array().unwrap().is_empty(), "{p}");
    }
    assert_eq!(purpose(&body, REPLIES)["notice"]["version"], 2);
}

#[test]
fn grant_then_withdraw_changes_the_effective_state_and_the_ledger_still_verifies() {
    let s = Server::start();
    let token = s.token(A);
    let notice = purpose(&s.get("/v1/me/consents", &token).json(), JOBS)["notice"]["version"].as_u64().unwrap() as u32;

    let r = s.choose(&token, JOBS, "granted", notice, &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let granted = r.json();
    let seq = granted["seq"].as_u64().unwrap();
    assert_eq!(granted["duplicate"], false);
    assert_eq!(granted["receipt"], format!("/v1/me/receipts/{seq}"));
    assert_eq!(r.header("location"), Some(format!("/v1/me/receipts/{seq}").as_str()));
    assert_eq!(granted["event"]["member_id"], A);
    assert_eq!(granted["event"]["action"], "grant");
    assert_eq!(granted["event"]["source"], "api");
    assert_eq!(granted["event"]["actor"], format!("member:{A}"));
    let now = purpose(&s.get("/v1/me/consents", &token).json(), JOBS).clone();
    assert_eq!(now["allowed"], true, "{now}");
    assert_eq!(now["deciding_seq"], seq);

    let r = s.choose(&token, JOBS, "withdrawn", notice, &[]);
    assert_eq!(r.status, 201);
    let now = purpose(&s.get("/v1/me/consents", &token).json(), JOBS).clone();
    assert_eq!(now["allowed"], false, "{now}");
    assert_eq!(now["decision"]["reason"], "withdrawn", "{now}");

    // The receipt of the grant is the member's, and it verifies offline against the ledger's key.
    let r = s.get(&format!("/v1/me/receipts/{seq}"), &token);
    assert_eq!(r.status, 200);
    let key = s.session.public_key().unwrap();
    consentry_ledger::receipt::AnyReceipt::verify_json(&String::from_utf8(r.body).unwrap(), &key).unwrap();
    assert!(s.session.verify_ledger().unwrap().ok());
}

#[test]
fn a_stale_notice_is_refused_with_the_current_version_and_nothing_is_written() {
    let s = Server::start();
    let before = s.ledger_len();
    let body = problem(&s.choose(&s.token(A), REPLIES, "granted", 1, &[]), 409, "conflict");
    assert_eq!(body["current_notice_version"], 2, "{body}");
    assert_eq!(body["purpose"], REPLIES);
    assert_eq!(s.ledger_len(), before);
}

#[test]
fn an_unknown_purpose_is_404() {
    let s = Server::start();
    let before = s.ledger_len();
    problem(&s.choose(&s.token(A), "train_ai_system.mind_reading", "granted", 1, &[]), 404, "not-found");
    assert_eq!(s.ledger_len(), before);
}

#[test]
fn malformed_bodies_are_400_problems_and_write_nothing() {
    let s = Server::start();
    let token = s.token(A);
    let before = s.ledger_len();
    let path = format!("/v1/me/consents/{JOBS}");
    for body in [
        "{not json",
        r#"{"state": "granted"}"#,
        r#"{"state": "maybe", "notice_version": 1}"#,
        r#"{"state": "granted", "notice_version": 1, "member": 6}"#,
        r#"{"state": "granted", "notice_version": -1}"#,
    ] {
        let p = problem(&s.put(&path, &token, &[], body), 400, "bad-input");
        assert!(p["detail"].as_str().unwrap().contains("notice_version"), "{p}");
    }
    let r = request(s.addr, "PUT", &path, &[("Authorization", &format!("Bearer {token}"))], b"{}");
    problem(&r, 415, "unsupported-media-type");
    let bad_key = s.choose(&token, JOBS, "granted", 1, &[("Idempotency-Key", "")]);
    problem(&bad_key, 400, "bad-input");
    problem(&s.get("/v1/me/history?limit=lots", &token), 400, "bad-input");
    problem(&s.get("/v1/me/history?limit=0", &token), 400, "bad-input");
    assert_eq!(s.ledger_len(), before);
}

#[test]
fn an_oversized_body_is_413() {
    let s = Server::start();
    let big = format!(r#"{{"state": "granted", "notice_version": 1, "pad": "{}"}}"#, "x".repeat(100 * 1024));
    problem(&s.put(&format!("/v1/me/consents/{JOBS}"), &s.token(A), &[], &big), 413, "payload-too-large");
}

#[test]
fn no_expired_forged_or_foreign_token_is_401() {
    let s = Server::start();
    let none = request(s.addr, "GET", "/v1/me/consents", &[], b"");
    problem(&none, 401, "unauthenticated");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    problem(
        &request(s.addr, "GET", "/v1/me/consents", &[("Authorization", "Basic YTpi")], b""),
        401,
        "unauthenticated",
    );
    let expired = s.session.mint_member_token(A, 60, consentry_ledger::now() - 3600).unwrap().token;
    let body = problem(&s.get("/v1/me/consents", &expired), 401, "unauthenticated");
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
    // Claims of member B under member A's signature.
    let (a, b) = (s.token(A), s.token(B));
    let forged = format!("{}.{}", b.split_once('.').unwrap().0, a.split_once('.').unwrap().1);
    problem(&s.get("/v1/me/history", &forged), 401, "unauthenticated");
    problem(&s.get("/v1/me/history", "garbage"), 401, "unauthenticated");
    // A token of another data directory (another token key and ledger) is not this one's.
    let other = Server::start();
    problem(&s.get("/v1/me/consents", &other.token(A)), 401, "unauthenticated");
    // Nothing else of a refused request ran: a PUT with a bad token writes nothing.
    let before = s.ledger_len();
    problem(&s.choose(&expired, JOBS, "granted", 1, &[]), 401, "unauthenticated");
    assert_eq!(s.ledger_len(), before);
}

#[test]
fn a_member_never_reaches_another_members_history_or_receipts() {
    let s = Server::start();
    let (ta, tb) = (s.token(A), s.token(B));
    let b_event = s.choose(&tb, JOBS, "granted", 1, &[]).json()["seq"].as_u64().unwrap();
    let a_event = s.choose(&ta, JOBS, "granted", 1, &[]).json()["seq"].as_u64().unwrap();
    // B's receipt through A's token: the same 404 as a position that does not exist.
    let theirs = problem(&s.get(&format!("/v1/me/receipts/{b_event}"), &ta), 404, "not-found");
    let missing = problem(&s.get("/v1/me/receipts/999999", &ta), 404, "not-found");
    assert_eq!(
        theirs["detail"].as_str().unwrap().replace(&b_event.to_string(), "N"),
        missing["detail"].as_str().unwrap().replace("999999", "N")
    );
    problem(&s.get("/v1/me/receipts/not-a-number", &ta), 404, "not-found");
    assert_eq!(s.get(&format!("/v1/me/receipts/{b_event}"), &tb).status, 200);
    assert_eq!(s.get(&format!("/v1/me/receipts/{a_event}"), &ta).status, 200);
    // Every member's history holds their own events only.
    for (token, me) in [(&ta, A), (&tb, B)] {
        let h = s.get("/v1/me/history?limit=500", token).json();
        let events = h["events"].as_array().unwrap();
        assert!(!events.is_empty());
        assert!(events.iter().all(|e| e["member_id"] == me), "{h}");
    }
    // No URL names a member: a member id in the query or path is not a way in.
    problem(&s.get(&format!("/v1/me/history?member={B}"), &ta), 400, "bad-input");
    problem(&s.get(&format!("/v1/members/{B}/history"), &ta), 404, "not-found");
}

#[test]
fn history_is_newest_first_and_paged() {
    let s = Server::start();
    let token = s.token(A);
    for state in ["granted", "withdrawn", "granted"] {
        assert_eq!(s.choose(&token, JOBS, state, 1, &[]).status, 201);
    }
    let all = s.get("/v1/me/history?limit=500", &token).json();
    let seqs: Vec<u64> = all["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.len() >= 8, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    assert_eq!(all["next_before"], Value::Null);
    // Two at a time, following the cursor, gives the same sequence.
    let mut paged = Vec::new();
    let mut next = Some("/v1/me/history?limit=2".to_string());
    while let Some(path) = next {
        let page = s.get(&path, &token).json();
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        paged.extend(events.iter().map(|e| e["seq"].as_u64().unwrap()));
        next = page["next"].as_str().map(str::to_string);
    }
    assert_eq!(paged, seqs);
}

#[test]
fn a_retry_with_the_same_idempotency_key_is_the_same_event() {
    let s = Server::start();
    let token = s.token(A);
    let key = [("Idempotency-Key", "choice-42")];
    let first = s.choose(&token, JOBS, "granted", 1, &key);
    assert_eq!(first.status, 201);
    let len = s.ledger_len();
    let again = s.choose(&token, JOBS, "granted", 1, &key);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["seq"], first.json()["seq"]);
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(s.ledger_len(), len);
    // The same key from another member is that member's own key: a new event, not a conflict.
    let theirs = s.choose(&s.token(B), JOBS, "granted", 1, &key);
    assert_eq!(theirs.status, 201);
    assert_ne!(theirs.json()["seq"], first.json()["seq"]);
    // The same key for another choice is a conflict, and writes nothing.
    let len = s.ledger_len();
    problem(&s.choose(&token, JOBS, "withdrawn", 1, &key), 409, "conflict");
    assert_eq!(s.ledger_len(), len);
}

#[test]
fn a_gpc_signal_records_gpc_withdrawals_before_the_choice() {
    let s = Server::start();
    let token = s.token(A);
    let r = s.choose(&token, JOBS, "granted", 1, &[("Sec-GPC", "1"), ("Idempotency-Key", "gpc-1")]);
    assert_eq!(r.status, 201);
    let body = r.json();
    let gpc = body["gpc"].as_array().unwrap();
    // Every purpose of the fixture honours GPC, but only those in use are withdrawn: A never agreed to content
    // suggestions, so the signal has nothing to withdraw there (it used to append a withdrawal for it too).
    assert_eq!(gpc.len(), 2, "jobs and replies are in use for A: {body}");
    let seq = body["seq"].as_u64().unwrap();
    assert!(gpc.iter().all(|g| g["seq"].as_u64().unwrap() < seq && g["duplicate"] == false), "{body}");
    let history = s.get("/v1/me/history?limit=3", &token).json();
    let sources: Vec<&str> =
        history["events"].as_array().unwrap().iter().map(|e| e["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["api", "gpc", "gpc"]);
    // The explicit choice is the member's latest word for its purpose; GPC withdrew the others.
    let consents = s.get("/v1/me/consents", &token).json();
    assert_eq!(purpose(&consents, JOBS)["allowed"], true);
    assert_eq!(purpose(&consents, REPLIES)["decision"]["reason"], "gpc");
    // Retried with the same key, after the clock moved on: nothing new, GPC events included.
    let len = s.ledger_len();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = s.choose(&token, JOBS, "granted", 1, &[("Sec-GPC", "1"), ("Idempotency-Key", "gpc-1")]);
    assert_eq!(again.status, 200, "{}", String::from_utf8_lossy(&again.body));
    let again = again.json();
    assert_eq!(again["seq"], seq);
    assert!(again["gpc"].as_array().unwrap().iter().all(|g| g["duplicate"] == true), "{again}");
    assert_eq!(s.ledger_len(), len);
}

#[test]
fn a_member_reads_their_lineage() {
    let s = Server::start();
    let r = s.get("/v1/me/lineage", &s.token(A));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json().is_object());
}

#[test]
fn unknown_routes_methods_and_panics_are_problems() {
    let s = Server::start();
    problem(&request(s.addr, "GET", "/nowhere", &[], b""), 404, "not-found");
    problem(&request(s.addr, "DELETE", "/v1/me/consents", &[], b""), 405, "method-not-allowed");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    std::fs::create_dir(&data).unwrap();
    let panicking = Server::on(dir, &data, |_| {
        consentry_server::layers(axum::Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                if std::env::var_os("CONSENTRY_NEVER_SET_THIS").is_none() {
                    panic!("a handler bug");
                }
                "unreachable"
            }),
        ))
    });
    let body = problem(&request(panicking.addr, "GET", "/boom", &[], b""), 500, "internal");
    assert!(!body["detail"].as_str().unwrap().contains("a handler bug"), "a panic message is not shown: {body}");
    // The service goes on answering.
    problem(&request(panicking.addr, "GET", "/boom", &[], b""), 500, "internal");
}

#[test]
fn an_api_key_acts_for_no_member_and_a_revoked_one_is_refused() {
    use consentry_app::keys::Role;
    let server = Server::start();
    let before = server.ledger_len();
    for role in [Role::Operator, Role::Auditor] {
        let key = server.session.create_api_key(role, "test", consentry_ledger::now()).unwrap();
        problem(&server.get("/v1/me/consents", &key.secret), 403, "forbidden");
        problem(&server.choose(&key.secret, JOBS, "granted", 1, &[]), 403, "forbidden");
        server.session.revoke_api_key(&key.record.id, consentry_ledger::now()).unwrap();
        let p = problem(&server.get("/v1/me/consents", &key.secret), 401, "unauthenticated");
        assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");
    }
    problem(&server.get("/v1/me/consents", "csk_kdeadbeef0000_forged"), 401, "unauthenticated");
    assert_eq!(server.ledger_len(), before, "a refused request wrote something");
}
