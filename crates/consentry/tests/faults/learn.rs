//! Training: a model's shard files, member bitmaps, `model.json`, the rename, and the registration after it.

use crate::common::{consentry, ok, text};
use crate::{Expect, assert_fired, assert_recovered, data_dir, expect, fault, run_faulty};
use consentry_app::DataDir;
use std::path::Path;

/// On a copy of the fixture, `train --out models/faulted` with the fail point `point` set to `return(action)`
/// (asserting it fired), then `then(data, out, train_args)`.
fn faulted_train(point: &str, action: &str, then: impl FnOnce(&Path, &Path, &[&str])) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    let ds = DataDir::new(&data).dataset_dir(crate::JOBS);
    let out = DataDir::new(&data).models_dir().join("faulted");
    let args = crate::common::train_args(&ds, &out);
    let o = run_faulty(&data, point, action, &args);
    assert_fired(&o, point, action);
    then(&data, &out, &args);
}

/// `train --out DIR`: after the fault DIR is absent or a complete model; the train run again leaves a
/// registered, live model there.
fn train(point: &str, action: &str) {
    faulted_train(point, action, |data, out, args| {
        match expect(point) {
            Expect::Old => assert!(!consentry_files::taken(out), "{point}={action}: something is at the output"),
            Expect::New => assert!(out.join("model.json").is_file(), "{point}={action}: no model"),
        }
        let r = consentry(data, args);
        assert!(r.status.success(), "{point}={action}: the rerun: {}", text(&r.stderr));
        let models = ok(&consentry(data, &["--json", "lineage", "models"]));
        assert!(models.contains("faulted"), "{point}={action}: not registered: {models}");
        assert_recovered(data, &format!("{point}={action}"));
    });
}

fault!(shard_write, "learn::model::write_shard", train, ["io", "enospc", "short", "crash"]);
fault!(members_write, "learn::model::write_members", train, ["io", "enospc", "short", "crash"]);
fault!(meta_write, "learn::model::write_meta", train, ["io", "enospc", "short", "crash"]);
fault!(model_before_rename, "learn::model::before_rename", train, ["io", "crash"]);
// Killed between the rename and the registration, the same `train` again registers what the run left.
fault!(model_after_rename, "learn::model::after_rename", train, ["crash"]);
fault!(commit_dir_after_rename, "files::commit_dir::after_rename", train, ["crash"]);

/// The same leftover is not taken for a different request: another seed is refused, naming the fix.
#[test]
fn a_leftover_model_of_another_request_is_refused() {
    faulted_train("learn::model::after_rename", "crash", |data, _, args| {
        let mut other = args.to_vec();
        other.extend(["--seed", "12345"]);
        let r = consentry(data, &other);
        assert!(!r.status.success() && text(&r.stderr).contains("lineage register-model"), "{}", text(&r.stderr));
    });
}
