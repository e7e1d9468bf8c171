//! The unlearning swap: a withdrawn member's shard retrained into a new version, swapped in by one registry
//! transaction, the superseded weights deleted, the completion put in the outbox.

use crate::common::{consentry, json, ok, shard_members, text};
use crate::{Expect, assert_fired, assert_recovered, data_dir, expect, fault, run_faulty};
use consentry_app::DataDir;
use std::path::{Path, PathBuf};

/// The live job-recs model: its id and directory.
fn live(data: &Path) -> (String, PathBuf) {
    let models = json(&ok(&consentry(data, &["--json", "lineage", "models"])));
    let live: Vec<_> =
        models.as_array().unwrap().iter().filter(|m| m["status"] == "live" && m["kind"] == "job-recs").collect();
    assert_eq!(live.len(), 1, "exactly one live version: {models}");
    (live[0]["id"].as_str().unwrap().to_string(), data.join(live[0]["dir"].as_str().unwrap()))
}

fn unlearn(point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    let v1 = DataDir::new(&data).model_dir("job-recs");
    ok(&consentry(&data, &["--quiet", "lineage", "register-model", v1.to_str().unwrap()]));
    let (old_id, _) = live(&data);
    let member = shard_members(&v1, 0).min().unwrap();
    ok(&consentry(&data, &crate::common::withdrawal(&member.to_string(), crate::JOBS, "ui")));
    let outbox_before = outbox(&data);
    let o = run_faulty(&data, point, action, &["--quiet", "unlearn"]);
    assert_fired(&o, point, action);
    let (id, _) = live(&data);
    // The completion notice commits with the swap: there exactly when the new version is live.
    match expect(point) {
        Expect::Old => assert_eq!((id == old_id, outbox(&data) - outbox_before), (true, 0), "{point}={action}"),
        Expect::New => assert_eq!((id != old_id, outbox(&data) - outbox_before), (true, 1), "{point}={action}"),
    }
    // The rerun finishes the job: the member is in no shard of the live version, the old weights are gone, the
    // completion is in the outbox once.
    let r = consentry(&data, &["--quiet", "unlearn"]);
    assert!(r.status.success(), "{point}={action}: the rerun: {}", text(&r.stderr));
    let (id, dir) = live(&data);
    assert_ne!(id, old_id, "{point}={action}");
    let shards = crate::common::shard_count(&dir);
    assert!((0..shards).all(|i| !shard_members(&dir, i).contains(member)), "{point}={action}");
    assert!(!v1.join("shard-000.safetensors").exists(), "{point}={action}: the superseded weights are still there");
    assert_eq!(outbox(&data) - outbox_before, 1, "{point}={action}: the completion notice");
    assert_recovered(&data, &format!("{point}={action}"));
}

/// `unlearning.completed` rows in the outbox.
fn outbox(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(DataDir::new(data).ledger_db()).unwrap();
    db.query_row("SELECT COUNT(*) FROM outbox WHERE kind = 'unlearning.completed'", [], |r| r.get(0)).unwrap()
}

fault!(swap_before_commit, "unlearn::swap::before_commit", unlearn, ["io", "crash"]);

fault!(swap_after_commit, "unlearn::swap::after_commit", unlearn, ["crash"]);
