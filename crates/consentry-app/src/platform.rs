//! Platform member tokens: in production the platform already knows its members, so the service accepts the
//! platform's own signed JWTs (compact JWS, RFC 7515/7519) instead of minting its own. Only asymmetric signatures are
//! accepted — EdDSA (Ed25519) and ES256 (ECDSA P-256) — checked against a public key the configuration names: one
//! SPKI PEM file, or a JWKS file whose keys a token picks by `kid` (several keys = a rotation; the file is re-read
//! when it changes, so a rotation needs no restart). `alg: none` and HMAC algorithms are refused outright, so a
//! token "signed" with the public key as an HMAC secret (the classic confusion attack) never verifies.
//!
//! Checked, in order, each failure an [`ErrorKind::Unauthenticated`] naming the check: the token's shape, its
//! header's `alg` (and `crit`), the key (`kid`) and that the key's type matches `alg`, the signature, `iss`,
//! `aud`, `exp`, `nbf`, `iat` (times with the configured clock skew) and the member claim (a decimal string or a
//! number). Verification is by hand over `ed25519-dalek` and `p256` (no JWT crate: fewer dependencies to build and
//! audit, and nothing accepted that is not listed here).
//!
//! A platform token authenticates the member it names whether or not the ledger has heard of them; what a member
//! may then do is the use cases' business. The member endpoints need the member's facts (jurisdiction, birth date)
//! to evaluate the policy, so a member the ledger has no facts for gets [`ErrorKind::NotFound`] ("member N is not in
//! the ledger") from them until the platform records those facts (`ledger import`); a member with facts but no
//! consent events yet reads every purpose and grants as usual.

use crate::error::{AppError, ErrorKind, Result};
use crate::filecache::{FileCache, FileStamp};
use crate::session::Session;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64_STD, URL_SAFE_NO_PAD as B64};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The claim that names the member when the configuration names none.
pub const DEFAULT_MEMBER_CLAIM: &str = "sub";
/// How far a token's times may be off this clock when the configuration says nothing.
pub const DEFAULT_CLOCK_SKEW_SECS: i64 = 60;
/// The largest clock skew a configuration may allow: more would make `exp` meaningless.
pub const MAX_CLOCK_SKEW_SECS: i64 = 3600;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32-byte key.
const ED25519_SPKI: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// DER AlgorithmIdentifier of an EC key on P-256 (id-ecPublicKey, prime256v1), RFC 5480.
const P256_ALGORITHM: [u8; 21] = [
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03,
    0x01, 0x07,
];

/// The `[member_tokens]` section of the service configuration: whose tokens to accept and how to check them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberTokenConfig {
    /// The exact `iss` the platform's tokens carry.
    pub issuer: String,
    /// The `aud` value that names this service (a token's `aud` must be it or a list containing it).
    pub audience: String,
    /// A JWKS file (`{"keys": [...]}`, OKP/Ed25519 and EC/P-256 keys, picked by `kid`); or `public_key_file`.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// One SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`, Ed25519 or P-256); or `jwks_file`.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// The claim holding the member id (a decimal string or a number).
    #[serde(default = "default_member_claim")]
    pub member_claim: String,
    /// Seconds a token's `exp`, `nbf` and `iat` may be off this clock.
    #[serde(default = "default_clock_skew")]
    pub clock_skew_secs: i64,
}

fn default_member_claim() -> String {
    DEFAULT_MEMBER_CLAIM.to_string()
}

fn default_clock_skew() -> i64 {
    DEFAULT_CLOCK_SKEW_SECS
}

impl MemberTokenConfig {
    /// The key file and whether it is a JWKS; a configuration naming both or neither is [`ErrorKind::BadInput`].
    fn key_file(&self) -> Result<(&Path, bool)> {
        match (&self.jwks_file, &self.public_key_file) {
            (Some(j), None) => Ok((j, true)),
            (None, Some(p)) => Ok((p, false)),
            _ => Err(AppError::bad_input(
                "[member_tokens] needs exactly one of `jwks_file` (a JWKS) or `public_key_file` (a PEM public key)",
            )),
        }
    }

    /// Checks the section's values (not its key file).
    fn check(&self) -> Result<()> {
        self.key_file()?;
        if self.issuer.trim().is_empty() || self.audience.trim().is_empty() || self.member_claim.trim().is_empty() {
            return Err(AppError::bad_input(
                "[member_tokens] needs a non-empty `issuer` and `audience` (and `member_claim`, `sub` by default)",
            ));
        }
        if !(0..=MAX_CLOCK_SKEW_SECS).contains(&self.clock_skew_secs) {
            return Err(AppError::bad_input(format!(
                "[member_tokens] clock_skew_secs must be between 0 and {MAX_CLOCK_SKEW_SECS}, not {}",
                self.clock_skew_secs
            )));
        }
        Ok(())
    }

    /// Makes relative key paths relative to `base` (the configuration file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.jwks_file, &mut self.public_key_file].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// A public key a platform token may be signed with.
#[derive(Debug, Clone)]
enum Verifier {
    Ed25519(ed25519_dalek::VerifyingKey),
    Es256(p256::ecdsa::VerifyingKey),
}

impl Verifier {
    /// The JWS `alg` this key verifies.
    fn alg(&self) -> &'static str {
        match self {
            Verifier::Ed25519(_) => "EdDSA",
            Verifier::Es256(_) => "ES256",
        }
    }

    fn verifies(&self, input: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Ed25519(k) => <[u8; 64]>::try_from(signature)
                .is_ok_and(|s| k.verify_strict(input, &ed25519_dalek::Signature::from_bytes(&s)).is_ok()),
            Verifier::Es256(k) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| p256::ecdsa::signature::Verifier::verify(k, input, &s).is_ok()),
        }
    }
}

/// The keys of the configured file, each with its `kid` (none for a PEM key).
#[derive(Debug, Clone)]
pub(crate) struct KeySet(Vec<(Option<String>, Verifier)>);

fn bad_key_file(path: &Path, what: impl std::fmt::Display) -> AppError {
    AppError::bad_input(format!(
        "{} is not a usable platform key file: {what} (give an Ed25519 or P-256 public key as SPKI PEM, or a JWKS)",
        path.display()
    ))
}

/// An SPKI DER public key: Ed25519 or P-256.
fn spki_key(der: &[u8]) -> Option<Verifier> {
    if let Some(raw) = der.strip_prefix(&ED25519_SPKI) {
        let raw: [u8; 32] = raw.try_into().ok()?;
        return ed25519_dalek::VerifyingKey::from_bytes(&raw).ok().map(Verifier::Ed25519);
    }
    // SEQUENCE { AlgorithmIdentifier, BIT STRING { 0 unused bits, SEC1 point } }, all short-form lengths.
    let body = der.strip_prefix(&[0x30])?.split_first().filter(|(len, rest)| usize::from(**len) == rest.len())?.1;
    let bits = body.strip_prefix(&P256_ALGORITHM)?.strip_prefix(&[0x03])?;
    let point = bits.split_first().filter(|(len, rest)| usize::from(**len) == rest.len())?.1.strip_prefix(&[0])?;
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point).ok().map(Verifier::Es256)
}

/// One `-----BEGIN PUBLIC KEY-----` PEM block.
fn parse_pem(text: &str, path: &Path) -> Result<KeySet> {
    let body = text
        .split_once("-----BEGIN PUBLIC KEY-----")
        .and_then(|(_, rest)| rest.split_once("-----END PUBLIC KEY-----"))
        .map(|(b64, _)| b64.split_whitespace().collect::<String>())
        .ok_or_else(|| bad_key_file(path, "no `-----BEGIN PUBLIC KEY-----` block"))?;
    let der = B64_STD.decode(body).map_err(|e| bad_key_file(path, format!("the PEM block is not base64 ({e})")))?;
    let key = spki_key(&der).ok_or_else(|| bad_key_file(path, "the key is neither Ed25519 nor P-256"))?;
    Ok(KeySet(vec![(None, key)]))
}

/// A base64url JWK member of `n` bytes.
fn jwk_bytes<const N: usize>(jwk: &Map<String, Value>, name: &str) -> Option<[u8; N]> {
    B64.decode(jwk.get(name)?.as_str()?).ok()?.try_into().ok()
}

/// A JWKS: its signing keys of the types accepted (other keys — RSA, encryption keys — are skipped).
fn parse_jwks(text: &str, path: &Path) -> Result<KeySet> {
    let doc: Value = serde_json::from_str(text).map_err(|e| bad_key_file(path, format!("not JSON ({e})")))?;
    let jwks = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_key_file(path, "no `keys` array (a JWKS is {\"keys\": [...]})"))?;
    let mut keys: Vec<(Option<String>, Verifier)> = Vec::new();
    for (i, jwk) in jwks.iter().enumerate() {
        let jwk = jwk.as_object().ok_or_else(|| bad_key_file(path, format!("key {i} is not an object")))?;
        let text_of = |name: &str| jwk.get(name).and_then(Value::as_str);
        if text_of("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let key = match (text_of("kty"), text_of("crv")) {
            (Some("OKP"), Some("Ed25519")) => jwk_bytes::<32>(jwk, "x")
                .and_then(|x| ed25519_dalek::VerifyingKey::from_bytes(&x).ok())
                .map(Verifier::Ed25519),
            (Some("EC"), Some("P-256")) => {
                jwk_bytes::<32>(jwk, "x").zip(jwk_bytes::<32>(jwk, "y")).and_then(|(x, y)| {
                    let mut point = [0u8; 65];
                    point[0] = 4;
                    point[1..33].copy_from_slice(&x);
                    point[33..].copy_from_slice(&y);
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).ok().map(Verifier::Es256)
                })
            }
            _ => continue,
        }
        .ok_or_else(|| bad_key_file(path, format!("key {i} has a malformed `x`/`y`")))?;
        if let Some(alg) = text_of("alg")
            && alg != key.alg()
        {
            return Err(bad_key_file(path, format!("key {i} says alg `{alg}` but is an {} key", key.alg())));
        }
        let kid = text_of("kid").map(str::to_string);
        if kid.is_some() && keys.iter().any(|(k, _)| *k == kid) {
            return Err(bad_key_file(path, format!("two keys share the kid `{}`", kid.unwrap_or_default())));
        }
        keys.push((kid, key));
    }
    if keys.is_empty() {
        return Err(bad_key_file(path, "it holds no Ed25519 (OKP) or P-256 (EC) signing key"));
    }
    Ok(KeySet(keys))
}

fn refused(message: impl std::fmt::Display) -> AppError {
    AppError::new(ErrorKind::Unauthenticated, format!("the platform token {message}"))
}

/// A base64url JSON object of the token (header or claims).
fn json_part(part: &str, what: &str) -> Result<Map<String, Value>> {
    let bytes = B64.decode(part).map_err(|_| refused(format!("is malformed: its {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(refused(format!("is malformed: its {what} is not a JSON object"))),
    }
}

/// A NumericDate claim (seconds, possibly fractional), if present.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15).map(|f| f.floor() as i64))
            .map(Some)
            .ok_or_else(|| refused(format!("has a `{name}` that is not a time in seconds"))),
    }
}

/// Checks a compact JWS against `keys` and `cfg` at `now`; the member it names.
fn verify_with(keys: &KeySet, cfg: &MemberTokenConfig, token: &str, now: i64) -> Result<u64> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused("is malformed: a JWT has three dot-separated parts"));
    };
    let header_map = json_part(header, "header")?;
    let alg = header_map.get("alg").and_then(Value::as_str).ok_or_else(|| refused("names no `alg`"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(refused("is unsigned (`alg: none`), which is never accepted"));
    }
    if alg.starts_with("HS") {
        return Err(refused(format!(
            "uses alg `{alg}` (an HMAC), which is never accepted: platform tokens are signed with a private key \
             (EdDSA or ES256) and checked with its public key"
        )));
    }
    if alg != "EdDSA" && alg != "ES256" {
        return Err(refused(format!("uses alg `{alg}`: only EdDSA and ES256 are accepted")));
    }
    if header_map.contains_key("crit") {
        return Err(refused("has a `crit` header, naming extensions this service does not understand"));
    }
    let kid = header_map.get("kid").and_then(Value::as_str);
    let key = match kid {
        Some(k) => keys.0.iter().find(|(id, _)| id.as_deref() == Some(k)).or(match keys.0.as_slice() {
            // A single PEM key has no kid: it is the key, whatever the token calls it.
            [only @ (None, _)] => Some(only),
            _ => None,
        }),
        None => match keys.0.as_slice() {
            [only] => Some(only),
            _ => None,
        },
    }
    .map(|(_, key)| key)
    .ok_or_else(|| match kid {
        Some(k) => refused(format!("names an unknown key (kid `{k}`): the configured key set has no such key")),
        None => refused("names no key (`kid`) and the configured key set holds several"),
    })?;
    if key.alg() != alg {
        return Err(refused(format!("says alg `{alg}` but its key is an {} key", key.alg())));
    }
    let signature = B64.decode(signature).map_err(|_| refused("is malformed: its signature is not base64url"))?;
    let signed = &token[..header.len() + 1 + payload.len()];
    if !key.verifies(signed.as_bytes(), &signature) {
        return Err(refused("signature does not verify"));
    }
    let claims = json_part(payload, "claims")?;
    let iss = claims.get("iss").and_then(Value::as_str);
    if iss != Some(cfg.issuer.as_str()) {
        return Err(refused(format!("was issued by `{}`, not `{}`", iss.unwrap_or("(nobody)"), cfg.issuer)));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == cfg.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(cfg.audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        let aud = claims.get("aud").map_or_else(|| "(nobody)".to_string(), Value::to_string);
        return Err(refused(format!("is for {aud}, not `{}`", cfg.audience)));
    }
    let skew = cfg.clock_skew_secs;
    let exp = numeric_date(&claims, "exp")?.ok_or_else(|| refused("has no expiry (`exp`)"))?;
    if now >= exp.saturating_add(skew) {
        return Err(refused("has expired (`exp`): ask the platform for a fresh one"));
    }
    if numeric_date(&claims, "nbf")?.is_some_and(|nbf| now.saturating_add(skew) < nbf) {
        return Err(refused("is not valid yet (`nbf`)"));
    }
    if numeric_date(&claims, "iat")?.is_some_and(|iat| now.saturating_add(skew) < iat) {
        return Err(refused("was issued in the future (`iat`): check the clocks"));
    }
    let name = cfg.member_claim.as_str();
    let member = match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    member
        .filter(|m| i64::try_from(*m).is_ok())
        .ok_or_else(|| refused(format!("has no member id in its `{name}` claim (a decimal string or a number)")))
}

/// The platform-token configuration of a session and its key file as last read.
pub(crate) struct PlatformTokens {
    config: MemberTokenConfig,
    keys: FileCache<KeySet>,
}

impl PlatformTokens {
    /// Reads the key file; an unreadable or unusable one is [`ErrorKind::Unavailable`] at a request (the operator's
    /// file is broken, not the caller's token) — at start-up the caller turns it into bad input.
    fn load(&self) -> Result<(Option<FileStamp>, KeySet)> {
        let (path, jwks) = self.config.key_file()?;
        let stamp = FileStamp::read(path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            AppError::wrap(ErrorKind::Unavailable, e)
                .context(format!("reading the platform key file {}", path.display()))
        })?;
        let keys = if jwks { parse_jwks(&text, path) } else { parse_pem(&text, path) }
            .map_err(|e| e.with_kind(ErrorKind::Unavailable))?;
        Ok((stamp, keys))
    }

    fn current(&self) -> Result<std::sync::Arc<KeySet>> {
        let (path, _) = self.config.key_file()?;
        self.keys.get(path, || self.load())
    }
}

impl Session {
    /// This session also accepts the platform's member tokens as `cfg` describes; the key file is read now, so a
    /// wrong configuration fails at start-up ([`ErrorKind::BadInput`]) rather than at the first request.
    pub fn with_member_tokens(mut self, cfg: MemberTokenConfig) -> Result<Session> {
        cfg.check()?;
        let tokens = PlatformTokens { config: cfg, keys: FileCache::default() };
        tokens.current().map_err(|e| e.with_kind(ErrorKind::BadInput))?;
        self.platform = Some(tokens);
        Ok(self)
    }

    /// Whether platform member tokens are configured.
    pub fn accepts_platform_tokens(&self) -> bool {
        self.platform.is_some()
    }

    /// The member a platform token speaks for, after every check at `now` (see the module's documentation).
    pub fn verify_platform_token(&self, token: &str, now: i64) -> Result<u64> {
        let tokens = self.platform.as_ref().ok_or_else(|| {
            AppError::new(
                ErrorKind::Unauthenticated,
                "this service accepts no platform tokens ([member_tokens] is not configured)",
            )
        })?;
        verify_with(tokens.current()?.as_ref(), &tokens.config, token, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;

    const NOW: i64 = 1_800_000_000;

    fn cfg() -> MemberTokenConfig {
        MemberTokenConfig {
            issuer: "https://platform.example".into(),
            audience: "consentry".into(),
            jwks_file: Some("unused".into()),
            public_key_file: None,
            member_claim: "sub".into(),
            clock_skew_secs: 60,
        }
    }

    fn ed() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[3; 32])
    }

    fn ec() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap()
    }

    fn jws(header: Value, claims: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig = sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig))
    }

    fn claims() -> Value {
        serde_json::json!({"iss": "https://platform.example", "aud": ["x", "consentry"], "sub": "42",
            "iat": NOW, "nbf": NOW, "exp": NOW + 600})
    }

    fn set() -> KeySet {
        KeySet(vec![
            (Some("ed".into()), Verifier::Ed25519(ed().verifying_key())),
            (Some("ec".into()), Verifier::Es256(*ec().verifying_key())),
        ])
    }

    fn ed_token(claims: Value) -> String {
        jws(serde_json::json!({"alg": "EdDSA", "kid": "ed"}), claims, |m| ed().sign(m).to_bytes().to_vec())
    }

    fn refused_with(token: &str, says: &str) {
        let e = verify_with(&set(), &cfg(), token, NOW).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(e.to_string().contains(says), "{e}");
    }

    #[test]
    fn ed25519_and_p256_tokens_verify() {
        assert_eq!(verify_with(&set(), &cfg(), &ed_token(claims()), NOW).unwrap(), 42);
        let es = jws(serde_json::json!({"alg": "ES256", "kid": "ec"}), claims(), |m| {
            let s: p256::ecdsa::Signature = ec().sign(m);
            s.to_bytes().to_vec()
        });
        assert_eq!(verify_with(&set(), &cfg(), &es, NOW).unwrap(), 42);
        let mut c = claims();
        c["sub"] = serde_json::json!(7);
        assert_eq!(verify_with(&set(), &cfg(), &ed_token(c), NOW).unwrap(), 7);
    }

    #[test]
    fn every_check_names_itself() {
        let mut c = claims();
        c["exp"] = serde_json::json!(NOW - 61);
        refused_with(&ed_token(c), "expired");
        let mut c = claims();
        c["nbf"] = serde_json::json!(NOW + 61);
        refused_with(&ed_token(c), "not valid yet");
        let mut c = claims();
        c["iat"] = serde_json::json!(NOW + 61);
        refused_with(&ed_token(c), "issued in the future");
        let mut c = claims();
        c["iss"] = serde_json::json!("https://evil.example");
        refused_with(&ed_token(c), "issued by");
        let mut c = claims();
        c["aud"] = serde_json::json!("other");
        refused_with(&ed_token(c), "not `consentry`");
        let mut c = claims();
        c["sub"] = serde_json::json!("alice");
        refused_with(&ed_token(c), "member id");
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        refused_with(&ed_token(c), "no expiry");
        let none = jws(serde_json::json!({"alg": "none"}), claims(), |_| Vec::new());
        refused_with(&none, "unsigned");
        let wrong_type =
            jws(serde_json::json!({"alg": "ES256", "kid": "ed"}), claims(), |m| ed().sign(m).to_bytes().to_vec());
        refused_with(&wrong_type, "is an EdDSA key");
        refused_with(
            &jws(serde_json::json!({"alg": "EdDSA", "kid": "gone"}), claims(), |_| vec![0; 64]),
            "unknown key",
        );
        refused_with(&jws(serde_json::json!({"alg": "EdDSA"}), claims(), |_| vec![0; 64]), "names no key");
        refused_with(&jws(serde_json::json!({"alg": "RS256", "kid": "ed"}), claims(), |_| vec![0; 64]), "only EdDSA");
        for garbage in ["", "a.b", "a.b.c.d", "!.!.!"] {
            refused_with(garbage, "malformed");
        }
    }

    /// The published examples verify here (interoperability, not only agreement with this module's own signer):
    /// RFC 8037 A.4 (Ed25519) and RFC 7515 A.3 (ES256). Neither carries the claims this service needs, so each
    /// fails at the first claim check — after its signature verified.
    #[test]
    fn the_rfc_examples_verify() {
        let jwks = |key: Value| parse_jwks(&serde_json::json!({"keys": [key]}).to_string(), Path::new("k")).unwrap();
        let ed = jwks(
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
        );
        let rfc8037 = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        let e = verify_with(&ed, &cfg(), rfc8037, NOW).unwrap_err();
        assert!(e.to_string().contains("claims is not a JSON object"), "{e}");
        let ec = jwks(serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}));
        let rfc7515 = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
        let joe = MemberTokenConfig { issuer: "joe".into(), ..cfg() };
        let e = verify_with(&ec, &joe, rfc7515, NOW).unwrap_err();
        assert!(e.to_string().contains("is for (nobody)"), "{e}");
        // One signature bit changed: refused at the signature.
        for (set, token) in [(&ed, rfc8037), (&ec, rfc7515)] {
            let flipped = format!("{}{}", &token[..token.len() - 2], if token.ends_with("AQ") { "BQ" } else { "AQ" });
            let e = verify_with(set, &joe, &flipped, NOW).unwrap_err();
            assert!(e.to_string().contains("signature does not verify"), "{e}");
        }
    }

    #[test]
    fn spki_pem_keys_of_both_types_parse() {
        let ed_der = [&ED25519_SPKI[..], ed().verifying_key().as_bytes()].concat();
        let point = ec().verifying_key().to_encoded_point(false);
        let mut ec_der = vec![0x30, 0x59];
        ec_der.extend_from_slice(&P256_ALGORITHM);
        ec_der.extend_from_slice(&[0x03, 0x42, 0x00]);
        ec_der.extend_from_slice(point.as_bytes());
        for (der, alg) in [(ed_der, "EdDSA"), (ec_der, "ES256")] {
            let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", B64_STD.encode(der));
            let set = parse_pem(&pem, Path::new("k.pem")).unwrap();
            assert_eq!(set.0[0].1.alg(), alg);
        }
        assert_eq!(parse_pem("nope", Path::new("k.pem")).unwrap_err().kind(), ErrorKind::BadInput);
    }
}
