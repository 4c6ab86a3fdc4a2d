//! The WebSocket listener with stock clients (async-nats' `websockets`
//! transport, nats-py's aiohttp transport) and raw sockets: the same
//! session as TCP (auth, permissions, request/reply, headers), TLS, the
//! handshake's and framing's refusals, compression and its bound, and
//! forwarded addresses believed only from trusted proxies.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::ws::{RawWs, KEY};
use common::{options_from, start, temp_dir, within, Raw};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden::proto::websocket::{deflate, handshake};

fn config(extra: &str) -> String {
    format!(
        "authorization {{ users: [ {{user: alice, password: secret, permissions: {{publish: \"app.>\", subscribe: [\"app.>\", \"_INBOX.>\"]}}}}, {{user: svc, password: svcpw}} ] }}\n\
         websocket {{ listen: \"127.0.0.1:0\", no_tls: true {extra} }}\n"
    )
}

async fn ws_client(url: &str, user: &str, pass: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into())
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("{user} over WebSocket: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_nats_over_websocket_is_the_same_session_as_tcp() {
    let server = start(options_from(&config(""))).await;
    let ws = format!("ws://{}", server.websocket_addr().unwrap());
    let tcp = common::url(&server);
    let alice = ws_client(&ws, "alice", "secret").await;
    let svc = ws_client(&tcp, "svc", "svcpw").await;
    // Request/reply across the two listeners, with headers.
    let mut service = svc.subscribe("app.echo").await.unwrap();
    svc.flush().await.unwrap();
    let responder = tokio::spawn({
        let svc = svc.clone();
        async move {
            while let Some(msg) = service.next().await {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Echo", msg.headers.as_ref().and_then(|h| h.get("Ask")).map_or("-", |v| v.as_str()));
                svc.publish_with_headers(msg.reply.unwrap(), headers, msg.payload).await.unwrap();
            }
        }
    });
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Ask", "hello");
    let answer = within(async {
        loop {
            match alice.request_with_headers("app.echo", headers.clone(), "ping".into()).await {
                Ok(answer) => return answer,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert_eq!(&answer.payload[..], b"ping");
    assert_eq!(answer.headers.unwrap().get("Echo").unwrap().as_str(), "hello");
    // Permissions hold: alice may not publish outside app.>.
    let mut events = {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let watched = async_nats::ConnectOptions::with_user_and_password("alice".into(), "secret".into())
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(event.to_string());
                }
            })
            .connect(&ws)
            .await
            .unwrap();
        watched.publish("other.x", "no".into()).await.unwrap();
        watched.flush().await.unwrap();
        (rx, watched)
    };
    let violation = within(async {
        loop {
            let event = events.0.recv().await.unwrap();
            if event.contains("Permissions Violation") {
                return event;
            }
        }
    })
    .await;
    assert!(violation.contains("other.x"), "{violation}");
    // A wrong password is refused over WebSocket too.
    let refused = async_nats::ConnectOptions::with_user_and_password("alice".into(), "nope".into())
        .max_reconnects(Some(1))
        .connect(&ws)
        .await;
    assert!(refused.is_err());
    // /connz-style: the connection is marked as a WebSocket one.
    let kinds: Vec<bool> = server.broker().clients().iter().map(|c| c.meta.lock().websocket).collect();
    assert!(kinds.contains(&true) && kinds.contains(&false));
    responder.abort();
}

/// A CA, a server certificate and alice's client certificate (`CN=alice`)
/// in a temp directory: `ca.pem`, `server.pem`, `client.pem` and their keys.
fn wss_files(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let ca = warden::tls::Ca::new("ws test CA").unwrap();
    let save = |file: &str, issued: warden::tls::Issued| {
        std::fs::write(dir.join(format!("{file}.pem")), issued.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{file}-key.pem")), issued.key_pem).unwrap();
    };
    save("ca", ca.issued());
    save("server", ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap());
    save("client", ca.issue_client("alice").unwrap());
    dir
}

/// A `websocket {}` block on `port` with TLS from [`wss_files`] and `verify`.
fn wss_block(dir: &std::path::Path, port: u16, verify: &str) -> String {
    format!(
        "websocket {{ listen: \"127.0.0.1:{port}\", tls {{ cert_file: \"{0}/server.pem\", key_file: \"{0}/server-key.pem\", ca_file: \"{0}/ca.pem\", {verify} }} }}\n",
        dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_client_certificate_and_reconnect_after_a_restart() {
    let (dir, port) = (wss_files("ws-tls"), common::peers::free_port());
    let text = format!(
        "authorization {{ users: [ {{user: alice, password: secret}} ] }}\n{}",
        wss_block(&dir, port, "verify: true")
    );
    let server = start(options_from(&text)).await;
    let url = format!("wss://localhost:{port}");
    let (tx, mut reconnected) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password("alice".into(), "secret".into())
        .add_root_certificates(dir.join("ca.pem"))
        .add_client_certificate(dir.join("client.pem"), dir.join("client-key.pem"))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if matches!(event, async_nats::Event::Connected) {
                    let _ = tx.send(());
                }
            }
        })
        .connect(&url)
        .await
        .expect("alice over wss with her certificate");
    let mut sub = client.subscribe("tls.x").await.unwrap();
    client.flush().await.unwrap();
    client.publish("tls.x", "secure".into()).await.unwrap();
    assert_eq!(&within(sub.next()).await.unwrap().payload[..], b"secure");
    let meta = server.broker().clients().iter().find(|c| c.meta.lock().websocket).unwrap().meta.lock().clone();
    assert_eq!(meta.tls.as_ref().and_then(|tls| tls.version.as_deref()), Some("TLSv1_3"));
    assert!(meta.peer().is_some(), "the client certificate was verified");
    // Without a certificate the TLS handshake fails.
    let bare = async_nats::ConnectOptions::new()
        .add_root_certificates(dir.join("ca.pem"))
        .max_reconnects(Some(1))
        .connect(&url)
        .await;
    assert!(bare.is_err());
    // The server restarts on the same port; the client reconnects and its
    // subscription works again.
    server.shutdown().await;
    let server = start(options_from(&text)).await;
    within(reconnected.recv()).await.unwrap();
    let mut again = within(async {
        loop {
            client.publish("tls.x", "again".into()).await.unwrap();
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
                return msg;
            }
        }
    })
    .await;
    assert_eq!(&again.payload[..], b"again");
    let _ = &mut again;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshakes_and_origins_get_their_http_status() {
    let server = start(options_from(&config(", allowed_origins: [\"https://app.example\"]"))).await;
    let addr = server.websocket_addr().unwrap();
    let (_, head) = RawWs::request(addr, "POST / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    let (_, head) = RawWs::request(addr, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let base = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n");
    for origin in ["Origin: https://evil.example\r\n", ""] {
        let (_, head) = RawWs::request(addr, &format!("{base}{origin}\r\n")).await;
        assert!(head.starts_with("HTTP/1.1 403 "), "{origin:?}: {head}");
    }
    let (mut ws, head) = RawWs::open(addr, "Origin: https://app.example\r\n").await;
    assert!(head.contains(&format!("Sec-WebSocket-Accept: {}", handshake::accept_key(KEY))));
    assert!(ws.until("INFO ").await.contains("\"auth_required\":true"));
    // An oversized head is refused without reading it all.
    let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(20_000));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(huge.as_bytes()).await;
    let mut response = Vec::new();
    let _ = within(stream.read_to_end(&mut response)).await;
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 400 "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_errors_close_with_1002_and_compression_is_bounded() {
    let server = start(options_from(&config(", compression: true"))).await;
    let addr = server.websocket_addr().unwrap();
    // Negotiated compression: a compressed PUB is read, answers may come compressed.
    let (mut ws, head) = RawWs::open(addr, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
    assert!(head.contains("permessage-deflate; server_no_context_takeover; client_no_context_takeover"), "{head}");
    ws.until("INFO ").await;
    let login = b"CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"secret\"}\r\nSUB app.z 1\r\nPUB app.z 5\r\nhello\r\nPING\r\n";
    ws.frame(0x80 | 0x40 | 2, &deflate::deflate(login)).await;
    let text = ws.until("PONG").await;
    assert!(text.contains("MSG app.z 1 5\r\nhello"), "{text}");
    // A ping is answered with a pong carrying its payload.
    ws.frame(0x89, b"beat").await;
    assert_eq!(ws.next().await, (0x8a, b"beat".to_vec()));
    // A compression bomb: a tiny frame inflating past the limit.
    ws.frame(0x80 | 0x40 | 2, &deflate::deflate(&vec![b' '; 8 << 20])).await;
    let (first, payload) = ws.next().await;
    assert_eq!(first, 0x88, "close");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1009);

    // An unmasked frame: close 1002.
    let (mut ws, _) = RawWs::open(addr, "").await;
    ws.until("INFO ").await;
    ws.stream.write_all(&[0x82, 0x04, b'P', b'I', b'N', b'G']).await.unwrap();
    let (first, payload) = ws.next().await;
    assert_eq!((first, u16::from_be_bytes([payload[0], payload[1]])), (0x88, 1002));
    // A client close is answered, and the connection ends.
    let (mut ws, _) = RawWs::open(addr, "").await;
    ws.until("INFO ").await;
    ws.frame(0x88, &1000u16.to_be_bytes()).await;
    assert_eq!(ws.next().await.0, 0x88);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_x_forwarded_for_counts_only_from_a_trusted_proxy() {
    for (proxies, want) in [("", "127.0.0.1"), (", trusted_proxies: [\"127.0.0.1\"]", "203.0.113.7")] {
        let server = start(options_from(&config(proxies))).await;
        let addr = server.websocket_addr().unwrap();
        let (mut ws, _) = RawWs::open(addr, "X-Forwarded-For: 203.0.113.7\r\n").await;
        ws.until("INFO ").await;
        let clients = server.broker().clients();
        let seen: Vec<String> =
            clients.iter().filter(|c| c.meta.lock().websocket).map(|c| c.addr.ip().to_string()).collect();
        assert_eq!(seen, vec![want.to_owned()], "trusted proxies {proxies:?}");
        server.shutdown().await;
    }
}

#[test]
fn nats_server_2_9_websocket_configs_load_and_fail_closed_without_tls() {
    let load = |text: &str| warden::config::load_str(text, "ws.conf").map(|l| l.options).map_err(|e| e.to_string());
    let err = load("websocket { port: 8080 }").unwrap_err();
    assert!(err.contains("ws.conf:1:1") && err.contains("websocket requires TLS configuration"), "{err}");
    let ok = load(
        "websocket {\n  host: 127.0.0.1\n  port: 8080\n  no_tls: true\n  same_origin: true\n  allowed_origins: [\"http://localhost:8080\"]\n  compression: true\n  handshake_timeout: \"2s\"\n  authorization { user: ws, password: pw, timeout: 2 }\n}\n",
    )
    .unwrap();
    let ws = ok.websocket.unwrap();
    assert_eq!((ws.port, ws.same_origin, ws.compression), (8080, true, true));
    let err = load("websocket { port: 1, no_tls: true, allowed_origins: [\"localhost\"] }").unwrap_err();
    assert!(err.contains("absolute http(s) origin"), "{err}");
    let err = load("websocket { port: 1, no_tls: true, trusted_proxies: [\"10.0.0.0/99\"] }").unwrap_err();
    assert!(err.contains("trusted_proxies"), "{err}");
    let err = load("websocket { port: 1, no_tls: true, same_origin: true, jwt_cookie: my_jwt }").unwrap_err();
    assert!(err.contains("trusted operators"), "{err}");
    // A cookie is sent with any page's WebSocket: without an origin rule,
    // cross-site WebSocket hijacking. Refused with the key's position.
    let err = load("websocket {\n  port: 1\n  no_tls: true\n  jwt_cookie: my_jwt\n}").unwrap_err();
    assert!(err.contains("ws.conf:4:3") && err.contains("same_origin: true or allowed_origins"), "{err}");
    assert!(err.contains("every site the user visits could log in as them"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_py_over_websocket() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    let has_aiohttp = std::process::Command::new(&python)
        .args(["-c", "import aiohttp, nats"])
        .output()
        .is_ok_and(|o| o.status.success());
    let how = "scripts/python-deps.sh installs them from PyPI";
    if common::deps::require(has_aiohttp.then_some(()), "nats-py with aiohttp", how).is_none() {
        return;
    }
    let server = start(options_from(&config(""))).await;
    let url = format!("ws://{}", server.websocket_addr().unwrap());
    let script = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1], user="alice", password="secret", allow_reconnect=False)
    sub = await nc.subscribe("app.py")
    await nc.publish("app.py", b"from python", headers={"K": "v"})
    msg = await sub.next_msg(timeout=5)
    print(msg.data.decode(), msg.headers["K"])
    await nc.close()
asyncio.run(main())
"#;
    let out = within(tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).args(["-c", script, &url]).output().unwrap()
    }))
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "from python v", "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_dropped_at_the_handshake_timeout() {
    let server = start(options_from(&config(", handshake_timeout: \"300ms\""))).await;
    let addr = server.websocket_addr().unwrap();
    let started = std::time::Instant::now();
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut rest = Vec::new();
    within(stalled.read_to_end(&mut rest)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(rest.is_empty(), "no answer to a handshake that never completed");
    assert_eq!(server.broker().clients().len(), 0, "never counted as a client");
}

/// One config, as a nats-server 2.9.10 user writes it, run by both servers:
/// the same stock client logs in over WebSocket with the block's own
/// credentials and round-trips a message, and the wrong ones are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_websocket_config_runs_on_nats_server_2_9_and_warden() {
    let text = |port: u16, ws: u16| {
        format!(
            "listen: 127.0.0.1:{port}\nwebsocket {{\n  host: 127.0.0.1\n  port: {ws}\n  no_tls: true\n  compression: true\n  handshake_timeout: \"2s\"\n  authorization {{ user: wsuser, password: wspass, timeout: 2 }}\n}}\n"
        )
    };
    let round_trip = |url: String| async move {
        let client = async_nats::ConnectOptions::with_user_and_password("wsuser".into(), "wspass".into())
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let mut sub = client.subscribe("same.config").await.unwrap();
        client.flush().await.unwrap();
        client.publish("same.config", "ok".into()).await.unwrap();
        assert_eq!(&within(sub.next()).await.unwrap().payload[..], b"ok");
        let wrong = async_nats::ConnectOptions::with_user_and_password("wsuser".into(), "nope".into())
            .max_reconnects(Some(1))
            .connect(&url)
            .await;
        assert!(wrong.is_err(), "{url}: a wrong password is refused");
    };
    match common::peers::nats_server_2_9() {
        Some(binary) => {
            let (port, ws) = (common::peers::free_port(), common::peers::free_port());
            let _server = common::peers::spawn_nats_server(&binary, "ws-ref", &text(port, ws));
            let addr: SocketAddr = format!("127.0.0.1:{ws}").parse().unwrap();
            within(async {
                while TcpStream::connect(addr).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            round_trip(format!("ws://{addr}")).await;
        }
        None => eprintln!("nats-server 2.9.10 not installed: only warden runs the config"),
    }
    let server = start(options_from(&text(0, 0))).await;
    round_trip(format!("ws://{}", server.websocket_addr().unwrap())).await;
}

/// A browser that stops reading is a slow consumer like any client: cut
/// once it is behind past max_pending (or the write deadline), while the
/// publisher and others carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_stops_reading_is_cut_as_a_slow_consumer() {
    let text = format!("max_payload: 65536\nmax_pending: 262144\nwrite_deadline: \"1s\"\n{}", config(""));
    let server = start(options_from(&text)).await;
    let (mut stalled, _) = RawWs::open(server.websocket_addr().unwrap(), "").await;
    stalled.until("INFO ").await;
    stalled
        .frame(0x82, b"CONNECT {\"verbose\":false,\"user\":\"svc\",\"pass\":\"svcpw\"}\r\nSUB flood 1\r\nPING\r\n")
        .await;
    stalled.until("PONG").await;
    let publisher = ws_client(&common::url(&server), "svc", "svcpw").await;
    let chunk = bytes::Bytes::from(vec![b'x'; 16 * 1024]);
    within(async {
        while server.broker().stats.slow_consumers.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            for _ in 0..64 {
                publisher.publish("flood", chunk.clone()).await.unwrap();
            }
            publisher.flush().await.unwrap();
        }
    })
    .await;
    // The publisher was never cut, and still round-trips.
    let mut own = publisher.subscribe("after").await.unwrap();
    publisher.flush().await.unwrap();
    publisher.publish("after", "still here".into()).await.unwrap();
    assert_eq!(&within(own.next()).await.unwrap().payload[..], b"still here");
    let broker = server.broker().clone();
    common::peers::eventually("the stalled browser connection is gone", || {
        broker.clients().iter().all(|c| !c.meta.lock().websocket)
    })
    .await;
    drop(stalled);
}

/// One address may hold only a few handshakes open: past them, its next
/// connection is closed at once, while another address still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_handshake_slot() {
    let server = start(options_from(&config(", handshake_timeout: \"5s\""))).await;
    let addr = server.websocket_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(stalled);
    }
    // A real client from the same address gets in: the address's
    // longest-waiting stalled handshake gives way, at once and not at the
    // handshake timeout.
    let started = std::time::Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = RawWs::from_stream(stream, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n")).await;
    ws.until("INFO ").await;
    let mut byte = [0u8; 1];
    // Closed: a clean end, or a reset when the server had not read all the
    // stalled request line before it let go.
    let closed = match within(held[0].read(&mut byte)).await {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "the oldest stalled one is closed");
    assert!(started.elapsed() < Duration::from_secs(4), "closed at once, not at the handshake timeout");
    // Another loopback address is not affected.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = other.connect(addr).await.unwrap();
    let (mut ws, _) = RawWs::from_stream(stream, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n")).await;
    ws.until("INFO ").await;
    drop(held);
}

/// `/varz` has nats-server's `websocket` section: the listener's settings,
/// and `{}` without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varz_describes_the_websocket_listener_as_nats_server_does() {
    let config =
        config(", same_origin: true, allowed_origins: [\"https://app.example:443\"], handshake_timeout: \"3s\"");
    let server = start(options_from(&format!("{config}http: \"127.0.0.1:0\"\n"))).await;
    let varz = common::monitor_json(server.monitor_addr().unwrap(), "/varz").await;
    let ws = &varz["websocket"];
    assert_eq!(
        (&ws["host"], &ws["no_tls"], &ws["same_origin"]),
        (&serde_json::json!("127.0.0.1"), &serde_json::json!(true), &serde_json::json!(true)),
        "{ws}"
    );
    assert_eq!(ws["allowed_origins"], serde_json::json!(["https://app.example:443"]));
    assert_eq!(ws["handshake_timeout"], serde_json::json!(3_000_000_000u64));
    assert!(ws.get("compression").is_none(), "left out when off, as nats-server: {ws}");
    server.shutdown().await;
    let plain = start(options_from("http: \"127.0.0.1:0\"\n")).await;
    let varz = common::monitor_json(plain.monitor_addr().unwrap(), "/varz").await;
    assert_eq!(varz["websocket"], serde_json::json!({}));
    plain.shutdown().await;
}

/// `websocket { tls { verify_and_map } }` maps WebSocket clients by their
/// certificates even when the client listener has no TLS, as nats-server
/// does (its `Websocket.TLSMap`); the mapped user has no password, so the
/// client listener does not let it in by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_blocks_verify_and_map_maps_websocket_clients() {
    let (dir, port) = (wss_files("ws-map"), common::peers::free_port());
    let text = format!(
        "authorization {{ users: [ {{user: \"CN=alice\"}} ] }}\n{}",
        wss_block(&dir, port, "verify_and_map: true")
    );
    let server = start(options_from(&text)).await;
    let client = async_nats::ConnectOptions::new()
        .add_root_certificates(dir.join("ca.pem"))
        .add_client_certificate(dir.join("client.pem"), dir.join("client-key.pem"))
        .connect(format!("wss://localhost:{port}"))
        .await
        .expect("alice over wss by her certificate alone");
    client.flush().await.unwrap();
    let user = server.broker().clients().iter().find(|c| c.meta.lock().websocket).unwrap().meta.lock().user.clone();
    assert_eq!(user.as_deref(), Some("CN=alice"));
    let (mut raw, _info) = Raw::connect(server.local_addr()).await;
    raw.send("CONNECT {\"user\":\"CN=alice\",\"verbose\":false}\r\nPING\r\n").await;
    assert_eq!(raw.line().await, "-ERR 'Authorization Violation'");
    server.shutdown().await;
}

/// Whether `user`/`pass` log in over WebSocket at `url`.
async fn logs_in(url: &str, user: &str, pass: &str) -> bool {
    let options = async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).max_reconnects(Some(1));
    within(options.connect(url)).await.is_ok()
}

/// A reload changes the credentials of a WebSocket listener that has a
/// login of its own, but cannot give one to a listener that logs in through
/// the client listener's gate, or take it away: that is refused whole with
/// a reason, where it was once accepted and not applied (nats-server refuses
/// every `websocket` change but its TLS files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_cannot_add_or_remove_the_websocket_listeners_own_login() {
    // The client listener's single user, and the WebSocket block's own.
    let config = |own: &str| {
        let own = match own {
            "" => String::new(),
            pw => format!(", authorization {{ user: web, password: {pw} }}"),
        };
        options_from(&format!(
            "authorization {{ user: tcp, password: tcppw }}\nwebsocket {{ listen: \"127.0.0.1:0\", no_tls: true {own} }}\n"
        ))
    };
    // Started without: adding one is refused, and the shared gate stays.
    let server = start(config("")).await;
    let ws = format!("ws://{}", server.websocket_addr().unwrap());
    let err = server.reload(&config("webpw1")).unwrap_err();
    assert!(err.to_string().contains("restart the server"), "{err}");
    assert!(logs_in(&ws, "tcp", "tcppw").await, "the client listener's user still logs in");
    assert!(!logs_in(&ws, "web", "webpw1").await, "the refused login was not applied");
    server.shutdown().await;

    // Started with one: a new password applies; removing it is refused.
    let server = start(config("webpw1")).await;
    let ws = format!("ws://{}", server.websocket_addr().unwrap());
    assert!(logs_in(&ws, "web", "webpw1").await);
    assert!(!logs_in(&ws, "tcp", "tcppw").await, "the block's login replaces the client listener's");
    server.reload(&config("webpw2")).unwrap();
    assert!(logs_in(&ws, "web", "webpw2").await, "the new password applies");
    assert!(!logs_in(&ws, "web", "webpw1").await, "the old one no longer does");
    let err = server.reload(&config("")).unwrap_err();
    assert!(err.to_string().contains("restart the server"), "{err}");
    assert!(logs_in(&ws, "web", "webpw2").await, "the refused reload changed nothing");
    server.shutdown().await;
}
