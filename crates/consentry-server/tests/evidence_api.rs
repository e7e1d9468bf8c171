//! The auditor's endpoints and audit runs over real HTTP: tree heads checked with the public key, proofs fetched
//! over HTTP checked with the ledger crate's own verifiers against a fetched head, the bundle download passing the
//! offline audit, bad input as problems, and who may call what. Red-team checks: a proof for an altered entry fails,
//! a log altered on disk yields no proof, an auditor key neither runs nor reads audit runs, an altered run record
//! is refused.

mod common;

use common::{Response, Server, problem, request};
use consentry_app::DataDir;
use consentry_app::keys::Role;
use consentry_ledger::merkle::{verify_consistency, verify_inclusion};
use consentry_ledger::{Event, FactsEntry, Hash, PublicKey, SignedTreeHead};
use serde_json::Value;

/// A member of the fixture's ledger.
const A: u64 = 5;
const JOBS: &str = "train_ai_system.job_recommendations";

impl Server {
    fn public_key(&self) -> PublicKey {
        PublicKey::load(&self.data().public_key_file()).unwrap()
    }

    /// Appends `n` withdrawals and grants of member A and signs a head over them: a second head to prove against.
    fn grow(&self, n: usize) -> SignedTreeHead {
        for i in 0..n {
            let choice = consentry_app::ledger::AppendRequest {
                member: A,
                purpose: JOBS.to_string(),
                action: if i % 2 == 0 { consentry_policy::Action::Withdraw } else { consentry_policy::Action::Grant },
                notice_version: None,
                source: consentry_policy::Source::Api,
                actor: None,
                event_time: None,
                idempotency_key: None,
                key_prefix: "test",
            };
            self.session.append(choice).unwrap();
        }
        self.session.checkpoint().unwrap()
    }
}

fn ok_json(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn sth(v: &Value) -> SignedTreeHead {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: not a signed tree head: {v}"))
}

fn hash(v: &Value) -> Hash {
    hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(hash).collect()
}

/// The leaf hash a client recomputes from the entry's fields (never the server's word for it).
fn leaf_of(entry: &Value) -> Hash {
    match entry["kind"].as_str() {
        Some("consent") => serde_json::from_value::<Event>(entry["event"].clone()).unwrap().leaf_hash().unwrap(),
        Some("facts") => serde_json::from_value::<FactsEntry>(entry["facts"].clone()).unwrap().leaf_hash().unwrap(),
        other => panic!("unknown entry kind {other:?}: {entry}"),
    }
}

#[test]
fn tree_heads_verify_with_the_public_key_latest_and_by_size() {
    let s = Server::start();
    let auditor = s.api_key(Role::Auditor);
    let key = s.public_key();
    let first = sth(&ok_json(&s.get("/v1/log/checkpoint", &auditor)));
    assert!(key.verify(&first), "{first:?}");
    let second = s.grow(3);
    let latest = sth(&ok_json(&s.get("/v1/log/checkpoint", &auditor)));
    assert_eq!(latest, second);
    assert!(key.verify(&latest));
    let by_size = sth(&ok_json(&s.get(&format!("/v1/log/checkpoints/{}", first.head.tree_size), &auditor)));
    assert_eq!(by_size, first);
    let all: Vec<SignedTreeHead> = serde_json::from_value(ok_json(&s.get("/v1/log/checkpoints", &auditor))).unwrap();
    assert_eq!(all, vec![first.clone(), second.clone()]);
    let pk = ok_json(&s.get("/v1/log/public-key", &auditor));
    assert_eq!(pk["public_key"], key.to_hex());
    assert_eq!(hash(&pk["log_id"]), latest.log_id);
    // No head signed at a size in between, nor past the log.
    problem(&s.get(&format!("/v1/log/checkpoints/{}", first.head.tree_size + 1), &auditor), 404, "not-found");
    problem(&s.get("/v1/log/checkpoints/999999", &auditor), 404, "not-found");
    problem(&s.get("/v1/log/checkpoints/latest", &auditor), 400, "bad-input");
}

#[test]
fn inclusion_and_consistency_proofs_fetched_over_http_verify_against_fetched_heads() {
    let s = Server::start();
    let auditor = s.api_key(Role::Auditor);
    let key = s.public_key();
    let old = sth(&ok_json(&s.get("/v1/log/checkpoint", &auditor)));
    s.grow(5);
    let new = sth(&ok_json(&s.get("/v1/log/checkpoint", &auditor)));
    assert!(key.verify(&old) && key.verify(&new));

    // Every kind of entry, old and new, in the newest head (the default size) and in the old head.
    for seq in [1, old.head.tree_size / 2, old.head.tree_size, new.head.tree_size] {
        let p = ok_json(&s.get(&format!("/v1/log/proofs/inclusion?seq={seq}"), &auditor));
        assert_eq!(p["tree_size"], new.head.tree_size);
        let leaf = leaf_of(&p["entry"]);
        assert_eq!(leaf, hash(&p["leaf_hash"]), "seq {seq}");
        assert!(verify_inclusion(seq - 1, new.head.tree_size, &leaf, &hashes(&p["proof"]), &new.head.root_hash));
        assert_eq!(sth(&p["checkpoint"]), new);
    }
    let seq = old.head.tree_size - 1;
    let p = ok_json(&s.get(&format!("/v1/log/proofs/inclusion?seq={seq}&size={}", old.head.tree_size), &auditor));
    assert!(verify_inclusion(
        seq - 1,
        old.head.tree_size,
        &leaf_of(&p["entry"]),
        &hashes(&p["proof"]),
        &old.head.root_hash
    ));

    let c = ok_json(&s.get(&format!("/v1/log/proofs/consistency?from={}", old.head.tree_size), &auditor));
    assert_eq!((c["from"].as_u64(), c["to"].as_u64()), (Some(old.head.tree_size), Some(new.head.tree_size)));
    assert_eq!(hash(&c["from_root"]), old.head.root_hash);
    assert!(verify_consistency(
        old.head.tree_size,
        new.head.tree_size,
        &old.head.root_hash,
        &new.head.root_hash,
        &hashes(&c["proof"])
    ));
    let c = ok_json(&s.get(&format!("/v1/log/proofs/consistency?from=1&to={}", new.head.tree_size), &auditor));
    assert!(!hashes(&c["proof"]).is_empty());

    // Any entry's receipt, for an auditor, verifies offline with the public key.
    let r = s.get("/v1/log/receipts/1", &auditor);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    consentry_ledger::receipt::AnyReceipt::verify_json(std::str::from_utf8(&r.body).unwrap(), &key).unwrap();
}

/// The log in C2SP tlog-tiles' layout: the tiles an auditor fetches rebuild the signed root and the leaves the
/// proofs name, without any proof from the service.
#[test]
fn tiles_served_in_c2sp_layout_rebuild_the_signed_root() {
    use consentry_ledger::tiles::{TILE_BYTES, tile_path};
    let s = Server::start();
    let auditor = s.api_key(Role::Auditor);
    let head = s.grow(300);
    let n = head.head.tree_size;
    assert!(n > 256, "the test needs a full tile: {n}");
    let note = s.get("/tlog/checkpoint", &auditor);
    assert_eq!(note.status, 200);
    assert!(note.headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/plain")), "{:?}", note.headers);
    let text = String::from_utf8(note.body).unwrap();
    assert_eq!(text.lines().nth(1), Some(n.to_string().as_str()), "{text}");

    let fetch = |level: u32, index: u64, width: usize| {
        let r = s.get(&format!("/{}", tile_path(level, index, width)).replace("/tile/", "/tlog/tile/"), &auditor);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.body.len(), width * 32);
        r.body.chunks_exact(32).map(|c| <Hash>::try_from(c).unwrap()).collect::<Vec<Hash>>()
    };
    let mut tree = consentry_ledger::merkle::Tree::new();
    for t in 0..n / 256 {
        fetch(0, t, 256).into_iter().for_each(|h| tree.push(h));
    }
    fetch(0, n / 256, (n % 256) as usize).into_iter().for_each(|h| tree.push(h));
    assert_eq!(tree.root(n), Some(head.head.root_hash), "the tiles rebuild the signed root");
    // A level-1 tile holds the roots of level-0 tiles.
    assert_eq!(fetch(1, 0, (n / 256) as usize)[0], tree.root(256).unwrap());
    // Each leaf is the hash of the entry the service shows for it.
    let p = ok_json(&s.get("/v1/log/proofs/inclusion?seq=200", &auditor));
    assert_eq!(tree.leaf(199), Some(leaf_of(&p["entry"])));

    let full = s.get("/tlog/tile/0/000", &auditor);
    assert_eq!(full.body.len(), TILE_BYTES);
    assert!(full.headers.iter().any(|(k, v)| k == "content-type" && v == "application/octet-stream"));
    problem(&s.get(&format!("/tlog/tile/0/{:03}", n / 256 + 1), &auditor), 404, "not-found");
    problem(&s.get(&format!("/tlog/tile/0/{:03}.p/255", n / 256), &auditor), 404, "not-found");
    for bad in ["0/1", "9/000", "0/000.p/0", "0/000.p/256", "0/x000/001", "entries/000", "0/..%2F000"] {
        problem(&s.get(&format!("/tlog/tile/{bad}"), &auditor), 400, "bad-input");
    }
    assert_eq!(s.get("/tlog/tile/0/000", "").status, 401, "tiles are evidence: a key reads them");
}

#[test]
fn bad_positions_and_queries_are_problems() {
    let s = Server::start();
    let op = s.api_key(Role::Operator);
    let len = s.session.ledger().unwrap().store().len().unwrap();
    for (path, status, slug) in [
        ("/v1/log/proofs/inclusion?seq=0".to_string(), 400, "bad-input"),
        ("/v1/log/proofs/inclusion?seq=abc".to_string(), 400, "bad-input"),
        ("/v1/log/proofs/inclusion".to_string(), 400, "bad-input"),
        ("/v1/log/proofs/inclusion?seq=1&size=2&extra=1".to_string(), 400, "bad-input"),
        (format!("/v1/log/proofs/inclusion?seq={}&size={len}", len + 1), 400, "bad-input"),
        (format!("/v1/log/proofs/inclusion?seq=1&size={}", len + 1), 404, "not-found"),
        ("/v1/log/proofs/consistency?from=-1".to_string(), 400, "bad-input"),
        (format!("/v1/log/proofs/consistency?from={len}&to=1"), 400, "bad-input"),
        (format!("/v1/log/proofs/consistency?from=1&to={}", len + 1), 404, "not-found"),
        ("/v1/log/receipts/abc".to_string(), 400, "bad-input"),
        (format!("/v1/log/receipts/{}", len + 1), 404, "not-found"),
        ("/v1/log/receipts/0".to_string(), 404, "not-found"),
        ("/v1/audits/nope".to_string(), 404, "not-found"),
        ("/v1/audits/..%2Fapi-keys".to_string(), 404, "not-found"),
    ] {
        problem(&s.get(&path, &op), status, slug);
    }
    assert_eq!(s.session.ledger().unwrap().store().len().unwrap(), len, "nothing written");
}

#[test]
fn members_are_refused_auditors_read_evidence_only_operators_do_both() {
    let s = Server::start();
    let member = s.token(A);
    let auditor = s.api_key(Role::Auditor);
    let operator = s.api_key(Role::Operator);
    let evidence = [
        "/v1/log/checkpoint",
        "/v1/log/checkpoints",
        "/v1/log/checkpoints/154",
        "/v1/log/proofs/inclusion?seq=1",
        "/v1/log/proofs/consistency?from=1",
        "/v1/log/receipts/1",
        "/v1/evidence/bundle",
    ];
    for path in evidence {
        problem(&s.get(path, &member), 403, "forbidden");
        assert_eq!(s.get(path, &auditor).status, 200, "auditor on {path}");
        assert_eq!(s.get(path, &operator).status, 200, "operator on {path}");
        problem(&request(s.addr, "GET", path, &[], b""), 401, "unauthenticated");
    }
    // The public key is public: a member's browser checks their receipts with it.
    for who in [&member, &auditor, &operator] {
        assert_eq!(s.get("/v1/log/public-key", who).status, 200);
    }
    assert_eq!(request(s.addr, "GET", "/v1/log/public-key", &[], b"").status, 200);
    // Audit runs are the operator's: a member or an auditor key neither runs one nor reads them.
    for token in [&member, &auditor] {
        problem(&s.post("/v1/audits", token, &[], ""), 403, "forbidden");
        problem(&s.get("/v1/audits", token), 403, "forbidden");
        problem(&s.get("/v1/audits/1-00", token), 403, "forbidden");
    }
    // Evidence routes are read-only, whoever asks, and an auditor key writes no consent either.
    let len = s.session.ledger().unwrap().store().len().unwrap();
    for path in ["/v1/log/checkpoint", "/v1/evidence/bundle", "/v1/log/receipts/1"] {
        assert_eq!(s.post(path, &auditor, &[], "").status, 405, "{path}");
    }
    let body = br#"{"state": "withdrawn", "notice_version": 1}"#;
    let put = request(
        s.addr,
        "PUT",
        &format!("/v1/me/consents/{JOBS}"),
        &[("Authorization", &format!("Bearer {auditor}")), ("Content-Type", "application/json")],
        body,
    );
    problem(&put, 403, "forbidden");
    assert_eq!(s.session.ledger().unwrap().store().len().unwrap(), len, "nothing appended");
    assert!(!s.data().audit_runs_dir().exists(), "no audit run recorded");
}

/// Polls `GET /v1/audits/{id}` until the run is no longer running.
fn finished_run(s: &Server, token: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let run = ok_json(&s.get(&format!("/v1/audits/{id}"), token));
        if run["status"] != "running" {
            return run;
        }
        assert!(std::time::Instant::now() < deadline, "the audit still runs: {run}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn an_operator_starts_an_audit_polls_it_and_the_run_is_recorded_signed() {
    let s = Server::start();
    let operator = s.api_key(Role::Operator);
    let key_id = s.session.list_api_keys().unwrap().into_iter().next().unwrap().id;
    let r = s.post("/v1/audits", &operator, &[], "");
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let started = r.json();
    assert_eq!(started["status"], "running", "{started}");
    assert_eq!(started["requested_by"], format!("operator key {key_id}"));
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), Some(format!("/v1/audits/{id}").as_str()));

    let run = finished_run(&s, &operator, &id);
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!((run["ok"].as_bool(), run["violations"].as_u64()), (Some(true), Some(0)), "{run}");
    assert_eq!(run["started"], started["started"]);
    assert_eq!(run["run"]["requested_by"], format!("operator key {key_id}"));
    assert_eq!(run["run"]["report"]["mode"], "online");
    assert!(run["run"]["report"]["findings"].is_array());
    assert_eq!(run["run"]["log_entries"], s.session.ledger().unwrap().store().len().unwrap());

    let listed = ok_json(&s.get("/v1/audits", &operator));
    assert_eq!(listed["runs"].as_array().unwrap().len(), 1);
    assert_eq!(listed["runs"][0]["id"], id.as_str());
    assert_eq!(listed["runs"][0]["status"], "done");
    assert!(listed["runs"][0].get("run").is_none(), "a list carries no reports");

    // Red team: a record edited on disk (here its requester) is refused, not shown.
    let file = s.data().audit_runs_dir().join(format!("{id}.json"));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("\"requested_by\": \"operator", "\"requested_by\": \"auditor", 1)).unwrap();
    problem(&s.get(&format!("/v1/audits/{id}"), &operator), 422, "integrity");
    problem(&s.get("/v1/audits", &operator), 422, "integrity");
}

#[test]
fn an_audit_that_cannot_run_is_recorded_as_failed_with_why() {
    let s = Server::start();
    let operator = s.api_key(Role::Operator);
    // The models directory replaced by a file: the audit cannot read the model it must check.
    let models = s.data().models_dir();
    std::fs::remove_dir_all(&models).unwrap();
    std::fs::write(&models, "not a directory").unwrap();
    let r = s.post("/v1/audits", &operator, &[], "");
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let run = finished_run(&s, &operator, r.json()["id"].as_str().unwrap());
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("model.json"), "{run}");
    assert!(run.get("ok").is_none(), "no verdict: {run}");
}

#[test]
fn a_run_whose_process_died_reads_as_interrupted() {
    let s = Server::start();
    let operator = s.api_key(Role::Operator);
    // What a process killed mid-audit leaves: the begun run's ticket, with nobody holding its lock.
    let dir = s.data().audit_runs_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let ticket = r#"{"id": "1700000000-0badc0de", "started": 1700000000, "requested_by": "operator key k1"}"#;
    std::fs::write(dir.join("1700000000-0badc0de.running"), ticket).unwrap();
    let run = ok_json(&s.get("/v1/audits/1700000000-0badc0de", &operator));
    assert_eq!(run["status"], "interrupted", "{run}");
    assert!(run.get("ok").is_none(), "no verdict: {run}");
    let listed = ok_json(&s.get("/v1/audits", &operator));
    assert_eq!(listed["runs"][0]["status"], "interrupted");
}

#[test]
fn the_bundle_download_passes_the_offline_audit() {
    let s = Server::start();
    let auditor = s.api_key(Role::Auditor);
    let r = s.get("/v1/evidence/bundle", &auditor);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    let disposition = r.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment; filename=\"consentry-evidence-") && disposition.ends_with(".tar\""));
    let out = tempfile::tempdir().unwrap();
    tar::Archive::new(r.body.as_slice()).unpack(out.path()).unwrap();
    let tops: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(tops.len(), 1, "one top directory: {tops:?}");
    assert!(tops[0].join("INDEX.json").is_file() && tops[0].join("ledger/events.jsonl").is_file());
    let opts = consentry_audit::AuditOptions {
        public_key: Some(s.public_key()),
        known_heads: vec![sth(&ok_json(&s.get("/v1/log/checkpoint", &auditor)))],
        ..consentry_audit::AuditOptions::at(consentry_ledger::now())
    };
    let report = consentry_app::audit::audit_bundle(&tops[0], &opts).unwrap();
    assert!(report.ok, "{}", report.render());
    assert!(report.ledger.events > 0 && !report.models.is_empty(), "{}", report.render());
    // The temporary export is gone once sent.
    let bundles = s.data().bundles_dir();
    assert!(!bundles.exists() || std::fs::read_dir(bundles).unwrap().next().is_none());
}

#[test]
fn red_team_a_proof_never_vouches_for_an_altered_entry() {
    let s = Server::start();
    let auditor = s.api_key(Role::Auditor);
    let head = sth(&ok_json(&s.get("/v1/log/checkpoint", &auditor)));
    let seq = head.head.tree_size;
    let p = ok_json(&s.get(&format!("/v1/log/proofs/inclusion?seq={seq}"), &auditor));
    assert_eq!(p["entry"]["kind"], "consent", "{p}");
    let proof = hashes(&p["proof"]);
    // The client's copy of the entry says another member, or the opposite choice: the proof no longer holds.
    let mut event: Event = serde_json::from_value(p["entry"]["event"].clone()).unwrap();
    assert!(verify_inclusion(seq - 1, seq, &event.leaf_hash().unwrap(), &proof, &head.head.root_hash));
    event.body.member_id += 1;
    assert!(!verify_inclusion(seq - 1, seq, &event.leaf_hash().unwrap(), &proof, &head.head.root_hash));
    event.body.member_id -= 1;
    event.body.action = match event.body.action {
        consentry_policy::Action::Grant => consentry_policy::Action::Withdraw,
        consentry_policy::Action::Withdraw => consentry_policy::Action::Grant,
    };
    assert!(!verify_inclusion(seq - 1, seq, &event.leaf_hash().unwrap(), &proof, &head.head.root_hash));

    // The log altered on disk behind the service's back: no proof, no receipt, an integrity problem instead.
    let fresh = Server::restart_on_altered(s, seq);
    let body = problem(&fresh.get(&format!("/v1/log/proofs/inclusion?seq={seq}"), &auditor), 422, "integrity");
    assert!(body["detail"].as_str().unwrap().contains("tampered"), "{body}");
    problem(&fresh.get(&format!("/v1/log/receipts/{seq}"), &auditor), 422, "integrity");
}

impl Server {
    /// Stops `s`, changes entry `seq`'s member id in the SQLite store and serves the altered copy.
    fn restart_on_altered(mut s: Server, seq: u64) -> Server {
        let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
        let data = s.data().root().to_path_buf();
        drop(s);
        let conn = rusqlite::Connection::open(DataDir::new(&data).ledger_db()).unwrap();
        let changed = conn
            .execute("UPDATE events SET member_id = member_id + 1 WHERE seq = ?1", [i64::try_from(seq).unwrap()])
            .unwrap();
        assert_eq!(changed, 1);
        drop(conn);
        Server::on(dir, &data, consentry_server::router)
    }
}

#[test]
fn the_openapi_document_lists_every_evidence_path_with_its_problems() {
    // The document as served: the module's paths with the responses the layers add to every operation.
    let doc = serde_json::to_value(consentry_server::openapi::openapi()).unwrap();
    for path in [
        "/v1/log/checkpoint",
        "/v1/log/checkpoints",
        "/v1/log/checkpoints/{size}",
        "/v1/log/public-key",
        "/v1/log/proofs/inclusion",
        "/v1/log/proofs/consistency",
        "/v1/log/receipts/{seq}",
        "/tlog/checkpoint",
        "/tlog/tile/{path}",
        "/v1/evidence/bundle",
        "/v1/audits",
        "/v1/audits/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing: {}", doc["paths"]);
    }
    assert!(doc["paths"]["/v1/audits"]["post"]["responses"]["202"].is_object());
    assert!(doc["paths"]["/v1/log/checkpoint"]["get"]["responses"]["403"].is_object());
    let schemas = &doc["components"]["schemas"];
    for name in [
        "SignedTreeHead",
        "InclusionProof",
        "ConsistencyProof",
        "AuditRun",
        "AuditRecord",
        "AuditStatus",
        "Problem",
        "LogEntry",
        "PublicKey",
    ] {
        assert!(schemas[name].is_object(), "schema {name} missing: {schemas}");
    }
    assert!(schemas["Problem"]["properties"]["type"].is_object(), "{}", schemas["Problem"]);
    assert_eq!(schemas["InclusionProof"]["properties"]["entry"]["$ref"], "#/components/schemas/LogEntry");
}
