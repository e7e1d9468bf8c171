//! The data directory's layout is spelled in one place, `consentry_app::DataDir`: no other crate's source and no
//! CLI test names one of its files or directories, so the layout can change in one place.

use std::path::{Path, PathBuf};

/// The file names of the layout (the constants of `crates/consentry-app/src/datadir.rs`): flagged wherever they
/// appear as a string literal.
const FILES: &[&str] = &[
    "policy.toml",
    "ledger.db",
    "ledger.key",
    "ledger.pub",
    ".consentry-demo",
    "consentry-data.toml",
    "dp-noise.key",
    "token.key",
    "operator-actions.jsonl",
];

/// The directory names of the layout: flagged where a path is built from them (`join("models")`, `"models/…"`),
/// since the same words are also JSON keys.
const DIRS: &[&str] = &["network", "datasets", "models", "bundles"];

/// Lines that name something else than the data directory's layout: (file, a part of the line, why).
const ALLOWED: &[(&str, &str, &str)] = &[
    ("crates/consentry-audit/src/bundle.rs", "POLICY_FILE: &str", "an evidence bundle's own layout"),
    ("crates/consentry-audit/src/bundle.rs", "\"datasets/", "an evidence bundle's own layout"),
    ("crates/consentry-audit/src/bundle.rs", "\"models/", "an evidence bundle's own layout"),
    ("crates/consentry/tests/audit_cli.rs", "b.join(\"datasets/", "a file inside an exported bundle"),
    ("crates/consentry/tests/red_team/model_tamper.rs", "bundle.join(\"models\")", "a directory inside a bundle"),
    ("crates/consentry/tests/operator_cli.rs", "\"network/sources.toml\");", "the name a manifest records"),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_file_outside_the_app_spells_the_data_directory_layout() {
    let root = workspace();
    let mut files = Vec::new();
    for e in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "consentry-app" {
            continue;
        }
        rust_files(&e.path().join("src"), &mut files);
    }
    // The CLI's tests drive a data directory too: they ask `DataDir` where things are.
    rust_files(&root.join("crates/consentry/tests"), &mut files);
    assert!(files.len() > 50, "the scan found only {} files: wrong root {}", files.len(), root.display());
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if ALLOWED.iter().any(|(file, part, _)| rel == *file && line.contains(part)) {
                continue;
            }
            let files = FILES.iter().filter(|name| {
                // `"ledger.db"`, and `"ledger.db-wal"`-like names built on one.
                line.contains(&format!("\"{name}\"")) || line.contains(&format!("\"{name}-"))
            });
            let dirs = DIRS
                .iter()
                .filter(|name| line.contains(&format!("join(\"{name}")) || line.contains(&format!("\"{name}/")));
            if files.chain(dirs).next().is_some() {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
            if line.contains("data_path(") {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "these lines spell the data directory's layout; ask consentry_app::DataDir instead:\n{}",
        found.join("\n")
    );
}
