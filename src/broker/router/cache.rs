//! A connection's own cache of match results.

use std::sync::Arc;

use super::{MatchResult, Router};
use crate::subject::SubjectCache;

/// Most subjects a connection caches. Bounded because the keys are chosen
/// by the client.
const CAPACITY: usize = 512;

/// Per-connection match cache, invalidated as a whole when the router's
/// generation moves, so it never serves a result that misses a newer SUB or
/// still holds a removed one.
#[derive(Debug)]
pub struct MatchCache {
    /// The router the entries came from (0: none yet).
    router: u64,
    generation: u64,
    entries: SubjectCache<Arc<MatchResult>>,
    /// Hits already reported by `take_new_hits`.
    reported_hits: u64,
}

impl Default for MatchCache {
    fn default() -> Self {
        MatchCache { router: 0, generation: 0, entries: SubjectCache::new(CAPACITY), reported_hits: 0 }
    }
}

impl MatchCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The subscriptions matching `subject`, from the cache when still valid.
    pub fn lookup(&mut self, router: &Router, subject: &[u8]) -> Arc<MatchResult> {
        let current = router.generation();
        if current != self.generation || router.id() != self.router {
            self.entries.clear();
            self.generation = current;
            self.router = router.id();
        } else if let Some(hit) = self.entries.get(subject) {
            return hit;
        }
        let (result, generation) = router.lookup(subject);
        if generation == self.generation {
            self.entries.insert(subject, result.clone());
        }
        result
    }

    /// The id of the router whose results are cached.
    pub fn router_id(&self) -> u64 {
        self.router
    }

    /// Hits since the last call (for the router's server-wide counter).
    pub fn take_new_hits(&mut self) -> u64 {
        let hits = self.entries.counts().0;
        let new = hits - self.reported_hits;
        self.reported_hits = hits;
        new
    }

    /// Cached subjects.
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
