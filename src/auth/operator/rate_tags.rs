//! A user JWT's publish rate limit, from warden's own tags (JWTs have no
//! claim for it): `warden-msgs-per-sec:N`, `warden-bytes-per-sec:N`,
//! `warden-burst-msgs:N`, `warden-burst-bytes:N`, and for operators who
//! prefer cutting to holding back `warden-rate-exceeded:close` with an
//! optional `warden-close-after:DURATION` (`30s`, `2m`), as `nsc edit user
//! --tag` or any JWT library writes them (lower case, as nsc stores tags).
//! The meaning is the config's `rate_limit`; other servers ignore the tags.
//!
//! Fails closed: a `warden-` tag that is not one of these, a value that is
//! not a whole number, a tag given twice, a burst without its rate or a
//! limit of 0 refuses the login rather than let the user publish unlimited.

use crate::config::{parse_duration, RateLimit, DEFAULT_CLOSE_AFTER};

/// The tags' prefix.
const PREFIX: &str = "warden-";

/// The rate limit `tags` set, if any; why they cannot be read otherwise.
pub(crate) fn rate_limit(tags: &[String]) -> Result<Option<RateLimit>, String> {
    let mut limit = RateLimit::default();
    let mut seen = false;
    let (mut exceeded, mut close_after) = (None, None);
    for tag in tags.iter().filter(|t| t.starts_with(PREFIX)) {
        let (key, value) = tag.split_once(':').ok_or_else(|| format!("tag {tag:?} has no value"))?;
        let value = value.trim();
        let slot = match &key[PREFIX.len()..] {
            "msgs-per-sec" => &mut limit.msgs_per_sec,
            "bytes-per-sec" => &mut limit.bytes_per_sec,
            "burst-msgs" => &mut limit.burst_msgs,
            "burst-bytes" => &mut limit.burst_bytes,
            "rate-exceeded" => {
                let closes = matches!(value, "close");
                if !(closes || value == "wait") || exceeded.replace(closes).is_some() {
                    return Err(format!("tag {tag:?}: must be wait or close, once"));
                }
                continue;
            }
            "close-after" => {
                let after = parse_duration(value).map_err(|why| format!("tag {tag:?}: {why}"))?;
                if after.is_zero() || close_after.replace(after).is_some() {
                    return Err(format!("tag {tag:?}: zero, or given twice"));
                }
                continue;
            }
            _ => return Err(format!("tag {tag:?} is not one of warden's")),
        };
        let n: u64 = value.parse().map_err(|_| format!("tag {tag:?}: not a whole number"))?;
        if n == 0 || *slot != 0 {
            return Err(format!("tag {tag:?}: 0, or given twice"));
        }
        *slot = n;
        seen = true;
    }
    let closes = exceeded == Some(true);
    if close_after.is_some() && !closes {
        return Err("warden-close-after needs warden-rate-exceeded:close".into());
    }
    if exceeded.is_some() && !seen {
        return Err("warden-rate-exceeded without a rate".into());
    }
    limit.close_after = closes.then(|| close_after.unwrap_or(DEFAULT_CLOSE_AFTER));
    if !seen {
        return Ok(None);
    }
    if (limit.burst_msgs > 0 && limit.msgs_per_sec == 0) || (limit.burst_bytes > 0 && limit.bytes_per_sec == 0) {
        return Err("a warden-burst tag without its rate".into());
    }
    if limit.msgs_per_sec == 0 && limit.bytes_per_sec == 0 {
        return Err("warden rate tags set no rate".into());
    }
    if limit.burst_msgs == 0 {
        limit.burst_msgs = limit.msgs_per_sec;
    }
    if limit.burst_bytes == 0 {
        limit.burst_bytes = limit.bytes_per_sec;
    }
    Ok(Some(limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tags_give_the_configs_limit() {
        assert_eq!(rate_limit(&tags(&["team:eng"])), Ok(None));
        let limit = rate_limit(&tags(&["team:eng", "warden-msgs-per-sec:500", "warden-burst-msgs:20"])).unwrap();
        let want = RateLimit { msgs_per_sec: 500, burst_msgs: 20, ..RateLimit::default() };
        assert_eq!(limit, Some(want));
        let limit = rate_limit(&tags(&["warden-bytes-per-sec:1048576"])).unwrap().unwrap();
        assert_eq!((limit.bytes_per_sec, limit.burst_bytes), (1 << 20, 1 << 20));
        assert_eq!(limit.close_after, None, "held back, not closed, unless a tag says so");
    }

    #[test]
    fn rate_exceeded_close_closes_after_close_after() {
        let limit = rate_limit(&tags(&["warden-msgs-per-sec:5", "warden-rate-exceeded:close"])).unwrap().unwrap();
        assert_eq!(limit.close_after, Some(DEFAULT_CLOSE_AFTER));
        let limit =
            rate_limit(&tags(&["warden-rate-exceeded:close", "warden-close-after:2m", "warden-msgs-per-sec:5"]));
        assert_eq!(limit.unwrap().unwrap().close_after, Some(std::time::Duration::from_secs(120)));
        let limit = rate_limit(&tags(&["warden-msgs-per-sec:5", "warden-rate-exceeded:wait"])).unwrap().unwrap();
        assert_eq!(limit.close_after, None);
    }

    #[test]
    fn what_cannot_be_read_refuses_the_login() {
        for bad in [
            &["warden-msgs-per-sec"][..],
            &["warden-msgs-per-second:5"],
            &["warden-msgs-per-sec:5k"],
            &["warden-msgs-per-sec:0"],
            &["warden-msgs-per-sec:5", "warden-msgs-per-sec:6"],
            &["warden-burst-msgs:5"],
            &["warden-burst-msgs:5", "warden-bytes-per-sec:100"],
            &["warden-rate-exceeded:close"],
            &["warden-msgs-per-sec:5", "warden-rate-exceeded:cut"],
            &["warden-msgs-per-sec:5", "warden-rate-exceeded:close", "warden-rate-exceeded:wait"],
            &["warden-msgs-per-sec:5", "warden-rate-exceeded:wait", "warden-rate-exceeded:close"],
            &["warden-msgs-per-sec:5", "warden-close-after:10s"],
            &["warden-msgs-per-sec:5", "warden-rate-exceeded:close", "warden-close-after:0s"],
            &["warden-msgs-per-sec:5", "warden-rate-exceeded:close", "warden-close-after:soon"],
        ] {
            assert!(rate_limit(&tags(bad)).is_err(), "{bad:?}");
        }
    }
}
