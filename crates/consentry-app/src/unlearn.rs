//! The unlearning use case: withdrawals in the ledger become exact shard retrains of the live models.

use crate::error::{AppError, Result};
use crate::session::Session;
use consentry_lineage::worker::{WorkerOptions, WorkerReport};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How the unlearning worker runs.
#[derive(Debug, Clone)]
pub struct UnlearnOptions {
    /// Seconds from a withdrawal to "no live model contains the member".
    pub deadline_secs: i64,
    /// Retrain a model only once its oldest open request has waited this long.
    pub batch_window_secs: i64,
    /// Training threads (0: all cores); never changes the retrained shards.
    pub threads: usize,
    /// Seconds between passes when watching.
    pub interval_secs: f64,
}

impl UnlearnOptions {
    /// What the service applies: the registry's default deadline, no batch window, one training thread (the
    /// service shares its cores with the requests it answers).
    pub fn service() -> UnlearnOptions {
        UnlearnOptions {
            deadline_secs: consentry_lineage::registry::DEFAULT_DEADLINE_SECS,
            batch_window_secs: 0,
            threads: 1,
            interval_secs: 60.0,
        }
    }

    /// The worker's options, after checking the values.
    pub(crate) fn worker(&self) -> Result<WorkerOptions> {
        if self.deadline_secs < 0 || self.batch_window_secs < 0 {
            return Err(AppError::bad_input("--deadline and --batch-window are seconds, 0 or more"));
        }
        if !(self.interval_secs.is_finite() && self.interval_secs > 0.0) {
            return Err(AppError::bad_input("--interval must be a positive number of seconds"));
        }
        Ok(WorkerOptions {
            deadline_secs: self.deadline_secs,
            batch_window_secs: self.batch_window_secs,
            threads: self.threads,
            ..WorkerOptions::default()
        })
    }
}

impl Session {
    /// One unlearning pass: new withdrawals become requests, due requests become shard retrains.
    pub fn unlearn_once(&self, opts: &UnlearnOptions) -> Result<WorkerReport> {
        let w = opts.worker()?;
        let reg = self.registry()?;
        let ledger = self.ledger()?;
        let report = consentry_lineage::run_once(reg, ledger, &w)?;
        self.announce_unlearning(&report)?;
        Ok(report)
    }

    /// Starts unlearning without retraining: new withdrawals become requests with their deadlines now (the next
    /// pass retrains).
    pub fn unlearn_queue(&self, opts: &UnlearnOptions) -> Result<WorkerReport> {
        let w = opts.worker()?;
        let reg = self.registry()?;
        let ledger = self.ledger()?;
        Ok(consentry_lineage::queue(reg, ledger, &w)?)
    }

    /// Passes every `opts.interval_secs` until `stop` is set (or `max_polls` passes); `on_report` hears each pass.
    /// Returns the number of passes.
    pub fn unlearn_watch(
        &self,
        opts: &UnlearnOptions,
        stop: &AtomicBool,
        max_polls: Option<u64>,
        on_report: &mut dyn FnMut(&WorkerReport),
    ) -> Result<u64> {
        let w = opts.worker()?;
        let reg = self.registry()?;
        let ledger = self.ledger()?;
        let interval = Duration::from_secs_f64(opts.interval_secs);
        // Each pass's completions go to the outbox as the pass reports them; a failure to record them is kept and
        // returned once the watch ends (the pass itself is committed in the registry).
        let mut announce_error = None;
        let passes = consentry_lineage::watch(reg, ledger, &w, interval, stop, max_polls, &mut |r| {
            if let Err(e) = self.announce_unlearning(r) {
                announce_error.get_or_insert(e);
            }
            on_report(r);
        })?;
        match announce_error {
            Some(e) => Err(e.context("recording unlearning completions in the outbox")),
            None => Ok(passes),
        }
    }
}
