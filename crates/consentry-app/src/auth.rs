//! Member bearer tokens for the embedded service: who a request speaks for. A token is
//! `base64url(JSON claims) "." base64url(Ed25519 signature)`, signed by the data directory's own token key (not the
//! ledger's key), so only this data directory's `consentry token` can mint one and only its service accepts one.
//! Platform tokens (JWT checked against a JWKS) are a later slice.

use crate::error::{AppError, Context as _, ErrorKind, Result};
use crate::session::Session;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use consentry_ledger::LogKey;

/// The audience every member token names: this service.
pub const AUDIENCE: &str = "consentry";
/// How far a token's times may be ahead of this clock (another host minted it) and still be accepted.
pub const CLOCK_SKEW_SECS: i64 = 60;
/// The longest lifetime a token may be minted with: a member token is a session, not a credential to keep.
pub const MAX_TTL_SECS: i64 = 30 * 24 * 3600;
/// The domain label signatures are made under, so a token signature can never pass for another signed object.
const LABEL: &str = "consentry-member-token-v1";
/// Hex digits of the ledger's public key in the issuer.
const ISSUER_KEY_HEX: usize = 16;

/// What a member token says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberClaims {
    /// The member the bearer acts for (decimal member id).
    pub sub: String,
    /// `consentry:<first hex digits of the ledger's public key>`: which data directory minted it.
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// Minted at (Unix seconds).
    pub iat: i64,
    /// Not valid before (Unix seconds).
    pub nbf: i64,
    /// Not valid at or after (Unix seconds).
    pub exp: i64,
}

impl MemberClaims {
    /// The member id in `sub`.
    pub fn member(&self) -> Result<u64> {
        self.sub.parse().map_err(|_| unauthenticated(format!("the token's subject `{}` is not a member id", self.sub)))
    }
}

/// A minted token and when it stops working.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MintedToken {
    /// The bearer token (`Authorization: Bearer …`).
    pub token: String,
    /// Its claims.
    pub claims: MemberClaims,
}

/// An [`ErrorKind::Unauthenticated`] error saying `message`.
pub(crate) fn unauthenticated(message: impl Into<String>) -> AppError {
    AppError::new(ErrorKind::Unauthenticated, message)
}

/// A lifetime: seconds, or a number with `s`, `m`, `h` or `d` (`90`, `30m`, `1h`, `7d`).
pub fn parse_ttl(s: &str) -> Result<i64> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => 0,
    };
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| scale > 0 && *n > 0)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| AppError::bad_input(format!("`{s}` is not a lifetime: use seconds or 30m, 1h, 7d")))
}

/// Signs `claims` with `key`.
pub fn sign(claims: &MemberClaims, key: &LogKey) -> Result<String> {
    sign_json(LABEL, claims, key)
}

/// `base64url(JSON of value) "." base64url(Ed25519 signature under label)`: the one format of Consentry's own
/// signed credentials (member tokens, web session cookies), each kind under its own label.
pub(crate) fn sign_json<T: serde::Serialize>(label: &str, value: &T, key: &LogKey) -> Result<String> {
    let body = serde_json::to_vec(value).map_err(|e| AppError::internal(format!("encoding signed claims: {e}")))?;
    let payload = B64.encode(body);
    let signature = key.sign_labelled(label, payload.as_bytes());
    Ok(format!("{payload}.{}", B64.encode(signature)))
}

/// The value of a [`sign_json`] credential once its signature under `label` checks out; `what` names it in errors
/// and `hint` says how to get a good one.
pub(crate) fn open_json<T: serde::de::DeserializeOwned>(
    label: &str,
    token: &str,
    key: &consentry_ledger::PublicKey,
    what: &str,
    hint: &str,
) -> Result<T> {
    let (payload, signature) =
        token.split_once('.').ok_or_else(|| unauthenticated(format!("{what} is malformed (no signature part)")))?;
    let signature: [u8; 64] = B64
        .decode(signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| unauthenticated(format!("{what}'s signature is malformed")))?;
    if !key.verify_labelled(label, payload.as_bytes(), &signature) {
        return Err(unauthenticated(format!("{what}'s signature does not verify: {hint}")));
    }
    let body = B64.decode(payload).map_err(|_| unauthenticated(format!("{what}'s claims are malformed")))?;
    serde_json::from_slice(&body).map_err(|e| unauthenticated(format!("{what}'s claims are malformed: {e}")))
}

/// Checks a token's signature, issuer, audience and times (with [`CLOCK_SKEW_SECS`] of leeway) at `now`; every
/// failure is [`ErrorKind::Unauthenticated`] and says which check failed.
pub fn verify(token: &str, key: &consentry_ledger::PublicKey, issuer: &str, now: i64) -> Result<MemberClaims> {
    let claims: MemberClaims = open_json(LABEL, token, key, "the bearer token", "mint one with `consentry token`")?;
    if claims.aud != AUDIENCE {
        return Err(unauthenticated(format!("the bearer token is for `{}`, not `{AUDIENCE}`", claims.aud)));
    }
    if claims.iss != issuer {
        return Err(unauthenticated(format!("the bearer token was issued by `{}`, not `{issuer}`", claims.iss)));
    }
    if now + CLOCK_SKEW_SECS < claims.nbf || now + CLOCK_SKEW_SECS < claims.iat {
        return Err(unauthenticated("the bearer token is not valid yet"));
    }
    if now >= claims.exp + CLOCK_SKEW_SECS {
        return Err(unauthenticated("the bearer token has expired: mint a new one with `consentry token`"));
    }
    claims.member()?;
    Ok(claims)
}

impl Session {
    /// The issuer this data directory's tokens name.
    pub fn token_issuer(&self) -> Result<String> {
        let hex = self.public_key()?.to_hex();
        Ok(format!("consentry:{}", &hex[..ISSUER_KEY_HEX.min(hex.len())]))
    }

    /// The token-signing key, made (mode 0600) on first use, read from its file once per session (a key replaced on
    /// disk takes effect when the service restarts).
    pub(crate) fn token_key(&self, create: bool) -> Result<&LogKey> {
        if let Some(k) = self.token_key.get() {
            return Ok(k);
        }
        let path = self.dir().token_key_file();
        if !path.exists() {
            if !create {
                return Err(unauthenticated(
                    "this data directory has minted no tokens yet: mint one with `consentry token`",
                ));
            }
            match LogKey::generate()?.save(&path) {
                Ok(()) => {}
                // Another process made it first: use theirs.
                Err(_) if path.exists() => {}
                Err(e) => return Err(AppError::from(e).context(format!("writing {}", path.display()))),
            }
        }
        let key = LogKey::load(&path).map_err(AppError::from).with_context(|| format!("reading {}", path.display()))?;
        Ok(self.token_key.get_or_init(|| key))
    }

    /// Mints a bearer token for a member the ledger knows, valid for `ttl_secs` (at most [`MAX_TTL_SECS`]).
    pub fn mint_member_token(&self, member: u64, ttl_secs: i64, now: i64) -> Result<MintedToken> {
        if !(1..=MAX_TTL_SECS).contains(&ttl_secs) {
            return Err(AppError::bad_input(format!(
                "a token lives between 1 second and {MAX_TTL_SECS} seconds (30 days), not {ttl_secs}"
            )));
        }
        self.known_member(member)?;
        let claims = MemberClaims {
            sub: member.to_string(),
            iss: self.token_issuer()?,
            aud: AUDIENCE.to_string(),
            iat: now,
            nbf: now,
            exp: now + ttl_secs,
        };
        let token = sign(&claims, self.token_key(true)?)?;
        Ok(MintedToken { token, claims })
    }

    /// The member a bearer token speaks for, after checking it at `now` against this data directory's token key.
    pub fn verify_member_token(&self, token: &str, now: i64) -> Result<u64> {
        let key = self.token_key(false)?;
        let claims = verify(token, &key.public(), &self.token_issuer()?, now)?;
        let member = claims.member()?;
        self.token_cache.insert(token, member, claims.nbf.max(claims.iat), claims.exp);
        Ok(member)
    }

    /// A member's latest facts; a member the ledger has none for is [`ErrorKind::NotFound`].
    pub fn known_member(&self, member: u64) -> Result<consentry_ledger::MemberRecord> {
        self.ledger()?
            .store()
            .member(member)?
            .ok_or_else(|| AppError::new(ErrorKind::NotFound, format!("member {member} is not in the ledger")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims() -> MemberClaims {
        MemberClaims {
            sub: "42".into(),
            iss: "consentry:abc".into(),
            aud: AUDIENCE.into(),
            iat: NOW,
            nbf: NOW,
            exp: NOW + 3600,
        }
    }

    fn key() -> LogKey {
        LogKey::from_seed([7; 32])
    }

    fn check(token: &str, now: i64) -> Result<MemberClaims> {
        verify(token, &key().public(), "consentry:abc", now)
    }

    fn refused(r: Result<MemberClaims>, says: &str) {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(e.to_string().contains(says), "{e}");
    }

    #[test]
    fn a_token_verifies_within_its_lifetime() {
        let t = sign(&claims(), &key()).unwrap();
        assert_eq!(check(&t, NOW + 10).unwrap().member().unwrap(), 42);
        // A little clock skew either way is tolerated.
        assert!(check(&t, NOW - 30).is_ok());
        assert!(check(&t, NOW + 3600 + 30).is_ok());
    }

    #[test]
    fn an_expired_or_not_yet_valid_token_is_refused() {
        let t = sign(&claims(), &key()).unwrap();
        refused(check(&t, NOW + 3600 + CLOCK_SKEW_SECS), "expired");
        refused(check(&t, NOW - CLOCK_SKEW_SECS - 1), "not valid yet");
    }

    #[test]
    fn a_forged_token_is_refused() {
        let other = sign(&claims(), &LogKey::from_seed([8; 32])).unwrap();
        refused(check(&other, NOW), "does not verify");
        // Claims swapped under a genuine signature.
        let genuine = sign(&claims(), &key()).unwrap();
        let mut c = claims();
        c.sub = "43".into();
        let forged_claims = sign(&c, &key()).unwrap();
        let forged = format!("{}.{}", forged_claims.split_once('.').unwrap().0, genuine.split_once('.').unwrap().1);
        refused(check(&forged, NOW), "does not verify");
    }

    #[test]
    fn a_token_for_another_audience_or_issuer_is_refused() {
        let mut c = claims();
        c.aud = "someone-else".into();
        refused(check(&sign(&c, &key()).unwrap(), NOW), "not `consentry`");
        let mut c = claims();
        c.iss = "consentry:other".into();
        refused(check(&sign(&c, &key()).unwrap(), NOW), "issued by");
    }

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_ttl("90").unwrap(), 90);
        assert_eq!(parse_ttl("30m").unwrap(), 1800);
        assert_eq!(parse_ttl("1h").unwrap(), 3600);
        assert_eq!(parse_ttl("7d").unwrap(), 7 * 86_400);
        for bad in ["", "h", "0", "-5m", "1y", "1.5h"] {
            assert_eq!(parse_ttl(bad).unwrap_err().kind(), ErrorKind::BadInput, "{bad}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        for t in ["", "abc", "a.b", "..", "!!!.???", &format!("{}.{}", B64.encode("{}"), B64.encode([0u8; 64]))] {
            assert_eq!(check(t, NOW).unwrap_err().kind(), ErrorKind::Unauthenticated, "{t}");
        }
        let mut c = claims();
        c.sub = "not-a-number".into();
        refused(check(&sign(&c, &key()).unwrap(), NOW), "not a member id");
    }
}
