//! `consentry ledger import --from csv|json|fides --mapping MAP.toml FILE`: arbitrary bytes as a mapping and a
//! platform's file, through every format. Input: one byte choosing the file's name (`input.csv`, `input.json`,
//! `input.jsonl` or `input`: a Fides export's shape follows its extension), then the mapping TOML, a NUL byte, and the
//! file's bytes (no NUL: all of it is the mapping, the file is empty).
//!
//! For each format: the mapping compiles against the fixture's policy or every error has a line and column ≥ 1; the
//! row reader reads the file with the mapping's columns (or, when the mapping does not compile, the columns of the
//! committed example mapping of that format) without panicking, every row and problem at a line ≥ 1; then the whole
//! validate-first import (`Session::import_file` with `dry_run`) on a copy of the fixture data directory: no panic,
//! every problem of a refused file at a line ≥ 1, the ledger's length unchanged (a dry run writes nothing), and the
//! same answer twice (the same report, or the same problems).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use consentry_app::import::mapping::{self, Column, Format};
use consentry_app::import::read::{ReadError, RowReader};
use consentry_app::import::{FileImport, ImportRejected};
use consentry_app::{DataDir, NoProgress, Session};
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

struct Env {
    dir: tempfile::TempDir,
    mapping: PathBuf,
    session: Session,
    /// The columns of each format's example mapping, for the reader when the fuzzed mapping does not compile.
    fallback: [(Format, Vec<Column>); 3],
}

const FORMATS: [Format; 3] = [Format::Csv, Format::Json, Format::Fides];
const NAMES: [&str; 4] = ["input.csv", "input.json", "input.jsonl", "input"];

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/consentry/tests/fixtures/import").join(name);
    std::fs::read_to_string(path).expect("a committed example mapping")
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let dir = common::scratch();
    let data = dir.path().join("data");
    common::copy_dir(&common::fixture(), &data);
    let session = Session::open(DataDir::new(&data), None).expect("the fixture opens");
    let policy = session.ledger().expect("the fixture's ledger").policy().clone();
    let columns =
        |text: &str, f: Format| mapping::compile(text, f, &policy).expect("an example mapping compiles").columns;
    let fallback = [
        (Format::Csv, columns(&example("csv.toml"), Format::Csv)),
        (Format::Json, columns(&example("json.toml"), Format::Json)),
        (Format::Fides, columns(&example("fides.toml"), Format::Fides)),
    ];
    Env { mapping: dir.path().join("mapping.toml"), session, fallback, dir }
});

/// Reads every row of `path` as `format` with `columns`; rows and problems must carry a line ≥ 1.
fn read_all(path: &Path, format: Format, columns: &[Column]) {
    let mut reader = match RowReader::open(path, format, columns) {
        Ok(r) => r,
        Err(ReadError::Row(p) | ReadError::Fatal(p)) => {
            assert!(p.line >= 1, "a problem opening a regular file without a line: {p:?}");
            return;
        }
    };
    let mut n = 0u64;
    while let Some(next) = reader.next_row() {
        match next {
            Ok(row) => {
                assert!(row.line >= 1, "a row without a line: {row:?}");
                assert_eq!(row.values.len(), columns.len(), "one value per mapped column");
            }
            Err(ReadError::Row(p)) => assert!(p.line >= 1, "a row's problem without a line: {p:?}"),
            Err(ReadError::Fatal(p)) => {
                // The import stops reading here.
                assert!(p.line >= 1, "a fatal problem without a line: {p:?}");
                break;
            }
        }
        n += 1;
        assert!(n <= 1 << 20, "more rows than bytes");
    }
    let _ = (reader.shape(), reader.rows(), reader.digest());
}

/// The import's answer with the wall-clock seconds left out: a report, or the problems of a refused file.
fn answer(format: Format, file: &Path) -> Result<serde_json::Value, String> {
    let req = FileImport { format, mapping: &ENV.mapping, file, dry_run: true, batch: 1000 };
    match ENV.session.import_file(&req, &NoProgress) {
        Ok(report) => {
            assert!(report.dry_run);
            assert!(report.events <= report.rows && report.skipped <= report.rows, "{report:?}");
            assert_eq!(report.appended + report.already_present, report.events, "{report:?}");
            let mut v = serde_json::to_value(&report).expect("a report serialises");
            v["seconds"] = serde_json::Value::Null;
            Ok(v)
        }
        Err(e) => {
            if let Some(r) = e.downcast_ref::<ImportRejected>() {
                assert!(!r.problems.is_empty(), "a refusal without problems");
                assert!(r.problems.len() <= consentry_app::import::MAX_PROBLEMS);
                for p in &r.problems {
                    assert!(p.line >= 1, "a problem without a line: {p:?}");
                }
                Err(serde_json::to_string(r).expect("problems serialise"))
            } else {
                Err(e.to_string())
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&name, rest)) = data.split_first() else { return };
    let (map, file) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(map) = std::str::from_utf8(map) else { return };
    let path = ENV.dir.path().join(NAMES[usize::from(name) % NAMES.len()]);
    std::fs::write(&path, file).expect("write the file");
    std::fs::write(&ENV.mapping, map).expect("write the mapping");
    let ledger = ENV.session.ledger().expect("the fixture's ledger");
    let len = ledger.store().len().expect("the ledger's length");
    for (format, fallback) in FORMATS.iter().zip(&ENV.fallback) {
        assert_eq!(*format, fallback.0);
        let compiled = mapping::compile(map, *format, ledger.policy());
        match &compiled {
            Ok(c) => read_all(&path, *format, &c.columns),
            Err(errs) => {
                assert!(!errs.is_empty(), "a mapping refused without an error");
                for e in errs {
                    assert!(e.line >= 1 && e.column >= 1, "a mapping error without a place: {e:?}");
                }
                read_all(&path, *format, &fallback.1);
                continue;
            }
        }
        let first = answer(*format, &path);
        assert_eq!(ledger.store().len().expect("the ledger's length"), len, "a dry run wrote to the ledger");
        let second = answer(*format, &path);
        assert_eq!(first, second, "the same import, checked twice, answered differently");
    }
    let _ = std::fs::remove_file(&path);
});
