//! Latency samples and the figures drawn from them.

use std::time::Duration;

/// Latencies of one kind of operation.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    sorted: bool,
    nanos: Vec<u64>,
}

impl Samples {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            sorted: true,
            nanos: Vec::with_capacity(n),
        }
    }

    /// Adds one latency.
    pub fn push(&mut self, d: Duration) {
        self.nanos
            .push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// Moves every sample of `other` into `self`.
    pub fn merge(&mut self, other: Self) {
        self.nanos.extend(other.nanos);
        self.sorted = false;
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.nanos.sort_unstable();
            self.sorted = true;
        }
    }

    /// The `p`-th percentile (0–100) in milliseconds, by the nearest-rank method.
    pub fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.nanos.is_empty() {
            return None;
        }
        self.sort();
        let n = self.nanos.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        Some(self.nanos[idx] as f64 / 1e6)
    }

    /// Median in milliseconds.
    pub fn median_ms(&mut self) -> Option<f64> {
        self.percentile_ms(50.0)
    }

    /// 99th percentile in milliseconds.
    pub fn p99_ms(&mut self) -> Option<f64> {
        self.percentile_ms(99.0)
    }

    /// Points `(percentile, ms)` for a latency plot.
    pub fn curve(&mut self) -> Vec<(f64, f64)> {
        const POINTS: [f64; 16] = [
            0.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 98.0, 99.0, 99.5,
            99.9,
        ];
        POINTS
            .iter()
            .filter_map(|&p| Some((p, self.percentile_ms(p.max(0.001))?)))
            .collect()
    }
}

/// Operations per second.
pub fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        assert_eq!(s.median_ms(), None);
        for ms in 1..=100 {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.median_ms(), Some(50.0));
        assert_eq!(s.p99_ms(), Some(99.0));
        assert_eq!(s.percentile_ms(100.0), Some(100.0));
        assert_eq!(s.percentile_ms(0.0), Some(1.0));
        assert_eq!(s.curve().len(), 16);
        assert!((per_second(10, Duration::from_millis(500)) - 20.0).abs() < 1e-9);
    }
}
