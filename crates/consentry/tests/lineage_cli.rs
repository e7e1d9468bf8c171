//! `consentry lineage …` and `consentry unlearn` end to end on a small synthetic network (synth → ledger → gate → train): register the
//! job-recommendation model, withdraw members (one by erasure, one by GPC), unlearn, and check that the live
//! model's shard bitmaps no longer hold them, that untouched shards are byte-identical, that lineage says
//! "removed by unlearning", and that bad input and altered files give clear errors. A second test kills the
//! worker with SIGKILL at several moments of a retrain and checks the registry is never left half-swapped.

mod common;

use common::{consentry, json, ok, shard_count as shards, shard_members, text};
use consentry_app::DataDir;
use consentry_learn::model::shard_file;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const JOBS: &str = "train_ai_system.job_recommendations";

/// Two members of the model in different shards.
fn two_members(dir: &Path) -> ((u64, u32), (u64, u32)) {
    let n = shards(dir);
    let mut found = Vec::new();
    for i in 0..n {
        if let Some(m) = shard_members(dir, i).iter().next() {
            found.push((m, i));
        }
        if found.len() == 2 {
            break;
        }
    }
    assert_eq!(found.len(), 2, "the demo model has members in at least two shards");
    (found[0], found[1])
}

fn withdraw(data: &Path, member: u64, source: &str) {
    ok(&consentry(data, &common::withdrawal(&member.to_string(), JOBS, source)));
}

fn live_jobs_models(data: &Path) -> Vec<serde_json::Value> {
    let v = json(&ok(&consentry(data, &["--json", "lineage", "models", "--purpose", JOBS, "--status", "live"])));
    v.as_array().unwrap().iter().filter(|m| m["kind"] == "job-recs").cloned().collect()
}

/// synth → ledger → gate → train: a data directory with the job-recommendation model in `models/job-recs`.
fn setup(root: &Path, members: &str) -> PathBuf {
    let data = root.join("data");
    ok(&consentry(&data, &["--quiet", "synth", "--members", members, "--seed", "5"]));
    ok(&consentry(&data, &["--quiet", "ledger", "init"]));
    let choices = DataDir::new(&data).network_dir().join("consent_choices.parquet");
    ok(&consentry(&data, &["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]));
    let ds = DataDir::new(&data).datasets_dir().join("job_recommendations");
    ok(&consentry(&data, &["--quiet", "gate", "--purpose", JOBS, "--out", ds.to_str().unwrap()]));
    let out = DataDir::new(&data).models_dir().join("job-recs");
    ok(&consentry(
        &data,
        &["--quiet", "train", "--model", "job-recs", "--dataset", ds.to_str().unwrap(), "--out", out.to_str().unwrap()],
    ));
    data
}

#[test]
fn withdrawals_reach_the_live_model_and_lineage_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = setup(dir.path(), "2000");
    let v1_dir = DataDir::new(&data).models_dir().join("job-recs");

    // Register (the dataset comes along from model.json); again is a no-op.
    let reg = json(&ok(&consentry(&data, &["--json", "lineage", "register-model", v1_dir.to_str().unwrap()])));
    let v1 = reg["model"]["id"].as_str().unwrap().to_string();
    assert_eq!(reg["model"]["status"], "live");
    let again = json(&ok(&consentry(&data, &["--json", "lineage", "register-model", v1_dir.to_str().unwrap()])));
    assert_eq!(again["model"]["id"], v1.as_str());
    let lm = json(&ok(&consentry(&data, &["--json", "lineage", "model", &v1[..10]])));
    let counts: u64 = lm["shards"].as_array().unwrap().iter().map(|s| s["members"].as_u64().unwrap()).sum();
    assert_eq!(lm["members"].as_u64().unwrap(), counts);
    assert!(!lm["events"].as_array().unwrap().is_empty(), "{lm}");
    let human = ok(&consentry(&data, &["lineage", "model", &v1]));
    assert!(human.contains("consent event(s)") && human.contains("members"), "{human}");

    let ((a, sa), (b, sb)) = two_members(&v1_dir);
    let before = json(&ok(&consentry(&data, &["--json", "lineage", "member", &a.to_string()])));
    let entry = &before["models"].as_array().unwrap()[0];
    assert_eq!(entry["state"], "live");
    assert_eq!(entry["shard"].as_u64().unwrap(), u64::from(sa));
    assert!(entry["consent_event"].as_u64().is_some(), "{before}");
    assert_eq!(before["datasets"].as_array().unwrap().len(), 1);

    // One erasure, one GPC signal; then the worker.
    let v1_weights: Vec<Vec<u8>> =
        (0..shards(&v1_dir)).map(|i| std::fs::read(v1_dir.join(shard_file(i))).unwrap()).collect();
    withdraw(&data, a, "erasure");
    withdraw(&data, b, "gpc");
    let r = json(&ok(&consentry(&data, &["--json", "unlearn", "--deadline", "3600"])));
    let retrains = r["retrains"].as_array().unwrap();
    assert_eq!(retrains.len(), 1, "one retrain for the one affected model: {r}");
    let x = &retrains[0];
    assert_eq!(x["old_model"], v1.as_str());
    let mut removed: Vec<u64> = x["members"].as_array().unwrap().iter().map(|m| m.as_u64().unwrap()).collect();
    removed.sort_unstable();
    let mut expect = vec![a, b];
    expect.sort_unstable();
    assert_eq!(removed, expect);
    let retrained: Vec<u32> = x["shards"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap() as u32).collect();
    assert!(retrained.contains(&sa) && retrained.contains(&sb), "{x}");
    assert_eq!(r["figures"]["completed"], 2);
    assert_eq!(r["figures"]["within_deadline"], 2);
    assert_eq!(r["figures"]["open"], 0);

    // The live model is the new version, and its shards no longer hold them; untouched shards are the same bytes.
    let live = live_jobs_models(&data);
    assert_eq!(live.len(), 1);
    let v2 = live[0]["id"].as_str().unwrap().to_string();
    assert_eq!(v2, x["new_model"].as_str().unwrap());
    assert_eq!(live[0]["version"], 2);
    assert_eq!(live[0]["supersedes"], v1.as_str());
    let v2_dir = data.join(live[0]["dir"].as_str().unwrap());
    for i in 0..shards(&v2_dir) {
        let m = shard_members(&v2_dir, i);
        assert!(!m.contains(a) && !m.contains(b), "shard {i} still holds a withdrawn member");
        let f = shard_file(i);
        let same = v1_weights[i as usize] == std::fs::read(v2_dir.join(&f)).unwrap();
        assert_eq!(same, !retrained.contains(&i), "shard {i}: retrained {retrained:?}");
        // The superseded version keeps its metadata and bitmaps for lineage, not the weights that hold the data.
        assert!(!v1_dir.join(&f).exists(), "superseded weights {f} were kept");
    }
    assert!(v1_dir.join("model.json").exists() && v1_dir.join("shard-000.members.roaring").exists());

    // Lineage says where the data went and that it was removed.
    let after = json(&ok(&consentry(&data, &["--json", "lineage", "member", &a.to_string()])));
    let models = after["models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "only v1 ever held the member: {after}");
    let state = models[0]["state"].as_str().unwrap();
    assert!(state.starts_with("removed by unlearning at "), "{state}");
    assert_eq!(models[0]["removed_by"], v2.as_str());
    let human = ok(&consentry(&data, &["lineage", "member", &b.to_string()]));
    assert!(human.contains("removed by unlearning"), "{human}");
    let reqs = json(&ok(&consentry(&data, &["--json", "lineage", "requests", "--all"])));
    assert_eq!(reqs.as_array().unwrap().len(), 2);
    assert!(reqs.as_array().unwrap().iter().all(|q| q["status"] == "done" && q["new_model"] == v2.as_str()));

    // Nothing more to do; the human report prints the deadline figures.
    let human = ok(&consentry(&data, &["unlearn"]));
    assert!(human.contains("nothing to retrain") && human.contains("within deadline"), "{human}");
    let w = ok(&consentry(&data, &["--json", "unlearn", "--watch", "--interval", "0.1", "--max-polls", "2"]));
    assert_eq!(w.lines().count(), 2, "one JSON line per pass: {w}");
    // --watch follows the ledger until SIGTERM, then finishes its pass and exits 0. `--batch-window 0`: retrain at
    // once (a watch otherwise batches withdrawals for a quarter of the deadline, here 6 hours).
    let child = common::command(&data)
        .args(["--json", "unlearn", "--watch", "--interval", "0.2", "--batch-window", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let watched =
        shard_members(&data.join(live_jobs_models(&data)[0]["dir"].as_str().unwrap()), sb).iter().next().unwrap();
    withdraw(&data, watched, "api");
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while live_jobs_models(&data)[0]["version"] != 3 && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let passes: Vec<serde_json::Value> = text(&o.stdout).lines().map(json).collect();
    assert!(passes.len() >= 2, "{passes:?}");
    assert!(passes.iter().any(|p| p["retrains"].as_array().unwrap().len() == 1), "{passes:?}");
    assert_eq!(live_jobs_models(&data)[0]["version"], 3, "the watcher retrained v2 without member {watched}");

    // Bad input: unknown member, unknown or malformed model id.
    let o = consentry(&data, &["lineage", "member", "987654321"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("unknown"), "{}", text(&o.stderr));
    let o = consentry(&data, &["lineage", "model", "0123456789abcdef"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no model"), "{}", text(&o.stderr));
    let o = consentry(&data, &["lineage", "model", "xyz"]);
    assert_eq!(o.status.code(), Some(2));
    let o = consentry(&data, &["lineage", "register-model", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));

    // An altered live model: the worker refuses with a clear error and leaves the registry as it was.
    let live_now = live_jobs_models(&data)[0].clone();
    let v3 = live_now["id"].as_str().unwrap();
    let v3_dir = data.join(live_now["dir"].as_str().unwrap());
    let other = shard_members(&v3_dir, (sa + 1) % shards(&v3_dir)).iter().next().unwrap();
    withdraw(&data, other, "ui");
    let meta_path = v3_dir.join("model.json");
    let mut meta = std::fs::read(&meta_path).unwrap();
    meta.push(b'\n');
    std::fs::write(&meta_path, &meta).unwrap();
    let o = consentry(&data, &["unlearn"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("altered"), "{}", text(&o.stderr));
    assert_eq!(live_jobs_models(&data)[0]["id"], v3);
    let open = json(&ok(&consentry(&data, &["--json", "lineage", "requests"])));
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
}

/// SIGKILL at several moments of a retrain: afterwards exactly one version of the model is live, its
/// directory matches the registry, and a rerun finishes the job.
#[test]
fn a_killed_worker_leaves_the_old_or_the_new_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = setup(dir.path(), "2000");
    let v1_dir = DataDir::new(&data).models_dir().join("job-recs");
    ok(&consentry(&data, &["--quiet", "lineage", "register-model", v1_dir.to_str().unwrap()]));
    // How long one uninterrupted retrain takes.
    let ((m0, _), _) = two_members(&v1_dir);
    withdraw(&data, m0, "ui");
    let started = Instant::now();
    ok(&consentry(&data, &["--quiet", "unlearn"]));
    let full = started.elapsed();
    check_consistent(&data);
    let mut members = shard_members(&v1_dir, 0).into_iter().skip(1).step_by(7);

    // Exact crash points: with the new directory written but not registered, the old version stays live and
    // the next run removes the orphan and redoes the work; right after the swap, the new version is live.
    for (point, swapped) in [("unlearn::swap::before_commit", false), ("unlearn::swap::after_commit", true)] {
        let m = members.next().unwrap();
        withdraw(&data, m, "ui");
        let before = check_consistent(&data);
        let o = common::command(&data)
            .args(["--quiet", "unlearn"])
            .env("FAILPOINTS", format!("{point}=return(crash)"))
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: the worker was meant to die");
        let after = check_consistent(&data);
        assert_eq!(after["id"] != before["id"], swapped, "{point}");
        let r = json(&ok(&consentry(&data, &["--json", "unlearn"])));
        if swapped {
            assert!(r["retrains"].as_array().unwrap().is_empty(), "{r}");
        } else {
            assert_eq!(r["retrains"].as_array().unwrap().len(), 1, "{r}");
            assert_eq!(r["orphans_removed"].as_array().unwrap().len(), 1, "{r}");
        }
        let live = check_consistent(&data);
        let live_dir = data.join(live["dir"].as_str().unwrap());
        assert!((0..shards(&live_dir)).all(|i| !shard_members(&live_dir, i).contains(m)));
    }

    for k in 0..6u32 {
        let m = members.next().unwrap();
        withdraw(&data, m, "ui");
        // Spread the kills over the retrain (including past its end: a completed run must stay completed).
        let wait = full.mul_f64(f64::from(k) / 5.0 * 1.2);
        let mut child = common::command(&data)
            .args(["--quiet", "unlearn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(wait);
        let _ = Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
        let _ = child.wait();
        check_consistent(&data);
        // A rerun completes whatever was interrupted.
        ok(&consentry(&data, &["--quiet", "unlearn"]));
        let live = check_consistent(&data);
        let live_dir = data.join(live["dir"].as_str().unwrap());
        for i in 0..shards(&live_dir) {
            assert!(!shard_members(&live_dir, i).contains(m), "member {m} survived in shard {i}");
        }
        let open = json(&ok(&consentry(&data, &["--json", "lineage", "requests"])));
        assert!(open.as_array().unwrap().is_empty(), "{open}");
    }
}

/// Exactly one live job-recs version, whose directory's model.json hashes to its id; no stray versions.
fn check_consistent(data: &Path) -> serde_json::Value {
    let live = live_jobs_models(data);
    assert_eq!(live.len(), 1, "{live:?}");
    let dir = data.join(live[0]["dir"].as_str().unwrap());
    let bytes = std::fs::read(dir.join("model.json")).unwrap();
    assert_eq!(blake3::hash(&bytes).to_hex().to_string(), live[0]["id"].as_str().unwrap());
    live[0].clone()
}
