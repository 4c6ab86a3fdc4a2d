//! Gateways with code we did not write: warden clusters joined to each
//! other and to nats-server 2.9.10 (Debian) and 2.15.1 (PyPI) clusters,
//! async-nats clients on both sides; and raw connections to the gateway
//! port that may not join.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use common::peers::{connect_retrying, eventually, free_port, nats_server_2_15, nats_server_2_9, spawn_nats_server};
use common::{options_from, start, within, Raw};
use futures::StreamExt;
use warden::server::Server;

const GW_USER: &str = "gw";
const GW_PASS: &str = "gw-s3cret-pass";

/// The reference server, or a skip (a failure under `CI=true`).
fn reference(found: Option<PathBuf>, what: &str) -> Option<PathBuf> {
    common::deps::require(found, what, "scripts/test.sh installs both reference servers")
}

/// A `gateway {}` block for cluster `name` listening on `port` and dialling
/// `others` (name, gateway port).
fn gateway_block(name: &str, port: u16, others: &[(&str, u16)]) -> String {
    let remotes: Vec<String> = others
        .iter()
        .map(|(n, p)| format!("{{ name: {n}, urls: [\"nats://{GW_USER}:{GW_PASS}@127.0.0.1:{p}\"] }}"))
        .collect();
    format!(
        "gateway {{ name: {name}, listen: \"127.0.0.1:{port}\", authorization {{ user: {GW_USER}, password: \
         \"{GW_PASS}\" }}, gateways = [ {} ] }}\n",
        remotes.join(", ")
    )
}

/// Waits until `sub` (on the other side) receives what `publisher` sends
/// on `subject`: interest crosses the gateway asynchronously.
async fn until_received(publisher: &async_nats::Client, subject: &str, sub: &mut async_nats::Subscriber) {
    common::peers::probe_until_received(publisher, subject, sub).await;
}

/// Answers every request on `subject` with `prefix` + the request.
async fn responder(client: &async_nats::Client, subject: &str, prefix: &'static str) {
    let mut sub = client.subscribe(subject.to_owned()).await.unwrap();
    client.flush().await.unwrap();
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let Some(reply) = m.reply else { continue };
            let mut answer = prefix.as_bytes().to_vec();
            answer.extend_from_slice(&m.payload);
            client.publish(reply, answer.into()).await.unwrap();
        }
    });
}

/// Sends requests until one is answered (the responder's interest is still
/// on its way at first), then checks `n` more are.
async fn requests_answered(requester: &async_nats::Client, subject: &str, prefix: &str, n: usize) {
    within(async {
        loop {
            let asked =
                tokio::time::timeout(Duration::from_millis(500), requester.request(subject.to_owned(), "0".into()));
            if let Ok(Ok(_)) = asked.await {
                break;
            }
        }
    })
    .await;
    for i in 0..n {
        let answer = within(requester.request(subject.to_owned(), i.to_string().into())).await.unwrap();
        assert_eq!(answer.payload, Bytes::from(format!("{prefix}{i}")), "request {i} on {subject}");
    }
}

/// Counts what `sub` receives until `n` arrived or `quiet` passed with nothing.
async fn drain(sub: &mut async_nats::Subscriber, quiet: Duration) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout(quiet, sub.next()).await {
        n += 1;
    }
    n
}

/// Two sides (clients of two clusters) exchange plain messages, headers,
/// requests both ways and queue-group messages: each message once.
async fn exchange(a: &async_nats::Client, b: &async_nats::Client) {
    // Plain messages with headers, both ways.
    let mut on_b = b.subscribe("east.>").await.unwrap();
    b.flush().await.unwrap();
    until_received(a, "east.probe", &mut on_b).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Trace", "abc");
    a.publish_with_headers("east.h", headers, "with headers".into()).await.unwrap();
    a.flush().await.unwrap();
    let got = within(async {
        loop {
            let m = on_b.next().await.unwrap();
            if m.subject.as_str() == "east.h" {
                return m;
            }
        }
    })
    .await;
    assert_eq!(got.headers.as_ref().and_then(|h| h.get("X-Trace")).map(|v| v.as_str()), Some("abc"));
    assert_eq!(got.payload, Bytes::from("with headers"));
    let mut on_a = a.subscribe("west.>").await.unwrap();
    a.flush().await.unwrap();
    until_received(b, "west.probe", &mut on_a).await;

    // Requests both ways: the answer comes back to the requester's server.
    responder(b, "svc.east", "east:").await;
    responder(a, "svc.west", "west:").await;
    requests_answered(a, "svc.east", "east:", 5).await;
    requests_answered(b, "svc.west", "west:", 5).await;

    // A queue group only on b's side: every message from a served once.
    let mut q1 = b.queue_subscribe("work", "g".into()).await.unwrap();
    let mut q2 = b.queue_subscribe("work", "g".into()).await.unwrap();
    b.flush().await.unwrap();
    let mut plain = b.subscribe("work").await.unwrap();
    b.flush().await.unwrap();
    until_received(a, "work", &mut plain).await;
    // The probes may have gone to either member: drain them first.
    drain(&mut q1, Duration::from_millis(300)).await;
    drain(&mut q2, Duration::from_millis(300)).await;
    drain(&mut plain, Duration::from_millis(300)).await;
    for i in 0..100 {
        a.publish("work", i.to_string().into()).await.unwrap();
    }
    a.flush().await.unwrap();
    let quiet = Duration::from_millis(500);
    let (n1, n2) = (drain(&mut q1, quiet).await, drain(&mut q2, quiet).await);
    assert_eq!(n1 + n2, 100, "each message to one member of the group ({n1} + {n2})");
    assert_eq!(drain(&mut plain, quiet).await, 100, "and to the plain subscriber once");

    // A member on a's side too: a's messages stay on its side.
    let mut local = a.queue_subscribe("work", "g".into()).await.unwrap();
    a.flush().await.unwrap();
    for i in 0..50 {
        a.publish("work", i.to_string().into()).await.unwrap();
    }
    a.flush().await.unwrap();
    assert_eq!(drain(&mut local, quiet).await, 50, "the local member takes them all");
    assert_eq!(drain(&mut q1, quiet).await + drain(&mut q2, quiet).await, 0, "none crosses the gateway");
}

fn warden_cluster(name: &str, port: u16, others: &[(&str, u16)], extra: &str) -> warden::config::Options {
    options_from(&format!("{}{extra}", gateway_block(name, port, others)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_warden_clusters_exchange_messages_requests_headers_and_queue_groups() {
    let (pa, pb) = (free_port(), free_port());
    let a = start(warden_cluster("A", pa, &[("B", pb)], "http: \"127.0.0.1:0\"\n")).await;
    let b = start(warden_cluster("B", pb, &[("A", pa)], "")).await;
    let (ca, cb) = (connect_retrying(&common::url(&a)).await, connect_retrying(&common::url(&b)).await);
    exchange(&ca, &cb).await;
    let links = a.gateways().unwrap().links();
    assert_eq!(links.len(), 2, "one outbound and one inbound link: {links:?}");
    assert!(links.iter().all(|l| l.name == "B" && l.configured));

    // Monitoring: /gatewayz as nats-server shapes it, /varz's gateway block
    // without the URLs' credentials.
    let monitor = a.monitor_addr().unwrap();
    let gatewayz = common::monitor_json(monitor, "/gatewayz").await;
    assert_eq!(gatewayz["name"], "A");
    assert_eq!(gatewayz["outbound_gateways"]["B"]["configured"], true);
    assert_eq!(gatewayz["outbound_gateways"]["B"]["connection"]["name"], b.broker().identity.id.as_str());
    assert!(gatewayz["outbound_gateways"]["B"]["connection"]["out_msgs"].as_u64().unwrap() >= 100);
    assert_eq!(gatewayz["inbound_gateways"]["B"].as_array().unwrap().len(), 1);
    let varz = common::monitor_json(monitor, "/varz").await;
    assert_eq!(varz["gateway"]["name"], "A");
    assert_eq!(varz["gateway"]["reject_unknown"], true);
    assert_eq!(varz["gateway"]["gateways"][0]["urls"][0], format!("127.0.0.1:{pb}").as_str());
    assert!(!varz.to_string().contains(GW_PASS), "no gateway password in /varz");
}

/// Two servers per cluster, routed; the subscriber and responder on the
/// server of the other cluster that the requester's server did not dial
/// (or did): the answer comes back to the server that asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_of_two_servers_each_route_answers_back_to_the_server_that_asked() {
    let (ga1, ga2, gb1, gb2) = (free_port(), free_port(), free_port(), free_port());
    let (ra1, rb1) = (free_port(), free_port());
    let cluster = |name: &str, port: u16, seed: Option<u16>| {
        let routes = seed.map(|p| format!("routes: [\"nats-route://127.0.0.1:{p}\"], ")).unwrap_or_default();
        format!(
            "cluster {{ name: {name}, listen: \"127.0.0.1:{port}\", {routes}insecure_allow_unauthenticated_routes: \
             true }}\n"
        )
    };
    let a1 = start(warden_cluster("A", ga1, &[("B", gb1)], &cluster("A", ra1, None))).await;
    let a2 = start(warden_cluster("A", ga2, &[("B", gb2)], &cluster("A", free_port(), Some(ra1)))).await;
    let b1 = start(warden_cluster("B", gb1, &[("A", ga2)], &cluster("B", rb1, None))).await;
    let b2 = start(warden_cluster("B", gb2, &[("A", ga1)], &cluster("B", free_port(), Some(rb1)))).await;
    for s in [&a1, &a2, &b1, &b2] {
        eventually("every server routed and with its gateways up", || {
            s.cluster().is_some_and(|c| c.route_count() >= 1)
                && s.gateways().is_some_and(|g| g.links().iter().filter(|l| l.outbound).count() == 1)
        })
        .await;
    }
    // Each server of a cluster names the others' gateway URLs (learned
    // over its routes), so B, which lists one URL of A per server, learns
    // A's other one.
    for b in [&b1, &b2] {
        eventually("A's two gateway URLs known to B", || {
            b.gateways().unwrap().remotes().iter().any(|(name, urls)| name == "A" && urls.len() == 2)
        })
        .await;
    }
    let requester = connect_retrying(&common::url(&a1)).await;
    for far in [&b1, &b2] {
        let responder_side = connect_retrying(&common::url(far)).await;
        exchange(&requester, &responder_side).await;
    }
    // Both of a2 and b2's answers and messages to a1, over a2's route when
    // b's link reached a2.
    let other = connect_retrying(&common::url(&a2)).await;
    let far = connect_retrying(&common::url(&b2)).await;
    responder(&far, "svc.far", "far:").await;
    requests_answered(&other, "svc.far", "far:", 3).await;
}

/// The system account's services answer `$SYS.REQ.SERVER.PING` from every
/// server of the supercluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_ping_is_answered_by_every_server_of_the_supercluster() {
    let (pa, pb) = (free_port(), free_port());
    let accounts = r#"
accounts {
  SYS { users = [ { user: sys, password: "sys-s3cret-pass" } ] }
  APP { users = [ { user: app, password: "app-s3cret-pass" } ], imports = [ { service: { account: SVC, subject: "svc.>" } } ] }
  SVC { users = [ { user: svc, password: "svc-s3cret-pass" } ], exports = [ { service: "svc.>" } ] }
}
system_account: SYS
"#;
    let a = start(warden_cluster("A", pa, &[("B", pb)], accounts)).await;
    let b = start(warden_cluster("B", pb, &[("A", pa)], accounts)).await;
    let sys = common::peers::login_retrying(&common::url(&a), "sys", "sys-s3cret-pass").await;
    let ids = within(async {
        loop {
            let inbox = sys.new_inbox();
            let mut answers = sys.subscribe(inbox.clone()).await.unwrap();
            sys.publish_with_reply("$SYS.REQ.SERVER.PING", inbox, "".into()).await.unwrap();
            sys.flush().await.unwrap();
            let mut ids = HashSet::new();
            while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), answers.next()).await {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                ids.insert(v["server"]["id"].as_str().unwrap().to_owned());
            }
            if ids.len() == 2 {
                return ids;
            }
        }
    })
    .await;
    assert!(ids.contains(&a.broker().identity.id) && ids.contains(&b.broker().identity.id));
    // GATEWAYZ over NATS, from both servers.
    let inbox = sys.new_inbox();
    let mut answers = sys.subscribe(inbox.clone()).await.unwrap();
    sys.publish_with_reply("$SYS.REQ.SERVER.PING.GATEWAYZ", inbox, "".into()).await.unwrap();
    let mut names = HashSet::new();
    for _ in 0..2 {
        let m = within(answers.next()).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        names.insert(v["data"]["name"].as_str().unwrap().to_owned());
    }
    assert_eq!(names, HashSet::from(["A".to_owned(), "B".to_owned()]));
    // Tenants stay apart across the gateway too.
    let app_a = common::peers::login_retrying(&common::url(&a), "app", "app-s3cret-pass").await;
    let app_b = common::peers::login_retrying(&common::url(&b), "app", "app-s3cret-pass").await;
    let mut sub = app_b.subscribe("app.x").await.unwrap();
    app_b.flush().await.unwrap();
    until_received(&app_a, "app.x", &mut sub).await;
    let mut sys_sub = sys.subscribe("app.x").await.unwrap();
    sys.flush().await.unwrap();
    app_a.publish("app.x", "tenant".into()).await.unwrap();
    app_a.flush().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sys_sub.next()).await.is_err(),
        "no other account sees it"
    );
}

/// A warden cluster and a nats-server cluster joined by gateways, each
/// dialling the other.
async fn mixed(binary: &std::path::Path, name: &str) {
    let (pw, pn) = (free_port(), free_port());
    let nats_port = free_port();
    let warden = start(warden_cluster("W", pw, &[("N", pn)], "")).await;
    let _nats = spawn_nats_server(
        binary,
        name,
        &format!("listen: 127.0.0.1:{nats_port}\nserver_name: {name}\n{}", gateway_block("N", pn, &[("W", pw)])),
    );
    let on_warden = connect_retrying(&common::url(&warden)).await;
    let on_nats = connect_retrying(&format!("nats://127.0.0.1:{nats_port}")).await;
    exchange(&on_warden, &on_nats).await;
    exchange(&on_nats, &on_warden).await;
    let links = warden.gateways().unwrap().links();
    assert!(links.iter().any(|l| l.outbound) && links.iter().any(|l| !l.outbound), "{links:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_cluster_and_a_nats_server_2_15_cluster_join_both_ways() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    mixed(&binary, "gw-2-15").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_cluster_and_a_nats_server_2_9_cluster_join_both_ways() {
    let Some(binary) = reference(nats_server_2_9(), "nats-server 2.9.10") else { return };
    mixed(&binary, "gw-2-9").await;
}

/// What a gateway CONNECT gets from a warden gateway port.
async fn gateway_login(server: &Server, connect: serde_json::Value) -> String {
    let (mut raw, info) = Raw::connect(server.gateway_addr().unwrap()).await;
    assert!(info.contains("\"gateway\":\"A\"") && info.contains("\"auth_required\":true"), "{info}");
    raw.send(format!("CONNECT {connect}\r\nINFO {{\"gateway\":\"B\",\"server_id\":\"NRAW\"}}\r\nPING\r\n")).await;
    raw.expect_closed().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_the_credentials_or_of_an_unknown_cluster_is_refused() {
    let a = start(warden_cluster("A", free_port(), &[("B", free_port())], "")).await;
    let no_creds = gateway_login(&a, serde_json::json!({ "gateway": "B", "name": "NRAW" })).await;
    assert!(no_creds.contains("Authorization Violation"), "{no_creds}");
    let wrong =
        gateway_login(&a, serde_json::json!({ "gateway": "B", "name": "NRAW", "user": GW_USER, "pass": "guess" }))
            .await;
    assert!(wrong.contains("Authorization Violation"), "{wrong}");
    let unknown =
        gateway_login(&a, serde_json::json!({ "gateway": "C", "name": "NRAW", "user": GW_USER, "pass": GW_PASS }))
            .await;
    assert!(unknown.contains("Connection to gateway \"A\" rejected"), "{unknown}");
    let client = gateway_login(&a, serde_json::json!({ "verbose": false, "lang": "rust" })).await;
    assert!(client.contains("attempted to connect to gateway port"), "{client}");
    assert!(a.gateways().unwrap().links().is_empty());
    assert!(a.broker().security.auth_failures() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_with_the_wrong_password_never_joins() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    let (pw, pn) = (free_port(), free_port());
    let warden = start(warden_cluster("W", pw, &[("N", pn)], "")).await;
    let block = gateway_block("N", pn, &[("W", pw)]).replace(&format!("{GW_USER}:{GW_PASS}@"), "gw:wrong@");
    let nats = spawn_nats_server(&binary, "gw-wrong", &format!("listen: 127.0.0.1:{}\n{block}", free_port()));
    eventually("the refusals counted", || warden.broker().security.auth_failures() >= 1).await;
    let links = warden.gateways().unwrap().links();
    assert!(links.iter().all(|l| l.outbound), "only warden's own link, none from N: {links:?}");
    drop(nats);
}

#[test]
fn a_gateway_without_authentication_refuses_to_start() {
    let refused = warden::config::load_str("gateway { name: A, port: 7222 }", "gw.conf").unwrap_err();
    assert!(refused.to_string().contains("gateway has no authentication"), "{refused}");
    let allowed = "gateway { name: A, port: 7222, insecure_allow_unauthenticated_gateways: true }";
    let loaded = warden::config::load_str(allowed, "gw.conf").unwrap();
    assert!(loaded.options.gateway.unwrap().reject_unknown_cluster, "unknown clusters refused by default");
}

/// Gateway TLS: both sides verified against the CA; under
/// `verify_and_map` the certificate names the gateway user, and a
/// certificate of the same CA that names someone else does not join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_over_tls_log_in_by_certificate_and_a_rogue_certificate_is_refused() {
    let pki = common::pki::Pki::new("gw-tls");
    let user = "CN=localhost,OU=NATS.io Operators";
    let block = |name: &str, port: u16, other: (&str, u16), cert: &str| {
        format!(
            "gateway {{ name: {name}, listen: \"127.0.0.1:{port}\", {}, authorization {{ user: \"{user}\" }}, \
             gateways = [ {{ name: {}, urls: [\"nats://127.0.0.1:{}\"] }} ] }}\n",
            pki.tls_block(cert, ", verify_and_map: true"),
            other.0,
            other.1
        )
    };
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = start(options_from(&block("A", pa, ("B", pb), "node"))).await;
    let b = start(options_from(&block("B", pb, ("A", pa), "node"))).await;
    let (ca, cb) = (connect_retrying(&common::url(&a)).await, connect_retrying(&common::url(&b)).await);
    exchange(&ca, &cb).await;
    assert_eq!(a.gateways().unwrap().links().len(), 2);

    // Another server of "B" whose certificate (same CA) names someone
    // else: A's gateway refuses its login.
    let rogue = start(options_from(&block("B", pc, ("A", pa), "rogue"))).await;
    eventually("the rogue certificate refused", || a.broker().security.auth_failures() >= 1).await;
    let inbound = a.gateways().unwrap().links().iter().filter(|l| !l.outbound).count();
    assert_eq!(inbound, 1, "only the real B's inbound link");
    drop(rogue);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_2_15_cluster_joins_over_tls_both_ways() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    let pki = common::pki::Pki::new("gw-tls-nats");
    let (pw, pn, nats_port) = (free_port(), free_port(), free_port());
    let block = |name: &str, port: u16, other: (&str, u16)| {
        format!(
            "gateway {{ name: {name}, listen: \"127.0.0.1:{port}\", {}, authorization {{ user: {GW_USER}, password: \
             \"{GW_PASS}\" }}, gateways = [ {{ name: {}, urls: [\"nats://{GW_USER}:{GW_PASS}@127.0.0.1:{}\"] }} ] }}\n",
            pki.tls_block("node", ", verify: true"),
            other.0,
            other.1
        )
    };
    let warden = start(options_from(&block("W", pw, ("N", pn)))).await;
    let _nats = spawn_nats_server(
        &binary,
        "gw-tls-2-15",
        &format!("listen: 127.0.0.1:{nats_port}\n{}", block("N", pn, ("W", pw))),
    );
    let on_warden = connect_retrying(&common::url(&warden)).await;
    let on_nats = connect_retrying(&format!("nats://127.0.0.1:{nats_port}")).await;
    exchange(&on_warden, &on_nats).await;
    let links = warden.gateways().unwrap().links();
    assert!(links.iter().any(|l| l.outbound) && links.iter().any(|l| !l.outbound), "{links:?}");
}

/// Gossip and implicit gateways: A lists B and C; B and C list only A but
/// admit unknown clusters. Told of each other by A, B and C dial each
/// other, and a message from C reaches B directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_that_admit_unknown_ones_learn_each_other_by_gossip() {
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let open = |block: String| block.replace(" ] }\n", " ], reject_unknown_cluster: false }\n");
    let a = start(options_from(&gateway_block("A", pa, &[("B", pb), ("C", pc)]))).await;
    let b = start(options_from(&open(gateway_block("B", pb, &[("A", pa)])))).await;
    let c = start(options_from(&open(gateway_block("C", pc, &[("A", pa)])))).await;
    for (server, other) in [(&b, "C"), (&c, "B")] {
        eventually("a link to the cluster learned by gossip", || {
            server.gateways().unwrap().links().iter().any(|l| l.outbound && l.name == other && !l.configured)
        })
        .await;
    }
    let (cb, cc) = (connect_retrying(&common::url(&b)).await, connect_retrying(&common::url(&c)).await);
    let mut sub = cb.subscribe("direct").await.unwrap();
    cb.flush().await.unwrap();
    until_received(&cc, "direct", &mut sub).await;
    // A dials C with backoff (C started after it): out and in to each.
    eventually("A linked both ways to B and C", || a.gateways().unwrap().links().len() == 4).await;
}

/// Gossip over routes: A2 lists no gateway but admits unknown clusters;
/// told by A1 over their route of A1's gateway to B, A2 dials B itself,
/// and what A2's clients publish reaches B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_hears_of_its_clusters_gateways_over_the_routes() {
    let (ga1, ga2, gb, ra1) = (free_port(), free_port(), free_port(), free_port());
    let cluster = |port: u16, seed: Option<u16>| {
        let routes = seed.map(|p| format!("routes: [\"nats-route://127.0.0.1:{p}\"], ")).unwrap_or_default();
        format!("cluster {{ name: A, listen: \"127.0.0.1:{port}\", {routes}insecure_allow_unauthenticated_routes: true }}\n")
    };
    let a1 = start(warden_cluster("A", ga1, &[("B", gb)], &cluster(ra1, None))).await;
    let b = start(warden_cluster("B", gb, &[("A", ga1)], "")).await;
    eventually("A1's gateway to B", || a1.gateways().unwrap().links().iter().any(|l| l.outbound)).await;
    let open = gateway_block("A", ga2, &[]).replace(" ] }\n", " ], reject_unknown_cluster: false }\n");
    let a2 = start(options_from(&format!("{open}{}", cluster(free_port(), Some(ra1))))).await;
    eventually("A2 dials B, told of it over the route", || {
        a2.gateways().unwrap().links().iter().any(|l| l.outbound && l.name == "B")
    })
    .await;
    let (on_a2, on_b) = (connect_retrying(&common::url(&a2)).await, connect_retrying(&common::url(&b)).await);
    let mut sub = on_b.subscribe("from.a2").await.unwrap();
    on_b.flush().await.unwrap();
    until_received(&on_a2, "from.a2", &mut sub).await;
}

/// The defences of the gateway port do not keep the real cluster out: 70
/// idle connections (past the 64 pending handshakes, 8 per address) and a
/// run of wrong passwords from the same address, then cluster B (from that
/// address too) still joins and messages cross.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_and_wrong_passwords_do_not_keep_the_real_cluster_out() {
    let (pa, pb) = (free_port(), free_port());
    let a = start(warden_cluster("A", pa, &[("B", pb)], "")).await;
    let addr = a.gateway_addr().unwrap();
    let mut idle = Vec::new();
    for _ in 0..70 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    for _ in 0..10 {
        let wrong = serde_json::json!({ "gateway": "B", "name": "NRAW", "user": GW_USER, "pass": "guess" });
        let refused = gateway_login(&a, wrong).await;
        assert!(refused.contains("Authorization Violation"), "{refused}");
    }
    let b = start(warden_cluster("B", pb, &[("A", pa)], "")).await;
    eventually("B's inbound link at A", || a.gateways().unwrap().links().iter().any(|l| !l.outbound)).await;
    let (ca, cb) = (connect_retrying(&common::url(&a)).await, connect_retrying(&common::url(&b)).await);
    let mut sub = ca.subscribe("back").await.unwrap();
    ca.flush().await.unwrap();
    until_received(&cb, "back", &mut sub).await;
    drop(idle);
}
