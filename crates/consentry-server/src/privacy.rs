//! The privacy centre's data (`/v1/me/data`, `/v1/me/data-uses`, `/v1/me/gpc`): translations of
//! [`Session::member_data`], [`Session::member_data_uses`] and [`Session::member_gpc`]. The member is the caller.

use crate::problem::{PROBLEM_JSON, Problem};
use crate::{Member, Shared, call, idempotency_key, sends_gpc, webhooks};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use consentry_app::Session;
use consentry_app::member::MemberConsent;
use consentry_app::privacy::{DataUses, MemberData};
use serde_json::{Value, json};

/// The privacy centre's routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/me/data", get(my_data))
        .route("/v1/me/data-uses", get(my_data_uses))
        .route("/v1/me/gpc", post(my_gpc))
}

/// The data the platform holds about me, by category, with examples from my own rows as training would see them.
#[utoipa::path(
    get,
    path = "/v1/me/data",
    tag = "member",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's data by category: rows, up to three examples from their own rows \
         (free text redacted, private messages one snippet), the features that may use it, and notes on anything \
         that could not be read", body = MemberData),
        (status = 404, description = "The member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
    )
)]
pub async fn my_data(State(session): State<Shared>, Member(me): Member) -> Result<Json<MemberData>, Problem> {
    Ok(Json(call(&session, move |s: &Session| s.member_data(me)).await?))
}

/// Where my data went: each model version it entered, its status for me, and my privacy loss.
#[utoipa::path(
    get,
    path = "/v1/me/data-uses",
    tag = "member",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One item per model version the caller's data entered (in use, removal \
         pending with its deadline, removed with when and by which version, superseded, retired) and their \
         privacy loss", body = DataUses),
        (status = 404, description = "The member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
    )
)]
pub async fn my_data_uses(State(session): State<Shared>, Member(me): Member) -> Result<Json<DataUses>, Problem> {
    Ok(Json(call(&session, move |s: &Session| s.member_data_uses(me)).await?))
}

/// `POST /v1/me/gpc`: what honouring the signal appended, and the member's consents after it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct GpcResult {
    /// The member.
    member: u64,
    /// The GPC withdrawals appended now (empty when nothing the signal covers was in use, or it was already
    /// honoured); a retry with the same Idempotency-Key lists the first attempt's, `duplicate` set.
    appended: Vec<crate::openapi::GpcAppend>,
    /// Every purpose's state after it.
    purposes: Vec<MemberConsent>,
}

/// My browser sends Global Privacy Control: withdraw what the signal covers and is in use, once.
#[utoipa::path(
    post,
    path = "/v1/me/gpc",
    tag = "member",
    security(("bearer" = [])),
    params(
        ("Sec-GPC" = String, Header, description = "Must be `1`: the browser's Global Privacy Control signal"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key appends nothing and \
         lists the first attempt's withdrawals"),
    ),
    responses(
        (status = 200, description = "The withdrawals appended (possibly none) and the caller's consents after",
         body = GpcResult),
        (status = 400, description = "No `Sec-GPC: 1` header, or a malformed Idempotency-Key", body = Problem,
         content_type = PROBLEM_JSON),
        (status = 404, description = "The member is not in the ledger", body = Problem, content_type = PROBLEM_JSON),
    )
)]
pub async fn my_gpc(
    State(session): State<Shared>,
    Member(me): Member,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    if !sends_gpc(&headers) {
        return Err(Problem::bad_input(
            "this request carries no Global Privacy Control signal: send the header `Sec-GPC: 1` (a browser with GPC \
             on sends it), or change your choices one by one with PUT /v1/me/consents/{purpose}",
        ));
    }
    let key = idempotency_key(&headers)?;
    let out = call(&session, move |s: &Session| s.member_gpc(me, key.as_deref())).await?;
    if out.appended.iter().any(|a| !a.duplicate) {
        webhooks::ring();
    }
    let appended: Vec<Value> = out
        .appended
        .iter()
        .map(|a| json!({ "seq": a.event.seq, "purpose": a.event.body.purpose, "duplicate": a.duplicate }))
        .collect();
    Ok(Json(json!({ "member": me, "appended": appended, "purposes": out.consents })))
}

/// The OpenAPI paths of the privacy centre's data.
#[derive(utoipa::OpenApi)]
#[openapi(paths(my_data, my_data_uses, my_gpc))]
pub struct PrivacyApi;
