//! Slowing down repeated login failures from one address (beyond
//! nats-server, which answers every failure at once).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failures from one address answered without delay.
const FREE_FAILURES: u32 = 3;
/// First delay after the free failures; doubles per failure.
const BASE_DELAY: Duration = Duration::from_millis(250);
/// A failure older than this is forgotten.
const MEMORY: Duration = Duration::from_secs(600);
/// Most addresses remembered; past it expired entries go, then all.
const CAPACITY: usize = 16_384;

/// Per-address failure counts and the delay they earn.
#[derive(Debug)]
pub struct FailureThrottle {
    max_delay: Duration,
    entries: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailureThrottle {
    /// A throttle whose delay never exceeds `max_delay` (zero disables it).
    pub fn new(max_delay: Duration) -> Self {
        FailureThrottle { max_delay, entries: Mutex::new(HashMap::new()) }
    }

    /// Records a failure from `ip` and returns how long to wait before
    /// answering it.
    pub fn failure(&self, ip: IpAddr, now: Instant) -> Duration {
        if self.max_delay.is_zero() {
            return Duration::ZERO;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(&ip) {
            entries.retain(|_, (_, at)| now.duration_since(*at) < MEMORY);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        let entry = entries.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let over = entry.0.saturating_sub(FREE_FAILURES);
        if over == 0 {
            return Duration::ZERO;
        }
        BASE_DELAY.saturating_mul(1u32 << (over - 1).min(16)).min(self.max_delay)
    }

    /// Forgets `ip`'s failures after a successful login.
    pub fn success(&self, ip: IpAddr) {
        self.entries.lock().remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_after_free_failures_and_resets_on_success() {
        let t = FailureThrottle::new(Duration::from_secs(2));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let now = Instant::now();
        let delays: Vec<Duration> = (0..7).map(|_| t.failure(ip, now)).collect();
        assert_eq!(&delays[..3], &[Duration::ZERO; 3]);
        assert_eq!(delays[3], Duration::from_millis(250));
        assert_eq!(delays[4], Duration::from_millis(500));
        assert_eq!(delays[6], Duration::from_secs(2), "capped");
        t.success(ip);
        assert_eq!(t.failure(ip, now), Duration::ZERO);
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(t.failure(other, now), Duration::ZERO, "per address");
        assert_eq!(t.failure(ip, now + MEMORY), Duration::ZERO, "forgotten after a while");
    }
}
