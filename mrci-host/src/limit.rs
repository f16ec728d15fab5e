//! A per-address rate limit for login and recovery attempts (COMMANDS.md §7 item 9): at
//! most `max` attempts per address in each fixed window of `window_secs`. `max` is passed
//! with each attempt, so a runtime change of `security.auth_attempts_per_minute` applies to
//! the next attempt.
//!
//! Invariant: the limiter never reads a clock; callers pass `now`, so tests control time.

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

/// Fixed-window counters keyed by address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    window_secs: i64,
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl RateLimiter {
    /// Windows of `window_secs`.
    pub(crate) fn new(window_secs: i64) -> Self {
        Self {
            window_secs: window_secs.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt from `ip` at `now`; false if the address is over `max` in this
    /// window. `max == 0` disables the limit.
    pub(crate) fn allow(&self, ip: IpAddr, now: i64, max: u32) -> bool {
        if max == 0 {
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
        entry.1 <= max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_window() {
        let limiter = RateLimiter::new(60);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.allow(a, 0, 2) && limiter.allow(a, 1, 2));
        assert!(!limiter.allow(a, 2, 2));
        assert!(limiter.allow(b, 2, 2), "other addresses are not affected");
        // Refused attempts count too: this is the fourth in the window.
        assert!(
            limiter.allow(a, 2, 4),
            "a raised limit applies to the next attempt"
        );
        assert!(!limiter.allow(a, 3, 4));
        assert!(limiter.allow(a, 60, 2), "a new window starts");
        assert!(RateLimiter::new(60).allow(a, 0, 0));
    }
}
