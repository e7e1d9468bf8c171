//! What every CLI test needs: run the real binary on a data directory, read its output
//! (`consentry_test_support::cli`, with the helpers that need this crate's binary declared here).
#![allow(dead_code)]

consentry_test_support::consentry_cli!();
