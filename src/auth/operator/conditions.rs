//! Where and when a user JWT may log in: `src` (CIDR list), `times`
//! (daily windows, with `times_location`) and `allowed_connection_types`.

use std::net::IpAddr;

use crate::jwt::{TimeRange, UserClaims};

/// Connection types nats-server knows; others in a JWT are ignored, but a
/// list of only unknown ones admits nobody (nats-server's rule).
const KNOWN_TYPES: &[&str] = &["STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS", "IN_PROCESS"];
const SECONDS_PER_DAY: i64 = 86_400;

/// Why a user may not log in here and now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotHere {
    /// Not from this address.
    Source,
    /// Outside its connect times.
    Time,
    /// Not on this kind of connection.
    ConnectionType,
    /// A condition warden cannot evaluate (a bad CIDR, a time zone other than UTC).
    Unreadable(String),
}

/// Checks a user's conditions for a connection from `from` (its address
/// and connection type, `STANDARD` or `WEBSOCKET`) at `now` (Unix seconds);
/// without `from`, `src` and the type are not checked (a re-check of a live
/// connection). `Ok(Some(t))`: allowed until `t`, the end of its window.
pub fn check(user: &UserClaims, from: Option<(IpAddr, &str)>, now: i64) -> Result<Option<i64>, NotHere> {
    let (ip, kind) = (from.map(|(ip, _)| ip), from.map(|(_, kind)| kind));
    if let (false, Some(kind)) = (user.allowed_connection_types.is_empty(), kind) {
        let known: Vec<String> = user
            .allowed_connection_types
            .iter()
            .map(|t| t.to_ascii_uppercase())
            .filter(|t| KNOWN_TYPES.contains(&t.as_str()))
            .collect();
        if !known.iter().any(|t| t == kind) {
            return Err(NotHere::ConnectionType);
        }
    }
    if let (false, Some(ip)) = (user.src.is_empty(), ip) {
        let mut inside = false;
        for cidr in &user.src {
            inside |= contains(cidr, ip).ok_or_else(|| NotHere::Unreadable(format!("src {cidr:?} is not a CIDR")))?;
        }
        if !inside {
            return Err(NotHere::Source);
        }
    }
    if user.times.is_empty() {
        return Ok(None);
    }
    let location = user.times_location.as_str();
    if !(location.is_empty() || location.eq_ignore_ascii_case("UTC") || location == "Etc/UTC") {
        return Err(NotHere::Unreadable(format!("times_location {location:?}: only UTC is supported")));
    }
    let mut until = None;
    for range in &user.times {
        if let Some(end) = window_end(range, now)? {
            until = Some(until.map_or(end, |u: i64| u.max(end)));
        }
    }
    until.map(Some).ok_or(NotHere::Time)
}

/// The end of the window of `range` that `now` is in, if it is in one. A
/// window whose end is before its start runs past midnight.
fn window_end(range: &TimeRange, now: i64) -> Result<Option<i64>, NotHere> {
    let unreadable = || NotHere::Unreadable(format!("time range {:?}-{:?}", range.start, range.end));
    let start = seconds_of_day(&range.start).ok_or_else(unreadable)?;
    let end = seconds_of_day(&range.end).ok_or_else(unreadable)?;
    let midnight = now - now.rem_euclid(SECONDS_PER_DAY);
    let length = if end > start { end - start } else { end + SECONDS_PER_DAY - start };
    // The window that began today, or (past midnight) yesterday.
    for day in [midnight, midnight - SECONDS_PER_DAY] {
        let from = day + start;
        if from <= now && now < from + length {
            return Ok(Some(from + length));
        }
    }
    Ok(None)
}

fn seconds_of_day(text: &str) -> Option<i64> {
    let mut parts = text.split(':').map(|p| p.parse::<i64>().ok().filter(|_| p.len() == 2));
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    (parts.next().is_none() && h < 24 && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

/// Whether `cidr` (`addr/bits`) contains `ip`; `None` if it does not parse.
fn contains(cidr: &str, ip: IpAddr) -> Option<bool> {
    crate::cidr::Cidr::parse(cidr).map(|range| range.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserClaims {
        UserClaims::default()
    }

    const LOCAL: &str = "127.0.0.1";
    /// 2026-12-02T10:00:00Z.
    const TEN: i64 = 1_796_205_600;

    #[test]
    fn sources_are_cidrs() {
        let mut u = user();
        u.src = vec!["10.0.0.0/8".into(), "127.0.0.1/32".into()];
        assert_eq!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Ok(None));
        u.src = vec!["10.0.0.0/8".into()];
        assert_eq!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Err(NotHere::Source));
        u.src = vec!["::1/128".into()];
        assert_eq!(check(&u, Some(("::1".parse().unwrap(), "STANDARD")), TEN), Ok(None));
        u.src = vec!["banana".into()];
        assert!(matches!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Err(NotHere::Unreadable(_))));
    }

    #[test]
    fn windows_end_when_they_end_and_may_span_midnight() {
        let mut u = user();
        u.times = vec![TimeRange { start: "09:00:00".into(), end: "11:00:00".into() }];
        assert_eq!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Ok(Some(TEN + 3600)));
        u.times = vec![TimeRange { start: "11:00:00".into(), end: "12:00:00".into() }];
        assert_eq!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Err(NotHere::Time));
        u.times = vec![TimeRange { start: "22:00:00".into(), end: "10:30:00".into() }];
        assert_eq!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Ok(Some(TEN + 1800)));
        u.times_location = "Europe/Berlin".into();
        assert!(matches!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Err(NotHere::Unreadable(_))));
    }

    #[test]
    fn connection_types_unknown_ones_ignored() {
        let mut u = user();
        u.allowed_connection_types = vec!["websocket".into()];
        assert_eq!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Err(NotHere::ConnectionType));
        assert_eq!(check(&u, Some((LOCAL.parse().unwrap(), "WEBSOCKET")), TEN), Ok(None));
        assert_eq!(check(&u, None, TEN), Ok(None), "a re-check of a live connection");
        u.allowed_connection_types = vec!["STANDARD".into(), "CARRIER_PIGEON".into()];
        assert_eq!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Ok(None));
        u.allowed_connection_types = vec!["CARRIER_PIGEON".into()];
        assert_eq!(check(&u, Some((LOCAL.parse().unwrap(), "STANDARD")), TEN), Err(NotHere::ConnectionType));
    }
}
