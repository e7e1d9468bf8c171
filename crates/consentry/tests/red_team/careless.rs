//! A careless operator: closed pipes and sizes the machine cannot hold end cleanly, never in a panic.

use crate::common::{command, consentry, text};
use crate::fresh;
use consentry_app::DataDir;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

/// SIGPIPE's number on Linux.
const SIGPIPE: i32 = 13;

/// Runs `consentry ARGS` with its standard output a pipe whose reader is already gone.
fn with_closed_stdout(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut child = command(data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the consentry binary runs");
    drop(child.stdout.take());
    child.wait_with_output().expect("the consentry binary finishes")
}

#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    let (_dir, data) = fresh();
    for args in [
        &["ledger", "receipt", "--event", "1"][..],
        &["lineage", "models"][..],
        &["ledger", "snapshot", "--purpose", crate::JOBS][..],
        &["--json", "audit"][..],
    ] {
        let o = with_closed_stdout(&data, args);
        let err = text(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
        assert_ne!(o.status.code(), Some(101), "{args:?}: {err}");
        // Killed by SIGPIPE, as `yes | head -1` is; or done before it noticed.
        assert!(o.status.signal() == Some(SIGPIPE) || o.status.success(), "{args:?}: {:?} {err}", o.status);
    }
}

#[test]
fn a_network_larger_than_the_machine_is_refused_up_front() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let out = dir.path().join("net");
    let o = consentry(&data, &["synth", "--members", "4294967295", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("at most") && err.contains("GiB"), "{err}");
    assert!(!out.exists(), "nothing is written for a refused size");
}

#[test]
fn a_typo_in_a_key_or_receipt_path_is_bad_input_not_a_bad_receipt() {
    let (dir, data) = fresh();
    let receipt = dir.path().join("r.json");
    crate::common::ok(&consentry(
        &data,
        &["ledger", "receipt", "--event", "2", "--out", receipt.to_str().expect("utf-8")],
    ));
    let typo = data.join("ledger.pbu");
    let o = consentry(
        &data,
        &["ledger", "verify-receipt", receipt.to_str().expect("utf-8"), "--public-key", typo.to_str().expect("utf-8")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(!err.contains("INVALID") && err.contains("ledger.pbu") && err.contains("no such key file"), "{err}");
    let pubkey = DataDir::new(&data).public_key_file();
    let o = consentry(&data, &["ledger", "verify-receipt", "r.jsno", "--public-key", pubkey.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("INVALID"), "{}", text(&o.stderr));
}

#[test]
fn a_batch_window_as_long_as_the_deadline_is_refused_before_anything_moves() {
    let (_dir, data) = fresh();
    let before = std::fs::read_dir(DataDir::new(data.clone()).models_dir()).expect("models").count();
    for args in [
        &["unlearn", "--deadline", "600", "--batch-window", "900"][..],
        &["unlearn", "--watch", "--max-polls", "1", "--deadline", "60", "--batch-window", "60"][..],
    ] {
        let o = consentry(&data, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(err.contains("not shorter than --deadline") && err.contains("miss"), "{err}");
    }
    // Nothing was retrained, and a sound pass then works.
    assert_eq!(std::fs::read_dir(DataDir::new(data.clone()).models_dir()).expect("models").count(), before);
    crate::common::ok(&consentry(&data, &["unlearn", "--deadline", "600", "--batch-window", "100"]));
}
