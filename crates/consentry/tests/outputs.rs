//! Writing where the user said: every command that writes a file the user names writes a regular
//! (or missing) file atomically, writes straight through to a device or a named pipe (which stay
//! what they were), follows a symbolic link (which stays a link), and refuses a directory.
//! Commands that write a directory of their own refuse any path where something already stands.

mod common;

use common::{consentry, ok, text};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

const JOBS: &str = "train_ai_system.job_recommendations";

/// A small ledger with a checkpoint, shared by every test in this file (read-only for them).
fn world() -> &'static (PathBuf, PathBuf) {
    static DIR: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("outputs-world");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let (data, net) = (dir.join("data"), dir.join("net"));
        ok(&consentry(&data, &["--quiet", "synth", "--members", "300", "--seed", "5", "--out", net.to_str().unwrap()]));
        ok(&consentry(&data, &["--quiet", "ledger", "init"]));
        let choices = net.join("consent_choices.parquet");
        ok(&consentry(&data, &["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]));
        ok(&consentry(&data, &["--quiet", "ledger", "checkpoint"]));
        let text_file = dir.join("in.txt");
        std::fs::write(&text_file, "Write to jane.doe@example.com or call +1 415 555 0100.\n").unwrap();
        (data, text_file)
    })
}

/// One command that writes a file: its arguments with `OUT` standing for the output path.
struct FileCommand {
    name: &'static str,
    args: Vec<String>,
}

fn file_commands() -> Vec<FileCommand> {
    let (_, input) = world();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        FileCommand { name: "redact -o", args: s(&["redact", input.to_str().unwrap(), "-o", "OUT"]) },
        FileCommand {
            name: "ledger export-snapshot --out",
            // At a fixed position: "now" would differ by a second between the runs the test compares.
            args: s(&["ledger", "export-snapshot", "--purpose", JOBS, "--at", "500", "--out", "OUT"]),
        },
        FileCommand { name: "ledger receipt --out", args: s(&["ledger", "receipt", "--event", "3", "--out", "OUT"]) },
    ]
}

fn run(cmd: &FileCommand, out: &Path) -> Output {
    let (data, _) = world();
    let args: Vec<&str> =
        cmd.args.iter().map(|a| if a == "OUT" { out.to_str().unwrap() } else { a.as_str() }).collect();
    let mut all = vec!["--quiet"];
    all.extend(args);
    consentry(data, &all)
}

fn assert_ok(cmd: &FileCommand, o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}: stderr:\n{}", cmd.name, text(&o.stderr));
}

/// Creates a character device (the null device's numbers) when running as root; `false` elsewhere.
fn mknod_null(path: &Path) -> bool {
    matches!(
        std::process::Command::new("mknod").arg(path).args(["c", "1", "3"]).output(),
        Ok(o) if o.status.success()
    )
}

/// Reads a FIFO on another thread; the receiver times out (instead of the test hanging) when no
/// writer ever opens it.
fn read_in_background(fifo: &Path) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || {
        if let Ok(bytes) = std::fs::read(fifo) {
            let _ = tx.send(bytes);
        }
    });
    rx
}

fn mkfifo(path: &Path) {
    assert!(std::process::Command::new("mkfifo").arg(path).status().unwrap().success());
}

#[test]
fn file_outputs_respect_what_stands_at_the_path() {
    for cmd in file_commands() {
        let dir = tempfile::tempdir().unwrap();
        // Missing: written atomically, mode 0640 (member data), nothing left beside it.
        let reference = dir.path().join("reference");
        assert_ok(&cmd, &run(&cmd, &reference));
        let expected = std::fs::read(&reference).unwrap();
        assert!(!expected.is_empty(), "{}", cmd.name);
        assert_eq!(std::fs::metadata(&reference).unwrap().permissions().mode() & 0o777, 0o640, "{}", cmd.name);

        // Regular: replaced whole.
        let regular = dir.path().join("regular");
        std::fs::write(&regular, b"old contents that are longer than nothing").unwrap();
        assert_ok(&cmd, &run(&cmd, &regular));
        assert_eq!(std::fs::read(&regular).unwrap(), expected, "{}", cmd.name);

        // A symbolic link: followed; the link stays and its target holds the output.
        let target = dir.path().join("target");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link");
        symlink("target", &link).unwrap();
        assert_ok(&cmd, &run(&cmd, &link));
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "{}", cmd.name);
        assert_eq!(std::fs::read(&target).unwrap(), expected, "{}", cmd.name);

        // A FIFO: written through; it stays a FIFO and the reader gets the bytes.
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let reader = read_in_background(&fifo);
        assert_ok(&cmd, &run(&cmd, &fifo));
        let got = reader.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(got.ok(), Some(expected.clone()), "{}: the pipe's reader got nothing", cmd.name);
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "{}", cmd.name);

        // A character device: written through; it stays the same device.
        let dev = dir.path().join("null");
        if mknod_null(&dev) {
            let rdev = std::fs::symlink_metadata(&dev).unwrap().rdev();
            assert_ok(&cmd, &run(&cmd, &dev));
            let meta = std::fs::symlink_metadata(&dev).unwrap();
            assert!(meta.file_type().is_char_device() && meta.rdev() == rdev, "{}", cmd.name);
        } else {
            eprintln!("skipped the device case: mknod needs root");
        }

        // A directory: refused as bad input, left alone.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let o = run(&cmd, &sub);
        assert_eq!(o.status.code(), Some(2), "{}: {}", cmd.name, text(&o.stderr));
        assert!(text(&o.stderr).contains("is a directory"), "{}: {}", cmd.name, text(&o.stderr));
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 0, "{}", cmd.name);

        // Nothing but what the cases made is left in the directory (no temporary files).
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        names.sort();
        let mut made = vec!["fifo", "link", "reference", "regular", "sub", "target"];
        if dev.exists() {
            made.push("null");
            made.sort();
        }
        assert_eq!(names, made, "{}", cmd.name);
    }
}

#[test]
fn a_link_loop_is_bad_input_and_no_follow_refuses_a_link() {
    let cmd = &file_commands()[0];
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    symlink(&b, &a).unwrap();
    symlink(&a, &b).unwrap();
    let o = run(cmd, &a);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("loops"), "{}", text(&o.stderr));
    assert!(std::fs::symlink_metadata(&a).unwrap().file_type().is_symlink());

    // --no-follow: a link named as the output is refused, and stays as it was.
    let target = dir.path().join("target");
    std::fs::write(&target, b"kept").unwrap();
    let link = dir.path().join("link");
    symlink(&target, &link).unwrap();
    let (data, input) = world();
    let o =
        consentry(data, &["--quiet", "--no-follow", "redact", input.to_str().unwrap(), "-o", link.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("is a symbolic link"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&target).unwrap(), b"kept");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
}

#[test]
fn directory_outputs_refuse_anything_already_there_before_any_work() {
    let (data, _) = world();
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("no-such-dataset");
    let commands: Vec<(&str, Vec<&str>)> = vec![
        ("gate --out", vec!["gate", "--purpose", JOBS, "--out", "OUT"]),
        ("train --out", vec!["train", "--dataset", dataset.to_str().unwrap(), "--model", "job-recs", "--out", "OUT"]),
        ("audit export --out", vec!["audit", "export", "--out", "OUT"]),
    ];
    let file = dir.path().join("file");
    std::fs::write(&file, b"mine").unwrap();
    let existing_dir = dir.path().join("dir");
    std::fs::create_dir(&existing_dir).unwrap();
    let dangling = dir.path().join("dangling");
    symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let dev = dir.path().join("null");
    let mut targets = vec![&file, &existing_dir, &dangling, &fifo];
    if mknod_null(&dev) {
        targets.push(&dev);
    }
    for (name, args) in &commands {
        for target in &targets {
            let before = std::fs::symlink_metadata(target).unwrap();
            let all: Vec<&str> = args.iter().map(|a| if *a == "OUT" { target.to_str().unwrap() } else { a }).collect();
            let o = consentry(data, &all);
            assert_eq!(o.status.code(), Some(2), "{name} {}: {}", target.display(), text(&o.stderr));
            let err = text(&o.stderr);
            assert!(err.contains("already exists") && err.contains(target.to_str().unwrap()), "{name}: {err}");
            let after = std::fs::symlink_metadata(target).unwrap();
            assert_eq!((before.file_type(), before.ino(), before.len()), (after.file_type(), after.ino(), after.len()));
        }
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
    assert!(!dir.path().join("nowhere").exists(), "a dangling link's target is never created");
}
