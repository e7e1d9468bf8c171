//! The web pages: the member's privacy centre (`/privacy`), the privacy officer's dashboard (`/dashboard`) and a
//! landing page (`/`), with their assets under `/assets/`. Every byte is embedded in the binary (no CDN, no web
//! server, no network at run time); the pages are static and read everything through the JSON API with the
//! member's session cookie or the operator's API key, so they hold no rule and no data of their own.
//!
//! Every page and asset is sent with a strict Content-Security-Policy (scripts and styles only from this origin,
//! no inline code, no framing), `nosniff`, no referrer, and an ETag so a warm load costs a 304.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::OnceLock;

use crate::Shared;
use crate::problem::problem_for_status;

/// The policy every page and asset is served under: nothing but this origin's own scripts, styles and API.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One embedded file: its name under `/assets/` (or a page's path), its media type and its bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $media:literal) => {
        Asset { name: $name, media_type: $media, bytes: include_bytes!(concat!("../assets/", $name)) }
    };
}

/// Every embedded file. A page is an asset whose name ends in `.html`. The receipt verifier and its vendored BLAKE3
/// (`@noble/hashes`, see `assets/vendor/noble-hashes/README.md`) are loaded only when a member checks a receipt.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("privacy.html", "text/html; charset=utf-8"),
    asset!("dashboard.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("common.js", "text/javascript; charset=utf-8"),
    asset!("privacy.js", "text/javascript; charset=utf-8"),
    asset!("dashboard.js", "text/javascript; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("verify-receipt.js", "text/javascript; charset=utf-8"),
    asset!("vendor/noble-hashes/blake3.js", "text/javascript; charset=utf-8"),
    asset!("vendor/noble-hashes/blake2.js", "text/javascript; charset=utf-8"),
    asset!("vendor/noble-hashes/_blake.js", "text/javascript; charset=utf-8"),
    asset!("vendor/noble-hashes/_md.js", "text/javascript; charset=utf-8"),
    asset!("vendor/noble-hashes/_u64.js", "text/javascript; charset=utf-8"),
    asset!("vendor/noble-hashes/utils.js", "text/javascript; charset=utf-8"),
];

/// The pages' routes (not part of the OpenAPI document: they are pages, not API).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { serve("index.html", &h) }))
        .route("/privacy", get(|h: HeaderMap| async move { serve("privacy.html", &h) }))
        .route("/dashboard", get(|h: HeaderMap| async move { serve("dashboard.html", &h) }))
        .route("/favicon.ico", get(|h: HeaderMap| async move { serve("icon.svg", &h) }))
        .route("/assets/{*name}", get(asset))
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    // Pages have their own paths; under /assets/ only the files they load.
    if name.ends_with(".html") {
        return problem_for_status(StatusCode::NOT_FOUND).into_response();
    }
    serve(&name, &headers)
}

/// The ETag of every asset, computed once (BLAKE3 of the bytes: the same binary gives the same tags in every process).
fn etags() -> &'static Vec<String> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS.iter().map(|a| format!("\"{}\"", &blake3::hash(a.bytes).to_hex().as_str()[..20])).collect()
    })
}

/// The total bytes of the embedded assets, for the page-weight line of the docs and the tests.
pub fn embedded_bytes() -> usize {
    ASSETS.iter().map(|a| a.bytes.len()).sum()
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return problem_for_status(StatusCode::NOT_FOUND).into_response();
    };
    let a = &ASSETS[i];
    let tag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.media_type)], a.bytes).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    // Revalidate every time: a new release's pages are never mixed with an old release's scripts.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_named_once_and_pages_reference_only_embedded_assets() {
        let names: std::collections::BTreeSet<&str> = ASSETS.iter().map(|a| a.name).collect();
        assert_eq!(names.len(), ASSETS.len());
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".html") || a.name.ends_with(".js")) {
            let text = std::str::from_utf8(a.bytes).unwrap();
            for (i, _) in text.match_indices("/assets/") {
                let rest = &text[i + "/assets/".len()..];
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || "._-/".contains(c))).unwrap_or(rest.len());
                let referenced = &rest[..end];
                assert!(
                    names.contains(referenced),
                    "{} references /assets/{referenced}, which is not embedded",
                    a.name
                );
            }
            // Relative module imports (`from "./x.js"`) resolve against the importing file's folder.
            let dir = a.name.rsplit_once('/').map_or("", |(d, _)| d);
            for quote in ['"', '\''] {
                for (i, _) in text.match_indices(&format!("from {quote}./")) {
                    let rest = &text[i + 8..];
                    let file = &rest[..rest.find(quote).unwrap()];
                    let resolved = if dir.is_empty() { file.to_string() } else { format!("{dir}/{file}") };
                    assert!(names.contains(resolved.as_str()), "{} imports ./{file}, which is not embedded", a.name);
                }
            }
        }
    }

    #[test]
    fn pages_carry_no_inline_script_or_style() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".html")) {
            let text = std::str::from_utf8(a.bytes).unwrap();
            assert!(!text.contains("<script>"), "{} has an inline script: the CSP refuses it", a.name);
            assert!(!text.contains("<style"), "{} has an inline style element: the CSP refuses it", a.name);
            assert!(!text.contains(" style=\""), "{} has a style attribute: the CSP refuses it", a.name);
            let handler = text.match_indices(" on").any(|(i, _)| {
                let rest = &text[i + 3..];
                let word = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_lowercase()).len();
                word > 0 && rest[word..].starts_with('=')
            });
            assert!(!handler, "{} has an inline event handler: the CSP refuses it", a.name);
            assert!(!text.contains("http://") && !text.contains("https://"), "{} loads from elsewhere", a.name);
        }
    }
}
