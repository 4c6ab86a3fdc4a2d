//! Process figures for `/varz`: resident memory and CPU use, read from
//! `/proc` (Linux); elsewhere both are 0.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on every
/// Linux architecture warden targets; reading `sysconf` would need libc).
const TICKS_PER_SECOND: f64 = 100.0;
/// CPU use is averaged over at least this long, like nats-server's
/// once-a-second sampling.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`, which is
/// in kB and so needs no page size).
pub(super) fn resident_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// User plus system CPU time of this process, in seconds (0 if unknown).
pub(super) fn cpu_seconds() -> f64 {
    cpu_ticks().map_or(0.0, |t| t as f64 / TICKS_PER_SECOND)
}

/// User plus system CPU time of this process, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields
    // are counted after its closing parenthesis, which starts at field 3.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

#[derive(Debug)]
struct Sample {
    at: Instant,
    ticks: u64,
    /// The last figure computed, reported until the next interval ends.
    percent: Option<f64>,
}

/// CPU use in percent of one core (may exceed 100 on several cores, as
/// nats-server reports it), averaged since the previous sample at least
/// [`MIN_INTERVAL`] old; the first figure covers the time since monitoring
/// started.
#[derive(Debug)]
pub(super) struct CpuMeter {
    sample: Mutex<Sample>,
}

impl CpuMeter {
    /// Starts measuring now.
    pub(super) fn new() -> Self {
        CpuMeter { sample: Mutex::new(Sample { at: Instant::now(), ticks: cpu_ticks().unwrap_or(0), percent: None }) }
    }

    /// The current figure, rounded to two decimals.
    pub(super) fn percent(&self) -> f64 {
        let Some(ticks) = cpu_ticks() else { return 0.0 };
        let now = Instant::now();
        let mut sample = self.sample.lock();
        let elapsed = now.saturating_duration_since(sample.at);
        if elapsed < MIN_INTERVAL {
            if let Some(percent) = sample.percent {
                return percent;
            }
        }
        let seconds = elapsed.as_secs_f64();
        let used = ticks.saturating_sub(sample.ticks) as f64 / TICKS_PER_SECOND;
        let percent = if seconds > 0.0 { (used / seconds * 10_000.0).round() / 100.0 } else { 0.0 };
        if elapsed >= MIN_INTERVAL {
            *sample = Sample { at: now, ticks, percent: Some(percent) };
        }
        percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_bytes() > 0);
            assert!(cpu_ticks().is_some());
        }
        let meter = CpuMeter::new();
        assert!(meter.percent() >= 0.0);
    }
}
