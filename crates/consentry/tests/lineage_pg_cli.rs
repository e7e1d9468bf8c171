//! `consentry --database postgres://… lineage …` / `unlearn` against a real, throwaway PostgreSQL server: the
//! registry lives in the ledger's database, and a withdrawal is unlearned from the live model there too.

mod common;
use consentry_test_support::pg as support;

use common::{json, ok, shard_count, shard_members, text};
use consentry_app::DataDir;
use std::path::Path;
use std::process::Output;

const JOBS: &str = "train_ai_system.job_recommendations";

fn consentry(data: &Path, url: &str, args: &[&str]) -> Output {
    common::command(data).arg("--database").arg(url).args(args).output().expect("the consentry binary runs")
}

#[test]
fn unlearning_on_postgres() {
    let Some(db) = support::pg() else { return };
    let url = db.url.as_str();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&common::consentry(&data, &["--quiet", "synth", "--members", "1500", "--seed", "6"]));
    ok(&consentry(&data, url, &["--quiet", "ledger", "init"]));
    let choices = DataDir::new(&data).network_dir().join("consent_choices.parquet");
    ok(&consentry(&data, url, &["--quiet", "ledger", "import", "--choices", choices.to_str().unwrap()]));
    let ds = DataDir::new(&data).datasets_dir().join("jobs");
    ok(&consentry(&data, url, &["--quiet", "gate", "--purpose", JOBS, "--out", ds.to_str().unwrap()]));
    let model = DataDir::new(&data).models_dir().join("job-recs");
    let (ds_s, model_s) = (ds.to_str().unwrap(), model.to_str().unwrap());
    ok(&consentry(&data, url, &["--quiet", "train", "--model", "job-recs", "--dataset", ds_s, "--out", model_s]));

    // The registry is in PostgreSQL: nothing in a SQLite file.
    let d = json(&ok(&consentry(&data, url, &["--json", "lineage", "register-dataset", ds_s])));
    let m = json(&ok(&consentry(&data, url, &["--json", "lineage", "register-model", model_s])));
    assert_eq!(m["model"]["dataset"], d["id"]);
    assert!(!DataDir::new(&data).ledger_db().exists());
    let without_pg = common::consentry(&data, &["lineage", "models"]);
    assert_eq!(without_pg.status.code(), Some(2), "{}", text(&without_pg.stderr));

    let member = shard_members(&model, 0).iter().next().unwrap();
    ok(&consentry(&data, url, &common::withdrawal(&member.to_string(), JOBS, "gpc")));
    let r = json(&ok(&consentry(&data, url, &["--json", "unlearn"])));
    assert_eq!(r["retrains"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["figures"]["within_deadline"], 1);
    let live = json(&ok(&consentry(&data, url, &["--json", "lineage", "models", "--status", "live"])));
    assert_eq!(live.as_array().unwrap().len(), 1);
    assert_eq!(live[0]["version"], 2);
    let live_dir = data.join(live[0]["dir"].as_str().unwrap());
    assert!((0..shard_count(&live_dir)).all(|i| !shard_members(&live_dir, i).contains(member)));
    let l = json(&ok(&consentry(&data, url, &["--json", "lineage", "member", &member.to_string()])));
    assert!(l["models"][0]["state"].as_str().unwrap().starts_with("removed by unlearning at "), "{l}");
    let o = consentry(&data, url, &["lineage", "member", "987654321"]);
    assert_eq!(o.status.code(), Some(2));
}
