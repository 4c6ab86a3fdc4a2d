//! Route connections on the connection driver: the accept loop (bounded
//! before anything is spent on a connection), route TLS, and the glue that
//! runs a [`RouteSession`] as the driver's protocol with the cluster
//! checking route credentials.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tracing::debug;

pub(crate) use super::session::RouteEnd;
use super::session::{Accepted, RouteLogin, RouteSession};
use super::solicit::RouteUrl;
use super::{Cluster, HandshakeEnd, Target};
use crate::broker::{Client, ClientKind, CloseReason};
use crate::conn::{drive, Authority, Protocol, Received, Signals};

/// Accepts route connections until shutdown.
pub(crate) async fn accept_loop(cluster: Arc<Cluster>, listener: TcpListener) {
    let broker = cluster.broker.clone();
    crate::conn::accept_until_shutdown(&broker, listener, "route", None, |stream, peer| {
        // Bounded before anything is spent on it; the longest-waiting idle
        // handshake (from the same address first) gives way, so a flood of
        // idle sockets cannot lock the cluster's own servers out.
        let Some(slot) = cluster.pending.admit_evicting(peer.ip(), true) else {
            if cluster.broker.log_budget.allow() {
                cluster.warn("too many unauthenticated route connections; closing", &peer);
            }
            return;
        };
        let _ = stream.set_nodelay(true);
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut accepted = Accepted { slot, deadline: Instant::now() + cluster.auth_timeout(), certificate: None };
            match cluster.tls() {
                None => {
                    run_route(cluster, stream, peer, Dialled::No(accepted)).await;
                }
                Some(tls) => match tls.accept(stream, &accepted.slot).await {
                    Ok((stream, certificate)) => {
                        accepted.certificate = certificate;
                        run_route(cluster, stream, peer, Dialled::No(accepted)).await;
                    }
                    Err(HandshakeEnd::Failed) => cluster.warn("route TLS handshake failed", &peer),
                    Err(HandshakeEnd::GaveWay) => debug!(%peer, "route TLS handshake gave way to a newer connection"),
                },
            }
        });
    })
    .await;
}

/// How a route connection came about.
#[derive(Debug)]
pub(crate) enum Dialled {
    /// This server dialled the URL, for this connection to the peer.
    Yes(RouteUrl, Target),
    /// The peer dialled this server.
    No(Accepted),
}

/// Runs one route connection on the connection driver until it closes.
pub(crate) async fn run_route<S>(cluster: Arc<Cluster>, stream: S, peer: SocketAddr, dialled: Dialled) -> RouteEnd
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (solicited, accepted) = match dialled {
        Dialled::Yes(url, target) => (Some((url, target)), None),
        Dialled::No(accepted) => (None, Some(accepted)),
    };
    let broker = cluster.broker.clone();
    let client = Arc::new(Client::with_kind(broker.next_client_id(), peer, broker.opts.max_pending, ClientKind::Route));
    let mut session = RouteSession::new(cluster.clone(), client, solicited, accepted, Instant::now());
    let signals = Signals {
        shutdown: broker.shutdown_signal(),
        reconfigured: broker.accounts.changed(),
        write_deadline: broker.opts.write_deadline,
    };
    drive(&mut session, cluster.as_ref(), stream, signals).await;
    session.end()
}

/// The route protocol on the driver.
impl Protocol for RouteSession {
    type Login = RouteLogin;
    type Verdict = bool;

    fn receive(&mut self, buf: &[u8], now: Instant) -> Received<RouteLogin> {
        RouteSession::receive(self, buf, now)
    }

    fn authenticated(&mut self, ok: bool) -> Result<(), CloseReason> {
        RouteSession::authenticated(self, ok)
    }

    fn deadline(&self) -> Instant {
        RouteSession::deadline(self)
    }

    fn on_timer(&mut self, now: Instant) -> Result<(), CloseReason> {
        RouteSession::on_timer(self, now)
    }

    fn reconfigure(&mut self) -> Result<(), CloseReason> {
        self.rehost();
        Ok(())
    }

    fn end_batch(&mut self) -> Vec<Arc<Client>> {
        RouteSession::end_batch(self)
    }

    fn finish(&mut self, _reason: CloseReason) {
        RouteSession::finish(self);
    }

    fn client(&self) -> &Arc<Client> {
        RouteSession::client(self)
    }
}

/// Route credentials are checked by the cluster, behind the route port's
/// failure throttle and on the verification pool.
impl Authority<RouteSession> for Cluster {
    fn check(&self, login: RouteLogin) -> impl std::future::Future<Output = bool> + Send {
        self.route_credentials_ok(login)
    }
}
