//! Budgets for security log lines: rate limiting, so an attacker cannot flood the
//! log, and budgets per source, so one source cannot erase another's trail.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::warn;

/// Security events logged per window before the rest are only counted.
const SECURITY_PER_WINDOW: u32 = 20;
/// Window length.
const WINDOW: Duration = Duration::from_secs(1);

/// Lets through at most `per_window` events per second; logs how many were
/// suppressed when the next window opens.
#[derive(Debug)]
pub struct LogLimiter {
    state: Mutex<(Instant, u32, u64)>,
    per_window: u32,
    /// What the suppressed ones were, for that log line.
    what: &'static str,
}

impl Default for LogLimiter {
    /// The security log's limiter.
    fn default() -> Self {
        LogLimiter::new(SECURITY_PER_WINDOW, "security events not logged because of their rate")
    }
}

impl LogLimiter {
    /// At most `per_window` a second; `what` names the suppressed ones.
    pub fn new(per_window: u32, what: &'static str) -> Self {
        LogLimiter { state: Mutex::new((Instant::now(), 0, 0)), per_window, what }
    }

    /// What the limited events are.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Whether this event may be logged.
    pub fn allow(&self) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock();
        let (start, count, suppressed) = &mut *state;
        if now.duration_since(*start) >= WINDOW {
            if *suppressed > 0 {
                warn!(suppressed = *suppressed, "{}", self.what);
            }
            *start = now;
            *count = 0;
            *suppressed = 0;
        }
        if *count < self.per_window {
            *count += 1;
            true
        } else {
            *suppressed += 1;
            false
        }
    }
}

/// The security log's budgets: per source for what a client did (see
/// [`SourceBudget`]), one shared limiter for what no client address is
/// behind (routes).
#[derive(Debug)]
pub struct LogBudget {
    by_source: SourceBudget,
    unattributed: LogLimiter,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            by_source: SourceBudget::new(SECURITY_PER_WINDOW, "security events not logged: over their source's budget"),
            unattributed: LogLimiter::default(),
        }
    }
}

impl LogBudget {
    /// Whether an event with no client behind it may be logged.
    pub fn allow(&self) -> bool {
        self.unattributed.allow()
    }

    /// Whether an event of `kind` about `user` from `source` may be logged.
    pub fn allow_from(&self, source: IpAddr, kind: BudgetKind, user: &str) -> bool {
        self.by_source.allow(source, kind, user)
    }

    /// Writes the digests of what was dropped (every second).
    pub fn flush(&self) {
        self.by_source.flush().iter().for_each(Digest::log);
    }
}

/// What kind of security event a [`SourceBudget`] is asked about: each kind
/// has its own budget per source, so a flood of one kind (cheap successful
/// logins) never hides another (failed guesses) from the same source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetKind {
    /// A successful login.
    Success,
    /// A refused login.
    Failure,
    /// Anything else: a permission violation, a refused connection.
    Other,
}

/// Sources tracked at once; past it, sources whose window has passed are
/// forgotten (their digests written), then new ones share one overflow
/// budget, so a flood from many addresses cannot take the budgets of the
/// sources already tracked.
const SOURCES: usize = 4096;
/// User names a digest names per source.
const DIGEST_USERS: usize = 4;

#[derive(Debug)]
struct SourceWindow {
    start: Instant,
    passed: [u32; 3],
    dropped: u64,
    users: Vec<String>,
    more_users: bool,
}

impl SourceWindow {
    fn new(now: Instant) -> Self {
        SourceWindow { start: now, passed: [0; 3], dropped: 0, users: Vec::new(), more_users: false }
    }

    fn note(&mut self, user: &str) {
        if self.users.iter().any(|u| u == user) {
            return;
        }
        if self.users.len() < DIGEST_USERS {
            self.users.push(user.chars().take(64).collect());
        } else {
            self.more_users = true;
        }
    }
}

/// A budget of log lines (or events) per source address and kind, at most
/// `per_window` a second each. What is dropped is summed up in a
/// [`Digest`] naming the source, the count and the users when the source's
/// window ends; [`SourceBudget::flush`] (every second) hands the digests
/// to the caller, which logs them or writes them to the audit trail.
#[derive(Debug)]
pub struct SourceBudget {
    per_window: u32,
    what: &'static str,
    sources: Mutex<Sources>,
}

/// The windows by source, and the digests of the windows that ended since
/// the last flush.
#[derive(Debug, Default)]
struct Sources {
    windows: HashMap<Option<IpAddr>, SourceWindow>,
    ended: Vec<Digest>,
}

/// What one source's budget dropped in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// What was dropped (the budget's name for it).
    pub what: &'static str,
    /// The source; `None` for the sources past [`SOURCES`], which share one budget.
    pub source: Option<IpAddr>,
    /// How many were dropped.
    pub dropped: u64,
    /// The first users they named (at most [`DIGEST_USERS`]).
    pub users: Vec<String>,
    /// More users than those were named.
    pub more_users: bool,
}

impl Digest {
    /// Writes the digest to the log.
    pub fn log(&self) {
        let source = self.source.map_or_else(|| "other addresses".to_owned(), |ip| ip.to_string());
        let more = if self.more_users { ",..." } else { "" };
        warn!(source = %source, dropped = self.dropped, users = %format!("{}{more}", self.users.join(",")), "{}", self.what);
    }
}

impl SourceBudget {
    /// At most `per_window` events a second per source and kind; `what`
    /// names the dropped ones in digests.
    pub fn new(per_window: u32, what: &'static str) -> Self {
        SourceBudget { per_window, what, sources: Mutex::new(Sources::default()) }
    }

    /// Whether an event of `kind` about `user` from `source` may go out.
    pub fn allow(&self, source: IpAddr, kind: BudgetKind, user: &str) -> bool {
        let now = Instant::now();
        let mut sources = self.sources.lock();
        let Sources { windows, ended } = &mut *sources;
        let mut key = Some(crate::cidr::source(source));
        if windows.len() >= SOURCES && !windows.contains_key(&key) {
            self.end_windows(windows, ended, now);
            if windows.len() >= SOURCES {
                key = None;
            }
        }
        let window = windows.entry(key).or_insert_with(|| SourceWindow::new(now));
        if now.duration_since(window.start) >= WINDOW {
            self.end(key, window, ended);
            *window = SourceWindow::new(now);
        }
        let passed = &mut window.passed[kind as usize];
        if *passed < self.per_window {
            *passed += 1;
            return true;
        }
        window.dropped += 1;
        window.note(user);
        false
    }

    /// The digests of the windows that ended (and forgets those windows).
    pub fn flush(&self) -> Vec<Digest> {
        let now = Instant::now();
        let mut sources = self.sources.lock();
        let Sources { windows, ended } = &mut *sources;
        self.end_windows(windows, ended, now);
        std::mem::take(ended)
    }

    fn end_windows(&self, windows: &mut HashMap<Option<IpAddr>, SourceWindow>, ended: &mut Vec<Digest>, now: Instant) {
        windows.retain(|key, window| {
            let over = now.duration_since(window.start) >= WINDOW;
            if over {
                self.end(*key, window, ended);
            }
            !over
        });
    }

    /// Keeps the digest of a window that ended, if it dropped anything. At
    /// most [`SOURCES`] digests wait for a flush; past that, their counts
    /// go to the shared (`None`) digest, so nothing dropped goes uncounted.
    fn end(&self, source: Option<IpAddr>, window: &SourceWindow, ended: &mut Vec<Digest>) {
        if window.dropped == 0 {
            return;
        }
        let digest = Digest {
            what: self.what,
            source,
            dropped: window.dropped,
            users: window.users.clone(),
            more_users: window.more_users,
        };
        if ended.len() < SOURCES {
            ended.push(digest);
        } else if let Some(shared) = ended.iter_mut().find(|d| d.source.is_none()) {
            shared.dropped += digest.dropped;
            shared.more_users = true;
        } else if let Some(last) = ended.last_mut() {
            // Full and no shared digest yet: the last one becomes it.
            *last = Digest { source: None, dropped: last.dropped + digest.dropped, more_users: true, ..digest };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_cannot_spend_anothers_budget_nor_successes_hide_failures() {
        let budget = SourceBudget::new(20, "test events not logged");
        let (flooder, victim): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let passed = (0..6000).filter(|_| budget.allow(flooder, BudgetKind::Success, "tenant")).count();
        assert_eq!(passed, 20);
        assert!(budget.allow(flooder, BudgetKind::Failure, "tenant"), "its own failures keep their budget");
        for _ in 0..4 {
            assert!(budget.allow(victim, BudgetKind::Failure, "victim"), "another source's failures all pass");
        }
        let sources = budget.sources.lock();
        let window = &sources.windows[&Some(flooder)];
        assert_eq!((window.dropped, window.users.clone()), (5980, vec!["tenant".to_owned()]), "the digest's content");
    }

    #[test]
    fn many_sources_are_bounded() {
        let budget = SourceBudget::new(1, "test events not logged");
        for i in 0..(SOURCES as u32 + 100) {
            budget.allow(IpAddr::from(i.to_be_bytes()), BudgetKind::Failure, "u");
        }
        assert!(budget.sources.lock().windows.len() <= SOURCES + 1);
    }

    #[test]
    fn digests_waiting_for_a_flush_are_bounded_and_keep_every_count() {
        let budget = SourceBudget::new(1, "test events not logged");
        let mut ended = Vec::new();
        let mut window = SourceWindow::new(Instant::now());
        window.dropped = 2;
        for i in 0..(SOURCES as u32 + 10) {
            budget.end(Some(IpAddr::from(i.to_be_bytes())), &window, &mut ended);
        }
        assert_eq!(ended.len(), SOURCES);
        assert_eq!(ended.iter().map(|d| d.dropped).sum::<u64>(), 2 * (SOURCES as u64 + 10));
        assert_eq!(ended.iter().filter(|d| d.source.is_none()).count(), 1);
        window.dropped = 0;
        budget.end(None, &window, &mut ended);
        assert_eq!(ended.len(), SOURCES, "a window that dropped nothing leaves no digest");
    }
}
