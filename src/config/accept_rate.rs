//! `accept_rate { conns_per_sec, burst_conns, conns_per_sec_per_ip,
//! burst_conns_per_ip }` (warden's own) on the client listener (top level),
//! in `websocket {}` and in `leafnodes {}`; and nats-server's
//! `tls { connection_rate_limit }`, which is the client listener's
//! `conns_per_sec` with a burst of the same.

use super::error::{conflict, invalid, ConfigError};
use super::options::AcceptRate;
use super::schema::{Block, Opt, Reload, Step::Check, Step::Key, Ty};
use super::section;
use super::value::{Entry, Value};

/// Highest rate or burst accepted: a connection every microsecond.
const MAX: i64 = 1_000_000;

/// Reads an `accept_rate` block, named `what` in messages.
pub(crate) fn read(value: &Value, what: &'static str) -> Result<AcceptRate, ConfigError> {
    let mut rate = AcceptRate::default();
    ACCEPT_RATE.read_value(what, value, &mut rate)?;
    if !rate.is_on() {
        return Err(invalid(
            value,
            format!(
                "{what} sets no rate: give conns_per_sec or conns_per_sec_per_ip (leave the block out for no limit)"
            ),
        ));
    }
    Ok(rate)
}

/// nats-server's `tls { connection_rate_limit: N }` (0: no limit, as there).
pub(crate) fn connection_rate_limit(value: &Value) -> Result<u32, ConfigError> {
    let n = section::integer_in(value, "connection_rate_limit", 0, MAX)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The client listener's rate once `accept_rate` and `tls {
/// connection_rate_limit }` are both read: the latter is `conns_per_sec`
/// with as large a burst, and may not contradict the former.
pub(crate) fn with_tls_limit(rate: &mut AcceptRate, tls_limit: u32, tls_entry: &Entry) -> Result<(), ConfigError> {
    if tls_limit == 0 {
        return Ok(());
    }
    if rate.conns_per_sec > 0 {
        return Err(conflict(
            tls_entry,
            "tls connection_rate_limit and accept_rate conns_per_sec both limit the client listener; keep one",
        ));
    }
    rate.conns_per_sec = tls_limit;
    rate.burst_conns = tls_limit;
    Ok(())
}

fn rate(e: &Entry, what: &str) -> Result<u32, ConfigError> {
    let n = section::integer_in(&e.value, what, 1, MAX)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A listener's accept rate. Listeners are bound once, so a reload keeps
/// the rates the server started with.
pub(crate) static ACCEPT_RATE: Block<AcceptRate> = Block {
    unsupported: &[],
    steps: &[
        Key(
            &Opt::new(&["conns_per_sec"], Ty::Integer, Reload::Restart)
                .means(
                    "New connections a second the listener keeps in all; past it one is closed as soon as \
                    it is accepted, before TLS and INFO",
                )
                .default("no limit")
                .differs("warden only"),
            |e, r, _| rate(e, "conns_per_sec").map(|n| r.conns_per_sec = n),
        ),
        Key(
            &Opt::new(&["burst_conns"], Ty::Integer, Reload::Restart)
                .means("New connections the listener keeps at once after a quiet spell")
                .default("`conns_per_sec`")
                .differs("warden only"),
            |e, r, _| rate(e, "burst_conns").map(|n| r.burst_conns = n),
        ),
        Key(
            &Opt::new(&["conns_per_sec_per_ip"], Ty::Integer, Reload::Restart)
                .means(
                    "New connections a second from one peer address (an IPv6 /64 counts as one), checked \
                    first: a storming address cannot spend the listener's budget",
                )
                .default("no limit")
                .differs("warden only"),
            |e, r, _| rate(e, "conns_per_sec_per_ip").map(|n| r.conns_per_sec_per_ip = n),
        ),
        Key(
            &Opt::new(&["burst_conns_per_ip"], Ty::Integer, Reload::Restart)
                .means("New connections from one peer address at once after a quiet spell")
                .default("`conns_per_sec_per_ip`")
                .differs("warden only"),
            |e, r, _| rate(e, "burst_conns_per_ip").map(|n| r.burst_conns_per_ip = n),
        ),
        Check(|r, f| {
            for (burst, rate, name, needs) in [
                (r.burst_conns, r.conns_per_sec, "burst_conns", "conns_per_sec"),
                (r.burst_conns_per_ip, r.conns_per_sec_per_ip, "burst_conns_per_ip", "conns_per_sec_per_ip"),
            ] {
                if let (true, Some(e)) = (burst > 0 && rate == 0, f.get(name)) {
                    return Err(invalid(&e.value, format!("{name} needs its rate ({needs})")));
                }
            }
            if r.burst_conns == 0 {
                r.burst_conns = r.conns_per_sec;
            }
            if r.burst_conns_per_ip == 0 {
                r.burst_conns_per_ip = r.conns_per_sec_per_ip;
            }
            Ok(())
        }),
    ],
};

#[cfg(test)]
mod tests;
