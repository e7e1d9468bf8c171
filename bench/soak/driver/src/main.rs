//! The soak driver for `consentry serve` (issue 19, "kill and restart under load"), used by `bench/soak/run.sh`.
//!
//! ```text
//! consentry-soak run   --bin CONSENTRY --data DIR --database URL --config FILE --port P --hook-port W
//!                      --tokens FILE --operator-key KEY --out DIR [--minutes 30] [--seed 19]
//!                      [--writers 6] [--readers 3] [--pg-restart "SHELL COMMAND"] [--kill-min-ms 2000]
//!                      [--kill-max-ms 8000] [--jobs-min-s 20] [--jobs-max-s 50]
//! consentry-soak check --addr HOST:PORT --tokens FILE --journal FILE
//! ```
//!
//! `run` starts the service (`consentry serve` on PostgreSQL, a webhook in its `--config`), then for `--minutes`:
//! member clients (threads, one keep-alive HTTP/1.1 connection each) grant and withdraw consents with an
//! `Idempotency-Key` (retrying the same key after a dropped connection or a 5xx) and read their consents, history
//! and receipts; a jobs thread now and then runs the unlearning job through the service (`POST /v1/jobs/unlearn`),
//! `consentry unlearn` and `consentry gate` against the same database; the main thread SIGKILLs the service every
//! 2–8 s (seeded) and starts it again on the same port, and halfway through restarts PostgreSQL (`--pg-restart`,
//! e.g. `pg_ctl restart -m immediate`). A webhook receiver in this process records every delivery by its
//! `webhook-id`. Every write is journalled (`journal.txt`) before it is sent (`A`), and when a 2xx answers (`K`,
//! with the ledger position), so the journal is the client's record of what was acknowledged.
//!
//! At the end (the service running, no more kills) it waits for the webhook to catch up with the outbox, then
//! checks: every acknowledged write is in its member's history exactly once, at the acknowledged position; a write
//! that got no answer is there at most once; every outbox row since the webhook was attached arrived. It writes
//! `summary.json` and `summary.md` to `--out` and exits 1 when anything was lost or duplicated.
//!
//! Everything random comes from ChaCha8 seeded by `--seed` (the schedule of kills, the clients' choices); the
//! timing of a real service under kills is not reproducible, the schedule is.

use bench_http::{Conn, Res, addr, bearer, tokens};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------------------------
// Figures.

/// Requests of one kind: answered 2xx (with their latencies), other statuses, transport errors.
#[derive(Default, Clone)]
struct Kind {
    ok: u64,
    non_2xx: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    /// Non-2xx answers by status.
    statuses: BTreeMap<u16, u64>,
}

type Tally = BTreeMap<&'static str, Kind>;

fn merge(into: &mut Tally, from: Tally) {
    for (k, v) in from {
        let e = into.entry(k).or_default();
        e.ok += v.ok;
        e.non_2xx += v.non_2xx;
        e.errors += v.errors;
        e.latencies_us.extend(v.latencies_us);
        for (s, n) in v.statuses {
            *e.statuses.entry(s).or_default() += n;
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

/// Times one request and counts it under `kind`.
fn timed(tally: &mut Tally, kind: &'static str, f: impl FnOnce() -> Res<(u16, Vec<u8>)>) -> Res<(u16, Vec<u8>)> {
    let t = Instant::now();
    let out = f();
    let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
    let e = tally.entry(kind).or_default();
    match &out {
        Ok((s, _)) if (200..300).contains(s) => {
            e.ok += 1;
            e.latencies_us.push(us);
        }
        Ok((s, _)) => {
            e.non_2xx += 1;
            *e.statuses.entry(*s).or_default() += 1;
        }
        Err(_) => e.errors += 1,
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// The service under test.

struct Server {
    bin: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    addr: SocketAddr,
    child: Option<Child>,
    /// Starts that exited before becoming ready (e.g. the port still taken, the database down).
    failed_starts: u64,
}

impl Server {
    /// Starts the service and waits until `/readyz` answers 200; retries a start whose process exits.
    fn start(&mut self, limit: Duration) -> Res<()> {
        let t0 = Instant::now();
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .map_err(|e| format!("{}: {e}", self.log.display()))?;
            let child = Command::new(&self.bin)
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .map_err(|e| format!("starting {}: {e}", self.bin.display()))?;
            // For the script's clean-up, should this driver be killed.
            let _ = std::fs::write(self.log.with_file_name("serve.pid"), child.id().to_string());
            self.child = Some(child);
            let mut conn = Conn::new(self.addr, Duration::from_secs(5));
            loop {
                if let Ok((200, _)) = conn.call("GET", "/readyz", "", b"") {
                    return Ok(());
                }
                if let Some(c) = self.child.as_mut()
                    && let Ok(Some(status)) = c.try_wait()
                {
                    self.failed_starts += 1;
                    self.child = None;
                    eprintln!("soak: the service exited while starting ({status}); starting it again");
                    break;
                }
                if t0.elapsed() > limit {
                    return Err(format!("the service was not ready within {limit:?}; see {}", self.log.display()));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if t0.elapsed() > limit {
                return Err(format!("the service did not start within {limit:?}; see {}", self.log.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL (std's `Child::kill` on Unix) and reap.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: the orderly stop; how the process exited.
    fn stop(&mut self) -> Option<String> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        c.wait().ok().map(|s| s.to_string())
    }

    fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The webhook receiver.

#[derive(Default)]
struct Hooked {
    /// Deliveries per outbox id.
    by_id: BTreeMap<u64, u64>,
    /// Deliveries that could not be read (no id, a bad body).
    malformed: u64,
    /// The ledger positions of `consent.changed` deliveries.
    seqs: BTreeSet<u64>,
}

fn receive(listener: TcpListener, hooked: Arc<Mutex<Hooked>>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let outcome = read_delivery(&conn);
            if let Ok(mut h) = hooked.lock() {
                match &outcome {
                    Ok((id, body)) => {
                        *h.by_id.entry(*id).or_default() += 1;
                        if body["type"] == "consent.changed"
                            && let Some(seq) = body["data"]["seq"].as_u64()
                        {
                            h.seqs.insert(seq);
                        }
                    }
                    Err(_) => h.malformed += 1,
                }
            }
            let mut conn = conn;
            let answer: &[u8] = if outcome.is_ok() {
                b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
            } else {
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            };
            let _ = conn.write_all(answer);
        }
    });
}

fn read_delivery(conn: &TcpStream) -> Res<(u64, Value)> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let mut id = None;
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("closed in the head".into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "webhook-id" => id = v.trim().parse::<u64>().ok(),
                "content-length" => len = v.trim().parse().map_err(|_| "bad content-length")?,
                _ => {}
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let id = id.ok_or("no webhook-id")?;
    if body["id"].as_u64() != Some(id) {
        return Err(format!("webhook-id {id} is not the body's id {}", body["id"]));
    }
    Ok((id, body))
}

// ---------------------------------------------------------------------------------------------------------------
// The journal.

struct Journal(Mutex<std::fs::File>);

impl Journal {
    fn line(&self, l: &str) {
        if let Ok(mut f) = self.0.lock() {
            // Unbuffered: each line is in the file once this returns.
            let _ = f.write_all(format!("{l}\n").as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Member clients.

struct Shared {
    addr: SocketAddr,
    tokens: Vec<(u64, String)>,
    purposes: Vec<String>,
    /// Notice version in force per purpose (refreshed after a 409).
    notices: Mutex<HashMap<String, u64>>,
    journal: Journal,
    seed: u64,
    stop: AtomicBool,
    acked: AtomicU64,
    retried_acks: AtomicU64,
    gave_up: AtomicU64,
}

fn notices(conn: &mut Conn, token: &str) -> Res<HashMap<String, u64>> {
    let (status, body) = conn.call("GET", "/v1/me/consents", &bearer(token), b"")?;
    if status != 200 {
        return Err(format!("GET /v1/me/consents: {status} {}", String::from_utf8_lossy(&body)));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for p in v["purposes"].as_array().ok_or("no purposes in /v1/me/consents")? {
        if let (Some(name), Some(version)) = (p["purpose"].as_str(), p["notice"]["version"].as_u64()) {
            out.insert(name.to_string(), version);
        }
    }
    Ok(out)
}

fn member_client(c: usize, writer: bool, think_ms: u64, s: Arc<Shared>) -> Tally {
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ (0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(c as u64 + 1)));
    let mut conn = Conn::new(s.addr, Duration::from_secs(35));
    let mut tally = Tally::new();
    let mut acks: Vec<(usize, u64)> = Vec::new();
    let mut i = 0u64;
    while !s.stop.load(Ordering::Relaxed) {
        i += 1;
        let t = rng.random_range(0..s.tokens.len());
        let (member, token) = &s.tokens[t];
        let roll = rng.random_range(0..100);
        if writer && roll < 70 {
            let purpose = s.purposes[rng.random_range(0..s.purposes.len())].clone();
            let state = if rng.random_bool(0.5) { "granted" } else { "withdrawn" };
            let key = format!("s{}-c{c}-{i}", s.seed);
            s.journal.line(&format!("A {member} {purpose} {state} {key}"));
            let mut tries = 0u32;
            let started = Instant::now();
            loop {
                tries += 1;
                let notice = s.notices.lock().ok().and_then(|n| n.get(&purpose).copied()).unwrap_or(1);
                let body = format!("{{\"state\":\"{state}\",\"notice_version\":{notice}}}");
                let headers = format!("{}Idempotency-Key: {key}\r\n", bearer(token));
                let out = timed(&mut tally, "write PUT /v1/me/consents/{p}", || {
                    conn.call("PUT", &format!("/v1/me/consents/{purpose}"), &headers, body.as_bytes())
                });
                match out {
                    Ok((status, b)) if (200..300).contains(&status) => {
                        let seq = serde_json::from_slice::<Value>(&b).ok().and_then(|v| v["seq"].as_u64());
                        match seq {
                            Some(seq) => {
                                s.journal.line(&format!("K {member} {seq} {key} {tries}"));
                                s.acked.fetch_add(1, Ordering::Relaxed);
                                if tries > 1 {
                                    s.retried_acks.fetch_add(1, Ordering::Relaxed);
                                }
                                acks.push((t, seq));
                            }
                            None => s.journal.line(&format!("X {member} {key} 2xx-without-seq")),
                        }
                        break;
                    }
                    Ok((409, _)) => {
                        // A notice published meanwhile: read the version in force and retry with the same key.
                        if let Ok(n) = notices(&mut conn, token)
                            && let Ok(mut m) = s.notices.lock()
                        {
                            *m = n;
                        }
                        if tries >= 3 {
                            s.journal.line(&format!("N {member} {key} 409"));
                            break;
                        }
                    }
                    Ok((status, _)) if status < 500 && status != 408 && status != 429 => {
                        // Refused (e.g. a minor's grant): nothing written.
                        s.journal.line(&format!("N {member} {key} {status}"));
                        break;
                    }
                    _ => {
                        // No answer, a 5xx or a timeout: the outcome is unknown; retry the same key while the
                        // service comes back (a retry must return the first event, never write a second).
                        // A careless client (every third writer) never retries: its write stays unanswered.
                        if c % 3 == 2 || started.elapsed() > Duration::from_secs(60) || s.stop.load(Ordering::Relaxed) {
                            s.journal.line(&format!("E {member} {key} {tries}"));
                            s.gave_up.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(rng.random_range(50..250)));
                    }
                }
            }
        } else {
            let read = rng.random_range(0..100);
            let out = if read < 45 || acks.is_empty() {
                timed(&mut tally, "read GET /v1/me/consents", || {
                    conn.call("GET", "/v1/me/consents", &bearer(token), b"")
                })
            } else if read < 75 {
                timed(&mut tally, "read GET /v1/me/history", || {
                    conn.call("GET", "/v1/me/history?limit=20", &bearer(token), b"")
                })
            } else {
                let (t, seq) = acks[rng.random_range(0..acks.len())];
                timed(&mut tally, "read GET /v1/me/receipts/{seq}", || {
                    conn.call("GET", &format!("/v1/me/receipts/{seq}"), &bearer(&s.tokens[t].1), b"")
                })
            };
            if out.is_err() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if think_ms > 0 {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..=think_ms)));
        }
    }
    tally
}

// ---------------------------------------------------------------------------------------------------------------
// Gate and unlearning runs.

/// Runs of one kind of job by outcome: `ok`, `conflict` (409: another worker was building the same version),
/// `interrupted` (the service was SIGKILLed under the request, or its database restarted), `failed` (anything
/// else: a finding).
#[derive(Default, Clone)]
struct Job {
    outcomes: BTreeMap<&'static str, u64>,
    ok_seconds: Vec<f64>,
}

struct JobCtx {
    bin: PathBuf,
    data: PathBuf,
    database: String,
    out: PathBuf,
    operator_key: String,
    min_s: u64,
    max_s: u64,
}

/// `POST /v1/jobs/unlearn`: its outcome and what it said.
fn unlearn_job(addr: SocketAddr, key: &str) -> (&'static str, String) {
    let mut conn = Conn::new(addr, Duration::from_secs(120));
    match conn.call("POST", "/v1/jobs/unlearn", &bearer(key), b"") {
        Ok((status, body)) => {
            let text = String::from_utf8_lossy(&body).chars().take(300).collect::<String>();
            let outcome = match status {
                200..=299 => "ok",
                409 => "conflict",
                // The service's PostgreSQL session was cut (the restart): unavailable, not a wrong answer.
                503 => "interrupted",
                _ => "failed",
            };
            (outcome, format!("{status} {text}"))
        }
        Err(e) => ("interrupted", e),
    }
}

fn jobs(ctx: JobCtx, s: Arc<Shared>) -> BTreeMap<&'static str, Job> {
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x6a09_e667_f3bc_c908);
    let mut out: BTreeMap<&'static str, Job> = BTreeMap::new();
    let log_path = ctx.out.join("jobs.log");
    let mut n = 0u64;
    let gates = ctx.out.join("gates");
    let _ = std::fs::create_dir_all(&gates);
    let _ = std::fs::create_dir_all(ctx.out.join("models"));
    // A CLI run that met another worker building the same version, or PostgreSQL restarting, is not a finding.
    let ok_or_failed = |(ok, detail): (bool, String)| {
        let outcome = if ok {
            "ok"
        } else if detail.contains("another unlearning worker")
            || detail.contains("by another worker meanwhile")
            || detail.contains("concurrent change")
        {
            "conflict"
        } else if detail.contains("connection") || detail.contains("the database system is") {
            "interrupted"
        } else {
            "failed"
        };
        (outcome, detail)
    };
    loop {
        let wait = Duration::from_secs(rng.random_range(ctx.min_s..=ctx.max_s.max(ctx.min_s)));
        let until = Instant::now() + wait;
        while Instant::now() < until && !s.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
        }
        if s.stop.load(Ordering::Relaxed) {
            return out;
        }
        n += 1;
        let t0 = Instant::now();
        let mut results: Vec<(&'static str, &'static str, String)> = Vec::new();
        match n % 4 {
            1 => {
                let (o, d) = unlearn_job(s.addr, &ctx.operator_key);
                results.push(("unlearning job POST /v1/jobs/unlearn", o, d));
            }
            2 => {
                // A fresh training set, and on it a new live model (registered): the members who granted since
                // are in it, so later withdrawals have shards to retrain.
                let (purpose, model) = if rng.random_bool(0.5) {
                    ("train_ai_system.job_recommendations", "job-recs")
                } else {
                    ("train_ai_system.content_suggestions", "content")
                };
                let dir = gates.join(format!("gate-{n}"));
                let dir = dir.to_string_lossy();
                let (o, d) = ok_or_failed(cli(&ctx, &["gate", "--purpose", purpose, "--out", &dir]));
                results.push(("gate run (CLI `gate`)", o, d));
                if o == "ok" {
                    let models = ctx.out.join("models").join(format!("{model}-{n}"));
                    let args = ["train", "--model", model, "--dataset", &dir, "--out", &models.to_string_lossy()];
                    let (o, d) = ok_or_failed(cli(&ctx, &args));
                    results.push(("training run on it (CLI `train`, registered)", o, d));
                }
            }
            3 => {
                // Two at once in one process (an operator's click and a scheduler): one builds, the other waits
                // its turn or answers 409; never two builders of one version.
                let (a, b) = std::thread::scope(|sc| {
                    let a = sc.spawn(|| unlearn_job(s.addr, &ctx.operator_key));
                    let b = sc.spawn(|| unlearn_job(s.addr, &ctx.operator_key));
                    (a.join(), b.join())
                });
                for r in [a, b] {
                    let (o, d) = r.unwrap_or(("failed", "panicked".into()));
                    results.push(("two unlearning jobs at once (POST /v1/jobs/unlearn x2)", o, d));
                }
            }
            _ if rng.random_bool(0.5) => {
                // SIGKILLed part-way: the next run (or the service's job) must recover without a human (a lock
                // file left behind is taken over, a half-built version is rebuilt or its swap completed).
                let after = Duration::from_millis(rng.random_range(50..1500));
                let (o, d) = ok_or_failed(cli_killed(&ctx, &["unlearn"], after));
                results.push(("unlearning run (CLI `unlearn`) SIGKILLed after 50-1500 ms", o, d));
            }
            _ => {
                let (o, d) = ok_or_failed(cli(&ctx, &["unlearn"]));
                results.push(("unlearning run (CLI `unlearn`)", o, d));
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        for (kind, outcome, detail) in results {
            let e = out.entry(kind).or_default();
            *e.outcomes.entry(outcome).or_default() += 1;
            if outcome == "ok" {
                e.ok_seconds.push(secs);
            }
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&log_path) {
                let _ = writeln!(f, "{kind}: {outcome} in {secs:.1} s: {detail}");
            }
        }
    }
}

/// `consentry --data DATA --database URL -q ARGS` for a job.
fn consentry(ctx: &JobCtx, args: &[&str]) -> Command {
    let mut c = Command::new(&ctx.bin);
    c.arg("--data").arg(&ctx.data).arg("--database").arg(&ctx.database).arg("-q").args(args);
    c
}

/// Runs the CLI and SIGKILLs it after `after` if it is still running; ok when it finished by itself successfully
/// or was killed (the kill is the point), not when it failed by itself.
fn cli_killed(ctx: &JobCtx, args: &[&str], after: Duration) -> (bool, String) {
    let child = consentry(ctx, args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (false, e.to_string()),
    };
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let err: String = err.chars().take(600).collect();
                return (status.success(), format!("finished before the kill: {status} {err}"));
            }
            Ok(None) if t0.elapsed() >= after => {
                let _ = child.kill();
                let _ = child.wait();
                return (true, format!("killed after {after:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return (false, e.to_string()),
        }
    }
}

fn cli(ctx: &JobCtx, args: &[&str]) -> (bool, String) {
    let out = consentry(ctx, args).stdin(Stdio::null()).output();
    match out {
        Ok(o) => (
            o.status.success(),
            format!("{} {}", o.status, String::from_utf8_lossy(&o.stderr).chars().take(600).collect::<String>()),
        ),
        Err(e) => (false, e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The check.

#[derive(Default, Debug)]
struct Check {
    members: u64,
    attempted: u64,
    acknowledged: u64,
    present_once: u64,
    lost: u64,
    duplicated: u64,
    wrong_seq: u64,
    unacknowledged: u64,
    unacknowledged_present: u64,
    unacknowledged_duplicated: u64,
    refused: u64,
    refused_present: u64,
}

/// Every `(seq, idempotency key)` of a member's history, all pages.
fn history(conn: &mut Conn, token: &str) -> Res<Vec<(u64, String)>> {
    let mut out = Vec::new();
    let mut path = "/v1/me/history?limit=500".to_string();
    loop {
        let mut tries = 0;
        let (status, body) = loop {
            tries += 1;
            match conn.call("GET", &path, &bearer(token), b"") {
                Ok(r) => break r,
                Err(e) if tries > 20 => return Err(format!("GET {path}: {e}")),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        };
        if status != 200 {
            return Err(format!("GET {path}: status {status}: {}", String::from_utf8_lossy(&body)));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| format!("GET {path}: {e}"))?;
        for e in v["events"].as_array().ok_or(format!("GET {path}: no events"))? {
            let seq = e["seq"].as_u64().ok_or("an event without seq")?;
            let key = e["idempotency_key"].as_str().unwrap_or("").to_string();
            out.push((seq, key));
        }
        match v["next_before"].as_u64() {
            Some(b) => path = format!("/v1/me/history?limit=500&before={b}"),
            None => return Ok(out),
        }
    }
}

fn check(a: SocketAddr, toks: &[(u64, String)], journal: &Path, report: &mut Vec<String>) -> Res<Check> {
    let text = std::fs::read_to_string(journal).map_err(|e| format!("{}: {e}", journal.display()))?;
    // Per member: key → (acknowledged seq, refused).
    let mut writes: BTreeMap<u64, BTreeMap<String, (Option<u64>, bool)>> = BTreeMap::new();
    for l in text.lines() {
        let w: Vec<&str> = l.split(' ').collect();
        let member = |i: usize| -> Res<u64> { w.get(i).and_then(|m| m.parse().ok()).ok_or(format!("bad line {l:?}")) };
        match w.first().copied() {
            Some("A") => {
                let key = w.get(4).ok_or(format!("bad line {l:?}"))?;
                writes.entry(member(1)?).or_default().insert((*key).to_string(), (None, false));
            }
            Some("K") => {
                let seq: u64 = w.get(2).and_then(|s| s.parse().ok()).ok_or(format!("bad line {l:?}"))?;
                let key = w.get(3).ok_or(format!("bad line {l:?}"))?;
                let e = writes.entry(member(1)?).or_default().entry((*key).to_string()).or_default();
                if e.0.is_some() {
                    return Err(format!("{key} acknowledged twice in the journal"));
                }
                e.0 = Some(seq);
            }
            Some("N") => {
                let key = w.get(2).ok_or(format!("bad line {l:?}"))?;
                writes.entry(member(1)?).or_default().entry((*key).to_string()).or_default().1 = true;
            }
            _ => {}
        }
    }
    let toks: HashMap<u64, &str> = toks.iter().map(|(m, t)| (*m, t.as_str())).collect();
    let mut conn = Conn::new(a, Duration::from_secs(60));
    let mut c = Check::default();
    for (member, keys) in &writes {
        c.members += 1;
        let token = toks.get(member).ok_or(format!("no token for member {member}"))?;
        let stored = history(&mut conn, token)?;
        let mut seen: HashMap<&str, Vec<u64>> = HashMap::new();
        for (seq, key) in &stored {
            seen.entry(key.as_str()).or_default().push(*seq);
        }
        for (key, (ack, refused)) in keys {
            c.attempted += 1;
            let full = format!("member:{member}/{key}");
            let found = seen.get(full.as_str()).map_or(&[][..], Vec::as_slice);
            match ack {
                Some(seq) => {
                    c.acknowledged += 1;
                    match found {
                        [s] if s == seq => c.present_once += 1,
                        [] => {
                            c.lost += 1;
                            report.push(format!("LOST: member {member} key {key} acknowledged at {seq}, not stored"));
                        }
                        [s] => {
                            c.wrong_seq += 1;
                            report.push(format!(
                                "WRONG SEQ: member {member} key {key} acknowledged at {seq}, stored at {s}"
                            ));
                        }
                        more => {
                            c.duplicated += 1;
                            report.push(format!(
                                "DUPLICATE: member {member} key {key} acknowledged at {seq}, stored at {more:?}"
                            ));
                        }
                    }
                }
                None if *refused => {
                    c.refused += 1;
                    if !found.is_empty() {
                        c.refused_present += 1;
                        report.push(format!("REFUSED BUT STORED: member {member} key {key} at {found:?}"));
                    }
                }
                None => {
                    c.unacknowledged += 1;
                    match found.len() {
                        0 => {}
                        1 => c.unacknowledged_present += 1,
                        _ => {
                            c.unacknowledged_duplicated += 1;
                            report.push(format!("DUPLICATE (unacknowledged): member {member} key {key} at {found:?}"));
                        }
                    }
                }
            }
        }
    }
    Ok(c)
}

// ---------------------------------------------------------------------------------------------------------------
// `run`.

struct Args(HashMap<String, String>);

impl Args {
    fn parse(args: &[String]) -> Res<Args> {
        let mut m = HashMap::new();
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let name = k.strip_prefix("--").ok_or(format!("expected --NAME VALUE, got {k:?}"))?;
            let v = it.next().ok_or(format!("--{name} needs a value"))?;
            m.insert(name.to_string(), v.clone());
        }
        Ok(Args(m))
    }
    fn get(&self, k: &str) -> Res<String> {
        self.0.get(k).cloned().ok_or(format!("--{k} is required"))
    }
    fn or(&self, k: &str, d: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| d.to_string())
    }
    fn num<T: std::str::FromStr>(&self, k: &str, d: &str) -> Res<T> {
        self.or(k, d).parse().map_err(|_| format!("--{k} must be a number"))
    }
}

fn webhook_state(conn: &mut Conn, key: &str) -> Res<(u64, u64)> {
    let (status, body) = conn.call("GET", "/v1/webhooks", &bearer(key), b"")?;
    if status != 200 {
        return Err(format!("GET /v1/webhooks: {status} {}", String::from_utf8_lossy(&body)));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let h = &v["webhooks"][0];
    Ok((h["delivered"].as_u64().ok_or("no webhook configured")?, h["outbox_last"].as_u64().unwrap_or(0)))
}

/// The outbox ids after `after` (all pages), with their types.
fn outbox_ids(conn: &mut Conn, key: &str, mut after: u64) -> Res<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    loop {
        let (status, body) = conn.call("GET", &format!("/v1/events?after={after}&limit=1000"), &bearer(key), b"")?;
        if status != 200 {
            return Err(format!("GET /v1/events: {status} {}", String::from_utf8_lossy(&body)));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let events = v["events"].as_array().ok_or("no events")?;
        if events.is_empty() {
            return Ok(out);
        }
        for e in events {
            out.insert(e["id"].as_u64().ok_or("an event without id")?, e["type"].as_str().unwrap_or("").to_string());
        }
        after = v["next_after"].as_u64().ok_or("no next_after")?;
    }
}

fn run(args: &[String]) -> Res<bool> {
    let a = Args::parse(args)?;
    let bin = PathBuf::from(a.get("bin")?);
    let data = PathBuf::from(a.get("data")?);
    let database = a.get("database")?;
    let config = a.get("config")?;
    let port: u16 = a.num("port", "0")?;
    let hook_port: u16 = a.num("hook-port", "0")?;
    let out = PathBuf::from(a.get("out")?);
    let minutes: f64 = a.num("minutes", "30")?;
    let seed: u64 = a.num("seed", "19")?;
    let writers: usize = a.num("writers", "6")?;
    let readers: usize = a.num("readers", "3")?;
    let think_ms: u64 = a.num("think-ms", "20")?;
    let kill_min: u64 = a.num("kill-min-ms", "2000")?;
    let kill_max: u64 = a.num("kill-max-ms", "8000")?;
    let pg_restart = a.0.get("pg-restart").cloned();
    let operator_key = a.get("operator-key")?;
    let toks = tokens(Path::new(&a.get("tokens")?))?;
    if toks.is_empty() {
        return Err("no tokens".into());
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let addr = addr(&format!("127.0.0.1:{port}"))?;

    // The receiver first: the service's webhook points at it.
    let listener = TcpListener::bind(("127.0.0.1", hook_port)).map_err(|e| format!("webhook port {hook_port}: {e}"))?;
    let hooked: Arc<Mutex<Hooked>> = Arc::default();
    receive(listener, Arc::clone(&hooked));

    let mut server = Server {
        bin: bin.clone(),
        args: vec![
            "--data".into(),
            data.to_string_lossy().into_owned(),
            "--database".into(),
            database.clone(),
            "-q".into(),
            "serve".into(),
            "--addr".into(),
            addr.to_string(),
            "--workers".into(),
            "2".into(),
            "--config".into(),
            config,
            "--rate-limit".into(),
            "0".into(),
            "--anonymous-rate-limit".into(),
            "0".into(),
        ],
        log: out.join("serve.log"),
        addr,
        child: None,
        failed_starts: 0,
    };
    let t_first = Instant::now();
    server.start(Duration::from_secs(300))?;
    let first_start = t_first.elapsed();
    let mut conn = Conn::new(addr, Duration::from_secs(60));
    let (hook_baseline, outbox_at_start) = webhook_state(&mut conn, &operator_key)?;
    let notice_map = notices(&mut conn, &toks[0].1)?;
    let mut purposes: Vec<String> = notice_map.keys().cloned().collect();
    purposes.sort();
    eprintln!(
        "soak: service ready in {first_start:.2?}; outbox at {outbox_at_start}, webhook cursor {hook_baseline}; purposes {purposes:?}; {minutes} min, seed {seed}"
    );
    let journal_path = out.join("journal.txt");
    let journal = Journal(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(|e| format!("{}: {e}", journal_path.display()))?,
    ));
    let shared = Arc::new(Shared {
        addr,
        tokens: toks.clone(),
        purposes: purposes.clone(),
        notices: Mutex::new(notice_map),
        journal,
        seed,
        stop: AtomicBool::new(false),
        acked: AtomicU64::new(0),
        retried_acks: AtomicU64::new(0),
        gave_up: AtomicU64::new(0),
    });

    let start = Instant::now();
    let total = Duration::from_secs_f64(minutes * 60.0);
    let deadline = start + total;
    let clients: Vec<_> = (0..writers + readers)
        .map(|c| {
            let s = Arc::clone(&shared);
            std::thread::spawn(move || member_client(c, c < writers, think_ms, s))
        })
        .collect();
    let job_ctx = JobCtx {
        bin: bin.clone(),
        data: data.clone(),
        database: database.clone(),
        out: out.clone(),
        operator_key: operator_key.clone(),
        min_s: a.num("jobs-min-s", "20")?,
        max_s: a.num("jobs-max-s", "50")?,
    };
    let jobs_thread = {
        let s = Arc::clone(&shared);
        std::thread::spawn(move || jobs(job_ctx, s))
    };

    // The killer.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut kills = 0u64;
    let mut recoveries_ms: Vec<u32> = Vec::new();
    let mut pg: Option<Value> = None;
    let pg_at = start + total / 2;
    let mut last_progress = Instant::now();
    loop {
        let pause = Duration::from_millis(rng.random_range(kill_min..=kill_max.max(kill_min)));
        let now = Instant::now();
        if now + pause >= deadline {
            std::thread::sleep(deadline.saturating_duration_since(now));
            break;
        }
        std::thread::sleep(pause);
        if !server.alive() {
            eprintln!("soak: the service died on its own; see {}", server.log.display());
            server.child = None;
            server.start(Duration::from_secs(120))?;
        }
        if pg.is_none()
            && Instant::now() >= pg_at
            && let Some(cmd) = &pg_restart
        {
            let t0 = Instant::now();
            let st = Command::new("sh").arg("-c").arg(cmd).stdout(Stdio::null()).status();
            let restart_s = t0.elapsed().as_secs_f64();
            // Recovered: a member read through the service answers again.
            let mut probe = Conn::new(addr, Duration::from_secs(10));
            let mut recovered = None;
            while t0.elapsed() < Duration::from_secs(120) {
                if let Ok((200, _)) = probe.call("GET", "/v1/me/consents", &bearer(&toks[0].1), b"") {
                    recovered = Some(t0.elapsed().as_secs_f64());
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let acked_before = shared.acked.load(Ordering::Relaxed);
            // And writes go on: some acknowledged after it.
            let t1 = Instant::now();
            while shared.acked.load(Ordering::Relaxed) == acked_before && t1.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let write_after = (shared.acked.load(Ordering::Relaxed) > acked_before).then(|| t0.elapsed().as_secs_f64());
            let alive = server.alive();
            eprintln!(
                "soak: PostgreSQL restarted ({st:?}) in {restart_s:.2} s; member reads back after {recovered:?} s, a write acknowledged after {write_after:?} s; service survived without a restart: {alive}"
            );
            pg = Some(json!({
                "at_s": t0.duration_since(start).as_secs_f64(),
                "pg_ctl_ok": st.as_ref().is_ok_and(|s| s.success()),
                "pg_ctl_s": restart_s,
                "reads_back_after_s": recovered,
                "write_acknowledged_after_s": write_after,
                "service_survived": alive,
            }));
            continue;
        }
        let t0 = Instant::now();
        server.kill();
        kills += 1;
        server.start(Duration::from_secs(120))?;
        recoveries_ms.push(u32::try_from(t0.elapsed().as_millis()).unwrap_or(u32::MAX));
        if last_progress.elapsed() > Duration::from_secs(60) {
            last_progress = Instant::now();
            eprintln!(
                "soak: {:.1} min: {kills} kills, {} writes acknowledged",
                start.elapsed().as_secs_f64() / 60.0,
                shared.acked.load(Ordering::Relaxed)
            );
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let load_secs = start.elapsed().as_secs_f64();
    let mut tally = Tally::new();
    for h in clients {
        merge(&mut tally, h.join().map_err(|_| "a client panicked")?);
    }
    let job_figures = jobs_thread.join().map_err(|_| "the jobs thread panicked")?;
    if !server.alive() {
        server.child = None;
        server.start(Duration::from_secs(120))?;
    }
    eprintln!("soak: load over after {load_secs:.0} s; waiting for the webhook to catch up");

    // The webhook drains the outbox.
    let t_drain = Instant::now();
    let mut conn = Conn::new(addr, Duration::from_secs(60));
    let outbox_last = loop {
        let (delivered, last) = webhook_state(&mut conn, &operator_key)?;
        if delivered >= last || t_drain.elapsed() > Duration::from_secs(600) {
            break last;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let ids = outbox_ids(&mut conn, &operator_key, hook_baseline)?;
    let drain_s = t_drain.elapsed().as_secs_f64();
    let (hook_missing, hook_dups, hook_distinct, hook_malformed, hook_seqs) = {
        let h = hooked.lock().map_err(|_| "receiver lock")?;
        let missing: Vec<u64> = ids.keys().filter(|id| !h.by_id.contains_key(id)).copied().collect();
        let dups: u64 = h.by_id.values().map(|n| n - 1).sum();
        (missing, dups, h.by_id.len() as u64, h.malformed, h.seqs.clone())
    };
    let gap_free =
        ids.keys().copied().eq((hook_baseline + 1)..=ids.keys().next_back().copied().unwrap_or(hook_baseline));

    // Every acknowledged write, exactly once.
    let mut findings = Vec::new();
    let c = check(addr, &toks, &journal_path, &mut findings)?;
    // Every acknowledged write's change was delivered to the webhook (its ledger position arrived).
    let text = std::fs::read_to_string(&journal_path).map_err(|e| e.to_string())?;
    let acked_seqs: Vec<u64> =
        text.lines().filter(|l| l.starts_with("K ")).filter_map(|l| l.split(' ').nth(2)?.parse().ok()).collect();
    let acked_not_delivered = acked_seqs.iter().filter(|s| !hook_seqs.contains(s)).count();
    let stopped = server.stop();
    let stopped_ok = stopped.as_deref() == Some("exit status: 0");

    // The figures.
    let mut rows = Vec::new();
    let mut all: Vec<u32> = Vec::new();
    let mut ops_total = 0;
    for (kind, k) in &tally {
        let mut l = k.latencies_us.clone();
        l.sort_unstable();
        all.extend(&l);
        ops_total += k.ok + k.non_2xx + k.errors;
        let statuses: BTreeMap<String, u64> = k.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        rows.push(
            json!({"kind": kind, "ok": k.ok, "non_2xx": k.non_2xx, "errors": k.errors, "non_2xx_by_status": statuses,
            "p50_ms": percentile(&l, 0.5), "p99_ms": percentile(&l, 0.99), "max_ms": percentile(&l, 1.0)}),
        );
    }
    all.sort_unstable();
    let mut rec = recoveries_ms.clone();
    rec.sort_unstable();
    let job_rows: Vec<Value> = job_figures
        .iter()
        .map(|(k, j)| {
            let mean = if j.ok_seconds.is_empty() {
                0.0
            } else {
                j.ok_seconds.iter().sum::<f64>() / j.ok_seconds.len() as f64
            };
            let n = |o: &str| j.outcomes.get(o).copied().unwrap_or(0);
            json!({"kind": k, "ok": n("ok"), "conflict": n("conflict"), "interrupted": n("interrupted"),
                   "failed": n("failed"), "mean_s": mean})
        })
        .collect();
    let jobs_failed: u64 = job_figures.values().map(|j| j.outcomes.get("failed").copied().unwrap_or(0)).sum();
    let passed = c.lost == 0
        && c.duplicated == 0
        && c.wrong_seq == 0
        && c.unacknowledged_duplicated == 0
        && c.refused_present == 0
        && hook_missing.is_empty()
        && gap_free
        && acked_not_delivered == 0
        && stopped_ok
        && jobs_failed == 0
        && pg.as_ref().is_none_or(|p| p["reads_back_after_s"].is_number());
    let summary = json!({
        "minutes": minutes, "seed": seed, "load_seconds": load_secs, "writers": writers, "readers": readers,
        "members_with_tokens": toks.len(), "first_start_s": first_start.as_secs_f64(),
        "requests": rows, "requests_total": ops_total,
        "all_2xx_p50_ms": percentile(&all, 0.5), "all_2xx_p99_ms": percentile(&all, 0.99),
        "jobs": job_rows,
        "kills": kills, "failed_starts": server.failed_starts, "final_sigterm": stopped,
        "recovery_ms": {"p50": percentile(&rec, 0.5) * 1000.0, "p99": percentile(&rec, 0.99) * 1000.0,
                        "max": percentile(&rec, 1.0) * 1000.0,
                        "mean": if rec.is_empty() { 0.0 } else { rec.iter().map(|&r| f64::from(r)).sum::<f64>() / rec.len() as f64 }},
        "postgres_restart": pg,
        "writes": {"attempted": c.attempted, "acknowledged": c.acknowledged, "acknowledged_after_a_retry": shared.retried_acks.load(Ordering::Relaxed),
                   "present_exactly_once": c.present_once, "lost": c.lost, "duplicated": c.duplicated, "wrong_seq": c.wrong_seq,
                   "unacknowledged": c.unacknowledged, "unacknowledged_present": c.unacknowledged_present,
                   "unacknowledged_duplicated": c.unacknowledged_duplicated, "gave_up": shared.gave_up.load(Ordering::Relaxed),
                   "refused": c.refused, "refused_present": c.refused_present, "members": c.members},
        "webhook": {"baseline_cursor": hook_baseline, "outbox_last": outbox_last, "outbox_rows_since_attach": ids.len(),
                    "gap_free": gap_free, "delivered_distinct": hook_distinct, "duplicate_deliveries": hook_dups,
                    "missing": hook_missing.len(), "missing_first": hook_missing.iter().take(10).collect::<Vec<_>>(),
                    "malformed": hook_malformed, "acknowledged_writes_not_delivered": acked_not_delivered,
                    "drain_seconds": drain_s},
        "findings": findings.iter().take(50).collect::<Vec<_>>(),
        "passed": passed,
    });
    let pretty = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    std::fs::write(out.join("summary.json"), &pretty).map_err(|e| e.to_string())?;
    let md = markdown(&summary);
    std::fs::write(out.join("summary.md"), &md).map_err(|e| e.to_string())?;
    println!("{md}");
    for f in findings.iter().take(50) {
        eprintln!("{f}");
    }
    Ok(passed)
}

fn markdown(s: &Value) -> String {
    let mut m = String::new();
    let f = |v: &Value| match v {
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        Value::Null => "—".into(),
        other => other.to_string().trim_matches('"').to_string(),
    };
    m.push_str(&format!(
        "Load: {} min ({:.0} s), {} writer and {} reader clients over {} members' tokens, seed {}.\n\n",
        f(&s["minutes"]),
        s["load_seconds"].as_f64().unwrap_or(0.0),
        s["writers"],
        s["readers"],
        s["members_with_tokens"],
        s["seed"]
    ));
    m.push_str("| requests | 2xx | non-2xx (by status) | no answer | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for r in s["requests"].as_array().into_iter().flatten() {
        let by: Vec<String> =
            r["non_2xx_by_status"].as_object().into_iter().flatten().map(|(k, v)| format!("{k}: {v}")).collect();
        m.push_str(&format!(
            "| `{}` | {} | {}{} | {} | {} | {} | {} |\n",
            f(&r["kind"]),
            r["ok"],
            r["non_2xx"],
            if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) },
            r["errors"],
            f(&r["p50_ms"]),
            f(&r["p99_ms"]),
            f(&r["max_ms"])
        ));
    }
    m.push_str(&format!("| all 2xx | | | | {} | {} | |\n\n", f(&s["all_2xx_p50_ms"]), f(&s["all_2xx_p99_ms"])));
    m.push_str("| jobs | ok | 409 (another worker building) | interrupted (kill, PostgreSQL restart) | failed | mean s (ok) |\n");
    m.push_str("|---|---:|---:|---:|---:|---:|\n");
    for r in s["jobs"].as_array().into_iter().flatten() {
        m.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            f(&r["kind"]),
            r["ok"],
            r["conflict"],
            r["interrupted"],
            r["failed"],
            f(&r["mean_s"])
        ));
    }
    let w = &s["writes"];
    let h = &s["webhook"];
    let r = &s["recovery_ms"];
    let pg = &s["postgres_restart"];
    m.push_str("\n| check | figure |\n|---|---:|\n");
    let rows: Vec<(&str, String)> = vec![
        ("SIGKILLs of the service survived", s["kills"].to_string()),
        ("starts that failed and were retried", s["failed_starts"].to_string()),
        ("the final SIGTERM stop (must exit 0)", f(&s["final_sigterm"])),
        (
            "restart recovery (kill → /readyz 200) p50 / p99 / max ms",
            format!("{} / {} / {}", f(&r["p50"]), f(&r["p99"]), f(&r["max"])),
        ),
        ("PostgreSQL restart (pg_ctl restart -m immediate) s", f(&pg["pg_ctl_s"])),
        ("… member reads answered again after s", f(&pg["reads_back_after_s"])),
        ("… a write acknowledged again after s", f(&pg["write_acknowledged_after_s"])),
        ("… service survived it without a restart", f(&pg["service_survived"])),
        ("writes attempted", w["attempted"].to_string()),
        ("acknowledged writes checked", w["acknowledged"].to_string()),
        ("… acknowledged only after a retry with the same key", w["acknowledged_after_a_retry"].to_string()),
        ("… present exactly once at the acknowledged seq", w["present_exactly_once"].to_string()),
        ("**lost** (must be 0)", w["lost"].to_string()),
        ("**duplicated** (must be 0)", w["duplicated"].to_string()),
        ("stored at another seq than acknowledged (must be 0)", w["wrong_seq"].to_string()),
        ("unacknowledged writes (no answer; client gave up)", w["unacknowledged"].to_string()),
        ("… present (at most once)", w["unacknowledged_present"].to_string()),
        ("… present twice or more (must be 0)", w["unacknowledged_duplicated"].to_string()),
        ("refused (4xx) / refused but stored (must be 0)", format!("{} / {}", w["refused"], w["refused_present"])),
        (
            "outbox rows since the webhook was attached (gap-free)",
            format!("{} ({})", h["outbox_rows_since_attach"], h["gap_free"]),
        ),
        ("… delivered (distinct ids) / missing (must be 0)", format!("{} / {}", h["delivered_distinct"], h["missing"])),
        ("… duplicate deliveries (at-least-once)", h["duplicate_deliveries"].to_string()),
        (
            "… acknowledged writes whose change was not delivered (must be 0)",
            h["acknowledged_writes_not_delivered"].to_string(),
        ),
        ("… seconds for the webhook to drain after the load", f(&h["drain_seconds"])),
        ("passed", s["passed"].to_string()),
    ];
    for (k, v) in rows {
        m.push_str(&format!("| {k} | {v} |\n"));
    }
    m
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("check") => (|| {
            let a = Args::parse(&args[1..])?;
            let mut findings = Vec::new();
            let c = check(
                addr(&a.get("addr")?)?,
                &tokens(Path::new(&a.get("tokens")?))?,
                Path::new(&a.get("journal")?),
                &mut findings,
            )?;
            for f in &findings {
                eprintln!("{f}");
            }
            println!("{c:?}");
            Ok(c.lost == 0 && c.duplicated == 0 && c.wrong_seq == 0 && c.unacknowledged_duplicated == 0)
        })(),
        _ => Err("usage: consentry-soak run|check … (see the source's header)".into()),
    };
    match out {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("consentry-soak: {e}");
            ExitCode::from(2)
        }
    }
}
