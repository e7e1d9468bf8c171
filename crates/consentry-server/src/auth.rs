//! Who is calling: extractors that read the bearer credential, ask `consentry-app` who it speaks for
//! ([`Session::authenticate`]) and whether that caller may use the endpoint's capability ([`Principal::require`]).
//! A browser may send the web session cookie instead (`websession.rs`); the CSRF rule is `consentry-app`'s too.
//! A handler names the extractor for its capability; no rule about roles is written here.

use crate::{Shared, call};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use consentry_app::keys::{Capability, Principal};
use consentry_app::websession::{CSRF_HEADER, SESSION_COOKIE};
use consentry_app::{AppError, ErrorKind, Session};

use crate::problem::Problem;

/// Any authenticated caller: a member by token or web session, an operator or auditor by API key.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// A member acting for themself ([`Capability::OwnData`]).
#[derive(Debug, Clone, Copy)]
pub struct Member(pub u64);

/// An operator ([`Capability::Operate`]).
#[derive(Debug, Clone)]
pub struct Operator(pub Principal);

/// An auditor or operator reading evidence ([`Capability::ReadEvidence`]).
#[derive(Debug, Clone)]
pub struct EvidenceReader(pub Principal);

fn unauthenticated(m: &str) -> Problem {
    Problem::from(AppError::new(ErrorKind::Unauthenticated, m))
}

/// The credential of `Authorization: Bearer <credential>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<String, Problem> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        unauthenticated(
            "no Authorization header: send `Authorization: Bearer <token>` (a member token from `consentry token`, \
             or an API key from `consentry keys create`)",
        )
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("the Authorization header is not `Bearer <credential>`"))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// Whether the request carries a credential (a bearer or the web session cookie): the layer counts a request
/// without one against its address's rate limit.
pub(crate) fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || cookie(headers, SESSION_COOKIE).is_some()
}

/// A header's value as text, if present and visible ASCII.
pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The caller, authenticated once per request (kept in the request's extensions for a second extractor): by the
/// bearer credential when there is an `Authorization` header, else by the web session cookie (with the CSRF check
/// for a method that changes something, in `consentry-app`). The principal's rate limit applies here; a
/// credential that does not authenticate counts against the client address's limit (a request with no credential
/// at all was counted by the layer).
async fn principal(parts: &mut Parts, session: &Shared) -> Result<Principal, Problem> {
    if let Some(Caller(p)) = parts.extensions.get::<Caller>() {
        return Ok(p.clone());
    }
    let now = consentry_ledger::now();
    let web = cookie(&parts.headers, SESSION_COOKIE).filter(|_| !parts.headers.contains_key(header::AUTHORIZATION));
    let authenticated = match web {
        Some(cookie) => {
            let csrf = header_text(&parts.headers, CSRF_HEADER);
            let method = parts.method.as_str().to_string();
            call(session, move |s: &Session| s.authenticate_web_session(&cookie, csrf.as_deref(), &method, now)).await
        }
        None => match bearer(&parts.headers) {
            // A member token this session already verified needs no blocking thread.
            Ok(credential) => match session.cached_member_token(&credential, now) {
                Some(member) => Ok(Principal::Member { member }),
                None => call(session, move |s: &Session| s.authenticate(&credential, now)).await,
            },
            Err(e) => Err(e),
        },
    };
    let p = match authenticated {
        Ok(p) => p,
        Err(e) => {
            if has_credential(&parts.headers) {
                crate::observe::admit(parts, None)?;
            }
            return Err(e);
        }
    };
    crate::observe::admit(parts, Some(&p))?;
    parts.extensions.insert(Caller(p.clone()));
    Ok(p)
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, session: &Shared) -> Result<Caller, Problem> {
        Ok(Caller(principal(parts, session).await?))
    }
}

/// The caller, if they may use `cap`.
async fn with_capability(parts: &mut Parts, session: &Shared, cap: Capability) -> Result<Principal, Problem> {
    let p = principal(parts, session).await?;
    p.require(cap)?;
    Ok(p)
}

impl FromRequestParts<Shared> for Member {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, session: &Shared) -> Result<Member, Problem> {
        let p = with_capability(parts, session, Capability::OwnData).await?;
        p.member().map(Member).ok_or_else(|| Problem::internal("a caller with own data is not a member"))
    }
}

impl FromRequestParts<Shared> for Operator {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, session: &Shared) -> Result<Operator, Problem> {
        Ok(Operator(with_capability(parts, session, Capability::Operate).await?))
    }
}

impl FromRequestParts<Shared> for EvidenceReader {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, session: &Shared) -> Result<EvidenceReader, Problem> {
        Ok(EvidenceReader(with_capability(parts, session, Capability::ReadEvidence).await?))
    }
}
