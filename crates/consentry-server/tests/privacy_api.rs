//! The privacy centre's data endpoints over real HTTP (`/v1/me/data`, `/v1/me/data-uses`, `/v1/me/gpc`) and the
//! plain-language fields of `/v1/me/consents`: shapes the page relies on, a member never reaching another member's
//! data, GPC honoured once and never over a knowing choice, and CSRF on the cookie session's POST.

use serde_json::Value;

mod common;

use common::*;

const CONTENT: &str = "train_ai_system.content_suggestions";

fn purpose<'a>(consents: &'a Value, key: &str) -> &'a Value {
    consents["purposes"].as_array().unwrap().iter().find(|p| p["purpose"] == key).unwrap()
}

fn category<'a>(data: &'a Value, key: &str) -> Option<&'a Value> {
    data["categories"].as_array().unwrap().iter().find(|c| c["key"] == key)
}

/// Signs `member` in on the web: (the `Cookie` header value, the CSRF token).
fn web_session(s: &Server, member: u64) -> (String, String) {
    let r = s.post("/v1/session", &s.token(member), &[], "");
    let csrf = ok(&r)["csrf_token"].as_str().unwrap().to_string();
    let cookies: Vec<&str> =
        r.headers.iter().filter(|(n, _)| n == "set-cookie").filter_map(|(_, v)| v.split(';').next()).collect();
    (cookies.join("; "), csrf)
}

#[test]
fn each_card_says_in_plain_words_how_the_feature_stands_and_why() {
    let s = Server::start();
    let body = ok(&s.get("/v1/me/consents", &s.token(A)));
    for p in body["purposes"].as_array().unwrap() {
        let state = p["state"].as_str().unwrap();
        assert!(["used", "not_used", "paused"].contains(&state), "{p}");
        assert_eq!(p["allowed"] == true, state == "used", "{p}");
        let reason = p["reason"].as_str().unwrap();
        assert!(reason.starts_with(match state {
            "used" => "Used: ",
            "paused" => "Paused: ",
            _ => "Not used: ",
        }));
        assert_eq!(p["decided_at"].is_i64(), p["deciding_seq"].is_u64(), "{p}");
        let details = p["category_details"].as_array().unwrap();
        assert_eq!(details.len(), p["categories"].as_array().unwrap().len());
        assert!(details.iter().all(|d| d["description"].as_str().is_some_and(|t| !t.is_empty())), "{p}");
        // The fixture's policy predates summaries: the field is absent or null, never made up.
        assert!(p["summary"].is_null(), "{p}");
    }
    assert_eq!(purpose(&body, CONTENT)["reason"], "Not used: you have not agreed.");
    assert_eq!(purpose(&body, JOBS)["reason"], "Used: you agreed.");
}

#[test]
fn my_data_is_mine_by_category_with_my_own_examples_and_the_features_using_it() {
    let s = Server::start();
    let (a, b) = (ok(&s.get("/v1/me/data", &s.token(A))), ok(&s.get("/v1/me/data", &s.token(B))));
    assert_eq!((a["member"].as_u64(), b["member"].as_u64()), (Some(A), Some(B)));
    assert_eq!(a["notes"].as_array().unwrap().len(), 0, "{a}");
    let title = category(&a, "user.job_title").expect("member A has a job title");
    assert_eq!(title["rows"], 1);
    assert_eq!(title["description"], "A member's current job title and seniority.");
    assert!(title["purposes"].as_array().unwrap().iter().any(|p| p["purpose"] == JOBS && p["name"].is_string()));
    assert_eq!(title["examples"].as_array().unwrap().len(), 1);
    // Each member sees their own profile, and nothing of the other's: no example of B's appears in A's answer.
    let examples = |d: &Value| -> Vec<String> {
        d["categories"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["examples"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()))
            .collect()
    };
    let a_text = a.to_string();
    let b_own: Vec<String> = ["user.contact.email", "user.name", "user.contact.phone_number"]
        .iter()
        .filter_map(|k| category(&b, k))
        .flat_map(|c| c["examples"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()))
        .collect();
    assert!(b_own.len() == 3, "{b}");
    for e in &b_own {
        assert!(!a_text.contains(e.as_str()), "member A's data shows member B's {e}");
    }
    assert!(!examples(&a).is_empty());
    // No parameter names a member: a query string is ignored, the token decides.
    let r = ok(&s.get(&format!("/v1/me/data?member={B}"), &s.token(A)));
    assert_eq!(r["member"], A);
    assert_eq!(examples(&r), examples(&a));
}

#[test]
fn private_messages_show_a_count_and_one_redacted_snippet() {
    let s = Server::start();
    let d = ok(&s.get("/v1/me/data", &s.token(26)));
    let private = category(&d, "user.content.private").expect("member 26 wrote messages");
    assert_eq!(private["sensitive"], true);
    assert!(private["rows"].as_u64().unwrap() >= 1);
    let snippet = private["examples"].as_array().unwrap();
    assert_eq!(snippet.len(), 1, "{private}");
    let snippet = snippet[0].as_str().unwrap();
    assert!(snippet.contains("<EMAIL>") && !snippet.contains('@') && snippet.chars().count() <= 81, "{snippet}");
    let used_by: Vec<&str> =
        private["purposes"].as_array().unwrap().iter().map(|p| p["purpose"].as_str().unwrap()).collect();
    assert_eq!(used_by, [REPLIES], "private messages are never bundled with another feature");
}

#[test]
fn without_the_network_my_data_is_an_empty_list_with_a_note() {
    let (dir, data) = Server::fixture();
    std::fs::remove_dir_all(consentry_app::DataDir::new(&data).network_dir()).unwrap();
    let s = Server::on(dir, &data, consentry_server::router);
    let d = ok(&s.get("/v1/me/data", &s.token(A)));
    assert_eq!(d["categories"].as_array().unwrap().len(), 0);
    assert_eq!(d["notes"].as_array().unwrap().len(), 1, "{d}");
}

#[test]
fn where_my_data_went_shows_each_version_and_its_removal_after_i_withdraw() {
    let s = Server::start();
    let token = s.token(A);
    let uses = ok(&s.get("/v1/me/data-uses", &token));
    assert_eq!(uses["member"], A);
    let items = uses["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{uses}");
    let item = &items[0];
    assert_eq!((item["purpose"].as_str(), item["name"].as_str()), (Some(JOBS), Some("Job recommendations")));
    assert_eq!((item["status"].as_str(), item["version_label"].as_str()), (Some("in_use"), Some("v1")));
    for field in ["model", "kind", "dataset", "trained_at", "shard"] {
        assert!(!item[field].is_null(), "{field}: {item}");
    }
    let privacy = &uses["privacy"];
    assert!(privacy["explanation"].as_str().is_some_and(|t| t.ends_with('.')), "{privacy}");
    assert_eq!(privacy["without_bound"].as_array().unwrap().len(), 1, "the fixture's model has no DP: {privacy}");
    // B's data-uses are B's own: A's item is not in B's answer unless B's data is in that model too.
    let theirs = ok(&s.get("/v1/me/data-uses", &s.token(B)));
    assert_eq!(theirs["member"], B);

    // Withdraw, and the version is a pending removal with its deadline; after the unlearning run, removed by v2.
    let notice = purpose(&ok(&s.get("/v1/me/consents", &token)), JOBS)["notice"]["version"].as_u64().unwrap() as u32;
    assert_eq!(s.choose(&token, JOBS, "withdrawn", notice, &[]).status, 201);
    let operator = s.api_key(consentry_app::keys::Role::Operator);
    ok(&s.post("/v1/jobs/unlearn", &operator, &[], ""));
    let after = ok(&s.get("/v1/me/data-uses", &token));
    let removed = after["items"].as_array().unwrap().iter().find(|i| i["model"] == item["model"]).unwrap().clone();
    assert_eq!(removed["status"], "removed", "{after}");
    assert_eq!(removed["replaced_by_label"], "v2");
    assert!(removed["removed_at"].is_i64() && removed["seconds_after_withdrawal"].as_i64().is_some_and(|s| s >= 0));
    assert!(removed["withdrawal_seq"].is_u64());
}

#[test]
fn gpc_is_honoured_once_and_a_knowing_grant_stands() {
    let s = Server::start();
    let token = s.token(A);
    // Without the signal, nothing happens and the caller is told what to send.
    let before = s.ledger_len();
    for bad in [&[][..], &[("Sec-GPC", "0")][..], &[("Sec-GPC", "yes")][..]] {
        let body = problem(&s.post("/v1/me/gpc", &token, bad, ""), 400, "bad-input");
        assert!(body["detail"].as_str().unwrap().contains("Sec-GPC: 1"), "{body}");
    }
    assert_eq!(s.ledger_len(), before);
    // A has jobs and replies in use, never agreed to content: two withdrawals.
    let r = ok(&s.post("/v1/me/gpc", &token, &[("Sec-GPC", "1")], ""));
    let mut withdrawn: Vec<&str> =
        r["appended"].as_array().unwrap().iter().map(|a| a["purpose"].as_str().unwrap()).collect();
    withdrawn.sort();
    assert_eq!(withdrawn, [JOBS, REPLIES], "{r}");
    assert_eq!(purpose(&r, JOBS)["reason"], "Not used: Global Privacy Control is on in your browser.");
    assert_eq!(purpose(&r, CONTENT)["reason"], "Not used: you have not agreed.");
    // The browser sends it again with the next request: nothing.
    let len = s.ledger_len();
    assert_eq!(ok(&s.post("/v1/me/gpc", &token, &[("Sec-GPC", "1")], ""))["appended"], Value::Array(vec![]));
    assert_eq!(s.ledger_len(), len);
    // The member grants jobs again, GPC still on; the next signal leaves the choice alone.
    let notice = purpose(&r, JOBS)["notice"]["version"].as_u64().unwrap() as u32;
    let grant = s.choose(&token, JOBS, "granted", notice, &[("Sec-GPC", "1")]);
    assert_eq!(grant.status, 201);
    assert_eq!(grant.json()["gpc"], Value::Array(vec![]));
    let again = ok(&s.post("/v1/me/gpc", &token, &[("Sec-GPC", "1")], ""));
    assert_eq!(again["appended"], Value::Array(vec![]));
    assert_eq!(purpose(&again, JOBS)["state"], "used");
    // Another member's signal is theirs: B's purposes move, A's stay.
    let b = ok(&s.post("/v1/me/gpc", &s.token(B), &[("Sec-GPC", "1")], ""));
    assert_eq!(b["member"], B);
    assert_eq!(purpose(&ok(&s.get("/v1/me/consents", &token)), JOBS)["state"], "used");
}

#[test]
fn a_retried_gpc_request_returns_its_first_withdrawals() {
    let s = Server::start();
    let token = s.token(A);
    let key = [("Sec-GPC", "1"), ("Idempotency-Key", "gpc-page-load-1")];
    let first = ok(&s.post("/v1/me/gpc", &token, &key, ""));
    let len = s.ledger_len();
    let again = ok(&s.post("/v1/me/gpc", &token, &key, ""));
    assert_eq!(s.ledger_len(), len);
    let seqs = |v: &Value| -> Vec<u64> {
        v["appended"].as_array().unwrap().iter().map(|a| a["seq"].as_u64().unwrap()).collect()
    };
    assert_eq!(seqs(&again), seqs(&first));
    assert!(again["appended"].as_array().unwrap().iter().all(|a| a["duplicate"] == true), "{again}");
    problem(&s.post("/v1/me/gpc", &token, &[("Sec-GPC", "1"), ("Idempotency-Key", "")], ""), 400, "bad-input");
}

#[test]
fn a_cookie_session_needs_its_csrf_token_to_post_gpc() {
    let s = Server::start();
    let (cookie, csrf) = web_session(&s, A);
    let before = s.ledger_len();
    let post = |extra: &[(&str, &str)]| {
        let mut headers = vec![("Cookie", cookie.as_str()), ("Sec-GPC", "1")];
        headers.extend_from_slice(extra);
        request(s.addr, "POST", "/v1/me/gpc", &headers, b"")
    };
    let body = problem(&post(&[]), 403, "forbidden");
    assert!(body["detail"].as_str().unwrap().contains("X-CSRF-Token"), "{body}");
    problem(&post(&[("X-CSRF-Token", "guess")]), 403, "forbidden");
    assert_eq!(s.ledger_len(), before, "a cross-site POST wrote");
    let r = ok(&post(&[("X-CSRF-Token", &csrf)]));
    assert_eq!(r["member"], A);
    assert!(s.ledger_len() > before);
    // Reading needs no CSRF token.
    let r = request(s.addr, "GET", "/v1/me/data", &[("Cookie", &cookie)], b"");
    assert_eq!(ok(&r)["member"], A);
}

#[test]
fn only_members_reach_these_endpoints() {
    let s = Server::start();
    let operator = s.api_key(consentry_app::keys::Role::Operator);
    for path in ["/v1/me/data", "/v1/me/data-uses"] {
        problem(&s.get(path, &operator), 403, "forbidden");
        problem(&request(s.addr, "GET", path, &[], b""), 401, "unauthenticated");
    }
    problem(&s.post("/v1/me/gpc", &operator, &[("Sec-GPC", "1")], ""), 403, "forbidden");
}
