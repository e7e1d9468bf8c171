//! `ReplyModel::train_private`: DP-SGD whose sampling and noise come from a secret key, not from the recorded seed.

mod common;

use consentry_replies::{DpSgd, Hyper, Inventory, Pair, ReplyModel};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;

fn setup() -> (Vec<Pair>, Inventory, Hyper, DpSgd) {
    let pairs: Vec<Pair> = common::pairs(6, 2000).into_iter().map(|(p, _)| p).collect();
    let inv = Inventory::build(&pairs, 20).expect("inventory");
    let hyper = Hyper { buckets: 1 << 9, epochs: 4, learning_rate: 0.5, ..Hyper::default() };
    (pairs, inv, hyper, DpSgd { sigma: 1.1, clip: 1.0, sample_rate: 0.05, steps: 30 })
}

#[test]
fn keyed_dp_sgd_is_deterministic_in_key_seed_and_rows() {
    let (pairs, inv, hyper, dp) = setup();
    let a = ReplyModel::train_private(&pairs, inv.clone(), &hyper, 8, &dp, &[1; 32]).expect("dp");
    let mut shuffled = pairs.clone();
    shuffled.shuffle(&mut ChaCha20Rng::seed_from_u64(3));
    let b = ReplyModel::train_private(&shuffled, inv.clone(), &hyper, 8, &dp, &[1; 32]).expect("dp");
    assert_eq!(a.to_bytes(), b.to_bytes());
    let acc = a.info().dp.expect("accounting inputs recorded");
    assert_eq!((acc.sample_rate, acc.steps, acc.sigma, acc.clip), (0.05, 30, 1.1, 1.0));
}

#[test]
fn the_noise_cannot_be_recomputed_from_the_recorded_seed() {
    let (pairs, inv, hyper, dp) = setup();
    let keyed = ReplyModel::train_private(&pairs, inv.clone(), &hyper, 8, &dp, &[1; 32]).expect("dp");
    let other_key = ReplyModel::train_private(&pairs, inv.clone(), &hyper, 8, &dp, &[2; 32]).expect("dp");
    let seeded = ReplyModel::train(&pairs, inv.clone(), &hyper, 8, Some(&dp)).expect("dp");
    // The seed is in the model; the key is not: the seed-only stream must not be the one a private run used.
    assert_ne!(keyed.weights(), seeded.weights());
    assert_ne!(keyed.weights(), other_key.weights());
    assert_eq!(keyed.info().seed, 8);
}
