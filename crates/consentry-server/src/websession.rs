//! `POST /v1/session` and `DELETE /v1/session`: a member's bearer credential exchanged for a web session cookie, and
//! signing out. The rules (what the cookie binds, CSRF, sign-out) are `consentry_app::websession`'s; this module sets
//! and clears the cookies.
//!
//! The cookies are `Secure`: browsers treat `http://localhost` and `http://127.0.0.1` as secure contexts, so they are
//! stored and sent there too (the local demo); anywhere else the service must be reached over HTTPS.

use crate::auth::{bearer, cookie, header_text};
use crate::problem::Problem;
use crate::{Shared, call};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use consentry_app::websession::{CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE};
use consentry_app::{AppError, ErrorKind};

/// The web session routes.
pub fn routes() -> Router<Shared> {
    Router::new().route("/v1/session", post(sign_in).delete(sign_out))
}

/// A web session just opened.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionOpened {
    /// The member the session acts for.
    pub member: u64,
    /// Send it as `X-CSRF-Token` with every PUT, POST, PATCH or DELETE made with the session cookie.
    pub csrf_token: String,
    /// When the session ends (Unix seconds).
    pub expires: i64,
}

/// The OpenAPI description of the web session routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(sign_in, sign_out), components(schemas(SessionOpened)))]
pub struct SessionApi;

/// The `Set-Cookie` value of one of the session's cookies (`http_only` for the session itself); `max_age` 0 clears it.
fn set_cookie(name: &str, value: &str, http_only: bool, max_age: i64) -> Result<HeaderValue, Problem> {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}{http_only}; Secure; SameSite=Strict; Path=/; Max-Age={max_age}"))
        .map_err(|_| Problem::internal("a session cookie is not a valid header value"))
}

/// Answers with both cookies set (or cleared) and no caching.
fn with_cookies(mut response: Response, session: (&str, &str), csrf: &str, max_age: i64) -> Result<Response, Problem> {
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(session.0, session.1, true, max_age)?);
    headers.append(header::SET_COOKIE, set_cookie(CSRF_COOKIE, csrf, false, max_age)?);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Exchanges the member's bearer credential (Consentry's own member token or the platform's) for a web session.
#[utoipa::path(
    post,
    path = "/v1/session",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Signed in: `consentry_session` (HttpOnly) and `consentry_csrf` cookies set",
         body = SessionOpened),
        (status = 401, description = "No, or a bad, bearer credential", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "An API key acts for no member", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
async fn sign_in(State(session): State<Shared>, headers: HeaderMap) -> Result<Response, Problem> {
    let credential = bearer(&headers)?;
    let now = consentry_ledger::now();
    let ws = call(&session, move |s| {
        let principal = s.authenticate(&credential, now)?;
        s.open_web_session(&principal, now)
    })
    .await?;
    let body = SessionOpened { member: ws.member, csrf_token: ws.csrf_token.clone(), expires: ws.expires };
    let response = (StatusCode::CREATED, Json(body)).into_response();
    with_cookies(response, (SESSION_COOKIE, &ws.cookie), &ws.csrf_token, ws.max_age)
}

/// Signs the web session out: it is refused from now on, and both cookies are cleared.
#[utoipa::path(
    delete,
    path = "/v1/session",
    tag = "session",
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses(
        (status = 204, description = "Signed out; both cookies cleared"),
        (status = 401, description = "No, or a forged, session cookie", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The X-CSRF-Token header is missing or wrong", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
async fn sign_out(State(session): State<Shared>, headers: HeaderMap) -> Result<Response, Problem> {
    let value = cookie(&headers, SESSION_COOKIE).ok_or_else(|| {
        Problem::from(AppError::new(
            ErrorKind::Unauthenticated,
            format!("no `{SESSION_COOKIE}` cookie: there is no web session to sign out"),
        ))
    })?;
    let csrf = header_text(&headers, CSRF_HEADER);
    call(&session, move |s| s.close_web_session(&value, csrf.as_deref(), consentry_ledger::now())).await?;
    with_cookies(StatusCode::NO_CONTENT.into_response(), (SESSION_COOKIE, ""), "", 0)
}
