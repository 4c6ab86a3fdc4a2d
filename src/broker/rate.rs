//! Publish rate limits (warden's own; nats-server has none): token buckets
//! that hold a publisher back instead of cutting it off.
//!
//! A connection over its rate is simply not read until it is back within
//! it, so TCP pushes back on the client, which slows down and loses
//! nothing; it sees no error. A user's `rate_limit` is a bucket of each
//! connection's own; an account's is one bucket per account on this server,
//! shared by its connections ([`SharedRate`]).
//!
//! The fast path is a [`Throttle`]'s allowance: messages and bytes both
//! buckets have already granted, spent per message with two subtractions,
//! no lock and no clock. When it runs out, the throttle refills it from the
//! buckets (the account's behind a short lock) in chunks of about 10 ms of
//! the tightest rate, so the shared lock is taken about a hundred times a
//! second per busy connection, never per message, and one connection cannot
//! hoard much of what the account's others could use. Time comes in as an
//! argument: everything here runs without a clock in tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::RateLimit;

/// The share of a second a throttle takes from its buckets at once.
const CHUNK: f64 = 0.01;

/// A connection held back again within this of its last hold is still over
/// its rate: a flood is held every few milliseconds, a client that keeps to
/// its rate seldom or never.
const STRETCH_GAP: Duration = Duration::from_millis(500);

/// A connection or account over its rate this long without a break is
/// reported to the system account (once a stretch).
pub const ADVISORY_AFTER: Duration = Duration::from_secs(5);

/// A run of holds, each within [`STRETCH_GAP`] of the one before: a
/// connection or account over its rate without a break.
#[derive(Debug, Default)]
struct Stretch {
    /// When the run began.
    since: Option<Instant>,
    /// The last hold.
    last: Option<Instant>,
    /// This run was reported (once a run).
    reported: bool,
}

impl Stretch {
    /// A hold at `now`: the run goes on, or a new one begins.
    fn held(&mut self, now: Instant) {
        if self.over_for(now).is_zero() {
            (self.since, self.reported) = (Some(now), false);
        }
        self.last = Some(now);
    }

    /// How long the run has lasted (zero once [`STRETCH_GAP`] has passed
    /// without a hold).
    fn over_for(&self, now: Instant) -> Duration {
        match (self.since, self.last) {
            (Some(since), Some(last)) if now.saturating_duration_since(last) <= STRETCH_GAP => {
                now.saturating_duration_since(since)
            }
            _ => Duration::ZERO,
        }
    }

    /// Whether the run has lasted [`ADVISORY_AFTER`] and was not reported
    /// yet (then it counts as reported).
    fn report_once(&mut self, now: Instant) -> bool {
        let due = !self.reported && self.over_for(now) >= ADVISORY_AFTER;
        self.reported |= due;
        due
    }
}

/// One token bucket: `per_sec` tokens a second, holding at most `burst`.
#[derive(Debug, Clone)]
struct Bucket {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    /// When it was last refilled; `None` until first used (it starts full).
    last: Option<Instant>,
}

impl Bucket {
    /// A full bucket, or none for a rate of 0 (no limit).
    fn new(per_sec: u64, burst: u64) -> Option<Bucket> {
        let burst = burst.max(1) as f64;
        (per_sec > 0).then_some(Bucket { per_sec: per_sec as f64, burst, tokens: burst, last: None })
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        }
        self.last = Some(now);
    }

    /// What to take at once: `need`, and up to a chunk of the rate more
    /// when the tokens are there.
    fn offer(&self, need: f64) -> f64 {
        need.max(self.tokens.min(self.per_sec * CHUNK))
    }

    /// Takes `n`, into debt if need be, and says how long until the debt
    /// is paid back. What goes beyond the burst is not waited for now (a
    /// message larger than the burst would wait forever for a full bucket):
    /// the debt it leaves holds back what comes after it.
    fn take(&mut self, n: f64) -> Duration {
        self.tokens -= n;
        let owed = -(self.tokens + (n - self.burst).max(0.0));
        match owed > 0.0 {
            true => Duration::from_secs_f64(owed / self.per_sec),
            false => Duration::ZERO,
        }
    }
}

/// The message and byte buckets of one limit.
#[derive(Debug, Clone)]
struct Buckets {
    msgs: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl Buckets {
    fn new(limit: &RateLimit) -> Buckets {
        Buckets {
            msgs: Bucket::new(limit.msgs_per_sec, limit.burst_msgs),
            bytes: Bucket::new(limit.bytes_per_sec, limit.burst_bytes),
        }
    }

    fn each(&mut self) -> impl Iterator<Item = &mut Bucket> {
        self.msgs.iter_mut().chain(self.bytes.iter_mut())
    }

    /// Refills both, and says what they offer towards `need` (messages,
    /// bytes): infinite for a dimension without a limit.
    fn offer(&mut self, now: Instant, need: (f64, f64)) -> (f64, f64) {
        self.each().for_each(|b| b.refill(now));
        let offer = |b: &Option<Bucket>, need: f64| b.as_ref().map_or(f64::INFINITY, |b| b.offer(need));
        (offer(&self.msgs, need.0), offer(&self.bytes, need.1))
    }

    /// Takes `taken`, into debt if need be, and says how long until the
    /// debt is paid back.
    fn take(&mut self, taken: (f64, f64)) -> Duration {
        let msgs = self.msgs.as_mut().map_or(Duration::ZERO, |b| b.take(taken.0));
        let bytes = self.bytes.as_mut().map_or(Duration::ZERO, |b| b.take(taken.1));
        msgs.max(bytes)
    }
}

/// An account's buckets and its run over the rate, behind one lock.
#[derive(Debug)]
struct AccountBuckets {
    buckets: Buckets,
    over: Stretch,
}

/// An account's rate on this server, shared by its connections.
#[derive(Debug)]
pub struct SharedRate {
    limit: RateLimit,
    buckets: Mutex<AccountBuckets>,
    /// Nanoseconds its connections spent held back by it, in all.
    held: AtomicU64,
}

impl SharedRate {
    /// The account's buckets, full.
    pub fn new(limit: RateLimit) -> SharedRate {
        let buckets = AccountBuckets { buckets: Buckets::new(&limit), over: Stretch::default() };
        SharedRate { limit, buckets: Mutex::new(buckets), held: AtomicU64::new(0) }
    }

    /// How long its connections have been held back by it, in all.
    pub fn held(&self) -> Duration {
        Duration::from_nanos(self.held.load(Ordering::Relaxed))
    }

    /// The limit as `/accountz` and the account's advisory show it.
    pub fn view(&self) -> RateView {
        let l = &self.limit;
        RateView {
            msgs_per_sec: l.msgs_per_sec,
            bytes_per_sec: l.bytes_per_sec,
            burst_msgs: l.burst_msgs,
            burst_bytes: l.burst_bytes,
        }
    }
}

/// An account's limit as monitoring and advisories show it (JSON).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RateView {
    /// Messages a second.
    pub msgs_per_sec: u64,
    /// Bytes a second.
    pub bytes_per_sec: u64,
    /// Messages at once after a quiet spell.
    pub burst_msgs: u64,
    /// Bytes at once after a quiet spell.
    pub burst_bytes: u64,
}

/// One connection's rate state: its user's buckets, its account's shared
/// ones, and the allowance both have granted.
///
/// A connection short of tokens reserves what it needs at once, putting the
/// buckets into debt, and waits until the debt is paid back: connections
/// sharing an account's bucket are served in the order they asked, so none
/// can be starved by another that always wakes first.
#[derive(Debug)]
pub struct Throttle {
    user: Option<Buckets>,
    account: Option<Arc<SharedRate>>,
    /// Messages granted and not yet spent.
    msgs: f64,
    /// Bytes granted and not yet spent.
    bytes: f64,
    /// The allowance is reserved, and may be spent from then on.
    ready_at: Option<Instant>,
    /// How long the connection has been held back since [`Throttle::take_held`].
    held: Duration,
    /// The connection's run over its rate.
    over: Stretch,
    /// The account's run over its rate has lasted [`ADVISORY_AFTER`] this
    /// long, and this connection was the one to see it (once a run).
    account_report: Option<Duration>,
    /// `rate_exceeded: close`: the shortest `close_after` of its limits.
    close_after: Option<Duration>,
}

impl Throttle {
    /// The throttle of a connection with these limits; `None` when there is
    /// none, so an unlimited connection pays one `Option` check a message.
    pub fn new(user: Option<&RateLimit>, account: Option<Arc<SharedRate>>) -> Option<Throttle> {
        if user.is_none() && account.is_none() {
            return None;
        }
        let close_after = [user.and_then(|l| l.close_after), account.as_ref().and_then(|a| a.limit.close_after)]
            .into_iter()
            .flatten()
            .min();
        Some(Throttle {
            user: user.map(Buckets::new),
            account,
            msgs: 0.0,
            bytes: 0.0,
            ready_at: None,
            held: Duration::ZERO,
            over: Stretch::default(),
            account_report: None,
            close_after,
        })
    }

    /// Admits one message of `bytes` bytes, or says until when the
    /// connection must wait before it may send it.
    #[inline]
    pub fn admit(&mut self, bytes: usize, now: Instant) -> Result<(), Instant> {
        let bytes = bytes as f64;
        if self.msgs >= 1.0 && self.bytes >= bytes && self.ready_at.is_none() {
            self.msgs -= 1.0;
            self.bytes -= bytes;
            return Ok(());
        }
        self.reserve(bytes, now)
    }

    /// The slow path of [`Throttle::admit`]: waits out a reservation, or
    /// takes what is needed (and a chunk more when it is there).
    #[cold]
    fn reserve(&mut self, bytes: f64, now: Instant) -> Result<(), Instant> {
        match self.ready_at {
            Some(ready) if now < ready => return Err(ready),
            Some(_) => self.ready_at = None,
            None => {
                let need = ((1.0 - self.msgs).max(0.0), (bytes - self.bytes).max(0.0));
                let user = self.user.as_mut().map(|u| u.offer(now, need));
                let mut grant = user.unwrap_or((f64::INFINITY, f64::INFINITY));
                let mut wait = Duration::ZERO;
                if let Some(account) = &self.account {
                    let mut shared = account.buckets.lock();
                    let offer = shared.buckets.offer(now, need);
                    grant = (grant.0.min(offer.0), grant.1.min(offer.1));
                    wait = shared.buckets.take(grant);
                    if wait > Duration::ZERO {
                        shared.over.held(now);
                        if shared.over.report_once(now) {
                            self.account_report = Some(shared.over.over_for(now));
                        }
                    }
                    drop(shared);
                    let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
                    account.held.fetch_add(nanos, Ordering::Relaxed);
                }
                if let Some(user) = &mut self.user {
                    wait = wait.max(user.take(grant));
                }
                // An unlimited dimension's allowance is infinite.
                self.msgs += grant.0;
                self.bytes += grant.1;
                if wait > Duration::ZERO {
                    self.held += wait;
                    self.over.held(now);
                    let ready = now + wait;
                    self.ready_at = Some(ready);
                    return Err(ready);
                }
            }
        }
        self.msgs -= 1.0;
        self.bytes -= bytes;
        Ok(())
    }

    /// How long the connection has been held back since the last call.
    pub fn take_held(&mut self) -> Duration {
        std::mem::take(&mut self.held)
    }

    /// How long the connection has been over its rate without a break
    /// (zero once it has gone [`STRETCH_GAP`] without being held).
    pub fn over_for(&self, now: Instant) -> Duration {
        self.over.over_for(now)
    }

    /// Whether a `rate_exceeded: close` limit says the connection must
    /// close, over its rate for `close_after` without a break.
    pub fn must_close(&self, now: Instant) -> bool {
        self.close_after.is_some_and(|after| self.over_for(now) >= after)
    }

    /// Whether this connection's run over its rate has lasted
    /// [`ADVISORY_AFTER`] and was not reported yet (then it counts as
    /// reported): once a run.
    pub fn report_once(&mut self, now: Instant) -> bool {
        self.over.report_once(now)
    }

    /// How long its account has been over the account's rate, when that
    /// has just lasted [`ADVISORY_AFTER`]: once a run of the account's,
    /// to the one connection that saw it.
    pub fn take_account_report(&mut self) -> Option<Duration> {
        self.account_report.take()
    }

    /// The account's shared rate, if it has one.
    pub fn account(&self) -> Option<&Arc<SharedRate>> {
        self.account.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(msgs: u64, bytes: u64, burst_msgs: u64, burst_bytes: u64) -> RateLimit {
        RateLimit { msgs_per_sec: msgs, bytes_per_sec: bytes, burst_msgs, burst_bytes, close_after: None }
    }

    /// Sends as fast as the throttle lets it for `secs`, stepping the clock
    /// to each wait; returns how many messages went.
    fn flood(throttle: &mut Throttle, start: Instant, secs: u64, size: usize) -> u64 {
        let (mut now, end, mut sent) = (start, start + Duration::from_secs(secs), 0);
        while now < end {
            match throttle.admit(size, now) {
                Ok(()) => sent += 1,
                Err(until) => {
                    assert!(until > now, "a wait is in the future");
                    now = until;
                }
            }
        }
        sent
    }

    #[test]
    fn a_flood_is_held_to_the_rate_after_its_burst() {
        let now = Instant::now();
        let mut t = Throttle::new(Some(&limit(1000, 0, 50, 0)), None).unwrap();
        let sent = flood(&mut t, now, 10, 100);
        assert!((10_040..=10_060).contains(&sent), "{sent}");
        // Bytes alone: 10 kB/s of 100-byte messages is 100 a second.
        let mut t = Throttle::new(Some(&limit(0, 10_000, 0, 1000)), None).unwrap();
        let sent = flood(&mut t, now, 10, 100);
        assert!((1000..=1012).contains(&sent), "{sent}");
    }

    #[test]
    fn a_message_larger_than_the_burst_still_goes() {
        let now = Instant::now();
        let mut t = Throttle::new(Some(&limit(0, 100, 0, 100)), None).unwrap();
        assert!(t.admit(1000, now).is_ok(), "a full bucket lets it through, into debt");
        let Err(until) = t.admit(10, now) else { panic!("the debt holds the next one") };
        assert!(until - now >= Duration::from_secs(9), "{:?}", until - now);
    }

    #[test]
    fn an_account_limit_is_shared_by_its_connections() {
        let now = Instant::now();
        let shared = Arc::new(SharedRate::new(limit(1000, 0, 10, 0)));
        let mut a = Throttle::new(None, Some(shared.clone())).unwrap();
        let mut b = Throttle::new(None, Some(shared.clone())).unwrap();
        // As the driver runs them: a connection sends until it is held, then
        // sleeps until its wait is over; the one due first runs next.
        let throttles = [&mut a, &mut b];
        let (end, mut due, mut sent) = (now + Duration::from_secs(10), [now; 2], [0u64; 2]);
        let mut reports = Vec::new();
        loop {
            let i = if due[0] <= due[1] { 0 } else { 1 };
            let t = due[i];
            if t >= end {
                break;
            }
            loop {
                match throttles[i].admit(10, t) {
                    Ok(()) => sent[i] += 1,
                    Err(until) => {
                        due[i] = until;
                        reports.extend(throttles[i].take_account_report().map(|over| (t, over)));
                        break;
                    }
                }
            }
        }
        // One run over the account's rate, reported once for the account,
        // by whichever connection was held when it had lasted 5 s.
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].1 >= ADVISORY_AFTER && reports[0].0 - now < ADVISORY_AFTER + Duration::from_millis(50));
        let total = sent[0] + sent[1];
        assert!((10_000..=10_040).contains(&total), "{sent:?}");
        assert!(sent[0].abs_diff(sent[1]) < 500, "neither starves the other: {sent:?}");
        assert!(shared.held() > Duration::ZERO);
    }

    #[test]
    fn a_stretch_over_the_rate_is_reported_once_and_closes_after_close_after() {
        let now = Instant::now();
        let mut l = limit(100, 0, 1, 0);
        l.close_after = Some(Duration::from_secs(8));
        let mut t = Throttle::new(Some(&l), None).unwrap();
        let (mut at, mut reports) = (now, 0);
        while !t.must_close(at) {
            match t.admit(10, at) {
                Ok(()) => {}
                Err(until) => at = until,
            }
            if t.report_once(at) {
                reports += 1;
                assert!(t.over_for(at) >= ADVISORY_AFTER);
            }
            assert!(at - now < Duration::from_secs(9), "closes after about 8 s over");
        }
        assert_eq!(reports, 1, "one report a stretch");
        // A pause brings it back within its rate: the stretch ends.
        let later = at + Duration::from_secs(1);
        assert!(t.admit(10, later).is_ok(), "the reserved message");
        assert!(t.admit(10, later).is_ok(), "one from a bucket refilled by the pause");
        assert_eq!(t.over_for(later), Duration::ZERO);
        assert!(!t.must_close(later));
    }

    #[test]
    fn no_limit_is_no_throttle() {
        assert!(Throttle::new(None, None).is_none());
    }
}
