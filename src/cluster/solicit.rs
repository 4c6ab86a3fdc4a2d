//! Connecting to route URLs, with retries and backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::debug;

use super::route::{run_route, Dialled, RouteEnd};
use super::{Cluster, Dial};
use crate::secret::Secret;

/// Deadline for one TCP connect to a route.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// First retry delay; doubles per failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest retry delay with `connect_backoff` (nats-server's
/// `DEFAULT_ROUTE_CONNECT_MAX`).
const MAX_BACKOFF_CONFIGURED: Duration = Duration::from_secs(30);

/// A parsed `nats-route://[user:pass@]host:port[/]`.
#[derive(Debug, Clone)]
pub struct RouteUrl {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User, from the URL or the cluster authorization.
    pub user: Option<String>,
    /// Password, likewise.
    pub pass: Option<Secret>,
}

impl RouteUrl {
    /// Parses a route URL (`nats-route://` or `nats://`).
    pub fn parse(url: &str) -> Option<RouteUrl> {
        let rest = url.strip_prefix("nats-route://").or_else(|| url.strip_prefix("nats://"))?;
        let rest = rest.trim_end_matches('/');
        let (creds, hostport) = match rest.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, rest),
        };
        let (host, port) = hostport.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = port.parse().ok()?;
        let (user, pass) = match creds.map(|c| c.split_once(':')) {
            Some(Some((u, p))) => (Some(u.to_string()), Some(Secret::new(p))),
            Some(None) => (creds.map(str::to_string), None),
            None => (None, None),
        };
        (!host.is_empty()).then_some(RouteUrl { host, port, user, pass })
    }

    /// `host:port`, to recognise the same destination.
    pub fn key(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `nats-route://host:port/`, without credentials: how the route is
    /// named to other servers and in `/routez`.
    pub fn route_url(&self) -> String {
        format!("nats-route://{}/", self.key())
    }
}

/// Connects to `url` and runs the route; reconnects with backoff when it
/// drops. A configured route is dialled until shutdown; a gossiped one
/// stops after `connect_retries` (at least 3) failed attempts in a row.
/// Stops too when the URL turns out to be this server. Every failed
/// attempt is recorded with [`Cluster::dial_failed`].
pub(crate) async fn solicit_loop(cluster: Arc<Cluster>, url: RouteUrl, dial: Dial) {
    let retries = match dial {
        Dial::Configured => None,
        Dial::Gossiped { .. } | Dial::Pooled { .. } => Some(cluster.opts.connect_retries.max(3)),
    };
    // One more connection to a peer: only while the peer is there.
    let pooled = match &dial {
        Dial::Pooled { server_id, .. } => Some(server_id.clone()),
        _ => None,
    };
    let gives_up = |failures: u32| matches!(retries, Some(max) if failures > max);
    let failed = |failures: u32| {
        if pooled.is_none() {
            cluster.dial_failed(&url, &dial, failures, gives_up(failures));
        }
    };
    let mut shutdown = cluster.broker.shutdown_signal();
    let mut failures = 0u32;
    let mut backoff = FIRST_BACKOFF;
    let max_backoff = if cluster.opts.connect_backoff { MAX_BACKOFF_CONFIGURED } else { MAX_BACKOFF };
    let dialled = || Dialled::Yes(url.clone(), dial.target());
    loop {
        if *shutdown.borrow() || pooled.as_ref().is_some_and(|id| !cluster.has_route(id)) {
            break;
        }
        match timeout(CONNECT_TIMEOUT, TcpStream::connect((url.host.as_str(), url.port))).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let peer = stream.peer_addr().unwrap_or(cluster.listen_addr);
                let end = match cluster.tls() {
                    None => run_route(cluster.clone(), stream, peer, dialled()).await,
                    Some(tls) => {
                        let Ok(name) = rustls_pki_types::ServerName::try_from(url.host.clone()) else {
                            cluster.warn("route host is not a valid TLS server name", &peer);
                            if pooled.is_none() {
                                cluster.dial_failed(&url, &dial, failures + 1, true);
                            }
                            break;
                        };
                        match timeout(tls.timeout, tls.connector.connect(name, stream)).await {
                            Ok(Ok(stream)) => run_route(cluster.clone(), stream, peer, dialled()).await,
                            _ => {
                                cluster.warn("route TLS handshake failed", &peer);
                                RouteEnd::Closed { registered: false }
                            }
                        }
                    }
                };
                match end {
                    RouteEnd::ToSelf | RouteEnd::NoPlace => break,
                    // The other direction holds this place of the pool.
                    RouteEnd::Duplicate(_) if pooled.is_some() => break,
                    RouteEnd::Duplicate(remote_id) => {
                        // The other direction won; wait until it is gone.
                        cluster.reached(&url);
                        loop {
                            let changed = cluster.changed.notified();
                            tokio::pin!(changed);
                            changed.as_mut().enable();
                            if !cluster.has_route(&remote_id) {
                                break;
                            }
                            tokio::select! {
                                _ = changed => {}
                                _ = crate::broker::stopping(&mut shutdown) => break,
                            }
                        }
                    }
                    RouteEnd::Closed { registered: true } => failures = 0,
                    RouteEnd::Closed { registered: false } => {
                        failures += 1;
                        failed(failures);
                    }
                }
                if gives_up(failures) {
                    break;
                }
                backoff = FIRST_BACKOFF;
            }
            _ => {
                failures += 1;
                debug!(url = %url.key(), failures, "route connect failed");
                failed(failures);
                if gives_up(failures) {
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = crate::broker::stopping(&mut shutdown) => break,
        }
        backoff = (backoff * 2).min(max_backoff);
    }
    cluster.solicit_done(&url, &dial);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_route_urls() {
        let u = RouteUrl::parse("nats-route://ruser:T0pS3cr3t@127.0.0.1:6222/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.user.as_deref()), ("127.0.0.1", 6222, Some("ruser")));
        assert_eq!(u.pass.unwrap().expose(), "T0pS3cr3t");
        let u = RouteUrl::parse("nats-route://localhost:7000").unwrap();
        assert!(u.user.is_none() && u.pass.is_none());
        assert!(RouteUrl::parse("http://x:1").is_none());
        assert!(RouteUrl::parse("nats-route://x").is_none());
    }
}
