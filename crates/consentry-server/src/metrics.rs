//! Prometheus metrics at `/metrics` (text exposition format 0.0.4), hand-rolled: request latency histograms per
//! route template, method and status class (recorded by the [`crate::observe`] layer), and the service's gauges,
//! read at scrape time from one use case ([`consentry_app::Session::service_stats`]).
//!
//! Who may scrape: an operator key (`Authorization: Bearer csk_…`, Prometheus' `authorization` setting), on the
//! service's own port. The series hold route templates, counts and queue sizes only, never a member id.

use crate::auth::Operator;
use crate::observe::Conventions;
use crate::problem::Problem;
use crate::{Shared, call};
use axum::Extension;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentry_app::stats::ServiceStats;
use consentry_app::webhooks::OutboxLag;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The exposition format's media type.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the latency buckets: 0.25 ms to 10 s.
const BUCKETS: [f64; 14] = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// One series' labels: method, route template, status class.
type Labels = (String, String, &'static str);

/// The service's request metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<Labels, Histogram>>,
}

/// `2xx`, `4xx`, …: a label with five values, not one per status.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Records one answered request. `route` is the matched template (`/v1/me/receipts/{seq}`), never a raw path.
    pub fn observe(&self, method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        // A client names the method: only the standard ones become label values, so series stay bounded.
        let method = match *method {
            Method::GET
            | Method::PUT
            | Method::POST
            | Method::DELETE
            | Method::PATCH
            | Method::HEAD
            | Method::OPTIONS => method.as_str(),
            _ => "other",
        };
        let key = (method.to_string(), route.to_string(), status_class(status));
        let mut map = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = map.entry(key).or_default();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.counts[i] += 1;
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The exposition text: the request histograms, then the gauges.
    pub fn render(&self, stats: &ServiceStats, outbox_lag: &[OutboxLag]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP consentry_http_request_duration_seconds Time to answer a request, by route template, method and \
             status class.\n# TYPE consentry_http_request_duration_seconds histogram\n",
        );
        let map = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((method, route, class), h) in map.iter() {
            let labels = format!("method=\"{}\",route=\"{}\",status=\"{class}\"", label(method), label(route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "consentry_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(out, "consentry_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "consentry_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "consentry_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        drop(map);
        let mut series = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        series("consentry_ledger_appends_total", "counter", "Consent events this process appended.", stats.appends);
        series("consentry_ledger_entries", "gauge", "Entries in the ledger.", stats.ledger_entries);
        series(
            "consentry_unlearning_queue_depth",
            "gauge",
            "Unlearning requests not yet completed.",
            stats.unlearning_open,
        );
        series(
            "consentry_unlearning_deadline_misses",
            "gauge",
            "Unlearning requests whose deadline passed before completion (completed late or still open).",
            stats.deadline_misses,
        );
        if !outbox_lag.is_empty() {
            out.push_str(
                "# HELP consentry_outbox_lag Outbox events not yet delivered to the webhook.\n\
                 # TYPE consentry_outbox_lag gauge\n",
            );
            for l in outbox_lag {
                // Webhook names are letters, digits, `-` and `_` (checked by the configuration): no escaping needed.
                out.push_str(&format!("consentry_outbox_lag{{webhook=\"{}\"}} {}\n", l.webhook, l.behind));
            }
        }
        out
    }
}

/// Prometheus metrics (text exposition format); an operator key scrapes.
#[utoipa::path(get, path = "/metrics", tag = "service", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String,
        content_type = "text/plain")))]
pub(crate) async fn scrape(
    State(session): State<Shared>,
    Operator(_): Operator,
    conventions: Option<Extension<Arc<Conventions>>>,
) -> Result<Response, Problem> {
    let stats = call(&session, |s| s.service_stats(consentry_ledger::now())).await?;
    let text = match conventions {
        Some(Extension(c)) => {
            let hooks = c.webhooks.clone();
            let lag = call(&session, move |s| s.outbox_lag(&hooks)).await?;
            c.metrics.render(&stats, &lag)
        }
        None => Metrics::default().render(&stats, &[]),
    };
    Ok(([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_webhook_has_its_lag_series_and_none_without_webhooks() {
        let stats = ServiceStats { ledger_entries: 10, appends: 2, unlearning_open: 1, deadline_misses: 0 };
        let none = Metrics::default().render(&stats, &[]);
        assert!(!none.contains("consentry_outbox_lag"), "{none}");
        let lag = [
            OutboxLag { webhook: "crm".into(), delivered: 7, behind: 3 },
            OutboxLag { webhook: "ads".into(), delivered: 10, behind: 0 },
        ];
        let text = Metrics::default().render(&stats, &lag);
        assert!(text.contains("# TYPE consentry_outbox_lag gauge\n"), "{text}");
        assert!(text.contains("consentry_outbox_lag{webhook=\"crm\"} 3\n"), "{text}");
        assert!(text.contains("consentry_outbox_lag{webhook=\"ads\"} 0\n"), "{text}");
    }
}
