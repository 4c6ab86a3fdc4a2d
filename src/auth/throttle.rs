//! Slowing down repeated login failures from one address (beyond
//! nats-server, which answers every failure at once).
//!
//! Once an address has failed more than [`FREE_FAILURES`] times, each
//! further attempt from it gets a *slot*: a time before which nothing about
//! it is revealed, success or failure, and the slots are spaced by the
//! delay the failures earned. So:
//! - parallel guesses queue behind each other instead of each waiting the
//!   same delay (one guess per delay, however many connections);
//! - closing a connection early does not skip the wait (its slot is used
//!   up, and a check that started is recorded when it ends);
//! - a correct password is not answered faster than a wrong one;
//! - a success resets the address only when every recorded failure was for
//!   that same user, so logging in with one's own account does not wipe the
//!   failures of guesses at another's.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Failures from one address answered without delay.
pub const FREE_FAILURES: u32 = 3;
/// First delay after the free failures; doubles per failure.
const BASE_DELAY: Duration = Duration::from_millis(250);
/// An address whose last failure is older than this is forgotten.
const MEMORY: Duration = Duration::from_secs(600);
/// Most addresses remembered; past it expired entries go, then all.
const CAPACITY: usize = 16_384;
/// Distinct user names remembered per address.
const USERS_PER_ADDRESS: usize = 4;

#[derive(Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    /// When the last slot handed out ends.
    next_slot: Instant,
    /// Keys of the user names that failed, up to `USERS_PER_ADDRESS`.
    users: Vec<u64>,
    /// More names failed than `users` holds.
    crowded: bool,
}

/// Per-address failure counts and the slots they earn.
#[derive(Debug)]
pub struct FailureThrottle {
    max_delay: Duration,
    /// Keys user names, so the table holds no client-chosen strings.
    hasher: std::collections::hash_map::RandomState,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl FailureThrottle {
    /// A throttle whose delay never exceeds `max_delay` (zero disables it).
    pub fn new(max_delay: Duration) -> Self {
        FailureThrottle { max_delay, hasher: Default::default(), entries: Mutex::new(HashMap::new()) }
    }

    /// The key [`FailureThrottle::record`] takes for a claimed user name
    /// (`""` when the credential names none, as a token).
    pub fn user_key(&self, user: &str) -> u64 {
        self.hasher.hash_one(user)
    }

    fn delay(&self, failures: u32) -> Duration {
        let over = failures.saturating_sub(FREE_FAILURES);
        if over == 0 {
            return Duration::ZERO;
        }
        BASE_DELAY.saturating_mul(1u32 << (over - 1).min(16)).min(self.max_delay)
    }

    /// When an attempt from `ip` that starts at `now` may be checked and
    /// answered. Takes the slot: the next attempt's comes after it.
    pub fn slot(&self, ip: IpAddr, now: Instant) -> Instant {
        if self.max_delay.is_zero() {
            return now;
        }
        let mut entries = self.entries.lock();
        let Some(entry) = entries.get_mut(&ip) else { return now };
        if now.saturating_duration_since(entry.last_failure) >= MEMORY {
            entries.remove(&ip);
            return now;
        }
        let delay = self.delay(entry.failures);
        if delay.is_zero() {
            return now;
        }
        let at = entry.next_slot.max(now) + delay;
        entry.next_slot = at;
        at
    }

    /// Records the outcome of an attempt from `ip` for the user keyed `user`.
    pub fn record(&self, ip: IpAddr, user: u64, succeeded: bool, now: Instant) {
        if self.max_delay.is_zero() {
            return;
        }
        let mut entries = self.entries.lock();
        if succeeded {
            let only_this_user = entries.get(&ip).is_some_and(|e| !e.crowded && e.users.iter().all(|u| *u == user));
            if only_this_user {
                entries.remove(&ip);
            }
            return;
        }
        if entries.len() >= CAPACITY && !entries.contains_key(&ip) {
            entries.retain(|_, e| now.saturating_duration_since(e.last_failure) < MEMORY);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        let entry = entries.entry(ip).or_insert_with(|| Entry {
            failures: 0,
            last_failure: now,
            next_slot: now,
            users: Vec::new(),
            crowded: false,
        });
        if now.saturating_duration_since(entry.last_failure) >= MEMORY {
            *entry = Entry { failures: 0, last_failure: now, next_slot: now, users: Vec::new(), crowded: false };
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if !entry.users.contains(&user) {
            if entry.users.len() < USERS_PER_ADDRESS {
                entry.users.push(user);
            } else {
                entry.crowded = true;
            }
        }
    }

    /// Failures recorded for `ip` (for tests and monitoring).
    pub fn failures(&self, ip: IpAddr) -> u32 {
        self.entries.lock().get(&ip).map_or(0, |e| e.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn delay_grows_after_free_failures_and_is_capped() {
        let t = FailureThrottle::new(Duration::from_secs(2));
        let (a, now) = (ip("127.0.0.1"), Instant::now());
        let alice = t.user_key("alice");
        let mut waits = Vec::new();
        for i in 0..9u32 {
            let at = now + Duration::from_secs(10 * u64::from(i));
            waits.push(t.slot(a, at) - at);
            t.record(a, alice, false, at);
        }
        assert_eq!(&waits[..4], &[Duration::ZERO; 4]);
        assert_eq!(waits[4], Duration::from_millis(250));
        assert_eq!(waits[5], Duration::from_millis(500));
        assert_eq!(waits[6], Duration::from_secs(1));
        assert_eq!(waits[7], Duration::from_secs(2));
        assert_eq!(waits[8], Duration::from_secs(2), "capped");
        assert_eq!(t.slot(ip("127.0.0.2"), now), now, "per address");
    }

    #[test]
    fn parallel_attempts_queue_behind_each_other() {
        let t = FailureThrottle::new(Duration::from_secs(5));
        let (a, now) = (ip("10.0.0.1"), Instant::now());
        for _ in 0..4 {
            t.record(a, 7, false, now);
        }
        // Four connections at the same moment: one guess per delay.
        let slots: Vec<Duration> = (0..4).map(|_| t.slot(a, now) - now).collect();
        let d = Duration::from_millis(250);
        assert_eq!(slots, vec![d, 2 * d, 3 * d, 4 * d]);
    }

    #[test]
    fn only_the_failing_users_success_resets() {
        let t = FailureThrottle::new(Duration::from_secs(5));
        let (a, now) = (ip("10.0.0.2"), Instant::now());
        let (alice, mallory) = (t.user_key("alice"), t.user_key("mallory"));
        for _ in 0..20 {
            t.record(a, alice, false, now);
        }
        t.record(a, mallory, true, now);
        assert_eq!(t.failures(a), 20, "another user's success keeps the count");
        assert!(t.slot(a, now) > now, "and the next attempt still waits");
        t.record(a, alice, true, now);
        assert_eq!(t.failures(a), 0, "the guessed user's own success resets");
        // A user who mistyped resets by logging in.
        t.record(a, mallory, false, now);
        t.record(a, mallory, true, now);
        assert_eq!(t.failures(a), 0);
    }

    #[test]
    fn many_names_never_reset_and_old_failures_are_forgotten() {
        let t = FailureThrottle::new(Duration::from_secs(5));
        let (a, now) = (ip("10.0.0.3"), Instant::now());
        for name in ["a", "b", "c", "d", "e"] {
            t.record(a, t.user_key(name), false, now);
        }
        t.record(a, t.user_key("a"), true, now);
        assert_eq!(t.failures(a), 5, "spraying five names is not undone by one of them");
        let later = now + MEMORY;
        assert_eq!(t.slot(a, later), later, "forgotten after a while");
        assert_eq!(t.failures(a), 0);
        let off = FailureThrottle::new(Duration::ZERO);
        for _ in 0..10 {
            off.record(a, 1, false, now);
        }
        assert_eq!(off.slot(a, now), now, "a zero maximum turns it off");
    }
}
