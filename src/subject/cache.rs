//! A bounded per-connection memo of answers about literal subjects: the
//! one implementation behind the router's match cache and the permission
//! caches.

use std::collections::HashMap;

use foldhash::fast::RandomState;

/// Answers (`V`) for recently seen subjects, owned by one connection (no
/// lock), with the last subject memoised so a publisher repeating a subject
/// skips even the hash.
///
/// Bounded because the keys are chosen by the client: past `capacity` a
/// quarter of the entries are dropped, in the map's randomly seeded order.
/// Keys are hashed with seeded foldhash rather than SipHash, which cost a
/// fifth of the server's CPU on a pub-only run: the map is the connection's
/// own and bounded, so a client that found colliding subjects could only
/// slow its own lookups, by a bounded factor.
#[derive(Debug)]
pub struct SubjectCache<V> {
    entries: HashMap<Box<[u8]>, V, RandomState>,
    capacity: usize,
    last_subject: Vec<u8>,
    last: Option<V>,
    hits: u64,
    misses: u64,
}

impl<V: Clone> SubjectCache<V> {
    /// An empty cache that holds at most `capacity` subjects. It grows on
    /// use, so idle connections pay nothing for it.
    pub fn new(capacity: usize) -> Self {
        SubjectCache {
            entries: HashMap::default(),
            capacity: capacity.max(4),
            last_subject: Vec::new(),
            last: None,
            hits: 0,
            misses: 0,
        }
    }

    /// The cached answer for `subject`, counted as a hit; `None` (not counted:
    /// the caller's `insert` counts the miss) when it is not cached.
    ///
    /// `#[inline]`: it is on every message's match (`MatchCache::lookup`),
    /// and when the crate grew the compiler stopped inlining it, which cost
    /// ~22 instructions per published message (callgrind, pub-only).
    #[inline]
    pub fn get(&mut self, subject: &[u8]) -> Option<V> {
        if let Some(last) = self.last.as_ref().filter(|_| self.last_subject == subject) {
            self.hits += 1;
            return Some(last.clone());
        }
        let hit = self.entries.get(subject)?.clone();
        self.hits += 1;
        self.remember(subject, &hit);
        Some(hit)
    }

    /// Records the answer for a subject `get` did not find.
    pub fn insert(&mut self, subject: &[u8], value: V) {
        self.misses += 1;
        if self.entries.len() >= self.capacity {
            let mut to_drop = self.capacity / 4;
            self.entries.retain(|_, _| {
                let keep = to_drop == 0;
                to_drop = to_drop.saturating_sub(1);
                keep
            });
        }
        self.remember(subject, &value);
        self.entries.insert(subject.into(), value);
    }

    /// Forgets every answer (the rules or the index they came from changed).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.last = None;
    }

    fn remember(&mut self, subject: &[u8], value: &V) {
        self.last_subject.clear();
        self.last_subject.extend_from_slice(subject);
        self.last = Some(value.clone());
    }

    /// Cached subjects (at most the capacity).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (hits, misses) since the cache was made.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Room reserved by the map (for the idle-memory tests).
    pub fn capacity_in_use(&self) -> usize {
        self.entries.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_memoised_and_bounded() {
        let mut cache = SubjectCache::new(8);
        assert_eq!(cache.capacity_in_use(), 0, "an idle cache allocates nothing");
        assert_eq!(cache.get(b"a"), None);
        cache.insert(b"a", 1);
        assert_eq!(cache.get(b"a"), Some(1));
        for i in 0..100u32 {
            let key = format!("s.{i}");
            if cache.get(key.as_bytes()).is_none() {
                cache.insert(key.as_bytes(), i);
            }
            assert!(cache.len() <= 8);
            assert_eq!(cache.get(key.as_bytes()), Some(i), "the newest answer is kept");
        }
        assert_eq!(cache.counts(), (101, 101));
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.get(b"s.99"), None, "the memo is cleared too");
    }
}
