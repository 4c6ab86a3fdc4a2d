use std::net::SocketAddr;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::broker::Client;
use crate::subject::matches;

fn client(id: u64) -> Arc<Client> {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    Arc::new(Client::new(id, addr, 1 << 20))
}

fn sub(c: &Arc<Client>, subject: &str, queue: Option<&str>, sid: &str) -> Arc<Subscription> {
    let account = Arc::new(crate::broker::Account::new("$G".into(), false));
    Arc::new(Subscription::new(c.clone(), account, subject.as_bytes(), queue.map(str::as_bytes), sid.as_bytes(), None))
}

#[test]
fn groups_queue_members_and_keeps_plain_subscribers() {
    let router = Router::new();
    let c = client(1);
    router.insert(sub(&c, "foo.*", None, "1"));
    router.insert(sub(&c, "foo.bar", Some("q"), "2"));
    router.insert(sub(&c, "foo.>", Some("q"), "3"));
    router.insert(sub(&c, "foo.bar", Some("r"), "4"));
    let (result, _) = router.lookup(b"foo.bar");
    assert_eq!(result.plain.len(), 1);
    let mut sizes: Vec<usize> = result.groups.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![1, 2]);
}

#[test]
fn cache_never_serves_a_result_older_than_a_sub_or_unsub() {
    let router = Router::new();
    let mut cache = MatchCache::new();
    let c = client(1);
    assert!(cache.lookup(&router, b"a.b").is_empty());
    let s = sub(&c, "a.*", None, "1");
    router.insert(s.clone());
    assert_eq!(cache.lookup(&router, b"a.b").plain.len(), 1);
    assert_eq!(cache.lookup(&router, b"a.b").plain.len(), 1);
    assert_eq!(cache.counts().0, 1, "second lookup was a hit");
    router.remove(&s);
    assert!(cache.lookup(&router, b"a.b").is_empty());
}

#[test]
fn reply_subjects_of_one_prefix_share_a_cache_entry_until_a_subscription_names_one() {
    let router = Router::new();
    let mut cache = MatchCache::new();
    let c = client(1);
    router.insert(sub(&c, "_R_.abcdefghij.>", None, "responses"));
    for id in ["00000001", "00000002", "00000003"] {
        let subject = format!("_R_.abcdefghij.{id}");
        assert_eq!(cache.lookup(&router, subject.as_bytes()).plain.len(), 1);
    }
    assert_eq!(cache.counts(), (2, 1), "one trie walk for three replies");
    assert_eq!(cache.len(), 1);
    let named = sub(&c, "_R_.abcdefghij.00000002", None, "one id");
    router.insert(named.clone());
    assert!(!router.reply_ids_alike());
    assert_eq!(cache.lookup(&router, b"_R_.abcdefghij.00000001").plain.len(), 1);
    assert_eq!(cache.lookup(&router, b"_R_.abcdefghij.00000002").plain.len(), 2);
    assert!(router.remove(&named));
    assert!(router.reply_ids_alike());
    assert_eq!(cache.lookup(&router, b"_R_.abcdefghij.00000002").plain.len(), 1);
}

#[test]
fn auto_unsubscribe_claims() {
    let c = client(1);
    let s = sub(&c, "a", None, "1");
    assert!(!s.set_max(2));
    assert_eq!(s.claim(), Claim::Deliver);
    assert_eq!(s.claim(), Claim::DeliverLast);
    assert_eq!(s.claim(), Claim::Done);
    assert!(s.set_max(1), "a max at or below what was delivered ends it at once");
}

#[derive(Debug, Clone)]
enum Action {
    Sub(usize),
    Unsub(usize),
    Publish(usize),
}

/// With service-import reply subjects (`_R_.<prefix>.<id>`), which the
/// cache answers per prefix while no pattern names an id.
const PATTERNS: &[&str] =
    &["a", "a.b", "a.*", "a.>", "*.b", ">", "a.b.c", "*.*.c", "b.>", "_R_.p.>", "_R_.p.x", "_R_.*.y", "*.*.x", "_R_.*"];
const SUBJECTS: &[&str] =
    &["a", "a.b", "a.c", "a.b.c", "b.b", "b.x.c", "c", "_R_.p.x", "_R_.p.y", "_R_.q.x", "_R_.p.z"];

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0..PATTERNS.len()).prop_map(Action::Sub),
        (0..16usize).prop_map(Action::Unsub),
        (0..SUBJECTS.len()).prop_map(Action::Publish),
    ]
}

proptest! {
    /// The trie plus the per-connection cache returns exactly what a naive
    /// scan of the live subscriptions returns, after any sequence of changes.
    #[test]
    fn cached_router_agrees_with_naive_matcher(actions in prop::collection::vec(action(), 1..80)) {
        let router = Router::new();
        let mut cache = MatchCache::new();
        let c = client(1);
        let mut live: Vec<Arc<Subscription>> = Vec::new();
        for (i, a) in actions.into_iter().enumerate() {
            match a {
                Action::Sub(p) => {
                    let s = sub(&c, PATTERNS[p], None, &i.to_string());
                    router.insert(s.clone());
                    live.push(s);
                }
                Action::Unsub(k) => {
                    if !live.is_empty() {
                        let s = live.remove(k % live.len());
                        router.remove(&s);
                    }
                }
                Action::Publish(k) => {
                    let subject = SUBJECTS[k];
                    let mut got: Vec<Box<[u8]>> = cache.lookup(&router, subject.as_bytes()).plain.iter().map(|s| s.sid.clone()).collect();
                    let mut want: Vec<Box<[u8]>> = live.iter().filter(|s| matches(&s.subject, subject.as_bytes())).map(|s| s.sid.clone()).collect();
                    got.sort();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}

#[test]
fn a_replaced_subscription_still_takes_what_was_matched_before_the_swap() {
    let router = Router::new();
    let c = client(1);
    let old = sub(&c, "a.*", None, "1");
    router.insert(old.clone());
    // A publisher matched before a reload renewed the subscription...
    let (before, _) = router.lookup(b"a.b");
    let new = old.renewed(None, Vec::new());
    assert!(router.replace(&old, new.clone()));
    // ...still delivers to it, and from then on only the new one matches.
    assert_eq!(before.plain[0].claim(), Claim::Deliver);
    let (after, _) = router.lookup(b"a.b");
    assert!(Arc::ptr_eq(&after.plain[0], &new));
    assert_eq!((router.len(), c.subscription_count()), (1, 1));
    // Removing the old one (say, an auto-unsubscribe that raced) counts nothing twice.
    assert!(!router.remove(&old));
    assert_eq!(before.plain[0].claim(), Claim::Done);
    assert!(!router.replace(&old, sub(&c, "a.*", None, "1")));
    assert!(router.remove(&new));
    assert_eq!((router.len(), c.subscription_count()), (0, 0));
}
