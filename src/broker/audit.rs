//! Rate limiting for security log events, so an attacker cannot flood the log.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::warn;

/// Security events logged per window before the rest are only counted.
const SECURITY_PER_WINDOW: u32 = 20;
/// Window length.
const WINDOW: Duration = Duration::from_secs(1);

/// Lets through at most `per_window` events per second; logs how many were
/// suppressed when the next window opens.
#[derive(Debug)]
pub struct LogLimiter {
    state: Mutex<(Instant, u32, u64)>,
    per_window: u32,
    /// What the suppressed ones were, for that log line.
    what: &'static str,
}

impl Default for LogLimiter {
    /// The security log's limiter.
    fn default() -> Self {
        LogLimiter::new(SECURITY_PER_WINDOW, "security events not logged because of their rate")
    }
}

impl LogLimiter {
    /// At most `per_window` a second; `what` names the suppressed ones.
    pub fn new(per_window: u32, what: &'static str) -> Self {
        LogLimiter { state: Mutex::new((Instant::now(), 0, 0)), per_window, what }
    }

    /// Whether this event may be logged.
    pub fn allow(&self) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock();
        let (start, count, suppressed) = &mut *state;
        if now.duration_since(*start) >= WINDOW {
            if *suppressed > 0 {
                warn!(suppressed = *suppressed, "{}", self.what);
            }
            *start = now;
            *count = 0;
            *suppressed = 0;
        }
        if *count < self.per_window {
            *count += 1;
            true
        } else {
            *suppressed += 1;
            false
        }
    }
}
