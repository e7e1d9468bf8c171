//! Arbitrary bytes as a dataset's `manifest.json` (`consentry gate verify`, training, the audit): parsing never
//! panics, a manifest that parses round-trips through its writer, and `verify_files` on the fixture's dataset
//! directory with that manifest reports differences instead of panicking, hanging or leaving the directory.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use consentry_gate::{Manifest, verify_files};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::LazyLock;

struct Env {
    _dir: tempfile::TempDir,
    dataset: PathBuf,
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let dir = common::scratch();
    let dataset = dir.path().join("job_recommendations");
    common::copy_dir(&common::fixture().join("datasets/job_recommendations"), &dataset);
    Env { dataset, _dir: dir }
});

fuzz_target!(|data: &[u8]| {
    if let Some(m) = common::round_trip::<Manifest>(data) {
        let _ = m.time_differences(1_800_000_000, Some(1_700_000_000));
        let _ = m.time_differences(i64::MAX, Some(i64::MIN));
        let _ = m.normalized();
    }
    std::fs::write(ENV.dataset.join("manifest.json"), data).expect("write the manifest");
    match verify_files(&ENV.dataset) {
        Ok((_, differences)) => {
            for d in differences {
                let _ = d.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
