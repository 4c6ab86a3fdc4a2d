//! The server's own subscribers: an [`Inbox`] receives what is delivered to
//! the internal subscriptions made with it (the `$SYS` services), as owned
//! copies on a bounded channel, so the delivering publisher never waits for
//! the service and a flood of requests cannot grow a queue.
//!
//! An inbox that ordinary accounts reach is *budgeted*: each account may
//! queue [`REQUESTS_PER_SECOND`] requests a second and the rest are dropped
//! before they are copied, so one tenant's flood can neither fill the queue
//! other tenants' requests wait in nor keep the service busy (the budget is
//! the account's own, [`RequestBudget`], never a pool all accounts share).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tracing::warn;

use super::account::Account;
use super::log_budget::LogLimiter;
use super::Via;

/// Messages an inbox holds before it drops new ones.
pub const INBOX_CAPACITY: usize = 1024;
/// `$SYS` requests one account (other than the system account) may queue
/// per second, on each server: each walks the connection list, so an
/// ordinary user must not keep the service busy; 50 is far above what the
/// `nats` CLI or a dashboard asks.
pub const REQUESTS_PER_SECOND: u32 = 50;
const BUDGET_WINDOW: Duration = Duration::from_secs(1);

/// One account's budget of `$SYS` requests (see the module doc). Dropped
/// requests are counted and logged once a window, naming the account.
#[derive(Debug)]
pub struct RequestBudget {
    /// Window start, requests let through in it, dropped in it.
    state: Mutex<(Instant, u32, u64)>,
    dropped: AtomicU64,
}

impl Default for RequestBudget {
    fn default() -> Self {
        RequestBudget { state: Mutex::new((Instant::now(), 0, 0)), dropped: AtomicU64::new(0) }
    }
}

impl RequestBudget {
    /// Whether a request of `account` (this budget's) arriving `now` may be
    /// queued.
    pub fn allow(&self, account: &str, now: Instant) -> bool {
        let mut state = self.state.lock();
        if now.saturating_duration_since(state.0) >= BUDGET_WINDOW {
            if state.2 > 0 {
                warn!(account, dropped = state.2, "$SYS requests of this account not answered: over its budget");
            }
            *state = (now, 0, 0);
        }
        if state.1 < REQUESTS_PER_SECOND {
            state.1 += 1;
            return true;
        }
        state.2 += 1;
        self.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Requests dropped over the budget so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One message delivered to an inbox subscription.
#[derive(Debug)]
pub struct InboxMsg {
    /// The account the message was published in.
    pub account: Arc<Account>,
    /// Its subject.
    pub subject: Box<[u8]>,
    /// Its reply subject.
    pub reply: Option<Box<[u8]>>,
    /// Header bytes at the start of `message`, if any.
    pub header_len: Option<usize>,
    /// Headers and payload.
    pub message: Box<[u8]>,
    /// The publishing client on this server (`None`: a route or the server).
    pub client: Option<u64>,
}

impl InboxMsg {
    /// The payload, without headers.
    pub fn payload(&self) -> &[u8] {
        self.message.get(self.header_len.unwrap_or(0)..).unwrap_or_default()
    }
}

/// Which peers hear of an inbox's subscriptions (and so send what matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// Every peer: routes, leaf connections, gateways.
    Everywhere,
    /// Leaf connections only, either side, as nats-server announces its
    /// service import subscriptions: a leaf's client is served here, a
    /// route's request was served where it was published.
    Leafs,
    /// None: this server's own clients only.
    Nowhere,
}

impl Announce {
    /// Whether a peer on side `to` hears of the subscriptions.
    pub fn to(self, to: Via) -> bool {
        match self {
            Announce::Everywhere => true,
            Announce::Leafs => matches!(to, Via::Leaf | Via::Hub),
            Announce::Nowhere => false,
        }
    }
}

/// The receiving end's handle, shared by its subscriptions.
#[derive(Debug)]
pub struct Inbox {
    tx: mpsc::Sender<InboxMsg>,
    /// Which peers hear of its subscriptions (and send their requests here).
    pub announce: Announce,
    /// Whether accounts other than the system account spend their
    /// [`RequestBudget`] here.
    budgeted: bool,
    dropped: AtomicU64,
    /// Logs drops of a full inbox, once a second at most.
    full: LogLimiter,
}

impl Inbox {
    /// An inbox and the receiver its service reads; `what` names its
    /// messages in the log line that says some were dropped.
    pub fn new(announce: Announce, what: &'static str) -> (Arc<Inbox>, mpsc::Receiver<InboxMsg>) {
        Inbox::with_budget(announce, false, what)
    }

    /// An inbox every account but the system account reaches within its
    /// own [`RequestBudget`].
    pub fn budgeted(announce: Announce, what: &'static str) -> (Arc<Inbox>, mpsc::Receiver<InboxMsg>) {
        Inbox::with_budget(announce, true, what)
    }

    fn with_budget(announce: Announce, budgeted: bool, what: &'static str) -> (Arc<Inbox>, mpsc::Receiver<InboxMsg>) {
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        let full = LogLimiter::new(1, what);
        (Arc::new(Inbox { tx, announce, budgeted, dropped: AtomicU64::new(0), full }), rx)
    }

    /// Whether a message of `account` arriving `now` may be offered (it
    /// spends the account's budget when this inbox is budgeted). Asked
    /// before the message is copied.
    #[inline]
    pub fn admits(&self, account: &Account, now: Instant) -> bool {
        !self.budgeted || account.is_system() || account.requests.allow(&account.name, now)
    }

    /// Queues a message; false (counted, and logged at most once a
    /// second) if the service is behind or gone.
    pub fn offer(&self, msg: InboxMsg) -> bool {
        let queued = self.tx.try_send(msg).is_ok();
        if !queued {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if self.full.allow() {
                warn!("{} dropped: the service is behind", self.full.what());
            }
        }
        queued
    }

    /// Messages dropped because the inbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_only_interest_reaches_leaf_connections_on_either_side() {
        let sides = [Via::Local, Via::Route, Via::Leaf, Via::Hub, Via::Gateway];
        let heard = |a: Announce| sides.iter().map(|&to| a.to(to)).collect::<Vec<_>>();
        assert_eq!(heard(Announce::Everywhere), [true; 5]);
        assert_eq!(heard(Announce::Leafs), [false, false, true, true, false]);
        assert_eq!(heard(Announce::Nowhere), [false; 5]);
    }
}
