//! `rate_limit { msgs_per_sec, bytes_per_sec, burst_msgs, burst_bytes }`
//! (warden's own), on a user entry and in an account's `limits {}`.

use super::error::{invalid, ConfigError};
use super::options::RateLimit;
use super::schema::{Block, Opt, Reload, Step::Check, Step::Key, Ty};
use super::section;
use super::value::{Entry, Value};

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
