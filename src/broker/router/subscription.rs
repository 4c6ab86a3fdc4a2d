//! One subscription and the receiving side it delivers to.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::broker::Client;
use crate::perms::DenyFilter;

/// A subscription: subject, optional queue group, sid, and auto-unsubscribe state.
#[derive(Debug)]
pub struct Subscription {
    /// The subscribing connection.
    pub owner: Arc<Client>,
    /// Subject or pattern (valid by construction of the SUB handler).
    pub subject: Box<[u8]>,
    /// Queue group.
    pub queue: Option<Box<[u8]>>,
    /// Client-chosen id, echoed in MSG.
    pub sid: Box<[u8]>,
    /// Subjects this subscription matches but may not receive (a deny rule
    /// or the reserved space overlapping its wildcard).
    pub filter: Option<DenyFilter>,
    /// Auto-unsubscribe limit; 0 = none.
    max: AtomicU64,
    /// Messages handed to this subscription so far.
    delivered: AtomicU64,
    /// Set once when the subscription leaves the index.
    removed: AtomicBool,
}

/// Whether a delivery claim succeeded and whether it was the last allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Deliver; more may follow.
    Deliver,
    /// Deliver; this was the last one (UNSUB max reached): remove the subscription.
    DeliverLast,
    /// Do not deliver: the subscription is done.
    Done,
}

impl Subscription {
    /// A new subscription.
    pub fn new(
        owner: Arc<Client>,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
        filter: Option<DenyFilter>,
    ) -> Self {
        Subscription {
            owner,
            subject: subject.into(),
            queue: queue.map(Into::into),
            sid: sid.into(),
            filter,
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            removed: AtomicBool::new(false),
        }
    }

    /// The same subscription with a new delivery filter and the same
    /// counters (after a permission reload).
    pub fn renewed(&self, filter: Option<DenyFilter>) -> Subscription {
        Subscription {
            owner: self.owner.clone(),
            subject: self.subject.clone(),
            queue: self.queue.clone(),
            sid: self.sid.clone(),
            filter,
            max: AtomicU64::new(self.max()),
            delivered: AtomicU64::new(self.delivered()),
            removed: AtomicBool::new(false),
        }
    }

    /// Sets the auto-unsubscribe limit. Returns true if the subscription is
    /// already done (limit 0 or not above what was delivered): remove it now.
    pub fn set_max(&self, max: u64) -> bool {
        self.max.store(max, Ordering::Release);
        max == 0 || self.delivered.load(Ordering::Acquire) >= max
    }

    /// Claims one delivery, honouring the auto-unsubscribe limit.
    pub fn claim(&self) -> Claim {
        if self.removed.load(Ordering::Acquire) {
            return Claim::Done;
        }
        let max = self.max.load(Ordering::Acquire);
        let n = self.delivered.fetch_add(1, Ordering::AcqRel) + 1;
        match max {
            0 => Claim::Deliver,
            m if n < m => Claim::Deliver,
            m if n == m => Claim::DeliverLast,
            _ => Claim::Done,
        }
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Auto-unsubscribe limit, 0 for none.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// Marks the subscription removed; returns whether it already was.
    pub(crate) fn mark_removed(&self) -> bool {
        self.removed.swap(true, Ordering::AcqRel)
    }

    /// Whether the subscription has left the index.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }
}
