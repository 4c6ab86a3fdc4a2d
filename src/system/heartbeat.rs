//! When each account's connection count is sent again.
//!
//! nats-server sends `$SYS.ACCOUNT.<acc>.SERVER.CONNS` whenever an account
//! gains or loses a connection, and again every 30 s while the account
//! has any on the server (`eventsHBInterval`): billing and monitoring
//! tools that listen there see a steady count, not only its changes. An
//! account whose count drops to zero is sent once more and then left out.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

/// How often an account with connections has its count sent again
/// (nats-server's `eventsHBInterval`).
pub(super) const ACCOUNT_CONNS_INTERVAL: Duration = Duration::from_secs(30);

/// The accounts due for their count, soonest first. Holds only accounts
/// with connections on this server, so it is bounded by them.
#[derive(Debug, Default)]
pub(super) struct Heartbeats {
    due: BTreeSet<(Instant, String)>,
    by_account: HashMap<String, Instant>,
}

impl Heartbeats {
    /// Records that `account`'s count was sent at `now`: with connections
    /// (`any`) it is due again an interval later, without it is not.
    pub(super) fn sent(&mut self, account: &str, any: bool, now: Instant) {
        if let Some(at) = self.by_account.remove(account) {
            self.due.remove(&(at, account.to_owned()));
        }
        if any {
            let at = now + ACCOUNT_CONNS_INTERVAL;
            self.due.insert((at, account.to_owned()));
            self.by_account.insert(account.to_owned(), at);
        }
    }

    /// When the next account is due, if any is.
    pub(super) fn next(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Takes the accounts due by `now` out of the schedule (sending one
    /// puts it back, through [`Heartbeats::sent`]).
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((at, _)) = self.due.first() {
            if *at > now {
                break;
            }
            if let Some((_, account)) = self.due.pop_first() {
                self.by_account.remove(&account);
                out.push(account);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_with_connections_is_due_every_interval_and_one_without_is_not() {
        let start = Instant::now();
        let mut beats = Heartbeats::default();
        assert_eq!(beats.next(), None);
        beats.sent("A", true, start);
        beats.sent("B", true, start + Duration::from_secs(10));
        assert_eq!(beats.next(), Some(start + ACCOUNT_CONNS_INTERVAL));
        assert!(beats.take_due(start + Duration::from_secs(29)).is_empty());
        // A change to A's count sent at 20 s moves its next heartbeat.
        beats.sent("A", true, start + Duration::from_secs(20));
        assert_eq!(beats.take_due(start + Duration::from_secs(40)), ["B"]);
        assert_eq!(beats.take_due(start + Duration::from_secs(50)), ["A"]);
        assert_eq!(beats.next(), None, "taken until sent again");
        beats.sent("A", true, start + Duration::from_secs(50));
        beats.sent("A", false, start + Duration::from_secs(55));
        assert_eq!(beats.next(), None, "no connections left: no heartbeat");
        assert!(beats.by_account.is_empty() && beats.due.is_empty());
    }
}
