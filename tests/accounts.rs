//! Accounts end to end: tenants isolated on the same subjects, stream and
//! service imports (with the importer's permissions, response types and
//! threshold cleanup), exports restricted to named accounts, per-account
//! limits, reloads, monitoring, and the same scenarios through async-nats
//! and nats-py.
//!
//! Non-delivery is asserted without waiting for silence: the publisher's
//! PING/PONG proves its PUB was handled (deliveries are queued before the
//! PONG), and the subscriber's own PING/PONG then proves nothing was queued
//! to it before.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use futures::StreamExt;

const TENANTS: &str = r#"
accounts {
  A: {
    users: [ {user: a, password: pa}, {user: a2, password: pa} ]
    exports: [
      {stream: "public.>"}
      {stream: "private.>", accounts: [B]}
      {service: "svc.time", accounts: [B]}
      {service: "svc.feed", accounts: [B], response: stream, threshold: "300ms"}
    ]
  }
  B: {
    users: [
      {user: b, password: pb}
      {user: b_limited, password: pb, permissions: {subscribe: {allow: ["from_a.>", "p.*", "_INBOX.>"], deny: "from_a.public.secret"}}}
    ]
    imports: [
      {stream: {account: A, subject: "public.>"}, prefix: from_a}
      {stream: {account: A, subject: "private.*"}, to: "p.$1"}
      {service: {account: A, subject: "svc.time"}, to: "time"}
      {service: {account: A, subject: "svc.feed"}, to: "feed"}
    ]
  }
  C: { users: [ {user: c, password: pc} ] }
}
"#;

/// Publishes with `publisher`, then proves `receiver` got nothing from it.
async fn nothing_reaches(receiver: &mut Raw, publisher: &mut Raw, publish: &str) {
    publisher.send(publish).await;
    publisher.ping_pong().await;
    receiver.send("PING\r\n").await;
    assert_eq!(receiver.next_non_ping().await, "PONG", "something crossed after {publish:?}");
}

/// The next `n` messages of `raw` as (MSG line, payload), sorted: the
/// order in which one message reaches several subscriptions is not fixed.
async fn messages(raw: &mut Raw, n: usize) -> Vec<(String, String)> {
    let mut got = Vec::new();
    for _ in 0..n {
        let line = raw.next_non_ping().await;
        assert!(line.starts_with("MSG "), "{line}");
        got.push((line, raw.line().await));
    }
    got.sort();
    got
}

fn msg(line: &str, payload: &str) -> (String, String) {
    (line.to_owned(), payload.to_owned())
}

#[tokio::test]
async fn tenants_on_the_same_subjects_never_see_each_other() {
    let server = start(options_from(TENANTS)).await;
    let addr = server.local_addr();
    let mut a = Raw::login(addr, "a", "pa").await;
    let mut b = Raw::login(addr, "b", "pb").await;
    let mut c = Raw::login(addr, "c", "pc").await;
    let mut a_pub = Raw::login(addr, "a2", "pa").await;
    let mut c_pub = Raw::login(addr, "c", "pc").await;
    for raw in [&mut a, &mut b, &mut c] {
        raw.send("SUB orders.* 1\r\nSUB > 2\r\nSUB *.new 3\r\n").await;
        raw.ping_pong().await;
    }
    // C's message stays in C, on every kind of subscription.
    nothing_reaches(&mut b, &mut c_pub, "PUB orders.new 2\r\nc1\r\n").await;
    a.ping_pong().await;
    let want: Vec<_> = (1..=3).map(|sid| msg(&format!("MSG orders.new {sid} 2"), "c1")).collect();
    assert_eq!(messages(&mut c, 3).await, want);
    // A's unexported subject stays in A, even for B's `>`.
    nothing_reaches(&mut b, &mut a_pub, "PUB orders.new 2\r\na1\r\n").await;
    c.ping_pong().await;
    let want: Vec<_> = (1..=3).map(|sid| msg(&format!("MSG orders.new {sid} 2"), "a1")).collect();
    assert_eq!(messages(&mut a, 3).await, want);
    server.shutdown().await;
}

#[tokio::test]
async fn stream_imports_rename_and_keep_the_importers_permissions() {
    let server = start(options_from(TENANTS)).await;
    let addr = server.local_addr();
    let mut a = Raw::login(addr, "a", "pa").await;
    let mut b = Raw::login(addr, "b", "pb").await;
    let mut limited = Raw::login(addr, "b_limited", "pb").await;
    let mut c = Raw::login(addr, "c", "pc").await;
    b.send("SUB from_a.public.* 1\r\nSUB p.* 2\r\nSUB > 3\r\n").await;
    b.ping_pong().await;
    limited.send("SUB from_a.> 1\r\nSUB public.> 2\r\nPING\r\n").await;
    limited.expect("-ERR 'Permissions Violation for Subscription to \"public.>\"'").await;
    limited.expect("PONG").await;
    c.send("SUB > 1\r\n").await;
    c.ping_pong().await;

    a.send("PUB public.news 2\r\nn1\r\nPUB private.x 2\r\np1\r\nPUB public.secret 2\r\ns1\r\n").await;
    a.ping_pong().await;
    // b: prefixed and mapped, once per matching subscription.
    let mut want = vec![
        msg("MSG from_a.public.news 1 2", "n1"),
        msg("MSG from_a.public.news 3 2", "n1"),
        msg("MSG p.x 2 2", "p1"),
        msg("MSG p.x 3 2", "p1"),
        msg("MSG from_a.public.secret 1 2", "s1"),
        msg("MSG from_a.public.secret 3 2", "s1"),
    ];
    want.sort();
    assert_eq!(messages(&mut b, 6).await, want);
    // b_limited: its deny rule applies to the name it sees.
    limited.expect("MSG from_a.public.news 1 2").await;
    limited.expect("n1").await;
    limited.ping_pong().await;
    // C imports nothing: A's public stream is public, but not imported.
    c.ping_pong().await;
    server.shutdown().await;
}

#[tokio::test]
async fn service_imports_answer_across_accounts_with_async_nats() {
    let server = start(options_from(TENANTS)).await;
    let connect = |user: &'static str, pass: &'static str| {
        let url = url(&server);
        async move {
            within(async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).connect(url))
                .await
                .unwrap()
        }
    };
    let a = connect("a", "pa").await;
    let b = connect("b", "pb").await;
    let c = connect("c", "pc").await;
    let mut time = a.subscribe("svc.time").await.unwrap();
    let mut feed = a.subscribe("svc.feed").await.unwrap();
    a.flush().await.unwrap();
    let responder = a.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(req) = time.next() => {
                    let _ = responder.publish(req.reply.unwrap(), "12:00".into()).await;
                }
                Some(req) = feed.next() => {
                    let reply = req.reply.unwrap();
                    for part in ["one", "two", "three"] {
                        let _ = responder.publish(reply.clone(), part.into()).await;
                    }
                }
                else => return,
            }
        }
    });
    // Singleton: request/reply as any client does it.
    let answer = within(b.request("time", "now?".into())).await.expect("answer from A");
    assert_eq!(answer.payload, "12:00");
    // C has no such import: no responders.
    let refused = within(c.request("time", "now?".into())).await;
    assert!(refused.is_err(), "C reached A's service");
    // Streamed: every part arrives.
    let inbox = b.new_inbox();
    let mut parts = b.subscribe(inbox.clone()).await.unwrap();
    b.publish_with_reply("feed", inbox, "go".into()).await.unwrap();
    for want in ["one", "two", "three"] {
        assert_eq!(within(parts.next()).await.unwrap().payload, want);
    }
    // The streamed request is forgotten after its 300 ms threshold.
    let b_account = server.broker().accounts.get("B").unwrap();
    let pending = || b_account.state().services.iter().map(|s| s.pending()).sum::<usize>();
    within(async {
        while pending() != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_unimported_service_and_forged_replies_are_refused() {
    let server = start(options_from(TENANTS)).await;
    let addr = server.local_addr();
    let mut a = Raw::login(addr, "a", "pa").await;
    let mut b = Raw::login(addr, "b", "pb").await;
    a.send("SUB svc.> 1\r\nSUB _R_.> 2\r\n").await;
    a.ping_pong().await;
    // Publishing A's subject directly in B goes nowhere near A.
    nothing_reaches(&mut a, &mut b, "PUB svc.time _INBOX.x 0\r\n\r\n").await;
    b.send("PUB time _R_.abc.def 0\r\n\r\nPING\r\n").await;
    b.expect("-ERR 'Permissions Violation for Publish with Reply of \"_R_.abc.def\"'").await;
    b.expect("PONG").await;
    a.ping_pong().await;
    server.shutdown().await;
}

#[test]
fn an_export_for_b_cannot_be_imported_by_c() {
    let config = TENANTS.replace(
        "C: { users: [ {user: c, password: pc} ] }",
        "C: { users: [ {user: c, password: pc} ], imports: [ {stream: {account: A, subject: \"private.x\"}} ] }",
    );
    let err = warden::config::load_str(&config, "tenants.conf").unwrap_err();
    assert_eq!(err.message(), "Error adding stream import \"private.x\": stream import not authorized");
    assert!(err.to_string().starts_with("tenants.conf:"), "{err}");
}

#[tokio::test]
async fn account_limits_bound_each_tenant() {
    let config = r#"
accounts {
  SMALL: { users: [ {user: s, password: p} ], limits: { max_connections: 1, max_subscriptions: 2, max_payload: 8 } }
  OTHER: { users: [ {user: o, password: p} ] }
}
"#;
    let server = start(options_from(config)).await;
    let addr = server.local_addr();
    let mut first = Raw::login(addr, "s", "p").await;
    let (mut second, _) = Raw::connect(addr).await;
    second.send("CONNECT {\"user\":\"s\",\"pass\":\"p\"}\r\n").await;
    assert_eq!(second.expect_closed().await, "-ERR 'maximum account active connections exceeded'\r\n");
    // Another tenant is not affected.
    let mut other = Raw::login(addr, "o", "p").await;
    other.send("PUB x 20\r\n01234567890123456789\r\n").await;
    other.ping_pong().await;
    first.send("SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n").await;
    first.expect("-ERR 'maximum subscriptions exceeded'").await;
    first.expect("PONG").await;
    first.send("PUB a 9\r\n123456789\r\n").await;
    assert_eq!(first.expect_closed().await, "-ERR 'Maximum Payload Violation'\r\n");
    // Its connection is counted out: the tenant may connect again.
    within(async {
        loop {
            if server.broker().accounts.get("SMALL").unwrap().connections() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    Raw::login(addr, "s", "p").await;
    server.shutdown().await;
}

#[tokio::test]
async fn reloads_add_and_remove_imports_accounts_and_users() {
    let before = r#"
accounts {
  A: { users: [ {user: a, password: p} ], exports: [ {stream: "news.>"} ] }
  B: { users: [ {user: b, password: p}, {user: mover, password: p} ] }
  C: { users: [ {user: c, password: p} ] }
}
"#;
    let with_import = r#"
accounts {
  A: { users: [ {user: a, password: p} ], exports: [ {stream: "news.>"} ] }
  B: { users: [ {user: b, password: p}, {user: mover, password: p} ],
       imports: [ {stream: {account: A, subject: "news.>"}} ] }
  C: { users: [ {user: c, password: p} ] }
}
"#;
    let after = r#"
accounts {
  A: { users: [ {user: a, password: p} ], exports: [ {stream: "news.>"} ] }
  B: { users: [ {user: b, password: p} ] }
  D: { users: [ {user: mover, password: p} ] }
}
"#;
    let server = start(options_from(before)).await;
    let addr = server.local_addr();
    let mut a = Raw::login(addr, "a", "p").await;
    let mut b = Raw::login(addr, "b", "p").await;
    let mut c = Raw::login(addr, "c", "p").await;
    let mut mover = Raw::login(addr, "mover", "p").await;
    b.send("SUB news.* 1\r\n").await;
    b.ping_pong().await;
    nothing_reaches(&mut b, &mut a, "PUB news.x 1\r\n1\r\n").await;

    // The import appears: B's existing subscription is fed at once.
    server.reload(&options_from(with_import)).unwrap();
    b.ping_pong().await;
    a.send("PUB news.y 1\r\n2\r\n").await;
    a.ping_pong().await;
    b.expect("MSG news.y 1 1").await;
    b.expect("2").await;

    // The import goes, C goes, mover changes account: all at once.
    server.reload(&options_from(after)).unwrap();
    assert_eq!(c.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    assert_eq!(mover.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    nothing_reaches(&mut b, &mut a, "PUB news.z 1\r\n3\r\n").await;
    let mut moved = Raw::login(addr, "mover", "p").await;
    moved.ping_pong().await;
    assert!(server.broker().accounts.get("C").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn no_auth_user_may_live_in_an_account() {
    let config = r#"
accounts { T: { users: [ {user: guest, password: p} ] }, U: { users: [ {user: u, password: p} ] } }
no_auth_user: guest
"#;
    let server = start(options_from(config)).await;
    let addr = server.local_addr();
    let mut guest = Raw::connected(addr).await;
    let mut u = Raw::login(addr, "u", "p").await;
    guest.send("SUB > 1\r\n").await;
    guest.ping_pong().await;
    nothing_reaches(&mut guest, &mut u, "PUB t 1\r\nx\r\n").await;
    let info = server.broker().clients();
    assert!(info.iter().any(|c| c.meta.lock().account.as_deref() == Some("T")));
    server.shutdown().await;
}

#[tokio::test]
async fn monitoring_shows_accounts_connections_and_imports() {
    let mut opts = options_from(TENANTS);
    opts.http = Some(warden::config::HttpOptions { host: "127.0.0.1".into(), port: 0, tls: false });
    let server = start(opts).await;
    let http = server.monitor_addr().unwrap();
    let addr = server.local_addr();
    let mut a = Raw::login(addr, "a", "pa").await;
    let mut b = Raw::login(addr, "b", "pb").await;
    a.send("SUB public.> 1\r\n").await;
    a.ping_pong().await;
    b.send("SUB from_a.> 1\r\n").await;
    b.ping_pong().await;

    let accountz = monitor_json(http, "/accountz").await;
    let names: Vec<&str> = accountz["accounts"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(names, ["$G", "$SYS", "A", "B", "C"]);
    assert_eq!(accountz["system_account"], "$SYS");
    let detail = monitor_json(http, "/accountz?acc=B").await["account_detail"].clone();
    assert_eq!(detail["client_connections"], 1);
    let imports = detail["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 4);
    assert_eq!(imports[0]["local_subject"], "from_a.public.>");
    let exports = monitor_json(http, "/accountz?acc=A").await["account_detail"]["exports"].clone();
    assert_eq!(exports[0]["approved_accounts"], serde_json::json!([]), "public export");
    assert_eq!(exports[1]["approved_accounts"], serde_json::json!(["B"]));

    let connz = monitor_json(http, "/connz?auth=1&acc=B").await;
    assert_eq!(connz["num_connections"], 1);
    assert_eq!(connz["connections"][0]["account"], "B");
    assert_eq!(connz["connections"][0]["authorized_user"], "b");
    // As nats-server: the account filter needs auth=1.
    let refused = monitor_json(http, "/connz?acc=B").await;
    assert_eq!(refused["error"], "filter by user or account only allowed with auth option");

    // A holds its own subscription, B's shadow and the response
    // subscriptions of B's two service imports.
    let subsz = monitor_json(http, "/subsz?acc=A&subs=1").await;
    let list = subsz["subscriptions_list"].as_array().unwrap();
    let subjects: Vec<&str> = list.iter().map(|s| s["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects.iter().filter(|s| **s == "public.>").count(), 2, "{subjects:?}");
    assert_eq!(subjects.iter().filter(|s| s.starts_with("_R_.")).count(), 2, "{subjects:?}");
    let varz = monitor_json(http, "/varz").await;
    assert_eq!(varz["accounts"], 5);
    assert_eq!(varz["system_account"], "$SYS");
    server.shutdown().await;
}

/// nats-py as a tenant would use it: A serves, B imports; C sees nothing.
const PY_TENANTS: &str = r#"
import asyncio, sys, nats

async def main(url):
    a = await nats.connect(url, user="a", password="pa")
    b = await nats.connect(url, user="b", password="pb")
    c = await nats.connect(url, user="c", password="pc")
    async def answer(msg):
        await msg.respond(b"12:00 for " + msg.data)
    await a.subscribe("svc.time", cb=answer)
    got_b, got_c = [], []
    async def on_b(msg):
        got_b.append(msg.subject)
    async def on_c(msg):
        got_c.append(msg.subject)
    await b.subscribe("from_a.>", cb=on_b)
    await c.subscribe(">", cb=on_c)
    await a.flush(); await b.flush(); await c.flush()
    reply = await b.request("time", b"b", timeout=5)
    assert reply.data == b"12:00 for b", reply.data
    await a.publish("public.news", b"n")
    await a.publish("orders.new", b"o")
    await a.flush()
    # C's own marker, after A's messages were handled.
    await c.publish("marker", b"m")
    await c.flush()
    for _ in range(200):
        if got_b and got_c:
            break
        await asyncio.sleep(0.01)
    assert got_b == ["from_a.public.news"], got_b
    assert got_c == ["marker"], got_c
    try:
        await c.request("time", b"c", timeout=1)
        raise SystemExit("C reached A's service")
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        pass
    for n in (a, b, c):
        await n.close()
    print("ok")

asyncio.run(main(sys.argv[1]))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_py_tenants_import_and_stay_apart() {
    let Some(python) = common::deps::python() else { return };
    let server = start(options_from(TENANTS)).await;
    let url = url(&server);
    let out = tokio::task::spawn_blocking(move || Command::new(python).arg("-c").arg(PY_TENANTS).arg(url).output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "nats-py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    server.shutdown().await;
}
