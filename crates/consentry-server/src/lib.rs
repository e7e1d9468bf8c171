//! The Consentry HTTP service: a thin front end over [`consentry_app::Session`]. Each handler reads a request,
//! calls one use case on a blocking thread (the ledger's stores are synchronous) and renders the result; every
//! rule lives in `consentry-app`. Every error is an RFC 9457 problem ([`problem`]).
//!
//! Routes: the web pages (`/`, `/privacy`, `/dashboard`, [`web`]), `/healthz`, `/readyz`, `/metrics` ([`metrics`]), the OpenAPI document at `/v1/openapi.json` and a
//! page listing it at `/v1/docs` ([`openapi`]), the member's own data under `/v1/me/` (the member is the bearer
//! token's subject; no URL names a member), and the auditor's evidence and audit runs ([`evidence`]). Cross-cutting layers: [`observe`] (metrics, one log line per request, rate limits with
//! [`limits`]), body limit, timeout, panics as 500 problems, optional CORS.

pub mod auth;
pub mod charts;
pub mod dashboard;
mod events;
pub mod evidence;
pub mod limits;
pub mod me;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod operator;
pub mod privacy;
pub mod problem;
pub mod report;
pub mod web;
pub mod webhooks;
pub mod websession;

pub use auth::{Caller, EvidenceReader, Member, Operator};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use consentry_app::member::MemberChoice;
use consentry_app::{AppError, ErrorKind, Session};
use consentry_policy::{Action, Source};
use problem::{PROBLEM_JSON, Problem, json_body_problem, json_value, problem_for_status};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The largest request body accepted: a consent choice is a few dozen bytes.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How long a request may take before the service answers 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest idempotency key a client may send.
const MAX_IDEMPOTENCY_KEY: usize = 200;
/// History page size when the client names none.
const DEFAULT_HISTORY_PAGE: usize = 50;

/// The shared session every handler calls.
pub(crate) type Shared = Arc<Session>;

/// How the service is configured beyond its data: limits, CORS and the webhooks it reports on.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Per-principal and per-IP rate limits.
    pub limits: limits::RateLimits,
    /// Origins a browser may call the service from (CORS); none: CORS is off.
    pub cors_origins: Vec<HeaderValue>,
    /// The webhooks the outbox is delivered to, for their lag in `/metrics`.
    pub webhooks: Vec<consentry_app::config::WebhookConfig>,
}

/// An origin for [`Options::cors_origins`] (`https://app.example.com`: scheme and host, optional port, no path).
pub fn cors_origin(origin: &str) -> Result<HeaderValue, String> {
    let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    match (rest, HeaderValue::from_str(origin)) {
        (Some(host), Ok(v)) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => Ok(v),
        _ => Err(format!(
            "the CORS origin {origin:?} is not an origin: give scheme and host (and port), e.g. https://app.example.com"
        )),
    }
}

/// The service's routes with their layers, under the default options.
pub fn router(session: Arc<Session>) -> Router {
    router_with(session, &Options::default())
}

/// The service's routes with their layers: metrics, logs and rate limits, body limit, timeout, panics as 500
/// problems, errors as problems, CORS when origins are given.
pub fn router_with(session: Arc<Session>, options: &Options) -> Router {
    layers_with(routes(session), options)
}

fn routes(session: Arc<Session>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::scrape))
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/v1/docs", get(openapi::docs_page))
        .route("/v1/me/consents", get(my_consents))
        .route("/v1/me/consents/{purpose}", put(put_consent))
        .route("/v1/me/history", get(my_history))
        .route("/v1/me/receipts/{seq}", get(my_receipt))
        .route("/v1/me/lineage", get(my_lineage))
        .merge(dashboard::routes())
        .merge(events::routes())
        .merge(evidence::routes())
        .merge(me::routes())
        .merge(operator::routes())
        .merge(privacy::routes())
        .merge(websession::routes())
        .merge(web::routes())
        .fallback(|| async { problem_for_status(StatusCode::NOT_FOUND) })
        .with_state(session)
}

/// The layers every route of the service gets (public so a test can put a route of its own under them).
pub fn layers(routes: Router) -> Router {
    layers_with(routes, &Options::default())
}

/// [`layers`] under `options`.
pub fn layers_with(routes: Router, options: &Options) -> Router {
    let conventions = Arc::new(observe::Conventions::new(options.limits, options.webhooks.clone()));
    let routes = routes
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        // Outside the limit and the timeout, so their bare 413 and 408 become problems too.
        .layer(axum::middleware::map_response(as_problem))
        .layer(CatchPanicLayer::custom(panic_problem))
        // Outside the panic handler, so a panic's 500 is counted and logged like any answer.
        .layer(axum::middleware::from_fn_with_state(conventions, observe::observe));
    if options.cors_origins.is_empty() {
        return routes;
    }
    routes.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(options.cors_origins.iter().cloned()))
            .allow_methods([Method::GET, Method::PUT, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("sec-gpc"),
            ])
            .expose_headers([header::LOCATION, header::RETRY_AFTER]),
    )
}

/// Serves `router(session)` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    session: Arc<Session>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, session, &Options::default(), shutdown).await
}

/// [`serve`] under `options`; the client's address is known to the per-IP rate limit.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    session: Arc<Session>,
    options: &Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router_with(session, options).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM: the signals a terminal or a service manager stops the service with.
pub async fn shutdown_signal() {
    let interrupt = async {
        // If the handler cannot be installed, only SIGTERM stops the service.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// A panic in a handler is a 500 problem, never a dropped connection.
fn panic_problem(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    observe::log_panic(payload.as_ref());
    Problem::internal("the service failed while answering; the failure is a bug, please report it").into_response()
}

/// Error responses made by a layer or by axum without a problem body get one.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if (status.is_client_error() || status.is_server_error()) && !is_problem {
        return problem_for_status(status).into_response();
    }
    response
}

/// Runs a use case on a blocking thread with the shared session.
pub(crate) async fn call<T: Send + 'static>(
    session: &Shared,
    f: impl FnOnce(&Session) -> consentry_app::Result<T> + Send + 'static,
) -> Result<T, Problem> {
    let s = Arc::clone(session);
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(r) => r.map_err(Problem::from),
        Err(e) if e.is_panic() => Err(Problem::internal("the use case failed; the failure is a bug, please report it")),
        Err(_) => Err(Problem::internal("the service is shutting down")),
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The process is up", body = openapi::Health)))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "The store answers", body = openapi::Readiness),
        (status = 503, description = "The store does not answer", body = Problem, content_type = PROBLEM_JSON),
    ))]
async fn readyz(State(session): State<Shared>) -> Result<Json<Value>, Problem> {
    let entries = call(&session, |s| {
        s.ledger().and_then(|l| Ok(l.store().len()?)).map_err(|e| e.with_kind(ErrorKind::Unavailable))
    })
    .await?;
    Ok(Json(json!({ "status": "ready", "entries": entries })))
}

/// Every purpose, its state for the caller and why, the notice in force and the categories it uses.
#[utoipa::path(get, path = "/v1/me/consents", tag = "member", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's consent per purpose", body = openapi::MyConsents),
        (status = 404, description = "The token's member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
    ))]
async fn my_consents(State(session): State<Shared>, Member(me): Member) -> Result<Json<Value>, Problem> {
    let purposes = call(&session, move |s| s.member_consents(me, consentry_ledger::now())).await?;
    Ok(Json(json!({ "member": me, "purposes": purposes })))
}

/// The body of `PUT /v1/me/consents/{purpose}`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ConsentChoice, example = json!({"state": "granted", "notice_version": 2}))]
struct ConsentBody {
    /// The member's choice.
    state: ConsentState,
    /// The notice version the member was shown (the current one; `GET /v1/me/consents` names it).
    notice_version: u32,
}

/// Grant or withdraw.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum ConsentState {
    Granted,
    Withdrawn,
}

/// The client's `Idempotency-Key` header, if any: 1 to 200 visible ASCII characters.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
            .map(|k| Some(k.to_string()))
            .ok_or_else(|| {
                Problem::bad_input(format!(
                    "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                ))
            }),
    }
}

/// Whether a request carries the browser's Global Privacy Control signal, `Sec-GPC: 1`.
pub(crate) fn sends_gpc(headers: &HeaderMap) -> bool {
    headers.get("sec-gpc").is_some_and(|v| v.as_bytes() == b"1")
}

/// Grants or withdraws one purpose under the notice the member was shown; `Sec-GPC: 1` also records the signal.
#[utoipa::path(put, path = "/v1/me/consents/{purpose}", tag = "member", security(("bearer" = [])),
    params(
        ("purpose" = String, Path, description = "Purpose key, as `GET /v1/me/consents` lists it", example = "train_ai_system.reply_suggestions"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key appends nothing and returns the original event (1 to 200 visible ASCII characters)"),
        ("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal; the policy's GPC rule applies"),
    ),
    request_body(content = ConsentBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Appended", body = openapi::ChoiceResult,
            headers(("Location" = String, description = "The event's receipt"))),
        (status = 200, description = "A retry: the original event", body = openapi::ChoiceResult,
            headers(("Location" = String, description = "The event's receipt"))),
        (status = 400, description = "Malformed body or header", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such purpose, or the token's member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "A stale notice version (the body names the current one), or an Idempotency-Key reused for another choice", body = Problem, content_type = PROBLEM_JSON),
    ))]
async fn put_consent(
    State(session): State<Shared>,
    Member(me): Member,
    purpose: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<ConsentBody>, JsonRejection>,
) -> Result<Response, Problem> {
    let Path(purpose) = purpose.map_err(|e| Problem::bad_input(e.body_text()))?;
    let Json(body) = body.map_err(|e| {
        json_body_problem(e, r#"a consent choice: send {"state": "granted"|"withdrawn", "notice_version": N}"#)
    })?;
    let idempotency_key = idempotency_key(&headers)?;
    let gpc = sends_gpc(&headers);
    let choice = MemberChoice {
        member: me,
        purpose,
        action: match body.state {
            ConsentState::Granted => Action::Grant,
            ConsentState::Withdrawn => Action::Withdraw,
        },
        notice_version: body.notice_version,
        // A choice made through the web session is the privacy centre's (`ui`); one with a bearer token, an app's.
        source: if auth::bearer(&headers).is_ok() { Source::Api } else { Source::Ui },
        idempotency_key,
        gpc,
    };
    let out = call(&session, move |s| s.member_choice(choice)).await?;
    webhooks::ring();
    let seq = out.appended.event.seq;
    let status = if out.appended.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    let gpc: Vec<Value> = out
        .gpc
        .iter()
        .map(|a| json!({ "seq": a.event.seq, "purpose": a.event.body.purpose, "duplicate": a.duplicate }))
        .collect();
    let receipt = format!("/v1/me/receipts/{seq}");
    let body = json!({
        "seq": seq,
        "duplicate": out.appended.duplicate,
        "event": out.appended.event,
        "receipt": receipt,
        "gpc": gpc,
    });
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = receipt.parse() {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The query of `GET /v1/me/history`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Events per page.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// Only events at positions below this one (the previous page's `next_before`).
    before: Option<u64>,
}

/// The caller's consent events, newest first, paged.
#[utoipa::path(get, path = "/v1/me/history", tag = "member", security(("bearer" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "One page of events", body = openapi::MyHistory),
        (status = 400, description = "A malformed query or a limit out of range", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "The token's member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
    ))]
async fn my_history(
    State(session): State<Shared>,
    Member(me): Member,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_input(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_HISTORY_PAGE);
    let page = call(&session, move |s| s.member_history(me, limit, q.before)).await?;
    let next = page.next_before.map(|b| format!("/v1/me/history?limit={limit}&before={b}"));
    Ok(Json(json!({ "member": me, "events": page.events, "next_before": page.next_before, "next": next })))
}

/// The signed receipt of one of the caller's ledger entries; it verifies offline with the public key.
#[utoipa::path(get, path = "/v1/me/receipts/{seq}", tag = "member", security(("bearer" = [])),
    params(("seq" = u64, Path, description = "The entry's ledger position")),
    responses(
        (status = 200, description = "The receipt", body = Object),
        (status = 404, description = "No entry of the caller's at that position", body = Problem, content_type = PROBLEM_JSON),
    ))]
async fn my_receipt(
    State(session): State<Shared>,
    Member(me): Member,
    seq: Result<Path<u64>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    let Path(seq) = seq.map_err(|_| {
        Problem::from(AppError::new(ErrorKind::NotFound, "a receipt is named by its ledger position (a number)"))
    })?;
    let receipt = call(&session, move |s| s.member_receipt(me, seq)).await?;
    Ok(Json(json_value(&receipt)?))
}

/// Where the caller's data went: datasets, models, shards, unlearning, and their privacy loss.
#[utoipa::path(get, path = "/v1/me/lineage", tag = "member", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's lineage", body = openapi::MyLineage),
        (status = 404, description = "The token's member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
    ))]
async fn my_lineage(State(session): State<Shared>, Member(me): Member) -> Result<Json<Value>, Problem> {
    let lineage = call(&session, move |s| s.member_lineage(me)).await?;
    Ok(Json(json_value(&lineage)?))
}
