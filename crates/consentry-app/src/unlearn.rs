//! The unlearning use case: withdrawals in the ledger become exact shard retrains of the live models.

use crate::error::{AppError, Result};
use crate::openlineage::{self as ol, JobKind};
use crate::session::Session;
use consentry_lineage::worker::{WorkerOptions, WorkerReport};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How the unlearning worker runs.
#[derive(Debug, Clone)]
pub struct UnlearnOptions {
    /// Seconds from a withdrawal to "no live model contains the member".
    pub deadline_secs: i64,
    /// Retrain a model only once its oldest open request has waited this long; `None`: none for one pass, and
    /// [`consentry_lineage::worker::derived_batch_window`] (a quarter of the deadline) when watching.
    pub batch_window_secs: Option<i64>,
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
            batch_window_secs: Some(0),
            threads: 1,
            interval_secs: 60.0,
        }
    }

    /// The worker's options for one pass (`watching`: for a watch), after checking the values.
    pub(crate) fn worker(&self, watching: bool) -> Result<WorkerOptions> {
        let window = match self.batch_window_secs {
            Some(w) => w,
            None if watching => consentry_lineage::worker::derived_batch_window(self.deadline_secs),
            None => 0,
        };
        if self.deadline_secs < 0 || window < 0 {
            return Err(AppError::bad_input("--deadline and --batch-window are seconds, 0 or more"));
        }
        if window > 0 && window >= self.deadline_secs {
            return Err(AppError::bad_input(format!(
                "--batch-window {window} s is not shorter than --deadline {} s: every batched withdrawal would wait \
                 until its deadline and then miss it; leave --batch-window out (with --watch it is a quarter of the \
                 deadline) or make it shorter",
                self.deadline_secs
            )));
        }
        if !(self.interval_secs.is_finite() && self.interval_secs > 0.0) {
            return Err(AppError::bad_input("--interval must be a positive number of seconds"));
        }
        Ok(WorkerOptions {
            deadline_secs: self.deadline_secs,
            batch_window_secs: window,
            threads: self.threads,
            ..WorkerOptions::default()
        })
    }
}

impl Session {
    /// One unlearning pass: new withdrawals become requests, due requests become shard retrains.
    /// With lineage configured, the pass is an OpenLineage run of job `unlearn`: the ledger and the retrained
    /// models' previous versions in, their new versions out (see [`crate::openlineage`]).
    pub fn unlearn_once(&self, opts: &UnlearnOptions) -> Result<WorkerReport> {
        let lineage = self.lineage_run("unlearn".into(), JobKind::Unlearn);
        let start = || ol::Parts { inputs: vec![self.ledger_dataset(None)], ..Default::default() };
        let work = || {
            let w = opts.worker(false)?;
            let reg = self.registry()?;
            let ledger = self.ledger()?;
            // Each retrain's `unlearning.completed` notice went to the outbox in its swap's transaction.
            Ok(consentry_lineage::run_once(reg, ledger, &w)?)
        };
        lineage.wrap(start, work, |r| self.unlearning_parts(r))
    }

    /// The inputs, outputs and run facet of an unlearning pass's event.
    fn unlearning_parts(&self, r: &WorkerReport) -> ol::Parts {
        let mut inputs = vec![self.ledger_dataset(Some(r.cursor_to))];
        let mut outputs = Vec::new();
        let reg = self.registry().ok();
        for x in &r.retrains {
            if let Some(old) = reg.and_then(|g| g.model(&x.old_model).ok()).zip(reg) {
                inputs.push(ol::file_dataset(&old.1.resolve(&old.0.dir)));
            }
            let dir = reg.map_or_else(|| std::path::PathBuf::from(&x.new_dir), |g| g.resolve(&x.new_dir));
            outputs.push(ol::model_output(
                &dir,
                Some(&x.new_model),
                Some(("consentry_unlearning", ol::retrain_facet(x))),
            ));
        }
        let mut run_facets = serde_json::Map::new();
        run_facets.insert("consentry_unlearning_pass".into(), ol::unlearning_pass_facet(r));
        ol::Parts { inputs, outputs, run_facets }
    }

    /// Starts unlearning without retraining: new withdrawals become requests with their deadlines now (the next
    /// pass retrains).
    pub fn unlearn_queue(&self, opts: &UnlearnOptions) -> Result<WorkerReport> {
        let w = opts.worker(false)?;
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
        // With lineage configured, the watch is one continuous OpenLineage run of job `unlearn`: START, a RUNNING
        // event for each pass that opened requests or retrained, COMPLETE or FAIL when it ends.
        let lineage = self.lineage_run("unlearn".into(), JobKind::Unlearn).streaming();
        let start = || ol::Parts { inputs: vec![self.ledger_dataset(None)], ..Default::default() };
        let work = || {
            let w = opts.worker(true)?;
            let reg = self.registry()?;
            let ledger = self.ledger()?;
            let interval = Duration::from_secs_f64(opts.interval_secs);
            // Each retrain's completion notice goes to the outbox in its swap's own transaction.
            let passes = consentry_lineage::watch(reg, ledger, &w, interval, stop, max_polls, &mut |r| {
                if lineage.active() && (r.requests_opened > 0 || !r.retrains.is_empty()) {
                    lineage.emit("RUNNING", self.unlearning_parts(r));
                }
                on_report(r);
            })?;
            Ok(passes)
        };
        lineage.wrap(start, work, |_| ol::Parts::default())
    }
}
