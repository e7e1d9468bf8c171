//! Telling the platform's other systems: the outbox (see [`consentry_ledger::outbox`]) read by consumers that pull
//! (`GET /v1/events`) and delivered to configured webhooks, with every rule of delivery here — which rows a webhook
//! gets, the body, the signature, the retry schedule, the per-webhook cursor — and only the HTTP transport and the
//! timers in the server.
//!
//! Signatures follow Standard Webhooks: headers `webhook-id` (the outbox id, the same on every retry, so a receiver
//! drops duplicates by it), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature: v1,<base64 of HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`. A secret written
//! `whsec_<base64>` is those decoded bytes, any other secret its UTF-8 bytes. [`verify_webhook_signature`] is what a
//! receiver runs.
//!
//! A webhook's first start puts its cursor at the end of the outbox ([`Session::webhook_attach`]): it gets what is
//! written from then on, not the whole history (a consumer that wants that pulls `GET /v1/events?after=0`).
//! Delivery is at least once: a webhook's cursor (the last outbox id it acknowledged with a 2xx) is stored in the
//! ledger's store and only moves after a 2xx, so a receiver that is down, or a service that is killed, delays rows
//! and never drops one; after a restart the rows past the cursor are delivered again, with their ids. Several
//! `serve` processes on one database each deliver (more duplicates, never a gap).

use crate::config::WebhookConfig;
use crate::error::{AppError, Context as _, ErrorKind, Result};
use crate::session::Session;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use consentry_ledger::outbox::OutboxRow;
use hmac::Mac as _;
use std::time::Duration;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How far a signed timestamp may be from the receiver's clock (either way) by default.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// Rows a webhook takes per round (its cursor is stored after each round).
pub const DELIVERY_BATCH: usize = 64;

/// A configured webhook with its secret loaded: what the delivery loop works with.
#[derive(Clone)]
pub struct Webhook {
    /// Its configuration.
    pub config: WebhookConfig,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("config", &self.config).field("secret", &"…").finish()
    }
}

/// One delivery attempt, signed: the server POSTs `body` to `url` with `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDelivery {
    /// The outbox id.
    pub id: u64,
    /// Where to POST.
    pub url: String,
    /// `content-type`, `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body: `{"id", "type", "created", "data"}`.
    pub body: String,
}

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A header is missing or not what the scheme says.
    #[error("malformed webhook headers: {0}")]
    Malformed(String),
    /// The timestamp is too far from now (a replay, or a clock far off).
    #[error("the webhook timestamp {timestamp} is more than {tolerance} s from now ({now})")]
    Stale {
        /// The signed timestamp.
        timestamp: i64,
        /// The receiver's clock.
        now: i64,
        /// The tolerance applied.
        tolerance: i64,
    },
    /// No `v1` signature matches the body with this secret.
    #[error("no webhook signature matches the body")]
    Mismatch,
}

/// The key bytes of a secret: `whsec_<base64>` decoded, anything else as written (surrounding whitespace trimmed).
pub fn secret_bytes(secret: &str) -> Vec<u8> {
    let s = secret.trim();
    match s.strip_prefix("whsec_").and_then(|b| B64.decode(b).ok()) {
        Some(k) => k,
        None => s.as_bytes().to_vec(),
    }
}

fn mac(secret: &[u8], id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut m = <HmacSha256 as hmac::KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `webhook-signature` value for a delivery: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", B64.encode(mac(secret, id, &timestamp.to_string(), body).finalize().into_bytes()))
}

/// Checks a delivery as a receiver must: `signature` (the `webhook-signature` header, possibly several
/// space-separated `v1,…` values) holds an HMAC of `"{id}.{timestamp}.{body}"` under `secret`, compared in constant
/// time, and `timestamp` is within `tolerance_secs` of `now`. `secret` is the key bytes ([`secret_bytes`]).
pub fn verify_webhook_signature(
    secret: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    if id.is_empty() {
        return Err(SignatureError::Malformed("webhook-id is empty".into()));
    }
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::Malformed(format!("webhook-timestamp `{timestamp}` is not Unix seconds")))?;
    if (now - ts).abs() > tolerance_secs {
        return Err(SignatureError::Stale { timestamp: ts, now, tolerance: tolerance_secs });
    }
    let mut any = false;
    for candidate in signature.split_whitespace() {
        let Some(b64) = candidate.strip_prefix("v1,") else { continue };
        any = true;
        let Ok(given) = B64.decode(b64) else { continue };
        if mac(secret, id, timestamp, body).verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    if any { Err(SignatureError::Mismatch) } else { Err(SignatureError::Malformed("no `v1,` signature".into())) }
}

/// The body a consumer receives for a row (webhooks and `GET /v1/events` alike): the stored payload as `data`
/// (a payload that is not JSON, which only an edit behind the service's back makes, is sent as a string).
pub fn event_json(row: &OutboxRow) -> serde_json::Value {
    let data = serde_json::from_str::<serde_json::Value>(&row.payload)
        .unwrap_or_else(|_| serde_json::Value::String(row.payload.clone()));
    serde_json::json!({ "id": row.id, "type": row.kind, "created": row.created, "data": data })
}

impl Webhook {
    /// Loads the secret the configuration names (a file or an environment variable).
    pub fn load(config: &WebhookConfig) -> Result<Webhook> {
        let secret = match (&config.secret_file, &config.secret_env) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|e| AppError::wrap(ErrorKind::BadInput, e))
                .with_context(|| format!("webhook `{}`: reading its secret {}", config.name, path.display()))?,
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                AppError::bad_input(format!(
                    "webhook `{}`: the environment variable {var} holding its secret is not set",
                    config.name
                ))
            })?,
            (None, None) => {
                return Err(AppError::bad_input(format!("webhook `{}` names no secret", config.name)));
            }
        };
        let secret = secret_bytes(&secret);
        if secret.len() < 16 {
            return Err(AppError::bad_input(format!(
                "webhook `{}`: the secret is shorter than 16 bytes; use a long random one (e.g. `whsec_` + base64 of \
                 32 random bytes)",
                config.name
            )));
        }
        Ok(Webhook { config: config.clone(), secret })
    }

    /// Its name (the key of its cursor).
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether rows of `kind` go to this webhook (the others only move its cursor).
    pub fn wants(&self, kind: &str) -> bool {
        self.config.events.as_ref().is_none_or(|e| e.iter().any(|k| k == kind))
    }

    /// The signed request for `row`, stamped `now` (re-signed on every attempt; the id stays).
    pub fn sign_row(&self, row: &OutboxRow, now: i64) -> SignedDelivery {
        let body = event_json(row).to_string();
        let id = row.id.to_string();
        let signature = sign(&self.secret, &id, now, body.as_bytes());
        SignedDelivery {
            id: row.id,
            url: self.config.url.clone(),
            headers: vec![
                ("content-type", "application/json".to_string()),
                ("webhook-id", id),
                ("webhook-timestamp", now.to_string()),
                ("webhook-signature", signature),
            ],
            body,
        }
    }

    /// How long to wait before retry `attempt` (0 for the first) of row `id`: `retry_initial_ms · 2^attempt`,
    /// capped at `retry_max_ms`, scaled by a jitter in [½, 1] drawn from the id and attempt (so receivers that
    /// failed together do not retry together, yet a run is reproducible).
    pub fn retry_delay(&self, id: u64, attempt: u32) -> Duration {
        let c = &self.config;
        let base = c.retry_initial_ms.saturating_mul(1u64 << attempt.min(30)).min(c.retry_max_ms);
        let mut seed = [0u8; 12];
        seed[..8].copy_from_slice(&id.to_le_bytes());
        seed[8..].copy_from_slice(&attempt.to_le_bytes());
        let h = blake3::hash(&seed);
        let frac = f64::from(u16::from_le_bytes([h.as_bytes()[0], h.as_bytes()[1]])) / f64::from(u16::MAX);
        Duration::from_millis(((base as f64) * (0.5 + 0.5 * frac)) as u64)
    }

    /// How long one attempt may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }
}

/// How far a webhook is behind the outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxLag {
    /// The webhook.
    pub webhook: String,
    /// Its cursor (the last outbox id it acknowledged).
    pub delivered: u64,
    /// Rows written but not yet acknowledged (rows it filters out count until its cursor passes them).
    pub behind: u64,
}

impl Session {
    /// Up to `limit` outbox rows after id `after`, for consumers that pull.
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxRow>> {
        Ok(self.ledger()?.store().outbox_after(after, limit)?)
    }

    /// Starts `hook`'s cursor where the outbox ends if it has none (a webhook gets the rows written after it was
    /// first configured; the history is `GET /v1/events?after=0`), and returns the cursor. Stored at once, so a
    /// restart before the first delivery still delivers everything written since.
    pub fn webhook_attach(&self, hook: &Webhook) -> Result<u64> {
        let store = self.ledger()?.store();
        if let Some(cursor) = store.outbox_cursor(hook.name())? {
            return Ok(cursor);
        }
        let end = store.outbox_last()?;
        store.set_outbox_cursor(hook.name(), end)?;
        Ok(end)
    }

    /// The rows `hook` has not acknowledged yet, up to [`DELIVERY_BATCH`], from its stored cursor.
    pub fn webhook_pending(&self, hook: &Webhook) -> Result<Vec<OutboxRow>> {
        let store = self.ledger()?.store();
        let cursor = store.outbox_cursor(hook.name())?.unwrap_or(0);
        Ok(store.outbox_after(cursor, DELIVERY_BATCH)?)
    }

    /// Records that `hook` acknowledged every row up to `id` (its cursor never moves back).
    pub fn webhook_delivered(&self, hook: &Webhook, id: u64) -> Result<()> {
        let store = self.ledger()?.store();
        if store.outbox_cursor(hook.name())?.is_none_or(|c| c < id) {
            store.set_outbox_cursor(hook.name(), id)?;
        }
        Ok(())
    }

    /// Rows not yet delivered, per configured webhook (for the metrics).
    pub fn outbox_lag(&self, hooks: &[WebhookConfig]) -> Result<Vec<OutboxLag>> {
        let store = self.ledger()?.store();
        let last = store.outbox_last()?;
        hooks
            .iter()
            .map(|h| {
                let delivered = store.outbox_cursor(&h.name)?.unwrap_or(0);
                Ok(OutboxLag { webhook: h.name.clone(), delivered, behind: last.saturating_sub(delivered) })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(events: Option<Vec<String>>) -> Webhook {
        Webhook {
            config: WebhookConfig {
                name: "crm".into(),
                url: "http://127.0.0.1:9/".into(),
                secret_file: None,
                secret_env: Some("X".into()),
                events,
                retry_initial_ms: 100,
                retry_max_ms: 1000,
                timeout_ms: 1000,
            },
            secret: secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        }
    }

    /// The Standard Webhooks reference vector: this secret, id, timestamp and body sign to this value.
    #[test]
    fn signatures_match_the_standard_webhooks_vector() {
        let secret = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let ok = |sig: &str, now| {
            verify_webhook_signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, sig, now, 300)
        };
        assert_eq!(ok(&sig, 1614265330), Ok(()));
        assert_eq!(ok(&format!("v1,bm9wZQ== {sig}"), 1614265400), Ok(()));
        assert_eq!(
            ok(&sig, 1614265330 + 301),
            Err(SignatureError::Stale { timestamp: 1614265330, now: 1614265631, tolerance: 300 })
        );
        assert_eq!(ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", 1614265330), Err(SignatureError::Mismatch));
        assert!(matches!(ok("v2,abc", 1614265330), Err(SignatureError::Malformed(_))));
    }

    #[test]
    fn retries_back_off_with_bounded_jitter() {
        let h = hook(None);
        let d: Vec<u128> = (0..8).map(|a| h.retry_delay(7, a).as_millis()).collect();
        assert!((50..=100).contains(&d[0]) && (100..=200).contains(&d[1]), "{d:?}");
        assert!(d[6..].iter().all(|&x| (500..=1000).contains(&x)), "capped: {d:?}");
        assert_eq!(h.retry_delay(7, 3), h.retry_delay(7, 3), "reproducible");
        assert!(!hook(Some(vec!["unlearning.completed".into()])).wants("consent.changed"));
        assert!(hook(None).wants("consent.changed"));
    }

    #[test]
    fn a_signed_row_verifies_and_keeps_its_id() {
        let h = hook(None);
        let row = OutboxRow { id: 42, kind: "consent.changed".into(), payload: r#"{"member":5}"#.into(), created: 9 };
        let d = h.sign_row(&row, 1000);
        let header = |n: &str| d.headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(header("webhook-id"), "42");
        assert_eq!(
            verify_webhook_signature(
                &h.secret,
                "42",
                &header("webhook-timestamp"),
                d.body.as_bytes(),
                &header("webhook-signature"),
                1010,
                300
            ),
            Ok(())
        );
        let v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(v["data"]["member"], 5);
        assert_eq!(v["type"], "consent.changed");
    }
}
