//! `consentry serve` and `consentry token` as an operator runs them: the service on port 0 (the bound address is
//! the first line of standard output), a token minted by the CLI, one authenticated request, and SIGTERM stopping
//! the service cleanly.

mod common;

use common::*;
use consentry_test_support::http::request;
use std::path::Path;

#[test]
fn serve_answers_a_member_with_a_token_from_the_cli_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1"), &data);

    let token = ok(&consentry(&data, &["token", "--member", "5", "--ttl", "10m"])).trim().to_string();
    assert!(token.contains('.') && !token.contains(char::is_whitespace), "{token}");
    // An unknown member gets no token.
    let refused = consentry(&data, &["token", "--member", "999999"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("not in the ledger"), "{}", text(&refused.stderr));

    // A sign-in link carries the token in its fragment (never sent to a server); a link without a scheme is refused.
    let link =
        ok(&consentry(&data, &["token", "--member", "5", "--link", "http://127.0.0.1:8080/"])).trim().to_string();
    let linked = link.strip_prefix("http://127.0.0.1:8080/privacy#token=").unwrap_or_else(|| panic!("{link}"));
    assert!(linked.contains('.') && !linked.contains(char::is_whitespace), "{link}");
    let refused = consentry(&data, &["token", "--member", "5", "--link", "127.0.0.1:8080"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("with its scheme"), "{}", text(&refused.stderr));

    let (child, addr) = serve(&data);

    let r = request(addr, "GET", "/v1/me/consents", &[("Authorization", &format!("Bearer {token}"))], b"");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let body = r.json();
    assert_eq!(body["member"], 5);
    assert_eq!(body["purposes"].as_array().unwrap().len(), 3);
    assert_eq!(request(addr, "GET", "/v1/me/consents", &[], b"").status, 401);

    // SIGTERM: a graceful stop, exit 0.
    let status = sigterm(child);
    assert_eq!(status.code(), Some(0), "{status:?}");
}
