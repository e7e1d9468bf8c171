//! RFC 9457 problem details: the one shape of every error the service answers with.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentry_app::member::StaleNotice;
use consentry_app::{AppError, ErrorKind};
use serde_json::{Map, Value, json};

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Where the stable problem type URIs live; a type is this plus a slug.
pub const TYPE_BASE: &str = "https://consentry.dev/problems/";

/// A failed request, rendered as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    extra: Map<String, Value>,
    /// Seconds for a `Retry-After` header (a 429).
    retry_after: Option<u64>,
}

impl Problem {
    /// A problem of the HTTP layer itself (a route, a method, a body size), not of a use case.
    pub fn http(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem { status, slug, title, detail: detail.into(), extra: Map::new(), retry_after: None }
    }

    /// The same problem, telling the client to wait `secs` seconds (`Retry-After`).
    pub fn with_retry_after(mut self, secs: u64) -> Problem {
        self.retry_after = Some(secs);
        self
    }

    /// The caller's request is malformed (a path, a query, a header): 400, saying what the route takes.
    pub fn bad_input(detail: impl Into<String>) -> Problem {
        Problem::from(AppError::bad_input(detail))
    }

    /// A failure inside the service (a panic, a lost worker).
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::http(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", detail)
    }

    /// The problem's HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong, for a log line.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The stable type URI.
    pub fn type_uri(&self) -> String {
        format!("{TYPE_BASE}{}", self.slug)
    }
}

/// The slug and title of a use case's error kind: one stable type URI per kind.
fn kind_type(kind: ErrorKind) -> (&'static str, &'static str) {
    match kind {
        ErrorKind::BadInput => ("bad-input", "Bad input"),
        ErrorKind::Unauthenticated => ("unauthenticated", "Unauthenticated"),
        ErrorKind::Forbidden => ("forbidden", "Forbidden"),
        ErrorKind::NotFound => ("not-found", "Not found"),
        ErrorKind::Conflict => ("conflict", "Conflict"),
        ErrorKind::Integrity => ("integrity", "Integrity check failed"),
        ErrorKind::Unavailable => ("unavailable", "Service unavailable"),
        ErrorKind::Internal => ("internal", "Internal error"),
        _ => ("internal", "Internal error"),
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Problem {
        let kind = e.kind();
        let status = StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (slug, title) = kind_type(kind);
        let mut extra = Map::new();
        // A stale notice names the current one, so a client can show it and retry without another round trip.
        if let Some(stale) = e.downcast_ref::<StaleNotice>() {
            extra.insert("purpose".into(), json!(stale.purpose));
            extra.insert("current_notice_version".into(), json!(stale.current));
        }
        Problem { status, slug, title, detail: e.to_string(), extra, retry_after: None }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("type".into(), json!(self.type_uri()));
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.extend(self.extra);
        let text = Value::Object(body).to_string();
        let mut response = (self.status, text).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Turns an error response some layer made without a body of ours (an unknown route, a method, a body over the
/// limit, a timeout) into a problem, so every error a client sees has the same shape.
pub fn problem_for_status(status: StatusCode) -> Problem {
    let (slug, title, detail) = match status {
        StatusCode::NOT_FOUND => ("not-found", "Not found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method-not-allowed", "Method not allowed", "this route does not take that method")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("payload-too-large", "Payload too large", "the request body is over the service's limit")
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
            ("timeout", "Request timed out", "the request took longer than the service allows")
        }
        StatusCode::TOO_MANY_REQUESTS => ("rate-limited", "Too many requests", "this caller is over the rate limit"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported-media-type", "Unsupported media type", "send the body as application/json")
        }
        s if s.is_server_error() => ("internal", "Internal error", "the service failed"),
        _ => ("bad-request", "Bad request", "the request is malformed"),
    };
    Problem::http(status, slug, title, detail)
}

/// The body of every problem, for the OpenAPI document (named `Problem` there, as [`Problem`]'s own schema is).
#[derive(utoipa::ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // a schema only: `Problem::into_response` writes the body
struct ProblemSchema {
    /// A stable URI naming the kind of problem (`https://consentry.dev/problems/<slug>`).
    #[schema(rename = "type")]
    type_: String,
    /// A short summary of the kind.
    title: String,
    /// The HTTP status code.
    status: u16,
    /// What went wrong in this request, and what to do.
    detail: String,
    /// A stale notice: the purpose it is about.
    #[schema(nullable = false)]
    purpose: Option<String>,
    /// A stale notice: the version in force, to show the member and send back.
    #[schema(nullable = false)]
    current_notice_version: Option<u32>,
}

impl utoipa::PartialSchema for Problem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <ProblemSchema as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Problem")
    }
}

/// A JSON body that did not parse: 400 saying why and what `expected` body the route takes (or the 413 or 415 the
/// rejection stands for).
pub(crate) fn json_body_problem(e: axum::extract::rejection::JsonRejection, expected: &str) -> Problem {
    let status = e.status();
    if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY {
        Problem::bad_input(format!("the body is not {expected} ({})", e.body_text()))
    } else {
        problem_for_status(status)
    }
}

/// A use case's outcome as JSON; failing to encode one is a bug of the service, a 500 problem.
pub(crate) fn json_value(v: &impl serde::Serialize) -> Result<serde_json::Value, Problem> {
    serde_json::to_value(v).map_err(|e| Problem::internal(format!("encoding the answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_stable_type_and_its_status() {
        let p = Problem::from(AppError::new(ErrorKind::NotFound, "no member 9"));
        assert_eq!(p.status(), StatusCode::NOT_FOUND);
        assert_eq!(p.type_uri(), "https://consentry.dev/problems/not-found");
        let p = Problem::from(AppError::bad_input("x"));
        assert_eq!(p.type_uri(), "https://consentry.dev/problems/bad-input");
        assert_eq!(Problem::from(AppError::new(ErrorKind::Unauthenticated, "x")).status(), StatusCode::UNAUTHORIZED);
    }
}
