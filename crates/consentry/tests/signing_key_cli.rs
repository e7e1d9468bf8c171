//! `--signing-key FILE` / `CONSENTRY_SIGNING_KEY`: the ledger's secret key outside the data directory, for every
//! command that signs (init, import, append, gate, train, register, serve), with nothing secret left in the data
//! directory.

mod common;

use common::{command, consentry, ok, spawn_serve, text};
use consentry_app::DataDir;
use std::path::Path;

const JOBS: &str = "train_ai_system.job_recommendations";

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_signing_key_can_live_outside_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let key = secrets.join("consent-log-signing.key");
    let k = key.to_str().unwrap();
    let with = |args: &[&str]| {
        let mut all = vec!["--signing-key", k];
        all.extend_from_slice(args);
        consentry(&data, &all)
    };
    ok(&with(&["--quiet", "synth", "--members", "300", "--seed", "5"]));
    let init = ok(&with(&["ledger", "init"]));
    assert!(init.contains(k), "init says where the key is: {init}");
    assert!(key.exists() && !DataDir::new(&data).key_file().exists());
    let choices = DataDir::new(&data).network_dir().join("consent_choices.parquet");
    ok(&with(&["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]));
    ok(&with(&common::withdrawal("3", JOBS, "ui")));
    let ds = DataDir::new(&data).datasets_dir().join("jobs");
    let model = DataDir::new(&data).models_dir().join("job-recs");
    common::gate_and_train(with, JOBS, &ds, &model);
    ok(&with(&["--quiet", "lineage", "register-model", model.to_str().unwrap()]));
    // The environment variable works as the flag does.
    let o = command(&data).env("CONSENTRY_SIGNING_KEY", &key).args(["ledger", "checkpoint"]).output().unwrap();
    ok(&o);
    let (mut child, addr) = spawn_serve(command(&data).args(["--signing-key", k, "serve", "--addr", "127.0.0.1:0"]));
    let ready = consentry_test_support::http::request(addr, "GET", "/readyz", &[], b"");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ready.status, 200);
    let audit = with(&["--json", "audit"]);
    assert_eq!(audit.status.code(), Some(0), "{}", text(&audit.stdout));

    // Nothing in the data directory holds the secret.
    let secret = std::fs::read_to_string(&key).unwrap();
    let secret = secret.trim();
    for f in files(&data) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(secret), "{} holds the secret key", f.display());
        assert!(!bytes.windows(32).any(|w| hex::encode(w) == secret), "{} holds the secret key", f.display());
    }
    // Without the flag, a command that signs says where the key was looked for and how to point elsewhere.
    let o = consentry(&data, &["ledger", "checkpoint"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("--signing-key"), "{}", text(&o.stderr));
    // A key file readable by others is refused with the fix.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = with(&["ledger", "checkpoint"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains(&format!("chmod 600 {k}")), "{}", text(&o.stderr));
}
