//! Durations written as Go's `time.ParseDuration` reads them (`"2m"`,
//! `"500ms"`, `"1h30m"`, `"1.5s"`), which is what nats-server configs use.

use std::time::Duration;

/// Parses a non-negative Go-style duration: one or more `<number><unit>` with
/// units `ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`; a number may have a
/// fraction. `"0"` alone is zero. `Err` is a message.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration \"{}\"", text.escape_default());
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(format!("duration \"{text}\" is negative"));
    }
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, after) = split_digits(rest);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after_dot) => split_digits(after_dot),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("duration \"{}\" needs a unit (ns, us, ms, s, m, h)", text.escape_default())),
            _ => {
                return Err(format!(
                    "unknown unit \"{}\" in duration \"{}\" (use ns, us, ms, s, m, h)",
                    unit.escape_default(),
                    text.escape_default()
                ))
            }
        };
        // More than 20 digits overflows any duration we accept anyway.
        if whole.len() > 20 {
            return Err(format!("duration \"{text}\" is out of range"));
        }
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        // Digits past the 18th are below a nanosecond for every unit; drop them.
        let fraction = fraction.get(..fraction.len().min(18)).unwrap_or("");
        let fraction_nanos = if fraction.is_empty() {
            0
        } else {
            let digits = u32::try_from(fraction.len()).unwrap_or(18);
            let value: u128 = fraction.parse().map_err(|_| invalid())?;
            value * nanos_per_unit / 10u128.pow(digits)
        };
        total = total.saturating_add(whole.saturating_mul(nanos_per_unit)).saturating_add(fraction_nanos);
        if total > u128::from(u64::MAX) {
            return Err(format!("duration \"{text}\" is out of range"));
        }
        rest = after;
    }
    let nanos = u64::try_from(total).map_err(|_| format!("duration \"{text}\" is out of range"))?;
    Ok(Duration::from_nanos(nanos))
}

/// Splits leading ASCII digits off `text`.
fn split_digits(text: &str) -> (&str, &str) {
    let end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    text.split_at(end)
}

/// Formats a duration the way a config would write it (`2m`, `1h30m`, `500ms`).
pub(crate) fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos % 1_000_000_000 != 0 {
        if nanos % 1_000_000 == 0 {
            return format!("{}ms", nanos / 1_000_000);
        }
        if nanos % 1_000 == 0 {
            return format!("{}us", nanos / 1_000);
        }
        return format!("{nanos}ns");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        let cases = [
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("2m", Duration::from_secs(120)),
            ("500ms", ms(500)),
            ("10s", Duration::from_secs(10)),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5s", ms(1500)),
            (".5s", ms(500)),
            ("1.s", Duration::from_secs(1)),
            ("1h1m1s1ms1us1ns", Duration::new(3661, 1_001_001)),
            ("250us", Duration::from_micros(250)),
            ("250\u{b5}s", Duration::from_micros(250)),
            ("250\u{3bc}s", Duration::from_micros(250)),
            ("100ns", Duration::from_nanos(100)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("1.0000000001s", Duration::from_secs(1)),
            ("2562047h", Duration::from_secs(2_562_047 * 3600)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_durations() {
        for text in [
            "",
            "-1s",
            "10",
            "1x",
            "s",
            ".s",
            "1..5s",
            "1 s",
            "1s ",
            "99999999999999999999999h",
            "5124096h",
            "1.5",
            "1d",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["2m", "10s", "1h30m", "500ms", "250us", "7ns", "0s", "1h0m1s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
