//! A connection's own cache of match results.

use std::collections::HashMap;
use std::sync::Arc;

use super::{MatchResult, Router};

/// Most subjects a connection caches; past it the cache is emptied. Bounded
/// because the keys are chosen by the client.
const CAPACITY: usize = 512;

/// Per-connection match cache, invalidated as a whole when the router's
/// generation moves, so it never serves a result that misses a newer SUB or
/// still holds a removed one.
#[derive(Debug, Default)]
pub struct MatchCache {
    generation: u64,
    entries: HashMap<Box<[u8]>, Arc<MatchResult>>,
    hits: u64,
    misses: u64,
    /// Hits already reported by `take_new_hits`.
    reported_hits: u64,
}

impl MatchCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The subscriptions matching `subject`, from the cache when still valid.
    pub fn lookup(&mut self, router: &Router, subject: &[u8]) -> Arc<MatchResult> {
        let current = router.generation();
        if current != self.generation {
            self.entries.clear();
            self.generation = current;
        } else if let Some(hit) = self.entries.get(subject) {
            self.hits += 1;
            return hit.clone();
        }
        self.misses += 1;
        let (result, generation) = router.lookup(subject);
        if generation == self.generation {
            if self.entries.len() >= CAPACITY {
                self.entries.clear();
            }
            self.entries.insert(subject.into(), result.clone());
        }
        result
    }

    /// Hits since the last call (for the router's server-wide counter).
    pub fn take_new_hits(&mut self) -> u64 {
        let new = self.hits - self.reported_hits;
        self.reported_hits = self.hits;
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
        (self.hits, self.misses)
    }
}
