//! A connection's own cache of match results.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::{MatchResult, Router};

/// Most subjects a connection caches; past it the cache is emptied. Bounded
/// because the keys are chosen by the client.
const CAPACITY: usize = 512;

/// Per-connection match cache, invalidated as a whole when the router's
/// generation moves, so it never serves a result that misses a newer SUB or
/// still holds a removed one.
///
/// Keys are hashed with randomly seeded foldhash rather than SipHash (which
/// cost a fifth of the server's CPU time on a pub-only run): the map is
/// the connection's own and never holds more than `CAPACITY` keys, so a
/// client that found colliding subjects could only slow its own lookups,
/// and by a bounded factor.
#[derive(Debug, Default)]
pub struct MatchCache {
    generation: u64,
    entries: HashMap<Box<[u8]>, Arc<MatchResult>, RandomState>,
    /// The subject looked up last and its result (valid for `generation`):
    /// a publisher that repeats a subject skips even the hash.
    last_subject: Vec<u8>,
    last: Option<Arc<MatchResult>>,
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
            self.last = None;
            self.generation = current;
        } else {
            if let Some(last) = self.last.as_ref().filter(|_| self.last_subject == subject) {
                self.hits += 1;
                return last.clone();
            }
            if let Some(hit) = self.entries.get(subject) {
                self.hits += 1;
                let hit = hit.clone();
                self.remember(subject, &hit);
                return hit;
            }
        }
        self.misses += 1;
        let (result, generation) = router.lookup(subject);
        if generation == self.generation {
            if self.entries.len() >= CAPACITY {
                self.entries.clear();
            }
            self.entries.insert(subject.into(), result.clone());
            self.remember(subject, &result);
        }
        result
    }

    /// Makes `subject` the last one looked up (reusing the buffer).
    fn remember(&mut self, subject: &[u8], result: &Arc<MatchResult>) {
        self.last_subject.clear();
        self.last_subject.extend_from_slice(subject);
        self.last = Some(result.clone());
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
