//! Effective-consent throughput: how long a billion member–purpose evaluations take.
//!
//! Run with `cargo bench -p consentry-policy --bench evaluate`. Prints a table of
//! evaluations per second for event histories of different lengths, on one core.

use chrono::NaiveDate;
use consentry_policy::{Action, ConsentEvent, MemberFacts, Policy, Source};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let policy = Policy::default_policy();
    let purposes: Vec<_> = policy.purpose_ids().collect();
    let codes = ["US-CA", "US", "DE", "GB", "JP", "FR", "IN"];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let members: Vec<MemberFacts> = (0..1_000_000)
        .map(|_| MemberFacts {
            jurisdiction: policy.resolve_jurisdiction(codes[rng.random_range(0..codes.len())]),
            birth_date: NaiveDate::from_ymd_opt(rng.random_range(1950..2010), 6, 1).unwrap_or_default(),
        })
        .collect();
    let at = 1_790_000_000;
    println!("{:>14} {:>14} {:>16} {:>18}", "events/member", "evaluations", "evals per second", "1e9 evals (1 core)");
    for history in [0usize, 1, 2, 4, 8] {
        let events: Vec<ConsentEvent> = (0..members.len() * history)
            .map(|i| ConsentEvent {
                at: 1_770_000_000 + (i as i64 % 10_000_000),
                action: if rng.random_bool(0.7) { Action::Grant } else { Action::Withdraw },
                notice_version: rng.random_range(1..=2),
                source: if rng.random_bool(0.05) { Source::Gpc } else { Source::Ui },
            })
            .collect();
        let start = Instant::now();
        let mut allowed = 0u64;
        let mut n = 0u64;
        for &p in &purposes {
            for (i, m) in members.iter().enumerate() {
                let ev = &events[i * history..(i + 1) * history];
                allowed += u64::from(policy.evaluate(p, black_box(m), black_box(ev), at).is_allowed());
                n += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        black_box(allowed);
        let rate = n as f64 / secs;
        println!("{history:>14} {n:>14} {rate:>16.0} {:>17.0}s", 1e9 / rate);
    }
}
