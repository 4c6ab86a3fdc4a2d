//! The transport to a hub, before the leaf protocol starts: the hub's INFO
//! read in clear text (the NATS order, nats-server's default), then TLS
//! when the remote or the hub asks for it; or TLS from the first byte
//! (`handshake_first`). The INFO line goes on to the [`LeafSession`]
//! unread, so the session sees the same bytes whichever way they came.
//!
//! [`LeafSession`]: super::session::LeafSession

use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::TlsOptions;
use crate::tls::TlsError;

/// Most bytes the hub's first INFO may have (nats-server's are well under
/// 2 KiB; its `connect_info` INFO, which may be longer, comes later).
const MAX_FIRST_INFO: usize = 64 * 1024;

/// A remote's TLS: how to verify the hub and what to present to it.
pub(crate) struct DialTls {
    connector: TlsConnector,
    timeout: Duration,
    handshake_first: bool,
}

impl DialTls {
    /// Loads a remote's `tls {}` (its CA or the system's roots, and its
    /// certificate for mutual TLS).
    pub(crate) fn load(opts: &TlsOptions) -> Result<DialTls, TlsError> {
        let config = crate::tls::load_dialler_config(opts)?;
        Ok(DialTls {
            connector: TlsConnector::from(config),
            timeout: opts.timeout,
            handshake_first: opts.handshake_first,
        })
    }

    async fn connect(&self, host: &str, stream: TcpStream) -> Result<TlsStream<TcpStream>, DialError> {
        let name =
            rustls_pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned())
                .map_err(|_| DialError::Tls(format!("{host:?} is not a valid TLS server name")))?;
        match timeout(self.timeout, self.connector.connect(name, stream)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(err)) => Err(DialError::Tls(err.to_string())),
            Err(_) => Err(DialError::Tls("handshake timed out".into())),
        }
    }
}

/// A connection to a hub ready for the leaf protocol.
pub(crate) enum HubStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Why a connection to a hub did not get as far as the leaf protocol.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The hub sent no INFO line in time, or not one that fits.
    NoInfo(&'static str),
    /// The hub requires TLS and the remote has no `tls`.
    TlsRequired,
    /// The TLS handshake failed.
    Tls(String),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::NoInfo(why) => write!(f, "no INFO from the hub: {why}"),
            DialError::TlsRequired => {
                f.write_str("the hub requires TLS: give the remote a tls:// url or a tls {} block")
            }
            DialError::Tls(why) => write!(f, "TLS handshake failed: {why}"),
        }
    }
}

/// Secures `stream` to the hub at `host` as `tls` says (and as the hub's
/// INFO asks), within `first_info` for the INFO; returns the stream and the
/// INFO line (with its CRLF) already read, if it was read in clear text.
pub(crate) async fn secure(
    mut stream: TcpStream,
    host: &str,
    tls: Option<&DialTls>,
    first_info: Duration,
) -> Result<(HubStream, Option<Vec<u8>>), DialError> {
    if let Some(tls) = tls.filter(|t| t.handshake_first) {
        return Ok((HubStream::Tls(Box::new(tls.connect(host, stream).await?)), None));
    }
    let info = timeout(first_info, read_line(&mut stream, MAX_FIRST_INFO))
        .await
        .map_err(|_| DialError::NoInfo("timed out"))??;
    match (tls, requires_tls(&info)) {
        (Some(tls), _) => Ok((HubStream::Tls(Box::new(tls.connect(host, stream).await?)), Some(info))),
        (None, true) => Err(DialError::TlsRequired),
        (None, false) => Ok((HubStream::Plain(stream), Some(info))),
    }
}

/// Reads one CRLF-terminated line of at most `max` bytes, never past it
/// (what follows belongs to the TLS handshake or the session).
async fn read_line(stream: &mut TcpStream, max: usize) -> Result<Vec<u8>, DialError> {
    let mut line = Vec::new();
    let mut window = [0u8; 2048];
    loop {
        let n = stream.peek(&mut window).await.map_err(|_| DialError::NoInfo("connection lost"))?;
        if n == 0 {
            return Err(DialError::NoInfo("connection closed"));
        }
        let seen = line.len();
        let take = match window[..n].iter().position(|&b| b == b'\n') {
            Some(pos) => pos + 1,
            None => n,
        };
        if seen + take > max {
            return Err(DialError::NoInfo("longer than 64 KiB"));
        }
        line.resize(seen + take, 0);
        stream.read_exact(&mut line[seen..]).await.map_err(|_| DialError::NoInfo("connection lost"))?;
        if line.ends_with(b"\n") {
            return if line.starts_with(b"INFO ") && line.ends_with(b"\r\n") {
                Ok(line)
            } else {
                Err(DialError::NoInfo("the first line is not an INFO"))
            };
        }
    }
}

/// Whether the hub's INFO line says it requires TLS.
fn requires_tls(line: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Flag {
        #[serde(default)]
        tls_required: bool,
    }
    let json = line.strip_prefix(b"INFO ").unwrap_or(line);
    serde_json::from_slice::<Flag>(json).is_ok_and(|f| f.tls_required)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (a.unwrap(), b.unwrap().0)
    }

    #[tokio::test]
    async fn the_info_line_is_read_to_its_end_and_not_past_it() {
        let (mut hub, mut leaf) = pair().await;
        hub.write_all(b"INFO {\"tls_required\":true}").await.unwrap();
        hub.write_all(b"\r\nafter").await.unwrap();
        let line = read_line(&mut leaf, 1024).await.unwrap();
        assert_eq!(line, b"INFO {\"tls_required\":true}\r\n");
        assert!(requires_tls(&line));
        let mut rest = [0u8; 5];
        leaf.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"after", "nothing after the line was taken");
    }

    #[tokio::test]
    async fn a_long_or_foreign_first_line_is_refused() {
        let (mut hub, mut leaf) = pair().await;
        hub.write_all(&vec![b'x'; 3000]).await.unwrap();
        assert!(matches!(read_line(&mut leaf, 1024).await, Err(DialError::NoInfo(_))));
        let (mut hub, mut leaf) = pair().await;
        hub.write_all(b"-ERR 'nope'\r\n").await.unwrap();
        assert!(matches!(read_line(&mut leaf, 1024).await, Err(DialError::NoInfo(_))));
    }

    #[tokio::test]
    async fn a_hub_that_requires_tls_is_not_spoken_to_in_clear_text() {
        let (mut hub, leaf) = pair().await;
        hub.write_all(b"INFO {\"tls_required\":true}\r\n").await.unwrap();
        let refused = secure(leaf, "127.0.0.1", None, Duration::from_secs(5)).await;
        assert!(matches!(refused, Err(DialError::TlsRequired)));
        assert!(!requires_tls(b"INFO {\"tls_required\":false}\r\n"));
        assert!(!requires_tls(b"INFO not json\r\n"));
    }
}
