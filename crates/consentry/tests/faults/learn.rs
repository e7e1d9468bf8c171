//! Training: a model's shard files, member bitmaps, `model.json`, the rename, and the registration after it.

use crate::common::{consentry, ok, text};
use crate::{Expect, assert_fired, assert_recovered, data_dir, expect, fault, run_faulty};
use consentry_app::DataDir;

/// `train --out DIR`: after the fault DIR is absent or a complete model; the train run again leaves a
/// registered, live model there.
fn train(point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    let ds = DataDir::new(&data).dataset_dir(crate::JOBS);
    let out = DataDir::new(&data).models_dir().join("faulted");
    let args =
        ["--quiet", "train", "--model", "job-recs", "--dataset", ds.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let o = run_faulty(&data, point, action, &args);
    assert_fired(&o, point, action);
    match expect(point) {
        Expect::Old => assert!(!consentry_files::taken(&out), "{point}={action}: something is at the output"),
        Expect::New => assert!(out.join("model.json").is_file(), "{point}={action}: no model"),
    }
    let r = consentry(&data, &args);
    assert!(r.status.success(), "{point}={action}: the rerun: {}", text(&r.stderr));
    let models = ok(&consentry(&data, &["--json", "lineage", "models"]));
    assert!(models.contains("faulted"), "{point}={action}: not registered: {models}");
    assert_recovered(&data, &format!("{point}={action}"));
}

fault!(shard_write, "learn::model::write_shard", train, ["io", "enospc", "short", "crash"]);
fault!(members_write, "learn::model::write_members", train, ["io", "enospc", "short", "crash"]);
fault!(meta_write, "learn::model::write_meta", train, ["io", "enospc", "short", "crash"]);
fault!(model_before_rename, "learn::model::before_rename", train, ["io", "crash"]);
// Known gap: killed between the model's rename and its registration, `train` run again refuses the taken output
// and names the fix (`consentry lineage register-model DIR`, or remove it) instead of finishing by itself; the
// audit meanwhile reports the unregistered model directory. Old-or-new holds; recovery needs that one command.
#[test]
#[ignore = "known gap: a crash between the model's rename and its registration needs `lineage register-model`"]
fn model_after_rename() {
    train("learn::model::after_rename", "crash");
}

/// What recovery takes today after that crash: the audit flags the unregistered model, the rerun names the fix,
/// and the fix (`lineage register-model`) leaves a clean state.
#[test]
fn model_after_rename_is_finished_by_register_model() {
    let (point, action) = ("learn::model::after_rename", "crash");
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    let ds = DataDir::new(&data).dataset_dir(crate::JOBS);
    let out = DataDir::new(&data).models_dir().join("faulted");
    let args =
        ["--quiet", "train", "--model", "job-recs", "--dataset", ds.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let o = run_faulty(&data, point, action, &args);
    assert_fired(&o, point, action);
    assert!(out.join("model.json").is_file(), "the model was renamed into place");
    let r = consentry(&data, &args);
    assert!(!r.status.success() && text(&r.stderr).contains("lineage register-model"), "{}", text(&r.stderr));
    ok(&consentry(&data, &["--quiet", "lineage", "register-model", out.to_str().unwrap()]));
    assert_recovered(&data, &format!("{point}={action}"));
}
