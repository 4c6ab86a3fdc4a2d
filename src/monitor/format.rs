//! Times and durations written the way nats-server writes them, so tools
//! that parse its JSON read ours.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// RFC 3339 in UTC with nanoseconds (Go's `time.Time` JSON form).
pub fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(&Rfc3339).unwrap_or_default()
}

/// nats-server's `myUptime`: whole seconds as `1y2d3h4m5s`, leaving out
/// leading zero units (`3m12s`, `45s`). Used for `uptime` and `idle`.
pub(super) fn uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (mins, hours) = (secs / 60, secs / 3600);
    let (days, years) = (hours / 24, hours / 24 / 365);
    if years > 0 {
        format!("{years}y{}d{}h{}m{}s", days % 365, hours % 24, mins % 60, secs % 60)
    } else if days > 0 {
        format!("{days}d{}h{}m{}s", hours % 24, mins % 60, secs % 60)
    } else if hours > 0 {
        format!("{hours}h{}m{}s", mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{mins}m{}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// Go's `time.Duration.String()`: `0s`, `850ns`, `1.5µs`, `2.25ms`,
/// `1m30.5s`, `1h0m0s`. Used for `rtt`.
pub(super) fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let mut out = String::new();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        write_fraction(&mut out, nanos, 1_000, 3);
        out.push_str("µs");
        return out;
    }
    if nanos < 1_000_000_000 {
        write_fraction(&mut out, nanos, 1_000_000, 6);
        out.push_str("ms");
        return out;
    }
    let secs = nanos / 1_000_000_000;
    let (hours, mins) = (secs / 3600, secs / 60 % 60);
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || mins > 0 {
        let _ = write!(out, "{mins}m");
    }
    write_fraction(&mut out, nanos % 60_000_000_000, 1_000_000_000, 9);
    out.push('s');
    out
}

/// `value / unit` with the remainder as up to `digits` decimals, trailing
/// zeros removed.
fn write_fraction(out: &mut String, value: u128, unit: u128, digits: usize) {
    let _ = write!(out, "{}", value / unit);
    let frac = value % unit;
    if frac > 0 {
        let text = format!("{frac:0digits$}");
        let _ = write!(out, ".{}", text.trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_like_nats_server() {
        assert_eq!(uptime(Duration::from_millis(999)), "0s");
        assert_eq!(uptime(Duration::from_secs(45)), "45s");
        assert_eq!(uptime(Duration::from_secs(192)), "3m12s");
        assert_eq!(uptime(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(uptime(Duration::from_secs(86_400 + 3723)), "1d1h2m3s");
        assert_eq!(uptime(Duration::from_secs(366 * 86_400)), "1y1d0h0m0s");
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_micros(2_250)), "2.25ms");
        assert_eq!(go_duration(Duration::from_millis(1)), "1ms");
        assert_eq!(go_duration(Duration::from_millis(90_500)), "1m30.5s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn rfc3339_in_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
    }
}
