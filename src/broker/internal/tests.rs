//! The internal client on a broker of its own: what it holds after each
//! change of what is wanted, what it publishes reaching its inboxes, and
//! its subscriptions ending with it.

use std::net::SocketAddr;

use tokio::sync::mpsc;

use super::*;
use crate::broker::{Announce, InboxMsg, ServerIdentity};
use crate::config::Options;

fn broker() -> Arc<Broker> {
    let addr: SocketAddr = "127.0.0.1:4222".parse().unwrap();
    Arc::new(Broker::new(Options::default(), addr, ServerIdentity::new(None).unwrap()))
}

fn account(name: &str) -> Arc<Account> {
    Arc::new(Account::new(name.into(), false))
}

/// The subjects of the subscriptions in `account`'s index, sorted.
fn held(account: &Account) -> Vec<String> {
    let mut subjects: Vec<String> =
        account.router.subscriptions().iter().map(|s| String::from_utf8_lossy(&s.subject).into_owned()).collect();
    subjects.sort();
    subjects
}

fn publish(client: &mut InternalClient, account: &Account, subject: &[u8]) -> usize {
    client.publish(account, &Message { subject, reply: Some(b"r.1"), header_len: None, message: b"hi", buffer: None })
}

fn received(rx: &mut mpsc::Receiver<InboxMsg>) -> Vec<(String, String)> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .map(|m| (m.account.name.to_string(), String::from_utf8_lossy(&m.subject).into_owned()))
        .collect()
}

#[test]
fn what_it_publishes_reaches_its_inboxes_in_that_account_only() {
    let broker = broker();
    let (inbox, mut rx) = Inbox::new(Announce::Nowhere, "test");
    let (a, b) = (account("A"), account("B"));
    let mut client = InternalClient::new(broker);
    client.subscribe([(a.clone(), vec![Interest::new("x.*", &inbox)]), (b.clone(), vec![Interest::new("y", &inbox)])]);
    assert_eq!(publish(&mut client, &a, b"x.1"), 1);
    assert_eq!(publish(&mut client, &a, b"y"), 0, "B's subscription is not in A");
    assert_eq!(publish(&mut client, &b, b"y"), 1);
    assert_eq!(received(&mut rx), [("A".into(), "x.1".into()), ("B".into(), "y".into())]);
    assert!(Arc::ptr_eq(client.account("A").unwrap(), &a));
    assert!(client.account("C").is_none());
}

#[test]
fn unchanged_accounts_keep_their_subscriptions_and_changed_ones_are_remade() {
    let broker = broker();
    let (inbox, _rx) = Inbox::new(Announce::Nowhere, "test");
    let (other, _other_rx) = Inbox::new(Announce::Nowhere, "other");
    let (a, b, c) = (account("A"), account("B"), account("C"));
    let mut client = InternalClient::new(broker);
    let wants = |account: &Arc<Account>, subject: &str, inbox: &Arc<Inbox>| {
        (account.clone(), vec![Interest::new(subject, inbox)])
    };
    client.subscribe([wants(&a, "x", &inbox), wants(&b, "x", &inbox), wants(&c, "x", &inbox)]);
    let kept = a.router.subscriptions();

    // B is replaced by a new value of the same name, C wants another inbox.
    let b2 = account("B");
    client.subscribe([wants(&a, "x", &inbox), wants(&b2, "x", &inbox), wants(&c, "x", &other)]);
    assert!(Arc::ptr_eq(&a.router.subscriptions()[0], &kept[0]), "A's subscription is the same one");
    assert_eq!(held(&b), Vec::<String>::new(), "the replaced account's index is left empty");
    assert_eq!(held(&b2), ["x"]);
    assert!(Arc::ptr_eq(client.account("B").unwrap(), &b2));
    assert_eq!(held(&c), ["x"], "re-made with the new inbox");

    // An account no longer named (removed by a reload) loses its subscriptions.
    client.subscribe([wants(&a, "x", &inbox)]);
    assert_eq!(held(&b2), Vec::<String>::new());
    assert_eq!(held(&c), Vec::<String>::new());
    assert!(client.account("B").is_none());

    drop(client);
    assert_eq!(held(&a), Vec::<String>::new(), "its subscriptions end with it");
}

#[test]
fn interests_are_equal_by_subject_and_inbox_identity() {
    let (one, _rx1) = Inbox::new(Announce::Nowhere, "one");
    let (two, _rx2) = Inbox::new(Announce::Nowhere, "two");
    assert_eq!(Interest::new("x", &one), Interest::new(b"x", &one));
    assert_ne!(Interest::new("x", &one), Interest::new("x", &two));
    assert_ne!(Interest::new("x", &one), Interest::new("y", &one));
}
