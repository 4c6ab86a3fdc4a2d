//! The transport to a hub, before the leaf protocol starts: the hub's INFO
//! read in clear text (the NATS order, nats-server's default), then TLS
//! when the remote or the hub asks for it; or TLS from the first byte
//! (`handshake_first`). The INFO line goes on to the [`LeafSession`]
//! unread, so the session sees the same bytes whichever way they came.
//!
//! To a hub's WebSocket port (`ws://`, `wss://`) the order is nats-server's
//! leaf's: TLS first if the remote has it, then the HTTP upgrade to
//! `/leafnode` (request written and answer read within
//! `first_info_timeout`, the answer's head at most [`MAX_UPGRADE_ANSWER`]
//! bytes), then the leaf protocol in the client role of [`WsStream`], the
//! INFO included; the INFO's `tls_required` means the leafnode port's TLS
//! and is not looked at, as in nats-server.
//!
//! [`LeafSession`]: super::session::LeafSession

use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::TlsOptions;
use crate::conn::WsStream;
use crate::proto::websocket::handshake::{self, BadAnswer};
use crate::tls::TlsError;

/// Most bytes the hub's first INFO may have (nats-server's are well under
/// 2 KiB; its `connect_info` INFO, which may be longer, comes later).
const MAX_FIRST_INFO: usize = 64 * 1024;
/// Most bytes the hub's answer to the WebSocket upgrade may have before
/// its empty line (nats-server's is about 150, plus what its `websocket {
/// headers }` adds).
const MAX_UPGRADE_ANSWER: usize = 8 * 1024;

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
    /// WebSocket frames over TCP (`ws://`).
    Ws(Box<WsStream<TcpStream>>),
    /// WebSocket frames over TLS (`wss://`, or `ws://` with `tls {}`).
    Wss(Box<WsStream<TlsStream<TcpStream>>>),
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
    /// The WebSocket upgrade got no complete answer: timed out, the
    /// connection ended, or the answer's head was too long.
    NoUpgrade(&'static str),
    /// The hub's answer to the WebSocket upgrade is not an upgrade.
    Upgrade(BadAnswer),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::NoInfo(why) => write!(f, "no INFO from the hub: {why}"),
            DialError::TlsRequired => {
                f.write_str("the hub requires TLS: give the remote a tls:// url or a tls {} block")
            }
            DialError::Tls(why) => write!(f, "TLS handshake failed: {why}"),
            DialError::NoUpgrade(why) => write!(f, "no answer to the WebSocket upgrade: {why}"),
            DialError::Upgrade(why) => write!(f, "the hub refused the WebSocket upgrade: {why}"),
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

/// Secures `stream` to the WebSocket port at `host_port` (of `host`): TLS
/// if `tls`, then the upgrade, asking for unmasked frames if `no_masking`;
/// `within` bounds the upgrade.
pub(crate) async fn secure_websocket(
    stream: TcpStream,
    host: &str,
    host_port: &str,
    tls: Option<&DialTls>,
    no_masking: bool,
    within: Duration,
) -> Result<HubStream, DialError> {
    Ok(match tls {
        Some(tls) => {
            let stream = tls.connect(host, stream).await?;
            HubStream::Wss(Box::new(upgrade(stream, host_port, no_masking, within).await?))
        }
        None => HubStream::Ws(Box::new(upgrade(stream, host_port, no_masking, within).await?)),
    })
}

/// The upgrade to `/leafnode` on `host_port`, within `within`: the stream
/// in the client role, masking its frames unless `no_masking` was asked
/// for and the hub agreed.
async fn upgrade<S>(
    mut stream: S,
    host_port: &str,
    no_masking: bool,
    within: Duration,
) -> Result<WsStream<S>, DialError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let key = handshake::client_key(rand::random());
    let request = handshake::request(host_port, handshake::LEAF_PATH, &key, no_masking);
    let exchange = async {
        stream.write_all(&request).await.map_err(|_| DialError::NoUpgrade("connection lost"))?;
        stream.flush().await.map_err(|_| DialError::NoUpgrade("connection lost"))?;
        read_head(&mut stream).await
    };
    let (head, read_ahead) = timeout(within, exchange).await.map_err(|_| DialError::NoUpgrade("timed out"))??;
    let answer = handshake::check_answer(&head, &key).map_err(DialError::Upgrade)?;
    Ok(WsStream::client(stream, read_ahead, !(no_masking && answer.no_masking)))
}

/// Reads an HTTP head of at most [`MAX_UPGRADE_ANSWER`] bytes: the head,
/// and what followed it in the same reads (the hub's first frames).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Vec<u8>, Vec<u8>), DialError> {
    let mut head = Vec::new();
    let mut window = [0u8; 2048];
    loop {
        let n = stream.read(&mut window).await.map_err(|_| DialError::NoUpgrade("connection lost"))?;
        if n == 0 {
            return Err(DialError::NoUpgrade("connection closed"));
        }
        // The end may straddle two reads: look from three bytes back.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&window[..n]);
        if let Some(end) = handshake::head_end(&head[from..]).map(|e| from + e) {
            if end > MAX_UPGRADE_ANSWER {
                break;
            }
            let rest = head.split_off(end);
            return Ok((head, rest));
        }
        if head.len() > MAX_UPGRADE_ANSWER {
            break;
        }
    }
    Err(DialError::NoUpgrade("the answer is longer than 8 KiB"))
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

    /// A hub's side of the upgrade over an in-memory pipe: reads the
    /// request, checks it as a server does, then writes `answer(key)`.
    async fn hub_answers(
        mut hub: tokio::io::DuplexStream,
        answer: impl FnOnce(&str) -> Vec<u8>,
    ) -> (tokio::io::DuplexStream, handshake::Upgrade) {
        let mut head = Vec::new();
        while handshake::head_end(&head).is_none() {
            let mut byte = [0u8; 1];
            hub.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let up = handshake::parse(&head).unwrap();
        assert!(head.starts_with(b"GET /leafnode HTTP/1.1\r\nHost: hub:8080\r\n"));
        hub.write_all(&answer(&up.key)).await.unwrap();
        (hub, up)
    }

    #[tokio::test]
    async fn the_upgrade_hands_on_what_followed_the_answer_and_masks_unless_the_hub_agreed() {
        for (ask, agree) in [(false, false), (true, false), (true, true)] {
            let (leaf, hub) = tokio::io::duplex(64 * 1024);
            let hub = tokio::spawn(hub_answers(hub, move |key| {
                let mut out = handshake::accepted(key, false);
                if agree {
                    out.truncate(out.len() - 2);
                    out.extend_from_slice(b"Nats-No-Masking: true\r\n\r\n");
                }
                // The INFO in the same write as the answer.
                crate::proto::websocket::frame::binary(&mut out, b"INFO {}\r\n", false, None);
                out
            }));
            let mut ws = upgrade(leaf, "hub:8080", ask, Duration::from_secs(5)).await.unwrap();
            let (mut hub, _) = hub.await.unwrap();
            let mut info = [0u8; 9];
            ws.read_exact(&mut info).await.unwrap();
            assert_eq!(&info, b"INFO {}\r\n");
            ws.write_all(b"PING\r\n").await.unwrap();
            ws.flush().await.unwrap();
            let mut first = [0u8; 2];
            hub.read_exact(&mut first).await.unwrap();
            assert_eq!((first[0], first[1] & 0x80 != 0), (0x82, !agree), "asked {ask}, agreed {agree}");
        }
    }

    #[tokio::test]
    async fn a_refused_or_foreign_answer_is_not_an_upgrade() {
        type Answer = fn(&str) -> Vec<u8>;
        let cases: [(Answer, &str); 3] = [
            (|_| b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nkey missing".to_vec(), "HTTP status 400"),
            (|_| handshake::accepted("AAAAAAAAAAAAAAAAAAAAAA==", false), "Sec-WebSocket-Accept"),
            (|_| vec![b'x'; 9000], "longer than 8 KiB"),
        ];
        for (answer, why) in cases {
            let (leaf, hub) = tokio::io::duplex(64 * 1024);
            let hub = tokio::spawn(hub_answers(hub, answer));
            let refused = upgrade(leaf, "hub:8080", false, Duration::from_secs(5)).await.err().unwrap();
            assert!(refused.to_string().contains(why), "{refused}");
            drop(hub.await.unwrap());
        }
        // A hub that closes, and one that says nothing.
        let (leaf, hub) = tokio::io::duplex(1024);
        drop(hub);
        assert!(matches!(upgrade(leaf, "hub:8080", false, Duration::from_secs(5)).await, Err(DialError::NoUpgrade(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_hub_times_the_upgrade_out() {
        let (leaf, _hub) = tokio::io::duplex(64 * 1024);
        let silent = upgrade(leaf, "hub:8080", false, Duration::from_secs(1)).await;
        assert!(matches!(silent, Err(DialError::NoUpgrade("timed out"))));
    }
}
