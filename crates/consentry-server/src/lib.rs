//! The Consentry HTTP service: a thin front end over [`consentry_app::Session`]. Each handler reads a request,
//! calls one use case on a blocking thread (the ledger's stores are synchronous) and renders the result; every
//! rule lives in `consentry-app`. Every error is an RFC 9457 problem ([`problem`]).
//!
//! Routes: `/healthz`, `/readyz`, and the member's own data under `/v1/me/` (the member is the bearer token's
//! subject; no URL names a member).

pub mod auth;
mod events;
pub mod evidence;
pub mod me;
pub mod operator;
pub mod problem;
pub mod webhooks;
pub mod websession;

pub use auth::{Caller, EvidenceReader, Member, Operator};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use consentry_app::member::MemberChoice;
use consentry_app::{AppError, ErrorKind, Session};
use consentry_policy::{Action, Source};
use problem::{PROBLEM_JSON, Problem, problem_for_status};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
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

/// The service's routes with their layers: body limit, timeout, panics as 500 problems, errors as problems.
pub fn router(session: Arc<Session>) -> Router {
    layers(routes(session))
}

fn routes(session: Arc<Session>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/me/consents", get(my_consents))
        .route("/v1/me/consents/{purpose}", put(put_consent))
        .route("/v1/me/history", get(my_history))
        .route("/v1/me/receipts/{seq}", get(my_receipt))
        .route("/v1/me/lineage", get(my_lineage))
        .merge(events::routes())
        .merge(evidence::routes())
        .merge(me::routes())
        .merge(operator::routes())
        .merge(websession::routes())
        .fallback(|| async { problem_for_status(StatusCode::NOT_FOUND) })
        .with_state(session)
}

/// The layers every route of the service gets (public so a test can put a route of its own under them).
pub fn layers(routes: Router) -> Router {
    routes
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        // Outside the limit and the timeout, so their bare 413 and 408 become problems too.
        .layer(axum::middleware::map_response(as_problem))
        .layer(CatchPanicLayer::custom(panic_problem))
}

/// Serves `router(session)` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    session: Arc<Session>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(session)).with_graceful_shutdown(shutdown).await
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
fn panic_problem(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
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

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(session): State<Shared>) -> Result<Json<Value>, Problem> {
    let entries = call(&session, |s| {
        s.ledger().and_then(|l| Ok(l.store().len()?)).map_err(|e| e.with_kind(ErrorKind::Unavailable))
    })
    .await?;
    Ok(Json(json!({ "status": "ready", "entries": entries })))
}

async fn my_consents(State(session): State<Shared>, Member(me): Member) -> Result<Json<Value>, Problem> {
    let purposes = call(&session, move |s| s.member_consents(me, consentry_ledger::now())).await?;
    Ok(Json(json!({ "member": me, "purposes": purposes })))
}

/// The body of `PUT /v1/me/consents/{purpose}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    state: ConsentState,
    notice_version: u32,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum ConsentState {
    Granted,
    Withdrawn,
}

/// A JSON body that did not parse: a 400 (or 413, 415) problem saying why.
fn body_problem(e: JsonRejection) -> Problem {
    let status = e.status();
    let mut p = problem_for_status(status);
    if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY {
        p = Problem::from(AppError::bad_input(format!(
            "the body is not a consent choice ({}): send {{\"state\": \"granted\"|\"withdrawn\", \"notice_version\": N}}",
            e.body_text()
        )));
    }
    p
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
                Problem::from(AppError::bad_input(format!(
                    "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                )))
            }),
    }
}

async fn put_consent(
    State(session): State<Shared>,
    Member(me): Member,
    purpose: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<ConsentBody>, JsonRejection>,
) -> Result<Response, Problem> {
    let Path(purpose) = purpose.map_err(|e| Problem::from(AppError::bad_input(e.body_text())))?;
    let Json(body) = body.map_err(body_problem)?;
    let idempotency_key = idempotency_key(&headers)?;
    let gpc = headers.get("sec-gpc").is_some_and(|v| v.as_bytes() == b"1");
    let choice = MemberChoice {
        member: me,
        purpose,
        action: match body.state {
            ConsentState::Granted => Action::Grant,
            ConsentState::Withdrawn => Action::Withdraw,
        },
        notice_version: body.notice_version,
        source: Source::Api,
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
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<usize>,
    before: Option<u64>,
}

async fn my_history(
    State(session): State<Shared>,
    Member(me): Member,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| Problem::from(AppError::bad_input(e.body_text())))?;
    let limit = q.limit.unwrap_or(DEFAULT_HISTORY_PAGE);
    let page = call(&session, move |s| s.member_history(me, limit, q.before)).await?;
    let next = page.next_before.map(|b| format!("/v1/me/history?limit={limit}&before={b}"));
    Ok(Json(json!({ "member": me, "events": page.events, "next_before": page.next_before, "next": next })))
}

async fn my_receipt(
    State(session): State<Shared>,
    Member(me): Member,
    seq: Result<Path<u64>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    let Path(seq) = seq.map_err(|_| {
        Problem::from(AppError::new(ErrorKind::NotFound, "a receipt is named by its ledger position (a number)"))
    })?;
    let receipt = call(&session, move |s| s.member_receipt(me, seq)).await?;
    let value = serde_json::to_value(&receipt).map_err(|e| Problem::internal(format!("encoding the receipt: {e}")))?;
    Ok(Json(value))
}

async fn my_lineage(State(session): State<Shared>, Member(me): Member) -> Result<Json<Value>, Problem> {
    let lineage = call(&session, move |s| s.member_lineage(me)).await?;
    let value = serde_json::to_value(&lineage).map_err(|e| Problem::internal(format!("encoding the lineage: {e}")))?;
    Ok(Json(value))
}
