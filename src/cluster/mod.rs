//! Clustering: full-mesh routes speaking nats-server 2.9's route protocol.
//!
//! Each server listens for routes (`cluster { listen }`) and solicits the
//! configured `routes`. Over a route, each side sends INFO (the solicitor
//! CONNECT first), then its local interest as `RS+`/`RS-`, each line naming
//! its account; remote interest becomes subscriptions owned by the route in
//! that account's index, so a local publish reaches each interested route
//! once, as `RMSG` in the same account. Interest and messages of an account
//! this server does not host are dropped. A message from a
//! route is delivered to local subscribers only (one hop, no loops); queue
//! groups prefer local members and name the groups a route should serve.
//! A new route's INFO is forwarded to the other routes (gossip), and servers
//! connect to peers they learn of from an established (so authenticated)
//! route, so the mesh completes itself from one seed. A server this node
//! knows of and cannot reach is logged and listed in `/routez`: a partial
//! mesh loses messages, so it is never silent. Clients learn the cluster's
//! client URLs through INFO `connect_urls`.
//!
//! With `cluster { permissions }`, routes hear only of imported interest,
//! their interest is accepted only where exported, and their messages only
//! on imported subjects (`permissions.rs`).
//!
//! Lock order: `interest` before `routes`; neither is held across IO.

mod credentials;
mod limits;
mod link;
mod permissions;
mod route;
mod session;
mod solicit;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use crate::auth::password::PasswordHash;
use crate::auth::{Guard, RefusalReason};
use crate::broker::{Broker, InterestObserver, Subscription, Via};
use crate::config::ClusterOptions;
use crate::proto::route::{json_line, rs_minus, rs_plus, InterestTo, RouteConnect, RouteInfo};
pub(crate) use credentials::RouteCredentials;
pub(crate) use session::{Accepted, RouteLogin};

pub use limits::{
    MAX_CONNECT_URLS, MAX_GOSSIPED_ROUTES, MAX_PEER_CONNECT_URLS, MAX_PENDING_ROUTES, MAX_PENDING_ROUTES_PER_IP,
    MAX_REMOTE_INTEREST, MAX_REMOTE_INTEREST_BYTES, MAX_ROUTES, MAX_UNREACHABLE, ROUTE_AUTH_TIMEOUT, SETTLED_ROUTE,
};
pub use link::{RouteLink, Slot};
pub use solicit::RouteUrl;

/// Why the cluster could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterError {
    /// The route listener could not be bound.
    Bind(std::io::Error),
    /// A route URL in the config is not `nats-route://[user:pass@]host:port`.
    BadUrl(String),
    /// The route password cannot be used.
    Password(String),
    /// The route TLS material cannot be used.
    Tls(crate::tls::TlsError),
    /// `cluster { permissions }` cannot be compiled.
    Permissions(crate::perms::PermsError),
    /// Neither route authentication nor route TLS is configured, and the
    /// operator did not opt out explicitly.
    Unauthenticated,
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Bind(e) => write!(f, "cannot listen for routes: {e}"),
            ClusterError::BadUrl(u) => write!(f, "route URL {u:?} is not nats-route://[user:pass@]host:port"),
            ClusterError::Password(e) => write!(f, "route password: {e}"),
            ClusterError::Tls(e) => write!(f, "route TLS: {e}"),
            ClusterError::Permissions(e) => write!(f, "cluster permissions: {e}"),
            ClusterError::Unauthenticated => f.write_str(crate::config::UNAUTHENTICATED_ROUTES),
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Bind(e) => Some(e),
            ClusterError::Tls(e) => Some(e),
            ClusterError::Permissions(e) => Some(e),
            ClusterError::BadUrl(_) | ClusterError::Password(_) | ClusterError::Unauthenticated => None,
        }
    }
}

/// Why a route URL is dialled.
#[derive(Debug, Clone)]
pub(crate) enum Dial {
    /// Listed in `routes`: retried for as long as the server runs.
    Configured,
    /// Named in the INFO of an established route, so by a peer that holds
    /// the route credentials (or the TLS identity) it is dialled with: tried
    /// `connect_retries` times (at least 3), then given up.
    Gossiped {
        /// The server the peer said is there.
        server_id: String,
        /// Its name.
        server_name: String,
    },
    /// One more connection to a pooling peer this server reached by the
    /// URL: dialled while that peer has a route, until the slot is taken.
    Pooled {
        /// The peer.
        server_id: String,
        /// Which connection.
        target: Target,
    },
}

impl Dial {
    /// Which connection to the peer a dial opens.
    pub(crate) fn target(&self) -> Target {
        match self {
            Dial::Pooled { target, .. } => target.clone(),
            Dial::Configured | Dial::Gossiped { .. } => Target::Pool(None),
        }
    }
}

/// Which connection to a peer this server dials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A pool connection (or the only one, to a peer that does not pool):
    /// the given place in the pool, else the first free one.
    Pool(Option<usize>),
    /// A pinned account's connection.
    Account(Arc<str>),
}

/// A server this node knows of (configured or gossiped) and cannot reach.
#[derive(Debug, Clone)]
pub struct Unreachable {
    /// The route URL dialled (`nats-route://host:port/`, no credentials).
    pub url: String,
    /// The server's id, when a peer named it.
    pub server_id: Option<String>,
    /// The server's name, when a peer named it.
    pub server_name: Option<String>,
    /// Failed attempts in a row.
    pub attempts: u32,
    /// When the first of them failed.
    pub since: SystemTime,
    /// Whether this node stopped dialling it (a gossiped route after its
    /// retries); it is listed until a route to that server is established.
    pub gave_up: bool,
}

pub(crate) use crate::broker::peer_interest::InterestKey;

/// The connections to one peer server.
#[derive(Debug, Default)]
struct Peer {
    /// Pool connections by place; one, at 0, to a peer that does not pool
    /// ([`Slot::Single`]).
    pool: Vec<Option<Arc<RouteLink>>>,
    /// Pinned accounts' connections.
    pinned: HashMap<Arc<str>, Arc<RouteLink>>,
}

impl Peer {
    fn links(&self) -> impl Iterator<Item = &Arc<RouteLink>> {
        self.pool.iter().flatten().chain(self.pinned.values())
    }

    fn is_empty(&self) -> bool {
        self.links().next().is_none()
    }

    /// The connection registered in `slot`'s place.
    fn at(&self, slot: &Slot) -> Option<&Arc<RouteLink>> {
        match slot {
            Slot::Single => self.pool.first()?.as_ref(),
            Slot::Pool(n) => self.pool.get(*n)?.as_ref(),
            Slot::Account(account) => self.pinned.get(account),
        }
    }

    /// Puts `link` in its place (which the caller found free).
    fn put(&mut self, link: Arc<RouteLink>) {
        let n = match &link.slot {
            Slot::Single => 0,
            Slot::Pool(n) => *n,
            Slot::Account(account) => {
                self.pinned.insert(account.clone(), link);
                return;
            }
        };
        if self.pool.len() <= n {
            self.pool.resize(n + 1, None);
        }
        self.pool[n] = Some(link);
    }

    /// Removes `link` if it is the one in its place; returns whether it was.
    fn take(&mut self, link: &Arc<RouteLink>) -> bool {
        match &link.slot {
            Slot::Account(account) => match self.pinned.get(account) {
                Some(current) if Arc::ptr_eq(current, link) => self.pinned.remove(account).is_some(),
                _ => false,
            },
            Slot::Single | Slot::Pool(_) => {
                let n = if let Slot::Pool(n) = link.slot { n } else { 0 };
                match self.pool.get_mut(n) {
                    Some(place) if place.as_ref().is_some_and(|c| Arc::ptr_eq(c, link)) => place.take().is_some(),
                    _ => false,
                }
            }
        }
    }

    /// Whether the peer does not pool: one connection carries everything.
    fn single(&self) -> bool {
        matches!(self.pool.first(), Some(Some(link)) if link.slot == Slot::Single)
    }
}

/// nats-server's account-to-pool placement: FNV-1a (32 bits) of the
/// account name modulo the pool size, the same on every server of the
/// same pool size.
pub(crate) fn pool_index(pool_size: usize, account: &str) -> usize {
    if pool_size <= 1 {
        return 0;
    }
    let mut hash: u32 = 0x811c_9dc5;
    for byte in account.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % pool_size as u32) as usize
}

/// The cluster state of one server.
#[derive(Debug)]
pub struct Cluster {
    broker: Arc<Broker>,
    /// Throttle and verification pool for route logins.
    guard: Guard,
    /// The `cluster {}` options.
    pub opts: ClusterOptions,
    /// Bound route listen address.
    pub listen_addr: SocketAddr,
    /// Credentials a peer must present in its route CONNECT.
    route_auth: Option<RouteCredentials>,
    /// `permissions { import, export }`: `None` lets everything cross.
    rules: Option<permissions::RouteRules>,
    /// Local client interest, reference-counted per account, subject (and queue).
    interest: Mutex<HashMap<InterestKey, u32>>,
    /// Established routes by remote server id.
    routes: Mutex<HashMap<String, Peer>>,
    /// Accounts with a connection of their own to each pooling peer: the
    /// configured ones and the system account (nats-server's rule), none
    /// when this server does not pool.
    pinned: Vec<Arc<str>>,
    /// Route URLs (`host:port`) with a soliciting task running (dedupe for
    /// gossip), each saying whether it was learned by gossip.
    soliciting: Mutex<HashMap<String, bool>>,
    /// Servers known and not reachable, by route URL; at most
    /// [`MAX_UNREACHABLE`].
    unreachable: Mutex<HashMap<String, Unreachable>>,
    /// Signalled whenever a route comes or goes.
    pub(crate) changed: Notify,
    /// Bumped when the client URLs this server offers change; the server
    /// sends its clients a new INFO then.
    client_urls: watch::Sender<u64>,
    /// TLS for routes (both directions), when `cluster { tls }` is set.
    /// `Some` with route TLS; its certificates rotate (see [`Cluster::tls`]).
    tls: Option<RwLock<RouteTls>>,
    /// Accepted route connections that have not authenticated yet.
    pending: Arc<crate::broker::Pending>,
    /// This server's gateway URL, once its gateways started.
    gateway_url: std::sync::OnceLock<String>,
    /// Bumped when the cluster's gateway URLs may have changed.
    gateway_urls: watch::Sender<u64>,
    /// This server's gateways, once started: they hear the gateway gossip
    /// of routes and greet new routes with their own. Weak: the gateways
    /// hold the cluster.
    gateways: std::sync::OnceLock<std::sync::Weak<dyn ClusterGateways>>,
}

/// What the cluster asks of this server's gateways (the seam that keeps
/// the cluster from knowing the gateway module).
pub(crate) trait ClusterGateways: Send + Sync + std::fmt::Debug {
    /// Another server of the cluster has a gateway to cluster `gateway`,
    /// reachable at `urls`.
    fn gossiped(&self, gateway: &str, urls: &[String]);
    /// What a newly registered route is told: a gossip line for every
    /// gateway this server has.
    fn greeting(&self) -> Vec<u8>;
}

/// Route TLS: every route is TLS from its first byte, verified both ways
/// against the cluster's `ca_file`.
#[derive(Clone)]
pub(crate) struct RouteTls {
    /// For accepted routes.
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    /// For solicited routes.
    pub(crate) connector: tokio_rustls::TlsConnector,
    /// Handshake deadline.
    pub(crate) timeout: std::time::Duration,
    /// What it presents, for logs and monitoring.
    pub(crate) certificates: Vec<crate::tls::CertInfo>,
}

/// How an inbound handshake on a server port ended without a connection.
pub(crate) enum HandshakeEnd {
    /// It failed or took too long.
    Failed,
    /// A newer connection took its pending slot.
    GaveWay,
}

impl RouteTls {
    /// The TLS handshake of an inbound server connection (a route, a
    /// gateway) within the handshake deadline, unless a newer connection
    /// takes its pending slot first; with the names in the certificate the
    /// peer presented.
    pub(crate) async fn accept(
        &self,
        stream: tokio::net::TcpStream,
        slot: &crate::broker::PendingSlot,
    ) -> Result<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, Option<crate::tls::PeerIdentity>), HandshakeEnd>
    {
        match slot.unless_evicted(tokio::time::timeout(self.timeout, self.acceptor.accept(stream))).await {
            Some(Ok(Ok(stream))) => {
                let chain = stream.get_ref().1.peer_certificates();
                let identity = chain.and_then(|c| c.first()).and_then(|c| crate::tls::PeerIdentity::from_der(c));
                Ok((stream, identity))
            }
            Some(_) => Err(HandshakeEnd::Failed),
            None => Err(HandshakeEnd::GaveWay),
        }
    }
}

impl std::fmt::Debug for RouteTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTls").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Loads route TLS: the server side requires and verifies the peer's
/// certificate, the client side verifies the peer against `ca_file`.
pub(crate) fn route_tls(opts: &ClusterOptions) -> Result<Option<RouteTls>, ClusterError> {
    peer_tls(opts.tls.as_ref(), "route").map_err(ClusterError::Tls)
}

/// TLS between servers (`what`: routes, gateways), verified both ways
/// against `ca_file`.
pub(crate) fn peer_tls(
    tls: Option<&crate::config::TlsOptions>,
    what: &str,
) -> Result<Option<RouteTls>, crate::tls::TlsError> {
    let Some(tls) = tls else { return Ok(None) };
    if tls.ca_file.is_none() {
        return Err(crate::tls::TlsError::Config(format!("{what} TLS needs ca_file to verify peers")));
    }
    let server_opts = crate::config::TlsOptions { verify: true, ..tls.clone() };
    let server = crate::tls::load_server_config(&server_opts)?;
    let client = crate::tls::load_client_config(tls)?;
    Ok(Some(RouteTls {
        acceptor: tokio_rustls::TlsAcceptor::from(server.config),
        connector: tokio_rustls::TlsConnector::from(client),
        timeout: tls.timeout,
        certificates: server.certificates,
    }))
}

impl Cluster {
    /// Route TLS as it is now (certificates rotate), when routes use TLS.
    pub(crate) fn tls(&self) -> Option<RouteTls> {
        self.tls.as_ref().map(|t| t.read().clone())
    }

    /// Registers the route TLS files for rotation: both the acceptor and
    /// the connector (which presents the same certificate) are rebuilt.
    fn watch_certificates(self: &Arc<Self>) {
        let (Some(current), Some(opts)) = (self.tls(), self.opts.tls.as_ref()) else { return };
        let cluster = Arc::downgrade(self);
        let watched = self.opts.clone();
        let reload: crate::tls::Reload = Arc::new(move || {
            let cluster = cluster.upgrade().ok_or("the cluster is gone")?;
            let fresh = route_tls(&watched).map_err(|e| e.to_string())?.ok_or("route TLS is off")?;
            let certificates = fresh.certificates.clone();
            if let Some(tls) = &cluster.tls {
                *tls.write() = fresh;
            }
            Ok(certificates)
        });
        self.broker.tls_rotation.watch("cluster", opts.files(), current.certificates, reload);
    }

    /// Binds the route listener and starts accepting and soliciting routes.
    pub async fn start(broker: Arc<Broker>, guard: Guard, opts: ClusterOptions) -> Result<Arc<Cluster>, ClusterError> {
        let urls: Vec<RouteUrl> = opts
            .routes
            .iter()
            .map(|u| RouteUrl::parse(u).ok_or_else(|| ClusterError::BadUrl(u.clone())))
            .collect::<Result<_, _>>()?;
        let listener = TcpListener::bind((opts.host.as_str(), opts.port)).await.map_err(ClusterError::Bind)?;
        let listen_addr = listener.local_addr().map_err(ClusterError::Bind)?;
        let cluster = Cluster::new(broker, guard, opts, listen_addr)?;
        cluster.watch_certificates();
        info!("Listening for route connections on {listen_addr}");
        tokio::spawn(route::accept_loop(cluster.clone(), listener));
        for url in urls {
            cluster.solicit(url, Dial::Configured);
        }
        Ok(cluster)
    }

    /// The cluster state of a server whose route listener is bound to
    /// `listen_addr`, with nothing started: no task, no socket (the route
    /// session's unit tests use it as it is).
    pub(crate) fn new(
        broker: Arc<Broker>,
        guard: Guard,
        opts: ClusterOptions,
        listen_addr: SocketAddr,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let route_auth = match &opts.authorization {
            Some(a) => Some(RouteCredentials {
                user: a.user.clone(),
                password: match &a.password {
                    Some(p) => {
                        Some(PasswordHash::parse(p.expose()).map_err(|e| ClusterError::Password(e.to_string()))?)
                    }
                    None => None,
                },
                certificate: opts.tls.as_ref().is_some_and(|t| t.verify_and_map),
                spiffe: opts.tls.as_ref().and_then(|t| t.spiffe_trust_domain.clone()),
            }),
            None => None,
        };
        let tls = route_tls(&opts)?;
        let rules = permissions::RouteRules::compile(opts.permissions.as_ref()).map_err(ClusterError::Permissions)?;
        if route_auth.is_none() && tls.is_none() {
            if !opts.allow_unauthenticated {
                if !crate::config::open_loopback_listener(&broker.opts, &opts.host) {
                    return Err(ClusterError::Unauthenticated);
                }
                warn!("{}", crate::config::OPEN_LOOPBACK_ROUTES);
            } else {
                warn!(
                    "cluster routes are NOT authenticated (insecure_allow_unauthenticated_routes): anyone who reaches \
                 the cluster port can read and inject every message; use only on a trusted loopback network"
                );
            }
        }
        let mut pinned: Vec<Arc<str>> = Vec::new();
        if opts.pool_size > 0 {
            let system = broker.opts.system_account.iter();
            for name in opts.pinned_accounts.iter().chain(system) {
                if !pinned.iter().any(|p| **p == **name) {
                    pinned.push(name.as_str().into());
                }
            }
        }
        Ok(Arc::new(Cluster {
            pinned,
            broker,
            guard,
            opts,
            listen_addr,
            route_auth,
            rules,
            interest: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            soliciting: Mutex::new(HashMap::new()),
            unreachable: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            client_urls: watch::channel(0).0,
            tls: tls.map(RwLock::new),
            pending: Arc::new(crate::broker::Pending::new(
                limits::MAX_PENDING_ROUTES,
                limits::MAX_PENDING_ROUTES_PER_IP,
            )),
            gateway_url: std::sync::OnceLock::new(),
            gateway_urls: watch::channel(0).0,
            gateways: std::sync::OnceLock::new(),
        }))
    }

    /// Starts soliciting `url` unless a task already does. At most
    /// [`MAX_GOSSIPED_ROUTES`] URLs learned by gossip are dialled (or routed
    /// to) at once; gossip past that is dropped and logged.
    pub(crate) fn solicit(self: &Arc<Self>, url: RouteUrl, dial: Dial) {
        let gossiped = matches!(dial, Dial::Gossiped { .. });
        let key = solicit_key(&url, &dial);
        {
            let mut soliciting = self.soliciting.lock();
            if soliciting.contains_key(&key) {
                return;
            }
            if gossiped && soliciting.values().filter(|g| **g).count() >= MAX_GOSSIPED_ROUTES {
                drop(soliciting);
                if self.broker.log_budget.allow() {
                    warn!(url = %url.key(), "route: too many gossiped routes; not dialling this one");
                }
                return;
            }
            soliciting.insert(key, gossiped);
        }
        tokio::spawn(solicit::solicit_loop(self.clone(), url, dial));
    }

    /// Route URLs learned by gossip that are dialled or routed to now.
    pub fn gossiped_routes(&self) -> usize {
        self.soliciting.lock().values().filter(|g| **g).count()
    }

    /// Records the `failures`th failed attempt in a row to reach `url`: the
    /// first of a run and giving up are logged as warnings, and the server
    /// is listed in `/routez` until a route to it is established. The count
    /// is the dialler's, so it survives a route that came up only until the
    /// peer refused its login.
    pub(crate) fn dial_failed(&self, url: &RouteUrl, dial: &Dial, failures: u32, gave_up: bool) {
        let (server_id, server_name) = match dial {
            Dial::Configured => (None, None),
            Dial::Gossiped { server_id, server_name } => (Some(server_id.clone()), Some(server_name.clone())),
            Dial::Pooled { server_id, .. } => (Some(server_id.clone()), None),
        };
        let route_url = url.route_url();
        let attempts = {
            let mut unreachable = self.unreachable.lock();
            if !unreachable.contains_key(&route_url) && unreachable.len() >= MAX_UNREACHABLE {
                None
            } else {
                let entry = unreachable.entry(route_url.clone()).or_insert_with(|| Unreachable {
                    url: route_url.clone(),
                    server_id: server_id.clone(),
                    server_name: server_name.clone(),
                    attempts: 0,
                    since: SystemTime::now(),
                    gave_up: false,
                });
                entry.attempts = failures;
                entry.gave_up = gave_up;
                Some(entry.attempts)
            }
        };
        let server = server_name.or(server_id).unwrap_or_default();
        if gave_up {
            warn!(url = %route_url, %server, "route: giving up on a server the cluster knows of; the mesh is partial");
        } else if attempts == Some(1) || (attempts.is_none() && self.broker.log_budget.allow()) {
            warn!(url = %route_url, %server, "route: cannot reach a known server; retrying");
        }
    }

    /// Forgets that `url` was unreachable: a route to its server is up
    /// (this dial lost the tie-break to the server's own).
    pub(crate) fn reached(&self, url: &RouteUrl) {
        self.unreachable.lock().remove(&url.route_url());
    }

    /// The servers this node knows of and cannot reach.
    pub fn unreachable(&self) -> Vec<Unreachable> {
        self.unreachable.lock().values().cloned().collect()
    }

    /// Forgets that `url` is being solicited by `dial`.
    pub(crate) fn solicit_done(&self, url: &RouteUrl, dial: &Dial) {
        self.soliciting.lock().remove(&solicit_key(url, dial));
    }

    /// Whether routes are told of local interest in `subject`, so send
    /// messages on it here (`import`).
    fn imports(&self, subject: &[u8]) -> bool {
        self.rules.as_ref().is_none_or(|r| r.imports(subject))
    }

    /// Whether a route's interest in `subject` is accepted (`export`), and
    /// the filter its deliveries go through.
    pub(crate) fn exports(&self, subject: &[u8]) -> Option<Option<crate::perms::DenyFilter>> {
        match &self.rules {
            Some(r) => r.exports(subject),
            None => Some(None),
        }
    }

    /// Route connections this server keeps to each pooling peer; 0 when
    /// it does not pool.
    pub(crate) fn pool_size(&self) -> usize {
        self.opts.pool_size as usize
    }

    /// Whether `account` has connections of its own.
    pub(crate) fn is_pinned(&self, account: &str) -> bool {
        self.pinned.iter().any(|p| **p == *account)
    }

    /// Whether a connection in `slot` carries `account`'s interest.
    fn carries(&self, slot: &Slot, account: &str) -> bool {
        match slot {
            Slot::Single => true,
            Slot::Pool(n) => !self.is_pinned(account) && pool_index(self.pool_size(), account) == *n,
            Slot::Account(pinned) => **pinned == *account,
        }
    }

    /// The connection to `peer` that carries `account`'s interest, if it
    /// is up (a missing one gets all of it when it comes).
    fn link_for<'p>(&self, peer: &'p Peer, account: &str) -> Option<&'p Arc<RouteLink>> {
        if peer.single() {
            return peer.at(&Slot::Single);
        }
        if self.is_pinned(account) {
            return peer.pinned.get(account);
        }
        peer.pool.get(pool_index(self.pool_size(), account))?.as_ref()
    }

    /// The connection carrying `account` to the peer whose server id
    /// `is` picks (a reply routed back across a gateway to that server).
    pub(crate) fn route_to(&self, is: impl Fn(&str) -> bool, account: &str) -> Option<Arc<crate::broker::Client>> {
        let routes = self.routes.lock();
        let peer = routes.iter().find(|(id, _)| is(id)).map(|(_, p)| p)?;
        self.link_for(peer, account).map(|l| l.client.clone())
    }

    /// Sends each peer an interest line for `account` on the connection
    /// that carries it, written by `line` for that connection's form.
    fn announce(&self, account: &str, line: impl Fn(InterestTo<'_>) -> Vec<u8>) {
        let (mut named, mut bare) = (None, None);
        for peer in self.routes.lock().values() {
            let Some(link) = self.link_for(peer, account) else { continue };
            let bytes = match link.slot {
                Slot::Account(_) => bare.get_or_insert_with(|| line(InterestTo::PinnedRoute)),
                _ => named.get_or_insert_with(|| line(InterestTo::Route(account.as_bytes()))),
            };
            link.client.send(bytes);
        }
    }

    /// The first free place in the pool of connections to `remote_id`
    /// (of `size` places), for a connection this server dialled.
    pub(crate) fn free_pool_place(&self, remote_id: &str, size: usize) -> Option<usize> {
        let routes = self.routes.lock();
        let Some(peer) = routes.get(remote_id) else { return Some(0) };
        (0..size).find(|n| peer.pool.get(*n).is_none_or(Option::is_none))
    }

    /// After this server's first pool connection to `remote_id` (dialled by
    /// `url`) is up: dials the pool's other places (of `size`) and the
    /// pinned accounts' connections that are not up yet.
    pub(crate) fn complete_pool(self: &Arc<Self>, url: &RouteUrl, remote_id: &str, size: usize) {
        let mut targets = Vec::new();
        {
            let routes = self.routes.lock();
            let Some(peer) = routes.get(remote_id) else { return };
            for n in (0..size).filter(|n| peer.pool.get(*n).is_none_or(Option::is_none)) {
                targets.push(Target::Pool(Some(n)));
            }
            for account in self.pinned.iter().filter(|a| !peer.pinned.contains_key(*a)) {
                targets.push(Target::Account(account.clone()));
            }
        }
        for target in targets {
            self.solicit(url.clone(), Dial::Pooled { server_id: remote_id.to_owned(), target });
        }
    }

    /// Registers an established route, unless one to the same server in
    /// the same place (the same pool place or pinned account, or the only
    /// connection) exists. A settled route (older than [`SETTLED_ROUTE`])
    /// is always kept and the newcomer refused, so a peer that claims
    /// another server's id cannot disturb the real route. Two fresh routes
    /// in one place (the servers dialled each other at once) keep the one
    /// solicited by the smaller server id, on both sides. At most
    /// [`MAX_ROUTES`] peers. On success, sends the peer the local interest
    /// this connection carries (under the interest lock, so no change is
    /// lost or reordered). Returns whether it was kept.
    pub(crate) fn register(&self, link: Arc<RouteLink>, our_id: &str) -> bool {
        let interest = self.interest.lock();
        let mut routes = self.routes.lock();
        let new_peer = routes.get(&link.remote_id).is_none_or(Peer::is_empty);
        if new_peer && !routes.contains_key(&link.remote_id) && routes.len() >= MAX_ROUTES {
            return false;
        }
        let peer = routes.entry(link.remote_id.clone()).or_default();
        if let Some(existing) = peer.at(&link.slot) {
            let new_wins = link.solicited == (our_id < link.remote_id.as_str());
            if existing.age() >= SETTLED_ROUTE || !new_wins {
                return false;
            }
            existing.client.outbound.close(crate::broker::CloseReason::ProtocolViolation);
        }
        if let Slot::Account(_) = link.slot {
            link.client.set_pinned_route();
        }
        let mut lines = Vec::new();
        for ((account, subject, queue), count) in interest.iter().filter(|((_, s, _), _)| self.imports(s)) {
            if self.carries(&link.slot, account) {
                let to = match link.slot {
                    Slot::Account(_) => InterestTo::PinnedRoute,
                    _ => InterestTo::Route(account.as_bytes()),
                };
                lines.extend_from_slice(&rs_plus(to, subject, queue.as_deref(), *count));
            }
        }
        link.client.send(&lines);
        peer.put(link.clone());
        let others: Vec<Arc<RouteLink>> = match new_peer {
            true => routes.values().filter_map(|p| p.links().next().cloned()).collect(),
            false => Vec::new(),
        };
        drop(routes);
        drop(interest);
        self.unreachable.lock().retain(|url, u| {
            !(link.solicited && *url == link.route_url) && u.server_id.as_deref() != Some(link.remote_id.as_str())
        });
        // Gossip: tell the others about the newcomer.
        let gossip = link.gossip_info_line();
        for other in others.iter().filter(|o| o.remote_id != link.remote_id) {
            other.client.send(&gossip);
        }
        if let Some(gateways) = self.gateways.get().and_then(std::sync::Weak::upgrade) {
            link.client.send(&gateways.greeting());
        }
        self.changed.notify_waiters();
        self.topology_changed();
        self.gateway_urls_changed();
        true
    }

    /// Forgets a route that closed (if it is still the registered one).
    pub(crate) fn unregister(&self, link: &Arc<RouteLink>) {
        let removed = {
            let mut routes = self.routes.lock();
            let removed = routes.get_mut(&link.remote_id).is_some_and(|peer| peer.take(link));
            if routes.get(&link.remote_id).is_some_and(Peer::is_empty) {
                routes.remove(&link.remote_id);
            }
            removed
        };
        if removed {
            self.changed.notify_waiters();
            self.topology_changed();
            self.gateway_urls_changed();
        }
    }

    /// Whether a route to server `id` is established.
    pub fn has_route(&self, id: &str) -> bool {
        self.routes.lock().get(id).is_some_and(|peer| !peer.is_empty())
    }

    /// Accepted route connections that have not authenticated yet.
    pub fn pending_routes(&self) -> usize {
        self.pending.count()
    }

    /// Number of servers this one has routes to.
    pub fn route_count(&self) -> usize {
        self.routes.lock().values().filter(|peer| !peer.is_empty()).count()
    }

    /// The established route connections (several per pooling peer).
    pub fn routes(&self) -> Vec<Arc<RouteLink>> {
        self.routes.lock().values().flat_map(Peer::links).cloned().collect()
    }

    /// Client URLs of this server and every peer, for INFO `connect_urls`
    /// (empty with `no_advertise`).
    pub fn connect_urls(&self) -> Vec<String> {
        if self.opts.no_advertise {
            return Vec::new();
        }
        let mut urls = vec![self.broker.addr.to_string()];
        for link in self.routes.lock().values().filter_map(|peer| peer.links().next()) {
            for url in link.connect_urls() {
                if urls.len() < MAX_CONNECT_URLS && !urls.contains(&url) {
                    urls.push(url);
                }
            }
        }
        urls
    }

    /// Tells the server that the client URLs may have changed (it then
    /// sends protocol-1 clients a new INFO).
    fn topology_changed(&self) {
        if !self.opts.no_advertise {
            self.client_urls.send_modify(|n| *n += 1);
        }
    }

    /// A receiver that changes when the client URLs may have changed.
    pub fn client_urls_signal(&self) -> watch::Receiver<u64> {
        self.client_urls.subscribe()
    }

    /// Tells every peer that this server entered lame-duck mode (its route
    /// INFO with `"ldm":true`, as nats-server sends), so they stop offering
    /// its client URL to their clients.
    pub(crate) fn announce_lame_duck(&self) {
        let mut info = self.our_info();
        info.ldm = true;
        let line = json_line("INFO", &info);
        for link in self.routes() {
            link.client.send(&line);
        }
    }

    /// This server's route INFO.
    pub(crate) fn our_info(&self) -> RouteInfo {
        let broker = &self.broker;
        RouteInfo {
            server_id: broker.identity.id.clone(),
            server_name: broker.identity.name.clone(),
            version: crate::proto::NATS_VERSION.into(),
            // A peer that traces messages (nats-server's `MsgTraceProto`):
            // nats-server peers then send traced messages on with their hop.
            proto: crate::proto::msg_trace::PROTO,
            host: self.listen_addr.ip().to_string(),
            port: self.listen_addr.port(),
            headers: true,
            auth_required: self.route_auth.is_some(),
            tls_required: self.tls.is_some(),
            max_payload: broker.opts.max_payload,
            cluster: self.opts.name.clone().unwrap_or_default(),
            connect_urls: if self.opts.no_advertise { Vec::new() } else { vec![broker.addr.to_string()] },
            ip: String::new(),
            lnoc: true,
            ldm: false,
            route_pool_size: i64::from(self.opts.pool_size),
            route_pool_idx: 0,
            route_account: String::new(),
            gateway_url: self.gateway_url.get().cloned().unwrap_or_default(),
            gateway: String::new(),
            gateway_urls: Vec::new(),
            gateway_cmd: 0,
        }
    }

    /// The route INFO that tells the other servers of this cluster of a
    /// gateway this one has (nats-server's form: server id `GW<id>`, so a
    /// server that does not know the command sees no route to make).
    pub(crate) fn gateway_gossip_line(&self, gateway: &str, urls: Vec<String>) -> Vec<u8> {
        let info = RouteInfo {
            server_id: format!("GW{}", self.broker.identity.id),
            gateway: gateway.to_owned(),
            gateway_urls: urls,
            gateway_cmd: crate::proto::route::gateway::CMD_GOSSIP,
            ..RouteInfo::default()
        };
        json_line("INFO", &info)
    }

    /// Sends `line` to every route.
    pub(crate) fn tell_routes(&self, line: &[u8]) {
        for link in self.routes() {
            link.client.send(line);
        }
    }

    /// Joins this server's gateways to the cluster (once, at their start).
    pub(crate) fn join_gateways(&self, gateways: std::sync::Weak<dyn ClusterGateways>) {
        let _ = self.gateways.set(gateways);
    }

    /// A route told of a gateway it has: passed to the gateways, if any.
    pub(crate) fn gateway_gossip(&self, gateway: &str, urls: &[String]) {
        if let Some(gateways) = self.gateways.get().and_then(std::sync::Weak::upgrade) {
            gateways.gossiped(gateway, urls);
        }
    }

    /// Sets this server's gateway URL, which its route INFO names from now
    /// on (gateways start after the cluster), and tells the routes already
    /// up.
    pub(crate) fn set_gateway_url(&self, url: String) {
        if self.gateway_url.set(url).is_ok() {
            let line = json_line("INFO", &self.our_info());
            for link in self.routes() {
                link.client.send(&line);
            }
        }
    }

    /// The routes, or a peer's gateway URL, changed: the gateways tell the
    /// other clusters this cluster's URLs again.
    pub(crate) fn gateway_urls_changed(&self) {
        self.gateway_urls.send_modify(|n| *n += 1);
    }

    /// A receiver that changes when the gateway URLs of the cluster may have.
    pub(crate) fn gateway_urls_signal(&self) -> watch::Receiver<u64> {
        self.gateway_urls.subscribe()
    }

    /// The gateway URLs the servers this one routes to named.
    pub(crate) fn peer_gateway_urls(&self) -> Vec<String> {
        let routes = self.routes.lock();
        let mut urls: Vec<String> =
            routes.values().flat_map(|p| p.links()).map(|l| l.gateway_url()).filter(|u| !u.is_empty()).collect();
        urls.sort();
        urls.dedup();
        urls
    }

    /// The CONNECT this server sends a route it dialled by `url`: the URL's
    /// credentials, else the cluster's.
    pub(crate) fn our_connect(&self, url: &RouteUrl) -> RouteConnect {
        let auth = self.opts.authorization.as_ref();
        RouteConnect {
            echo: true,
            verbose: false,
            pedantic: false,
            user: url.user.clone().or_else(|| auth.map(|a| a.user.clone())),
            pass: url.pass.clone().or_else(|| auth.and_then(|a| a.password.clone())),
            tls_required: self.tls.is_some(),
            headers: true,
            name: self.broker.identity.id.clone(),
            cluster: self.opts.name.clone().unwrap_or_default(),
            lnoc: true,
            lang: None,
        }
    }

    /// Whether a route CONNECT's credentials are right, checked like a
    /// client's: behind the failure throttle, on the verification pool.
    pub(crate) async fn route_credentials_ok(&self, login: RouteLogin) -> bool {
        let Some(want) = self.route_auth.clone() else { return true };
        let RouteLogin { peer, user, pass, certificate } = login;
        let key = self.guard.throttle().user_key(user.as_deref().unwrap_or_default());
        self.guard.check(peer.ip(), key, move || want.admit(user, pass, certificate), |ok| *ok).await.unwrap_or(false)
    }

    /// Time an accepted route connection has to authenticate.
    pub(crate) fn auth_timeout(&self) -> std::time::Duration {
        self.opts.authorization.as_ref().and_then(|a| a.timeout).unwrap_or(ROUTE_AUTH_TIMEOUT)
    }

    /// Whether routes log in by certificate (`tls { verify_and_map }`).
    pub(crate) fn route_certificates(&self) -> bool {
        self.route_auth.as_ref().is_some_and(|c| c.certificate)
    }

    /// How a refused route login is counted.
    pub(crate) fn refusal_reason(&self) -> RefusalReason {
        if self.route_certificates() {
            RefusalReason::CertificateNotMapped
        } else {
            RefusalReason::BadCredentials
        }
    }

    /// Whether route credentials are required.
    pub(crate) fn route_auth_required(&self) -> bool {
        self.route_auth.is_some()
    }

    /// Logs a route-level problem.
    pub(crate) fn warn(&self, what: &str, peer: &SocketAddr) {
        warn!(%peer, "route: {what}");
    }
}

/// Local client interest is counted per account, subject (and queue);
/// every route hears when the interest this server announces changes.
impl InterestObserver for Cluster {
    fn side(&self) -> Via {
        Via::Route
    }

    fn interest_added(&self, sub: &Subscription) {
        let mut interest = self.interest.lock();
        let account = sub.account.name.clone();
        let key: InterestKey = (account.clone(), sub.subject.clone(), sub.queue.clone());
        let count = interest.entry(key).or_insert(0);
        *count += 1;
        if (sub.queue.is_some() || *count == 1) && self.imports(&sub.subject) {
            let count = *count;
            self.announce(&account, |to| rs_plus(to, &sub.subject, sub.queue.as_deref(), count));
        }
    }

    fn interest_removed(&self, sub: &Subscription) {
        let mut interest = self.interest.lock();
        let account = sub.account.name.clone();
        let key: InterestKey = (account.clone(), sub.subject.clone(), sub.queue.clone());
        let Some(count) = interest.get_mut(&key) else { return };
        *count -= 1;
        let (subject, queue) = (&sub.subject, sub.queue.as_deref());
        if *count == 0 {
            interest.remove(&key);
            if self.imports(subject) {
                self.announce(&account, |to| rs_minus(to, subject, queue));
            }
        } else if queue.is_some() && self.imports(subject) {
            let count = *count;
            self.announce(&account, |to| rs_plus(to, subject, queue, count));
        }
    }
}

/// What `soliciting` knows a dial by: the URL, and which connection.
fn solicit_key(url: &RouteUrl, dial: &Dial) -> String {
    match dial.target() {
        Target::Pool(None) => url.key(),
        Target::Pool(Some(n)) => format!("{}#{n}", url.key()),
        Target::Account(account) => format!("{}@{account}", url.key()),
    }
}

#[cfg(test)]
mod pool_tests {
    use super::pool_index;

    /// FNV-1a's published test vectors, then the modulo: the placement
    /// nats-server computes (`computeRoutePoolIdx`).
    #[test]
    fn accounts_are_placed_by_fnv1a_as_nats_server_places_them() {
        // FNV-1a 32: "" = 0x811c9dc5, "a" = 0xe40c292c, "foobar" = 0xbf9cf968.
        assert_eq!(pool_index(1 << 31, ""), 0x811c_9dc5 % (1 << 31));
        assert_eq!(pool_index(1 << 31, "a"), 0xe40c_292c % (1 << 31));
        assert_eq!(pool_index(1 << 31, "foobar"), 0xbf9c_f968 % (1 << 31));
        assert_eq!(pool_index(3, "foobar"), 0xbf9c_f968 % 3);
        assert_eq!(pool_index(1, "foobar"), 0);
        assert_eq!(pool_index(0, "foobar"), 0);
    }
}
