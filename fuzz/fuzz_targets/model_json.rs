//! Arbitrary bytes as a model's `model.json` (`consentry recommend`, unlearning, the audit, the registry): parsing
//! never panics and round-trips through its writer; with the fixture model's shard files beside it, reading the
//! privacy claim, the member bitmaps and loading the model for serving report errors instead of panicking,
//! hanging or leaving the directory.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use consentry_learn::model::ModelMeta;
use consentry_learn::train::load_recommender;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::LazyLock;

struct Env {
    _dir: tempfile::TempDir,
    model: PathBuf,
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let dir = common::scratch();
    let model = dir.path().join("job-recs");
    common::copy_dir(&common::fixture().join("models/job-recs"), &model);
    Env { model, _dir: dir }
});

fuzz_target!(|data: &[u8]| {
    let _ = common::round_trip::<ModelMeta>(data);
    std::fs::write(ENV.model.join("model.json"), data).expect("write model.json");
    let dir = &ENV.model;
    let Ok((meta, _hash)) = ModelMeta::read_hashed(dir) else { return };
    if let Ok(claim) = meta.privacy_claim() {
        let _ = claim;
    }
    let _ = meta.privacy_loss("fuzz");
    let _ = meta.excluded(dir);
    let _ = meta.members(dir);
    for i in 0..meta.shards.len().min(4) {
        let _ = meta.shard_bytes(dir, i);
    }
    if let Ok((_, rec)) = load_recommender(dir) {
        let _ = rec;
    }
});
