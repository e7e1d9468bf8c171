//! `consentry gate …` end to end: synth → ledger → gate per purpose → verify → tamper → merge.

mod common;

use common::{consentry, ok, text};
use consentry_app::DataDir;
use std::path::Path;

const PURPOSES: [&str; 3] =
    ["train_ai_system.job_recommendations", "train_ai_system.content_suggestions", "train_ai_system.reply_suggestions"];

/// A synthetic network of `members` and a ledger holding its consent choices.
fn network_with_ledger(members: &str, seed: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&consentry(&data, &["--quiet", "synth", "--members", members, "--seed", seed]));
    ok(&consentry(&data, &["--quiet", "ledger", "init"]));
    let choices = DataDir::new(&data).network_dir().join("consent_choices.parquet");
    ok(&consentry(&data, &["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]));
    (dir, data)
}

#[test]
fn gate_each_purpose_verify_tamper_and_merge() {
    let (dir, data) = network_with_ledger("1500", "5");

    for p in PURPOSES {
        let out = dir.path().join(p);
        let o = ok(&consentry(&data, &["--json", "gate", "--purpose", p, "--out", out.to_str().unwrap()]));
        let v: serde_json::Value = serde_json::from_str(&o).unwrap();
        assert!(v["rows_out"].as_u64().unwrap() > 0, "{p}: {o}");
        assert!(v["rows_out"].as_u64().unwrap() < v["rows_in"].as_u64().unwrap(), "{p}: {o}");
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["purpose"], p);
        assert_eq!(m["shard"]["shards"], 8, "the default shard function");
        assert!(m["ledger"]["checkpoint"]["signature"].is_string());
        // Names, e-mail and phone never pass, in any purpose.
        let cols = m["tables"]["members"]["columns"].to_string();
        for c in ["given_name", "surname", "email", "phone", "birth_date"] {
            assert!(!cols.contains(c), "{p}: {cols}");
        }
        let v = ok(&consentry(&data, &["gate", "verify", out.to_str().unwrap()]));
        assert!(v.starts_with("ok:"), "{v}");
    }

    // Tampering with a data file is found (exit 1) and named.
    let ds = dir.path().join(PURPOSES[1]);
    let f = ds.join("posts/part-00000.parquet");
    let mut bytes = std::fs::read(&f).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&f, bytes).unwrap();
    let o = consentry(&data, &["gate", "verify", ds.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("posts/part-00000.parquet"), "{}", text(&o.stderr));

    // Bad input: unknown purpose, existing output, bad partition, not a dataset.
    let out = dir.path().join("x");
    let o = consentry(&data, &["gate", "--purpose", "nope", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let o = consentry(&data, &["gate", "--purpose", PURPOSES[0], "--out", ds.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = consentry(&data, &["gate", "--purpose", PURPOSES[0], "--partition", "3/3", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let o = consentry(&data, &["gate", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());

    // Partitions (pinned to one ledger position) merge into what a single run writes.
    let o = consentry(&data, &["gate", "--purpose", PURPOSES[0], "--partition", "0/3", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "--partition without --at is refused");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(PURPOSES[0]).join("manifest.json")).unwrap())
            .unwrap();
    let at = m["ledger"]["position"].as_u64().unwrap().to_string();
    let single = dir.path().join("single");
    ok(&consentry(
        &data,
        &["--quiet", "gate", "--purpose", PURPOSES[0], "--at", &at, "--out", single.to_str().unwrap()],
    ));
    let mut parts = Vec::new();
    for i in 0..3 {
        let p = dir.path().join(format!("part{i}"));
        let part = format!("{i}/3");
        ok(&consentry(
            &data,
            &[
                "--quiet",
                "gate",
                "--purpose",
                PURPOSES[0],
                "--at",
                &at,
                "--partition",
                &part,
                "--out",
                p.to_str().unwrap(),
            ],
        ));
        parts.push(p.to_str().unwrap().to_string());
    }
    let merged = dir.path().join("merged");
    let mut args = vec!["--quiet", "gate", "merge"];
    args.extend(parts.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap()]);
    ok(&consentry(&data, &args));
    ok(&consentry(&data, &["gate", "verify", merged.to_str().unwrap()]));
    let read = |d: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).unwrap()).unwrap();
        v["created"] = 0.into();
        v["ledger"]["checkpoint"] = serde_json::Value::Null;
        v
    };
    assert_eq!(read(&merged), read(&single));
}

#[test]
fn gate_sizes_the_shard_function_for_a_deadline() {
    let (dir, data) = network_with_ledger("600", "9");
    let out = dir.path().join("ds");
    let out_s = out.to_str().unwrap();
    // Refused before anything is written: a negative deadline, and a deadline beside an explicit --shards.
    for args in [
        &["gate", "--purpose", PURPOSES[0], "--out", out_s, "--deadline", "-1"][..],
        &["gate", "--purpose", PURPOSES[0], "--out", out_s, "--deadline", "60", "--shards", "4"][..],
    ] {
        let o = consentry(&data, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(!out.exists(), "{args:?}");
    }
    // A few hundred members never need more than the fewest shards, whatever the deadline (the rule's figures at
    // a million members are in its unit test and bench/learn/SHARDS.md).
    ok(&consentry(&data, &["--quiet", "gate", "--purpose", PURPOSES[0], "--out", out_s, "--deadline", "60"]));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["shard"]["shards"], 8);
}

/// A dataset gated from a declaration with `--base` verifies only with the same base; without it the error says
/// which source file is not where it looked and to pass the gate's `--base` (it was a bare "No such file").
#[test]
fn gate_verify_names_a_source_not_under_the_base_and_the_flag_to_pass() {
    let (dir, data) = network_with_ledger("600", "3");
    let decl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry-gate/sources/synthetic.toml");
    let network = DataDir::new(&data).network_dir();
    let out = dir.path().join("jobs");
    let gate = |extra: &[&str]| {
        let mut args = vec!["gate", "--purpose", PURPOSES[0], "--sources", decl.to_str().unwrap()];
        args.extend_from_slice(extra);
        consentry(&data, &args)
    };
    ok(&gate(&["--base", network.to_str().unwrap(), "--out", out.to_str().unwrap()]));
    let o = consentry(&data, &["gate", "verify", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("source file job_activity.parquet of table") && err.contains("--base"), "{err}");
    let v = ok(&consentry(&data, &["gate", "verify", out.to_str().unwrap(), "--base", network.to_str().unwrap()]));
    assert!(v.starts_with("ok:"), "{v}");
}
