//! The subscription index shared by all connections.
//!
//! One trie of subscriptions under a `RwLock`, plus a generation counter
//! bumped on every change. Connections keep their own small match cache
//! (`MatchCache`) tagged with the generation it was filled at, so the hot
//! path of a repeated subject is one hash lookup and one atomic load, with no
//! lock, and a cached result can never outlive a SUB or UNSUB.

mod cache;
mod subscription;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::subject::Trie;

pub use cache::MatchCache;
pub use subscription::{Claim, ShadowSpec, SubKind, Subscription};

/// Subscriptions that match one subject, grouped for delivery.
#[derive(Debug, Default)]
pub struct MatchResult {
    /// Plain subscriptions: each gets a copy.
    pub plain: Vec<Arc<Subscription>>,
    /// Queue groups: one member of each gets a copy.
    pub groups: Vec<Vec<Arc<Subscription>>>,
}

impl MatchResult {
    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.groups.is_empty()
    }
}

/// Counters for `/subsz`.
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Subscriptions inserted since start.
    pub inserts: AtomicU64,
    /// Subscriptions removed since start.
    pub removes: AtomicU64,
    /// Trie lookups (cache misses).
    pub matches: AtomicU64,
    /// Lookups answered by a connection's match cache; connections add
    /// theirs once per read batch.
    pub cache_hits: AtomicU64,
    /// Most deliveries of one published message; connections raise it
    /// once per read batch.
    pub max_fanout: AtomicU64,
}

/// Source of router ids.
static NEXT_ROUTER_ID: AtomicU64 = AtomicU64::new(1);

/// The subscription index.
#[derive(Debug)]
pub struct Router {
    /// Unique per router, so a match cache knows whose results it holds.
    id: u64,
    trie: RwLock<Trie<Arc<Subscription>>>,
    /// Bumped after every insert or remove, inside the write lock.
    generation: AtomicU64,
    /// Subscriptions that could tell two service-import reply subjects
    /// apart ([`cache::names_reply_id`]); while there are none, match
    /// caches answer all of a prefix's replies with one entry. Changed
    /// only inside the write lock, with the generation.
    reply_namers: AtomicUsize,
    /// Insert, remove and match counts.
    pub stats: RouterStats,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            id: NEXT_ROUTER_ID.fetch_add(1, Ordering::Relaxed),
            trie: RwLock::default(),
            generation: AtomicU64::new(0),
            reply_namers: AtomicUsize::new(0),
            stats: RouterStats::default(),
        }
    }
}

impl Router {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// This router's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Current generation; a cached result from another generation is stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether every reply subject `_R_.<prefix>.<id>` of one prefix
    /// matches the same subscriptions (see [`MatchCache::lookup`]).
    pub fn reply_ids_alike(&self) -> bool {
        self.reply_namers.load(Ordering::Acquire) == 0
    }

    /// Counts `subject` in or out of `reply_namers` (inside the write lock).
    fn count_reply_namer(&self, subject: &[u8], added: bool) {
        if cache::names_reply_id(subject) {
            if added {
                self.reply_namers.fetch_add(1, Ordering::AcqRel);
            } else {
                self.reply_namers.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Adds a subscription (its subject was validated by the caller).
    pub fn insert(&self, sub: Arc<Subscription>) {
        let mut trie = self.trie.write();
        trie.insert(&sub.subject, sub.clone());
        self.count_reply_namer(&sub.subject, true);
        if sub.is_clients_own() {
            sub.owner.count_subscription(true);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.stats.inserts.fetch_add(1, Ordering::Relaxed);
    }

    /// Puts `new` in `old`'s place in one step (same subject), so no
    /// message published meanwhile misses both; false (and nothing done)
    /// if `old` was already gone.
    pub fn replace(&self, old: &Arc<Subscription>, new: Arc<Subscription>) -> bool {
        let mut trie = self.trie.write();
        if old.is_removed() || old.retire() {
            return false;
        }
        let removed = trie.remove(&old.subject, |s| Arc::ptr_eq(s, old)).is_some();
        if removed {
            self.count_reply_namer(&old.subject, false);
        }
        trie.insert(&new.subject, new.clone());
        self.count_reply_namer(&new.subject, true);
        if old.is_clients_own() {
            old.owner.count_subscription(false);
        }
        if new.is_clients_own() {
            new.owner.count_subscription(true);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.stats.inserts.fetch_add(1, Ordering::Relaxed);
        self.stats.removes.fetch_add(u64::from(removed), Ordering::Relaxed);
        true
    }

    /// Removes a subscription; returns false if it was already gone, so
    /// removing it twice is harmless.
    pub fn remove(&self, sub: &Arc<Subscription>) -> bool {
        // Under the lock, so a replacement and a removal of one
        // subscription never both count it out.
        let mut trie = self.trie.write();
        if sub.mark_removed() || sub.is_retired() {
            // Gone already, or replaced (then out of the index and counted out).
            return false;
        }
        if sub.is_clients_own() {
            sub.owner.count_subscription(false);
        }
        let removed = trie.remove(&sub.subject, |s| Arc::ptr_eq(s, sub)).is_some();
        if removed {
            self.count_reply_namer(&sub.subject, false);
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.stats.removes.fetch_add(1, Ordering::Relaxed);
        }
        removed
    }

    /// Matches a literal subject against the index, returning the result and
    /// the generation it is valid for.
    pub fn lookup(&self, subject: &[u8]) -> (Arc<MatchResult>, u64) {
        let trie = self.trie.read();
        // Read inside the lock: writers bump it while holding the write lock,
        // so this generation describes exactly the trie we are reading.
        let generation = self.generation.load(Ordering::Acquire);
        let mut result = MatchResult::default();
        trie.for_each_match(subject, |sub| match &sub.queue {
            None => result.plain.push(sub.clone()),
            Some(q) => match result.groups.iter_mut().find(|g| g.first().and_then(|m| m.queue.as_ref()) == Some(q)) {
                Some(group) => group.push(sub.clone()),
                None => result.groups.push(vec![sub.clone()]),
            },
        });
        drop(trie);
        self.stats.matches.fetch_add(1, Ordering::Relaxed);
        (Arc::new(result), generation)
    }

    /// Every subscription in the index (for monitoring; takes the read lock
    /// for one walk of the trie).
    pub fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        let trie = self.trie.read();
        let mut all = Vec::with_capacity(trie.len());
        trie.for_each(|sub| all.push(sub.clone()));
        all
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.trie.read().len()
    }

    /// Whether there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
