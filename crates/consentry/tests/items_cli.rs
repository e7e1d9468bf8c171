//! `consentry train --model items`: any declared interactions table through the same gate, shards, registry,
//! unlearning, audit and serving as the built-in recommenders, and refusals that say what to do.

mod common;

use common::{consentry, json, ok, read_bitmap, text, withdrawal};
use consentry_app::DataDir;
use std::path::{Path, PathBuf};

const JOBS: &str = "train_ai_system.job_recommendations";

fn jobs_dataset(data: &Path) -> PathBuf {
    DataDir::new(data).datasets_dir().join("job_recommendations")
}

/// `train --model items` on the jobs dataset with `args` after the common ones.
fn train_items(data: &Path, args: &[&str]) -> std::process::Output {
    let ds = jobs_dataset(data);
    let mut all = vec!["--json", "train", "--model", "items", "--dataset", ds.to_str().unwrap()];
    all.extend_from_slice(args);
    consentry(data, &all)
}

/// Asserts a refusal with exit code 2 whose message contains every needle.
fn refused(o: &std::process::Output, needles: &[&str]) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
}

fn shard_bytes(dir: &Path, i: u32) -> Vec<u8> {
    std::fs::read(dir.join(format!("shard-{i:03}.safetensors"))).unwrap()
}

#[test]
fn an_items_model_trains_serves_unlearns_and_passes_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&consentry(&data, &["--quiet", "demo", "--members", "2000", "--seed", "11"]));
    let model = DataDir::new(&data).models_dir().join("items-job_activity");

    let o = ok(&train_items(&data, &["--table", "job_activity", "--item-column", "job_id", "--time-column", "at"]));
    let meta = json(&o);
    assert_eq!(meta["kind"], "items");
    assert_eq!(meta["purpose"], JOBS);
    let spec = &meta["hyper"]["items"];
    assert_eq!(spec["table"], "job_activity");
    assert_eq!(spec["member_column"], "member_id", "the member column is resolved and recorded: {spec}");
    assert_eq!(spec["item_column"], "job_id");
    assert_eq!(spec["time_column"], "at");
    // It learns: well above popularity on the held-out split.
    let (m, p) = (&meta["metrics"]["model"], &meta["metrics"]["popularity"]);
    assert!(
        m["recall_at_20"].as_f64().unwrap() > 1.3 * p["recall_at_20"].as_f64().unwrap(),
        "items model vs popularity: {}",
        meta["metrics"]
    );
    let shards = meta["shards"].as_array().unwrap().len() as u32;
    assert_eq!(shards, 8);

    // Served to a member of its training set.
    let members = read_bitmap(&model.join("shard-003.members.roaring"));
    let member = members.min().unwrap();
    let r = json(&ok(&consentry(
        &data,
        &["--json", "recommend", "--model", model.to_str().unwrap(), "--member", &member.to_string(), "--k", "5"],
    )));
    assert_eq!(r["model"], "items");
    assert_eq!(r["items"].as_array().unwrap().len(), 5, "{r}");

    // The member withdraws; one unlearning pass retrains exactly the shards holding someone it removes (the demo's
    // earlier withdrawals are still in its dataset, so they leave this new model in the same pass) and copies the rest.
    // (The worker deletes a superseded version's shard weights: keep v1's first.)
    let v1: Vec<Vec<u8>> = (0..shards).map(|i| shard_bytes(&model, i)).collect();
    ok(&consentry(&data, &withdrawal(&member.to_string(), JOBS, "ui")));
    ok(&consentry(&data, &["--quiet", "unlearn"]));
    let v2 = DataDir::new(&data).models_dir().join("items-job_activity.v2");
    let next: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v2.join("model.json")).unwrap()).unwrap();
    assert_eq!(next["hyper"]["items"], *spec, "unlearning replays the recorded table and columns");
    let excluded = read_bitmap(&v2.join("excluded.roaring"));
    assert!(excluded.contains(member));
    let affected: Vec<u32> = (0..shards)
        .filter(|i| {
            let before = read_bitmap(&model.join(format!("shard-{i:03}.members.roaring")));
            !(before & &excluded).is_empty()
        })
        .collect();
    assert!(affected.contains(&3) && (affected.len() as u32) < shards, "{affected:?}");
    let retrained: Vec<u32> = serde_json::from_value(next["unlearning"]["retrained_shards"].clone()).unwrap();
    assert_eq!(retrained, affected, "only the shards that held a removed member are retrained");
    for i in 0..shards {
        let after = read_bitmap(&v2.join(format!("shard-{i:03}.members.roaring")));
        assert!((after & &excluded).is_empty(), "shard {i} still holds a removed member");
        if !affected.contains(&i) {
            assert_eq!(v1[i as usize], shard_bytes(&v2, i), "shard {i} is copied unchanged");
        }
    }
    assert_ne!(v1[3], shard_bytes(&v2, 3));
    assert!(!model.join("shard-003.safetensors").exists(), "the superseded version's weights are deleted");
    // The served version moved on.
    let o = consentry(&data, &["recommend", "--model", model.to_str().unwrap(), "--member", &member.to_string()]);
    assert_eq!(o.status.code(), Some(2), "the superseded version is not served: {}", text(&o.stderr));
    let o = consentry(&data, &["recommend", "--model", v2.to_str().unwrap(), "--member", &member.to_string()]);
    assert!(text(&o.stderr).contains("nothing is personalised for them"), "{}", text(&o.stderr));
    let other = members.iter().find(|&m| m != member).unwrap().to_string();
    ok(&consentry(&data, &["--quiet", "recommend", "--model", v2.to_str().unwrap(), "--member", &other]));

    // String item ids: trained as keyed hashes, served with their strings (read from the dataset the model names).
    let strings = dir.path().join("industries");
    ok(&train_items(
        &data,
        &["--no-register", "--out", strings.to_str().unwrap(), "--table", "members", "--item-column", "industry"],
    ));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(strings.join("model.json")).unwrap()).unwrap();
    assert_eq!(meta["hyper"]["items"]["string_ids"], true);
    let r = json(&ok(&consentry(
        &data,
        &[
            "--json",
            "recommend",
            "--model",
            strings.to_str().unwrap(),
            "--member",
            &other,
            "--k",
            "3",
            "--unregistered",
        ],
    )));
    let names: Vec<&str> = r["items"].as_array().unwrap().iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names.len(), 3, "every item is named: {r}");
    assert!(names.iter().all(|n| !n.is_empty() && n.parse::<u64>().is_err()), "{names:?}");

    // The lineage registry and the audit know it like the others.
    let lin = json(&ok(&consentry(&data, &["--json", "lineage", "member", &member.to_string()])));
    assert!(lin.to_string().contains("items"), "{lin}");
    let a = consentry(&data, &["--json", "audit"]);
    assert_eq!(a.status.code(), Some(0), "{}{}", text(&a.stdout), text(&a.stderr));
}

#[test]
fn bad_items_requests_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&consentry(&data, &["--quiet", "demo", "--members", "600", "--seed", "5"]));
    let out = dir.path().join("m");
    let o = out.to_str().unwrap();
    // An unknown table: the dataset's tables are listed.
    refused(
        &train_items(&data, &["--out", o, "--table", "job_views", "--item-column", "job_id"]),
        &["no table `job_views`", "job_activity, jobs, members"],
    );
    // A missing column, and one the purpose does not declare: the columns the dataset holds are listed.
    refused(
        &train_items(&data, &["--out", o, "--table", "job_activity", "--item-column", "job"]),
        &["has no such column", "job_id, action, at"],
    );
    refused(
        &train_items(&data, &["--out", o, "--table", "members", "--item-column", "given_name"]),
        &["does not declare its category", "industry"],
    );
    // Wrong types: the accepted ones are named.
    refused(
        &train_items(
            &data,
            &["--out", o, "--table", "job_activity", "--item-column", "job_id", "--weight-column", "action"],
        ),
        &["a weight column must hold a number"],
    );
    refused(
        &train_items(
            &data,
            &["--out", o, "--table", "job_activity", "--item-column", "job_id", "--time-column", "action"],
        ),
        &["a time column must hold a timestamp or a date"],
    );
    refused(
        &train_items(&data, &["--out", o, "--table", "members", "--item-column", "skills"]),
        &["an item column must hold integer or string ids"],
    );
    // A member column that is not the table's declared one; a member id as the item.
    refused(
        &train_items(
            &data,
            &["--out", o, "--table", "job_activity", "--item-column", "at", "--member-column", "job_id"],
        ),
        &["not a member-id column", "member_id", "--member-column"],
    );
    refused(
        &train_items(&data, &["--out", o, "--table", "job_activity", "--item-column", "member_id"]),
        &["is a member-id column", "must not be members"],
    );
    // A column holding members' free text never becomes an item.
    let content = DataDir::new(&data).datasets_dir().join("content_suggestions");
    refused(
        &consentry(
            &data,
            &[
                "train",
                "--model",
                "items",
                "--dataset",
                content.to_str().unwrap(),
                "--out",
                o,
                "--table",
                "posts",
                "--item-column",
                "text",
            ],
        ),
        &["free text", "post_id"],
    );
    // A table with no rows for anyone (a dataset cut at the log's second entry, before almost any grant).
    let empty = dir.path().join("empty");
    ok(&consentry(&data, &["--quiet", "gate", "--purpose", JOBS, "--at", "2", "--out", empty.to_str().unwrap()]));
    refused(
        &consentry(
            &data,
            &[
                "train",
                "--model",
                "items",
                "--dataset",
                empty.to_str().unwrap(),
                "--out",
                o,
                "--table",
                "job_activity",
                "--item-column",
                "job_id",
            ],
        ),
        &["holds no interactions", "gate again"],
    );
    // Flags that do not go together, and a missing dataset.
    refused(
        &consentry(&data, &["train", "--model", "job-recs", "--out", o, "--table", "job_activity"]),
        &["--model items"],
    );
    refused(
        &consentry(&data, &["train", "--model", "items", "--table", "job_activity", "--item-column", "job_id"]),
        &["--dataset"],
    );
    assert!(!out.exists(), "no refusal leaves a model behind");
}
