//! A connection's own cache of match results.

use std::sync::Arc;

use super::{MatchResult, Router};
use crate::perms::RESERVED_REPLY_PREFIX;
use crate::subject::{tokens, SubjectCache};

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
        self.miss(router, subject)
    }

    /// A lookup the cache could not answer under the subject itself.
    ///
    /// A reply subject of a service import (`_R_.<prefix>.<id>`) is new
    /// with every request, so cached under itself it would always miss
    /// (and crowd out the subjects that repeat). While no subscription in
    /// the index names one id ([`names_reply_id`]; none does unless a
    /// client subscribes to one literally), every id under a prefix matches
    /// the same subscriptions, so the answer is cached under the prefix.
    /// Looked for only here, so a hit on any other subject costs nothing
    /// more.
    #[inline(never)]
    fn miss(&mut self, router: &Router, subject: &[u8]) -> Arc<MatchResult> {
        let key = reply_class(subject).filter(|_| router.reply_ids_alike()).unwrap_or(subject);
        if key.len() < subject.len() {
            if let Some(hit) = self.entries.get(key) {
                return hit;
            }
        }
        let (result, generation) = router.lookup(subject);
        // `reply_ids_alike` was read outside the index's lock, but it only
        // changes with the generation: if it changed since, so did the
        // generation, and the next lookup clears what this one inserts.
        if generation == self.generation {
            self.entries.insert(key, result.clone());
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

/// The key `_R_.<prefix>.` shared by the reply subjects `_R_.<prefix>.<id>`
/// (exactly three tokens); `None` for any other subject. The key ends in a
/// dot, so it is never a literal subject's own key.
fn reply_class(subject: &[u8]) -> Option<&[u8]> {
    let rest = subject.strip_prefix(RESERVED_REPLY_PREFIX)?;
    let dot = rest.iter().position(|&b| b == b'.')?;
    let id = &rest[dot + 1..];
    (!id.contains(&b'.')).then(|| &subject[..RESERVED_REPLY_PREFIX.len() + dot + 1])
}

/// Whether a subscription to `pattern` could tell two reply subjects under
/// one prefix apart: three tokens, the last literal, the first `_R_` or
/// `*` (the second is not looked at: counting a few too many only turns
/// the sharing off). Patterns of other lengths, or ending in `*` or `>`,
/// match all ids of a prefix or none.
pub(super) fn names_reply_id(pattern: &[u8]) -> bool {
    let mut toks = tokens(pattern);
    let (Some(first), Some(_), Some(third), None) = (toks.next(), toks.next(), toks.next(), toks.next()) else {
        return false;
    };
    (first == b"*" || first == &RESERVED_REPLY_PREFIX[..RESERVED_REPLY_PREFIX.len() - 1])
        && third != b"*"
        && third != b">"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_share_their_prefix_as_key() {
        assert_eq!(reply_class(b"_R_.abcdefghij.12345678"), Some(&b"_R_.abcdefghij."[..]));
        assert_eq!(reply_class(b"_R_.p.x"), Some(&b"_R_.p."[..]));
        for other in [&b"_R_.p"[..], b"_R_.p.x.y", b"_R_", b"R_.p.x", b"_INBOX.p.x", b"x._R_.p.x"] {
            assert_eq!(reply_class(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn only_three_token_patterns_with_a_literal_last_token_name_an_id() {
        for naming in [&b"_R_.p.x"[..], b"_R_.*.x", b"*.*.x", b"*.p.x"] {
            assert!(names_reply_id(naming), "{}", String::from_utf8_lossy(naming));
        }
        for not in [&b"_R_.p.*"[..], b"_R_.p.>", b"_R_.>", b">", b"*.*.*", b"_R_.p.x.y", b"_R_.p", b"foo.p.x"] {
            assert!(!names_reply_id(not), "{}", String::from_utf8_lossy(not));
        }
    }
}
