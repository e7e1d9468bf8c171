//! The privacy officer's dashboard data: registered datasets with their exclusion counts, the unlearning queue's
//! deadline compliance, webhook delivery state, and the three charts as SVG ([`crate::charts`]). Every handler takes
//! [`Operator`] and translates one use case of `consentry_app::dashboard`; the charts only render what those return.

use crate::auth::Operator;
use crate::charts::{self, DurationGroup, LineSeries, StackedBar};
use crate::observe::Conventions;
use crate::problem::{PROBLEM_JSON, Problem, json_value};
use crate::{Shared, call};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use consentry_app::Session;
use consentry_app::dashboard::{DatasetOverview, ManifestState, UnlearningSummary, WebhookHealth, short};
use consentry_app::operator::CoverageQuery;
use serde_json::{Value, json};
use std::sync::Arc;

/// The SVG media type.
pub const SVG: &str = "image/svg+xml";

/// Instants the coverage chart shows when the query names no `from` (30 days at the default step).
const DEFAULT_CHART_POINTS: i64 = 30;

/// The dashboard routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/datasets", get(datasets))
        .route("/v1/unlearning/summary", get(unlearning_summary))
        .route("/v1/webhooks", get(webhooks))
        .route("/v1/charts/coverage.svg", get(coverage_svg))
        .route("/v1/charts/exclusions.svg", get(exclusions_svg))
        .route("/v1/charts/unlearning.svg", get(unlearning_svg))
}

/// `GET /v1/datasets`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
struct Datasets {
    /// Every registered dataset, newest first.
    datasets: Vec<DatasetOverview>,
}

/// Every registered dataset, newest first: purpose, creation, members and rows included, rows excluded by reason.
#[utoipa::path(get, path = "/v1/datasets", tag = "operator", security(("bearer" = [])),
    responses((status = 200, description = "The datasets", body = Datasets)))]
pub async fn datasets(State(session): State<Shared>, _op: Operator) -> Result<Json<Value>, Problem> {
    let datasets = call(&session, |s: &Session| s.datasets_overview()).await?;
    Ok(Json(json!({ "datasets": json_value(&datasets)? })))
}

/// The unlearning queue and deadline compliance: open, overdue, on time and late counts, median and 95th
/// percentile time to removal, the oldest open request, and the same per model version.
#[utoipa::path(get, path = "/v1/unlearning/summary", tag = "operator", security(("bearer" = [])),
    responses((status = 200, description = "The summary", body = UnlearningSummary)))]
pub async fn unlearning_summary(State(session): State<Shared>, _op: Operator) -> Result<Json<Value>, Problem> {
    let summary = call(&session, |s: &Session| s.unlearning_summary(consentry_ledger::now())).await?;
    json_value(&summary).map(Json)
}

/// `GET /v1/webhooks`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
struct Webhooks {
    /// Each configured webhook, in configuration order.
    webhooks: Vec<WebhookHealth>,
}

/// Delivery state of each configured webhook: its host, how far behind the outbox it is, its last acknowledged id
/// and how long the oldest undelivered row has waited.
#[utoipa::path(get, path = "/v1/webhooks", tag = "operator", security(("bearer" = [])),
    responses((status = 200, description = "The webhooks (none configured: an empty list)", body = Webhooks)))]
pub async fn webhooks(
    State(session): State<Shared>,
    _op: Operator,
    conventions: Option<Extension<Arc<Conventions>>>,
) -> Result<Json<Value>, Problem> {
    let hooks = conventions.map(|Extension(c)| c.webhooks.clone()).unwrap_or_default();
    let health = call(&session, move |s: &Session| s.webhook_health(&hooks, consentry_ledger::now())).await?;
    Ok(Json(json!({ "webhooks": json_value(&health)? })))
}

/// An SVG answer (never cached: the figures change with every consent choice).
fn svg(body: String) -> Response {
    ([(header::CONTENT_TYPE, SVG), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// The query of `GET /v1/charts/coverage.svg`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CoverageChartParams {
    /// Jurisdiction rule key as the policy writes it (`EEA`, `US-CA`, `default`) [default: every one, summed].
    jurisdiction: Option<String>,
    /// First instant: RFC 3339, YYYY-MM-DD or Unix seconds [default: 29 steps before `to`, so 30 instants].
    from: Option<String>,
    /// Last instant [default: now].
    to: Option<String>,
    /// Seconds between instants [default: 86400].
    step: Option<i64>,
}

/// Consent coverage over time as an SVG line chart: the share of members allowed, one line per purpose.
#[utoipa::path(get, path = "/v1/charts/coverage.svg", tag = "operator", security(("bearer" = [])),
    params(CoverageChartParams),
    responses(
        (status = 200, description = "The chart", body = String, content_type = "image/svg+xml"),
        (status = 400, description = "A bad time, step or range", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such jurisdiction rule", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn coverage_svg(
    State(session): State<Shared>,
    _op: Operator,
    query: Result<Query<CoverageChartParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(p) = query.map_err(|e| Problem::bad_input(e.body_text()))?;
    let time = |t: Option<String>| t.map(|t| consentry_app::ledger::parse_time(&t)).transpose();
    let now = consentry_ledger::now();
    let to = time(p.to)?.unwrap_or(now);
    let step = p.step.unwrap_or(86_400);
    let from = time(p.from)?.unwrap_or_else(|| to.saturating_sub(step.saturating_mul(DEFAULT_CHART_POINTS - 1)));
    let scope =
        p.jurisdiction.as_ref().map_or_else(|| "all jurisdictions".to_string(), |j| format!("jurisdiction {j}"));
    let q =
        CoverageQuery { purpose: None, jurisdiction: p.jurisdiction, from: Some(from), to: Some(to), step: Some(step) };
    let series = call(&session, move |s: &Session| s.coverage_series(&q, now)).await?;
    let lines: Vec<LineSeries> = series
        .into_iter()
        .map(|s| LineSeries { name: s.name, points: s.points.iter().map(|p| (p.at, p.share)).collect() })
        .collect();
    Ok(svg(charts::coverage_chart(&lines, &scope)))
}

/// Rows excluded by reason per dataset as an SVG horizontal stacked bar chart, newest dataset first.
#[utoipa::path(get, path = "/v1/charts/exclusions.svg", tag = "operator", security(("bearer" = [])),
    responses((status = 200, description = "The chart", body = String, content_type = "image/svg+xml")))]
pub async fn exclusions_svg(State(session): State<Shared>, _op: Operator) -> Result<Response, Problem> {
    let datasets = call(&session, |s: &Session| s.datasets_overview()).await?;
    let bars: Vec<StackedBar> = datasets
        .into_iter()
        .map(|d| {
            let note = match d.manifest {
                ManifestState::Verified => None,
                ManifestState::Missing => Some("manifest missing".to_string()),
                ManifestState::Altered => Some("manifest altered: not shown".to_string()),
            };
            StackedBar {
                label: format!("{} · {}", d.purpose, short(&d.id)),
                parts: d.excluded_by_reason.into_iter().collect(),
                note,
            }
        })
        .collect();
    Ok(svg(charts::exclusions_chart(&bars)))
}

/// Unlearning time-to-removal per model version against its deadline, as an SVG bar chart.
#[utoipa::path(get, path = "/v1/charts/unlearning.svg", tag = "operator", security(("bearer" = [])),
    responses((status = 200, description = "The chart", body = String, content_type = "image/svg+xml")))]
pub async fn unlearning_svg(State(session): State<Shared>, _op: Operator) -> Result<Response, Problem> {
    let summary = call(&session, |s: &Session| s.unlearning_summary(consentry_ledger::now())).await?;
    let secs = |v: Option<i64>| v.map(|v| v as f64);
    let groups: Vec<DurationGroup> = summary
        .models
        .iter()
        .map(|m| DurationGroup {
            label: if m.kind.is_empty() {
                short(&m.model).to_string()
            } else {
                format!("{} v{} · {}", m.kind, m.version, short(&m.model))
            },
            median: secs(m.compliance.median_seconds),
            p95: secs(m.compliance.p95_seconds),
            oldest_open: secs(m.oldest_open_age_seconds),
            deadline: secs(m.compliance.deadline_seconds),
        })
        .collect();
    Ok(svg(charts::unlearning_chart(&groups)))
}

/// The OpenAPI paths of the dashboard endpoints.
#[derive(utoipa::OpenApi)]
#[openapi(paths(datasets, unlearning_summary, webhooks, coverage_svg, exclusions_svg, unlearning_svg))]
pub struct DashboardApi;
