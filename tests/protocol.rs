//! Exact protocol lines over raw TCP: the seed telnet session, INFO, verbose
//! mode, every -ERR case, limits, keep-alive and slow consumers.

mod common;

use std::time::Duration;

use common::*;
use tokio::net::TcpSocket;
use warden::config::Options;

#[tokio::test]
async fn seed_telnet_session() {
    let server = start(test_options()).await;
    let (mut c, info) = Raw::connect(server.local_addr()).await;
    let json: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO ")).unwrap();
    assert_eq!(json["proto"], 1);
    assert_eq!(json["headers"], true);
    assert_eq!(json["max_payload"], 1048576);
    assert_eq!(json["port"], server.local_addr().port());
    assert_eq!(json["client_ip"], "127.0.0.1");
    assert!(json["server_id"].as_str().unwrap().starts_with('N'));
    assert!(json.get("auth_required").is_none(), "no auth by default");
    // No CONNECT: like nats-server without auth, verbose is on by default.
    c.send("sub hello 10\r\n").await;
    c.expect("+OK").await;
    c.send("pub hello 5\r\nworld\r\n").await;
    c.expect("+OK").await;
    c.expect("MSG hello 10 5").await;
    c.expect("world").await;
    server.shutdown().await;
}

#[tokio::test]
async fn verbose_acks_and_header_messages() {
    let server = start(test_options()).await;
    let (mut c, _) = Raw::connect(server.local_addr()).await;
    c.send("CONNECT {\"verbose\":true,\"headers\":true}\r\n").await;
    c.expect("+OK").await;
    c.send("SUB foo 1\r\nUNSUB 99\r\nHPUB foo reply 12 14\r\nNATS/1.0\r\n\r\nhi\r\n").await;
    for _ in 0..3 {
        c.expect("+OK").await;
    }
    c.expect("HMSG foo 1 reply 12 14").await;
    c.expect("NATS/1.0").await;
    c.expect("").await;
    c.expect("hi").await;
    // A subscriber without header support gets the payload alone.
    let (mut plain, _) = Raw::connect(server.local_addr()).await;
    plain.send("CONNECT {\"verbose\":false}\r\nSUB foo 7\r\nPING\r\n").await;
    plain.expect("PONG").await;
    c.send("HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n").await;
    plain.expect("MSG foo 7 2").await;
    plain.expect("hi").await;
    server.shutdown().await;
}

#[tokio::test]
async fn input_one_byte_at_a_time() {
    let server = start(test_options()).await;
    let mut c = Raw::connected(server.local_addr()).await;
    for b in b"SUB a.b 1\r\nPUB a.b 3\r\nxyz\r\nPING\r\n" {
        c.send([*b]).await;
    }
    c.expect("MSG a.b 1 3").await;
    c.expect("xyz").await;
    c.expect("PONG").await;
    server.shutdown().await;
}

async fn expect_error_and_close(server_opts: Options, input: &str, want: &str) {
    let server = start(server_opts).await;
    let mut c = Raw::connected(server.local_addr()).await;
    c.send(input).await;
    let rest = c.expect_closed().await;
    assert_eq!(rest, want, "input {input:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn errors_that_close_the_connection() {
    let cases = [
        ("FOO bar\r\n", "-ERR 'Unknown Protocol Operation'\r\n"),
        ("MSG foo 1 2\r\n", "-ERR 'Unknown Protocol Operation'\r\n"),
        ("PUB foo 2\r\nhello\r\n", "-ERR 'Unknown Protocol Operation'\r\n"),
        ("PUB foo 2000000\r\n", "-ERR 'Maximum Payload Violation'\r\n"),
        ("PUB foo -1\r\n", "-ERR 'Protocol Violation: message size is not a valid number'\r\n"),
        ("CONNECT {bad json\r\n", "-ERR 'Protocol Violation: CONNECT is not valid JSON for its fields'\r\n"),
        ("CONNECT {\"protocol\":2}\r\n", "-ERR 'invalid client protocol'\r\n"),
        ("CONNECT {\"no_responders\":true}\r\n", "-ERR 'no responders requires headers support'\r\n"),
        ("CONNECT {\"account\":\"A\"}\r\n", "-ERR 'Authorization Violation'\r\n"),
    ];
    for (input, want) in cases {
        expect_error_and_close(test_options(), input, want).await;
    }
    let long_line = format!("SUB {} 1\r\n", "a".repeat(5000));
    expect_error_and_close(test_options(), &long_line, "-ERR 'maximum control line exceeded'\r\n").await;
    let endless = "SUB ".to_string() + &"b".repeat(10_000);
    expect_error_and_close(test_options(), &endless, "-ERR 'maximum control line exceeded'\r\n").await;
}

#[tokio::test]
async fn hpub_without_headers_closes() {
    let server = start(test_options()).await;
    let (mut c, _) = Raw::connect(server.local_addr()).await;
    c.send("CONNECT {\"verbose\":false,\"headers\":false}\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n").await;
    assert_eq!(c.expect_closed().await, "-ERR 'Protocol Violation: HPUB needs headers enabled in CONNECT'\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn errors_that_keep_the_connection_open() {
    let opts = Options { max_subscriptions: 2, ..test_options() };
    let server = start(opts).await;
    let mut c = Raw::connected(server.local_addr()).await;
    for bad in ["foo..bar", "foo.", ".foo", "foo.>.bar"] {
        c.send(format!("SUB {bad} 1\r\n")).await;
        c.expect("-ERR 'Invalid Subject'").await;
    }
    // warden refuses wildcard or malformed publish subjects and drops the message.
    c.send("SUB > 1\r\n").await;
    for bad in ["foo.*", "foo.>", "a..b"] {
        c.send(format!("PUB {bad} 1\r\nx\r\n")).await;
        c.expect("-ERR 'Invalid Publish Subject'").await;
    }
    c.send("SUB b 2\r\nSUB c 3\r\n").await;
    c.expect("-ERR 'maximum subscriptions exceeded'").await;
    c.send("PUB ok 1\r\nx\r\n").await;
    c.expect("MSG ok 1 1").await;
    c.expect("x").await;
    server.shutdown().await;
}

#[tokio::test]
async fn unsub_with_max_and_duplicate_sid() {
    let server = start(test_options()).await;
    let mut c = Raw::connected(server.local_addr()).await;
    c.send("SUB foo 1\r\nSUB bar 1\r\nUNSUB 1 2\r\n").await;
    for i in 0..4 {
        c.send(format!("PUB foo 1\r\n{i}\r\nPUB bar 1\r\n{i}\r\n")).await;
    }
    c.send("PING\r\n").await;
    for i in 0..2 {
        c.expect("MSG foo 1 1").await;
        c.expect(&i.to_string()).await;
    }
    c.expect("PONG").await;
    // The sid is free again once the subscription ended.
    c.send("SUB bar 1\r\nPUB bar 1\r\nz\r\n").await;
    c.expect("MSG bar 1 1").await;
    c.expect("z").await;
    server.shutdown().await;
}

#[tokio::test]
async fn queue_groups_deliver_once_per_group_plus_plain() {
    let server = start(test_options()).await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let mut m = Raw::connected(server.local_addr()).await;
        m.send("SUB work q 1\r\n").await;
        m.ping_pong().await;
        members.push(m);
    }
    let mut plain = Raw::connected(server.local_addr()).await;
    plain.send("SUB work 9\r\n").await;
    plain.ping_pong().await;
    let mut publisher = Raw::connected(server.local_addr()).await;
    for _ in 0..30 {
        publisher.send("PUB work 1\r\nx\r\n").await;
    }
    publisher.ping_pong().await;
    let mut total = 0;
    for m in &mut members {
        m.send("PING\r\n").await;
        loop {
            let line = m.next_non_ping().await;
            if line == "PONG" {
                break;
            }
            assert_eq!(line, "MSG work 1 1");
            m.expect("x").await;
            total += 1;
        }
    }
    assert_eq!(total, 30, "each message reached exactly one member");
    for _ in 0..30 {
        plain.expect("MSG work 9 1").await;
        plain.expect("x").await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn no_responders_and_echo_off() {
    let server = start(test_options()).await;
    let (mut c, _) = Raw::connect(server.local_addr()).await;
    c.send("CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true,\"echo\":false}\r\n").await;
    c.send("SUB _INBOX.abc.* 5\r\nSUB svc 6\r\nPUB svc _INBOX.abc.1 2\r\nhi\r\nPING\r\n").await;
    // echo off: its own subscriber on svc does not count, so the request gets a 503.
    c.expect("HMSG _INBOX.abc.1 5 16 16").await;
    c.expect("NATS/1.0 503").await;
    c.expect("").await;
    c.expect("").await;
    c.expect("PONG").await;
    server.shutdown().await;
}

/// Paused time: the intervals pass as soon as everything is idle.
#[tokio::test(start_paused = true)]
async fn stale_connection_after_unanswered_pings() {
    let opts = Options { ping_interval: Duration::from_secs(5), ping_max: 2, ..test_options() };
    let server = start(opts).await;
    let (mut c, _) = Raw::connect(server.local_addr()).await;
    c.send("CONNECT {\"verbose\":false}\r\n").await;
    assert_eq!(c.line().await, "PING");
    assert_eq!(c.line().await, "PING");
    assert_eq!(c.expect_closed().await, "-ERR 'Stale Connection'\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn max_connections_refused_after_info() {
    let opts = Options { max_connections: 1, ..test_options() };
    let server = start(opts).await;
    let mut first = Raw::connected(server.local_addr()).await;
    let (mut second, _) = Raw::connect(server.local_addr()).await;
    assert_eq!(second.expect_closed().await, "-ERR 'maximum connections exceeded'\r\n");
    first.ping_pong().await;
    server.shutdown().await;
}

#[tokio::test]
async fn slow_consumer_is_cut_off_and_others_keep_every_message() {
    let opts = Options { max_pending: 256 * 1024, ..test_options() };
    let server = start(opts).await;
    let addr = server.local_addr();
    // A subscriber that never reads, with a tiny receive window.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stuck_stream = within(socket.connect(addr)).await.unwrap();
    let mut stuck = Raw::new(stuck_stream);
    stuck.line().await;
    stuck.send("CONNECT {\"verbose\":false}\r\nSUB flood 1\r\nPING\r\n").await;
    stuck.expect("PONG").await;
    let mut fast = Raw::connected(addr).await;
    fast.send("SUB flood 1\r\n").await;
    fast.ping_pong().await;
    let payload = "x".repeat(16 * 1024);
    let count = 2000;
    let reader = tokio::spawn(async move {
        for _ in 0..count {
            let line = fast.next_non_ping().await;
            assert!(line.starts_with("MSG flood 1 16384"), "{line}");
            fast.payload(16 * 1024).await;
        }
        fast
    });
    let mut publisher = Raw::connected(addr).await;
    let mut batch = String::new();
    for _ in 0..count {
        batch.push_str(&format!("PUB flood {}\r\n{payload}\r\n", payload.len()));
        if batch.len() > 256 * 1024 {
            publisher.send(&batch).await;
            batch.clear();
        }
    }
    publisher.send(&batch).await;
    publisher.ping_pong().await;
    within(reader).await.unwrap();
    assert!(server.broker().stats.slow_consumers.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    server.shutdown().await;
}
