//! One module per verb: each parses its arguments, calls one use case of `consentry-app`, and renders the result.

pub mod audit;
pub mod demo;
pub mod dp;
pub mod gate;
pub mod keys;
pub mod ledger;
pub mod lineage;
pub mod policy;
pub mod redact;
pub mod report;
pub mod serve;
pub mod synth;
pub mod token;
pub mod train;
pub mod unlearn;
pub mod witness;
