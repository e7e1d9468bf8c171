//! Attacks on an evidence bundle's event file, which the audit streams instead of loading: a file cut short, two
//! lines swapped, a line repeated, a half-written last line. The attacker also rewrites the (unsigned) index so
//! the file's hash matches: the audit must still fail from the log it rebuilds, never from the index alone.

use crate::{audit, b3, fresh, read_json};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Exports a private copy of the demo to `out` (each attack edits its own bundle; the shared demo is never opened,
/// since opening its database may leave files beside it that other attacks' copies would inherit).
fn bundle(out: &Path) -> (tempfile::TempDir, PathBuf) {
    let (tmp, data) = fresh();
    let o = crate::common::consentry(&data, &["audit", "export", "--out", out.to_str().expect("utf-8")]);
    crate::common::ok(&o);
    (tmp, data)
}

/// Replaces the bundle's event file by `lines` and makes the index agree with it.
fn rewrite_events(dir: &Path, lines: &[&str], tail: &str) {
    let mut bytes = lines.join("\n").into_bytes();
    bytes.push(b'\n');
    bytes.extend_from_slice(tail.as_bytes());
    std::fs::write(dir.join("ledger/events.jsonl"), &bytes).expect("the event file can be rewritten");
    let mut index = read_json(&dir.join("INDEX.json"));
    for f in index["files"].as_array_mut().expect("a file list") {
        if f["path"] == "ledger/events.jsonl" {
            f["blake3"] = b3(&bytes).into();
            f["bytes"] = (bytes.len() as u64).into();
        }
    }
    std::fs::write(dir.join("INDEX.json"), serde_json::to_vec_pretty(&index).expect("JSON")).expect("index");
}

/// Audits the bundle offline: it must exit 1 with a `ledger_tampered` finding and no `bundle_file_altered` one
/// (the index was made to agree).
fn caught(data: &Path, dir: &Path) -> Value {
    let (code, report) = audit(data, &["--offline", dir.to_str().expect("utf-8")]);
    assert_eq!(code, Some(1), "the audit must fail: {report}");
    let kinds: Vec<&str> =
        report["findings"].as_array().expect("findings").iter().filter_map(|f| f["kind"].as_str()).collect();
    assert!(kinds.contains(&"ledger_tampered"), "{report}");
    assert!(!kinds.contains(&"bundle_file_altered"), "the index agrees with the file: {report}");
    report
}

/// Exports a bundle, lets `edit` change its event lines (and return a partial line to append), makes the index
/// agree, and returns the offline audit's report, which must have caught it.
fn attack(edit: impl FnOnce(&mut Vec<&str>) -> String) -> Value {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("bundle");
    let (_copy, data) = bundle(&dir);
    let text = std::fs::read_to_string(dir.join("ledger/events.jsonl")).expect("the event file");
    let mut lines: Vec<&str> = text.lines().collect();
    let tail = edit(&mut lines);
    rewrite_events(&dir, &lines, &tail);
    caught(&data, &dir)
}

#[test]
fn event_file_cut_short_is_caught() {
    let r = attack(|lines| {
        lines.truncate(lines.len() - 3);
        String::new()
    });
    assert!(r.to_string().contains("events were removed"), "{r}");
}

#[test]
fn event_lines_swapped_are_caught() {
    let r = attack(|lines| {
        let n = lines.len();
        lines.swap(n / 2, n / 2 + 1);
        String::new()
    });
    assert!(r.to_string().contains("out of place"), "{r}");
}

#[test]
fn event_line_repeated_is_caught() {
    attack(|lines| {
        let n = lines.len();
        let again = lines[n / 3];
        lines.insert(n / 3 + 1, again);
        String::new()
    });
}

#[test]
fn half_written_last_line_is_caught() {
    let r = attack(|lines| {
        let last = lines.pop().expect("a line");
        last[..last.len() / 2].to_string()
    });
    let unreadable = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| f["kind"] == "unreadable_file" && f["file"] == "ledger/events.jsonl");
    assert!(unreadable, "the half line is reported: {r}");
}
