//! `consentry serve` stopped by SIGTERM while members are writing: the process exits 0, every write it
//! acknowledged is in the ledger exactly once, the ledger verifies, and its JSON log (`--log-format json`) has the
//! startup, request and shutdown lines.

mod common;

use common::*;
use consentry_app::{DataDir, Session};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REPLIES: &str = "train_ai_system.reply_suggestions";

/// One PUT; `None` when the connection fails (the service stopped accepting), never a panic.
fn try_put(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut head =
        format!("PUT {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split(' ').nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

#[test]
fn sigterm_during_writes_loses_no_acknowledged_one_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1"), &data);
    let members = [5u64, 6];
    let tokens: Vec<(u64, String)> = members
        .iter()
        .map(|m| (*m, ok(&consentry(&data, &["token", "--member", &m.to_string()])).trim().to_string()))
        .collect();

    let log = dir.path().join("serve.log");
    let mut child = command(&data)
        .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--rate-limit", "0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr: SocketAddr = first.trim().strip_prefix("http://").unwrap().parse().unwrap();

    // Writers: each alternates grant and withdraw with its own idempotency keys until the service stops answering.
    let acked = Arc::new(Mutex::new(Vec::<(u64, u64, String)>::new()));
    let signalled = Arc::new(AtomicBool::new(false));
    let after_signal = Arc::new(Mutex::new(0usize));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (member, token) = tokens[w % tokens.len()].clone();
            let (acked, signalled, after_signal) = (acked.clone(), signalled.clone(), after_signal.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let key = format!("shutdown-{w}-{i}");
                    let state = if i % 2 == 0 { "granted" } else { "withdrawn" };
                    let body = format!(r#"{{"state": "{state}", "notice_version": 2}}"#);
                    let auth = format!("Bearer {token}");
                    let headers = [
                        ("Authorization", auth.as_str()),
                        ("Content-Type", "application/json"),
                        ("Idempotency-Key", key.as_str()),
                    ];
                    let sent_before_signal = !signalled.load(Ordering::SeqCst);
                    match try_put(addr, &format!("/v1/me/consents/{REPLIES}"), &headers, &body) {
                        Some((201, body)) => {
                            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                            acked.lock().unwrap().push((v["seq"].as_u64().unwrap(), member, key));
                            if sent_before_signal && signalled.load(Ordering::SeqCst) {
                                *after_signal.lock().unwrap() += 1;
                            }
                        }
                        // Refused or cut off once the service stops: not acknowledged, so not promised.
                        None | Some((503, _)) => return,
                        Some((status, body)) => panic!("{status}: {body}"),
                    }
                }
            })
        })
        .collect();

    let start = Instant::now();
    while acked.lock().unwrap().len() < 40 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    signalled.store(true, Ordering::SeqCst);
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(status.code(), Some(0), "{status:?}: {}", std::fs::read_to_string(&log).unwrap());

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40, "only {} writes acknowledged", acked.len());
    eprintln!("{} writes acknowledged, {} of them answered after SIGTERM", acked.len(), after_signal.lock().unwrap());
    let session = Session::open(DataDir::new(&data), None).unwrap();
    let store = session.ledger().unwrap().store();
    for (seq, member, key) in &acked {
        let stored = store.event(*seq).unwrap().unwrap_or_else(|| panic!("acknowledged event {seq} is missing"));
        assert_eq!(stored.event.body.member_id, *member);
        assert_eq!(stored.event.body.idempotency_key, format!("member:{member}/{key}"));
    }
    let seqs: std::collections::BTreeSet<u64> = acked.iter().map(|a| a.0).collect();
    assert_eq!(seqs.len(), acked.len(), "two acknowledgements name one event");
    ok(&consentry(&data, &["ledger", "verify"]));

    // The JSON log: startup, one line per request, the stop; every line parses.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.first().is_some_and(|l| l["message"].as_str().unwrap().starts_with("consentry serving")), "{text}");
    assert_eq!(lines.last().unwrap()["message"], "consentry serve stopped", "{text}");
    let requests = lines.iter().filter(|l| l["message"] == "request" && l["status"] == 201).count();
    assert!(requests >= acked.len(), "{requests} request lines for {} acknowledged writes", acked.len());
    for (_, token) in &tokens {
        assert!(!text.contains(token.as_str()), "a token is in the log");
    }
}
