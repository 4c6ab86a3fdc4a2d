//! The session driven directly: bytes and instants in, the bytes it queued
//! out. No socket, no runtime, no sleep.
#![allow(clippy::disallowed_methods)] // Tests pick their own instants from the real clock.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::auth::{FailureThrottle, Guard, Verifier};
use crate::config::Options;

/// A broker configured by `config` (empty for no auth), with its
/// accounts set up as the server does, and its gate.
pub(super) fn broker_with(config: &str) -> (Arc<Broker>, Arc<Gate>) {
    let opts = if config.is_empty() {
        Options::default()
    } else {
        crate::config::load_str(config, "session-test.conf").expect("config loads").options
    };
    let authenticator = crate::auth::from_options(&opts).expect("authenticator builds");
    let addr: SocketAddr = "127.0.0.1:4222".parse().unwrap();
    let broker = Arc::new(Broker::new(opts, addr, crate::broker::ServerIdentity::new(None).unwrap()));
    broker.configure_accounts(&broker.opts).expect("accounts configure");
    let guard = Guard::new(Arc::new(Verifier::new(1)), FailureThrottle::new(Duration::ZERO));
    let gate = Arc::new(Gate::new(authenticator, guard, Duration::from_secs(2)));
    (broker, gate)
}

/// A session of a fresh client of `broker`, at `now`.
pub(super) fn session_on(broker: &Arc<Broker>, gate: &Arc<Gate>, now: Instant) -> Session {
    let client = broker.register(broker.next_client_id(), "127.0.0.1:50000".parse().unwrap()).unwrap();
    Session::new(broker.clone(), gate.clone(), client, None, now)
}

/// A session of a fresh client on a broker configured by `config` (empty
/// for no auth), at `now`.
fn session_with(config: &str, now: Instant) -> (Session, Arc<Broker>, Arc<Gate>) {
    let (broker, gate) = broker_with(config);
    let session = session_on(&broker, &gate, now);
    (session, broker, gate)
}

const USERS: &str = r#"
authorization {
  users = [
    { user: alice, password: "alice-pw", permissions: { publish: ["orders.>"], subscribe: ["orders.*"] } }
    { user: bob, password: "bob-pw" }
  ]
}
"#;

/// Everything the session queued to its own client since the last call.
pub(super) fn sent(session: &Session) -> String {
    session.client().outbound.drain_text()
}

/// Feeds `input`, which must be handled entirely without an event.
pub(super) fn feed(session: &mut Session, input: &str, now: Instant) {
    let received = session.receive(input.as_bytes(), now);
    assert!(received.event.is_none(), "unexpected event {:?} for {input:?}", received.event);
    assert_eq!(received.used, input.len(), "all of {input:?} is used");
}

/// Logs in with the given user and password, answering the credential
/// check synchronously the way the gate would.
pub(super) fn log_in(
    session: &mut Session,
    gate: &Gate,
    user: &str,
    pass: &str,
    now: Instant,
) -> Result<(), CloseReason> {
    let connect = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\n"
    );
    let received = session.receive(connect.as_bytes(), now);
    assert_eq!(received.used, connect.len());
    let Some(Event::Authenticate(login)) = received.event else {
        panic!("CONNECT asks for its credentials to be checked, got {:?}", received.event)
    };
    session.authenticated(gate.authenticator().authenticate(&login.claims, &login.facts))
}

#[test]
fn without_auth_ops_work_before_connect_in_verbose_mode() {
    let now = Instant::now();
    let (mut s, _, _) = session_with("", now);
    feed(&mut s, "sub hello 10\r\npub hello 5\r\nworld\r\nPING\r\n", now);
    assert_eq!(sent(&s), "+OK\r\n+OK\r\nMSG hello 10 5\r\nworld\r\nPONG\r\n");
}

#[test]
fn with_auth_anything_before_connect_is_a_violation() {
    let now = Instant::now();
    let (mut s, _, _) = session_with(USERS, now);
    let received = s.receive(b"SUB foo 1\r\n", now);
    assert!(matches!(received.event, Some(Event::Close(CloseReason::AuthenticationFailure))));
    assert_eq!(sent(&s), "-ERR 'Authorization Violation'\r\n");
}

#[test]
fn auth_timeout_fires_at_the_deadline_only() {
    let start = Instant::now();
    let (mut s, broker, _) = session_with(USERS, start);
    assert_eq!(s.deadline(), start + Duration::from_secs(2));
    assert!(s.on_timer(start + Duration::from_millis(1999)).is_ok());
    assert_eq!(s.on_timer(start + Duration::from_secs(2)), Err(CloseReason::AuthenticationTimeout));
    assert_eq!(sent(&s), "-ERR 'Authentication Timeout'\r\n");
    assert_eq!(broker.security.auth_timeouts.load(Ordering::Relaxed), 1);
}

#[test]
fn a_login_lifts_the_auth_deadline_and_refuses_a_second_connect() {
    let start = Instant::now();
    let (mut s, broker, gate) = session_with(USERS, start);
    log_in(&mut s, &gate, "alice", "alice-pw", start).unwrap();
    assert_eq!(sent(&s), "");
    assert!(s.on_timer(start + Duration::from_secs(2)).is_ok(), "no auth timeout once logged in");
    assert_eq!(broker.security.auth_successes.load(Ordering::Relaxed), 1);
    let received = s.receive(b"CONNECT {\"user\":\"bob\",\"pass\":\"bob-pw\"}\r\n", start);
    assert!(matches!(received.event, Some(Event::Close(CloseReason::AuthenticationFailure))));
    assert!(sent(&s).ends_with("-ERR 'Authorization Violation'\r\n"));
}

#[test]
fn a_wrong_password_is_refused_and_counted() {
    let now = Instant::now();
    let (mut s, broker, gate) = session_with(USERS, now);
    assert_eq!(log_in(&mut s, &gate, "alice", "nope", now), Err(CloseReason::AuthenticationFailure));
    assert_eq!(sent(&s), "-ERR 'Authorization Violation'\r\n");
    assert_eq!(broker.security.auth_bad_credentials.load(Ordering::Relaxed), 1);
}

#[test]
fn permission_violations_keep_the_connection_open() {
    let now = Instant::now();
    let (mut s, broker, gate) = session_with(USERS, now);
    log_in(&mut s, &gate, "alice", "alice-pw", now).unwrap();
    feed(&mut s, "PUB admin.x 1\r\nx\r\nSUB orders.> 1\r\nSUB orders.new 2\r\nPUB orders.new 2\r\nhi\r\nPING\r\n", now);
    assert_eq!(
        sent(&s),
        "-ERR 'Permissions Violation for Publish to \"admin.x\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"orders.>\"'\r\n\
         MSG orders.new 2 2\r\nhi\r\nPONG\r\n"
    );
    let violations = broker.security.violations();
    assert_eq!(violations, vec![("alice".into(), "publish", 1), ("alice".into(), "subscribe", 1)]);
}

#[test]
fn keep_alive_pings_and_closes_a_stale_connection() {
    let start = Instant::now();
    let (mut s, _, _) = session_with("", start);
    let first = s.deadline();
    assert_eq!(first, start + Duration::from_secs(2), "the first PING measures the round trip");
    s.on_timer(first).unwrap();
    assert_eq!(sent(&s), "PING\r\n");
    feed(&mut s, "PONG\r\n", first + Duration::from_millis(7));
    assert_eq!(s.client().rtt_nanos.load(Ordering::Relaxed), 7_000_000);
    // The client spoke (PONG) in this interval and the RTT is known: no PING.
    let interval = Duration::from_secs(120);
    let mut at = s.deadline();
    assert_eq!(at, first + interval);
    s.on_timer(at).unwrap();
    assert_eq!(sent(&s), "");
    // Silent from now on: a PING each interval, stale after ping_max (2).
    at += interval;
    s.on_timer(at).unwrap();
    at += interval;
    s.on_timer(at).unwrap();
    assert_eq!(sent(&s), "PING\r\nPING\r\n");
    assert_eq!(s.on_timer(at + interval), Err(CloseReason::StaleConnection));
    assert_eq!(sent(&s), "-ERR 'Stale Connection'\r\n");
}

#[test]
fn a_reload_is_applied_before_the_next_batch() {
    let now = Instant::now();
    let (mut s, _, gate) = session_with(USERS, now);
    log_in(&mut s, &gate, "bob", "bob-pw", now).unwrap();
    feed(&mut s, "SUB orders.new 1\r\n", now);
    // A reload removes bob; the task has not seen the signal yet.
    let opts = crate::config::load_str(
        "authorization { users = [ { user: alice, password: \"alice-pw\" } ] }",
        "reloaded.conf",
    )
    .unwrap()
    .options;
    gate.replace(crate::auth::from_options(&opts).unwrap());
    let received = s.receive(b"PUB orders.new 1\r\nx\r\n", now);
    assert!(matches!(received.event, Some(Event::Close(CloseReason::UserRemoved))));
    assert_eq!(received.used, 0, "nothing of the batch is handled under the old rules");
    assert_eq!(sent(&s), "-ERR 'Authorization Violation'\r\n");
}

#[test]
fn a_bad_connect_closes_with_nats_errors() {
    let now = Instant::now();
    for (connect, reason, line) in [
        ("CONNECT {\"protocol\":2}\r\n", CloseReason::BadClientProtocolVersion, "-ERR 'invalid client protocol'\r\n"),
        (
            "CONNECT {\"no_responders\":true}\r\n",
            CloseReason::NoRespondersRequiresHeaders,
            "-ERR 'no responders requires headers support'\r\n",
        ),
        (
            "CONNECT {\"verbose\":7}\r\n",
            CloseReason::ProtocolViolation,
            "-ERR 'Protocol Violation: CONNECT is not valid JSON for its fields'\r\n",
        ),
    ] {
        let (mut s, _, _) = session_with("", now);
        let received = s.receive(connect.as_bytes(), now);
        assert!(matches!(received.event, Some(Event::Close(r)) if r == reason), "{connect}");
        assert_eq!(sent(&s), line);
    }
}

/// An idle connection's memory is mostly its task (the session and the
/// driver's loop), its writer's task and its [`Client`]: the bounds pin
/// what an idle TCP connection costs (4.8 KB of RSS in a release build,
/// docs/benchmarks.md) against a large rarely used state (a credential
/// check's future, 3 KiB; TLS facts; the response tracker) slipping back
/// in inline. Measured in the build the tests run in, with some room.
#[tokio::test]
async fn an_idle_connection_stays_small() {
    use std::mem::{size_of, size_of_val};
    let (broker, gate) = broker_with("");
    let session = session_on(&broker, &gate, Instant::now());
    let client = session.client().clone();
    let (stream, _peer) = tokio::io::duplex(64);
    let start = crate::conn::Start { greeting: crate::conn::Greeting::Sent, nonce: None, cookie_jwt: None };
    let task = crate::conn::run_connection(broker.clone(), gate.clone(), stream, client.clone(), start.clone());
    // As the WebSocket listener passes it: boxed, or the task holds it twice.
    let ws = Box::new(crate::conn::WsStream::new(tokio::io::duplex(64).0, 1024, false));
    let ws_task = crate::conn::run_connection(broker.clone(), gate.clone(), ws, client.clone(), start);
    let (_, writer) = tokio::io::split(tokio::io::duplex(64).0);
    let writer = crate::conn::write_loop(client.clone(), writer, Duration::from_secs(1));
    let sizes = [
        ("the connection's task", size_of_val(&task), 1800),
        ("a WebSocket connection's task", size_of_val(&ws_task), 1800),
        ("its writer's task", size_of_val(&writer), 450),
        ("its client", size_of::<Client>(), 600),
        ("its session", size_of::<Session>(), 700),
    ];
    for (what, size, bound) in sizes {
        eprintln!("{what}: {size} bytes");
        assert!(size <= bound, "{what} takes {size} bytes, over {bound}");
    }
}
