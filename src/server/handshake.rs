//! From an accepted socket to a running connection: plain, or TLS in the
//! NATS order (INFO in plain text, then the client starts TLS) or with
//! `handshake_first` (TLS before INFO).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpStream;
use tracing::warn;

use super::Node;
use crate::broker::Client;
use crate::conn::{note_tls_session, run_connection, secure, Greeting, NotSecured, Secured, Start};
use crate::tls::TlsState;

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
async fn serve_tls(node: Arc<Node>, stream: TcpStream, client: Arc<Client>, tls: Arc<TlsState>, nonce: Option<String>) {
    let info = node.greeting_line(&client, nonce.clone());
    match secure(stream, &tls, &info, tls.allow_non_tls).await {
        Ok(Secured::Tls { stream, info_sent }) => {
            let greeting = if info_sent { Greeting::Sent } else { Greeting::Send(info) };
            let start = Start { greeting, nonce, cookie_jwt: None };
            note_tls_session(&client, stream.get_ref().1);
            run_connection(node.broker.clone(), node.gate.clone(), *stream, client, start).await;
        }
        Ok(Secured::Plain(stream)) => {
            // `allow_non_tls`: this client chose plain text.
            let start = Start { greeting: Greeting::Sent, nonce, cookie_jwt: None };
            run_connection(node.broker.clone(), node.gate.clone(), stream, client, start).await;
        }
        Err(NotSecured::Failed(reason)) => handshake_failed(&node, &client, &reason),
        Err(NotSecured::Gone) => {}
    }
}

fn handshake_failed(node: &Node, client: &Client, reason: &str) {
    node.broker.stats.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
    warn!(cid = client.id, addr = %client.addr, reason, "TLS handshake failed");
}
