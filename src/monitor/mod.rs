//! Monitoring: nats-server's HTTP endpoints (`/varz`, `/connz`, `/subsz`,
//! `/routez`, `/accountz`, `/healthz`) with its JSON field names, so nats-top and other
//! NATS tooling read them unchanged, plus Prometheus `/metrics` and
//! warden's security counters.
//!
//! - Served by hyper (HTTP/1.1), on its own listener, 127.0.0.1 unless the
//!   config says otherwise, optionally over TLS with the client `tls {}`
//!   certificate.
//! - Reading is cheap for the data path: every figure is an atomic the
//!   connections already keep, or is summed over the live clients when a
//!   request comes; the only locks taken are the client registry's and the
//!   subscription index's read lock (for subscription lists), each briefly.
//! - Unlike nats-server, the endpoints can require a bearer token or basic
//!   auth (`http_authorization`), never reflect request input (no JSONP
//!   `callback`; errors are fixed texts) and never show a secret
//!   (`/connz?auth=1` shows user names only). `/healthz` stays open so load
//!   balancers can probe it; it reveals only whether clients are accepted.

mod accountz;
mod api;
mod auth;
mod connz;
mod format;
mod gatewayz;
mod http;
mod leafz;
mod metrics;
mod process;
mod query;
mod routez;
mod slots;
mod statsz;
mod subsz;
mod varz;

pub use api::{ApiFailure, Endpoint, MonitorApi};
pub use format::rfc3339;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::auth::password::PasswordError;
use crate::auth::{Gate, Guard};
use crate::broker::{Broker, Client};
use crate::config::Options;
use crate::tls::CurrentTls;

/// How long `stop` waits for in-flight requests.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The paths served, in the order `/varz`'s `http_req_stats` lists them.
const PATHS: [&str; 11] = [
    "/",
    "/varz",
    "/connz",
    "/subsz",
    "/routez",
    "/healthz",
    "/metrics",
    "/subscriptionsz",
    "/accountz",
    "/leafz",
    "/gatewayz",
];

/// What monitoring learns about the cluster, through this narrow view
/// (the server wires the cluster in), so monitoring never imports it.
pub trait ClusterView: Send + Sync + fmt::Debug {
    /// The cluster name, if set.
    fn name(&self) -> Option<String>;
    /// The bound route listener.
    fn listen_addr(&self) -> SocketAddr;
    /// The configured seed routes as `host:port` (never their credentials).
    fn seed_routes(&self) -> Vec<String>;
    /// Client URLs of this server and its peers.
    fn connect_urls(&self) -> Vec<String>;
    /// Number of established routes.
    fn route_count(&self) -> usize;
    /// The established routes.
    fn routes(&self) -> Vec<RouteView>;
    /// Servers this node knows of and cannot reach.
    fn unreachable(&self) -> Vec<UnreachableView>;
}

/// What monitoring learns about leaf nodes (the server wires the hub in).
pub trait LeafView: Send + Sync + fmt::Debug {
    /// The leafs connected now.
    fn leafs(&self) -> Vec<LeafConnView>;
}

/// What monitoring learns about gateways (the server wires them in).
pub trait GatewayView: Send + Sync + fmt::Debug {
    /// This cluster's gateway name.
    fn name(&self) -> String;
    /// The bound gateway listener.
    fn listen_addr(&self) -> SocketAddr;
    /// The established gateway connections.
    fn links(&self) -> Vec<GatewayConnView>;
    /// The clusters this server dials, with the `host:port` of each URL it
    /// knows (never their credentials).
    fn remotes(&self) -> Vec<(String, Vec<String>)>;
    /// `reject_unknown_cluster`.
    fn rejects_unknown(&self) -> bool;
    /// `connect_retries`.
    fn connect_retries(&self) -> u32;
    /// Time a gateway has to log in.
    fn auth_timeout(&self) -> Duration;
    /// Interest entries dropped at an account's bound.
    fn interest_dropped(&self) -> u64;
}

/// One gateway connection.
#[derive(Debug, Clone)]
pub struct GatewayConnView {
    /// The connection (counters, address, subscriptions).
    pub client: Arc<Client>,
    /// The other cluster's name.
    pub name: String,
    /// The other server's id.
    pub remote_id: String,
    /// This server dialled it.
    pub outbound: bool,
    /// The other cluster is one this server lists.
    pub configured: bool,
}

/// One leaf connection.
#[derive(Debug, Clone)]
pub struct LeafConnView {
    /// The connection (counters, address, subscriptions).
    pub client: Arc<Client>,
    /// The account it is bound to.
    pub account: String,
    /// The leaf server's id.
    pub remote_id: String,
    /// The leaf server's name.
    pub remote_name: String,
    /// This server dialled it: it is a hub and this server its leaf.
    pub spoke: bool,
}

/// A server this node knows of (configured or gossiped) and cannot reach.
#[derive(Debug, Clone)]
pub struct UnreachableView {
    /// Its route URL, without credentials.
    pub url: String,
    /// Its server id, when a peer named it.
    pub server_id: Option<String>,
    /// Its server name, when a peer named it.
    pub server_name: Option<String>,
    /// Failed attempts in a row.
    pub attempts: u32,
    /// When the first of them failed.
    pub since: std::time::SystemTime,
    /// Whether this node stopped dialling it.
    pub gave_up: bool,
}

/// One established route, as monitoring shows it.
#[derive(Debug, Clone)]
pub struct RouteView {
    /// The route's connection (counters, address, subscriptions).
    pub client: Arc<Client>,
    /// The peer's server id.
    pub remote_id: String,
    /// The peer's server name.
    pub remote_name: String,
    /// Whether this server opened the connection.
    pub solicited: bool,
    /// The pinned account a connection of its own carries.
    pub account: Option<String>,
}

/// Everything monitoring reads, handed over by the server.
#[derive(Debug)]
pub struct Sources {
    /// The broker's state.
    pub broker: Arc<Broker>,
    /// Client authentication (for `auth_required` and the timeout).
    pub gate: Arc<Gate>,
    /// The client TLS settings (HTTPS monitoring serves with them).
    pub tls: Arc<CurrentTls>,
    /// The cluster, when configured.
    pub cluster: Option<Arc<dyn ClusterView>>,
    /// The leaf node hub, when configured.
    pub leafs: Option<Arc<dyn LeafView>>,
    /// The gateways, when configured.
    pub gateways: Option<Arc<dyn GatewayView>>,
}

/// Why monitoring could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum MonitorError {
    /// `https` without a `tls {}` block to serve it with.
    NeedsTls,
    /// The `http_authorization` secret cannot be used.
    Credentials(PasswordError),
    /// The listener could not be bound.
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl fmt::Display for MonitorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorError::NeedsTls => f.write_str("https monitoring needs the tls {} block"),
            MonitorError::Credentials(err) => write!(f, "http_authorization: {err}"),
            MonitorError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for MonitorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MonitorError::NeedsTls => None,
            MonitorError::Credentials(err) => Some(err),
            MonitorError::Bind { source, .. } => Some(source),
        }
    }
}

/// Everything a request handler reads, over HTTP or NATS.
#[derive(Debug)]
struct Monitor {
    broker: Arc<Broker>,
    gate: Arc<Gate>,
    tls: Arc<CurrentTls>,
    cluster: Option<Arc<dyn ClusterView>>,
    leafs: Option<Arc<dyn LeafView>>,
    gateways: Option<Arc<dyn GatewayView>>,
    /// The HTTP listener's facts, once it is bound.
    http: OnceLock<HttpSide>,
    /// CPU use between requests.
    cpu: process::CpuMeter,
    /// Requests per path in [`PATHS`] (a fixed set, so bounded).
    requests: [AtomicU64; PATHS.len()],
    /// Requests refused for missing or wrong credentials.
    auth_failures: AtomicU64,
}

/// The bound HTTP listener, as `/varz` and the request handler see it.
#[derive(Debug)]
struct HttpSide {
    /// The bound monitoring address.
    addr: SocketAddr,
    /// Whether this listener serves HTTPS.
    https: bool,
    /// Required credentials, if configured.
    auth: Option<auth::MonitorAuth>,
}

impl Monitor {
    fn new(sources: Sources) -> Monitor {
        Monitor {
            broker: sources.broker,
            gate: sources.gate,
            tls: sources.tls,
            cluster: sources.cluster,
            leafs: sources.leafs,
            gateways: sources.gateways,
            http: OnceLock::new(),
            cpu: process::CpuMeter::new(),
            requests: Default::default(),
            auth_failures: AtomicU64::new(0),
        }
    }

    fn count_request(&self, path: &str) {
        if let Some(i) = PATHS.iter().position(|p| *p == path) {
            self.requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A running monitoring listener.
#[derive(Debug)]
pub struct MonitorHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MonitorHandle {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and closes.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        if tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), self.task).await.is_err() {
            warn!("monitoring listener did not stop in time");
        }
    }
}

/// Checks what `start` would check without binding (for `warden check`).
pub fn check(opts: &Options) -> Result<(), MonitorError> {
    if opts.http.as_ref().is_some_and(|h| h.tls) && opts.tls.is_none() {
        return Err(MonitorError::NeedsTls);
    }
    match &opts.http_authorization {
        Some(config) => auth::validate(config).map_err(MonitorError::Credentials),
        None => Ok(()),
    }
}

/// Binds the monitoring listener if the options ask for one and starts
/// serving `api`'s data. Nothing is bound if a check fails.
pub async fn start(api: &MonitorApi, guard: Guard) -> Result<Option<MonitorHandle>, MonitorError> {
    let monitor = api.monitor().clone();
    let Some(http) = monitor.broker.opts.http.clone() else { return Ok(None) };
    if http.tls && monitor.tls.get().is_none() {
        return Err(MonitorError::NeedsTls);
    }
    let auth = match &monitor.broker.opts.http_authorization {
        Some(config) => Some(auth::MonitorAuth::new(config, guard).map_err(MonitorError::Credentials)?),
        None => None,
    };
    let bind = |source| MonitorError::Bind { addr: format!("{}:{}", http.host, http.port), source };
    let listener = TcpListener::bind((http.host.as_str(), http.port)).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let scheme = if http.tls { "https" } else { "http" };
    if auth.is_none() && !addr.ip().is_loopback() {
        warn!(%addr, "monitoring is reachable from the network without authentication; set http_authorization");
    }
    info!(auth = auth.is_some(), "Starting {scheme} monitor on {addr}");
    // Started once per server; a second start would find the first's facts.
    let _ = monitor.http.set(HttpSide { addr, https: http.tls, auth });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(http::serve(listener, monitor, stopped));
    Ok(Some(MonitorHandle { addr, stop, task }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> Monitor {
        let opts = Options::default();
        let authenticator = crate::auth::from_options(&opts).unwrap();
        let addr: SocketAddr = "127.0.0.1:4222".parse().unwrap();
        let verifier = Arc::new(crate::auth::Verifier::new(1));
        let guard = Guard::new(verifier, crate::auth::FailureThrottle::new(Duration::ZERO));
        Monitor::new(Sources {
            broker: Arc::new(Broker::new(opts, addr, crate::broker::ServerIdentity::new(None).unwrap())),
            gate: Arc::new(Gate::new(authenticator, guard, Duration::from_secs(2))),
            tls: Arc::new(CurrentTls::default()),
            cluster: None,
            leafs: None,
            gateways: None,
        })
    }

    #[test]
    fn healthz_is_503_once_shutdown_begins() {
        let monitor = monitor();
        assert!(http::healthz(&monitor).is_ok());
        monitor.broker.begin_shutdown();
        let err = http::healthz(&monitor).err().unwrap();
        assert_eq!(err.status, hyper::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn https_without_tls_and_bad_hashes_are_refused_before_binding() {
        let mut opts = Options {
            http: Some(crate::config::HttpOptions { host: "127.0.0.1".into(), port: 0, tls: true }),
            ..Options::default()
        };
        assert!(matches!(check(&opts), Err(MonitorError::NeedsTls)));
        opts.http = Some(crate::config::HttpOptions { host: "127.0.0.1".into(), port: 0, tls: false });
        opts.http_authorization =
            Some(crate::config::HttpAuthorization::Token(crate::secret::Secret::new("$argon2id$broken")));
        assert!(matches!(check(&opts), Err(MonitorError::Credentials(_))));
    }

    #[test]
    fn request_counts_are_kept_for_known_paths_only() {
        let monitor = monitor();
        monitor.count_request("/varz");
        monitor.count_request("/varz");
        monitor.count_request("/attacker-chosen");
        let counted: u64 = monitor.requests.iter().map(|n| n.load(Ordering::Relaxed)).sum();
        assert_eq!((monitor.requests[1].load(Ordering::Relaxed), counted), (2, 2));
    }
}
