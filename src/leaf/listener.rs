//! Leaf connections on the connection driver: the accept loop (bounded
//! before anything is spent on a connection), leaf TLS, and the start of a
//! [`LeafSession`] with the gate checking the leaf's login.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::{timeout, Instant};
use tracing::warn;

use super::session::LeafSession;
use super::{Hub, LeafError};
use crate::broker::{Client, ClientKind, PendingSlot};
use crate::config::LeafnodeOptions;
use crate::conn::{drive, note_tls_session, Signals};

/// The leaf listener's TLS: an acceptor and its handshake timeout.
pub(crate) struct LeafTls {
    acceptor: tokio_rustls::TlsAcceptor,
    timeout: Duration,
}

/// Loads the leaf TLS settings, if any.
pub(crate) fn leaf_tls(opts: &LeafnodeOptions) -> Result<Option<LeafTls>, LeafError> {
    let Some(tls) = &opts.tls else { return Ok(None) };
    let setup = crate::tls::load_server_config(tls).map_err(LeafError::Tls)?;
    for warning in &setup.warnings {
        warn!("leafnodes tls: {warning}");
    }
    Ok(Some(LeafTls { acceptor: tokio_rustls::TlsAcceptor::from(setup.config), timeout: tls.timeout }))
}

/// Accepts leaf connections until shutdown.
pub(crate) async fn accept_loop(hub: Arc<Hub>, listener: TcpListener) {
    let broker = hub.broker.clone();
    crate::conn::accept_until_shutdown(&broker, listener, "leafnode", |stream, peer| {
        // Bounded before anything is spent on it; the longest-waiting idle
        // handshake from elsewhere gives way, so a flood cannot lock
        // legitimate leafs out.
        let Some(slot) = hub.pending.admit_evicting(peer.ip(), true) else {
            if hub.broker.audit.allow() {
                warn!(addr = %peer, "too many unauthenticated leafnode connections; closing");
            }
            return;
        };
        let _ = stream.set_nodelay(true);
        let hub = hub.clone();
        tokio::spawn(async move {
            let client = Arc::new(Client::with_kind(
                hub.broker.next_client_id(),
                peer,
                hub.broker.opts.max_pending,
                ClientKind::Leaf,
            ));
            match &hub.tls {
                None => run_leaf(hub.clone(), stream, client, slot).await,
                Some(tls) => match timeout(tls.timeout, tls.acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        note_tls_session(&client, stream.get_ref().1);
                        run_leaf(hub.clone(), stream, client, slot).await;
                    }
                    _ => warn!(addr = %peer, "leafnode TLS handshake failed"),
                },
            }
        });
    })
    .await;
}

/// Runs one leaf connection on the connection driver until it closes.
async fn run_leaf<S>(hub: Arc<Hub>, stream: S, client: Arc<Client>, slot: PendingSlot)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let broker = hub.broker.clone();
    let mut session = LeafSession::new(hub.clone(), client, slot, Instant::now());
    let signals = Signals {
        shutdown: broker.shutdown_signal(),
        reconfigured: hub.gate.reload_signal(),
        write_deadline: broker.opts.write_deadline,
    };
    drive(&mut session, hub.gate.as_ref(), stream, signals).await;
}
