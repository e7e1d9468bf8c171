//! How members prove who they are beyond Consentry's own tokens, over real HTTP: the platform's JWTs (EdDSA and
//! ES256, signed here with keys made in the test, configured through a real `[member_tokens]` file), and web session
//! cookies with CSRF protection. Red-team cases (the `alg: none` and HS256-with-the-public-key confusion attacks,
//! forged and tampered tokens, forged and tampered cookies, cross-site writes without the CSRF token) live here
//! because they need the service's HTTP layer, not the CLI the `red_team` suite drives.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use common::*;
use consentry_app::config::ServiceConfig;
use consentry_app::{DataDir, Session};
use consentry_test_support::http::{Response, request};
use ed25519_dalek::Signer as _;
use hmac::Mac as _;
use serde_json::{Value, json};
use std::path::Path;

const ISSUER: &str = "https://platform.example";
const AUDIENCE: &str = "consentry-prod";

fn ed_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn ec_key(seed: u8) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap()
}

/// The Ed25519 public key as SPKI PEM (RFC 8410: a fixed 12-byte DER prefix, then the key).
fn ed_pem(key: &ed25519_dalek::SigningKey) -> String {
    let prefix = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    let der = [&prefix[..], key.verifying_key().as_bytes()].concat();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der))
}

fn ed_jwk(kid: &str, key: &ed25519_dalek::SigningKey) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA",
        "x": B64.encode(key.verifying_key().as_bytes())})
}

fn ec_jwk(kid: &str, key: &p256::ecdsa::SigningKey) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": B64.encode(point.x().unwrap()),
        "y": B64.encode(point.y().unwrap())})
}

fn jws(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", B64.encode(signature))
}

fn claims(member: u64) -> Value {
    let now = consentry_ledger::now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": member.to_string(), "iat": now, "nbf": now, "exp": now + 600})
}

fn ed_token(kid: Option<&str>, key: &ed25519_dalek::SigningKey, claims: &Value) -> String {
    let mut header = json!({"alg": "EdDSA", "typ": "JWT"});
    if let Some(k) = kid {
        header["kid"] = json!(k);
    }
    jws(&header, claims, |m| key.sign(m).to_bytes().to_vec())
}

fn ec_token(kid: &str, key: &p256::ecdsa::SigningKey, claims: &Value) -> String {
    jws(&json!({"alg": "ES256", "kid": kid}), claims, |m| {
        let s: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(key, m);
        s.to_bytes().to_vec()
    })
}

/// Writes `name` in `dir` by a temporary file and a rename (as a platform's key rotation would).
fn replace(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// The service with `[member_tokens]` naming `key_line` (a `jwks_file = …` or `public_key_file = …` line), the key
/// file `(name, text)` written beside the configuration, read through `ServiceConfig::load` as `serve --config` does.
fn platform_server(key_line: &str, key_file: (&str, &str)) -> Server {
    let (dir, data) = Server::fixture();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    replace(&etc, key_file.0, key_file.1);
    let config = etc.join("consentry.toml");
    std::fs::write(
        &config,
        format!(
            "[member_tokens]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n{key_line}\nclock_skew_secs = 60\n"
        ),
    )
    .unwrap();
    let cfg = ServiceConfig::load(&config).unwrap().member_tokens.unwrap();
    let session = Session::open(DataDir::new(&data), None).unwrap().with_member_tokens(cfg).unwrap();
    Server::with_session(dir, session, consentry_server::router)
}

fn jwks_server(keys: &[Value]) -> Server {
    platform_server("jwks_file = \"jwks.json\"", ("jwks.json", &json!({"keys": keys}).to_string()))
}

fn etc(s: &Server) -> std::path::PathBuf {
    s.dir.path().join("etc")
}

#[test]
fn ed25519_and_p256_platform_tokens_are_accepted() {
    let (ed, ec) = (ed_key(1), ec_key(2));
    let s = jwks_server(&[ed_jwk("ed-1", &ed), ec_jwk("ec-1", &ec)]);
    for token in [ed_token(Some("ed-1"), &ed, &claims(A)), ec_token("ec-1", &ec, &claims(A))] {
        let r = s.get("/v1/me/consents", &token);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["member"], A);
    }
    // A numeric member claim, and a write.
    let mut c = claims(B);
    c["sub"] = json!(B);
    let r = s.choose(&ec_token("ec-1", &ec, &c), JOBS, "granted", 1, &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["event"]["member_id"], B);
    // Consentry's own tokens keep working beside the platform's.
    assert_eq!(s.get("/v1/me/consents", &s.token(A)).status, 200);
    // A single PEM key, with no kid in the token.
    let pem = platform_server("public_key_file = \"platform.pem\"", ("platform.pem", &ed_pem(&ed)));
    assert_eq!(pem.get("/v1/me/consents", &ed_token(None, &ed, &claims(A))).status, 200);
}

#[test]
fn every_bad_platform_token_is_401_naming_its_check_and_writes_nothing() {
    let ed = ed_key(1);
    let s = platform_server("public_key_file = \"platform.pem\"", ("platform.pem", &ed_pem(&ed)));
    let jwks = jwks_server(&[ed_jwk("ed-1", &ed)]);
    let now = consentry_ledger::now();
    let with = |k: &str, v: Value| {
        let mut c = claims(A);
        c[k] = v;
        ed_token(Some("ed-1"), &ed, &c)
    };
    let good = ed_token(Some("ed-1"), &ed, &claims(A));
    let (head, rest) = good.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    // The classic confusion attack: HS256 "signed" with the public key (as PEM text, and as raw key bytes).
    let hs256 = |secret: &[u8]| {
        jws(&json!({"alg": "HS256", "typ": "JWT"}), &claims(A), |m| {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(m);
            mac.finalize().into_bytes().to_vec()
        })
    };
    let mut tampered = claims(A);
    tampered["sub"] = json!(B.to_string());
    let cases: Vec<(&str, String, &Server)> = vec![
        ("expired", with("exp", json!(now - 120)), &s),
        ("not valid yet", with("nbf", json!(now + 600)), &s),
        ("issued in the future", with("iat", json!(now + 600)), &s),
        ("issued by", with("iss", json!("https://evil.example")), &s),
        ("not `consentry-prod`", with("aud", json!(["consentry-staging"])), &s),
        ("unknown key", ed_token(Some("ed-2"), &ed, &claims(A)), &jwks),
        ("unsigned", jws(&json!({"alg": "none"}), &claims(A), |_| Vec::new()), &s),
        ("HMAC", hs256(ed_pem(&ed).as_bytes()), &s),
        ("HMAC", hs256(ed.verifying_key().as_bytes()), &jwks),
        ("signature does not verify", ed_token(Some("ed-1"), &ed_key(9), &claims(A)), &s),
        ("signature does not verify", ed_token(Some("ed-1"), &ed_key(9), &claims(A)), &jwks),
        // Member B's claims under a signature made over member A's.
        ("signature does not verify", format!("{head}.{}.{signature}", B64.encode(tampered.to_string())), &s),
        ("only EdDSA and ES256", jws(&json!({"alg": "RS256"}), &claims(A), |_| vec![1; 256]), &s),
        ("member id", with("sub", json!("alice")), &s),
    ];
    for (says, token, server) in cases {
        let before = server.ledger_len();
        for r in [server.get("/v1/me/consents", &token), server.choose(&token, JOBS, "granted", 1, &[])] {
            let body = problem(&r, 401, "unauthenticated");
            assert!(body["detail"].as_str().unwrap().contains(says), "{says}: {body}");
        }
        assert_eq!(server.ledger_len(), before, "{says}: a refused token wrote something");
    }
}

#[test]
fn a_jwks_rotation_takes_effect_without_a_restart() {
    let (old, new) = (ed_key(1), ec_key(2));
    let s = jwks_server(&[ed_jwk("2026-01", &old)]);
    let old_token = ed_token(Some("2026-01"), &old, &claims(A));
    let new_token = ec_token("2026-02", &new, &claims(A));
    assert_eq!(s.get("/v1/me/consents", &old_token).status, 200);
    problem(&s.get("/v1/me/consents", &new_token), 401, "unauthenticated");
    // Rotation overlap: both keys published.
    replace(&etc(&s), "jwks.json", &json!({"keys": [ed_jwk("2026-01", &old), ec_jwk("2026-02", &new)]}).to_string());
    assert_eq!(s.get("/v1/me/consents", &old_token).status, 200);
    assert_eq!(s.get("/v1/me/consents", &new_token).status, 200);
    // The old key retired.
    replace(&etc(&s), "jwks.json", &json!({"keys": [ec_jwk("2026-02", &new)]}).to_string());
    let body = problem(&s.get("/v1/me/consents", &old_token), 401, "unauthenticated");
    assert!(body["detail"].as_str().unwrap().contains("unknown key"), "{body}");
    assert_eq!(s.get("/v1/me/consents", &new_token).status, 200);
}

#[test]
fn a_jwks_mounted_the_kubernetes_way_is_re_read_when_its_directory_link_swaps() {
    // etc/jwks.json -> ..data/jwks.json, ..data -> v1: the rotation swaps ..data only; jwks.json never changes.
    let (old, new) = (ed_key(1), ed_key(2));
    let (dir, data) = Server::fixture();
    let etc = dir.path().join("etc");
    for (v, key) in [("v1", &old), ("v2", &new)] {
        std::fs::create_dir_all(etc.join(v)).unwrap();
        std::fs::write(etc.join(v).join("jwks.json"), json!({"keys": [ed_jwk("k", key)]}).to_string()).unwrap();
    }
    std::os::unix::fs::symlink("v1", etc.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/jwks.json", etc.join("jwks.json")).unwrap();
    let config =
        format!("[member_tokens]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"jwks.json\"\n");
    let cfg = ServiceConfig::parse(&config, &etc).unwrap().member_tokens.unwrap();
    let session = Session::open(DataDir::new(&data), None).unwrap().with_member_tokens(cfg).unwrap();
    let s = Server::with_session(dir, session, consentry_server::router);
    let (old_token, new_token) = (ed_token(Some("k"), &old, &claims(A)), ed_token(Some("k"), &new, &claims(A)));
    assert_eq!(s.get("/v1/me/consents", &old_token).status, 200);
    std::os::unix::fs::symlink("v2", etc.join("..data.tmp")).unwrap();
    std::fs::rename(etc.join("..data.tmp"), etc.join("..data")).unwrap();
    problem(&s.get("/v1/me/consents", &old_token), 401, "unauthenticated");
    assert_eq!(s.get("/v1/me/consents", &new_token).status, 200);
}

/// A member of the fixture with facts (PL) and no consent event yet.
const NO_EVENTS: u64 = 7;

#[test]
fn a_platform_member_without_events_chooses_and_one_without_facts_is_not_found() {
    let ed = ed_key(1);
    let s = jwks_server(&[ed_jwk("ed-1", &ed)]);
    let fresh = ed_token(Some("ed-1"), &ed, &claims(NO_EVENTS));
    let r = s.get("/v1/me/consents", &fresh);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["purposes"].as_array().unwrap().len(), 3, "{body}");
    assert!(body["purposes"].as_array().unwrap().iter().all(|p| p["deciding_seq"].is_null()), "{body}");
    let r = s.choose(&fresh, JOBS, "granted", 1, &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["event"]["member_id"], NO_EVENTS);
    let stranger = ed_token(Some("ed-1"), &ed, &claims(987_654_321));
    let before = s.ledger_len();
    let body = problem(&s.get("/v1/me/consents", &stranger), 404, "not-found");
    assert!(body["detail"].as_str().unwrap().contains("not in the ledger"), "{body}");
    problem(&s.choose(&stranger, JOBS, "granted", 1, &[]), 404, "not-found");
    assert_eq!(s.ledger_len(), before);
}

// ---- Web sessions ----

fn cookie_pair(set_cookie: &str) -> (&str, &str) {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap()
}

fn set_cookies(r: &Response) -> Vec<&str> {
    r.headers.iter().filter(|(n, _)| n == "set-cookie").map(|(_, v)| v.as_str()).collect()
}

/// Signs in with `bearer`: (the session cookie's value, the CSRF token).
fn sign_in(s: &Server, bearer: &str) -> (String, String) {
    let r = request(s.addr, "POST", "/v1/session", &[("Authorization", &format!("Bearer {bearer}"))], b"");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let session = set_cookies(&r).into_iter().find(|c| c.starts_with("consentry_session=")).unwrap().to_string();
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    (cookie_pair(&session).1.to_string(), csrf)
}

fn with_cookie(s: &Server, method: &str, path: &str, cookie: &str, extra: &[(&str, &str)], body: &str) -> Response {
    let cookie = format!("theme=dark; consentry_session={cookie}");
    let mut headers = vec![("Cookie", cookie.as_str()), ("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    request(s.addr, method, path, &headers, body.as_bytes())
}

const GRANT: &str = r#"{"state": "granted", "notice_version": 1}"#;

#[test]
fn sign_in_sets_both_cookies_with_exactly_the_attributes() {
    let s = Server::start();
    let r = request(s.addr, "POST", "/v1/session", &[("Authorization", &format!("Bearer {}", s.token(A)))], b"");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["member"], A);
    let csrf = body["csrf_token"].as_str().unwrap();
    assert!(csrf.len() >= 40, "{body}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    let session = cookies.iter().find(|c| c.starts_with("consentry_session=")).unwrap();
    let value = cookie_pair(session).1;
    assert!(!value.is_empty() && !value.contains(csrf), "the session cookie does not carry the CSRF token: {session}");
    assert_eq!(
        session.strip_prefix(&format!("consentry_session={value}")).unwrap(),
        "; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=28800"
    );
    let csrf_cookie = cookies.iter().find(|c| c.starts_with("consentry_csrf=")).unwrap();
    assert_eq!(*csrf_cookie, format!("consentry_csrf={csrf}; Secure; SameSite=Strict; Path=/; Max-Age=28800"));
    // An API key acts for no member, so it opens no web session; no credential, no session.
    let key = s.session.create_api_key(consentry_app::keys::Role::Operator, "ops", 1).unwrap();
    let r = request(s.addr, "POST", "/v1/session", &[("Authorization", &format!("Bearer {}", key.secret))], b"");
    problem(&r, 403, "forbidden");
    problem(&request(s.addr, "POST", "/v1/session", &[], b""), 401, "unauthenticated");
    // A session cookie is not a bearer credential for signing in again.
    let r = with_cookie(&s, "POST", "/v1/session", value, &[("X-CSRF-Token", csrf)], "");
    problem(&r, 401, "unauthenticated");
}

#[test]
fn a_cookie_reads_freely_and_writes_only_with_its_csrf_token() {
    let s = Server::start();
    let (cookie, csrf) = sign_in(&s, &s.token(A));
    let r = with_cookie(&s, "GET", "/v1/me/consents", &cookie, &[], "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["member"], A);
    let path = format!("/v1/me/consents/{JOBS}");
    let before = s.ledger_len();
    let body = problem(&with_cookie(&s, "PUT", &path, &cookie, &[], GRANT), 403, "forbidden");
    assert!(body["detail"].as_str().unwrap().contains("X-CSRF-Token"), "{body}");
    problem(&with_cookie(&s, "PUT", &path, &cookie, &[("X-CSRF-Token", "guess")], GRANT), 403, "forbidden");
    // Another session's CSRF token is not this one's.
    let (_, other_csrf) = sign_in(&s, &s.token(A));
    problem(&with_cookie(&s, "PUT", &path, &cookie, &[("X-CSRF-Token", &other_csrf)], GRANT), 403, "forbidden");
    assert_eq!(s.ledger_len(), before, "a write without the CSRF token went through");
    let r = with_cookie(&s, "PUT", &path, &cookie, &[("X-CSRF-Token", &csrf)], GRANT);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["event"]["member_id"], A);
    // A choice made in the privacy centre (the cookie) is recorded as the UI's; one with a bearer token, an app's.
    assert_eq!(r.json()["event"]["source"], "ui");
    // A bearer request needs no CSRF token, and a bearer header wins over a cookie.
    let r = s.choose(&s.token(A), JOBS, "withdrawn", 1, &[]);
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["event"]["source"], "api");
    let both = format!("consentry_session={cookie}");
    let r = request(s.addr, "GET", "/v1/me/consents", &[("Cookie", &both), ("Authorization", "Bearer garbage")], b"");
    problem(&r, 401, "unauthenticated");
}

#[test]
fn a_signed_out_tampered_or_foreign_cookie_is_refused() {
    let s = Server::start();
    let (cookie, csrf) = sign_in(&s, &s.token(A));
    // Tampered: member B's claims under the signature of A's session; a member token passed as a cookie.
    let (payload, sig) = cookie.split_once('.').unwrap();
    let mut claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    claims["member"] = json!(B);
    let forged = format!("{}.{sig}", B64.encode(claims.to_string()));
    for bad in [forged.as_str(), &s.token(A), "garbage"] {
        problem(&with_cookie(&s, "GET", "/v1/me/consents", bad, &[], ""), 401, "unauthenticated");
    }
    // Another data directory's cookie.
    let other = Server::start();
    let (theirs, _) = sign_in(&other, &other.token(A));
    problem(&with_cookie(&s, "GET", "/v1/me/consents", &theirs, &[], ""), 401, "unauthenticated");
    // Signing out needs the CSRF token, clears both cookies, and the old cookie is refused from then on.
    problem(&with_cookie(&s, "DELETE", "/v1/session", &cookie, &[], ""), 403, "forbidden");
    assert_eq!(with_cookie(&s, "GET", "/v1/me/consents", &cookie, &[], "").status, 200);
    let r = with_cookie(&s, "DELETE", "/v1/session", &cookie, &[("X-CSRF-Token", &csrf)], "");
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let mut cleared = set_cookies(&r);
    cleared.sort();
    assert_eq!(
        cleared,
        [
            "consentry_csrf=; Secure; SameSite=Strict; Path=/; Max-Age=0",
            "consentry_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"
        ]
    );
    let body = problem(&with_cookie(&s, "GET", "/v1/me/consents", &cookie, &[], ""), 401, "unauthenticated");
    assert!(body["detail"].as_str().unwrap().contains("signed out"), "{body}");
    let before = s.ledger_len();
    let r = with_cookie(&s, "PUT", &format!("/v1/me/consents/{JOBS}"), &cookie, &[("X-CSRF-Token", &csrf)], GRANT);
    problem(&r, 401, "unauthenticated");
    assert_eq!(s.ledger_len(), before);
    problem(&request(s.addr, "DELETE", "/v1/session", &[], b""), 401, "unauthenticated");
}

#[test]
fn a_platform_token_signs_in_too() {
    let ec = ec_key(2);
    let s = jwks_server(&[ec_jwk("ec-1", &ec)]);
    let (cookie, csrf) = sign_in(&s, &ec_token("ec-1", &ec, &claims(B)));
    assert_eq!(with_cookie(&s, "GET", "/v1/me/consents", &cookie, &[], "").json()["member"], B);
    let r = with_cookie(&s, "PUT", &format!("/v1/me/consents/{JOBS}"), &cookie, &[("X-CSRF-Token", &csrf)], GRANT);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn the_session_routes_are_in_the_openapi_description() {
    use utoipa::OpenApi as _;
    let doc = serde_json::to_value(consentry_server::websession::SessionApi::openapi()).unwrap();
    let path = &doc["paths"]["/v1/session"];
    assert!(path["post"]["responses"]["201"].is_object(), "{path}");
    assert!(path["delete"]["responses"]["204"].is_object(), "{path}");
    assert!(doc["components"]["schemas"]["SessionOpened"]["properties"]["csrf_token"].is_object(), "{doc}");
}
