//! One user's compiled permission set.

use std::time::Duration;

use crate::config::{Permissions, ResponsePermission, SubjectRules};

use super::publish::PublishRules;
use super::subscribe::{SubDecision, SubscribeRules};
use super::{is_reserved, PermsError};

/// A user's publish and subscribe rules, compiled once and shared (behind an
/// `Arc`) by all of that user's connections. Immutable: a reload builds a new
/// set and hands it to each connection.
#[derive(Debug)]
pub struct PermissionSet {
    publish: PublishRules,
    subscribe: SubscribeRules,
    /// `allow_responses`, with nats-server's zero-means-default applied.
    responses: Option<ResponsePermission>,
    /// May use the reserved `_SYS.>` space. Only [`PermissionSet::system`]
    /// and [`PermissionSet::grant_system`] set it.
    system: bool,
    /// The block it was compiled from, for showing a user its own rules
    /// (`$SYS.REQ.USER.INFO`); `None` when there were no rules.
    source: Option<Permissions>,
}

impl PermissionSet {
    /// Compiles a permission block from the config. Every entry is checked
    /// again; an invalid one is an error, never skipped.
    pub fn compile(perms: &Permissions) -> Result<PermissionSet, PermsError> {
        let responses = perms.allow_responses.map(|r| ResponsePermission {
            max: match r.max {
                Some(0) => ResponsePermission::default().max,
                other => other,
            },
            expires: if r.expires == Duration::ZERO { ResponsePermission::default().expires } else { r.expires },
        });
        // As nats-server: with `allow_responses`, a missing publish allow
        // list becomes an empty one, so publishing is limited to replies
        // (and whatever an explicit allow list grants).
        let empty: &[String] = &[];
        let (pub_allow, pub_deny) = match &perms.publish {
            Some(rules) => (rules.allow.as_deref(), rules.deny.as_deref()),
            None => (None, None),
        };
        let publish = match (pub_allow, pub_deny) {
            (None, None) if responses.is_none() => PublishRules::default(),
            (None, deny) if responses.is_some() => PublishRules::compile(Some(empty), deny)?,
            (allow, deny) => PublishRules::compile(allow, deny)?,
        };
        if perms.publish.as_ref().is_some_and(|r| r.literal.is_some()) {
            return Err(PermsError::LiteralOnPublish);
        }
        let subscribe = match &perms.subscribe {
            Some(rules) => {
                SubscribeRules::compile(rules.allow.as_deref(), rules.literal.as_deref(), rules.deny.as_deref())?
            }
            None => SubscribeRules::default(),
        };
        Ok(PermissionSet { publish, subscribe, responses, system: false, source: Some(perms.clone()) })
    }

    /// No rules: everything allowed except the reserved `_SYS.>` space. For a
    /// user with no permissions block and no `default_permissions`.
    pub fn unrestricted() -> PermissionSet {
        PermissionSet {
            publish: PublishRules::default(),
            subscribe: SubscribeRules::default(),
            responses: None,
            system: false,
            source: None,
        }
    }

    /// Nothing may be published or subscribed.
    pub fn deny_all() -> PermissionSet {
        PermissionSet {
            publish: PublishRules::deny_all(),
            subscribe: SubscribeRules::deny_all(),
            responses: None,
            system: false,
            source: Some(Permissions {
                publish: Some(SubjectRules { allow: Some(Vec::new()), deny: None, literal: None }),
                subscribe: Some(SubjectRules { allow: Some(Vec::new()), deny: None, literal: None }),
                allow_responses: None,
            }),
        }
    }

    /// Everything, including `_SYS.>`: for the server's own clients and
    /// explicitly configured system users.
    pub fn system() -> PermissionSet {
        PermissionSet::unrestricted().grant_system()
    }

    /// Lifts the `_SYS.>` reservation for this set (its own allow and deny
    /// rules still apply). Queue group `_sys_` stays refused.
    pub fn grant_system(mut self) -> PermissionSet {
        self.system = true;
        self
    }

    /// Whether the set may use the reserved space.
    pub fn is_system(&self) -> bool {
        self.system
    }

    /// The static publish decision for a literal subject: reserved space,
    /// then allow, then deny. Reply grants are separate
    /// ([`super::ResponseTracker`]); the connection caches this answer
    /// ([`super::PublishCache`]).
    pub fn may_publish(&self, subject: &[u8]) -> bool {
        (self.system || !is_reserved(subject)) && self.publish.permits(subject)
    }

    /// Whether publish decisions need no lookup beyond the reserved-space
    /// check (no publish rules at all), so caching them would cost more than
    /// it saves.
    pub fn publish_is_unrestricted(&self) -> bool {
        self.publish.is_unrestricted()
    }

    /// Whether a publish may carry `reply` as its reply subject: only a
    /// subject the publisher could receive on (a plain SUB to it would be
    /// allowed), so a requester cannot make a service answer to a subject
    /// the requester may not publish to itself.
    pub fn may_reply_to(&self, reply: &[u8]) -> bool {
        if self.subscribe.is_unrestricted() {
            return self.system || !is_reserved(reply);
        }
        matches!(self.may_subscribe(reply, None), SubDecision::Allowed { .. })
    }

    /// Whether reply decisions need no lookup beyond the reserved-space check.
    pub fn subscribe_is_unrestricted(&self) -> bool {
        self.subscribe.is_unrestricted()
    }

    /// The SUB decision for `subject` (which may hold wildcards) and an
    /// optional queue group name.
    pub fn may_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> SubDecision {
        self.subscribe.check(subject, queue, self.system)
    }

    /// The rules as configured (`None`: no rules, everything but the
    /// reserved space allowed).
    pub fn source(&self) -> Option<&Permissions> {
        self.source.as_ref()
    }

    /// The reply permission, if the user has `allow_responses`.
    pub fn response_permission(&self) -> Option<ResponsePermission> {
        self.responses
    }
}
