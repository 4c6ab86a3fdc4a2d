//! Message tracing through the sans-IO session: the destination check
//! (a destination the publisher may not publish to refuses the message
//! before anything is delivered), trace-only, and the event's shape.
#![allow(clippy::disallowed_methods)] // Tests pick their own instants from the real clock.

use super::tests::{broker_with, feed, log_in, sent, session_on};
use super::*;

const CONFIG: &str = r#"
accounts {
  A: { users: [ {user: a, password: p, permissions: { publish: { deny: ["spy.>"] } } }, {user: t, password: p} ] }
}
"#;

fn hpub(subject: &str, headers: &str) -> String {
    let block = format!("NATS/1.0\r\n{headers}\r\n");
    format!("HPUB {subject} {} {}\r\n{block}hi\r\n", block.len(), block.len() + 2)
}

#[test]
fn a_destination_the_publisher_may_not_publish_to_refuses_the_message() {
    let now = Instant::now();
    let (broker, gate) = broker_with(CONFIG);
    let mut watcher = session_on(&broker, &gate, now);
    log_in(&mut watcher, &gate, "t", "p", now).unwrap();
    feed(&mut watcher, "SUB foo 1\r\nSUB spy.> 2\r\n", now);
    let _ = sent(&watcher);
    let mut publisher = session_on(&broker, &gate, now);
    log_in(&mut publisher, &gate, "a", "p", now).unwrap();
    let _ = sent(&publisher);
    feed(&mut publisher, &hpub("foo", "Nats-Trace-Dest: spy.x\r\n"), now);
    assert_eq!(sent(&publisher), "-ERR 'Permissions Violation for Publish to \"spy.x\"'\r\n");
    assert_eq!(sent(&watcher), "", "neither the message nor an event");
}

#[test]
fn trace_only_sends_the_event_and_delivers_nothing() {
    let now = Instant::now();
    let (broker, gate) = broker_with(CONFIG);
    let mut watcher = session_on(&broker, &gate, now);
    log_in(&mut watcher, &gate, "t", "p", now).unwrap();
    feed(&mut watcher, "SUB foo 1\r\nSUB trace 2\r\n", now);
    let _ = sent(&watcher);
    let mut publisher = session_on(&broker, &gate, now);
    log_in(&mut publisher, &gate, "a", "p", now).unwrap();
    feed(&mut publisher, &hpub("foo", "Nats-Trace-Dest: trace\r\nNats-Trace-Only: on\r\n"), now);
    let got = sent(&watcher);
    let mut lines = got.split("\r\n");
    let head = lines.next().unwrap();
    assert!(head.starts_with("MSG trace 2 "), "only the event: {got:?}");
    let event: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(event["request"]["header"]["Nats-Trace-Only"][0], "on");
    assert_eq!(event["events"][0]["subj"], "foo");
    assert_eq!(event["events"][1]["type"], "eg");
    assert_eq!(event["events"][1]["sub"], "foo");
    assert!(event["events"][1].get("error").is_none());
}

#[test]
fn a_message_without_a_trace_header_is_delivered_as_it_came() {
    let now = Instant::now();
    let (broker, gate) = broker_with(CONFIG);
    let mut watcher = session_on(&broker, &gate, now);
    log_in(&mut watcher, &gate, "t", "p", now).unwrap();
    feed(&mut watcher, "SUB foo 1\r\n", now);
    let _ = sent(&watcher);
    let mut publisher = session_on(&broker, &gate, now);
    log_in(&mut publisher, &gate, "a", "p", now).unwrap();
    feed(&mut publisher, &hpub("foo", "Nats-Trace-Only: true\r\nX: spy.x\r\n"), now);
    assert_eq!(sent(&watcher), "HMSG foo 1 45 47\r\nNATS/1.0\r\nNats-Trace-Only: true\r\nX: spy.x\r\n\r\nhi\r\n");
}
