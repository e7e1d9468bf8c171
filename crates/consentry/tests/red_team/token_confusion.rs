//! A hostile client against `consentry serve --config` configured for the platform's member tokens: it knows the
//! platform's public key (it is public) but not its private key, and tries the known JWT confusions to act as a
//! member. Every attempt must be a 401 that writes nothing; the platform's genuine token (the control) works.

use crate::common::{command, copy_dir, text};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use consentry_test_support::http::request;
use ed25519_dalek::Signer as _;
use hmac::Mac as _;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

const ISSUER: &str = "https://platform.example";
const AUDIENCE: &str = "consentry";
/// A member of the fixture's ledger.
const MEMBER: u64 = 5;

fn jws(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", B64.encode(signature))
}

fn hs256(secret: &[u8], claims: &Value, header: &Value) -> String {
    jws(header, claims, |m| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(m);
        mac.finalize().into_bytes().to_vec()
    })
}

/// The service as a platform runs it, stopped when dropped.
struct Service(std::process::Child, SocketAddr);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, config: &Path) -> Service {
    let mut child = command(data)
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("consentry serve starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("the address line");
    let addr = first.trim().strip_prefix("http://").and_then(|a| a.parse().ok());
    let addr = addr.unwrap_or_else(|| panic!("serve did not print its address: {first:?}"));
    Service(child, addr)
}

fn entries(addr: SocketAddr) -> u64 {
    request(addr, "GET", "/readyz", &[], b"").json()["entries"].as_u64().expect("readyz names the ledger size")
}

#[test]
fn no_jwt_confusion_lets_a_client_act_as_a_member() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1"), &data);
    let platform = ed25519_dalek::SigningKey::from_bytes(&[21; 32]);
    let public = platform.verifying_key();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": B64.encode(public.as_bytes())});
    let jwks = json!({"keys": [jwk]}).to_string();
    std::fs::write(dir.path().join("jwks.json"), &jwks).expect("write the JWKS");
    let config = dir.path().join("consentry.toml");
    std::fs::write(
        &config,
        format!("[member_tokens]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"jwks.json\"\n"),
    )
    .expect("write the configuration");
    let service = serve(&data, &config);
    let addr = service.1;

    let now = consentry_ledger::now();
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": MEMBER.to_string(), "iat": now, "exp": now + 600});
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[66; 32]);
    let attacker_jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(attacker.verifying_key().as_bytes())});
    let by_attacker = |header: Value| jws(&header, &claims, |m| attacker.sign(m).to_bytes().to_vec());
    let attacks = [
        ("alg none", jws(&json!({"alg": "none", "kid": "k1"}), &claims, |_| Vec::new())),
        ("alg None", jws(&json!({"alg": "None"}), &claims, |_| Vec::new())),
        ("HS256 keyed by the raw public key", hs256(public.as_bytes(), &claims, &json!({"alg": "HS256", "kid": "k1"}))),
        ("HS256 keyed by the JWKS text", hs256(jwks.as_bytes(), &claims, &json!({"alg": "HS256"}))),
        ("HS256 keyed by x", hs256(B64.encode(public.as_bytes()).as_bytes(), &claims, &json!({"alg": "HS256"}))),
        ("HS512", hs256(public.as_bytes(), &claims, &json!({"alg": "HS512", "kid": "k1"}))),
        ("embedded jwk", by_attacker(json!({"alg": "EdDSA", "kid": "k1", "jwk": attacker_jwk}))),
        ("jku to the attacker", by_attacker(json!({"alg": "EdDSA", "jku": "https://evil.example/jwks.json"}))),
        ("kid path traversal", by_attacker(json!({"alg": "EdDSA", "kid": "../../api-keys.json"}))),
        ("ES256 header on an EdDSA key", by_attacker(json!({"alg": "ES256", "kid": "k1"}))),
        ("signature stripped", jws(&json!({"alg": "EdDSA", "kid": "k1"}), &claims, |_| Vec::new())),
    ];
    let before = entries(addr);
    let body = br#"{"state": "granted", "notice_version": 1}"#;
    for (name, token) in &attacks {
        let auth = format!("Bearer {token}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let read = request(addr, "GET", "/v1/me/consents", &headers, b"");
        assert_eq!(read.status, 401, "{name}: {}", text(&read.body));
        let write = request(addr, "PUT", "/v1/me/consents/train_ai_system.job_recommendations", &headers, body);
        assert_eq!(write.status, 401, "{name}: {}", text(&write.body));
        assert_eq!(write.json()["type"], "https://consentry.dev/problems/unauthenticated", "{name}");
        let session = request(addr, "POST", "/v1/session", &headers, b"");
        assert_eq!(session.status, 401, "{name}: a forged token opened a web session");
    }
    assert_eq!(entries(addr), before, "a forged token wrote to the ledger");

    // The control: the platform's own token is accepted.
    let genuine = jws(&json!({"alg": "EdDSA", "kid": "k1"}), &claims, |m| platform.sign(m).to_bytes().to_vec());
    let r = request(addr, "GET", "/v1/me/consents", &[("Authorization", &format!("Bearer {genuine}"))], b"");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.json()["member"], MEMBER);
}
