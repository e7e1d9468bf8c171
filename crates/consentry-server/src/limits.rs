//! Per-caller rate limits: a token bucket per principal (member id or API key id) and, for requests without a
//! credential or with one that does not authenticate, per client IP. Over the limit a caller gets a 429 problem
//! with `Retry-After`. Memory is bounded: a bucket that has refilled is the same as no bucket, so full buckets are
//! dropped when the table reaches its size; if every tracked caller is still active, a new one is not tracked
//! (and not limited) until some bucket refills.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One bucket's rate: `per_second` requests sustained, `burst` at once. A rate of 0 disables the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second sustained.
    pub per_second: f64,
    /// Requests a rested caller may make at once.
    pub burst: f64,
}

/// The service's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Per authenticated principal (member or API key).
    pub principal: RateLimit,
    /// Per client IP, for requests without a credential or whose credential does not authenticate.
    pub anonymous: RateLimit,
    /// The most callers tracked at once.
    pub max_tracked: usize,
}

impl Default for RateLimits {
    /// Generous for a member's app and for a load test spread over many members; a single caller hammering
    /// the service is throttled.
    fn default() -> Self {
        RateLimits {
            principal: RateLimit { per_second: 500.0, burst: 1000.0 },
            anonymous: RateLimit { per_second: 100.0, burst: 200.0 },
            max_tracked: 100_000,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every tracked caller.
pub struct Limiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// A limiter with `limits`.
    pub fn new(limits: RateLimits) -> Limiter {
        Limiter { limits, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from an authenticated principal's bucket (`key`: `Principal::describe()`), or says how
    /// long until there is one.
    pub fn principal(&self, key: &str) -> Result<(), Duration> {
        self.take(key, self.limits.principal, Instant::now())
    }

    /// Takes one request from a client address's bucket.
    pub fn anonymous(&self, ip: Option<std::net::IpAddr>) -> Result<(), Duration> {
        let key = match ip {
            Some(ip) => format!("ip {ip}"),
            None => "ip unknown".to_string(),
        };
        self.take(&key, self.limits.anonymous, Instant::now())
    }

    fn take(&self, key: &str, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        if limit.per_second <= 0.0 {
            return Ok(());
        }
        let refill = |b: &Bucket| {
            (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * limit.per_second).min(limit.burst)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(key) {
            if buckets.len() >= self.limits.max_tracked {
                // A full bucket carries no state: dropping it changes no caller's limit.
                buckets.retain(|_, b| refill(b) < limit.burst);
                if buckets.len() >= self.limits.max_tracked {
                    return Ok(());
                }
            }
            buckets.insert(key.to_string(), Bucket { tokens: limit.burst, at: now });
        }
        let Some(b) = buckets.get_mut(key) else { return Ok(()) };
        b.tokens = refill(b);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / limit.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max_tracked: usize) -> Limiter {
        let l = RateLimit { per_second: 10.0, burst: 3.0 };
        Limiter::new(RateLimits { principal: l, anonymous: l, max_tracked })
    }

    /// A limiter tracking at most `max_tracked` callers whose caller `a` has spent its burst of 3 at `t`.
    fn drained(max_tracked: usize, t: Instant) -> (Limiter, RateLimit) {
        let l = limiter(max_tracked);
        let lim = l.limits.principal;
        for _ in 0..3 {
            assert_eq!(l.take("a", lim, t), Ok(()));
        }
        (l, lim)
    }

    #[test]
    fn a_burst_then_a_wait_then_one_more() {
        let t = Instant::now();
        let (l, lim) = drained(10, t);
        let wait = l.take("a", lim, t).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        // Another caller is unaffected.
        assert_eq!(l.take("b", lim, t), Ok(()));
        assert_eq!(l.take("a", lim, t + Duration::from_millis(100)), Ok(()));
    }

    #[test]
    fn memory_is_bounded_and_eviction_drops_only_rested_buckets() {
        let t = Instant::now();
        let (l, lim) = drained(2, t);
        l.take("b", lim, t).unwrap();
        // Both are active: a third caller is not tracked, and `a` stays limited.
        assert_eq!(l.take("c", lim, t), Ok(()));
        assert!(l.take("a", lim, t).is_err());
        assert_eq!(l.buckets.lock().unwrap().len(), 2);
        // A second later both have refilled and are dropped to make room for `c`.
        let later = t + Duration::from_secs(1);
        l.take("c", lim, later).unwrap();
        let buckets = l.buckets.lock().unwrap();
        assert!(buckets.contains_key("c") && buckets.len() <= 2, "{:?}", buckets.keys().collect::<Vec<_>>());
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        let l =
            Limiter::new(RateLimits { principal: RateLimit { per_second: 0.0, burst: 0.0 }, ..RateLimits::default() });
        for _ in 0..10_000 {
            assert_eq!(l.principal("a"), Ok(()));
        }
    }
}
