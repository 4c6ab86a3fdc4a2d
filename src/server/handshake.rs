//! From an accepted socket to a running connection: plain, or TLS in the
//! NATS order (INFO in plain text, then the client starts TLS) or with
//! `handshake_first` (TLS before INFO).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tracing::warn;

use super::Node;
use crate::broker::Client;
use crate::conn::{note_tls_session, run_connection, Greeting, Start};
use crate::proto::ProtoError;
use crate::tls::TlsState;

/// First byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Runs the connection on `stream`, after a TLS handshake when TLS is configured.
pub(super) async fn serve_socket(node: Arc<Node>, stream: TcpStream, client: Arc<Client>) {
    // A fresh nonce per connection when nkey users may log in; it goes out
    // in this connection's INFO only.
    let nonce = node.gate.wants_nonce().then(crate::nkeys::new_nonce);
    let Some(tls) = node.tls.get() else {
        let info = node.greeting_line(&client, nonce.clone());
        let start = Start { greeting: Greeting::Send(info), nonce, cookie_jwt: None };
        run_connection(node.broker.clone(), node.gate.clone(), stream, client, start).await;
        return;
    };
    // Boxed: the TLS states are several KiB, and every plain connection's
    // task would reserve room for them otherwise (`scripts/resources.sh`).
    Box::pin(serve_tls(node, stream, client, tls, nonce)).await;
}

/// The TLS handshake in either order, then the connection.
async fn serve_tls(
    node: Arc<Node>,
    mut stream: TcpStream,
    client: Arc<Client>,
    tls: Arc<TlsState>,
    nonce: Option<String>,
) {
    let acceptor = TlsAcceptor::from(tls.config.clone());
    // `handshake_first` with a fallback delay: a client that has not
    // started TLS by then gets INFO first, as without handshake_first.
    let tls_first = match tls.fallback {
        Some(delay) if tls.handshake_first => {
            let mut first = [0u8; 1];
            matches!(timeout(delay, stream.peek(&mut first)).await, Ok(Ok(1)))
        }
        _ => tls.handshake_first,
    };
    if tls_first {
        match timeout(tls.timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls_stream)) => {
                let info = node.greeting_line(&client, nonce.clone());
                let start = Start { greeting: Greeting::Send(info), nonce, cookie_jwt: None };
                start_tls_connection(node, tls_stream, client, start).await;
            }
            Ok(Err(err)) => handshake_failed(&node, &client, &err.to_string()),
            Err(_) => handshake_failed(&node, &client, "handshake timed out"),
        }
        return;
    }
    let info = node.greeting_line(&client, nonce.clone());
    let sent = Start { greeting: Greeting::Sent, nonce, cookie_jwt: None };
    if timeout(tls.timeout, stream.write_all(&info)).await.map_or(true, |r| r.is_err()) {
        return;
    }
    let mut first = [0u8; 1];
    match timeout(tls.timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => {}
        Ok(Ok(1)) if tls.allow_non_tls => {
            // `allow_non_tls`: this client chose plain text.
            run_connection(node.broker.clone(), node.gate.clone(), stream, client, sent).await;
            return;
        }
        Ok(Ok(1)) => {
            // Plain-text protocol on a TLS listener: say why, then close.
            let line = ProtoError::TlsRequired.to_line();
            let _ = timeout(tls.timeout, async {
                let _ = stream.write_all(line.as_bytes()).await;
                let _ = stream.shutdown().await;
            })
            .await;
            handshake_failed(&node, &client, "client sent plain text");
            return;
        }
        Ok(_) => return,
        Err(_) => {
            handshake_failed(&node, &client, "no TLS handshake started in time");
            return;
        }
    }
    match timeout(tls.timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => start_tls_connection(node, tls_stream, client, sent).await,
        Ok(Err(err)) => handshake_failed(&node, &client, &err.to_string()),
        Err(_) => handshake_failed(&node, &client, "handshake timed out"),
    }
}

/// Records the TLS facts of the connection, then runs it.
async fn start_tls_connection<S>(
    node: Arc<Node>,
    stream: tokio_rustls::server::TlsStream<S>,
    client: Arc<Client>,
    start: Start,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    note_tls_session(&client, stream.get_ref().1);
    run_connection(node.broker.clone(), node.gate.clone(), stream, client, start).await;
}

fn handshake_failed(node: &Node, client: &Client, reason: &str) {
    node.broker.stats.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
    warn!(cid = client.id, addr = %client.addr, reason, "TLS handshake failed");
}
