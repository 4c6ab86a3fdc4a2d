//! State every connection shares.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::audit::LogLimiter;
use super::identity::new_server_id;
use super::security::SecurityStats;
use crate::auth::{Authenticator, Claims, ConnectionFacts, FailureThrottle, RefusalReason, Verdict};
use crate::cluster::Cluster;
use crate::config::Options;
use crate::conn::Client;
use crate::proto::ServerInfo;
use crate::router::{Router, Subscription};

/// Server-wide counters (aggregated per read batch, not per message).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Messages received from clients.
    pub in_msgs: AtomicU64,
    /// Payload bytes received from clients.
    pub in_bytes: AtomicU64,
    /// Messages delivered to clients.
    pub out_msgs: AtomicU64,
    /// Payload bytes delivered to clients.
    pub out_bytes: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Slow consumers closed since start.
    pub slow_consumers: AtomicU64,
    /// Connections refused because of max_connections.
    pub refused_max_connections: AtomicU64,
    /// Connections refused because of max_connections_per_ip.
    pub refused_max_connections_per_ip: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: AtomicU64,
}

/// The TLS settings new connections use; swapped whole on reload so
/// existing connections keep theirs.
#[derive(Debug)]
pub struct TlsState {
    /// rustls configuration.
    pub config: Arc<rustls::ServerConfig>,
    /// Handshake deadline.
    pub timeout: std::time::Duration,
    /// TLS before INFO.
    pub handshake_first: bool,
    /// Client certificates are required.
    pub verify: bool,
}

/// Longest delay before answering a repeated login failure from one address.
const AUTH_FAILURE_MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(5);
/// Default authentication timeout.
const AUTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Default authentication timeout with TLS.
const AUTH_TIMEOUT_TLS: std::time::Duration = std::time::Duration::from_secs(3);

/// Credential checks run at once: half the cores, at least one, so the
/// other half keeps routing messages during a login flood.
fn auth_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Why a new connection was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds `max_connections` clients.
    MaxConnections,
    /// The peer's address holds `max_connections_per_ip` clients.
    MaxConnectionsPerIp,
}

/// The live clients, and how many each peer address holds (for
/// `max_connections_per_ip`; an address is forgotten with its last client,
/// so the map is bounded by the number of live connections).
#[derive(Debug, Default)]
struct Registry {
    clients: HashMap<u64, Arc<Client>>,
    per_ip: HashMap<IpAddr, usize>,
}

/// Resolves once shutdown has begun, also when it began before the call.
/// Returns `()` (not the watch guard), so it can sit in `select!` loops of
/// tasks that must be `Send`.
pub async fn stopping(signal: &mut watch::Receiver<bool>) {
    let _ = signal.wait_for(|stopping| *stopping).await;
}

/// Options, identity, the subscription index and the live connections.
#[derive(Debug)]
pub struct Shared {
    /// The validated options the server started with.
    pub opts: Options,
    /// Random id, nkey-shaped.
    pub server_id: String,
    /// `server_name`, or the id.
    pub server_name: String,
    /// Bound client address.
    pub addr: SocketAddr,
    /// When the server started.
    pub started: SystemTime,
    /// The subscription index.
    pub router: Router,
    /// Counters.
    pub stats: ServerStats,
    /// Login and permission counters.
    pub security: SecurityStats,
    /// Rate limit for security log events.
    pub audit: LogLimiter,
    /// Delays answers to repeated login failures from one address.
    pub throttle: FailureThrottle,
    /// The authenticator; replaced whole on reload.
    authenticator: parking_lot::RwLock<Arc<dyn Authenticator>>,
    /// Bounds how many credential checks run at once (they are CPU-heavy).
    auth_slots: Arc<tokio::sync::Semaphore>,
    /// Bumped on every configuration reload; connections watch it.
    reload: watch::Sender<u64>,
    /// Live clients by id and per address; locked only on connect, close
    /// and monitoring reads.
    registry: Mutex<Registry>,
    /// The cluster, when `cluster {}` is configured; set once at start.
    pub cluster: std::sync::OnceLock<Arc<Cluster>>,
    /// TLS for client connections, if configured.
    tls: parking_lot::RwLock<Option<Arc<TlsState>>>,
    next_cid: AtomicU64,
    next_batch: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// Set when lame-duck mode begins.
    lame_duck: AtomicBool,
}

impl Shared {
    /// Shared state for a server bound at `addr`.
    pub fn new(opts: Options, addr: SocketAddr, tls: Option<TlsState>, authenticator: Arc<dyn Authenticator>) -> Self {
        let server_id = new_server_id();
        let server_name = opts.server_name.clone().unwrap_or_else(|| server_id.clone());
        let failure_delay =
            opts.authorization.as_ref().and_then(|a| a.failure_delay_max).unwrap_or(AUTH_FAILURE_MAX_DELAY);
        Shared {
            opts,
            server_id,
            server_name,
            addr,
            started: SystemTime::now(),
            router: Router::new(),
            stats: ServerStats::default(),
            security: SecurityStats::default(),
            audit: LogLimiter::default(),
            throttle: FailureThrottle::new(failure_delay),
            authenticator: parking_lot::RwLock::new(authenticator),
            auth_slots: Arc::new(tokio::sync::Semaphore::new(auth_parallelism())),
            reload: watch::channel(0).0,
            registry: Mutex::new(Registry::default()),
            cluster: std::sync::OnceLock::new(),
            tls: parking_lot::RwLock::new(tls.map(Arc::new)),
            next_cid: AtomicU64::new(1),
            next_batch: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
            lame_duck: AtomicBool::new(false),
        }
    }

    /// The current authenticator.
    pub fn authenticator(&self) -> Arc<dyn Authenticator> {
        self.authenticator.read().clone()
    }

    /// Checks credentials on a blocking thread, at most `auth_parallelism()`
    /// at a time, so a flood of bogus logins queues up instead of taking the
    /// CPU from authenticated traffic.
    pub async fn authenticate(&self, claims: Claims, facts: ConnectionFacts) -> Verdict {
        let authenticator = self.authenticator();
        let Ok(permit) = self.auth_slots.clone().acquire_owned().await else {
            return Verdict::Refuse(RefusalReason::MissingCredentials);
        };
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            authenticator.authenticate(&claims, &facts)
        });
        job.await.unwrap_or(Verdict::Refuse(RefusalReason::BadCredentials))
    }

    /// Time a client has to authenticate: `authorization.timeout`, else 2 s
    /// (3 s with TLS, counted after the handshake), as nats-server.
    pub fn auth_timeout(&self) -> std::time::Duration {
        let configured = self.opts.authorization.as_ref().and_then(|a| a.timeout);
        configured.unwrap_or(if self.opts.tls.is_some() { AUTH_TIMEOUT_TLS } else { AUTH_TIMEOUT })
    }

    /// Swaps in a new authenticator and TLS settings and tells every
    /// connection to re-check its identity and subscriptions.
    pub fn apply_reload(&self, authenticator: Arc<dyn Authenticator>, tls: Option<TlsState>) {
        *self.authenticator.write() = authenticator;
        *self.tls.write() = tls.map(Arc::new);
        self.reload.send_modify(|generation| *generation += 1);
    }

    /// A receiver that changes on every reload.
    pub fn reload_signal(&self) -> watch::Receiver<u64> {
        self.reload.subscribe()
    }

    /// Adds a subscription to the index (and, for a client's own, announces
    /// the interest to the cluster).
    pub fn add_subscription(&self, sub: Arc<Subscription>) {
        self.router.insert(sub.clone());
        if !sub.owner.is_route() {
            if let Some(cluster) = self.cluster.get() {
                cluster.local_interest_added(&sub);
            }
        }
    }

    /// Removes a subscription (once; repeated calls do nothing).
    pub fn remove_subscription(&self, sub: &Arc<Subscription>) {
        if self.router.remove(sub) && !sub.owner.is_route() {
            if let Some(cluster) = self.cluster.get() {
                cluster.local_interest_removed(sub);
            }
        }
    }

    /// A fresh connection id.
    pub fn next_client_id(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh read-batch token (see `Client::mark_batch`).
    pub fn next_batch_token(&self) -> u64 {
        self.next_batch.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a new client, unless `max_connections` or
    /// `max_connections_per_ip` (0 = no limit) is reached.
    pub fn register(&self, cid: u64, addr: SocketAddr) -> Result<Arc<Client>, Refusal> {
        let mut registry = self.registry.lock();
        if registry.clients.len() >= self.opts.max_connections {
            return Err(Refusal::MaxConnections);
        }
        let per_ip = self.opts.max_connections_per_ip;
        let from_ip = registry.per_ip.get(&addr.ip()).copied().unwrap_or(0);
        if per_ip > 0 && from_ip >= per_ip {
            return Err(Refusal::MaxConnectionsPerIp);
        }
        let client = Arc::new(Client::new(cid, addr, self.opts.max_pending));
        registry.clients.insert(cid, client.clone());
        *registry.per_ip.entry(addr.ip()).or_insert(0) += 1;
        self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        Ok(client)
    }

    /// Forgets a closed client.
    pub fn unregister(&self, client: &Client) {
        let mut registry = self.registry.lock();
        if registry.clients.remove(&client.id).is_none() {
            return;
        }
        let ip = client.addr.ip();
        if let Some(count) = registry.per_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                registry.per_ip.remove(&ip);
            }
        }
    }

    /// A snapshot of the live clients.
    pub fn clients(&self) -> Vec<Arc<Client>> {
        self.registry.lock().clients.values().cloned().collect()
    }

    /// Number of live clients.
    pub fn client_count(&self) -> usize {
        self.registry.lock().clients.len()
    }

    /// The TLS settings for a new connection, if TLS is on.
    pub fn tls(&self) -> Option<Arc<TlsState>> {
        self.tls.read().clone()
    }

    /// The INFO line for `client`.
    pub fn info_line(&self, client: &Client) -> Vec<u8> {
        self.info(client).to_line()
    }

    /// The INFO `client` gets.
    pub fn info(&self, client: &Client) -> ServerInfo {
        let tls = self.tls();
        ServerInfo {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            proto: 1,
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
            headers: true,
            max_payload: self.opts.max_payload,
            client_id: Some(client.id),
            client_ip: Some(client.addr.ip().to_string()),
            auth_required: self.authenticator().auth_required(),
            cluster: self.cluster.get().and_then(|c| c.opts.name.clone()),
            connect_urls: self.cluster.get().map(|c| c.connect_urls()).unwrap_or_default(),
            tls_required: tls.is_some(),
            tls_verify: tls.as_ref().is_some_and(|t| t.verify),
            ..Default::default()
        }
    }

    /// A receiver that changes when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Whether shutdown has begun (new clients are no longer accepted).
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Marks the server as in lame-duck mode (no longer accepting clients,
    /// draining the rest).
    pub fn begin_lame_duck(&self) {
        self.lame_duck.store(true, Ordering::Release);
    }

    /// Whether lame-duck mode has begun (then new clients are refused too).
    pub fn in_lame_duck(&self) -> bool {
        self.lame_duck.load(Ordering::Acquire)
    }

    /// Starts shutdown: the accept loop and every connection see it.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}
