//! A shared token bucket for bandwidth caps (volunteers on metered links).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes per second, with up to one second of burst.
pub struct RateLimit {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RateLimit({} B/s)", self.rate)
    }
}

impl RateLimit {
    pub fn new(bytes_per_second: u64) -> RateLimit {
        let rate = bytes_per_second.max(1) as f64;
        RateLimit { rate, state: Mutex::new((rate, Instant::now())) }
    }

    /// Takes up to `want` bytes of budget: `Ok(n)` with `n ≥ 1`, or `Err(wait)`
    /// when the bucket is empty.
    pub fn take(&self, want: usize) -> Result<usize, Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
        s.0 = (s.0 + refill).min(self.rate);
        s.1 = now;
        if s.0 >= 1.0 {
            let n = (want as f64).min(s.0).max(1.0) as usize;
            s.0 -= n as f64;
            Ok(n.min(want).max(1))
        } else {
            let chunk = (self.rate / 10.0).clamp(1.0, 16384.0);
            Err(Duration::from_secs_f64((chunk - s.0) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_grants_its_burst_then_asks_to_wait() {
        let r = RateLimit::new(1000);
        assert_eq!(r.take(600), Ok(600));
        assert_eq!(r.take(600), Ok(400));
        assert!(r.take(10).is_err());
    }
}
