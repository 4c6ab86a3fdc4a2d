//! The configs client libraries' own test suites start servers with
//! (issue 32), started for real and used by real clients: nats.js's
//! launcher config (random ports, a loopback leaf listener, `server_tags`
//! unquoted, a plain WebSocket listener, the ports file), nats.py's
//! three-server cluster on flags, and the keys they exercise: tags and
//! metadata in `/varz` and `$SYS`, `allowed_connection_types`,
//! `max_connections: 0`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::binary::{log_line, serve_logged};
use common::peers::{free_port, NatsServer};
use common::*;
use futures::StreamExt;

/// The warden binary linked as `<dir>/nats-server`, as the launchers find it.
fn nats_server_in(dir: &Path) -> PathBuf {
    let link = dir.join("nats-server");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_warden"), &link).unwrap();
    }
    link
}

/// Starts `nats-server ARGS` in `dir`, its log in `dir/server.log`.
fn spawn(dir: &Path, args: &[&str]) -> NatsServer {
    let log = dir.join(format!("server-{}.log", args.join("_").replace(['/', ':', ','], "_")));
    let stderr = std::fs::File::create(&log).unwrap();
    let child = Command::new(nats_server_in(dir))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    NatsServer(child, Some(log))
}

/// Polls `read` until it returns something (bounded by the test timeout):
/// for files and log lines another process writes.
async fn eventually<T>(mut read: impl FnMut() -> Option<T>) -> T {
    within(async {
        loop {
            if let Some(found) = read() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// `scheme://host:port` of a ports file entry, as a socket address.
fn addr_of(url: &serde_json::Value) -> std::net::SocketAddr {
    let text = url.as_str().unwrap();
    text.split_once("://").unwrap().1.parse().unwrap()
}

/// Publishes on `publisher` until `subscriber` receives (interest may take
/// a moment to cross a route or leaf connection), bounded.
async fn delivered(publisher: &async_nats::Client, subscriber: &async_nats::Client, subject: &str) {
    let mut sub = subscriber.subscribe(subject.to_owned()).await.unwrap();
    subscriber.flush().await.unwrap();
    within(async {
        loop {
            publisher.publish(subject.to_owned(), "hello".into()).await.unwrap();
            publisher.flush().await.unwrap();
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
                assert_eq!(&msg.payload[..], b"hello");
                return;
            }
        }
    })
    .await;
}

/// nats.js's `NatsServer.start` writes this config (its `toConf` of
/// `confDefaults`), starts `nats-server -c`, and waits for
/// `<ports_file_dir>/nats-server_<pid>.ports` to read every port from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_js_launcher_config_starts_reports_its_ports_and_serves_every_listener() {
    let dir = temp_dir("natsjs");
    let config = format!(
        "host: 127.0.0.1\nport: -1\nhttp: \"127.0.0.1:-1\"\nleafnodes {{\n  listen: \"127.0.0.1:-1\"\n }}\n\
         server_tags [\n  id:Q2SOFZ3FMWQGWTJ5BXUCQE\n ]\nwebsocket {{\n  port: -1\n  no_tls: true\n }}\n\
         ports_file_dir: {}\n",
        dir.display()
    );
    std::fs::write(dir.join("nats.conf"), config).unwrap();
    let server = spawn(&dir, &["-c", "nats.conf"]);
    let ports_file = dir.join(format!("nats-server_{}.ports", server.0.id()));
    let ports: serde_json::Value = eventually(|| {
        let text = std::fs::read_to_string(&ports_file).ok()?;
        serde_json::from_str(&text).ok()
    })
    .await;
    let (client, monitor, ws) = (addr_of(&ports["nats"][0]), addr_of(&ports["monitoring"][0]), &ports["websocket"][0]);
    assert!(client.port() != 0 && monitor.port() != 0, "{ports}");
    assert!(ws.as_str().unwrap().starts_with("ws://127.0.0.1:"), "{ports}");

    // Clients on the client port and on the WebSocket port reach each other.
    let tcp = within(async_nats::connect(format!("nats://{client}"))).await.unwrap();
    let browser_like = within(async_nats::connect(ws.as_str().unwrap())).await.unwrap();
    delivered(&browser_like, &tcp, "js.ws.to.tcp").await;

    // The tag, lower-cased as nats-server 2.15.1 shows it.
    let varz = monitor_json(monitor, "/varz").await;
    assert_eq!(varz["tags"], serde_json::json!(["id:q2sofz3fmwqgwtj5bxucqe"]), "{varz}");

    // The leaf port (random, reported in the log as nats-server does) takes
    // a leaf without credentials: nobody authenticates here and it is on
    // loopback; the log says so at start.
    let log_path = server.1.clone().unwrap();
    let log = eventually(|| {
        let text = std::fs::read_to_string(&log_path).ok()?;
        text.contains("Listening for leafnode connections on").then_some(text)
    })
    .await;
    assert!(log.contains("leaf nodes need no credentials: allowed because no client needs credentials"), "{log}");
    let leaf_port: u16 = log
        .lines()
        .find_map(|l| l.split("Listening for leafnode connections on 127.0.0.1:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let (mut raw, info) = Raw::connect(([127, 0, 0, 1], leaf_port).into()).await;
    assert!(info.contains("\"server_id\""), "{info}");
    raw.send("CONNECT {\"verbose\":false}\r\nPING\r\n").await;
    // The hub answers the login with an INFO and its interest (`LS+`), then the PONG.
    let mut line = raw.next_non_ping().await;
    while line.starts_with("INFO ") || line.starts_with("LS+ ") {
        line = raw.next_non_ping().await;
    }
    assert_eq!(line, "PONG");
    // A real leaf: nats-server 2.15.1 as a leaf of this hub, when installed.
    if let Some(nats) = common::deps::nats_server_2_15() {
        let port = free_port();
        let leaf = common::peers::spawn_nats_server(
            &nats,
            "natsjs-leaf",
            &format!(
                "listen: 127.0.0.1:{port}\nleafnodes {{ remotes [ {{ url: \"nats://127.0.0.1:{leaf_port}\" }} ] }}\n"
            ),
        );
        let on_leaf = common::peers::login_retrying(&format!("nats://127.0.0.1:{port}"), "", "").await;
        delivered(&on_leaf, &tcp, "js.leaf.to.hub").await;
        drop(leaf);
    }
}

/// nats.py's `ClusteringTestCase`: three servers started with
/// `-p P -m M -a 127.0.0.1 --cluster_listen nats://127.0.0.1:C --routes
/// (all three) --cluster_name CLUSTER`, no credentials anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_py_cluster_flags_form_an_open_loopback_cluster_with_a_warning() {
    let dir = temp_dir("natspy-cluster");
    let nodes: Vec<(u16, u16, u16)> = (0..3).map(|_| (free_port(), free_port(), free_port())).collect();
    let routes = nodes.iter().map(|(_, _, c)| format!("nats://127.0.0.1:{c}")).collect::<Vec<_>>().join(",");
    let mut servers = Vec::new();
    for (port, http, cluster) in &nodes {
        let args = [
            "-p".to_owned(),
            port.to_string(),
            "-m".to_owned(),
            http.to_string(),
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "--cluster_listen".to_owned(),
            format!("nats://127.0.0.1:{cluster}"),
            "--routes".to_owned(),
            routes.clone(),
            "--cluster_name".to_owned(),
            "CLUSTER".to_owned(),
        ];
        servers.push(spawn(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    let first = common::peers::login_retrying(&format!("nats://127.0.0.1:{}", nodes[0].0), "", "").await;
    let third = common::peers::login_retrying(&format!("nats://127.0.0.1:{}", nodes[2].0), "", "").await;
    delivered(&third, &first, "py.cluster").await;
    let log = std::fs::read_to_string(servers[0].1.as_ref().unwrap()).unwrap();
    assert!(log.contains("cluster routes are not authenticated: allowed because no client needs credentials"), "{log}");

    // The same flags with client credentials: refused, routes must log in.
    let port = free_port();
    let cluster = free_port();
    let (port_s, cluster_s) = (port.to_string(), format!("nats://127.0.0.1:{cluster}"));
    let mut refused = spawn(&dir, &["-p", &port_s, "--user", "foo", "--pass", "bar", "--cluster_listen", &cluster_s]);
    let status = within(async {
        loop {
            if let Some(status) = refused.0.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(!status.success());
    let log = std::fs::read_to_string(refused.1.as_ref().unwrap()).unwrap();
    assert!(log.contains("cluster has no route authentication"), "{log}");
}

/// `server_tags` and `server_metadata` in `/varz` and in the server info of
/// `$SYS` answers; `tags` in a request picks the servers that answer, as
/// nats-server 2.15.1 (trimmed, case-blind); IDZ ignores the filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tags_and_metadata_show_in_varz_and_sys_and_filter_pings() {
    let http = free_port();
    let config = format!(
        "http: 127.0.0.1:{http}\nserver_tags [ az:1, \"Rack:B\" ]\nserver_metadata {{ region: eu }}\n\
         accounts {{ SYS {{ users [ {{user: sys, password: sys-pass}} ] }}, APP {{ users [ {{user: a, password: a-pass}} ] }} }}\n\
         system_account: SYS\n"
    );
    let (_server, addr, _) = serve_logged("tags", &config).await;
    let varz = monitor_json(([127, 0, 0, 1], http).into(), "/varz").await;
    assert_eq!(varz["tags"], serde_json::json!(["az:1", "rack:b"]), "{varz}");
    assert_eq!(varz["metadata"], serde_json::json!({"region": "eu"}), "{varz}");

    let sys = common::peers::login_retrying(&format!("nats://{addr}"), "sys", "sys-pass").await;
    let answer =
        within(sys.request("$SYS.REQ.SERVER.PING.VARZ", r#"{"tags":[" AZ:1","rack:b"]}"#.into())).await.unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(answer["server"]["tags"], serde_json::json!(["az:1", "rack:b"]), "{answer}");
    assert_eq!(answer["server"]["metadata"], serde_json::json!({"region": "eu"}), "{answer}");
    assert_eq!(answer["data"]["tags"], serde_json::json!(["az:1", "rack:b"]), "{answer}");

    // A tag this server lacks: no answer. The unfiltered request sent after
    // it to the same inbox is answered first, so the first was dropped.
    let inbox = sys.new_inbox();
    let mut replies = sys.subscribe(inbox.clone()).await.unwrap();
    sys.publish_with_reply("$SYS.REQ.SERVER.PING.STATSZ", inbox.clone(), r#"{"tags":["az:1","nope"]}"#.into())
        .await
        .unwrap();
    sys.publish_with_reply("$SYS.REQ.SERVER.PING.IDZ", inbox.clone(), r#"{"tags":["nope"]}"#.into()).await.unwrap();
    let first = within(replies.next()).await.unwrap();
    let first: serde_json::Value = serde_json::from_slice(&first.payload).unwrap();
    assert!(first.get("statsz").is_none() && first["id"].is_string(), "IDZ answers, STATSZ stays silent: {first}");
    // A tags field that is not a list of strings is a 400, as nats-server's.
    let bad = within(sys.request("$SYS.REQ.SERVER.PING.VARZ", r#"{"tags":"az:1"}"#.into())).await.unwrap();
    let bad: serde_json::Value = serde_json::from_slice(&bad.payload).unwrap();
    assert_eq!(bad["error"]["code"], 400, "{bad}");
}

/// `allowed_connection_types` on config users, enforced at login with
/// nats-server's error; `max_connections: 0` refuses every client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_types_are_enforced_at_login() {
    let ws_port = free_port();
    let config = format!(
        "websocket {{ listen: 127.0.0.1:{ws_port}, no_tls: true }}\nauthorization {{ users [\n\
         {{user: browser, password: b-pass, allowed_connection_types: [WEBSOCKET]}}\n\
         {{user: service, password: s-pass, clients: [standard]}}\n\
         {{user: any, password: any-pass}}\n] }}\n"
    );
    let (_server, addr, _) = serve_logged("conntypes", &config).await;
    let login = |user: &str, pass: &str| {
        format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\nPING\r\n")
    };
    // TCP: the WebSocket-only user is refused with nats-server's text.
    let (mut raw, _) = Raw::connect(addr).await;
    raw.send(login("browser", "b-pass")).await;
    assert_eq!(raw.next_non_ping().await, "-ERR 'Authorization Violation'");
    for (user, pass) in [("service", "s-pass"), ("any", "any-pass")] {
        let (mut raw, _) = Raw::connect(addr).await;
        raw.send(login(user, pass)).await;
        raw.expect("PONG").await;
    }
    // WebSocket: the other way round.
    let ws = format!("ws://127.0.0.1:{ws_port}");
    let ok = |user: &str, pass: &str| {
        async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).max_reconnects(Some(0))
    };
    let browser = within(ok("browser", "b-pass").connect(&ws)).await.unwrap();
    browser.flush().await.unwrap();
    within(ok("any", "any-pass").connect(&ws)).await.unwrap().flush().await.unwrap();
    let refused = within(ok("service", "s-pass").connect(&ws)).await;
    assert!(refused.is_err(), "a STANDARD-only user logs in over WebSocket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_zero_refuses_every_client_as_nats_server() {
    let http = free_port();
    let (_server, addr, log) = serve_logged("maxconn0", &format!("max_connections: 0\nhttp: 127.0.0.1:{http}\n")).await;
    let (mut raw, _) = Raw::connect(addr).await;
    assert_eq!(raw.expect_closed().await, "-ERR 'maximum connections exceeded'\r\n");
    let varz = monitor_json(([127, 0, 0, 1], http).into(), "/varz").await;
    assert_eq!(varz["max_connections"], -1, "{varz}");
    log_line(&log, &["maximum connections exceeded"]).await;
}

/// A reload that takes a connection type away from a user closes that
/// user's connections of that type, and only those (as nats-server's
/// reload re-checks every client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_disallows_a_connection_type_closes_those_connections() {
    let ws_port = free_port();
    let config = |types: &str| {
        format!(
            "websocket {{ listen: 127.0.0.1:{ws_port}, no_tls: true }}\nauthorization {{ users [\n\
             {{user: svc, password: s-pass, allowed_connection_types: [{types}]}}\n] }}\n"
        )
    };
    let server = start(options_from(&config("STANDARD, WEBSOCKET"))).await;
    let (mut tcp, _) = Raw::connect(server.local_addr()).await;
    tcp.send("CONNECT {\"verbose\":false,\"user\":\"svc\",\"pass\":\"s-pass\"}\r\nPING\r\n").await;
    tcp.expect("PONG").await;
    let ws = async_nats::ConnectOptions::with_user_and_password("svc".into(), "s-pass".into())
        .connect(format!("ws://127.0.0.1:{ws_port}"));
    let ws = within(ws).await.unwrap();
    let mut sub = ws.subscribe("still.here").await.unwrap();
    ws.flush().await.unwrap();

    server.reload(&options_from(&config("WEBSOCKET"))).unwrap();
    assert_eq!(tcp.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    ws.publish("still.here", "yes".into()).await.unwrap();
    assert_eq!(within(sub.next()).await.unwrap().payload, "yes", "the WebSocket connection stays");
    server.shutdown().await;
}
