//! The compiled checker against a naive evaluator written straight from the
//! rules in `perms/mod.rs`.
//!
//! The naive side does not use `is_subset` or `overlaps`: "SUB S is contained
//! in P" is decided by enumerating every literal subject of a small universe
//! (the tokens used by the generated patterns plus one they never use, up to
//! one token longer than the longest pattern, which is enough to tell any two
//! such patterns apart) and checking that each literal S matches is matched
//! by P. Delivery filters are checked literal by literal the same way.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;

use super::*;
use crate::config::{Permissions, SubjectRules};
use crate::subject::matches;

/// Tokens patterns are built from (besides wildcards).
const TOKENS: &[&str] = &["a", "b", "_SYS"];
/// A token no pattern uses, so `*` differs from any list of literals.
const OTHER: &str = "z";
/// Longest generated pattern, in tokens (3 tokens + a trailing `>`).
const MAX_PATTERN_TOKENS: usize = 4;

fn universe() -> &'static [String] {
    static UNIVERSE: OnceLock<Vec<String>> = OnceLock::new();
    UNIVERSE.get_or_init(|| {
        let alphabet: Vec<&str> = TOKENS.iter().copied().chain([OTHER]).collect();
        let mut all: Vec<String> = Vec::new();
        let mut level: Vec<String> = alphabet.iter().map(|t| t.to_string()).collect();
        for _ in 0..=MAX_PATTERN_TOKENS {
            all.extend(level.iter().cloned());
            level = level.iter().flat_map(|s| alphabet.iter().map(move |t| format!("{s}.{t}"))).collect();
        }
        all
    })
}

/// Literals of the universe that `pattern` matches.
fn scope(pattern: &str) -> impl Iterator<Item = &'static String> + '_ {
    universe().iter().filter(move |l| matches(pattern.as_bytes(), l.as_bytes()))
}

/// Every subject `inner` can match is matched by `outer`.
fn contained(inner: &str, outer: &str) -> bool {
    scope(inner).all(|l| matches(outer.as_bytes(), l.as_bytes()))
}

#[derive(Debug, Clone)]
struct Entry {
    subject: String,
    queue: Option<String>,
}

impl Entry {
    fn text(&self) -> String {
        match &self.queue {
            Some(q) => format!("{} {q}", self.subject),
            None => self.subject.clone(),
        }
    }

    fn applies_to(&self, queue: Option<&str>) -> bool {
        match (&self.queue, queue) {
            (None, _) => true,
            (Some(p), Some(q)) => matches(p.as_bytes(), q.as_bytes()),
            (Some(_), None) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Rules {
    pub_allow: Option<Vec<String>>,
    pub_deny: Option<Vec<String>>,
    sub_allow: Option<Vec<Entry>>,
    sub_literal: Option<Vec<Entry>>,
    sub_deny: Option<Vec<Entry>>,
    pub(super) system: bool,
}

impl Rules {
    pub(super) fn compile(&self) -> PermissionSet {
        let texts = |v: &Option<Vec<Entry>>| v.as_ref().map(|v| v.iter().map(Entry::text).collect());
        let set = PermissionSet::compile(&Permissions {
            publish: Some(SubjectRules { allow: self.pub_allow.clone(), deny: self.pub_deny.clone(), literal: None }),
            subscribe: Some(SubjectRules {
                allow: texts(&self.sub_allow),
                deny: texts(&self.sub_deny),
                literal: texts(&self.sub_literal),
            }),
            allow_responses: None,
        })
        .expect("generated rules are valid");
        if self.system {
            set.grant_system()
        } else {
            set
        }
    }

    fn reserved(&self, literal: &str) -> bool {
        !self.system && literal.starts_with("_SYS.")
    }

    pub(super) fn naive_publish(&self, subject: &str) -> bool {
        let any = |list: &Vec<String>| list.iter().any(|p| matches(p.as_bytes(), subject.as_bytes()));
        !self.reserved(subject) && self.pub_allow.as_ref().is_none_or(any) && !self.pub_deny.as_ref().is_some_and(any)
    }

    /// Whether a plain SUB to the literal `subject` is allowed (it need not
    /// be in the universe: for a literal, "contained in P" is "matched by P").
    pub(super) fn naive_receive(&self, subject: &str) -> bool {
        let plain = |e: &&Entry| e.queue.is_none() && matches(e.subject.as_bytes(), subject.as_bytes());
        let restricted = self.sub_allow.is_some() || self.sub_literal.is_some();
        let admitted = self.sub_allow.iter().chain(&self.sub_literal).flatten().any(|e| plain(&e));
        !self.reserved(subject) && (!restricted || admitted) && !self.sub_deny.iter().flatten().any(|e| plain(&e))
    }

    /// `None`: SUB refused. `Some(denied)`: allowed, and `denied(l)` says
    /// whether the literal `l` (which the SUB matches) must be withheld.
    fn naive_subscribe(&self, subject: &str, queue: Option<&str>) -> Option<Vec<&'static String>> {
        if queue == Some("_sys_") {
            return None;
        }
        if scope(subject).all(|l| self.reserved(l)) {
            return None;
        }
        if self.sub_allow.is_some() || self.sub_literal.is_some() {
            // A literal subject has no wildcard token.
            let is_literal = !subject.split('.').any(|t| t == "*" || t == ">");
            let admits = |entries: &Option<Vec<Entry>>| {
                let containing: Vec<&Entry> =
                    entries.iter().flatten().filter(|e| contained(subject, &e.subject)).collect();
                let plain_ok = containing.iter().any(|e| e.queue.is_none());
                match queue {
                    None => plain_ok,
                    Some(_) => {
                        let queue_entries: Vec<&&Entry> = containing.iter().filter(|e| e.queue.is_some()).collect();
                        if queue_entries.is_empty() {
                            plain_ok
                        } else {
                            queue_entries.iter().any(|e| e.applies_to(queue))
                        }
                    }
                }
            };
            if !(admits(&self.sub_allow) || (is_literal && admits(&self.sub_literal))) {
                return None;
            }
        }
        let deny: Vec<&Entry> = self.sub_deny.iter().flatten().filter(|e| e.applies_to(queue)).collect();
        if deny.iter().any(|e| contained(subject, &e.subject)) {
            return None;
        }
        Some(
            scope(subject)
                .filter(|l| self.reserved(l) || deny.iter().any(|e| matches(e.subject.as_bytes(), l.as_bytes())))
                .collect(),
        )
    }
}

fn token() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "a", "b", "_SYS", "*"]).prop_map(String::from)
}

fn pattern() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (prop::collection::vec(token(), 1..=MAX_PATTERN_TOKENS - 1), any::<bool>()).prop_map(
            |(mut toks, full)| {
                if full {
                    toks.push(">".into());
                }
                toks.join(".")
            }
        ),
        1 => Just(">".to_string()),
    ]
    .boxed()
}

fn queue_pattern() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["v1", "v2", "*", "v1.*", ">"]).prop_map(String::from)
}

fn sub_queue() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec!["v1", "v2", "x", "v1.a", "_sys_"]).prop_map(String::from))
}

fn entry() -> impl Strategy<Value = Entry> {
    (pattern(), prop::option::weighted(0.3, queue_pattern())).prop_map(|(subject, queue)| Entry { subject, queue })
}

pub(super) fn rules() -> impl Strategy<Value = Rules> {
    (
        prop::option::of(prop::collection::vec(pattern(), 0..4)),
        prop::option::of(prop::collection::vec(pattern(), 0..3)),
        prop::option::of(prop::collection::vec(entry(), 0..4)),
        prop::option::weighted(0.3, prop::collection::vec(entry(), 0..3)),
        prop::option::of(prop::collection::vec(entry(), 0..3)),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(pub_allow, pub_deny, sub_allow, sub_literal, sub_deny, system)| Rules {
            pub_allow,
            pub_deny,
            sub_allow,
            sub_literal,
            sub_deny,
            system,
        })
}

pub(super) fn literal() -> impl Strategy<Value = String> {
    prop::sample::select(universe().to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn publish_agrees_with_naive_evaluator(
        rules in rules(),
        subjects in prop::collection::vec(literal(), 1..40),
    ) {
        let set = Arc::new(rules.compile());
        let mut cache = PublishCache::new(set.clone());
        for s in subjects.iter().chain(subjects.iter()) {
            let want = rules.naive_publish(s);
            prop_assert_eq!(set.may_publish(s.as_bytes()), want, "PUB {}", s);
            prop_assert_eq!(cache.may_publish(s.as_bytes()), want, "cached PUB {}", s);
        }
    }

    #[test]
    fn subscribe_agrees_with_naive_evaluator(
        rules in rules(),
        subs in prop::collection::vec((pattern(), sub_queue()), 1..8),
    ) {
        let set = rules.compile();
        for (subject, queue) in &subs {
            let got = set.may_subscribe(subject.as_bytes(), queue.as_deref().map(str::as_bytes));
            let want = rules.naive_subscribe(subject, queue.as_deref());
            prop_assert_eq!(got.is_allowed(), want.is_some(), "SUB {} {:?}", subject, queue);
            let Some(denied) = want else { continue };
            if denied.is_empty() {
                prop_assert!(got.filter().is_none(), "needless filter on SUB {} {:?}", subject, queue);
            }
            for l in scope(subject) {
                let withheld = got.filter().is_some_and(|f| f.denies(l.as_bytes()));
                prop_assert_eq!(
                    withheld,
                    denied.contains(&l),
                    "SUB {} {:?} delivering {}", subject, queue, l
                );
            }
        }
    }
}

#[test]
fn universe_tells_patterns_apart() {
    // `a.*.>` vs `a.*.*`: differ only on four-token subjects.
    assert!(!contained("a.*.>", "a.*.*"));
    assert!(contained("a.*.*", "a.*.>"));
    // `*` is not contained in `a` plus `b`: the unused token shows it.
    assert!(!contained("*", "a"));
    assert!(contained("_SYS.*", "_SYS.>"));
    assert!(!contained("_SYS.>", "_SYS.*"));
}
