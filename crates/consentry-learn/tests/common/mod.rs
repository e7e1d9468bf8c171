//! Generated recommender inputs shared by the integration tests.

use consentry_learn::recs::{Event, ItemInfo, RecInput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Members with one of `skills` apply to the `per_skill` jobs needing it (up to `max_events - 1` events each);
/// every job and profile also names a country.
pub fn skill_input(members: u64, seed: u64, skills: &[String], per_skill: u64, max_events: u32) -> RecInput {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let n = skills.len() as u64;
    let mut inp = RecInput::default();
    for j in 0..n * per_skill {
        let s = &skills[(j % n) as usize];
        inp.items.insert(1000 + j, ItemInfo { owner: None, tokens: vec![format!("skill:{s}"), "country:de".into()] });
    }
    for m in 1..=members {
        let s = m % n;
        inp.profiles.insert(m, vec![format!("skill:{}", skills[s as usize]), "country:de".into()]);
        for e in 0..r.random_range(0..max_events) {
            let job = 1000 + n * r.random_range(0..per_skill) + s;
            let apply = r.random_bool(0.3);
            inp.events.push(Event {
                member: m,
                item: job,
                weight: if apply { 4.0 } else { 1.0 },
                at: i64::from(e) * 1000 + r.random_range(0..999),
                target: apply,
            });
        }
    }
    inp
}

/// A fixed multiplicative-hash shard function.
pub fn shard_of(shards: u32) -> impl Fn(u64) -> u32 + Send + Sync + Clone + 'static {
    move |m| (m.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as u32 % shards
}
