//! Behaviour of the inventory, the model and the model file, on hand-made and realistic synthetic pairs.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use consentry_replies::{
    DEFAULT_K, DpSgd, Hyper, Inventory, Pair, ReplyError, ReplyModel, reply_key, training_members,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;

fn pair(replier: u64, incoming: &str, reply: &str, at_ms: i64) -> Pair {
    Pair { replier, incoming: incoming.to_owned(), reply: reply.to_owned(), at_ms }
}

fn realistic(seed: u64, members: u64) -> Vec<Pair> {
    common::pairs(seed, members).into_iter().map(|(p, _)| p).collect()
}

fn small_hyper() -> Hyper {
    Hyper { buckets: 1 << 10, epochs: 4, ..Hyper::default() }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A response enters iff ≥ k distinct members used it; repeated use by one member counts once.
    #[test]
    fn k_anonymity(k in 1usize..40, distinct in 1usize..45, repeats in 1usize..120, seed in any::<u64>()) {
        let mut pairs = Vec::new();
        // Filler so the inventory is never empty: used by exactly k members.
        for m in 0..k as u64 {
            pairs.push(pair(10_000 + m, "hello", "Thanks!", 0));
        }
        // Target: `distinct` members, the first of whom uses it `repeats` times.
        for m in 0..distinct as u64 {
            let times = if m == 0 { repeats } else { 1 };
            for t in 0..times {
                let surface = if t % 2 == 0 { "Let's grab a coffee!" } else { "let's grab a coffee" };
                pairs.push(pair(m, "coffee?", surface, t as i64));
            }
        }
        pairs.shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
        let inv = Inventory::build(&pairs, k).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let target = inv.responses().iter().find(|r| r.key == "let's grab a coffee");
        prop_assert_eq!(target.is_some(), distinct >= k);
        if let Some(r) = target {
            prop_assert_eq!(r.members, distinct as u64);
            prop_assert_eq!(r.text.as_str(), "Let's grab a coffee!");
        }
        prop_assert!(inv.responses().iter().all(|r| r.members >= k as u64));
    }

    /// Normalisation is idempotent on what it keeps, and kept text never holds a placeholder.
    #[test]
    fn cleaned_replies_are_stable(s in "(Hi <PERSON>, |<PERSON> – |Oh, )?[A-Za-z' ,]{1,30}[.!?]{0,3}( Call me on <PHONE>\\.)?") {
        if let Some(key) = reply_key(&s) {
            prop_assert!(!key.contains("<PERSON>") && !key.contains("<PHONE>"));
            prop_assert_eq!(reply_key(&key), Some(key.clone()));
        }
    }
}

#[test]
fn nineteen_members_are_not_enough_twenty_are() {
    let mut pairs: Vec<Pair> = (0..19).map(|m| pair(m, "hi", "See you at the offsite!", 0)).collect();
    // One member repeating 100 times must not push it over.
    pairs.extend((0..100).map(|t| pair(0, "hi", "see you at the offsite", t)));
    assert_eq!(Inventory::build(&pairs, DEFAULT_K), Err(ReplyError::EmptyInventory { k: 20, candidates: 1 }));
    pairs.push(pair(19, "hi", "See you at the offsite.", 0));
    let inv = Inventory::build(&pairs, DEFAULT_K).expect("20 members");
    assert_eq!(inv.responses().len(), 1);
    assert_eq!(inv.responses()[0].members, 20);
    assert_eq!(inv.responses()[0].text, "See you at the offsite!");
}

#[test]
fn member_data_is_never_in_the_inventory() {
    let mut pairs = Vec::new();
    for m in 0..30 {
        pairs.push(pair(m, "x", "Hi <PERSON>, thanks a lot!", 0));
        pairs.push(pair(m, "x", "Call me on <PHONE>.", 1));
        pairs.push(pair(m, "x", "Sounds good. My email is <EMAIL>.", 2));
        pairs.push(pair(m, "x", "Say hi to <PERSON_2> for me.", 3));
    }
    let inv = Inventory::build(&pairs, 20).expect("inventory");
    let keys: BTreeSet<&str> = inv.responses().iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, BTreeSet::from(["sounds good", "thanks a lot"]));
    assert!(inv.responses().iter().all(|r| !r.text.contains('<')));
}

#[test]
fn bad_input_gives_clear_errors() {
    assert_eq!(Inventory::build(&[], 20), Err(ReplyError::EmptyInput));
    let pairs = realistic(1, 1500);
    assert_eq!(Inventory::build(&pairs, 0), Err(ReplyError::InvalidK));
    let err = Inventory::build(&pairs, 1_000_000).expect_err("nothing reaches k");
    assert!(err.to_string().contains("empty inventory"), "{err}");
    let inv = Inventory::build(&pairs, 20).expect("inventory");
    assert_eq!(ReplyModel::train(&[], inv.clone(), &small_hyper(), 1, None), Err(ReplyError::EmptyInput));
    for (name, h) in [
        ("learning_rate", Hyper { learning_rate: f64::NAN, ..small_hyper() }),
        ("learning_rate", Hyper { learning_rate: f64::INFINITY, ..small_hyper() }),
        ("learning_rate", Hyper { learning_rate: -1.0, ..small_hyper() }),
        ("l2", Hyper { l2: f64::NAN, ..small_hyper() }),
        ("buckets", Hyper { buckets: 0, ..small_hyper() }),
        ("epochs", Hyper { epochs: 0, ..small_hyper() }),
    ] {
        match ReplyModel::train(&pairs, inv.clone(), &h, 1, None) {
            Err(ReplyError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let dp = DpSgd { sigma: 1.0, clip: 1.0, sample_rate: 0.1, steps: 5 };
    for (name, d) in [
        ("sigma", DpSgd { sigma: f64::NAN, ..dp }),
        ("clip", DpSgd { clip: f64::INFINITY, ..dp }),
        ("clip", DpSgd { clip: 0.0, ..dp }),
        ("sample_rate", DpSgd { sample_rate: 1.5, ..dp }),
        ("sample_rate", DpSgd { sample_rate: f64::NAN, ..dp }),
        ("steps", DpSgd { steps: 0, ..dp }),
    ] {
        match ReplyModel::train(&pairs, inv.clone(), &small_hyper(), 1, Some(&d)) {
            Err(ReplyError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    // Pairs whose replies are all outside the inventory.
    let other = vec![pair(1, "hi", "Something nobody else says", 0)];
    assert_eq!(ReplyModel::train(&other, inv.clone(), &small_hyper(), 1, None), Err(ReplyError::NoTrainingExamples));
    // A learning rate that blows up is reported, not saved.
    let wild = Hyper { learning_rate: 1e38, l2: 0.0, ..small_hyper() };
    assert!(matches!(ReplyModel::train(&pairs, inv, &wild, 1, None), Err(ReplyError::Diverged)));
}

#[test]
fn suggestions_are_distinct_intents_and_at_most_n() {
    let pairs = realistic(2, 3000);
    let inv = Inventory::build(&pairs, 20).expect("inventory");
    let model = ReplyModel::train(&pairs, inv, &small_hyper(), 7, None).expect("train");
    let intents = model.inventory().intents().len();
    for (i, p) in pairs.iter().take(200).enumerate() {
        let n = i % 6;
        let s = model.suggest(&p.incoming, n);
        assert_eq!(s.len(), n.min(intents));
        let distinct: BTreeSet<u32> = s.iter().map(|x| x.intent).collect();
        assert_eq!(distinct.len(), s.len());
        assert!(s.windows(2).all(|w| w[0].score >= w[1].score));
        for x in &s {
            let r = model.inventory().response(x.response).expect("response");
            assert_eq!((r.text.as_str(), r.intent), (x.text.as_str(), x.intent));
        }
    }
    assert!(model.suggest("", 3).len() == 3.min(intents));
    assert!(model.suggest("\u{0}\u{7f}<<>>", 3).len() == 3.min(intents));
}

#[test]
fn training_is_deterministic_whatever_the_input_order() {
    let pairs = realistic(3, 2000);
    let build = |rows: &[Pair], seed: u64| {
        let inv = Inventory::build(rows, 20).expect("inventory");
        ReplyModel::train(rows, inv, &small_hyper(), seed, None).expect("train").to_bytes()
    };
    let a = build(&pairs, 11);
    let mut shuffled = pairs.clone();
    shuffled.shuffle(&mut ChaCha20Rng::seed_from_u64(99));
    shuffled.reverse();
    assert_eq!(a, build(&shuffled, 11));
    // Training on another thread gives the same bytes too.
    let again = std::thread::spawn(move || build(&shuffled, 11)).join().expect("thread");
    assert_eq!(a, again);
    assert_ne!(a, build(&pairs, 12), "the seed must matter");
}

#[test]
fn bytes_round_trip_and_corruption_is_rejected() {
    let pairs = realistic(4, 1500);
    let inv = Inventory::build(&pairs, 20).expect("inventory");
    let model = ReplyModel::train(&pairs, inv, &small_hyper(), 5, None).expect("train");
    let bytes = model.to_bytes();
    let back = ReplyModel::from_bytes(&bytes).expect("round trip");
    assert_eq!(back, model);
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(back.suggest("Congrats on the new role!", 3), model.suggest("Congrats on the new role!", 3));

    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    assert_eq!(header_len % 8, 0);
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).expect("utf-8");
    assert!(header.starts_with("{\"__metadata__\":{\"consentry.replies\":"), "{}", &header[..60]);

    assert!(ReplyModel::from_bytes(&[]).is_err());
    assert!(ReplyModel::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(ReplyModel::from_bytes(&bytes[..header_len]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(ReplyModel::from_bytes(&longer).is_err());
    // Any flipped byte anywhere (length, header, tensor data) is detected.
    for pos in [0, 3, 8, 20, 8 + header_len / 2, 8 + header_len, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x20;
        assert!(ReplyModel::from_bytes(&bad).is_err(), "flip at {pos} accepted");
    }
    // A NaN is rejected even with a matching checksum.
    let data_start = 8 + header_len;
    let mut nan = bytes[data_start..].to_vec();
    nan[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let good_sum = blake3::hash(&bytes[data_start..]).to_hex().to_string();
    let new_sum = blake3::hash(&nan).to_hex().to_string();
    let patched_header = header.replace(&good_sum, &new_sum);
    let mut patched = bytes[..8].to_vec();
    patched.extend_from_slice(patched_header.as_bytes());
    patched.extend_from_slice(&nan);
    let err = ReplyModel::from_bytes(&patched).expect_err("NaN");
    assert!(err.to_string().contains("non-finite"), "{err}");
}

/// Squared L2 distance between two models' parameters.
fn dist2(a: &ReplyModel, b: &ReplyModel) -> f64 {
    a.weights()
        .iter()
        .chain(a.bias())
        .zip(b.weights().iter().chain(b.bias()))
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum()
}

#[test]
fn dp_clips_each_members_total_contribution() {
    let base = realistic(5, 800);
    let inv = Inventory::build(&base, 20).expect("inventory");
    let hyper = Hyper { buckets: 1 << 8, learning_rate: 1.0, l2: 0.0, ..small_hyper() };
    let heavy_reply = inv.responses()[0].text.clone();
    let with_heavy = |n: usize| {
        let mut rows = base.clone();
        rows.extend((0..n).map(|i| pair(42, &format!("message number {i} about hiring"), &heavy_reply, i as i64)));
        rows
    };
    let clip = 0.5;
    // One step, every member sampled, no noise: the update is exactly the sum of clipped gradients / N.
    let dp = DpSgd { sigma: 0.0, clip, sample_rate: 1.0, steps: 1 };
    let one = with_heavy(1);
    let thousand = with_heavy(1000);
    let n = training_members(&one, &inv) as f64;
    assert_eq!(training_members(&thousand, &inv) as f64, n);
    let m1 = ReplyModel::train(&one, inv.clone(), &hyper, 3, Some(&dp)).expect("dp 1");
    let m1000 = ReplyModel::train(&thousand, inv.clone(), &hyper, 3, Some(&dp)).expect("dp 1000");
    // The two datasets differ only in member 42, whose clipped contribution has norm ≤ C either way.
    let bound = 2.0 * clip * hyper.learning_rate / (dp.sample_rate * n);
    let d = dist2(&m1, &m1000).sqrt();
    assert!(d <= bound * 1.0001, "member influence {d} exceeds bound {bound}");
    // Without clipping the heavy member moves the model far more.
    let loose = DpSgd { clip: 1e9, ..dp };
    let u1 = ReplyModel::train(&one, inv.clone(), &hyper, 3, Some(&loose)).expect("loose 1");
    let u1000 = ReplyModel::train(&thousand, inv.clone(), &hyper, 3, Some(&loose)).expect("loose 1000");
    assert!(dist2(&u1, &u1000).sqrt() > 20.0 * bound, "clipping was not the binding constraint");

    // A lone member's whole update is bounded by lr·C/(qN) with N = 1.
    let alone: Vec<Pair> = thousand.iter().filter(|p| p.replier == 42).cloned().collect();
    let prior = ReplyModel::frequency_baseline(inv.clone());
    let solo = ReplyModel::train(&alone, inv, &Hyper { buckets: 1, ..hyper }, 3, Some(&dp)).expect("solo");
    let moved = dist2(&prior, &solo).sqrt();
    assert!(moved <= clip * 1.0001 && moved > 0.9 * clip, "solo update {moved}");
}

#[test]
fn dp_is_deterministic_and_reports_accounting_inputs() {
    let pairs = realistic(6, 2000);
    let inv = Inventory::build(&pairs, 20).expect("inventory");
    let hyper = Hyper { buckets: 1 << 9, learning_rate: 0.5, ..small_hyper() };
    let dp = DpSgd { sigma: 1.1, clip: 1.0, sample_rate: 0.05, steps: 30 };
    let a = ReplyModel::train(&pairs, inv.clone(), &hyper, 8, Some(&dp)).expect("dp");
    let mut shuffled = pairs.clone();
    shuffled.shuffle(&mut ChaCha20Rng::seed_from_u64(1));
    let b = ReplyModel::train(&shuffled, inv.clone(), &hyper, 8, Some(&dp)).expect("dp");
    assert_eq!(a.to_bytes(), b.to_bytes());
    let c = ReplyModel::train(&pairs, inv.clone(), &hyper, 9, Some(&dp)).expect("dp");
    assert_ne!(a.to_bytes(), c.to_bytes());
    let acc = a.info().dp.expect("dp accounting");
    assert_eq!(acc.members, training_members(&pairs, &inv));
    assert_eq!((acc.sample_rate, acc.steps, acc.sigma, acc.clip), (0.05, 30, 1.1, 1.0));
    let back = ReplyModel::from_bytes(&a.to_bytes()).expect("round trip");
    assert_eq!(back.info().dp, Some(acc));
}

/// Purity of the automatic intents against the generator's hidden labels, on its whole inventory.
#[test]
fn intents_match_the_generators_intents_reasonably() {
    let mut pairs = Vec::new();
    for (i, (_, reply)) in common::REPLIES.iter().enumerate() {
        for m in 0..20u64 {
            pairs.push(pair(m, "x", reply, i as i64));
        }
    }
    let inv = Inventory::build(&pairs, 20).expect("inventory");
    let label: BTreeMap<String, &str> = common::REPLIES.iter().filter_map(|(l, r)| Some((reply_key(r)?, *l))).collect();
    let mut pure = 0usize;
    for intent in inv.intents() {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for &r in &intent.responses {
            let key = &inv.responses()[r as usize].key;
            *counts.entry(label.get(key).copied().unwrap_or("?")).or_default() += 1;
        }
        pure += counts.values().max().copied().unwrap_or(0);
    }
    let purity = pure as f64 / inv.responses().len() as f64;
    let sizes: Vec<usize> = inv.intents().iter().map(|i| i.responses.len()).collect();
    eprintln!("{} responses, {} intents, purity {purity:.3}", inv.responses().len(), inv.intents().len());
    for intent in inv.intents().iter().filter(|i| i.responses.len() > 1) {
        let members: Vec<&str> = intent.responses.iter().map(|&r| inv.responses()[r as usize].key.as_str()).collect();
        eprintln!("  {:?}", members);
    }
    assert_eq!(inv.responses().len(), common::REPLIES.len());
    assert!(purity >= 0.8, "purity {purity}");
    assert!(sizes.iter().any(|&s| s > 1), "nothing was grouped");
}

#[test]
fn model_beats_the_frequency_baseline_on_realistic_pairs() {
    let all = realistic(7, 6_000);
    let (train, test): (Vec<Pair>, Vec<Pair>) = all.into_iter().partition(|p| p.replier % 5 != 0);
    let inv = Inventory::build(&train, DEFAULT_K).expect("inventory");
    let model = ReplyModel::train(&train, inv.clone(), &Hyper::default(), 1, None).expect("train");
    let m = model.evaluate(&test);
    let b = ReplyModel::frequency_baseline(inv.clone()).evaluate(&test);
    eprintln!(
        "train {} pairs, test {}; {} responses in {} intents",
        train.len(),
        test.len(),
        inv.responses().len(),
        inv.intents().len()
    );
    eprintln!("model    {m:?}");
    eprintln!("baseline {b:?}");
    assert!(m.coverage > 0.8 && m.coverage == b.coverage);
    assert!(m.top3 >= b.top3 + 0.25, "top-3 {} vs baseline {}", m.top3, b.top3);
    assert!(m.top1 >= b.top1 + 0.2, "top-1 {} vs baseline {}", m.top1, b.top1);
    assert!(m.top3_response > b.top3_response, "{} vs {}", m.top3_response, b.top3_response);

    let dp = DpSgd { sigma: 1.0, clip: 1.0, sample_rate: 0.05, steps: 150 };
    let hyper = Hyper { buckets: 1 << 10, learning_rate: 2.0, ..Hyper::default() };
    let private = ReplyModel::train(&train, inv, &hyper, 1, Some(&dp)).expect("dp train").evaluate(&test);
    eprintln!("dp-sgd   {private:?}");
    assert!(private.top3 > b.top3, "DP top-3 {} vs baseline {}", private.top3, b.top3);
}
