//! The interest another server announced over one connection (a route's or
//! a gateway's `RS+`): hosted as subscriptions in this server's account
//! indexes, and, for accounts this server does not host (yet), held within
//! the same bounds, so an account a reload adds gets its peers' interest
//! without their resending it. The sessions decide what they accept; this
//! keeps the books: entries and bytes in all and per account, and the
//! subscriptions to take out of the indexes when the interest or the
//! connection goes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Account, Broker, Subscription};

/// Account, subject and queue of a piece of interest.
pub type InterestKey = (Arc<str>, Box<[u8]>, Option<Box<[u8]>>);

/// What one interest entry counts against the bytes bounds.
pub fn interest_bytes((account, subject, queue): &InterestKey) -> usize {
    account.len() + subject.len() + queue.as_ref().map_or(0, |q| q.len())
}

/// One connection's held interest. See the module doc.
#[derive(Debug, Default)]
pub struct PeerInterest {
    hosted: HashMap<InterestKey, Arc<Subscription>>,
    unhosted: HashSet<InterestKey>,
    /// Bytes of every entry, hosted or not.
    bytes: usize,
    /// Entries and bytes per account.
    per_account: HashMap<Arc<str>, (usize, usize)>,
}

impl PeerInterest {
    /// Whether `key` is held, hosted or not.
    pub fn contains(&self, key: &InterestKey) -> bool {
        self.hosted.contains_key(key) || self.unhosted.contains(key)
    }

    /// Entries held in all.
    pub fn len(&self) -> usize {
        self.hosted.len() + self.unhosted.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held in all.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries and bytes held in `account`.
    pub fn in_account(&self, account: &str) -> (usize, usize) {
        self.per_account.get(account).copied().unwrap_or_default()
    }

    /// Holds `key`: hosted in `account`'s index by the subscription `host`
    /// makes (and the broker told), or kept unhosted without an account.
    pub fn insert(
        &mut self,
        broker: &Broker,
        key: InterestKey,
        account: Option<Arc<Account>>,
        host: impl FnOnce(Arc<Account>, &InterestKey) -> Subscription,
    ) {
        let bytes = interest_bytes(&key);
        self.bytes += bytes;
        let held = self.per_account.entry(key.0.clone()).or_default();
        *held = (held.0 + 1, held.1 + bytes);
        match account {
            Some(account) => self.host(broker, key, account, host),
            None => {
                self.unhosted.insert(key);
            }
        }
    }

    fn host(
        &mut self,
        broker: &Broker,
        key: InterestKey,
        account: Arc<Account>,
        host: impl FnOnce(Arc<Account>, &InterestKey) -> Subscription,
    ) {
        let sub = Arc::new(host(account, &key));
        broker.add_subscription(sub.clone());
        self.hosted.insert(key, sub);
    }

    /// Lets `key` go (its subscription leaves the index).
    pub fn remove(&mut self, broker: &Broker, key: &InterestKey) {
        let held = match self.hosted.remove(key) {
            Some(sub) => {
                broker.remove_subscription(&sub);
                true
            }
            None => self.unhosted.remove(key),
        };
        if held {
            let bytes = interest_bytes(key);
            self.bytes = self.bytes.saturating_sub(bytes);
            if let Some(held) = self.per_account.get_mut(&key.0) {
                *held = (held.0.saturating_sub(1), held.1.saturating_sub(bytes));
                if held.0 == 0 {
                    self.per_account.remove(&key.0);
                }
            }
        }
    }

    /// After a reconfiguration: interest in accounts that went away is
    /// held unhosted again, and interest in accounts now hosted goes into
    /// their indexes, each subscription made by `host`.
    pub fn rehost(&mut self, broker: &Broker, mut host: impl FnMut(Arc<Account>, &InterestKey) -> Subscription) {
        let stale: Vec<InterestKey> =
            self.hosted.iter().filter(|(_, sub)| sub.account.is_removed()).map(|(k, _)| k.clone()).collect();
        for key in stale {
            if let Some(sub) = self.hosted.remove(&key) {
                broker.remove_subscription(&sub);
            }
            self.unhosted.insert(key);
        }
        let ready: Vec<InterestKey> =
            self.unhosted.iter().filter(|k| broker.accounts.get(&k.0).is_some()).cloned().collect();
        for key in ready {
            self.unhosted.remove(&key);
            if let Some(account) = broker.accounts.get(&key.0) {
                self.host(broker, key, account, &mut host);
            }
        }
    }

    /// The connection ended: every subscription leaves the indexes.
    pub fn clear(&mut self, broker: &Broker) {
        for (_, sub) in self.hosted.drain() {
            broker.remove_subscription(&sub);
        }
        self.unhosted.clear();
        self.per_account.clear();
        self.bytes = 0;
    }
}
