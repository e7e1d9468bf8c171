//! The member's export and erasure and the operator endpoints over real HTTP, on a private copy of the fixture data
//! directory (a ledger, a registry, a job-recommendations dataset and a live model). Includes red-team checks: an
//! operator key reaches no consent write, and an altered operator-actions record is detected.

mod common;

use common::{Server, member_in_live_model, ok, problem, request};
use consentry_app::keys::Role;
use consentry_app::{DataDir, ErrorKind, Session};
use consentry_policy::Action;
use serde_json::Value;

/// A member of the fixture's ledger.
const A: u64 = 5;
/// Another member.
const B: u64 = 6;
const JOBS: &str = "train_ai_system.job_recommendations";

/// Every operator endpoint (method, path, body).
const OPERATOR_ENDPOINTS: &[(&str, &str, &str)] = &[
    ("GET", "/v1/policy", ""),
    ("GET", "/v1/purposes", ""),
    ("GET", "/v1/purposes/train_ai_system.job_recommendations", ""),
    ("POST", "/v1/purposes/train_ai_system.job_recommendations/notices", r#"{"text": "New words.", "material": true}"#),
    ("GET", "/v1/operator-actions", ""),
    ("GET", "/v1/coverage", ""),
    ("GET", "/v1/models", ""),
    ("GET", "/v1/models/000000", ""),
    ("GET", "/v1/unlearning", ""),
    ("POST", "/v1/jobs/unlearn", ""),
];

fn call(s: &Server, method: &str, path: &str, token: &str, body: &str) -> common::Response {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    request(s.addr, method, path, &headers, body.as_bytes())
}

fn current_notice(s: &Server, purpose: &str) -> u64 {
    let op = s.api_key(Role::Operator);
    let p = ok(&s.get(&format!("/v1/purposes/{purpose}"), &op));
    p["notices"].as_array().unwrap().last().unwrap()["version"].as_u64().unwrap()
}

#[test]
fn an_operator_reads_policy_purposes_models_queue_and_coverage() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let policy = ok(&s.get("/v1/policy", &op));
    assert_eq!(policy["policy"]["purposes"].as_array().unwrap().len(), 3, "{policy}");
    assert!(policy["policy"]["hash"].as_str().is_some_and(|h| h.len() == 64));
    assert!(policy["unlearning_deadline_secs"].as_i64().unwrap() > 0);
    assert!(!policy["policy"]["jurisdictions"].as_array().unwrap().is_empty());
    assert!(!policy["policy"]["categories"].as_array().unwrap().is_empty());

    let purposes = ok(&s.get("/v1/purposes", &op));
    assert_eq!(purposes["purposes"].as_array().unwrap().len(), 3);
    let jobs = ok(&s.get(&format!("/v1/purposes/{JOBS}"), &op));
    assert_eq!(jobs["key"], JOBS);
    assert!(!jobs["notices"].as_array().unwrap().is_empty());
    problem(&s.get("/v1/purposes/train_ai_system.nothing", &op), 404, "not-found");

    let models = ok(&s.get("/v1/models", &op));
    let list = models["models"].as_array().unwrap();
    assert!(!list.is_empty(), "{models}");
    let id = list[0]["id"].as_str().unwrap();
    let lineage = ok(&s.get(&format!("/v1/models/{id}"), &op));
    assert_eq!(lineage["model"]["id"], id);
    assert!(lineage["members"].as_u64().unwrap() > 0);
    assert_eq!(
        ok(&s.get(&format!("/v1/models?purpose={JOBS}&status=live"), &op))["models"].as_array().unwrap().len(),
        1
    );
    problem(&s.get("/v1/models/ffffffffffff", &op), 404, "not-found");
    problem(&s.get("/v1/models?status=dead", &op), 400, "bad-input");

    let q = ok(&s.get("/v1/unlearning?all=true", &op));
    assert!(q["requests"].is_array() && q["overdue"].is_u64(), "{q}");

    // Coverage: one instant per day over three days, every purpose × jurisdiction with members.
    let now = consentry_ledger::now();
    let from = now - 2 * 86_400;
    let cov = ok(&s.get(&format!("/v1/coverage?from={from}&to={now}&step=86400"), &op));
    let points = cov["points"].as_array().unwrap();
    assert_eq!(points.len(), 3, "{cov}");
    let last = &points[2];
    assert_eq!(last["position"], s.ledger_len());
    let cells = last["cells"].as_array().unwrap();
    assert!(cells.iter().any(|c| c["purpose"] == JOBS), "{last}");
    for c in cells {
        let (m, a) = (c["members"].as_u64().unwrap(), c["allowed"].as_u64().unwrap());
        assert!(a <= m && m > 0);
        assert!((c["share"].as_f64().unwrap() - a as f64 / m as f64).abs() < 1e-9);
    }
    // The counts are the gate's snapshot's: the same members allowed.
    let snap = s.session.snapshot(JOBS, consentry_ledger::position::At::Now).unwrap();
    let allowed: u64 = cells.iter().filter(|c| c["purpose"] == JOBS).map(|c| c["allowed"].as_u64().unwrap()).sum();
    assert_eq!(allowed, snap.allowed().len());
    let one = ok(&s.get(&format!("/v1/coverage?purpose={JOBS}&jurisdiction=default"), &op));
    for c in one["points"][0]["cells"].as_array().unwrap() {
        assert_eq!((c["purpose"].as_str(), c["jurisdiction"].as_str()), (Some(JOBS), Some("default")));
    }
}

#[test]
fn bad_operator_queries_are_4xx_and_write_nothing() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let len = s.ledger_len();
    let policy = std::fs::read(s.data().policy_file()).unwrap();
    for q in ["step=0", "step=abc", "from=yesterday", "to=99999999999", "from=100&to=50", "color=blue", "from=0&step=1"]
    {
        problem(&s.get(&format!("/v1/coverage?{q}"), &op), 400, "bad-input");
    }
    problem(&s.get("/v1/coverage?purpose=train_ai_system.nothing", &op), 404, "not-found");
    problem(&s.get("/v1/coverage?jurisdiction=XX", &op), 404, "not-found");
    problem(&s.get("/v1/unlearning?all=maybe", &op), 400, "bad-input");
    let notices = format!("/v1/purposes/{JOBS}/notices");
    for body in [
        "{",
        r#"{"text": "x"}"#,
        r#"{"text": "", "material": true}"#,
        r#"{"text": "x", "material": "yes"}"#,
        r#"{"text": "x", "material": true, "language": "not a tag"}"#,
        r#"{"text": "x", "material": true, "version": 9}"#,
    ] {
        problem(&s.post(&notices, &op, &[], body), 400, "bad-input");
    }
    problem(
        &s.post("/v1/purposes/train_ai_system.nothing/notices", &op, &[], r#"{"text": "x", "material": true}"#),
        404,
        "not-found",
    );
    assert_eq!(s.ledger_len(), len);
    assert_eq!(std::fs::read(s.data().policy_file()).unwrap(), policy);
    assert!(!s.data().operator_actions_file().exists());
}

#[test]
fn members_auditors_and_strangers_are_refused_every_operator_endpoint() {
    let s = Server::start();
    let member = s.token(A);
    let auditor = s.api_key(Role::Auditor);
    let policy = std::fs::read(s.data().policy_file()).unwrap();
    for (method, path, body) in OPERATOR_ENDPOINTS {
        problem(&call(&s, method, path, &member, body), 403, "forbidden");
        problem(&call(&s, method, path, &auditor, body), 403, "forbidden");
        problem(&request(s.addr, method, path, &[], body.as_bytes()), 401, "unauthenticated");
    }
    assert_eq!(std::fs::read(s.data().policy_file()).unwrap(), policy);
    assert!(!s.data().operator_actions_file().exists());
}

#[test]
fn an_export_holds_exactly_my_events_with_receipts_and_my_lineage() {
    let s = Server::start();
    // B acts too, so the log holds events of others after A's.
    let notice = current_notice(&s, JOBS) as u32;
    ok(&s.choose(&s.token(A), JOBS, "granted", notice, &[]));
    ok(&s.choose(&s.token(B), JOBS, "withdrawn", notice, &[]));
    let r = s.get("/v1/me/export", &s.token(A));
    assert_eq!(r.status, 200);
    let disposition = r.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment;") && disposition.contains(".json"), "{disposition}");
    let export = r.json();
    assert_eq!(export["member"], A);
    let events = export["events"].as_array().unwrap();
    let mut mine = Vec::new();
    let ledger = s.session.ledger().unwrap();
    ledger
        .store()
        .scan(1, ledger.store().len().unwrap(), &mut |e| {
            if e.event.body.member_id == A {
                mine.push(e.event.seq);
            }
            Ok(())
        })
        .unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, mine, "exactly my events, in log order");
    for e in events {
        assert_eq!(e["member_id"], A);
        let link = e["receipt"].as_str().unwrap();
        assert_eq!(link, format!("/v1/me/receipts/{}", e["seq"]));
        assert_eq!(s.get(link, &s.token(A)).status, 200);
    }
    assert_eq!(export["consents"].as_array().unwrap().len(), 3);
    assert_eq!(export["lineage"]["member"], A);
    assert!(!export["lineage"]["facts"].as_array().unwrap().is_empty(), "my facts as recorded");
    assert!(export["lineage"]["privacy"].is_object());
    let text = String::from_utf8_lossy(&r.body);
    assert!(!text.contains(&format!("\"member_id\":{B},")), "nothing of B's");
}

#[test]
fn erasure_withdraws_everything_queues_unlearning_is_idempotent_and_shows_progress() {
    let s = Server::start();
    let m = member_in_live_model(&s);
    let token = s.token(m);
    let op = s.api_key(Role::Operator);
    let before = s.ledger_len();
    // A malformed key is refused before anything is written.
    let long = "k".repeat(201);
    problem(&s.post("/v1/me/erasure", &token, &[("Idempotency-Key", &long)], ""), 400, "bad-input");
    assert_eq!(s.ledger_len(), before);
    let r = s.post("/v1/me/erasure", &token, &[("Idempotency-Key", "erase-1")], "");
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("location"), Some("/v1/me/erasure"));
    let out = r.json();
    let withdrawals = out["withdrawals"].as_array().unwrap();
    assert!(!withdrawals.is_empty(), "{out}");
    assert_eq!(s.ledger_len(), before + withdrawals.len() as u64);
    let public_key = s.session.public_key().unwrap();
    for w in withdrawals {
        assert_eq!(w["duplicate"], false);
        let receipt = ok(&s.get(w["receipt"].as_str().unwrap(), &token));
        assert_eq!(receipt, w["receipt_document"], "the receipt inline is the one the link serves");
        let text = String::from_utf8(s.get(w["receipt"].as_str().unwrap(), &token).body).unwrap();
        consentry_ledger::receipt::AnyReceipt::verify_json(&text, &public_key).expect("verifies offline");
    }
    // Every purpose is withdrawn now.
    let consents = ok(&s.get("/v1/me/consents", &token));
    for p in consents["purposes"].as_array().unwrap() {
        assert_eq!(p["allowed"], false, "{p}");
    }
    let export = ok(&s.get("/v1/me/export", &token));
    let events = export["events"].as_array().unwrap();
    for p in consents["purposes"].as_array().unwrap() {
        let last = events.iter().rev().find(|e| e["purpose"] == p["purpose"]).unwrap();
        assert_eq!(last["action"], "withdraw", "{last}");
    }
    // Unlearning started: the queue holds the member's requests with deadlines.
    let queue = ok(&s.get("/v1/unlearning", &op));
    let reqs: Vec<&Value> = queue["requests"].as_array().unwrap().iter().filter(|r| r["member"] == m).collect();
    assert!(!reqs.is_empty(), "{queue}");
    for r in &reqs {
        assert!(r["deadline"].as_i64().unwrap() > r["requested_at"].as_i64().unwrap());
        assert_eq!(r["overdue"], false);
    }
    let progress = ok(&s.get("/v1/me/erasure", &token));
    assert_eq!(progress["requested"], true);
    assert_eq!(progress["complete"], false);
    let items = progress["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.iter().all(|i| i["state"] == "queued" && i["shard"].is_u64()), "{progress}");

    // A retry with the same key: the same withdrawals, nothing appended.
    let again = s.post("/v1/me/erasure", &token, &[("Idempotency-Key", "erase-1")], "");
    assert_eq!(again.status, 202);
    let again = again.json();
    let seqs =
        |v: &Value| v["withdrawals"].as_array().unwrap().iter().map(|w| w["seq"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(seqs(&again), seqs(&out));
    assert!(again["withdrawals"].as_array().unwrap().iter().all(|w| w["duplicate"] == true));
    assert_eq!(s.ledger_len(), before + withdrawals.len() as u64);
    // A second erasure without a key has nothing left to withdraw.
    let third = s.post("/v1/me/erasure", &token, &[], "");
    assert_eq!(third.status, 202);
    assert!(third.json()["withdrawals"].as_array().unwrap().is_empty());
    assert_eq!(s.ledger_len(), before + withdrawals.len() as u64);

    // The operator runs the job; the progress shows the member removed.
    let job = ok(&s.post("/v1/jobs/unlearn", &op, &[], ""));
    assert!(!job["retrains"].as_array().unwrap().is_empty(), "{job}");
    let progress = ok(&s.get("/v1/me/erasure", &token));
    assert_eq!(progress["complete"], true, "{progress}");
    for i in progress["items"].as_array().unwrap() {
        assert_eq!(i["state"], "done", "{i}");
        assert!(i["completed_at"].is_i64() && i["new_model"].is_string());
    }
}

#[test]
fn a_published_notice_makes_the_old_version_stale_everywhere_and_is_recorded() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let old = current_notice(&s, JOBS);
    let before_hash = ok(&s.get("/v1/policy", &op))["policy"]["hash"].clone();
    // Another process on the same data directory, its ledger opened before the publication.
    let other = Session::open(DataDir::new(s.data().root()), None).unwrap();
    assert_eq!(
        other.ledger().unwrap().policy().purpose(other.purpose_id(JOBS).unwrap()).latest_notice().version as u64,
        old
    );

    let r = s.post(
        &format!("/v1/purposes/{JOBS}/notices"),
        &op,
        &[],
        r#"{"text": "We now also use your endorsements.\nYou can withdraw at any time.", "material": true}"#,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("location"), Some(format!("/v1/purposes/{JOBS}").as_str()));
    let published = r.json();
    assert_eq!(published["notice"]["version"].as_u64(), Some(old + 1));
    assert_eq!(published["action"]["actor"].as_str().map(|a| a.starts_with("operator key")), Some(true));
    assert_eq!(current_notice(&s, JOBS), old + 1);

    // A member's choice under the old version is stale (409 naming the new one); under the new one it is recorded.
    let token = s.token(A);
    let len = s.ledger_len();
    let body = problem(&s.choose(&token, JOBS, "granted", old as u32, &[]), 409, "conflict");
    assert_eq!(body["current_notice_version"].as_u64(), Some(old + 1));
    assert_eq!(s.ledger_len(), len);
    assert_eq!(s.choose(&token, JOBS, "granted", old as u32 + 1, &[]).status, 201);
    let mine = ok(&s.get("/v1/me/consents", &token));
    let jobs = mine["purposes"].as_array().unwrap().iter().find(|p| p["purpose"] == JOBS).unwrap().clone();
    assert_eq!(jobs["notice"]["version"].as_u64(), Some(old + 1));
    assert_eq!(jobs["allowed"], true, "{jobs}");

    // The other process puts the new policy in force at its next call.
    let stale = other.member_choice(consentry_app::member::MemberChoice {
        member: B,
        purpose: JOBS.into(),
        action: Action::Grant,
        notice_version: old as u32,
        source: consentry_policy::Source::Api,
        idempotency_key: None,
        gpc: false,
    });
    assert_eq!(stale.unwrap_err().kind(), ErrorKind::Conflict);

    // Recorded, signed, and it verifies.
    let actions = ok(&s.get("/v1/operator-actions", &op));
    // The first line adopts the policy as it was (so every policy ever in force is in the record), the second
    // publishes.
    assert_eq!(actions["actions"].as_array().unwrap().len(), 2, "{actions}");
    assert!(actions["problems"].as_array().unwrap().is_empty(), "{actions}");
    assert_eq!(actions["actions"][0]["action"], "adopt_policy");
    assert_eq!(actions["actions"][0]["policy_after"], before_hash);
    assert_eq!(actions["actions"][1]["action"], "publish_notice");
    assert_eq!(actions["actions"][1]["notice_version"].as_u64(), Some(old + 1));
    assert_eq!(actions["actions"][1]["policy_before"], before_hash);
    assert_eq!(s.session.verify_operator_actions().unwrap(), 2);
    // The ledger still verifies with the new policy in force.
    assert!(s.session.verify_ledger().unwrap().ok());
}

#[test]
fn red_team_an_operator_key_reaches_no_consent_write() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let len = s.ledger_len();
    let notice = current_notice(&s, JOBS);
    for state in ["granted", "withdrawn"] {
        problem(&s.choose(&op, JOBS, state, notice as u32, &[]), 403, "forbidden");
        problem(&s.choose(&op, JOBS, state, notice as u32, &[("Sec-GPC", "1")]), 403, "forbidden");
    }
    problem(&s.post("/v1/me/erasure", &op, &[], ""), 403, "forbidden");
    for path in ["/v1/me/export", "/v1/me/erasure", "/v1/me/consents", "/v1/me/history"] {
        problem(&s.get(path, &op), 403, "forbidden");
    }
    assert_eq!(s.ledger_len(), len, "nothing written");
}

#[test]
fn red_team_an_altered_or_forged_operator_record_is_detected() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let path = format!("/v1/purposes/{JOBS}/notices");
    ok(&s.post(&path, &op, &[], r#"{"text": "Version two.", "material": false}"#));
    ok(&s.post(&path, &op, &[], r#"{"text": "Version three.", "material": true}"#));
    assert_eq!(s.session.verify_operator_actions().unwrap(), 3);
    let file = s.data().operator_actions_file();
    let good = std::fs::read_to_string(&file).unwrap();

    // Who did it, altered.
    std::fs::write(&file, good.replacen("operator key", "auditor key", 1)).unwrap();
    assert_eq!(s.session.verify_operator_actions().unwrap_err().kind(), ErrorKind::Integrity);
    let shown = ok(&s.get("/v1/operator-actions", &op));
    assert!(!shown["problems"].as_array().unwrap().is_empty());
    // Nothing is published over a record that does not verify.
    problem(&s.post(&path, &op, &[], r#"{"text": "Version four.", "material": true}"#), 422, "integrity");

    // The first line removed (its successor's link and number no longer fit).
    let second_only: String = good.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, second_only).unwrap();
    assert_eq!(s.session.verify_operator_actions().unwrap_err().kind(), ErrorKind::Integrity);

    // A forged line: re-signed with another key.
    let mut lines: Vec<Value> = good.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    lines[2]["signature"] = Value::String("ab".repeat(64));
    let forged: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, forged).unwrap();
    assert_eq!(s.session.verify_operator_actions().unwrap_err().kind(), ErrorKind::Integrity);

    // The record intact, but the policy file changed by hand without a record.
    std::fs::write(&file, &good).unwrap();
    assert_eq!(s.session.verify_operator_actions().unwrap(), 3);
    let policy = std::fs::read_to_string(s.data().policy_file()).unwrap();
    std::fs::write(s.data().policy_file(), policy.replace("Version three.", "Version 3, quietly edited.")).unwrap();
    let e = s.session.verify_operator_actions().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    assert!(e.to_string().contains("without a record"), "{e}");
}

#[test]
fn every_route_of_these_modules_is_in_their_openapi_paths() {
    use utoipa::OpenApi as _;
    let ops = serde_json::to_value(consentry_server::operator::OperatorApi::openapi()).unwrap();
    for (method, path) in [
        ("get", "/v1/policy"),
        ("get", "/v1/purposes"),
        ("get", "/v1/purposes/{purpose}"),
        ("post", "/v1/purposes/{purpose}/notices"),
        ("get", "/v1/operator-actions"),
        ("get", "/v1/coverage"),
        ("get", "/v1/models"),
        ("get", "/v1/models/{id}"),
        ("get", "/v1/unlearning"),
        ("post", "/v1/jobs/unlearn"),
    ] {
        assert!(ops["paths"][path][method].is_object(), "{method} {path}");
    }
    let me = serde_json::to_value(consentry_server::me::MeApi::openapi()).unwrap();
    for (method, path) in [("get", "/v1/me/export"), ("post", "/v1/me/erasure"), ("get", "/v1/me/erasure")] {
        assert!(me["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(ops["components"]["schemas"]["NewNotice"].is_object(), "{}", ops["components"]);
}
