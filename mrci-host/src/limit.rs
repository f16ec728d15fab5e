//! A per-address rate limit for login and recovery attempts (COMMANDS.md §7 item 9): at
//! most `max` attempts per address in each fixed window of `window_secs`.
//!
//! Invariant: the limiter never reads a clock; callers pass `now`, so tests control time.

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

/// Fixed-window counters keyed by address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    max: u32,
    window_secs: i64,
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl RateLimiter {
    /// At most `max` attempts per `window_secs`; `max == 0` disables the limit.
    pub(crate) fn new(max: u32, window_secs: i64) -> Self {
        Self {
            max,
            window_secs: window_secs.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt from `ip` at `now`; false if the address is over its limit.
    pub(crate) fn allow(&self, ip: IpAddr, now: i64) -> bool {
        if self.max == 0 {
            return true;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        // Forget finished windows now and then so the map stays small.
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now - *start < self.window_secs);
        }
        let entry = windows.entry(ip).or_insert((now, 0));
        if now - entry.0 >= self.window_secs {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_window() {
        let limiter = RateLimiter::new(2, 60);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.allow(a, 0) && limiter.allow(a, 1));
        assert!(!limiter.allow(a, 2));
        assert!(limiter.allow(b, 2), "other addresses are not affected");
        assert!(limiter.allow(a, 60), "a new window starts");
        assert!(RateLimiter::new(0, 60).allow(a, 0));
    }
}
