//! Determinism, sharding and bad-input behaviour of the recommenders, on generated inputs.

use consentry_learn::LearnError;
use consentry_learn::recs::{self, RecHyper, RecInput, Recommender, ShardModel};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

mod common;
use common::shard_of;

/// Members with one of four skills apply to jobs needing it.
fn input(members: u64, seed: u64) -> RecInput {
    let skills = ["rust", "sql", "excel", "nursing"].map(String::from);
    common::skill_input(members, seed, &skills, 15, 12)
}

fn hyper() -> RecHyper {
    RecHyper { factors: 8, iterations: 4, ..RecHyper::default() }
}

fn train_bytes(inp: &RecInput, shards: u32, threads: usize) -> Vec<Vec<u8>> {
    let h = hyper();
    let data = recs::split(inp, shards, &shard_of(shards), &h, threads);
    data.iter().map(|d| recs::train_shard(d, &h, 9, threads).and_then(|m| m.to_bytes()).expect("trains")).collect()
}

#[test]
fn shard_files_do_not_depend_on_threads() {
    let inp = input(300, 1);
    let one = train_bytes(&inp, 4, 1);
    assert_eq!(one, train_bytes(&inp, 4, 2));
    assert_eq!(one, train_bytes(&inp, 4, 0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn shard_files_do_not_depend_on_row_order(seed in 0u64..1000) {
        let inp = input(120, seed);
        let mut shuffled = inp.clone();
        shuffled.events.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0xabc));
        prop_assert_eq!(train_bytes(&inp, 3, 1), train_bytes(&shuffled, 3, 2));
    }

    /// Unlearning prepares only the shards of the members it removes (`split_only`): each such shard must be the
    /// very one a full split makes, for job-style inputs and for posts owned by their authors.
    #[test]
    fn splitting_only_some_shards_gives_exactly_those_shards(
        seed in 0u64..1000, marks in proptest::collection::vec(any::<bool>(), 5), posts in any::<bool>()
    ) {
        let inp = if posts { post_input(150, seed) } else { input(150, seed) };
        let h = if posts { content_hyper() } else { hyper() };
        let f = shard_of(5);
        let full = recs::split(&inp, 5, &f, &h, 1);
        let some = recs::split_only(&inp, 5, &f, &h, 2, Some(&marks));
        prop_assert_eq!(some.len(), 5);
        for s in 0..5 {
            if marks[s] {
                prop_assert_eq!(&some[s], &full[s], "shard {} differs", s);
            } else {
                prop_assert_eq!(&some[s], &recs::ShardData::default());
            }
        }
    }

    #[test]
    fn removing_a_member_changes_only_their_shard(seed in 0u64..1000, victim in 1u64..120) {
        let inp = input(120, seed);
        let mut without = inp.clone();
        without.events.retain(|e| e.member != victim);
        without.profiles.remove(&victim);
        let (a, b) = (train_bytes(&inp, 4, 1), train_bytes(&without, 4, 1));
        let own = shard_of(4)(victim) as usize;
        for s in 0..4 {
            if s == own { prop_assert_ne!(&a[s], &b[s]); } else { prop_assert_eq!(&a[s], &b[s]); }
        }
    }
}

#[test]
fn shard_files_round_trip_and_recommend() {
    let inp = input(400, 3);
    let h = hyper();
    let data = recs::split(&inp, 4, &shard_of(4), &h, 0);
    let models: Vec<ShardModel> = data.iter().map(|d| recs::train_shard(d, &h, 1, 0).expect("trains")).collect();
    let reread: Vec<ShardModel> = models
        .iter()
        .map(|m| ShardModel::from_bytes(&m.to_bytes().expect("bytes"), "shard").expect("parses"))
        .collect();
    assert_eq!(models, reread);
    let rec = Recommender::new(reread, Box::new(shard_of(4))).expect("builds");
    // Member 5 has skill index 1 (sql): jobs 1001, 1005, … need it; most of the top 10 should be sql jobs.
    let top = rec.recommend(5, 10).expect("known member");
    assert_eq!(top.len(), 10);
    let sql = top.iter().filter(|(j, _)| (j - 1000) % 4 == 1).count();
    assert!(sql >= 8, "{top:?}");
    // Nothing the member already interacted with in training.
    let seen: Vec<u64> = inp.events.iter().filter(|e| e.member == 5).map(|e| e.item).collect();
    let d = &data[shard_of(4)(5) as usize];
    let ui = d.members.binary_search(&5).expect("in shard");
    let trained: Vec<u64> = d.train.row(ui).0.iter().map(|&j| d.items[j as usize]).collect();
    assert!(top.iter().all(|(j, _)| !trained.contains(j)), "{top:?} vs {seen:?}");
    let eval = recs::evaluate(&rec, &data, 1000, 0).expect("evaluates");
    assert!(eval.model.recall_at_20 > eval.popularity.recall_at_20, "{eval:?}");
}

#[test]
fn members_without_activity_are_served_from_their_profile() {
    let mut inp = input(200, 4);
    inp.profiles.insert(9_999, vec!["skill:nursing".into(), "country:de".into()]);
    let h = hyper();
    let data = recs::split(&inp, 2, &shard_of(2), &h, 0);
    let models = data.iter().map(|d| recs::train_shard(d, &h, 1, 0).expect("trains")).collect();
    let rec = Recommender::new(models, Box::new(shard_of(2))).expect("builds");
    let top = rec.recommend(9_999, 5).expect("profile-only member is known");
    assert!(top.iter().filter(|(j, _)| (j - 1000) % 4 == 3).count() >= 4, "{top:?}");
    assert!(matches!(rec.recommend(123_456, 5), Err(LearnError::UnknownMember(123_456))));
}

#[test]
fn empty_shards_train_and_serve() {
    // 64 shards for 20 members: most shards are empty.
    let inp = input(20, 5);
    let h = hyper();
    let data = recs::split(&inp, 64, &shard_of(64), &h, 0);
    assert!(data.iter().any(|d| d.members.is_empty()));
    let models: Vec<ShardModel> = data.iter().map(|d| recs::train_shard(d, &h, 1, 0).expect("trains")).collect();
    for m in &models {
        let b = m.to_bytes().expect("bytes");
        assert_eq!(&ShardModel::from_bytes(&b, "s").expect("parses"), m);
    }
    let rec = Recommender::new(models, Box::new(shard_of(64))).expect("builds");
    assert_eq!(rec.recommend(3, 3).expect("known").len(), 3);
}

#[test]
fn bad_hyper_parameters_are_refused() {
    for h in [
        RecHyper { reg: f32::NAN, ..RecHyper::default() },
        RecHyper { alpha: f32::INFINITY, ..RecHyper::default() },
        RecHyper { factors: 0, ..RecHyper::default() },
        RecHyper { holdout: 1.0, ..RecHyper::default() },
        RecHyper { reg: 0.0, ..RecHyper::default() },
    ] {
        assert!(matches!(h.check(), Err(LearnError::Hyper(_))), "{h:?}");
    }
    RecHyper::default().check().expect("defaults are valid");
}

#[test]
fn corrupt_shard_files_are_refused() {
    let inp = input(50, 6);
    let h = hyper();
    let d = &recs::split(&inp, 1, &|_| 0, &h, 0)[0];
    let m = recs::train_shard(d, &h, 1, 0).expect("trains");
    let bytes = m.to_bytes().expect("bytes");
    // A NaN planted in the first factor of `user_factors`.
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).expect("json header");
    let start = header["user_factors"]["data_offsets"][0].as_u64().expect("offset") as usize + 8 + header_len;
    let mut nan = bytes.clone();
    nan[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = ShardModel::from_bytes(&nan, "s").expect_err("NaN refused");
    assert!(e.to_string().contains("non-finite"), "{e}");
    assert!(ShardModel::from_bytes(&bytes[..bytes.len() / 2], "s").is_err());
    assert!(ShardModel::from_bytes(b"not a model", "s").is_err());
}

/// Members of five topics (`m % 5`) and three industries write two posts each on their topic and engage with posts
/// of their topic by others.
fn post_input(members: u64, seed: u64) -> RecInput {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut inp = RecInput::default();
    let post = |m: u64, k: u64| 10_000 + 2 * m + k;
    for m in 1..=members {
        inp.profiles.insert(m, vec!["country:de".into(), format!("industry:i{}", m % 3)]);
        for k in 0..2 {
            let tokens = vec![format!("industry:i{}", m % 3), format!("topic:t{}", m % 5)];
            inp.items.insert(post(m, k), recs::ItemInfo { owner: Some(m), tokens });
        }
    }
    for m in 1..=members {
        for e in 0..r.random_range(3..9) {
            let author = 5 * r.random_range(0..members / 5) + m % 5;
            if author == m || author == 0 {
                continue;
            }
            inp.events.push(recs::Event {
                member: m,
                item: post(author, r.random_range(0..2)),
                weight: 1.0,
                at: i64::from(e) * 1000,
                target: true,
            });
        }
    }
    inp
}

fn content_hyper() -> RecHyper {
    RecHyper { factors: 8, iterations: 4, ..RecHyper::for_kind(recs::RecKind::Content) }
}

fn content_models(inp: &RecInput, shards: u32, threads: usize) -> Vec<ShardModel> {
    let h = content_hyper();
    let data = recs::split(inp, shards, &shard_of(shards), &h, threads);
    data.iter().map(|d| recs::train_shard(d, &h, 9, threads).expect("trains")).collect()
}

#[test]
fn content_shards_are_deterministic_round_trip_and_suggest_the_members_topic() {
    let inp = post_input(200, 4);
    let models = content_models(&inp, 4, 1);
    let bytes: Vec<Vec<u8>> = models.iter().map(|m| m.to_bytes().expect("bytes")).collect();
    let other: Vec<Vec<u8>> = content_models(&inp, 4, 2).iter().map(|m| m.to_bytes().expect("bytes")).collect();
    assert_eq!(bytes, other);
    let reread: Vec<ShardModel> = bytes.iter().map(|b| ShardModel::from_bytes(b, "shard").expect("parses")).collect();
    assert_eq!(models, reread);
    assert!(reread.iter().any(|m| !m.authored.idx.is_empty()), "content shards record what members wrote");
    let rec = Recommender::new(reread, Box::new(shard_of(4))).expect("builds");
    // Member 7 (topic t2): the top 10 are posts on t2 (by members ≡ 2 mod 5), never their own.
    let top = rec.recommend(7, 10).expect("known member");
    assert_eq!(top.len(), 10);
    assert!(top.iter().all(|(p, _)| ((p - 10_000) / 2) % 5 == 2), "{top:?}");
    assert!(top.iter().all(|(p, _)| (p - 10_000) / 2 != 7), "{top:?}");
    // The same suggestions at S = 1: the topic scorer joins what every shard knows.
    let one = Recommender::new(content_models(&inp, 1, 1), Box::new(|_| 0)).expect("builds");
    let a: Vec<u64> = top.iter().map(|x| x.0).collect();
    let b: Vec<u64> = one.recommend(7, 10).expect("known").iter().map(|x| x.0).collect();
    assert_eq!(a, b);
}

#[test]
fn removing_an_author_changes_only_their_content_shard_and_their_posts_lose_their_topic() {
    let inp = post_input(200, 5);
    let victim = 12;
    let mut gone = roaring::RoaringTreemap::new();
    gone.insert(victim);
    let before = content_models(&inp, 4, 1);
    let after = content_models(&inp.clone().without(&gone), 4, 1);
    let own = shard_of(4)(victim) as usize;
    for s in 0..4 {
        let (a, b) = (before[s].to_bytes().expect("bytes"), after[s].to_bytes().expect("bytes"));
        if s == own {
            assert_ne!(a, b);
        } else {
            assert_eq!(a, b, "shard {s}");
        }
    }
    // No shard keeps the victim's posts' features.
    for m in &after {
        for (j, id) in m.items.iter().enumerate() {
            if (10_000..10_000 + 2 * 201).contains(id) && (id - 10_000) / 2 == victim {
                assert!(m.item_tokens.row(j).0.is_empty(), "post {id} keeps its tokens");
            }
        }
    }
}
