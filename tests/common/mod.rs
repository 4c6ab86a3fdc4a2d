//! Helpers shared by the integration tests: a server on an ephemeral
//! loopback port, a raw protocol client, and timeouts on every wait.
#![allow(dead_code)]

pub mod binary;
pub mod deps;
pub mod peers;
pub mod pki;
pub mod ws;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden::config::Options;
use warden::server::Server;

/// Upper bound on any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);

/// Options for a test server: loopback, ephemeral port.
pub fn test_options() -> Options {
    Options { host: "127.0.0.1".into(), port: 0, ..Options::default() }
}

/// Starts a server with `opts`.
pub async fn start(opts: Options) -> Server {
    Server::start(opts).await.expect("server starts")
}

/// `nats://` URL of a server.
pub fn url(server: &Server) -> String {
    format!("nats://{}", server.local_addr())
}

/// Runs `fut` with the test timeout.
pub async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.expect("timed out")
}

/// A raw protocol client that reads line by line.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Wraps an already connected stream (INFO not yet read).
    pub fn new(stream: TcpStream) -> Raw {
        Raw { stream, buf: Vec::new() }
    }

    /// Connects and returns the client with the INFO line already read.
    pub async fn connect(addr: SocketAddr) -> (Raw, String) {
        let stream = within(TcpStream::connect(addr)).await.expect("connect");
        let mut raw = Raw { stream, buf: Vec::new() };
        let info = raw.line().await;
        assert!(info.starts_with("INFO {"), "first line is INFO: {info}");
        (raw, info)
    }

    /// Connects and sends a non-verbose CONNECT with headers on.
    pub async fn connected(addr: SocketAddr) -> Raw {
        let (mut raw, _) = Raw::connect(addr).await;
        raw.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\n").await;
        raw.ping_pong().await;
        raw
    }

    /// Sends bytes.
    pub async fn send(&mut self, data: impl AsRef<[u8]>) {
        within(self.stream.write_all(data.as_ref())).await.expect("write");
    }

    /// Reads one line without its CRLF.
    pub async fn line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..pos]).into_owned();
                self.buf.drain(..pos + 2);
                return line;
            }
            let mut chunk = [0u8; 4096];
            let n = within(self.stream.read(&mut chunk)).await.expect("read");
            assert!(n > 0, "connection closed while waiting for a line; have {:?}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads exactly `n` bytes (a payload) plus its CRLF.
    pub async fn payload(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n + 2 {
            let mut chunk = [0u8; 65536];
            let got = within(self.stream.read(&mut chunk)).await.expect("read");
            assert!(got > 0, "closed while reading payload");
            self.buf.extend_from_slice(&chunk[..got]);
        }
        let payload = self.buf[..n].to_vec();
        assert_eq!(&self.buf[n..n + 2], b"\r\n");
        self.buf.drain(..n + 2);
        payload
    }

    /// Reads a line, skipping server PINGs (answering them), and checks it.
    pub async fn expect(&mut self, want: &str) {
        let got = self.next_non_ping().await;
        assert_eq!(got, want);
    }

    /// Next line that is not a server PING.
    pub async fn next_non_ping(&mut self) -> String {
        loop {
            let line = self.line().await;
            if line == "PING" {
                self.send("PONG\r\n").await;
                continue;
            }
            return line;
        }
    }

    /// Sends PING and waits for the PONG, proving everything before it was handled.
    pub async fn ping_pong(&mut self) {
        self.send("PING\r\n").await;
        self.expect("PONG").await;
    }

    /// Waits for the server to close the connection; returns what arrived first.
    pub async fn expect_closed(&mut self) -> String {
        let mut rest = std::mem::take(&mut self.buf);
        loop {
            let mut chunk = [0u8; 4096];
            match within(self.stream.read(&mut chunk)).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&rest).into_owned(),
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// GET `path` from the monitoring listener at `addr` (warden's or
/// nats-server's), as JSON. HTTP/1.0, so neither answers in chunks.
pub async fn monitor_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let body = http_get(addr, path).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The body of a monitoring endpoint (HTTP/1.0, read to the close).
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let mut response = Vec::new();
    within(stream.read_to_end(&mut response)).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

/// The complete JSON lines of a file another process or thread appends
/// to (an audit file): a last line still being written (no newline yet)
/// is left for the next read. Each complete line must parse.
#[allow(dead_code)] // not every test binary reads one
pub fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

/// A fresh, empty directory for one test's files.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warden-test-{}-{}-{}",
        std::process::id(),
        name,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Interest a server holds from its routes in `account`, outside `$SYS.`
/// (every node also announces the self-service `$SYS` requests it answers).
pub fn route_interest(server: &Server, account: &str) -> usize {
    server.broker().accounts.get(account).map_or(0, |a| {
        a.router
            .subscriptions()
            .iter()
            .filter(|s| s.owner.kind == warden::broker::ClientKind::Route && !s.subject.starts_with(b"$SYS."))
            .count()
    })
}

/// Clients' own subscriptions in `account` (no route interest, nothing internal).
pub fn client_subscriptions(server: &Server, account: &str) -> usize {
    server.broker().accounts.get(account).map_or(0, |a| {
        a.router
            .subscriptions()
            .iter()
            .filter(|s| s.is_clients_own() && s.owner.kind != warden::broker::ClientKind::Route)
            .count()
    })
}

/// Options from config text, on an ephemeral loopback port.
pub fn options_from(config: &str) -> Options {
    let mut opts = warden::config::load_str(config, "test.conf").expect("config loads").options;
    opts.host = "127.0.0.1".into();
    opts.port = 0;
    opts
}

impl Raw {
    /// Connects, sends CONNECT with `user`/`pass` (non-verbose, headers on)
    /// and checks the server answered the following PING.
    pub async fn login(addr: SocketAddr, user: &str, pass: &str) -> Raw {
        let (mut raw, _) = Raw::connect(addr).await;
        let connect = serde_json::json!({
            "verbose": false, "pedantic": false, "headers": true, "protocol": 1,
            "user": user, "pass": pass,
        });
        raw.send(format!("CONNECT {connect}\r\nPING\r\n")).await;
        raw.expect("PONG").await;
        raw
    }
}

/// A TLS connector that trusts only the CA in `ca_pem` (ring, rustls'
/// safe defaults), for tests that speak TLS to a server by hand.
pub fn tls_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
    let mut roots = RootCertStore::empty();
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let config = ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}
