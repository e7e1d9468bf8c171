//! What the privacy officer's dashboard reads, each figure from the component that owns it: every registered dataset
//! with the gate's exclusion counts from its manifest (shown only when the manifest is byte for byte the one the
//! registry holds), the unlearning queue summarised into deadline compliance, coverage turned into one series per
//! purpose, and each configured webhook's delivery state. Aggregates only; nothing here writes.

use crate::config::WebhookConfig;
use crate::error::Result;
use crate::operator::{CoverageQuery, QueuedRequest};
use crate::session::Session;
use consentry_gate::Manifest;
use consentry_gate::manifest::MANIFEST_FILE;
use consentry_lineage::{DatasetRecord, ModelRecord};
use std::collections::BTreeMap;

pub use consentry_lineage::registry::short;

/// Whether a registered directory's defining file — a dataset's manifest, a model's `model.json` — is the one the
/// registry holds, so the figures read from it can be shown as verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ManifestState {
    /// The file's BLAKE3 is the registered id: its figures are the ones registered.
    Verified,
    /// The file cannot be read (the directory was moved or deleted).
    Missing,
    /// The file is not the one registered (edited, or unparseable): its figures are not to be trusted.
    Altered,
}

/// A registered dataset as the dashboard lists it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetOverview {
    /// Its id (BLAKE3 of its `manifest.json`).
    pub id: String,
    /// The purpose it was gated for.
    pub purpose: String,
    /// Its directory, relative to the data directory when inside it.
    pub dir: String,
    /// When the gate wrote it (Unix seconds).
    pub created: i64,
    /// The ledger position consent was evaluated at.
    pub ledger_position: u64,
    /// The time of that position (Unix seconds).
    pub ledger_at: i64,
    /// Members whose data entered it (from the signed registration).
    pub members: u64,
    /// Whether the manifest below is the registered one.
    pub manifest: ManifestState,
    /// What is wrong with the manifest, when it is not `verified`.
    pub manifest_problem: Option<String>,
    /// Rows read from the sources (verified manifests only).
    pub rows_in: Option<u64>,
    /// Rows written (included).
    pub rows_out: Option<u64>,
    /// Rows excluded, over every reason.
    pub rows_excluded: Option<u64>,
    /// Rows excluded by reason (the gate's reason keys, e.g. `no_grant`, `minor`); empty unless verified.
    pub excluded_by_reason: BTreeMap<String, u64>,
}

/// How long an open request has waited.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OldestOpen {
    /// The model version that still holds the member.
    pub model: String,
    /// When the member withdrew (Unix seconds).
    pub requested_at: i64,
    /// Seconds since then.
    pub age_seconds: i64,
    /// When no live model may hold them any more.
    pub deadline: i64,
    /// Seconds left before it (negative: overdue).
    pub seconds_left: i64,
}

/// Deadline compliance of a set of unlearning requests: how many are open, overdue, done on time or late, and the
/// time from withdrawal to removal over the completed ones (nearest-rank percentiles, whole seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Compliance {
    /// Requests not yet completed.
    pub open: u64,
    /// Of those, still within their deadline.
    pub pending: u64,
    /// Of those, past their deadline (or marked missed).
    pub overdue: u64,
    /// Completed by their deadline.
    pub completed_on_time: u64,
    /// Completed after it.
    pub completed_late: u64,
    /// Median seconds from withdrawal to removal; none before the first completion.
    pub median_seconds: Option<i64>,
    /// 95th percentile of the same.
    pub p95_seconds: Option<i64>,
    /// The slowest removal.
    pub max_seconds: Option<i64>,
    /// The longest deadline its requests were given (seconds from withdrawal).
    pub deadline_seconds: Option<i64>,
}

/// The queue of one model version (the version the members were in).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelQueue {
    /// The model version.
    pub model: String,
    /// `job-recs`, `content` or `replies` (empty when the registry no longer has the version).
    pub kind: String,
    /// The purpose it serves.
    pub purpose: String,
    /// Its version number (0 when unknown).
    pub version: u64,
    /// Its figures.
    #[serde(flatten)]
    pub compliance: Compliance,
    /// Seconds the oldest open request on it has waited.
    pub oldest_open_age_seconds: Option<i64>,
    /// The earliest deadline among its open requests.
    pub next_deadline: Option<i64>,
}

/// `GET /v1/unlearning/summary`: the queue and deadline compliance in one answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlearningSummary {
    /// The instant the figures are for (Unix seconds).
    pub now: i64,
    /// The deadline the service gives new requests (seconds from withdrawal).
    pub service_deadline_seconds: i64,
    /// Over every request.
    #[serde(flatten)]
    pub compliance: Compliance,
    /// The open request that has waited longest.
    pub oldest_open: Option<OldestOpen>,
    /// Per model version with any request, by purpose, then version.
    pub models: Vec<ModelQueue>,
    /// Withdrawals the unlearning worker has not read yet that hit a live model: the requests its next pass opens,
    /// with the deadlines it will give them (at most [`MAX_AWAITING_SHOWN`], oldest first).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub awaiting_intake: Vec<consentry_lineage::UnlearningRequest>,
    /// How many there are in all.
    pub awaiting_intake_total: usize,
}

/// The most requests awaiting intake the summary lists.
pub const MAX_AWAITING_SHOWN: usize = 200;

/// One purpose's coverage at one instant (summed over the jurisdictions asked for).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// The instant (Unix seconds).
    pub at: i64,
    /// Members in the directory then.
    pub members: u64,
    /// Of those, allowed.
    pub allowed: u64,
    /// `allowed / members`.
    pub share: f64,
}

/// One purpose's coverage over time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoverageSeries {
    /// Purpose key.
    pub purpose: String,
    /// Its human name from the policy.
    pub name: String,
    /// Instants with at least one member, oldest first (an instant without members has no share).
    pub points: Vec<SeriesPoint>,
}

/// One configured webhook's delivery state, from its stored cursor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookHealth {
    /// Its name.
    pub name: String,
    /// The receiver's host and port (never the path or credentials of its URL).
    pub host: String,
    /// The event types it takes; none: all.
    pub events: Option<Vec<String>>,
    /// Its cursor: the last outbox id it acknowledged (0: none yet); an id, not a count (see `OutboxLag::delivered`).
    pub delivered: u64,
    /// The newest outbox id.
    pub outbox_last: u64,
    /// Outbox rows past its cursor (rows it filters out count until its cursor passes them).
    pub behind: u64,
    /// When the oldest row past its cursor was written (Unix seconds); none when it is caught up.
    pub waiting_since: Option<i64>,
    /// Seconds that row has waited.
    pub waiting_seconds: Option<i64>,
}

/// 1234567 → "1,234,567": counts as the CLI's tables and the dashboard's charts write them.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of sorted values.
fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

/// The compliance figures of `requests` at `now`.
fn compliance<'a>(requests: impl IntoIterator<Item = &'a QueuedRequest>) -> Compliance {
    let mut c = Compliance::default();
    let mut took = Vec::new();
    for q in requests {
        let r = &q.request;
        c.deadline_seconds = c.deadline_seconds.max(Some(r.deadline - r.requested_at));
        match r.completed_at {
            None => {
                c.open += 1;
                if q.overdue { c.overdue += 1 } else { c.pending += 1 }
            }
            Some(done) => {
                if q.overdue {
                    c.completed_late += 1
                } else {
                    c.completed_on_time += 1
                }
                took.push((done - r.requested_at).max(0));
            }
        }
    }
    took.sort_unstable();
    c.median_seconds = percentile(&took, 50);
    c.p95_seconds = percentile(&took, 95);
    c.max_seconds = took.last().copied();
    c
}

/// The open request that has waited longest.
fn longest_waiting<'a>(rs: impl Iterator<Item = &'a QueuedRequest>) -> Option<&'a QueuedRequest> {
    rs.filter(|q| q.request.completed_at.is_none()).min_by_key(|q| (q.request.requested_at, q.request.deadline))
}

/// The unlearning summary of `requests` (every request, with [`QueuedRequest::overdue`] at `now`); `models` names
/// the versions.
pub fn summarise_unlearning(
    requests: &[QueuedRequest],
    models: &[ModelRecord],
    now: i64,
    service_deadline_seconds: i64,
) -> UnlearningSummary {
    let oldest_open = longest_waiting(requests.iter()).map(|q| OldestOpen {
        model: q.request.model.clone(),
        requested_at: q.request.requested_at,
        age_seconds: now - q.request.requested_at,
        deadline: q.request.deadline,
        seconds_left: q.request.deadline - now,
    });
    let mut by_model: BTreeMap<&str, Vec<&QueuedRequest>> = BTreeMap::new();
    for q in requests {
        by_model.entry(&q.request.model).or_default().push(q);
    }
    let mut per_model: Vec<ModelQueue> = by_model
        .into_iter()
        .map(|(id, rs)| {
            let rec = models.iter().find(|m| m.id == id);
            let open = rs.iter().filter(|q| q.request.completed_at.is_none());
            ModelQueue {
                model: id.to_string(),
                kind: rec.map(|m| m.kind.clone()).unwrap_or_default(),
                purpose: rec.map_or_else(
                    || rs.first().map(|q| q.request.purpose.clone()).unwrap_or_default(),
                    |m| m.purpose.clone(),
                ),
                version: rec.map_or(0, |m| m.version),
                compliance: compliance(rs.iter().copied()),
                oldest_open_age_seconds: longest_waiting(rs.iter().copied()).map(|q| now - q.request.requested_at),
                next_deadline: open.map(|q| q.request.deadline).min(),
            }
        })
        .collect();
    per_model.sort_by(|a, b| (&a.purpose, a.version, &a.model).cmp(&(&b.purpose, b.version, &b.model)));
    UnlearningSummary {
        now,
        service_deadline_seconds,
        compliance: compliance(requests),
        oldest_open,
        models: per_model,
        awaiting_intake: Vec::new(),
        awaiting_intake_total: 0,
    }
}

/// The authority of an `http://` URL without credentials: `host[:port]`.
pub fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_string()
}

impl Session {
    /// Every registered dataset, newest first, with the exclusion counts of its manifest when the manifest is the
    /// registered one.
    pub fn datasets_overview(&self) -> Result<Vec<DatasetOverview>> {
        let reg = self.registry()?;
        let mut out: Vec<DatasetOverview> =
            reg.datasets()?.into_iter().map(|d| overview(&reg.resolve(&d.dir), d)).collect();
        out.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
        Ok(out)
    }

    /// The unlearning queue and deadline compliance at `now`, overall and per model version.
    pub fn unlearning_summary(&self, now: i64) -> Result<UnlearningSummary> {
        let requests = self.unlearning_queue(true, now)?;
        let models = self.registry()?.models(None, None)?;
        self.unlearning_summary_of(&requests, &models, now)
    }

    /// [`Session::unlearning_summary`] of requests and model records the caller has already read (the report reads
    /// them for its own tables too).
    pub fn unlearning_summary_of(
        &self,
        requests: &[QueuedRequest],
        models: &[ModelRecord],
        now: i64,
    ) -> Result<UnlearningSummary> {
        let service = crate::unlearn::UnlearnOptions::service();
        let mut summary = summarise_unlearning(requests, models, now, service.deadline_secs);
        let mut awaiting = consentry_lineage::worker::awaiting_intake(self.registry()?, &service.worker(false)?)?;
        summary.awaiting_intake_total = awaiting.len();
        awaiting.truncate(MAX_AWAITING_SHOWN);
        summary.awaiting_intake = awaiting;
        Ok(summary)
    }

    /// Coverage as one series per purpose: each instant's members and allowed members summed over the
    /// jurisdictions `q` selects (all, or its one), instants without members left out.
    pub fn coverage_series(&self, q: &CoverageQuery, now: i64) -> Result<Vec<CoverageSeries>> {
        let points = self.coverage(q, now)?;
        let policy = self.ledger()?.policy();
        let mut series: Vec<CoverageSeries> = match &q.purpose {
            Some(p) => vec![p.clone()],
            None => policy.purposes.iter().map(|p| p.key.clone()).collect(),
        }
        .into_iter()
        .map(|key| {
            let name = policy.purpose_id(&key).map_or_else(|| key.clone(), |id| policy.purpose(id).name.clone());
            CoverageSeries { purpose: key, name, points: Vec::new() }
        })
        .collect();
        for point in &points {
            for s in &mut series {
                let (members, allowed) = point
                    .cells
                    .iter()
                    .filter(|c| c.purpose == s.purpose)
                    .fold((0u64, 0u64), |(m, a), c| (m + c.members, a + c.allowed));
                if members > 0 {
                    let share = allowed as f64 / members as f64;
                    s.points.push(SeriesPoint { at: point.at, members, allowed, share });
                }
            }
        }
        Ok(series)
    }

    /// Each configured webhook's delivery state at `now` (see [`Session::outbox_lag`]).
    pub fn webhook_health(&self, hooks: &[WebhookConfig], now: i64) -> Result<Vec<WebhookHealth>> {
        let lag = self.outbox_lag(hooks)?;
        let store = self.ledger()?.store();
        let outbox_last = store.outbox_last()?;
        hooks
            .iter()
            .zip(lag)
            .map(|(h, l)| {
                let waiting_since =
                    if l.behind == 0 { None } else { store.outbox_after(l.delivered, 1)?.first().map(|r| r.created) };
                Ok(WebhookHealth {
                    name: h.name.clone(),
                    host: url_host(&h.url),
                    events: h.events.clone(),
                    delivered: l.delivered,
                    outbox_last,
                    behind: l.behind,
                    waiting_since,
                    waiting_seconds: waiting_since.map(|t| (now - t).max(0)),
                })
            })
            .collect()
    }
}

/// A dataset record with its manifest's counts when the manifest in `dir` hashes to the record's id.
fn overview(dir: &std::path::Path, d: DatasetRecord) -> DatasetOverview {
    let mut o = DatasetOverview {
        id: d.id,
        purpose: d.purpose,
        dir: d.dir,
        created: d.created,
        ledger_position: d.ledger_position,
        ledger_at: d.ledger_at,
        members: d.members,
        manifest: ManifestState::Verified,
        manifest_problem: None,
        rows_in: None,
        rows_out: None,
        rows_excluded: None,
        excluded_by_reason: BTreeMap::new(),
    };
    let bytes = match consentry_gate::fsguard::read_inside(dir, MANIFEST_FILE) {
        Ok(b) => b,
        Err(e) => {
            o.manifest = ManifestState::Missing;
            o.manifest_problem = Some(format!("{e}; the counts are in the manifest the gate wrote there"));
            return o;
        }
    };
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let parsed = serde_json::from_slice::<Manifest>(&bytes);
    match parsed {
        Ok(m) if hash == o.id => {
            o.rows_in = Some(m.rows_in);
            o.rows_out = Some(m.rows_out);
            o.rows_excluded = Some(m.excluded.values().sum());
            o.excluded_by_reason = m.excluded;
        }
        Ok(_) => {
            o.manifest = ManifestState::Altered;
            o.manifest_problem = Some(format!(
                "{} has BLAKE3 {}, not the registered {}: it was changed after the gate registered it, so its counts \
                 are not shown; materialise the dataset again with `consentry gate`",
                dir.join(MANIFEST_FILE).display(),
                consentry_lineage::registry::short(&hash),
                consentry_lineage::registry::short(&o.id)
            ));
        }
        Err(e) => {
            o.manifest = ManifestState::Altered;
            o.manifest_problem = Some(format!(
                "{} is not a manifest ({e}); materialise the dataset again",
                dir.join(MANIFEST_FILE).display()
            ));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use consentry_lineage::{RequestStatus, UnlearningRequest};

    fn req(model: &str, at: i64, deadline: i64, done: Option<i64>, now: i64) -> QueuedRequest {
        let request = UnlearningRequest {
            member: at as u64,
            purpose: "p".into(),
            event_seq: at as u64,
            model: model.into(),
            requested_at: at,
            deadline: at + deadline,
            status: match done {
                Some(_) => RequestStatus::Done,
                None => RequestStatus::Pending,
            },
            new_model: None,
            completed_at: done,
        };
        let late_done = done.is_some_and(|c| c > request.deadline);
        let overdue = late_done || (done.is_none() && request.deadline < now);
        QueuedRequest { seconds_left: done.is_none().then(|| request.deadline - now), request, overdue }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 95), Some(7));
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&[1, 2], 50), Some(1));
        assert_eq!(percentile(&[1, 2, 3, 4], 95), Some(4));
    }

    #[test]
    fn the_summary_counts_open_overdue_on_time_and_late_per_model() {
        let now = 10_000;
        let rs = vec![
            req("aaa", 100, 1000, Some(140), now),  // on time, 40 s
            req("aaa", 200, 1000, Some(1500), now), // late, 1300 s
            req("bbb", 9_000, 1000, None, now),     // pending, 1000 left
            req("bbb", 8_000, 1000, None, now),     // overdue
            req("ccc", 300, 1000, Some(320), now),  // on time, 20 s
        ];
        let s = summarise_unlearning(&rs, &[], now, 86_400);
        assert_eq!((s.compliance.open, s.compliance.pending, s.compliance.overdue), (2, 1, 1));
        assert_eq!((s.compliance.completed_on_time, s.compliance.completed_late), (2, 1));
        assert_eq!(s.compliance.median_seconds, Some(40));
        assert_eq!(s.compliance.p95_seconds, Some(1300));
        assert_eq!(s.compliance.max_seconds, Some(1300));
        assert_eq!(s.compliance.deadline_seconds, Some(1000));
        let oldest = s.oldest_open.as_ref().expect("two open");
        assert_eq!((oldest.requested_at, oldest.age_seconds, oldest.seconds_left), (8_000, 2_000, -1_000));
        assert_eq!(s.models.iter().map(|m| m.model.as_str()).collect::<Vec<_>>(), ["aaa", "bbb", "ccc"]);
        let b = &s.models[1];
        assert_eq!((b.compliance.open, b.compliance.overdue, b.next_deadline), (2, 1, Some(9_000)));
        assert_eq!(b.oldest_open_age_seconds, Some(2_000));
        assert_eq!(b.compliance.median_seconds, None);
        assert_eq!(s.models[0].compliance.median_seconds, Some(40));
    }

    #[test]
    fn an_empty_queue_summarises_to_zeros() {
        let s = summarise_unlearning(&[], &[], 5, 60);
        assert_eq!(s.compliance, Compliance::default());
        assert!(s.oldest_open.is_none() && s.models.is_empty());
    }

    #[test]
    fn a_webhook_host_never_carries_path_query_or_credentials() {
        assert_eq!(url_host("http://crm.internal:8080/hooks/consent?token=x"), "crm.internal:8080");
        assert_eq!(url_host("http://user:secret@example.com/x"), "example.com");
        assert_eq!(url_host("http://[::1]:9/"), "[::1]:9");
        assert_eq!(url_host("http://h#frag"), "h");
    }
}
