//! Subject mappings through the sans-IO session: what a publish becomes,
//! the permission check on the mapped subject (nats-server 2.15.1's order,
//! with its error texts), the dropped remainder, a rewrite into an invalid
//! subject, a service import into a mapped exporter, and a reload.
#![allow(clippy::disallowed_methods)] // Tests pick their own instants from the real clock.

use super::tests::{broker_with, feed, log_in, sent, session_on};
use super::*;

const CONFIG: &str = r#"
mappings {
  "orders.*": "orders.eu.{{wildcard(1)}}"
  "foo": "bar"
  "half": [ {destination: "half", weight: 50} ]
  "cut.*": "cut.{{split(1,-)}}"
}
authorization { users = [
  {user: only_bar, password: p, permissions: {publish: ["bar"], subscribe: ">"}},
  {user: only_foo, password: p, permissions: {publish: ["foo", "half"], subscribe: ">"}},
  {user: all, password: p}
] }
"#;

fn logged_in(broker: &Arc<Broker>, gate: &Arc<Gate>, user: &str, now: Instant) -> Session {
    let mut s = session_on(broker, gate, now);
    log_in(&mut s, gate, user, "p", now).expect("logs in");
    sent(&s);
    s
}

#[test]
fn a_publish_is_delivered_under_its_mapped_subject() {
    let now = Instant::now();
    let (broker, gate) = broker_with(CONFIG);
    let mut sub = logged_in(&broker, &gate, "all", now);
    feed(&mut sub, "SUB > 1\r\n", now);
    let mut publisher = logged_in(&broker, &gate, "all", now);
    feed(&mut publisher, "PUB orders.42 2\r\nhi\r\nPUB foo 0\r\n\r\nPUB other 0\r\n\r\nPUB orders.42 0\r\n\r\n", now);
    assert_eq!(
        sent(&sub),
        "MSG orders.eu.42 1 2\r\nhi\r\nMSG bar 1 0\r\n\r\nMSG other 1 0\r\n\r\nMSG orders.eu.42 1 0\r\n\r\n"
    );
    assert_eq!(sent(&publisher), "");
}

#[test]
fn permissions_are_checked_on_the_mapped_subject() {
    let now = Instant::now();
    let (broker, gate) = broker_with(CONFIG);
    let mut sub = logged_in(&broker, &gate, "all", now);
    feed(&mut sub, "SUB > 1\r\n", now);
    // Allowed `bar` only: `foo` maps to `bar` and passes.
    let mut only_bar = logged_in(&broker, &gate, "only_bar", now);
    feed(&mut only_bar, "PUB foo 0\r\n\r\n", now);
    assert_eq!(sent(&only_bar), "");
    assert_eq!(sent(&sub), "MSG bar 1 0\r\n\r\n");
    // Allowed `foo` only: it is refused, named by the mapped subject, as
    // nats-server 2.15.1 answers.
    let mut only_foo = logged_in(&broker, &gate, "only_foo", now);
    feed(&mut only_foo, "PUB foo 0\r\n\r\n", now);
    assert_eq!(sent(&only_foo), "-ERR 'Permissions Violation for Publish to \"bar\"'\r\n");
    assert_eq!(sent(&sub), "");
}

#[test]
fn the_dropped_remainder_reaches_nobody() {
    let now = Instant::now();
    let (broker, gate) = broker_with(CONFIG);
    let mut sub = logged_in(&broker, &gate, "all", now);
    feed(&mut sub, "SUB half 1\r\nSUB _INBOX.me 2\r\n", now);
    // A user allowed `half` gets no error for a dropped one (nats-server
    // says `Permissions Violation for Publish to ""` there).
    let mut publisher = logged_in(&broker, &gate, "only_foo", now);
    for _ in 0..400 {
        feed(&mut publisher, "PUB half 0\r\n\r\n", now);
    }
    assert_eq!(sent(&publisher), "");
    let got = sent(&sub).matches("MSG half").count();
    assert!((130..270).contains(&got), "about half of 400 arrive, got {got}");
    // With no_responders, a dropped request gets the 503 at once.
    let connect =
        "CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true,\"user\":\"all\",\"pass\":\"p\"}\r\n";
    let mut requester = session_on(&broker, &gate, now);
    let received = requester.receive(connect.as_bytes(), now);
    let Some(Event::Authenticate(login)) = received.event else { panic!("asks for a login") };
    requester.authenticated(gate.authenticator().authenticate(&login.claims, &login.facts)).unwrap();
    feed(&mut requester, "SUB _INBOX.r 9\r\n", now);
    sent(&requester);
    for _ in 0..40 {
        feed(&mut requester, "HPUB half _INBOX.r 12 12\r\nNATS/1.0\r\n\r\n\r\n", now);
    }
    let answers = sent(&requester).matches("HMSG _INBOX.r 9").count();
    assert!((5..35).contains(&answers), "about half of 40 requests are answered 503, got {answers}");
}

#[test]
fn a_rewrite_into_an_invalid_subject_is_refused() {
    let now = Instant::now();
    let (broker, gate) = broker_with(CONFIG);
    let mut sub = logged_in(&broker, &gate, "all", now);
    feed(&mut sub, "SUB > 1\r\n", now);
    let mut publisher = logged_in(&broker, &gate, "all", now);
    feed(&mut publisher, "PUB cut.a-b 0\r\n\r\nPUB cut.- 0\r\n\r\n", now);
    assert_eq!(sent(&sub), "MSG cut.a.b 1 0\r\n\r\n");
    assert_eq!(sent(&publisher), "-ERR 'Invalid Publish Subject'\r\n");
}

#[test]
fn a_service_import_request_takes_the_exporters_mappings() {
    let config = r#"
accounts {
  A: { users: [ {user: a, password: p} ], exports: [ {service: "svc.*"} ],
       mappings: { "svc.*": "svc.v2.$1" } }
  B: { users: [ {user: b, password: p} ], imports: [ {service: {account: A, subject: "svc.*"}, to: "ask.*"} ] }
}
"#;
    let now = Instant::now();
    let (broker, gate) = broker_with(config);
    let mut responder = logged_in(&broker, &gate, "a", now);
    feed(&mut responder, "SUB svc.> 1\r\n", now);
    let mut requester = logged_in(&broker, &gate, "b", now);
    feed(&mut requester, "PUB ask.x 0\r\n\r\n", now);
    // With the requester's account in Nats-Request-Info, as every request
    // through an import.
    let info = "NATS/1.0\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\n";
    assert_eq!(sent(&responder), format!("HMSG svc.v2.x 1 {0} {0}\r\n{info}\r\n", info.len()));
}

#[test]
fn a_reload_changes_the_mappings_before_the_next_batch() {
    let now = Instant::now();
    let (broker, gate) = broker_with(CONFIG);
    let mut sub = logged_in(&broker, &gate, "all", now);
    feed(&mut sub, "SUB > 1\r\n", now);
    let mut publisher = logged_in(&broker, &gate, "all", now);
    feed(&mut publisher, "PUB foo 0\r\n\r\n", now);
    let reloaded = CONFIG.replace("\"foo\": \"bar\"", "\"foo\": \"baz\"");
    let opts = crate::config::load_str(&reloaded, "reloaded.conf").unwrap().options;
    broker.configure_accounts(&opts).unwrap();
    gate.replace(crate::auth::from_options(&opts).unwrap());
    feed(&mut publisher, "PUB foo 0\r\n\r\n", now);
    let without = CONFIG.replace("\"foo\": \"bar\"", "");
    let opts = crate::config::load_str(&without, "reloaded.conf").unwrap().options;
    broker.configure_accounts(&opts).unwrap();
    gate.replace(crate::auth::from_options(&opts).unwrap());
    feed(&mut publisher, "PUB foo 0\r\n\r\n", now);
    assert_eq!(sent(&sub), "MSG bar 1 0\r\n\r\nMSG baz 1 0\r\n\r\nMSG foo 1 0\r\n\r\n");
}
