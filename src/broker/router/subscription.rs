//! One subscription and the receiving side it delivers to.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::broker::account::{Account, ServiceImport, StreamImport};
use crate::broker::{Client, Inbox, Via};
use crate::perms::DenyFilter;

/// What a delivery to a subscription does.
#[derive(Debug)]
pub enum SubKind {
    /// Writes a MSG to its owner (a client's own SUB, or a route's interest).
    Direct,
    /// A client's subscription mirrored into an exporting account by a
    /// stream import: renames the subject into the client's account, then
    /// delivers as its parent (whose counters and filter it shares).
    Shadow {
        /// The client's own subscription.
        parent: Weak<Subscription>,
        /// The import that renames.
        import: Arc<StreamImport>,
    },
    /// A service import's local subject: sends the request to the exporter.
    Service(Arc<ServiceImport>),
    /// A service import's `_R_.<prefix>.>` in the exporter: sends each
    /// response back to the requester.
    Responses(Arc<ServiceImport>),
    /// One of the server's own services (`$SYS`): hands a copy to its inbox.
    Inbox(Arc<Inbox>),
}

/// A subscription: subject, optional queue group, sid, and auto-unsubscribe state.
#[derive(Debug)]
pub struct Subscription {
    /// The subscribing connection.
    pub owner: Arc<Client>,
    /// The account whose index holds it.
    pub account: Arc<Account>,
    /// What delivering to it does.
    pub kind: SubKind,
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
    /// Set when a renewed copy took its place in the index (a reload):
    /// it still delivers what publishers found before the swap, so nothing
    /// published meanwhile is lost.
    retired: AtomicBool,
    /// Its shadows in exporting accounts (stream imports), which enter and
    /// leave the indexes with it.
    shadows: Box<[Arc<Subscription>]>,
    /// The leaf node cluster a route's `LS+` named: that cluster's leafs
    /// are not told of it.
    origin: Option<Box<str>>,
}

/// A shadow to create with a subscription: the import and the subject in
/// the exporter's index.
pub type ShadowSpec = (Arc<StreamImport>, Vec<u8>);

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
    /// A direct subscription of `owner` in `account`, without shadows.
    pub fn new(
        owner: Arc<Client>,
        account: Arc<Account>,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
        filter: Option<DenyFilter>,
    ) -> Self {
        Subscription {
            owner,
            account,
            kind: SubKind::Direct,
            subject: subject.into(),
            queue: queue.map(Into::into),
            sid: sid.into(),
            filter,
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            shadows: Box::new([]),
            origin: None,
        }
    }

    /// The same subscription, announced by a route as interest of the leaf
    /// node cluster `origin`.
    pub fn from_leaf_cluster(self, origin: Option<&[u8]>) -> Self {
        let origin = origin.and_then(|o| std::str::from_utf8(o).ok()).map(Into::into);
        Subscription { origin, ..self }
    }

    /// The leaf node cluster the interest comes from: the one a route
    /// named, or the cluster of the leaf node that subscribed.
    pub fn leaf_cluster(&self) -> Option<&str> {
        self.origin.as_deref().or_else(|| self.owner.leaf_cluster())
    }

    /// A client's subscription with its stream-import shadows.
    pub fn with_shadows(base: Subscription, shadows: Vec<ShadowSpec>) -> Arc<Subscription> {
        if shadows.is_empty() {
            return Arc::new(base);
        }
        Arc::new_cyclic(|parent: &Weak<Subscription>| {
            let made = shadows
                .into_iter()
                .map(|(import, subject)| {
                    Arc::new(Subscription {
                        owner: base.owner.clone(),
                        account: import.exporter.clone(),
                        subject: subject.into(),
                        queue: base.queue.clone(),
                        sid: base.sid.clone(),
                        filter: None,
                        kind: SubKind::Shadow { parent: parent.clone(), import },
                        max: AtomicU64::new(0),
                        delivered: AtomicU64::new(0),
                        removed: AtomicBool::new(false),
                        retired: AtomicBool::new(false),
                        shadows: Box::new([]),
                        origin: None,
                    })
                })
                .collect();
            Subscription { shadows: made, ..base }
        })
    }

    /// An internal subscription of `account` (a service import's, or a
    /// `$SYS` service's).
    pub fn internal(account: &Arc<Account>, subject: &[u8], kind: SubKind) -> Subscription {
        Subscription {
            kind,
            ..Subscription::new(account.internal_client().clone(), account.clone(), subject, None, b"", None)
        }
    }

    /// The same subscription with a new delivery filter, new shadows and
    /// the same counters (after a reload).
    pub fn renewed(&self, filter: Option<DenyFilter>, shadows: Vec<ShadowSpec>) -> Arc<Subscription> {
        let base = Subscription {
            owner: self.owner.clone(),
            account: self.account.clone(),
            kind: SubKind::Direct,
            subject: self.subject.clone(),
            queue: self.queue.clone(),
            sid: self.sid.clone(),
            filter,
            max: AtomicU64::new(self.max()),
            delivered: AtomicU64::new(self.delivered()),
            removed: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            shadows: Box::new([]),
            origin: self.origin.clone(),
        };
        Subscription::with_shadows(base, shadows)
    }

    /// Its shadows in exporting accounts.
    pub fn shadows(&self) -> &[Arc<Subscription>] {
        &self.shadows
    }

    /// Whether peers on side `to` hear of it: everything but a service
    /// import's local subject (a request from a peer is never imported),
    /// internal interest that stays local, and interest that may not travel
    /// to `to` (a route's to routes), by the same rule as messages.
    pub fn is_announced_to(&self, to: Via) -> bool {
        match &self.kind {
            SubKind::Service(_) => false,
            SubKind::Inbox(inbox) => inbox.announce.to(to),
            _ => self.owner.via().may_announce_to(to),
        }
    }

    /// Whether it counts as one of its owner's subscriptions (a client's
    /// own SUB, not a shadow or an internal one).
    pub fn is_clients_own(&self) -> bool {
        matches!(self.kind, SubKind::Direct)
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

    /// Marks it replaced by a renewed copy; returns whether it already was.
    pub(crate) fn retire(&self) -> bool {
        self.retired.swap(true, Ordering::AcqRel)
    }

    /// Whether a renewed copy took its place.
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Whether the subscription has left the index.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }
}
