//! Web sessions: the member's browser holds a session cookie instead of a bearer token, with CSRF protection.
//!
//! A member exchanges a bearer credential (Consentry's own token or a platform token) for a session: the cookie value
//! is `base64url(claims) "." base64url(Ed25519 signature)` under the data directory's token key and a label of its
//! own (so a cookie never passes for a member token, nor the other way round), binding the member, a random session
//! id, the expiry and the BLAKE3 hash of a random CSRF token. The CSRF token itself goes to the page (the JSON body
//! and a readable `consentry_csrf` cookie, double-submit); every unsafe request ([`requires_csrf`]) authenticated by
//! the cookie must echo it in `X-CSRF-Token`, compared in constant time, else [`ErrorKind::Forbidden`]. Signing out
//! records the session id in a small file of the data directory until the session would have expired, so a copied
//! cookie stops working at once, in every process on the data directory.

use crate::auth::{open_json, sign_json, unauthenticated};
use crate::error::{AppError, ErrorKind, Result};
use crate::filecache::{FileCache, FileStamp};
use crate::keys::{Capability, Principal, constant_time_eq};
use crate::session::Session;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use consentry_files::OutputOptions;

/// The session cookie's name (`HttpOnly`: the page's scripts never see it).
pub const SESSION_COOKIE: &str = "consentry_session";
/// The CSRF cookie's name (readable by the page, which echoes it in [`CSRF_HEADER`]).
pub const CSRF_COOKIE: &str = "consentry_csrf";
/// The header an unsafe request authenticated by the session cookie carries its CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
/// How long a web session lasts: a working day, then the member signs in again.
pub const WEB_SESSION_TTL_SECS: i64 = 8 * 3600;
/// The domain label session cookies are signed under.
const LABEL: &str = "consentry-web-session-v1";
/// The context the CSRF token's stored hash is derived under.
const CSRF_CONTEXT: &str = "consentry web session csrf v1";
/// Random bytes in a session id and in a CSRF token.
const SID_BYTES: usize = 16;
const CSRF_BYTES: usize = 32;

/// What a session cookie says (signed).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionClaims {
    /// Random session id (what signing out records).
    sid: String,
    /// The member the session acts for.
    member: u64,
    /// Opened at (Unix seconds).
    iat: i64,
    /// Ends at (Unix seconds).
    exp: i64,
    /// BLAKE3 (derive-key mode) of the session's CSRF token, hex.
    csrf: String,
}

/// A session just opened: what the front end sets as cookies and hands to the page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WebSession {
    /// The member it acts for.
    pub member: u64,
    /// The session cookie's value (never shown to the page's scripts).
    #[serde(skip)]
    pub cookie: String,
    /// The CSRF token unsafe requests must echo in [`CSRF_HEADER`].
    pub csrf_token: String,
    /// Ends at (Unix seconds).
    pub expires: i64,
    /// Seconds from now until it ends (the cookies' `Max-Age`).
    pub max_age: i64,
}

/// Whether a request with this HTTP method changes something, and so needs the CSRF token when a cookie
/// authenticates it (everything but GET, HEAD, OPTIONS and TRACE).
pub fn requires_csrf(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// One signed-out session, kept until it would have expired anyway.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignedOut {
    sid: String,
    exp: i64,
}

/// The signed-out file's shape.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedOutFile {
    sessions: Vec<SignedOut>,
}

/// The signed-out sessions as last read, re-read when the file changes.
pub(crate) type SignedOutCache = FileCache<Vec<SignedOut>>;

fn csrf_hash(token: &str) -> String {
    blake3::Hasher::new_derive_key(CSRF_CONTEXT).update(token.as_bytes()).finalize().to_hex().to_string()
}

impl Session {
    /// Opens a web session for the member `principal` is (an API key acts for no member: [`ErrorKind::Forbidden`]).
    pub fn open_web_session(&self, principal: &Principal, now: i64) -> Result<WebSession> {
        principal.require(Capability::OwnData)?;
        let member = principal.member().ok_or_else(|| AppError::internal("a caller with own data is not a member"))?;
        let mut random = [0u8; SID_BYTES + CSRF_BYTES];
        getrandom::fill(&mut random).map_err(|e| AppError::internal(format!("no randomness available: {e}")))?;
        let csrf_token = B64.encode(&random[SID_BYTES..]);
        let claims = SessionClaims {
            sid: B64.encode(&random[..SID_BYTES]),
            member,
            iat: now,
            exp: now + WEB_SESSION_TTL_SECS,
            csrf: csrf_hash(&csrf_token),
        };
        let cookie = sign_json(LABEL, &claims, self.token_key(true)?)?;
        Ok(WebSession { member, cookie, csrf_token, expires: claims.exp, max_age: WEB_SESSION_TTL_SECS })
    }

    /// The claims of a session cookie whose signature checks out (expiry and sign-out not checked).
    fn session_claims(&self, cookie: &str) -> Result<SessionClaims> {
        let key = self.token_key(false).map_err(|_| unauthenticated("the session cookie is not this service's"))?;
        open_json(LABEL, cookie, &key.public(), "the session cookie", "sign in again (POST /v1/session)")
    }

    /// Checks the CSRF token an unsafe request carries against the session's.
    fn check_csrf(claims: &SessionClaims, csrf: Option<&str>) -> Result<()> {
        let given = csrf.ok_or_else(|| {
            AppError::new(
                ErrorKind::Forbidden,
                format!("a request that changes something with the session cookie must send the {CSRF_HEADER} header"),
            )
        })?;
        if !constant_time_eq(csrf_hash(given).as_bytes(), claims.csrf.as_bytes()) {
            return Err(AppError::new(
                ErrorKind::Forbidden,
                format!("the {CSRF_HEADER} header does not match this session's CSRF token"),
            ));
        }
        Ok(())
    }

    /// The member a session cookie speaks for, for a request with `method` carrying the `csrf` header (if any):
    /// a forged, expired or signed-out cookie is [`ErrorKind::Unauthenticated`]; an unsafe method without the
    /// session's CSRF token is [`ErrorKind::Forbidden`].
    pub fn authenticate_web_session(
        &self,
        cookie: &str,
        csrf: Option<&str>,
        method: &str,
        now: i64,
    ) -> Result<Principal> {
        let claims = self.session_claims(cookie)?;
        if now >= claims.exp {
            return Err(unauthenticated("the web session has expired: sign in again (POST /v1/session)"));
        }
        if self.signed_out()?.iter().any(|s| s.sid == claims.sid) {
            return Err(unauthenticated("the web session was signed out: sign in again (POST /v1/session)"));
        }
        if requires_csrf(method) {
            Session::check_csrf(&claims, csrf)?;
        }
        Ok(Principal::Member { member: claims.member })
    }

    /// Signs a web session out (the cookie must be genuine and the request carry its CSRF token); signing out a
    /// session that has ended or was signed out already changes nothing.
    pub fn close_web_session(&self, cookie: &str, csrf: Option<&str>, now: i64) -> Result<()> {
        let claims = self.session_claims(cookie)?;
        Session::check_csrf(&claims, csrf)?;
        if now >= claims.exp || self.signed_out()?.iter().any(|s| s.sid == claims.sid) {
            return Ok(());
        }
        if self.is_read_only() {
            return Err(AppError::bad_input("this session is read-only: web sessions cannot be signed out"));
        }
        let _lock = self.dir().lock()?;
        let (_, mut file) = self.read_signed_out()?;
        file.sessions.retain(|s| s.exp > now);
        file.sessions.push(SignedOut { sid: claims.sid, exp: claims.exp });
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| AppError::internal(format!("encoding the signed-out sessions: {e}")))?;
        let path = self.dir().signed_out_file();
        consentry_files::write(&path, &json, OutputOptions::SECRET.no_follow())
            .map_err(AppError::from)
            .map_err(|e| e.context(format!("writing {}", path.display())))?;
        Ok(())
    }

    fn read_signed_out(&self) -> Result<(Option<FileStamp>, SignedOutFile)> {
        let path = self.dir().signed_out_file();
        let stamp = FileStamp::read(&path);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, SignedOutFile::default())),
            Err(e) => {
                return Err(AppError::wrap(ErrorKind::Unavailable, e).context(format!("reading {}", path.display())));
            }
        };
        let file = serde_json::from_str(&text).map_err(|e| {
            AppError::new(
                ErrorKind::Integrity,
                format!(
                    "{} is not a signed-out session list ({e}): remove it (sessions it held work again)",
                    path.display()
                ),
            )
        })?;
        Ok((stamp, file))
    }

    fn signed_out(&self) -> Result<std::sync::Arc<Vec<SignedOut>>> {
        self.signed_out.get(&self.dir().signed_out_file(), || self.read_signed_out().map(|(s, f)| (s, f.sessions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataDir;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_session_needs_its_csrf_token_for_changes_and_ends_when_signed_out() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Session::open(DataDir::new(tmp.path()), None).unwrap();
        let me = Principal::Member { member: 9 };
        let ws = s.open_web_session(&me, NOW).unwrap();
        assert_eq!(s.authenticate_web_session(&ws.cookie, None, "GET", NOW).unwrap(), me);
        let kind = |r: Result<Principal>| r.unwrap_err().kind();
        assert_eq!(kind(s.authenticate_web_session(&ws.cookie, None, "PUT", NOW)), ErrorKind::Forbidden);
        assert_eq!(kind(s.authenticate_web_session(&ws.cookie, Some("nope"), "POST", NOW)), ErrorKind::Forbidden);
        assert_eq!(s.authenticate_web_session(&ws.cookie, Some(&ws.csrf_token), "PUT", NOW).unwrap(), me);
        let later = NOW + WEB_SESSION_TTL_SECS;
        assert_eq!(kind(s.authenticate_web_session(&ws.cookie, None, "GET", later)), ErrorKind::Unauthenticated);
        // An API key gets no web session.
        let key = Principal::Key { id: "k1".into(), role: crate::keys::Role::Operator };
        assert_eq!(s.open_web_session(&key, NOW).unwrap_err().kind(), ErrorKind::Forbidden);
        // Signing out needs the CSRF token too, then the cookie is refused, by another process as well.
        assert_eq!(s.close_web_session(&ws.cookie, None, NOW).unwrap_err().kind(), ErrorKind::Forbidden);
        let other = Session::open(DataDir::new(tmp.path()), None).unwrap();
        assert!(other.authenticate_web_session(&ws.cookie, None, "GET", NOW).is_ok());
        s.close_web_session(&ws.cookie, Some(&ws.csrf_token), NOW).unwrap();
        s.close_web_session(&ws.cookie, Some(&ws.csrf_token), NOW).unwrap();
        assert_eq!(kind(s.authenticate_web_session(&ws.cookie, None, "GET", NOW)), ErrorKind::Unauthenticated);
        assert_eq!(kind(other.authenticate_web_session(&ws.cookie, None, "GET", NOW)), ErrorKind::Unauthenticated);
        // A member token is not a cookie.
        let token = s.mint_member_token(9, 60, NOW);
        assert!(token.is_err(), "no ledger here, so no token; the label check is covered by the server tests");
    }
}
