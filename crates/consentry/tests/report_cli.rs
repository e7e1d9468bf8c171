//! `consentry report` end to end: the privacy officer's HTML report of a demo data directory has every section,
//! a table after every chart, no external reference and no script; its signed tree head is the ledger's; `--json`
//! carries the same figures; a directory without models or datasets still reports ("none yet"); a missing one is
//! a clear error; the demo writes the report itself.

mod common;

use common::{consentry, copy_dir, ok, text};
use consentry_app::DataDir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const SECTIONS: [&str; 9] =
    ["summary", "coverage", "exclusions", "models", "dp", "privacy-loss", "unlearning", "audit", "verify"];

/// One demo for the whole file; each test that changes it works on its own copy.
fn demo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_cli-demo");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let data = dir.join("data");
        ok(&consentry(&data, &["--quiet", "demo", "--members", "4000", "--seed", "3"]));
        data
    })
}

/// The section `id` of `html` (from its opening tag to the next `</section>`).
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!(r#"<section id="{id}""#)).unwrap_or_else(|| panic!("no section {id}"));
    let end = html[start..].find("</section>").map_or(html.len(), |e| start + e);
    &html[start..end]
}

/// Asserts the page references nothing outside itself and runs no script.
fn assert_self_contained(html: &str) {
    for needle in ["http://", "https://", "@import", "<script", "<link", "<iframe", "<object", "<img"] {
        assert!(!html.to_ascii_lowercase().contains(needle), "the report contains `{needle}`");
    }
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let v = &html[i + attr.len()..];
            assert!(v.starts_with('#') || v.starts_with("data:"), "an external {attr}…: {}", &v[..40.min(v.len())]);
        }
    }
    for (i, _) in html.match_indices("url(") {
        let v = &html[i + 4..];
        assert!(v.starts_with('#') || v.starts_with("data:"), "an external url(: {}", &v[..40.min(v.len())]);
    }
}

/// Asserts each chart is followed by a table before the next chart.
fn assert_tables_follow_charts(html: &str) {
    let mut rest = html;
    let mut charts = 0;
    while let Some(i) = rest.find("</svg>") {
        charts += 1;
        rest = &rest[i + 6..];
        let table = rest.find("<table").expect("a table after the last chart");
        assert!(rest.find("<svg").is_none_or(|next| next > table), "chart {charts} has no table of its figures");
    }
    assert!(charts >= 5, "{charts} charts");
}

#[test]
fn the_demo_writes_the_report_and_report_rewrites_it_with_the_same_figures() {
    let data = demo();
    // The demo wrote DATA/report.html.
    let written = DataDir::new(data).report_file();
    let demo_html = std::fs::read_to_string(&written).expect("the demo wrote report.html");
    assert!(section(&demo_html, "audit").contains("Audit passed"));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.html");
    let o = consentry(data, &["report", "--out", out.to_str().unwrap()]);
    let said = ok(&o);
    assert!(said.contains(&format!("Report: {}", out.display())) && said.contains("KB)"), "{said}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for id in SECTIONS {
        section(&html, id);
    }
    assert_self_contained(&html);
    assert_tables_follow_charts(&html);
    assert!(section(&html, "audit").contains("Audit passed"), "{}", section(&html, "audit"));
    assert!(section(&html, "summary").contains("passed"));

    // The signed tree head shown is the ledger's: `ledger verify` passes and a fresh checkpoint over the same log
    // has the same root.
    ok(&consentry(data, &["ledger", "verify"]));
    let copy_root = tempfile::tempdir().unwrap();
    let copy = copy_root.path().join("data");
    copy_dir(data, &copy);
    let sth: Value = serde_json::from_slice(&consentry(&copy, &["--json", "ledger", "checkpoint"]).stdout).unwrap();
    let root = sth["root_hash"].as_str().expect("a root");
    assert!(section(&html, "verify").contains(root), "the report's root is not the ledger's {root}");
    assert!(section(&html, "verify").contains("ledger verify-receipt"));

    // --json carries the same figures.
    let o = consentry(data, &["--json", "report", "--no-audit"]);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)));
    assert_eq!(j["verify"]["root"], root);
    assert!(j["audit"].is_null(), "--no-audit leaves the audit out");
    let members = j["summary"]["members"].as_u64().unwrap();
    assert!(members > 3000, "{members}");
    assert!(html.contains(&consentry_app::dashboard::thousands(members)));
    for m in j["models"].as_array().unwrap() {
        assert!(html.contains(&m["id"].as_str().unwrap()[..12]), "model {} not in the page", m["id"]);
        assert_eq!(m["files"], "verified");
    }
    let loss = &j["privacy_loss"];
    assert_eq!(
        loss["members"].as_u64(),
        Some(loss["bounded"].as_u64().unwrap() + loss["only_unbounded"].as_u64().unwrap())
    );
    assert!(j["dp"]["how_to"].as_str().unwrap().contains("--dp-epsilon 1"), "the demo trains no DP model");
    assert!(!j["unlearning"]["requests"].as_array().unwrap().is_empty());
    assert!(j["coverage"]["instants"].as_array().unwrap().len() > 2);
}

#[test]
fn a_directory_without_models_or_datasets_reports_none_yet() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&consentry(&data, &["--quiet", "synth", "--members", "300", "--seed", "2"]));
    ok(&consentry(&data, &["--quiet", "ledger", "init"]));
    let o = consentry(&data, &["report"]);
    let said = ok(&o);
    let html = std::fs::read_to_string(DataDir::new(&data).report_file()).expect("the default output");
    assert!(said.contains("report.html"), "{said}");
    for id in ["exclusions", "models", "privacy-loss", "unlearning"] {
        assert!(section(&html, id).contains("None yet"), "{id}: {}", section(&html, id));
    }
    assert_self_contained(&html);
}

#[test]
fn a_missing_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let o = consentry(&missing, &["report"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("does not exist"), "{}", text(&o.stderr));
    assert!(!missing.exists(), "nothing was created");
}
