//! Monitoring endpoints, black-box: a server on 127.0.0.1 port 0 with
//! monitoring on port 0, traffic from `async-nats` and raw sockets, and the
//! endpoints read with hyper's HTTP/1 client.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::ConnectOptions;
use bytes::Bytes;
use common::*;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use warden::config::{ClusterOptions, HttpAuthorization, HttpOptions, Options};
use warden::secret::Secret;
use warden::server::Server;

/// Monitoring on an ephemeral loopback port.
fn http_on() -> Option<HttpOptions> {
    Some(HttpOptions { host: "127.0.0.1".into(), port: 0, tls: false })
}

fn monitored() -> Options {
    Options { http: http_on(), ..test_options() }
}

/// Options from config text, on ephemeral loopback ports.
fn from_config(text: &str) -> Options {
    let loaded = warden::config::load_str(text, "monitor-test.conf").expect("config loads");
    Options { host: "127.0.0.1".into(), port: 0, http: http_on(), ..loaded.options }
}

fn maddr(server: &Server) -> SocketAddr {
    server.monitor_addr().expect("monitoring is on")
}

/// An HTTP answer: status, headers and body text.
struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// One request over an established stream.
async fn request_on<S>(stream: S, method: &str, path: &str, authorization: Option<&str>) -> Answer
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = within(hyper::client::conn::http1::handshake(TokioIo::new(stream))).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", "127.0.0.1");
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let resp = within(sender.send_request(req.body(Empty::<Bytes>::new()).unwrap())).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = within(resp.into_body().collect()).await.unwrap().to_bytes();
    Answer { status, headers, body: String::from_utf8(body.to_vec()).expect("UTF-8 body") }
}

async fn request(addr: SocketAddr, method: &str, path: &str, authorization: Option<&str>) -> Answer {
    let stream = within(TcpStream::connect(addr)).await.unwrap();
    request_on(stream, method, path, authorization).await
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, None).await
}

async fn get_json(addr: SocketAddr, path: &str) -> Value {
    get(addr, path).await.json()
}

/// Fetches `path` until `done` holds (counters are published at the end of
/// each read batch, so they may trail a PONG by a moment), within the test
/// timeout.
async fn poll(addr: SocketAddr, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    within(async {
        loop {
            let v = get_json(addr, path).await;
            if done(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// The `/connz` entry whose `name` is `name`.
fn conn_named<'a>(connz: &'a Value, name: &str) -> &'a Value {
    connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no connection named {name} in {connz}"))
}

fn cids(connz: &Value) -> Vec<u64> {
    connz["connections"].as_array().unwrap().iter().map(|c| num(c, "cid")).collect()
}

async fn named(server: &Server, name: &str) -> async_nats::Client {
    within(ConnectOptions::new().name(name).connect(url(server))).await.unwrap()
}

#[tokio::test]
async fn varz_and_connz_counters_move_by_exactly_the_traffic() {
    const N: usize = 50;
    const M: usize = 100;
    const K: usize = 3;
    let server = start(monitored()).await;
    let addr = maddr(&server);
    // The server's own (`$SYS` services) before any client.
    let own = num(&get_json(addr, "/varz").await, "subscriptions");

    let publisher = named(&server, "pub").await;
    let mut subscribers = Vec::new();
    for i in 0..K {
        let client = named(&server, &format!("sub{i}")).await;
        let sub = client.subscribe("data").await.unwrap();
        client.flush().await.unwrap();
        subscribers.push((client, sub));
    }
    let before = poll(addr, "/varz", |v| num(v, "subscriptions") == own + K as u64).await;
    assert_eq!(num(&before, "connections"), K as u64 + 1);

    let payload = Bytes::from(vec![b'x'; M]);
    for _ in 0..N {
        publisher.publish("data", payload.clone()).await.unwrap();
    }
    publisher.flush().await.unwrap();
    for (_, sub) in &mut subscribers {
        for _ in 0..N {
            assert_eq!(within(sub.next()).await.unwrap().payload.len(), M);
        }
    }

    let after = poll(addr, "/varz", |v| num(v, "in_msgs") >= num(&before, "in_msgs") + N as u64).await;
    let delta = |key: &str| num(&after, key) - num(&before, key);
    assert_eq!(delta("in_msgs"), N as u64);
    assert_eq!(delta("in_bytes"), (N * M) as u64);
    assert_eq!(delta("out_msgs"), (K * N) as u64);
    assert_eq!(delta("out_bytes"), (K * N * M) as u64);
    assert_eq!(num(&after, "total_connections"), K as u64 + 1);
    assert_eq!(num(&after, "slow_consumers"), 0);
    assert_eq!(after["max_payload"], 1024 * 1024);
    assert_eq!(after["ping_interval"], 120_000_000_000u64, "nanoseconds, as nats-server");
    assert_eq!(after["write_deadline"], 10_000_000_000u64);
    assert_eq!(after["http_port"], addr.port());
    assert_eq!(after["port"], server.local_addr().port());
    assert!(num(&after, "mem") > 0);
    assert!(after["cpu"].is_number() && after["cores"].as_u64().unwrap() >= 1);
    assert!(after["uptime"].as_str().unwrap().ends_with('s'));
    assert!(after["start"].as_str().unwrap().ends_with('Z') && after["now"].as_str().unwrap().contains('T'));
    assert_eq!(after["warden"]["security"]["auth_failures"]["bad_credentials"], 0);

    let connz = get_json(addr, "/connz").await;
    assert_eq!(connz["num_connections"], K as u64 + 1);
    assert_eq!(connz["total"], K as u64 + 1);
    let p = conn_named(&connz, "pub");
    assert_eq!((num(p, "in_msgs"), num(p, "in_bytes")), (N as u64, (N * M) as u64));
    assert_eq!((num(p, "out_msgs"), num(p, "subscriptions")), (0, 0));
    assert_eq!(
        (p["kind"].as_str(), p["type"].as_str(), p["ip"].as_str()),
        (Some("Client"), Some("nats"), Some("127.0.0.1"))
    );
    assert_eq!(p["lang"], "rust");
    assert!(p["version"].is_string() && p["rtt"].is_string() && p["idle"].is_string());
    assert!(p.get("tls_version").is_none(), "no TLS here");
    for i in 0..K {
        let s = conn_named(&connz, &format!("sub{i}"));
        assert_eq!((num(s, "out_msgs"), num(s, "out_bytes")), (N as u64, (N * M) as u64));
        assert_eq!((num(s, "in_msgs"), num(s, "subscriptions")), (0, 1));
        assert_eq!(num(s, "pending_bytes"), 0);
    }

    // One lookup per published message, all but the first from the cache.
    let subsz = poll(addr, "/subsz", |v| num(v, "num_matches") == N as u64).await;
    assert_eq!(num(&subsz, "num_subscriptions"), own + K as u64);
    assert_eq!(subsz["max_fanout"], K as u64);
    assert_eq!(subsz["avg_fanout"], K as f64);
    assert!(subsz["cache_hit_rate"].as_f64().unwrap() > 0.9, "{subsz}");
    server.shutdown().await;
}

/// Connection `i` (1-based) subscribes to `i` subjects and publishes `i`
/// messages of `i` bytes to its first one (echo on, so it also receives them).
async fn graded_connections(server: &Server, n: usize) -> Vec<Raw> {
    let mut conns = Vec::new();
    for i in 1..=n {
        let mut raw = Raw::connected(server.local_addr()).await;
        for s in 0..i {
            raw.send(format!("SUB c{i}.{s} {s}\r\n")).await;
        }
        let payload = "y".repeat(i);
        for _ in 0..i {
            raw.send(format!("PUB c{i}.0 {i}\r\n{payload}\r\n")).await;
        }
        raw.send("PING\r\n").await;
        // The echoed MSGs (and their one-line payloads) come before the PONG.
        while raw.next_non_ping().await != "PONG" {}
        conns.push(raw);
    }
    conns
}

#[tokio::test]
async fn connz_sorting_and_paging() {
    let server = start(monitored()).await;
    let addr = maddr(&server);
    let _conns = graded_connections(&server, 4).await;
    let all = poll(addr, "/connz", |v| {
        v["connections"].as_array().unwrap().iter().map(|c| num(c, "in_msgs")).sum::<u64>() == 1 + 2 + 3 + 4
    })
    .await;
    let ascending = cids(&all);
    assert_eq!(ascending.len(), 4);
    assert!(ascending.windows(2).all(|w| w[0] < w[1]), "cid ascending by default: {ascending:?}");
    let descending: Vec<u64> = ascending.iter().rev().copied().collect();

    // Connection i has i subscriptions, i messages in and out, i*i bytes each way.
    for key in ["subs", "msgs_from", "msgs_to", "bytes_from", "bytes_to"] {
        let sorted = get_json(addr, &format!("/connz?sort={key}")).await;
        assert_eq!(cids(&sorted), descending, "sort={key}");
    }
    assert_eq!(cids(&get_json(addr, "/connz?sort=cid").await), ascending);
    assert_eq!(cids(&get_json(addr, "/connz?sort=start").await), descending, "newest first");
    assert_eq!(cids(&get_json(addr, "/connz?sort=uptime").await), ascending, "longest up first");
    let by_subs = get_json(addr, "/connz?sort=subs").await;
    let subs: Vec<u64> = by_subs["connections"].as_array().unwrap().iter().map(|c| num(c, "subscriptions")).collect();
    assert_eq!(subs, [4, 3, 2, 1]);

    let page = get_json(addr, "/connz?limit=2&offset=1").await;
    assert_eq!(cids(&page), ascending[1..3]);
    assert_eq!((num(&page, "num_connections"), num(&page, "total")), (2, 4));
    assert_eq!((num(&page, "offset"), num(&page, "limit")), (1, 2));
    let page = get_json(addr, "/connz?sort=bytes_from&limit=3&offset=2").await;
    assert_eq!(cids(&page), descending[2..]);
    let past = get_json(addr, "/connz?offset=10").await;
    assert_eq!((num(&past, "num_connections"), num(&past, "total")), (0, 4));
    let one = get_json(addr, &format!("/connz?cid={}", ascending[2])).await;
    assert_eq!(cids(&one), [ascending[2]]);

    for bad in ["/connz?sort=bogus_key", "/connz?limit=lots", "/connz?subs=perhaps", "/connz?sort=%3Cscript%3E"] {
        let answer = get(addr, bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        for reflected in ["bogus_key", "lots", "perhaps", "script"] {
            assert!(!answer.body.contains(reflected), "{bad} reflected input: {}", answer.body);
        }
    }
    assert!(get(addr, "/connz?sort=bogus").await.body.contains("invalid sorting option"));
    server.shutdown().await;
}

#[tokio::test]
async fn subscriptions_lists_in_connz_and_subsz() {
    let server = start(monitored()).await;
    let addr = maddr(&server);
    // The server's own (`$SYS` services) before any client.
    let own = get_json(addr, "/subsz").await;
    let (own_subs, own_inserts, own_removes) =
        (num(&own, "num_subscriptions"), num(&own, "num_inserts"), num(&own, "num_removes"));
    let mut raw = Raw::connected(server.local_addr()).await;
    raw.send("SUB foo.> 1\r\nSUB bar q 2\r\nSUB baz 3\r\nUNSUB 3\r\n").await;
    raw.ping_pong().await;
    let cid = num(&get_json(addr, "/connz").await["connections"][0], "cid");

    let connz = get_json(addr, "/connz?subs=1").await;
    let mut list: Vec<&str> =
        connz["connections"][0]["subscriptions_list"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    list.sort_unstable();
    assert_eq!(list, ["bar", "foo.>"]);
    assert_eq!(connz["connections"][0]["subscriptions"], 2);
    assert!(get_json(addr, "/connz").await["connections"][0].get("subscriptions_list").is_none());

    let detail = get_json(addr, "/connz?subs=detail").await;
    let detail = detail["connections"][0]["subscriptions_list_detail"].as_array().unwrap().clone();
    assert_eq!(detail.len(), 2);
    let bar = detail.iter().find(|d| d["subject"] == "bar").unwrap();
    assert_eq!((bar["qgroup"].as_str(), bar["sid"].as_str(), num(bar, "cid")), (Some("q"), Some("2"), cid));

    let subsz = get_json(addr, "/subscriptionsz?subs=1").await;
    assert_eq!((num(&subsz, "num_subscriptions"), num(&subsz, "total")), (own_subs + 2, own_subs + 2));
    assert_eq!((num(&subsz, "num_inserts"), num(&subsz, "num_removes")), (own_inserts + 3, own_removes + 1));
    let tested = get_json(addr, "/subsz?subs=1&test=foo.x.y").await;
    let matching = tested["subscriptions_list"].as_array().unwrap();
    assert_eq!(matching.len(), 1);
    assert_eq!(matching[0]["subject"], "foo.>");
    assert_eq!(get_json(addr, "/subsz?subs=1&test=nothing").await["total"], 0);
    assert_eq!(get(addr, "/subsz?subs=1&test=foo.*").await.status, StatusCode::BAD_REQUEST);
    let paged = get_json(addr, "/subsz?subs=1&limit=1&offset=1").await;
    assert_eq!(paged["subscriptions_list"].as_array().unwrap().len(), 1);
    assert!(get_json(addr, "/subsz").await.get("subscriptions_list").is_none());
    server.shutdown().await;
}

const TOKEN: &str = "tok-Sup3rSecret-7781";
const ALICE_PW: &str = "alice-Pw-5512";

#[tokio::test]
async fn auth_listing_shows_user_names_only_and_never_a_secret() {
    let server = start(from_config(&format!(
        "authorization {{ users: [ {{ user: alice, password: \"{ALICE_PW}\" }}, {{ user: bob, password: \"bob-Pw-0042\" }} ] }}"
    )))
    .await;
    let addr = maddr(&server);
    let alice = within(ConnectOptions::with_user_and_password("alice".into(), ALICE_PW.into()).connect(url(&server)))
        .await
        .unwrap();
    let _sub = alice.subscribe("alice.inbox").await.unwrap();
    alice.flush().await.unwrap();
    let connz = get_json(addr, "/connz?auth=1&subs=1").await;
    assert_eq!(connz["connections"][0]["authorized_user"], "alice");
    let without = get_json(addr, "/connz?subs=1").await;
    assert!(without["connections"][0].get("authorized_user").is_none(), "only with auth=1");
    let mut seen = connz.to_string();
    for path in ["/varz", "/connz?auth=true&subs=detail", "/subsz?subs=1", "/routez", "/metrics", "/"] {
        seen.push_str(&get(addr, path).await.body);
    }
    assert!(!seen.contains(ALICE_PW) && !seen.contains("bob-Pw-0042"), "a password leaked");
    server.shutdown().await;

    let server = start(from_config(&format!("authorization {{ token: \"{TOKEN}\" }}"))).await;
    let addr = maddr(&server);
    let client = within(ConnectOptions::with_token(TOKEN.into()).connect(url(&server))).await.unwrap();
    let _sub = client.subscribe("t").await.unwrap();
    client.flush().await.unwrap();
    let connz = get_json(addr, "/connz?auth=1").await;
    assert_eq!(connz["num_connections"], 1);
    assert!(connz["connections"][0].get("authorized_user").is_none(), "a token client has no user name");
    let mut seen = String::new();
    for path in ["/varz", "/connz?auth=1&subs=detail", "/connz?auth=true", "/subsz?subs=1", "/routez", "/metrics"] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        seen.push_str(&answer.body);
        seen.push_str(&format!("{:?}", answer.headers));
    }
    assert!(!seen.contains(TOKEN), "the token leaked");
    assert_eq!(get_json(addr, "/varz").await["auth_required"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn failed_login_and_permission_violation_in_varz_and_metrics() {
    let server = start(from_config(&format!(
        "authorization {{ users: [ {{ user: alice, password: \"{ALICE_PW}\", permissions: {{ publish: {{ deny: \"secret.>\" }} }} }} ] }}"
    )))
    .await;
    let addr = maddr(&server);

    let (mut intruder, _) = Raw::connect(server.local_addr()).await;
    intruder.send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wrong\"}\r\n").await;
    assert_eq!(intruder.next_non_ping().await, "-ERR 'Authorization Violation'");

    let (mut alice, _) = Raw::connect(server.local_addr()).await;
    alice.send(format!("CONNECT {{\"verbose\":false,\"user\":\"alice\",\"pass\":\"{ALICE_PW}\"}}\r\n")).await;
    alice.send("PUB secret.plans 2\r\nhi\r\n").await;
    assert_eq!(alice.next_non_ping().await, "-ERR 'Permissions Violation for Publish to \"secret.plans\"'");
    alice.ping_pong().await;

    let varz = poll(addr, "/varz", |v| v["warden"]["security"]["auth_failures"]["bad_credentials"] == 1).await;
    let security = &varz["warden"]["security"];
    assert_eq!(security["auth_successes"], 1);
    assert_eq!(security["auth_failures"]["missing_credentials"], 0);
    assert_eq!(
        security["permission_violations"],
        serde_json::json!([{"user": "alice", "direction": "publish", "count": 1}])
    );
    assert_eq!(security["tls_handshake_failures"], 0);
    assert_eq!(security["refused_max_connections"], 0);

    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    for line in [
        "# TYPE warden_auth_failures_total counter",
        "warden_auth_failures_total{reason=\"bad_credentials\"} 1",
        "warden_auth_failures_total{reason=\"timeout\"} 0",
        "warden_permission_violations_total{user=\"alice\",direction=\"publish\"} 1",
        "warden_auth_successes_total 1",
        "warden_connections 1",
        "warden_in_messages_total 1",
        "warden_slow_consumers_total 0",
        "warden_tls_handshake_failures_total 0",
        "warden_connections_refused_total{reason=\"max_connections\"} 0",
    ] {
        assert!(metrics.body.lines().any(|l| l == line), "missing {line:?} in\n{}", metrics.body);
    }
    for line in metrics.body.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn refused_connections_are_counted() {
    let server = start(Options { max_connections: 1, ..monitored() }).await;
    let addr = maddr(&server);
    let _first = Raw::connected(server.local_addr()).await;
    let (mut second, _) = Raw::connect(server.local_addr()).await;
    assert!(second.expect_closed().await.contains("maximum connections exceeded"));
    let varz = poll(addr, "/varz", |v| v["warden"]["security"]["refused_max_connections"] == 1).await;
    assert_eq!(varz["connections"], 1);
    assert!(get(addr, "/metrics")
        .await
        .body
        .contains("warden_connections_refused_total{reason=\"max_connections\"} 1"));
    server.shutdown().await;

    // The per-address cap is counted apart.
    let server = start(Options { max_connections_per_ip: 1, ..monitored() }).await;
    let addr = maddr(&server);
    let _first = Raw::connected(server.local_addr()).await;
    let (mut second, _) = Raw::connect(server.local_addr()).await;
    assert!(second.expect_closed().await.contains("maximum connections exceeded"));
    poll(addr, "/varz", |v| v["warden"]["security"]["refused_max_connections_per_ip"] == 1).await;
    let metrics = get(addr, "/metrics").await.body;
    assert!(metrics.contains("warden_connections_refused_total{reason=\"max_connections_per_ip\"} 1"), "{metrics}");
    server.shutdown().await;
}

#[tokio::test]
async fn monitoring_token_is_required_when_configured() {
    let opts = Options { http_authorization: Some(HttpAuthorization::Token(Secret::new("mon-t0ken"))), ..monitored() };
    let server = start(opts).await;
    let addr = maddr(&server);
    for path in ["/varz", "/connz", "/subsz", "/metrics", "/routez", "/", "/nope"] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(answer.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        assert!(!answer.body.contains("server_id"));
    }
    let wrong = request(addr, "GET", "/varz", Some("Bearer not-it")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = request(addr, "GET", "/varz", Some("Bearer mon-t0ken")).await;
    assert_eq!(right.json()["server_id"].as_str().map(str::len), Some(56));
    assert_eq!(request(addr, "GET", "/nope", Some("Bearer mon-t0ken")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK, "/healthz stays open for probes");
    let varz = request(addr, "GET", "/varz", Some("Bearer mon-t0ken")).await.json();
    assert_eq!(varz["warden"]["security"]["http_auth_failures"], 8);
    assert!(!varz.to_string().contains("mon-t0ken"));
    server.shutdown().await;
}

#[tokio::test]
async fn monitoring_basic_auth_with_a_hashed_password() {
    let hash = warden::auth::password::hash_password("ops-pass").unwrap();
    let opts = Options {
        http_authorization: Some(HttpAuthorization::User { user: "ops".into(), password: Secret::new(hash) }),
        ..monitored()
    };
    let server = start(opts).await;
    let addr = maddr(&server);
    let basic = |creds: &str| {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(creds))
    };
    let none = get(addr, "/connz").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.headers["www-authenticate"].to_str().unwrap().starts_with("Basic realm="));
    assert_eq!(request(addr, "GET", "/connz", Some(&basic("ops:nope"))).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(request(addr, "GET", "/connz", Some(&basic("root:ops-pass"))).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(request(addr, "GET", "/connz", Some("Bearer ops-pass")).await.status, StatusCode::UNAUTHORIZED);
    for _ in 0..3 {
        // The first pays argon2, the next come from the verified cache.
        let ok = request(addr, "GET", "/connz", Some(&basic("ops:ops-pass"))).await;
        assert_eq!(ok.json()["num_connections"], 0);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn healthz_unknown_paths_methods_and_no_reflection() {
    let server = start(monitored()).await;
    let addr = maddr(&server);
    let health = get(addr, "/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), serde_json::json!({"status": "ok"}));
    assert_eq!(health.headers["content-type"], "application/json");

    let missing = get(addr, "/stacksz").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(request(addr, "POST", "/varz", None).await.status, StatusCode::METHOD_NOT_ALLOWED);

    for path in [
        "/varz?callback=evil_cb",
        "/connz?callback=evil_cb&sort=cid",
        "/subsz?callback=evil_cb",
        "/healthz?callback=evil_cb",
    ] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(!answer.body.contains("evil_cb"), "{path} reflected the callback");
        assert!(answer.body.starts_with('{'), "{path}: plain JSON, no JSONP");
        assert_eq!(answer.headers["content-type"], "application/json");
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
    }
    let routez = get_json(addr, "/routez").await;
    assert_eq!((routez["num_routes"].as_u64(), routez["routes"].as_array().map(Vec::len)), (Some(0), Some(0)));
    let varz = get_json(addr, "/varz").await;
    assert_eq!(varz["http_req_stats"]["/healthz"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn monitoring_off_unless_configured() {
    let server = start(test_options()).await;
    assert_eq!(server.monitor_addr(), None);
    server.shutdown().await;
}

/// GET over HTTPS, trusting `ca_pem`.
async fn https_get(addr: SocketAddr, ca_pem: &str, path: &str) -> Answer {
    use tokio_rustls::rustls::pki_types::ServerName;
    let connector = tls_connector(ca_pem);
    let tcp = within(TcpStream::connect(addr)).await.unwrap();
    let tls = within(connector.connect(ServerName::try_from("localhost").unwrap(), tcp)).await.unwrap();
    request_on(tls, "GET", path, None).await
}

#[tokio::test]
async fn https_monitoring_with_the_client_certificate_and_tls_facts_in_connz() {
    let dir = temp_dir("monitor-https");
    let ca = warden::tls::Ca::new("monitor test CA").unwrap();
    let ca_pem = ca.issued().cert_pem;
    let issued = ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("server.pem"), &issued.cert_pem).unwrap();
    std::fs::write(dir.join("server-key.pem"), &issued.key_pem).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
    let opts = from_config(&format!(
        "https: \"127.0.0.1:0\"\ntls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        dir.join("server.pem").display(),
        dir.join("server-key.pem").display()
    ));
    let opts = Options { http: Some(HttpOptions { host: "127.0.0.1".into(), port: 0, tls: true }), ..opts };
    let server = start(opts).await;
    let addr = maddr(&server);

    let varz = https_get(addr, &ca_pem, "/varz").await.json();
    assert_eq!((varz["https_port"].as_u64(), varz["http_port"].as_u64()), (Some(u64::from(addr.port())), Some(0)));
    assert_eq!(varz["tls_required"], true);

    let client = within(
        ConnectOptions::new()
            .name("tls-client")
            .require_tls(true)
            .add_root_certificates(dir.join("ca.pem"))
            .connect(format!("tls://localhost:{}", server.local_addr().port())),
    )
    .await
    .unwrap();
    client.flush().await.unwrap();
    let connz = https_get(addr, &ca_pem, "/connz").await.json();
    let conn = conn_named(&connz, "tls-client");
    assert_eq!(conn["tls_version"], "1.3", "{conn}");
    assert!(conn["tls_cipher_suite"].as_str().unwrap().starts_with("TLS_"), "{conn}");

    // Plain HTTP on the HTTPS port gets no answer.
    let mut plain = within(TcpStream::connect(addr)).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut plain, b"GET /varz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = within(tokio::io::AsyncReadExt::read_to_end(&mut plain, &mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("server_id"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_example_config_serves_monitoring_behind_its_token() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monitoring.conf");
    let loaded = warden::config::load_file(&path).expect("example config loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let http = loaded.options.http.clone().expect("monitoring on");
    assert_eq!((http.host.as_str(), http.port), ("127.0.0.1", 8222));
    let opts = Options { port: 0, http: http_on(), ..loaded.options };
    let server = start(opts).await;
    let addr = maddr(&server);
    assert_eq!(get(addr, "/varz").await.status, StatusCode::UNAUTHORIZED);
    let varz = request(addr, "GET", "/varz", Some("Bearer change-me-monitoring-token")).await.json();
    assert_eq!(varz["port"], server.local_addr().port());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routez_and_varz_show_the_cluster_without_route_credentials() {
    let cluster = |routes: Vec<String>| ClusterOptions {
        name: Some("mon".into()),
        routes,
        // Loopback-only test cluster.
        allow_unauthenticated: true,
        ..ClusterOptions::default()
    };
    let a = start(Options { server_name: Some("A".into()), cluster: Some(cluster(vec![])), ..monitored() }).await;
    let seed = format!("nats-route://ruser:rpass-Secret@{}", a.cluster().unwrap().listen_addr);
    let b = start(Options { server_name: Some("B".into()), cluster: Some(cluster(vec![seed])), ..monitored() }).await;
    let (ma, mb) = (maddr(&a), maddr(&b));
    // A pool of 3 connections and the system account's own, as
    // nats-server 2.10+ lists them.
    let routez = poll(ma, "/routez", |v| v["num_routes"] == 4).await;
    let routes = routez["routes"].as_array().unwrap();
    assert!(routes.iter().all(|r| r["remote_name"] == "B" && r["did_solicit"] == false && r["ip"] == "127.0.0.1"));
    let pinned: Vec<&Value> = routes.iter().filter(|r| r.get("account").is_some()).collect();
    assert_eq!(pinned.len(), 1);
    assert_eq!(pinned[0]["account"], "$SYS");
    let from_b = poll(mb, "/routez", |v| v["num_routes"] == 4).await;
    assert!(from_b["routes"].as_array().unwrap().iter().all(|r| r["did_solicit"] == true));

    // Interest registered on B shows as A's route subscription.
    let client = named(&b, "on-b").await;
    let _sub = client.subscribe("across.>").await.unwrap();
    client.flush().await.unwrap();
    // B's `$SYS` services are interest too (with the replies its
    // services' forwarded requests wait for, `_R_.<id>.>`, as nats-server
    // has); B's client's is the rest.
    let clients_interest = |v: &Value| -> Vec<String> {
        let routes = v["routes"].as_array().cloned().unwrap_or_default();
        let lists = routes.iter().filter_map(|r| r["subscriptions_list"].as_array().cloned()).flatten();
        let system = |s: &String| s.starts_with("$SYS.") || s.starts_with("_R_.");
        lists.filter_map(|s| s.as_str().map(str::to_owned)).filter(|s| !system(s)).collect()
    };
    let routez = poll(ma, "/routez?subs=1", |v| !clients_interest(v).is_empty()).await;
    assert_eq!(clients_interest(&routez), ["across.>"]);
    assert_eq!(get_json(ma, "/connz").await["num_connections"], 0, "routes are not client connections");

    let varz = get_json(mb, "/varz").await;
    assert_eq!((&varz["routes"], &varz["remotes"]), (&serde_json::json!(4), &serde_json::json!(1)));
    assert_eq!(varz["cluster"]["name"], "mon");
    assert_eq!(varz["cluster"]["urls"], serde_json::json!([a.cluster().unwrap().listen_addr.to_string()]));
    let mut seen = varz.to_string();
    seen.push_str(&get(mb, "/routez?subs=detail").await.body);
    seen.push_str(&get(mb, "/metrics").await.body);
    assert!(!seen.contains("rpass-Secret") && !seen.contains("ruser"), "route credentials leaked");
    let metrics = get(mb, "/metrics").await.body;
    assert!(metrics.lines().any(|l| l == "warden_routes 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "warden_route_connections 4"), "{metrics}");
    b.shutdown().await;
    a.shutdown().await;
}

/// `http_base_path: /nats`: the endpoints move under it, as in nats-server;
/// nothing outside it is served.
#[tokio::test]
async fn http_base_path_moves_every_endpoint() {
    let server = start(Options { http_base_path: Some("/nats".into()), ..monitored() }).await;
    let addr = maddr(&server);
    let varz = get(addr, "/nats/varz").await;
    assert_eq!(varz.status, StatusCode::OK);
    assert!(varz.json()["server_id"].is_string());
    assert_eq!(get(addr, "/nats/healthz").await.status, StatusCode::OK);
    assert_eq!(get(addr, "/nats").await.status, StatusCode::OK);
    // What nats-server 2.15.1 answers 404 to, under the same base path.
    for outside in ["/varz", "/healthz", "/natsvarz", "/", "/nats/"] {
        assert_eq!(get(addr, outside).await.status, StatusCode::NOT_FOUND, "{outside}");
    }
    server.shutdown().await;
}
