//! Subscribe rules: containment checks at SUB time and the delivery filter
//! for wildcard subscriptions that overlap a deny rule.
//!
//! A SUB check scans the user's entries with `is_subset`/`overlaps`: it runs
//! once per SUB over a list whose size the operator chose, never per message.
//! The per-message part, [`DenyFilter::denies`], is a trie walk.

use std::sync::Arc;

use super::RuleTrie;
use crate::subject::{is_subset, is_valid_literal, is_valid_pattern, matches, overlaps};

use super::{is_reserved, PermsError, RuleList, RESERVED_QUEUE, RESERVED_SPACE};

/// One `"subject"` or `"subject queue"` entry.
#[derive(Debug)]
struct Entry {
    subject: Box<[u8]>,
    /// A queue-name pattern; `None` for a plain entry.
    queue: Option<Box<[u8]>>,
}

impl Entry {
    fn parse(text: &str, list: RuleList) -> Result<Entry, PermsError> {
        let invalid = || PermsError::InvalidEntry { list, entry: text.to_owned() };
        let mut parts = text.split_ascii_whitespace();
        let subject = parts.next().ok_or_else(invalid)?;
        let queue = parts.next();
        if parts.next().is_some() || !is_valid_pattern(subject.as_bytes()) {
            return Err(invalid());
        }
        if let Some(q) = queue {
            if !is_valid_pattern(q.as_bytes()) {
                return Err(invalid());
            }
        }
        Ok(Entry { subject: subject.as_bytes().into(), queue: queue.map(|q| q.as_bytes().into()) })
    }

    /// Whether this entry speaks about a SUB with this queue: plain entries
    /// about every SUB, queue entries only about queue SUBs they match.
    fn applies_to(&self, queue: Option<&[u8]>) -> bool {
        match (&self.queue, queue) {
            (None, _) => true,
            (Some(pattern), Some(q)) => matches(pattern, q),
            (Some(_), None) => false,
        }
    }
}

/// Compiled `subscribe` rules.
#[derive(Debug, Default)]
pub(super) struct SubscribeRules {
    /// `None`: no allow list. `Some` (even empty): the SUB must be contained
    /// in one entry that admits its queue form, or be a literal subject
    /// that a `literal` entry admits.
    allow: Option<Vec<Entry>>,
    /// `literal` entries: they admit literal subjects only (checked like
    /// `allow` entries, for a SUB without wildcards).
    literal: Vec<Entry>,
    /// Every deny entry, plain and queue-qualified.
    deny: Vec<Entry>,
    /// Plain deny patterns, shared by every filter this set hands out.
    plain_deny: Option<Arc<RuleTrie>>,
}

impl SubscribeRules {
    /// Compiles allow and deny lists as written in the config.
    pub(super) fn compile(
        allow: Option<&[String]>,
        literal: Option<&[String]>,
        deny: Option<&[String]>,
    ) -> Result<Self, PermsError> {
        let mut allow = allow.map(|list| parse_all(list, RuleList::SubscribeAllow)).transpose()?;
        // A literal list restricts too, even an empty one (as an empty allow
        // list does): with it and no `allow`, only what it admits may be
        // subscribed to.
        if allow.is_none() && literal.is_some() {
            allow = Some(Vec::new());
        }
        let literal = parse_all(literal.unwrap_or_default(), RuleList::SubscribeLiteral)?;
        let deny = parse_all(deny.unwrap_or_default(), RuleList::SubscribeDeny)?;
        let mut plain = RuleTrie::default();
        for entry in deny.iter().filter(|e| e.queue.is_none()) {
            plain.insert(&entry.subject, ());
        }
        let plain_deny = (!plain.is_empty()).then(|| Arc::new(plain));
        Ok(SubscribeRules { allow, literal, deny, plain_deny })
    }

    /// Rules that refuse every SUB (an empty allow list).
    pub(super) fn deny_all() -> Self {
        SubscribeRules { allow: Some(Vec::new()), ..SubscribeRules::default() }
    }

    /// The SUB decision; `system` lifts the `_SYS.>` reservation.
    /// Whether there is neither an allow nor a deny list.
    pub(super) fn is_unrestricted(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }

    pub(super) fn check(&self, subject: &[u8], queue: Option<&[u8]>, system: bool) -> SubDecision {
        if queue == Some(RESERVED_QUEUE.as_bytes()) {
            return SubDecision::Denied;
        }
        let reserved = RESERVED_SPACE.as_bytes();
        let mut filter_reserved = false;
        if !system {
            if is_subset(subject, reserved) {
                return SubDecision::Denied;
            }
            filter_reserved = overlaps(subject, reserved);
        }
        if !self.allowed(subject, queue) {
            return SubDecision::Denied;
        }
        let mut plain_overlap = false;
        let mut queue_overlap: Vec<&[u8]> = Vec::new();
        for entry in self.deny.iter().filter(|e| e.applies_to(queue)) {
            if is_subset(subject, &entry.subject) {
                return SubDecision::Denied;
            }
            if overlaps(subject, &entry.subject) {
                match entry.queue {
                    None => plain_overlap = true,
                    Some(_) => queue_overlap.push(&entry.subject),
                }
            }
        }
        if !(filter_reserved || plain_overlap || !queue_overlap.is_empty()) {
            return SubDecision::Allowed { filter: None };
        }
        let queue_deny = (!queue_overlap.is_empty()).then(|| {
            let mut trie = RuleTrie::default();
            for pattern in queue_overlap {
                trie.insert(pattern, ());
            }
            Arc::new(trie)
        });
        SubDecision::Allowed {
            filter: Some(DenyFilter {
                reserved: filter_reserved,
                plain: if plain_overlap { self.plain_deny.clone() } else { None },
                queue: queue_deny,
            }),
        }
    }

    /// The allow stage of §4.3, by the `allow` entries or, for a literal
    /// subject, the `literal` ones.
    fn allowed(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let Some(allow) = &self.allow else {
            return true;
        };
        admitted_by(allow, subject, queue) || (is_valid_literal(subject) && admitted_by(&self.literal, subject, queue))
    }
}

/// Whether one of `entries` admits the SUB: a plain SUB needs a plain entry
/// containing it; a queue SUB needs a matching queue entry when any queue
/// entry contains the subject, else a plain entry.
fn admitted_by(entries: &[Entry], subject: &[u8], queue: Option<&[u8]>) -> bool {
    let containing = || entries.iter().filter(|e| is_subset(subject, &e.subject));
    let plain_ok = || containing().any(|e| e.queue.is_none());
    match queue {
        None => plain_ok(),
        Some(q) => {
            let mut queue_entries = containing().filter(|e| e.queue.is_some()).peekable();
            if queue_entries.peek().is_none() {
                plain_ok()
            } else {
                queue_entries.any(|e| e.applies_to(Some(q)))
            }
        }
    }
}

fn parse_all(list: &[String], which: RuleList) -> Result<Vec<Entry>, PermsError> {
    list.iter().map(|e| Entry::parse(e, which)).collect()
}

/// The answer to a SUB.
#[derive(Debug, Clone)]
#[must_use]
pub enum SubDecision {
    /// No subscription may be created.
    Denied,
    /// Create the subscription; with a filter, ask it before each delivery.
    Allowed {
        /// Present when the SUB overlaps a deny rule or the reserved space.
        filter: Option<DenyFilter>,
    },
}

impl SubDecision {
    /// Whether the subscription may be created.
    pub fn is_allowed(&self) -> bool {
        matches!(self, SubDecision::Allowed { .. })
    }

    /// The delivery filter, if the SUB is allowed and needs one.
    pub fn filter(&self) -> Option<&DenyFilter> {
        match self {
            SubDecision::Allowed { filter } => filter.as_ref(),
            SubDecision::Denied => None,
        }
    }
}

/// Subjects a subscription must never be delivered, although its wildcard
/// pattern matches them. Cheap to clone (shared tries); for a queue
/// subscriber, a filtered message should go to another member of the group.
#[derive(Debug, Clone)]
pub struct DenyFilter {
    /// The subscription overlaps `_SYS.>` and the user is not system.
    reserved: bool,
    /// The set's plain deny patterns, when one of them overlaps the SUB.
    plain: Option<Arc<RuleTrie>>,
    /// Queue-qualified deny patterns for this SUB's queue that overlap it.
    queue: Option<Arc<RuleTrie>>,
}

impl DenyFilter {
    /// Whether a message on `subject` (a literal the subscription matched)
    /// must be withheld from this subscription.
    pub fn denies(&self, subject: &[u8]) -> bool {
        (self.reserved && is_reserved(subject))
            || self.plain.as_ref().is_some_and(|t| t.has_match(subject))
            || self.queue.as_ref().is_some_and(|t| t.has_match(subject))
    }
}
