//! The platform and operator endpoints: the policy in force, purposes and their notices (publishing a new notice
//! version), the operator-actions record, consent coverage, models and their lineage, the unlearning queue and an
//! unlearning pass on demand. Every handler takes [`Operator`]; none writes a member's consent (only [`Member`]
//! handlers do). Each translates one use case of `consentry-app`.
//!
//! [`Member`]: crate::Member

use crate::problem::{PROBLEM_JSON, Problem, json_body_problem, json_value};
use crate::{Operator, Shared, call};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use consentry_app::Session;
use consentry_app::notices::{NewNotice, OperatorActions, PolicyInForce, Published};
use consentry_app::operator::{CoverageQuery, QueuedRequest};
use serde_json::{Value, json};

/// The operator routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/policy", get(policy))
        .route("/v1/purposes", get(purposes))
        .route("/v1/purposes/{purpose}", get(purpose))
        .route("/v1/purposes/{purpose}/notices", post(publish_notice))
        .route("/v1/operator-actions", get(operator_actions))
        .route("/v1/coverage", get(coverage))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/unlearning", get(unlearning))
        .route("/v1/jobs/unlearn", post(run_unlearn))
}

fn bad(e: impl std::fmt::Display) -> Problem {
    Problem::bad_input(e.to_string())
}

fn encoded(v: &impl serde::Serialize) -> Result<Json<Value>, Problem> {
    json_value(v).map(Json)
}

/// The policy in force: purposes with every notice version, categories, jurisdictions and their defaults, and
/// the unlearning deadline.
#[utoipa::path(get, path = "/v1/policy", tag = "operator", security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy in force", body = PolicyInForce),
    ))]
pub async fn policy(State(session): State<Shared>, _op: Operator) -> Result<Json<Value>, Problem> {
    encoded(&call(&session, |s: &Session| s.policy_in_force()).await?)
}

/// Every purpose with its categories and notices.
#[utoipa::path(get, path = "/v1/purposes", tag = "operator", security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"purposes\": [...]}`", body = Object),
    ))]
pub async fn purposes(State(session): State<Shared>, _op: Operator) -> Result<Json<Value>, Problem> {
    let purposes = call(&session, |s: &Session| s.purposes()).await?;
    Ok(Json(json!({ "purposes": purposes })))
}

/// One purpose with its categories and every notice version.
#[utoipa::path(get, path = "/v1/purposes/{purpose}", tag = "operator", security(("bearer" = [])),
    params(("purpose" = String, Path, description = "Purpose key, e.g. train_ai_system.job_recommendations")),
    responses(
        (status = 200, description = "The purpose", body = Object),
        (status = 404, description = "No such purpose", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn purpose(
    State(session): State<Shared>,
    _op: Operator,
    purpose: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    let Path(purpose) = purpose.map_err(|e| bad(e.body_text()))?;
    encoded(&call(&session, move |s: &Session| s.purpose(&purpose)).await?)
}

/// Publishes the next notice version of a purpose, effective now; from then on members must choose under it.
/// Recorded, signed, in the operator-actions record.
#[utoipa::path(post, path = "/v1/purposes/{purpose}/notices", tag = "operator", security(("bearer" = [])),
    params(("purpose" = String, Path, description = "Purpose key")),
    request_body = NewNotice,
    responses(
        (status = 201, description = "Published and in force", body = Published,
         headers(("Location" = String, description = "/v1/purposes/{purpose}"))),
        (status = 400, description = "A malformed body, or a notice the policy compiler refuses", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such purpose", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "The operator-actions record does not verify; nothing published", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn publish_notice(
    State(session): State<Shared>,
    Operator(op): Operator,
    purpose: Result<Path<String>, PathRejection>,
    body: Result<Json<NewNotice>, JsonRejection>,
) -> Result<Response, Problem> {
    let Path(purpose) = purpose.map_err(|e| bad(e.body_text()))?;
    let Json(notice) = body.map_err(|e| {
        json_body_problem(e, r#"a notice: send {"text": "…", "material": true|false, "language": "en"}"#)
    })?;
    let actor = op.describe();
    let location = format!("/v1/purposes/{purpose}");
    let out =
        call(&session, move |s: &Session| s.publish_notice(&purpose, notice, &actor, consentry_ledger::now())).await?;
    let mut response = (StatusCode::CREATED, encoded(&out)?).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The signed record of operator actions and what checking it found.
#[utoipa::path(get, path = "/v1/operator-actions", tag = "operator", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every action, oldest first, and the problems verification found (none: it verifies)", body = OperatorActions),
    ))]
pub async fn operator_actions(State(session): State<Shared>, _op: Operator) -> Result<Json<Value>, Problem> {
    encoded(&call(&session, |s: &Session| s.operator_actions()).await?)
}

/// The query of `GET /v1/coverage`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CoverageParams {
    /// Purpose key [default: every purpose].
    purpose: Option<String>,
    /// Jurisdiction rule key as the policy writes it (`EEA`, `US-CA`, `default`) [default: every one].
    jurisdiction: Option<String>,
    /// First instant: RFC 3339, YYYY-MM-DD or Unix seconds [default: `to`].
    from: Option<String>,
    /// Last instant [default: now].
    to: Option<String>,
    /// Seconds between instants [default: 86400].
    step: Option<i64>,
}

/// Share of members allowed, by purpose × jurisdiction, at each instant from `from` to `to` every `step` seconds.
#[utoipa::path(get, path = "/v1/coverage", tag = "operator", security(("bearer" = [])),
    params(CoverageParams),
    responses(
        (status = 200, description = "`{\"points\": [{at, position, cells: [{purpose, jurisdiction, members, allowed, share}]}]}`", body = Object),
        (status = 400, description = "A bad time, step or range", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such purpose or jurisdiction rule", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn coverage(
    State(session): State<Shared>,
    _op: Operator,
    query: Result<Query<CoverageParams>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(p) = query.map_err(|e| bad(e.body_text()))?;
    let time = |t: Option<String>| t.map(|t| consentry_app::ledger::parse_time(&t)).transpose();
    let q = CoverageQuery {
        purpose: p.purpose,
        jurisdiction: p.jurisdiction,
        from: time(p.from)?,
        to: time(p.to)?,
        step: p.step,
    };
    let points = call(&session, move |s: &Session| s.coverage(&q, consentry_ledger::now())).await?;
    Ok(Json(json!({ "points": points })))
}

/// The query of `GET /v1/models`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ModelsParams {
    /// Only this purpose.
    purpose: Option<String>,
    /// Only this status: training, live, superseded, retired.
    status: Option<String>,
}

/// Registered model versions.
#[utoipa::path(get, path = "/v1/models", tag = "operator", security(("bearer" = [])),
    params(ModelsParams),
    responses(
        (status = 200, description = "`{\"models\": [...]}`", body = Object),
        (status = 400, description = "An unknown status", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn models(
    State(session): State<Shared>,
    _op: Operator,
    query: Result<Query<ModelsParams>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(p) = query.map_err(|e| bad(e.body_text()))?;
    let status = p.status.as_deref().map(consentry_app::operator::model_status).transpose()?;
    let models = call(&session, move |s: &Session| s.models(p.purpose.as_deref(), status)).await?;
    Ok(Json(json!({ "models": models })))
}

/// One model version and its lineage: dataset, shards with member counts, the consent events it rests on, runs.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "operator", security(("bearer" = [])),
    params(("id" = String, Path, description = "Model id or a prefix of 6+ hex digits")),
    responses(
        (status = 200, description = "The model's lineage", body = Object),
        (status = 400, description = "Not a model id (hex digits, 6 or more)", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such model", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn model(
    State(session): State<Shared>,
    _op: Operator,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    let Path(id) = id.map_err(|e| bad(e.body_text()))?;
    encoded(&call(&session, move |s: &Session| s.model_lineage(&id)).await?)
}

/// The query of `GET /v1/unlearning`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnlearningParams {
    /// Every request ever, not only open ones.
    all: Option<bool>,
}

/// `GET /v1/unlearning`: the requests and how many are open and overdue.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: `unlearning` renders the body
struct UnlearningQueue {
    /// The requests (open ones, or every one with `all=true`), by deadline.
    requests: Vec<QueuedRequest>,
    /// Requests not yet completed.
    open: u64,
    /// Open requests past their deadline.
    overdue: u64,
}

/// The unlearning queue with deadlines; overdue requests flagged.
#[utoipa::path(get, path = "/v1/unlearning", tag = "operator", security(("bearer" = [])),
    params(UnlearningParams),
    responses(
        (status = 200, description = "The queue and its counts", body = UnlearningQueue),
        (status = 400, description = "A bad query", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn unlearning(
    State(session): State<Shared>,
    _op: Operator,
    query: Result<Query<UnlearningParams>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(p) = query.map_err(|e| bad(e.body_text()))?;
    let all = p.all.unwrap_or(false);
    let requests = call(&session, move |s: &Session| s.unlearning_queue(all, consentry_ledger::now())).await?;
    let open = requests.iter().filter(|r| r.request.completed_at.is_none()).count();
    // Open and past the deadline, as the schema says (with `all=true`, a request completed late is flagged on its
    // row but is no longer overdue work).
    let overdue = requests.iter().filter(|r| r.overdue && r.request.completed_at.is_none()).count();
    Ok(Json(json!({ "requests": requests, "open": open, "overdue": overdue })))
}

/// Runs one unlearning pass now: new withdrawals become requests, due models are retrained.
#[utoipa::path(post, path = "/v1/jobs/unlearn", tag = "operator", security(("bearer" = [])),
    responses(
        (status = 200, description = "What the pass did: requests opened, retrains, deadline figures", body = Object),
        (status = 409, description = "Another worker is running", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn run_unlearn(State(session): State<Shared>, _op: Operator) -> Result<Json<Value>, Problem> {
    let report = call(&session, |s: &Session| s.run_unlearning_job()).await?;
    encoded(&report)
}

/// The OpenAPI paths of the operator endpoints.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    policy,
    purposes,
    purpose,
    publish_notice,
    operator_actions,
    coverage,
    models,
    model,
    unlearning,
    run_unlearn
))]
pub struct OperatorApi;
