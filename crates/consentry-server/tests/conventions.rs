//! The service's conventions over real HTTP: the OpenAPI document covers every route and resolves every schema it
//! names, `/metrics` is valid exposition text with the series after requests, one JSON log line per request (no
//! secret in it), a panic logs a line, per-principal and per-IP rate limits (429 with Retry-After), CORS off by
//! default and on for exactly the origins given. Each test serves `serve_with` (with the client's address known)
//! over its own copy of the CLI's fixture data directory.

use axum::Router;
use axum::routing::get;
use consentry_app::keys::Role;
use consentry_app::{DataDir, Session};
use consentry_server::limits::{RateLimit, RateLimits};
use consentry_server::observe::{LogFormat, log_subscriber};
use consentry_server::{Options, cors_origin};
use consentry_test_support::cli::copy_dir;
use consentry_test_support::http::{Response, request};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

const A: u64 = 5;
const B: u64 = 6;

/// A service on an ephemeral port over its own copy of the fixture, served by `serve_with` on a thread that lives
/// as long as the test process (so the client's address reaches the per-IP limit as in `consentry serve`).
struct Running {
    addr: SocketAddr,
    session: Arc<Session>,
    _data: tempfile::TempDir,
}

impl Running {
    fn start(options: Options) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry/tests/fixtures/datadir-v1"), &data);
        let session = Arc::new(Session::open(DataDir::new(&data), None).unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let served = Arc::clone(&session);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let listener = rt.block_on(async { tokio::net::TcpListener::from_std(listener) }).unwrap();
            rt.block_on(consentry_server::serve_with(listener, served, &options, std::future::pending())).unwrap();
        });
        Running { addr, session, _data: dir }
    }

    fn token(&self, member: u64) -> String {
        self.session.mint_member_token(member, 3600, consentry_ledger::now()).unwrap().token
    }

    fn key(&self, role: Role) -> String {
        self.session.create_api_key(role, "conventions test", consentry_ledger::now()).unwrap().secret
    }

    fn get(&self, path: &str, credential: &str) -> Response {
        request(self.addr, "GET", path, &[("Authorization", &format!("Bearer {credential}"))], b"")
    }
}

/// Every route the service's router has (the lead's matrix test adds the other modules').
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/docs"),
    ("get", "/v1/me/consents"),
    ("put", "/v1/me/consents/{purpose}"),
    ("get", "/v1/me/history"),
    ("get", "/v1/me/receipts/{seq}"),
    ("get", "/v1/me/lineage"),
];

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => {
                        out.insert(r.clone());
                    }
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_openapi_document_covers_every_route_and_resolves_every_schema() {
    let s = Running::start(Options::default());
    let r = request(s.addr, "GET", "/v1/openapi.json", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    for (method, path) in ROUTES {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not in the document");
    }
    // The other direction: every path of the document is routed (a path the router lacks gets the fallback's 404).
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        let concrete = path.replace("{purpose}", "x").replace("{seq}", "1");
        for method in item.as_object().unwrap().keys() {
            let r = request(s.addr, &method.to_uppercase(), &concrete, &[], b"");
            let unrouted = r.status == 404 && String::from_utf8_lossy(&r.body).contains("no such route");
            assert!(!unrouted, "{method} {path} is in the document but not routed");
        }
    }
    let mut named = BTreeSet::new();
    refs(&doc, &mut named);
    assert!(named.contains("#/components/schemas/Problem"), "{named:?}");
    for r in &named {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "{r} is referenced but not defined");
    }
    // The layers' answers are on every operation; errors are problems; the member's routes take the bearer.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("429"), "{method} {path}: no 429");
            assert!(responses["429"]["headers"]["Retry-After"].is_object(), "{method} {path}");
            for (status, resp) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(resp["content"]["application/problem+json"].is_object(), "{method} {path} {status}");
                }
            }
            if path.starts_with("/v1/me/") || path == "/metrics" {
                assert_eq!(op["security"][0]["bearer"], serde_json::json!([]), "{method} {path}");
                assert!(responses.contains_key("401") && responses.contains_key("403"), "{method} {path}");
            }
        }
    }
    let page = request(s.addr, "GET", "/v1/docs", &[], b"");
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("fetch('/v1/openapi.json')") && !html.contains("https://cdn"), "{html}");
    let put = &doc["paths"]["/v1/me/consents/{purpose}"]["put"];
    let params: Vec<&str> = put["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(params, ["purpose", "Idempotency-Key", "Sec-GPC"]);
    assert!(put["requestBody"]["content"]["application/json"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

/// The value of the one sample named `series` (name and labels exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_are_exposition_text_with_the_series_after_requests() {
    let s = Running::start(Options::default());
    let operator = s.key(Role::Operator);
    let a = s.token(A);
    assert_eq!(s.get("/v1/me/consents", &a).status, 200);
    assert_eq!(s.get("/v1/me/receipts/999999", &a).status, 404);
    let body = r#"{"state": "granted", "notice_version": 2}"#;
    let put = request(
        s.addr,
        "PUT",
        "/v1/me/consents/train_ai_system.reply_suggestions",
        &[("Authorization", &format!("Bearer {a}")), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));

    // Only an operator scrapes.
    assert_eq!(request(s.addr, "GET", "/metrics", &[], b"").status, 401);
    assert_eq!(s.get("/metrics", &a).status, 403);
    assert_eq!(s.get("/metrics", &s.key(Role::Auditor)).status, 403);
    let r = s.get("/metrics", &operator);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"), "{r:?}");
    let text = String::from_utf8(r.body).unwrap();

    // Every line is a comment or `name{labels} value` with a number.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        assert!(!series.contains('{') || series.ends_with('}'), "{line}");
    }
    let consents = r#"method="GET",route="/v1/me/consents",status="2xx""#;
    assert_eq!(sample(&text, &format!("consentry_http_request_duration_seconds_count{{{consents}}}")), Some(1.0));
    assert_eq!(
        sample(&text, &format!("consentry_http_request_duration_seconds_bucket{{{consents},le=\"+Inf\"}}")),
        Some(1.0)
    );
    // Route templates, never raw paths (a member's receipt position is not a label).
    let receipt = r#"method="GET",route="/v1/me/receipts/{seq}",status="4xx""#;
    assert_eq!(sample(&text, &format!("consentry_http_request_duration_seconds_count{{{receipt}}}")), Some(1.0));
    // (In the series names and labels: a latency value such as 0.000999999 may hold the digits.)
    assert!(!text.lines().any(|l| l.rsplit_once(' ').is_some_and(|(series, _)| series.contains("999999"))), "{text}");
    assert_eq!(sample(&text, "consentry_ledger_appends_total"), Some(1.0));
    assert_eq!(
        sample(&text, "consentry_ledger_entries"),
        Some(s.session.ledger().unwrap().store().len().unwrap() as f64)
    );
    assert!(sample(&text, "consentry_unlearning_queue_depth").is_some(), "{text}");
    assert!(sample(&text, "consentry_unlearning_deadline_misses").is_some(), "{text}");
    for h in ["# TYPE consentry_http_request_duration_seconds histogram", "# TYPE consentry_ledger_entries gauge"] {
        assert!(text.contains(h), "{text}");
    }
}

#[test]
fn a_principal_over_its_limit_gets_429_with_retry_after_and_others_are_unaffected() {
    let slow = RateLimit { per_second: 0.5, burst: 3.0 };
    let s = Running::start(Options {
        limits: RateLimits { principal: slow, anonymous: slow, max_tracked: 1000 },
        ..Options::default()
    });
    let a = s.token(A);
    for _ in 0..3 {
        assert_eq!(s.get("/v1/me/consents", &a).status, 200);
    }
    let r = s.get("/v1/me/consents", &a);
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["type"], "https://consentry.dev/problems/rate-limited");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // Another member, and the same member's other token? Another principal is another bucket.
    assert_eq!(s.get("/v1/me/consents", &s.token(B)).status, 200);
    let operator = s.key(Role::Operator);
    assert_eq!(s.get("/metrics", &operator).status, 200);

    // Without a credential, or with one that does not authenticate: the client address's bucket.
    for _ in 0..3 {
        assert_eq!(request(s.addr, "GET", "/healthz", &[], b"").status, 200);
    }
    let r = request(s.addr, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert_eq!(s.get("/v1/me/consents", "forged.token").status, 429);
    // An authenticated member is not held back by the address's empty bucket.
    assert_eq!(s.get("/v1/me/consents", &s.token(B)).status, 200);
}

#[test]
fn cors_is_off_by_default_and_on_for_exactly_the_given_origins() {
    let preflight = [
        ("Origin", "https://app.example.com"),
        ("Access-Control-Request-Method", "PUT"),
        ("Access-Control-Request-Headers", "authorization,content-type"),
    ];
    let off = Running::start(Options::default());
    let r = request(off.addr, "GET", "/healthz", &[("Origin", "https://app.example.com")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
    let r = request(off.addr, "OPTIONS", "/v1/me/consents/x", &preflight, b"");
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
    assert_eq!(r.header("access-control-allow-methods"), None, "{r:?}");

    let on = Running::start(Options {
        cors_origins: vec![cors_origin("https://app.example.com").unwrap()],
        ..Options::default()
    });
    let r = request(on.addr, "GET", "/healthz", &[("Origin", "https://app.example.com")], b"");
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example.com"), "{r:?}");
    let r = request(on.addr, "OPTIONS", "/v1/me/consents/x", &preflight, b"");
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example.com"), "{r:?}");
    assert!(r.header("access-control-allow-methods").unwrap().contains("PUT"), "{r:?}");
    let r = request(on.addr, "GET", "/healthz", &[("Origin", "https://evil.example.com")], b"");
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");

    for bad in ["app.example.com", "https://app.example.com/path", "ftp://x", "https://"] {
        assert!(cors_origin(bad).is_err(), "{bad}");
    }
}

/// Log lines of every test of this file, as JSON lines (one global subscriber for the process).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    Arc::clone(LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        let writer = move || Sink(Arc::clone(&sink));
        let subscriber = log_subscriber(LogFormat::Json, "info", writer).unwrap();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    }))
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_lines(logs: &Mutex<Vec<u8>>) -> (String, Vec<Value>) {
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let lines = text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    (text, lines)
}

#[test]
fn one_json_log_line_per_request_with_the_principal_and_no_secret() {
    let logs = captured_logs();
    let s = Running::start(Options::default());
    let a = s.token(A);
    let body = r#"{"state": "withdrawn", "notice_version": 2}"#;
    let put = request(
        s.addr,
        "PUT",
        "/v1/me/consents/train_ai_system.reply_suggestions",
        &[
            ("Authorization", &format!("Bearer {a}")),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", "log-test-key"),
        ],
        body.as_bytes(),
    );
    assert_eq!(put.status, 201);
    let key = s.key(Role::Auditor);
    assert_eq!(s.get("/v1/me/consents", &key).status, 403);
    assert_eq!(request(s.addr, "GET", "/readyz", &[], b"").status, 200);

    let (text, lines) = log_lines(&logs);
    let put_line = lines
        .iter()
        .find(|l| l["route"] == "/v1/me/consents/{purpose}" && l["principal"] == format!("member {A}"))
        .unwrap_or_else(|| panic!("no request line for the PUT: {text}"));
    assert_eq!(put_line["message"], "request");
    assert_eq!(put_line["method"], "PUT");
    assert_eq!(put_line["status"], 201);
    assert_eq!(put_line["level"], "INFO");
    assert!(put_line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{put_line}");
    assert!(put_line["timestamp"].is_string(), "{put_line}");
    let auditor = lines.iter().find(|l| l["route"] == "/v1/me/consents" && l["status"] == 403).unwrap();
    assert!(auditor["principal"].as_str().unwrap().starts_with("auditor key k"), "{auditor}");
    assert!(lines.iter().any(|l| l["route"] == "/readyz" && l["principal"] == "anonymous"), "{text}");
    // No credential, no body, no idempotency key in any line.
    for secret in [a.as_str(), key.as_str(), "withdrawn", "log-test-key"] {
        assert!(!text.contains(secret), "{secret} logged: {text}");
    }
}

async fn boom() -> &'static str {
    panic!("handler exploded on purpose")
}

#[test]
fn a_panicking_handler_answers_500_and_logs_a_line() {
    let logs = captured_logs();
    let app = consentry_server::layers_with(Router::new().route("/boom", get(boom)), &Options::default());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    let r = request(addr, "GET", "/boom", &[], b"");
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let (text, lines) = log_lines(&logs);
    let panic_line = lines
        .iter()
        .find(|l| l["panic"] == "handler exploded on purpose")
        .unwrap_or_else(|| panic!("no panic line: {text}"));
    assert_eq!(panic_line["level"], "ERROR");
    assert!(lines.iter().any(|l| l["route"] == "/boom" && l["status"] == 500 && l["level"] == "WARN"), "{text}");
}
