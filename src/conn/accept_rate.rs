//! The accept rate of a listener (`accept_rate {}`, and the client
//! listener's `tls { connection_rate_limit }`): how many new connections a
//! second it takes in all and from one address, decided the moment a
//! socket is accepted, before TLS and before INFO. A refused socket is
//! closed without a word: anything written would be work done for the
//! very storm the limit is there to shed (an INFO line, a task, a flush
//! deadline), and before TLS nothing can be written that a TLS client
//! could read.
//!
//! What it defends against: a connection storm (a misbehaving fleet, a
//! reconnect loop, a flood) spending the server's CPU on TLS handshakes
//! and login checks, and filling its pending-connection slots. The
//! per-address budget is checked first and a refused connection costs its
//! address nothing more, so one address that storms is held to its own
//! rate and cannot take the listener-wide budget meant for everyone else.
//! A storm spread over many addresses is what the listener-wide budget is
//! for: it caps what all of them together get, and then well-behaved
//! newcomers compete with the storm for it (established connections are
//! never touched).
//!
//! Each budget is a token bucket kept as one instant (GCRA: the
//! "theoretical arrival time"): a connection is allowed when the bucket's
//! time is at most `burst - 1` intervals ahead of now, and pushes it one
//! interval further. Addresses live in a fixed table ([`ADDRESS_SLOTS`]
//! entries, about 40 bytes each, allocated once) at two places chosen by a
//! keyed hash (the key is random per process, so nobody can aim an address
//! at another's slots). When both places are taken by others, the one with
//! the least debt gives way: forgetting an address only forgives it, so
//! eviction can never make another address be refused; an address that
//! keeps storming has the most debt and is forgotten last. Addresses are
//! whole IPs, as for `max_connections_per_ip` (an IPv6 attacker with a
//! /64 has many).
//!
//! Sans IO: every decision takes `now`, so the tests drive it with any
//! instant.
#![deny(clippy::disallowed_methods)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::cidr::Cidr;
use crate::config::AcceptRate;

/// Addresses whose budgets are remembered at once, per listener: 4096
/// slots of about 40 bytes, 160 KiB, allocated when the listener starts
/// with a per-address rate. A storm from more addresses than this makes
/// the quietest ones forgotten (forgiven), which is what the listener-wide
/// budget covers.
pub const ADDRESS_SLOTS: usize = 4096;

/// Least time between two log lines about refused connections.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// One token bucket's rate and burst, as GCRA's emission interval and
/// tolerance.
#[derive(Debug, Clone, Copy)]
struct Rate {
    /// Time one connection costs: a second over the rate.
    interval: Duration,
    /// How far ahead of now the bucket's time may be after a connection:
    /// `burst` intervals.
    tolerance: Duration,
}

impl Rate {
    /// `per_sec` connections a second, `burst` at once; `None` when
    /// `per_sec` is 0 (no limit).
    fn new(per_sec: u32, burst: u32) -> Option<Rate> {
        if per_sec == 0 {
            return None;
        }
        let interval = Duration::from_nanos(1_000_000_000 / u64::from(per_sec)).max(Duration::from_nanos(1));
        let tolerance = interval.saturating_mul(burst.max(1));
        Some(Rate { interval, tolerance })
    }

    /// The bucket's time after one more connection at `now`, if that
    /// connection is within the rate (`tat`: the bucket's time; `None` is
    /// a full bucket).
    fn take(&self, tat: Option<Instant>, now: Instant) -> Option<Instant> {
        let from = tat.map_or(now, |t| t.max(now));
        let next = from.checked_add(self.interval)?;
        (next.saturating_duration_since(now) <= self.tolerance).then_some(next)
    }
}

/// Which budget refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// Its address's (`conns_per_sec_per_ip`, `burst_conns_per_ip`).
    Address,
    /// The listener's (`conns_per_sec`, `burst_conns`).
    Listener,
}

/// What to log about refused connections: at most one line a
/// [`LOG_EVERY`], counting those refused since the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Refused over their address's budget since the last line.
    pub over_address: u64,
    /// Refused over the listener's budget since the last line.
    pub over_listener: u64,
}

/// A refused connection: which budget, and a log line when one is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The budget it was over.
    pub over: Over,
    /// What to log now, if a line is due.
    pub report: Option<Report>,
}

/// The per-address budgets: a fixed table of (address, bucket time).
#[derive(Debug)]
struct Addresses {
    rate: Rate,
    slots: Box<[Option<(IpAddr, Instant)>]>,
    hasher: RandomState,
}

impl Addresses {
    fn new(rate: Rate) -> Addresses {
        Addresses { rate, slots: vec![None; ADDRESS_SLOTS].into_boxed_slice(), hasher: RandomState::new() }
    }

    /// The two places `ip` may live.
    fn places(&self, ip: IpAddr) -> [usize; 2] {
        let hash = self.hasher.hash_one(ip);
        let len = self.slots.len();
        // Both halves of one 64-bit keyed hash; a table length that is not
        // a power of two would only skew the spread slightly.
        [(hash as u32 as usize) % len, ((hash >> 32) as usize) % len]
    }

    /// Where `ip` is, or where it goes (`false`: the slot holds another
    /// address, to be replaced): its own slot; else a free one or one whose
    /// bucket is full (its address is owed nothing); else the one with
    /// the least debt.
    fn find(&self, ip: IpAddr, now: Instant) -> (usize, bool) {
        let places = self.places(ip);
        let held = |i: usize| self.slots.get(i).copied().flatten();
        if let Some(&i) = places.iter().find(|&&i| held(i).is_some_and(|(a, _)| a == ip)) {
            return (i, true);
        }
        let debt = |i: usize| held(i).map(|(_, tat)| tat.max(now));
        let [a, b] = places;
        (if debt(b) < debt(a) { b } else { a }, false)
    }
}

/// One listener's accept budgets and the state of its refusal log.
#[derive(Debug)]
pub struct AcceptLimiter {
    listener: Option<Rate>,
    listener_tat: Option<Instant>,
    addresses: Option<Addresses>,
    /// Addresses the per-address budget does not apply to: trusted proxies,
    /// which speak for many clients.
    exempt: Vec<Cidr>,
    last_line: Option<Instant>,
    pending: Report,
}

impl AcceptLimiter {
    /// The limiter for `limits`; `None` when it limits nothing.
    pub fn new(limits: &AcceptRate) -> Option<AcceptLimiter> {
        let listener = Rate::new(limits.conns_per_sec, limits.burst_conns);
        let addresses = Rate::new(limits.conns_per_sec_per_ip, limits.burst_conns_per_ip).map(Addresses::new);
        if listener.is_none() && addresses.is_none() {
            return None;
        }
        Some(AcceptLimiter {
            listener,
            listener_tat: None,
            addresses,
            exempt: Vec::new(),
            last_line: None,
            pending: Report { over_address: 0, over_listener: 0 },
        })
    }

    /// The same, without a per-address budget for connections from
    /// `proxies` (they still count against the listener's).
    pub fn exempting(self, proxies: Vec<Cidr>) -> AcceptLimiter {
        AcceptLimiter { exempt: proxies, ..self }
    }

    /// Whether a connection from `ip` accepted at `now` may stay. A
    /// connection counts against a budget only when it is let in, so a
    /// refused one costs neither its address nor the listener anything.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refused> {
        let exempt = self.exempt.iter().any(|c| c.contains(ip));
        let ip = crate::cidr::source(ip);
        let mut address = None;
        if let (Some(table), false) = (&self.addresses, exempt) {
            let (i, own) = table.find(ip, now);
            let tat = if own { table.slots.get(i).copied().flatten().map(|(_, t)| t) } else { None };
            match table.rate.take(tat, now) {
                Some(next) => address = Some((i, next)),
                None => return Err(self.refused(Over::Address, now)),
            }
        }
        if let Some(rate) = self.listener {
            match rate.take(self.listener_tat, now) {
                Some(next) => self.listener_tat = Some(next),
                None => return Err(self.refused(Over::Listener, now)),
            }
        }
        if let (Some(table), Some((i, next))) = (&mut self.addresses, address) {
            if let Some(slot) = table.slots.get_mut(i) {
                *slot = Some((ip, next));
            }
        }
        Ok(())
    }

    fn refused(&mut self, over: Over, now: Instant) -> Refused {
        match over {
            Over::Address => self.pending.over_address += 1,
            Over::Listener => self.pending.over_listener += 1,
        }
        let due = self.last_line.is_none_or(|last| now.saturating_duration_since(last) >= LOG_EVERY);
        let report = due.then(|| {
            self.last_line = Some(now);
            std::mem::replace(&mut self.pending, Report { over_address: 0, over_listener: 0 })
        });
        Refused { over, report }
    }
}

#[cfg(test)]
mod tests;
