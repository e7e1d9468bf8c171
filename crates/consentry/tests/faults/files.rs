//! `consentry_files`: a file the user names (`Output`), written over an old one. The command is `ledger
//! export-snapshot --out FILE`, whose bytes are the same on every run at the same position.

use crate::common::{consentry, ok};
use crate::{Expect, assert_fired, assert_recovered, data_dir, expect, fault, run_faulty};

fn output(point: &str, action: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), true);
    let out = tmp.path().join("exports").join("snapshot.parquet");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let args =
        ["--quiet", "ledger", "export-snapshot", "--purpose", crate::JOBS, "--at", "1", "--out", out.to_str().unwrap()];
    // The new bytes, from an uninterrupted run; the old ones, a file of the user's.
    ok(&consentry(&data, &args));
    let new = std::fs::read(&out).unwrap();
    std::fs::write(&out, b"the old file").unwrap();
    let o = run_faulty(&data, point, action, &args);
    assert_fired(&o, point, action);
    let now = std::fs::read(&out).unwrap();
    match expect(point) {
        Expect::Old => assert_eq!(now, b"the old file", "{point}={action}: never half a file"),
        Expect::New => assert_eq!(now, new, "{point}={action}"),
    }
    ok(&consentry(&data, &args));
    assert_eq!(std::fs::read(&out).unwrap(), new, "{point}={action}: the rerun");
    let junk = crate::junk(out.parent().unwrap());
    assert!(junk.is_empty(), "{point}={action}: left beside the output: {junk:?}");
    assert_recovered(&data, &format!("{point}={action}"));
}

fault!(output_write, "files::output::write", output, ["io", "enospc", "short", "crash"]);
fault!(commit_before_rename, "files::commit::before_rename", output, ["io", "enospc", "crash"]);
fault!(commit_after_rename, "files::commit::after_rename", output, ["crash"]);
