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
//! Lock order: `interest` before `routes`; neither is held across IO.

mod limits;
mod link;
mod route;
mod session;
mod solicit;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use crate::auth::password::PasswordHash;
use crate::auth::Guard;
use crate::broker::{Broker, InterestObserver, Subscription, Via};
use crate::config::ClusterOptions;
use crate::proto::route::{json_line, rs_minus, rs_plus, RouteConnect, RouteInfo};
use crate::secret::Secret;

pub use limits::{
    MAX_CONNECT_URLS, MAX_GOSSIPED_ROUTES, MAX_PEER_CONNECT_URLS, MAX_PENDING_ROUTES, MAX_PENDING_ROUTES_PER_IP,
    MAX_REMOTE_INTEREST, MAX_REMOTE_INTEREST_BYTES, MAX_ROUTES, MAX_UNREACHABLE, ROUTE_AUTH_TIMEOUT, SETTLED_ROUTE,
};
pub use link::RouteLink;
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
            ClusterError::Unauthenticated => f.write_str(crate::config::UNAUTHENTICATED_ROUTES),
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Bind(e) => Some(e),
            ClusterError::Tls(e) => Some(e),
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

/// Key of interest: account, subject and queue group.
pub(crate) type InterestKey = (Arc<str>, Box<[u8]>, Option<Box<[u8]>>);

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
    route_auth: Option<(String, PasswordHash)>,
    /// Local client interest, reference-counted per account, subject (and queue).
    interest: Mutex<HashMap<InterestKey, u32>>,
    /// Established routes by remote server id.
    routes: Mutex<HashMap<String, Arc<RouteLink>>>,
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
    pub(crate) tls: Option<RouteTls>,
    /// Accepted route connections that have not authenticated yet.
    pending: Arc<crate::broker::Pending>,
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
}

impl std::fmt::Debug for RouteTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTls").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Loads route TLS: the server side requires and verifies the peer's
/// certificate, the client side verifies the peer against `ca_file`.
pub(crate) fn route_tls(opts: &ClusterOptions) -> Result<Option<RouteTls>, ClusterError> {
    let Some(tls) = &opts.tls else { return Ok(None) };
    if tls.ca_file.is_none() {
        return Err(ClusterError::Tls(crate::tls::TlsError::Config("route TLS needs ca_file to verify peers".into())));
    }
    let server_opts = crate::config::TlsOptions { verify: true, ..tls.clone() };
    let server = crate::tls::load_server_config(&server_opts).map_err(ClusterError::Tls)?;
    let client = crate::tls::load_client_config(tls).map_err(ClusterError::Tls)?;
    Ok(Some(RouteTls {
        acceptor: tokio_rustls::TlsAcceptor::from(server.config),
        connector: tokio_rustls::TlsConnector::from(client),
        timeout: tls.timeout,
    }))
}

impl Cluster {
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
            Some(a) => Some((
                a.user.clone(),
                PasswordHash::parse(a.password.expose()).map_err(|e| ClusterError::Password(e.to_string()))?,
            )),
            None => None,
        };
        let tls = route_tls(&opts)?;
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
        Ok(Arc::new(Cluster {
            broker,
            guard,
            opts,
            listen_addr,
            route_auth,
            interest: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            soliciting: Mutex::new(HashMap::new()),
            unreachable: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            client_urls: watch::channel(0).0,
            tls,
            pending: Arc::new(crate::broker::Pending::new(
                limits::MAX_PENDING_ROUTES,
                limits::MAX_PENDING_ROUTES_PER_IP,
            )),
        }))
    }

    /// Starts soliciting `url` unless a task already does. At most
    /// [`MAX_GOSSIPED_ROUTES`] URLs learned by gossip are dialled (or routed
    /// to) at once; gossip past that is dropped and logged.
    pub(crate) fn solicit(self: &Arc<Self>, url: RouteUrl, dial: Dial) {
        let gossiped = matches!(dial, Dial::Gossiped { .. });
        {
            let mut soliciting = self.soliciting.lock();
            if soliciting.contains_key(&url.key()) {
                return;
            }
            if gossiped && soliciting.values().filter(|g| **g).count() >= MAX_GOSSIPED_ROUTES {
                drop(soliciting);
                if self.broker.audit.allow() {
                    warn!(url = %url.key(), "route: too many gossiped routes; not dialling this one");
                }
                return;
            }
            soliciting.insert(url.key(), gossiped);
        }
        tokio::spawn(solicit::solicit_loop(self.clone(), url, dial));
    }

    /// Route URLs learned by gossip that are dialled or routed to now.
    pub fn gossiped_routes(&self) -> usize {
        self.soliciting.lock().values().filter(|g| **g).count()
    }

    /// Records a failed attempt to reach `url`: the first of a run and giving
    /// up are logged as warnings, and the server is listed in `/routez`
    /// until a route to it is established.
    pub(crate) fn dial_failed(&self, url: &RouteUrl, dial: &Dial, gave_up: bool) {
        let (server_id, server_name) = match dial {
            Dial::Configured => (None, None),
            Dial::Gossiped { server_id, server_name } => (Some(server_id.clone()), Some(server_name.clone())),
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
                entry.attempts += 1;
                entry.gave_up = gave_up;
                Some(entry.attempts)
            }
        };
        let server = server_name.or(server_id).unwrap_or_default();
        if gave_up {
            warn!(url = %route_url, %server, "route: giving up on a server the cluster knows of; the mesh is partial");
        } else if attempts == Some(1) || (attempts.is_none() && self.broker.audit.allow()) {
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

    /// Forgets that `url` is being solicited.
    pub(crate) fn solicit_done(&self, url: &RouteUrl) {
        self.soliciting.lock().remove(&url.key());
    }

    fn broadcast(&self, line: &[u8]) {
        for link in self.routes.lock().values() {
            link.client.send(line);
        }
    }

    /// Registers an established route, unless one to the same server exists.
    /// A settled route (older than [`SETTLED_ROUTE`]) is always kept and the
    /// newcomer refused, so a peer that claims another server's id cannot
    /// disturb the real route. Two fresh routes between the same pair (the
    /// servers dialled each other at once) keep the one solicited by the
    /// smaller server id, on both sides. At most [`MAX_ROUTES`] routes. On
    /// success, sends the peer all local interest (under the interest lock,
    /// so no change is lost or reordered). Returns whether it was kept.
    pub(crate) fn register(&self, link: Arc<RouteLink>, our_id: &str) -> bool {
        let interest = self.interest.lock();
        let mut routes = self.routes.lock();
        if let Some(existing) = routes.get(&link.remote_id) {
            let new_wins = link.solicited == (our_id < link.remote_id.as_str());
            if existing.age() >= SETTLED_ROUTE || !new_wins {
                return false;
            }
            existing.client.outbound.close(crate::broker::CloseReason::ProtocolViolation);
        } else if routes.len() >= MAX_ROUTES {
            return false;
        }
        let mut lines = Vec::new();
        for ((account, subject, queue), count) in interest.iter() {
            lines.extend_from_slice(&rs_plus(Some(account.as_bytes()), subject, queue.as_deref(), *count));
        }
        link.client.send(&lines);
        let others: Vec<Arc<RouteLink>> = routes.values().cloned().collect();
        routes.insert(link.remote_id.clone(), link.clone());
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
        self.changed.notify_waiters();
        self.topology_changed();
        true
    }

    /// Forgets a route that closed (if it is still the registered one).
    pub(crate) fn unregister(&self, link: &Arc<RouteLink>) {
        let removed = {
            let mut routes = self.routes.lock();
            match routes.get(&link.remote_id) {
                Some(current) if Arc::ptr_eq(current, link) => routes.remove(&link.remote_id).is_some(),
                _ => false,
            }
        };
        if removed {
            self.changed.notify_waiters();
            self.topology_changed();
        }
    }

    /// Whether a route to server `id` is established.
    pub fn has_route(&self, id: &str) -> bool {
        self.routes.lock().contains_key(id)
    }

    /// Accepted route connections that have not authenticated yet.
    pub fn pending_routes(&self) -> usize {
        self.pending.count()
    }

    /// Number of established routes.
    pub fn route_count(&self) -> usize {
        self.routes.lock().len()
    }

    /// The established routes.
    pub fn routes(&self) -> Vec<Arc<RouteLink>> {
        self.routes.lock().values().cloned().collect()
    }

    /// Client URLs of this server and every peer, for INFO `connect_urls`
    /// (empty with `no_advertise`).
    pub fn connect_urls(&self) -> Vec<String> {
        if self.opts.no_advertise {
            return Vec::new();
        }
        let mut urls = vec![self.broker.addr.to_string()];
        for link in self.routes.lock().values() {
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
        }
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
            pass: url.pass.clone().or_else(|| auth.map(|a| a.password.clone())),
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
    pub(crate) async fn route_credentials_ok(&self, peer: IpAddr, user: Option<String>, pass: Option<Secret>) -> bool {
        let Some((want_user, hash)) = self.route_auth.clone() else { return true };
        let key = self.guard.throttle().user_key(user.as_deref().unwrap_or_default());
        let check = move || {
            let pass_ok = hash.verify(pass.as_ref().map_or("", Secret::expose));
            pass_ok && user.as_deref() == Some(want_user.as_str())
        };
        self.guard.check(peer, key, check, |ok| *ok).await.unwrap_or(false)
    }

    /// Time an accepted route connection has to authenticate.
    pub(crate) fn auth_timeout(&self) -> std::time::Duration {
        self.opts.authorization.as_ref().and_then(|a| a.timeout).unwrap_or(ROUTE_AUTH_TIMEOUT)
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
        if sub.queue.is_some() || *count == 1 {
            let line = rs_plus(Some(account.as_bytes()), &sub.subject, sub.queue.as_deref(), *count);
            self.broadcast(&line);
        }
    }

    fn interest_removed(&self, sub: &Subscription) {
        let mut interest = self.interest.lock();
        let account = sub.account.name.clone();
        let key: InterestKey = (account.clone(), sub.subject.clone(), sub.queue.clone());
        let Some(count) = interest.get_mut(&key) else { return };
        *count -= 1;
        let line = if *count == 0 {
            interest.remove(&key);
            rs_minus(Some(account.as_bytes()), &sub.subject, sub.queue.as_deref())
        } else if sub.queue.is_some() {
            rs_plus(Some(account.as_bytes()), &sub.subject, sub.queue.as_deref(), *count)
        } else {
            return;
        };
        self.broadcast(&line);
    }
}
