//! Prints the maximum relative difference between consentry-dp and dp_accounting on a reference file
//! written by `bench/dp/compare.py`. Run by `bench/dp/run.sh`; exit code 1 if our ε is ever below theirs.
//!
//!     cargo run --release -p consentry-dp --example compare -- target/bench-dp/reference.json

use consentry_test_support::dp_grid as grid;

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: compare REFERENCE.json (from bench/dp/compare.py)");
        return ExitCode::from(2);
    };
    let doc: serde_json::Value = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let report = match grid::compare(&doc) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bad reference file {path}: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", report.summary());
    println!("(consentry-dp time: {:.2} s)", started.elapsed().as_secs_f64());
    for line in report.below.iter().chain(&report.mismatches).take(20) {
        println!("  {line}");
    }
    if report.below.is_empty() && report.mismatches.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
