//! Token-bucket rate limits per key (a token's id, a client address), bounded in memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Most keys remembered; past that, full (idle) buckets are forgotten first.
const MAX_KEYS: usize = 100_000;

/// Buckets of `rate` requests per second with a burst of twice that, one per key.
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` per second; 0 turns the limit off.
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        RateLimiter {
            rate,
            burst: (rate * 2.0).max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request for `key` at `now`: `Ok`, or `Err(seconds to wait)`.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), u64> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() >= MAX_KEYS && !b.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            b.retain(|_, (level, at)| {
                *level + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
            if b.len() >= MAX_KEYS {
                // Every bucket is busy: refuse newcomers rather than grow without bound.
                return Err(1);
            }
        }
        let (level, at) = b.entry(key.clone()).or_insert((self.burst, now));
        *level =
            (*level + now.saturating_duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *level) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refuses_then_refills() {
        let l = RateLimiter::new(2);
        let t = Instant::now();
        for _ in 0..4 {
            assert_eq!(l.take(&"a", t), Ok(()));
        }
        assert_eq!(l.take(&"a", t), Err(1));
        assert_eq!(l.take(&"b", t), Ok(()));
        assert_eq!(l.take(&"a", t + Duration::from_millis(600)), Ok(()));
        let off = RateLimiter::new(0);
        for _ in 0..1000 {
            assert_eq!(off.take(&"a", t), Ok(()));
        }
    }
}
