//! The one answer to "may this connection publish S with reply R now".
//!
//! Five rules decide it, in this order (each is a cheap test or a cache
//! lookup; none allocates or locks unless the user has `allow_responses`
//! and its static rules refuse):
//! 1. **Subject**: the connection's publish rules ([`PublishCache`]), or
//!    else a reply grant ([`ReplyGrants`], `allow_responses`). A grant is
//!    consumed only when the static rules refuse, as in nats-server.
//! 2. **`$SYS.>`** ([`system_space::may_publish`]): open in the system
//!    account; outside it only the self-service requests and, for the auth
//!    callout service, its answers; nobody publishes a callout request.
//! 3. **Reserved reply**: a reply in `_R_.` (the server's service-import
//!    replies), in `_GR_.` (replies routed across gateways) or, outside the system account, in `$SYS.>`.
//! 4. **Borrowed voice**: the server answers a `$SYS` request as itself, so
//!    such a request may name as reply only an inbox or a subject the
//!    requester could publish to; it cannot make the server write where the
//!    requester may not.
//! 5. **Receivable reply** (`check_reply_subjects`): a reply the publisher
//!    could subscribe to, so a requester cannot make a service answer into
//!    a subject the requester may not use.
//!
//! Refusals of 1 and 2 blame the subject, of 3 to 5 the reply
//! ([`PublishViolation::blames_reply`]); the session turns them into the
//! `-ERR` texts. A new rule (rate limits) is one more step in
//! [`PublishGuard::check`], not in the session.

use std::sync::Arc;
use std::time::Instant;

use super::{system_space, PermissionSet, PublishCache, RESERVED_REPLY_PREFIX, ROUTED_REPLY_PREFIX};

/// Where a connection's reply grants (`allow_responses`) live. They are
/// written at delivery time by whichever task delivers a request to the
/// connection, so the broker keeps them (behind a short lock); the guard
/// only asks, and only when the static rules refuse.
pub trait ReplyGrants {
    /// Whether `subject` may be published as a reply at `now`; a yes uses
    /// up one of the grant's replies.
    fn may_reply(&self, subject: &[u8], now: Instant) -> bool;
}

/// Where a connection stands towards `$SYS.>`; fixed per login, renewed
/// with the permissions on a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The connection's account is the system account: `$SYS.>` is open.
    pub in_system: bool,
    /// The user is the auth callout's service: it may answer on
    /// `$SYS._INBOX.>` in its account.
    pub serves_callout: bool,
}

/// Why a publish was refused (see the module doc for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishViolation {
    /// The publish rules refuse the subject and no reply grant opens it.
    SubjectDenied,
    /// The subject lies in the part of `$SYS.>` closed to this connection.
    SystemSubject,
    /// The reply lies in a space the server reserves for itself (`_R_.`,
    /// or `$SYS.>` outside the system account).
    ReservedReply,
    /// A `$SYS` request names a reply that is neither an inbox nor a
    /// subject the requester may publish to.
    BorrowedVoice,
    /// `check_reply_subjects`: the publisher could not subscribe to its
    /// reply subject.
    UnreceivableReply,
}

impl PublishViolation {
    /// Whether the reply subject, rather than the subject, is refused
    /// (nats-server's "Permissions Violation for Publish with Reply of").
    pub fn blames_reply(self) -> bool {
        matches!(
            self,
            PublishViolation::ReservedReply | PublishViolation::BorrowedVoice | PublishViolation::UnreceivableReply
        )
    }
}

/// One connection's publish check, owned by its reader (no lock of its
/// own): the cached static rules, the reply grants, its standing and the
/// server's `check_reply_subjects`.
#[derive(Debug)]
pub struct PublishGuard<G> {
    /// The static rules and their per-connection cache.
    cache: PublishCache,
    /// The connection's reply grants (its broker-side client).
    grants: Arc<G>,
    standing: Standing,
    /// The server's `check_reply_subjects` (rule 5).
    check_reply_subjects: bool,
}

impl<G: ReplyGrants> PublishGuard<G> {
    /// A guard for a connection of `set`, with `grants`, standing so.
    pub fn new(set: Arc<PermissionSet>, grants: Arc<G>, standing: Standing, check_reply_subjects: bool) -> Self {
        PublishGuard { cache: PublishCache::new(set), grants, standing, check_reply_subjects }
    }

    /// Switches to a new login's rules and standing (reload, re-CONNECT),
    /// forgetting every cached answer but keeping the cache's memory.
    pub fn replace(&mut self, set: Arc<PermissionSet>, standing: Standing) {
        self.cache.replace(set);
        self.standing = standing;
    }

    /// Whether the connection may publish `subject` with `reply` at `now`.
    /// It runs on every PUB, and the common case (a cached or unrestricted
    /// subject, no reply) is a lookup and two prefix tests. Always inline:
    /// with a plain `#[inline]` the compiler called it out of line, and the
    /// cached check cost 11.9 ns against 9.3 ns for the same steps written
    /// in the session (`benches/permissions.rs`, `guard/`); inlined, 8.6 ns.
    #[inline(always)]
    pub fn check(&mut self, subject: &[u8], reply: Option<&[u8]>, now: Instant) -> Result<(), PublishViolation> {
        if !self.cache.may_publish(subject) && !self.grants.may_reply(subject, now) {
            return Err(PublishViolation::SubjectDenied);
        }
        let Standing { in_system, serves_callout } = self.standing;
        if !system_space::may_publish(subject, in_system, serves_callout) {
            return Err(PublishViolation::SystemSubject);
        }
        match reply {
            Some(reply) => self.check_reply(subject, reply),
            None => Ok(()),
        }
    }

    /// Whether the connection's own rules let it publish `subject`, reply
    /// grants aside (a grant is for answering, not for naming a
    /// destination the server then publishes to): what a message trace's
    /// destination must pass (nats-server's `allowedToPublishOnMsgTraceDest`).
    pub fn may_publish_to(&mut self, subject: &[u8]) -> bool {
        let Standing { in_system, serves_callout } = self.standing;
        self.cache.may_publish(subject) && system_space::may_publish(subject, in_system, serves_callout)
    }

    /// Rules 3 to 5, for a publish whose subject passed.
    fn check_reply(&mut self, subject: &[u8], reply: &[u8]) -> Result<(), PublishViolation> {
        if reply.starts_with(RESERVED_REPLY_PREFIX)
            || reply.starts_with(ROUTED_REPLY_PREFIX)
            || (!self.standing.in_system && system_space::is_system_subject(reply))
        {
            return Err(PublishViolation::ReservedReply);
        }
        if system_space::is_system_subject(subject) && !system_space::is_inbox(reply) && !self.cache.may_publish(reply)
        {
            return Err(PublishViolation::BorrowedVoice);
        }
        if self.check_reply_subjects && !self.cache.may_reply_to(reply) {
            return Err(PublishViolation::UnreceivableReply);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
