//! Webhook delivery's transport and timers: one task per configured webhook takes the rows past its cursor
//! ([`Session::webhook_pending`]), POSTs each signed ([`Webhook::sign_row`]) until a 2xx answers, waiting
//! [`Webhook::retry_delay`] between attempts, and stores the cursor ([`Session::webhook_delivered`]). Every rule is in
//! `consentry_app::webhooks`; here are only HTTP/1.1 over TCP (plain `http://`) and the waiting. The tasks end with
//! the runtime: whatever was not acknowledged is delivered again by the next start.

use crate::{Shared, call};
use consentry_app::webhooks::{SignedDelivery, Webhook};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Notify;

/// How often an idle webhook or a waiting `GET /v1/events` looks at the store for rows written by another process
/// (rows written by this one ring the bell at once).
pub const IDLE_POLL: Duration = Duration::from_millis(250);

/// Rung by this process's appends, so deliveries and long polls start without waiting for a poll.
static BELL: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Tells waiting deliveries and long polls that the outbox may have new rows.
pub(crate) fn ring() {
    BELL.notify_waiters();
}

/// Waits until the bell rings or `at_most` passes.
pub(crate) async fn wait_for_rows(at_most: Duration) {
    let _ = tokio::time::timeout(at_most, BELL.notified()).await;
}

/// Starts each webhook's cursor at the end of the outbox if it is new, then its delivery task on the current
/// runtime. Finishes before the service listens, so every change the service accepts is past each starting cursor.
pub async fn start_webhooks(session: Arc<consentry_app::Session>, hooks: Vec<Webhook>) -> consentry_app::Result<()> {
    let (s, attach) = (Arc::clone(&session), hooks.clone());
    tokio::task::spawn_blocking(move || attach.iter().try_for_each(|h| s.webhook_attach(h).map(|_| ())))
        .await
        .map_err(|_| consentry_app::AppError::internal("starting the webhooks' cursors failed"))??;
    for hook in hooks {
        tokio::spawn(deliver(Arc::clone(&session), Arc::new(hook)));
    }
    Ok(())
}

async fn deliver(session: Shared, hook: Arc<Webhook>) {
    loop {
        let h = Arc::clone(&hook);
        let rows = match call(&session, move |s| s.webhook_pending(&h)).await {
            Ok(rows) => rows,
            Err(p) => {
                eprintln!("webhook {}: reading the outbox failed: {}", hook.name(), p.detail());
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if rows.is_empty() {
            wait_for_rows(IDLE_POLL).await;
            continue;
        }
        // Acknowledged but not yet stored: stored at the end of the round, or before waiting out a failure.
        let mut acknowledged: Option<u64> = None;
        for row in rows {
            if hook.wants(&row.kind) {
                let mut attempt = 0u32;
                loop {
                    let d = hook.sign_row(&row, consentry_ledger::now());
                    match post(&d, hook.timeout()).await {
                        Ok(status) if (200..300).contains(&status) => {
                            // Delivered, its cursor not stored yet: a crash here redelivers the row (at least once).
                            consentry_files::crash_point("outbox::deliver::after_send");
                            break;
                        }
                        outcome => {
                            if attempt == 0 {
                                let why = match outcome {
                                    Ok(status) => format!("answered {status}"),
                                    Err(e) => e,
                                };
                                eprintln!("webhook {}: delivery of {} failed ({why}); retrying", hook.name(), row.id);
                            }
                            if let Some(id) = acknowledged.take() {
                                store_cursor(&session, &hook, id).await;
                            }
                            tokio::time::sleep(hook.retry_delay(row.id, attempt)).await;
                            attempt = attempt.saturating_add(1);
                        }
                    }
                }
            }
            acknowledged = Some(row.id);
        }
        if let Some(id) = acknowledged {
            store_cursor(&session, &hook, id).await;
        }
    }
}

/// Stores the cursor, retrying until the store takes it (the rows stay acknowledged in the meantime).
async fn store_cursor(session: &Shared, hook: &Arc<Webhook>, id: u64) {
    loop {
        let h = Arc::clone(hook);
        match call(session, move |s| s.webhook_delivered(&h, id)).await {
            Ok(()) => return,
            Err(p) => {
                eprintln!("webhook {}: storing its cursor failed: {}", hook.name(), p.detail());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// POSTs one delivery over HTTP/1.1 (one connection, closed after) and returns the status code.
async fn post(d: &SignedDelivery, timeout: Duration) -> Result<u16, String> {
    let uri: axum::http::Uri = d.url.parse().map_err(|e| format!("bad url {}: {e}", d.url))?;
    let host = uri.host().ok_or_else(|| format!("the url {} names no host", d.url))?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nuser-agent: consentry-webhooks\r\ncontent-length: {}\r\n",
        uri.authority().map_or(host.as_str(), |a| a.as_str()),
        d.body.len()
    );
    for (k, v) in &d.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let attempt = async {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut s = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| format!("connecting: {e}"))?;
        s.write_all(head.as_bytes()).await.map_err(|e| format!("sending: {e}"))?;
        s.write_all(d.body.as_bytes()).await.map_err(|e| format!("sending: {e}"))?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 8192 {
            let n = s.read(&mut chunk).await.map_err(|e| format!("reading the answer: {e}"))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        status_code(&buf).ok_or_else(|| "the answer is not HTTP".to_string())
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| format!("no answer within {timeout:?}"))?
}

use consentry_app::openlineage::status_code;

#[cfg(test)]
mod tests {
    #[test]
    fn status_lines_are_read() {
        assert_eq!(super::status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(super::status_code(b"HTTP/1.0 500 x\r\n\r\n"), Some(500));
        assert_eq!(super::status_code(b"SSH-2.0\r\n"), None);
        assert_eq!(super::status_code(b""), None);
    }
}
