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

/// The route, for the service's route table.
pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/v1/events", get(events))
}

/// The query of `GET /v1/events`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<u64>,
    limit: Option<usize>,
    wait: Option<u64>,
}

async fn events(
    State(session): State<Shared>,
    _operator: Operator,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| Problem::from(AppError::bad_input(e.body_text())))?;
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
