//! Accounts through the sans-IO session: isolation and stream imports
//! checked against a naive model on random subscriptions and publishes,
//! and a service import's request and response mapping, byte for byte.
#![allow(clippy::disallowed_methods)] // Tests pick their own instants from the real clock.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::tests::{broker_with, feed, log_in, sent, session_on};
use super::*;
use crate::subject::matches;

const ACCOUNTS: &str = r#"
accounts {
  A: { users: [ {user: a0, password: p}, {user: a1, password: p} ],
       exports: [ {stream: "pub.>"}, {stream: "priv.>", accounts: [B]},
                  {service: "svc.*", accounts: [B, C]},
                  {service: "feed", accounts: [B], response: stream} ] }
  B: { users: [ {user: b0, password: p}, {user: b1, password: p} ],
       imports: [ {stream: {account: A, subject: "pub.>"}, prefix: ia},
                  {stream: {account: A, subject: "priv.*"}, to: "p.$1"},
                  {service: {account: A, subject: "svc.*"}, to: "rq.*"},
                  {service: {account: A, subject: "feed"}} ] }
  C: { users: [ {user: c0, password: p}, {user: c1, password: p} ],
       imports: [ {stream: {account: A, subject: "pub.>"}} ] }
}
"#;

/// Users by index: two per account.
const USERS: [&str; 6] = ["a0", "a1", "b0", "b1", "c0", "c1"];

/// One of the naive model's stream imports: importer, exporter, exporter
/// pattern, rename.
type ModelImport = (char, char, &'static str, fn(&str) -> String);

/// The naive model's stream imports.
fn model_imports() -> Vec<ModelImport> {
    vec![
        ('B', 'A', "pub.>", |s| format!("ia.{s}")),
        ('B', 'A', "priv.*", |s| format!("p.{}", &s["priv.".len()..])),
        ('C', 'A', "pub.>", |s| s.to_owned()),
    ]
}

fn account_of(user: usize) -> char {
    ['A', 'A', 'B', 'B', 'C', 'C'][user]
}

/// Every `MSG <subject> <sid> ...` the text holds, as (subject, sid).
fn deliveries(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("MSG "))
        .map(|rest| {
            let mut f = rest.split(' ');
            (f.next().unwrap_or_default().to_owned(), f.next().unwrap_or_default().to_owned())
        })
        .collect()
}

fn logged_in(broker: &Arc<Broker>, gate: &Arc<Gate>, now: Instant) -> Vec<Session> {
    USERS
        .iter()
        .map(|user| {
            let mut s = session_on(broker, gate, now);
            log_in(&mut s, gate, user, "p", now).expect("logs in");
            s
        })
        .collect()
}

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["pub", "priv", "ia", "p", "x", "y"])
}

fn pattern() -> impl Strategy<Value = String> {
    let part = prop_oneof![4 => token(), 1 => Just("*")];
    (prop::collection::vec(part, 1..4), any::<bool>()).prop_map(|(tokens, full)| {
        let mut s = tokens.join(".");
        if full {
            s.push_str(".>");
        }
        s
    })
}

fn literal() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..5).prop_map(|t| t.join("."))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the subscriptions and publishes, each client gets exactly
    /// what the model says: its own account's messages, plus what its
    /// account imports, renamed; nothing else ever crosses.
    #[test]
    fn isolation_and_stream_imports_match_the_model(
        subs in prop::collection::vec((0usize..6, pattern()), 1..12),
        pubs in prop::collection::vec((0usize..6, literal()), 1..16),
    ) {
        let now = Instant::now();
        let (broker, gate) = broker_with(ACCOUNTS);
        let mut sessions = logged_in(&broker, &gate, now);
        for (i, (user, subject)) in subs.iter().enumerate() {
            feed(&mut sessions[*user], &format!("SUB {subject} {i}\r\n"), now);
        }
        for (user, subject) in &pubs {
            feed(&mut sessions[*user], &format!("PUB {subject} 0\r\n\r\n"), now);
        }
        let mut want: BTreeMap<usize, Vec<(String, String)>> = BTreeMap::new();
        for (publisher, subject) in &pubs {
            let home = account_of(*publisher);
            for (i, (user, pattern)) in subs.iter().enumerate() {
                let mine = account_of(*user);
                if mine == home && matches(pattern.as_bytes(), subject.as_bytes()) {
                    want.entry(*user).or_default().push((subject.clone(), i.to_string()));
                }
                for (importer, exporter, from, rename) in model_imports() {
                    if importer == mine && exporter == home && matches(from.as_bytes(), subject.as_bytes()) {
                        let local = rename(subject);
                        if matches(pattern.as_bytes(), local.as_bytes()) {
                            want.entry(*user).or_default().push((local, i.to_string()));
                        }
                    }
                }
            }
        }
        for (user, session) in sessions.iter().enumerate() {
            let mut got = deliveries(&sent(session));
            let mut expected = want.remove(&user).unwrap_or_default();
            got.sort();
            expected.sort();
            prop_assert_eq!(got, expected, "user {}", USERS[user]);
        }
    }
}

#[test]
fn a_service_import_maps_the_request_and_its_response() {
    let now = Instant::now();
    let (broker, gate) = broker_with(ACCOUNTS);
    let mut s = logged_in(&broker, &gate, now);
    // A's responder, B's requester.
    feed(&mut s[0], "SUB svc.* 1\r\n", now);
    feed(&mut s[2], "SUB _INBOX.b0.* 9\r\nPUB rq.time _INBOX.b0.1 2\r\nhi\r\n", now);
    let request = sent(&s[0]);
    let fields: Vec<&str> = request.lines().next().unwrap().split(' ').collect();
    assert_eq!(&fields[..3], ["HMSG", "svc.time", "1"], "{request}");
    assert!(request.contains("\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n"), "who asked: {request}");
    let reply = fields[3];
    assert!(reply.starts_with("_R_.") && reply.len() == 4 + 10 + 1 + 8, "{reply}");
    assert!(request.ends_with("\r\nhi\r\n"));
    // The responder answers; the requester sees its own inbox.
    feed(&mut s[0], &format!("PUB {reply} 3\r\nnow\r\n"), now);
    assert_eq!(sent(&s[2]), "MSG _INBOX.b0.1 9 3\r\nnow\r\n");
    // Singleton: a second answer goes nowhere.
    feed(&mut s[0], &format!("PUB {reply} 5\r\nlater\r\n"), now);
    assert_eq!(sent(&s[2]), "");
    // C may not use B's import, and nothing of it reaches C.
    feed(&mut s[4], "SUB > 1\r\nPUB rq.time _INBOX.c0 0\r\n\r\n", now);
    assert_eq!(deliveries(&sent(&s[4])), vec![("rq.time".into(), "1".into())]);
    assert_eq!(sent(&s[0]), "");
}

#[test]
fn a_streamed_response_ends_with_an_empty_message() {
    let now = Instant::now();
    let (broker, gate) = broker_with(ACCOUNTS);
    let mut s = logged_in(&broker, &gate, now);
    feed(&mut s[1], "SUB feed 1\r\n", now);
    feed(&mut s[3], "SUB _INBOX.x 2\r\nPUB feed _INBOX.x 0\r\n\r\n", now);
    let request = sent(&s[1]);
    let reply = request.lines().next().unwrap().split(' ').nth(3).unwrap().to_owned();
    for part in ["one", "two"] {
        feed(&mut s[1], &format!("PUB {reply} 3\r\n{part}\r\n"), now);
    }
    feed(&mut s[1], &format!("PUB {reply} 0\r\n\r\nPUB {reply} 4\r\nlate\r\n"), now);
    assert_eq!(sent(&s[3]), "MSG _INBOX.x 2 3\r\none\r\nMSG _INBOX.x 2 3\r\ntwo\r\nMSG _INBOX.x 2 0\r\n\r\n");
}

#[test]
fn clients_may_not_use_reserved_replies() {
    let now = Instant::now();
    let (broker, gate) = broker_with(ACCOUNTS);
    let mut s = logged_in(&broker, &gate, now);
    feed(&mut s[2], "PUB rq.x _R_.forged.reply 0\r\n\r\nPING\r\n", now);
    assert_eq!(sent(&s[2]), "-ERR 'Permissions Violation for Publish with Reply of \"_R_.forged.reply\"'\r\nPONG\r\n");
    assert_eq!(sent(&s[0]), "");
}

#[test]
fn account_limits_apply_to_each_connection() {
    let config = r#"
accounts { L: { users: [ {user: l, password: p} ],
                limits: { max_connections: 2, max_subscriptions: 1, max_payload: 4 } } }
"#;
    let now = Instant::now();
    let (broker, gate) = broker_with(config);
    let mut first = session_on(&broker, &gate, now);
    log_in(&mut first, &gate, "l", "p", now).unwrap();
    let mut second = session_on(&broker, &gate, now);
    log_in(&mut second, &gate, "l", "p", now).unwrap();
    let mut third = session_on(&broker, &gate, now);
    assert_eq!(log_in(&mut third, &gate, "l", "p", now), Err(CloseReason::MaxAccountConnectionsExceeded));
    assert_eq!(sent(&third), "-ERR 'maximum account active connections exceeded'\r\n");
    feed(&mut first, "SUB a 1\r\nSUB b 2\r\nPING\r\n", now);
    assert_eq!(sent(&first), "-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n");
    let received = first.receive(b"PUB a 5\r\nhello\r\n", now);
    assert!(matches!(received.event, Some(Event::Close(CloseReason::MaxPayloadExceeded))));
    // A connection that ends makes room.
    second.finish(CloseReason::ClientClosed);
    let mut fourth = session_on(&broker, &gate, now);
    log_in(&mut fourth, &gate, "l", "p", now).unwrap();
    assert_eq!(broker.accounts.get("L").unwrap().connections(), 2);
    // max_subscriptions bounds each connection, not the account's total
    // (as documented): `first` holds its one, `fourth` may hold another.
    feed(&mut fourth, "SUB c 1\r\nSUB d 2\r\nPING\r\n", now);
    assert_eq!(sent(&fourth), "-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n");
}
