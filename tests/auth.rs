//! Authentication and permissions end to end: the seed's alice/bob config,
//! a matrix of verbs x rule forms x users, delivery-time deny filtering,
//! reply permissions, timeouts, hashes, a login flood and a live reload.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use warden::auth::password::hash_password;
use warden::server::StartError;

const SEED: &str = r#"
authorization {
  admin = { publish = ">", subscribe = ">" }
  requestor = {
    publish = ["req.foo", "req.bar"]
    subscribe = "_INBOX.*"
  }
  users = [
    {user: alice, password: foo, permissions: $admin}
    {user: bob, password: bar, permissions: $requestor}
  ]
}
"#;

#[tokio::test]
async fn seed_config_alice_and_bob() {
    let server = start(options_from(SEED)).await;
    let addr = server.local_addr();

    let (mut anon, info) = Raw::connect(addr).await;
    assert!(info.contains("\"auth_required\":true"), "{info}");
    anon.send("CONNECT {\"verbose\":true,\"pedantic\":false}\r\n").await;
    assert_eq!(anon.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    let (mut early, _) = Raw::connect(addr).await;
    early.send("PING\r\n").await;
    assert_eq!(early.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    let (mut wrong, _) = Raw::connect(addr).await;
    wrong.send("CONNECT {\"user\":\"alice\",\"pass\":\"nope\"}\r\n").await;
    assert_eq!(wrong.expect_closed().await, "-ERR 'Authorization Violation'\r\n");

    let mut alice = Raw::login(addr, "alice", "foo").await;
    alice.send("SUB > 1\r\nPING\r\n").await;
    alice.expect("PONG").await;
    let mut bob = Raw::login(addr, "bob", "bar").await;

    bob.send("PUB req.foo 2\r\nhi\r\n").await;
    alice.expect("MSG req.foo 1 2").await;
    alice.expect("hi").await;
    for denied in ["foo", "req.baz", "_SYS.foo"] {
        bob.send(format!("PUB {denied} 2\r\nhi\r\n")).await;
        bob.expect(&format!("-ERR 'Permissions Violation for Publish to \"{denied}\"'")).await;
    }
    bob.send("SUB _INBOX.x 5\r\nSUB _INBOX.* 8\r\nSUB _INBOX.x q1 10\r\nPING\r\n").await;
    bob.expect("PONG").await;
    for (denied, sid) in [("foo", 6), ("_INBOX.x.y", 7), ("_INBOX.>", 9), (">", 11), ("*", 12), ("_INBOX.*.*", 13)] {
        bob.send(format!("SUB {denied} {sid}\r\n")).await;
        bob.expect(&format!("-ERR 'Permissions Violation for Subscription to \"{denied}\"'")).await;
    }
    // The connection stays usable after every violation.
    bob.ping_pong().await;
    // alice's `SUB >` saw none of bob's refused publishes.
    alice.send("PUB check 1\r\nx\r\n").await;
    alice.expect("MSG check 1 1").await;
    alice.expect("x").await;

    alice.send("PUB _INBOX.x 2\r\nyo\r\n").await;
    for sid in [5, 8, 10] {
        bob.expect(&format!("MSG _INBOX.x {sid} 2")).await;
        bob.expect("yo").await;
    }
    alice.expect("MSG _INBOX.x 1 2").await;
    alice.expect("yo").await;

    // _SYS is reserved even for alice's `>`.
    alice.send("PUB _SYS.foo 3\r\nsys\r\nSUB _SYS.> 2\r\n").await;
    alice.expect("-ERR 'Permissions Violation for Publish to \"_SYS.foo\"'").await;
    alice.expect("-ERR 'Permissions Violation for Subscription to \"_SYS.>\"'").await;
    alice.ping_pong().await;
    let v = server.broker().security.violations();
    assert!(v.iter().any(|(u, d, n)| u == "bob" && *d == "publish" && *n == 3), "{v:?}");
    server.shutdown().await;
}

const MATRIX: &str = r#"
authorization {
  users = [
    {user: admin, password: p, permissions: {publish: ">", subscribe: ">"}}
    {user: lists, password: p, permissions: {
        publish: {allow: ["a.>"], deny: ["a.secret"]},
        subscribe: {allow: ["a.>"], deny: ["a.secret"]}
    }}
    {user: queues, password: p, permissions: {publish: [], subscribe: ["q.* workers", "plain.>"]}}
    {user: svc, password: p, permissions: {subscribe: "svc.>", allow_responses: {max: 1, expires: "1m"}}}
    {user: none, password: p, permissions: {publish: [], subscribe: []}}
  ]
}
"#;

/// Sends `op` then PING; returns the error line, or None when the op was accepted.
async fn outcome(c: &mut Raw, op: &str) -> Option<String> {
    c.send(format!("{op}PING\r\n")).await;
    let line = c.next_non_ping().await;
    if line == "PONG" {
        return None;
    }
    c.expect("PONG").await;
    Some(line)
}

#[tokio::test]
async fn security_matrix() {
    let server = start(options_from(MATRIX)).await;
    let addr = server.local_addr();
    let pub_err = |s: &str| Some(format!("-ERR 'Permissions Violation for Publish to \"{s}\"'"));
    let sub_err = |s: &str| Some(format!("-ERR 'Permissions Violation for Subscription to \"{s}\"'"));
    let q_err = |s: &str, q: &str| {
        Some(format!("-ERR 'Permissions Violation for Subscription to \"{s}\" using queue \"{q}\"'"))
    };
    let cases: Vec<(&str, &str, Option<String>)> = vec![
        ("admin", "PUB anything 0\r\n\r\n", None),
        ("admin", "HPUB a.b 12 12\r\nNATS/1.0\r\n\r\n\r\n", None),
        ("admin", "SUB > 1\r\n", None),
        ("lists", "PUB a.b 0\r\n\r\n", None),
        ("lists", "HPUB a.b 12 12\r\nNATS/1.0\r\n\r\n\r\n", None),
        ("lists", "PUB a.secret 0\r\n\r\n", pub_err("a.secret")),
        ("lists", "HPUB a.secret 12 12\r\nNATS/1.0\r\n\r\n\r\n", pub_err("a.secret")),
        ("lists", "PUB b 0\r\n\r\n", pub_err("b")),
        ("lists", "SUB a.* 1\r\n", None),
        ("lists", "SUB a.> 2\r\n", None),
        ("lists", "SUB a.secret 3\r\n", sub_err("a.secret")),
        ("lists", "SUB a.x grp 4\r\n", None),
        ("lists", "SUB b 5\r\n", sub_err("b")),
        ("lists", "SUB > 6\r\n", sub_err(">")),
        ("queues", "PUB q.a 0\r\n\r\n", pub_err("q.a")),
        ("queues", "SUB q.a workers 1\r\n", None),
        ("queues", "SUB q.a other 2\r\n", q_err("q.a", "other")),
        ("queues", "SUB q.a 3\r\n", sub_err("q.a")),
        ("queues", "SUB plain.x anyq 4\r\n", None),
        ("queues", "SUB plain.x _sys_ 6\r\n", q_err("plain.x", "_sys_")),
        // allow_responses without publish rules: only replies (as nats-server).
        ("svc", "PUB svc.x 0\r\n\r\n", pub_err("svc.x")),
        ("svc", "PUB _INBOX.unasked 0\r\n\r\n", pub_err("_INBOX.unasked")),
        ("none", "PUB x 0\r\n\r\n", pub_err("x")),
        ("none", "SUB x 1\r\n", sub_err("x")),
    ];
    for (user, op, want) in cases {
        let mut c = Raw::login(addr, user, "p").await;
        let got = outcome(&mut c, op).await;
        assert_eq!(got, want, "{user}: {op:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn wildcard_subscriber_never_sees_a_denied_subject() {
    let server = start(options_from(MATRIX)).await;
    let addr = server.local_addr();
    let mut lists = Raw::login(addr, "lists", "p").await;
    lists.send("SUB a.> 1\r\nSUB a.* q 2\r\n").await;
    lists.ping_pong().await;
    let mut admin = Raw::login(addr, "admin", "p").await;
    admin.send("PUB a.secret 1\r\nS\r\nPUB a.public 1\r\nP\r\n").await;
    admin.ping_pong().await;
    lists.send("PING\r\n").await;
    let mut got = Vec::new();
    loop {
        let line = lists.next_non_ping().await;
        if line == "PONG" {
            break;
        }
        got.push(line);
        got.push(lists.line().await);
    }
    got.sort();
    assert_eq!(got, vec!["MSG a.public 1 1", "MSG a.public 2 1", "P", "P"]);
    server.shutdown().await;
}

#[tokio::test]
async fn allow_responses_grants_one_reply_per_request() {
    let server = start(options_from(MATRIX)).await;
    let addr = server.local_addr();
    let mut svc = Raw::login(addr, "svc", "p").await;
    svc.send("SUB svc.time 1\r\n").await;
    svc.ping_pong().await;
    let mut admin = Raw::login(addr, "admin", "p").await;
    admin.send("SUB _INBOX.r.* 9\r\nPUB svc.time _INBOX.r.1 0\r\n\r\n").await;
    admin.ping_pong().await;
    svc.expect("MSG svc.time 1 _INBOX.r.1 0").await;
    svc.expect("").await;
    assert_eq!(outcome(&mut svc, "PUB _INBOX.r.1 2\r\nok\r\n").await, None);
    admin.expect("MSG _INBOX.r.1 9 2").await;
    admin.expect("ok").await;
    assert_eq!(
        outcome(&mut svc, "PUB _INBOX.r.1 2\r\nok\r\n").await,
        Some("-ERR 'Permissions Violation for Publish to \"_INBOX.r.1\"'".into()),
        "a second reply to the same request is refused"
    );
    server.shutdown().await;
}

/// Paused time: the runtime jumps to the deadline once every task is idle.
#[tokio::test(start_paused = true)]
async fn authentication_timeout() {
    let mut opts = options_from(SEED);
    opts.authorization.as_mut().unwrap().timeout = Some(Duration::from_millis(300));
    let server = start(opts).await;
    let (mut silent, _) = Raw::connect(server.local_addr()).await;
    assert_eq!(silent.expect_closed().await, "-ERR 'Authentication Timeout'\r\n");
    assert_eq!(server.broker().security.auth_timeouts.load(Ordering::Relaxed), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn hashed_passwords_and_tokens_with_async_nats() {
    let argon = hash_password("s3cret").unwrap();
    let bcrypt = bcrypt::hash("old-school", 4).unwrap();
    let config = format!(
        "authorization {{ users = [ {{user: a, password: \"{argon}\"}}, {{user: b, password: \"{bcrypt}\"}} ] }}"
    );
    let server = start(options_from(&config)).await;
    for (user, pass) in [("a", "s3cret"), ("b", "old-school")] {
        let client =
            within(async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).connect(url(&server)))
                .await
                .unwrap();
        client.flush().await.unwrap();
    }
    let refused =
        within(async_nats::ConnectOptions::with_user_and_password("a".into(), "bad".into()).connect(url(&server)))
            .await;
    assert!(refused.is_err());
    server.shutdown().await;

    let token_hash = hash_password("tok").unwrap();
    let server = start(options_from(&format!("authorization {{ token: \"{token_hash}\" }}"))).await;
    let client = within(async_nats::ConnectOptions::with_token("tok".into()).connect(url(&server))).await.unwrap();
    client.flush().await.unwrap();
    assert!(within(async_nats::ConnectOptions::with_token("nope".into()).connect(url(&server))).await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn permission_errors_reach_the_async_nats_error_callback() {
    let server = start(options_from(SEED)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let bob = within(
        async_nats::ConnectOptions::with_user_and_password("bob".into(), "bar".into())
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(err) = event {
                        let _ = tx.send(err.to_string());
                    }
                }
            })
            .connect(url(&server)),
    )
    .await
    .unwrap();
    bob.publish("foo", "x".into()).await.unwrap();
    bob.flush().await.unwrap();
    let err = within(rx.recv()).await.unwrap();
    assert!(err.to_lowercase().contains("permissions violation for publish to \"foo\""), "{err}");
    // Still connected and allowed to request.
    let mut inbox = bob.subscribe("_INBOX.ok").await.unwrap();
    bob.flush().await.unwrap();
    let alice =
        within(async_nats::ConnectOptions::with_user_and_password("alice".into(), "foo".into()).connect(url(&server)))
            .await
            .unwrap();
    alice.publish("_INBOX.ok", "fine".into()).await.unwrap();
    assert_eq!(within(inbox.next()).await.unwrap().payload, "fine");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_does_not_starve_authenticated_traffic() {
    let hash = hash_password("right").unwrap();
    let config = format!("authorization {{ users = [ {{user: u, password: \"{hash}\"}} ] }}");
    let server = start(options_from(&config)).await;
    let addr = server.local_addr();
    let good =
        within(async_nats::ConnectOptions::with_user_and_password("u".into(), "right".into()).connect(url(&server)))
            .await
            .unwrap();
    let mut service = good.subscribe("svc").await.unwrap();
    good.flush().await.unwrap();
    let responder = good.clone();
    tokio::spawn(async move {
        while let Some(req) = service.next().await {
            if let Some(reply) = req.reply {
                let _ = responder.publish(reply, "ok".into()).await;
            }
        }
    });
    let flood: Vec<_> = (0..300)
        .map(|i| {
            tokio::spawn(async move {
                let started = Instant::now();
                let (mut c, _) = Raw::connect(addr).await;
                let connected = started.elapsed();
                c.send(format!("CONNECT {{\"user\":\"u{i}\",\"pass\":\"wrong\"}}\r\n")).await;
                let answer = c.expect_closed().await;
                (answer, connected, started.elapsed())
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let started = Instant::now();
        within(good.request("svc", "ping".into())).await.unwrap();
        worst = worst.max(started.elapsed());
    }
    for f in flood {
        let (answer, connected, total) = within(f).await.unwrap();
        eprintln!("flood connection: INFO after {connected:?}, answer after {total:?}");
        assert!(
            answer == "-ERR 'Authorization Violation'\r\n" || answer == "-ERR 'Authentication Timeout'\r\n",
            "{answer}"
        );
    }
    assert!(worst < Duration::from_millis(500), "authenticated requests slowed to {worst:?} during the flood");
    server.shutdown().await;
}

#[tokio::test]
async fn reload_applies_new_permissions_and_closes_removed_users() {
    let before = r#"authorization { users = [
        {user: alice, password: a, permissions: {publish: ">", subscribe: ">"}}
        {user: bob, password: b, permissions: {publish: ">", subscribe: ["foo.>", "bar"]}}
        {user: carol, password: c}
    ] }"#;
    let after = r#"authorization { users = [
        {user: alice, password: a, permissions: {publish: ">", subscribe: ">"}}
        {user: bob, password: b, permissions: {publish: ">", subscribe: ["bar"]}}
    ] }"#;
    let server = start(options_from(before)).await;
    let addr = server.local_addr();
    let mut alice = Raw::login(addr, "alice", "a").await;
    let mut bob = Raw::login(addr, "bob", "b").await;
    bob.send("SUB foo.> 1\r\nSUB bar 2\r\n").await;
    bob.ping_pong().await;
    let mut carol = Raw::login(addr, "carol", "c").await;

    server.reload(&options_from(after)).unwrap();
    bob.expect("-ERR 'Permissions Violation for Subscription to \"foo.>\" (sid \"1\")'").await;
    assert_eq!(carol.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    alice.send("PUB foo.x 1\r\nx\r\nPUB bar 1\r\ny\r\n").await;
    alice.ping_pong().await;
    bob.expect("MSG bar 2 1").await;
    bob.expect("y").await;
    assert_eq!(
        outcome(&mut bob, "SUB foo.y 3\r\n").await,
        Some("-ERR 'Permissions Violation for Subscription to \"foo.y\"'".into())
    );
    let refused =
        within(async_nats::ConnectOptions::with_user_and_password("carol".into(), "c".into()).connect(url(&server)))
            .await;
    assert!(refused.is_err(), "removed user cannot log in");
    server.shutdown().await;
}

/// A reload from code that also changes an option only a restart applies
/// is refused whole, naming the option, as a config file's is: its
/// permission change and its removed user are not in force afterwards,
/// and the same reload without the restart-only change then applies.
#[tokio::test]
async fn a_reload_that_changes_a_restart_only_option_is_refused_whole() {
    let config = |extra: &str, timeout: &str, bob_subscribe: &str, carol: bool| {
        let carol = if carol { "{user: carol, password: c}" } else { "" };
        format!(
            "{extra}\nauthorization {{ timeout: {timeout}, users = [\n\
             {{user: alice, password: a}}\n\
             {{user: bob, password: b, permissions: {{publish: \">\", subscribe: {bob_subscribe}}}}}\n{carol}\n] }}"
        )
    };
    let running = config("max_payload: 1MB", "\"2s\"", "[\"foo.>\", \"bar\"]", true);
    let server = start(options_from(&running)).await;
    let addr = server.local_addr();
    let mut alice = Raw::login(addr, "alice", "a").await;
    let mut bob = Raw::login(addr, "bob", "b").await;
    bob.send("SUB foo.> 1\r\n").await;
    bob.ping_pong().await;
    let mut carol = Raw::login(addr, "carol", "c").await;

    let restart_only = [
        ("max_payload: 2MB", "\"2s\"", "max_payload"),
        ("max_payload: 1MB\nserver_name: renamed", "\"2s\"", "server_name"),
        ("max_payload: 1MB", "\"3s\"", "authorization.timeout"),
    ];
    for (extra, timeout, option) in restart_only {
        let err = server.reload(&options_from(&config(extra, timeout, "\"bar\"", false))).unwrap_err();
        assert!(matches!(&err, StartError::RestartOnly { option: o } if o == option), "{err}");
        let message =
            format!("`{option}` changed, but it takes effect only at a restart: restart the server to apply it");
        assert_eq!(err.to_string(), message);
    }
    // Nothing of them is in force: carol is still served, bob keeps his
    // subscription and may still subscribe under foo.
    carol.ping_pong().await;
    assert_eq!(outcome(&mut bob, "SUB foo.y 2\r\nUNSUB 2\r\n").await, None);
    alice.send("PUB foo.x 1\r\nx\r\n").await;
    alice.ping_pong().await;
    bob.expect("MSG foo.x 1 1").await;
    bob.expect("x").await;
    let (_, info) = Raw::connect(addr).await;
    assert!(info.contains("\"max_payload\":1048576"), "{info}");

    // The same reload without the restart-only change applies.
    server.reload(&options_from(&config("max_payload: 1MB", "\"2s\"", "\"bar\"", false))).unwrap();
    assert_eq!(carol.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    bob.expect("-ERR 'Permissions Violation for Subscription to \"foo.>\" (sid \"1\")'").await;
    assert_eq!(
        outcome(&mut bob, "SUB foo.z 3\r\n").await,
        Some("-ERR 'Permissions Violation for Subscription to \"foo.z\"'".into())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn failure_delay_max_zero_turns_the_throttle_off() {
    let config = "authorization { failure_delay_max: \"0s\", users = [ {user: u, password: p} ] }";
    let server = start(options_from(config)).await;
    let started = Instant::now();
    for _ in 0..8 {
        let (mut c, _) = Raw::connect(server.local_addr()).await;
        c.send("CONNECT {\"user\":\"u\",\"pass\":\"wrong\"}\r\n").await;
        assert_eq!(c.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "no failure was delayed");
    server.shutdown().await;
}

/// warden's literal-only rule, end to end: `sensor.*.temp` as `literal`
/// lets a stock client subscribe to one sensor at a time and receive it,
/// while the wildcard that would wiretap every sensor gets nats-server's
/// usual `-ERR`; deny still wins, and the connection stays usable.
#[tokio::test]
async fn literal_subscribe_rules_refuse_the_wildcard_and_admit_each_sensor() {
    let server = start(options_from(
        r#"
authorization {
  users = [
    {user: dash, password: dash-pw, permissions: {
      publish: "sensor.>"
      subscribe: { allow: "_INBOX.>", literal: "sensor.*.temp", deny: "sensor.0.temp" }
    }}
  ]
}
"#,
    ))
    .await;
    let addr = server.local_addr();
    let client = async_nats::ConnectOptions::with_user_and_password("dash".into(), "dash-pw".into())
        .connect(url(&server))
        .await
        .unwrap();
    let mut one = client.subscribe("sensor.12.temp").await.unwrap();
    client.flush().await.unwrap();
    client.publish("sensor.12.temp", "21.5".into()).await.unwrap();
    assert_eq!(&within(one.next()).await.unwrap().payload[..], b"21.5");

    let mut raw = Raw::login(addr, "dash", "dash-pw").await;
    for (denied, sid) in [("sensor.*.temp", 1), ("sensor.>", 2), ("sensor.12.*", 3), ("sensor.0.temp", 4)] {
        raw.send(format!("SUB {denied} {sid}\r\n")).await;
        raw.expect(&format!("-ERR 'Permissions Violation for Subscription to \"{denied}\"'")).await;
    }
    raw.send("SUB sensor.*.temp workers 5\r\n").await;
    raw.expect("-ERR 'Permissions Violation for Subscription to \"sensor.*.temp\" using queue \"workers\"'").await;
    raw.send("SUB sensor.7.temp workers 6\r\nPUB sensor.7.temp 2\r\nok\r\n").await;
    raw.expect("MSG sensor.7.temp 6 2").await;
    raw.expect("ok").await;
    raw.ping_pong().await;
    drop(client);
    server.shutdown().await;
}

/// Identity templates in config mode: one `default_permissions` block gives
/// every user a space of its own (`chat.{{name()}}.>`) and its team's
/// (`team.{{tag(team)}}.>`), filled in per user; a stock client publishing
/// into another user's space gets the usual `-ERR`. A deny template that
/// cannot be filled in for a user stops the server at load, naming him.
#[tokio::test]
async fn config_templates_give_each_user_their_own_subjects() {
    let config = r#"
authorization {
  default_permissions = {
    publish = ["chat.{{name()}}.>", "team.{{tag(team)}}.>"]
    subscribe = { allow: ["chat.*.>", "_INBOX.>"], literal: ["team.{{tag(team)}}.*"], deny: "chat.{{name()}}.muted" }
  }
  users = [
    {user: alice, password: alice-pw, tags: ["team:eng"]}
    {user: bob, password: bob-pw, tags: ["team:ops"]}
  ]
}
"#;
    let server = start(options_from(config)).await;
    let addr = server.local_addr();
    let connect = |user: &str, pass: &str| {
        async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).connect(url(&server))
    };
    let (alice, bob) = (connect("alice", "alice-pw").await.unwrap(), connect("bob", "bob-pw").await.unwrap());
    let mut bobs_view = bob.subscribe("chat.alice.>").await.unwrap();
    let mut eng = alice.subscribe("team.eng.standup").await.unwrap();
    bob.flush().await.unwrap();
    alice.flush().await.unwrap();
    alice.publish("chat.alice.hello", "hi".into()).await.unwrap();
    alice.publish("team.eng.standup", "at ten".into()).await.unwrap();
    assert_eq!(&within(bobs_view.next()).await.unwrap().payload[..], b"hi");
    assert_eq!(&within(eng.next()).await.unwrap().payload[..], b"at ten");

    let mut raw = Raw::login(addr, "alice", "alice-pw").await;
    for denied in ["chat.bob.hello", "team.ops.standup"] {
        raw.send(format!("PUB {denied} 1\r\nx\r\n")).await;
        raw.expect(&format!("-ERR 'Permissions Violation for Publish to \"{denied}\"'")).await;
    }
    for (denied, sid) in [("team.ops.standup", 1), ("team.eng.*", 2), ("chat.alice.muted", 3)] {
        raw.send(format!("SUB {denied} {sid}\r\n")).await;
        raw.expect(&format!("-ERR 'Permissions Violation for Subscription to \"{denied}\"'")).await;
    }
    raw.ping_pong().await;
    drop((alice, bob));
    server.shutdown().await;

    // carol has no team: her deny template cannot be filled in.
    let refused = config.replace(
        "{user: bob, password: bob-pw, tags: [\"team:ops\"]}",
        "{user: bob, password: bob-pw, tags: [\"team:ops\"]}\n    {user: \"carol.x\", password: carol-pw}",
    );
    let refused = refused.replace("deny: \"chat.{{name()}}.muted\"", "deny: \"team.{{tag(team)}}.secret\"");
    let Err(err) = warden::server::Server::start(options_from(&refused)).await else {
        panic!("carol is refused at load")
    };
    assert!(err.to_string().contains("user \"carol.x\"") && err.to_string().contains("deny template"), "{err}");
}
