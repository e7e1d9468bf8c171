//! The gate: a dataset's tables, member bitmap and manifest, and the rename that puts the dataset in place.

use crate::common::{consentry, ok, text};
use crate::{Expect, assert_fired, assert_recovered, data_dir, expect, fault, run_faulty};
use consentry_app::DataDir;

/// `gate --out DIR`: after the fault DIR is absent (nothing half-written is ever at the output) or a complete,
/// verifying dataset; the gate run again (or, when the dataset is there, training on it) succeeds.
fn gate(point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    let out = DataDir::new(&data).datasets_dir().join("faulted");
    let args = crate::common::gate_args(crate::JOBS, &out);
    let o = run_faulty(&data, point, action, &args);
    assert_fired(&o, point, action);
    match expect(point) {
        Expect::Old => {
            assert!(!consentry_files::taken(&out), "{point}={action}: something is at the output");
            ok(&consentry(&data, &args));
        }
        Expect::New => {
            let v = consentry(&data, &["gate", "verify", out.to_str().unwrap()]);
            assert!(v.status.success(), "{point}={action}: {}{}", text(&v.stdout), text(&v.stderr));
            // Killed between the rename and the registration: the same run again registers what it left.
            let r = consentry(&data, &args);
            assert!(r.status.success(), "{point}={action}: the rerun: {}", text(&r.stderr));
        }
    }
    // The dataset is usable: registered, so a model trains on it and registers.
    let model = DataDir::new(&data).models_dir().join("on-faulted");
    let t = consentry(&data, &crate::common::train_args(&out, &model));
    assert!(t.status.success(), "{point}={action}: training on the dataset: {}", text(&t.stderr));
    assert_recovered(&data, &format!("{point}={action}"));
}

fault!(table_write, "gate::table::write", gate, ["io", "enospc", "short", "crash"]);
fault!(members_write, "gate::members::write", gate, ["io", "enospc", "short", "crash"]);
fault!(manifest_write, "gate::manifest::write", gate, ["io", "enospc", "short", "crash"]);
fault!(dataset_before_rename, "gate::dataset::before_rename", gate, ["io", "crash"]);
fault!(commit_dir_before_rename, "files::commit_dir::before_rename", gate, ["io", "enospc", "crash"]);
fault!(commit_dir_after_rename, "files::commit_dir::after_rename", gate, ["crash"]);
fault!(dataset_after_rename, "gate::dataset::after_rename", gate, ["crash"]);
