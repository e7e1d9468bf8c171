//! A load generator for `consentry serve`, std only: each client is a thread with one keep-alive HTTP/1.1
//! connection (reconnecting after an error). Used by `bench/serve/run.sh`.
//!
//! ```text
//! consentry-loadgen reads  ADDR TOKENS CLIENTS SECONDS
//! consentry-loadgen writes ADDR TOKENS CLIENTS SECONDS PURPOSE NOTICE ACKS
//! consentry-loadgen check  ADDR TOKENS ACKS
//! ```
//!
//! `TOKENS` has one `MEMBER TOKEN` per line. `reads` sends `GET /v1/me/consents`, rotating over the tokens;
//! `writes` sends `PUT /v1/me/consents/PURPOSE` (granted and withdrawn in turn) with a fresh `Idempotency-Key`
//! per request and appends `MEMBER SEQ KEY` to `ACKS` for every 2xx answer, as it arrives; both print one
//! line of figures (requests/s, latency percentiles, errors). `check` pages through every acknowledged member's
//! `GET /v1/me/history` and fails unless each acknowledged write is there exactly once, at its sequence number.

use bench_http::{Conn, Res, addr, tokens};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a client waits for a response.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What one client measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    non_2xx: u64,
    errors: u64,
}

fn report(what: &str, clients: usize, elapsed: f64, tallies: Vec<Tally>) {
    let mut all: Vec<u32> = Vec::new();
    let (mut ok, mut bad, mut errors) = (0, 0, 0);
    for t in tallies {
        all.extend(t.latencies_us);
        ok += t.ok;
        bad += t.non_2xx;
        errors += t.errors;
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        f64::from(all[i]) / 1000.0
    };
    println!(
        "{what}: clients={clients} seconds={elapsed:.1} ok={ok} rps={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} non_2xx={bad} errors={errors}",
        ok as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
}

/// Runs `clients` threads for `seconds`, each calling `step(client, i, conn, tally)` in a loop.
fn drive(
    clients: usize,
    seconds: f64,
    step: impl Fn(usize, u64, &mut Conn, &mut Tally) + Send + Sync + 'static,
    target: SocketAddr,
) -> (f64, Vec<Tally>) {
    let stop = Arc::new(AtomicBool::new(false));
    let step = Arc::new(step);
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (stop, step) = (Arc::clone(&stop), Arc::clone(&step));
            std::thread::spawn(move || {
                let mut conn = Conn::new(target, READ_TIMEOUT);
                let mut tally = Tally::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    step(c, i, &mut conn, &mut tally);
                    i += 1;
                }
                tally
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let tallies = handles.into_iter().map(|h| h.join().unwrap_or_default()).collect();
    (start.elapsed().as_secs_f64(), tallies)
}

fn timed(tally: &mut Tally, f: impl FnOnce() -> Res<(u16, Vec<u8>)>) -> Option<Vec<u8>> {
    let t = Instant::now();
    let out = f();
    let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
    match out {
        Ok((s, body)) if (200..300).contains(&s) => {
            tally.latencies_us.push(us);
            tally.ok += 1;
            Some(body)
        }
        Ok(_) => {
            tally.non_2xx += 1;
            None
        }
        Err(_) => {
            tally.errors += 1;
            // The server is down (a kill test): do not spin.
            std::thread::sleep(Duration::from_millis(20));
            None
        }
    }
}

fn reads(args: &[String]) -> Res<()> {
    let [a, toks, clients, seconds] = args else { return Err("reads ADDR TOKENS CLIENTS SECONDS".into()) };
    let target = addr(a)?;
    let toks: Arc<Vec<String>> = Arc::new(tokens(Path::new(toks))?.into_iter().map(|(_, t)| format!("Authorization: Bearer {t}\r\n")).collect());
    let clients: usize = clients.parse().map_err(|_| "CLIENTS must be a number")?;
    let n = toks.len();
    let (elapsed, tallies) = drive(
        clients,
        seconds.parse().map_err(|_| "SECONDS must be a number")?,
        move |c, i, conn, tally| {
            let h = &toks[(c * 7919 + i as usize) % n];
            timed(tally, || conn.call("GET", "/v1/me/consents", h, b""));
        },
        target,
    );
    report("reads GET /v1/me/consents", clients, elapsed, tallies);
    Ok(())
}

/// The `"seq":N` of a write's answer.
fn seq_of(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("\"seq\":")? + 6;
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn writes(args: &[String]) -> Res<()> {
    let [a, toks, clients, seconds, purpose, notice, acks] = args else {
        return Err("writes ADDR TOKENS CLIENTS SECONDS PURPOSE NOTICE ACKS".into());
    };
    let target = addr(a)?;
    let toks = Arc::new(tokens(Path::new(toks))?);
    let clients: usize = clients.parse().map_err(|_| "CLIENTS must be a number")?;
    let file = std::fs::OpenOptions::new().create(true).append(true).open(acks).map_err(|e| format!("{acks}: {e}"))?;
    let file = Arc::new(Mutex::new(file));
    let path = format!("/v1/me/consents/{purpose}");
    let notice: u32 = notice.parse().map_err(|_| "NOTICE must be a number")?;
    let run = std::process::id();
    let sink = Arc::clone(&file);
    let n = toks.len();
    let (elapsed, tallies) = drive(
        clients,
        seconds.parse().map_err(|_| "SECONDS must be a number")?,
        move |c, i, conn, tally| {
            let (member, token) = &toks[(c + i as usize * clients) % n];
            let key = format!("w{run}-c{c}-{i}");
            let state = if i % 2 == 0 { "granted" } else { "withdrawn" };
            let body = format!("{{\"state\":\"{state}\",\"notice_version\":{notice}}}");
            let headers = format!("Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n");
            if let Some(b) = timed(tally, || conn.call("PUT", &path, &headers, body.as_bytes()))
                && let Some(seq) = seq_of(&b)
                && let Ok(mut f) = sink.lock()
            {
                // Written as acknowledged, so a kill of the server leaves the record of every acknowledgement.
                let _ = writeln!(f, "{member} {seq} {key}");
            }
        },
        target,
    );
    file.lock().map_err(|_| "ack file lock")?.flush().map_err(|e| e.to_string())?;
    report(&format!("writes PUT /v1/me/consents/{purpose}"), clients, elapsed, tallies);
    Ok(())
}

/// Every member's `(seq, idempotency key)` from their history, all pages.
fn history(conn: &mut Conn, token: &str) -> Res<Vec<(u64, String)>> {
    let mut out = Vec::new();
    let mut path = "/v1/me/history?limit=500".to_string();
    loop {
        let (status, body) = conn.call("GET", &path, &format!("Authorization: Bearer {token}\r\n"), b"")?;
        if status != 200 {
            return Err(format!("GET {path}: status {status}: {}", String::from_utf8_lossy(&body)));
        }
        let text = String::from_utf8_lossy(&body).to_string();
        // Each event is a flat object with `"seq":N` and `"idempotency_key":"K"` (in either order).
        let events = text.find("\"events\":[").map(|i| &text[i..]).unwrap_or("");
        let events = &events[..events.find(']').unwrap_or(0)];
        for object in events.split('{').skip(1) {
            let seq: u64 = object
                .find("\"seq\":")
                .map(|i| object[i + 6..].chars().take_while(char::is_ascii_digit).collect::<String>())
                .and_then(|d| d.parse().ok())
                .ok_or(format!("an event without a seq: {object}"))?;
            let k = object.find("\"idempotency_key\":\"").ok_or("an event without an idempotency key")? + 19;
            let end = object[k..].find('"').ok_or("unterminated key")?;
            out.push((seq, object[k..k + end].to_string()));
        }
        match text.find("\"next_before\":").map(|i| &text[i + 14..]) {
            Some(t) if t.starts_with(|c: char| c.is_ascii_digit()) => {
                let b: String = t.chars().take_while(char::is_ascii_digit).collect();
                path = format!("/v1/me/history?limit=500&before={b}");
            }
            _ => return Ok(out),
        }
    }
}

fn check(args: &[String]) -> Res<()> {
    let [a, toks, acks] = args else { return Err("check ADDR TOKENS ACKS".into()) };
    let mut conn = Conn::new(addr(a)?, READ_TIMEOUT);
    let toks: HashMap<u64, String> = tokens(Path::new(toks))?.into_iter().collect();
    let text = std::fs::read_to_string(acks).map_err(|e| format!("{acks}: {e}"))?;
    let mut acked: HashMap<u64, Vec<(u64, String)>> = HashMap::new();
    let mut total = 0;
    for l in text.lines().filter(|l| !l.is_empty()) {
        let mut w = l.split(' ');
        let (Some(m), Some(s), Some(k)) = (w.next(), w.next(), w.next()) else { return Err(format!("bad ack line {l:?}")) };
        let m: u64 = m.parse().map_err(|_| format!("bad ack line {l:?}"))?;
        acked.entry(m).or_default().push((s.parse().map_err(|_| format!("bad ack line {l:?}"))?, k.to_string()));
        total += 1;
    }
    let mut missing = 0;
    for (member, writes) in &acked {
        let token = toks.get(member).ok_or(format!("no token for member {member}"))?;
        let stored = history(&mut conn, token)?;
        let mut seen: HashMap<&str, Vec<u64>> = HashMap::new();
        for (seq, key) in &stored {
            seen.entry(key.as_str()).or_default().push(*seq);
        }
        let mut keys = HashSet::new();
        for (seq, key) in writes {
            let full = format!("member:{member}/{key}");
            match seen.get(full.as_str()) {
                Some(s) if s.as_slice() == [*seq] => {}
                other => {
                    missing += 1;
                    eprintln!("member {member}: acknowledged {key} at {seq}, stored at {other:?}");
                }
            }
            if !keys.insert(key) {
                return Err(format!("member {member}: {key} acknowledged twice"));
            }
        }
    }
    println!("check: acknowledged={total} members={} missing_or_duplicated={missing}", acked.len());
    if missing > 0 { Err(format!("{missing} acknowledged writes are not in the ledger exactly once")) } else { Ok(()) }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.first().map(String::as_str) {
        Some("reads") => reads(&args[1..]),
        Some("writes") => writes(&args[1..]),
        Some("check") => check(&args[1..]),
        _ => Err("usage: consentry-loadgen reads|writes|check … (see the source's header)".into()),
    };
    match out {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consentry-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
