//! What a careless operator runs into around the gate: relative and moved data directories, a file given as
//! the data directory, inputs under other names, unreadable Parquet, a policy with a huge line.

mod common;

use common::{command, consentry, ok, text};
use consentry_app::DataDir;
use std::path::Path;

const JOBS: &str = "train_ai_system.job_recommendations";

#[test]
fn manifests_verify_from_anywhere_and_after_the_data_directory_moves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&consentry(&data, &["--quiet", "synth", "--members", "400", "--seed", "3"]));
    ok(&consentry(&data, &["--quiet", "ledger", "init"]));
    // Inputs under any name: the columns say what a table is.
    let (choices, members) = (dir.path().join("choices-2026-11.parquet"), dir.path().join("people.parquet"));
    std::fs::copy(DataDir::new(&data).network_dir().join("consent_choices.parquet"), &choices).unwrap();
    std::fs::copy(DataDir::new(&data).network_dir().join("members.parquet"), &members).unwrap();
    let (c, m) = (choices.to_str().unwrap(), members.to_str().unwrap());
    ok(&consentry(&data, &["--quiet", "ledger", "import", "--choices", c, "--members", m]));

    // Gate with a relative data directory, once with the built-in declaration, once with a file inside DATA.
    std::fs::write(DataDir::new(&data).network_dir().join("sources.toml"), consentry_gate::sources::SYNTHETIC).unwrap();
    let rel = |args: &[&str]| command(Path::new("data")).current_dir(dir.path()).args(args).output().unwrap();
    ok(&rel(&["--quiet", "gate", "--purpose", JOBS, "--out", "data/datasets/builtin"]));
    ok(&rel(&[
        "--quiet",
        "gate",
        "--purpose",
        JOBS,
        "--sources",
        "data/network/sources.toml",
        "--out",
        "data/datasets/file",
    ]));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(DataDir::new(&data).datasets_dir().join("file/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["sources"]["declaration"], "network/sources.toml");
    let paths: Vec<&str> =
        manifest["sources"]["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"job_activity.parquet") && paths.iter().all(|p| !p.contains('/')), "{paths:?}");

    // Move the data directory and verify from elsewhere, by absolute path.
    let moved = dir.path().join("elsewhere/moved");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&data, &moved).unwrap();
    for ds in ["builtin", "file"] {
        let o = command(&moved)
            .current_dir("/")
            .args(["gate", "verify", DataDir::new(&moved).datasets_dir().join(ds).to_str().unwrap()])
            .output()
            .unwrap();
        assert!(ok(&o).starts_with("ok:"), "{ds}: {}", text(&o.stderr));
    }
}

#[test]
fn operator_mistakes_get_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // --data naming a regular file.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    for args in [&["ledger", "verify"][..], &["ledger", "init"][..]] {
        let o = consentry(&file, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o.stderr).contains("is a file, not a data directory"), "{args:?}: {}", text(&o.stderr));
    }

    // A Parquet file that is not one: the error names it.
    let data = dir.path().join("data");
    ok(&consentry(&data, &["--quiet", "synth", "--members", "50", "--seed", "1"]));
    ok(&consentry(&data, &["--quiet", "ledger", "init"]));
    let bad = dir.path().join("broken.parquet");
    std::fs::write(&bad, b"PAR1 this is not parquet").unwrap();
    let members = DataDir::new(&data).network_dir().join("members.parquet");
    let o = consentry(
        &data,
        &["ledger", "import", "--choices", bad.to_str().unwrap(), "--members", members.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains(bad.to_str().unwrap()), "{}", text(&o.stderr));

    // A policy whose broken line is 200 KB long: the diagnostic shows an excerpt, not the line.
    let policy = dir.path().join("huge.toml");
    let text_200k = format!(
        "[policy]\nversion = \"1\"\ncontroller = \"C\"\n[categories.\"user.name\"]\ndescription = \"{}\" oops = 1\n",
        "a".repeat(200_000)
    );
    std::fs::write(&policy, text_200k).unwrap();
    let o = consentry(&data, &["policy", "check", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.len() < 5_000, "{} bytes of diagnostics", err.len());
    assert!(err.contains("huge.toml") && err.contains("shown in part"), "{err}");
}
