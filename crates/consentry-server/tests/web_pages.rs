//! The web pages as HTTP serves them: every page and asset is embedded, typed, cached by ETag, and sent under a
//! Content-Security-Policy that refuses inline code and anything from another origin; nothing outside the embedded
//! set is reachable through the asset route. What the pages do in a browser is tested by `e2e/` (Chromium).

mod common;

use common::{Server, problem, request};

const PAGES: &[&str] = &["/", "/privacy", "/dashboard"];

#[test]
fn pages_are_html_under_a_strict_content_security_policy() {
    let s = Server::start();
    for path in PAGES {
        let r = request(s.addr, "GET", path, &[], b"");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{path}: CSP {csp:?} lacks {directive}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.starts_with("<!doctype html>") && body.contains("<html lang=\"en\">"), "{path}");
        assert!(body.contains("name=\"viewport\""), "{path} must be usable on a phone");
    }
}

#[test]
fn assets_are_typed_and_revalidated_by_etag() {
    let s = Server::start();
    for (path, ty) in [
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/privacy.js", "text/javascript; charset=utf-8"),
        ("/assets/dashboard.js", "text/javascript; charset=utf-8"),
        ("/assets/common.js", "text/javascript; charset=utf-8"),
        ("/assets/icon.svg", "image/svg+xml"),
        ("/assets/verify-receipt.js", "text/javascript; charset=utf-8"),
        ("/assets/vendor/noble-hashes/blake3.js", "text/javascript; charset=utf-8"),
        ("/favicon.ico", "image/svg+xml"),
    ] {
        let r = request(s.addr, "GET", path, &[], b"");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ty), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        let tag = r.header("etag").expect("an ETag").to_string();
        let again = request(s.addr, "GET", path, &[("If-None-Match", &tag)], b"");
        assert_eq!(again.status, 304, "{path} with its own ETag");
        assert!(again.body.is_empty());
        let stale = request(s.addr, "GET", path, &[("If-None-Match", "\"0000\"")], b"");
        assert_eq!(stale.status, 200, "{path} with another ETag");
    }
}

#[test]
fn nothing_but_the_embedded_assets_is_reachable() {
    let s = Server::start();
    for path in [
        "/assets/missing.js",
        "/assets/privacy.html",
        "/assets/..%2F..%2FCargo.toml",
        "/assets/../src/web.rs",
        "/assets/%2e%2e/src/lib.rs",
        "/assets/",
        "/assets/app.css/",
        "/privacy/../../ledger.key",
        "/ledger.key",
        "/assets/ledger.key",
        "/assets/vendor/noble-hashes/README.md",
        "/assets/vendor/noble-hashes/../../privacy.html",
        "/assets//etc/passwd",
    ] {
        let r = request(s.addr, "GET", path, &[], b"");
        assert!(r.status == 404, "{path}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        assert!(!String::from_utf8_lossy(&r.body).contains("PRIVATE"), "{path}");
    }
    problem(&request(s.addr, "GET", "/assets/missing.js", &[], b""), 404, "not-found");
}

#[test]
fn pages_are_the_same_for_everyone_and_hold_no_data() {
    // A page is static: it carries no member's data and does not depend on who asks (the API answers for the
    // caller), so a cached or shared copy leaks nothing.
    let s = Server::start();
    let a = s.token(5);
    for path in PAGES {
        let anonymous = request(s.addr, "GET", path, &[], b"");
        let member = s.get(path, &a);
        assert_eq!(anonymous.body, member.body, "{path}");
    }
}
