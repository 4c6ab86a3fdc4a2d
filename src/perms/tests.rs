//! Table tests: the seed config, every queue form of the reference's §4.3,
//! delivery filters, the reserved space, reply grants and cache bounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{Permissions, ResponsePermission, SubjectRules};

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn rules(allow: Option<&[&str]>, deny: Option<&[&str]>) -> Option<SubjectRules> {
    Some(SubjectRules { allow: allow.map(list), deny: deny.map(list), literal: None })
}

fn pub_sub(publish: Option<SubjectRules>, subscribe: Option<SubjectRules>) -> PermissionSet {
    PermissionSet::compile(&Permissions { publish, subscribe, allow_responses: None }).expect("valid rules")
}

fn sub_only(allow: Option<&[&str]>, deny: Option<&[&str]>) -> PermissionSet {
    pub_sub(None, rules(allow, deny))
}

fn alice() -> PermissionSet {
    pub_sub(rules(Some(&[">"]), None), rules(Some(&[">"]), None))
}

fn bob() -> PermissionSet {
    pub_sub(rules(Some(&["req.foo", "req.bar"]), None), rules(Some(&["_INBOX.*"]), None))
}

/// Splits `"subject"` / `"subject queue"` the way a SUB line carries them.
fn sub(set: &PermissionSet, line: &str) -> SubDecision {
    let mut parts = line.split(' ');
    let subject = parts.next().unwrap();
    set.may_subscribe(subject.as_bytes(), parts.next().map(str::as_bytes))
}

#[derive(Debug, PartialEq)]
enum Want {
    Denied,
    Allowed,
    Filtered,
}

fn outcome(d: &SubDecision) -> Want {
    match d {
        SubDecision::Denied => Want::Denied,
        SubDecision::Allowed { filter: None } => Want::Allowed,
        SubDecision::Allowed { filter: Some(_) } => Want::Filtered,
    }
}

fn check_subs(set: &PermissionSet, rows: &[(&str, Want)]) {
    for (line, want) in rows {
        assert_eq!(&outcome(&sub(set, line)), want, "SUB {line}");
    }
}

/// Checks the set directly and through a cache (twice: miss, then hit;
/// the second time also repeating each subject, the last-subject path).
fn check_pubs(set: &Arc<PermissionSet>, rows: &[(&str, bool)]) {
    let mut cache = PublishCache::new(set.clone());
    for round in 0..2 {
        for (subject, want) in rows {
            assert_eq!(set.may_publish(subject.as_bytes()), *want, "PUB {subject}");
            for _ in 0..=round {
                assert_eq!(cache.may_publish(subject.as_bytes()), *want, "cached PUB {subject}");
            }
        }
    }
}

#[test]
fn seed_config_bob() {
    let bob = Arc::new(bob());
    check_pubs(
        &bob,
        &[
            ("req.foo", true),
            ("req.bar", true),
            ("foo", false),
            ("req.baz", false),
            ("req", false),
            ("req.foo.x", false),
            ("_SYS.foo", false),
        ],
    );
    use Want::*;
    check_subs(
        &bob,
        &[
            ("_INBOX.x", Allowed),
            ("_INBOX.*", Allowed),
            ("_INBOX.x q1", Allowed),
            ("_INBOX.>", Denied),
            ("_INBOX.x.y", Denied),
            ("_INBOX.*.*", Denied),
            ("_INBOX", Denied),
            (">", Denied),
            ("*", Denied),
            ("foo", Denied),
        ],
    );
}

#[test]
fn seed_config_alice_is_admin_but_not_system() {
    let alice = Arc::new(alice());
    check_pubs(
        &alice,
        &[
            ("foo", true),
            ("req.foo", true),
            ("$SYS.foo", true),
            ("_INBOX.x", true),
            ("a.b.c.d", true),
            ("_SYS", true),
            ("_SYS.foo", false),
            ("_SYS.foo.bar", false),
        ],
    );
    use Want::*;
    check_subs(
        &alice,
        &[
            ("foo", Allowed),
            ("*", Allowed),
            ("_SYS", Allowed),
            ("foo.>", Allowed),
            ("_SYS.foo", Denied),
            ("_SYS.*", Denied),
            ("_SYS.>", Denied),
            ("_SYS.foo q", Denied),
            (">", Filtered),
            ("*.foo", Filtered),
            ("*.>", Filtered),
        ],
    );
    let everything = sub(&alice, ">");
    let filter = everything.filter().expect("SUB > overlaps _SYS.>");
    assert!(filter.denies(b"_SYS.foo"));
    assert!(filter.denies(b"_SYS.a.b"));
    assert!(!filter.denies(b"foo"));
    assert!(!filter.denies(b"_SYS"));
    assert!(!filter.denies(b"x._SYS.foo"));
}

#[test]
fn system_sets_may_use_the_reserved_space() {
    let sys = PermissionSet::system();
    assert!(sys.is_system());
    assert!(sys.may_publish(b"_SYS.foo"));
    use Want::*;
    check_subs(&sys, &[("_SYS.>", Allowed), (">", Allowed), ("_SYS.x q", Allowed), ("_SYS.x _sys_", Denied)]);
    // A system grant lifts only the reservation, not the user's own rules.
    let limited = bob().grant_system();
    assert!(!limited.may_publish(b"_SYS.foo"));
    assert!(!limited.may_subscribe(b"_SYS.foo", None).is_allowed());
}

#[test]
fn queue_group_sys_is_always_refused() {
    for set in [PermissionSet::unrestricted(), alice(), PermissionSet::system()] {
        assert!(!set.may_subscribe(b"foo", Some(b"_sys_")).is_allowed());
        assert!(set.may_subscribe(b"foo", Some(b"_sys")).is_allowed());
    }
}

/// Every row of the reference's §4.3, plus the deny-wins difference.
#[test]
fn queue_forms() {
    use Want::*;
    // Entry "foo" allows plain and any queue subscription on foo.
    check_subs(&sub_only(Some(&["foo"]), None), &[("foo", Allowed), ("foo q", Allowed), ("bar q", Denied)]);
    // Entry "foo v1" allows only queue group v1 on foo.
    check_subs(&sub_only(Some(&["foo v1"]), None), &[("foo", Denied), ("foo v1", Allowed), ("foo v2", Denied)]);
    // A queue entry covering the subject overrides the plain entry for queue SUBs.
    check_subs(
        &sub_only(Some(&["foo.bar", "foo.* v1"]), None),
        &[
            ("foo.bar anyq", Denied),
            ("foo.bar v1", Allowed),
            ("foo.bar", Allowed),
            ("foo.baz", Denied),
            ("foo.baz v1", Allowed),
        ],
    );
    // Queue names in entries may use wildcards.
    check_subs(
        &sub_only(Some(&["bar.> grp.*"]), None),
        &[("bar.x grp.a", Allowed), ("bar.x.y grp.zz", Allowed), ("bar.x grp", Denied), ("bar.x", Denied)],
    );
    // A deny entry "foo q" denies only queue group q on foo.
    check_subs(&sub_only(None, Some(&["foo q"])), &[("foo", Allowed), ("foo q", Denied), ("foo r", Allowed)]);
    // A plain deny entry denies plain and queue subscriptions.
    check_subs(&sub_only(None, Some(&["foo"])), &[("foo", Denied), ("foo q", Denied), ("bar", Allowed)]);
    // warden: deny always wins. nats-server 2.9.10 lets the matching
    // queue-qualified deny entry override the plain one for `SUB foo q2`.
    check_subs(&sub_only(None, Some(&["foo", "foo q"])), &[("foo q2", Denied), ("foo q", Denied), ("foo", Denied)]);
    // Deny with a wildcard queue pattern.
    check_subs(&sub_only(None, Some(&["foo grp.*"])), &[("foo grp.a", Denied), ("foo grp", Allowed), ("foo", Allowed)]);
}

#[test]
fn wildcard_subscription_overlapping_a_deny_is_filtered() {
    let set = sub_only(Some(&["foo.>"]), Some(&["foo.secret"]));
    use Want::*;
    check_subs(
        &set,
        &[
            ("foo.secret", Denied),
            ("foo.secret q", Denied),
            ("foo.public", Allowed),
            ("foo.secret.x", Allowed),
            ("foo.>", Filtered),
            ("foo.*", Filtered),
            ("foo.* q", Filtered),
            ("foo.*.x", Allowed),
        ],
    );
    for line in ["foo.>", "foo.*", "foo.* q"] {
        let d = sub(&set, line);
        let f = d.filter().unwrap();
        assert!(f.denies(b"foo.secret"), "{line} must never receive foo.secret");
        assert!(!f.denies(b"foo.public"), "{line}");
        assert!(!f.denies(b"foo.secret.x"), "{line}");
    }
}

#[test]
fn queue_qualified_deny_filters_only_that_queue() {
    let set = sub_only(None, Some(&["foo.secret q"]));
    use Want::*;
    check_subs(&set, &[("foo.* q", Filtered), ("foo.* r", Allowed), ("foo.*", Allowed)]);
    let d = sub(&set, "foo.> q");
    let f = d.filter().unwrap();
    assert!(f.denies(b"foo.secret"));
    assert!(!f.denies(b"foo.other"));
}

#[test]
fn filters_combine_deny_rules_and_the_reserved_space() {
    let set = sub_only(None, Some(&["secret.>", "other.*"]));
    let d = sub(&set, ">");
    let f = d.filter().unwrap();
    for (subject, denied) in [
        ("secret.x", true),
        ("secret.x.y", true),
        ("other.a", true),
        ("_SYS.x", true),
        ("secret", false),
        ("other.a.b", false),
        ("foo", false),
    ] {
        assert_eq!(f.denies(subject.as_bytes()), denied, "{subject}");
    }
}

#[test]
fn empty_allow_lists_deny_everything() {
    let set = pub_sub(rules(Some(&[]), None), rules(Some(&[]), None));
    assert!(!set.may_publish(b"foo"));
    assert!(!set.may_subscribe(b"foo", None).is_allowed());
    assert!(!set.may_subscribe(b"foo", Some(b"q")).is_allowed());
    let none = PermissionSet::deny_all();
    assert!(!none.may_publish(b"foo"));
    assert!(!none.may_subscribe(b">", None).is_allowed());
    // No allow key at all (`publish: {deny: [...]}`) is not an empty list.
    let deny_only = pub_sub(rules(None, Some(&["admin.>"])), None);
    assert!(deny_only.may_publish(b"foo"));
    assert!(!deny_only.may_publish(b"admin.x"));
}

#[test]
fn publish_deny_wins_over_allow() {
    let set = Arc::new(pub_sub(rules(Some(&[">"]), Some(&["foo.*"])), None));
    check_pubs(&set, &[("foo", true), ("foo.bar", false), ("foo.bar.baz", true)]);
}

#[test]
fn no_rules_allow_everything_but_the_reserved_space() {
    let set = PermissionSet::compile(&Permissions::default()).unwrap();
    assert!(set.may_publish(b"anything.at.all"));
    assert!(!set.may_publish(b"_SYS.x"));
    assert!(set.may_subscribe(b"foo.>", None).is_allowed());
    assert_eq!(outcome(&set.may_subscribe(b">", None)), Want::Filtered);
}

#[test]
fn invalid_entries_are_errors() {
    let bad_pub = ["", "foo bar", "foo..bar", "foo.>.x", "a\tb"];
    for entry in bad_pub {
        for (allow, deny) in [(Some(&[entry][..]), None), (None, Some(&[entry][..]))] {
            let p = Permissions { publish: rules(allow, deny), ..Permissions::default() };
            assert!(PermissionSet::compile(&p).is_err(), "publish {entry:?}");
        }
    }
    for entry in ["", "foo q x", "foo..bar", "foo q..x", ">.foo q"] {
        let p = Permissions { subscribe: rules(None, Some(&[entry])), ..Permissions::default() };
        let err = PermissionSet::compile(&p).unwrap_err();
        assert_eq!(err, PermsError::InvalidEntry { list: RuleList::SubscribeDeny, entry: entry.to_string() });
    }
    assert_eq!(
        PermsError::InvalidEntry { list: RuleList::PublishAllow, entry: "a b".into() }.to_string(),
        "invalid publish allow entry \"a b\""
    );
}

fn responder(max: Option<usize>, expires: Duration) -> PermissionSet {
    PermissionSet::compile(&Permissions {
        publish: None,
        subscribe: rules(Some(&["svc.>"]), None),
        allow_responses: Some(ResponsePermission { max, expires }),
    })
    .unwrap()
}

#[test]
fn allow_responses_without_publish_rules_means_replies_only() {
    let set = responder(Some(1), Duration::from_secs(60));
    assert!(!set.may_publish(b"foo"));
    let mut tracker = ResponseTracker::for_set(&set).unwrap();
    let t0 = Instant::now();
    assert!(!tracker.may_reply(b"_INBOX.r1", t0), "unknown reply subject");
    tracker.record(b"_INBOX.r1", t0);
    assert!(tracker.may_reply(b"_INBOX.r1", t0));
    assert!(!tracker.may_reply(b"_INBOX.r1", t0), "max 1: second reply denied");
    assert!(tracker.is_empty(), "a used-up grant is dropped");
}

#[test]
fn allow_responses_with_only_a_publish_deny_list_means_replies_only() {
    let set = PermissionSet::compile(&Permissions {
        publish: rules(None, Some(&["admin.>"])),
        subscribe: None,
        allow_responses: Some(ResponsePermission::default()),
    })
    .unwrap();
    assert!(!set.may_publish(b"foo"));
    assert!(!set.may_publish(b"admin.x"));
    let with_allow = PermissionSet::compile(&Permissions {
        publish: rules(Some(&["events.>"]), None),
        subscribe: None,
        allow_responses: Some(ResponsePermission::default()),
    })
    .unwrap();
    assert!(with_allow.may_publish(b"events.x"));
    assert!(!with_allow.may_publish(b"foo"));
}

#[test]
fn allow_responses_max_two() {
    let set = responder(Some(2), Duration::from_secs(60));
    let mut tracker = ResponseTracker::for_set(&set).unwrap();
    let t0 = Instant::now();
    tracker.record(b"r", t0);
    assert!(tracker.may_reply(b"r", t0));
    assert!(tracker.may_reply(b"r", t0));
    assert!(!tracker.may_reply(b"r", t0));
    // A new request with the same reply subject grants afresh.
    tracker.record(b"r", t0);
    assert!(tracker.may_reply(b"r", t0));
}

#[test]
fn allow_responses_expire() {
    let expires = Duration::from_secs(120);
    let set = responder(None, expires);
    let mut tracker = ResponseTracker::for_set(&set).unwrap();
    let t0 = Instant::now();
    tracker.record(b"r1", t0);
    tracker.record(b"r2", t0);
    for _ in 0..10 {
        assert!(tracker.may_reply(b"r1", t0 + expires), "unlimited within expiry");
    }
    assert!(!tracker.may_reply(b"r2", t0 + expires + Duration::from_millis(1)));
    assert!(!tracker.may_reply(b"r1", t0 + expires + Duration::from_millis(1)));
    assert!(tracker.is_empty());
}

#[test]
fn allow_responses_zero_values_take_the_defaults() {
    let set = responder(Some(0), Duration::ZERO);
    assert_eq!(set.response_permission(), Some(ResponsePermission::default()));
}

#[test]
fn reply_grants_never_open_the_reserved_space() {
    let set = responder(Some(1), Duration::from_secs(60));
    let mut tracker = ResponseTracker::for_set(&set).unwrap();
    let t0 = Instant::now();
    tracker.record(b"_SYS.reply", t0);
    assert!(!tracker.may_reply(b"_SYS.reply", t0));
    let mut sys = ResponseTracker::for_set(&set_system_responder()).unwrap();
    sys.record(b"_SYS.reply", t0);
    assert!(sys.may_reply(b"_SYS.reply", t0));
}

fn set_system_responder() -> PermissionSet {
    responder(Some(1), Duration::from_secs(60)).grant_system()
}

#[test]
fn sets_without_allow_responses_have_no_tracker() {
    assert!(ResponseTracker::for_set(&alice()).is_none());
}

#[test]
fn response_tracker_is_bounded() {
    let mut tracker = ResponseTracker::new(ResponsePermission { max: Some(1), expires: Duration::from_secs(3600) });
    let t0 = Instant::now();
    let n = RESPONSE_TRACKER_CAPACITY * 3;
    for i in 0..n {
        tracker.record(format!("_INBOX.{i}").as_bytes(), t0);
        assert!(tracker.len() <= RESPONSE_TRACKER_CAPACITY);
    }
    let newest = format!("_INBOX.{}", n - 1);
    assert!(tracker.may_reply(newest.as_bytes(), t0), "newest kept");
    assert!(!tracker.may_reply(b"_INBOX.0", t0), "oldest pruned");

    // Expired grants go first.
    let mut tracker = ResponseTracker::new(ResponsePermission { max: Some(1), expires: Duration::from_secs(1) });
    for i in 0..RESPONSE_TRACKER_CAPACITY {
        tracker.record(format!("old.{i}").as_bytes(), t0);
    }
    let later = t0 + Duration::from_secs(10);
    tracker.record(b"new", later);
    assert_eq!(tracker.len(), 1);
    assert!(tracker.may_reply(b"new", later));
}

#[test]
fn response_tracker_bounds_bytes() {
    let mut tracker = ResponseTracker::new(ResponsePermission::default());
    let t0 = Instant::now();
    let long = "x".repeat(4000);
    for i in 0..1000 {
        tracker.record(format!("{long}.{i}").as_bytes(), t0);
        assert!(tracker.len() * 4000 <= RESPONSE_TRACKER_MAX_BYTES);
    }
    assert!(tracker.may_reply(format!("{long}.999").as_bytes(), t0));
}

#[test]
fn publish_cache_is_bounded_and_right() {
    let mut cache = PublishCache::new(Arc::new(bob()));
    for i in 0..PUBLISH_CACHE_CAPACITY * 4 {
        let subject = format!("spam.{i}");
        assert!(!cache.may_publish(subject.as_bytes()));
        assert!(cache.len() <= PUBLISH_CACHE_CAPACITY);
        assert!(cache.may_publish(b"req.foo"));
    }
    let (hits, misses) = cache.counts();
    assert!(hits > 0 && misses >= (PUBLISH_CACHE_CAPACITY * 4) as u64);
    assert!(!cache.may_publish(b"_SYS.foo"));
    assert!(!cache.may_publish(b"_SYS.foo"), "cached denial stays a denial");
    assert!(!cache.may_publish(b"spam.1"));

    cache.replace(Arc::new(alice()));
    assert!(cache.is_empty());
    assert!(cache.may_publish(b"spam.1"));
    assert!(!cache.may_publish(b"_SYS.foo"));
}

#[test]
fn unrestricted_publishers_skip_the_cache() {
    let mut cache = PublishCache::new(Arc::new(PermissionSet::unrestricted()));
    assert!(cache.may_publish(b"foo"));
    assert!(!cache.may_publish(b"_SYS.foo"));
    assert!(cache.is_empty());
    assert_eq!(cache.counts(), (0, 0));
}

#[test]
fn permission_sets_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PermissionSet>();
    assert_send_sync::<DenyFilter>();
    assert_send_sync::<ResponseTracker>();
    assert_send_sync::<PublishCache>();
}

#[test]
fn reserved_prefix_test_equals_matching_the_reserved_pattern() {
    for subject in ["_SYS.a", "_SYS.a.b", "_SYS", "_SYSX.a", "_SYS_.a", "a._SYS.b", "_sys.a", "x"] {
        assert_eq!(
            is_reserved(subject.as_bytes()),
            crate::subject::matches(RESERVED_SPACE.as_bytes(), subject.as_bytes()),
            "{subject}"
        );
    }
}

/// The issue's example: `sensor.*.temp` as a literal rule admits one
/// sensor at a time, never the wildcard that would wiretap them all; deny
/// still wins, queue SUBs follow the same rule, and `allow` beside it keeps
/// its own meaning.
#[test]
fn literal_rules_admit_literal_subjects_only() {
    let literal = |allow: Option<&[&str]>, literal: &[&str], deny: Option<&[&str]>| {
        pub_sub(None, Some(SubjectRules { allow: allow.map(list), literal: Some(list(literal)), deny: deny.map(list) }))
    };
    let set = literal(None, &["sensor.*.temp", "cmd.*.* workers"], Some(&["sensor.0.temp"]));
    for (line, allowed) in [
        ("sensor.12.temp", true),
        ("sensor.12.temp q", true),
        ("sensor.*.temp", false),
        ("sensor.>", false),
        ("sensor.12.*", false),
        ("sensor.0.temp", false),
        ("other", false),
        ("cmd.a.b workers", true),
        ("cmd.a.b", false),
        ("cmd.*.b workers", false),
    ] {
        assert_eq!(sub(&set, line).is_allowed(), allowed, "SUB {line}");
    }
    let with_allow = literal(Some(&["_INBOX.>"]), &["sensor.*.temp"], None);
    assert!(sub(&with_allow, "_INBOX.>").is_allowed());
    assert!(sub(&with_allow, "sensor.1.temp").is_allowed());
    assert!(!sub(&with_allow, "sensor.*.temp").is_allowed());
    let on_publish = Permissions {
        publish: Some(SubjectRules { allow: None, literal: Some(list(&["a.*"])), deny: None }),
        ..Permissions::default()
    };
    assert_eq!(PermissionSet::compile(&on_publish).unwrap_err(), PermsError::LiteralOnPublish);
}
