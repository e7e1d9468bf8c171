#![allow(dead_code)] // each module uses the part of the toolkit its attacks need
//! The red-team suite: each module attacks Consentry as a hostile insider (write access to the data
//! directory or the database, no signing key) or a careless operator would, one tampering class per
//! module. Every attack must end in one of two ways: the command refuses (exit code 1 or 2 with a
//! message that names the evidence), or `audit` exits 1 naming it. No sequence may end with a
//! non-consented member in a servable model while the audit passes.
//!
//! All attacks start from private copies of one small demo data directory, built once per run.

mod common {
    consentry_test_support::consentry_cli!();
}

use common::{consentry, copy_dir, text};
use consentry_app::DataDir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

/// The purpose every attack aims at unless it says otherwise.
pub const JOBS: &str = "train_ai_system.job_recommendations";

/// One demo for the whole suite; each test works on its own copy under a temporary directory.
pub fn demo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("red_team-demo");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("the previous run's demo can be removed");
        }
        let data = dir.join("data");
        common::ok(&consentry(&data, &["--quiet", "demo", "--members", "2000", "--seed", "11"]));
        data
    })
}

/// A private copy of the demo data directory (the temporary directory lives as long as the guard).
pub fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    copy_dir(demo(), &data);
    (dir, data)
}

/// Runs `consentry --json audit ARGS` and returns its exit code and report.
pub fn audit(data: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["--json", "audit"];
    all.extend_from_slice(args);
    let o = consentry(data, &all);
    let report = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), report)
}

/// Asserts that the online audit fails (exit 1) with a finding of `kind` whose text mentions `needle`.
pub fn audit_finds(data: &Path, kind: &str, needle: &str) -> Value {
    let (code, report) = audit(data, &[]);
    assert_eq!(code, Some(1), "the audit must fail: {report}");
    let found = report["findings"]
        .as_array()
        .map(|fs| fs.iter().any(|f| f["kind"] == kind && f.to_string().contains(needle)))
        .unwrap_or(false);
    assert!(found, "no `{kind}` finding mentioning `{needle}`: {report}");
    report
}

/// Parses a JSON file an attack reads or edits.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("a JSON file")).expect("valid JSON")
}

/// BLAKE3 in hex, as manifests, model files and the registry record it.
pub fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The attacker's own connection to the data directory's ledger.db, with foreign-key checks off (any SQLite
/// client can turn them off).
pub fn ledger_db(data: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(DataDir::new(data).ledger_db()).expect("the demo's ledger.db opens");
    c.pragma_update(None, "foreign_keys", "OFF").expect("pragmas can be set");
    c
}

/// The attack on model files: copies shard `i` (weights and member bitmap) of model directory `from` into `into`
/// and rewrites `into/model.json` so its hashes match the planted files. Returns the new `model.json` bytes.
pub fn plant_shard(from: &Path, into: &Path, i: usize) -> Vec<u8> {
    let (file, members) = (format!("shard-{i:03}.safetensors"), format!("shard-{i:03}.members.roaring"));
    let weights = std::fs::read(from.join(&file)).expect("the source shard");
    let bits = std::fs::read(from.join(&members)).expect("the source bitmap");
    std::fs::write(into.join(&file), &weights).expect("the shard can be planted");
    std::fs::write(into.join(&members), &bits).expect("the bitmap can be planted");
    let mut meta = read_json(&into.join("model.json"));
    let s = &mut meta["shards"][i];
    s["blake3"] = b3(&weights).into();
    s["bytes"] = (weights.len() as u64).into();
    s["members_commitment"] = b3(&bits).into();
    s["members"] = common::read_bitmap(&from.join(&members)).len().into();
    let meta_bytes = serde_json::to_vec_pretty(&meta).expect("model.json serialises");
    std::fs::write(into.join("model.json"), &meta_bytes).expect("model.json can be rewritten");
    meta_bytes
}

/// Trains job-recs on the demo's (pre-withdrawal) dataset without registering it, into `out`.
pub fn train_unregistered(data: &Path, out: &Path) {
    let ds = DataDir::new(data).datasets_dir().join("job_recommendations");
    common::ok(&consentry(
        data,
        &[
            "--quiet",
            "train",
            "--model",
            "job-recs",
            "--no-register",
            "--dataset",
            ds.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
        ],
    ));
}

/// The shard of the model in `dir` whose member bitmap holds `member`.
pub fn shard_holding(dir: &Path, member: u64) -> usize {
    let meta = read_json(&dir.join("model.json"));
    (0..meta["shards"].as_array().expect("utf-8").len())
        .find(|&i| common::read_bitmap(&dir.join(format!("shard-{i:03}.members.roaring"))).contains(member))
        .expect("the member is in one shard")
}

/// A member unlearning removed from the live job-recommendation model (`job-recs.v2`).
pub fn withdrawn_member(data: &Path) -> u64 {
    common::read_bitmap(&DataDir::new(data).models_dir().join("job-recs.v2/excluded.roaring"))
        .min()
        .expect("the demo unlearned someone")
}

/// What the model-file attacks start from: a member unlearning removed from the live job-recommendation
/// model, that model's directory (`job-recs.v2`), a copy of the model as it was before unlearning (same data,
/// options and seed as the demo's first version) trained into `dir/old`, and the shard of that copy holding the
/// member.
pub struct PreUnlearning {
    /// The member unlearning removed.
    pub victim: u64,
    /// The live version.
    pub v2: PathBuf,
    /// The copy trained with the member.
    pub old: PathBuf,
    /// The shard of `old` holding the member.
    pub shard: usize,
}

/// Builds a [`PreUnlearning`] in `dir` from the demo copy `data`.
pub fn pre_unlearning(dir: &Path, data: &Path) -> PreUnlearning {
    let v2 = DataDir::new(data).models_dir().join("job-recs.v2");
    let victim = withdrawn_member(data);
    let old = dir.join("old");
    train_unregistered(data, &old);
    let shard = shard_holding(&old, victim);
    PreUnlearning { victim, v2, old, shard }
}

/// Asserts that a command was refused: exit code 1 or 2 and a message on stderr containing `needle`.
pub fn refused(o: &Output, needle: &str) {
    let code = o.status.code();
    assert!(
        matches!(code, Some(1) | Some(2)),
        "expected a refusal, got {code:?}:\nstdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(text(&o.stderr).contains(needle), "the refusal does not mention `{needle}`:\n{}", text(&o.stderr));
}

// One module per tampering class; each adds itself here.
mod bundle_stream;
mod careless;
mod datadir_tamper;
mod gate_tamper;
mod import;
mod items_tamper;
mod key_rotation;
mod ledger_tamper;
mod model_tamper;
mod outbox_tamper;
mod policy_import;
mod registry_tamper;
mod report_tamper;
mod split_view;
mod token_confusion;
