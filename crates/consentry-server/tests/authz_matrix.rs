//! The authorisation matrix: every endpoint × every kind of caller (nobody, a garbage credential, a revoked key, a
//! member for their own data and against another member's, an operator, an auditor), each outcome asserted. The
//! table below is written from the issue's rules, not read from the code, and the test fails when the OpenAPI
//! document lists an endpoint the table does not (or the other way round), so a new endpoint cannot skip it.
//!
//! Every refused request is also checked to have written nothing (the ledger's length).

mod common;

use common::{Server, problem, request};
use consentry_app::keys::Role;
use serde_json::Value;
use std::collections::BTreeSet;

const A: u64 = 5;
const B: u64 = 6;
const JOBS: &str = "train_ai_system.job_recommendations";

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Anyone, no credential (health, readiness, the API description, the ledger's public key).
    Public,
    /// A member, for their own data.
    Own,
    /// An operator.
    Operate,
    /// An auditor or an operator.
    Evidence,
    /// A member signed in with the web session cookie (and its CSRF token); a bearer credential is not one.
    Cookie,
}

/// (method, path template, who may).
const ENDPOINTS: &[(&str, &str, Need)] = &[
    ("GET", "/healthz", Need::Public),
    ("GET", "/readyz", Need::Public),
    ("GET", "/v1/openapi.json", Need::Public),
    ("GET", "/v1/docs", Need::Public),
    ("GET", "/metrics", Need::Operate),
    ("POST", "/v1/session", Need::Own),
    ("DELETE", "/v1/session", Need::Cookie),
    ("GET", "/v1/me/consents", Need::Own),
    ("PUT", "/v1/me/consents/{purpose}", Need::Own),
    ("GET", "/v1/me/history", Need::Own),
    ("GET", "/v1/me/receipts/{seq}", Need::Own),
    ("GET", "/v1/me/lineage", Need::Own),
    ("GET", "/v1/me/data", Need::Own),
    ("GET", "/v1/me/data-uses", Need::Own),
    ("POST", "/v1/me/gpc", Need::Own),
    ("GET", "/v1/me/export", Need::Own),
    ("GET", "/v1/me/erasure", Need::Own),
    ("POST", "/v1/me/erasure", Need::Own),
    ("GET", "/v1/policy", Need::Operate),
    ("GET", "/v1/purposes", Need::Operate),
    ("GET", "/v1/purposes/{purpose}", Need::Operate),
    ("POST", "/v1/purposes/{purpose}/notices", Need::Operate),
    ("GET", "/v1/operator-actions", Need::Operate),
    ("GET", "/v1/coverage", Need::Operate),
    ("GET", "/v1/models", Need::Operate),
    ("GET", "/v1/models/{id}", Need::Operate),
    ("GET", "/v1/unlearning", Need::Operate),
    ("GET", "/v1/unlearning/summary", Need::Operate),
    ("GET", "/v1/datasets", Need::Operate),
    ("GET", "/v1/webhooks", Need::Operate),
    ("GET", "/v1/charts/coverage.svg", Need::Operate),
    ("GET", "/v1/charts/exclusions.svg", Need::Operate),
    ("GET", "/v1/charts/unlearning.svg", Need::Operate),
    ("POST", "/v1/jobs/unlearn", Need::Operate),
    ("GET", "/v1/events", Need::Operate),
    ("GET", "/v1/audits", Need::Operate),
    ("POST", "/v1/audits", Need::Operate),
    ("GET", "/v1/audits/{id}", Need::Operate),
    ("GET", "/v1/log/checkpoint", Need::Evidence),
    ("GET", "/v1/log/checkpoint/note", Need::Evidence),
    ("POST", "/v1/log/cosignatures", Need::Operate),
    ("GET", "/v1/log/checkpoints", Need::Evidence),
    ("GET", "/v1/log/checkpoints/{size}", Need::Evidence),
    ("GET", "/v1/log/public-key", Need::Public),
    ("GET", "/v1/log/proofs/inclusion", Need::Evidence),
    ("GET", "/v1/log/proofs/consistency", Need::Evidence),
    ("GET", "/v1/log/receipts/{seq}", Need::Evidence),
    ("GET", "/v1/evidence/bundle", Need::Evidence),
    ("GET", "/tlog/checkpoint", Need::Evidence),
    ("GET", "/tlog/tile/{path}", Need::Evidence),
];

/// A caller of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Garbage,
    RevokedKey,
    Auditor,
    /// Member A; for endpoints naming an entry, A asks for member B's.
    OtherMember,
    Member,
    Operator,
}

/// What the matrix expects: `None` = allowed (a 2xx), else the refusal's status and problem slug.
fn expected(need: Need, who: Who) -> Option<(u16, &'static str)> {
    let unauthenticated = Some((401, "unauthenticated"));
    let forbidden = Some((403, "forbidden"));
    match (need, who) {
        (Need::Public, _) => None,
        (Need::Cookie, Who::Member) => None,
        (Need::Cookie, _) => unauthenticated,
        (_, Who::Nobody | Who::Garbage | Who::RevokedKey) => unauthenticated,
        (Need::Own, Who::Member) => None,
        // Another member's entry is not found, exactly as a position past the log's end: nothing leaks.
        (Need::Own, Who::OtherMember) => Some((404, "not-found")),
        (Need::Own, _) => forbidden,
        (Need::Operate, Who::Operator) => None,
        (Need::Operate, _) => forbidden,
        (Need::Evidence, Who::Operator | Who::Auditor) => None,
        (Need::Evidence, _) => forbidden,
    }
}

struct Fixture {
    server: Server,
    member: String,
    operator: String,
    auditor: String,
    revoked: String,
    /// An entry about member A, and one about member B.
    own_seq: u64,
    other_seq: u64,
    model: String,
    audit: String,
    size: u64,
}

fn setup() -> Fixture {
    let server = Server::start();
    let member = server.token(A);
    let other = server.token(B);
    let operator = server.api_key(Role::Operator);
    let auditor = server.api_key(Role::Auditor);
    let made = server.session.create_api_key(Role::Operator, "leaver", consentry_ledger::now()).unwrap();
    server.session.revoke_api_key(&made.record.id, consentry_ledger::now()).unwrap();
    let notice = current_notice(&server, &member);
    let own_seq = server.choose(&member, JOBS, "granted", notice, &[]).json()["seq"].as_u64().unwrap();
    let other_seq = server.choose(&other, JOBS, "granted", notice, &[]).json()["seq"].as_u64().unwrap();
    let models = common::ok(&server.get("/v1/models", &operator));
    let model = first_string(&models, &["models", "id"]).expect("the fixture has a model");
    let audit = common::ok(&server.post("/v1/audits", &operator, &[], ""))["id"].as_str().unwrap().to_string();
    let size = common::ok(&server.get("/v1/log/checkpoint", &auditor))["tree_size"].as_u64().unwrap();
    Fixture { server, member, operator, auditor, revoked: made.secret, own_seq, other_seq, model, audit, size }
}

/// The notice version a member must name for the jobs purpose now.
fn current_notice(server: &Server, token: &str) -> u32 {
    let consents = common::ok(&server.get("/v1/me/consents", token));
    let p = consents["purposes"].as_array().unwrap().iter().find(|p| p["purpose"] == JOBS).unwrap();
    p["notice"]["version"].as_u64().unwrap() as u32
}

/// The first string at `path` (an array at the first step) of a JSON value.
fn first_string(v: &Value, path: &[&str]) -> Option<String> {
    let list = v.get(path[0]).and_then(Value::as_array).or_else(|| v.as_array())?;
    list.iter().find_map(|item| item.get(path[1]).map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)))
}

impl Fixture {
    /// The path with its parameters filled in for `who`.
    fn path(&self, template: &str, who: Who) -> String {
        let seq = if who == Who::OtherMember { self.other_seq } else { self.own_seq };
        let path = template
            .replace("{purpose}", JOBS)
            .replace("{seq}", &seq.to_string())
            .replace("{id}", if template.starts_with("/v1/audits") { &self.audit } else { &self.model })
            .replace("{size}", &self.size.to_string())
            .replace("{path}", "0/000.p/1");
        match path.as_str() {
            "/v1/log/proofs/inclusion" => format!("{path}?seq={}&size={}", self.own_seq.min(self.size), self.size),
            "/v1/log/proofs/consistency" => format!("{path}?from=1&to={}", self.size),
            _ => path,
        }
    }

    fn credential(&self, who: Who) -> Option<&str> {
        match who {
            Who::Nobody => None,
            Who::Garbage => Some("not-a-credential"),
            Who::RevokedKey => Some(&self.revoked),
            Who::Auditor => Some(&self.auditor),
            Who::Member | Who::OtherMember => Some(&self.member),
            Who::Operator => Some(&self.operator),
        }
    }

    /// A body the endpoint accepts from a caller allowed to use it.
    fn body(&self, method: &str, template: &str) -> String {
        match (method, template) {
            ("PUT", "/v1/me/consents/{purpose}") => {
                format!(r#"{{"state": "withdrawn", "notice_version": {}}}"#, current_notice(&self.server, &self.member))
            }
            ("POST", "/v1/purposes/{purpose}/notices") => {
                r#"{"text": "We train job recommendations on your profile.", "material": false, "language": "en"}"#
                    .to_string()
            }
            ("POST", "/v1/log/cosignatures") => self.cosignature(),
            _ => String::new(),
        }
    }

    /// A witness's valid cosignature of the newest checkpoint, as the body of `POST /v1/log/cosignatures`.
    fn cosignature(&self) -> String {
        use consentry_ledger::note::{Checkpoint, Note};
        use consentry_ledger::witness::WitnessKey;
        let r = self.server.get("/v1/log/checkpoint/note", &self.operator);
        let cp = common::ok(&r);
        let note = Note::parse(cp["note"].as_str().unwrap()).unwrap();
        let size = Checkpoint::parse(note.text()).unwrap().tree_size;
        let w = WitnessKey::from_seed("witness.example/matrix", [4; 32]).unwrap();
        let line = w.cosign(note.text(), 1_700_000_000).line();
        serde_json::json!({
            "tree_size": size,
            "witness_key": w.verifier_key().unwrap().encode(),
            "cosignature": line.trim_end(),
        })
        .to_string()
    }

    fn call(&self, method: &str, template: &str, who: Who) -> common::Response {
        let path = self.path(template, who);
        let body = self.body(method, template);
        let auth = self.credential(who).map(|c| format!("Bearer {c}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        let web = (method, template, who) == ("DELETE", "/v1/session", Who::Member);
        let (cookie, csrf) = if web { self.sign_in() } else { Default::default() };
        if web {
            headers.push(("Cookie", &cookie));
            headers.push(("X-CSRF-Token", &csrf));
        } else if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        if (method, template) == ("POST", "/v1/me/gpc") {
            headers.push(("Sec-GPC", "1"));
        }
        request(self.server.addr, method, &path, &headers, body.as_bytes())
    }
}

impl Fixture {
    /// Signs member A in: the `Cookie` header value and the CSRF token.
    fn sign_in(&self) -> (String, String) {
        let r = self.server.post("/v1/session", &self.member, &[], "");
        let csrf = common::ok(&r)["csrf_token"].as_str().unwrap().to_string();
        let cookies: Vec<&str> =
            r.headers.iter().filter(|(n, _)| n == "set-cookie").filter_map(|(_, v)| v.split(';').next()).collect();
        (cookies.join("; "), csrf)
    }
}

/// Endpoints whose path names no entry have no "other member" variant: a member reaches only their own data there.
fn names_an_entry(template: &str) -> bool {
    template.contains("{seq}")
}

#[test]
fn every_endpoint_answers_every_kind_of_caller_as_the_rules_say() {
    let f = setup();
    // Refusals first, the allowed caller last: an allowed write (erasure, a new notice) must not change what the
    // refused ones are checked against.
    let order =
        [Who::Nobody, Who::Garbage, Who::RevokedKey, Who::Auditor, Who::OtherMember, Who::Member, Who::Operator];
    let mut checked = 0;
    for &(method, template, need) in ENDPOINTS {
        for who in order {
            if who == Who::OtherMember && !(need == Need::Own && names_an_entry(template)) {
                continue;
            }
            let before = f.server.ledger_len();
            let r = f.call(method, template, who);
            let what = format!("{method} {template} as {who:?}");
            match expected(need, who) {
                None => assert!(
                    (200..300).contains(&r.status),
                    "{what}: expected success, got {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ),
                Some((status, slug)) => {
                    assert_eq!(r.status, status, "{what}: {}", String::from_utf8_lossy(&r.body));
                    problem(&r, status, slug);
                    assert_eq!(f.server.ledger_len(), before, "{what} was refused but wrote to the ledger");
                }
            }
            checked += 1;
        }
    }
    assert!(checked > ENDPOINTS.len() * 5, "only {checked} cells checked");
}

#[test]
fn a_member_reads_only_their_own_events_in_history_and_export() {
    let f = setup();
    for path in ["/v1/me/history", "/v1/me/export"] {
        let body = common::ok(&f.server.get(path, &f.member));
        let text = body.to_string();
        assert!(text.contains(&format!("\"seq\":{}", f.own_seq)), "{path} lacks the member's own event");
        let events = body["events"].as_array().expect("events");
        assert!(!events.is_empty());
        for e in events {
            let member = e.get("member_id").or_else(|| e.pointer("/event/member_id"));
            assert_eq!(member, Some(&Value::from(A)), "{path} shows another member's event: {e}");
        }
        assert!(!text.contains(&format!("\"seq\":{},", f.other_seq)), "{path} mentions member B's event");
    }
}

#[test]
fn the_matrix_covers_exactly_the_documented_endpoints() {
    let f = setup();
    let doc = common::ok(&request(f.server.addr, "GET", "/v1/openapi.json", &[], b""));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let tabled: BTreeSet<(String, String)> = ENDPOINTS.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let missing: Vec<_> = documented.difference(&tabled).collect();
    let stale: Vec<_> = tabled.difference(&documented).collect();
    assert!(missing.is_empty(), "endpoints documented but not in the matrix: {missing:?}");
    assert!(stale.is_empty(), "matrix rows for endpoints the document lacks: {stale:?}");
}
