//! Differentially private job recommendations: member-level clipping, the noise's scale, determinism, the secret
//! key, and the privacy claim a model records.

use consentry_dp::{Conversion, cumulative_loss};
use consentry_gate::manifest::ShardFunction;
use consentry_learn::dp::{self, DpOptions, NoiseKey, PrivacyClaim, ShardNoise};
use consentry_learn::model::{DatasetRef, FORMAT, ModelMeta};
use consentry_learn::recs::{self, Event, RecHyper, RecInput, Recommender, ShardModel};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

mod common;
use common::shard_of;

const SKILLS: usize = 40;

/// Members with one of `SKILLS` skills apply to jobs needing it; every job also names a country.
fn input(members: u64, seed: u64) -> RecInput {
    let skills: Vec<String> = (0..SKILLS).map(|s| s.to_string()).collect();
    common::skill_input(members, seed, &skills, 4, 10)
}

fn hyper() -> RecHyper {
    RecHyper { factors: 8, ..RecHyper::default() }
}

fn key() -> NoiseKey {
    NoiseKey::from_bytes([7; 32])
}

fn noise(key: &NoiseKey, sigma: f64, shard: u32) -> ShardNoise {
    ShardNoise::new(key, sigma, 1.0, 9, shard)
}

fn dp_bytes(inp: &RecInput, shards: u32, threads: usize, key: &NoiseKey) -> Vec<Vec<u8>> {
    let h = hyper();
    let data = recs::split(inp, shards, &shard_of(shards), &h, 0);
    data.iter()
        .enumerate()
        .map(|(i, d)| {
            dp::train_rec_shard(d, &h, &noise(key, 2.0, i as u32), threads).and_then(|m| m.to_bytes()).expect("trains")
        })
        .collect()
}

/// Frobenius norm of the symmetric matrix whose upper triangle (row-major, diagonal included) is `a`.
fn frobenius(a: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    let mut p = 0;
    for i in 0..n {
        for j in i..n {
            s += if i == j { a[p] * a[p] } else { 2.0 * a[p] * a[p] };
            p += 1;
        }
    }
    s.sqrt()
}

/// How much adding `member`'s rows moves the shard's covariance (Frobenius), without noise.
fn contribution(base: &RecInput, member: u64, rows: usize, clip: f64) -> f64 {
    let h = hyper();
    let mut with = base.clone();
    with.profiles.insert(member, vec!["skill:3".into(), "country:de".into()]);
    for e in 0..rows {
        with.events.push(Event {
            member,
            item: 1000 + 3 + (SKILLS as u64) * (e as u64 % 4),
            weight: 4.0,
            at: e as i64,
            target: true,
        });
    }
    let a = recs::split(base, 1, &|_| 0, &RecHyper { holdout: 0.0, ..h.clone() }, 0);
    let b = recs::split(&with, 1, &|_| 0, &RecHyper { holdout: 0.0, ..h.clone() }, 0);
    let (ca, n) = dp::covariance(&a[0], &h, clip);
    let (cb, nb) = dp::covariance(&b[0], &h, clip);
    assert_eq!(n, nb, "the released vocabulary is the catalogue's, whoever joins");
    let diff: Vec<f64> = ca.iter().zip(&cb).map(|(x, y)| y - x).collect();
    frobenius(&diff, n)
}

#[test]
fn a_member_with_1000_rows_contributes_no_more_than_one_with_1() {
    let base = input(200, 1);
    for clip in [1.0, 25.0] {
        let heavy = contribution(&base, 9_001, 1000, clip);
        let light = contribution(&base, 9_002, 1, clip);
        assert!(heavy <= clip * (1.0 + 1e-9), "heavy member moved the statistic by {heavy} > C = {clip}");
        assert!(light <= clip * (1.0 + 1e-9), "light member moved the statistic by {light} > C = {clip}");
        // Both profiles exceed the bound, so both move the statistic by exactly C: rows beyond one buy nothing.
        assert!((heavy - light).abs() <= 1e-9 * clip, "heavy {heavy} vs light {light}");
    }
    // Without an effective bound the heavy member would dominate: the clipping is what holds it.
    let unclipped = contribution(&base, 9_001, 1000, 1e12);
    assert!(unclipped > 1e3, "{unclipped}");
}

#[test]
fn noise_has_the_calibrated_scale_and_is_per_shard() {
    let inp = input(300, 2);
    let h = hyper();
    let d = &recs::split(&inp, 1, &|_| 0, &h, 0)[0];
    let (clean, n) = dp::covariance(d, &h, 1.0);
    let sigma = 3.0;
    let noisy = dp::noisy_covariance(d, &h, &noise(&key(), sigma, 0));
    let z: Vec<f64> = noisy.iter().zip(&clean).map(|(a, b)| a - b).collect();
    assert_eq!(z.len(), n * (n + 1) / 2);
    let mean = z.iter().sum::<f64>() / z.len() as f64;
    let sd = (z.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (z.len() - 1) as f64).sqrt();
    // ~900 draws: the sample sd is within 10 % of σC with overwhelming probability, the mean near 0.
    assert!((sd / sigma - 1.0).abs() < 0.1, "sd {sd} vs σC = {sigma}");
    assert!(mean.abs() < 4.0 * sigma / (z.len() as f64).sqrt(), "mean {mean}");
    // Another shard, or another key, draws other noise; the same key and shard the same.
    let other_shard = dp::noisy_covariance(d, &h, &noise(&key(), sigma, 1));
    let other_key = dp::noisy_covariance(d, &h, &noise(&NoiseKey::from_bytes([8; 32]), sigma, 0));
    assert_ne!(noisy, other_shard);
    assert_ne!(noisy, other_key);
    assert_eq!(noisy, dp::noisy_covariance(d, &h, &noise(&key(), sigma, 0)));
}

#[test]
fn dp_shard_files_do_not_depend_on_threads() {
    let inp = input(300, 3);
    let one = dp_bytes(&inp, 3, 1, &key());
    assert_eq!(one, dp_bytes(&inp, 3, 2, &key()));
    assert_eq!(one, dp_bytes(&inp, 3, 0, &key()));
    assert_ne!(one, dp_bytes(&inp, 3, 1, &NoiseKey::from_bytes([9; 32])), "the noise key must matter");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn dp_shards_ignore_row_order_and_removal_touches_one_shard(seed in 0u64..1000, victim in 1u64..150) {
        let inp = input(150, seed);
        let mut shuffled = inp.clone();
        shuffled.events.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0xabc));
        let a = dp_bytes(&inp, 3, 1, &key());
        prop_assert_eq!(&a, &dp_bytes(&shuffled, 3, 2, &key()));
        let mut without = inp.clone();
        without.events.retain(|e| e.member != victim);
        without.profiles.remove(&victim);
        let b = dp_bytes(&without, 3, 1, &key());
        let own = shard_of(3)(victim) as usize;
        for s in 0..3 {
            if s == own { prop_assert_ne!(&a[s], &b[s]); } else { prop_assert_eq!(&a[s], &b[s]); }
        }
    }
}

#[test]
fn dp_shards_release_only_the_catalogue_and_recommend() {
    let mut inp = input(400, 4);
    // A member with a token no job has, and an interaction with an item outside the catalogue.
    inp.profiles.insert(5_000, vec!["skill:unique-to-one-member".into(), "skill:7".into()]);
    inp.events.push(Event { member: 5_000, item: 77, weight: 1.0, at: 1, target: false });
    // Enough factors for the 41 catalogue tokens.
    let h = RecHyper { factors: 48, ..RecHyper::default() };
    let data = recs::split(&inp, 2, &shard_of(2), &h, 0);
    let models: Vec<ShardModel> = data
        .iter()
        .enumerate()
        .map(|(i, d)| dp::train_rec_shard(d, &h, &noise(&key(), 0.05, i as u32), 1).expect("trains"))
        .collect();
    for m in &models {
        assert!(!m.vocab.iter().any(|t| t.contains("unique")), "a member-only token was released");
        assert!(!m.items.contains(&77), "a non-catalogue item was released");
        assert!(m.item_counts.iter().all(|&c| c == 0), "DP shards release no counts");
        let back = ShardModel::from_bytes(&m.to_bytes().expect("bytes"), "s").expect("parses");
        assert_eq!(&back, m);
    }
    let rec = Recommender::new(models, Box::new(shard_of(2))).expect("builds");
    let top = rec.recommend(7, 10).expect("known member");
    // Member 7 has skill 7; the four skill-7 jobs they have not seen come first.
    let d = &data[shard_of(2)(7) as usize];
    let ui = d.members.binary_search(&7).expect("in shard");
    let seen: Vec<u64> = d.train.row(ui).0.iter().map(|&j| d.items[j as usize]).collect();
    let unseen = (0..4u64).map(|r| 1007 + SKILLS as u64 * r).filter(|j| !seen.contains(j)).count();
    assert!(unseen > 0);
    assert!(top[..unseen].iter().all(|(j, _)| (j - 1000) as usize % SKILLS == 7), "{top:?} (seen {seen:?})");
    assert!(rec.recommend(5_000, 5).is_ok());
}

fn meta_with(dp: Option<serde_json::Value>) -> ModelMeta {
    ModelMeta {
        format: FORMAT,
        kind: "job-recs".into(),
        purpose: "train_ai_system.job_recommendations".into(),
        dataset: DatasetRef {
            path: "d".into(),
            manifest_blake3: "00".into(),
            members_commitment: "00".into(),
            members: 1000,
            ledger_position: 1,
        },
        shard_function: ShardFunction::for_purpose("train_ai_system.job_recommendations", 1),
        seed: 1,
        hyper: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
        dp,
        shards: Vec::new(),
        shard_inputs: Vec::new(),
        unlearning: None,
        train_seconds: 0.0,
        tool: "test".into(),
        created: 0,
    }
}

fn claim_for(epsilon: f64) -> dp::DpClaim {
    let mut o = DpOptions::new(epsilon, "unused.key".into());
    dp::resolve(&mut o, dp::RECS_PLAN, 1000).expect("calibrates");
    dp::claim(&o, dp::RECS_PLAN, false).expect("claim")
}

#[test]
fn privacy_loss_is_rederived_and_composes() {
    let c = claim_for(1.0);
    assert!(c.epsilon <= 1.0 + 1e-9 && c.epsilon > 0.99, "{}", c.epsilon);
    assert_eq!(c.delta, consentry_dp::default_delta(Some(1000)));
    let v = serde_json::to_value(PrivacyClaim::Dp(Box::new(c.clone()))).expect("json");
    assert_eq!(v["bound"], "dp");
    let a = meta_with(Some(v)).privacy_loss("a").expect("valid record");
    assert!((a.epsilon - c.epsilon).abs() < 1e-12);
    let b = meta_with(Some(serde_json::to_value(PrivacyClaim::Dp(Box::new(claim_for(2.0)))).expect("json")))
        .privacy_loss("b")
        .expect("valid");
    let both = cumulative_loss([&a, &b], Conversion::Improved).expect("composes");
    assert!(both.epsilon <= a.epsilon + b.epsilon + 1e-12 && both.epsilon > 2.0, "{both:?}");
    // A model without DP: no formal bound, explicitly; so is any member's total with it.
    let none = serde_json::to_value(PrivacyClaim::None).expect("json");
    assert_eq!(none, serde_json::json!({"bound": "none"}));
    let n = meta_with(Some(none)).privacy_loss("n").expect("readable");
    assert!(n.epsilon.is_infinite());
    assert!(meta_with(None).privacy_loss("old").expect("pre-DP model").epsilon.is_infinite());
    assert!(cumulative_loss([&a, &n], Conversion::Improved).expect("composes").epsilon.is_infinite());
}

#[test]
fn an_overclaiming_record_is_refused() {
    let mut c = claim_for(1.0);
    c.epsilon = 0.5;
    let m = meta_with(Some(serde_json::to_value(PrivacyClaim::Dp(Box::new(c))).expect("json")));
    assert!(m.privacy_loss("x").is_err(), "ε below what the mechanism gives must be refused");
    let mut c = claim_for(1.0);
    c.sigma *= 2.0;
    let m = meta_with(Some(serde_json::to_value(PrivacyClaim::Dp(Box::new(c))).expect("json")));
    assert!(m.privacy_loss("x").is_err(), "a σ that is not what the accountant ran must be refused");
    let m = meta_with(Some(serde_json::json!({"bound": "dp", "epsilon": 1.0})));
    assert!(m.privacy_loss("x").is_err());
}

#[test]
fn dp_options_are_checked_and_keys_persist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k").join("dp-noise.key");
    let mut o = DpOptions::new(1.0, path.clone());
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(DpOptions { epsilon: bad, ..o.clone() }.check().is_err(), "ε = {bad}");
    }
    assert!(DpOptions { clip: 0.0, ..o.clone() }.check().is_err());
    assert!(DpOptions { delta: Some(1.0), ..o.clone() }.check().is_err());
    assert!(DpOptions { sample_rate: 0.0, ..o.clone() }.check().is_err());
    let k1 = dp::key_for(&o).expect("creates the key");
    let k2 = NoiseKey::load(&path).expect("reads it back");
    assert_eq!(k1.commitment(), k2.commitment());
    o.key_commitment = Some(k1.commitment());
    assert!(dp::key_for(&o).is_ok());
    std::fs::write(&path, hex::encode([1u8; 32])).expect("overwrite");
    assert!(dp::key_for(&o).is_err(), "a different key must be refused for a trained model");
    std::fs::write(&path, "not hex").expect("overwrite");
    assert!(NoiseKey::load(&path).is_err());
}
