//! Test code more than one test target needs, in one place instead of files included by path from another crate.
//!
//! Used only as a dev-dependency (`publish = false`); each module is behind the feature of its name
//! so a crate's tests compile only what they use. Helpers panic with a message on failure: they run
//! inside tests.

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "dp")]
pub mod dp_grid;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "pg")]
pub mod pg;
