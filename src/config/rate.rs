//! `rate_limit { msgs_per_sec, bytes_per_sec, burst_msgs, burst_bytes }`
//! (warden's own), on a user entry and in an account's `limits {}`.

use std::time::Duration;

use super::error::{invalid, ConfigError};
use super::options::RateLimit;
use super::schema::{Block, Opt, Reload, Step::Check, Step::Key, Ty};
use super::section::{self, Bare};
use super::value::{Entry, Kind, Value};

/// How long a connection may stay over its rate with `rate_exceeded:
/// close` before it is closed, unless `close_after` says otherwise.
pub const DEFAULT_CLOSE_AFTER: Duration = Duration::from_secs(10);

/// Reads a `rate_limit` block.
pub(crate) fn read(value: &Value, what: &'static str) -> Result<RateLimit, ConfigError> {
    let mut limit = RateLimit::default();
    RATE_LIMIT.read_value(what, value, &mut limit)?;
    if limit.msgs_per_sec == 0 && limit.bytes_per_sec == 0 {
        return Err(invalid(value, "rate_limit sets no rate: give msgs_per_sec or bytes_per_sec (more than 0)"));
    }
    Ok(limit)
}

fn rate(e: &Entry, what: &str) -> Result<u64, ConfigError> {
    section::count(&e.value, what, 0).map(|n| n as u64)
}

/// A publisher's rate limit. Without a burst, a rate's burst is one
/// second's worth.
pub(crate) static RATE_LIMIT: Block<RateLimit> = Block {
    unsupported: &[],
    steps: &[
        Key(
            &Opt::new(&["msgs_per_sec"], Ty::Integer, Reload::Yes)
                .means("Messages a second the publisher may send; over it, it is not read until back within it")
                .default("no limit")
                .differs("warden only"),
            |e, r, _| rate(e, "msgs_per_sec").map(|n| r.msgs_per_sec = n),
        ),
        Key(
            &Opt::new(&["bytes_per_sec"], Ty::Size, Reload::Yes)
                .means("Bytes of messages (headers and payload) a second, likewise")
                .default("no limit")
                .differs("warden only"),
            |e, r, _| rate(e, "bytes_per_sec").map(|n| r.bytes_per_sec = n),
        ),
        Key(
            &Opt::new(&["burst_msgs"], Ty::Integer, Reload::Yes)
                .means("Messages that may go at once after a quiet spell")
                .default("`msgs_per_sec`")
                .differs("warden only"),
            |e, r, _| rate(e, "burst_msgs").map(|n| r.burst_msgs = n),
        ),
        Key(
            &Opt::new(&["burst_bytes"], Ty::Size, Reload::Yes)
                .means("Bytes that may go at once after a quiet spell")
                .default("`bytes_per_sec`")
                .differs("warden only"),
            |e, r, _| rate(e, "burst_bytes").map(|n| r.burst_bytes = n),
        ),
        Key(
            &Opt::new(&["rate_exceeded"], Ty::Text("`wait` or `close`"), Reload::Yes)
                .means(
                    "What a connection over its rate gets: held back (`wait`), or closed after `close_after` over it",
                )
                .default("`wait`")
                .differs("warden only"),
            |e, r, _| match &e.value.kind {
                Kind::String(s) if s.eq_ignore_ascii_case("wait") => Ok(()),
                Kind::String(s) if s.eq_ignore_ascii_case("close") => {
                    r.close_after = Some(DEFAULT_CLOSE_AFTER);
                    Ok(())
                }
                _ => Err(invalid(&e.value, "rate_exceeded must be \"wait\" or \"close\"")),
            },
        ),
        Key(
            &Opt::new(&["close_after"], Ty::Duration, Reload::Yes)
                .means("With `rate_exceeded: close`, how long without a break over the rate closes the connection")
                .default("\"10s\"")
                .differs("warden only"),
            |e, r, f| {
                let closes = f
                    .get("rate_exceeded")
                    .is_some_and(|x| matches!(&x.value.kind, Kind::String(s) if s.eq_ignore_ascii_case("close")));
                if !closes {
                    return Err(invalid(&e.value, "close_after needs rate_exceeded: close"));
                }
                let (after, _) = section::duration(&e.value, "close_after", Bare::No)?;
                if after.is_zero() {
                    return Err(invalid(&e.value, "close_after must be more than zero"));
                }
                r.close_after = Some(after);
                Ok(())
            },
        ),
        Check(|r, f| {
            let at = |name: &str| f.get(name).map(|e| &e.value);
            for (burst, rate, name) in
                [(r.burst_msgs, r.msgs_per_sec, "burst_msgs"), (r.burst_bytes, r.bytes_per_sec, "burst_bytes")]
            {
                if burst > 0 && rate == 0 {
                    if let Some(v) = at(name) {
                        let rate = name.replace("burst_", "") + "_per_sec";
                        return Err(invalid(v, format!("{name} needs its rate ({rate})")));
                    }
                }
            }
            if r.burst_msgs == 0 {
                r.burst_msgs = r.msgs_per_sec;
            }
            if r.burst_bytes == 0 {
                r.burst_bytes = r.bytes_per_sec;
            }
            Ok(())
        }),
    ],
};
