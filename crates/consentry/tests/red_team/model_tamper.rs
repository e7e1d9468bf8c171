//! Model files, model metadata, unregistered models, interrupted unlearning, links and log rollback: an insider
//! with write access to the data directory (no signing key) tries to get a withdrawn member's data served while
//! the audit passes.

use crate::common::{consentry, ok, read_bitmap, text};
use crate::{
    JOBS, PreUnlearning, audit, audit_finds, fresh, plant_shard, pre_unlearning, read_json, refused,
    train_unregistered, withdrawn_member,
};
use consentry_app::DataDir;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn recommend(data: &Path, model: &Path, member: u64, extra: &[&str]) -> std::process::Output {
    let m = member.to_string();
    let mut args = vec!["recommend", "--model", model.to_str().unwrap(), "--member", m.as_str()];
    args.extend_from_slice(extra);
    consentry(data, &args)
}

#[test]
fn pre_unlearning_shard_copied_into_the_live_version_is_refused_and_audited() {
    let (dir, data) = fresh();
    let PreUnlearning { victim, v2, old, shard: i } = pre_unlearning(dir.path(), &data);
    // Plant the old shard and its bitmap in the live version and "fix" model.json's hashes.
    plant_shard(&old, &v2, i);

    refused(&recommend(&data, &v2, victim, &[]), "model.json");
    let report = audit_finds(&data, "registry_mismatch", "model.json");
    assert!(report.to_string().contains("job-recs.v2"), "{report}");
    // The offline audit of an exported bundle sees it too.
    let bundle = dir.path().join("bundle");
    ok(&consentry(&data, &["--quiet", "audit", "export", "--out", bundle.to_str().unwrap()]));
    let (code, report) = audit(&data, &["--offline", bundle.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.to_string().contains("registry_mismatch"), "{report}");
}

#[test]
fn shard_file_swapped_without_touching_model_json_is_refused_and_audited() {
    let (dir, data) = fresh();
    let PreUnlearning { victim, v2, old, shard: i } = pre_unlearning(dir.path(), &data);
    let file = format!("shard-{i:03}.safetensors");
    std::fs::copy(old.join(&file), v2.join(&file)).unwrap();
    refused(&recommend(&data, &v2, victim, &[]), &file);
    audit_finds(&data, "shard_file_altered", &file);
}

#[test]
fn edited_metrics_or_dp_record_no_longer_match_the_registered_id() {
    for field in ["metrics", "dp"] {
        let (_dir, data) = fresh();
        let v2 = DataDir::new(&data).models_dir().join("job-recs.v2");
        let mut meta = read_json(&v2.join("model.json"));
        meta[field] = serde_json::json!({"bound": "none", "edited": true});
        std::fs::write(v2.join("model.json"), serde_json::to_string_pretty(&meta).unwrap()).unwrap();
        let member = read_bitmap(&v2.join("shard-000.members.roaring")).min().unwrap();
        refused(&recommend(&data, &v2, member, &[]), "model.json");
        refused(&consentry(&data, &["dp", "model", "--model", v2.to_str().unwrap()]), "model.json");
        audit_finds(&data, "registry_mismatch", "model.json");
    }
}

#[test]
fn unregistered_model_in_the_data_directory_is_refused_and_audited() {
    let (dir, data) = fresh();
    let victim = withdrawn_member(&data);
    let exp = DataDir::new(&data).models_dir().join("job-recs-exp");
    train_unregistered(&data, &exp);
    // Not served, not even when asked to: it is inside the data directory.
    refused(&recommend(&data, &exp, victim, &[]), "does not know");
    refused(&recommend(&data, &exp, victim, &["--unregistered"]), "register-model");
    audit_finds(&data, "unregistered_model", "job-recs-exp");

    // A retry into the directory an interrupted run left (renamed, never registered) says what to do.
    let ds = DataDir::new(&data).datasets_dir().join("job_recommendations");
    let o = consentry(
        &data,
        &["train", "--model", "job-recs", "--dataset", ds.to_str().unwrap(), "--out", exp.to_str().unwrap()],
    );
    refused(&o, "register-model");
    assert!(text(&o.stderr).contains("interrupted"), "{}", text(&o.stderr));

    // An experiment outside the data directory is served only when the caller opts in.
    let outside = dir.path().join("experiment");
    train_unregistered(&data, &outside);
    refused(&recommend(&data, &outside, victim, &[]), "--unregistered");
    // Opted in, it serves its members who allow the purpose now, and never the withdrawn victim.
    refused(&recommend(&data, &outside, victim, &["--unregistered"]), "nothing is personalised");
    let served = read_bitmap(&outside.join("shard-000.members.roaring"))
        .iter()
        .filter(|&m| m != victim)
        .take(20)
        .any(|m| recommend(&data, &outside, m, &["--unregistered"]).status.success());
    assert!(served, "an opted-in experiment serves a consenting member");
}

#[test]
fn crash_after_the_swap_is_finished_by_the_next_run_and_audited_meanwhile() {
    let (_dir, data) = fresh();
    let v2 = DataDir::new(&data).models_dir().join("job-recs.v2");
    let member = read_bitmap(&v2.join("shard-000.members.roaring")).min().unwrap();
    ok(&consentry(&data, &crate::common::withdrawal(&member.to_string(), JOBS, "ui")));
    let o = crate::common::command(&data)
        .args(["--quiet", "unlearn"])
        .env("FAILPOINTS", "unlearn::swap::after_commit=return(crash)")
        .output()
        .unwrap();
    assert!(!o.status.success(), "the worker was to abort after the swap");
    assert!(DataDir::new(&data).models_dir().join("job-recs.v3/model.json").exists());
    assert!(v2.join("shard-000.safetensors").exists(), "the crash left the superseded weights");
    let lock = DataDir::new(&data).models_dir().join(".job-recs.v3.lock");
    assert!(lock.exists(), "the crash left its lock");

    audit_finds(&data, "superseded_weights", "job-recs.v2");

    let out = ok(&consentry(&data, &["unlearn"]));
    assert!(out.contains("shard-000.safetensors"), "{out}");
    assert!(!v2.join("shard-000.safetensors").exists());
    assert!(!lock.exists());
    let (code, report) = audit(&data, &[]);
    assert_eq!(code, Some(0), "{report}");
}

/// Runs `consentry ARGS` and fails the test if it takes more than a minute (a walk that loops never ends).
fn finishes(data: &Path, args: &[&str]) -> std::process::Output {
    let mut child = crate::common::command(data)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("`consentry {}` ran for a minute: a walk loops", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn link_loop(dir: &Path) -> PathBuf {
    let a = dir.join("loop-a");
    std::os::unix::fs::symlink(dir.join("loop-b"), &a).unwrap();
    std::os::unix::fs::symlink(&a, dir.join("loop-b")).unwrap();
    a
}

#[test]
fn links_in_bundles_and_datasets_are_refused_promptly() {
    let (dir, data) = fresh();
    let bundle = dir.path().join("bundle");
    ok(&consentry(&data, &["--quiet", "audit", "export", "--out", bundle.to_str().unwrap()]));
    link_loop(&bundle.join("models"));
    let o = finishes(&data, &["audit", "--offline", bundle.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    refused(&o, "symbolic link");

    // A link out to the host's files.
    let host = dir.path().join("bundle2");
    ok(&consentry(&data, &["--quiet", "audit", "export", "--out", host.to_str().unwrap()]));
    std::os::unix::fs::symlink("/usr/share", host.join("share")).unwrap();
    let o = finishes(&data, &["audit", "--offline", host.to_str().unwrap()]);
    refused(&o, "share");

    // A loop inside a dataset: `gate verify` refuses, the audit fails naming it.
    let ds = DataDir::new(&data).datasets_dir().join("job_recommendations");
    link_loop(&ds.join("job_activity"));
    let o = finishes(&data, &["gate", "verify", ds.to_str().unwrap()]);
    refused(&o, "symbolic link");
    let o = finishes(&data, &["--json", "audit"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("symbolic link"), "{}", text(&o.stdout));
}

#[test]
fn a_rolled_back_log_is_reported_and_stops_unlearning() {
    let (_dir, data) = fresh();
    let conn = rusqlite::Connection::open(DataDir::new(&data).ledger_db()).unwrap();
    let len: i64 = conn.query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0)).unwrap();
    let cut = len - 3;
    conn.execute("DELETE FROM events WHERE seq > ?1", [cut]).unwrap();
    conn.execute("DELETE FROM checkpoints WHERE tree_size > ?1", [cut]).unwrap();
    drop(conn);
    // The rolled-back log is consistent in itself; the registry beside it shows the rollback.
    let o = consentry(&data, &["ledger", "verify"]);
    refused(&o, "unlearning cursor");
    assert!(text(&o.stderr).contains(&format!("the log has {cut} events")), "{}", text(&o.stderr));

    audit_finds(&data, "position_beyond_log", "unlearning cursor");
    let o = consentry(&data, &["unlearn"]);
    refused(&o, "cursor");
    assert!(text(&o.stderr).contains(&format!("only {cut} events")), "{}", text(&o.stderr));
}

/// Sets every directory under `root` to `dir_mode` and every file to `file_mode`.
fn chmod_tree(root: &Path, dir_mode: u32, file_mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        let t = std::fs::symlink_metadata(&p).unwrap().file_type();
        if t.is_dir() {
            chmod_tree(&p, dir_mode, file_mode);
        } else if t.is_file() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(file_mode)).unwrap();
        }
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(dir_mode)).unwrap();
}

#[test]
fn a_read_only_copy_is_verified_and_audited_and_a_write_says_it_needs_one() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, data) = fresh();
    chmod_tree(&data, 0o555, 0o444);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Permissions bind only users without CAP_DAC_OVERRIDE: as root, the binary runs as `nobody`.
    let enforced = std::fs::write(data.join("probe"), b"").is_err();
    let _ = std::fs::remove_file(data.join("probe"));
    let run = |args: &[&str]| -> std::process::Output {
        if enforced {
            return consentry(&data, args);
        }
        std::process::Command::new("runuser")
            .args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_consentry"), "--data"])
            .arg(&data)
            .args(args)
            .env_remove("CONSENTRY_DATA")
            .env_remove("CONSENTRY_DATABASE")
            .output()
            .unwrap()
    };
    let o = run(&["--version"]);
    if !o.status.success() {
        eprintln!("skipped: permissions are not enforced and `runuser -u nobody` cannot run the binary");
        chmod_tree(&data, 0o755, 0o644);
        return;
    }
    ok(&run(&["--quiet", "ledger", "verify"]));
    ok(&run(&["--quiet", "audit"]));
    ok(&run(&["lineage", "models"]));
    let member = read_bitmap(&DataDir::new(&data).models_dir().join("job-recs.v2/shard-000.members.roaring"))
        .min()
        .unwrap()
        .to_string();
    ok(&run(&["lineage", "member", &member]));
    assert!(!DataDir::new(&data).ledger_db_files()[1].exists(), "a read-only command wrote beside the database");
    // A command that writes says so.
    // (Here the copy's secret key is readable by everyone, which a command that signs refuses first.)
    let o = run(&crate::common::withdrawal(&member, JOBS, "ui"));
    let err = crate::common::text(&o.stderr);
    assert!(matches!(o.status.code(), Some(1) | Some(2)), "{err}");
    assert!(err.contains("writable data directory") || err.contains("chmod 600"), "{err}");
    chmod_tree(&data, 0o755, 0o644);
}
