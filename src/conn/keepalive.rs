//! Keep-alive: the server's PINGs, the stale-connection rule and the
//! round-trip time, as a value that takes `now` (no clock, no timer).
//!
//! As nats-server: the first PING goes out early (it measures the RTT),
//! then one per `ping_interval` unless the connection was busy both ways
//! and the RTT is known; more than `ping_max` PINGs without a PONG makes
//! the connection stale.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::broker::Client;

/// The server's keep-alive PING, the same on every kind of connection.
const PING: &[u8] = b"PING\r\n";

/// The connection answered too few PINGs: the session closes it, with
/// its own words for it (a client hears `-ERR 'Stale Connection'`, a
/// route is logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stale;

/// Time to a client's first server PING, which measures the round-trip
/// time (nats-server's `firstClientPingInterval`).
pub(crate) const FIRST_CLIENT_PING: Duration = Duration::from_secs(2);
/// Time to a route's first PING (nats-server's `firstPingInterval`).
pub(crate) const FIRST_PEER_PING: Duration = Duration::from_secs(1);

/// What a keep-alive tick asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tick {
    /// Nothing to send.
    Quiet,
    /// Send a PING.
    Ping,
    /// Too many PINGs went unanswered: close as stale.
    Stale,
}

/// PINGs out, when the next tick is due, and whether the client spoke.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    interval: Duration,
    max_out: u32,
    next: Instant,
    /// PINGs sent and not answered.
    out: u32,
    /// When the oldest unanswered PING went out.
    sent_at: Option<Instant>,
    /// The client sent something since the last tick.
    heard: bool,
}

impl KeepAlive {
    /// Keep-alive for a connection that starts at `now`, first pinging
    /// after `first` (or `interval`, if shorter).
    pub(crate) fn new(now: Instant, first: Duration, interval: Duration, max_out: u32) -> Self {
        KeepAlive { interval, max_out, next: now + first.min(interval), out: 0, sent_at: None, heard: false }
    }

    /// When the next tick is due.
    pub(crate) fn next(&self) -> Instant {
        self.next
    }

    /// The client sent an op.
    pub(crate) fn heard(&mut self) {
        self.heard = true;
    }

    /// A PONG from `client` arrived at `now`: the round-trip time of the
    /// oldest unanswered PING, if one was out, becomes the client's RTT
    /// (as monitoring shows it). Every session's PONG comes here.
    pub(crate) fn pong_from(&mut self, now: Instant, client: &Client) {
        if let Some(rtt) = self.pong(now) {
            let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1);
            client.rtt_nanos.store(nanos, Ordering::Relaxed);
        }
    }

    /// A PONG arrived at `now`: the round-trip time of the oldest
    /// unanswered PING, if one was out.
    fn pong(&mut self, now: Instant) -> Option<Duration> {
        if self.out == 0 {
            return None;
        }
        self.out = 0;
        self.sent_at.take().map(|sent| now.saturating_duration_since(sent))
    }

    /// Keeps `client` alive at `now`, if a tick is due: queues the PING
    /// itself. Every session's timer calls this, so the rule is one.
    pub(crate) fn run(&mut self, now: Instant, client: &Client) -> Result<(), Stale> {
        if now < self.next {
            return Ok(());
        }
        let delivered = client.outbound.take_activity();
        let rtt_known = client.rtt_nanos.load(Ordering::Relaxed) != 0;
        match self.tick(now, delivered, rtt_known) {
            Tick::Quiet => Ok(()),
            Tick::Ping => {
                client.send(PING);
                // The PING itself is not traffic: without this a silent
                // connection with a known RTT went stale only after twice
                // `ping_max` intervals.
                client.outbound.take_activity();
                Ok(())
            }
            Tick::Stale => Err(Stale),
        }
    }

    /// The tick at `now`. `delivered`: the connection was sent something
    /// since the last tick; `rtt_known`: a round trip was measured.
    fn tick(&mut self, now: Instant, delivered: bool, rtt_known: bool) -> Tick {
        self.next = now + self.interval;
        let active = std::mem::take(&mut self.heard) | delivered;
        if active && rtt_known {
            return Tick::Quiet;
        }
        if self.out + 1 > self.max_out {
            return Tick::Stale;
        }
        self.out += 1;
        self.sent_at.get_or_insert(now);
        Tick::Ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_until_stale_and_measures_the_round_trip() {
        let start = Instant::now();
        let mut k = KeepAlive::new(start, FIRST_CLIENT_PING, Duration::from_secs(120), 2);
        assert_eq!(k.next(), start + FIRST_CLIENT_PING);
        assert_eq!(k.tick(k.next(), false, false), Tick::Ping);
        let sent = start + FIRST_CLIENT_PING;
        assert_eq!(k.pong(sent + Duration::from_millis(3)), Some(Duration::from_millis(3)));
        assert_eq!(k.pong(sent + Duration::from_secs(1)), None, "a PONG nobody asked for measures nothing");
        assert_eq!(k.next(), sent + Duration::from_secs(120));
        // Busy both ways with a known RTT: no PING needed.
        k.heard();
        assert_eq!(k.tick(k.next(), true, true), Tick::Quiet);
        // Silent: two PINGs, then stale.
        assert_eq!(k.tick(k.next(), false, true), Tick::Ping);
        assert_eq!(k.tick(k.next(), false, true), Tick::Ping);
        assert_eq!(k.tick(k.next(), false, true), Tick::Stale);
    }

    #[test]
    fn a_short_interval_comes_before_the_first_ping() {
        let start = Instant::now();
        let k = KeepAlive::new(start, FIRST_CLIENT_PING, Duration::from_millis(100), 2);
        assert_eq!(k.next(), start + Duration::from_millis(100));
    }
}
