//! The route session driven directly: bytes and instants in, the bytes it
//! queued out. No socket, no runtime, no sleep.
#![allow(clippy::disallowed_methods)] // Tests pick their own instants from the real clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use super::*;
use crate::auth::{FailureThrottle, Guard, Verifier};
use crate::config::{ClusterOptions, Options, RouteAuthorization};

/// A cluster of a fresh broker, with route credentials when `password` is
/// given, and no listener.
fn cluster(password: Option<&str>) -> Arc<Cluster> {
    cluster_with(password, None)
}

/// The same, with route permissions.
fn cluster_with(password: Option<&str>, permissions: Option<crate::config::RoutePermissions>) -> Arc<Cluster> {
    let addr: SocketAddr = "127.0.0.1:4222".parse().unwrap();
    let opts = Options { ping_max: 2, ..Options::default() };
    let broker = Arc::new(Broker::new(opts, addr, crate::broker::ServerIdentity::new(None).unwrap()));
    broker.configure_accounts(&broker.opts).unwrap();
    let guard = Guard::new(Arc::new(Verifier::new(1)), FailureThrottle::new(Duration::ZERO));
    let cluster_opts = ClusterOptions {
        name: Some("c1".into()),
        authorization: password.map(|p| RouteAuthorization {
            user: "ruser".into(),
            password: Some(Secret::new(p)),
            timeout: None,
        }),
        allow_unauthenticated: password.is_none(),
        port: 6222,
        permissions,
        ..ClusterOptions::default()
    };
    Cluster::new(broker, guard, cluster_opts, "127.0.0.1:6222".parse().unwrap()).unwrap()
}

/// A session the peer dialled, at `now`.
fn accepted(cluster: &Arc<Cluster>, now: Instant) -> RouteSession {
    let client = Arc::new(Client::with_kind(
        cluster.broker.next_client_id(),
        "127.0.0.1:50000".parse().unwrap(),
        1 << 20,
        crate::broker::ClientKind::Route,
    ));
    let slot = cluster.pending.admit(client.addr.ip(), true).unwrap();
    let accepted = Accepted { slot, deadline: now + cluster.auth_timeout(), certificate: None };
    RouteSession::new(cluster.clone(), client, None, Some(accepted), now)
}

/// Everything the session queued to the peer since the last call.
fn sent(session: &RouteSession) -> String {
    session.client().outbound.drain_text()
}

/// Feeds `input`, which must be handled entirely without an event.
fn feed(session: &mut RouteSession, input: &str, now: Instant) {
    let received = session.receive(input.as_bytes(), now);
    assert!(received.event.is_none(), "unexpected event {:?} for {input:?}", received.event);
    assert_eq!(received.used, input.len(), "all of {input:?} is used");
}

/// Feeds `input` and expects the session to close.
fn closes(session: &mut RouteSession, input: &str, now: Instant) -> CloseReason {
    match session.receive(input.as_bytes(), now).event {
        Some(Event::Close(reason)) => reason,
        other => panic!("expected a close for {input:?}, got {other:?}"),
    }
}

fn info(id: &str) -> String {
    format!("INFO {{\"server_id\":\"{id}\",\"cluster\":\"c1\",\"port\":6223}}\r\n")
}

const CONNECT: &str = "CONNECT {\"user\":\"ruser\",\"pass\":\"secret\",\"cluster\":\"c1\"}\r\n";

#[test]
fn the_handshake_is_connect_then_credentials_then_info() {
    let cluster = cluster(Some("secret"));
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    assert!(sent(&s).starts_with("INFO {"), "this server's INFO goes first");
    let login = match s.receive(CONNECT.as_bytes(), now).event {
        Some(Event::Authenticate(login)) => login,
        other => panic!("expected a credential check, got {other:?}"),
    };
    assert_eq!(login.user.as_deref(), Some("ruser"));
    assert_eq!(login.pass.as_ref().map(Secret::expose), Some("secret"));
    s.authenticated(true).unwrap();
    assert_eq!(cluster.pending_routes(), 0, "an authenticated route no longer holds a pending slot");
    feed(&mut s, &info("NPEER"), now);
    assert!(cluster.has_route("NPEER"));
    s.finish();
    assert!(!cluster.has_route("NPEER"), "a closed route leaves the cluster");
    assert_eq!(s.end(), RouteEnd::Closed { registered: true });
}

#[test]
fn info_before_connect_is_an_authorization_violation() {
    let cluster = cluster(Some("secret"));
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    sent(&s);
    assert_eq!(closes(&mut s, &info("NPEER"), now), CloseReason::AuthenticationFailure);
    assert_eq!(sent(&s), "-ERR 'Authorization Violation'\r\n");
    assert!(!cluster.has_route("NPEER"));
}

#[test]
fn interest_and_messages_before_the_handshake_are_refused() {
    let cluster = cluster(Some("secret"));
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    sent(&s);
    assert_eq!(closes(&mut s, "RS+ $G foo\r\n", now), CloseReason::ProtocolViolation);
    assert_eq!(sent(&s), "-ERR 'interest before route handshake'\r\n");
    let mut s = accepted(&cluster, now);
    sent(&s);
    assert_eq!(closes(&mut s, "RMSG $G foo 1\r\nx\r\n", now), CloseReason::ProtocolViolation);
    assert_eq!(sent(&s), "-ERR 'message before route handshake'\r\n");
}

#[test]
fn wrong_credentials_a_client_and_another_cluster_are_refused() {
    let cluster = cluster(Some("secret"));
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    assert!(matches!(s.receive(CONNECT.as_bytes(), now).event, Some(Event::Authenticate(_))));
    sent(&s);
    assert_eq!(s.authenticated(false), Err(CloseReason::AuthenticationFailure));
    assert_eq!(sent(&s), "-ERR 'Authorization Violation'\r\n");

    let mut s = accepted(&cluster, now);
    sent(&s);
    closes(&mut s, "CONNECT {\"lang\":\"go\"}\r\n", now);
    assert_eq!(sent(&s), "-ERR 'attempted to connect to route port'\r\n");

    let mut s = accepted(&cluster, now);
    sent(&s);
    closes(&mut s, "CONNECT {\"cluster\":\"other\"}\r\n", now);
    assert_eq!(sent(&s), "-ERR 'Rejecting connection, cluster name \"other\" does not match \"c1\"'\r\n");

    let mut s = accepted(&cluster, now);
    sent(&s);
    closes(&mut s, "CONNECT {not json}\r\n", now);
    assert_eq!(sent(&s), "-ERR 'Protocol Violation: route CONNECT is not valid JSON'\r\n");
}

#[test]
fn no_connect_within_the_auth_timeout_is_refused_at_that_instant() {
    let cluster = cluster(Some("secret"));
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    sent(&s);
    let deadline = now + cluster.auth_timeout();
    assert!(s.deadline() <= deadline);
    let mut at = s.deadline();
    while at < deadline {
        s.on_timer(at).expect("nothing closes before the auth timeout");
        at = s.deadline().max(at + Duration::from_millis(1)).min(deadline);
    }
    assert_eq!(s.on_timer(deadline), Err(CloseReason::AuthenticationTimeout));
    assert!(sent(&s).ends_with("-ERR 'Authentication Timeout'\r\n"));
}

#[test]
fn a_silent_route_is_stale_at_exactly_the_ping_limit() {
    let cluster = cluster(None);
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    feed(&mut s, "CONNECT {\"cluster\":\"c1\"}\r\n", now);
    feed(&mut s, &info("NPEER"), now);
    sent(&s);
    // ping_max is 2: two PINGs go unanswered, the third tick is stale.
    let first = s.deadline();
    assert_eq!(first, now + FIRST_PEER_PING);
    s.on_timer(first).unwrap();
    assert_eq!(sent(&s), "PING\r\n");
    let second = s.deadline();
    s.on_timer(second).unwrap();
    assert_eq!(sent(&s), "PING\r\n");
    let third = s.deadline();
    s.on_timer(third - Duration::from_millis(1)).expect("not stale before the tick");
    assert_eq!(s.on_timer(third), Err(CloseReason::StaleConnection));
}

#[test]
fn a_pong_keeps_the_route_and_measures_its_round_trip() {
    let cluster = cluster(None);
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    feed(&mut s, "CONNECT {}\r\n", now);
    feed(&mut s, &info("NPEER"), now);
    let first = s.deadline();
    s.on_timer(first).unwrap();
    feed(&mut s, "PONG\r\n", first + Duration::from_millis(3));
    assert_eq!(s.client().rtt_nanos.load(Ordering::Relaxed), 3_000_000);
    for _ in 0..5 {
        let next = s.deadline();
        s.on_timer(next).unwrap();
        feed(&mut s, "PONG\r\n", next);
    }
}

#[test]
fn a_second_route_claiming_the_same_server_is_a_duplicate() {
    let cluster = cluster(None);
    let now = Instant::now();
    let mut first = accepted(&cluster, now);
    feed(&mut first, "CONNECT {}\r\n", now);
    feed(&mut first, &info("NPEER"), now);
    let mut second = accepted(&cluster, now);
    feed(&mut second, "CONNECT {}\r\n", now);
    // Both were dialled by the peer: the newcomer does not win the tie-break.
    assert_eq!(closes(&mut second, &info("NPEER"), now), CloseReason::ProtocolViolation);
    assert_eq!(second.end(), RouteEnd::Duplicate("NPEER".into()));
    assert!(cluster.has_route("NPEER"), "the first route stays");
    assert_eq!(cluster.route_count(), 1);
}

#[test]
fn an_info_with_this_servers_id_is_a_route_to_itself() {
    let cluster = cluster(None);
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    feed(&mut s, "CONNECT {}\r\n", now);
    let own = cluster.broker.identity.id.clone();
    closes(&mut s, &info(&own), now);
    assert_eq!(s.end(), RouteEnd::ToSelf);
}

#[test]
fn interest_is_bounded_in_bytes_and_refused_past_it() {
    let cluster = cluster(None);
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    feed(&mut s, "CONNECT {}\r\n", now);
    feed(&mut s, &info("NPEER"), now);
    sent(&s);
    let long = "x".repeat(60_000);
    let fits = MAX_REMOTE_INTEREST_BYTES / (long.len() + 10);
    for i in 0..fits {
        feed(&mut s, &format!("RS+ $G {long}.{i}\r\n"), now);
    }
    assert_eq!(closes(&mut s, &format!("RS+ $G {long}.last.{fits}\r\n"), now), CloseReason::ProtocolViolation);
    assert_eq!(sent(&s), "-ERR 'too much route interest'\r\n");
    s.finish();
    assert_eq!(cluster.broker.subscription_count(), 0, "the route's interest leaves the index with it");
}

#[test]
fn messages_reach_local_subscribers_and_are_counted_per_batch() {
    let cluster = cluster(None);
    let now = Instant::now();
    let broker = cluster.broker.clone();
    let subscriber = broker.register(broker.next_client_id(), "127.0.0.1:50001".parse().unwrap()).unwrap();
    let account = broker.accounts.global().clone();
    broker.add_subscription(Arc::new(Subscription::new(subscriber.clone(), account, b"orders.>", None, b"1", None)));
    let mut s = accepted(&cluster, now);
    feed(&mut s, "CONNECT {}\r\n", now);
    feed(&mut s, &info("NPEER"), now);
    feed(&mut s, "RMSG $G orders.1 2\r\nhi\r\nRMSG $G orders.2 3\r\nyou\r\nRMSG $G other 1\r\nx\r\n", now);
    assert_eq!(s.client().stats.in_msgs.load(Ordering::Relaxed), 0, "counted at the end of the batch");
    assert!(s.end_batch().is_empty());
    assert_eq!(s.client().stats.in_msgs.load(Ordering::Relaxed), 3);
    assert_eq!(s.client().stats.in_bytes.load(Ordering::Relaxed), 6);
    let mut batch = VecDeque::new();
    subscriber.outbound.take(&mut batch);
    let bytes: Vec<u8> = batch.iter().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(String::from_utf8_lossy(&bytes), "MSG orders.1 1 2\r\nhi\r\nMSG orders.2 1 3\r\nyou\r\n");
}

/// A peer's first INFO with nats-server 2.10+'s pool fields.
fn pooled_info(id: &str, fields: &str) -> String {
    format!("INFO {{\"server_id\":\"{id}\",\"cluster\":\"c1\",\"port\":6223,\"route_pool_size\":3{fields}}}\r\n")
}

/// An accepted connection past CONNECT, its INFO sent and drained.
fn connected(cluster: &Arc<Cluster>, now: Instant) -> RouteSession {
    let mut s = accepted(cluster, now);
    feed(&mut s, "CONNECT {}\r\n", now);
    sent(&s);
    s
}

#[test]
fn a_pooling_peer_places_each_connection_and_a_pinned_account_gets_its_own() {
    let cluster = cluster(None);
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    assert!(sent(&s).contains("\"route_pool_size\":3"), "this server says it pools");
    feed(&mut s, "CONNECT {}\r\n", now);
    feed(&mut s, &pooled_info("NPEER", ",\"route_pool_idx\":2"), now);
    let mut sys = connected(&cluster, now);
    feed(&mut sys, &pooled_info("NPEER", ",\"route_account\":\"$SYS\""), now);
    let mut slots: Vec<String> = cluster.routes().iter().map(|l| format!("{:?}", l.slot)).collect();
    slots.sort();
    assert_eq!(slots, ["Account(\"$SYS\")", "Pool(2)"]);
    assert_eq!(cluster.route_count(), 1, "one peer");

    // The pinned connection's ops name no account: they are $SYS's.
    feed(&mut sys, "RS+ $SYS.REQ.SERVER.PING\r\n", now);
    let system = cluster.broker.accounts.get("$SYS").unwrap();
    assert!(system.router.subscriptions().iter().any(|sub| &*sub.subject == b"$SYS.REQ.SERVER.PING"));
    sys.finish();
    assert_eq!(cluster.routes().len(), 1, "the pool connection stays");
    s.finish();
    assert!(!cluster.has_route("NPEER"));
}

#[test]
fn pool_places_and_pinned_accounts_outside_the_rules_are_refused_with_nats_servers_words() {
    let cluster = cluster(None);
    let now = Instant::now();
    for (fields, says) in [
        (",\"route_pool_idx\":3", "-ERR 'Invalid route pool index: 3 - pool size is 3'\r\n"),
        (",\"route_pool_idx\":-1", "-ERR 'Invalid route pool index: -1 - pool size is 3'\r\n"),
        (",\"route_account\":\"OTHER\"", "-ERR 'No route for account \"OTHER\"'\r\n"),
    ] {
        let mut s = connected(&cluster, now);
        assert_eq!(closes(&mut s, &pooled_info("NPEER", fields), now), CloseReason::ProtocolViolation);
        assert_eq!(sent(&s), says);
    }
    let mut s = connected(&cluster, now);
    let huge = "INFO {\"server_id\":\"NPEER\",\"cluster\":\"c1\",\"route_pool_size\":100000}\r\n";
    closes(&mut s, huge, now);
    assert!(sent(&s).contains("route pool size 100000 is larger than warden's 32"));
    // A peer that does not pool cannot have a pinned account's connection.
    let mut s = connected(&cluster, now);
    let old = "INFO {\"server_id\":\"NPEER\",\"cluster\":\"c1\",\"route_account\":\"$SYS\"}\r\n";
    closes(&mut s, old, now);
    assert_eq!(
        sent(&s),
        "-ERR 'Not possible to have a dedicated route for account \"$SYS\" between those servers'\r\n"
    );
    assert!(!cluster.has_route("NPEER"));
}

/// `import: "orders.>"`, `export: { allow: "out.>", deny: "out.secret" }`.
fn with_permissions() -> Arc<Cluster> {
    let rules = |allow: &str, deny: Option<&str>| {
        Some(crate::config::SubjectRules {
            allow: Some(vec![allow.to_owned()]),
            deny: deny.map(|d| vec![d.to_owned()]),
            literal: None,
        })
    };
    let perms =
        crate::config::RoutePermissions { import: rules("orders.>", None), export: rules("out.>", Some("out.secret")) };
    cluster_with(None, Some(perms))
}

#[test]
fn a_message_not_imported_is_dropped() {
    let cluster = with_permissions();
    let now = Instant::now();
    let broker = cluster.broker.clone();
    let subscriber = broker.register(broker.next_client_id(), "127.0.0.1:50001".parse().unwrap()).unwrap();
    let account = broker.accounts.global().clone();
    broker.add_subscription(Arc::new(Subscription::new(subscriber.clone(), account, b">", None, b"1", None)));
    let mut s = accepted(&cluster, now);
    feed(&mut s, "CONNECT {}\r\n", now);
    feed(&mut s, &info("NPEER"), now);
    feed(&mut s, "RMSG $G other 1\r\nx\r\nRMSG $G orders.1 2\r\nhi\r\n", now);
    let _ = s.end_batch();
    let mut batch = VecDeque::new();
    subscriber.outbound.take(&mut batch);
    let bytes: Vec<u8> = batch.iter().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(String::from_utf8_lossy(&bytes), "MSG orders.1 1 2\r\nhi\r\n");
}

#[test]
fn interest_not_exported_is_ignored_and_an_overlap_filtered() {
    let cluster = with_permissions();
    let now = Instant::now();
    let mut s = accepted(&cluster, now);
    feed(&mut s, "CONNECT {}\r\n", now);
    feed(&mut s, &info("NPEER"), now);
    feed(&mut s, "RS+ $G nope\r\nRS+ $G out.secret\r\nRS+ $G >\r\nRS+ $G out.*\r\n", now);
    let subs = cluster.broker.accounts.global().router.subscriptions();
    let held: Vec<&[u8]> = subs.iter().map(|s| &*s.subject).collect();
    assert_eq!(held, vec![&b"out.*"[..]]);
    let filter = subs[0].filter.as_ref().expect("out.* overlaps the deny");
    assert!(filter.denies(b"out.secret") && !filter.denies(b"out.public"));
    // The peer's UNSUB of interest that was ignored changes nothing.
    feed(&mut s, "RS- $G nope\r\n", now);
    assert_eq!(cluster.broker.accounts.global().router.subscriptions().len(), 1);
}

#[test]
fn only_imported_local_interest_is_announced() {
    use crate::broker::InterestObserver;
    let cluster = with_permissions();
    let now = Instant::now();
    let broker = cluster.broker.clone();
    let subscriber = broker.register(broker.next_client_id(), "127.0.0.1:50001".parse().unwrap()).unwrap();
    let account = broker.accounts.global().clone();
    let sub =
        |subject: &[u8]| Arc::new(Subscription::new(subscriber.clone(), account.clone(), subject, None, b"1", None));
    // Before the route: sent with the initial interest.
    cluster.interest_added(&sub(b"orders.1"));
    cluster.interest_added(&sub(b"other"));
    let mut s = accepted(&cluster, now);
    feed(&mut s, "CONNECT {}\r\n", now);
    feed(&mut s, &info("NPEER"), now);
    let first = sent(&s);
    assert!(first.contains("RS+ $G orders.1"), "{first}");
    assert!(!first.contains("RS+ $G other"), "{first}");
    // After: as it comes and goes.
    let (imported, not) = (sub(b"orders.>"), sub(b">"));
    cluster.interest_added(&imported);
    cluster.interest_added(&not);
    cluster.interest_removed(&not);
    cluster.interest_removed(&imported);
    assert_eq!(sent(&s), "RS+ $G orders.>\r\nRS- $G orders.>\r\n");
}

#[test]
fn a_peer_refusing_our_login_after_its_info_is_a_failed_dial() {
    let cluster = cluster(Some("secret"));
    let now = Instant::now();
    let client = Arc::new(Client::with_kind(
        cluster.broker.next_client_id(),
        "127.0.0.1:6223".parse().unwrap(),
        1 << 20,
        crate::broker::ClientKind::Route,
    ));
    let url = RouteUrl::parse("nats-route://127.0.0.1:6223").unwrap();
    let mut s = RouteSession::new(cluster.clone(), client, Some((url, Target::Pool(None))), None, now);
    // The accepting side's INFO comes first and makes the route look up ...
    feed(&mut s, &info("NPEER"), now);
    // ... then it checks our CONNECT and refuses it.
    closes(&mut s, "-ERR 'Authorization Violation'\r\n", now);
    s.finish();
    assert_eq!(s.end(), RouteEnd::Closed { registered: false }, "counted as a failed dial");
}
