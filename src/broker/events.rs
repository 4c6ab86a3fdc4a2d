//! Connection events for the system account's audit stream: the sessions
//! report logins, closes and failed logins here, and the `$SYS` services
//! (when running) publish them. Reporting never blocks a session and is
//! rate limited before anything is queued, per source address and kind of
//! event: a login flood costs the stream at most [`EVENTS_PER_SECOND`]
//! events a second of its own kind from its own address, and never takes
//! the place of another address's events (what is dropped is logged as a
//! digest naming the address, the count and the users).

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::log_budget::{BudgetKind, SourceBudget};
use super::{Client, CloseReason};

/// Events passed on per second per source address and kind; the rest are
/// dropped, and written in a digest.
pub const EVENTS_PER_SECOND: u32 = 100;

/// Events queued for the publisher before new ones are dropped.
const QUEUE: usize = 256;

/// One connection event.
#[derive(Debug)]
pub enum ServerEvent {
    /// A client logged in (after its CONNECT was applied).
    Connect {
        /// The connection.
        client: Arc<Client>,
    },
    /// A client that logged in closed.
    Disconnect {
        /// The connection.
        client: Arc<Client>,
        /// Why it closed.
        reason: CloseReason,
        /// When.
        stop: SystemTime,
    },
    /// A connection has been over its publish `rate_limit` without a break
    /// for a while (warden's advisory; once a stretch).
    RateHeld {
        /// The connection.
        client: Arc<Client>,
        /// How long it has been over its rate.
        over: std::time::Duration,
    },
    /// An account has been over its `limits { rate_limit }` on this
    /// server without a break for a while (warden's advisory; once a
    /// stretch), seen by one of its connections.
    AccountRateHeld {
        /// The connection that was held when the stretch had lasted long enough.
        client: Arc<Client>,
        /// The account's shared rate.
        rate: Arc<super::rate::SharedRate>,
        /// How long the account has been over its rate.
        over: std::time::Duration,
    },
    /// A login was refused.
    AuthError {
        /// The connection.
        client: Arc<Client>,
        /// The user (or nkey) it claimed, never a secret.
        user: Option<String>,
        /// When.
        stop: SystemTime,
    },
}

/// Where sessions report events. Until a publisher takes the receiver,
/// reports are dropped at once.
#[derive(Debug)]
pub struct EventHub {
    tx: OnceLock<mpsc::Sender<ServerEvent>>,
    limiter: SourceBudget,
}

impl Default for EventHub {
    fn default() -> Self {
        let limiter = SourceBudget::new(EVENTS_PER_SECOND, "system events not published: over their source's budget");
        EventHub { tx: OnceLock::new(), limiter }
    }
}

impl EventHub {
    /// The receiving end, for the one publisher (`None` if already taken).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<ServerEvent>> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.tx.set(tx).ok().map(|()| rx)
    }

    /// Whether anyone publishes events (so sessions can skip building them).
    pub fn is_active(&self) -> bool {
        self.tx.get().is_some_and(|tx| !tx.is_closed())
    }

    /// Reports an event, unless over its source's rate or nobody listens.
    pub fn report(&self, event: ServerEvent) {
        if let Some(tx) = self.tx.get() {
            let (client, kind, user) = match &event {
                ServerEvent::Connect { client } => (client, BudgetKind::Success, None),
                ServerEvent::Disconnect { client, .. }
                | ServerEvent::RateHeld { client, .. }
                | ServerEvent::AccountRateHeld { client, .. } => (client, BudgetKind::Other, None),
                ServerEvent::AuthError { client, user, .. } => (client, BudgetKind::Failure, user.as_deref()),
            };
            let user = user.map_or_else(|| client.meta.lock().user.clone().unwrap_or_default(), str::to_owned);
            if self.limiter.allow(client.addr.ip(), kind, &user) {
                let _ = tx.try_send(event);
            }
        }
    }

    /// Writes the digests of dropped events (every second).
    pub fn flush(&self) {
        self.limiter.flush().iter().for_each(super::log_budget::Digest::log);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn reports_are_dropped_until_someone_listens_and_then_rate_limited() {
        let hub = EventHub::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let client = Arc::new(Client::new(1, addr, 1024));
        hub.report(ServerEvent::Connect { client: client.clone() });
        assert!(!hub.is_active());
        let mut rx = hub.take_receiver().unwrap();
        assert!(hub.take_receiver().is_none(), "one publisher only");
        assert!(hub.is_active());
        // A flood within one window: the first EVENTS_PER_SECOND pass.
        for _ in 0..1000 {
            hub.report(ServerEvent::AuthError { client: client.clone(), user: None, stop: SystemTime::now() });
        }
        let mut passed = 0;
        while rx.try_recv().is_ok() {
            passed += 1;
        }
        assert_eq!(passed, EVENTS_PER_SECOND as usize);
    }
}
