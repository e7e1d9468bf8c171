//! Where in the log, and when, consent is evaluated: the one resolver of
//! `--at SEQ|TIME` that every command cutting a snapshot calls.
//!
//! Consent evaluated at a time after the present counts today's minors as
//! adults and lets notices lapse that have not, so a time after the present
//! is refused, and so is a position past the log's end. An event's recorded
//! time may run ahead of this machine's clock by up to [`MAX_CLOCK_SKEW`]
//! (the tolerance [`LedgerOptions::default`](crate::LedgerOptions) allows for
//! event times), so a position is accepted when its recorded time is at most
//! that far ahead; a time typed by the caller must not be after the present
//! at all.

use crate::{LedgerError, Store};
use consentry_policy::Timestamp;

/// How far (seconds) a recorded time may run ahead of this machine's clock and still count as the present.
pub const MAX_CLOCK_SKEW: i64 = 300;

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The whole log, evaluated now.
    Now,
    /// The log up to this sequence number, evaluated when that event was recorded (0: the empty log, at time 0).
    Seq(u64),
    /// The log as it stood at this time (the last event recorded at or before it), evaluated then.
    Time(Timestamp),
}

/// A resolved ledger position and evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The last sequence number included.
    pub position: u64,
    /// The evaluation time (Unix seconds).
    pub time: Timestamp,
}

/// Resolves `at` against the log in `store`, with `now` as the present; refuses a position past the log's end
/// and a time after the present (an [`LedgerError::Invalid`] naming the value, the limit and what to do).
pub fn resolve(store: &dyn Store, at: At, now: Timestamp) -> Result<Resolved, LedgerError> {
    let len = store.len()?;
    match at {
        At::Now => Ok(Resolved { position: len, time: now }),
        At::Seq(seq) if seq > len => Err(LedgerError::Invalid(format!(
            "--at {seq} is past the end of the log ({len} events); choose a position up to {len}"
        ))),
        At::Seq(0) => Ok(Resolved { position: 0, time: 0 }),
        At::Seq(seq) => {
            let time = store.entry(seq)?.map(|e| e.entry.recorded_time()).ok_or_else(|| {
                LedgerError::Corrupt(format!("entry {seq} is missing although the log holds {len} entries"))
            })?;
            if time > now + MAX_CLOCK_SKEW {
                return Err(LedgerError::Invalid(format!(
                    "event {seq} was recorded at {}, after the present ({}); consent is never evaluated in the \
                     future — check this machine's clock and the ledger's",
                    rfc3339(time),
                    rfc3339(now)
                )));
            }
            Ok(Resolved { position: seq, time })
        }
        At::Time(t) if t > now => Err(LedgerError::Invalid(format!(
            "--at {} is after the present ({}); consent is never evaluated in the future (it would count today's \
             minors as adults) — give a time up to now, or leave out --at",
            rfc3339(t),
            rfc3339(now)
        ))),
        At::Time(t) => Ok(Resolved { position: last_recorded_by(store, t, len)?, time: t }),
    }
}

/// The last sequence number recorded at or before `t` (binary search: recorded times never decrease).
fn last_recorded_by(store: &dyn Store, t: Timestamp, len: u64) -> Result<u64, LedgerError> {
    let (mut lo, mut hi) = (0u64, len);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let rec = store.entry(mid)?.map_or(i64::MAX, |e| e.entry.recorded_time());
        if rec <= t { lo = mid } else { hi = mid - 1 }
    }
    Ok(lo)
}

/// A time for messages: RFC 3339, or the raw number when out of range.
fn rfc3339(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.to_rfc3339())
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::{Ledger, LedgerOptions, LogKey, NewEvent};
    use consentry_policy::{Action, Policy, Source};

    const NOW: i64 = 1_790_000_000;

    /// A ledger of three events recorded at NOW-200, NOW-100 and NOW.
    fn ledger(dir: &std::path::Path) -> Ledger {
        let store = SqliteStore::open(&dir.join("log.db")).unwrap();
        let l = Ledger::new(
            Box::new(store),
            Policy::default_policy(),
            LogKey::from_seed([3; 32]),
            // Positions 1..=3 are the three events: no member facts first.
            LedgerOptions { require_known_members: false, ..LedgerOptions::default() },
        );
        for (i, rec) in [NOW - 200, NOW - 100, NOW].into_iter().enumerate() {
            let e = NewEvent {
                member_id: i as u64 + 1,
                purpose: "train_ai_system.job_recommendations".into(),
                action: Action::Grant,
                notice_version: 1,
                source: Source::Ui,
                actor: "member".into(),
                event_time: rec - 10,
                idempotency_key: format!("k{i}"),
            };
            l.append_at(vec![e], rec).unwrap();
        }
        l
    }

    #[test]
    fn the_tolerance_is_the_ledgers() {
        assert_eq!(MAX_CLOCK_SKEW, LedgerOptions::default().max_clock_skew);
    }

    #[test]
    fn positions_and_past_times_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(dir.path());
        let s = l.store();
        assert_eq!(resolve(s, At::Now, NOW + 5).unwrap(), Resolved { position: 3, time: NOW + 5 });
        assert_eq!(resolve(s, At::Seq(0), NOW).unwrap(), Resolved { position: 0, time: 0 });
        assert_eq!(resolve(s, At::Seq(2), NOW).unwrap(), Resolved { position: 2, time: NOW - 100 });
        assert_eq!(resolve(s, At::Time(NOW - 150), NOW).unwrap(), Resolved { position: 1, time: NOW - 150 });
        assert_eq!(resolve(s, At::Time(NOW - 1000), NOW).unwrap(), Resolved { position: 0, time: NOW - 1000 });
        assert_eq!(resolve(s, At::Time(NOW), NOW).unwrap(), Resolved { position: 3, time: NOW });
    }

    #[test]
    fn the_future_and_past_the_end_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(dir.path());
        let s = l.store();
        // 2100-01-01: today's minors would count as adults.
        let e = resolve(s, At::Time(4_102_444_800), NOW).unwrap_err();
        assert!(e.is_bad_input() && e.to_string().contains("2100-01-01") && e.to_string().contains("future"), "{e}");
        assert!(resolve(s, At::Time(NOW + 1), NOW).is_err());
        let e = resolve(s, At::Seq(4), NOW).unwrap_err();
        assert!(e.is_bad_input() && e.to_string().contains("past the end"), "{e}");
        // A recorded time a little ahead of this clock is skew; far ahead is not.
        assert_eq!(resolve(s, At::Seq(3), NOW - 60).unwrap(), Resolved { position: 3, time: NOW });
        let e = resolve(s, At::Seq(3), NOW - MAX_CLOCK_SKEW - 1).unwrap_err();
        assert!(e.is_bad_input() && e.to_string().contains("after the present"), "{e}");
    }
}
