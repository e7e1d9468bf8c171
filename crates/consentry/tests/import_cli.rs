//! `consentry ledger import --from csv|json|fides --mapping MAP FILE` through the real binary: one import per format
//! from the committed fixtures (tests/fixtures/import/), malformed files refused whole with line and field, re-imports
//! and reordered re-exports appending nothing, `--dry-run` writing nothing.

mod common;

use common::{consentry, ok, text};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name)
}

fn examples(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/import").join(name)
}

/// A ledger holding the synthetic network's members 1..=50 (facts and consent events).
fn ledger() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let net = dir.path().join("net");
    ok(&consentry(&data, &["--quiet", "synth", "--members", "50", "--seed", "1", "--out", net.to_str().unwrap()]));
    ok(&consentry(&data, &["--quiet", "ledger", "init"]));
    let choices = net.join("consent_choices.parquet");
    ok(&consentry(&data, &["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]));
    (dir, data)
}

/// The log's length (events and fact entries).
fn entries(data: &Path) -> u64 {
    let v: Value = serde_json::from_str(&ok(&consentry(data, &["--json", "ledger", "verify"]))).unwrap();
    v["events"].as_u64().unwrap()
}

fn import(data: &Path, from: &str, mapping: &Path, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--json", "ledger", "import", "--from", from, "--mapping", mapping.to_str().unwrap()];
    args.push(file.to_str().unwrap());
    args.extend_from_slice(extra);
    consentry(data, &args)
}

fn report(o: &std::process::Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn each_format_imports_once_and_a_second_import_appends_nothing() {
    let cases: [(&str, &str, &str, u64, u64, u64); 6] = [
        // format, mapping, file, rows, events, skipped
        ("csv", "csv.toml", "consent.csv", 6, 5, 1),
        ("json", "json.toml", "consent.jsonl", 4, 4, 0),
        ("json", "json.toml", "consent-array.json", 4, 4, 0),
        ("fides", "fides.toml", "fides.csv", 10, 6, 4),
        ("fides", "fides.toml", "fides.json", 10, 6, 4),
        // The consent reporting API's page: {"total": …, "items": [...], "page": …}.
        ("fides", "fides.toml", "fides-page.json", 10, 6, 4),
    ];
    for (from, mapping, file, rows, events, skipped) in cases {
        let (_dir, data) = ledger();
        let before = entries(&data);
        let r = report(&import(&data, from, &fixture(mapping), &fixture(file), &[]));
        assert_eq!((r["rows"].as_u64(), r["events"].as_u64()), (Some(rows), Some(events)), "{file}: {r}");
        assert_eq!(r["appended"].as_u64(), Some(events), "{file}: {r}");
        assert_eq!(r["skipped"].as_u64(), Some(skipped), "{file}: {r}");
        let facts = r["member_facts_recorded"].as_u64().unwrap();
        assert_eq!(entries(&data), before + events + facts, "{file}");
        let again = report(&import(&data, from, &fixture(mapping), &fixture(file), &[]));
        assert_eq!(again["appended"], 0, "{file}: {again}");
        assert_eq!(again["already_present"].as_u64(), Some(events), "{file}: {again}");
        assert_eq!(again["member_facts_recorded"], 0, "{file}: {again}");
        assert_eq!(entries(&data), before + events + facts, "{file}");
    }
}

#[test]
fn csv_with_bom_crlf_quotes_and_member_facts_on_a_later_row() {
    let (_dir, data) = ledger();
    let r = report(&import(&data, "csv", &fixture("csv.toml"), &fixture("consent.csv"), &[]));
    assert_eq!(r["shape"], "csv");
    assert_eq!(r["members_in_file"], 2, "{r}");
    assert_eq!(r["member_facts_recorded"], 2, "{r}");
    assert_eq!(r["skipped_reasons"]["action `pending` mapped to skip"], 1, "{r}");
    // Member 101's first event (line 2) precedes its facts (line 4): both are in the ledger now.
    let receipts: Value = serde_json::from_str(&ok(&consentry(
        &data,
        &["--json", "ledger", "snapshot", "--purpose", "train_ai_system.content_suggestions"],
    )))
    .unwrap();
    assert!(receipts["members"].as_u64().unwrap() >= 52, "{receipts}");
}

#[test]
fn a_reordered_re_export_in_another_shape_appends_nothing() {
    let (_dir, data) = ledger();
    let first = report(&import(&data, "json", &fixture("json.toml"), &fixture("consent.jsonl"), &[]));
    assert_eq!(first["appended"], 4);
    // The same four events as a JSON array, reordered, ids and versions as strings: all already present.
    let again = report(&import(&data, "json", &fixture("json.toml"), &fixture("consent-array.json"), &[]));
    assert_eq!((again["appended"].as_u64(), again["already_present"].as_u64()), (Some(0), Some(4)), "{again}");
    let fides = report(&import(&data, "fides", &fixture("fides.toml"), &fixture("fides.csv"), &[]));
    assert_eq!(fides["appended"], 6);
    let json = report(&import(&data, "fides", &fixture("fides.toml"), &fixture("fides.json"), &[]));
    assert_eq!((json["appended"].as_u64(), json["already_present"].as_u64()), (Some(0), Some(6)), "{json}");
    let page = report(&import(&data, "fides", &fixture("fides.toml"), &fixture("fides-page.json"), &[]));
    assert_eq!(page["shape"], "fides_page");
    assert_eq!((page["appended"].as_u64(), page["already_present"].as_u64()), (Some(0), Some(6)), "{page}");
}

#[test]
fn dry_run_counts_and_writes_nothing() {
    let (_dir, data) = ledger();
    let before = entries(&data);
    let r = report(&import(&data, "csv", &fixture("csv.toml"), &fixture("consent.csv"), &["--dry-run"]));
    assert_eq!(r["dry_run"], true);
    assert_eq!((r["appended"].as_u64(), r["member_facts_recorded"].as_u64()), (Some(5), Some(2)), "{r}");
    assert_eq!(entries(&data), before, "a dry run writes nothing");
    report(&import(&data, "csv", &fixture("csv.toml"), &fixture("consent.csv"), &[]));
    let r = report(&import(&data, "csv", &fixture("csv.toml"), &fixture("consent.csv"), &["--dry-run"]));
    assert_eq!((r["appended"].as_u64(), r["already_present"].as_u64()), (Some(0), Some(5)), "{r}");
    assert_eq!(r["member_facts_recorded"], 0, "{r}");
    // Human output says what would happen.
    let o = consentry(
        &data,
        &[
            "ledger",
            "import",
            "--from",
            "csv",
            "--mapping",
            fixture("csv.toml").to_str().unwrap(),
            fixture("consent.csv").to_str().unwrap(),
            "--dry-run",
        ],
    );
    let out = ok(&o);
    assert!(out.contains("dry run, nothing written") && out.contains("would be appended"), "{out}");
}

/// Writes `content` to a file of its own and asserts the import is refused (exit 2) naming `at` = (line, column,
/// field), with nothing written.
fn refused(data: &Path, from: &str, mapping: &str, name: &str, content: &[u8], at: (u64, &str, &str)) {
    let (line, column, field) = at;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, content).unwrap();
    let before = entries(data);
    let o = import(data, from, &fixture(mapping), &file, &[]);
    assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("nothing imported"), "{err}");
    assert!(err.contains(&format!("line {line}:")) && err.contains(&format!("`{column}` ({field})")), "{name}: {err}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &v["rejected"]["problems"][0];
    assert_eq!(
        (p["line"].as_u64(), p["column"].as_str(), p["field"].as_str()),
        (Some(line), Some(column), Some(field)),
        "{v}"
    );
    assert_eq!(entries(data), before, "{name}: a refused import writes nothing");
}

fn edit(file: &str, from: &str, to: &str) -> Vec<u8> {
    let bytes = std::fs::read(fixture(file)).unwrap();
    let s = String::from_utf8(bytes).unwrap();
    assert!(s.contains(from), "{file} has {from}");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn malformed_files_are_refused_whole_naming_line_and_field() {
    let (_dir, data) = ledger();
    // CSV (line 1 is the header; the fixture has CRLF line ends and a BOM).
    refused(
        &data,
        "csv",
        "csv.toml",
        "value.csv",
        &edit("consent.csv", "\n1,jobs,yes", "\n1,jobs,perhaps"),
        (3, "choice", "action"),
    );
    refused(&data, "csv", "csv.toml", "column.csv", &edit("consent.csv", "choice", "chosen"), (1, "choice", "action"));
    refused(
        &data,
        "csv",
        "csv.toml",
        "time.csv",
        &edit("consent.csv", "2026-03-02T10:00:00Z", "2026-03-02"),
        (3, "when", "event_time"),
    );
    refused(
        &data,
        "csv",
        "csv.toml",
        "purpose.csv",
        &edit("consent.csv", "2,replies", "2,repliez"),
        (5, "purpose", "purpose"),
    );
    refused(
        &data,
        "csv",
        "csv.toml",
        "member.csv",
        &edit("consent.csv", "2,replies", "777,replies"),
        (5, "member", "member_id"),
    );
    refused(
        &data,
        "csv",
        "csv.toml",
        "facts.csv",
        &edit("consent.csv", "1985-01-31", "1985-31-01"),
        (7, "born", "birth_date"),
    );
    // JSON Lines (line 3 is blank).
    refused(
        &data,
        "json",
        "json.toml",
        "value.jsonl",
        &edit("consent.jsonl", "\"withdraw\"", "\"no\""),
        (4, "state", "action"),
    );
    refused(
        &data,
        "json",
        "json.toml",
        "column.jsonl",
        &edit("consent.jsonl", "\"uid\": 6", "\"id\": 6"),
        (5, "uid", "member_id"),
    );
    refused(
        &data,
        "json",
        "json.toml",
        "time.jsonl",
        &edit("consent.jsonl", "1780000000", "\"soon\""),
        (4, "ts", "event_time"),
    );
    refused(
        &data,
        "json",
        "json.toml",
        "purpose.jsonl",
        &edit("consent.jsonl", "reply_suggestions", "replies"),
        (5, "purpose", "purpose"),
    );
    refused(
        &data,
        "json",
        "json.toml",
        "member.jsonl",
        &edit("consent.jsonl", "\"uid\": 4", "\"uid\": 4000"),
        (1, "uid", "member_id"),
    );
    // A JSON array: an element's line is where it starts.
    refused(
        &data,
        "json",
        "json.toml",
        "value.json",
        &edit("consent-array.json", "\"withdraw\"", "\"nope\""),
        (8, "state", "action"),
    );
    refused(
        &data,
        "json",
        "json.toml",
        "member.json",
        &edit("consent-array.json", "\"uid\": 6", "\"uid\": 6000"),
        (2, "uid", "member_id"),
    );
    refused(
        &data,
        "json",
        "json.toml",
        "notice.json",
        &edit("consent-array.json", "\"notice\": \"1\"", "\"notice\": \"v1\""),
        (9, "notice", "notice_version"),
    );
    // Fides CSV and JSON.
    refused(
        &data,
        "fides",
        "fides.toml",
        "value.csv",
        &edit("fides.csv", "opt_out,fr", "opted_out,fr"),
        (5, "preference", "action"),
    );
    refused(
        &data,
        "fides",
        "fides.toml",
        "column.csv",
        &edit("fides.csv", "request_timestamp", "timestamp"),
        (1, "request_timestamp", "event_time"),
    );
    refused(
        &data,
        "fides",
        "fides.toml",
        "time.csv",
        &edit("fides.csv", "2026-04-12T09:00:00+00:00", "12/04/2026"),
        (6, "request_timestamp", "event_time"),
    );
    refused(
        &data,
        "fides",
        "fides.toml",
        "purpose.csv",
        &edit("fides.csv", "pri_notice-history-ai-replies,opt_in", "pri_notice-history-new,opt_in"),
        (4, "privacy_notice_history_id", "purpose"),
    );
    refused(
        &data,
        "fides",
        "fides.toml",
        "member.csv",
        &edit("fides.csv", ",,30,", ",,3000,"),
        (11, "external_id", "member_id"),
    );
    refused(
        &data,
        "fides",
        "fides.toml",
        "value.json",
        &edit("fides.json", "\"opt_in\"", "\"yes\""),
        (2, "preference", "action"),
    );
    refused(
        &data,
        "fides",
        "fides.toml",
        "member.json",
        &edit("fides.json", "\"external_id\": \"30\"", "\"external_id\": \"thirty\""),
        (2, "external_id", "member_id"),
    );
}

#[test]
fn several_problems_are_reported_together_in_line_order() {
    let (_dir, data) = ledger();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    let bad =
        String::from_utf8(edit("consent.csv", "102,jobs", "102,jobz")).unwrap().replacen("2,replies", "999,replies", 1);
    std::fs::write(&file, bad).unwrap();
    let o = import(&data, "csv", &fixture("csv.toml"), &file, &[]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines: Vec<u64> =
        v["rejected"]["problems"].as_array().unwrap().iter().map(|p| p["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [5, 7], "{v}");
}

#[test]
fn a_bad_mapping_is_refused_at_its_line_and_column() {
    let (_dir, data) = ledger();
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("map.toml");
    let map = std::fs::read_to_string(fixture("csv.toml")).unwrap().replace("source = \"via\"", "sorce = \"via\"");
    std::fs::write(&mapping, map).unwrap();
    let o = import(&data, "csv", &mapping, &fixture("consent.csv"), &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("map.toml:7:1") && err.contains("sorce"), "{err}");
    // --from and --choices do not mix.
    let o = consentry(&data, &["ledger", "import", "--choices", "x.parquet", "--from", "csv", "--mapping", "m", "f"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

#[test]
fn the_examples_work_on_demo_members() {
    let (_dir, data) = ledger();
    let r = report(&import(&data, "csv", &examples("csv-mapping.toml"), &examples("consent.csv"), &[]));
    assert_eq!((r["appended"].as_u64(), r["skipped"].as_u64()), (Some(17), Some(2)), "{r}");
    let r = report(&import(&data, "csv", &examples("csv-mapping.toml"), &examples("consent.csv"), &[]));
    assert_eq!(r["appended"], 0, "{r}");
    let r = report(&import(&data, "fides", &examples("fides-mapping.toml"), &examples("fides-consent.csv"), &[]));
    assert_eq!((r["appended"].as_u64(), r["skipped"].as_u64()), (Some(6), Some(4)), "{r}");
}
