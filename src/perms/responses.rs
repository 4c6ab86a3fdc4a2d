//! `allow_responses`: reply subjects a connection may publish to because it
//! received a request carrying them.

use std::collections::HashMap;
use std::time::Instant;

use crate::config::ResponsePermission;

use super::{is_reserved, PermissionSet};

/// Most reply grants one connection holds (nats-server prunes at the same
/// size). Requests come from other clients, so this must be bounded.
pub const RESPONSE_TRACKER_CAPACITY: usize = 4096;

/// Most bytes of reply subjects one connection holds, so long subjects
/// cannot multiply the entry bound into megabytes per connection.
pub const RESPONSE_TRACKER_MAX_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct Grant {
    granted: Instant,
    /// Insertion order, unique: pruning drops the lowest.
    seq: u64,
    used: usize,
}

/// Per-connection reply grants. Time is passed in, so tests need no sleep.
///
/// Written at delivery time by whichever task delivers a request to this
/// connection and read by the connection's PUB check: the broker keeps it
/// behind a short lock, taken only for users that have `allow_responses`.
#[derive(Debug)]
pub struct ResponseTracker {
    perm: ResponsePermission,
    /// Whether grants may open `_SYS.>` subjects (system users only).
    reserved_allowed: bool,
    grants: HashMap<Box<[u8]>, Grant>,
    /// Sum of key lengths in `grants`.
    bytes: usize,
    /// Next `Grant::seq`.
    next_seq: u64,
}

impl ResponseTracker {
    /// A tracker for a non-system user with this permission.
    pub fn new(perm: ResponsePermission) -> Self {
        ResponseTracker { perm, reserved_allowed: false, grants: HashMap::new(), bytes: 0, next_seq: 0 }
    }

    /// The tracker a connection of this set needs, if any.
    pub fn for_set(set: &PermissionSet) -> Option<Self> {
        set.response_permission()
            .map(|perm| ResponseTracker { reserved_allowed: set.is_system(), ..ResponseTracker::new(perm) })
    }

    /// Records that a message with reply subject `reply` was delivered to
    /// this connection at `now`. A repeated reply subject starts afresh.
    pub fn record(&mut self, reply: &[u8], now: Instant) {
        if !self.reserved_allowed && is_reserved(reply) {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let fresh = Grant { granted: now, seq, used: 0 };
        if let Some(grant) = self.grants.get_mut(reply) {
            *grant = fresh;
            return;
        }
        if reply.len() > RESPONSE_TRACKER_MAX_BYTES / 4 {
            return;
        }
        if self.grants.len() >= RESPONSE_TRACKER_CAPACITY || self.bytes + reply.len() > RESPONSE_TRACKER_MAX_BYTES {
            self.prune(now, reply.len());
        }
        self.bytes += reply.len();
        self.grants.insert(reply.into(), fresh);
    }

    /// Whether `subject` may be published as a reply at `now`; a yes uses up
    /// one of the grant's `max` replies.
    pub fn may_reply(&mut self, subject: &[u8], now: Instant) -> bool {
        let ResponsePermission { max, expires } = self.perm;
        let Some(grant) = self.grants.get_mut(subject) else {
            return false;
        };
        let expired = now.saturating_duration_since(grant.granted) > expires;
        if expired || max.is_some_and(|max| grant.used >= max) {
            self.forget(subject);
            return false;
        }
        grant.used += 1;
        if max.is_some_and(|max| grant.used >= max) {
            self.forget(subject);
        }
        true
    }

    fn forget(&mut self, subject: &[u8]) {
        if self.grants.remove(subject).is_some() {
            self.bytes -= subject.len();
        }
    }

    /// Frees room for a new key of `incoming` bytes: expired grants first,
    /// then the oldest-recorded quarter (repeated while still over a bound), so the
    /// cost is amortised over many inserts.
    fn prune(&mut self, now: Instant, incoming: usize) {
        let expires = self.perm.expires;
        self.retain(|g| now.saturating_duration_since(g.granted) <= expires);
        while !self.grants.is_empty()
            && (self.grants.len() >= RESPONSE_TRACKER_CAPACITY || self.bytes + incoming > RESPONSE_TRACKER_MAX_BYTES)
        {
            let mut seqs: Vec<u64> = self.grants.values().map(|g| g.seq).collect();
            let cut = seqs.len() / 4;
            let (_, &mut threshold, _) = seqs.select_nth_unstable(cut);
            // Drops `cut + 1` grants (at least one): seqs are unique.
            self.retain(|g| g.seq > threshold);
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Grant) -> bool) {
        let mut freed = 0;
        self.grants.retain(|k, g| {
            let kept = keep(g);
            if !kept {
                freed += k.len();
            }
            kept
        });
        self.bytes -= freed;
    }

    /// Grants currently held (expired ones may linger until pruned or used).
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether no grant is held.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}
