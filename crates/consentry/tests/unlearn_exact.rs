//! Promise 6, exactly: after a member withdraws, `unlearn` gives shard files byte-identical to a model trained from
//! scratch on the dataset the gate materialises once the withdrawal is in the ledger — for each of the three
//! models and an items model — and every shard whose inputs did not change is the old file, untouched. Then
//! empirically: a membership-inference attack on the job-recommendation model cannot tell unlearned members from
//! never-seen ones.

mod common;

use common::{consentry, model_members, ok, read_bitmap, shard_members as members_of};
use consentry_app::DataDir;
use consentry_learn::model::{ModelMeta, shard_file};
use consentry_learn::train::{self, ModelKind, TrainOptions};
use roaring::RoaringTreemap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One demo data directory for every test here (the tests only add to it: new ledger events, new directories).
fn demo() -> &'static Path {
    static DEMO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DEMO
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            ok(&consentry(&data, &["--quiet", "demo", "--members", "4000", "--seed", "3"]));
            (dir, data)
        })
        .1
}

fn shard_bytes(dir: &Path, shards: u32) -> Vec<Vec<u8>> {
    (0..shards).map(|i| std::fs::read(dir.join(shard_file(i))).unwrap()).collect()
}

#[test]
fn unlearning_equals_retraining_without_the_member_for_all_three_models() {
    let data = demo();
    let dir = tempfile::tempdir().unwrap();
    // The three features, and an items model over the job activity table (named `items`).
    let mut items = TrainOptions::new(ModelKind::Items);
    let mut spec = consentry_learn::items::ItemsSpec::new("job_activity", "job_id");
    spec.time_column = Some("at".into());
    items.items = Some(spec);
    let runs = [
        (TrainOptions::new(ModelKind::JobRecs), ModelKind::JobRecs.purpose()),
        (TrainOptions::new(ModelKind::Content), ModelKind::Content.purpose()),
        (TrainOptions::new(ModelKind::Replies), ModelKind::Replies.purpose()),
        (items, ModelKind::JobRecs.purpose()),
    ];
    for (opts, purpose) in runs {
        let kind = opts.kind;
        // The demo's datasets are evaluated on the synthetic world's date; `consentry gate` evaluates now. So gate
        // and train afresh now, withdraw, and gate again: the only difference is then the withdrawal.
        let dataset = dir.path().join(format!("dataset-{}", kind.name()));
        ok(&consentry(data, &["--quiet", "gate", "--purpose", purpose, "--out", dataset.to_str().unwrap()]));
        let model = dir.path().join(format!("model-{}", kind.name()));
        train::train(&dataset, &model, &opts, &|_| {}).unwrap();
        let meta = ModelMeta::read(&model).unwrap();
        let shards = meta.shard_function.shards;
        // The victim: the smallest member of the first non-empty shard.
        let (victim_shard, victim) = (0..shards)
            .find_map(|i| members_of(&model, i).min().map(|m| (i, m)))
            .unwrap_or_else(|| panic!("{}: no shard has members", kind.name()));

        ok(&consentry(data, &common::withdrawal(&victim.to_string(), purpose, "ui")));
        // From scratch: the gate at the new ledger position, then the same options and seed.
        let regated = dir.path().join(format!("regated-{}", kind.name()));
        ok(&consentry(data, &["--quiet", "gate", "--purpose", purpose, "--out", regated.to_str().unwrap()]));
        // The gate at the new position lets in the same members but the victim — and, where rows carry two
        // parties (a message and its reply), members whose only rows were with the victim.
        let mut expected = read_bitmap(&dataset.join("members.roaring"));
        expected.remove(victim);
        let got = read_bitmap(&regated.join("members.roaring"));
        let same = if kind == ModelKind::Replies { got.is_subset(&expected) } else { got == expected };
        assert!(
            same,
            "{}: re-gating changed more than the victim: {:?} left, {:?} came in",
            kind.name(),
            (&expected - &got).iter().take(10).collect::<Vec<_>>(),
            (&got - &expected).iter().take(10).collect::<Vec<_>>()
        );
        let scratch = dir.path().join(format!("scratch-{}", kind.name()));
        train::train(&regated, &scratch, &opts, &|_| {}).unwrap();

        let unlearned = dir.path().join(format!("unlearned-{}", kind.name()));
        let remove: RoaringTreemap = [victim].into_iter().collect();
        let report = train::unlearn(&model, &dataset, &remove, &unlearned, 0, &|_| {}).unwrap();
        assert_eq!(report.removed, vec![victim], "{}", kind.name());
        assert!(report.retrained.contains(&victim_shard), "{}: {:?}", kind.name(), report.retrained);

        let (before, after, fresh) =
            (shard_bytes(&model, shards), shard_bytes(&unlearned, shards), shard_bytes(&scratch, shards));
        for i in 0..shards as usize {
            assert!(after[i] == fresh[i], "{}: shard {i} differs from training from scratch", kind.name());
            if !report.retrained.contains(&(i as u32)) {
                assert!(after[i] == before[i], "{}: untouched shard {i} changed", kind.name());
            }
        }
        if kind != ModelKind::Replies {
            // (A reply ranker learns only from replies in the k-anonymous inventory: a member who wrote none of
            // them leaves its weights as they were, and only the shard's member list changes.)
            assert!(after[victim_shard as usize] != before[victim_shard as usize], "{}", kind.name());
        }
        assert!(!members_of(&unlearned, victim_shard).contains(victim), "{}", kind.name());
        // The new version names what it left out and what it retrained.
        let next = ModelMeta::read(&unlearned).unwrap();
        let u = next.unlearning.as_ref().unwrap();
        assert_eq!(u.excluded, 1);
        assert!(next.excluded(&unlearned).unwrap().contains(victim));
        if kind != ModelKind::Replies {
            // The reply inventory is a k-anonymous aggregate over every shard: one withdrawal may change it, and
            // then every shard is retrained. The recommenders retrain exactly the victim's shard.
            assert_eq!(report.retrained, vec![victim_shard], "{}", kind.name());
        }
    }
}

/// Every member's job activity in the raw network (what an attacker might hold), weighted as the model weighs it.
fn raw_job_activity(data: &Path, weak: f32, strong: f32) -> BTreeMap<u64, Vec<(u64, f32)>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    let mut out: BTreeMap<u64, Vec<(u64, f32)>> = BTreeMap::new();
    let path = DataDir::new(data).network_dir().join("job_activity.parquet");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    for b in reader {
        let b = b.unwrap();
        let m = b.column_by_name("member_id").unwrap().as_primitive::<UInt64Type>();
        let j = b.column_by_name("job_id").unwrap().as_primitive::<UInt64Type>();
        let a = b.column_by_name("action").unwrap();
        let a = arrow_array::cast::as_string_array(a);
        for i in 0..b.num_rows() {
            let w = if a.value(i) == "apply" { strong } else { weak };
            out.entry(m.value(i)).or_default().push((j.value(i), w));
        }
    }
    out
}

#[test]
fn unlearned_members_look_like_never_seen_ones_to_membership_inference() {
    use consentry_learn::mia::{Attack, Separation, separation};
    let data = demo();
    let dir = tempfile::tempdir().unwrap();
    let model = DataDir::new(data).models_dir().join("job-recs");
    let dataset = DataDir::new(data).datasets_dir().join("job_recommendations");
    let meta = ModelMeta::read(&model).unwrap();
    let key = meta.shard_function.key_bytes().expect("a 32-byte shard key");
    let shards = meta.shard_function.shards;
    let shard_of = |m: u64| consentry_gate::manifest::shard_of(&key, shards, m);
    let opts: TrainOptions = serde_json::from_value(meta.hyper.clone()).unwrap();
    let activity = raw_job_activity(data, opts.rec.weak_weight, opts.rec.strong_weight);
    let training = model_members(&model);
    // Three exchangeable groups of consented members, drawn at random: `never` are taken out of the model first
    // (so it is exactly a model that never saw them), `removed` are unlearned afterwards, `kept` stay throughout.
    let mut members: Vec<u64> = activity.keys().copied().filter(|m| training.contains(*m)).collect();
    // A fixed random order: by a hash of the id.
    members.sort_by_key(|m| *blake3::hash(&m.to_le_bytes()).as_bytes());
    assert!(members.len() >= 900, "{} training members with activity", members.len());
    let third = members.len() / 3;
    let (never, rest) = members.split_at(third);
    let (removed, kept) = rest.split_at(third);

    let m0 = dir.path().join("without-never");
    train::unlearn(&model, &dataset, &never.iter().copied().collect(), &m0, 0, &|_| {}).unwrap();
    let m1 = dir.path().join("without-removed-too");
    train::unlearn(&m0, &dataset, &removed.iter().copied().collect(), &m1, 0, &|_| {}).unwrap();

    let separations = |dir: &Path| -> (Separation, Separation) {
        let (_, rec) = train::load_recommender(dir).unwrap();
        let a = Attack::new(rec.shards());
        let scores =
            |who: &[u64]| -> Vec<f64> { who.iter().filter_map(|m| a.score(shard_of(*m), &activity[m])).collect() };
        let n = scores(never);
        (separation(&scores(removed), &n).unwrap(), separation(&scores(kept), &n).unwrap())
    };
    let (removed_before, kept_before) = separations(&m0);
    let (removed_after, kept_after) = separations(&m1);
    eprintln!("membership inference on job recommendations, vs members never seen (AUC [95 % CI], TPR at 1 % FPR):");
    for (what, s) in [
        ("to-be-removed members, before", removed_before),
        ("kept members, before", kept_before),
        ("removed members, after unlearning", removed_after),
        ("kept members, after", kept_after),
    ] {
        eprintln!(
            "  {what:34} {:.3} [{:.3}, {:.3}]  TPR {:.3}  ({} vs {})",
            s.auc, s.auc_low, s.auc_high, s.tpr_at_1pct_fpr, s.positives, s.negatives
        );
    }
    // The attack sees members the model was trained on...
    assert!(removed_before.auc_low > 0.5, "no membership signal: {removed_before:?}");
    assert!(kept_before.auc_low > 0.5 && kept_after.auc_low > 0.5, "{kept_before:?} {kept_after:?}");
    // ...and once unlearned they are as unknown to the model as members it never saw.
    assert!(removed_after.indistinguishable(), "{removed_after:?}");
}

/// A model that does not record its shards' input digests cannot tell which shards a removal changes: unlearning
/// refuses it, saying to retrain, before reading the dataset's rows.
#[test]
fn unlearning_a_model_without_shard_input_digests_asks_for_a_retrain() {
    let data = demo();
    let dir = tempfile::tempdir().unwrap();
    let (model, dataset) = (
        DataDir::new(data).models_dir().join("job-recs"),
        DataDir::new(data).datasets_dir().join("job_recommendations"),
    );
    let trained: serde_json::Value = serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    let all = trained["shards"].as_array().unwrap().len();
    for keep in [0, all - 1] {
        let mut meta = trained.clone();
        meta["shard_inputs"].as_array_mut().unwrap().truncate(keep);
        let old = dir.path().join(format!("old-{keep}"));
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("model.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
        let remove: RoaringTreemap = [1].into_iter().collect();
        let err = train::unlearn(&old, &dataset, &remove, &dir.path().join(format!("out-{keep}")), 0, &|_| {})
            .expect_err("no digests to compare with");
        let text = err.to_string();
        assert!(matches!(err, consentry_learn::LearnError::Model { .. }), "{text}");
        assert!(text.contains(&format!("for {keep} of its {all} shards")) && text.contains("retrain"), "{text}");
    }
}
