//! Slowing down repeated login failures (beyond nats-server, which answers
//! every failure at once), without locking out the other users behind the
//! same address.
//!
//! Failures earn delays on two schedules:
//! - per (address, credential): guesses at one user from one address. Past
//!   [`FREE_FAILURES`], checks of that pair are spaced by a delay that
//!   doubles per failure up to the maximum, so the guess rate against one
//!   user from one address is at most one per maximum delay (5 s by
//!   default: 720 an hour), however many connections the guesser opens;
//! - per address, counting the *distinct* credentials that failed there:
//!   guesses spread over many users (or tokens). Past [`FREE_CREDENTIALS`]
//!   of them, checks from the address are spaced the same way, except for
//!   credentials that logged in successfully from that address within
//!   [`MEMORY`]: a colleague behind the same NAT is not held back by
//!   someone else's stale password or by a sprayer.
//!
//! An attempt gets a *slot*: a time before which nothing about it is
//! revealed, success or failure. So:
//! - parallel guesses queue behind each other instead of each waiting the
//!   same delay (attempts in flight count as failures), except for a
//!   credential that logged in from the address within [`MEMORY`] and has
//!   not failed since: 200 of its clients logging in at once are not taken
//!   for a guesser, while its failures, as they happen, still count;
//! - closing a connection early does not skip the wait (its slot is used
//!   up, and a check that started is recorded when it ends);
//! - a correct password is not answered faster than a wrong one;
//! - no slot is ever further away than the throttle's *patience* (half the
//!   auth timeout for clients): an attempt whose slot would be later is
//!   refused at the end of its patience without being checked, so a
//!   throttled client is answered, slowly, instead of timing out, and the
//!   refusal reveals nothing about its credentials;
//! - a success resets only its own pair: logging in with one's own account
//!   does not wipe the failures of guesses at another's, nor the address's
//!   count of distinct credentials that failed.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::Claims;

/// Failures of one credential from one address answered without delay.
pub const FREE_FAILURES: u32 = 3;
/// Distinct credentials that may fail from one address before its other
/// (not recently successful) logins are slowed too.
pub const FREE_CREDENTIALS: u32 = 8;
/// First delay after the free failures; doubles per failure.
const BASE_DELAY: Duration = Duration::from_millis(250);
/// A failure (and a success) older than this is forgotten.
pub const MEMORY: Duration = Duration::from_secs(600);
/// How far ahead a slot may be unless the throttle is told otherwise.
const DEFAULT_PATIENCE: Duration = Duration::from_secs(1);
/// Most addresses remembered; past it expired entries go, then all.
const ADDRESSES: usize = 16_384;
/// Most (address, credential) pairs remembered, likewise.
const PAIRS: usize = 65_536;
/// Credentials remembered per address as recently successful.
const GOOD_PER_ADDRESS: usize = 32;

/// Failures and the slots they space, for one pair or one address.
#[derive(Debug)]
struct Schedule {
    failures: u32,
    /// Attempts given a slot and not yet recorded: they count as failures
    /// for the delay, so a burst of parallel guesses does not all pass as
    /// "free" before the first of them fails.
    in_flight: u32,
    last_failure: Instant,
    /// When the next check may start.
    next_check: Instant,
}

impl Schedule {
    fn new(now: Instant) -> Schedule {
        Schedule { failures: 0, in_flight: 0, last_failure: now, next_check: now }
    }

    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_failure) >= MEMORY
    }
}

#[derive(Debug)]
struct Address {
    /// Failures counted once per distinct credential.
    spread: Schedule,
    /// Credentials that logged in from here, and when last.
    good: Vec<(u64, Instant)>,
}

impl Address {
    fn new(now: Instant) -> Address {
        Address { spread: Schedule::new(now), good: Vec::new() }
    }

    fn is_good(&self, credential: u64, now: Instant) -> bool {
        self.good.iter().any(|(k, at)| *k == credential && now.saturating_duration_since(*at) < MEMORY)
    }

    fn expired(&self, now: Instant) -> bool {
        self.spread.expired(now) && self.good.iter().all(|(_, at)| now.saturating_duration_since(*at) >= MEMORY)
    }
}

#[derive(Debug, Default)]
struct Tables {
    addresses: HashMap<IpAddr, Address>,
    pairs: HashMap<(IpAddr, u64), Schedule>,
}

/// Failure counts and the slots they earn (see the module doc).
#[derive(Debug)]
pub struct FailureThrottle {
    max_delay: Duration,
    patience: Duration,
    /// Keys credentials, so the tables hold no client-chosen strings.
    hasher: std::collections::hash_map::RandomState,
    tables: Mutex<Tables>,
}

/// An attempt's place in the throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Check it at this time.
    At(Instant),
    /// Its slot lies beyond the throttle's patience: refuse it unchecked
    /// at this time.
    Refuse(Instant),
}

impl FailureThrottle {
    /// A throttle whose delay never exceeds `max_delay` (zero disables it).
    pub fn new(max_delay: Duration) -> Self {
        FailureThrottle {
            max_delay,
            patience: DEFAULT_PATIENCE,
            hasher: Default::default(),
            tables: Mutex::new(Tables::default()),
        }
    }

    /// This throttle, giving no slot further away than `patience` (keep it
    /// well within the time a client has to log in).
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The key [`FailureThrottle::record`] takes for a claimed user name
    /// (`""` when the credential names none).
    pub fn user_key(&self, user: &str) -> u64 {
        self.hasher.hash_one(user)
    }

    /// The key of the credential a CONNECT presents: its user name, else its
    /// nkey, else its JWT, else its token (hashed with a key of this
    /// process's own). A token or JWT guess is a new key each time, so
    /// spraying them counts against the address, while a client with a
    /// valid one is remembered as good there.
    pub fn credential_key(&self, claims: &Claims) -> u64 {
        if let Some(user) = &claims.user {
            return self.hasher.hash_one(("user", user));
        }
        if let Some(nkey) = &claims.nkey {
            return self.hasher.hash_one(("nkey", nkey));
        }
        if let Some(jwt) = &claims.jwt {
            return self.hasher.hash_one(("jwt", jwt.expose()));
        }
        match &claims.token {
            Some(token) => self.hasher.hash_one(("token", token.expose())),
            None => self.hasher.hash_one(("none", "")),
        }
    }

    fn delay(&self, failures: u32, free: u32) -> Duration {
        let over = failures.saturating_sub(free);
        if over == 0 {
            return Duration::ZERO;
        }
        BASE_DELAY.saturating_mul(1u32 << (over - 1).min(16)).min(self.max_delay)
    }

    /// When an attempt from `ip` with the credential keyed `credential`
    /// that starts at `now` may be checked. Takes the slot: the next
    /// attempt's comes after it.
    pub fn slot(&self, ip: IpAddr, credential: u64, now: Instant) -> Slot {
        if self.max_delay.is_zero() {
            return Slot::At(now);
        }
        let ip = crate::cidr::source(ip);
        let mut tables = self.tables.lock();
        let Tables { addresses, pairs } = &mut *tables;
        make_room(pairs, PAIRS, &(ip, credential), |p| p.expired(now) && p.in_flight == 0);
        let pair = pairs.entry((ip, credential)).or_insert_with(|| Schedule::new(now));
        if pair.expired(now) && pair.in_flight == 0 {
            *pair = Schedule::new(now);
        }
        // Attempts still being checked count as failures, so a guesser's
        // parallel connections queue, unless the credential logged in from
        // here lately and has not failed since: then a burst of its logins
        // (connection churn, clients coming back after a restart) is not
        // taken for guessing. Its failures still count as they happen.
        let good = addresses.get(&ip).is_some_and(|a| a.is_good(credential, now));
        let pending = if good && pair.failures == 0 { 0 } else { pair.in_flight };
        let pair_delay = self.delay(pair.failures + pending, FREE_FAILURES);
        let address = addresses.get_mut(&ip).filter(|a| !a.is_good(credential, now) && !a.spread.expired(now));
        let address_delay =
            address.as_ref().map_or(Duration::ZERO, |a| self.delay(a.spread.failures, FREE_CREDENTIALS));
        let mut at = now;
        if !pair_delay.is_zero() {
            at = at.max(pair.next_check);
        }
        if !address_delay.is_zero() {
            at = at.max(address.as_ref().map_or(now, |a| a.spread.next_check));
        }
        let latest = now + self.patience;
        if at > latest {
            return Slot::Refuse(latest);
        }
        if !pair_delay.is_zero() {
            pair.next_check = at + pair_delay;
        }
        pair.in_flight += 1;
        if let Some(address) = address.filter(|_| !address_delay.is_zero()) {
            address.spread.next_check = at + address_delay;
        }
        Slot::At(at)
    }

    /// Records the outcome of an attempt from `ip` with the credential
    /// keyed `credential`, which started at `now`.
    pub fn record(&self, ip: IpAddr, credential: u64, succeeded: bool, now: Instant) {
        if self.max_delay.is_zero() {
            return;
        }
        let ip = crate::cidr::source(ip);
        let mut tables = self.tables.lock();
        let Tables { addresses, pairs } = &mut *tables;
        if let Some(pair) = pairs.get_mut(&(ip, credential)) {
            pair.in_flight = pair.in_flight.saturating_sub(1);
        }
        if succeeded {
            pairs.remove(&(ip, credential));
            make_room(addresses, ADDRESSES, &ip, |a| a.expired(now));
            let address = addresses.entry(ip).or_insert_with(|| Address::new(now));
            address.good.retain(|(k, at)| *k != credential && now.saturating_duration_since(*at) < MEMORY);
            if address.good.len() >= GOOD_PER_ADDRESS {
                address.good.remove(0);
            }
            address.good.push((credential, now));
            return;
        }
        make_room(pairs, PAIRS, &(ip, credential), |p| p.expired(now));
        let pair = pairs.entry((ip, credential)).or_insert_with(|| Schedule::new(now));
        let first = pair.failures == 0 || pair.expired(now);
        if pair.expired(now) {
            *pair = Schedule::new(now);
        }
        pair.failures = pair.failures.saturating_add(1);
        pair.last_failure = now;
        make_room(addresses, ADDRESSES, &ip, |a| a.expired(now));
        let address = addresses.entry(ip).or_insert_with(|| Address::new(now));
        if address.spread.expired(now) {
            address.spread = Schedule::new(now);
        }
        if first {
            address.spread.failures = address.spread.failures.saturating_add(1);
        }
        address.spread.last_failure = now;
    }

    /// Failures recorded for `ip`, all credentials together (for tests and
    /// monitoring).
    pub fn failures(&self, ip: IpAddr) -> u32 {
        let ip = crate::cidr::source(ip);
        let tables = self.tables.lock();
        tables.pairs.iter().filter(|((a, _), _)| *a == ip).map(|(_, p)| p.failures).sum()
    }
}

/// Before inserting `key` into a full `map`: drops what `expired` says is
/// stale, then, if still full, everything (an attacker who can fill the
/// table resets it; it cannot grow it).
fn make_room<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    capacity: usize,
    key: &K,
    expired: impl Fn(&V) -> bool,
) {
    if map.len() >= capacity && !map.contains_key(key) {
        map.retain(|_, v| !expired(v));
        if map.len() >= capacity {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn at(slot: Slot) -> Instant {
        match slot {
            Slot::At(at) => at,
            Slot::Refuse(at) => panic!("refused at {at:?}"),
        }
    }

    fn patient(max: u64) -> FailureThrottle {
        FailureThrottle::new(Duration::from_secs(max)).with_patience(Duration::from_secs(3600))
    }

    #[test]
    fn delay_grows_after_free_failures_and_is_capped() {
        let t = patient(2);
        let (a, now) = (ip("127.0.0.1"), Instant::now());
        let alice = t.user_key("alice");
        let mut waits = Vec::new();
        // Attempts back to back: each starts when the previous one's slot
        // came.
        let mut clock = now;
        for _ in 0..10u32 {
            let slot = at(t.slot(a, alice, clock));
            waits.push(slot - clock);
            t.record(a, alice, false, slot);
            clock = slot;
        }
        assert_eq!(&waits[..5], &[Duration::ZERO; 5]);
        let spacing: Vec<Duration> = waits[5..].to_vec();
        let ms = Duration::from_millis;
        assert_eq!(spacing, vec![ms(250), ms(500), ms(1000), ms(2000), ms(2000)], "doubling, then capped");
        assert_eq!(t.slot(ip("127.0.0.2"), alice, now), Slot::At(now), "per address");
    }

    #[test]
    fn parallel_attempts_queue_behind_each_other_and_past_patience_are_refused() {
        let t = FailureThrottle::new(Duration::from_secs(5)).with_patience(Duration::from_secs(1));
        let (a, now) = (ip("10.0.0.1"), Instant::now());
        for _ in 0..4 {
            t.record(a, 7, false, now);
        }
        // Six connections at the same moment: one check per delay (each
        // waiting one counts as a failure), and those whose slot would be
        // past the patience refused unchecked.
        let slots: Vec<Slot> = (0..6).map(|_| t.slot(a, 7, now)).collect();
        let ms = Duration::from_millis;
        let refused = Slot::Refuse(now + Duration::from_secs(1));
        assert_eq!(
            slots,
            vec![Slot::At(now), Slot::At(now + ms(250)), Slot::At(now + ms(750)), refused, refused, refused]
        );
    }

    /// Connection churn (bench scenario l: 200 clients of one user logging
    /// in at once, over and over) is not a guesser once that user logged
    /// in from there; a failure brings the queueing back.
    #[test]
    fn a_burst_of_logins_of_a_user_known_here_is_not_held_back() {
        let t = FailureThrottle::new(Duration::from_secs(5)).with_patience(Duration::from_secs(1));
        let (a, now) = (ip("10.0.0.1"), Instant::now());
        assert_eq!(t.slot(a, 7, now), Slot::At(now));
        t.record(a, 7, true, now);
        let slots: Vec<Slot> = (0..200).map(|_| t.slot(a, 7, now)).collect();
        assert!(slots.iter().all(|s| *s == Slot::At(now)), "{slots:?}");
        for _ in 0..200 {
            t.record(a, 7, true, now);
        }
        // Another address has no such history: its parallel attempts queue.
        let b = ip("10.0.0.2");
        let queued: Vec<Slot> = (0..8).map(|_| t.slot(b, 7, now)).collect();
        assert!(queued.iter().any(|s| matches!(s, Slot::Refuse(_))), "{queued:?}");
        // A failure here: in-flight attempts count again.
        for _ in 0..4 {
            t.record(a, 7, false, now);
        }
        let after: Vec<Slot> = (0..8).map(|_| t.slot(a, 7, now)).collect();
        assert!(after.iter().any(|s| matches!(s, Slot::Refuse(_))), "{after:?}");
    }

    #[test]
    fn one_users_failures_never_hold_back_another_user() {
        let t = FailureThrottle::new(Duration::from_secs(5)).with_patience(Duration::from_secs(1));
        let (a, now) = (ip("10.0.0.9"), Instant::now());
        let (stale, colleague) = (t.user_key("stale"), t.user_key("colleague"));
        // A client with a stale password reconnecting every 100 ms for 20 s.
        let mut checked = 0;
        for i in 0..200u64 {
            let clock = now + Duration::from_millis(100 * i);
            if let Slot::At(at) = t.slot(a, stale, clock) {
                t.record(a, stale, false, at);
                checked += 1;
            }
            assert_eq!(t.slot(a, colleague, clock), Slot::At(clock), "its neighbour is never held back");
            t.record(a, colleague, true, clock);
        }
        // 4 free, then 0.25 + 0.5 + 1 + 2 s, then one per 5 s.
        assert!((8..=13).contains(&checked), "about one check per maximum delay: {checked}");
        let later = now + Duration::from_secs(20);
        assert_ne!(t.slot(a, stale, later), Slot::At(later), "the stale client waits");
    }

    #[test]
    fn spraying_slows_the_address_but_not_users_that_logged_in_from_it() {
        let t = patient(5);
        let (a, now) = (ip("10.0.0.4"), Instant::now());
        let regular = t.user_key("regular");
        t.record(a, regular, true, now);
        for i in 0..20 {
            t.record(a, t.user_key(&format!("victim{i}")), false, now);
        }
        let first_timer = t.user_key("newcomer");
        assert_eq!(t.slot(a, first_timer, now), Slot::At(now));
        assert!(at(t.slot(a, t.user_key("victim99"), now)) > now, "the sprayer's next guess waits");
        assert_eq!(t.slot(a, regular, now), Slot::At(now), "a user known here is not held back");
        assert_eq!(t.slot(ip("10.0.0.5"), first_timer, now), Slot::At(now), "nor anyone elsewhere");
    }

    #[test]
    fn only_the_guessed_users_success_resets_its_count() {
        let t = patient(5);
        let (a, now) = (ip("10.0.0.2"), Instant::now());
        let (alice, mallory) = (t.user_key("alice"), t.user_key("mallory"));
        for _ in 0..20 {
            t.record(a, alice, false, now);
        }
        t.record(a, mallory, true, now);
        assert_eq!(t.failures(a), 20, "another user's success keeps the count");
        assert!(at(t.slot(a, alice, now)) >= now, "and the guessed user's pair is still throttled");
        assert!(at(t.slot(a, alice, now)) > now);
        t.record(a, alice, true, now);
        assert_eq!(t.failures(a), 0, "the guessed user's own success resets");
    }

    #[test]
    fn old_failures_are_forgotten_and_zero_turns_it_off() {
        let t = patient(5);
        let (a, now) = (ip("10.0.0.3"), Instant::now());
        let alice = t.user_key("alice");
        for _ in 0..10 {
            t.record(a, alice, false, now);
        }
        let later = now + MEMORY;
        assert_eq!(t.slot(a, alice, later), Slot::At(later), "forgotten after a while");
        let off = FailureThrottle::new(Duration::ZERO);
        for _ in 0..10 {
            off.record(a, 1, false, now);
        }
        assert_eq!(off.slot(a, 1, now), Slot::At(now), "a zero maximum turns it off");
    }

    #[test]
    fn credentials_are_keyed_by_what_they_name() {
        let t = FailureThrottle::new(Duration::from_secs(1));
        let user = |u: &str| Claims { user: Some(u.into()), ..Claims::default() };
        let token = |s: &str| Claims { token: Some(crate::secret::Secret::new(s)), ..Claims::default() };
        assert_eq!(t.credential_key(&user("a")), t.credential_key(&user("a")));
        assert_ne!(t.credential_key(&user("a")), t.credential_key(&user("b")));
        assert_ne!(t.credential_key(&token("x")), t.credential_key(&token("y")), "each token guess is its own");
        assert_ne!(t.credential_key(&user("x")), t.credential_key(&token("x")));
    }

    #[test]
    fn an_ipv6_attacker_cannot_take_a_fresh_budget_per_address_of_its_slash_64() {
        let t = patient(2);
        let now = Instant::now();
        let alice = t.user_key("alice");
        for i in 0..10u16 {
            t.record(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i]), alice, false, now);
        }
        assert_eq!(t.failures(ip("2001:db8:0:1::ffff")), 10, "one /64, one count");
        assert_eq!(t.failures(ip("2001:db8:0:2::1")), 0, "the next /64 is another source");
    }
}
