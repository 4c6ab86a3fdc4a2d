//! Gateway connections on the connection driver: the accept loop (bounded
//! before anything is spent on a connection), dialling each other cluster
//! with backoff across its URLs, and the glue that runs a
//! [`GatewaySession`] as the driver's protocol.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};
use tracing::debug;

use super::session::{Accepted, GatewayLogin, GatewaySession};
use super::{Gateways, Remote};
use crate::broker::{Client, ClientKind, CloseReason};
use crate::cluster::HandshakeEnd;
use crate::conn::{drive, Authority, Protocol, Received, Signals};

/// A gateway URL is a route URL: `nats://[user:password@]host:port`.
pub use crate::cluster::RouteUrl as GatewayUrl;

/// Deadline for one TCP connect to a gateway.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// First retry delay; doubles per failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest retry delay (nats-server's `gatewayConnectMaxDelay`).
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Accepts gateway connections until shutdown.
pub(super) async fn accept_loop(gateways: Arc<Gateways>, listener: TcpListener) {
    let broker = gateways.broker.clone();
    crate::conn::accept_until_shutdown(&broker, listener, "gateway", None, |stream, peer| {
        // Bounded before anything is spent on it; the longest-waiting idle
        // handshake (from the same address first) gives way, so a flood of
        // idle sockets cannot lock the other clusters' servers out.
        let Some(slot) = gateways.pending.admit_evicting(peer.ip(), true) else {
            if gateways.broker.log_budget.allow() {
                tracing::warn!(%peer, "too many unauthenticated gateway connections; closing");
            }
            return;
        };
        let _ = stream.set_nodelay(true);
        let gateways = gateways.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + gateways.auth_timeout();
            let mut accepted = Accepted { slot, deadline, certificate: None };
            match gateways.tls() {
                None => {
                    run(gateways, stream, peer, None, Some(accepted)).await;
                }
                Some(tls) => match tls.accept(stream, &accepted.slot).await {
                    Ok((stream, certificate)) => {
                        accepted.certificate = certificate;
                        run(gateways, stream, peer, None, Some(accepted)).await;
                    }
                    Err(HandshakeEnd::Failed) => tracing::warn!(%peer, "gateway TLS handshake failed"),
                    Err(HandshakeEnd::GaveWay) => debug!(%peer, "gateway TLS handshake gave way to a newer connection"),
                },
            }
        });
    })
    .await;
}

/// Dials `remote` until shutdown: its URLs in turn, with backoff after a
/// failed attempt, again after the link drops. An implicit gateway is
/// given up (and forgotten) after `connect_retries` failures in a row (at
/// least 3).
pub(super) async fn solicit_loop(gateways: Arc<Gateways>, remote: Arc<Remote>) {
    let mut shutdown = gateways.broker.shutdown_signal();
    let mut backoff = FIRST_BACKOFF;
    let mut next = 0usize;
    let mut failures = 0u32;
    let retries = gateways.opts.connect_retries.max(3);
    loop {
        if *shutdown.borrow() {
            break;
        }
        if remote.implicit && failures > retries {
            debug!(gateway = %remote.name, "implicit gateway given up");
            gateways.forget(&remote);
            break;
        }
        let url = {
            let urls = remote.urls.lock();
            let url = urls.get(next % urls.len().max(1)).cloned();
            next = next.wrapping_add(1);
            url
        };
        let Some(url) = url else { break };
        match timeout(CONNECT_TIMEOUT, TcpStream::connect((url.host.as_str(), url.port))).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let peer = stream.peer_addr().unwrap_or(gateways.listen_addr);
                let dialled = Some((remote.name.clone(), url.clone()));
                let established = match remote.tls.clone().or_else(|| gateways.tls()) {
                    None => run(gateways.clone(), stream, peer, dialled, None).await,
                    Some(tls) => {
                        let Ok(name) = rustls_pki_types::ServerName::try_from(url.host.clone()) else {
                            tracing::warn!(gateway = %remote.name, "gateway host is not a valid TLS server name");
                            break;
                        };
                        match timeout(tls.timeout, tls.connector.connect(name, stream)).await {
                            Ok(Ok(stream)) => run(gateways.clone(), stream, peer, dialled, None).await,
                            _ => {
                                tracing::warn!(%peer, gateway = %remote.name, "gateway TLS handshake failed");
                                false
                            }
                        }
                    }
                };
                if established {
                    backoff = FIRST_BACKOFF;
                    failures = 0;
                } else {
                    failures += 1;
                }
            }
            _ => {
                failures += 1;
                debug!(gateway = %remote.name, url = %url.key(), "gateway connect failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = crate::broker::stopping(&mut shutdown) => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Runs one gateway connection until it closes; true if it was
/// established at some point.
async fn run<S>(
    gateways: Arc<Gateways>,
    stream: S,
    peer: SocketAddr,
    dialled: Option<(String, GatewayUrl)>,
    accepted: Option<Accepted>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let broker = gateways.broker.clone();
    let client = Client::with_kind(broker.next_client_id(), peer, broker.opts.max_pending, ClientKind::Gateway);
    let mut session = GatewaySession::new(gateways.clone(), Arc::new(client), dialled, accepted, Instant::now());
    let signals = Signals {
        shutdown: broker.shutdown_signal(),
        reconfigured: broker.accounts.changed(),
        write_deadline: broker.opts.write_deadline,
    };
    drive(&mut session, gateways.as_ref(), stream, signals).await;
    session.registered
}

/// The gateway protocol on the driver.
impl Protocol for GatewaySession {
    type Login = GatewayLogin;
    type Verdict = bool;

    fn receive(&mut self, buf: &[u8], now: Instant) -> Received<GatewayLogin> {
        GatewaySession::receive(self, buf, now)
    }

    fn authenticated(&mut self, ok: bool) -> Result<(), CloseReason> {
        GatewaySession::authenticated(self, ok)
    }

    fn deadline(&self) -> Instant {
        GatewaySession::deadline(self)
    }

    fn on_timer(&mut self, now: Instant) -> Result<(), CloseReason> {
        GatewaySession::on_timer(self, now)
    }

    fn reconfigure(&mut self) -> Result<(), CloseReason> {
        self.rehost();
        Ok(())
    }

    fn end_batch(&mut self) -> Vec<Arc<Client>> {
        GatewaySession::end_batch(self)
    }

    fn finish(&mut self, _reason: CloseReason) {
        GatewaySession::finish(self);
    }

    fn client(&self) -> &Arc<Client> {
        GatewaySession::client(self)
    }
}

/// Gateway credentials are checked behind the throttle, on the pool.
impl Authority<GatewaySession> for Gateways {
    fn check(&self, login: GatewayLogin) -> impl std::future::Future<Output = bool> + Send {
        self.credentials_ok(login)
    }
}
