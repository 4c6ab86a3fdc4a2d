//! Clustering: a 3-node full mesh formed from one seed route, interest
//! propagation, queue groups across nodes, client failover, route auth,
//! and a mixed cluster with a real nats-server when one is installed.

mod common;

use std::time::Duration;

use common::peers::*;
use common::*;
use futures::StreamExt;
use warden::config::{ClusterOptions, Options, RouteAuthorization};
use warden::secret::Secret;
use warden::server::Server;

fn cluster_opts(routes: Vec<String>) -> ClusterOptions {
    ClusterOptions {
        name: Some("c1".into()),
        routes,
        // Loopback-only test cluster.
        allow_unauthenticated: true,
        ..ClusterOptions::default()
    }
}

async fn node(name: &str, routes: Vec<String>) -> Server {
    start(Options { server_name: Some(name.into()), cluster: Some(cluster_opts(routes)), ..test_options() }).await
}

fn route_url(server: &Server) -> String {
    format!("nats-route://{}", server.cluster().unwrap().listen_addr)
}

async fn mesh() -> (Server, Server, Server) {
    let a = node("A", vec![]).await;
    let b = node("B", vec![route_url(&a)]).await;
    let c = node("C", vec![route_url(&a)]).await;
    for (name, s) in [("A", &a), ("B", &b), ("C", &c)] {
        let cluster = s.cluster().unwrap().clone();
        eventually(&format!("{name} to have 2 routes"), || cluster.route_count() == 2).await;
    }
    (a, b, c)
}

async fn client(server: &Server) -> async_nats::Client {
    within(async_nats::connect(url(server))).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_from_one_seed_deliver_exactly_once() {
    let (a, b, c) = mesh().await;
    let on_b = client(&b).await;
    let on_c = client(&c).await;
    let mut sub_b = on_b.subscribe("orders.>").await.unwrap();
    let mut sub_c = on_c.subscribe("orders.*").await.unwrap();
    on_b.flush().await.unwrap();
    on_c.flush().await.unwrap();
    eventually("A to see interest from B and C", || route_interest(&a, "$G") >= 2).await;
    let on_a = client(&a).await;
    for i in 0..50 {
        on_a.publish(format!("orders.{i}"), "x".into()).await.unwrap();
    }
    on_a.publish("orders.end", "end".into()).await.unwrap();
    on_a.flush().await.unwrap();
    for sub in [&mut sub_b, &mut sub_c] {
        for i in 0..50 {
            assert_eq!(within(sub.next()).await.unwrap().subject.as_str(), format!("orders.{i}"));
        }
        assert_eq!(within(sub.next()).await.unwrap().payload, "end", "nothing was delivered twice");
    }
    // connect_urls lists every node's client address.
    let info = on_a.server_info();
    assert_eq!(info.connect_urls.len(), 3, "{:?}", info.connect_urls);
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_across_nodes_delivers_each_message_once() {
    let (a, b, c) = mesh().await;
    let mut members = Vec::new();
    let mut keep = Vec::new();
    for s in [&b, &c] {
        let cl = client(s).await;
        for _ in 0..2 {
            members.push(cl.queue_subscribe("work", "workers".into()).await.unwrap());
        }
        cl.flush().await.unwrap();
        keep.push(cl);
    }
    eventually("A to see the queue interest", || route_interest(&a, "$G") >= 2).await;
    let on_a = client(&a).await;
    let n = 100;
    for i in 0..n {
        on_a.publish("work", i.to_string().into()).await.unwrap();
    }
    on_a.flush().await.unwrap();
    let mut all = futures::stream::select_all(members);
    let mut seen = Vec::new();
    for _ in 0..n {
        let m = within(all.next()).await.unwrap();
        seen.push(String::from_utf8(m.payload.to_vec()).unwrap().parse::<u32>().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
    // A local member is preferred: with one on A, A's publishes stay on A.
    let mut local = on_a.queue_subscribe("work", "workers".into()).await.unwrap();
    on_a.flush().await.unwrap();
    on_a.publish("work", "local".into()).await.unwrap();
    assert_eq!(within(local.next()).await.unwrap().payload, "local");
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_across_nodes_and_interest_removal() {
    let (a, b, c) = mesh().await;
    let responder = client(&b).await;
    let mut service = responder.subscribe("svc.echo").await.unwrap();
    responder.flush().await.unwrap();
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(req) = service.next().await {
            if let Some(reply) = req.reply {
                let _ = r.publish(reply, req.payload).await;
            }
        }
    });
    eventually("C to see svc.echo", || route_interest(&c, "$G") > 0).await;
    let requester = client(&c).await;
    let answer = within(requester.request("svc.echo", "ping".into())).await.unwrap();
    assert_eq!(answer.payload, "ping");

    // UNSUB and disconnect both withdraw interest cluster-wide.
    let before = route_interest(&a, "$G");
    let temp = client(&b).await;
    let sub = temp.subscribe("temp.x").await.unwrap();
    temp.flush().await.unwrap();
    eventually("A to see temp.x", || route_interest(&a, "$G") == before + 1).await;
    let with_temp = before + 1;
    drop(sub);
    temp.flush().await.unwrap();
    eventually("A to drop temp.x after UNSUB", || route_interest(&a, "$G") == with_temp - 1).await;
    let mut raw = Raw::connected(b.local_addr()).await;
    raw.send("SUB temp.y 1\r\n").await;
    raw.ping_pong().await;
    eventually("A to see temp.y", || route_interest(&a, "$G") == with_temp).await;
    drop(raw);
    eventually("A to drop temp.y after disconnect", || route_interest(&a, "$G") == with_temp - 1).await;
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fails_over_when_its_node_dies() {
    let (a, b, c) = mesh().await;
    let watcher = client(&a).await;
    let mut seen = watcher.subscribe("ticks").await.unwrap();
    watcher.flush().await.unwrap();
    let moving = within(
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(vec![url(&b).parse::<async_nats::ServerAddr>().unwrap(), url(&c).parse().unwrap()]),
    )
    .await
    .unwrap();
    moving.publish("ticks", "before".into()).await.unwrap();
    assert_eq!(within(seen.next()).await.unwrap().payload, "before");
    // Which node is it on? Kill that one.
    let on_b = b.broker().client_count() == 1;
    let (dead, alive) = if on_b { (b, c) } else { (c, b) };
    dead.shutdown().await;
    let mut delivered = false;
    for _ in 0..50 {
        // Publishes while disconnected are buffered by the client; keep trying.
        let _ = moving.publish("ticks", "after".into()).await;
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), seen.next()).await {
            if m.payload == "after" {
                delivered = true;
                break;
            }
        }
    }
    assert!(delivered, "traffic continues after failover");
    a.shutdown().await;
    alive.shutdown().await;
}

#[tokio::test]
async fn route_port_refuses_bad_credentials_and_clients() {
    let mut opts = cluster_opts(vec![]);
    opts.authorization =
        Some(RouteAuthorization { user: "ruser".into(), password: Some(Secret::new("rpass")), timeout: None });
    let audit = temp_dir("route-audit").join("audit.log");
    let trail = warden::config::AuditOptions { file: Some(audit.clone()), ..Default::default() };
    let a = start(Options { cluster: Some(opts), audit: Some(trail), ..test_options() }).await;
    let route_addr = a.cluster().unwrap().listen_addr;
    let stream = within(tokio::net::TcpStream::connect(route_addr)).await.unwrap();
    let mut raw = Raw::new(stream);
    assert!(raw.line().await.starts_with("INFO {"));
    raw.send("CONNECT {\"user\":\"ruser\",\"pass\":\"wrong\",\"name\":\"NX\",\"cluster\":\"c1\"}\r\n").await;
    assert_eq!(raw.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    // On the audit trail, as a route, with the user it claimed.
    let refused = || json_lines(&audit).into_iter().find(|r| r["type"] == "login_refused");
    eventually("the refused route on the audit trail", || refused().is_some()).await;
    let record = refused().unwrap();
    let text = std::fs::read_to_string(&audit).unwrap();
    assert_eq!((record["conn"]["kind"].as_str(), record["conn"]["user"].as_str()), (Some("route"), Some("ruser")));
    assert_eq!((record["method"].as_str(), record["reason"].as_str()), (Some("password"), Some("bad credentials")));
    assert!(!text.contains("wrong"), "no password on the trail");
    let stream = within(tokio::net::TcpStream::connect(route_addr)).await.unwrap();
    let mut raw = Raw::new(stream);
    raw.line().await;
    raw.send("CONNECT {\"lang\":\"go\",\"verbose\":false}\r\n").await;
    assert_eq!(raw.expect_closed().await, "-ERR 'attempted to connect to route port'\r\n");
    // A peer with the right credentials in its route URL joins.
    let good = format!("nats-route://ruser:rpass@{route_addr}");
    let b = node("B", vec![good]).await;
    let cluster = a.cluster().unwrap().clone();
    eventually("the authenticated route", || cluster.route_count() == 1).await;
    let bad = format!("nats-route://ruser:nope@{route_addr}");
    let mut c_opts = cluster_opts(vec![bad]);
    c_opts.name = Some("c1".into());
    let c = start(Options { cluster: Some(c_opts), ..test_options() }).await;
    // C's attempts are refused: A keeps exactly one route while C retries.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cluster.route_count(), 1);
    }
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

/// Reads `raw` until an async INFO whose `connect_urls` leave out `url`
/// (each read bounded by the test timeout).
async fn await_info_without(raw: &mut Raw, url: &str) {
    loop {
        let line = raw.next_non_ping().await;
        let Some(json) = line.strip_prefix("INFO ") else { continue };
        let info: serde_json::Value = serde_json::from_str(json).unwrap();
        let urls = info["connect_urls"].as_array().cloned().unwrap_or_default();
        if !urls.iter().any(|u| u.as_str() == Some(url)) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_entering_lame_duck_is_no_longer_offered_to_clients() {
    let a = node("A", vec![]).await;
    let b = start(Options {
        server_name: Some("B".into()),
        cluster: Some(cluster_opts(vec![route_url(&a)])),
        lame_duck_grace_period: Duration::from_secs(3),
        lame_duck_duration: Duration::from_secs(4),
        ..test_options()
    })
    .await;
    let cluster_a = a.cluster().unwrap().clone();
    eventually("A to have its route to B", || cluster_a.route_count() == 1).await;
    let b_url = b.local_addr().to_string();
    eventually("A to offer B's client URL", || cluster_a.connect_urls().contains(&b_url)).await;
    // A protocol-1 client of A (it takes async INFO), and one of B, so B's
    // lame duck waits its grace period with the route still up.
    let mut on_a = Raw::connected(a.local_addr()).await;
    on_a.ping_pong().await;
    let mut on_b = Raw::connected(b.local_addr()).await;
    on_b.ping_pong().await;

    let draining = tokio::spawn(b.lame_duck());
    await_info_without(&mut on_a, &b_url).await;
    assert_eq!(cluster_a.route_count(), 1, "told by B's lame-duck INFO, not by the route closing");
    assert!(!cluster_a.connect_urls().contains(&b_url));
    assert!(on_b.next_non_ping().await.contains("\"ldm\":true"), "B's own clients are told too");
    within(draining).await.unwrap();
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_with_nats_server() {
    let Some(nats_server) = common::deps::nats_server_2_9() else { return };
    let a = node("A", vec![]).await;
    let (client_port, route_port) = (free_port(), free_port());
    let nats = common::peers::spawn_nats_server(
        &nats_server,
        "mixed",
        &format!(
            "listen: 127.0.0.1:{client_port}\nserver_name: N\ncluster {{ name: c1, listen: 127.0.0.1:{route_port}, routes: [\"{}\"] }}\n",
            route_url(&a)
        ),
    );
    let c = node("C", vec![route_url(&a)]).await;
    for (name, s) in [("A", &a), ("C", &c)] {
        let cluster = s.cluster().unwrap().clone();
        eventually(&format!("{name} to have routes to the other two"), || cluster.route_count() == 2).await;
    }
    // warden keeps the duplicate route solicited by the smaller server id,
    // nats-server keeps the first one: a pair may drop both and reconnect
    // once. Wait until the mesh has held steady for a second.
    let (ca, cc) = (a.cluster().unwrap().clone(), c.cluster().unwrap().clone());
    let mut steady_since = std::time::Instant::now();
    within(async {
        while steady_since.elapsed() < Duration::from_secs(1) {
            if ca.route_count() != 2 || cc.route_count() != 2 {
                steady_since = std::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let n_url = format!("nats://127.0.0.1:{client_port}");
    let on_n = within(async_nats::connect(n_url)).await.unwrap();
    let on_a = client(&a).await;
    let on_c = client(&c).await;

    // pub/sub: from nats-server to both wardens, exactly once each.
    let mut sub_a = on_a.subscribe("mixed.>").await.unwrap();
    let mut sub_c = on_c.subscribe("mixed.*").await.unwrap();
    on_a.flush().await.unwrap();
    on_c.flush().await.unwrap();
    let mut probe = 0;
    loop {
        // Interest reaches nats-server asynchronously: probe until both see it.
        on_n.publish("mixed.probe", probe.to_string().into()).await.unwrap();
        on_n.flush().await.unwrap();
        let got_a = tokio::time::timeout(Duration::from_millis(100), sub_a.next()).await.is_ok();
        let got_c = tokio::time::timeout(Duration::from_millis(100), sub_c.next()).await.is_ok();
        if got_a && got_c {
            break;
        }
        probe += 1;
        assert!(probe < 100, "interest never reached nats-server");
    }
    while tokio::time::timeout(Duration::from_millis(100), sub_a.next()).await.is_ok() {}
    while tokio::time::timeout(Duration::from_millis(100), sub_c.next()).await.is_ok() {}
    for i in 0..20 {
        on_n.publish(format!("mixed.{i}"), "x".into()).await.unwrap();
    }
    on_n.publish("mixed.end", "end".into()).await.unwrap();
    on_n.flush().await.unwrap();
    for sub in [&mut sub_a, &mut sub_c] {
        for i in 0..20 {
            assert_eq!(within(sub.next()).await.unwrap().subject.as_str(), format!("mixed.{i}"));
        }
        assert_eq!(within(sub.next()).await.unwrap().payload, "end");
    }

    // Queue group with members on nats-server and C, fed from A: each once.
    let mut members = vec![
        on_n.queue_subscribe("jobs", "w".into()).await.unwrap(),
        on_c.queue_subscribe("jobs", "w".into()).await.unwrap(),
    ];
    on_n.flush().await.unwrap();
    on_c.flush().await.unwrap();
    // nats-server also announces its $SYS account's subscriptions, which
    // stay out of $G (C's self-service `$SYS` requests are $G interest):
    // count the queue members themselves.
    let members_on_a =
        || a.broker().accounts.global().router.subscriptions().iter().filter(|s| &*s.subject == b"jobs").count();
    eventually("A to see both queue members", || members_on_a() == 2).await;
    assert!(
        a.broker()
            .accounts
            .global()
            .router
            .subscriptions()
            .iter()
            .all(|s| s.owner.kind != warden::broker::ClientKind::Route
                || !s.subject.starts_with(b"$SYS.")
                || warden::perms::system_space::SELF_SERVICE.contains(&&*s.subject)),
        "another account's route interest entered the global index"
    );
    let n = 40;
    for i in 0..n {
        on_a.publish("jobs", i.to_string().into()).await.unwrap();
    }
    on_a.flush().await.unwrap();
    let mut all = futures::stream::select_all(members.drain(..));
    let mut seen = Vec::new();
    for _ in 0..n {
        let m = within(all.next()).await.unwrap();
        seen.push(String::from_utf8(m.payload.to_vec()).unwrap().parse::<u32>().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());

    // Request/reply: responder on nats-server, requester on C.
    let mut service = on_n.subscribe("mixed.svc").await.unwrap();
    on_n.flush().await.unwrap();
    let responder = on_n.clone();
    tokio::spawn(async move {
        while let Some(req) = service.next().await {
            if let Some(reply) = req.reply {
                let _ = responder.publish(reply, "from nats-server".into()).await;
            }
        }
    });
    let mut answer = None;
    for _ in 0..50 {
        if let Ok(m) = on_c.request("mixed.svc", "hi".into()).await {
            answer = Some(m);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer.expect("request across the mixed cluster").payload, "from nats-server");

    // nats-server entering lame duck (SIGUSR2): A stops offering it to its
    // clients at once, while the route is still up.
    let n_client_url = format!("127.0.0.1:{client_port}");
    eventually("A to offer nats-server's URL", || ca.connect_urls().contains(&n_client_url)).await;
    let mut raw_a = Raw::connected(a.local_addr()).await;
    raw_a.ping_pong().await;
    let pid = nats.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-USR2", &pid]).status().unwrap().success());
    await_info_without(&mut raw_a, &n_client_url).await;
    assert_eq!(ca.route_count(), 2, "told by nats-server's lame-duck INFO, not by the route closing");
    a.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_over_verified_tls() {
    let dir = temp_dir("route-tls");
    let ca = warden::tls::Ca::new("cluster CA").unwrap();
    let node_cert = ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.issued().cert_pem).unwrap();
    std::fs::write(dir.join("node.pem"), node_cert.cert_pem).unwrap();
    std::fs::write(dir.join("node-key.pem"), node_cert.key_pem).unwrap();
    let tls = warden::config::TlsOptions {
        cert_file: dir.join("node.pem"),
        key_file: dir.join("node-key.pem"),
        ca_file: Some(dir.join("ca.pem")),
        verify: true,
        ..Default::default()
    };
    let with_tls = |routes| ClusterOptions { tls: Some(tls.clone()), ..cluster_opts(routes) };
    let a = start(Options { cluster: Some(with_tls(vec![])), ..test_options() }).await;
    let b = start(Options { cluster: Some(with_tls(vec![route_url(&a)])), ..test_options() }).await;
    let cluster = a.cluster().unwrap().clone();
    eventually("the TLS route", || cluster.route_count() == 1).await;
    let on_b = client(&b).await;
    let mut sub = on_b.subscribe("secure.route").await.unwrap();
    on_b.flush().await.unwrap();
    eventually("A to see B's interest", || route_interest(&a, "$G") > 0).await;
    let on_a = client(&a).await;
    on_a.publish("secure.route", "over tls".into()).await.unwrap();
    assert_eq!(within(sub.next()).await.unwrap().payload, "over tls");
    // A plain-text node cannot join.
    let plain = node("P", vec![route_url(&a)]).await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cluster.route_count(), 1, "no route from the plain-text node");
    }
    for s in [a, b, plain] {
        s.shutdown().await;
    }
}

fn with_route_password(routes: Vec<String>) -> ClusterOptions {
    let authorization =
        RouteAuthorization { user: "ruser".into(), password: Some(Secret::new("rpass")), timeout: None };
    ClusterOptions { authorization: Some(authorization), allow_unauthenticated: false, ..cluster_opts(routes) }
}

async fn password_node(name: &str, routes: Vec<String>) -> Server {
    start(Options { server_name: Some(name.into()), cluster: Some(with_route_password(routes)), ..test_options() })
        .await
}

/// Publishes on each client's node until a subscriber on every other node
/// has the message (interest travels asynchronously): a message published
/// on any node reaches every other node.
async fn each_node_reaches_every_other(clients: &[async_nats::Client]) {
    for (i, publisher) in clients.iter().enumerate() {
        let subject = format!("mesh.from.{i}");
        let mut subs = Vec::new();
        for (j, other) in clients.iter().enumerate().filter(|(j, _)| *j != i) {
            subs.push((j, other.subscribe(subject.clone()).await.unwrap()));
            other.flush().await.unwrap();
        }
        let mut missing: Vec<usize> = subs.iter().map(|(j, _)| *j).collect();
        for _probe in 0..100 {
            publisher.publish(subject.clone(), "x".into()).await.unwrap();
            publisher.flush().await.unwrap();
            for (j, sub) in &mut subs {
                if tokio::time::timeout(Duration::from_millis(100), sub.next()).await.is_ok() {
                    missing.retain(|m| m != j);
                }
            }
            if missing.is_empty() {
                break;
            }
        }
        assert!(missing.is_empty(), "a message published on node {i} never reached nodes {missing:?}");
    }
}

/// Regression: with a route password, nodes 2 and 3 listing only node 1 in
/// `routes` (nats-server's documented seed pattern) never connected to each
/// other (gossip was followed only with route TLS): a message published on
/// node 2 never reached node 3, with no error anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_seeded_with_a_route_password_forms_a_full_mesh() {
    let a = password_node("A", vec![]).await;
    let b = password_node("B", vec![route_url(&a)]).await;
    let c = password_node("C", vec![route_url(&a)]).await;
    for (name, s) in [("A", &a), ("B", &b), ("C", &c)] {
        let cluster = s.cluster().unwrap().clone();
        eventually(&format!("{name} to have routes to the other two"), || cluster.route_count() == 2).await;
    }
    let (b_id, c_id) = (&b.broker().identity.id, &c.broker().identity.id);
    assert!(b.cluster().unwrap().has_route(c_id) && c.cluster().unwrap().has_route(b_id));
    each_node_reaches_every_other(&[client(&a).await, client(&b).await, client(&c).await]).await;
    for s in [&a, &b, &c] {
        assert!(s.cluster().unwrap().unreachable().is_empty());
    }
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

/// The same seed pattern with nats-server 2.9.10 as the seed: it gossips
/// each warden node to the other, and they connect with the route password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_wardens_seeded_by_nats_server_with_a_route_password_form_a_full_mesh() {
    let Some(binary) = common::deps::nats_server_2_9() else { return };
    let (client_port, route_port) = (free_port(), free_port());
    let _seed = spawn_nats_server(
        &binary,
        "seed",
        &format!(
            "listen: 127.0.0.1:{client_port}\nserver_name: N\ncluster {{ name: c1, listen: 127.0.0.1:{route_port}, \
             authorization {{ user: ruser, password: rpass }} }}\n"
        ),
    );
    let seed = format!("nats-route://127.0.0.1:{route_port}");
    let b = password_node("B", vec![seed.clone()]).await;
    let c = password_node("C", vec![seed]).await;
    for (name, s) in [("B", &b), ("C", &c)] {
        let cluster = s.cluster().unwrap().clone();
        eventually(&format!("{name} to have routes to the other two"), || cluster.route_count() == 2).await;
    }
    let on_n = within(async {
        loop {
            if let Ok(client) = async_nats::connect(format!("nats://127.0.0.1:{client_port}")).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    each_node_reaches_every_other(&[on_n, client(&b).await, client(&c).await]).await;
    b.shutdown().await;
    c.shutdown().await;
}

/// A node whose clients may hold `max_pending` bytes, routed to `routes`.
async fn node_with_max_pending(name: &str, routes: Vec<String>, max_pending: usize) -> Server {
    let cluster = Some(cluster_opts(routes));
    start(Options { server_name: Some(name.into()), cluster, max_pending, ..test_options() }).await
}

/// A raw subscriber to `subject` on `server`, its receive window `window`
/// bytes when given (a small one stops a subscriber that never reads from
/// hiding megabytes in the kernel).
async fn raw_subscriber(server: &Server, subject: &str, window: Option<u32>) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(window) = window {
        socket.set_recv_buffer_size(window).unwrap();
    }
    let mut raw = Raw::new(within(socket.connect(server.local_addr())).await.unwrap());
    assert!(raw.line().await.starts_with("INFO "));
    raw.send(format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\n")).await;
    raw.ping_pong().await;
    raw.stream
}

/// Publishes `count` 16-byte messages to `subject` on `server` as fast as
/// the socket takes them, then waits for the PONG after the last.
fn publish_flat_out(server: &Server, subject: &str, count: usize) -> tokio::task::JoinHandle<()> {
    let addr = server.local_addr();
    let frame = format!("PUB {subject} 16\r\n0123456789abcdef\r\n");
    tokio::spawn(async move {
        let mut publisher = Raw::connected(addr).await;
        let batch = frame.repeat(8192);
        for _ in 0..count / 8192 {
            publisher.send(&batch).await;
        }
        publisher.send(frame.repeat(count % 8192)).await;
        publisher.ping_pong().await;
    })
}

/// Reads MSG frames until `want` arrived, the server closed the connection
/// or nothing came for the test timeout; returns how many arrived and the
/// longest time between two reads after the first.
async fn receive_msgs(stream: &mut tokio::net::TcpStream, want: usize) -> (usize, Duration) {
    use tokio::io::AsyncReadExt;
    let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 256 * 1024]);
    let (mut got, mut longest, mut last) = (0, Duration::ZERO, None::<std::time::Instant>);
    while got < want {
        let n = match tokio::time::timeout(WAIT, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        let now = std::time::Instant::now();
        longest = longest.max(last.map_or(Duration::ZERO, |t| now - t));
        last = Some(now);
        buf.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        while let Some(eol) = buf[used..].windows(2).position(|w| w == b"\r\n") {
            let line = &buf[used..used + eol];
            let Some(head) = line.strip_prefix(b"MSG ") else {
                used += eol + 2; // PING, INFO: not counted
                continue;
            };
            let size: usize = std::str::from_utf8(head).unwrap().rsplit(' ').next().unwrap().parse().unwrap();
            let end = used + eol + 2 + size + 2;
            if buf.len() < end {
                break;
            }
            got += 1;
            used = end;
        }
        buf.drain(..used);
    }
    (got, longest)
}

/// Regression (benchmark scenario k): a publisher on node A sending 16-byte
/// messages flat out got its subscriber on node B cut as a slow consumer
/// (max_pending exceeded) and messages lost, because B's route reader
/// never waited for the subscriber. It now waits as a local publisher
/// does, TCP pushes back to A, and A's publisher waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_publisher_on_one_node_does_not_get_a_subscriber_on_another_cut() {
    let a = node("A", vec![]).await;
    let b = node_with_max_pending("B", vec![route_url(&a)], 512 * 1024).await;
    let cluster = b.cluster().unwrap().clone();
    eventually("B to have its route to A", || cluster.route_count() == 1).await;
    let mut sub = raw_subscriber(&b, "k", None).await;
    eventually("A to see B's interest", || route_interest(&a, "$G") > 0).await;
    let count = 300_000;
    let started = std::time::Instant::now();
    let publisher = publish_flat_out(&a, "k", count);
    let (got, _) = receive_msgs(&mut sub, count).await;
    let took = started.elapsed();
    within(publisher).await.unwrap();
    eprintln!("{got} of {count} delivered across the route in {took:?}");
    assert_eq!(got, count, "messages lost");
    assert_eq!(b.broker().stats.slow_consumers.load(std::sync::atomic::Ordering::Relaxed), 0);
    a.shutdown().await;
    b.shutdown().await;
}

/// A subscriber that stops reading behind a route is still cut as a slow
/// consumer, and the route keeps feeding another subscriber on its node:
/// it is held back at most `STALL` per read batch meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_subscriber_behind_a_route_is_cut_while_another_keeps_receiving() {
    let a = node("A", vec![]).await;
    let b = node_with_max_pending("B", vec![route_url(&a)], 256 * 1024).await;
    let cluster = b.cluster().unwrap().clone();
    eventually("B to have its route to A", || cluster.route_count() == 1).await;
    let _stuck = raw_subscriber(&b, "k", Some(4096)).await;
    let mut reading = raw_subscriber(&b, "k", None).await;
    eventually("A to see both subscribers of B", || {
        a.broker()
            .accounts
            .global()
            .router
            .subscriptions()
            .iter()
            .any(|s| s.owner.kind == warden::broker::ClientKind::Route)
    })
    .await;
    let count = 200_000;
    let publisher = publish_flat_out(&a, "k", count);
    let (got, longest_gap) = receive_msgs(&mut reading, count).await;
    within(publisher).await.unwrap();
    eprintln!("{got} of {count} delivered; longest gap {longest_gap:?}");
    assert_eq!(got, count, "the reading subscriber lost messages");
    assert_eq!(b.broker().stats.slow_consumers.load(std::sync::atomic::Ordering::Relaxed), 1, "the stuck one is cut");
    assert!(longest_gap < warden::broker::STALL * 10, "the route stalled {longest_gap:?}");
    a.shutdown().await;
    b.shutdown().await;
}

/// A sustained flood of idle sockets on the route port (past the 64
/// pending handshakes, 8 per address, each replaced as the auth timeout
/// closes it) does not keep a real peer from the same address out: the
/// longest-waiting idle one gives way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_on_the_route_port_do_not_keep_a_real_peer_out() {
    let a = password_node("A", vec![]).await;
    let addr = a.cluster().unwrap().listen_addr;
    let flood = tokio::spawn(async move {
        let mut idle = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // Each idle socket is replaced as soon as the server closes it.
            idle.retain(|s: &tokio::net::TcpStream| match s.try_read(&mut buf) {
                Ok(0) => false,
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            });
            while idle.len() < 70 {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(s) => idle.push(s),
                    Err(_) => break,
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = format!("nats-route://ruser:rpass@{addr}");
    let b = password_node("B", vec![url]).await;
    let cluster = a.cluster().unwrap().clone();
    eventually("B routed to A", || cluster.route_count() == 1).await;
    flood.abort();
    b.shutdown().await;
}
