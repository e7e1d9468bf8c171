//! How long-running library work (synthetic generation, the gate) tells a front end how far it got.
//!
//! One trait for every library, so a front end implements it once (the CLI draws bars from it, a
//! service may stream it) and no library pulls in a front end's dependencies. Standard library only.

/// Receives progress from worker threads, by stage name; implementations must be cheap and thread-safe.
pub trait Progress: Sync {
    /// A stage starts with about `total` units of work.
    fn stage(&self, name: &'static str, total: u64);
    /// `n` more units of stage `name` are done.
    fn advance(&self, name: &'static str, n: u64);
}

/// Progress that goes nowhere, for tests, benchmarks and quiet runs.
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: &'static str, _: u64) {}
}
