//! The member's export and erasure (`/v1/me/export`, `/v1/me/erasure`): translations of
//! [`Session::member_export`], [`Session::member_erasure`] and [`Session::member_erasure_progress`].

use crate::problem::{PROBLEM_JSON, Problem, json_value};
use crate::{Member, Shared, call, idempotency_key};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use consentry_app::Session;
use consentry_app::erasure::{ErasureProgress, MemberExport};
use serde_json::{Value, json};

/// Where a member's erasure progress is read.
const PROGRESS: &str = "/v1/me/erasure";

/// The member export and erasure routes.
pub fn routes() -> Router<Shared> {
    Router::new().route("/v1/me/export", get(my_export)).route(PROGRESS, get(my_erasure).post(erase_me))
}

/// The receipt link of a ledger entry of the caller's.
fn receipt_link(seq: u64) -> String {
    format!("/v1/me/receipts/{seq}")
}

/// An event as JSON with its receipt link beside its fields.
fn with_receipt(event: &consentry_ledger::Event) -> Result<Value, Problem> {
    let mut v = json_value(event)?;
    if let Value::Object(m) = &mut v {
        m.insert("receipt".into(), json!(receipt_link(event.seq)));
    }
    Ok(v)
}

/// An export or progress as JSON, each event with its receipt link.
fn linked(value: &impl serde::Serialize, events: &[consentry_ledger::Event], field: &str) -> Result<Value, Problem> {
    let mut v = json_value(value)?;
    let linked = events.iter().map(with_receipt).collect::<Result<Vec<_>, _>>()?;
    if let Value::Object(m) = &mut v {
        m.insert(field.into(), Value::Array(linked));
    }
    Ok(v)
}

/// All my data and history as one JSON document (GDPR Art. 15 and 20), as a download.
#[utoipa::path(
    get,
    path = "/v1/me/export",
    tag = "member",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Everything recorded about the caller: consents, every event with its receipt \
         link, facts, datasets, models, unlearning requests and privacy loss", body = MemberExport,
         headers(("Content-Disposition" = String, description = "attachment; filename=…"))),
        (status = 404, description = "The member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
    )
)]
pub async fn my_export(State(session): State<Shared>, Member(me): Member) -> Result<Response, Problem> {
    let export = call(&session, move |s: &Session| s.member_export(me, consentry_ledger::now())).await?;
    let body = linked(&export, &export.events, "events")?;
    let mut response = Json(body).into_response();
    let disposition = format!("attachment; filename=\"consentry-export-member-{me}.json\"");
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Erase me: withdraw every purpose not yet withdrawn (source `erasure`) and start unlearning.
#[utoipa::path(
    post,
    path = "/v1/me/erasure",
    tag = "member",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the same withdrawals")),
    responses(
        (status = 202, description = "Withdrawn; unlearning started. The withdrawals' receipts and the progress link",
         body = ErasureProgress, headers(("Location" = String, description = "/v1/me/erasure"))),
        (status = 400, description = "A malformed Idempotency-Key", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "The member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
    )
)]
pub async fn erase_me(
    State(session): State<Shared>,
    Member(me): Member,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let key = idempotency_key(&headers)?;
    let out = call(&session, move |s: &Session| s.member_erasure(me, key.as_deref())).await?;
    let withdrawals: Vec<Value> = out
        .withdrawals
        .iter()
        .zip(&out.receipts)
        .map(|(a, receipt)| {
            json!({
                "seq": a.event.seq,
                "purpose": a.event.body.purpose,
                "duplicate": a.duplicate,
                "receipt": receipt_link(a.event.seq),
                "receipt_document": receipt,
            })
        })
        .collect();
    let mut body = linked(&out.progress, &out.progress.withdrawals, "withdrawals_recorded")?;
    if let Value::Object(m) = &mut body {
        m.insert("withdrawals".into(), Value::Array(withdrawals));
        m.insert("progress".into(), json!(PROGRESS));
        m.insert("queue_note".into(), json!(out.queue_note));
    }
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_static(PROGRESS));
    Ok(response)
}

/// Where my erasure stands: per affected model version and shard, queued or done, with dates and deadline.
#[utoipa::path(
    get,
    path = "/v1/me/erasure",
    tag = "member",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The erasure's withdrawals and per model/shard progress", body = ErasureProgress),
        (status = 404, description = "The member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
    )
)]
pub async fn my_erasure(State(session): State<Shared>, Member(me): Member) -> Result<Json<Value>, Problem> {
    let progress = call(&session, move |s: &Session| s.member_erasure_progress(me)).await?;
    Ok(Json(linked(&progress, &progress.withdrawals, "withdrawals")?))
}

/// The OpenAPI paths of the member's export and erasure.
#[derive(utoipa::OpenApi)]
#[openapi(paths(my_export, erase_me, my_erasure))]
pub struct MeApi;
