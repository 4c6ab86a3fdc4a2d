//! Leaf connections on the connection driver: the accept loop (bounded
//! before anything is spent on a connection), leaf TLS (INFO first, as
//! nats-server, or `handshake_first`), and the start of a
//! [`LeafSession`] with the gate checking the leaf's login.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::session::LeafSession;
use super::{Hub, LeafError};
use crate::broker::{Client, ClientKind};
use crate::config::LeafnodeOptions;
use crate::conn::accept_rate::AcceptLimiter;
use crate::conn::{drive, note_tls_session, secure, AcceptLimit, NotSecured, Secured, Signals};
use crate::tls::TlsState;

/// Loads the leaf TLS settings, if any: a [`TlsState`] as the client
/// port's, in the NATS order (INFO, then TLS) unless `handshake_first`.
pub(crate) fn leaf_tls(opts: &LeafnodeOptions) -> Result<Option<TlsState>, LeafError> {
    let Some(tls) = &opts.tls else { return Ok(None) };
    let (state, warnings) = TlsState::load(tls).map_err(LeafError::Tls)?;
    for warning in &warnings {
        warn!("leafnodes tls: {warning}");
    }
    Ok(Some(state))
}

/// Accepts leaf connections until shutdown.
pub(crate) async fn accept_loop(hub: Arc<Hub>, listener: TcpListener) {
    let broker = hub.broker.clone();
    // A trusted proxy speaks for many leafs: only the listener-wide budget
    // and pending bound apply to it.
    let exempt = hub.proxies.as_ref().map(|p| p.trusted().to_vec()).unwrap_or_default();
    let limit = AcceptLimiter::new(&hub.opts.accept_rate).map(|limiter| AcceptLimit {
        limiter: limiter.exempting(exempt),
        refused: &broker.stats.refused_accept_rate_leafnode,
    });
    crate::conn::accept_until_shutdown(&broker, listener, "leafnode", limit, |mut stream, peer| {
        let proxy = hub.proxies.as_ref().filter(|p| p.trusts(peer)).is_some();
        // Bounded before anything is spent on it; the longest-waiting idle
        // handshake from elsewhere gives way, so a flood cannot lock
        // legitimate leafs out.
        let Some(slot) = hub.pending.admit_evicting(peer.ip(), !proxy) else {
            if hub.broker.log_budget.allow() {
                warn!(addr = %peer, "too many unauthenticated leafnode connections; closing");
            }
            return;
        };
        let _ = stream.set_nodelay(true);
        let hub = hub.clone();
        tokio::spawn(async move {
            // From a trusted proxy: the leaf is who its header names.
            let peer = match hub.proxies.as_ref().filter(|_| proxy) {
                Some(proxies) => {
                    let refused = &hub.broker.stats.refused_accept_rate_leafnode;
                    let Some(leaf) = proxies.client(&hub.broker, &mut stream, peer, &slot, refused).await else {
                        return;
                    };
                    leaf
                }
                None => peer,
            };
            let client = Arc::new(Client::with_kind(
                hub.broker.next_client_id(),
                peer,
                hub.broker.opts.max_pending,
                ClientKind::Leaf,
            ));
            let (session, info) = LeafSession::new(hub.clone(), client.clone(), slot, Instant::now());
            let Some(tls) = hub.tls.as_ref().and_then(|t| t.get()) else {
                client.send(&info);
                return run_leaf(&hub, stream, session).await;
            };
            // The session holds the pending slot now: a newer connection
            // that takes it closes this one, during the handshake too.
            let secured = tokio::select! {
                secured = secure(stream, &tls, &info, false) => secured,
                () = client.outbound.closing.notified() => {
                    return debug!(addr = %peer, "leafnode TLS handshake gave way to a newer connection");
                }
            };
            match secured {
                Ok(Secured::Tls { stream, info_sent }) => {
                    if !info_sent {
                        client.send(&info);
                    }
                    note_tls_session(&client, stream.get_ref().1);
                    run_leaf(&hub, *stream, session).await;
                }
                // Plain text is never allowed on the leaf port.
                Ok(Secured::Plain(_)) | Err(NotSecured::Gone) => {}
                Err(NotSecured::Failed(reason)) => warn!(addr = %peer, reason, "leafnode TLS handshake failed"),
            }
        });
    })
    .await;
}

/// Runs one leaf connection on the connection driver until it closes.
async fn run_leaf<S>(hub: &Hub, stream: S, mut session: LeafSession)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let signals = Signals {
        shutdown: hub.broker.shutdown_signal(),
        reconfigured: hub.gate.reload_signal(),
        write_deadline: hub.broker.opts.write_deadline,
    };
    drive(&mut session, hub.gate.as_ref(), stream, signals).await;
}
