//! `GET /v1/events?after=ID&limit=N&wait=SECS`: the outbox for consumers that pull (the platform's systems, with an
//! operator key). Answers at once when rows exist after `after`; otherwise waits up to `wait` seconds for new ones
//! (woken at once by this process's appends, polling the store for other processes'), then answers, possibly empty.
//! The next request passes `next_after`.

use crate::webhooks::{IDLE_POLL, wait_for_rows};
use crate::{Operator, REQUEST_TIMEOUT, Shared, call};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use consentry_app::AppError;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::problem::Problem;

/// Rows per answer when the consumer names no limit.
const DEFAULT_LIMIT: usize = 100;
/// The most rows one answer carries.
const MAX_LIMIT: usize = 1000;
/// The longest `wait` accepted (seconds); the wait itself stops short of the request timeout.
const MAX_WAIT_SECS: u64 = 30;

/// The OpenAPI paths of the events endpoint.
#[derive(utoipa::OpenApi)]
#[openapi(paths(events))]
pub struct EventsApi;

/// The route, for the service's route table.
pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/v1/events", get(events))
}

/// The query of `GET /v1/events`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Only rows with an id above this one (the previous answer's `next_after`; 0: from the start).
    after: Option<u64>,
    /// Rows per answer.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Seconds to wait for a row when none is there yet.
    #[param(maximum = 30)]
    wait: Option<u64>,
}

/// One outbox row, as a webhook delivery carries it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: `event_json` renders the row
struct OutboxEvent {
    /// The outbox id: gap-free, increasing in commit order, the same in every delivery of the row.
    id: u64,
    /// `consent.changed` or `unlearning.completed`.
    #[schema(rename = "type")]
    kind: String,
    /// When the row was written (Unix seconds).
    created: i64,
    /// The payload (a consent change: member, purpose, action, seq, times, notice version, source).
    data: Object,
}

/// A page of the outbox.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: the handler renders the page
struct EventsPage {
    /// The rows after `after`, oldest first.
    events: Vec<OutboxEvent>,
    /// Pass as `after` next time.
    next_after: u64,
    /// The next request's path.
    next: String,
}

/// A JSON object (the schema of a payload whose fields depend on the event type).
type Object = serde_json::Map<String, Value>;

/// The outbox's rows after `after`, for consumers that pull; long-polls up to `wait` seconds when there are none.
#[utoipa::path(get, path = "/v1/events", tag = "operator", security(("bearer" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "Rows after `after` (possibly none once `wait` ran out)", body = EventsPage),
        (status = 400, description = "A malformed query, a limit or wait out of range", body = Problem,
         content_type = "application/problem+json"),
    ))]
async fn events(
    State(session): State<Shared>,
    _operator: Operator,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_input(e.body_text()))?;
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::bad_input(format!("limit must be 1 to {MAX_LIMIT}, got {limit}")).into());
    }
    let wait = q.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(AppError::bad_input(format!("wait must be 0 to {MAX_WAIT_SECS} seconds, got {wait}")).into());
    }
    let wait = Duration::from_secs(wait).min(REQUEST_TIMEOUT.saturating_sub(Duration::from_secs(2)));
    let deadline = Instant::now() + wait;
    let rows = loop {
        let rows = call(&session, move |s| s.outbox_after(after, limit)).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if !rows.is_empty() || left.is_zero() {
            break rows;
        }
        wait_for_rows(left.min(IDLE_POLL)).await;
    };
    let next_after = rows.last().map_or(after, |r| r.id);
    let events: Vec<Value> = rows.iter().map(consentry_app::webhooks::event_json).collect();
    Ok(Json(json!({
        "events": events,
        "next_after": next_after,
        "next": format!("/v1/events?after={next_after}&limit={limit}"),
    })))
}
