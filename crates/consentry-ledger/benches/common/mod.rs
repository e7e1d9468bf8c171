//! What the ledger's benches share: one seeded stream of synthetic consent events, and the process's memory.

// Each bench target compiles this module and uses part of it.
#![allow(dead_code)]

use consentry_ledger::NewEvent;
use consentry_policy::{Action, Policy, Source};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// 2026-01-15, the benches' calendar origin (Unix seconds).
pub const JAN: i64 = 1_768_435_200;

/// Events with idempotency keys `<prefix><i>` for `i` in `keys`, each about a member drawn from `1..=members` and a
/// purpose of `policy`: 70 % grants, 3 % from GPC, times spread over five months.
pub fn events(
    rng: &mut ChaCha8Rng,
    policy: &Policy,
    keys: std::ops::Range<u64>,
    members: u64,
    prefix: &str,
) -> Vec<NewEvent> {
    keys.map(|i| {
        let p = &policy.purposes[rng.random_range(0..policy.purposes.len())];
        let member = rng.random_range(1..=members);
        NewEvent {
            member_id: member,
            purpose: p.key.clone(),
            action: if rng.random_bool(0.7) { Action::Grant } else { Action::Withdraw },
            notice_version: p.latest_notice().version,
            source: if rng.random_bool(0.03) { Source::Gpc } else { Source::Ui },
            actor: format!("member:{member}"),
            event_time: JAN + 150 * 86_400 + rng.random_range(0..150 * 86_400),
            idempotency_key: format!("{prefix}{i}"),
        }
    })
    .collect()
}

/// A memory figure of this process from `/proc/self/status`, in KiB (`VmHWM` the peak resident set, `RssAnon` the
/// anonymous part: heap and stacks, not the file pages SQLite maps); 0 where the kernel does not say.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
