//! The server's own client inside accounts: what the `$SYS` services and
//! the auth callout (and, next, leaf-node system traffic) use to subscribe
//! and publish on the server's behalf.
//!
//! - Its subscriptions are ordinary entries in the accounts' indexes
//!   ([`Subscription::internal`]), so they are routed like any other; what
//!   they receive goes to a bounded [`Inbox`], never to a queue that grows.
//! - It holds them per account *as an account value*: a reload or a JWT
//!   update that replaces an account (a new `Arc`) leaves the old
//!   subscriptions in an index nobody publishes in any more. The owner
//!   says what it wants in which accounts after every change of the
//!   accounts ([`InternalClient::subscribe`]); the client keeps what is
//!   unchanged (so no message is missed while it re-subscribes) and
//!   re-makes the rest.
//! - It publishes as the server (cid 0, no permissions: the server's own
//!   subjects are decided by its code, not by a user's rules) through a
//!   [`Fanout`] of its own, one message a batch, and wakes the writers it
//!   reached; it never waits for a subscriber.
//! - Its subscriptions end with it (`Drop`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::{Account, Broker, Fanout, Inbox, Message, Origin, SubKind, Subscription};

/// One subscription the server wants in an account: its subject (which may
/// hold wildcards) and the inbox its messages are delivered to.
#[derive(Debug, Clone)]
pub struct Interest {
    subject: Box<[u8]>,
    inbox: Arc<Inbox>,
}

impl Interest {
    /// Messages on `subject` go to `inbox`.
    pub fn new(subject: impl AsRef<[u8]>, inbox: &Arc<Inbox>) -> Interest {
        Interest { subject: subject.as_ref().into(), inbox: inbox.clone() }
    }
}

/// The same subject into the same inbox (by identity: two inboxes with
/// equal settings are still different queues).
impl PartialEq for Interest {
    fn eq(&self, other: &Interest) -> bool {
        self.subject == other.subject && Arc::ptr_eq(&self.inbox, &other.inbox)
    }
}

/// What the client holds in one account.
#[derive(Debug)]
struct Joined {
    /// The account value the subscriptions were made in.
    account: Arc<Account>,
    /// What was asked for there, to tell whether a new request differs.
    interests: Vec<Interest>,
    /// The subscriptions made for `interests`, in the account's index.
    subs: Vec<Arc<Subscription>>,
}

/// The server's subscriptions and publishing inside accounts (see the
/// module doc). Owned by one task; no lock of its own.
#[derive(Debug)]
pub struct InternalClient {
    broker: Arc<Broker>,
    /// Delivery state for what the server publishes.
    fanout: Fanout,
    /// By account name.
    joined: HashMap<Arc<str>, Joined>,
}

impl InternalClient {
    /// A client holding no subscription yet.
    pub fn new(broker: Arc<Broker>) -> InternalClient {
        InternalClient { broker, fanout: Fanout::new(0), joined: HashMap::new() }
    }

    /// Makes the subscriptions what `wanted` says: for each account (by
    /// value), the interests to hold there. Accounts not named lose theirs;
    /// an account that was replaced, or whose interests differ, has its
    /// subscriptions re-made; the rest are kept as they are. Call it at
    /// start and after every change of the accounts.
    pub fn subscribe(&mut self, wanted: impl IntoIterator<Item = (Arc<Account>, Vec<Interest>)>) {
        let wanted: Vec<(Arc<Account>, Vec<Interest>)> = wanted.into_iter().collect();
        let held: Vec<Arc<str>> = self.joined.keys().cloned().collect();
        for name in held {
            let same = |joined: &Joined| {
                wanted
                    .iter()
                    .any(|(account, interests)| Arc::ptr_eq(&joined.account, account) && joined.interests == *interests)
            };
            if self.joined.get(&name).is_some_and(same) {
                continue;
            }
            if let Some(old) = self.joined.remove(&name) {
                self.leave(&old);
            }
        }
        for (account, interests) in wanted {
            if self.joined.contains_key(&account.name) {
                continue;
            }
            let subs: Vec<Arc<Subscription>> = interests
                .iter()
                .map(|i| Arc::new(Subscription::internal(&account, &i.subject, SubKind::Inbox(i.inbox.clone()))))
                .collect();
            for sub in &subs {
                self.broker.add_subscription(sub.clone());
            }
            self.joined.insert(account.name.clone(), Joined { account, interests, subs });
        }
    }

    /// The account value the client holds subscriptions in under `name`:
    /// where its answers arrive, so where its requests go.
    pub fn account(&self, name: &str) -> Option<&Arc<Account>> {
        self.joined.get(name).map(|joined| &joined.account)
    }

    /// Publishes `msg` in `account` as the server and wakes the writers of
    /// whoever it reached; returns how many subscribers (or routes) got it.
    pub fn publish(&mut self, account: &Account, msg: &Message<'_>) -> usize {
        self.fanout.begin_batch(self.broker.next_batch_token());
        let origin = Origin::Client { id: 0, echo: true };
        let delivered = self.fanout.publish(&self.broker, account, msg, origin, Instant::now());
        // The server's own services never stall behind a slow subscriber.
        self.fanout.end_batch(&self.broker);
        delivered
    }

    fn leave(&self, joined: &Joined) {
        for sub in &joined.subs {
            self.broker.remove_subscription(sub);
        }
    }
}

impl Drop for InternalClient {
    fn drop(&mut self) {
        for (_, joined) in std::mem::take(&mut self.joined) {
            self.leave(&joined);
        }
    }
}

#[cfg(test)]
mod tests;
