//! Strict reading of one block of the value tree: option lookup by
//! case-insensitive name and aliases, typed accessors with positioned
//! errors, and the unknown-key check with a "did you mean" suggestion.

use std::time::Duration;

use super::duration::parse_duration;
use super::error::{invalid, ConfigError, ErrorKind};
use super::value::{Entry, Kind, Map, Value};

/// One block being read. Every entry must be taken by [`Section::get`] or be
/// a variable that something referred to, or [`Section::finish`] fails.
pub(crate) struct Section<'a> {
    /// How messages name the block ("authorization", "the top level").
    name: &'static str,
    map: &'a Map,
    taken: Vec<bool>,
    /// Every name asked for, for suggestions.
    known: Vec<&'static str>,
}

impl<'a> Section<'a> {
    pub(crate) fn new(name: &'static str, map: &'a Map) -> Self {
        Section { name, map, taken: vec![false; map.entries.len()], known: Vec::new() }
    }

    /// The entry for the option called `names[0]` (or one of its aliases),
    /// matched case-insensitively as nats-server does. Two entries for the
    /// same option (`user` and `username`, `port` and `PORT`) are a conflict.
    pub(crate) fn get(&mut self, names: &[&'static str]) -> Result<Option<&'a Entry>, ConfigError> {
        self.known.extend_from_slice(names);
        let mut found: Option<&'a Entry> = None;
        for (i, entry) in self.map.entries.iter().enumerate() {
            if !names.iter().any(|n| entry.key.eq_ignore_ascii_case(n)) {
                continue;
            }
            if let Some(first) = found {
                return Err(ConfigError::at(
                    ErrorKind::Conflict,
                    &entry.key_pos,
                    format!(
                        "`{}` sets the same option as `{}` at {} in {}",
                        entry.key, first.key, first.key_pos, self.name
                    ),
                ));
            }
            found = Some(entry);
            if let Some(taken) = self.taken.get_mut(i) {
                *taken = true;
            }
        }
        Ok(found)
    }

    /// Fails on the first entry nobody asked for, unless it was referred to
    /// as a variable. `unsupported` lists nats-server options of this block
    /// that warden does not implement, for a clearer message.
    pub(crate) fn finish(self, unsupported: &[&str]) -> Result<(), ConfigError> {
        for (entry, taken) in self.map.entries.iter().zip(&self.taken) {
            if *taken || entry.used_as_variable {
                continue;
            }
            let message = if unsupported.iter().any(|u| entry.key.eq_ignore_ascii_case(u)) {
                format!("`{}` is a nats-server option that warden does not support (in {})", entry.key, self.name)
            } else {
                match nearest(&entry.key, &self.known) {
                    Some(near) => format!("unknown key `{}` in {}; did you mean `{near}`?", entry.key, self.name),
                    None => {
                        let mut known = self.known.clone();
                        known.sort_unstable();
                        known.dedup();
                        format!("unknown key `{}` in {}; known keys: {}", entry.key, self.name, known.join(", "))
                    }
                }
            };
            return Err(ConfigError::at(ErrorKind::UnknownKey, &entry.key_pos, message));
        }
        Ok(())
    }
}

/// The known name closest to `key` by edit distance, if it is close enough
/// to be a likely typo.
pub(crate) fn nearest(key: &str, known: &[&'static str]) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let limit = (key.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(&key, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, counting transposed neighbours as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]; three rows suffice.
    let mut two_back: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(two_back[j - 2] + 1);
            }
            row[j] = d;
        }
        two_back = std::mem::replace(&mut prev, row);
    }
    prev[b.len()]
}

fn type_error(value: &Value, what: &str, expected: &str) -> ConfigError {
    ConfigError::at(ErrorKind::Type, &value.pos, format!("{what} must be {expected}, found {}", value.describe()))
}

/// A string.
pub(crate) fn string<'v>(value: &'v Value, what: &str) -> Result<&'v str, ConfigError> {
    match &value.kind {
        Kind::String(s) => Ok(s),
        _ => Err(type_error(value, what, "a string")),
    }
}

/// A non-empty string without whitespace (names, hosts, paths).
pub(crate) fn word<'v>(value: &'v Value, what: &str) -> Result<&'v str, ConfigError> {
    let s = string(value, what)?;
    if s.is_empty() {
        return Err(invalid(value, format!("{what} must not be empty")));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(invalid(value, format!("{what} must not contain spaces")));
    }
    Ok(s)
}

/// A user name: non-empty, no control characters, no space at either end;
/// spaces inside are allowed, since a certificate's subject DN (`OU=NATS.io
/// Operators`) names a user under `verify_and_map`.
pub(crate) fn user_name<'v>(value: &'v Value, what: &str) -> Result<&'v str, ConfigError> {
    let s = string(value, what)?;
    if s.is_empty() {
        return Err(invalid(value, format!("{what} must not be empty")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(value, format!("{what} must not contain control characters")));
    }
    if s.trim() != s {
        return Err(invalid(value, format!("{what} must not begin or end with a space")));
    }
    Ok(s)
}

/// A map.
pub(crate) fn map<'v>(value: &'v Value, what: &str) -> Result<&'v Map, ConfigError> {
    match &value.kind {
        Kind::Map(m) => Ok(m),
        _ => Err(type_error(value, what, "a map { ... }")),
    }
}

/// An array.
pub(crate) fn array<'v>(value: &'v Value, what: &str) -> Result<&'v [Value], ConfigError> {
    match &value.kind {
        Kind::Array(items) => Ok(items),
        _ => Err(type_error(value, what, "an array [ ... ]")),
    }
}

/// A boolean (unquoted true/false/yes/no/on/off).
pub(crate) fn boolean(value: &Value, what: &str) -> Result<bool, ConfigError> {
    match value.kind {
        Kind::Bool(b) => Ok(b),
        _ => Err(type_error(value, what, "true or false")),
    }
}

/// An integer, with or without a size suffix.
pub(crate) fn integer(value: &Value, what: &str) -> Result<i64, ConfigError> {
    match value.kind {
        Kind::Integer(i) | Kind::Size(i) => Ok(i),
        _ => Err(type_error(value, what, "an integer")),
    }
}

/// An integer in `min..=max`.
pub(crate) fn integer_in(value: &Value, what: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n = integer(value, what)?;
    if n < min || n > max {
        return Err(invalid(value, format!("{what} must be between {min} and {max}, found {n}")));
    }
    Ok(n)
}

/// A count or size in `min..`, as `usize`.
pub(crate) fn count(value: &Value, what: &str, min: i64) -> Result<usize, ConfigError> {
    let max = i64::try_from(usize::MAX).unwrap_or(i64::MAX);
    let n = integer_in(value, what, min, max)?;
    usize::try_from(n).map_err(|_| invalid(value, format!("{what} is out of range")))
}

/// A port: 0..=65535, or -1 (nats-server's "any free port"), which is 0.
pub(crate) fn port(value: &Value, what: &str) -> Result<u16, ConfigError> {
    let n = integer_in(value, what, -1, 65535)?;
    Ok(u16::try_from(n).unwrap_or(0))
}

/// `host:port`, `[v6]:port`, `:port`, a port number, or a string of digits.
/// A missing host is `default_host`.
pub(crate) fn host_port(value: &Value, what: &str, default_host: &str) -> Result<(String, u16), ConfigError> {
    if let Kind::Integer(_) = value.kind {
        return Ok((default_host.to_owned(), port(value, what)?));
    }
    let text = word(value, what)?;
    let bad =
        || invalid(value, format!("{what} must be host:port, [ipv6]:port, :port or a port number, found \"{text}\""));
    let (host, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':').ok_or_else(bad)?)
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        ("", text)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(invalid(value, format!("{what}: write an IPv6 address in brackets, e.g. [::1]:4222")));
        }
        (host, port)
    };
    if host.contains(['/', '@']) {
        return Err(bad());
    }
    let port: i64 = port_text.parse().map_err(|_| bad())?;
    if !(-1..=65535).contains(&port) {
        return Err(invalid(value, format!("{what}: port must be between 0 and 65535, found {port}")));
    }
    let host = if host.is_empty() { default_host } else { host };
    Ok((host.to_owned(), u16::try_from(port).unwrap_or(0)))
}

/// How a duration option may be written besides a duration string.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bare {
    /// Only a duration string.
    No,
    /// A bare integer is seconds.
    Seconds,
    /// A bare integer or float is seconds.
    FractionalSeconds,
}

/// A duration: a Go-style string, or (where nats-server allows it) a bare
/// number of seconds. Returns whether it was a bare number, for a warning.
pub(crate) fn duration(value: &Value, what: &str, bare: Bare) -> Result<(Duration, bool), ConfigError> {
    let expected = match bare {
        Bare::No => "a duration string such as \"2m\"",
        Bare::Seconds => "a duration such as \"2m\" or a number of seconds",
        Bare::FractionalSeconds => "a duration such as \"1.5s\" or a number of seconds",
    };
    match value.kind {
        Kind::String(ref s) => {
            parse_duration(s).map(|d| (d, false)).map_err(|m| invalid(value, format!("{what}: {m}")))
        }
        Kind::Integer(n) if bare != Bare::No => {
            let secs = u64::try_from(n).map_err(|_| invalid(value, format!("{what} must not be negative")))?;
            Ok((Duration::from_secs(secs), true))
        }
        Kind::Float(f) if bare == Bare::FractionalSeconds => Duration::try_from_secs_f64(f)
            .map(|d| (d, true))
            .map_err(|_| invalid(value, format!("{what} must be a non-negative number of seconds"))),
        Kind::Size(_) => Err(ConfigError::at(
            ErrorKind::Type,
            &value.pos,
            format!(
                "{what} must be {expected}; an unquoted number with a letter such as 2m is a size \
                 (2m = 2000000), so write durations in quotes: \"2m\""
            ),
        )),
        _ => Err(type_error(value, what, expected)),
    }
}

/// A [`duration`] that must be more than zero: a timeout or an expiry of
/// zero would refuse or expire everything at once.
pub(crate) fn nonzero_duration(value: &Value, what: &str, bare: Bare) -> Result<(Duration, bool), ConfigError> {
    let (d, was_bare) = duration(value, what, bare)?;
    if d.is_zero() {
        return Err(invalid(value, format!("{what} must be more than zero")));
    }
    Ok((d, was_bare))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = ["port", "listen", "max_payload", "max_pending", "authorization"];
        assert_eq!(nearest("prot", &known), Some("port"));
        assert_eq!(nearest("PORT", &known), Some("port"));
        assert_eq!(nearest("max_paylod", &known), Some("max_payload"));
        assert_eq!(nearest("authorisation", &known), Some("authorization"));
        assert_eq!(nearest("lisen", &known), Some("listen"));
        assert_eq!(nearest("zzzzzz", &known), None);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
