//! The broker's state: what every connection and route shares, and nothing
//! about sockets.
//!
//! # Pieces and who owns them
//! - [`Broker`]: one per server, behind an `Arc`. It holds the validated
//!   options, the server's identity, the subscription index ([`Router`]),
//!   the live clients ([`Broker::register`]), the counters and the
//!   lifecycle signals (shutdown, lame duck).
//! - [`Client`]: one per connection (client or route), behind an `Arc`: the
//!   bounded outbound queue ([`Outbound`]) other connections deliver to, its
//!   counters and monitoring facts. Connections and subscriptions hold it;
//!   the broker knows nothing else of a connection.
//! - [`Subscription`]: one per SUB (or per route interest), owned by the
//!   router's trie and by the session that made it.
//! - [`Fanout`]: per publisher, owned by its reader: delivers one message to
//!   the plain subscribers, one member of each queue group (local first) and
//!   each interested route once.
//!
//! The cluster learns about interest changes through one narrow seam, an
//! [`InterestObserver`] set once at start; the broker never calls into
//! routes otherwise.

mod audit;
mod client;
mod close;
mod fanout;
mod identity;
mod outbound;
mod router;
mod security;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::config::Options;

pub use audit::LogLimiter;
pub use client::{Client, ClientKind, ClientMeta, ClientStats};
pub use close::CloseReason;
pub use fanout::{Fanout, Message, Origin};
pub use identity::new_server_key;
pub use outbound::{Append, Outbound, MAX_WRITE_CHUNKS};
pub use router::{Claim, MatchCache, MatchResult, Router, RouterStats, Subscription};
pub use security::SecurityStats;

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

/// Why a new connection was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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

/// Told when client interest enters or leaves the index (the cluster's
/// seam: it announces interest to its routes). Route-owned subscriptions
/// are not reported.
pub trait InterestObserver: Send + Sync + fmt::Debug {
    /// A client subscription entered the index.
    fn interest_added(&self, sub: &Subscription);
    /// A client subscription left the index.
    fn interest_removed(&self, sub: &Subscription);
}

/// Who this server is.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    /// The server id: the public key of `key` (`N...`).
    pub id: String,
    /// The server's key pair (it signs what the server issues).
    pub key: Arc<crate::nkeys::KeyPair>,
    /// `server_name`, or the id.
    pub name: String,
    /// When the server started.
    pub started: SystemTime,
}

impl ServerIdentity {
    /// A fresh identity named `name` (the id when `None`).
    pub fn new(name: Option<String>) -> Result<Self, crate::nkeys::NkeyError> {
        let key = new_server_key()?;
        let id = key.public().as_str().to_owned();
        Ok(ServerIdentity { name: name.unwrap_or_else(|| id.clone()), id, key, started: SystemTime::now() })
    }
}

/// The state every connection shares. See the module docs.
#[derive(Debug)]
pub struct Broker {
    /// The validated options the server started with.
    pub opts: Options,
    /// Id, name and start time.
    pub identity: ServerIdentity,
    /// Bound client listener address (for INFO and `connect_urls`).
    pub addr: SocketAddr,
    /// The subscription index.
    pub router: Router,
    /// Counters.
    pub stats: ServerStats,
    /// Login and permission counters.
    pub security: SecurityStats,
    /// Rate limit for security log events.
    pub audit: LogLimiter,
    /// Live clients by id and per address; locked only on connect, close
    /// and monitoring reads.
    registry: Mutex<Registry>,
    /// Told about client interest changes; set once, when clustered. Weak:
    /// the observer (the cluster) holds the broker.
    observer: OnceLock<Weak<dyn InterestObserver>>,
    next_cid: AtomicU64,
    next_batch: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// Set when lame-duck mode begins.
    lame_duck: AtomicBool,
}

impl Broker {
    /// The state of a server bound at `addr`, with identity `identity`.
    pub fn new(opts: Options, addr: SocketAddr, identity: ServerIdentity) -> Self {
        Broker {
            opts,
            identity,
            addr,
            router: Router::new(),
            stats: ServerStats::default(),
            security: SecurityStats::default(),
            audit: LogLimiter::default(),
            registry: Mutex::new(Registry::default()),
            observer: OnceLock::new(),
            next_cid: AtomicU64::new(1),
            next_batch: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
            lame_duck: AtomicBool::new(false),
        }
    }

    /// Sets the observer of client interest (once; later calls are ignored).
    pub fn observe_interest(&self, observer: Weak<dyn InterestObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Adds a subscription to the index (and, for a client's own, tells the
    /// interest observer).
    pub fn add_subscription(&self, sub: Arc<Subscription>) {
        self.router.insert(sub.clone());
        if !sub.owner.is_route() {
            if let Some(observer) = self.observer.get().and_then(Weak::upgrade) {
                observer.interest_added(&sub);
            }
        }
    }

    /// Removes a subscription (once; repeated calls do nothing).
    pub fn remove_subscription(&self, sub: &Arc<Subscription>) {
        if self.router.remove(sub) && !sub.owner.is_route() {
            if let Some(observer) = self.observer.get().and_then(Weak::upgrade) {
                observer.interest_removed(sub);
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
