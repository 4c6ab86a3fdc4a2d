//! The leaf session driven directly: bytes and instants in, the bytes it
//! queued out. No socket, no runtime, no sleep.
#![allow(clippy::disallowed_methods)] // Tests pick their own instants from the real clock.

use std::time::Duration;

use super::*;
use crate::config::{LeafnodeOptions, Options, Permissions, SubjectRules};
use crate::perms::PermissionSet;

/// A hub of a fresh broker (no listener, no login needed).
fn hub() -> Arc<Hub> {
    hub_with(LeafnodeOptions { allow_unauthenticated: true, ..LeafnodeOptions::default() })
}

fn hub_with(leaf_opts: LeafnodeOptions) -> Arc<Hub> {
    hub_on(Options { ping_max: 2, max_control_line: 256, ..Options::default() }, leaf_opts)
}

/// A hub of a fresh broker with `opts`, observing its interest.
fn hub_on(opts: Options, leaf_opts: LeafnodeOptions) -> Arc<Hub> {
    harness::hub_on(opts, leaf_opts).unwrap()
}

/// A leaf connection accepted at `now`.
fn accepted(hub: &Arc<Hub>, now: Instant) -> LeafSession {
    harness::accept(hub, hub.broker.next_client_id(), now).unwrap()
}

/// Everything the session queued to the leaf since the last call.
fn sent(session: &LeafSession) -> String {
    session.client().outbound.drain_text()
}

/// Feeds `input`, which must be handled entirely without an event.
fn feed(session: &mut LeafSession, input: &str, now: Instant) {
    let received = session.receive(input.as_bytes(), now);
    assert!(received.event.is_none(), "unexpected event for {input:?}: {:?}", received.event);
    assert_eq!(received.used, input.len(), "all of {input:?} is used");
}

/// Feeds `input` and expects the session to close.
fn closes(session: &mut LeafSession, input: &str, now: Instant) -> CloseReason {
    match session.receive(input.as_bytes(), now).event {
        Some(Event::Close(reason)) => reason,
        other => panic!("expected a close for {input:?}, got {other:?}"),
    }
}

/// A leaf that logged in as `identity`.
fn logged_in(hub: &Arc<Hub>, identity: Identity, now: Instant) -> LeafSession {
    let mut s = accepted(hub, now);
    match s
        .receive(b"CONNECT {\"user\":\"leaf\",\"pass\":\"pw\",\"server_id\":\"NLEAF\",\"headers\":true}\r\n", now)
        .event
    {
        Some(Event::Authenticate(login)) => {
            assert_eq!(login.claims.user.as_deref(), Some("leaf"));
            assert_eq!(login.facts.connection, ConnectionType::Leafnode);
            assert!(login.facts.nonce.is_some(), "a leaf is always sent a nonce");
        }
        other => panic!("expected a login, got {other:?}"),
    }
    s.authenticated(Verdict::Accept(identity)).unwrap();
    s
}

fn anyone() -> Identity {
    Identity::global(Some("leaf".into()), Arc::new(PermissionSet::unrestricted()), 0)
}

fn restricted() -> Identity {
    let rules = |allow: &[&str]| {
        Some(SubjectRules { allow: Some(allow.iter().map(|s| s.to_string()).collect()), deny: None, literal: None })
    };
    let perms = Permissions { publish: rules(&["up.>"]), subscribe: rules(&["down.>"]), allow_responses: None };
    Identity::global(Some("leaf".into()), Arc::new(PermissionSet::compile(&perms).unwrap()), 0)
}

#[test]
fn the_greeting_has_what_a_nats_server_leaf_requires() {
    let hub = hub();
    let s = accepted(&hub, Instant::now());
    let greeting = sent(&s);
    let json: serde_json::Value = serde_json::from_str(greeting.trim_start_matches("INFO ").trim_end()).unwrap();
    assert!(json["client_id"].as_u64().unwrap() > 0);
    assert!(json["leafnode_urls"].is_array(), "without the array a nats-server leaf says wrong port");
    assert!(!json["nonce"].as_str().unwrap().is_empty());
    assert_eq!(json["auth_required"], true);
    assert!(json.get("compression").is_none(), "no compression is offered");
}

#[test]
fn after_login_the_leaf_is_told_its_account_then_the_interest_and_the_loop_subject() {
    let hub = hub();
    let now = Instant::now();
    let mut s = logged_in(&hub, anyone(), now);
    let out = sent(&s);
    let mut lines = out.lines().skip(1);
    let info = lines.next().unwrap();
    assert!(info.contains("\"connect_info\":true") && info.contains("\"remote_account\":\"$G\""), "{info}");
    assert_eq!(lines.next().unwrap(), format!("LS+ {}", String::from_utf8_lossy(&hub.loop_subject)));
    assert_eq!(hub.pending.count(), 0, "a logged-in leaf no longer holds a pending slot");
    s.finish(CloseReason::ClientClosed);
    assert!(hub.leafs().is_empty());
}

#[test]
fn nothing_but_connect_ping_pong_and_info_before_the_login() {
    let hub = hub();
    let now = Instant::now();
    for early in ["LS+ foo\r\n", "LMSG foo 2\r\n", "LS- foo\r\n", "SUB foo 1\r\n"] {
        let mut s = accepted(&hub, now);
        sent(&s);
        assert_eq!(closes(&mut s, early, now), CloseReason::AuthenticationFailure, "{early}");
        assert_eq!(sent(&s), "-ERR 'Authorization Violation'\r\n");
    }
    let mut s = accepted(&hub, now);
    feed(&mut s, "INFO {}\r\nPING\r\n", now);
    assert!(sent(&s).ends_with("PONG\r\n"));
}

#[test]
fn an_overlong_line_before_the_login_is_refused_before_it_completes() {
    let hub = hub();
    let now = Instant::now();
    let mut s = accepted(&hub, now);
    sent(&s);
    let long = format!("CONNECT {{\"name\":\"{}", "x".repeat(300));
    assert_eq!(closes(&mut s, &long, now), CloseReason::ProtocolViolation);
    assert_eq!(sent(&s), "-ERR 'Maximum Control Line Exceeded'\r\n");
}

#[test]
fn clients_gateways_and_second_connects_are_refused() {
    let hub = hub();
    let now = Instant::now();
    let cases = [
        ("CONNECT {\"lang\":\"go\"}\r\n", "-ERR 'attempted to connect to leaf node port'\r\n"),
        ("CONNECT {\"gateway\":\"B\"}\r\n", "-ERR 'attempted to connect to leaf node port from a gateway'\r\n"),
        ("CONNECT {\"user\":\r\n", "-ERR 'Protocol Violation: leafnode CONNECT is not valid JSON'\r\n"),
    ];
    for (connect, err) in cases {
        let mut s = accepted(&hub, now);
        sent(&s);
        closes(&mut s, connect, now);
        assert_eq!(sent(&s), err);
    }
    let mut s = logged_in(&hub, anyone(), now);
    sent(&s);
    assert_eq!(closes(&mut s, "CONNECT {}\r\n", now), CloseReason::AuthenticationFailure);
}

#[test]
fn a_refused_login_and_a_silent_leaf_are_closed() {
    let hub = hub();
    let now = Instant::now();
    let mut s = accepted(&hub, now);
    sent(&s);
    assert!(matches!(s.receive(b"CONNECT {}\r\n", now).event, Some(Event::Authenticate(_))));
    let refused = s.authenticated(Verdict::Refuse(crate::auth::RefusalReason::BadCredentials));
    assert_eq!(refused, Err(CloseReason::AuthenticationFailure));
    assert_eq!(sent(&s), "-ERR 'Authorization Violation'\r\n");
    let mut s = accepted(&hub, now);
    sent(&s);
    let auth_deadline = now + Duration::from_secs(2);
    assert!(s.deadline() <= auth_deadline);
    assert_eq!(s.on_timer(auth_deadline - Duration::from_millis(1)), Ok(()));
    sent(&s);
    assert_eq!(s.on_timer(auth_deadline), Err(CloseReason::AuthenticationTimeout));
    assert_eq!(sent(&s), "-ERR 'Authentication Timeout'\r\n");
}

#[test]
fn a_forbidden_lmsg_is_refused_and_not_delivered_and_an_allowed_one_is() {
    let hub = hub();
    let now = Instant::now();
    let mut s = logged_in(&hub, restricted(), now);
    let answer = sent(&s);
    let answer = answer.lines().nth(1).unwrap();
    assert!(answer.contains("\"import\":{\"allow\":[\"down.>\"]}"), "{answer}");
    assert!(answer.contains("\"export\":{\"allow\":[\"up.>\"]}"), "{answer}");
    let mut other = logged_in(&hub, anyone(), now);
    feed(&mut other, "LS+ >\r\n", now);
    sent(&s);
    sent(&other);
    feed(&mut s, "LMSG secret.x 2\r\nhi\r\nLMSG up.x 2\r\nok\r\n", now);
    s.end_batch();
    assert_eq!(sent(&s), "-ERR 'Permissions Violation for Publish to \"secret.x\"'\r\n");
    assert_eq!(sent(&other), "LMSG up.x 2\r\nok\r\n", "only the allowed message crossed");
}

#[test]
fn forbidden_interest_is_refused_and_allowed_interest_reaches_other_leafs_but_not_back() {
    let hub = hub();
    let now = Instant::now();
    let mut s = logged_in(&hub, restricted(), now);
    let other = logged_in(&hub, anyone(), now);
    sent(&s);
    sent(&other);
    feed(&mut s, "LS+ secret.>\r\nLS+ down.x q 1\r\n", now);
    assert_eq!(sent(&s), "-ERR 'Permissions Violation for Subscription to \"secret.>\"'\r\n");
    assert_eq!(sent(&other), "LS+ down.x q 1\r\n");
    feed(&mut s, "LS- down.x q\r\n", now);
    assert_eq!(sent(&other), "LS- down.x q\r\n");
    assert_eq!(sent(&s), "", "a leaf never hears of its own interest");
}

#[test]
fn interest_in_the_system_space_from_outside_it_is_dropped_quietly() {
    let hub = hub();
    let now = Instant::now();
    let mut s = logged_in(&hub, anyone(), now);
    sent(&s);
    feed(&mut s, "LS+ $SYS.REQ.USER.INFO\r\nLS+ $SYS.ACCOUNT.>\r\n", now);
    assert_eq!(sent(&s), "");
    assert!(s.interest.is_empty());
    // The requests every server answers about the account are the
    // leaf's server's to answer too.
    feed(&mut s, "LS+ $SYS.REQ.ACCOUNT.PING.CONNZ\r\n", now);
    assert_eq!(sent(&s), "");
    assert_eq!(s.interest.len(), 1);
}

#[test]
fn this_servers_own_loop_subject_coming_back_closes_the_loop() {
    let hub = hub();
    let now = Instant::now();
    let mut s = logged_in(&hub, anyone(), now);
    sent(&s);
    let line = format!("LS+ {}\r\n", String::from_utf8_lossy(&hub.loop_subject));
    assert_eq!(closes(&mut s, &line, now), CloseReason::ProtocolViolation);
    assert_eq!(sent(&s), "-ERR 'Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s'\r\n");
}

#[test]
fn interest_is_bounded_per_leaf() {
    let hub = hub();
    let now = Instant::now();
    let mut s = logged_in(&hub, anyone(), now);
    sent(&s);
    let mut input = String::new();
    for i in 0..=MAX_LEAF_INTEREST {
        input.push_str(&format!("LS+ s.{i}\r\n"));
    }
    let mut neighbour = logged_in(&hub, anyone(), now);
    assert_eq!(closes(&mut s, &input, now), CloseReason::ProtocolViolation);
    assert!(sent(&s).ends_with("-ERR 'too much leafnode interest'\r\n"));
    feed(&mut neighbour, "LS+ mine.>\r\n", now);
    assert_eq!(neighbour.interest.len(), 1, "the bound is per leaf: the neighbour's interest is taken");
    s.finish(CloseReason::ProtocolViolation);
    assert_eq!(hub.broker.accounts.global().router.subscriptions().len(), 1, "its interest left with it");
}

#[test]
fn a_stale_leaf_is_closed_at_exactly_the_ping_limit() {
    let hub = hub();
    let now = Instant::now();
    let mut s = logged_in(&hub, anyone(), now);
    sent(&s);
    let mut at = s.deadline();
    for _ in 0..2 {
        s.on_timer(at).unwrap();
        assert_eq!(sent(&s), "PING\r\n");
        at = s.deadline();
    }
    assert_eq!(s.on_timer(at), Err(CloseReason::StaleConnection));
}

#[test]
fn a_wildcard_overlapping_a_deny_rule_never_carries_the_denied_subjects() {
    let hub = hub();
    let now = Instant::now();
    let deny = SubjectRules { allow: None, deny: Some(vec!["down.secret".into()]), literal: None };
    let perms = Permissions { publish: None, subscribe: Some(deny), allow_responses: None };
    let identity = Identity::global(Some("leaf".into()), Arc::new(PermissionSet::compile(&perms).unwrap()), 0);
    let mut s = logged_in(&hub, identity, now);
    let mut publisher = logged_in(&hub, anyone(), now);
    feed(&mut s, "LS+ down.*\r\n", now);
    sent(&s);
    feed(&mut publisher, "LMSG down.secret 1\r\nx\r\nLMSG down.open 1\r\ny\r\n", now);
    publisher.end_batch();
    assert_eq!(sent(&s), "LMSG down.open 1\r\ny\r\n");
}

/// A connection this server dialled to a hub, logging in with a seed and
/// refusing `secret.>` both ways.
fn solicited(hub: &Arc<Hub>, now: Instant) -> (LeafSession, crate::nkeys::PublicKey) {
    let client = Arc::new(Client::with_kind(
        hub.broker.next_client_id(),
        "127.0.0.1:7422".parse().unwrap(),
        1 << 20,
        crate::broker::ClientKind::Leaf,
    ));
    let rules = Arc::new(SpokeRules {
        account: "$G".into(),
        deny_imports: vec!["secret.>".into()],
        deny_exports: vec!["secret.>".into()],
    });
    let key = crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::User).unwrap();
    let public = key.public().clone();
    let login = SpokeLogin { as_hub: false, user: Some("leaf".into()), pass: None, jwt: None, key: Some(key) };
    (LeafSession::solicited(hub.clone(), client, rules, login, now), public)
}

#[test]
fn a_leaf_answers_the_hubs_info_with_a_signed_connect_and_drops_what_it_denies_quietly() {
    let hub = hub();
    let now = Instant::now();
    let (mut s, public) = solicited(&hub, now);
    assert_eq!(sent(&s), "", "a leaf waits for the hub's INFO");
    feed(&mut s, "INFO {\"server_id\":\"NHUB\",\"client_id\":7,\"nonce\":\"n0nce\",\"leafnode_urls\":[]}\r\n", now);
    let out = sent(&s);
    let connect: serde_json::Value =
        serde_json::from_str(out.lines().next().unwrap().trim_start_matches("CONNECT ")).unwrap();
    assert_eq!(connect["user"], "leaf");
    assert_eq!(connect["nkey"], public.as_str());
    let sig = crate::nkeys::decode_signature(connect["sig"].as_str().unwrap()).unwrap();
    assert!(public.verify(b"n0nce", &sig), "the nonce is signed with the seed");
    assert!(out.contains("LS+ $LDS."), "then the account's interest and the loop subject");
    feed(&mut s, "LS+ secret.x\r\nLMSG secret.y 1\r\nz\r\nLS+ open.x\r\n", now);
    assert_eq!(sent(&s), "", "no -ERR to a hub");
    assert_eq!(s.interest.len(), 1, "only the interest it may draw");
    assert!(!s.loop_detected());
    assert_eq!(closes(&mut s, "-ERR 'Loop detected for leafnode account=\"$G\"'\r\n", now), CloseReason::ClientClosed);
    assert!(s.loop_detected(), "the dialler then waits 30 s");
}

#[test]
fn an_info_without_a_client_id_is_not_a_leafnode_port() {
    let hub = hub();
    let now = Instant::now();
    let (mut s, _) = solicited(&hub, now);
    assert_eq!(closes(&mut s, "INFO {\"server_id\":\"NCLIENTPORT\"}\r\n", now), CloseReason::ProtocolViolation);
    assert_eq!(sent(&s), "", "no CONNECT to a client port");
}

#[test]
fn isolated_leafs_do_not_hear_of_each_others_interest_but_do_of_local_interest() {
    let hub = hub_with(LeafnodeOptions { isolate_leafnode_interest: true, ..LeafnodeOptions::default() });
    let now = Instant::now();
    let mut a = logged_in(&hub, anyone(), now);
    let b = logged_in(&hub, anyone(), now);
    sent(&a);
    sent(&b);
    feed(&mut a, "LS+ storm.>\r\n", now);
    assert_eq!(sent(&b), "", "one leaf's interest stays away from the others");
    let local = Arc::new(Client::new(hub.broker.next_client_id(), "127.0.0.1:1".parse().unwrap(), 1 << 20));
    let account = hub.broker.accounts.global();
    hub.broker.add_subscription(Arc::new(Subscription::new(local, account.clone(), b"storm.x", None, b"1", None)));
    assert_eq!(sent(&b), "LS+ storm.x\r\n", "local interest still reaches every leaf");
    assert_eq!(sent(&a), "LS+ storm.x\r\n");
}

#[test]
fn a_hubs_import_bounds_the_interest_it_is_told_of_and_its_export_what_it_may_draw() {
    let hub = hub();
    let now = Instant::now();
    let (mut s, _) = solicited(&hub, now);
    let local = Arc::new(Client::new(hub.broker.next_client_id(), "127.0.0.1:1".parse().unwrap(), 1 << 20));
    let account = hub.broker.accounts.global();
    for subject in [&b"a.x"[..], b"c.x"] {
        hub.broker.add_subscription(Arc::new(Subscription::new(
            local.clone(),
            account.clone(),
            subject,
            None,
            b"1",
            None,
        )));
    }
    feed(&mut s, "INFO {\"server_id\":\"NHUB\",\"client_id\":7,\"nonce\":\"n\",\"info_on_connect\":true,\"leafnode_urls\":[]}\r\n", now);
    let connect = sent(&s);
    assert!(
        connect.starts_with("CONNECT ") && !connect.contains("LS+"),
        "interest waits for the hub's answer: {connect}"
    );
    feed(&mut s, "INFO {\"connect_info\":true,\"client_id\":7,\"import\":{\"allow\":[\"a.>\"]},\"export\":{\"allow\":[\"up.>\"]}}\r\n", now);
    let told = sent(&s);
    assert!(told.contains("LS+ a.x\r\n") && !told.contains("c.x"), "only what the leaf user may receive: {told}");
    feed(&mut s, "LS+ down.>\r\nLS+ up.>\r\n", now);
    assert_eq!(s.interest.len(), 1, "the hub draws out only what its leaf user may publish");
}

#[test]
fn max_leafnodes_bounds_the_leafs_of_an_account_apart_from_its_clients() {
    let limits =
        crate::config::AccountLimits { max_leafnodes: Some(1), max_connections: Some(1), ..Default::default() };
    let account = crate::config::AccountConfig { name: "A".into(), limits, ..Default::default() };
    let hub = hub_on(Options { accounts: vec![account], ..Options::default() }, LeafnodeOptions::default());
    let broker = hub.broker.clone();
    let in_a = || Identity::new(Some("leaf".into()), "A".into(), Arc::new(PermissionSet::unrestricted()), 0);
    let now = Instant::now();
    let client_of_a = broker.accounts.get("A").unwrap();
    assert!(client_of_a.try_connect(), "a client holds the account's one client connection");
    let mut first = logged_in(&hub, in_a(), now);
    let mut second = accepted(&hub, now);
    sent(&second);
    assert!(matches!(second.receive(b"CONNECT {}\r\n", now).event, Some(Event::Authenticate(_))));
    assert_eq!(second.authenticated(Verdict::Accept(in_a())), Err(CloseReason::MaxAccountConnectionsExceeded));
    assert!(sent(&second).contains("maximum account active connections exceeded"), "told why");
    first.finish(CloseReason::ClientClosed);
    let mut third = logged_in(&hub, in_a(), now);
    third.finish(CloseReason::ClientClosed);
}

#[test]
fn a_leaf_user_with_allow_responses_may_answer_the_requests_it_was_sent() {
    let hub = hub();
    let now = Instant::now();
    let perms = Permissions {
        publish: Some(SubjectRules { allow: Some(vec!["up.>".into()]), deny: None, literal: None }),
        subscribe: None,
        allow_responses: Some(crate::config::ResponsePermission { max: Some(1), ..Default::default() }),
    };
    let identity = Identity::global(Some("svc".into()), Arc::new(PermissionSet::compile(&perms).unwrap()), 0);
    let mut service = logged_in(&hub, identity, now);
    let mut asker = logged_in(&hub, anyone(), now);
    feed(&mut service, "LS+ svc.ping\r\n", now);
    feed(&mut asker, "LS+ _INBOX.a.>\r\n", now);
    sent(&service);
    sent(&asker);
    feed(&mut service, "LMSG _INBOX.a.1 2\r\nno\r\n", now);
    service.end_batch();
    assert!(sent(&service).contains("Permissions Violation"), "no reply without a request");
    feed(&mut asker, "LMSG svc.ping + _INBOX.a.2 4\r\nping\r\n", now);
    asker.end_batch();
    assert_eq!(sent(&service), "LMSG svc.ping _INBOX.a.2 4\r\nping\r\n");
    feed(&mut service, "LMSG _INBOX.a.2 4\r\npong\r\n", now);
    service.end_batch();
    assert_eq!(sent(&service), "", "the reply is allowed");
    assert_eq!(sent(&asker), "LMSG _INBOX.a.2 4\r\npong\r\n");
}

#[test]
fn min_version_refuses_older_and_unversioned_leafs() {
    let hub = hub_with(LeafnodeOptions { min_version: Some((2, 10, 0)), ..LeafnodeOptions::default() });
    let now = Instant::now();
    for connect in ["CONNECT {\"version\":\"2.9.10\"}\r\n", "CONNECT {}\r\n"] {
        let mut s = accepted(&hub, now);
        sent(&s);
        closes(&mut s, connect, now);
        assert_eq!(sent(&s), "-ERR 'connection rejected since minimum version required is \"2.10.0\"'\r\n");
    }
    let mut s = accepted(&hub, now);
    assert!(matches!(s.receive(b"CONNECT {\"version\":\"2.15.1\"}\r\n", now).event, Some(Event::Authenticate(_))));
    assert_eq!(crate::config::parse_version("v2.10.3-beta"), Some((2, 10, 3)));
    assert_eq!(crate::config::parse_version("2.10"), None);
}

/// The hub's interest rules across its three kinds of neighbour: a route's
/// interest reaches leafs but not this server's own hub, nor a leaf of the
/// leaf node cluster the route named; a leaf's interest reaches the hub.
#[test]
fn route_interest_skips_the_hub_and_the_leaf_cluster_it_came_from() {
    let hub = hub();
    let now = Instant::now();
    let mut edge = accepted(&hub, now);
    let connect = "CONNECT {\"user\":\"e\",\"pass\":\"pw\",\"server_id\":\"NEDGE\",\"cluster\":\"EDGE\"}\r\n";
    assert!(matches!(edge.receive(connect.as_bytes(), now).event, Some(Event::Authenticate(_))));
    edge.authenticated(Verdict::Accept(anyone())).unwrap();
    let mut plain = logged_in(&hub, anyone(), now);
    let (mut up, _) = solicited(&hub, now);
    feed(&mut up, "INFO {\"server_id\":\"NHUB\",\"client_id\":7,\"nonce\":\"n\",\"leafnode_urls\":[]}\r\n", now);
    for s in [&edge, &plain, &up] {
        sent(s);
    }
    let account = hub.broker.accounts.global();
    let route = Arc::new(Client::with_kind(
        hub.broker.next_client_id(),
        "127.0.0.1:6222".parse().unwrap(),
        1 << 20,
        crate::broker::ClientKind::Route,
    ));
    let far = Subscription::new(route, account.clone(), b"far.x", None, b"", None).from_leaf_cluster(Some(b"EDGE"));
    hub.broker.add_subscription(Arc::new(far));
    assert_eq!(sent(&plain), "LS+ far.x\r\n");
    assert_eq!(sent(&edge), "", "EDGE's own interest does not come back to EDGE");
    assert_eq!(sent(&up), "", "what came over a route is not the hub's business");
    feed(&mut plain, "LS+ leaf.x\r\n", now);
    assert_eq!(sent(&up), "LS+ leaf.x\r\n", "a leaf's interest goes up to the hub");
    assert_eq!(sent(&edge), "LS+ leaf.x\r\n");
    feed(&mut up, "LS+ hub.x\r\n", now);
    assert_eq!(
        (sent(&plain), sent(&edge)),
        ("LS+ hub.x\r\n".into(), "LS+ hub.x\r\n".into()),
        "the hub's reaches leafs"
    );
    feed(&mut edge, "LS- nothing\r\nLS+ edge.x\r\n", now);
    assert_eq!(sent(&up), "LS+ edge.x\r\n");
}

/// The nonce of the hub's INFO, which the leaf signs.
fn nonce_of(greeting: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(greeting.trim_start_matches("INFO ").trim_end()).unwrap();
    json["nonce"].as_str().unwrap().to_owned()
}

/// The hub's own gate checks an nkey leaf's signature (on the verification
/// pool, as a client's), binds it to the block's account, and after a
/// reload that removes the key the leaf is closed and a new one refused.
#[tokio::test]
async fn an_nkey_leaf_logs_in_through_the_hubs_own_gate_and_a_reload_that_removes_it_closes_it() {
    use base64::Engine as _;
    let key = crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::User).unwrap();
    let config = |nkey: &str| {
        let text = format!(
            "authorization {{ users = [ {{ user: app, password: app-pw }} ] }}\naccounts {{ EDGE {{}} }}
            leafnodes {{ port: 7422, authorization {{ users = [ {{ nkey: \"{nkey}\", account: EDGE }} ] }} }}"
        );
        crate::config::load_str(&text, "hub.conf").unwrap().options
    };
    let opts = config(key.public().as_str());
    let leaf_opts = opts.leafnodes.clone().unwrap();
    let hub = hub_on(opts, leaf_opts);
    let now = Instant::now();
    let login_with = |hub: &Arc<Hub>, sign: &crate::nkeys::KeyPair| {
        let mut s = accepted(hub, now);
        let nonce = nonce_of(&sent(&s));
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sign.sign(nonce.as_bytes()));
        let connect = format!(
            "CONNECT {{\"nkey\":\"{}\",\"sig\":\"{sig}\",\"server_id\":\"NLEAF\",\"headers\":true}}\r\n",
            key.public().as_str()
        );
        match s.receive(connect.as_bytes(), now).event {
            Some(Event::Authenticate(login)) => (s, login),
            other => panic!("expected a login, got {other:?}"),
        }
    };
    // Signed with another seed: refused.
    let impostor = crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::User).unwrap();
    let (mut s, login) = login_with(&hub, &impostor);
    let verdict = hub.gate.admit(login.claims, login.facts).await;
    assert_eq!(s.authenticated(verdict), Err(CloseReason::AuthenticationFailure));
    assert!(sent(&s).contains("-ERR 'Authorization Violation'"));

    let (mut s, login) = login_with(&hub, &key);
    s.authenticated(hub.gate.admit(login.claims, login.facts).await).unwrap();
    assert!(sent(&s).contains("\"remote_account\":\"EDGE\""));
    assert_eq!(hub.leafs().len(), 1);

    // A reload that keeps the key keeps the leaf; one that removes it
    // closes it, and the key no longer logs in.
    hub.reload_login(&config(key.public().as_str())).unwrap().apply();
    assert_eq!(s.reconfigure(), Ok(()));
    let other = crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::User).unwrap();
    hub.reload_login(&config(other.public().as_str())).unwrap().apply();
    assert_eq!(s.reconfigure(), Err(CloseReason::UserRemoved));
    s.finish(CloseReason::UserRemoved);
    assert!(hub.leafs().is_empty());
    let (mut again, login) = login_with(&hub, &key);
    let verdict = hub.gate.admit(login.claims, login.facts).await;
    assert_eq!(again.authenticated(verdict), Err(CloseReason::AuthenticationFailure));
}

#[test]
fn a_leaf_in_a_cluster_names_it_in_its_connect() {
    let cluster = crate::config::ClusterOptions { name: Some("EDGE".into()), ..Default::default() };
    let hub = hub_on(Options { cluster: Some(cluster), ..Options::default() }, LeafnodeOptions::default());
    let now = Instant::now();
    let (mut s, _) = solicited(&hub, now);
    feed(&mut s, "INFO {\"server_id\":\"NHUB\",\"client_id\":7,\"nonce\":\"n\",\"leafnode_urls\":[]}\r\n", now);
    let out = sent(&s);
    let connect: serde_json::Value =
        serde_json::from_str(out.lines().next().unwrap().trim_start_matches("CONNECT ")).unwrap();
    assert_eq!(connect["cluster"], "EDGE", "the hub keeps EDGE's traffic from coming back to it");
}

/// Pre-auth input nats-server's 2026 leaf advisories came from: each is
/// refused with its `-ERR`, closes, and leaves the hub as it was (no
/// pending slot, interest, registration or leaf count left behind).
#[test]
fn hostile_input_before_the_login_closes_cleanly_and_leaves_the_hub_at_rest() {
    use harness::{Harness, Role};
    let harness = Harness::new(std::time::Instant::now()).unwrap();
    let long_ls = format!("LS+ {}\r\n", "x".repeat(300));
    let violation = "-ERR 'Authorization Violation'\r\n";
    let cases: [(&str, &[u8], &str, CloseReason); 5] = [
        ("garbage", b"\x00\xff\x16\x03\x01GARBAGE\r\n", violation, CloseReason::AuthenticationFailure),
        (
            "double INFO",
            b"INFO {}\r\nINFO {}\r\n",
            "-ERR 'Protocol Violation: a second INFO before CONNECT'\r\n",
            CloseReason::ProtocolViolation,
        ),
        ("LMSG before CONNECT", b"LMSG foo 5\r\nhello\r\n", violation, CloseReason::AuthenticationFailure),
        (
            "oversized LS+",
            long_ls.as_bytes(),
            "-ERR 'Maximum Control Line Exceeded'\r\n",
            CloseReason::ProtocolViolation,
        ),
        (
            "CONNECT with lang",
            b"CONNECT {\"lang\":\"go\"}\r\n",
            "-ERR 'attempted to connect to leaf node port'\r\n",
            CloseReason::ProtocolViolation,
        ),
    ];
    for (what, input, err, reason) in cases {
        let outcome = harness.run(Role::Hub, [input]).unwrap();
        assert_eq!(String::from_utf8_lossy(&outcome.to_peer), err, "{what}");
        assert_eq!(outcome.closed, Some(reason), "{what}");
        assert!(outcome.delivered.is_empty(), "{what}: nothing delivered");
        harness.at_rest().unwrap_or_else(|left| panic!("{what}: {left}"));
    }
}

/// What the `leaf_session` fuzz target checks, on inputs that reach every
/// part of a session: the bytes out and the close are the same whether
/// the input comes whole or a byte at a time, and the hub is at rest after.
#[test]
fn a_session_is_the_same_whole_and_byte_by_byte_and_leaves_the_hub_at_rest() {
    use harness::{Harness, Role, HUB_INFO, LOGIN_EDGE, LOGIN_LEAF};
    let harness = Harness::new(std::time::Instant::now()).unwrap();
    let traffic = b"LS+ down.>\r\nLS+ secret.x\r\nLS+ down.q q 2\r\nHMSG up.x 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n\
LMSG secret.y 1\r\nz\r\nLMSG up.y + _INBOX.1 q 1\r\nz\r\nLS- down.>\r\nPING\r\n";
    let inputs = [
        (Role::Hub, [LOGIN_EDGE, &traffic[..]].concat()),
        (Role::Hub, [LOGIN_LEAF, &traffic[..], b"CONNECT {}\r\n"].concat()),
        (Role::Spoke, [HUB_INFO, &traffic[..]].concat()),
    ];
    for (role, input) in inputs {
        let whole = harness.run(role, [&input[..]]).unwrap();
        harness.at_rest().unwrap();
        let bytes = harness.run(role, input.chunks(1)).unwrap();
        harness.at_rest().unwrap();
        assert_eq!(whole, bytes, "{role:?}");
        assert!(!whole.delivered.is_empty(), "{role:?}: the allowed messages crossed");
    }
}

/// Advisory 2026-08 (CVE-2026-33246): a nats-server leaf could forge the
/// requester identity a service reads from `Nats-Request-Info`.
/// CVE-2026-33246: `Nats-Request-Info` never crosses from a peer, hub or
/// leaf, nor does a trace header this server does not honour; a trace it
/// honours (a destination the peer may publish to) keeps its headers and
/// is reported on.
#[test]
fn forged_request_info_is_stripped_and_only_honoured_traces_keep_their_headers() {
    let hub = hub();
    let now = Instant::now();
    let mut forger = logged_in(&hub, anyone(), now);
    let mut listener = logged_in(&hub, anyone(), now);
    feed(&mut listener, "LS+ svc.>\r\nLS+ spy\r\n", now);
    let (mut from_hub, _) = solicited(&hub, now);
    feed(&mut from_hub, "INFO {\"server_id\":\"NHUB\",\"client_id\":7,\"nonce\":\"n\",\"leafnode_urls\":[]}\r\n", now);
    sent(&listener);
    sent(&forger);
    let block = "NATS/1.0\r\nNats-Request-Info: {\"acc\":\"SYS\"}\r\nNats-Trace-Only: true\r\n\r\n";
    let kept = "NATS/1.0\r\nA: b\r\nNats-Request-Info: {}\r\n\r\n";
    let input = format!(
        "HMSG svc.a {} {}\r\n{block}hi\r\nHMSG svc.b {} {}\r\n{kept}hi\r\nHMSG svc.c 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
        block.len(),
        block.len() + 2,
        kept.len(),
        kept.len() + 2,
    );
    let expected = "HMSG svc.a 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHMSG svc.b 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n\
                    HMSG svc.c 12 14\r\nNATS/1.0\r\n\r\nhi\r\n";
    for sender in [&mut forger, &mut from_hub] {
        feed(sender, &input, now);
        sender.end_batch();
        assert_eq!(sent(&listener), expected, "an emptied block stays an HMSG with the version line");
    }

    // A trace to `spy`, which the leaf may publish to: traced here, the
    // message delivered with its trace headers (Request-Info still gone),
    // and this server's event published to `spy`.
    let traced = "NATS/1.0\r\nNats-Trace-Dest: spy\r\nNats-Request-Info: {}\r\n\r\n";
    feed(&mut forger, &format!("HMSG svc.t {} {}\r\n{traced}hi\r\n", traced.len(), traced.len() + 2), now);
    forger.end_batch();
    let out = sent(&listener);
    assert!(out.starts_with("HMSG svc.t 34 36\r\nNATS/1.0\r\nNats-Trace-Dest: spy\r\n\r\nhi\r\n"), "{out}");
    let event = out.split("LMSG spy ").nth(1).expect("an event to spy");
    assert!(event.contains("\"kind\":4") && event.contains("\"subj\":\"svc.t\""), "{event}");
    assert!(!event.contains("Nats-Request-Info"), "the event shows the message as it went on: {event}");
}

/// A leaf may not name a trace destination it may not publish to: the
/// message is refused as a publish to it would be, and nothing is sent.
#[test]
fn a_leafs_trace_to_a_destination_it_may_not_publish_to_is_refused() {
    let hub = hub();
    let now = Instant::now();
    let mut leaf = logged_in(&hub, restricted(), now);
    let mut listener = logged_in(&hub, anyone(), now);
    feed(&mut listener, "LS+ >\r\n", now);
    sent(&listener);
    sent(&leaf);
    let block = "NATS/1.0\r\nNats-Trace-Dest: spy\r\n\r\n";
    feed(&mut leaf, &format!("HMSG up.x {} {}\r\n{block}hi\r\n", block.len(), block.len() + 2), now);
    leaf.end_batch();
    assert_eq!(sent(&leaf), "-ERR 'Permissions Violation for Publish to \"spy\"'\r\n");
    assert_eq!(sent(&listener), "", "neither the message nor an event");
}

/// A remote with `hub: true` swaps the roles: the server that dialled is
/// the hub, so on this side its connection is this server's hub (route
/// interest stays away from it) and its CONNECT is what says so.
#[test]
fn a_leaf_that_asks_for_the_hubs_role_becomes_this_servers_hub() {
    let hub = hub();
    let now = Instant::now();
    let mut swapped = accepted(&hub, now);
    let connect = "CONNECT {\"user\":\"h\",\"pass\":\"pw\",\"server_id\":\"NHUB\",\"is_hub\":true}\r\n";
    assert!(matches!(swapped.receive(connect.as_bytes(), now).event, Some(Event::Authenticate(_))));
    swapped.authenticated(Verdict::Accept(anyone())).unwrap();
    assert_eq!(swapped.client.via(), crate::broker::Via::Hub);
    assert!(hub.leafs()[0].spoke, "/leafz says is_spoke, as nats-server does");
    let key = crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::User).unwrap();
    let rules = Arc::new(SpokeRules { account: "$G".into(), deny_imports: vec![], deny_exports: vec![] });
    let login = SpokeLogin { as_hub: true, user: Some("leaf".into()), pass: None, jwt: None, key: Some(key) };
    let client =
        Arc::new(Client::with_kind(7, "127.0.0.1:7422".parse().unwrap(), 1 << 20, crate::broker::ClientKind::Leaf));
    let mut dialled = LeafSession::solicited(hub.clone(), client, rules, login, now);
    feed(&mut dialled, "INFO {\"server_id\":\"NLEAF\",\"client_id\":7,\"nonce\":\"n\",\"leafnode_urls\":[]}\r\n", now);
    let out = sent(&dialled);
    assert!(out.starts_with("CONNECT ") && out.contains("\"is_hub\":true"), "{out}");
    assert_eq!(dialled.client.via(), crate::broker::Via::Leaf, "what this server dialled is its leaf");
}
