//! Arbitrary bytes as an evidence bundle (`consentry audit --offline DIR`): the input is a list of files, each
//! introduced by a line `@@ PATH` (the rest of the input up to the next such line is its content); the harness
//! writes them to a fresh directory (plain relative paths only) and runs the whole offline audit on it. Loading
//! and checking never panic, hang or blow memory: whatever is wrong becomes a finding or an error.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use consentry_audit::{AuditOptions, audit_bundle};
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

struct Env {
    dir: tempfile::TempDir,
}

static ENV: LazyLock<Env> = LazyLock::new(|| Env { dir: common::scratch() });

/// Splits the input into (path, content) pairs.
fn files(data: &[u8]) -> Vec<(&str, &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(after) = rest.strip_prefix(b"@@ ") {
        let Some(eol) = after.iter().position(|&b| b == b'\n') else { break };
        let Ok(path) = std::str::from_utf8(&after[..eol]) else { break };
        let body = &after[eol + 1..];
        let end = body.windows(4).position(|w| w == b"\n@@ ").map_or(body.len(), |i| i + 1);
        out.push((path, &body[..end]));
        rest = &body[end..];
    }
    out
}

fn write(root: &Path, files: &[(&str, &[u8])]) -> Option<PathBuf> {
    let bundle = root.join("bundle");
    if bundle.exists() {
        std::fs::remove_dir_all(&bundle).expect("clear the last bundle");
    }
    std::fs::create_dir_all(&bundle).expect("a bundle directory");
    for (path, body) in files {
        if !common::safe_relative(path) {
            continue;
        }
        let dst = bundle.join(path);
        if let Some(parent) = dst.parent() {
            if std::fs::create_dir_all(parent).is_err() {
                continue; // a file where a directory would go: skip the later file
            }
        }
        let _ = std::fs::write(&dst, body);
    }
    Some(bundle)
}

fuzz_target!(|data: &[u8]| {
    let files = files(data);
    let Some(bundle) = write(ENV.dir.path(), &files) else { return };
    match audit_bundle(&bundle, &AuditOptions::at(1_800_000_000)) {
        Ok(report) => {
            let _ = serde_json::to_string(&report).expect("a report serialises");
            let _ = report.render();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
