//! The client listener behind a load balancer (`proxy_protocol` with
//! `trusted_proxies`): HAProxy from Debian sends its PROXY header (v1 and
//! v2) in front of a stock client (async-nats), and warden sees, limits and
//! shows the client's address, not the proxy's; raw sockets send headers
//! from an untrusted address, split, malformed, late.
//!
//! Loopback is all of 127/8 on Linux: the proxy is 127.0.0.2 (HAProxy's
//! `source`), clients are 127.0.0.1 and 127.0.0.3.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::peers::{eventually, free_port};
use common::ws::RawWs;
use common::{monitor_json, options_from, start, temp_dir, within, Raw};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use warden::config::HttpOptions;
use warden::server::Server;

const PROXY: [u8; 4] = [127, 0, 0, 2];

/// warden trusting 127.0.0.2 as its load balancer, monitoring on.
async fn warden(extra: &str) -> Server {
    let mut opts = options_from(&format!("proxy_protocol: true\ntrusted_proxies: [\"127.0.0.2\"]\n{extra}"));
    opts.http = Some(HttpOptions { host: "127.0.0.1".into(), port: 0, tls: false });
    start(opts).await
}

/// A TCP connection to `to` from `from` (any port).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let stream = within(socket.connect(to)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// The addresses `/connz` shows.
async fn connz_ips(server: &Server) -> Vec<String> {
    let connz = monitor_json(server.monitor_addr().unwrap(), "/connz").await;
    let conns = connz["connections"].as_array().cloned().unwrap_or_default();
    conns.iter().filter_map(|c| c["ip"].as_str().map(str::to_owned)).collect()
}

/// The `client_ip` of an INFO line.
fn client_ip(info: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO ")).unwrap();
    json["client_ip"].as_str().unwrap_or_default().to_owned()
}

/// HAProxy in TCP mode on a free port, forwarding to `to` from 127.0.0.2
/// with `send` (`send-proxy` or `send-proxy-v2`); killed when dropped.
struct Haproxy {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy_binary() -> Option<PathBuf> {
    let path = Path::new("/usr/sbin/haproxy");
    common::deps::require(path.exists().then(|| path.to_owned()), "HAProxy", "scripts/test.sh installs it from Debian")
}

async fn haproxy(binary: &Path, to: SocketAddr, send: &str) -> Haproxy {
    let port = free_port();
    let dir = temp_dir("haproxy");
    let conf = dir.join("haproxy.cfg");
    let text = format!(
        "global\n  maxconn 64\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  server warden {to} {send} source 127.0.0.2\n"
    );
    std::fs::write(&conf, text).unwrap();
    let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
    let child = std::process::Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(&conf)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let proxy = Haproxy { child, addr };
    within(async {
        while TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    proxy
}

#[tokio::test]
async fn haproxy_passes_the_client_address_and_per_address_limits_apply_to_it() {
    let Some(binary) = haproxy_binary() else { return };
    for send in ["send-proxy", "send-proxy-v2"] {
        let server = warden("max_connections_per_ip: 1").await;
        let lb = haproxy(&binary, server.local_addr(), send).await;

        // haproxy()'s readiness probe came from 127.0.0.1 too: until HAProxy
        // has closed its side, that connection holds the address's one slot.
        let client = within(async {
            loop {
                match async_nats::connect(format!("nats://{}", lb.addr)).await {
                    Ok(client) => return client,
                    Err(err) if err.to_string().contains("maximum connections exceeded") => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(err) => panic!("{send}: {err}"),
                }
            }
        })
        .await;
        assert_eq!(client.server_info().client_ip, "127.0.0.1", "{send}: INFO names the client");
        within(client.flush()).await.unwrap();
        assert_eq!(connz_ips(&server).await, vec!["127.0.0.1"], "{send}: /connz shows the client, not 127.0.0.2");

        // The per-address limit counts the client behind the proxy: a
        // second connection from 127.0.0.1 is over it...
        let mut second = Raw::new(connect_from([127, 0, 0, 1], lb.addr).await);
        let info = second.line().await;
        assert_eq!(client_ip(&info), "127.0.0.1");
        assert!(second.expect_closed().await.contains("maximum connections exceeded"), "{send}");
        // ...while another client through the same proxy is not.
        let mut third = Raw::new(connect_from([127, 0, 0, 3], lb.addr).await);
        assert_eq!(client_ip(&third.line().await), "127.0.0.3");
        third.send("CONNECT {\"verbose\":false}\r\n").await;
        third.ping_pong().await;
        let mut ips = connz_ips(&server).await;
        ips.sort();
        assert_eq!(ips, vec!["127.0.0.1", "127.0.0.3"], "{send}");
        drop(client);
        server.shutdown().await;
    }
}

/// A v1 header for `client`.
fn v1(client: &str) -> String {
    format!("PROXY TCP4 {client} 127.0.0.1 40000 4222\r\n")
}

/// A v2 PROXY header for 192.0.2.9:40000, with two TLVs.
fn v2() -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
    let block =
        [&[192, 0, 2, 9, 127, 0, 0, 1, 0x9c, 0x40, 0x10, 0x8e][..], &[0x01, 0, 2, b'h', b'2'], &[0x04, 0, 0]].concat();
    out.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&block);
    out
}

#[tokio::test]
async fn headers_from_a_trusted_proxy_in_pieces_or_with_the_client_bytes_behind() {
    let server = warden("").await;
    let addr = server.local_addr();

    // v1 in three writes.
    let mut raw = Raw::new(connect_from(PROXY, addr).await);
    let header = v1("198.51.100.7");
    for piece in [&header[..3], &header[3..20], &header[20..]] {
        raw.send(piece).await;
        raw.stream.flush().await.unwrap();
    }
    assert_eq!(client_ip(&raw.line().await), "198.51.100.7");
    raw.send("CONNECT {\"verbose\":false}\r\n").await;
    raw.ping_pong().await;

    // v2 with TLVs, byte by byte.
    let mut two = Raw::new(connect_from(PROXY, addr).await);
    for byte in v2() {
        two.send([byte]).await;
    }
    assert_eq!(client_ip(&two.line().await), "192.0.2.9");

    // The header and the client's first bytes in one write: nothing of the
    // client's is lost to the header's reader.
    let mut both = Raw::new(connect_from(PROXY, addr).await);
    both.send(format!("{}CONNECT {{\"verbose\":false}}\r\nPING\r\n", v1("203.0.113.5"))).await;
    assert_eq!(client_ip(&both.line().await), "203.0.113.5");
    both.expect("PONG").await;

    let mut ips = connz_ips(&server).await;
    ips.sort();
    assert_eq!(ips, vec!["192.0.2.9", "198.51.100.7", "203.0.113.5"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_header_from_an_untrusted_address_is_refused() {
    let server = warden("").await;
    let addr = server.local_addr();
    for header in [v1("1.2.3.4").into_bytes(), v2()] {
        // 127.0.0.1 is no trusted proxy: it gets INFO with its own address,
        // and its header is no NATS operation.
        let mut raw = Raw::new(connect_from([127, 0, 0, 1], addr).await);
        assert_eq!(client_ip(&raw.line().await), "127.0.0.1");
        raw.send(&header).await;
        let rest = raw.expect_closed().await;
        assert!(rest.contains("-ERR"), "{rest:?}");
    }
    assert!(connz_ips(&server).await.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_trusted_proxy_without_a_valid_header_is_closed_before_info() {
    let server = warden("").await;
    let addr = server.local_addr();
    let bad: [&[u8]; 5] = [
        b"CONNECT {}\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
        &[b'P'; 200],
        b"\r\n\r\n\0\r\nQUIT\n\x21\x31\x00\x00",
    ];
    for bytes in bad {
        let mut raw = Raw::new(connect_from(PROXY, addr).await);
        raw.send(bytes).await;
        assert_eq!(raw.expect_closed().await, "", "closed without a word for {:?}", String::from_utf8_lossy(bytes));
    }
    // Truncated, and nothing at all: closed when the header's time is up.
    for bytes in [&b"PROXY TCP4 1.2"[..], b""] {
        let mut raw = Raw::new(connect_from(PROXY, addr).await);
        raw.send(bytes).await;
        assert_eq!(raw.expect_closed().await, "");
    }
    let varz = monitor_json(server.monitor_addr().unwrap(), "/varz").await;
    assert_eq!(varz["warden"]["security"]["refused_proxy_headers"], 7);
    eventually("no client registered", || server.broker().client_count() == 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_accept_rate_per_address_is_the_client_s_not_the_proxy_s() {
    let server = warden("accept_rate { conns_per_sec_per_ip: 1, burst_conns_per_ip: 2 }").await;
    let addr = server.local_addr();
    let through = |client: &'static str| async move {
        let mut raw = Raw::new(connect_from(PROXY, addr).await);
        raw.send(v1(client)).await;
        raw
    };
    // The proxy itself is never held to one address's budget: six
    // connections, two from each of three clients, all get in.
    let mut kept = Vec::new();
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        for _ in 0..2 {
            let mut raw = through(client).await;
            assert_eq!(client_ip(&raw.line().await), client);
            kept.push(raw);
        }
    }
    // A third from one client within the second is over its own budget:
    // closed without a word, as at accept.
    let mut over = through("198.51.100.1").await;
    assert_eq!(over.expect_closed().await, "");
    let varz = monitor_json(server.monitor_addr().unwrap(), "/varz").await;
    assert_eq!(varz["warden"]["security"]["refused_accept_rate"]["client"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn websocket_clients_behind_a_proxy_are_seen_by_their_own_address() {
    let mut opts = options_from(
        "websocket { listen: \"127.0.0.1:0\", no_tls: true, proxy_protocol: true, trusted_proxies: [\"127.0.0.2\"] }",
    );
    opts.http = Some(HttpOptions { host: "127.0.0.1".into(), port: 0, tls: false });
    let server = start(opts).await;
    let addr = server.websocket_addr().unwrap();
    let upgrade = |extra: &str| {
        format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
            common::ws::KEY
        )
    };
    // Through the proxy: the header names the client; an X-Forwarded-For
    // the client itself wrote is not believed (the client is no proxy).
    let mut stream = connect_from(PROXY, addr).await;
    stream.write_all(v1("198.51.100.20").as_bytes()).await.unwrap();
    let (mut ws, head) = RawWs::from_stream(stream, &upgrade("X-Forwarded-For: 6.6.6.6\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(client_ip(&ws.until("INFO ").await), "198.51.100.20");
    // From the proxy without a header: closed before the upgrade.
    let mut bare = connect_from(PROXY, addr).await;
    bare.write_all(upgrade("").as_bytes()).await.unwrap();
    assert_eq!(Raw::new(bare).expect_closed().await, "");
    assert_eq!(connz_ips(&server).await, vec!["198.51.100.20"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_reference_leaf_through_haproxy_is_seen_by_its_own_address() {
    let (Some(binary), Some(nats)) = (haproxy_binary(), common::deps::nats_server_2_15()) else { return };
    let mut opts = options_from(
        "leafnodes { listen: \"127.0.0.1:0\", proxy_protocol: true, trusted_proxies: [\"127.0.0.2/32\"] }",
    );
    opts.http = Some(HttpOptions { host: "127.0.0.1".into(), port: 0, tls: false });
    let server = start(opts).await;
    let leaf_port = server.leafnode_addr().unwrap();
    let lb = haproxy(&binary, leaf_port, "send-proxy-v2").await;
    let _leaf = common::peers::spawn_nats_server(
        &nats,
        "leaf-behind-haproxy",
        &format!(
            "listen: 127.0.0.1:{}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://{}\" }} ] }}\n",
            free_port(),
            lb.addr
        ),
    );
    let monitor = server.monitor_addr().unwrap();
    let leafz = within(async {
        loop {
            let leafz = monitor_json(monitor, "/leafz").await;
            if leafz["leafnodes"] == 1 {
                return leafz;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(leafz["leafs"][0]["ip"], "127.0.0.1", "the leaf, not HAProxy's 127.0.0.2: {leafz}");
    // A leaf connection from the proxy without a header is closed unanswered.
    let mut bare = Raw::new(connect_from(PROXY, leaf_port).await);
    assert_eq!(bare.expect_closed().await, "");
    server.shutdown().await;
}

#[tokio::test]
async fn failed_logins_are_held_against_the_client_not_the_proxy() {
    let server = warden("authorization { users = [ {user: u, password: p} ] }").await;
    for _ in 0..2 {
        let mut raw = Raw::new(connect_from(PROXY, server.local_addr()).await);
        raw.send(v1("198.51.100.9")).await;
        raw.line().await;
        raw.send("CONNECT {\"user\":\"u\",\"pass\":\"wrong\"}\r\n").await;
        assert_eq!(raw.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    }
    let throttle = server.gate().throttle();
    assert_eq!(throttle.failures("198.51.100.9".parse().unwrap()), 2);
    assert_eq!(throttle.failures(PROXY.into()), 0, "the proxy's own address is not held");
    server.shutdown().await;
}

#[tokio::test]
async fn tls_clients_behind_haproxy_handshake_after_the_header() {
    let Some(binary) = haproxy_binary() else { return };
    let dir = temp_dir("proxy-tls");
    let ca = warden::tls::Ca::new("test CA").unwrap();
    let server_cert = ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    for (name, pem) in [("ca.pem", &ca.issued().cert_pem), ("server.pem", &server_cert.cert_pem)] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    std::fs::write(dir.join("server-key.pem"), &server_cert.key_pem).unwrap();
    let server = warden(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        dir.join("server.pem").display(),
        dir.join("server-key.pem").display()
    ))
    .await;
    let lb = haproxy(&binary, server.local_addr(), "send-proxy-v2").await;
    let client = within(
        async_nats::ConnectOptions::new()
            .add_root_certificates(dir.join("ca.pem"))
            .require_tls(true)
            .connect(format!("tls://localhost:{}", lb.addr.port())),
    )
    .await
    .unwrap();
    assert_eq!(client.server_info().client_ip, "127.0.0.1");
    within(client.flush()).await.unwrap();
    assert_eq!(connz_ips(&server).await, vec!["127.0.0.1"]);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_header() {
    let server = warden("").await;
    let mut waiting = Raw::new(connect_from(PROXY, server.local_addr()).await);
    waiting.send("PROXY TCP4 1.2").await;
    let started = std::time::Instant::now();
    within(server.shutdown()).await;
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
    assert_eq!(waiting.expect_closed().await, "");
}
