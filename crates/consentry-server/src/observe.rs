//! The layer every request passes: it times the request, records it in the metrics, writes one log line (method,
//! route template, status, latency, principal; never a credential or a body) and applies the per-IP rate limit to
//! requests without a credential. The auth extractor ([`crate::auth`]) reports the principal and applies its limit
//! through [`admit`]. Also the process's log setup ([`init_logging`]).

use crate::limits::{Limiter, RateLimits};
use crate::metrics::Metrics;
use crate::problem::Problem;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consentry_app::keys::Principal;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What the layers share across requests: the metrics and the rate limiter.
pub struct Conventions {
    /// Request latency histograms.
    pub metrics: Metrics,
    /// Per-caller token buckets.
    pub limiter: Limiter,
    /// The configured webhooks, whose delivery lag `/metrics` reports.
    pub webhooks: Vec<consentry_app::config::WebhookConfig>,
}

impl Conventions {
    /// Fresh metrics and buckets under `limits`.
    pub fn new(limits: RateLimits, webhooks: Vec<consentry_app::config::WebhookConfig>) -> Conventions {
        Conventions { metrics: Metrics::default(), limiter: Limiter::new(limits), webhooks }
    }
}

/// One request's facts the handler's extractors fill in for the log line.
#[derive(Clone, Default)]
struct RequestFacts {
    ip: Option<IpAddr>,
    principal: Arc<OnceLock<String>>,
}

/// A 429 problem saying when to come back.
fn too_many(wait: Duration) -> Problem {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    Problem::http(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!("this caller is over the service's rate limit: retry in {secs} s"),
    )
    .with_retry_after(secs)
}

/// Called by the auth extractor: notes who is calling for the log line and takes one request from their bucket
/// (`None`, a failed authentication, takes from the client address's bucket instead).
pub(crate) fn admit(parts: &Parts, who: Option<&Principal>) -> Result<(), Problem> {
    let facts = parts.extensions.get::<RequestFacts>();
    let conventions = parts.extensions.get::<Arc<Conventions>>();
    match who {
        Some(p) => {
            let name = p.describe();
            let checked = conventions.map_or(Ok(()), |c| c.limiter.principal(&name));
            if let Some(f) = facts {
                let _ = f.principal.set(name);
            }
            checked.map_err(too_many)
        }
        None => match (conventions, facts) {
            (Some(c), Some(f)) => c.limiter.anonymous(f.ip).map_err(too_many),
            _ => Ok(()),
        },
    }
}

/// The layer's function (see the module's documentation).
pub(crate) async fn observe(State(c): State<Arc<Conventions>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_string();
    let facts = RequestFacts {
        ip: req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip()),
        principal: Arc::default(),
    };
    let anonymous = !crate::auth::has_credential(req.headers());
    req.extensions_mut().insert(facts.clone());
    req.extensions_mut().insert(Arc::clone(&c));
    let response = match anonymous.then(|| c.limiter.anonymous(facts.ip)) {
        Some(Err(wait)) => too_many(wait).into_response(),
        _ => next.run(req).await,
    };
    let elapsed = start.elapsed();
    let status = response.status();
    c.metrics.observe(&method, &route, status, elapsed);
    let principal = facts.principal.get().map_or("anonymous", String::as_str);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(target: "consentry::http", method = %method, route = %route, status = status.as_u16(), latency_ms, principal, "request");
    } else {
        tracing::info!(target: "consentry::http", method = %method, route = %route, status = status.as_u16(), latency_ms, principal, "request");
    }
    response
}

/// A panic in a handler: an error line (the client gets a 500 problem).
pub(crate) fn log_panic(payload: &(dyn std::any::Any + Send)) {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_string());
    tracing::error!(target: "consentry::http", panic = %what, "a handler panicked; answered 500");
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

/// The subscriber `consentry serve` logs with: `filter` is an `EnvFilter` directive (`info`,
/// `consentry=debug,warn`); lines go to `writer`.
pub fn log_subscriber<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
) -> Result<Box<dyn tracing::Subscriber + Send + Sync>, String>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("the log level `{filter}` is not a level or filter directive ({e})"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    Ok(match format {
        LogFormat::Text => Box::new(builder.with_ansi(false).finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).with_current_span(false).finish()),
    })
}

/// Installs [`log_subscriber`] on standard error for the process; `level` overrides `RUST_LOG`, which overrides
/// `default`.
pub fn init_logging(format: LogFormat, level: Option<&str>, default: &str) -> Result<(), String> {
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let filter = level.map(str::to_string).or(from_env).unwrap_or_else(|| default.to_string());
    let subscriber = log_subscriber(format, &filter, std::io::stderr)?;
    tracing::subscriber::set_global_default(subscriber).map_err(|e| format!("installing the logger: {e}"))
}
