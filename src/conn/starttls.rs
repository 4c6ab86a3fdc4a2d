//! A listener's TLS in either order, shared by the client and leafnode
//! ports: the server's INFO in clear text and then the peer's handshake
//! (the NATS order, nats-server's default), or the handshake first
//! (`handshake_first`, with nats-server's fallback delay for peers that
//! do not start TLS at once).

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::proto::ProtoError;
use crate::tls::TlsState;

/// First byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A connection through its TLS handshake (or past it, by choice).
pub(crate) enum Secured {
    /// TLS is up. `info_sent`: the INFO already went out in clear text, so
    /// the connection must not send it again.
    Tls { stream: Box<TlsStream<TcpStream>>, info_sent: bool },
    /// `allow_non_tls`: the peer chose plain text; the INFO went out.
    Plain(TcpStream),
}

/// Why a connection did not get through its TLS handshake.
#[derive(Debug)]
pub(crate) enum NotSecured {
    /// The peer went away (or could not be written to) before anything
    /// went wrong on its side: nothing to report.
    Gone,
    /// The handshake failed: worth a warning and the failure count.
    Failed(String),
}

/// Secures `stream` by `tls`, sending `info` first in clear text unless the
/// handshake comes first; `allow_plain`: a peer that answers the INFO in
/// plain text may go on without TLS (`allow_non_tls`, client port only).
/// A peer that sends plain text otherwise is told TLS is required.
pub(crate) async fn secure(
    mut stream: TcpStream,
    tls: &TlsState,
    info: &[u8],
    allow_plain: bool,
) -> Result<Secured, NotSecured> {
    let acceptor = TlsAcceptor::from(tls.config.clone());
    // `handshake_first` with a fallback delay: a peer that has not started
    // TLS by then gets INFO first, as without handshake_first.
    let tls_first = match tls.fallback {
        Some(delay) if tls.handshake_first => {
            let mut first = [0u8; 1];
            matches!(timeout(delay, stream.peek(&mut first)).await, Ok(Ok(1)))
        }
        _ => tls.handshake_first,
    };
    if !tls_first {
        if timeout(tls.timeout, stream.write_all(info)).await.map_or(true, |r| r.is_err()) {
            return Err(NotSecured::Gone);
        }
        let mut first = [0u8; 1];
        match timeout(tls.timeout, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => {}
            Ok(Ok(1)) if allow_plain => return Ok(Secured::Plain(stream)),
            Ok(Ok(1)) => {
                // Plain-text protocol on a TLS port: say why, then close.
                let line = ProtoError::TlsRequired.to_line();
                let _ = timeout(tls.timeout, async {
                    let _ = stream.write_all(line.as_bytes()).await;
                    let _ = stream.shutdown().await;
                })
                .await;
                return Err(NotSecured::Failed("peer sent plain text".into()));
            }
            Ok(_) => return Err(NotSecured::Gone),
            Err(_) => return Err(NotSecured::Failed("no TLS handshake started in time".into())),
        }
    }
    match timeout(tls.timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(Secured::Tls { stream: Box::new(stream), info_sent: !tls_first }),
        Ok(Err(err)) => Err(NotSecured::Failed(err.to_string())),
        Err(_) => Err(NotSecured::Failed("handshake timed out".into())),
    }
}
