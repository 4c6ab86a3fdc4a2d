//! Gateways: this cluster joined to other clusters into a supercluster,
//! with nats-server's gateway protocol. Every server keeps one connection
//! it dialled to each other cluster (its *outbound* gateway: messages go
//! out on it, and the other cluster's interest comes back on it) and takes
//! the connections the other clusters' servers dial (*inbound*: their
//! messages come in, and this cluster's interest goes out). Interest is
//! announced in interest-only mode for every account (what nats-server
//! does since 2.9): an account's whole interest framed by `gateway_cmd` 2
//! and 3, then each change. A reply leaving for another cluster is routed
//! back (`broker::routed_reply`).
//!
//! Unlike nats-server, a gateway listener needs authentication (see
//! `config`), and clusters nobody configured are refused by default.
//!
//! [`Gateways`] holds the listener's settings, the connections and the
//! interest counts; [`session::GatewaySession`] is the sans-IO protocol of
//! one connection, run on `conn`'s driver by [`connect`].

mod connect;
mod session;
#[cfg(test)]
mod tests;

/// The gateway session driven without a socket, for the `gateway_session`
/// fuzz target (the `fuzzing` feature; not an API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use session::harness as fuzzing;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::auth::password::PasswordHash;
use crate::auth::{Guard, RefusalReason};
use crate::broker::routed_reply::{hash, HASH_LEN};
use crate::broker::{Broker, Client, InterestObserver, Pending, ReplyPaths, RoutedReplies, Subscription, Via};
use crate::cluster::{peer_tls, Cluster, ClusterGateways, RouteCredentials, RouteTls};
use crate::config::GatewayOptions;
use crate::proto::route::gateway::{GatewayInfo, CMD_ALL_SUBS_COMPLETE, CMD_ALL_SUBS_START};
use crate::proto::route::{json_line, rs_minus, rs_plus, InterestTo};
use crate::secret::Secret;

pub use connect::GatewayUrl;

/// Gateway connections accepted and not yet logged in, in all.
pub const MAX_PENDING_GATEWAYS: usize = 64;
/// Gateway connections accepted and not yet logged in, per peer address.
pub const MAX_PENDING_GATEWAYS_PER_IP: usize = 8;
/// Interest entries one gateway connection may announce.
pub const MAX_GATEWAY_INTEREST: usize = 1 << 20;
/// Bytes of accounts, subjects and queue names one gateway may announce.
pub const MAX_GATEWAY_INTEREST_BYTES: usize = 64 << 20;
/// Interest entries one gateway may announce in one account: past it the
/// account's further interest is dropped (logged and counted), so one
/// tenant's subscriptions cannot close the link every tenant shares.
pub const MAX_ACCOUNT_INTEREST: usize = 1 << 18;
/// Bytes of subjects and queue names one gateway may announce in one account.
pub const MAX_ACCOUNT_INTEREST_BYTES: usize = 16 << 20;
/// URLs kept for one remote cluster (configured and learned).
pub const MAX_URLS_PER_GATEWAY: usize = 32;
/// Clusters dialled without being listed (`reject_unknown_cluster: false`).
pub const MAX_IMPLICIT_GATEWAYS: usize = 64;
/// Time a gateway has to log in (nats-server's default).
pub const GATEWAY_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Gateways ping at least this often (nats-server's `gwMaxPingInterval`).
pub const MAX_PING_INTERVAL: Duration = Duration::from_secs(15);

/// Why the gateways could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum GatewayError {
    /// Binding the listener failed.
    Bind(std::io::Error),
    /// The gateway password does not parse.
    Password(String),
    /// A gateway URL does not parse.
    BadUrl,
    /// The gateway TLS settings could not be loaded.
    Tls(crate::tls::TlsError),
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayError::Bind(err) => write!(f, "cannot listen for gateways: {err}"),
            GatewayError::Password(err) => write!(f, "gateway authorization password: {err}"),
            GatewayError::BadUrl => f.write_str("a gateway url must be nats://[user:password@]host:port"),
            GatewayError::Tls(err) => write!(f, "gateway tls: {err}"),
        }
    }
}

impl std::error::Error for GatewayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GatewayError::Bind(err) => Some(err),
            GatewayError::Tls(err) => Some(err),
            _ => None,
        }
    }
}

use crate::broker::peer_interest::InterestKey;

/// A connection to another cluster, as this server sees it.
#[derive(Debug)]
pub struct GatewayLink {
    /// The connection.
    pub client: Arc<Client>,
    /// The other cluster's name.
    pub name: String,
    /// The other server's id.
    pub remote_id: String,
    /// The other server's name.
    pub remote_name: String,
    /// This server dialled it (messages go out on it).
    pub outbound: bool,
    /// The other cluster is one of `gateways` (not learned).
    pub configured: bool,
    /// The other cluster's hash (routed replies to it go here).
    cluster_hash: [u8; HASH_LEN],
}

/// An inbound link and the accounts it was sent the interest of.
#[derive(Debug)]
struct Inbound {
    link: Arc<GatewayLink>,
    switched: HashSet<Arc<str>>,
}

/// The interest of this cluster and who hears it.
#[derive(Debug, Default)]
struct Announced {
    counts: HashMap<InterestKey, u32>,
    inbound: Vec<Inbound>,
}

impl Announced {
    /// `gateway_cmd` 2, the account's interest, `gateway_cmd` 3.
    fn dump(&self, ours: &str, account: &Arc<str>) -> Vec<u8> {
        let command = |cmd| {
            let info = GatewayInfo {
                gateway: ours.to_owned(),
                gateway_cmd: cmd,
                gateway_cmd_payload: Some(account.as_bytes().to_vec()),
                ..GatewayInfo::default()
            };
            json_line("INFO", &info)
        };
        let mut out = command(CMD_ALL_SUBS_START);
        let to = InterestTo::Route(account.as_bytes());
        for (a, subject, queue) in self.counts.keys() {
            if a == account {
                out.extend_from_slice(&rs_plus(to, subject, queue.as_deref(), 1));
            }
        }
        out.extend_from_slice(&command(CMD_ALL_SUBS_COMPLETE));
        out
    }
}

/// A remote cluster this server dials, with the URLs it knows for it.
#[derive(Debug)]
struct Remote {
    name: String,
    urls: Mutex<Vec<GatewayUrl>>,
    /// Its own `tls {}`, when it has one (else the gateway block's).
    tls: Option<RouteTls>,
    /// Learned, not listed: given up after `connect_retries` failures.
    implicit: bool,
}

/// The gateway state of one server.
#[derive(Debug)]
pub struct Gateways {
    /// Itself, for the tasks it starts.
    this: std::sync::Weak<Gateways>,
    broker: Arc<Broker>,
    guard: Guard,
    /// The `gateway {}` options.
    pub opts: GatewayOptions,
    /// Bound gateway listen address.
    pub listen_addr: SocketAddr,
    credentials: Option<RouteCredentials>,
    cluster: Option<Arc<Cluster>>,
    /// TLS both ways, verified against `ca_file`, when `tls {}` is set.
    tls: Option<RwLock<RouteTls>>,
    announced: Mutex<Announced>,
    /// Established links, outbound and inbound.
    links: Mutex<Vec<Arc<GatewayLink>>>,
    /// The clusters this server dials: listed, then learned.
    remotes: Mutex<Vec<Arc<Remote>>>,
    /// Interest entries dropped at an account's bound, on every link.
    interest_dropped: std::sync::atomic::AtomicU64,
    /// Entries and bytes of interest one link may hold in one account
    /// ([`MAX_ACCOUNT_INTEREST`], [`MAX_ACCOUNT_INTEREST_BYTES`]; the
    /// session tests lower them).
    account_bound: Mutex<(usize, usize)>,
    pending: Arc<Pending>,
}

impl Gateways {
    /// Binds the gateway listener, starts dialling the configured
    /// gateways and routes replies for the broker.
    pub async fn start(
        broker: Arc<Broker>,
        guard: Guard,
        cluster: Option<Arc<Cluster>>,
        opts: GatewayOptions,
    ) -> Result<Arc<Gateways>, GatewayError> {
        let listener = TcpListener::bind((opts.host.as_str(), opts.port)).await.map_err(GatewayError::Bind)?;
        let listen_addr = listener.local_addr().map_err(GatewayError::Bind)?;
        let gateways = Gateways::new(broker, guard, cluster, opts, listen_addr)?;
        gateways.watch_certificates();
        if let Some(cluster) = &gateways.cluster {
            cluster.join_gateways(Arc::downgrade(&gateways) as std::sync::Weak<dyn ClusterGateways>);
            cluster.set_gateway_url(gateways.our_url());
            tokio::spawn(tell_urls(Arc::downgrade(&gateways), cluster.gateway_urls_signal()));
        }
        let paths = Arc::downgrade(&gateways) as std::sync::Weak<dyn ReplyPaths>;
        let replies = RoutedReplies::new(&gateways.opts.name, &gateways.broker.identity.id, paths);
        if gateways.broker.routed_replies.set(replies).is_err() {
            warn!("gateway replies were already set up");
        }
        info!("Gateway name is {}", gateways.opts.name);
        info!("Listening for gateways connections on {listen_addr}");
        tokio::spawn(connect::accept_loop(gateways.clone(), listener));
        for remote in gateways.remotes.lock().iter() {
            tokio::spawn(connect::solicit_loop(gateways.clone(), remote.clone()));
        }
        Ok(gateways)
    }

    /// The gateway state with nothing started (the session tests use it).
    pub(crate) fn new(
        broker: Arc<Broker>,
        guard: Guard,
        cluster: Option<Arc<Cluster>>,
        opts: GatewayOptions,
        listen_addr: SocketAddr,
    ) -> Result<Arc<Gateways>, GatewayError> {
        let tls = peer_tls(opts.tls.as_ref(), "gateway").map_err(GatewayError::Tls)?;
        let credentials = match &opts.authorization {
            Some(a) => Some(RouteCredentials {
                user: a.user.clone(),
                password: match &a.password {
                    Some(p) => {
                        Some(PasswordHash::parse(p.expose()).map_err(|e| GatewayError::Password(e.to_string()))?)
                    }
                    None => None,
                },
                certificate: opts.tls.as_ref().is_some_and(|t| t.verify_and_map),
                spiffe: opts.tls.as_ref().and_then(|t| t.spiffe_trust_domain.clone()),
            }),
            None => None,
        };
        if credentials.is_none() && tls.is_none() {
            warn!(
                "gateways are NOT authenticated (insecure_allow_unauthenticated_gateways): anyone who reaches the \
                gateway port joins the supercluster; use only on a trusted loopback network"
            );
        }
        let mut remotes = Vec::new();
        for remote in opts.gateways.iter().filter(|g| g.name != opts.name) {
            let urls = remote.urls.iter().map(|u| GatewayUrl::parse(u).ok_or(GatewayError::BadUrl));
            let urls = urls.collect::<Result<Vec<_>, _>>()?;
            let tls = peer_tls(remote.tls.as_ref(), "gateway remote").map_err(GatewayError::Tls)?;
            let name = remote.name.clone();
            remotes.push(Arc::new(Remote { name, urls: Mutex::new(urls), tls, implicit: false }));
        }
        Ok(Arc::new_cyclic(|this| Gateways {
            this: this.clone(),
            broker,
            guard,
            opts,
            listen_addr,
            credentials,
            cluster,
            tls: tls.map(RwLock::new),
            announced: Mutex::new(Announced::default()),
            links: Mutex::new(Vec::new()),
            remotes: Mutex::new(remotes),
            interest_dropped: std::sync::atomic::AtomicU64::new(0),
            account_bound: Mutex::new((MAX_ACCOUNT_INTEREST, MAX_ACCOUNT_INTEREST_BYTES)),
            pending: Arc::new(Pending::new(MAX_PENDING_GATEWAYS, MAX_PENDING_GATEWAYS_PER_IP)),
        }))
    }

    /// This server's gateway INFO.
    pub(crate) fn our_info(&self) -> GatewayInfo {
        let url = self.our_url();
        // This server's URL and those of the servers it routes to, so the
        // other cluster can dial any of them.
        let mut urls = vec![url.clone()];
        if let Some(cluster) = &self.cluster {
            urls.extend(cluster.peer_gateway_urls().into_iter().filter(|u| *u != url).take(MAX_URLS_PER_GATEWAY));
        }
        GatewayInfo {
            server_id: self.broker.identity.id.clone(),
            server_name: self.broker.identity.name.clone(),
            version: crate::proto::NATS_VERSION.to_owned(),
            proto: 1,
            host: self.listen_addr.ip().to_string(),
            port: self.listen_addr.port(),
            headers: true,
            auth_required: self.credentials.is_some(),
            tls_required: self.tls.is_some(),
            max_payload: self.broker.opts.max_payload,
            gateway: self.opts.name.clone(),
            gateway_urls: urls,
            gateway_url: url,
            gateway_nrp: true,
            gateway_iom: true,
            gateway_cmd: 0,
            gateway_cmd_payload: None,
        }
    }

    /// The `host:port` other clusters reach this server's gateway at.
    fn our_url(&self) -> String {
        self.opts.advertise.clone().unwrap_or_else(|| self.listen_addr.to_string())
    }

    /// The user and password this server presents when it dials `url`:
    /// the URL's, else the gateway block's.
    pub(crate) fn credentials_for(&self, url: &GatewayUrl) -> (Option<String>, Option<Secret>) {
        match (&url.user, &self.opts.authorization) {
            (Some(user), _) => (Some(user.clone()), url.pass.clone()),
            (None, Some(a)) => (Some(a.user.clone()), a.password.clone()),
            (None, None) => (None, None),
        }
    }

    /// Whether a cluster called `name` may connect: listed, or any with
    /// `reject_unknown_cluster: false`.
    pub(crate) fn admits(&self, name: &str) -> bool {
        !self.opts.reject_unknown_cluster || self.opts.gateways.iter().any(|g| g.name == name)
    }

    /// Whether a gateway CONNECT's credentials (or certificate) are right,
    /// checked like a client's: behind the failure throttle, on the
    /// verification pool.
    pub(crate) async fn credentials_ok(&self, login: session::GatewayLogin) -> bool {
        let Some(want) = self.credentials.clone() else { return true };
        let session::GatewayLogin { peer, user, pass, certificate } = login;
        let key = self.guard.throttle().user_key(user.as_deref().unwrap_or_default());
        self.guard.check(peer.ip(), key, move || want.admit(user, pass, certificate), |ok| *ok).await.unwrap_or(false)
    }

    /// Gateway TLS as it is now (its certificates rotate).
    pub(crate) fn tls(&self) -> Option<RouteTls> {
        self.tls.as_ref().map(|t| t.read().clone())
    }

    /// Registers the gateway TLS files for rotation.
    fn watch_certificates(self: &Arc<Self>) {
        let (Some(current), Some(opts)) = (self.tls(), self.opts.tls.clone()) else { return };
        let gateways = Arc::downgrade(self);
        let files = opts.files();
        let reload: crate::tls::Reload = Arc::new(move || {
            let gateways = gateways.upgrade().ok_or("the gateways are gone")?;
            let fresh = peer_tls(Some(&opts), "gateway").map_err(|e| e.to_string())?.ok_or("gateway TLS is off")?;
            let certificates = fresh.certificates.clone();
            if let Some(tls) = &gateways.tls {
                *tls.write() = fresh;
            }
            Ok(certificates)
        });
        self.broker.tls_rotation.watch("gateway", files, current.certificates, reload);
    }

    /// Whether gateway credentials are required.
    pub(crate) fn auth_required(&self) -> bool {
        self.credentials.is_some()
    }

    /// How a refused gateway login is counted.
    pub(crate) fn refusal_reason(&self) -> RefusalReason {
        if self.certificates() {
            RefusalReason::CertificateNotMapped
        } else {
            RefusalReason::BadCredentials
        }
    }

    /// Whether gateways log in by certificate (`tls { verify_and_map }`).
    pub(crate) fn certificates(&self) -> bool {
        self.credentials.as_ref().is_some_and(|c| c.certificate)
    }

    /// Time an accepted gateway has to log in.
    pub fn auth_timeout(&self) -> Duration {
        self.opts
            .auth_timeout
            .or(self.opts.authorization.as_ref().and_then(|a| a.timeout))
            .unwrap_or(GATEWAY_AUTH_TIMEOUT)
    }

    /// Adds URLs learned for the cluster `name` (from its INFO or gossip),
    /// up to [`MAX_URLS_PER_GATEWAY`]; only for a cluster this server dials.
    pub(crate) fn learn_urls(&self, name: &str, urls: &[String]) {
        let Some(remote) = self.remotes.lock().iter().find(|r| r.name == name).cloned() else { return };
        let mut known = remote.urls.lock();
        for url in urls {
            let Some(mut parsed) = GatewayUrl::parse(&format!("nats://{url}")) else { continue };
            if known.len() >= MAX_URLS_PER_GATEWAY || known.iter().any(|k| k.key() == parsed.key()) {
                continue;
            }
            // Dialled with the credentials the configured URLs carry.
            if let Some(first) = known.first() {
                parsed.user.clone_from(&first.user);
                parsed.pass.clone_from(&first.pass);
            }
            known.push(parsed);
        }
    }

    /// A cluster named by a server of another (its inbound connection's
    /// INFO, or gossip on an outbound one), at `urls` (`host:port`): its
    /// URLs are learned when this server dials it already; otherwise, if it
    /// is admitted (listed, or any with `reject_unknown_cluster: false`),
    /// it is dialled as an implicit gateway, at most
    /// [`MAX_IMPLICIT_GATEWAYS`] of them.
    pub(crate) fn discovered(&self, name: &str, urls: &[String]) {
        if name.is_empty() || name == self.opts.name || !self.admits(name) {
            return;
        }
        let mut remotes = self.remotes.lock();
        if remotes.iter().any(|r| r.name == name) {
            drop(remotes);
            self.learn_urls(name, urls);
            return;
        }
        if remotes.iter().filter(|r| r.implicit).count() >= MAX_IMPLICIT_GATEWAYS {
            warn!(gateway = %name, "too many implicit gateways; not dialling another");
            return;
        }
        // Outside a runtime (the session harness) nothing is dialled.
        let (Ok(runtime), Some(this)) = (tokio::runtime::Handle::try_current(), self.this.upgrade()) else { return };
        let auth = self.opts.authorization.as_ref();
        let parsed = urls.iter().take(MAX_URLS_PER_GATEWAY).filter_map(|u| GatewayUrl::parse(&format!("nats://{u}")));
        let with_credentials = parsed.map(|mut u| {
            u.user = auth.map(|a| a.user.clone());
            u.pass = auth.and_then(|a| a.password.clone());
            u
        });
        let known: Vec<GatewayUrl> = with_credentials.collect();
        if known.is_empty() {
            return;
        }
        info!(gateway = %name, "dialling implicit gateway");
        let remote = Arc::new(Remote { name: name.to_owned(), urls: Mutex::new(known), tls: None, implicit: true });
        remotes.push(remote.clone());
        runtime.spawn(connect::solicit_loop(this, remote));
    }

    /// Forgets an implicit gateway its dialling gave up on.
    fn forget(&self, remote: &Arc<Remote>) {
        self.remotes.lock().retain(|r| !Arc::ptr_eq(r, remote));
    }

    /// The `host:port` of each URL known for cluster `name`.
    fn urls_of(&self, name: &str) -> Vec<String> {
        self.remotes().into_iter().find(|(n, _)| n == name).map(|(_, u)| u).unwrap_or_default()
    }

    /// The gossip (`gateway_cmd` 1) that names cluster `name` and its URLs,
    /// so a server told of it can dial it too.
    fn gossip(&self, name: &str) -> Vec<u8> {
        let urls = self.urls_of(name);
        let info = GatewayInfo {
            gateway: name.to_owned(),
            gateway_urls: urls,
            gateway_cmd: crate::proto::route::gateway::CMD_GOSSIP,
            ..GatewayInfo::default()
        };
        json_line("INFO", &info)
    }

    /// Registers an established link; an inbound one is sent this
    /// cluster's interest, account by account. False when an outbound
    /// link to that cluster already exists.
    pub(crate) fn register(&self, link: Arc<GatewayLink>) -> bool {
        let mut links = self.links.lock();
        if link.outbound && links.iter().any(|l| l.outbound && l.name == link.name) {
            return false;
        }
        // Every server that dialled this one hears of every other cluster
        // this one reaches: those known when it registers, and those that
        // come later.
        let gossip: Vec<(Arc<Client>, String)> = if link.outbound {
            let inbound = links.iter().filter(|l| !l.outbound && l.name != link.name);
            inbound.map(|l| (l.client.clone(), link.name.clone())).collect()
        } else {
            let reached = links.iter().filter(|l| l.outbound && l.name != link.name);
            reached.map(|l| (link.client.clone(), l.name.clone())).collect()
        };
        links.push(link.clone());
        drop(links);
        for (client, name) in gossip {
            client.send(&self.gossip(&name));
        }
        // The other servers of this cluster hear of a cluster this one
        // reaches, to dial it too (nats-server's gossip over routes).
        if let (true, Some(cluster)) = (link.outbound, &self.cluster) {
            cluster.tell_routes(&cluster.gateway_gossip_line(&link.name, self.urls_of(&link.name)));
        }
        if !link.outbound {
            let mut announced = self.announced.lock();
            let accounts: HashSet<Arc<str>> = announced.counts.keys().map(|k| k.0.clone()).collect();
            let mut out = Vec::new();
            for account in &accounts {
                out.extend_from_slice(&announced.dump(&self.opts.name, account));
            }
            link.client.send(&out);
            announced.inbound.push(Inbound { link, switched: accounts });
        }
        true
    }

    /// Forgets a link that closed.
    pub(crate) fn unregister(&self, link: &Arc<GatewayLink>) {
        self.links.lock().retain(|l| !Arc::ptr_eq(l, link));
        self.announced.lock().inbound.retain(|i| !Arc::ptr_eq(&i.link, link));
    }

    /// The established links.
    pub fn links(&self) -> Vec<Arc<GatewayLink>> {
        self.links.lock().clone()
    }

    /// The clusters this server dials, with the URLs it knows for each.
    pub fn remotes(&self) -> Vec<(String, Vec<String>)> {
        let remotes = self.remotes.lock();
        remotes.iter().map(|r| (r.name.clone(), r.urls.lock().iter().map(GatewayUrl::key).collect())).collect()
    }

    /// Entries and bytes of interest one link may hold in one account.
    pub(crate) fn account_bound(&self) -> (usize, usize) {
        *self.account_bound.lock()
    }

    /// Lowers (or raises) [`Gateways::account_bound`].
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn set_account_bound(&self, bound: (usize, usize)) {
        *self.account_bound.lock() = bound;
    }

    /// Interest entries dropped at an account's bound ([`MAX_ACCOUNT_INTEREST`]).
    pub fn interest_dropped(&self) -> u64 {
        self.interest_dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts interest dropped at an account's bound, and says so in the
    /// log (within the log budget).
    pub(crate) fn dropped_interest(&self, account: &str, gateway: &str) {
        self.interest_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.broker.log_budget.allow() {
            warn!(%account, %gateway, "gateway interest past the account's bound dropped");
        }
    }

    /// Gateway connections accepted and not yet logged in.
    pub fn pending_gateways(&self) -> usize {
        self.pending.count()
    }

    /// Applies a change to the interest behind `sub` and tells every
    /// inbound gateway what changed.
    fn interest_changed(&self, sub: &Subscription, added: bool) {
        let account = sub.account.name.clone();
        let key: InterestKey = (account.clone(), sub.subject.clone(), sub.queue.clone());
        let mut announced = self.announced.lock();
        let count = announced.counts.entry(key.clone()).or_insert(0);
        let changed = if added {
            *count += 1;
            *count == 1
        } else {
            *count = count.saturating_sub(1);
            *count == 0
        };
        if *count == 0 {
            announced.counts.remove(&key);
        }
        if !changed {
            return;
        }
        let to = InterestTo::Route(account.as_bytes());
        let line = match added {
            true => rs_plus(to, &key.1, key.2.as_deref(), 1),
            false => rs_minus(to, &key.1, key.2.as_deref()),
        };
        let ours = self.opts.name.clone();
        let mut dumps = Vec::new();
        for (i, inbound) in announced.inbound.iter().enumerate() {
            if inbound.switched.contains(&account) {
                inbound.link.client.send(&line);
            } else if added {
                dumps.push(i);
            }
        }
        // An account this link has not heard of yet: its whole interest
        // (this one included), framed, so the other side records it.
        for i in dumps {
            let dump = announced.dump(&ours, &account);
            if let Some(inbound) = announced.inbound.get_mut(i) {
                inbound.link.client.send(&dump);
                inbound.switched.insert(account.clone());
            }
        }
    }
}

/// Sends every server that dialled this one a fresh INFO whenever the
/// cluster's gateway URLs may have changed (a route came or went, a peer
/// named its URL), so the other clusters can dial any server of this one
/// (nats-server's async gateway INFO). Ends with the gateways.
async fn tell_urls(gateways: std::sync::Weak<Gateways>, mut changed: tokio::sync::watch::Receiver<u64>) {
    let mut told = Vec::new();
    while changed.changed().await.is_ok() {
        let Some(gateways) = gateways.upgrade() else { return };
        let info = gateways.our_info();
        if info.gateway_urls == told {
            continue;
        }
        told.clone_from(&info.gateway_urls);
        let line = json_line("INFO", &info);
        for link in gateways.links().iter().filter(|l| !l.outbound) {
            link.client.send(&line);
        }
    }
}

/// The cluster's seam: gossip from the other servers of this cluster, and
/// this server's own for a new route.
impl ClusterGateways for Gateways {
    fn gossiped(&self, gateway: &str, urls: &[String]) {
        self.discovered(gateway, urls);
    }

    fn greeting(&self) -> Vec<u8> {
        let Some(cluster) = &self.cluster else { return Vec::new() };
        let links = self.links();
        let mut out = Vec::new();
        for link in links.iter().filter(|l| l.outbound) {
            out.extend_from_slice(&cluster.gateway_gossip_line(&link.name, self.urls_of(&link.name)));
        }
        out
    }
}

/// Routed replies leave by the outbound link to their cluster, or by the
/// route to their server.
impl ReplyPaths for Gateways {
    fn gateway_to(&self, cluster: &[u8]) -> Option<Arc<Client>> {
        let links = self.links.lock();
        links.iter().find(|l| l.outbound && l.cluster_hash == cluster).map(|l| l.client.clone())
    }

    fn route_to(&self, server: &[u8], account: &str) -> Option<Arc<Client>> {
        self.cluster.as_ref()?.route_to(|id| hash(id) == server, account)
    }
}

/// Every interest of this cluster (local, routes', leafs') travels to
/// the other clusters.
impl InterestObserver for Gateways {
    fn side(&self) -> Via {
        Via::Gateway
    }

    fn interest_added(&self, sub: &Subscription) {
        self.interest_changed(sub, true);
    }

    fn interest_removed(&self, sub: &Subscription) {
        self.interest_changed(sub, false);
    }
}
