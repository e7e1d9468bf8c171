//! Member tokens already verified by this session, so a member's next request with the same token skips the
//! signature check (an Ed25519 verification, the largest cost of a small read). A hit is exactly as good as a full
//! check: the signature, issuer and audience of a given token string never change within a session (the token key
//! is read once per session), and its times are checked again on every hit.

use crate::auth::CLOCK_SKEW_SECS;
use crate::session::Session;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most tokens remembered; when full the cache starts over (a miss only costs a full verification).
const CAPACITY: usize = 1 << 16;

/// Verified tokens: token → (member, not before, expiry).
#[derive(Default)]
pub(crate) struct TokenCache(Mutex<HashMap<Box<str>, (u64, i64, i64)>>);

impl TokenCache {
    /// Remembers a token that passed every check.
    pub(crate) fn insert(&self, token: &str, member: u64, nbf: i64, exp: i64) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= CAPACITY {
                m.clear();
            }
            m.insert(token.into(), (member, nbf, exp));
        }
    }

    /// The member of a remembered token that is within its lifetime at `now` (with the same leeway as a full check).
    fn get(&self, token: &str, now: i64) -> Option<u64> {
        let m = self.0.lock().ok()?;
        let &(member, nbf, exp) = m.get(token)?;
        (now + CLOCK_SKEW_SECS >= nbf && now < exp + CLOCK_SKEW_SECS).then_some(member)
    }
}

impl Session {
    /// The member a bearer token speaks for when this session already verified that token and it is still within
    /// its lifetime at `now`; `None` means "verify it" ([`Session::verify_member_token`]), never "refused". Reads no
    /// file and no database, so a front end may call it on an asynchronous thread.
    pub fn cached_member_token(&self, token: &str, now: i64) -> Option<u64> {
        self.token_cache.get(token, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_token_counts_only_within_its_lifetime() {
        let c = TokenCache::default();
        c.insert("t", 42, 1000, 2000);
        assert_eq!(c.get("t", 1500), Some(42));
        assert_eq!(c.get("other", 1500), None);
        // The same leeway as a full check, and no more.
        assert_eq!(c.get("t", 1000 - CLOCK_SKEW_SECS), Some(42));
        assert_eq!(c.get("t", 1000 - CLOCK_SKEW_SECS - 1), None);
        assert_eq!(c.get("t", 2000 + CLOCK_SKEW_SECS - 1), Some(42));
        assert_eq!(c.get("t", 2000 + CLOCK_SKEW_SECS), None);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let c = TokenCache::default();
        for i in 0..CAPACITY as u64 {
            c.insert(&i.to_string(), i, 0, 10);
        }
        assert_eq!(c.get("7", 5), Some(7));
        c.insert("new", 1, 0, 10);
        assert_eq!(c.get("7", 5), None);
        assert_eq!(c.get("new", 5), Some(1));
    }
}
