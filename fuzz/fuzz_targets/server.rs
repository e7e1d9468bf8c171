//! The HTTP service's untrusted input: request bodies (the JSON of `PUT /v1/me/consents/{purpose}` and
//! `POST /v1/purposes/{purpose}/notices`), path parameters, query strings, credentials and the `Idempotency-Key`
//! and `Sec-GPC` headers, through the whole router (every layer) with `tower::ServiceExt::oneshot` over a copy of
//! the fixture data directory. Input: a route byte, a credential byte, then `PARAM\nHEADER\nBODY`. No answer is a
//! 500 (the service turns a handler's panic into a 500 problem, so a panic shows up here as one).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use consentry_app::keys::Role;
use consentry_app::{DataDir, Session};
use consentry_server::Options;
use consentry_server::limits::{RateLimit, RateLimits};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};
use tower::ServiceExt;

/// A member of the fixture's ledger.
const MEMBER: u64 = 5;

struct Env {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    member: String,
    operator: String,
    auditor: String,
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let dir = common::scratch();
    let data = dir.path().join("data");
    common::copy_dir(&common::fixture(), &data);
    let session = Session::open(DataDir::new(&data), None).expect("the fixture opens");
    let now = consentry_ledger::now();
    let member = session.mint_member_token(MEMBER, 30 * 86_400, now).expect("a member token").token;
    let operator = session.create_api_key(Role::Operator, "fuzz", now).expect("an operator key").secret;
    let auditor = session.create_api_key(Role::Auditor, "fuzz", now).expect("an auditor key").secret;
    // Rate limits off: the fuzzer is one caller sending thousands of requests a second.
    let unlimited = RateLimit { per_second: 1e12, burst: 1e12 };
    let limits = RateLimits { principal: unlimited, anonymous: unlimited, max_tracked: 100_000 };
    let router = consentry_server::router_with(Arc::new(session), &Options { limits, ..Options::default() });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    Env { _dir: dir, rt, router, member, operator, auditor }
});

/// (method, path with `{}` for the parameter; a `?{}` ending takes it as the query string).
const ROUTES: &[(Method, &str)] = &[
    (Method::PUT, "/v1/me/consents/{}"),
    (Method::POST, "/v1/purposes/{}/notices"),
    (Method::GET, "/v1/me/history?{}"),
    (Method::GET, "/v1/events?{}"),
    (Method::GET, "/v1/log/proofs/inclusion?{}"),
    (Method::GET, "/v1/log/proofs/consistency?{}"),
    (Method::GET, "/v1/me/receipts/{}"),
    (Method::GET, "/v1/log/receipts/{}"),
    (Method::GET, "/v1/log/checkpoints/{}"),
    (Method::GET, "/v1/charts/coverage.svg?{}"),
    (Method::GET, "/v1/coverage?{}"),
    (Method::GET, "/v1/models?{}"),
    (Method::GET, "/v1/unlearning?{}"),
    (Method::GET, "/v1/models/{}"),
    (Method::GET, "/v1/purposes/{}"),
    (Method::POST, "/v1/me/gpc"),
    (Method::POST, "/v1/session"),
    (Method::GET, "/v1/audits/{}"),
    (Method::GET, "/v1/me/consents"),
];

fn split_line(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == b'\n') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let [route, cred, rest @ ..] = data else { return };
    let (method, template) = &ROUTES[usize::from(*route) % ROUTES.len()];
    let (param, rest) = split_line(rest);
    let (header, body) = split_line(rest);
    let Ok(param) = std::str::from_utf8(param) else { return };
    // `wait` long-polls for up to its value in seconds: a slow answer by design, not a hang.
    if template.starts_with("/v1/events") && param.contains("wait") {
        return;
    }
    let env = &*ENV;
    let uri = template.replace("{}", param);
    let mut req = Request::builder().method(method.clone()).uri(uri);
    let token = match cred % 5 {
        0 => None,
        1 => Some(env.member.clone()),
        2 => Some(env.operator.clone()),
        3 => Some(env.auditor.clone()),
        _ => Some(String::from_utf8_lossy(header).into_owned()),
    };
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if cred % 5 != 4 && !header.is_empty() {
        let name = if cred & 0x80 != 0 { "sec-gpc" } else { "idempotency-key" };
        req = req.header(name, header);
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else { return };
    let (status, text) = env.rt.block_on(async {
        let response = env.router.clone().oneshot(req).await.expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20).await.unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    });
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {template} [{param}]: {text}");
});
