//! The privacy officer's dashboard endpoints over real HTTP, on a private copy of the fixture data directory (a
//! ledger, a registry, a job-recommendations dataset and a live model): datasets with their exclusions, the
//! unlearning summary moving from open to completed, webhook delivery state, and the three SVG charts.
//!
//! Set `CONSENTRY_SAMPLE_CHARTS=DIR` to keep the charts the tests fetch (`DIR/coverage.svg`, …) for a look.

mod common;

use common::{Server, member_in_live_model, ok, problem, request};
use consentry_app::keys::Role;
use serde_json::Value;

const DASHBOARD: &[&str] = &[
    "/v1/datasets",
    "/v1/unlearning/summary",
    "/v1/webhooks",
    "/v1/charts/coverage.svg",
    "/v1/charts/exclusions.svg",
    "/v1/charts/unlearning.svg",
];

/// Fetches an SVG chart, checks its media type and that it is well-formed XML with an accessible name, keeps it
/// when asked, and returns its text.
fn chart(s: &Server, path: &str, token: &str) -> String {
    let r = s.get(path, token);
    assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("image/svg+xml"), "{path}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    let text = String::from_utf8(r.body).expect("UTF-8");
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{path} is not XML: {e}\n{text}"));
    assert_eq!(doc.root_element().attribute("role"), Some("img"));
    assert!(!text.contains("style=") && !text.contains("<script"), "{path}: {text}");
    if let Ok(dir) = std::env::var("CONSENTRY_SAMPLE_CHARTS") {
        let name = path.rsplit('/').next().unwrap().split('?').next().unwrap();
        // The first of each kind is kept.
        let file = std::path::Path::new(&dir).join(name);
        if !file.exists() {
            std::fs::write(file, &text).unwrap();
        }
    }
    text
}

#[test]
fn only_an_operator_reads_the_dashboard() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let auditor = s.api_key(Role::Auditor);
    let member = s.token(5);
    for path in DASHBOARD {
        let r = s.get(path, &op);
        assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.body));
        problem(&s.get(path, &member), 403, "forbidden");
        problem(&s.get(path, &auditor), 403, "forbidden");
        problem(&request(s.addr, "GET", path, &[], b""), 401, "unauthenticated");
    }
}

#[test]
fn datasets_list_members_rows_and_exclusions_by_reason_from_the_registered_manifest() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let body = ok(&s.get("/v1/datasets", &op));
    let list = body["datasets"].as_array().unwrap();
    assert!(!list.is_empty(), "{body}");
    let created: Vec<i64> = list.iter().map(|d| d["created"].as_i64().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");
    let d = &list[0];
    assert_eq!(d["purpose"], "train_ai_system.job_recommendations", "{d}");
    assert_eq!(d["manifest"], "verified", "{d}");
    assert!(d["members"].as_u64().unwrap() > 0);
    let excluded = d["excluded_by_reason"].as_object().unwrap();
    assert!(!excluded.is_empty(), "the fixture's gate left rows out: {d}");
    let sum: u64 = excluded.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(d["rows_excluded"].as_u64(), Some(sum));
    assert!(d["rows_out"].as_u64().unwrap() > 0 && d["rows_in"].as_u64().unwrap() >= d["rows_out"].as_u64().unwrap());

    // The exclusions chart draws a segment per reason, named in its description.
    let svg = chart(&s, "/v1/charts/exclusions.svg", &op);
    for reason in excluded.keys() {
        assert!(svg.contains(reason.as_str()), "{reason} missing from {svg}");
    }

    // A manifest edited after registration is flagged and its counts are not shown.
    let dir = s.data().root().join(d["dir"].as_str().unwrap());
    let manifest = dir.join("manifest.json");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push(' ');
    std::fs::write(&manifest, text).unwrap();
    let after = ok(&s.get("/v1/datasets", &op));
    let d = after["datasets"].as_array().unwrap().iter().find(|x| x["id"] == d["id"]).unwrap().clone();
    assert_eq!(d["manifest"], "altered", "{d}");
    assert!(d["manifest_problem"].as_str().unwrap().contains("changed after the gate registered it"), "{d}");
    assert!(d["excluded_by_reason"].as_object().unwrap().is_empty() && d["rows_excluded"].is_null(), "{d}");
    std::fs::remove_file(&manifest).unwrap();
    let gone = ok(&s.get("/v1/datasets", &op));
    assert_eq!(gone["datasets"][0]["manifest"], "missing", "{gone}");
    assert!(chart(&s, "/v1/charts/exclusions.svg", &op).contains("manifest missing"));
}

#[test]
fn the_unlearning_summary_follows_a_withdrawal_from_open_to_removed_on_time() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let before = ok(&s.get("/v1/unlearning/summary", &op));
    assert_eq!(before["open"], 0, "{before}");
    assert!(before["oldest_open"].is_null() && before["median_seconds"].is_null(), "{before}");
    assert!(before["service_deadline_seconds"].as_i64().unwrap() > 0);
    assert!(chart(&s, "/v1/charts/unlearning.svg", &op).contains("No data yet"));

    // An erasure queues unlearning at once.
    let m = member_in_live_model(&s);
    let r = s.post("/v1/me/erasure", &s.token(m), &[], "");
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let open = ok(&s.get("/v1/unlearning/summary", &op));
    let n = open["open"].as_u64().unwrap();
    assert!(n > 0, "{open}");
    assert_eq!(open["pending"].as_u64(), Some(n), "{open}");
    assert_eq!(open["overdue"], 0);
    let oldest = &open["oldest_open"];
    assert!(oldest["age_seconds"].as_i64().unwrap() >= 0 && oldest["seconds_left"].as_i64().unwrap() > 0, "{open}");
    let models = open["models"].as_array().unwrap();
    assert_eq!(models.iter().map(|x| x["open"].as_u64().unwrap()).sum::<u64>(), n, "{open}");
    assert!(models.iter().all(|x| x["kind"].is_string() && x["next_deadline"].is_i64()), "{open}");
    // The /v1/unlearning queue agrees.
    let queue = ok(&s.get("/v1/unlearning", &op));
    assert_eq!(queue["open"].as_u64(), Some(n));

    // The operator runs the job: every request completed, on time, with its time to removal.
    ok(&s.post("/v1/jobs/unlearn", &op, &[], ""));
    let done = ok(&s.get("/v1/unlearning/summary", &op));
    assert_eq!(done["open"], 0, "{done}");
    assert_eq!(done["completed_on_time"].as_u64(), Some(n), "{done}");
    assert_eq!(done["completed_late"], 0);
    let median = done["median_seconds"].as_i64().unwrap();
    let p95 = done["p95_seconds"].as_i64().unwrap();
    assert!(0 <= median && median <= p95 && p95 <= done["max_seconds"].as_i64().unwrap(), "{done}");
    assert!(done["oldest_open"].is_null());
    let svg = chart(&s, "/v1/charts/unlearning.svg", &op);
    assert!(svg.contains("Deadline") && svg.contains("median"), "{svg}");
}

#[test]
fn the_coverage_chart_draws_each_purpose_and_refuses_bad_queries() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let policy = ok(&s.get("/v1/policy", &op));
    let names: Vec<String> = policy["policy"]["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.is_empty());
    // From the ledger's first entry to now in five steps: a line per purpose.
    let first = s.session.ledger().unwrap().store().entry(1).unwrap().unwrap().entry.recorded_time();
    let now = consentry_ledger::now();
    let step = ((now - first) / 4).max(1);
    let lines = chart(&s, &format!("/v1/charts/coverage.svg?from={first}&to={now}&step={step}"), &op);
    let doc = roxmltree::Document::parse(&lines).unwrap();
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("polyline")).count(), names.len(), "{lines}");
    let j = policy["policy"]["jurisdictions"].as_array().unwrap()[0]["key"].as_str().unwrap().to_string();
    let one = chart(&s, &format!("/v1/charts/coverage.svg?jurisdiction={j}"), &op);
    assert!(one.contains(&format!("jurisdiction {j}")), "{one}");
    // The default: the last 30 days.
    let svg = chart(&s, "/v1/charts/coverage.svg", &op);
    for name in &names {
        assert!(svg.contains(name.as_str()), "{name} missing");
    }
    problem(&s.get("/v1/charts/coverage.svg?jurisdiction=XX", &op), 404, "not-found");
    problem(&s.get("/v1/charts/coverage.svg?step=0", &op), 400, "bad-input");
    problem(&s.get("/v1/charts/coverage.svg?step=1&from=2026-01-01", &op), 400, "bad-input");
    problem(&s.get("/v1/charts/coverage.svg?colour=red", &op), 400, "bad-input");
    problem(&s.get("/v1/charts/coverage.svg?from=yesterday", &op), 400, "bad-input");
    // Extreme numbers are a chart or a bad input, never a failure.
    for q in [
        "step=9223372036854775807",
        "from=-9223372036854775808",
        "from=-9223372036854775808&step=9223372036854775807",
        "to=-9223372036854775808",
        "step=-9223372036854775808",
    ] {
        let r = s.get(&format!("/v1/charts/coverage.svg?{q}"), &op);
        assert!(r.status == 200 || r.status == 400, "{q}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        let r = s.get(&format!("/v1/coverage?{q}"), &op);
        assert!(r.status == 200 || r.status == 400, "coverage {q}: {} {}", r.status, String::from_utf8_lossy(&r.body));
    }
}

#[test]
fn webhooks_report_their_host_lag_and_wait_but_never_their_url_path() {
    let (dir, data) = Server::fixture();
    let hooks = consentry_app::config::ServiceConfig::parse(
        r#"
        [[webhooks]]
        name = "crm"
        url = "http://user:pw@127.0.0.1:9/hooks/consent?token=abc"
        secret_env = "UNUSED"
        events = ["consent.changed"]
        "#,
        std::path::Path::new("."),
    )
    .unwrap()
    .webhooks;
    let options = consentry_server::Options { webhooks: hooks, ..Default::default() };
    let s = Server::on(dir, &data, |session| consentry_server::router_with(session, &options));
    let op = s.api_key(Role::Operator);
    let body = ok(&s.get("/v1/webhooks", &op));
    let hooks = body["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1, "{body}");
    let h = &hooks[0];
    assert_eq!(h["name"], "crm");
    assert_eq!(h["host"], "127.0.0.1:9");
    assert_eq!(h["events"], serde_json::json!(["consent.changed"]));
    let text = body.to_string();
    assert!(!text.contains("token=abc") && !text.contains("pw@") && !text.contains("/hooks"), "{text}");
    // Nothing delivered it yet (no delivery task runs here): a choice leaves it behind, waiting.
    let before = h["behind"].as_u64().unwrap();
    let m = member_in_live_model(&s);
    assert_eq!(s.post("/v1/me/erasure", &s.token(m), &[], "").status, 202);
    let after = ok(&s.get("/v1/webhooks", &op));
    let h = &after["webhooks"][0];
    assert!(h["behind"].as_u64().unwrap() > before, "{after}");
    assert_eq!(h["delivered"], 0);
    assert_eq!(h["outbox_last"], h["behind"]);
    assert!(h["waiting_since"].is_i64() && h["waiting_seconds"].as_i64().unwrap() >= 0, "{after}");

    // The plain router (no webhooks configured) answers an empty list.
    let plain = Server::start();
    let none = ok(&plain.get("/v1/webhooks", &plain.api_key(Role::Operator)));
    assert_eq!(none["webhooks"], Value::Array(vec![]));
}

#[test]
fn a_plain_withdrawal_shows_in_the_queue_at_once_as_awaiting_the_next_pass() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    assert_eq!(ok(&s.get("/v1/unlearning/summary", &op))["awaiting_intake_total"], 0);
    // A member in a live model withdraws (no erasure, no worker pass yet): the next pass's request is listed with
    // the deadline it will get, and the member reads "removal pending", not "in use".
    let m = member_in_live_model(&s);
    let lineage = s.session.member_lineage(m).unwrap();
    let purpose = lineage.models.iter().find(|x| x.status.to_string() == "live").unwrap().purpose.clone();
    let token = s.token(m);
    let notice = ok(&s.get("/v1/me/consents", &token))["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == purpose.as_str())
        .unwrap()["notice"]["version"]
        .as_u64()
        .unwrap();
    assert_eq!(s.choose(&token, &purpose, "withdrawn", notice as u32, &[]).status, 201);
    let waiting = ok(&s.get("/v1/unlearning/summary", &op));
    assert_eq!(waiting["awaiting_intake_total"], 1, "{waiting}");
    let request = &waiting["awaiting_intake"][0];
    assert_eq!((request["member"].as_u64(), request["purpose"].as_str()), (Some(m), Some(purpose.as_str())));
    let deadline = request["deadline"].as_i64().unwrap();
    assert_eq!(
        deadline - request["requested_at"].as_i64().unwrap(),
        waiting["service_deadline_seconds"].as_i64().unwrap()
    );
    let uses = ok(&s.get("/v1/me/data-uses", &token));
    let mine = uses["items"].as_array().unwrap().iter().find(|i| i["purpose"] == purpose.as_str()).unwrap();
    assert_eq!(
        (mine["status"].as_str(), mine["deadline"].as_i64()),
        (Some("removal_pending"), Some(deadline)),
        "{uses}"
    );
    // The pass takes it in (and retrains): nothing awaits any more.
    ok(&s.post("/v1/jobs/unlearn", &op, &[], ""));
    assert_eq!(ok(&s.get("/v1/unlearning/summary", &op))["awaiting_intake_total"], 0);
}
