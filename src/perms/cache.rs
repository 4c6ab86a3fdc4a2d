//! A connection's cache of publish decisions.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::PermissionSet;

/// Most subjects one connection caches. Bounded because the keys are chosen
/// by the client; past it a quarter of the entries are dropped.
pub const PUBLISH_CACHE_CAPACITY: usize = 256;

/// Per-connection `subject -> allowed` cache in front of a
/// [`PermissionSet`], owned by the connection's reader (no lock).
///
/// It caches only the static rules; reply grants (`allow_responses`) change
/// with every request and are checked separately, never cached. Holding the
/// set itself means the cache cannot outlive the rules it was filled from:
/// [`PublishCache::replace`] swaps both.
#[derive(Debug)]
pub struct PublishCache {
    set: Arc<PermissionSet>,
    /// Keys hashed with randomly seeded foldhash (several times cheaper
    /// than SipHash on short subjects): the map is this connection's own
    /// and bounded, so colliding subjects could only slow their sender.
    entries: HashMap<Box<[u8]>, bool, RandomState>,
    /// The subject decided last and its answer: a publisher repeating a
    /// subject skips even the hash.
    last_subject: Vec<u8>,
    last: Option<bool>,
    hits: u64,
    misses: u64,
}

impl PublishCache {
    /// An empty cache in front of `set`.
    pub fn new(set: Arc<PermissionSet>) -> Self {
        // Grows on use: idle connections and unrestricted users pay nothing
        // (a 256-entry table up front cost ~12 KB per connection).
        PublishCache { set, entries: HashMap::default(), last_subject: Vec::new(), last: None, hits: 0, misses: 0 }
    }

    /// The static publish decision for a literal subject.
    pub fn may_publish(&mut self, subject: &[u8]) -> bool {
        if self.set.publish_is_unrestricted() {
            // Only the reserved-space check: cheaper than a hash.
            return self.set.may_publish(subject);
        }
        if let Some(allowed) = self.last.filter(|_| self.last_subject == subject) {
            self.hits += 1;
            return allowed;
        }
        let allowed = match self.entries.get(subject) {
            Some(&allowed) => {
                self.hits += 1;
                allowed
            }
            None => {
                self.misses += 1;
                let allowed = self.set.may_publish(subject);
                if self.entries.len() >= PUBLISH_CACHE_CAPACITY {
                    self.evict();
                }
                self.entries.insert(subject.into(), allowed);
                allowed
            }
        };
        self.last_subject.clear();
        self.last_subject.extend_from_slice(subject);
        self.last = Some(allowed);
        allowed
    }

    /// Drops a quarter of the entries, in the map's (randomly seeded) order.
    fn evict(&mut self) {
        let mut to_drop = PUBLISH_CACHE_CAPACITY / 4;
        self.entries.retain(|_, _| {
            if to_drop > 0 {
                to_drop -= 1;
                false
            } else {
                true
            }
        });
    }

    /// The permission set the answers come from.
    pub fn permissions(&self) -> &Arc<PermissionSet> {
        &self.set
    }

    /// Switches to a new set (reload, re-CONNECT) and forgets every answer.
    pub fn replace(&mut self, set: Arc<PermissionSet>) {
        self.set = set;
        self.entries.clear();
        self.last = None;
    }

    /// Cached subjects (at most [`PUBLISH_CACHE_CAPACITY`]).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (hits, misses) since the connection started.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the cache was allocated at its full bound for every
    /// connection, even those whose permissions never consult it.
    #[test]
    fn idle_publish_cache_allocates_nothing() {
        let cache = PublishCache::new(Arc::new(PermissionSet::unrestricted()));
        assert_eq!(cache.entries.capacity(), 0);
    }
}
