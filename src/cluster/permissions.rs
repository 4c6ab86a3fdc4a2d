//! Route permissions (`cluster { permissions { import, export } }`),
//! compiled once when the cluster starts, with nats-server's meaning
//! (`setRoutePermissions`, `canImport`, `canExport` in its `route.go`):
//!
//! - `import`: the subjects this server takes messages on from a route. It
//!   tells routes of a local interest only when its subject, read as a
//!   literal (so `>` is covered by an allow of `>` and nothing else), is
//!   imported; nats-server does the same. warden also drops a route's
//!   message on a subject that is not imported: a peer only sends where it
//!   was told of interest, so such a message is a peer's mistake (or an
//!   import deny inside a wildcard interest), never a loss.
//! - `export`: the subjects this server sends to a route. A route's
//!   interest is accepted only when export allows its subject (checked
//!   without the queue group, as nats-server does); one that overlaps an
//!   export deny is kept with a delivery filter, so a message on a denied
//!   subject does not cross. Unlike nats-server, which matches the SUB
//!   subject as if it were literal, a wildcard interest must lie within an
//!   allow pattern (`>` is not exported by an allow of `*`), as for users
//!   ([`crate::perms`]).
//!
//! Both lists are the configured rules and nothing else: the `_SYS.>`
//! reservation that applies to users does not, since the servers of a
//! cluster route their system traffic to each other.

use crate::config::{Permissions, RoutePermissions};
use crate::perms::{DenyFilter, PermissionSet, PermsError, SubDecision};

/// The compiled `import` and `export` rules.
#[derive(Debug)]
pub(crate) struct RouteRules {
    /// `import` as the publish rules and `export` as the subscribe rules of
    /// one set, the mapping nats-server makes.
    set: PermissionSet,
}

impl RouteRules {
    /// The rules of `cluster { permissions }`, `None` when there are none
    /// (everything crosses, nothing is checked).
    pub(crate) fn compile(perms: Option<&RoutePermissions>) -> Result<Option<RouteRules>, PermsError> {
        let Some(perms) = perms else { return Ok(None) };
        let as_user =
            Permissions { publish: perms.import.clone(), subscribe: perms.export.clone(), allow_responses: None };
        Ok(Some(RouteRules { set: PermissionSet::compile(&as_user)?.grant_system() }))
    }

    /// Whether this server takes messages on `subject` from routes, or (a
    /// subject with wildcards, read as literal) tells them of interest in it.
    pub(crate) fn imports(&self, subject: &[u8]) -> bool {
        self.set.may_publish(subject)
    }

    /// Whether a route's interest in `subject` is accepted: `None` if not,
    /// else the filter its deliveries go through.
    pub(crate) fn exports(&self, subject: &[u8]) -> Option<Option<DenyFilter>> {
        match self.set.may_subscribe(subject, None) {
            SubDecision::Allowed { filter } => Some(filter),
            SubDecision::Denied => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SubjectRules;

    fn rules(allow: &[&str], deny: &[&str]) -> Option<SubjectRules> {
        let list = |l: &[&str]| (!l.is_empty()).then(|| l.iter().map(|s| (*s).to_owned()).collect());
        Some(SubjectRules { allow: list(allow), deny: list(deny), literal: None })
    }

    /// nats-server's `test/configs/srv_a_perms.conf`: `import: "foo"`,
    /// `export: { allow: "*", deny: ["foo", "nats"] }`.
    fn srv_a_perms() -> RouteRules {
        let p = RoutePermissions { import: rules(&["foo"], &[]), export: rules(&["*"], &["foo", "nats"]) };
        RouteRules::compile(Some(&p)).unwrap().unwrap()
    }

    #[test]
    fn import_is_read_as_a_literal_subject() {
        let r = srv_a_perms();
        assert!(r.imports(b"foo"));
        assert!(!r.imports(b"bar"));
        assert!(!r.imports(b"foo.bar"));
        // Interest `>` or `*` is not imported by an allow of `foo`, as in
        // nats-server (its `canImport` matches the subject literally).
        assert!(!r.imports(b">"));
        assert!(!r.imports(b"*"));
    }

    #[test]
    fn export_accepts_interest_within_allow_and_filters_denied_subjects() {
        let r = srv_a_perms();
        assert!(matches!(r.exports(b"bar"), Some(None)));
        assert!(r.exports(b"foo").is_none());
        assert!(r.exports(b"nats").is_none());
        assert!(r.exports(b"bar.baz").is_none());
        // `*` is within the allow; it overlaps the denies, so deliveries on
        // `foo` and `nats` are filtered out.
        let filter = r.exports(b"*").unwrap().unwrap();
        assert!(filter.denies(b"foo"));
        assert!(filter.denies(b"nats"));
        assert!(!filter.denies(b"bar"));
        // Stricter than nats-server: `>` does not lie within `*`.
        assert!(r.exports(b">").is_none());
    }

    #[test]
    fn the_system_space_is_not_reserved_on_routes() {
        let p = RoutePermissions { import: rules(&[">"], &[]), export: rules(&[">"], &[]) };
        let r = RouteRules::compile(Some(&p)).unwrap().unwrap();
        assert!(r.imports(b"_SYS.x"));
        assert!(matches!(r.exports(b"_SYS.>"), Some(None)));
        assert!(matches!(r.exports(b">"), Some(None)));
    }

    #[test]
    fn no_rules_check_nothing() {
        assert!(RouteRules::compile(None).unwrap().is_none());
        let only_import = RoutePermissions { import: rules(&["a.>"], &[]), export: None };
        let r = RouteRules::compile(Some(&only_import)).unwrap().unwrap();
        assert!(matches!(r.exports(b"anything.>"), Some(None)));
        assert!(!r.imports(b"b"));
    }
}
