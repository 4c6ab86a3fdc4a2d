//! TLS transport: NATS-style upgrade after INFO, handshake_first, mutual
//! TLS, start-up validation of certificates, stalled handshakes.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use async_nats::ConnectOptions;
use common::*;
use futures::StreamExt;
use time::OffsetDateTime;
use warden::config::{Options, TlsOptions};
use warden::server::{Server, StartError};
use warden::tls::{Ca, Issued, TlsError};

struct Pki {
    dir: PathBuf,
    ca: Ca,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = temp_dir(name);
        let ca = Ca::new("test CA").unwrap();
        let pki = Pki { dir, ca };
        pki.save("ca", &pki.ca.issued());
        pki.save("server", &pki.ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap());
        pki
    }

    fn save(&self, name: &str, issued: &Issued) -> (PathBuf, PathBuf) {
        let cert = self.dir.join(format!("{name}.pem"));
        let key = self.dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        std::fs::write(&key, &issued.key_pem).unwrap();
        (cert, key)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn tls_options(&self, verify: bool) -> TlsOptions {
        TlsOptions {
            cert_file: self.path("server.pem"),
            key_file: self.path("server-key.pem"),
            ca_file: Some(self.path("ca.pem")),
            verify,
            timeout: Duration::from_millis(500),
            ..TlsOptions::default()
        }
    }
}

async fn start_tls(tls: TlsOptions) -> Server {
    start(Options { tls: Some(tls), ..test_options() }).await
}

async fn try_connect(server: &Server, opts: ConnectOptions) -> Result<async_nats::Client, async_nats::ConnectError> {
    within(opts.connect(format!("tls://localhost:{}", server.local_addr().port()))).await
}

async fn roundtrip(client: &async_nats::Client) {
    let mut sub = client.subscribe("secure").await.unwrap();
    client.flush().await.unwrap();
    client.publish("secure", "hi".into()).await.unwrap();
    assert_eq!(within(sub.next()).await.unwrap().payload, "hi");
}

#[tokio::test]
async fn tls_pubsub_with_async_nats() {
    let pki = Pki::new("tls-basic");
    let server = start_tls(pki.tls_options(false)).await;
    let client =
        try_connect(&server, ConnectOptions::new().add_root_certificates(pki.path("ca.pem")).require_tls(true))
            .await
            .unwrap();
    roundtrip(&client).await;
    server.shutdown().await;
}

#[tokio::test]
async fn info_says_tls_required_and_plain_text_is_refused() {
    let pki = Pki::new("tls-plain");
    let server = start_tls(pki.tls_options(false)).await;
    let (mut raw, info) = Raw::connect(server.local_addr()).await;
    assert!(info.contains("\"tls_required\":true"), "{info}");
    raw.send("CONNECT {}\r\nPING\r\n").await;
    assert_eq!(raw.expect_closed().await, "-ERR 'Secure Connection - TLS Required'\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn stalled_handshake_is_dropped_at_its_timeout() {
    let pki = Pki::new("tls-stall");
    let server = start_tls(pki.tls_options(false)).await;
    let (mut raw, _) = Raw::connect(server.local_addr()).await;
    raw.send([0x16u8]).await;
    let started = std::time::Instant::now();
    raw.expect_closed().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let failures = server.broker().stats.tls_handshake_failures.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(failures, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn handshake_first() {
    let pki = Pki::new("tls-first");
    let server = start_tls(TlsOptions { handshake_first: true, ..pki.tls_options(false) }).await;
    let opts = ConnectOptions::new().add_root_certificates(pki.path("ca.pem")).require_tls(true).tls_first();
    let client = try_connect(&server, opts).await.unwrap();
    roundtrip(&client).await;
    server.shutdown().await;
}

/// nats-server 2.10's `handshake_first: auto` (or a duration): TLS-first
/// clients and clients that wait for INFO both connect.
#[tokio::test]
async fn handshake_first_with_a_fallback_serves_both_orders() {
    let pki = Pki::new("tls-first-auto");
    let first = TlsOptions {
        handshake_first: true,
        handshake_first_fallback: Some(Duration::from_millis(300)),
        ..pki.tls_options(false)
    };
    let server = start_tls(first).await;
    let base = || ConnectOptions::new().add_root_certificates(pki.path("ca.pem")).require_tls(true);
    roundtrip(&try_connect(&server, base().tls_first()).await.unwrap()).await;
    roundtrip(&try_connect(&server, base()).await.unwrap()).await;
    server.shutdown().await;
    let text = "tls { cert_file: c.pem, key_file: k.pem, handshake_first: auto }";
    let tls = warden::config::load_str(text, "t.conf").unwrap().options.tls.unwrap();
    assert_eq!((tls.handshake_first, tls.handshake_first_fallback), (true, Some(Duration::from_millis(50))));
    assert!(
        warden::config::load_str("tls { cert_file: c.pem, key_file: k.pem, handshake_first: soon }", "t.conf").is_err()
    );
}

#[tokio::test]
async fn mutual_tls_accepts_only_valid_certificates_from_the_ca() {
    let pki = Pki::new("mtls");
    let (good_cert, good_key) = pki.save("client-alice", &pki.ca.issue_client("alice").unwrap());
    let other_ca = Ca::new("other CA").unwrap();
    let (rogue_cert, rogue_key) = pki.save("client-rogue", &other_ca.issue_client("alice").unwrap());
    let now = OffsetDateTime::now_utc();
    let expired =
        pki.ca.issue_client_valid("alice", now - time::Duration::days(30), now - time::Duration::days(1)).unwrap();
    let (old_cert, old_key) = pki.save("client-expired", &expired);
    let server = start_tls(pki.tls_options(true)).await;
    let base = || ConnectOptions::new().add_root_certificates(pki.path("ca.pem")).require_tls(true);

    assert!(try_connect(&server, base()).await.is_err(), "no client certificate");
    assert!(try_connect(&server, base().add_client_certificate(rogue_cert, rogue_key)).await.is_err(), "other CA");
    assert!(try_connect(&server, base().add_client_certificate(old_cert, old_key)).await.is_err(), "expired");
    let client = try_connect(&server, base().add_client_certificate(good_cert, good_key)).await.unwrap();
    roundtrip(&client).await;
    server.shutdown().await;
}

#[tokio::test]
async fn hundred_tls_clients_request_reply() {
    let pki = Pki::new("tls-many");
    let server = start_tls(pki.tls_options(false)).await;
    let opts = || ConnectOptions::new().add_root_certificates(pki.path("ca.pem")).require_tls(true);
    let responder = try_connect(&server, opts()).await.unwrap();
    let mut service = responder.subscribe("echo").await.unwrap();
    responder.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(req) = service.next().await {
            if let Some(reply) = req.reply {
                let _ = responder.publish(reply, req.payload).await;
            }
        }
    });
    let mut tasks = Vec::new();
    for i in 0..100 {
        let client = try_connect(&server, opts()).await.unwrap();
        tasks.push(tokio::spawn(async move {
            for j in 0..5 {
                let body = format!("{i}-{j}");
                let answer = client.request("echo", body.clone().into()).await.unwrap();
                assert_eq!(answer.payload, body);
            }
        }));
    }
    for t in tasks {
        within(t).await.unwrap();
    }
    server.shutdown().await;
}

#[tokio::test]
async fn start_up_refuses_bad_certificates() {
    let pki = Pki::new("tls-bad");
    let other = pki.save("other", &pki.ca.issue_server(&["localhost".into()]).unwrap());
    let mismatched = TlsOptions { key_file: other.1.clone(), ..pki.tls_options(false) };
    let err = Server::start(Options { tls: Some(mismatched), ..test_options() }).await.err().unwrap();
    assert!(matches!(err, StartError::Tls(TlsError::KeyMismatch { .. })), "{err}");

    let foreign_ca = Ca::new("foreign").unwrap();
    pki.save("foreign-ca", &foreign_ca.issued());
    let wrong_chain = TlsOptions { ca_file: Some(pki.path("foreign-ca.pem")), ..pki.tls_options(false) };
    let err = Server::start(Options { tls: Some(wrong_chain), ..test_options() }).await.err().unwrap();
    assert!(matches!(err, StartError::Tls(TlsError::Chain { .. })), "{err}");

    let missing = TlsOptions { cert_file: pki.path("nope.pem"), ..pki.tls_options(false) };
    let err = Server::start(Options { tls: Some(missing), ..test_options() }).await.err().unwrap();
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

/// `allow_non_tls` with `verify`: a plain-text client would skip the client
/// certificate and log in with a password, or nothing (nats-server lets
/// it). Refused in every spelling, and for options built in code.
#[tokio::test]
async fn allow_non_tls_cannot_cancel_client_certificate_verification() {
    let pki = Pki::new("tls-plain-verify");
    let (cert, key, ca) = (pki.path("server.pem"), pki.path("server-key.pem"), pki.path("ca.pem"));
    let block = |extra: &str| {
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n{extra}}}\n",
            cert.display(),
            key.display(),
            ca.display()
        )
    };
    for (text, at) in [
        (block("  verify: true\n  allow_non_tls: true\n"), "t.conf:6:18"),
        (block("  verify_and_map: true\n  allow_non_tls: true\n"), "t.conf:6:18"),
        (format!("{}allow_non_tls: true\n", block("  verify: true\n")), "t.conf:7:16"),
    ] {
        let err = warden::config::load_str(&text, "t.conf").map(|_| ()).expect_err("refused").to_string();
        assert!(err.contains(at) && err.contains("a plain-text client presents no certificate"), "{err}");
    }
    // Either alone still loads.
    assert!(warden::config::load_str(&block("  verify: true\n"), "t.conf").is_ok());
    assert!(warden::config::load_str(&format!("{}allow_non_tls: true\n", block("")), "t.conf").is_ok());
    let both = TlsOptions { allow_non_tls: true, ..pki.tls_options(true) };
    let err = Server::start(Options { tls: Some(both), ..test_options() }).await.err().unwrap();
    assert!(matches!(&err, StartError::Tls(TlsError::Config(why)) if why.contains("verify")), "{err}");
}

#[tokio::test]
async fn verify_and_map_picks_the_user_by_certificate() {
    let pki = Pki::new("tls-map");
    let (alice_cert, alice_key) = pki.save("client-alice", &pki.ca.issue_client("alice").unwrap());
    let (bob_cert, bob_key) = pki.save("client-bob", &pki.ca.issue_client("bob").unwrap());
    let (mallory_cert, mallory_key) = pki.save("client-mallory", &pki.ca.issue_client("mallory").unwrap());
    let config = format!(
        r#"tls {{ cert_file: "{}", key_file: "{}", ca_file: "{}", verify_and_map: true }}
        authorization {{ users = [
            {{user: "alice@localhost", permissions: {{publish: ">", subscribe: ">"}}}}
            {{user: "CN=bob", permissions: {{publish: "bob.>", subscribe: "bob.>"}}}}
        ] }}"#,
        pki.path("server.pem").display(),
        pki.path("server-key.pem").display(),
        pki.path("ca.pem").display()
    );
    let server = start(options_from(&config)).await;
    let base = || ConnectOptions::new().add_root_certificates(pki.path("ca.pem")).require_tls(true);
    let alice = try_connect(&server, base().add_client_certificate(alice_cert, alice_key)).await.unwrap();
    roundtrip(&alice).await;
    let bob = try_connect(&server, base().add_client_certificate(bob_cert, bob_key)).await.unwrap();
    let mut mine = bob.subscribe("bob.inbox").await.unwrap();
    bob.flush().await.unwrap();
    alice.publish("bob.inbox", "hello bob".into()).await.unwrap();
    assert_eq!(within(mine.next()).await.unwrap().payload, "hello bob");
    let clients = server.broker().clients();
    let users: Vec<Option<String>> = clients.iter().map(|c| c.meta.lock().user.clone()).collect();
    assert!(users.contains(&Some("CN=bob".into())) && users.contains(&Some("alice@localhost".into())), "{users:?}");
    assert!(try_connect(&server, base().add_client_certificate(mallory_cert, mallory_key)).await.is_err(), "unmapped");
    server.shutdown().await;
}

/// A burst larger than the socket buffers, to a TLS subscriber that reads
/// nothing until it was all published, arrives whole and in order (the
/// writer's flush of records the TLS session holds is unit-tested in
/// `conn::task`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_a_lagging_tls_subscriber_arrives_whole() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new("tls-burst");
    let server = start_tls(pki.tls_options(false)).await;
    // The subscriber: a raw TLS connection that reads nothing while the
    // burst is published, so the server's writes back up.
    let tcp = tokio::net::TcpStream::connect(server.local_addr()).await.unwrap();
    let mut tcp = tokio::io::BufReader::new(tcp);
    let mut info = String::new();
    within(tcp.read_line(&mut info)).await.unwrap();
    assert!(info.starts_with("INFO "), "{info}");
    let config = warden::tls::load_client_config(&pki.tls_options(false)).unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = within(tokio_rustls::TlsConnector::from(config).connect(name, tcp.into_inner())).await.unwrap();
    let mut subscriber = tokio::io::BufReader::new(tls);
    subscriber.write_all(b"CONNECT {\"verbose\":false}\r\nSUB burst 1\r\nPING\r\n").await.unwrap();
    let mut line = String::new();
    within(subscriber.read_line(&mut line)).await.unwrap();
    assert_eq!(line, "PONG\r\n");

    let publisher =
        try_connect(&server, ConnectOptions::new().add_root_certificates(pki.path("ca.pem")).require_tls(true))
            .await
            .unwrap();
    let (n, size) = (40_000, 500);
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    for _ in 0..n {
        publisher.publish("burst", payload.clone()).await.unwrap();
    }
    within(publisher.flush()).await.unwrap();

    let mut body = vec![0; size + 2];
    for i in 0..n {
        loop {
            line.clear();
            let read = tokio::time::timeout(Duration::from_secs(10), subscriber.read_line(&mut line)).await;
            assert!(matches!(read, Ok(Ok(1..))), "message {i} of {n} never arrived");
            if line == "PING\r\n" {
                subscriber.write_all(b"PONG\r\n").await.unwrap();
                continue;
            }
            assert_eq!(line, format!("MSG burst 1 {size}\r\n"));
            within(subscriber.read_exact(&mut body)).await.unwrap();
            break;
        }
    }
    server.shutdown().await;
}
