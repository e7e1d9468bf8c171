//! The OpenAPI 3.1 document of the service, generated from the handlers' `#[utoipa::path]` annotations and served
//! at `/v1/openapi.json`. Each route module lists its paths in its own `#[derive(OpenApi)]` struct; [`openapi`]
//! merges them (one line per module) and then adds what the layers answer on every route (401/403 on the
//! authenticated ones, 408, 413 where a body is taken, 429), so no handler repeats them.

use crate::problem::PROBLEM_JSON;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder};

/// The name of the bearer security scheme operations refer to.
pub const BEARER: &str = "bearer";

/// `GET /healthz`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: String,
}

/// `GET /readyz`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct Readiness {
    /// Always `ready`.
    #[schema(example = "ready")]
    status: String,
    /// Entries in the ledger.
    entries: u64,
}

/// `GET /v1/me/consents`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct MyConsents {
    /// The member (the token's subject).
    member: u64,
    /// Every purpose of the policy in force.
    purposes: Vec<consentry_app::member::MemberConsent>,
}

/// One GPC withdrawal a request's `Sec-GPC: 1` appended.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct GpcAppend {
    /// Its ledger position.
    seq: u64,
    /// The purpose withdrawn.
    purpose: String,
    /// A retry's: nothing new was appended.
    duplicate: bool,
}

/// `PUT /v1/me/consents/{purpose}`: the event the choice appended (or the original one, on a retry).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct ChoiceResult {
    /// The event's ledger position.
    seq: u64,
    /// A retry with the same Idempotency-Key: nothing new was appended.
    duplicate: bool,
    /// The consent event as stored.
    #[schema(value_type = Object)]
    event: (),
    /// Where its receipt is (`/v1/me/receipts/{seq}`).
    receipt: String,
    /// Withdrawals recorded for a `Sec-GPC: 1` signal.
    gpc: Vec<GpcAppend>,
}

/// `GET /v1/me/history`: one page, newest first.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct MyHistory {
    /// The member.
    member: u64,
    /// Consent events, newest first.
    #[schema(value_type = Vec<Object>)]
    events: (),
    /// `before` for the next (older) page; null on the last page.
    next_before: Option<u64>,
    /// The next page's URL; null on the last page.
    next: Option<String>,
}

/// `GET /v1/me/lineage`: where the member's data went and their privacy loss.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct MyLineage {
    /// The member.
    member: u64,
    /// Their facts entries (jurisdiction, birth date), oldest first.
    #[schema(value_type = Vec<Object>)]
    facts: (),
    /// Datasets their data entered.
    #[schema(value_type = Vec<Object>)]
    datasets: (),
    /// Model versions (and shards) their data entered, including removals by unlearning.
    #[schema(value_type = Vec<Object>)]
    models: (),
    /// Unlearning requests about them.
    #[schema(value_type = Vec<Object>)]
    requests: (),
    /// Their privacy loss per model line and composed.
    #[schema(value_type = Object)]
    privacy: (),
}

/// The service's own routes (lib.rs): health, readiness, the member's endpoints, this document and the metrics.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Consentry",
        description = "Consent service: members' choices, operators' and auditors' APIs. Errors are RFC 9457 \
                       problems (application/problem+json) with a stable `type`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        crate::healthz,
        crate::readyz,
        crate::my_consents,
        crate::put_consent,
        crate::my_history,
        crate::my_receipt,
        crate::my_lineage,
        openapi_json,
        docs_page,
        crate::metrics::scrape,
    ),
    components(schemas(crate::problem::Problem)),
    tags(
        (name = "service", description = "Health, readiness, metrics and this document"),
        (name = "member", description = "A member's own data (member token)"),
    )
)]
pub struct ServiceApi;

/// The whole document: every module's paths, the bearer scheme, and the layers' responses on every operation.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ServiceApi::openapi();
    // One line per route module.
    doc.merge(crate::dashboard::DashboardApi::openapi());
    doc.merge(crate::events::EventsApi::openapi());
    doc.merge(crate::evidence::EvidenceApi::openapi());
    doc.merge(crate::me::MeApi::openapi());
    doc.merge(crate::operator::OperatorApi::openapi());
    doc.merge(crate::privacy::PrivacyApi::openapi());
    doc.merge(crate::websession::SessionApi::openapi());
    add_conventions(&mut doc);
    doc
}

/// The bearer scheme, and the responses the layers give on any operation (after merging, so every module's
/// operations get them).
fn add_conventions(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        BEARER.to_string(),
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A member token (`consentry token`, or the platform's signed token) or an operator/auditor \
                     API key (`consentry keys create`)",
                ))
                .build(),
        ),
    );
    for item in doc.paths.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            add_layer_responses(op);
        }
    }
}

fn problem_response(description: &str, retry_after: bool) -> RefOr<utoipa::openapi::Response> {
    let mut b = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build());
    if retry_after {
        b = b.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Integer).minimum(Some(0)),
                )
                .description(Some("Seconds until the caller's bucket has a request again"))
                .build(),
        );
    }
    RefOr::T(b.build())
}

fn add_layer_responses(op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let r = &mut op.responses.responses;
    let mut add = |status: &str, description: &str, retry_after: bool| {
        r.entry(status.to_string()).or_insert_with(|| problem_response(description, retry_after));
    };
    if secured {
        add("401", "No credential, or one that is invalid, expired or revoked", false);
        add("403", "The caller's role may not use this endpoint", false);
    }
    if has_body {
        add("413", "The request body is over the service's limit", false);
        add("415", "The body is not application/json", false);
    }
    add("408", "The request took longer than the service allows", false);
    add("429", "Too many requests from this caller: retry after the Retry-After seconds", true);
}

/// The document as served (built once).
fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| openapi().to_json().unwrap_or_else(|e| format!("{{\"error\": \"encoding the document: {e}\"}}")))
}

/// The OpenAPI 3.1 document of this service.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object, content_type = "application/json"))
)]
pub(crate) async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// A page listing the document's operations, rendered in the browser from `/v1/openapi.json` by a few lines of
/// inline script: no CDN, no bundled UI (Swagger UI's crate took over 10 minutes to build here).
const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Consentry API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code{font-size:90%}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}</style>
</head><body><h1>Consentry API</h1>
<p>The machine-readable document: <a href="/v1/openapi.json"><code>/v1/openapi.json</code></a> (OpenAPI 3.1). Errors are RFC 9457 problems.</p>
<table><thead><tr><th>Operation</th><th>What</th><th>Answers</th></tr></thead><tbody id="ops"></tbody></table>
<script>
fetch('/v1/openapi.json').then(r => r.json()).then(doc => {
  const body = document.getElementById('ops');
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const row = body.insertRow();
      row.insertCell().textContent = method.toUpperCase() + ' ' + path + (op.security ? ' (bearer)' : '');
      row.insertCell().textContent = op.summary || op.description || '';
      row.insertCell().textContent = Object.keys(op.responses || {}).join(' ');
    }
  }
});
</script></body></html>
"#;

/// A human-readable list of the operations (the document rendered in the browser).
#[utoipa::path(
    get,
    path = "/v1/docs",
    tag = "service",
    responses((status = 200, description = "An HTML page listing the operations", body = String, content_type = "text/html"))
)]
pub(crate) async fn docs_page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], DOCS_PAGE).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme_and_the_problem_schema() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        assert_eq!(doc["components"]["securitySchemes"][BEARER]["scheme"], "bearer");
        assert!(doc["components"]["schemas"]["Problem"].is_object());
    }
}
