//! What every CLI test needs: run the real binary on a data directory, read its output.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary with `--data DIR` and no inherited `CONSENTRY_*` settings.
pub fn command(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_consentry"));
    c.arg("--data").arg(data).env_remove("CONSENTRY_DATA").env_remove("CONSENTRY_DATABASE");
    c
}

/// Runs `consentry --data DIR ARGS…`.
pub fn consentry(data: &Path, args: &[&str]) -> Output {
    command(data).args(args).output().expect("the consentry binary runs")
}

/// Runs `consentry --data DIR ARGS…` with `stdin` as standard input.
pub fn consentry_stdin(data: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = command(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the consentry binary runs");
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin).expect("stdin accepts input");
    }
    child.wait_with_output().expect("the consentry binary finishes")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts exit code 0 (showing both streams otherwise) and returns stdout.
pub fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

/// `--quiet ledger append …` arguments for a withdrawal of `member` from `purpose`, recorded from `source`.
pub fn withdrawal<'a>(member: &'a str, purpose: &'a str, source: &'a str) -> [&'a str; 11] {
    [
        "--quiet",
        "ledger",
        "append",
        "--member",
        member,
        "--purpose",
        purpose,
        "--action",
        "withdraw",
        "--source",
        source,
    ]
}
