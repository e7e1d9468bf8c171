//! `consentry train`, `recommend`, `suggest-replies` end to end on a demo data directory.

mod common;

use common::{consentry, ok, text};
use consentry_app::DataDir;
use std::path::Path;

fn shard_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors" || x == "roaring"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn train_recommend_suggest_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The demo gates the three datasets and trains the three models.
    let demo = ok(&consentry(&data, &["--json", "demo", "--members", "4000", "--seed", "3"]));
    let v: serde_json::Value = serde_json::from_str(&demo).unwrap();
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 3, "{demo}");
    let jobs = &models[0];
    assert_eq!(jobs["kind"], "job-recs");
    let m = &jobs["metrics"];
    assert!(
        m["model"]["recall_at_20"].as_f64().unwrap() > 2.0 * m["popularity"]["recall_at_20"].as_f64().unwrap(),
        "{m}"
    );

    // Same data, seed and hyper-parameters: byte-identical shards whatever the thread count.
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let ds = DataDir::new(&data).datasets_dir().join("job_recommendations");
    for (out, threads) in [(&a, "1"), (&b, "2")] {
        let mut args = common::train_args(&ds, out).to_vec();
        args.extend(["--threads", threads]);
        ok(&consentry(&data, &args));
    }
    assert_eq!(shard_files(&a), shard_files(&b));
    assert_eq!(shard_files(&a).len(), 16);

    // Recommend for a member of the training set.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("model.json")).unwrap()).unwrap();
    assert_eq!(meta["purpose"], "train_ai_system.job_recommendations");
    let bitmap = std::fs::read(a.join("shard-000.members.roaring")).unwrap();
    let members = roaring::RoaringTreemap::deserialize_from(&bitmap[..]).unwrap();
    let member = members.min().unwrap().to_string();
    let o = ok(&consentry(
        &data,
        &["--json", "recommend", "--model", a.to_str().unwrap(), "--member", &member, "--k", "5"],
    ));
    let r: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(r["items"].as_array().unwrap().len(), 5, "{o}");

    // A member who withdraws is refused at once, by every version, long before unlearning retrains their shard;
    // granting again serves them again.
    const JOBS: &str = "train_ai_system.job_recommendations";
    ok(&consentry(&data, &common::withdrawal(&member, JOBS, "ui")));
    let o = consentry(&data, &["recommend", "--model", a.to_str().unwrap(), "--member", &member]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("nothing is personalised for them"), "{}", text(&o.stderr));
    ok(&consentry(
        &data,
        &["--quiet", "ledger", "append", "--member", &member, "--purpose", JOBS, "--action", "grant"],
    ));
    ok(&consentry(&data, &["--quiet", "recommend", "--model", a.to_str().unwrap(), "--member", &member]));

    // A member outside the training set: a clear error, exit 2.
    let o = consentry(&data, &["recommend", "--model", a.to_str().unwrap(), "--member", "999999999"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("not in this model's training set"), "{}", text(&o.stderr));

    // The demo's withdrawals superseded its first versions: they are not served, and the error names the live one.
    let o = consentry(
        &data,
        &[
            "suggest-replies",
            "--model",
            DataDir::new(&data).models_dir().join("replies").to_str().unwrap(),
            "--text",
            "Hi",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("is superseded") && text(&o.stderr).contains("replies.v2"), "{}", text(&o.stderr));

    // Reply suggestions answer with at most three, one per intent.
    let rm = DataDir::new(&data).models_dir().join("replies.v2");
    let o = ok(&consentry(
        &data,
        &[
            "--json",
            "suggest-replies",
            "--model",
            rm.to_str().unwrap(),
            "--text",
            "Hi! Are you free for a quick call next week about the role?",
        ],
    ));
    let s: serde_json::Value = serde_json::from_str(&o).unwrap();
    let s = s.as_array().unwrap();
    assert!(s.len() <= 3, "{o}");

    // An altered shard file is refused before use.
    let shard = a.join("shard-003.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    let o = consentry(&data, &["recommend", "--model", a.to_str().unwrap(), "--member", &member]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("altered"), "{}", text(&o.stderr));

    // A dataset whose files do not match its manifest is refused, and no model directory appears.
    let part = ds.join("job_activity/part-00000.parquet");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&part, bytes).unwrap();
    let c = dir.path().join("c");
    let o = consentry(
        &data,
        &["train", "--model", "job-recs", "--dataset", ds.to_str().unwrap(), "--out", c.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("does not match the manifest"), "{}", text(&o.stderr));
    assert!(!c.exists());

    // The wrong dataset for the model, and an existing output.
    let cs = DataDir::new(&data).datasets_dir().join("content_suggestions");
    let o = consentry(
        &data,
        &["train", "--model", "job-recs", "--dataset", cs.to_str().unwrap(), "--out", c.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("needs train_ai_system.job_recommendations"), "{}", text(&o.stderr));
    let o = consentry(
        &data,
        &["train", "--model", "content", "--dataset", cs.to_str().unwrap(), "--out", a.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("already exists"), "{}", text(&o.stderr));
}
