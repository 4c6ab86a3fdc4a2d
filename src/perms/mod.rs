//! Permissions compiled once, at config load, into structures that answer
//! "may publish S" and "may subscribe S [Q]" without re-reading strings.
//!
//! # Pieces and who owns them
//! - [`PermissionSet`]: one user's compiled rules, immutable, shared by all of
//!   that user's connections behind an `Arc` and replaced whole on reload.
//! - [`PublishCache`]: per connection, owned by its reader. It holds the
//!   connection's `Arc<PermissionSet>` and a bounded `subject -> bool` map, so
//!   a repeated PUB subject costs one hash lookup.
//! - [`ResponseTracker`]: per connection, for users with `allow_responses`.
//!   It is written at *delivery* time (by whichever task delivers a request to
//!   this connection) and read by the connection's own PUB check, so the
//!   broker keeps it behind a short lock. Its decisions are never cached.
//! - [`PublishGuard`]: per connection, owned by its reader: the one publish
//!   decision (see below), holding the connection's [`PublishCache`] and
//!   asking its [`ReplyGrants`] (the broker's client, which keeps the
//!   tracker) only when the static rules refuse.
//! - [`DenyFilter`]: returned by [`PermissionSet::may_subscribe`] for a
//!   wildcard subscription that overlaps a deny rule (or the reserved `_SYS.>`
//!   space); the router asks it before delivering each message to that
//!   subscription.
//!
//! # The full publish check
//! [`PublishGuard::check`]: the subject by the cached rules or else a reply
//! grant (consumed only when the static rules refuse, as in nats-server),
//! then the `$SYS.>` space, then the reply subject (reserved spaces, the
//! server's own voice, `check_reply_subjects`). Its module doc lists the
//! rules; [`PublishViolation`] says which one refused.
//!
//! # Rules (and where warden is deliberately stricter than nats-server 2.9.10)
//! - No rules for a direction: everything allowed, except the reserved space.
//! - An allow list, *even an empty one*, must match; `publish: []` denies all
//!   (nats-server grants all). The same holds for `subscribe: []`.
//! - Deny wins over allow, always: a plain deny entry also refuses queue
//!   subscriptions, even when a queue-qualified deny entry matches too (a
//!   nats-server quirk lets the queue entry override it).
//! - A SUB is allowed only if its subject is a *subset* of one allow pattern;
//!   nats-server matches the SUB subject as if it were literal, which lets
//!   `SUB _INBOX.>` through an allow of `_INBOX.*`. A SUB contained in a deny
//!   pattern is refused; one that merely overlaps it is accepted with a
//!   delivery filter.
//! - `_SYS.>` belongs to the server: no publish there, no SUB contained in it,
//!   and a SUB overlapping it (e.g. `>`) is filtered, unless the set was built
//!   as system. Queue group `_sys_` is always refused.
//! - A `literal` subscribe entry (warden's own) admits a SUB only when its
//!   subject has no wildcard and the entry contains it: `sensor.*.temp`
//!   admits `SUB sensor.12.temp`, never `SUB sensor.*.temp` or `sensor.>`,
//!   which would wiretap every sensor. Queue SUBs follow the allow-list rule
//!   within the literal entries. Deny still wins; `literal` without `allow`
//!   is an allow list of its own.
//! - `allow_responses` without a publish allow list leaves publishing
//!   limited to replies (as nats-server). Reply grants never open `_SYS.>`
//!   to a non-system user.
//!
//! Subjects handed to the checks must already be valid (the protocol parser
//! checks them); wildcard tokens in a publish subject are treated as literal
//! tokens, as everywhere in the matcher.

mod cache;
mod guard;
mod publish;
mod responses;
mod set;
mod subscribe;
pub mod system_space;
pub mod template;

pub use cache::{PublishCache, PUBLISH_CACHE_CAPACITY};
pub use guard::{PublishGuard, PublishViolation, ReplyGrants, Standing};
pub use responses::{ResponseTracker, RESPONSE_TRACKER_CAPACITY, RESPONSE_TRACKER_MAX_BYTES};
pub use set::PermissionSet;
pub use subscribe::{DenyFilter, SubDecision};

use std::fmt;

/// The subject space reserved for the server.
pub const RESERVED_SPACE: &str = "_SYS.>";

/// A queue group name no client may use.
pub const RESERVED_QUEUE: &str = "_sys_";

/// Whether a valid literal subject lies in the reserved `_SYS.>` space. A
/// prefix test: on valid subjects it equals matching `_SYS.>` (a token must
/// follow the dot), and it runs on every PUB.
pub fn is_reserved(subject: &[u8]) -> bool {
    subject.len() > RESERVED_PREFIX.len() && subject.starts_with(RESERVED_PREFIX)
}

/// Every service-import reply starts with this; clients may not use it as
/// a reply subject of their own (nats-server's `isReservedReply`). Kept
/// here, with the other subject spaces the server reserves, because the
/// publish check refuses it; the broker makes the replies.
pub const RESERVED_REPLY_PREFIX: &[u8] = b"_R_.";

/// Replies routed across gateways start with this; no client may name one
/// as its reply either (nats-server's `isReservedReply` again).
pub const ROUTED_REPLY_PREFIX: &[u8] = b"_GR_.";

/// A trie of permission patterns. They come from the configuration (or an
/// account's signed JWT), never from a client, so no client can choose
/// colliding keys: the tries hash with foldhash, whose `RandomState` is
/// still seeded at random (per process and per map), instead of SipHash,
/// which was about a tenth of a run of a wildcard subscriber with a deny
/// filter. Clients only look subjects up in them.
type RuleTrie = crate::subject::Trie<(), foldhash::fast::RandomState>;

/// `RESERVED_SPACE` without its `>`.
const RESERVED_PREFIX: &[u8] = b"_SYS.";

/// Which list of a permission block an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleList {
    /// `publish.allow`.
    PublishAllow,
    /// `publish.deny`.
    PublishDeny,
    /// `subscribe.allow`.
    SubscribeAllow,
    /// `subscribe.deny`.
    SubscribeDeny,
    /// `subscribe.literal`.
    SubscribeLiteral,
}

impl fmt::Display for RuleList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleList::PublishAllow => "publish allow",
            RuleList::PublishDeny => "publish deny",
            RuleList::SubscribeAllow => "subscribe allow",
            RuleList::SubscribeDeny => "subscribe deny",
            RuleList::SubscribeLiteral => "subscribe literal",
        })
    }
}

/// Why a permission block could not be compiled. The config reader validates
/// entries first, so this is a second line of defence: nothing invalid is
/// ever silently dropped or widened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermsError {
    /// An entry is not a valid subject pattern (or, for subscribe, not
    /// `"subject"` or `"subject queue"` with both valid; publish entries take
    /// no queue).
    InvalidEntry {
        /// The list holding the entry.
        list: RuleList,
        /// The entry as written.
        entry: String,
    },
    /// `literal` rules on publish, where every subject is literal already.
    LiteralOnPublish,
}

impl fmt::Display for PermsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PermsError::InvalidEntry { list, entry } => {
                write!(f, "invalid {list} entry {entry:?}")
            }
            PermsError::LiteralOnPublish => f.write_str("`literal` applies to subscribe rules only"),
        }
    }
}

impl std::error::Error for PermsError {}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod naive_tests;
