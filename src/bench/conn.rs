//! A minimal NATS client for benchmarking: raw protocol over TCP or TLS,
//! with batched writes and a counting reader. It talks to any NATS server.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use memchr::memchr;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How to reach the server.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `nats://host:port` or `tls://host:port`.
    pub url: String,
    /// CA certificate to trust for TLS.
    pub ca: Option<std::path::PathBuf>,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub pass: Option<String>,
}

/// Anything we can read and write.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connected, CONNECTed client.
pub struct Conn {
    stream: Box<dyn Stream>,
    buf: BytesMut,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("buffered", &self.buf.len()).finish_non_exhaustive()
    }
}

/// One message or protocol event read from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A MSG/HMSG with its reply subject (if any).
    Msg {
        /// Reply subject.
        reply: Option<Vec<u8>>,
        /// It came on subscription id [`PROBE_SID`]: a probe, not a
        /// measured message.
        probe: bool,
    },
    /// PONG.
    Pong,
    /// -ERR text.
    Err(String),
}

type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The subscription id of the probes that say interest has arrived.
pub const PROBE_SID: &str = "2";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn host_port(url: &str) -> Result<(bool, String), BenchError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("tls://") {
        (true, r)
    } else {
        (false, url.strip_prefix("nats://").unwrap_or(url))
    };
    Ok((tls, rest.trim_end_matches('/').to_string()))
}

impl Conn {
    /// Connects, upgrades to TLS when asked or required, and sends CONNECT.
    pub async fn connect(target: &Target, name: &str) -> Result<Conn, BenchError> {
        let (want_tls, addr) = host_port(&target.url)?;
        let tcp = timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await??;
        tcp.set_nodelay(true)?;
        let mut conn = Conn { stream: Box::new(tcp), buf: BytesMut::with_capacity(64 * 1024) };
        let info = conn.read_line().await?;
        let tls_required = info.contains("\"tls_required\":true");
        if want_tls || tls_required || target.ca.is_some() {
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h).to_string();
            conn = conn.upgrade(target, host).await?;
        }
        let connect = serde_json::json!({
            "verbose": false, "pedantic": false, "headers": true, "protocol": 1, "echo": true,
            "name": name, "lang": "rust-warden-bench", "version": env!("CARGO_PKG_VERSION"),
            "user": target.user, "pass": target.pass,
        });
        conn.write(format!("CONNECT {connect}\r\nPING\r\n").as_bytes()).await?;
        match conn.next_event().await? {
            Event::Pong => Ok(conn),
            Event::Err(e) => Err(format!("server refused the connection: {e}").into()),
            Event::Msg { .. } => Err("unexpected message before PONG".into()),
        }
    }

    async fn upgrade(self, target: &Target, host: String) -> Result<Conn, BenchError> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &target.ca {
            for cert in CertificateDer::pem_file_iter(ca)? {
                roots.add(cert?)?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from(host)?;
        let tls = timeout(CONNECT_TIMEOUT, connector.connect(name, self.stream)).await??;
        Ok(Conn { stream: Box::new(tls), buf: self.buf })
    }

    /// Writes bytes.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), BenchError> {
        self.stream.write_all(data).await?;
        Ok(())
    }

    /// Sends PING and waits for PONG, counting messages that arrive first.
    pub async fn flush(&mut self) -> Result<u64, BenchError> {
        self.write(b"PING\r\n").await?;
        let mut msgs = 0;
        loop {
            match self.next_event().await? {
                Event::Pong => return Ok(msgs),
                Event::Msg { .. } => msgs += 1,
                Event::Err(e) => return Err(e.into()),
            }
        }
    }

    async fn fill(&mut self) -> Result<(), BenchError> {
        self.buf.reserve(64 * 1024);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err("server closed the connection".into());
        }
        Ok(())
    }

    async fn read_line(&mut self) -> Result<String, BenchError> {
        loop {
            if let Some(nl) = memchr(b'\n', &self.buf) {
                let line = String::from_utf8_lossy(&self.buf[..nl]).trim_end().to_string();
                self.buf.advance(nl + 1);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    /// Reads the next MSG, PONG or -ERR, answering server PINGs.
    pub async fn next_event(&mut self) -> Result<Event, BenchError> {
        loop {
            if let Some(event) = self.parse_one().await? {
                return Ok(event);
            }
            self.fill().await?;
        }
    }

    /// Parses one op from the buffer if complete; `None` needs more bytes.
    async fn parse_one(&mut self) -> Result<Option<Event>, BenchError> {
        loop {
            let Some(nl) = memchr(b'\n', &self.buf) else { return Ok(None) };
            let line = &self.buf[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
                let args: Vec<&[u8]> = line.split(|b| *b == b' ').filter(|a| !a.is_empty()).collect();
                let size: usize = std::str::from_utf8(args.last().copied().unwrap_or_default())?.parse()?;
                let headers = line.starts_with(b"H");
                let reply_index = if headers { 5 } else { 4 };
                let reply = (args.len() == reply_index + 1).then(|| args[3].to_vec());
                let probe = args.get(2).is_some_and(|sid| *sid == PROBE_SID.as_bytes());
                if self.buf.len() < nl + 1 + size + 2 {
                    return Ok(None);
                }
                self.buf.advance(nl + 1 + size + 2);
                return Ok(Some(Event::Msg { reply, probe }));
            }
            let event = if line.starts_with(b"PONG") {
                Some(Event::Pong)
            } else if line.starts_with(b"-ERR") {
                Some(Event::Err(String::from_utf8_lossy(line).into_owned()))
            } else {
                None
            };
            let ping = line.starts_with(b"PING");
            self.buf.advance(nl + 1);
            if ping {
                self.write(b"PONG\r\n").await?;
            }
            if event.is_some() {
                return Ok(event);
            }
        }
    }
}
