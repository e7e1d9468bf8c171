//! What every CLI test needs: run the real binary on a data directory, read its output.
//!
//! Only a test crate of the `consentry` package knows where its binary is
//! (`env!("CARGO_BIN_EXE_consentry")`), so [`consentry_cli!`](crate::consentry_cli) declares the
//! helpers that run it there; the rest are plain functions here.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Declares `command`, `consentry` and `consentry_stdin` (the binary on a data directory) in the
/// calling test crate, beside a glob re-export of this module: write `consentry_cli!();` in its
/// `common` module.
#[macro_export]
macro_rules! consentry_cli {
    () => {
        pub use $crate::cli::*;

        /// The binary with `--data DIR` and no inherited `CONSENTRY_*` settings.
        pub fn command(data: &std::path::Path) -> std::process::Command {
            $crate::cli::command_at(env!("CARGO_BIN_EXE_consentry"), data)
        }

        /// Runs `consentry --data DIR ARGS…`.
        pub fn consentry(data: &std::path::Path, args: &[&str]) -> std::process::Output {
            command(data).args(args).output().expect("the consentry binary runs")
        }

        /// Runs `consentry --data DIR ARGS…` with `stdin` as standard input.
        pub fn consentry_stdin(data: &std::path::Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
            $crate::cli::run_with_stdin(command(data).args(args), stdin)
        }
    };
}

/// Spawns `serve` (a command ending in `serve --addr HOST:0 …`) and reads the address it bound from the first line
/// of its standard output; its standard error is drained and dropped (and shown if it fails to start).
pub fn spawn_serve(command: &mut Command) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::{BufRead as _, Read as _};
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("consentry serve starts");
    let mut stderr = child.stderr.take().expect("a piped stderr");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("a piped stdout"))
        .read_line(&mut first)
        .expect("serve prints its address");
    match first.trim().strip_prefix("http://").and_then(|a| a.parse().ok()) {
        Some(addr) => {
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            (child, addr)
        }
        None => {
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            panic!("serve's first line is not its address: {first:?}; stderr: {err}")
        }
    }
}

/// The binary at `bin` with `--data DIR` and no inherited `CONSENTRY_*` settings.
pub fn command_at(bin: &str, data: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--data")
        .arg(data)
        .env_remove("CONSENTRY_DATA")
        .env_remove("CONSENTRY_DATABASE")
        .env_remove("CONSENTRY_SIGNING_KEY");
    c
}

/// Runs `command` with `stdin` as standard input and collects its output.
pub fn run_with_stdin(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command
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

/// Parses a command's JSON output (panicking with the text when it is not JSON).
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
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

/// A roaring bitmap file (a dataset's `members.roaring`, a shard's member bitmap).
pub fn read_bitmap(path: &Path) -> roaring::RoaringTreemap {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    roaring::RoaringTreemap::deserialize_from(&b[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The members whose rows trained shard `i` of the model in `dir`.
pub fn shard_members(dir: &Path, i: u32) -> roaring::RoaringTreemap {
    read_bitmap(&dir.join(format!("shard-{i:03}.members.roaring")))
}

/// The number of shards the model in `dir` lists.
pub fn shard_count(dir: &Path) -> u32 {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    meta["shards"].as_array().unwrap().len() as u32
}

/// Every member of the model in `dir`, over all its shards.
pub fn model_members(dir: &Path) -> roaring::RoaringTreemap {
    (0..shard_count(dir)).map(|i| shard_members(dir, i)).fold(roaring::RoaringTreemap::new(), |a, b| a | b)
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("the copy's directory can be created");
    for e in std::fs::read_dir(from).expect("the directory to copy is readable") {
        let p = e.expect("a directory entry").path();
        let target = to.join(p.file_name().expect("an entry has a name"));
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("a file can be copied");
            // Git keeps no 0600: a secret key checked in as a fixture gets the mode consentry requires of it back.
            #[cfg(unix)]
            if p.extension().is_some_and(|x| x == "key") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).expect("a key's mode is set");
            }
        }
    }
}
