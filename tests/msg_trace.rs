//! Message tracing, differentially: nats-server 2.15.1 and warden run the
//! same config, raw clients publish the same traced messages on each, and
//! the trace events (ids and times left out), what the subscribers got and
//! what the publisher was told must be the same: plain and queue
//! subscribers, `Nats-Trace-Only`, a subject mapping, a stream import
//! (without `allow_trace`), service imports with and without the export's
//! `allow_trace`, a sampled `traceparent` with the account's `msg_trace`,
//! a publish the publisher may not make, and a trace destination it may
//! not publish to (no trace, nothing delivered, the same `-ERR`).

mod common;

use std::net::SocketAddr;

use common::peers::{free_port, spawn_nats_server, NatsServer};
use common::{options_from, start, url, Raw};
use serde_json::Value;

const CONFIG: &str = r#"
server_name: tr
accounts {
  A: {
    users: [ {user: a, password: p, permissions: { publish: { deny: ["secret.>"] } } } ]
    mappings: { "map.in": "map.out" }
    exports: [ {stream: "foo"} ]
    imports: [ {service: {account: B, subject: "svc.>"}}, {service: {account: C, subject: "csvc"}} ]
    msg_trace: { dest: "acc.trace", sampling: 100 }
  }
  B: { users: [ {user: b, password: p} ], exports: [ {service: "svc.>", allow_trace: true} ] }
  C: { users: [ {user: c, password: p} ], exports: [ {service: "csvc"} ] }
  D: { users: [ {user: d, password: p} ], imports: [ {stream: {account: A, subject: "foo"}, to: "dfoo"} ] }
}
"#;

/// One traced publish: subject, reply, headers.
type Publish = (&'static str, Option<&'static str>, Vec<(&'static str, &'static str)>);

fn publishes() -> Vec<Publish> {
    let dest = |d: &'static str| ("Nats-Trace-Dest", d);
    let only = ("Nats-Trace-Only", "true");
    vec![
        ("foo", None, vec![dest("trace.1"), ("X-A", "1")]),
        ("foo", None, vec![dest("trace.2"), only, ("X-A", "1")]),
        ("foo", None, vec![dest("secret.x")]),
        ("map.in", None, vec![dest("trace.3")]),
        ("svc.x", Some("rep.1"), vec![dest("trace.4")]),
        ("csvc", Some("rep.2"), vec![dest("trace.5")]),
        ("csvc", Some("rep.2"), vec![dest("trace.6"), only]),
        ("foo", None, vec![("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]),
        ("foo", None, vec![("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]),
        ("secret.y", None, vec![dest("trace.7")]),
        ("foo", None, vec![("Nats-Trace-Only", "true")]),
        ("foo", None, vec![dest("trace.8"), only]),
        ("foo", None, vec![dest("bad.*")]),
    ]
}

fn hpub((subject, reply, headers): &Publish) -> String {
    let mut block = String::from("NATS/1.0\r\n");
    for (k, v) in headers {
        block.push_str(&format!("{k}: {v}\r\n"));
    }
    block.push_str("\r\n");
    let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
    format!("HPUB {subject}{reply} {} {}\r\n{block}hi\r\n", block.len(), block.len() + 2)
}

async fn login(addr: SocketAddr, user: &str, name: &str) -> Raw {
    let (mut raw, _) = Raw::connect(addr).await;
    let connect = serde_json::json!({
        "verbose": false, "pedantic": false, "headers": true, "protocol": 1,
        "user": user, "pass": "p", "name": name,
    });
    raw.send(format!("CONNECT {connect}\r\n")).await;
    pong(&mut raw).await;
    raw
}

/// Waits for the PONG to a PING; nats-server sends its INFO again after a
/// CONNECT with `protocol: 1`, which is skipped.
async fn pong(raw: &mut Raw) {
    raw.send("PING\r\n").await;
    loop {
        let line = raw.next_non_ping().await;
        if line == "PONG" {
            return;
        }
        assert!(line.starts_with("INFO "), "{line}");
    }
}

/// Everything a client was sent until the PONG to its PING: messages as
/// `subject sid [reply] | headers | payload`, other lines as they are.
async fn drain(raw: &mut Raw) -> Vec<String> {
    raw.send("PING\r\n").await;
    let mut out = Vec::new();
    loop {
        let line = raw.next_non_ping().await;
        if line == "PONG" {
            return out;
        }
        // nats-server writes its own events with an empty reply field
        // (`MSG trace.1 1  800`, two spaces); clients read both alike.
        let parts: Vec<&str> = line.split(' ').filter(|p| !p.is_empty()).collect();
        match parts[0] {
            "MSG" => {
                let size: usize = parts.last().unwrap().parse().unwrap();
                let payload = raw.payload(size).await;
                out.push(format!(
                    "MSG {} | {}",
                    parts[1..parts.len() - 1].join(" "),
                    String::from_utf8_lossy(&payload)
                ));
            }
            "HMSG" => {
                let size: usize = parts.last().unwrap().parse().unwrap();
                let payload = raw.payload(size).await;
                // nats-server adds `Nats-Request-Info` to every imported
                // request; warden does not (SECURITY.md): left out.
                let text: String = String::from_utf8_lossy(&payload)
                    .split_inclusive('\n')
                    .filter(|line| !line.starts_with("Nats-Request-Info:"))
                    .collect();
                let head = parts[1..parts.len() - 2].join(" ");
                out.push(normalise_reply(&format!("HMSG {head} | {text}")));
            }
            "INFO" => {}
            _ => out.push(line),
        }
    }
}

/// `_R_.<prefix>.<id>` replies are random on both servers.
fn normalise_reply(text: &str) -> String {
    text.split_inclusive([' ', '\n'])
        .map(|w| if w.starts_with("_R_.") { "_R_".to_owned() + &w[w.trim_end().len()..] } else { w.to_owned() })
        .collect()
}

/// A trace event without what differs between servers and runs: the
/// server's id, version and times, connection ids; steps after the
/// ingress in a stable order (subscribers come out of each server's index
/// in its own order).
fn normalise(event: &Value) -> Value {
    let mut event = event.clone();
    let server = &event["server"];
    let server = serde_json::json!({"name": server["name"], "host": server["host"]});
    event["server"] = server;
    let mut steps: Vec<Value> = event["events"].as_array().unwrap().clone();
    for step in &mut steps {
        let step = step.as_object_mut().unwrap();
        step.remove("ts");
        step.remove("cid");
    }
    let ingress = steps.remove(0);
    steps.sort_by_key(|s| s.to_string());
    steps.insert(0, ingress);
    event["events"] = Value::Array(steps);
    event
}

/// What one server did with the publishes.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<(String, Value)>,
    publisher: Vec<String>,
    subscriber: Vec<String>,
    b: Vec<String>,
    c: Vec<String>,
    d: Vec<String>,
}

async fn run(addr: SocketAddr) -> Outcome {
    let mut tracer = login(addr, "a", "tracer").await;
    tracer.send("SUB trace.> 1\r\nSUB acc.trace 2\r\n").await;
    let mut sub = login(addr, "a", "subber").await;
    sub.send("SUB foo 1\r\nSUB foo grp 2\r\nSUB map.out 3\r\n").await;
    let mut b = login(addr, "b", "bsvc").await;
    b.send("SUB svc.> 1\r\n").await;
    let mut c = login(addr, "c", "csvc").await;
    c.send("SUB csvc 1\r\n").await;
    let mut d = login(addr, "d", "dsub").await;
    d.send("SUB dfoo 1\r\n").await;
    for raw in [&mut tracer, &mut sub, &mut b, &mut c, &mut d] {
        pong(raw).await;
    }
    let mut publisher = login(addr, "a", "pubber").await;
    for p in publishes() {
        publisher.send(hpub(&p)).await;
    }
    let publisher = drain(&mut publisher).await;
    // nats-server queues its events to an internal sender: wait for all
    // nine (a wrong count then fails on the comparison, not here).
    let mut events = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while events.len() < 9 {
            for line in drain(&mut tracer).await {
                let (head, json) = line.split_once(" | ").unwrap();
                events.push((head.to_owned(), normalise(&serde_json::from_str(json).unwrap())));
            }
        }
    })
    .await;
    Outcome {
        events,
        publisher,
        subscriber: drain(&mut sub).await,
        b: drain(&mut b).await,
        c: drain(&mut c).await,
        d: drain(&mut d).await,
    }
}

fn reference(config: &str) -> Option<(NatsServer, SocketAddr)> {
    let binary = common::deps::nats_server_2_15()?;
    let port = free_port();
    let server = spawn_nats_server(&binary, "msg-trace-ref", &format!("listen: \"127.0.0.1:{port}\"\n{config}"));
    Some((server, SocketAddr::from(([127, 0, 0, 1], port))))
}

async fn wait_listening(addr: SocketAddr) {
    common::within(async {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn traces_agree_with_nats_server_2_15() {
    let server = start(options_from(CONFIG)).await;
    let addr: SocketAddr = url(&server).trim_start_matches("nats://").parse().unwrap();
    let ours = run(addr).await;

    // Pinned without the reference, too.
    assert_eq!(
        ours.publisher,
        vec![
            "-ERR 'Permissions Violation for Publish to \"secret.x\"'",
            "-ERR 'Permissions Violation for Publish to \"secret.y\"'",
        ],
        "the denied destination and the denied subject, in order"
    );
    let heads: Vec<&str> = ours.events.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        heads,
        [
            "MSG trace.1 1",
            "MSG trace.2 1",
            "MSG trace.3 1",
            "MSG trace.4 1",
            "MSG trace.5 1",
            "MSG trace.6 1",
            "MSG acc.trace 2",
            "MSG trace.7 1",
            "MSG trace.8 1"
        ],
        "{:#?}",
        ours.events
    );
    assert!(ours
        .subscriber
        .iter()
        .all(|m| !m.contains("secret.x") && !m.contains("trace.2") && !m.contains("trace.8")));
    assert_eq!(ours.c.len(), 1, "trace-only stops at an import without allow_trace: {:?}", ours.c);
    assert!(ours.c[0].contains("Nats-Trace-Dest: trace disabled"), "{:?}", ours.c);
    let refused = &ours.events[7].1["events"][0];
    assert_eq!(refused["error"], "Permissions Violation for Publish to \"secret.y\"");

    let Some((_reference, ref_addr)) = reference(CONFIG) else { return };
    wait_listening(ref_addr).await;
    let theirs = run(ref_addr).await;
    assert_eq!(ours.publisher, theirs.publisher);
    assert_eq!(ours.subscriber, theirs.subscriber);
    assert_eq!(ours.c, theirs.c);
    assert_eq!(ours.d, theirs.d);
    assert_eq!(ours.b, theirs.b);
    assert_eq!(ours.events.len(), theirs.events.len(), "{:#?}\n{:#?}", ours.events, theirs.events);
    for (o, t) in ours.events.iter().zip(&theirs.events) {
        assert_eq!(o, t);
    }
}

/// A cluster of two wardens: a traced message sent over the route carries
/// `Nats-Trace-Hop`, and each server publishes its own event (the first
/// lists the route as an egress with the hop, the second the route as its
/// ingress and its subscriber as egress); trace-only is honoured on the
/// second server.
#[tokio::test]
async fn each_server_of_a_cluster_sends_its_own_event_linked_by_the_hop() {
    let cluster_port = free_port();
    let config = |name: &str, port: u16, routes: &str| {
        let base = CONFIG.replace("server_name: tr", &format!("server_name: {name}"));
        format!(
            "{base}\ncluster {{ name: c, listen: \"127.0.0.1:{port}\", routes: [{routes}], insecure_allow_unauthenticated_routes: true }}\n"
        )
    };
    let one = start(options_from(&config("one", cluster_port, ""))).await;
    let two = start(options_from(&config("two", free_port(), &format!("\"nats://127.0.0.1:{cluster_port}\"")))).await;
    let addr = |s: &warden::server::Server| -> SocketAddr { url(s).trim_start_matches("nats://").parse().unwrap() };
    let mut remote = login(addr(&two), "a", "remote").await;
    remote.send("SUB foo 1\r\n").await;
    pong(&mut remote).await;
    let mut tracer = login(addr(&one), "a", "tracer").await;
    tracer.send("SUB trace.> 1\r\n").await;
    pong(&mut tracer).await;
    common::peers::eventually("interest crosses the route", || {
        common::route_interest(&one, "A") > 0 && common::route_interest(&two, "A") > 0
    })
    .await;
    let mut publisher = login(addr(&one), "a", "pubber").await;
    publisher.send(hpub(&("foo", None, vec![("Nats-Trace-Dest", "trace.1")]))).await;
    publisher.send(hpub(&("foo", None, vec![("Nats-Trace-Dest", "trace.2"), ("Nats-Trace-Only", "true")]))).await;
    assert!(drain(&mut publisher).await.is_empty());
    let mut events: Vec<Value> = Vec::new();
    common::within(async {
        while events.len() < 4 {
            for line in drain(&mut tracer).await {
                events.push(serde_json::from_str(line.split_once(" | ").unwrap().1).unwrap());
            }
        }
    })
    .await;
    for dest in ["trace.1", "trace.2"] {
        let of = |server: &str| -> &Value {
            events
                .iter()
                .find(|e| e["server"]["name"] == server && e["request"]["header"]["Nats-Trace-Dest"][0] == dest)
                .unwrap_or_else(|| panic!("no event of {server} for {dest}: {events:#?}"))
        };
        let (first, second) = (of("one"), of("two"));
        assert_eq!(first["hops"], 1, "{first:#}");
        let egress = &first["events"][1];
        assert_eq!(
            (&egress["type"], &egress["kind"], &egress["name"], &egress["hop"]),
            (&"eg".into(), &1.into(), &"two".into(), &"1".into()),
            "{first:#}"
        );
        assert!(egress.get("error").is_none(), "{first:#}");
        let ingress = &second["events"][0];
        assert_eq!(
            (&ingress["kind"], &ingress["name"], &ingress["subj"]),
            (&1.into(), &"one".into(), &"foo".into()),
            "{second:#}"
        );
        assert_eq!(second["request"]["header"]["Nats-Trace-Hop"][0], "1", "{second:#}");
        let egress = &second["events"][1];
        assert_eq!(
            (&egress["kind"], &egress["name"], &egress["sub"]),
            (&0.into(), &"remote".into(), &"foo".into()),
            "{second:#}"
        );
    }
    let got = drain(&mut remote).await;
    assert_eq!(got.len(), 1, "only the message that was not trace-only: {got:?}");
    assert!(got[0].contains("Nats-Trace-Dest: trace.1") && got[0].contains("Nats-Trace-Hop: 1"), "{got:?}");
}

/// A mixed cluster, warden and nats-server 2.15.1: warden's route INFO
/// says it traces, so nats-server sends traced messages on with their hop
/// and warden's traced messages reach nats-server with theirs; each server
/// publishes its own event, linked by the hop.
#[tokio::test]
async fn a_mixed_cluster_with_nats_server_2_15_links_the_events_both_ways() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    let (ref_client, ref_cluster) = (free_port(), free_port());
    let base = |name: &str| CONFIG.replace("server_name: tr", &format!("server_name: {name}"));
    let ref_config = format!(
        "listen: \"127.0.0.1:{ref_client}\"\n{}\ncluster {{ name: c, listen: \"127.0.0.1:{ref_cluster}\" }}\n",
        base("ref")
    );
    let _reference = spawn_nats_server(&binary, "msg-trace-mixed", &ref_config);
    let ref_addr = SocketAddr::from(([127, 0, 0, 1], ref_client));
    wait_listening(ref_addr).await;
    let ours = start(options_from(&format!(
        "{}\ncluster {{ name: c, listen: \"127.0.0.1:{}\", routes: [\"nats://127.0.0.1:{ref_cluster}\"], insecure_allow_unauthenticated_routes: true }}\n",
        base("ours"),
        free_port()
    )))
    .await;
    let our_addr: SocketAddr = url(&ours).trim_start_matches("nats://").parse().unwrap();
    let mut ours_sub = login(our_addr, "a", "ours-sub").await;
    ours_sub.send("SUB foo 1\r\nSUB trace.> 2\r\n").await;
    pong(&mut ours_sub).await;
    let mut ref_sub = login(ref_addr, "a", "ref-sub").await;
    ref_sub.send("SUB foo 1\r\n").await;
    pong(&mut ref_sub).await;
    // Both subscriptions known on both sides: a probe each way comes back.
    common::peers::eventually("nats-server's interest reaches warden", || common::route_interest(&ours, "A") >= 1)
        .await;
    for (from, dest) in [(our_addr, "trace.ours"), (ref_addr, "trace.ref")] {
        let mut publisher = login(from, "a", "pubber").await;
        publisher.send(hpub(&("foo", None, vec![("Nats-Trace-Dest", dest)]))).await;
        assert!(drain(&mut publisher).await.is_empty());
    }
    let events = linked_events(&mut ours_sub).await;
    assert_linked(&events, 1);
}

/// The four events of a message traced from each of two linked servers
/// ("ours" to `trace.ours`, "ref" to `trace.ref`), as `sub` reads them.
async fn linked_events(sub: &mut Raw) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    common::within(async {
        while events.len() < 4 {
            for line in drain(sub).await {
                if let Some((head, json)) = line.split_once(" | ") {
                    if head.starts_with("MSG trace.") {
                        events.push(serde_json::from_str(json).unwrap());
                    }
                }
            }
        }
    })
    .await;
    events
}

/// Each server's event of the other's message: the origin's lists the
/// link (connection `kind`) with hop 1 and no error, the next server's
/// starts with its ingress from the origin over that link, hop 1.
fn assert_linked(events: &[Value], kind: u8) {
    for (origin, other, dest) in [("ours", "ref", "trace.ours"), ("ref", "ours", "trace.ref")] {
        let of = |server: &str| -> &Value {
            events
                .iter()
                .find(|e| e["server"]["name"] == server && e["request"]["header"]["Nats-Trace-Dest"][0] == dest)
                .unwrap_or_else(|| panic!("no event of {server} for {dest}: {events:#?}"))
        };
        let (first, second) = (of(origin), of(other));
        assert_eq!(first["hops"], 1, "{first:#}");
        let link = first["events"].as_array().unwrap().iter().find(|e| e["kind"] == kind).unwrap();
        assert_eq!((&link["name"], &link["hop"]), (&other.into(), &"1".into()), "{first:#}");
        assert!(link.get("error").is_none(), "{first:#}");
        let ingress = &second["events"][0];
        assert_eq!((&ingress["kind"], &ingress["name"]), (&kind.into(), &origin.into()), "{second:#}");
        assert_eq!(second["request"]["header"]["Nats-Trace-Hop"][0], "1", "{second:#}");
        assert_eq!(second["events"][1]["kind"], 0, "delivered to the client there: {second:#}");
    }
}

/// An account's `msg_trace { sampling }`: a share of the messages with a
/// sampled `traceparent` is traced, the rest delivered with
/// `Nats-Trace-Dest: trace disabled` (so no server further on traces
/// them), on warden as on nats-server 2.15.1 (whose draw traces
/// `sampling + 1` in 100).
#[tokio::test]
async fn account_sampling_traces_a_share_and_disables_the_rest() {
    const N: usize = 400;
    let config =
        "accounts { A: { users: [ {user: a, password: p} ], msg_trace: { dest: \"acc.trace\", sampling: \"40%\" } } }";
    let server = start(options_from(config)).await;
    let mut addrs = vec![url(&server).trim_start_matches("nats://").parse::<SocketAddr>().unwrap()];
    let reference = reference(config);
    if let Some((_, addr)) = &reference {
        wait_listening(*addr).await;
        addrs.push(*addr);
    }
    for addr in addrs {
        let mut sub = login(addr, "a", "sub").await;
        sub.send("SUB foo 1\r\nSUB acc.trace 2\r\n").await;
        pong(&mut sub).await;
        let mut publisher = login(addr, "a", "pub").await;
        let parent = ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        for _ in 0..N {
            publisher.send(hpub(&("foo", None, vec![parent]))).await;
        }
        assert!(drain(&mut publisher).await.is_empty());
        // nats-server queues its events to an internal sender: they may
        // come after the deliveries, so wait for every message's outcome.
        let mut got = Vec::new();
        let count = |got: &[String]| {
            let events = got.iter().filter(|m| m.starts_with("MSG acc.trace 2 |")).count();
            let delivered: Vec<&String> = got.iter().filter(|m| m.starts_with("HMSG foo 1 |")).collect();
            let disabled = delivered.iter().filter(|m| m.contains("Nats-Trace-Dest: trace disabled")).count();
            (events, delivered.len(), disabled)
        };
        common::within(async {
            loop {
                got.extend(drain(&mut sub).await);
                let (events, delivered, disabled) = count(&got);
                if delivered == N && events + disabled == N {
                    break;
                }
            }
        })
        .await;
        let (events, _, _) = count(&got);
        assert!((100..=230).contains(&events), "{addr}: {events} of {N} traced at 40%");
    }
}

/// Operator mode: an account JWT's `trace` claim (nats-server 2.11+) and a
/// service export's `allow_trace` do on warden what they do on nats-server
/// 2.15.1, which also checks the tokens. The same JWTs on both servers: A
/// traces sampled `traceparent` messages to `acc.trace` and imports B's
/// service, whose export allows the trace across; a sampled request is
/// traced into B, one that is not sampled is only delivered.
#[tokio::test]
async fn account_jwt_trace_claims_agree_with_nats_server_2_15() {
    use warden::nkeys::{KeyPair, KeyType};
    let (operator, a, b) = (
        KeyPair::generate(KeyType::Operator).unwrap(),
        KeyPair::generate(KeyType::Account).unwrap(),
        KeyPair::generate(KeyType::Account).unwrap(),
    );
    let op = warden::jwt::sign(
        &operator,
        serde_json::json!({"sub": operator.public().as_str(), "nats": {"type": "operator", "version": 2}}),
    );
    let limits =
        serde_json::json!({"conn": -1, "subs": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true});
    let account = |key: &KeyPair, name: &str, claims: serde_json::Value| {
        let mut nats = serde_json::json!({"type": "account", "version": 2, "limits": limits});
        nats.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
        warden::jwt::sign(&operator, serde_json::json!({"sub": key.public().as_str(), "name": name, "nats": nats}))
    };
    let b_key = b.public().as_str().to_owned();
    let a_jwt = account(
        &a,
        "A",
        serde_json::json!({
            "trace": {"dest": "acc.trace", "sampling": 100},
            "imports": [{"subject": "svc", "account": b_key, "type": "service"}],
        }),
    );
    let b_jwt =
        account(&b, "B", serde_json::json!({"exports": [{"subject": "svc", "type": "service", "allow_trace": true}]}));
    // Bearer users: they log in with their JWT alone.
    let user = |account: &KeyPair, name: &str| {
        let key = KeyPair::generate(KeyType::User).unwrap();
        warden::jwt::sign(
            account,
            serde_json::json!({"sub": key.public().as_str(), "name": name, "nats": {
                "type": "user", "version": 2, "bearer_token": true, "subs": -1, "data": -1, "payload": -1,
            }}),
        )
    };
    let (ua, ub) = (user(&a, "ua"), user(&b, "ub"));
    // nats-server sends trace events through its system account's sender.
    let sys = KeyPair::generate(KeyType::Account).unwrap();
    let sys_key = sys.public().as_str().to_owned();
    let sys_jwt = account(&sys, "SYS", serde_json::json!({}));
    let config = format!(
        "server_name: tr\noperator: {op}\nsystem_account: {sys_key}\nresolver: MEMORY\n\
         resolver_preload {{ {}: {a_jwt}, {b_key}: {b_jwt}, {sys_key}: {sys_jwt} }}\n",
        a.public().as_str()
    );
    let jwt_login = |addr: SocketAddr, token: String, name: &'static str| async move {
        let (mut raw, _) = Raw::connect(addr).await;
        let connect = serde_json::json!({
            "verbose": false, "pedantic": false, "headers": true, "protocol": 1, "jwt": token, "name": name,
        });
        raw.send(format!("CONNECT {connect}\r\n")).await;
        pong(&mut raw).await;
        raw
    };
    let run = |addr: SocketAddr| {
        let (ua, ub) = (ua.clone(), ub.clone());
        async move {
            let mut tracer = jwt_login(addr, ua.clone(), "tracer").await;
            tracer.send("SUB acc.trace 1\r\n").await;
            let mut service = jwt_login(addr, ub, "service").await;
            service.send("SUB svc 1\r\n").await;
            pong(&mut tracer).await;
            pong(&mut service).await;
            let mut publisher = jwt_login(addr, ua, "requester").await;
            let sampled = ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
            let not_sampled = ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
            publisher.send(hpub(&("svc", Some("answer.here"), vec![sampled]))).await;
            publisher.send(hpub(&("svc", Some("answer.here"), vec![not_sampled]))).await;
            let told = drain(&mut publisher).await;
            let mut events = Vec::new();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while events.is_empty() {
                    for line in drain(&mut tracer).await {
                        let (head, json) = line.split_once(" | ").unwrap();
                        events.push((head.to_owned(), normalise(&serde_json::from_str(json).unwrap())));
                    }
                }
            })
            .await;
            (told, events, drain(&mut service).await)
        }
    };
    let server = start(options_from(&config)).await;
    let ours = run(server.local_addr()).await;
    assert_eq!(ours.1.len(), 1, "one traced request: {:?}", ours.1);
    let steps: Vec<&str> =
        ours.1[0].1["events"].as_array().unwrap().iter().filter_map(|s| s["type"].as_str()).collect();
    assert!(steps.contains(&"si") && steps.contains(&"eg"), "traced across the import into B: {steps:?}");
    assert_eq!(ours.2.len(), 2, "both requests reach the service");
    let Some((_reference, addr)) = reference(&config) else { return };
    wait_listening(addr).await;
    let theirs = run(addr).await;
    assert_eq!(ours, theirs);
    server.shutdown().await;
}

/// Leaf connections between warden and nats-server 2.15.1, warden the hub
/// and then the leaf: both sides say they trace (`proto` 3), so a traced
/// message crosses with its hop and the other side publishes its own event
/// (kind 4, leaf), within its account; each side's client reads both.
async fn leaf_linked(warden_is_hub: bool) {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    let base = |name: &str| CONFIG.replace("server_name: tr", &format!("server_name: {name}"));
    // The leaf user of the hub, in A.
    let hub_accounts =
        |name: &str| base(name).replace("{user: a, password: p,", "{user: leaf, password: p}, {user: a, password: p,");
    let (ref_client, leaf_port) = (free_port(), free_port());
    let ours_config;
    let ref_config;
    if warden_is_hub {
        ours_config = format!("{}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n", hub_accounts("ours"));
        ref_config = format!(
            "listen: \"127.0.0.1:{ref_client}\"\n{}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://leaf:p@127.0.0.1:{leaf_port}\", account: A }} ] }}\n",
            base("ref")
        );
    } else {
        ref_config = format!(
            "listen: \"127.0.0.1:{ref_client}\"\n{}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n",
            hub_accounts("ref")
        );
        ours_config = format!(
            "{}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://leaf:p@127.0.0.1:{leaf_port}\", account: A }} ] }}\n",
            base("ours")
        );
    }
    let (ours, _reference) = if warden_is_hub {
        let ours = start(options_from(&ours_config)).await;
        (ours, spawn_nats_server(&binary, "msg-trace-leaf-ref", &ref_config))
    } else {
        let reference = spawn_nats_server(&binary, "msg-trace-hub-ref", &ref_config);
        wait_listening(SocketAddr::from(([127, 0, 0, 1], leaf_port))).await;
        (start(options_from(&ours_config)).await, reference)
    };
    let ref_addr = SocketAddr::from(([127, 0, 0, 1], ref_client));
    wait_listening(ref_addr).await;
    let our_addr: SocketAddr = url(&ours).trim_start_matches("nats://").parse().unwrap();
    let mut ours_sub = login(our_addr, "a", "ours-sub").await;
    ours_sub.send("SUB foo 1\r\nSUB trace.> 2\r\n").await;
    pong(&mut ours_sub).await;
    let mut ref_sub = login(ref_addr, "a", "ref-sub").await;
    ref_sub.send("SUB foo 1\r\nSUB trace.> 2\r\n").await;
    pong(&mut ref_sub).await;
    // Interest crosses the leaf connection asynchronously: untraced probes
    // each way until each side's subscriber hears the other side.
    for (from, to) in [(our_addr, &mut ref_sub), (ref_addr, &mut ours_sub)] {
        let mut probe = login(from, "a", "probe").await;
        common::within(async {
            loop {
                probe.send("PUB foo 5\r\nprobe\r\n").await;
                if drain(to).await.iter().any(|l| l.contains("| probe")) {
                    break;
                }
            }
        })
        .await;
    }
    let _ = drain(&mut ours_sub).await;
    let _ = drain(&mut ref_sub).await;
    for (from, dest) in [(our_addr, "trace.ours"), (ref_addr, "trace.ref")] {
        let mut publisher = login(from, "a", "pubber").await;
        publisher.send(hpub(&("foo", None, vec![("Nats-Trace-Dest", dest)]))).await;
        assert!(drain(&mut publisher).await.is_empty());
    }
    for sub in [&mut ours_sub, &mut ref_sub] {
        let events = linked_events(sub).await;
        assert_linked(&events, 4);
    }
    ours.shutdown().await;
}

/// Runs `scenario` on a runtime of its own, on a thread with an 8 MiB
/// stack: the leaf scenario's future, polled whole, outgrows a test
/// thread's 2 MiB in a debug build.
fn on_a_large_stack(scenario: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(scenario);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_warden_hub_and_a_nats_server_2_15_leaf_link_the_events_both_ways() {
    on_a_large_stack(leaf_linked(true));
}

#[test]
fn a_warden_leaf_and_a_nats_server_2_15_hub_link_the_events_both_ways() {
    on_a_large_stack(leaf_linked(false));
}
