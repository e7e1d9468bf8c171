//! The outbox's webhook delivery (`consentry serve` with a webhook): a crash after the receiver acknowledged a row
//! and before or after its cursor is stored. Delivery is at least once: nothing acknowledged by the outbox is
//! lost, a redelivery carries the id of the first, and the cursor never passes an undelivered row.

use crate::common::{consentry, ok, spawn_serve, text};
use crate::{Expect, data_dir, expect, fault};
use consentry_app::DataDir;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A receiver answering 204 to every POST; records each delivery's `webhook-id`.
fn receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut line, mut id, mut len) = (String::new(), String::new(), 0usize);
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap();
                match k.trim().to_ascii_lowercase().as_str() {
                    "webhook-id" => id = v.trim().to_string(),
                    "content-length" => len = v.trim().parse().unwrap(),
                    _ => {}
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push(id);
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
        }
    });
    (port, log)
}

fn cursor(data: &Path) -> Option<u64> {
    let db = rusqlite::Connection::open(DataDir::new(data).ledger_db()).unwrap();
    db.query_row("SELECT value FROM meta WHERE key = 'outbox.cursor.crm'", [], |r| r.get::<_, String>(0))
        .ok()
        .map(|v| v.parse().unwrap())
}

fn last_outbox_id(data: &Path) -> u64 {
    let db = rusqlite::Connection::open(DataDir::new(data).ledger_db()).unwrap();
    db.query_row("SELECT MAX(id) FROM outbox", [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn deliver(point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    let (port, log) = receiver();
    std::fs::write(tmp.path().join("webhook.secret"), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let config = tmp.path().join("consentry.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nname = \"crm\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_file = \"webhook.secret\"\n\
             retry_initial_ms = 50\nretry_max_ms = 300\ntimeout_ms = 2000\n"
        ),
    )
    .unwrap();
    let serve = |fail: bool| {
        let mut c = crate::common::command(&data);
        c.args(["serve", "--addr", "127.0.0.1:0", "--config", config.to_str().unwrap()]);
        if fail {
            c.env("FAILPOINTS", format!("{point}=return({action})"));
        }
        spawn_serve(&mut c).0
    };
    // The webhook's cursor starts at the end of the outbox (stored by a first start, so the fault hits the
    // delivery, not the attachment); one consent change after it is to be delivered.
    let _ = crate::common::sigterm(serve(false));
    let start_cursor = cursor(&data).expect("the cursor is stored before the service listens");
    let mut child = serve(true);
    ok(&consentry(&data, &crate::common::withdrawal("11", crate::JOBS, "api")));
    let row = last_outbox_id(&data);
    assert!(row > start_cursor);
    let status = {
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{point}: the service never crashed");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "{point}={action}: expected an abort");
    let first = log.lock().unwrap().clone();
    assert_eq!(first.len(), 1, "{point}={action}: delivered once before the crash: {first:?}");
    // After the send, before the cursor: for the outbox that is the old state (the row not yet taken).
    let expected = if point == "outbox::deliver::after_send" { Expect::Old } else { expect(point) };
    match expected {
        Expect::Old => assert_eq!(cursor(&data), Some(start_cursor), "{point}={action}: the cursor stayed"),
        Expect::New => assert_eq!(cursor(&data), Some(row), "{point}={action}: the cursor moved"),
    }
    // Restarted: a row whose cursor was not stored is delivered again, with the same id (the receiver drops the
    // duplicate); the cursor ends past it.
    let child = serve(false);
    wait_until("the cursor to reach the row", || cursor(&data) == Some(row));
    let all = log.lock().unwrap().clone();
    match expected {
        Expect::Old => assert_eq!(all, vec![first[0].clone(), first[0].clone()], "{point}={action}: redelivered"),
        Expect::New => assert_eq!(all, first, "{point}={action}: not delivered twice"),
    }
    let _ = crate::common::sigterm(child);
    let v = consentry(&data, &["ledger", "verify"]);
    assert!(v.status.success(), "{}", text(&v.stderr));
}

fault!(deliver_after_send, "outbox::deliver::after_send", deliver, ["crash"]);
fault!(cursor_before_commit, "ledger::outbox_cursor::before_commit", deliver, ["crash"]);
fault!(cursor_after_commit, "ledger::outbox_cursor::after_commit", deliver, ["crash"]);
