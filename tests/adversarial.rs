//! Attacks on a running server, all on 127.0.0.1 and bounded in count and
//! time: slowloris on CONNECT and on the TLS handshake, connection floods
//! (global and per address), control-line and payload abuse, subscription
//! floods, and a stuck subscriber among fast ones. Each test checks that the
//! attacker gets nats-server's answer, that bystanders keep working, and
//! that the server's connection count comes back down.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use warden::config::{Authorization, Options, TlsOptions};
use warden::secret::Secret;
use warden::server::Server;

/// Polls (bounded) until the server holds `n` connections.
async fn wait_for_clients(server: &Server, n: usize) {
    let deadline = Instant::now() + WAIT;
    while server.broker().client_count() != n {
        assert!(Instant::now() < deadline, "client count stuck at {}, want {n}", server.broker().client_count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A bystander proves the server still serves others: a message to itself
/// comes back.
async fn bystander_roundtrip(c: &mut Raw, tag: &str) {
    c.send(format!("SUB by.{tag} 77\r\nPUB by.{tag} 2\r\nok\r\n")).await;
    c.expect(&format!("MSG by.{tag} 77 2")).await;
    c.expect("ok").await;
    c.send("UNSUB 77\r\n").await;
}

/// Writes `input` (ignoring errors once the server has closed) while reading
/// everything the server sends until it closes; returns what was read after INFO.
async fn attack(addr: SocketAddr, input: Vec<u8>) -> String {
    let stream = within(TcpStream::connect(addr)).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let writer = async move {
        for chunk in input.chunks(16 * 1024) {
            if wr.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let ((), got) = within(async { tokio::join!(writer, reader) }).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let (info, rest) = text.split_once("\r\n").expect("INFO line first");
    assert!(info.starts_with("INFO {"), "{info}");
    rest.to_string()
}

fn auth_options(timeout: Duration) -> Options {
    let authorization = Authorization {
        user: Some("alice".into()),
        password: Some(Secret::new("alice-password")),
        timeout: Some(timeout),
        ..Authorization::default()
    };
    Options { authorization: Some(authorization), ..test_options() }
}

/// One slowloris connection: reads INFO, then sends `bytes` one at a time
/// every `pace`, never finishing, until the server closes. Returns what the
/// server sent after INFO and how long it took to close.
async fn dribble(addr: SocketAddr, bytes: &'static [u8], pace: Duration) -> (String, Duration) {
    let stream = within(TcpStream::connect(addr)).await.expect("connect");
    let started = Instant::now();
    let (mut rd, mut wr) = stream.into_split();
    let writer = async move {
        for b in bytes.iter().cycle() {
            tokio::time::sleep(pace).await;
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
        }
        // Only the server closing ends the attack.
        std::future::pending::<()>().await
    };
    let reader = async move {
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let got = within(async {
        tokio::select! {
            got = reader => got,
            () = writer => Vec::new(),
        }
    })
    .await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let rest = text.split_once("\r\n").map_or(String::new(), |(_, rest)| rest.to_string());
    (rest, started.elapsed())
}

#[tokio::test]
async fn slowloris_connect_is_closed_at_the_auth_timeout() {
    let timeout = Duration::from_millis(500);
    let server = start(auth_options(timeout)).await;
    let addr = server.local_addr();
    let mut alice = Raw::login(addr, "alice", "alice-password").await;
    let attackers: Vec<_> = (0..50)
        .map(|_| tokio::spawn(dribble(addr, b"CONNECT {\"user\":\"alice\",\"pass\":\"", Duration::from_millis(50))))
        .collect();
    for attacker in attackers {
        let (rest, took) = within(attacker).await.unwrap();
        assert_eq!(rest, "-ERR 'Authentication Timeout'\r\n");
        assert!(took >= timeout - Duration::from_millis(50) && took < timeout * 6, "closed after {took:?}");
    }
    bystander_roundtrip(&mut alice, "slowloris").await;
    wait_for_clients(&server, 1).await;
    assert!(server.broker().security.auth_timeouts.load(Ordering::Relaxed) >= 50);
    server.shutdown().await;
}

/// A server certificate from a throwaway CA, for the TLS stall test.
fn tls_options(name: &str, timeout: Duration) -> TlsOptions {
    let dir = temp_dir(name);
    let ca = warden::tls::Ca::new("adversarial CA").unwrap();
    let issued = ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("server.pem"), &issued.cert_pem).unwrap();
    std::fs::write(dir.join("server-key.pem"), &issued.key_pem).unwrap();
    TlsOptions {
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server-key.pem"),
        timeout,
        ..TlsOptions::default()
    }
}

#[tokio::test]
async fn slowloris_tls_handshake_is_closed_at_the_tls_timeout() {
    let timeout = Duration::from_millis(400);
    let opts = Options { tls: Some(tls_options("adv-tls", timeout)), ..test_options() };
    let server = start(opts).await;
    let addr = server.local_addr();
    // A TLS record header announcing a 16 KiB handshake, then a byte at a
    // time; and connections that say nothing at all after INFO.
    static HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc, 0x03, 0x03];
    let mut attackers: Vec<_> =
        (0..25).map(|_| tokio::spawn(dribble(addr, HELLO, Duration::from_millis(50)))).collect();
    attackers.extend((0..25).map(|_| tokio::spawn(dribble(addr, b"", Duration::from_secs(3600)))));
    for attacker in attackers {
        let (rest, took) = within(attacker).await.unwrap();
        assert_eq!(rest, "", "nothing but INFO in plain text");
        // The first byte and the handshake each have `timeout`.
        assert!(took >= timeout - Duration::from_millis(50) && took < timeout * 6, "closed after {took:?}");
    }
    wait_for_clients(&server, 0).await;
    assert_eq!(server.broker().stats.tls_handshake_failures.load(Ordering::Relaxed), 50);
    server.shutdown().await;
}

#[tokio::test]
async fn connection_flood_past_max_connections_is_refused_and_others_keep_working() {
    let opts = Options { max_connections: 20, ..test_options() };
    let server = start(opts).await;
    let addr = server.local_addr();
    let mut residents = Vec::new();
    for _ in 0..5 {
        residents.push(Raw::connected(addr).await);
    }
    // 100 at once: exactly 15 fit.
    let flood: Vec<_> = (0..100)
        .map(|_| {
            tokio::spawn(async move {
                let (mut c, _) = Raw::connect(addr).await;
                c.send("PING\r\n").await;
                let first = c.line().await;
                (c, first)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for f in flood {
        let (mut c, first) = within(f).await.unwrap();
        if first == "PONG" {
            accepted.push(c);
        } else {
            assert_eq!(first, "-ERR 'maximum connections exceeded'");
            assert_eq!(c.expect_closed().await, "");
            refused += 1;
        }
    }
    assert_eq!((accepted.len(), refused), (15, 85));
    assert_eq!(server.broker().stats.refused_max_connections.load(Ordering::Relaxed), 85);
    for (i, r) in residents.iter_mut().enumerate() {
        bystander_roundtrip(r, &format!("flood{i}")).await;
    }
    drop(accepted);
    wait_for_clients(&server, 5).await;
    // Room again once the flood went away.
    Raw::connected(addr).await;
    server.shutdown().await;
}

/// Connects from a given loopback address (all of 127/8 reaches the server).
async fn connect_from(ip: Ipv4Addr, server: SocketAddr) -> Raw {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).unwrap();
    let stream = within(socket.connect(server)).await.expect("connect");
    let mut raw = Raw::new(stream);
    let info = raw.line().await;
    assert!(info.starts_with("INFO {"), "{info}");
    raw
}

#[tokio::test]
async fn per_address_limit_refuses_the_extra_connection_from_that_address_only() {
    let opts = Options { max_connections_per_ip: 3, ..test_options() };
    let server = start(opts).await;
    let addr = server.local_addr();
    let one = Ipv4Addr::new(127, 0, 0, 1);
    let two = Ipv4Addr::new(127, 0, 0, 2);
    let mut from_one = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from(one, addr).await;
        c.send("CONNECT {\"verbose\":false}\r\n").await;
        c.ping_pong().await;
        from_one.push(c);
    }
    let mut extra = connect_from(one, addr).await;
    assert_eq!(extra.expect_closed().await, "-ERR 'maximum connections exceeded'\r\n");
    // Another address is not affected.
    let mut other = connect_from(two, addr).await;
    other.ping_pong().await;
    assert_eq!(server.broker().stats.refused_max_connections_per_ip.load(Ordering::Relaxed), 1);
    // Closing one frees a slot for that address.
    drop(from_one.pop());
    wait_for_clients(&server, 3).await;
    let mut again = connect_from(one, addr).await;
    again.ping_pong().await;
    bystander_roundtrip(&mut from_one[0], "perip").await;
    server.shutdown().await;
}

#[tokio::test]
async fn control_line_and_payload_abuse_gets_the_right_error_and_spares_others() {
    let opts = Options { max_subscriptions: 1000, ..test_options() };
    let server = start(opts).await;
    let addr = server.local_addr();
    let mut bystander = Raw::connected(addr).await;
    let size_err = "-ERR 'Protocol Violation: message size is not a valid number'\r\n";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("endless line", [b"SUB ".to_vec(), vec![b'a'; 1 << 20]].concat(), "-ERR 'maximum control line exceeded'\r\n"),
        (
            "endless PING line",
            [b"PING ".to_vec(), vec![b'x'; 1 << 20]].concat(),
            "-ERR 'maximum control line exceeded'\r\n",
        ),
        ("2 GB payload", b"PUB foo 2147483648\r\n".to_vec(), "-ERR 'Maximum Payload Violation'\r\n"),
        ("negative size", b"PUB foo -1\r\n".to_vec(), size_err),
        ("u64 overflow", b"PUB foo 18446744073709551616\r\n".to_vec(), size_err),
        ("huge digits", b"PUB foo 99999999999999999999999999\r\n".to_vec(), size_err),
        (
            "negative header",
            b"HPUB foo -5 10\r\n".to_vec(),
            "-ERR 'Protocol Violation: header size is not a valid number'\r\n",
        ),
        (
            "header over total",
            b"HPUB foo 10 5\r\n".to_vec(),
            "-ERR 'Protocol Violation: header size is larger than the total size'\r\n",
        ),
        ("payload overrun", b"PUB foo 2\r\nhello\r\n".to_vec(), "-ERR 'Unknown Protocol Operation'\r\n"),
        ("binary garbage", vec![0xff, 0x00, 0xfe, b'\r', b'\n'], "-ERR 'Unknown Protocol Operation'\r\n"),
    ];
    let rss_before = rss_bytes();
    for (name, input, want) in cases {
        let got = attack(addr, input).await;
        assert_eq!(got, want, "{name}");
        bystander_roundtrip(&mut bystander, &name.replace(' ', "_")).await;
    }
    assert!(rss_bytes() < rss_before + 64 * 1024 * 1024, "memory grew by more than 64 MiB");

    // Non-UTF-8 subjects are refused (nats-server accepts and delivers
    // them); the connection stays open.
    let mut c = Raw::connected(addr).await;
    c.send(b"SUB \xff\xfe.\xc3 1\r\nPUB \xff\xfe.\xc3 2\r\nhi\r\n").await;
    c.expect("-ERR 'Invalid Subject'").await;
    c.expect("-ERR 'Invalid Publish Subject'").await;
    c.ping_pong().await;

    // Thousands of SUBs: the first 1000 stay, each one after that is refused
    // and the connection stays open.
    let mut subs = String::new();
    for i in 0..5000 {
        subs.push_str(&format!("SUB many.{i} {i}\r\n"));
    }
    let mut flood = Raw::connected(addr).await;
    flood.send(&subs).await;
    for _ in 0..4000 {
        flood.expect("-ERR 'maximum subscriptions exceeded'").await;
    }
    flood.send("PUB many.999 1\r\nx\r\nPUB many.1000 1\r\ny\r\n").await;
    flood.expect("MSG many.999 999 1").await;
    flood.expect("x").await;
    flood.ping_pong().await;
    bystander_roundtrip(&mut bystander, "after_subs").await;
    drop((c, flood));
    wait_for_clients(&server, 1).await;
    server.shutdown().await;
}

/// Resident set size of this process (the server runs in it).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

#[tokio::test]
async fn stuck_subscriber_among_fast_ones_is_cut_off_and_they_get_every_message() {
    let opts = Options { max_pending: 256 * 1024, ..test_options() };
    let server = start(opts).await;
    let addr = server.local_addr();
    // A subscriber that never reads, with a tiny receive window.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = Raw::new(within(socket.connect(addr)).await.unwrap());
    stuck.line().await;
    stuck.send("CONNECT {\"verbose\":false}\r\nSUB fan 1\r\nPING\r\n").await;
    stuck.expect("PONG").await;
    let size = 16 * 1024;
    let count = 1500;
    let mut readers = Vec::new();
    for _ in 0..4 {
        let mut fast = Raw::connected(addr).await;
        fast.send("SUB fan 1\r\n").await;
        fast.ping_pong().await;
        readers.push(tokio::spawn(async move {
            for _ in 0..count {
                let line = fast.next_non_ping().await;
                assert_eq!(line, format!("MSG fan 1 {size}"));
                fast.payload(size).await;
            }
            fast
        }));
    }
    let mut publisher = Raw::connected(addr).await;
    let payload = "x".repeat(size);
    let mut batch = String::new();
    for _ in 0..count {
        batch.push_str(&format!("PUB fan {size}\r\n{payload}\r\n"));
        if batch.len() > 256 * 1024 {
            publisher.send(&batch).await;
            batch.clear();
        }
    }
    publisher.send(&batch).await;
    publisher.ping_pong().await;
    let mut fast_ones = Vec::new();
    for reader in readers {
        let mut fast = within(reader).await.unwrap();
        fast.ping_pong().await;
        fast_ones.push(fast);
    }
    assert_eq!(server.broker().stats.slow_consumers.load(Ordering::Relaxed), 1);
    // The stuck one was closed; everyone else is still connected.
    wait_for_clients(&server, 5).await;
    server.shutdown().await;
}
