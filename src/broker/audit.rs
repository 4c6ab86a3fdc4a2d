//! Rate limiting for security log events, so an attacker cannot flood the log.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::warn;

/// Events logged per window before the rest are only counted.
const PER_WINDOW: u32 = 20;
/// Window length.
const WINDOW: Duration = Duration::from_secs(1);

/// Lets through at most `PER_WINDOW` events per second; reports how many
/// were suppressed when the next window opens.
#[derive(Debug)]
pub struct LogLimiter {
    state: Mutex<(Instant, u32, u64)>,
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter { state: Mutex::new((Instant::now(), 0, 0)) }
    }
}

impl LogLimiter {
    /// Whether this event may be logged.
    pub fn allow(&self) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock();
        let (start, count, suppressed) = &mut *state;
        if now.duration_since(*start) >= WINDOW {
            if *suppressed > 0 {
                warn!(suppressed = *suppressed, "security events not logged because of their rate");
            }
            *start = now;
            *count = 0;
            *suppressed = 0;
        }
        if *count < PER_WINDOW {
            *count += 1;
            true
        } else {
            *suppressed += 1;
            false
        }
    }
}
