//! Lame-duck mode (SIGTERM) and prompt shutdown (SIGINT): in process
//! through `Server::lame_duck`, with a client library that moves to another
//! server, and on the real binary with signals.

mod common;

use std::time::{Duration, Instant};

use common::binary::{exit_status, serve, signal};
use common::*;
use futures::StreamExt;
use tokio::net::TcpStream;
use warden::config::Options;

fn lame_duck_options(grace: Duration, duration: Duration) -> Options {
    Options { lame_duck_grace_period: grace, lame_duck_duration: duration, ..test_options() }
}

#[tokio::test]
async fn lame_duck_tells_protocol_1_clients_refuses_new_ones_and_closes_after_the_grace() {
    let grace = Duration::from_millis(400);
    let server = start(lame_duck_options(grace, Duration::from_millis(1200))).await;
    let addr = server.local_addr();
    let mut modern = Raw::connected(addr).await; // CONNECT with protocol 1
    modern.send("SUB grace 1\r\n").await;
    modern.ping_pong().await;
    let (mut old, _) = Raw::connect(addr).await; // protocol 0: no async INFO
    old.send("CONNECT {\"verbose\":false,\"protocol\":0}\r\nPING\r\n").await;
    old.expect("PONG").await;

    let started = Instant::now();
    let draining = tokio::spawn(server.lame_duck());
    let info = modern.next_non_ping().await;
    assert!(info.starts_with("INFO {"), "{info}");
    let json: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO ")).unwrap();
    assert_eq!(json["ldm"], true);
    // The listener closed before the INFO went out.
    assert!(TcpStream::connect(addr).await.is_err(), "new connections are refused");
    // During the grace period the server still routes.
    old.send("PUB grace 4\r\nmove\r\nPING\r\n").await;
    modern.expect("MSG grace 1 4").await;
    modern.expect("move").await;
    old.expect("PONG").await;
    // Then both are closed, with nothing more (no -ERR, no INFO for protocol 0).
    assert_eq!(modern.expect_closed().await, "");
    assert_eq!(old.expect_closed().await, "");
    assert!(started.elapsed() >= grace, "closed after {:?}, before the grace", started.elapsed());
    within(draining).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The status line of `GET path` on the monitoring port.
async fn http_status(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = within(TcpStream::connect(addr)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let mut answer = Vec::new();
    within(stream.read_to_end(&mut answer)).await.unwrap();
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn healthz_fails_during_lame_duck_so_load_balancers_move_on() {
    let http = warden::config::HttpOptions { host: "127.0.0.1".into(), port: 0, tls: false };
    let opts = Options { http: Some(http), ..lame_duck_options(Duration::from_secs(30), Duration::from_secs(60)) };
    let server = start(opts).await;
    let monitor = server.monitor_addr().unwrap();
    assert_eq!(http_status(monitor, "/healthz").await, "HTTP/1.1 200 OK");
    let mut c = Raw::connected(server.local_addr()).await;
    let broker = server.broker().clone();
    let draining = tokio::spawn(server.lame_duck());
    assert!(c.next_non_ping().await.contains("\"ldm\":true"));
    assert_eq!(http_status(monitor, "/healthz").await, "HTTP/1.1 503 Service Unavailable");
    broker.begin_shutdown();
    within(draining).await.unwrap();
}

#[tokio::test]
async fn lame_duck_ends_early_when_the_last_client_leaves() {
    let server = start(lame_duck_options(Duration::from_secs(30), Duration::from_secs(60))).await;
    let mut c = Raw::connected(server.local_addr()).await;
    let draining = tokio::spawn(server.lame_duck());
    assert!(c.next_non_ping().await.contains("\"ldm\":true"));
    drop(c);
    within(draining).await.unwrap();
}

#[tokio::test]
async fn shutdown_during_lame_duck_cuts_it_short() {
    let server = start(lame_duck_options(Duration::from_secs(30), Duration::from_secs(60))).await;
    let broker = server.broker().clone();
    let mut c = Raw::connected(server.local_addr()).await;
    let draining = tokio::spawn(server.lame_duck());
    assert!(c.next_non_ping().await.contains("\"ldm\":true"));
    broker.begin_shutdown();
    assert_eq!(c.expect_closed().await, "");
    within(draining).await.unwrap();
}

#[tokio::test]
async fn async_nats_client_moves_to_the_other_server_and_keeps_working() {
    let a = start(lame_duck_options(Duration::from_millis(200), Duration::from_secs(1))).await;
    let b = start(test_options()).await;
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .retain_servers_order()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .event_callback(move |event| {
            let events_tx = events_tx.clone();
            async move {
                let _ = events_tx.send(event.to_string());
            }
        })
        .connect(vec![url(&a), url(&b)])
        .await
        .unwrap();
    assert_eq!(client.server_info().port, a.local_addr().port());
    let mut sub = client.subscribe("moved").await.unwrap();
    client.flush().await.unwrap();

    let draining = tokio::spawn(a.lame_duck());
    within(async {
        while let Some(event) = events.recv().await {
            if event.contains("lame duck") {
                return;
            }
        }
    })
    .await;
    within(draining).await.unwrap();

    // The client reconnects to b and re-subscribes; publish there until the
    // subscription is live again (bounded).
    let publisher = async_nats::connect(url(&b)).await.unwrap();
    let got = within(async {
        loop {
            publisher.publish("moved", "hello".into()).await.unwrap();
            publisher.flush().await.unwrap();
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                return msg;
            }
        }
    })
    .await;
    assert_eq!(got.payload, "hello");
    assert_eq!(client.server_info().port, b.local_addr().port());
    let reply = within(client.request("nobody.home", "x".into())).await;
    assert!(reply.is_err(), "no responders, answered by b");
    b.shutdown().await;
}

#[tokio::test]
async fn sigterm_enters_lame_duck_then_exits_zero() {
    let (mut serving, addr) = serve("ldm-bin", "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"1s\"\n").await;
    let mut c = Raw::connected(addr).await;
    let started = Instant::now();
    signal(&serving.0, "-TERM");
    assert!(c.next_non_ping().await.contains("\"ldm\":true"));
    assert_eq!(c.expect_closed().await, "");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the grace period");
    let status = exit_status(&mut serving).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn sigint_shuts_down_promptly_and_cleanly() {
    let (mut serving, addr) = serve("int-bin", "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"20s\"\n").await;
    let mut c = Raw::connected(addr).await;
    let started = Instant::now();
    signal(&serving.0, "-INT");
    assert_eq!(c.expect_closed().await, "", "closed without lame duck");
    let status = exit_status(&mut serving).await;
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}
