//! Issue 15's acceptance for concurrent consent changes through `consentry serve`: two service processes on one
//! PostgreSQL database keep one chain with every acknowledged change exactly once, and a SIGKILL of the service in
//! the middle of a write stream loses no acknowledged change (SQLite). `bench/serve/run.sh` runs the same checks
//! under full load.

mod common;

use common::{command, ok};
use consentry_app::{DataDir, Session};
use consentry_test_support::http::request;
use consentry_test_support::pg as support;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const PURPOSE: &str = "train_ai_system.job_recommendations";
const MEMBERS: u64 = 12;

/// A data directory with 100 synthetic members imported (on `url`'s PostgreSQL database, or SQLite), and a token
/// for each of the first [`MEMBERS`] members.
fn setup(data: &Path, url: Option<&str>) -> Vec<(u64, String)> {
    let db: Vec<&str> = url.map(|u| vec!["--database", u]).unwrap_or_default();
    let net = DataDir::new(data).network_dir();
    ok(&command(data).args(["--quiet", "synth", "--members", "100", "--seed", "9"]).output().unwrap());
    ok(&command(data).args(&db).args(["--quiet", "ledger", "init"]).output().unwrap());
    let choices = net.join("consent_choices.parquet");
    ok(&command(data)
        .args(&db)
        .args(["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()])
        .output()
        .unwrap());
    let session = Session::open(DataDir::new(data), url).unwrap();
    let now = consentry_ledger::now();
    (1..=MEMBERS).map(|m| (m, session.mint_member_token(m, 600, now).unwrap().token)).collect()
}

/// `consentry serve` on `addr` (port 0: a free one); returns the child and the bound address.
fn serve(data: &Path, url: Option<&str>, addr: &str) -> (Child, SocketAddr) {
    let mut cmd = command(data);
    if let Some(u) = url {
        cmd.args(["--database", u]);
    }
    let mut child = cmd.args(["serve", "--addr", addr]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let bound =
        first.trim().strip_prefix("http://").unwrap_or_else(|| panic!("first line: {first:?}")).parse().unwrap();
    (child, bound)
}

/// One consent change; `Some((seq, duplicate))` when the service acknowledged it (2xx), `None` when the service is
/// unreachable (killed).
fn change(addr: SocketAddr, token: &str, key: &str, grant: bool) -> Option<(u64, bool)> {
    let state = if grant { "granted" } else { "withdrawn" };
    let body = format!("{{\"state\":\"{state}\",\"notice_version\":1}}");
    let auth = format!("Bearer {token}");
    let path = format!("/v1/me/consents/{PURPOSE}");
    let r = std::panic::catch_unwind(|| {
        request(
            addr,
            "PUT",
            &path,
            &[("Authorization", &auth), ("Idempotency-Key", key), ("Content-Type", "application/json")],
            body.as_bytes(),
        )
    })
    .ok()?;
    assert!(r.status == 200 || r.status == 201, "{}: {}", r.status, String::from_utf8_lossy(&r.body));
    let v = r.json();
    Some((v["seq"].as_u64().unwrap(), v["duplicate"].as_bool().unwrap()))
}

/// Every stored consent event's idempotency key, with the positions it is stored at.
fn stored_keys(data: &Path, url: Option<&str>) -> HashMap<String, Vec<u64>> {
    let session = Session::open_read_only(DataDir::new(data), url).unwrap();
    let mut keys: HashMap<String, Vec<u64>> = HashMap::new();
    session
        .ledger()
        .unwrap()
        .store()
        .scan(1, u64::MAX, &mut |s| {
            keys.entry(s.event.body.idempotency_key).or_default().push(s.event.seq);
            Ok(())
        })
        .unwrap();
    keys
}

/// Asserts every acknowledged `(member, key, seq)` is stored exactly once, at its position.
fn assert_all_present_once(acked: &[(u64, String, u64)], stored: &HashMap<String, Vec<u64>>) {
    for (member, key, seq) in acked {
        let full = format!("member:{member}/{key}");
        assert_eq!(stored.get(&full).map(Vec::as_slice), Some(&[*seq][..]), "{full}");
    }
}

fn stop(mut child: Child, signal: &str) {
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success());
    child.wait().unwrap();
}

#[test]
fn two_serve_processes_on_one_postgres_keep_one_chain() {
    let Some(db) = support::pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = Some(db.url.as_str());
    let tokens = setup(&data, url);
    let (a, addr_a) = serve(&data, url, "127.0.0.1:0");
    let (b, addr_b) = serve(&data, url, "127.0.0.1:0");

    // Each member's client alternates between the two processes; every third change is retried on the other one.
    let handles: Vec<_> = tokens
        .into_iter()
        .map(|(member, token)| {
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..12u64 {
                    let key = format!("k{i}");
                    let (first, other) = if (member + i) % 2 == 0 { (addr_a, addr_b) } else { (addr_b, addr_a) };
                    let (seq, duplicate) = change(first, &token, &key, i % 2 == 0).expect("the service answers");
                    assert!(!duplicate, "member {member} {key}");
                    if i % 3 == 0 {
                        assert_eq!(
                            change(other, &token, &key, i % 2 == 0),
                            Some((seq, true)),
                            "a retry is the original"
                        );
                    }
                    acked.push((member, key, seq));
                }
                acked
            })
        })
        .collect();
    let acked: Vec<(u64, String, u64)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    stop(a, "-TERM");
    stop(b, "-TERM");

    assert_eq!(acked.len() as u64, MEMBERS * 12);
    let stored = stored_keys(&data, url);
    assert_all_present_once(&acked, &stored);
    let verify = ok(&command(&data).args(["--database", &db.url, "ledger", "verify"]).output().unwrap());
    assert!(verify.starts_with("ok:"), "{verify}");
}

#[test]
fn a_sigkill_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tokens = setup(&data, None);
    let (server, addr) = serve(&data, None, "127.0.0.1:0");

    let killed = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = tokens
        .into_iter()
        .map(|(member, token)| {
            let (killed, count) = (Arc::clone(&killed), Arc::clone(&count));
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0.. {
                    let key = format!("s{i}");
                    match change(addr, &token, &key, i % 2 == 0) {
                        Some((seq, _)) => {
                            acked.push((member, key, seq));
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        None if killed.load(Ordering::SeqCst) => break,
                        None => panic!("the service failed before it was killed"),
                    }
                }
                acked
            })
        })
        .collect();
    // Kill mid-stream, once a few hundred writes were acknowledged.
    let started = std::time::Instant::now();
    while count.load(Ordering::SeqCst) < 300 && started.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    killed.store(true, Ordering::SeqCst);
    stop(server, "-KILL");
    let acked: Vec<(u64, String, u64)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert!(acked.len() >= 250, "only {} writes were acknowledged", acked.len());

    // Restart: the service opens the ledger (verifying it) and serves again; everything acknowledged is there once.
    let (server, addr) = serve(&data, None, "127.0.0.1:0");
    let (member, token) = (acked[0].0, setup_token(&data, acked[0].0));
    let r = request(addr, "GET", "/v1/me/history?limit=1", &[("Authorization", &format!("Bearer {token}"))], b"");
    assert_eq!(r.status, 200, "member {member}: {}", String::from_utf8_lossy(&r.body));
    stop(server, "-TERM");
    assert_all_present_once(&acked, &stored_keys(&data, None));
    let verify = ok(&command(&data).args(["ledger", "verify"]).output().unwrap());
    assert!(verify.starts_with("ok:"), "{verify}");
}

/// A fresh token for `member` (the data directory's token key is already made).
fn setup_token(data: &Path, member: u64) -> String {
    let session = Session::open(DataDir::new(data), None).unwrap();
    session.mint_member_token(member, 600, consentry_ledger::now()).unwrap().token
}
