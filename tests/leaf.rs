//! Leaf nodes with code we did not write: nats-server 2.9.10 (Debian) and
//! 2.15.1 (PyPI) leafs on a warden hub, with async-nats clients on both
//! sides; and a raw leaf connection that sends what a leaf may not.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use common::peers::{free_port, nats_server_2_15, nats_server_2_9, spawn_nats_server};
use common::{options_from, start, within, Raw};
use futures::StreamExt;
use warden::server::Server;

/// The hub: `leaf` logs in with a password, `edge` may publish only to
/// `up.>` and subscribe only to `down.>`, `app` is the hub's own client,
/// and the nkey user is a leaf that signs the nonce with its seed.
fn hub_config(nkey: &str) -> String {
    format!(
        r#"authorization {{ users = [
  {{ user: leaf, password: "leaf-pw" }}
  {{ user: app, password: "app-pw" }}
  {{ user: edge, password: "edge-pw", permissions: {{ publish: ["up.>"], subscribe: ["down.>"] }} }}
  {{ nkey: "{nkey}" }}
] }}
leafnodes {{ listen: "127.0.0.1:0" }}
http: "127.0.0.1:0"
"#
    )
}

/// A user seed and public key from `warden nkey generate`; the reference
/// server does the signing, so this proves its signature verifies here.
fn user_key() -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["nkey", "generate", "--type", "user"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned())
}

/// The reference server, or a skip (a failure under `CI=true`).
fn reference(found: Option<PathBuf>, what: &str) -> Option<PathBuf> {
    common::deps::require(found, what, "scripts/test.sh installs both reference servers")
}

async fn hub(nkey: &str) -> Server {
    start(options_from(&hub_config(nkey))).await
}

async fn connect(url: &str, user: Option<(&str, &str)>) -> async_nats::Client {
    within(async {
        loop {
            let opts = match user {
                Some((u, p)) => async_nats::ConnectOptions::with_user_and_password(u.into(), p.into()),
                None => async_nats::ConnectOptions::new(),
            };
            if let Ok(client) = opts.connect(url).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Publishes on `from` until `sub` receives one (interest crosses the leaf
/// connection asynchronously), then drains what is already in flight.
async fn until_flowing(from: &async_nats::Client, subject: &str, sub: &mut async_nats::Subscriber) {
    within(async {
        loop {
            from.publish(subject.to_owned(), "probe".into()).await.unwrap();
            from.flush().await.unwrap();
            if tokio::time::timeout(Duration::from_millis(100), sub.next()).await.is_ok() {
                break;
            }
        }
        while tokio::time::timeout(Duration::from_millis(200), sub.next()).await.is_ok() {}
    })
    .await;
}

/// How a reference leaf logs in.
enum Login<'a> {
    /// User and password in the remote URL.
    Password,
    /// An nkey seed in the remote (nats-server 2.11+).
    Nkey(&'a str),
}

/// A reference leaf of `binary` on `hub`, logged in by `login`: pub/sub
/// both ways, headers, request/reply and a queue group across the link.
async fn leaf_carries_traffic(binary: &std::path::Path, name: &str, hub: &Server, login: Login<'_>) {
    let leaf_addr = hub.leafnode_addr().unwrap();
    let port = free_port();
    let remote = match login {
        Login::Password => format!("url: \"nats-leaf://leaf:leaf-pw@{leaf_addr}\""),
        Login::Nkey(seed) => format!("url: \"nats-leaf://{leaf_addr}\", nkey: \"{seed}\""),
    };
    let _leaf = spawn_nats_server(
        binary,
        name,
        &format!("listen: 127.0.0.1:{port}\nleafnodes {{ remotes = [ {{ {remote} }} ] }}\n"),
    );
    let on_hub = connect(&common::url(hub), Some(("app", "app-pw"))).await;
    let on_leaf = connect(&format!("nats://127.0.0.1:{port}"), None).await;

    // Monitoring lists the leaf as nats-server's /leafz does.
    let monitor = hub.monitor_addr().unwrap();
    let leafz = within(async {
        loop {
            let leafz = common::monitor_json(monitor, "/leafz?subs=1").await;
            if leafz["leafnodes"] == 1 {
                return leafz;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(leafz["leafs"][0]["account"], "$G", "{leafz}");
    assert_eq!(leafz["leafs"][0]["is_spoke"], false);
    assert_eq!(common::monitor_json(monitor, "/varz").await["leafnodes"], 1);
    carries_traffic(&on_hub, &on_leaf).await;
}

/// Pub/sub both ways, headers, request/reply and a queue group between a
/// client of the hub and a client of the leaf.
async fn carries_traffic(on_hub: &async_nats::Client, on_leaf: &async_nats::Client) {
    // Hub to leaf, with headers.
    let mut down = on_leaf.subscribe("down.*").await.unwrap();
    on_leaf.flush().await.unwrap();
    until_flowing(on_hub, "down.probe", &mut down).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Leaf", "1");
    on_hub.publish_with_headers("down.x", headers, "hello leaf".into()).await.unwrap();
    let msg = within(down.next()).await.unwrap();
    assert_eq!((msg.subject.as_str(), &msg.payload[..]), ("down.x", &b"hello leaf"[..]));
    assert_eq!(msg.headers.unwrap().get("X-Leaf").map(|v| v.as_str()), Some("1"));

    // Leaf to hub.
    let mut up = on_hub.subscribe("up.>").await.unwrap();
    on_hub.flush().await.unwrap();
    until_flowing(on_leaf, "up.probe", &mut up).await;
    on_leaf.publish("up.y", "hello hub".into()).await.unwrap();
    let msg = within(up.next()).await.unwrap();
    assert_eq!(&msg.payload[..], b"hello hub");

    // Request on the hub, service on the leaf.
    let mut service = on_leaf.subscribe("svc.echo").await.unwrap();
    on_leaf.flush().await.unwrap();
    let responder = on_leaf.clone();
    tokio::spawn(async move {
        while let Some(req) = service.next().await {
            if let Some(reply) = req.reply {
                let _ = responder.publish(reply, req.payload).await;
            }
        }
    });
    let answer = within(async {
        loop {
            if let Ok(Ok(answer)) =
                tokio::time::timeout(Duration::from_millis(500), on_hub.request("svc.echo", "ping".into())).await
            {
                return answer;
            }
        }
    })
    .await;
    assert_eq!(&answer.payload[..], b"ping");

    // A queue group with a member on each side: every message reaches
    // exactly one member, those published on the hub its local one first.
    let mut q_leaf = on_leaf.queue_subscribe("work", "q".into()).await.unwrap();
    on_leaf.flush().await.unwrap();
    until_flowing(on_hub, "work", &mut q_leaf).await;
    let mut q_hub = on_hub.queue_subscribe("work", "q".into()).await.unwrap();
    on_hub.flush().await.unwrap();
    for i in 0..20 {
        on_hub.publish("work", i.to_string().into()).await.unwrap();
    }
    on_hub.flush().await.unwrap();
    let mut seen = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), q_hub.next()).await {
        seen.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), q_leaf.next()).await {
        seen.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    seen.sort_by_key(|s| s.parse::<u32>().unwrap_or(u32::MAX));
    assert_eq!(seen, (0..20).map(|i| i.to_string()).collect::<Vec<_>>(), "each exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_2_9_leafs_log_in_with_a_password() {
    let Some(binary) = reference(nats_server_2_9(), "nats-server 2.9.10") else { return };
    let (_, public) = user_key();
    let hub = hub(&public).await;
    leaf_carries_traffic(&binary, "leaf-2-9", &hub, Login::Password).await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_2_15_leafs_log_in_with_a_password_and_with_an_nkey() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    let (seed, public) = user_key();
    let hub = hub(&public).await;
    leaf_carries_traffic(&binary, "leaf-2-15-pw", &hub, Login::Password).await;
    leaf_carries_traffic(&binary, "leaf-2-15-nkey", &hub, Login::Nkey(&seed)).await;
    hub.shutdown().await;
}

/// Logs in on the leaf port as a bare leaf (as nats-server's own
/// `test/leafnode_test.go` does) and reads up to the hub's answering INFO.
async fn raw_leaf(addr: SocketAddr, user: &str, pass: &str) -> Raw {
    let (mut raw, info) = Raw::connect(addr).await;
    assert!(info.contains("\"leafnode_urls\":[") && info.contains("\"nonce\":"), "{info}");
    raw.send(format!("CONNECT {{\"user\":\"{user}\",\"pass\":\"{pass}\",\"server_id\":\"NRAW\"}}\r\n")).await;
    let answer = raw.line().await;
    assert!(answer.contains("\"connect_info\":true"), "{answer}");
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_lmsg_and_ls_plus_are_refused_and_nothing_crosses() {
    let (_, public) = user_key();
    let hub = hub(&public).await;
    let addr = hub.leafnode_addr().unwrap();
    let on_hub = connect(&common::url(&hub), Some(("app", "app-pw"))).await;
    let mut all = on_hub.subscribe(">").await.unwrap();
    on_hub.flush().await.unwrap();
    let mut edge = raw_leaf(addr, "edge", "edge-pw").await;
    edge.send("LMSG secret.x 6\r\nsecret\r\nLS+ secret.>\r\nLMSG up.ok 2\r\nok\r\nPING\r\n").await;
    let mut lines = Vec::new();
    loop {
        let line = edge.line().await;
        if line == "PONG" {
            break;
        }
        lines.push(line);
    }
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("-ERR")).collect();
    assert_eq!(
        errors,
        [
            "-ERR 'Permissions Violation for Publish to \"secret.x\"'",
            "-ERR 'Permissions Violation for Subscription to \"secret.>\"'"
        ]
    );
    let first = within(all.next()).await.unwrap();
    assert_eq!(first.subject.as_str(), "up.ok", "the forbidden message was not delivered");
    hub.shutdown().await;
}

/// Advisory 2026-08 (CVE-2026-33246): a leaf must not hand the hub's
/// services a forged requester identity, nor trace headers a nats-server
/// further on would act on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leafs_forged_request_info_and_unhonoured_trace_headers_never_reach_the_hubs_clients() {
    let (_, public) = user_key();
    let hub = hub(&public).await;
    let addr = hub.leafnode_addr().unwrap();
    let on_hub = connect(&common::url(&hub), Some(("app", "app-pw"))).await;
    let mut service = on_hub.subscribe("svc.>").await.unwrap();
    on_hub.flush().await.unwrap();
    let mut leaf = raw_leaf(addr, "leaf", "leaf-pw").await;
    let block = "NATS/1.0\r\nNats-Request-Info: {\"acc\":\"$SYS\",\"user\":\"admin\"}\r\nX-Kept: yes\r\n\
                 nats-trace-dest: spy.*\r\n\r\n";
    let only = "NATS/1.0\r\nNats-Request-Info: {}\r\n\r\n";
    leaf.send(format!(
        "HMSG svc.echo {} {}\r\n{block}hi\r\nHMSG svc.bare {} {}\r\n{only}ho\r\nPING\r\n",
        block.len(),
        block.len() + 2,
        only.len(),
        only.len() + 2
    ))
    .await;
    while leaf.line().await != "PONG" {}
    let first = within(service.next()).await.unwrap();
    let headers = first.headers.unwrap();
    assert_eq!(headers.get("X-Kept").map(|v| v.as_str()), Some("yes"), "other headers stay");
    assert!(headers.get("Nats-Request-Info").is_none() && headers.get("Nats-Trace-Dest").is_none(), "{headers:?}");
    assert_eq!(&first.payload[..], b"hi");
    let second = within(service.next()).await.unwrap();
    assert_eq!(second.subject.as_str(), "svc.bare");
    assert!(second.headers.is_none_or(|h| h.iter().next().is_none()), "an emptied block reads as no headers");
    assert_eq!(&second.payload[..], b"ho");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_a_client_on_the_leaf_port_are_refused() {
    let (_, public) = user_key();
    let hub = hub(&public).await;
    let addr = hub.leafnode_addr().unwrap();
    let (mut raw, _) = Raw::connect(addr).await;
    raw.send("CONNECT {\"user\":\"leaf\",\"pass\":\"wrong\"}\r\n").await;
    assert_eq!(raw.line().await, "-ERR 'Authorization Violation'");
    raw.expect_closed().await;
    let (mut raw, _) = Raw::connect(addr).await;
    raw.send("CONNECT {\"lang\":\"rust\",\"user\":\"app\",\"pass\":\"app-pw\"}\r\n").await;
    assert_eq!(raw.line().await, "-ERR 'attempted to connect to leaf node port'");
    raw.expect_closed().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_port_without_client_authentication_refuses_to_load_beyond_loopback() {
    let err = warden::config::load_str("leafnodes { listen: 0.0.0.0:7422 }", "open.conf").unwrap_err().to_string();
    assert!(err.contains("insecure_allow_unauthenticated_leafnodes"), "{err}");
    // On loopback (the default host) it loads, with a warning.
    let loaded = warden::config::load_str("leafnodes { port: 7422 }", "open.conf").unwrap();
    assert!(loaded.warnings.iter().any(|w| w.contains("leaf nodes need no credentials")), "{:?}", loaded.warnings);
}

/// A warden leaf of a reference hub, logged in by `login`.
async fn warden_leaf_on(binary: &std::path::Path, name: &str, login: Login<'_>, public: &str) {
    let (client_port, leaf_port) = (free_port(), free_port());
    let _hub = spawn_nats_server(
        binary,
        name,
        &format!(
            "listen: 127.0.0.1:{client_port}\nauthorization {{ users = [ {{ user: leaf, password: leaf-pw }}, {{ user: app, password: app-pw }}, {{ nkey: {public} }} ] }}\nleafnodes {{ listen: 127.0.0.1:{leaf_port} }}\n"
        ),
    );
    let remote = match login {
        Login::Password => format!("url: \"nats-leaf://leaf:leaf-pw@127.0.0.1:{leaf_port}\""),
        Login::Nkey(seed) => format!("url: \"nats-leaf://127.0.0.1:{leaf_port}\", nkey: \"{seed}\""),
    };
    let leaf = start(options_from(&format!("leafnodes {{ remotes = [ {{ {remote} }} ] }}\n"))).await;
    let on_hub = connect(&format!("nats://127.0.0.1:{client_port}"), Some(("app", "app-pw"))).await;
    let on_leaf = connect(&common::url(&leaf), None).await;
    carries_traffic(&on_hub, &on_leaf).await;
    leaf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_leaf_joins_a_nats_server_2_9_hub_with_a_password() {
    let Some(binary) = reference(nats_server_2_9(), "nats-server 2.9.10") else { return };
    let (_, public) = user_key();
    warden_leaf_on(&binary, "hub-2-9", Login::Password, &public).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_leaf_joins_a_nats_server_2_15_hub_with_a_password_and_with_an_nkey() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    let (seed, public) = user_key();
    warden_leaf_on(&binary, "hub-2-15-pw", Login::Password, &public).await;
    warden_leaf_on(&binary, "hub-2-15-nkey", Login::Nkey(&seed), &public).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_warden_servers_that_are_each_others_leaf_find_the_loop_within_a_second() {
    let (_, public) = user_key();
    let users = hub_config(&public).split("leafnodes").next().unwrap().to_owned();
    let (port_a, port_b) = (free_port(), free_port());
    let config = |own: u16, other: u16| {
        format!(
            "{users}http: \"127.0.0.1:0\"\nleafnodes {{ listen: \"127.0.0.1:{own}\", remotes = [ {{ url: \"nats-leaf://leaf:leaf-pw@127.0.0.1:{other}\" }} ] }}\n"
        )
    };
    let a = start(options_from(&config(port_a, port_b))).await;
    // Both servers up: the loop closes as soon as A's next dial reaches B.
    let b = start(options_from(&config(port_b, port_a))).await;
    let started = std::time::Instant::now();
    let (ma, mb) = (a.monitor_addr().unwrap(), b.monitor_addr().unwrap());
    let loops = |v: &serde_json::Value| v["warden"]["security"]["leafnode_loops"].as_u64().unwrap_or(0);
    within(async {
        loop {
            let seen =
                loops(&common::monitor_json(ma, "/varz").await) + loops(&common::monitor_json(mb, "/varz").await);
            if seen > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(1), "found in {:?}", started.elapsed());
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_cluster_with_nats_server_carries_leaf_interest_both_ways() {
    let Some(nats_2_15) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    let Some(nats_2_9) = reference(nats_server_2_9(), "nats-server 2.9.10") else { return };
    let (_, public) = user_key();
    let users = hub_config(&public).split("leafnodes").next().unwrap().to_owned();
    // W: a warden node and hub. N: a nats-server 2.15.1 node and hub, routed to W.
    let w = start(options_from(&format!(
        "{users}cluster {{ name: c1, listen: \"127.0.0.1:0\", insecure_allow_unauthenticated_routes: true }}\nleafnodes {{ listen: \"127.0.0.1:0\" }}\n"
    )))
    .await;
    let w_route = w.cluster().unwrap().listen_addr;
    let (n_client, n_route, n_leaf) = (free_port(), free_port(), free_port());
    let _n = spawn_nats_server(
        &nats_2_15,
        "mixed-n",
        &format!(
            "listen: 127.0.0.1:{n_client}\n{users}cluster {{ name: c1, listen: 127.0.0.1:{n_route}, routes: [\"nats-route://{w_route}\"] }}\nleafnodes {{ listen: 127.0.0.1:{n_leaf} }}\n"
        ),
    );
    // A 2.9.10 leaf on N, another on W.
    let (l1_port, l2_port) = (free_port(), free_port());
    let _l1 = spawn_nats_server(
        &nats_2_9,
        "mixed-l1",
        &format!("listen: 127.0.0.1:{l1_port}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://leaf:leaf-pw@127.0.0.1:{n_leaf}\" }} ] }}\n"),
    );
    let w_leaf = w.leafnode_addr().unwrap();
    let _l2 = spawn_nats_server(
        &nats_2_9,
        "mixed-l2",
        &format!("listen: 127.0.0.1:{l2_port}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://leaf:leaf-pw@{w_leaf}\" }} ] }}\n"),
    );
    let on_w = connect(&common::url(&w), Some(("app", "app-pw"))).await;
    let on_n = connect(&format!("nats://127.0.0.1:{n_client}"), Some(("app", "app-pw"))).await;
    let on_l1 = connect(&format!("nats://127.0.0.1:{l1_port}"), None).await;
    let on_l2 = connect(&format!("nats://127.0.0.1:{l2_port}"), None).await;

    // The leaf of nats-server hears warden's client: its interest crossed N and the route.
    let mut at_l1 = on_l1.subscribe("mix.one").await.unwrap();
    on_l1.flush().await.unwrap();
    until_flowing(&on_w, "mix.one", &mut at_l1).await;
    on_w.publish("mix.one", "w->l1".into()).await.unwrap();
    assert_eq!(&within(at_l1.next()).await.unwrap().payload[..], b"w->l1");

    // warden's leaf hears nats-server's client: warden announced it on the route.
    let mut at_l2 = on_l2.subscribe("mix.two").await.unwrap();
    on_l2.flush().await.unwrap();
    until_flowing(&on_n, "mix.two", &mut at_l2).await;
    on_n.publish("mix.two", "n->l2".into()).await.unwrap();
    assert_eq!(&within(at_l2.next()).await.unwrap().payload[..], b"n->l2");

    // Leaf to leaf across the mixed cluster, exactly once.
    let mut at_l1_again = on_l1.subscribe("mix.three").await.unwrap();
    on_l1.flush().await.unwrap();
    until_flowing(&on_l2, "mix.three", &mut at_l1_again).await;
    on_l2.publish("mix.three", "l2->l1".into()).await.unwrap();
    assert_eq!(&within(at_l1_again.next()).await.unwrap().payload[..], b"l2->l1");
    assert!(tokio::time::timeout(Duration::from_millis(300), at_l1_again.next()).await.is_err(), "no duplicate");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leafnodes_authorization_block_binds_its_users_to_their_accounts() {
    let Some(binary) = reference(nats_server_2_9(), "nats-server 2.9.10") else { return };
    // Clients log in with their own users; leafs only with the block's,
    // and `edge` lands in account EDGE, not in the clients' `$G`.
    let hub = start(options_from(
        r#"accounts {
  EDGE { users = [ { user: edge-app, password: "edge-app-pw" } ] }
}
authorization { users = [ { user: app, password: "app-pw" } ] }
leafnodes {
  listen: "127.0.0.1:0"
  authorization { users = [ { user: edge, password: "edge-leaf-pw", account: EDGE } ] }
}
"#,
    ))
    .await;
    let leaf_addr = hub.leafnode_addr().unwrap();
    // A client's credentials do not open the leaf port.
    let (mut raw, _) = Raw::connect(leaf_addr).await;
    raw.send("CONNECT {\"user\":\"app\",\"pass\":\"app-pw\"}\r\n").await;
    assert_eq!(raw.line().await, "-ERR 'Authorization Violation'");
    let port = free_port();
    let _leaf = spawn_nats_server(
        &binary,
        "leaf-auth-block",
        &format!("listen: 127.0.0.1:{port}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://edge:edge-leaf-pw@{leaf_addr}\" }} ] }}\n"),
    );
    let on_edge = connect(&common::url(&hub), Some(("edge-app", "edge-app-pw"))).await;
    let on_global = connect(&common::url(&hub), Some(("app", "app-pw"))).await;
    let on_leaf = connect(&format!("nats://127.0.0.1:{port}"), None).await;
    let mut at_leaf = on_leaf.subscribe("news").await.unwrap();
    on_leaf.flush().await.unwrap();
    until_flowing(&on_edge, "news", &mut at_leaf).await;
    on_global.publish("news", "from $G".into()).await.unwrap();
    on_edge.publish("news", "from EDGE".into()).await.unwrap();
    assert_eq!(&within(at_leaf.next()).await.unwrap().payload[..], b"from EDGE", "only EDGE's traffic");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_before_the_login_is_closed_and_leaves_nothing_behind() {
    let (_, public) = user_key();
    let hub = hub(&public).await;
    let addr = hub.leafnode_addr().unwrap();
    let leaf_hub = hub.leaf_hub().unwrap().clone();
    let long_ls = format!("LS+ {}\r\n", "x".repeat(8000));
    let cases: [(&str, &[u8], &str); 6] = [
        ("garbage", b"\x00\xff\x16\x03\x01GARBAGE\r\n", "-ERR 'Authorization Violation'"),
        ("double INFO", b"INFO {}\r\nINFO {}\r\n", "-ERR 'Protocol Violation: a second INFO before CONNECT'"),
        ("LMSG before CONNECT", b"LMSG foo 5\r\nhello\r\n", "-ERR 'Authorization Violation'"),
        ("oversized LS+", long_ls.as_bytes(), "-ERR 'Maximum Control Line Exceeded'"),
        ("CONNECT with lang", b"CONNECT {\"lang\":\"go\"}\r\n", "-ERR 'attempted to connect to leaf node port'"),
        ("LS+ before CONNECT", b"LS+ >\r\n", "-ERR 'Authorization Violation'"),
    ];
    for (what, input, err) in cases {
        let (mut raw, _) = Raw::connect(addr).await;
        raw.send(input).await;
        assert_eq!(raw.line().await, err, "{what}");
        raw.expect_closed().await;
    }
    common::peers::eventually("every pending slot to be given back", || leaf_hub.pending_leafs() == 0).await;
    assert!(leaf_hub.leafs().is_empty());
    let leaf_subs =
        hub.broker().all_subscriptions().iter().filter(|s| s.owner.kind == warden::broker::ClientKind::Leaf).count();
    assert_eq!(leaf_subs, 0, "no interest held");
    // And a real leaf still logs in afterwards.
    raw_leaf(addr, "leaf", "leaf-pw").await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_handshakes_does_not_lock_out_a_real_leaf_from_the_same_address() {
    let (_, public) = user_key();
    let hub = hub(&public).await;
    let addr = hub.leafnode_addr().unwrap();
    let leaf_hub = hub.leaf_hub().unwrap().clone();
    // Fill every pending slot this address has, and then some.
    let mut idle = Vec::new();
    for _ in 0..warden::leaf::MAX_PENDING_LEAFS_PER_IP + 4 {
        idle.push(Raw::connect(addr).await.0);
    }
    common::peers::eventually("the slots to fill", || {
        leaf_hub.pending_leafs() == warden::leaf::MAX_PENDING_LEAFS_PER_IP
    })
    .await;
    // The longest-waiting idle one gives way to the leaf that logs in.
    let mut leaf = raw_leaf(addr, "leaf", "leaf-pw").await;
    leaf.send("PING\r\n").await;
    while leaf.line().await != "PONG" {}
    assert_eq!(leaf_hub.leafs().len(), 1);
    drop((leaf, idle));
    hub.shutdown().await;
}

/// A `tls {}` block presenting `who`'s certificate from `dir`, trusting its
/// CA; `extra` adds keys (`verify`, `handshake_first`).
fn tls_block(dir: &std::path::Path, who: &str, extra: &str) -> String {
    let path = |f: &str| dir.join(f).display().to_string();
    format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\" {extra} }}",
        path(&format!("{who}.pem")),
        path(&format!("{who}-key.pem")),
        path("ca.pem")
    )
}

/// A reference leaf of `binary` on a warden hub over mutual TLS: INFO in
/// clear text and then TLS (nats-server's default), or TLS first.
async fn reference_leaf_over_tls(binary: &std::path::Path, name: &str, handshake_first: bool) {
    let certs = leaf_pki(name, &["leaf"]);
    let first = if handshake_first { ", handshake_first: true" } else { "" };
    let hub_tls = tls_block(&certs, "hub", &format!(", verify: true{first}"));
    let config = hub_config(&user_key().1).replace(
        "leafnodes { listen: \"127.0.0.1:0\" }",
        &format!("leafnodes {{ listen: \"127.0.0.1:0\"\n{hub_tls} }}"),
    );
    let hub = start(options_from(&config)).await;
    let leaf_addr = hub.leafnode_addr().unwrap();
    let port = free_port();
    let leaf_tls = tls_block(&certs, "leaf", first);
    let _leaf = spawn_nats_server(
        binary,
        name,
        &format!(
            "listen: 127.0.0.1:{port}\nleafnodes {{ remotes = [ {{ url: \"tls://leaf:leaf-pw@{leaf_addr}\"\n{leaf_tls} }} ] }}\n"
        ),
    );
    let on_hub = connect(&common::url(&hub), Some(("app", "app-pw"))).await;
    let on_leaf = connect(&format!("nats://127.0.0.1:{port}"), None).await;
    carries_traffic(&on_hub, &on_leaf).await;
    let leafz = common::monitor_json(hub.monitor_addr().unwrap(), "/leafz").await;
    assert_eq!(leafz["leafnodes"], 1, "{leafz}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_2_9_leafs_connect_over_mutual_tls() {
    let Some(binary) = reference(nats_server_2_9(), "nats-server 2.9.10") else { return };
    reference_leaf_over_tls(&binary, "tls-leaf-2-9", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_2_15_leafs_connect_over_mutual_tls_in_either_order() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    reference_leaf_over_tls(&binary, "tls-leaf-2-15", false).await;
    reference_leaf_over_tls(&binary, "tls-first-leaf-2-15", true).await;
}

/// A warden leaf of a reference hub over mutual TLS, in either order.
async fn warden_leaf_over_tls(binary: &std::path::Path, name: &str, handshake_first: bool) {
    let certs = leaf_pki(name, &["leaf"]);
    let first = if handshake_first { ", handshake_first: true" } else { "" };
    let (client_port, leaf_port) = (free_port(), free_port());
    let _hub = spawn_nats_server(
        binary,
        name,
        &format!(
            "listen: 127.0.0.1:{client_port}\nauthorization {{ users = [ {{ user: leaf, password: leaf-pw }}, {{ user: app, password: app-pw }} ] }}\nleafnodes {{ listen: 127.0.0.1:{leaf_port}\n{} }}\n",
            tls_block(&certs, "hub", &format!(", verify: true{first}"))
        ),
    );
    let remote = format!("url: \"tls://leaf:leaf-pw@127.0.0.1:{leaf_port}\"\n{}", tls_block(&certs, "leaf", first));
    warden_leaf_carries_traffic(&remote, client_port).await;
}

/// A warden leaf with `remote` of a reference hub whose clients listen on
/// `client_port`: traffic both ways, and /leafz lists the hub connection.
async fn warden_leaf_carries_traffic(remote: &str, client_port: u16) {
    let leaf =
        start(options_from(&format!("leafnodes {{ remotes = [ {{ {remote} }} ] }}\nhttp: \"127.0.0.1:0\"\n"))).await;
    let on_hub = connect(&format!("nats://127.0.0.1:{client_port}"), Some(("app", "app-pw"))).await;
    let on_leaf = connect(&common::url(&leaf), None).await;
    carries_traffic(&on_hub, &on_leaf).await;
    let leafz = common::monitor_json(leaf.monitor_addr().unwrap(), "/leafz").await;
    assert_eq!(leafz["leafs"][0]["is_spoke"], true, "{leafz}");
    leaf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_leaf_joins_a_nats_server_2_9_hub_over_mutual_tls() {
    let Some(binary) = reference(nats_server_2_9(), "nats-server 2.9.10") else { return };
    warden_leaf_over_tls(&binary, "tls-hub-2-9", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_leaf_joins_a_nats_server_2_15_hub_over_mutual_tls_in_either_order() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    warden_leaf_over_tls(&binary, "tls-hub-2-15", false).await;
    warden_leaf_over_tls(&binary, "tls-first-hub-2-15", true).await;
}

/// A warden leaf of a reference hub through the hub's WebSocket port:
/// `ws://`, or `wss://` with certificates made for the test; asking the
/// hub for unmasked frames if `no_masking`.
async fn warden_leaf_over_websocket(binary: &std::path::Path, name: &str, secure: bool, no_masking: bool) {
    let (client_port, leaf_port, ws_port) = (free_port(), free_port(), free_port());
    let certs = secure.then(|| leaf_pki(name, &[]));
    let path = |f: &str| certs.as_ref().map(|d| d.join(f).display().to_string()).unwrap_or_default();
    let (hub_ws, leaf_tls, scheme) = match secure {
        true => (
            format!("tls {{ cert_file: \"{}\", key_file: \"{}\" }}", path("hub.pem"), path("hub-key.pem")),
            format!("\ntls {{ ca_file: \"{}\" }}", path("ca.pem")),
            "wss",
        ),
        false => ("no_tls: true".to_owned(), String::new(), "ws"),
    };
    // The hub takes leafs on its WebSocket port only with a leafnodes block.
    let _hub = spawn_nats_server(
        binary,
        name,
        &format!(
            "listen: 127.0.0.1:{client_port}\nauthorization {{ users = [ {{ user: leaf, password: leaf-pw }}, {{ user: app, password: app-pw }} ] }}\nleafnodes {{ listen: 127.0.0.1:{leaf_port} }}\nwebsocket {{ listen: \"127.0.0.1:{ws_port}\"\n{hub_ws} }}\n"
        ),
    );
    let remote = format!("url: \"{scheme}://leaf:leaf-pw@127.0.0.1:{ws_port}\", ws_no_masking: {no_masking}{leaf_tls}");
    warden_leaf_carries_traffic(&remote, client_port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_leaf_joins_a_nats_server_2_9_hub_over_websocket_masked_or_not() {
    let Some(binary) = reference(nats_server_2_9(), "nats-server 2.9.10") else { return };
    warden_leaf_over_websocket(&binary, "ws-hub-2-9", false, false).await;
    warden_leaf_over_websocket(&binary, "ws-hub-2-9-unmasked", false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_leaf_joins_a_nats_server_2_15_hub_over_websocket_masked_or_not() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    warden_leaf_over_websocket(&binary, "ws-hub-2-15", false, false).await;
    warden_leaf_over_websocket(&binary, "ws-hub-2-15-unmasked", false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_leaf_joins_a_nats_server_2_15_hub_over_secure_websocket() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    warden_leaf_over_websocket(&binary, "wss-hub-2-15", true, false).await;
}

/// Messages `sub` receives until none has come for `quiet`.
async fn drain_count(sub: &mut async_nats::Subscriber, quiet: Duration) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout(quiet, sub.next()).await {
        n += 1;
    }
    n
}

/// A leaf node *cluster* (two nats-server 2.15.1 servers named EDGE, routed
/// to each other) whose servers connect to different nodes of a mixed hub
/// cluster, one warden and one nats-server: nats-server sends warden the
/// cluster's traffic as `LMSG EDGE ...` and its interest as `LS+ EDGE ...`
/// over the route, and each message still arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_cluster_across_a_mixed_hub_cluster_hears_each_message_once() {
    let Some(nats_2_15) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    let (_, public) = user_key();
    let users = hub_config(&public).split("leafnodes").next().unwrap().to_owned();
    let w = start(options_from(&format!(
        "{users}cluster {{ name: hub, listen: \"127.0.0.1:0\", insecure_allow_unauthenticated_routes: true }}\nleafnodes {{ listen: \"127.0.0.1:0\" }}\n"
    )))
    .await;
    let w_route = w.cluster().unwrap().listen_addr;
    let (n_client, n_route, n_leaf) = (free_port(), free_port(), free_port());
    let _n = spawn_nats_server(
        &nats_2_15,
        "edge-hub-n",
        &format!(
            "listen: 127.0.0.1:{n_client}\n{users}cluster {{ name: hub, listen: 127.0.0.1:{n_route}, routes: [\"nats-route://{w_route}\"] }}\nleafnodes {{ listen: 127.0.0.1:{n_leaf} }}\n"
        ),
    );
    let cluster = w.cluster().unwrap().clone();
    common::peers::eventually("the hub route", || cluster.route_count() == 1).await;
    let w_leaf = w.leafnode_addr().unwrap();
    let (l1_port, l1_route, l2_port, l2_route) = (free_port(), free_port(), free_port(), free_port());
    let edge = |port: u16, route: u16, other: u16, hub: String| {
        format!(
            "listen: 127.0.0.1:{port}\nserver_name: edge-{port}\ncluster {{ name: EDGE, listen: 127.0.0.1:{route}, routes: [\"nats-route://127.0.0.1:{other}\"] }}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://leaf:leaf-pw@{hub}\" }} ] }}\n"
        )
    };
    let _l1 =
        spawn_nats_server(&nats_2_15, "edge-l1", &edge(l1_port, l1_route, l2_route, format!("127.0.0.1:{n_leaf}")));
    let _l2 = spawn_nats_server(&nats_2_15, "edge-l2", &edge(l2_port, l2_route, l1_route, w_leaf.to_string()));
    let on_w = connect(&common::url(&w), Some(("app", "app-pw"))).await;
    let on_l1 = connect(&format!("nats://127.0.0.1:{l1_port}"), None).await;
    let on_l2 = connect(&format!("nats://127.0.0.1:{l2_port}"), None).await;
    let hub = w.leaf_hub().unwrap().clone();
    common::peers::eventually("EDGE's leaf on warden", || hub.leafs().len() == 1).await;

    // Up from the leaf cluster's nats-server-hosted half to warden's client:
    // nats-server routes it to warden as `LMSG EDGE $G ...`.
    let mut at_w = on_w.subscribe("up.x").await.unwrap();
    on_w.flush().await.unwrap();
    until_flowing(&on_l1, "up.x", &mut at_w).await;
    for i in 0..20 {
        on_l1.publish("up.x", i.to_string().into()).await.unwrap();
    }
    on_l1.flush().await.unwrap();
    assert_eq!(drain_count(&mut at_w, Duration::from_millis(500)).await, 20);
    assert_eq!(cluster.route_count(), 1, "the route carried the LMSG and is still up");

    // Within the leaf cluster, across both hubs: once each, in both
    // directions; with a subscriber on warden too, so what EDGE publishes
    // through warden also crosses the route, as `LMSG EDGE ...`, which
    // nats-server then keeps from EDGE's other server.
    for (from, to, subject) in [(&on_l1, &on_l2, "edge.a"), (&on_l2, &on_l1, "edge.b")] {
        let mut sub = to.subscribe(subject.to_owned()).await.unwrap();
        to.flush().await.unwrap();
        until_flowing(from, subject, &mut sub).await;
        let mut on_hub = on_w.subscribe(subject.to_owned()).await.unwrap();
        on_w.flush().await.unwrap();
        until_flowing(from, subject, &mut on_hub).await;
        drain_count(&mut sub, Duration::from_millis(100)).await;
        for i in 0..20 {
            from.publish(subject.to_owned(), i.to_string().into()).await.unwrap();
        }
        from.flush().await.unwrap();
        assert_eq!(drain_count(&mut sub, Duration::from_millis(500)).await, 20, "{subject}: each message once");
        assert_eq!(drain_count(&mut on_hub, Duration::from_millis(100)).await, 20, "{subject}: and once on the hub");
    }
    w.shutdown().await;
}

/// A hub whose leaf port takes only the leafnodes block's users: `stay`
/// (password, `$G`), and in account EDGE each of `edge` (password) and the
/// nkey `removable`, unless `removed`; `edge-app` is a client of EDGE.
fn hub_with_leaf_users(nkey: &str, removed: bool) -> String {
    let edge_users = match removed {
        true => String::new(),
        false => format!(
            "{{ user: edge, password: \"edge-leaf-pw\", account: EDGE }}\n    {{ nkey: \"{nkey}\", account: EDGE }}"
        ),
    };
    format!(
        r#"accounts {{ EDGE {{ users = [ {{ user: edge-app, password: "edge-app-pw" }} ] }} }}
authorization {{ users = [ {{ user: app, password: "app-pw" }} ] }}
leafnodes {{
  listen: "127.0.0.1:0"
  authorization {{ users = [
    {{ user: stay, password: "stay-pw" }}
    {edge_users}
  ] }}
}}
"#
    )
}

/// A reference leaf of `binary` on the hub's leaf port at `leaf_addr`,
/// and a client of it.
async fn reference_leaf(
    binary: &std::path::Path,
    name: &str,
    remote: &str,
) -> (common::peers::NatsServer, async_nats::Client) {
    let port = free_port();
    let leaf = spawn_nats_server(
        binary,
        name,
        &format!("listen: 127.0.0.1:{port}\nleafnodes {{ remotes = [ {{ {remote} }} ] }}\n"),
    );
    let client = connect(&format!("nats://127.0.0.1:{port}"), None).await;
    (leaf, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_2_15_leafs_log_in_with_the_nkey_of_the_leafnodes_authorization_block() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    let (seed, public) = user_key();
    // nats-server's own form: one nkey, bound to an account.
    let hub = start(options_from(&format!(
        r#"accounts {{ EDGE {{ users = [ {{ user: edge-app, password: "edge-app-pw" }} ] }} }}
authorization {{ users = [ {{ user: app, password: "app-pw" }} ] }}
leafnodes {{ listen: "127.0.0.1:0", authorization {{ nkey: "{public}", account: EDGE }} }}
"#
    )))
    .await;
    let leaf_addr = hub.leafnode_addr().unwrap();
    let (_leaf, on_leaf) =
        reference_leaf(&binary, "leaf-nkey-block", &format!("url: \"nats-leaf://{leaf_addr}\", nkey: \"{seed}\""))
            .await;
    let on_edge = connect(&common::url(&hub), Some(("edge-app", "edge-app-pw"))).await;
    carries_traffic(&on_edge, &on_leaf).await;
    let links = hub.leaf_hub().unwrap().leafs();
    assert_eq!(links.len(), 1);
    assert_eq!(&*links[0].account, "EDGE");
    assert_eq!(links[0].client.meta.lock().user.as_deref(), Some(public.as_str()));
    hub.shutdown().await;
}

/// The leafs a hub holds from reference servers (the raw ones say NRAW).
fn reference_leafs(hub: &Server) -> usize {
    hub.leaf_hub().unwrap().leafs().iter().filter(|l| l.remote_id != "NRAW").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_removes_leaf_users_closes_their_leafs_and_refuses_them_afterwards() {
    let Some(old) = reference(nats_server_2_9(), "nats-server 2.9.10") else { return };
    // nats-server 2.9.10 has no remote `nkey`: the nkey leaf is 2.15.1's.
    let newer = reference(nats_server_2_15(), "nats-server 2.15.1");
    let (seed, public) = user_key();
    let hub = start(options_from(&hub_with_leaf_users(&public, false))).await;
    let leaf_addr = hub.leafnode_addr().unwrap();
    let mut leafs = vec![
        reference_leaf(&old, "leaf-reload-pw", &format!("url: \"nats-leaf://edge:edge-leaf-pw@{leaf_addr}\"")).await,
    ];
    if let Some(newer) = &newer {
        let remote = format!("url: \"nats-leaf://{leaf_addr}\", nkey: \"{seed}\"");
        leafs.push(reference_leaf(newer, "leaf-reload-nkey", &remote).await);
    }
    let on_edge = connect(&common::url(&hub), Some(("edge-app", "edge-app-pw"))).await;
    for (_, on_leaf) in &leafs {
        let mut at_leaf = on_leaf.subscribe("news").await.unwrap();
        on_leaf.flush().await.unwrap();
        until_flowing(&on_edge, "news", &mut at_leaf).await;
    }
    assert_eq!(reference_leafs(&hub), leafs.len());
    let mut stay = raw_leaf(leaf_addr, "stay", "stay-pw").await;

    hub.reload(&options_from(&hub_with_leaf_users(&public, true))).unwrap();
    // Their connections are closed; each reference leaf reconnects at once
    // and is refused, so none is held again.
    common::peers::eventually("the removed users' leafs closed", || reference_leafs(&hub) == 0).await;
    // The leaf whose user stayed is still served (past the interest the
    // hub told it of).
    stay.send("PING\r\n").await;
    loop {
        let line = stay.line().await;
        if line == "PONG" {
            break;
        }
        assert!(line.starts_with("LS+ ") || line.starts_with("LS- "), "{line}");
    }
    let (mut raw, _) = Raw::connect(leaf_addr).await;
    raw.send("CONNECT {\"user\":\"edge\",\"pass\":\"edge-leaf-pw\",\"server_id\":\"NRAW\"}\r\n").await;
    assert_eq!(raw.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    let (mut raw, info) = Raw::connect(leaf_addr).await;
    let info: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO ")).unwrap();
    let key = warden::nkeys::KeyPair::from_seed(&seed).unwrap();
    let sig =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.sign(info["nonce"].as_str().unwrap().as_bytes()));
    raw.send(format!("CONNECT {{\"nkey\":\"{public}\",\"sig\":\"{sig}\",\"server_id\":\"NRAW\"}}\r\n")).await;
    assert_eq!(raw.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    assert_eq!(reference_leafs(&hub), 0, "no reference leaf got back in");
    hub.shutdown().await;
}

/// A CA, the hub's certificate for 127.0.0.1 and a leaf certificate for
/// each of `leafs` (`CN=name`, email SAN `name@localhost`), made for this
/// test in its own directory.
fn leaf_pki(name: &str, leafs: &[&str]) -> PathBuf {
    let dir = common::temp_dir(name);
    let ca = warden::tls::Ca::new("leaf test CA").unwrap();
    let save = |file: &str, issued: &warden::tls::Issued| {
        std::fs::write(dir.join(format!("{file}.pem")), &issued.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{file}-key.pem")), &issued.key_pem).unwrap();
    };
    save("ca", &ca.issued());
    save("hub", &ca.issue_server(&["127.0.0.1".into(), "localhost".into()]).unwrap());
    for leaf in leafs {
        save(leaf, &ca.issue_client(leaf).unwrap());
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_2_15_leafs_are_mapped_to_leaf_users_by_their_certificate() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    let pki = leaf_pki("leaf-map", &["edge", "mallory"]);
    let file = |name: &str| pki.join(name).display().to_string();
    let hub = start(options_from(&format!(
        r#"accounts {{ EDGE {{ users = [ {{ user: edge-app, password: "edge-app-pw" }} ] }} }}
authorization {{ users = [ {{ user: app, password: "app-pw" }} ] }}
leafnodes {{
  listen: "127.0.0.1:0"
  tls {{ cert_file: "{}", key_file: "{}", ca_file: "{}", verify_and_map: true }}
  authorization {{ users = [ {{ user: "edge@localhost", account: EDGE }} ] }}
}}
"#,
        file("hub.pem"),
        file("hub-key.pem"),
        file("ca.pem")
    )))
    .await;
    let leaf_addr = hub.leafnode_addr().unwrap();
    // INFO in clear text, then TLS: nats-server's default order.
    let remote = |cert: &str| {
        format!(
            "url: \"nats-leaf://{leaf_addr}\", tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\" }}",
            file(&format!("{cert}.pem")),
            file(&format!("{cert}-key.pem")),
            file("ca.pem")
        )
    };
    let (_edge, on_leaf) = reference_leaf(&binary, "leaf-map-edge", &remote("edge")).await;
    let on_edge = connect(&common::url(&hub), Some(("edge-app", "edge-app-pw"))).await;
    carries_traffic(&on_edge, &on_leaf).await;
    let links = hub.leaf_hub().unwrap().leafs();
    assert_eq!(links.len(), 1);
    assert_eq!(&*links[0].account, "EDGE");
    assert_eq!(links[0].client.meta.lock().user.as_deref(), Some("edge@localhost"));
    // A certificate from the same CA that names no leaf user is refused as
    // unmapped, and its leaf never joins.
    let (_mallory, _) = reference_leaf(&binary, "leaf-map-mallory", &remote("mallory")).await;
    let security = &hub.broker().security;
    let unmapped = || security.auth_unmapped_certificate.load(std::sync::atomic::Ordering::Relaxed);
    common::peers::eventually("mallory's leaf refused as unmapped", || unmapped() > 0).await;
    assert_eq!(hub.leaf_hub().unwrap().leafs().len(), 1, "only edge's leaf");
    hub.shutdown().await;
}

/// Every answer to a `$SYS` ping sent by `client` within a second.
async fn ping_answers(client: &async_nats::Client) -> Vec<String> {
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await.unwrap();
    client.publish_with_reply("$SYS.REQ.SERVER.PING", inbox, "".into()).await.unwrap();
    client.flush().await.unwrap();
    let mut ids = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(1000), answers.next()).await {
        let json: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        ids.push(json["server"]["id"].as_str().unwrap_or_default().to_owned());
    }
    ids.sort();
    ids
}

/// The system account's own remote: `$SYS` spans hub and leaf as with
/// nats-server, so a server ping from either side is answered by both.
async fn system_accounts_joined(binary: &std::path::Path, name: &str) {
    let hub = start(options_from(
        "accounts { SYS { users = [ { user: sys, password: sys-pw } ] } }\nsystem_account: SYS\nauthorization { users = [ { user: app, password: app-pw } ] }\nleafnodes { listen: \"127.0.0.1:0\" }\n",
    ))
    .await;
    let leaf_addr = hub.leafnode_addr().unwrap();
    let port = free_port();
    let _leaf = spawn_nats_server(
        binary,
        name,
        &format!(
            "listen: 127.0.0.1:{port}\naccounts {{ SYS {{ users = [ {{ user: lsys, password: lsys-pw }} ] }} }}\nsystem_account: SYS\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://sys:sys-pw@{leaf_addr}\", account: SYS }} ] }}\n"
        ),
    );
    let on_hub = connect(&common::url(&hub), Some(("sys", "sys-pw"))).await;
    let on_leaf = connect(&format!("nats://127.0.0.1:{port}"), Some(("lsys", "lsys-pw"))).await;
    let hub_id = on_hub.server_info().server_id;
    let leaf_id = on_leaf.server_info().server_id;
    let mut both = vec![hub_id.clone(), leaf_id.clone()];
    both.sort();
    within(async { while ping_answers(&on_hub).await != both {} }).await;
    assert_eq!(ping_answers(&on_leaf).await, both, "and from the leaf's side");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_account_remote_joins_sys_with_nats_server_2_9_and_2_15_leafs() {
    for (found, what, name) in [
        (nats_server_2_9(), "nats-server 2.9.10", "sys-leaf-2-9"),
        (nats_server_2_15(), "nats-server 2.15.1", "sys-leaf-2-15"),
    ] {
        let Some(binary) = reference(found, what) else { return };
        system_accounts_joined(&binary, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_leafs_system_account_remote_joins_sys_of_a_nats_server_2_15_hub() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    let (client_port, leaf_port) = (free_port(), free_port());
    let _hub = spawn_nats_server(
        &binary,
        "sys-hub-2-15",
        &format!(
            "listen: 127.0.0.1:{client_port}\naccounts {{ SYS {{ users = [ {{ user: sys, password: sys-pw }} ] }} }}\nsystem_account: SYS\nleafnodes {{ listen: 127.0.0.1:{leaf_port} }}\n"
        ),
    );
    let leaf = start(options_from(&format!(
        "accounts {{ SYS {{ users = [ {{ user: lsys, password: lsys-pw }} ] }} }}\nsystem_account: SYS\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://sys:sys-pw@127.0.0.1:{leaf_port}\", account: SYS }} ] }}\n"
    )))
    .await;
    let on_hub = connect(&format!("nats://127.0.0.1:{client_port}"), Some(("sys", "sys-pw"))).await;
    let on_leaf = connect(&common::url(&leaf), Some(("lsys", "lsys-pw"))).await;
    let mut both = vec![on_hub.server_info().server_id, on_leaf.server_info().server_id];
    both.sort();
    within(async { while ping_answers(&on_hub).await != both {} }).await;
    assert_eq!(ping_answers(&on_leaf).await, both, "and from the leaf's side");
    leaf.shutdown().await;
}

/// `hub: true` in a remote swaps the roles, as nats-server does: the server
/// that dials is the hub, the one it dials its leaf (`is_spoke` in /leafz).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_true_swaps_the_roles_with_nats_server_2_15_both_ways() {
    let Some(binary) = reference(nats_server_2_15(), "nats-server 2.15.1") else { return };
    // A nats-server that dials warden's leaf port and plays the hub.
    let (_, public) = user_key();
    let hub = start(options_from(&hub_config(&public))).await;
    let leaf_addr = hub.leafnode_addr().unwrap();
    let port = free_port();
    let _dialler = spawn_nats_server(
        &binary,
        "swap-dialler",
        &format!("listen: 127.0.0.1:{port}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://leaf:leaf-pw@{leaf_addr}\", hub: true }} ] }}\n"),
    );
    let on_warden = connect(&common::url(&hub), Some(("app", "app-pw"))).await;
    let on_dialler = connect(&format!("nats://127.0.0.1:{port}"), None).await;
    carries_traffic(&on_warden, &on_dialler).await;
    let leafz = common::monitor_json(hub.monitor_addr().unwrap(), "/leafz").await;
    assert_eq!(leafz["leafs"][0]["is_spoke"], true, "warden is the leaf here: {leafz}");
    hub.shutdown().await;

    // warden dials a nats-server's leaf port and plays the hub.
    let (client_port, leaf_port, http_port) = (free_port(), free_port(), free_port());
    let _dialled = spawn_nats_server(
        &binary,
        "swap-dialled",
        &format!(
            "listen: 127.0.0.1:{client_port}\nhttp: 127.0.0.1:{http_port}\nauthorization {{ users = [ {{ user: leaf, password: leaf-pw }}, {{ user: app, password: app-pw }} ] }}\nleafnodes {{ listen: 127.0.0.1:{leaf_port} }}\n"
        ),
    );
    let warden = start(options_from(&format!(
        "leafnodes {{ remotes = [ {{ url: \"nats-leaf://leaf:leaf-pw@127.0.0.1:{leaf_port}\", hub: true }} ] }}\nhttp: \"127.0.0.1:0\"\n"
    )))
    .await;
    let on_dialled = connect(&format!("nats://127.0.0.1:{client_port}"), Some(("app", "app-pw"))).await;
    let on_warden = connect(&common::url(&warden), None).await;
    carries_traffic(&on_warden, &on_dialled).await;
    let theirs = common::monitor_json(format!("127.0.0.1:{http_port}").parse().unwrap(), "/leafz").await;
    assert_eq!(theirs["leafs"][0]["is_spoke"], true, "nats-server is the leaf here: {theirs}");
    let ours = common::monitor_json(warden.monitor_addr().unwrap(), "/leafz").await;
    assert_eq!(ours["leafs"][0]["is_spoke"], false, "{ours}");
    warden.shutdown().await;
}
