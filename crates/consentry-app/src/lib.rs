//! The application layer: the one door every Consentry front end goes through. The CLI, the HTTP service and the
//! Python package translate arguments, requests and objects into calls on a [`Session`] (or a [`DataDir`]) and
//! render what comes back; every rule lives here or in the libraries below, none in a front end.
//!
//! Public API: [`DataDir`] (the data directory's layout, the only place that spells it), [`Session`] (a data
//! directory and its store, shareable across threads) with one method per use case, the request/outcome types of
//! each module, [`AppError`] with its [`ErrorKind`], and [`Progress`] for long work.

pub mod audit;
pub mod audit_runs;
pub mod auth;
pub mod config;
pub mod dashboard;
pub mod datadir;
pub mod dataset;
pub mod demo;
pub mod erasure;
pub mod error;
pub mod evidence;
pub mod fides;
mod filecache;
pub mod gate;
pub mod import;
pub mod keys;
pub mod ledger;
pub mod lineage;
pub mod member;
pub mod notices;
pub mod openlineage;
pub mod operator;
pub mod platform;
pub mod privacy;
pub mod progress;
pub mod redact;
pub mod replies_oracle;
pub mod report;
pub mod rotation;
pub mod session;
pub mod stats;
pub mod synth;
mod token_cache;
pub mod train;
pub mod unlearn;
pub mod webhooks;
pub mod websession;
pub mod witness;

pub use datadir::{DataDir, FORMAT_VERSION, PolicyText};

/// Arms the fail points the `FAILPOINTS` environment variable names (`name=return(crash)`, see
/// `consentry_files::fault`), for the fault-injection tests; a build without the `failpoints` feature (every
/// `cargo build`, `cargo run`, release) has no fail points and ignores the variable. Call once, first thing.
pub fn arm_fail_points() {
    #[cfg(feature = "failpoints")]
    std::mem::forget(fail::FailScenario::setup());
}
pub use error::{AppError, Context, ErrorKind, Result};
pub use progress::{NoProgress, Progress};
pub use session::{Database, Session};
