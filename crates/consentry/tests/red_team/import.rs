//! A careless or hostile operator feeding `ledger import --from …` what no platform exports: a mapping that maps one
//! field twice, a device or a pipe instead of a file, nothing at all, a header alone, bytes that are not UTF-8, a
//! line without end. Every attempt ends in exit 2 with a message naming the line (or the file), promptly, and the
//! log stays exactly as it was.

use crate::common::{command, consentry, ok, text};
use crate::fresh;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const MAPPING: &str = r#"
[columns]
member_id = "member"
purpose = "purpose"
action = "action"
event_time = "time"
"#;

const HEADER: &str = "member,purpose,action,time\n";
const ROW: &str = "7,train_ai_system.job_recommendations,grant,2026-03-01T09:30:00Z\n";

fn entries(data: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&ok(&consentry(data, &["--json", "ledger", "verify"])))
        .expect("ledger verify --json is JSON");
    v["events"].as_u64().expect("a length")
}

/// `consentry ledger import --from csv --mapping MAP FILE`, killed (and failed) if it runs over 60 s: an import
/// that hangs on a pipe is itself a finding.
fn import(data: &Path, mapping: &Path, file: &Path) -> Output {
    let mut child = command(data)
        .args(["ledger", "import", "--from", "csv", "--mapping"])
        .arg(mapping)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the consentry binary runs");
    let start = Instant::now();
    while child.try_wait().expect("waiting works").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("ledger import of {} hangs", file.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("the import finishes")
}

struct Case {
    _dir: tempfile::TempDir,
    data: PathBuf,
    mapping: PathBuf,
    before: u64,
}

fn case() -> Case {
    let (dir, data) = fresh();
    let mapping = dir.path().join("map.toml");
    std::fs::write(&mapping, MAPPING).expect("the mapping is written");
    let before = entries(&data);
    Case { _dir: dir, data, mapping, before }
}

/// Asserts exit 2 with every `needle` in the message, and an unchanged log.
fn refused(c: &Case, o: &Output, needles: &[&str]) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
    assert_eq!(entries(&c.data), c.before, "nothing is written");
}

#[test]
fn a_mapping_that_maps_a_field_twice_is_refused_at_its_line() {
    let c = case();
    let file = c.mapping.with_file_name("ok.csv");
    std::fs::write(&file, format!("{HEADER}{ROW}")).expect("written");
    std::fs::write(&c.mapping, format!("{MAPPING}member_id = \"other\"\n")).expect("written");
    refused(&c, &import(&c.data, &c.mapping, &file), &["map.toml:7:1", "duplicate key"]);
    std::fs::write(&c.mapping, format!("{MAPPING}actor = \"member\"\n")).expect("written");
    refused(&c, &import(&c.data, &c.mapping, &file), &["map.toml:7:", "mapped to both `member_id`"]);
}

#[test]
fn a_device_or_a_pipe_is_refused_without_reading_it() {
    let c = case();
    let zero = c.mapping.with_file_name("zero.csv");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("a link");
    refused(&c, &import(&c.data, &c.mapping, &zero), &["not a regular file"]);
    // A FIFO whose writer gives up early: the import must neither hang on it nor take half a file.
    let fifo = c.mapping.with_file_name("fifo.csv");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let mut writer = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '{}7,train_ai' > '{}'", HEADER.trim_end(), fifo.display()))
        .spawn()
        .expect("a writer");
    refused(&c, &import(&c.data, &c.mapping, &fifo), &["not a regular file"]);
    let _ = writer.kill();
    let _ = writer.wait();
}

#[test]
fn empty_header_only_non_utf8_and_endless_files_are_refused() {
    let c = case();
    let dir = c.mapping.parent().expect("a directory").to_path_buf();
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, b"").expect("written");
    refused(&c, &import(&c.data, &c.mapping, &empty), &["empty"]);
    let header = dir.join("header.csv");
    std::fs::write(&header, HEADER).expect("written");
    refused(&c, &import(&c.data, &c.mapping, &header), &["line 1:", "a header but no rows"]);
    let latin1 = dir.join("latin1.csv");
    let mut bytes = format!("{HEADER}{ROW}").into_bytes();
    bytes.extend_from_slice(b"8,train_ai_system.job_recommendations\xfc,grant,2026-03-01T09:30:00Z\n");
    std::fs::write(&latin1, bytes).expect("written");
    refused(&c, &import(&c.data, &c.mapping, &latin1), &["line 3:", "UTF-8"]);
    let endless = dir.join("endless.csv");
    let mut bytes = format!("{HEADER}{ROW}").into_bytes();
    bytes.resize(bytes.len() + (2 << 20), b'x');
    std::fs::write(&endless, bytes).expect("written");
    refused(&c, &import(&c.data, &c.mapping, &endless), &["line 3", "longer than 1 MiB"]);
    // The same file, well formed, imports: the refusals were about the files, not the ledger.
    let good = dir.join("good.csv");
    std::fs::write(&good, format!("{HEADER}{ROW}")).expect("written");
    let o = import(&c.data, &c.mapping, &good);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(entries(&c.data), c.before + 1);
}
