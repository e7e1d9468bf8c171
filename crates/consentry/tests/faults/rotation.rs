//! The key rotation's steps: `ledger rotate-key` stages the new key as `ledger.key.new`, stores the hand-over
//! (signed by both keys) in the ledger, then moves the old key to `ledger.key.retired-<id>` and the new one into
//! place. A crash before the hand-over is stored leaves the old key in force and an unused staged key the next
//! command removes; a crash after it leaves the rotation done in the ledger, and the next command finishes the
//! moves. Either way no human is needed and the log verifies.

use crate::common::{consentry, json, ok};
use crate::{assert_fired, assert_recovered, data_dir, fault, run_faulty};
use consentry_app::DataDir;
use std::path::{Path, PathBuf};

/// `path` with `.suffix` appended to its file name (where the rotation stages and retires keys).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().expect("a key file name").to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

fn keys(data: &Path) -> usize {
    json(&ok(&consentry(data, &["--json", "ledger", "keys"])))["keys"].as_array().map_or(0, Vec::len)
}

fn retired_keys(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data)
        .expect("the data directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.to_string_lossy().contains("ledger.key.retired-"))
        .collect()
}

fn rotate(point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    let key_file = DataDir::new(&data).key_file();
    let staged = sibling(&key_file, "new");
    let old = std::fs::read(&key_file).unwrap();
    let o = run_faulty(&data, point, action, &["--quiet", "ledger", "rotate-key"]);
    assert_fired(&o, point, action);
    let ctx = format!("{point}={action}");
    // The ledger holds the hand-over exactly when the fault came after it was stored (`ledger keys` reads only).
    let rotated = point != "rotation::before_handover";
    assert_eq!(keys(&data), if rotated { 2 } else { 1 }, "{ctx}");
    // The next command that signs finishes (or forgets) the interrupted rotation by itself.
    ok(&consentry(&data, &["--quiet", "ledger", "checkpoint"]));
    assert!(!staged.exists(), "{ctx}: the staged key is still there");
    let now = std::fs::read(&key_file).unwrap();
    let retired = retired_keys(&data);
    if rotated {
        assert_ne!(now, old, "{ctx}: the new key is in place");
        assert_eq!(retired.len(), 1, "{ctx}: {retired:?}");
        assert_eq!(std::fs::read(&retired[0]).unwrap(), old, "{ctx}: the retired key is the old one");
    } else {
        assert_eq!(now, old, "{ctx}: the old key stays in force");
        assert!(retired.is_empty(), "{ctx}: {retired:?}");
        // And a rotation run again succeeds.
        ok(&consentry(&data, &["--quiet", "ledger", "rotate-key"]));
        assert_eq!(keys(&data), 2, "{ctx}");
    }
    assert_recovered(&data, &ctx);
}

fault!(before_handover, "rotation::before_handover", rotate, ["crash"]);
fault!(after_handover, "rotation::after_handover", rotate, ["crash"]);
fault!(between_renames, "rotation::between_renames", rotate, ["crash"]);
