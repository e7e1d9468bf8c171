//! Operator use cases that read aggregates and run jobs: consent coverage over time, the unlearning queue with its
//! deadlines, and one unlearning pass on demand. None of them writes a member's consent.
//!
//! Coverage is counted from the same snapshots the gate cuts datasets from ([`consentry_ledger::Ledger::snapshots`]
//! over [`consentry_policy::Policy::evaluate`]): the share of members allowed at an instant is exactly the share a
//! dataset cut then would admit, never a second evaluation of consent.

use crate::error::{AppError, ErrorKind, Result};
use crate::session::Session;
use crate::unlearn::UnlearnOptions;
use consentry_ledger::position::{At, resolve};
use consentry_lineage::{RequestStatus, UnlearningRequest, WorkerReport};
use consentry_policy::PurposeId;
use std::collections::BTreeMap;

/// The most instants one coverage query evaluates (each is a snapshot of the log).
pub const MAX_COVERAGE_POINTS: u64 = 200;

/// What coverage to compute: instants `from`, `from + step`, … up to `to`, optionally one purpose and one
/// jurisdiction rule.
#[derive(Debug, Clone, Default)]
pub struct CoverageQuery {
    /// Purpose key [default: every purpose].
    pub purpose: Option<String>,
    /// Jurisdiction rule key as the policy writes it (`EEA`, `US-CA`, `default`) [default: every one].
    pub jurisdiction: Option<String>,
    /// First instant (Unix seconds) [default: `to`].
    pub from: Option<i64>,
    /// Last instant [default: now].
    pub to: Option<i64>,
    /// Seconds between instants [default: one day].
    pub step: Option<i64>,
}

/// Members and allowed members of one purpose in one jurisdiction at one instant.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoverageCell {
    /// Purpose key.
    pub purpose: String,
    /// Jurisdiction rule key.
    pub jurisdiction: String,
    /// Members in the directory then.
    pub members: u64,
    /// Of those, allowed.
    pub allowed: u64,
    /// `allowed / members` (0 when there are no members).
    pub share: f64,
}

/// Coverage at one instant.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoveragePoint {
    /// The instant (Unix seconds).
    pub at: i64,
    /// The ledger position the instant resolves to.
    pub position: u64,
    /// One cell per purpose × jurisdiction with members.
    pub cells: Vec<CoverageCell>,
}

/// An unlearning request as the operator's queue shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueuedRequest {
    /// The request.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    #[serde(flatten)]
    pub request: UnlearningRequest,
    /// Past its deadline and not done in time (open or completed late).
    pub overdue: bool,
    /// Seconds left before the deadline (negative: late); none once completed.
    pub seconds_left: Option<i64>,
}

/// A model status as a front end spells it (`training`, `live`, `superseded`, `retired`).
pub fn model_status(s: &str) -> Result<consentry_lineage::ModelStatus> {
    consentry_lineage::ModelStatus::parse(s).ok_or_else(|| {
        AppError::bad_input(format!("`{s}` is not a model status: use training, live, superseded or retired"))
    })
}

/// One snapshot's members and allowed members per jurisdiction rule (only `jurisdiction` when given), in the
/// policy's rule order: the one count behind every coverage figure.
pub(crate) fn cells_of(
    policy: &consentry_policy::Policy,
    snap: &consentry_ledger::snapshot::Snapshot,
    jurisdiction: Option<&str>,
) -> Vec<CoverageCell> {
    let mut by: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
    for (id, facts) in snap.members() {
        let c = by.entry(facts.jurisdiction.0).or_default();
        c.0 += 1;
        c.1 += u64::from(snap.is_allowed(*id));
    }
    let mut cells = Vec::new();
    for (j, (members, allowed)) in by {
        let Some(key) = policy.jurisdictions.get(usize::from(j)).map(|r| &r.key) else { continue };
        if jurisdiction.is_some_and(|want| want != key) {
            continue;
        }
        let share = if members == 0 { 0.0 } else { allowed as f64 / members as f64 };
        cells.push(CoverageCell {
            purpose: snap.purpose_key().to_string(),
            jurisdiction: key.clone(),
            members,
            allowed,
            share,
        });
    }
    cells
}

impl Session {
    /// Consent coverage by purpose × jurisdiction at each instant of the query.
    pub fn coverage(&self, q: &CoverageQuery, now: i64) -> Result<Vec<CoveragePoint>> {
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let purposes: Vec<PurposeId> = match &q.purpose {
            Some(p) => vec![self.declared_purpose(p)?],
            None => policy.purpose_ids().collect(),
        };
        if let Some(j) = &q.jurisdiction
            && !policy.jurisdictions.iter().any(|r| &r.key == j)
        {
            let known: Vec<&str> = policy.jurisdictions.iter().map(|r| r.key.as_str()).collect();
            return Err(AppError::new(
                ErrorKind::NotFound,
                format!("no jurisdiction rule `{j}` in the policy in force; it has {}", known.join(", ")),
            ));
        }
        let to = q.to.unwrap_or(now);
        let from = q.from.unwrap_or(to);
        let step = q.step.unwrap_or(86_400);
        if step <= 0 {
            return Err(AppError::bad_input(format!("step must be a positive number of seconds, not {step}")));
        }
        if from > to {
            return Err(AppError::bad_input(format!("from ({from}) is after to ({to})")));
        }
        if to > now {
            return Err(AppError::bad_input(format!(
                "to ({to}) is after the present ({now}): consent is never evaluated in the future"
            )));
        }
        // In i128: `to - from` of two i64 times overflows i64 at the extremes.
        let points = (i128::from(to) - i128::from(from)) / i128::from(step) + 1;
        if points > i128::from(MAX_COVERAGE_POINTS) {
            return Err(AppError::bad_input(format!(
                "{points} instants asked for; at most {MAX_COVERAGE_POINTS}: widen step or narrow from..to"
            )));
        }
        let mut out = Vec::with_capacity(points as usize);
        for i in 0..points {
            // from ≤ at ≤ to, so it fits an i64.
            let at = (i128::from(from) + i * i128::from(step)) as i64;
            let resolved = resolve(ledger.store(), At::Time(at), now)?;
            let snaps = ledger.snapshots(&purposes, resolved.position, at)?;
            let mut cells = Vec::new();
            for snap in &snaps {
                cells.extend(cells_of(policy, snap, q.jurisdiction.as_deref()));
            }
            out.push(CoveragePoint { at, position: resolved.position, cells });
        }
        Ok(out)
    }

    /// The unlearning queue: open requests (or every one with `all`), each with its deadline and whether it is
    /// overdue at `now`.
    pub fn unlearning_queue(&self, all: bool, now: i64) -> Result<Vec<QueuedRequest>> {
        Ok(self
            .unlearning_requests(all)?
            .into_iter()
            .map(|r| {
                let late_done = r.completed_at.is_some_and(|c| c > r.deadline);
                let overdue =
                    r.status == RequestStatus::Missed || late_done || (r.completed_at.is_none() && r.deadline < now);
                let seconds_left = r.completed_at.is_none().then(|| r.deadline - now);
                QueuedRequest { request: r, overdue, seconds_left }
            })
            .collect())
    }

    /// One unlearning pass now, as the service runs it ([`UnlearnOptions::service`]).
    pub fn run_unlearning_job(&self) -> Result<WorkerReport> {
        self.unlearn_once(&UnlearnOptions::service())
    }
}
