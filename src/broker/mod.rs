//! The broker's state: what every connection and route shares, and nothing
//! about sockets.
//!
//! # Pieces and who owns them
//! - [`Broker`]: one per server, behind an `Arc`. It holds the validated
//!   options, the server's identity, the [`Accounts`] (each with its own
//!   subscription index, a [`Router`]), the live clients
//!   ([`Broker::register`]), the counters and the lifecycle signals
//!   (shutdown, lame duck).
//! - [`Client`]: one per connection (client or route), behind an `Arc`: the
//!   bounded outbound queue ([`Outbound`]) other connections deliver to, its
//!   counters and monitoring facts. Connections and subscriptions hold it;
//!   the broker knows nothing else of a connection.
//! - [`Subscription`]: one per SUB (or per route interest, or internal to a
//!   service import), owned by its account's index and by the session that
//!   made it; a SUB that a stream import feeds carries shadows in the
//!   exporters' indexes.
//! - [`Fanout`]: per publisher, owned by its reader: delivers one message to
//!   the plain subscribers, one member of each queue group (local first) and
//!   each interested route once.
//! - [`InternalClient`]: per server task that subscribes and publishes on
//!   the server's behalf (the `$SYS` services, the auth callout), owned by
//!   that task: its subscriptions in named accounts, re-made when an
//!   account is replaced, deliver into bounded [`Inbox`]es.
//!
//! The cluster learns about interest changes through one narrow seam, an
//! [`InterestObserver`] set once at start; the broker never calls into
//! routes otherwise.

pub mod account;
mod audited;
mod client;
mod close;
mod events;
mod fanout;
mod identity;
mod inbox;
mod internal;
mod log_budget;
mod mapping;
mod msg_trace;
mod origin;
mod outbound;
pub mod peer_interest;
mod pending;
mod protocol_trace;
pub mod rate;
mod request_info;
pub mod routed_reply;
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

pub use account::{Account, Accounts};
pub use audited::{audit_conn, Presented};
pub use client::{Client, ClientKind, ClientMeta, ClientStats, LeafRole, TlsMeta};
pub use close::CloseReason;
pub use events::{EventHub, ServerEvent, EVENTS_PER_SECOND};
pub use fanout::{stall_behind, wake_writers, Fanout, Message, STALL};
pub use identity::new_server_key;
pub use inbox::{Announce, Inbox, InboxMsg, RequestBudget, INBOX_CAPACITY, REQUESTS_PER_SECOND};
pub use internal::{Interest, InternalClient};
pub use log_budget::{BudgetKind, Digest, LogBudget, LogLimiter, SourceBudget};
pub use mapping::{mapped, Mapper, Unroutable};
pub use msg_trace::{trace_server, Trace};
pub use origin::{Origin, Via};
pub use outbound::{slice_within, Append, Outbound, ReadBuffer, MAX_WRITE_SEGMENTS, SPLICE_MIN};
pub use pending::{Pending, PendingSlot};
pub use protocol_trace::TraceLevel;
pub use request_info::{ClientInfo, REQUEST_INFO};
pub use routed_reply::{ReplyPaths, RoutedReplies};
pub use router::{Claim, MatchCache, MatchResult, Router, RouterStats, ShadowSpec, SubKind, Subscription};
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
    /// Connections from a trusted proxy closed for a missing, late or
    /// malformed PROXY protocol header.
    pub refused_proxy_headers: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: AtomicU64,
    /// Nanoseconds clients were not read because they were over a publish
    /// rate (`rate_limit`), in all.
    pub rate_held_nanos: AtomicU64,
    /// Client connections closed at accept by the client listener's
    /// `accept_rate` (or `tls { connection_rate_limit }`).
    pub refused_accept_rate_client: AtomicU64,
    /// Likewise on the WebSocket listener.
    pub refused_accept_rate_websocket: AtomicU64,
    /// Likewise on the leafnode listener.
    pub refused_accept_rate_leafnode: AtomicU64,
}

/// [`RouterStats`] of several accounts, added up.
#[derive(Debug, Default, Clone, Copy)]
pub struct IndexTotals {
    /// Subscriptions now.
    pub subscriptions: usize,
    /// Inserts since start.
    pub inserts: u64,
    /// Removes since start.
    pub removes: u64,
    /// Index walks (cache misses).
    pub matches: u64,
    /// Match-cache hits.
    pub cache_hits: u64,
    /// Largest fan-out of one message.
    pub max_fanout: u64,
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

/// Told when interest enters or leaves an account's index (the seam of the
/// cluster and the leaf node hub: they announce interest to their peers,
/// under the subscription's account). Each hears only the interest that
/// may travel to its side ([`Subscription::is_announced_to`]): never a
/// service import's local subject, and never a route's interest to routes.
pub trait InterestObserver: Send + Sync + fmt::Debug {
    /// The side of this server the observer announces to.
    fn side(&self) -> Via;
    /// A subscription entered the index.
    fn interest_added(&self, sub: &Subscription);
    /// A subscription left the index.
    fn interest_removed(&self, sub: &Subscription);
}

/// The interest observers, set once at start.
type Observers = Box<[Weak<dyn InterestObserver>]>;

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
    /// The accounts, each with its subscription index.
    pub accounts: Accounts,
    /// Counters.
    pub stats: ServerStats,
    /// Login and permission counters.
    pub security: SecurityStats,
    /// Rate limit for security log events.
    pub log_budget: LogBudget,
    /// Connection events for the system account's audit stream.
    pub events: EventHub,
    /// The audit trail (`audit {}`); off unless the server starts it.
    pub audit: crate::audit::AuditTrail,
    /// Permission denials recorded a second per source address.
    audit_denials: SourceBudget,
    /// The protocol trace, on or off (a reload changes it).
    pub trace: TraceLevel,
    /// The TLS listeners' certificate files, watched for rotation.
    pub tls_rotation: Arc<crate::tls::Rotation>,
    /// Live clients by id and per address; locked only on connect, close
    /// and monitoring reads.
    registry: Mutex<Registry>,
    /// Told about client interest changes; set once, when clustered. Weak:
    /// the observer (the cluster) holds the broker.
    observers: OnceLock<Observers>,
    next_cid: AtomicU64,
    next_batch: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// Set when lame-duck mode begins.
    lame_duck: AtomicBool,
    /// Where replies routed across gateways go; set once, when the server
    /// runs gateways (unset, the hot path pays one load).
    pub routed_replies: OnceLock<RoutedReplies>,
}

impl Broker {
    /// The state of a server bound at `addr`, with identity `identity`.
    pub fn new(opts: Options, addr: SocketAddr, identity: ServerIdentity) -> Self {
        Broker {
            trace: TraceLevel::new(opts.trace, opts.trace_verbose),
            audit_denials: audited::denial_budget(opts.audit.as_ref()),
            tls_rotation: Arc::default(),
            opts,
            identity,
            addr,
            accounts: Accounts::new(),
            stats: ServerStats::default(),
            security: SecurityStats::default(),
            log_budget: LogBudget::default(),
            events: EventHub::default(),
            audit: crate::audit::AuditTrail::default(),
            registry: Mutex::new(Registry::default()),
            observers: OnceLock::new(),
            next_cid: AtomicU64::new(1),
            next_batch: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
            lame_duck: AtomicBool::new(false),
            routed_replies: OnceLock::new(),
        }
    }

    /// Sets the observers of interest (once; later calls are ignored) and
    /// tells them of the interest already in the indexes (the accounts'
    /// internal subscriptions, made before the cluster started).
    pub fn observe_interest(&self, observers: Vec<Weak<dyn InterestObserver>>) {
        if self.observers.set(observers.into_boxed_slice()).is_err() {
            return;
        }
        let subs = self.all_subscriptions();
        self.tell(|o| {
            for sub in subs.iter().filter(|s| s.is_announced_to(o.side())) {
                o.interest_added(sub);
            }
        });
    }

    /// Calls `f` with every observer still alive.
    fn tell(&self, mut f: impl FnMut(&dyn InterestObserver)) {
        for observer in self.observers.get().into_iter().flatten() {
            if let Some(observer) = observer.upgrade() {
                f(observer.as_ref());
            }
        }
    }

    /// Tells the observers that `sub` entered the index.
    fn announce_added(&self, sub: &Subscription) {
        self.tell(|o| {
            if sub.is_announced_to(o.side()) {
                o.interest_added(sub);
            }
        });
    }

    /// Tells the observers that `sub` left the index.
    fn announce_removed(&self, sub: &Subscription) {
        self.tell(|o| {
            if sub.is_announced_to(o.side()) {
                o.interest_removed(sub);
            }
        });
    }

    /// Adds a subscription, and its shadows, to their accounts' indexes
    /// (and tells the interest observers).
    pub fn add_subscription(&self, sub: Arc<Subscription>) {
        for s in std::iter::once(&sub).chain(sub.shadows()) {
            s.account.router.insert(s.clone());
            self.announce_added(s);
        }
    }

    /// Removes a subscription and its shadows (once; repeated calls do nothing).
    pub fn remove_subscription(&self, sub: &Arc<Subscription>) {
        for s in std::iter::once(sub).chain(sub.shadows()) {
            if s.account.router.remove(s) {
                self.announce_removed(s);
            }
        }
    }

    /// Puts `new` (a renewed copy of `old`: same owner, account, subject
    /// and queue) in `old`'s place without a moment in which neither
    /// receives, and without telling peers anything. Shadows whose
    /// imports stayed the same are swapped the same way; the rest leave and
    /// enter.
    pub fn replace_subscription(&self, old: &Arc<Subscription>, new: Arc<Subscription>) {
        if !old.account.router.replace(old, new.clone()) {
            // `old` was gone already (UNSUB raced the reload): nothing to renew.
            return;
        }
        let same = |a: &Arc<Subscription>, b: &Arc<Subscription>| {
            Arc::ptr_eq(&a.account, &b.account) && a.subject == b.subject
        };
        let mut fresh: Vec<&Arc<Subscription>> = new.shadows().iter().collect();
        for shadow in old.shadows() {
            match fresh.iter().position(|n| same(shadow, n)) {
                Some(i) => {
                    let n = fresh.swap_remove(i);
                    shadow.account.router.replace(shadow, n.clone());
                }
                None => {
                    if shadow.account.router.remove(shadow) {
                        self.announce_removed(shadow);
                    }
                }
            }
        }
        for shadow in fresh {
            shadow.account.router.insert(shadow.clone());
            self.announce_added(shadow);
        }
    }

    /// Makes the accounts what `opts` describes (at start and on reload):
    /// see [`Accounts::apply`]. Service imports that went away leave the
    /// indexes, new ones enter; accounts that went away are dropped (their
    /// connections close when they next check their login).
    pub fn configure_accounts(&self, opts: &Options) -> Result<(), crate::config::AccountsError> {
        let changes = self.accounts.apply(opts)?;
        for sub in &changes.removed {
            self.remove_subscription(sub);
        }
        for sub in changes.added {
            self.add_subscription(sub);
        }
        Ok(())
    }

    /// Subscriptions in every account's index.
    pub fn subscription_count(&self) -> usize {
        self.accounts.all().iter().map(|a| a.router.len()).sum()
    }

    /// The index counters of `accounts` added up (for monitoring).
    pub fn index_totals(accounts: &[Arc<Account>]) -> IndexTotals {
        let mut t = IndexTotals::default();
        for a in accounts {
            let s = &a.router.stats;
            t.subscriptions += a.router.len();
            t.inserts += s.inserts.load(Ordering::Relaxed);
            t.removes += s.removes.load(Ordering::Relaxed);
            t.matches += s.matches.load(Ordering::Relaxed);
            t.cache_hits += s.cache_hits.load(Ordering::Relaxed);
            t.max_fanout = t.max_fanout.max(s.max_fanout.load(Ordering::Relaxed));
        }
        t
    }

    /// Every subscription of every account (for monitoring).
    pub fn all_subscriptions(&self) -> Vec<Arc<Subscription>> {
        self.accounts.all().iter().flat_map(|a| a.router.subscriptions()).collect()
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
        let source = crate::cidr::source(addr.ip());
        let from_ip = registry.per_ip.get(&source).copied().unwrap_or(0);
        if per_ip > 0 && from_ip >= per_ip {
            return Err(Refusal::MaxConnectionsPerIp);
        }
        let client = Arc::new(Client::new(cid, addr, self.opts.max_pending));
        registry.clients.insert(cid, client.clone());
        *registry.per_ip.entry(source).or_insert(0) += 1;
        self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        Ok(client)
    }

    /// Forgets a closed client.
    pub fn unregister(&self, client: &Client) {
        let mut registry = self.registry.lock();
        if registry.clients.remove(&client.id).is_none() {
            return;
        }
        let ip = crate::cidr::source(client.addr.ip());
        if let Some(count) = registry.per_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                registry.per_ip.remove(&ip);
            }
        }
    }

    /// The live client with connection id `cid`.
    pub fn client(&self, cid: u64) -> Option<Arc<Client>> {
        self.registry.lock().clients.get(&cid).cloned()
    }

    /// Turns the protocol trace on or off, for the live clients too (a
    /// reload); whether it changed. Routes and leaf connections are the
    /// cluster's and the hub's to update.
    pub fn set_trace(&self, on: bool, verbose: bool) -> bool {
        if !self.trace.set(on, verbose) {
            return false;
        }
        let system = self.accounts.system();
        for client in self.clients() {
            let account = client.meta.lock().account.clone();
            let in_system = system.as_ref().is_some_and(|s| account.as_deref() == Some(&*s.name));
            client.set_traced(self.trace.traces(in_system));
        }
        true
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
