//! `consentry redact`, run for real: text and JSONL modes, numbering, bad input, atomic output.

mod common;

use common::{consentry_stdin as consentry, text};

const LETTER: &str = "Hi Sarah,\n\nCall me on +44 20 7946 0958 or mail sarah.k@example.com.\nMy IBAN is DE89 3704 0044 0532 0130 00.\n\nBest,\nJohn Smith\n";

#[test]
fn redacts_files_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("letter.txt");
    std::fs::write(&f, LETTER).unwrap();
    let out = consentry(dir.path(), &["redact", f.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Hi <PERSON>,\n\nCall me on <PHONE> or mail <EMAIL>.\nMy IBAN is <IBAN>.\n\nBest,\n<PERSON>\n"
    );
    let out = consentry(dir.path(), &["redact", "--number", "--quiet"], LETTER.as_bytes());
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("Hi <PERSON_1>,"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).ends_with("<PERSON_2>\n"));
    assert!(out.stderr.is_empty());
}

#[test]
fn jsonl_lists_byte_spans() {
    let dir = tempfile::tempdir().unwrap();
    let input = "{\"id\": 7, \"text\": \"Grüße! Mail zoë@example.com\"}\n{\"id\": \"x\", \"text\": \"nothing here\"}\n";
    let out = consentry(dir.path(), &["redact", "--jsonl", "--with-text"], input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], 7);
    let span = &lines[0]["spans"][0];
    assert_eq!(span["type"], "EMAIL");
    // "Grüße! Mail " is 14 bytes in UTF-8; "zoë@example.com" ends 16 bytes later.
    assert_eq!((span["start"].as_u64(), span["end"].as_u64()), (Some(14), Some(30)));
    assert_eq!(lines[0]["redacted"], "Grüße! Mail <EMAIL>");
    assert_eq!(lines[1]["spans"].as_array().map(Vec::len), Some(0));
}

#[test]
fn bad_input_exits_2_naming_the_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.txt");
    let bad = dir.path().join("bad.txt");
    std::fs::write(&good, LETTER).unwrap();
    std::fs::write(&bad, b"fine\nalso fine\nbroken \xff here\n").unwrap();
    let out_file = dir.path().join("out.txt");
    let out = consentry(
        dir.path(),
        &["redact", good.to_str().unwrap(), bad.to_str().unwrap(), "-o", out_file.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("line 3"), "{}", text(&out.stderr));
    assert!(!out_file.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file is left behind");
    let out = consentry(dir.path(), &["redact", bad.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let out = consentry(dir.path(), &["redact", "--jsonl"], b"{\"id\": 1}\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("line 1"), "{}", text(&out.stderr));
    let out = consentry(dir.path(), &["redact", "--types", "EMAIL,NOPE"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn output_file_is_written_whole_with_summary() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("long.txt");
    // One long line without newlines: streamed in windows, still redacted everywhere.
    let line = "mail sarah.k@example.com or call +1 415 555 0132 now; ".repeat(40_000);
    std::fs::write(&f, &line).unwrap();
    let out_file = dir.path().join("long.redacted");
    let out = consentry(dir.path(), &["--json", "redact", f.to_str().unwrap(), "-o", out_file.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["spans_by_type"]["EMAIL"], 40_000);
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "mail <EMAIL> or call <PHONE> now; ".repeat(40_000));
}
