//! The accept rate (`accept_rate {}`, `tls { connection_rate_limit }`) on
//! real listeners, on 127.0.0.1: a storm of raw connects is held to the
//! budget and closed before anything is written (no INFO, no TLS, no HTTP),
//! an established client keeps working through it, the budget refills, and
//! each listener keeps its own.
//!
//! Rates are real time; each test allows for what the budget refills while
//! its storm runs (it measures how long that took), and every wait is
//! bounded.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::ws::KEY;
use common::*;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// What became of one connection: the first bytes the server sent, or
/// `None` when it was closed without a word.
async fn fate(server: SocketAddr, from: Ipv4Addr, hello: &'static [u8]) -> (Option<Vec<u8>>, TcpStream) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    let mut stream = within(socket.connect(server)).await.expect("the kernel completes the TCP handshake");
    // Writing to a socket the server already closed may fail: that is the answer.
    let _ = stream.write_all(hello).await;
    let mut first = vec![0u8; 512];
    let got = match within(stream.read(&mut first)).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(first[..n].to_vec()),
    };
    (got, stream)
}

/// `n` connections from `from` at once: (kept, closed), with the kept
/// sockets (held open) and how long the storm took.
async fn storm(
    server: SocketAddr,
    from: Ipv4Addr,
    hello: &'static [u8],
    n: usize,
) -> (Vec<(Vec<u8>, TcpStream)>, usize, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(fate(server, from, hello))).collect();
    let mut kept = Vec::new();
    let mut closed = 0;
    for task in tasks {
        match within(task).await.unwrap() {
            (Some(first), stream) => kept.push((first, stream)),
            (None, _) => closed += 1,
        }
    }
    (kept, closed, started.elapsed())
}

/// Most connections a budget of `rate`/s with `burst` lets in over `took`.
fn allowed(rate: u32, burst: u32, took: Duration) -> usize {
    (burst as f64 + rate as f64 * took.as_secs_f64()).floor() as usize + 1
}

const LOCAL: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

async fn metrics(addr: SocketAddr) -> String {
    let mut stream = within(TcpStream::connect(addr)).await.unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let mut response = Vec::new();
    within(stream.read_to_end(&mut response)).await.unwrap();
    String::from_utf8(response).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_storm_is_held_to_the_accept_rate_while_an_established_client_keeps_working() {
    let (rate, burst, rate_ip, burst_ip) = (2, 30, 1, 10);
    let opts = options_from(&format!(
        "accept_rate {{ conns_per_sec: {rate}, burst_conns: {burst}, conns_per_sec_per_ip: {rate_ip}, \
         burst_conns_per_ip: {burst_ip} }}\nhttp: \"127.0.0.1:0\"\n"
    ));
    let server = start(opts).await;
    let addr = server.local_addr();
    // Connected before the storm (from 127.0.0.1, the storm's address: one
    // of that address's budget).
    let client = within(async_nats::connect(url(&server))).await.unwrap();
    let mut echo = client.subscribe("storm.echo").await.unwrap();
    client.flush().await.unwrap();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(async move {
        let mut round_trips = 0u64;
        while !*stopped.borrow_and_update() {
            let body = round_trips.to_string();
            client.publish("storm.echo", body.clone().into()).await.unwrap();
            let got = within(echo.next()).await.expect("the established client keeps receiving");
            assert_eq!(got.payload, body);
            round_trips += 1;
        }
        round_trips
    });

    // Five waves of 400 at once.
    let (mut kept, mut closed, mut took) = (Vec::new(), 0, Duration::ZERO);
    for _ in 0..5 {
        let (k, c, t) = storm(addr, LOCAL, b"", 400).await;
        kept.extend(k);
        closed += c;
        took += t;
    }
    stop.send(true).unwrap();
    let round_trips = within(worker).await.unwrap();
    eprintln!(
        "storm from 127.0.0.1: 2000 connects in {took:?}: {} kept, {closed} closed; the established client made {round_trips} round trips meanwhile",
        kept.len()
    );
    assert!(kept.len() <= allowed(rate_ip, burst_ip, took), "{} kept in {took:?}", kept.len());
    assert!(kept.len() >= burst_ip as usize - 1, "its own burst gets in");
    assert!(kept.iter().all(|(first, _)| first.starts_with(b"INFO {")), "kept ones are served");
    assert!(round_trips > 0);

    // The storming address did not spend the listener's budget: other
    // addresses get in, one each, up to what is left of it.
    let mut others = Vec::new();
    for i in 2..=20u8 {
        let (first, stream) = fate(addr, Ipv4Addr::new(127, 0, 0, i), b"").await;
        others.push((first.is_some(), stream));
    }
    let in_others = others.iter().filter(|(kept, _)| *kept).count();
    eprintln!("then 19 other addresses, one connect each: {in_others} kept");
    let left = burst as usize - 1 - kept.len();
    assert!(in_others >= left.min(19), "{in_others} of the {left} left for others got in");

    let refused = server.broker().stats.refused_accept_rate_client.load(Relaxed);
    assert_eq!(refused as usize, closed + (19 - in_others));
    let monitor = server.monitor_addr().unwrap();
    let varz = monitor_json(monitor, "/varz").await;
    assert_eq!(varz["warden"]["security"]["refused_accept_rate"]["client"], refused);
    assert_eq!(varz["warden"]["security"]["refused_accept_rate"]["websocket"], 0);
    let text = metrics(monitor).await;
    assert!(text.contains(&format!("warden_accept_rate_refused_total{{listener=\"client\"}} {refused}\n")), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_accept_rate_refills() {
    let server = start(options_from("accept_rate { conns_per_sec: 10, burst_conns: 3 }")).await;
    let addr = server.local_addr();
    // Until one is refused (the burst, and what refilled meanwhile).
    let mut held = Vec::new();
    let refused_at = within(async {
        loop {
            let (first, stream) = fate(addr, LOCAL, b"").await;
            match first {
                Some(_) => held.push(stream),
                None => return Instant::now(),
            }
        }
    })
    .await;
    assert!(held.len() >= 3, "the burst got in");
    // Then, polled: one interval (100 ms) later there is room again.
    let (again, _stream) = within(async {
        loop {
            if let (Some(first), stream) = fate(addr, LOCAL, b"").await {
                return (first, stream);
            }
        }
    })
    .await;
    let waited = refused_at.elapsed();
    eprintln!("refill: refused, then kept again {waited:?} later");
    assert!(again.starts_with(b"INFO {"));
    assert!(waited < Duration::from_secs(1), "refilled at 10/s, not {waited:?}");
    server.shutdown().await;
}

/// A CA, and a server certificate for `localhost` and 127.0.0.1 in `dir`;
/// the CA's PEM.
fn pki(name: &str) -> (std::path::PathBuf, String) {
    let dir = temp_dir(name);
    let ca = warden::tls::Ca::new("accept rate CA").unwrap();
    let issued = ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("server.pem"), &issued.cert_pem).unwrap();
    std::fs::write(dir.join("server-key.pem"), &issued.key_pem).unwrap();
    (dir, ca.issued().cert_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_servers_connection_rate_limit_closes_excess_tls_connections_before_tls() {
    let (dir, ca_pem) = pki("accept-rate-tls");
    let tls = |extra: &str| {
        format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", connection_rate_limit: 5{extra} }}\n",
            dir.join("server.pem").display(),
            dir.join("server-key.pem").display()
        )
    };
    // INFO first (the NATS order): a refused connection sees no INFO.
    let server = start(options_from(&tls(""))).await;
    let (kept, closed, took) = storm(server.local_addr(), LOCAL, b"", 100).await;
    eprintln!(
        "tls {{ connection_rate_limit: 5 }}, INFO first: 100 connects in {took:?}: {} kept, {closed} closed",
        kept.len()
    );
    assert!(kept.len() <= allowed(5, 5, took) && kept.len() >= 4, "{} kept in {took:?}", kept.len());
    assert!(kept.iter().all(|(first, _)| first.starts_with(b"INFO {")));
    drop(kept);
    server.shutdown().await;

    // TLS first: the excess handshakes never start.
    let server = start(options_from(&tls(", handshake_first: true"))).await;
    let addr = server.local_addr();
    use tokio_rustls::rustls::pki_types::ServerName;
    let connector = tls_connector(&ca_pem);
    let started = Instant::now();
    let handshakes: Vec<_> = (0..60)
        .map(|_| {
            let connector = connector.clone();
            tokio::spawn(async move {
                let tcp = within(TcpStream::connect(addr)).await.unwrap();
                let name = ServerName::try_from("localhost").unwrap();
                within(connector.connect(name, tcp)).await.ok()
            })
        })
        .collect();
    let mut done = Vec::new();
    for h in handshakes {
        if let Some(tls) = within(h).await.unwrap() {
            done.push(tls);
        }
    }
    let took = started.elapsed();
    eprintln!(
        "handshake_first: 60 TLS handshakes in {took:?}: {} completed, {} closed before TLS",
        done.len(),
        60 - done.len()
    );
    assert!(done.len() <= allowed(5, 5, took) && done.len() >= 4, "{} completed in {took:?}", done.len());
    let refused = server.broker().stats.refused_accept_rate_client.load(Relaxed) as usize;
    assert_eq!(refused, 60 - done.len());
    // The server never started TLS on the refused ones.
    assert_eq!(server.broker().stats.tls_handshake_failures.load(Relaxed), 0);
    drop(done);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_leaf_listeners_each_keep_their_own_rate() {
    let config = "authorization { users = [ { user: leaf, password: leaf-pw } ] }\n\
        websocket { listen: \"127.0.0.1:0\", no_tls: true, accept_rate { conns_per_sec: 1, burst_conns: 4 } }\n\
        leafnodes { listen: \"127.0.0.1:0\", accept_rate { conns_per_sec_per_ip: 1, burst_conns_per_ip: 3 } }\n";
    let server = start(options_from(config)).await;
    let upgrade: &'static [u8] = Box::leak(
        format!(
            "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let ws = server.websocket_addr().unwrap();
    let (kept, closed, took) = storm(ws, LOCAL, upgrade, 40).await;
    eprintln!("websocket: 40 connects in {took:?}: {} kept, {closed} closed", kept.len());
    assert!(kept.len() <= allowed(1, 4, took) && kept.len() >= 3, "{} kept in {took:?}", kept.len());
    assert!(kept.iter().all(|(first, _)| first.starts_with(b"HTTP/1.1 101 ")));

    let leaf = server.leafnode_addr().unwrap();
    let (kept_leaf, closed_leaf, took) = storm(leaf, LOCAL, b"", 40).await;
    eprintln!("leafnode: 40 connects in {took:?}: {} kept, {closed_leaf} closed", kept_leaf.len());
    assert!(kept_leaf.len() <= allowed(1, 3, took) && kept_leaf.len() >= 2, "{} kept", kept_leaf.len());
    assert!(kept_leaf.iter().all(|(first, _)| first.starts_with(b"INFO {")));
    // Per address on the leaf listener: another address has its own.
    let (other, _stream) = fate(leaf, Ipv4Addr::new(127, 0, 0, 2), b"").await;
    assert!(other.is_some_and(|first| first.starts_with(b"INFO {")));

    // The client listener has no rate: all 40 get in.
    let (kept_clients, closed_clients, _) = storm(server.local_addr(), LOCAL, b"", 40).await;
    assert_eq!((kept_clients.len(), closed_clients), (40, 0));

    let stats = &server.broker().stats;
    assert_eq!(stats.refused_accept_rate_websocket.load(Relaxed) as usize, closed);
    assert_eq!(stats.refused_accept_rate_leafnode.load(Relaxed) as usize, closed_leaf);
    assert_eq!(stats.refused_accept_rate_client.load(Relaxed), 0);
    drop((kept, kept_leaf, kept_clients));
    server.shutdown().await;
}
