//! What the fuzz targets share: a private copy of the CLI's fixture data directory (on tmpfs when there is one,
//! so the per-input file writes stay in memory) and a scratch directory the targets rewrite per input.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The fixture data directory the CLI's tests use (a small ledger, a dataset, a model).
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/consentry/tests/fixtures/datadir-v1")
}

/// A temporary directory, in /dev/shm when it exists (kept for the process: the targets reuse it per input).
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
    dir.expect("a scratch directory")
}

/// Copies the directory tree `from` to `to` (regular files and directories only), giving `*.key` files mode 0600
/// back (git keeps no 0600, and consentry refuses a signing key others may read).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for e in std::fs::read_dir(from).expect("read the fixture") {
        let e = e.expect("a fixture entry");
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().expect("a file type").is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy a fixture file");
            if dst.extension().is_some_and(|x| x == "key") {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).expect("chmod 600 a key");
            }
        }
    }
}

/// A path the harness may write below its scratch directory: relative, plain components only.
pub fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && p.len() < 200
        && p.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
}

/// JSON equality where two floats count as equal within a relative 1e-15: serde_json's default float parser
/// (without the `float_roundtrip` feature the workspace does not enable) may read its own output one ULP off,
/// which is not a defect of the formats under test.
pub fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs()),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Parse → write → parse for a JSON format: whatever parses is written back to text that parses to the same
/// value (floats within [`json_eq`]); returns the parsed value.
pub fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
    let parsed: T = serde_json::from_slice(data).ok()?;
    let first = serde_json::to_value(&parsed).expect("what parsed serialises");
    let text = serde_json::to_string_pretty(&parsed).expect("what parsed serialises");
    let again: T = serde_json::from_str(&text).expect("its own output parses");
    let second = serde_json::to_value(&again).expect("serialises");
    assert!(json_eq(&first, &second), "parse → write → parse changed the value:\n{first}\n{second}");
    Some(parsed)
}
