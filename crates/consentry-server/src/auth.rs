//! Who is calling: extractors that read the bearer credential, ask `consentry-app` who it speaks for
//! ([`Session::authenticate`]) and whether that caller may use the endpoint's capability ([`Principal::require`]).
//! A handler names the extractor for its capability; no rule about roles is written here.

use crate::{Shared, call};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use consentry_app::keys::{Capability, Principal};
use consentry_app::{AppError, ErrorKind, Session};

use crate::problem::Problem;

/// Any authenticated caller: a member by token, an operator or auditor by API key.
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
fn bearer(parts: &Parts) -> Result<String, Problem> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
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

/// The caller, authenticated once per request (kept in the request's extensions for a second extractor). The
/// principal's rate limit applies here; a credential that does not authenticate counts against the client
/// address's limit (a request with no credential at all was counted by the layer).
async fn principal(parts: &mut Parts, session: &Shared) -> Result<Principal, Problem> {
    if let Some(Caller(p)) = parts.extensions.get::<Caller>() {
        return Ok(p.clone());
    }
    let authenticated = match bearer(parts) {
        Ok(credential) => call(session, move |s: &Session| s.authenticate(&credential, consentry_ledger::now())).await,
        Err(e) => Err(e),
    };
    let p = match authenticated {
        Ok(p) => p,
        Err(e) => {
            if parts.headers.contains_key(header::AUTHORIZATION) {
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
