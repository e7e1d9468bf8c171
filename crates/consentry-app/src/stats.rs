//! The running service's gauges (ledger size, appends, the unlearning queue and its missed deadlines), read at
//! scrape time by the HTTP service's `/metrics`: aggregates only, nothing about any one member.

use crate::error::Result;
use crate::session::Session;
use consentry_lineage::RequestStatus;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the consent events this process appended (duplicates of a retried request not counted).
#[derive(Debug, Default)]
pub(crate) struct AppendCounter(AtomicU64);

impl AppendCounter {
    /// Counts the new entries among `appended`.
    pub(crate) fn count(&self, appended: &[consentry_ledger::Appended]) {
        let n = appended.iter().filter(|a| !a.duplicate).count() as u64;
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// What a scrape of the service reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServiceStats {
    /// Entries in the ledger (every process's).
    pub ledger_entries: u64,
    /// Consent events this process appended since it started.
    pub appends: u64,
    /// Unlearning requests not yet completed.
    pub unlearning_open: u64,
    /// Requests whose deadline passed before completion: completed late, or still open past it.
    pub deadline_misses: u64,
}

impl Session {
    /// The service's gauges now (`now` in Unix seconds decides which open requests are past their deadline).
    /// A data directory without a ledger yet reports zeros.
    pub fn service_stats(&self, now: i64) -> Result<ServiceStats> {
        let appends = self.appends.0.load(Ordering::Relaxed);
        if !self.has_ledger() {
            return Ok(ServiceStats { appends, ..ServiceStats::default() });
        }
        let ledger_entries = self.ledger()?.store().len()?;
        let reg = self.registry()?;
        let open = reg.open_requests()?;
        let overdue_open = open.iter().filter(|r| r.status != RequestStatus::Missed && r.deadline < now).count() as u64;
        let missed = reg.missed_requests()?.len() as u64;
        Ok(ServiceStats {
            ledger_entries,
            appends,
            unlearning_open: open.len() as u64,
            deadline_misses: missed + overdue_open,
        })
    }
}
