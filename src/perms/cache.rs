//! A connection's cache of publish decisions.

use std::sync::Arc;

use super::PermissionSet;
use crate::subject::SubjectCache;

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
    entries: SubjectCache<bool>,
    /// Reply-subject decisions ([`PermissionSet::may_reply_to`]).
    replies: SubjectCache<bool>,
}

impl PublishCache {
    /// An empty cache in front of `set`.
    pub fn new(set: Arc<PermissionSet>) -> Self {
        // Grows on use: idle connections and unrestricted users pay nothing
        // (a 256-entry table up front cost ~12 KB per connection).
        PublishCache {
            set,
            entries: SubjectCache::new(PUBLISH_CACHE_CAPACITY),
            replies: SubjectCache::new(PUBLISH_CACHE_CAPACITY),
        }
    }

    /// The static publish decision for a literal subject. Inline: it runs
    /// on every PUB, and the unrestricted case is a prefix test (callgrind
    /// showed the compiler calling it out of line, +14 instructions per
    /// message, once the session grew).
    #[inline]
    pub fn may_publish(&mut self, subject: &[u8]) -> bool {
        if self.set.publish_is_unrestricted() {
            // Only the reserved-space check: cheaper than a hash.
            return self.set.may_publish(subject);
        }
        self.may_publish_cached(subject)
    }

    fn may_publish_cached(&mut self, subject: &[u8]) -> bool {
        if let Some(allowed) = self.entries.get(subject) {
            return allowed;
        }
        let allowed = self.set.may_publish(subject);
        self.entries.insert(subject, allowed);
        allowed
    }

    /// Whether a publish may name `reply` as its reply subject.
    pub fn may_reply_to(&mut self, reply: &[u8]) -> bool {
        if self.set.subscribe_is_unrestricted() {
            return self.set.may_reply_to(reply);
        }
        if let Some(allowed) = self.replies.get(reply) {
            return allowed;
        }
        let allowed = self.set.may_reply_to(reply);
        self.replies.insert(reply, allowed);
        allowed
    }

    /// The permission set the answers come from.
    pub fn permissions(&self) -> &Arc<PermissionSet> {
        &self.set
    }

    /// Switches to a new set (reload, re-CONNECT) and forgets every answer.
    pub fn replace(&mut self, set: Arc<PermissionSet>) {
        self.set = set;
        self.entries.clear();
        self.replies.clear();
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
        self.entries.counts()
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
        assert_eq!(cache.entries.capacity_in_use(), 0);
    }
}
