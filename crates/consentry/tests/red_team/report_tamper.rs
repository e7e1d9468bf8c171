//! The privacy officer's report against an insider and a careless operator: a live model's `model.json` edited to
//! better figures must not be shown as trusted (the report shows the audit's failure and marks the model
//! unverified, with the registry's figures, not the edited ones), and `--out` into a directory that does not exist,
//! onto a directory, or through a symbolic link behaves as every other output does.

use crate::common::{consentry, ok, text};
use crate::{fresh, read_json, refused};
use consentry_app::DataDir;
use serde_json::Value;

/// The section `id` of `html`.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!(r#"<section id="{id}""#)).unwrap_or_else(|| panic!("no section {id}"));
    let end = html[start..].find("</section>").map_or(html.len(), |e| start + e);
    &html[start..end]
}

#[test]
fn an_edited_live_model_json_shows_the_audit_failure_and_unverified_registry_figures() {
    let (dir, data) = fresh();
    let v2 = DataDir::new(&data).models_dir().join("job-recs.v2");
    let mut meta = read_json(&v2.join("model.json"));
    let honest = meta["metrics"]["model"]["recall_at_20"].as_f64().expect("a recorded Recall@20");
    meta["metrics"]["model"]["recall_at_20"] = serde_json::json!(0.987654);
    std::fs::write(v2.join("model.json"), serde_json::to_string_pretty(&meta).unwrap()).unwrap();

    let out = dir.path().join("report.html");
    let o = consentry(&data, &["report", "--out", out.to_str().unwrap()]);
    ok(&o);
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(section(&html, "audit").contains("Audit failed"), "{}", section(&html, "audit"));
    assert!(section(&html, "audit").contains("registry_mismatch"));
    assert!(section(&html, "summary").contains("failed"));
    assert!(section(&html, "models").contains("Unverified"), "the edited model is flagged");
    // A figure opens its table cell (`<td class="num">0.512 [0.49, 0.53]`).
    assert!(!html.contains(">0.988 ["), "the edited figure is shown");
    assert!(html.contains(&format!(">{honest:.3} [")), "the registry's figure is shown");

    let o = consentry(&data, &["--json", "report"]);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)));
    assert_eq!(j["summary"]["audit_passed"], false);
    assert_eq!(j["summary"]["unverified_models"], 1);
    let edited = j["models"].as_array().unwrap().iter().find(|m| m["files"] == "altered").expect("one altered model");
    assert_eq!(edited["kind"], "job-recs");
    assert!(edited["files_problem"].as_str().unwrap().contains("model.json"));
}

#[test]
fn out_into_a_missing_directory_onto_a_directory_or_through_a_link() {
    let (dir, data) = fresh();
    // A directory that does not exist: refused, nothing created.
    let missing = dir.path().join("no/such/dir/report.html");
    refused(&consentry(&data, &["report", "--no-audit", "--out", missing.to_str().unwrap()]), "report.html");
    assert!(!dir.path().join("no").exists());
    // A directory: refused, left as it was.
    let d = dir.path().join("adir");
    std::fs::create_dir(&d).unwrap();
    refused(&consentry(&data, &["report", "--no-audit", "--out", d.to_str().unwrap()]), "adir");
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
    // A symbolic link: followed to its target (the link stays), or refused with --no-follow.
    let target = dir.path().join("target.html");
    std::fs::write(&target, "old").unwrap();
    let link = dir.path().join("link.html");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    refused(&consentry(&data, &["--no-follow", "report", "--no-audit", "--out", link.to_str().unwrap()]), "link.html");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
    ok(&consentry(&data, &["report", "--no-audit", "--out", link.to_str().unwrap()]));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(&target).unwrap().starts_with("<!DOCTYPE html>"));
}
