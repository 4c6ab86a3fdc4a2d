//! The guard, rule by rule, and against a naive model written from the
//! module doc's five rules (with the permission rules' own naive evaluator
//! from `naive_tests.rs`): token tests instead of prefix tests, the
//! self-service requests listed out, reply grants as a plain map of uses
//! left.

use std::collections::HashMap;

use parking_lot::Mutex;
use proptest::prelude::*;

use super::*;
use crate::config::{Permissions, SubjectRules};
use crate::perms::naive_tests::{literal, rules, Rules};

/// Reply grants as a map of uses left; records nothing else.
#[derive(Debug, Default)]
struct Grants(Mutex<HashMap<Vec<u8>, u32>>);

impl ReplyGrants for Grants {
    fn may_reply(&self, subject: &[u8], _now: Instant) -> bool {
        match self.0.lock().get_mut(subject) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }
}

fn grants(pairs: &[(&str, u32)]) -> Arc<Grants> {
    let map = pairs.iter().map(|(s, n)| (s.as_bytes().to_vec(), *n)).collect();
    Arc::new(Grants(Mutex::new(map)))
}

const OUTSIDER: Standing = Standing { in_system: false, serves_callout: false };
const SYSTEM: Standing = Standing { in_system: true, serves_callout: false };
const CALLOUT: Standing = Standing { in_system: false, serves_callout: true };

/// Publish rules `allow`, subscribe rules `sub_allow` (`None`: no rules).
fn set(allow: Option<&[&str]>, sub_allow: Option<&[&str]>) -> Arc<PermissionSet> {
    let list = |l: Option<&[&str]>| {
        l.map(|l| SubjectRules { allow: Some(l.iter().map(|s| s.to_string()).collect()), deny: None, literal: None })
    };
    let permissions = Permissions { publish: list(allow), subscribe: list(sub_allow), allow_responses: None };
    Arc::new(PermissionSet::compile(&permissions).expect("valid rules"))
}

fn guard(set: Arc<PermissionSet>, grants: Arc<Grants>, standing: Standing) -> PublishGuard<Grants> {
    PublishGuard::new(set, grants, standing, true)
}

#[test]
fn subject_needs_the_rules_or_a_grant_and_a_grant_is_spent_only_when_needed() {
    let g = grants(&[("_INBOX.r", 1), ("orders.new", 1)]);
    let mut guard = guard(set(Some(&["orders.>"]), None), g.clone(), OUTSIDER);
    let now = Instant::now();
    assert_eq!(guard.check(b"orders.new", None, now), Ok(()));
    assert_eq!(g.0.lock()[b"orders.new".as_slice()], 1, "the rules allowed it: grant kept");
    assert_eq!(guard.check(b"_INBOX.r", None, now), Ok(()), "a grant opens a refused subject");
    assert_eq!(guard.check(b"_INBOX.r", None, now), Err(PublishViolation::SubjectDenied), "once");
    assert_eq!(guard.check(b"payments.new", None, now), Err(PublishViolation::SubjectDenied));
}

#[test]
fn system_space_is_closed_outside_the_system_account() {
    let now = Instant::now();
    let mut outsider = guard(set(None, None), grants(&[]), OUTSIDER);
    assert_eq!(outsider.check(b"$SYS.REQ.SERVER.PING", None, now), Err(PublishViolation::SystemSubject));
    assert_eq!(outsider.check(b"$SYS.REQ.USER.INFO", Some(b"_INBOX.x"), now), Ok(()), "self-service");
    let mut system = guard(set(None, None), grants(&[]), SYSTEM);
    assert_eq!(system.check(b"$SYS.REQ.SERVER.PING", Some(b"$SYS.x"), now), Ok(()));
    assert_eq!(system.check(b"$SYS.REQ.USER.AUTH", None, now), Err(PublishViolation::SystemSubject));
    let mut callout = guard(set(None, None), grants(&[]), CALLOUT);
    assert_eq!(callout.check(b"$SYS._INBOX.abc.1", None, now), Ok(()), "the service answers");
    assert_eq!(outsider.check(b"$SYS._INBOX.abc.1", None, now), Err(PublishViolation::SystemSubject));
}

#[test]
fn replies_the_server_reserves_are_refused() {
    let now = Instant::now();
    let mut outsider = guard(set(None, None), grants(&[]), OUTSIDER);
    assert_eq!(outsider.check(b"a", Some(b"_R_.abc.1"), now), Err(PublishViolation::ReservedReply));
    assert_eq!(outsider.check(b"a", Some(b"$SYS.x"), now), Err(PublishViolation::ReservedReply));
    let mut system = guard(set(None, None), grants(&[]), SYSTEM);
    assert_eq!(system.check(b"a", Some(b"_R_.abc.1"), now), Err(PublishViolation::ReservedReply));
    assert!(PublishViolation::ReservedReply.blames_reply());
    assert!(!PublishViolation::SystemSubject.blames_reply());
}

#[test]
fn a_system_request_answers_only_to_an_inbox_or_where_the_requester_may_publish() {
    let now = Instant::now();
    let mut guard = guard(set(Some(&["$SYS.REQ.>", "mine.>"]), None), grants(&[]), SYSTEM);
    assert_eq!(guard.check(b"$SYS.REQ.SERVER.PING", Some(b"_INBOX.x"), now), Ok(()));
    assert_eq!(guard.check(b"$SYS.REQ.SERVER.PING", Some(b"mine.x"), now), Ok(()));
    assert_eq!(guard.check(b"$SYS.REQ.SERVER.PING", Some(b"theirs.x"), now), Err(PublishViolation::BorrowedVoice));
}

#[test]
fn check_reply_subjects_needs_a_reply_the_publisher_could_receive() {
    let now = Instant::now();
    let strict = set(None, Some(&["_INBOX.>"]));
    let mut on = guard(strict.clone(), grants(&[]), OUTSIDER);
    assert_eq!(on.check(b"svc", Some(b"_INBOX.x"), now), Ok(()));
    assert_eq!(on.check(b"svc", Some(b"victim.x"), now), Err(PublishViolation::UnreceivableReply));
    let mut off = PublishGuard::new(strict, grants(&[]), OUTSIDER, false);
    assert_eq!(off.check(b"svc", Some(b"victim.x"), now), Ok(()));
}

#[test]
fn replace_forgets_cached_answers_and_takes_the_new_standing() {
    let now = Instant::now();
    let mut guard = guard(set(None, None), grants(&[]), SYSTEM);
    assert_eq!(guard.check(b"orders.new", None, now), Ok(()));
    assert_eq!(guard.check(b"$SYS.REQ.SERVER.PING", None, now), Ok(()));
    guard.replace(set(Some(&["payments.>"]), None), OUTSIDER);
    assert_eq!(guard.check(b"orders.new", None, now), Err(PublishViolation::SubjectDenied));
    assert_eq!(guard.check(b"$SYS.REQ.SERVER.PING", None, now), Err(PublishViolation::SubjectDenied));
}

/// The five rules, from the module doc, on subjects as token lists.
struct Model {
    rules: Rules,
    standing: Standing,
    check_reply_subjects: bool,
    grants: HashMap<String, u32>,
}

/// The requests every account may make (perms::system_space), spelled out.
const SELF_SERVICE: [&str; 4] =
    ["$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.ACCOUNT.PING.STATZ", "$SYS.REQ.SERVER.PING.CONNZ", "$SYS.REQ.USER.INFO"];

/// Whether the subject's first token is `first` and more tokens follow.
fn under(subject: &str, first: &[&str]) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    tokens.len() > first.len() && tokens[..first.len()] == *first
}

impl Model {
    fn check(&mut self, subject: &str, reply: Option<&str>) -> Result<(), PublishViolation> {
        let granted = |grants: &mut HashMap<String, u32>| match grants.get_mut(subject) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        if !self.rules.naive_publish(subject) && !granted(&mut self.grants) {
            return Err(PublishViolation::SubjectDenied);
        }
        let system_ok = !under(subject, &["$SYS"])
            || (subject != "$SYS.REQ.USER.AUTH"
                && (self.standing.in_system
                    || SELF_SERVICE.contains(&subject)
                    || (self.standing.serves_callout && under(subject, &["$SYS", "_INBOX"]))));
        if !system_ok {
            return Err(PublishViolation::SystemSubject);
        }
        let Some(reply) = reply else { return Ok(()) };
        if under(reply, &["_R_"]) || (!self.standing.in_system && under(reply, &["$SYS"])) {
            return Err(PublishViolation::ReservedReply);
        }
        if under(subject, &["$SYS"]) && !under(reply, &["_INBOX"]) && !self.rules.naive_publish(reply) {
            return Err(PublishViolation::BorrowedVoice);
        }
        if self.check_reply_subjects && !self.rules.naive_receive(reply) {
            return Err(PublishViolation::UnreceivableReply);
        }
        Ok(())
    }
}

/// Subjects the permission rules' universe lacks: the `$SYS` space's
/// special subjects, reserved and inbox replies.
const SPECIAL: &[&str] = &[
    "$SYS.REQ.USER.INFO",
    "$SYS.REQ.SERVER.PING.CONNZ",
    "$SYS.REQ.SERVER.PING",
    "$SYS.REQ.USER.AUTH",
    "$SYS._INBOX.k.1",
    "$SYS.a",
    "$SYS",
    "_R_.abc.1",
    "_R_",
    "_INBOX.r1",
    "_INBOX.a.b",
];

fn subject() -> impl Strategy<Value = String> {
    prop_oneof![2 => literal(), 1 => prop::sample::select(SPECIAL).prop_map(String::from)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn guard_agrees_with_naive_model(
        rules in rules(),
        (in_system, serves_callout, check_reply_subjects) in (any::<bool>(), any::<bool>(), any::<bool>()),
        granted in prop::collection::vec((subject(), 1..3u32), 0..6),
        publishes in prop::collection::vec((subject(), prop::option::of(subject())), 1..40),
    ) {
        let standing = Standing { in_system, serves_callout };
        let map: HashMap<String, u32> = granted.into_iter().collect();
        let double = Arc::new(Grants(Mutex::new(map.iter().map(|(s, n)| (s.as_bytes().to_vec(), *n)).collect())));
        let mut guard = PublishGuard::new(Arc::new(rules.compile()), double.clone(), standing, check_reply_subjects);
        let mut model = Model { rules, standing, check_reply_subjects, grants: map };
        let now = Instant::now();
        // Twice: the second pass answers from the cache.
        for (subject, reply) in publishes.iter().chain(publishes.iter()) {
            let got = guard.check(subject.as_bytes(), reply.as_deref().map(str::as_bytes), now);
            prop_assert_eq!(got, model.check(subject, reply.as_deref()), "PUB {} {:?}", subject, reply);
            let left: HashMap<String, u32> =
                double.0.lock().iter().map(|(s, n)| (String::from_utf8_lossy(s).into_owned(), *n)).collect();
            prop_assert_eq!(&left, &model.grants, "grants after PUB {} {:?}", subject, reply);
        }
    }
}
