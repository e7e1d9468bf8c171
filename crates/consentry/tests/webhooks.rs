//! The acceptance's webhook test, on the real binary: `consentry serve --config` with a webhook whose receiver is
//! down at first (connection refused), comes up, and is slow; the server is killed with SIGKILL mid-stream and
//! started again. At the end every consent change made through the API has arrived, every delivery's signature
//! verifies, and the duplicates the kill causes carry the id of their first delivery (and the same body), so the
//! receiver drops them. `GET /v1/events` serves the same rows to an operator and long-polls. On PostgreSQL, two
//! `serve` processes deliver to one webhook and every change arrives.

mod common;

use common::*;
use consentry_app::webhooks::{TIMESTAMP_TOLERANCE_SECS, secret_bytes, verify_webhook_signature};
use consentry_test_support::http::request;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const JOBS: &str = "train_ai_system.job_recommendations";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    body: String,
    verified: bool,
}

type Log = Arc<Mutex<Vec<Delivery>>>;

/// A webhook receiver on `listener`: reads each POST, checks its signature, records it, waits `slow`, answers 204.
fn receive(listener: TcpListener, log: Log, slow: Duration) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut headers = BTreeMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with("POST /hook "), "{line}");
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap();
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
            let len: usize = headers["content-length"].parse().unwrap();
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            let verified = verify_webhook_signature(
                &secret_bytes(SECRET),
                &headers["webhook-id"],
                &headers["webhook-timestamp"],
                &body,
                &headers["webhook-signature"],
                consentry_ledger::now(),
                TIMESTAMP_TOLERANCE_SECS,
            )
            .is_ok();
            log.lock().unwrap().push(Delivery {
                id: headers["webhook-id"].clone(),
                body: String::from_utf8(body).unwrap(),
                verified,
            });
            std::thread::sleep(slow);
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
        }
    });
}

/// Starts `consentry serve --config` on port 0 and returns it with its address.
fn serve_with(data: &Path, config: &Path) -> (Child, SocketAddr) {
    spawn_serve(command(data).args(["serve", "--addr", "127.0.0.1:0", "--config", config.to_str().unwrap()]))
}

/// Changes member `token`'s consent to `state` through the API and returns the ledger position.
fn change(addr: SocketAddr, token: &str, state: &str, notice: u64) -> u64 {
    let body = format!(r#"{{"state": "{state}", "notice_version": {notice}}}"#);
    let auth = format!("Bearer {token}");
    let r = request(
        addr,
        "PUT",
        &format!("/v1/me/consents/{JOBS}"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", text(&r.body));
    r.json()["seq"].as_u64().unwrap()
}

/// Writes a configuration with one webhook `crm` to `http://127.0.0.1:{port}/hook` and short retries.
fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    std::fs::write(dir.join("webhook.secret"), SECRET).unwrap();
    let config = dir.join("consentry.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nname = \"crm\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_file = \"webhook.secret\"\n\
             retry_initial_ms = 50\nretry_max_ms = 300\ntimeout_ms = 2000\n"
        ),
    )
    .unwrap();
    config
}

/// The job-recommendation notice version in force, as the member API shows it.
fn jobs_notice(addr: SocketAddr, token: &str) -> u64 {
    let consents = request(addr, "GET", "/v1/me/consents", &[("Authorization", &format!("Bearer {token}"))], b"");
    consents.json()["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == JOBS)
        .map(|p| p["notice"]["version"].as_u64().unwrap())
        .unwrap()
}

/// The ledger positions the receiver has heard of.
fn arrived(log: &Log) -> BTreeSet<u64> {
    log.lock()
        .unwrap()
        .iter()
        .map(|d| serde_json::from_str::<Value>(&d.body).unwrap()["data"]["seq"].as_u64().unwrap())
        .collect()
}

/// Checks every delivery's signature and that duplicates carry the id and data of their first delivery; returns
/// the ledger positions of the distinct ids and how many deliveries were duplicates.
fn dedupe(log: &Log) -> (BTreeSet<u64>, usize) {
    let deliveries = log.lock().unwrap().clone();
    assert!(deliveries.iter().all(|d| d.verified), "a signature did not verify: {deliveries:?}");
    let mut by_id: BTreeMap<&str, &str> = BTreeMap::new();
    let mut duplicates = 0;
    for d in &deliveries {
        let v: Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(v["id"].to_string(), d.id, "the webhook-id is the body's id");
        assert_eq!(v["type"], "consent.changed");
        if let Some(first) = by_id.insert(&d.id, &d.body) {
            duplicates += 1;
            let (a, b): (Value, Value) = (serde_json::from_str(first).unwrap(), v);
            assert_eq!(a["data"], b["data"], "a redelivery of {} changed its data", d.id);
        }
    }
    let seqs: Vec<u64> =
        by_id.values().map(|b| serde_json::from_str::<Value>(b).unwrap()["data"]["seq"].as_u64().unwrap()).collect();
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "two ids for one change");
    (unique, duplicates)
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_change_arrives_signed_through_a_dead_receiver_and_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1"), &data);
    // A port nobody listens on yet: the receiver is down (connection refused) until it binds it.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = write_config(dir.path(), port);
    let tokens: Vec<String> = [5, 6]
        .iter()
        .map(|m| ok(&consentry(&data, &["token", "--member", &m.to_string()])).trim().to_string())
        .collect();
    let operator = ok(&consentry(&data, &["keys", "create", "--role", "operator", "--name", "crm"])).trim().to_string();

    let (mut server, addr) = serve_with(&data, &config);
    let notice = jobs_notice(addr, &tokens[0]);
    let mut expected: BTreeSet<u64> = BTreeSet::new();
    for i in 0..10 {
        let state = if i % 2 == 0 { "granted" } else { "withdrawn" };
        expected.insert(change(addr, &tokens[i % 2], state, notice));
    }
    // Deliveries fail (nobody listens) and are retried.
    std::thread::sleep(Duration::from_millis(600));

    // The receiver comes up, slow: the kill lands while the first round is being delivered.
    let log: Log = Arc::default();
    receive(TcpListener::bind(("127.0.0.1", port)).unwrap(), Arc::clone(&log), Duration::from_millis(150));
    wait_until("the first deliveries", Duration::from_secs(20), || log.lock().unwrap().len() >= 3);
    server.kill().unwrap();
    server.wait().unwrap();
    let before_restart = log.lock().unwrap().len();
    assert!(before_restart < 10, "the kill came after the whole stream ({before_restart} deliveries)");

    let (mut server, addr) = serve_with(&data, &config);
    for i in 0..4 {
        let state = if i % 2 == 0 { "withdrawn" } else { "granted" };
        expected.insert(change(addr, &tokens[i % 2], state, notice));
    }
    wait_until("every change to arrive", Duration::from_secs(30), || arrived(&log).is_superset(&expected));
    let (unique, duplicates) = dedupe(&log);
    assert!(duplicates >= 1, "the kill mid-stream leaves rows delivered but not yet acknowledged in the store");
    assert_eq!(unique, expected, "one row per change, none missing, none extra");

    // The same rows for a consumer that pulls, with an operator key; a member may not.
    let auth = format!("Bearer {operator}");
    let r = request(addr, "GET", "/v1/events?after=0&limit=1000", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let page = r.json();
    let pulled: BTreeSet<u64> =
        page["events"].as_array().unwrap().iter().map(|e| e["data"]["seq"].as_u64().unwrap()).collect();
    assert_eq!(pulled, expected);
    let last = page["next_after"].as_u64().unwrap();
    let member = request(addr, "GET", "/v1/events", &[("Authorization", &format!("Bearer {}", tokens[0]))], b"");
    assert_eq!(member.status, 403, "{}", text(&member.body));
    let r = request(addr, "GET", "/v1/events?wait=31", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 400);
    // A long poll past the end answers as soon as a change is made.
    let poll = std::thread::spawn(move || {
        let started = Instant::now();
        let r = request(addr, "GET", &format!("/v1/events?after={last}&wait=20"), &[("Authorization", &auth)], b"");
        (r, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let seq = change(addr, &tokens[1], "withdrawn", notice);
    let (r, took) = poll.join().unwrap();
    assert_eq!(r.status, 200);
    let events = r.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["seq"], seq);
    assert_eq!(events[0]["id"], last + 1);
    assert!(took < Duration::from_secs(10), "the long poll waited {took:?} after a change");

    server.kill().unwrap();
    server.wait().unwrap();
}

/// Two `serve` processes on one PostgreSQL database, each delivering to the same webhook while members change
/// consent through both: every change arrives exactly once by id (the processes may both deliver a row: the
/// duplicates carry its id), and the outbox ids a pulling consumer reads are gap-free.
#[test]
fn two_serve_processes_on_postgres_deliver_every_change() {
    let Some(db) = consentry_test_support::pg::pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let net = dir.path().join("net");
    ok(&consentry(&data, &["--quiet", "synth", "--members", "200", "--seed", "4", "--out", net.to_str().unwrap()]));
    let on_pg = |args: &[&str]| ok(&command(&data).arg("--database").arg(&db.url).args(args).output().unwrap());
    on_pg(&["--quiet", "ledger", "init"]);
    let choices = net.join("consent_choices.parquet");
    on_pg(&["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]);
    let tokens: Vec<String> =
        [5, 6].iter().map(|m| on_pg(&["token", "--member", &m.to_string()]).trim().to_string()).collect();
    let operator = on_pg(&["keys", "create", "--role", "operator"]).trim().to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = write_config(dir.path(), listener.local_addr().unwrap().port());
    let log: Log = Arc::default();
    receive(listener, Arc::clone(&log), Duration::ZERO);
    let start = || {
        spawn_serve(command(&data).arg("--database").arg(&db.url).args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ]))
    };
    let (mut a, addr_a) = start();
    let (mut b, addr_b) = start();
    let notice = jobs_notice(addr_a, &tokens[0]);
    let expected: BTreeSet<u64> = (0..12)
        .map(|i| {
            let state = if i % 3 == 0 { "withdrawn" } else { "granted" };
            change(if i % 2 == 0 { addr_a } else { addr_b }, &tokens[i % 2], state, notice)
        })
        .collect();
    wait_until("every change to arrive", Duration::from_secs(30), || arrived(&log).is_superset(&expected));
    let (unique, _) = dedupe(&log);
    assert_eq!(unique, expected);
    let auth = format!("Bearer {operator}");
    // The import's rows come first; a consumer pages through everything with `next_after`.
    let mut events: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let page =
            request(addr_b, "GET", &format!("/v1/events?after={after}&limit=500"), &[("Authorization", &auth)], b"")
                .json();
        let rows = page["events"].as_array().unwrap();
        if rows.is_empty() {
            break;
        }
        events.extend(rows.iter().cloned());
        after = page["next_after"].as_u64().unwrap();
    }
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "gap-free ids from 1");
    let pulled: BTreeSet<u64> = events.iter().map(|e| e["data"]["seq"].as_u64().unwrap()).collect();
    assert!(pulled.is_superset(&expected));
    for child in [&mut a, &mut b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// Found by the soak (bench/soak): `serve` on PostgreSQL with a webhook, stopped by SIGTERM, aborted ("panic in a
/// destructor during cleanup", SIGABRT) instead of exiting 0: the delivery task held the last handle on the store,
/// and the runtime's shutdown dropped it on a worker thread, where the synchronous PostgreSQL client cannot close
/// its connection. The same stop without a webhook must exit 0 too.
#[test]
fn serve_on_postgres_stops_with_exit_0_on_sigterm_with_and_without_a_webhook() {
    let Some(db) = consentry_test_support::pg::pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let net = dir.path().join("net");
    ok(&consentry(&data, &["--quiet", "synth", "--members", "50", "--seed", "4", "--out", net.to_str().unwrap()]));
    let on_pg = |args: &[&str]| ok(&command(&data).arg("--database").arg(&db.url).args(args).output().unwrap());
    on_pg(&["--quiet", "ledger", "init"]);
    let choices = net.join("consent_choices.parquet");
    on_pg(&["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]);
    let token = on_pg(&["token", "--member", "5"]).trim().to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = write_config(dir.path(), listener.local_addr().unwrap().port());
    let log: Log = Arc::default();
    receive(listener, Arc::clone(&log), Duration::ZERO);
    for with_webhook in [true, false] {
        let mut serve = command(&data);
        serve.arg("--database").arg(&db.url).args(["serve", "--addr", "127.0.0.1:0"]);
        if with_webhook {
            serve.arg("--config").arg(&config);
        }
        let (child, addr) = spawn_serve(&mut serve);
        let notice = jobs_notice(addr, &token);
        let seq = change(addr, &token, "granted", notice);
        if with_webhook {
            wait_until("the change to arrive", Duration::from_secs(30), || arrived(&log).contains(&seq));
        }
        let status = sigterm(child);
        assert_eq!(status.code(), Some(0), "with a webhook: {with_webhook}: {status}");
    }
}
