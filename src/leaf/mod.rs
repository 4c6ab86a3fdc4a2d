//! Leaf nodes, hub side: the port nats-server (and warden) leaf nodes
//! connect to. A leaf logs in like a client (the gate: config users, nkeys,
//! user JWTs whose `allowed_connection_types` include `LEAFNODE`, the auth
//! callout), or as one of the leafnodes block's own users (passwords,
//! nkeys, certificates under its `verify_and_map`; see [`login`]), is
//! bound to that user's account, and then trades interest
//! (`LS+`/`LS-`) and messages (`LMSG`/`HMSG`) with this server in that one
//! account. Every message and every interest a leaf sends is checked
//! against the leaf user's publish and subscribe permissions (nats-server
//! did not check `LMSG` at all before 2.14).
//!
//! [`Hub`] holds the listener's settings, the leafs by account and the
//! interest each has been told of; it observes the broker's interest like
//! the cluster does. [`session::LeafSession`] is the sans-IO protocol of
//! one connection, run on `conn`'s driver by [`listener`].

mod dial;
mod listener;
mod login;
mod mapped;
mod remote;
mod session;

pub(crate) use login::own_view as own_login_view;
/// The leaf session driven without a socket, for the `leaf_session` fuzz
/// target (the `fuzzing` feature; not an API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use session::harness as fuzzing;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tracing::info;

use crate::auth::Gate;
use crate::broker::{Broker, Client, InterestObserver, Pending, Subscription, Via};
use crate::config::LeafnodeOptions;
use crate::proto::route::{rs_minus, rs_plus, InterestTo};

/// Leaf connections accepted and not yet logged in, in all.
pub const MAX_PENDING_LEAFS: usize = 64;
/// Leaf connections accepted and not yet logged in, per peer address.
pub const MAX_PENDING_LEAFS_PER_IP: usize = 8;
/// Interest entries (subject and queue pairs) one leaf may register.
pub const MAX_LEAF_INTEREST: usize = 1 << 16;
/// Bytes of subjects and queue names one leaf's interest may hold.
pub const MAX_LEAF_INTEREST_BYTES: usize = 8 << 20;
/// Time a leaf has to log in when neither `leafnodes { auth_timeout }` nor
/// the client `authorization { timeout }` sets one (nats-server's default).
pub const LEAF_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// What a leaf is told to wait before it reconnects after a loop was
/// detected (nats-server's `leafNodeReconnectDelayAfterLoopDetected`).
pub const LOOP_DELAY: Duration = Duration::from_secs(30);

/// Why the leaf node listener could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum LeafError {
    /// Binding the listener failed.
    Bind(std::io::Error),
    /// The leaf TLS settings could not be loaded.
    Tls(crate::tls::TlsError),
    /// A remote's `tls {}` cannot be loaded.
    RemoteTls(crate::tls::TlsError),
    /// A remote's `credentials` file could not be read or has no seed.
    Credentials(std::path::PathBuf, String),
    /// A remote names an account this server does not have.
    UnknownAccount(String),
    /// The leafnodes block's users cannot be built (a password or
    /// permission that does not parse).
    Auth(crate::auth::AuthSetupError),
    /// A reload would move leafs between the clients' gate and one of
    /// their own.
    LoginChanged,
}

impl std::fmt::Display for LeafError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeafError::Bind(err) => write!(f, "cannot listen for leaf nodes: {err}"),
            LeafError::Tls(err) => write!(f, "leafnodes tls: {err}"),
            LeafError::RemoteTls(err) => write!(f, "leafnode remote tls: {err}"),
            LeafError::Credentials(path, why) => write!(f, "leafnode remote credentials {}: {why}", path.display()),
            LeafError::UnknownAccount(name) => write!(f, "leafnode remote: no account {name:?}"),
            LeafError::Auth(err) => write!(f, "leafnodes authorization: {err}"),
            LeafError::LoginChanged => f.write_str(
                "leafnodes: a reload cannot add or remove the leafnodes authorization block, nor make leafnodes tls verify_and_map (or spiffe_trust_domain) differ from (or match) the clients'; restart the server",
            ),
        }
    }
}

impl std::error::Error for LeafError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LeafError::Bind(err) => Some(err),
            LeafError::Tls(err) | LeafError::RemoteTls(err) => Some(err),
            LeafError::Auth(err) => Some(err),
            LeafError::Credentials(..) | LeafError::UnknownAccount(_) | LeafError::LoginChanged => None,
        }
    }
}

/// Subject and queue of a piece of interest in one account.
type Key = (Box<[u8]>, Option<Box<[u8]>>);

/// How many subscriptions stand behind one piece of interest, and of them:
/// how many each leaf connection holds itself (a leaf is never told of its
/// own), how many came over a route or from a hub (a hub is not told of
/// those, see [`Via::may_forward_to`]), and how many a route named as a
/// leaf node cluster's (that cluster's leafs are not told of them).
#[derive(Debug, Default)]
struct Count {
    total: u32,
    by_leaf: HashMap<u64, u32>,
    not_for_hubs: u32,
    by_origin: HashMap<String, u32>,
}

/// Where one subscription stands, for the counts.
struct Holder<'a> {
    /// The leaf connection that holds it.
    leaf: Option<u64>,
    /// A hub may not be told of it.
    not_for_hubs: bool,
    /// The leaf node cluster a route named for it.
    origin: Option<&'a str>,
}

impl Holder<'_> {
    fn of(sub: &Subscription) -> Holder<'_> {
        let via = sub.owner.via();
        Holder {
            leaf: matches!(via, Via::Leaf | Via::Hub).then_some(sub.owner.id),
            not_for_hubs: !sub.is_announced_to(Via::Hub),
            origin: (via == Via::Route).then(|| sub.leaf_cluster()).flatten(),
        }
    }
}

/// Counts one more or one fewer for `key`, forgetting it at zero.
fn bump<K, Q>(map: &mut HashMap<K, u32>, key: &Q, added: bool)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
{
    if added {
        match map.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                map.insert(key.to_owned(), 1);
            }
        }
    } else if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Count {
    fn apply(&mut self, holder: &Holder<'_>, added: bool) {
        let step = |n: &mut u32| *n = if added { *n + 1 } else { n.saturating_sub(1) };
        step(&mut self.total);
        if let Some(id) = holder.leaf {
            bump(&mut self.by_leaf, &id, added);
        }
        if holder.not_for_hubs {
            step(&mut self.not_for_hubs);
        }
        if let Some(origin) = holder.origin {
            bump(&mut self.by_origin, origin, added);
        }
    }
}

/// An established leaf connection, as the hub sees it.
#[derive(Debug)]
pub struct LeafLink {
    /// The connection (its outbound queue carries LS+/LS- and LMSG).
    pub client: Arc<Client>,
    /// The account it is bound to.
    pub account: Arc<str>,
    /// The leaf server's id and name, from its CONNECT.
    pub remote_id: String,
    /// The leaf server's name.
    pub remote_name: String,
    /// The other end is this server's hub (usually: this server dialled it;
    /// see `hub: true` for the swapped roles).
    pub spoke: bool,
    /// The interest it may be told of (a hub's `import` for this server's
    /// leaf user); everything when `None`.
    pub announce: Option<Arc<crate::perms::PermissionSet>>,
}

impl LeafLink {
    /// Whether it may be told of interest in `subject` (and `queue`).
    fn announces(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.announce.as_ref().is_none_or(|p| p.may_subscribe(subject, queue).is_allowed())
    }
}

/// Interest and leafs of one account.
#[derive(Debug, Default)]
struct AccountLeafs {
    interest: HashMap<Key, Count>,
    leafs: Vec<Arc<LeafLink>>,
    /// The account's mapping sources and service-import subjects its leafs
    /// have been told of (see [`mapped`]): each counts as one more
    /// subscription to them.
    sources: Vec<Box<[u8]>>,
}

impl AccountLeafs {
    /// 1 when `subject` (without a queue) is one of `sources`.
    fn source(&self, subject: &[u8], queue: Option<&[u8]>) -> u32 {
        u32::from(queue.is_none() && self.sources.binary_search_by(|s| (**s).cmp(subject)).is_ok())
    }
}

/// The hub: the leaf listener's settings and every leaf connected to it.
pub struct Hub {
    pub(crate) broker: Arc<Broker>,
    /// What leafs log in through: the clients' gate, or the hub's own
    /// (see `login`).
    pub(crate) gate: Arc<Gate>,
    /// `gate` is the hub's own, rebuilt by [`Hub::reload_login`].
    own_login: bool,
    pub(crate) opts: LeafnodeOptions,
    tls: Option<Arc<crate::tls::CurrentTls>>,
    pending: Arc<Pending>,
    /// With `proxy_protocol`: the load balancers whose PROXY header names
    /// the leaf's address.
    proxies: Option<crate::conn::proxied::Proxies>,
    listen_addr: Option<SocketAddr>,
    /// This server's loop-detection subject (`$LDS.<random>`): every leaf
    /// is told of it, and a leaf that reports it back closes a loop.
    loop_subject: Box<[u8]>,
    /// Per account; taken alone (a leaf's outbound queue is appended to
    /// under it, which takes only that queue's own short lock).
    accounts: Mutex<HashMap<Arc<str>, AccountLeafs>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("listen_addr", &self.listen_addr).finish_non_exhaustive()
    }
}

impl Hub {
    /// Binds the leaf listener (when the block has one), starts accepting
    /// leaf nodes and connecting to the remotes. Leafs log in through
    /// `clients` (the clients' gate) unless the block gives them a login of
    /// their own.
    pub async fn start(broker: Arc<Broker>, clients: Arc<Gate>, opts: LeafnodeOptions) -> Result<Arc<Hub>, LeafError> {
        let spokes = opts.remotes.iter().map(|r| remote::Spoke::new(&broker, r)).collect::<Result<Vec<_>, _>>()?;
        let listener = match opts.accept {
            true => Some(TcpListener::bind((opts.host.as_str(), opts.port)).await.map_err(LeafError::Bind)?),
            false => None,
        };
        let listen_addr = listener.as_ref().map(TcpListener::local_addr).transpose().map_err(LeafError::Bind)?;
        let hub = Arc::new(Hub::new(broker, &clients, opts, listen_addr)?);
        if let (Some(listener), Some(addr)) = (listener, listen_addr) {
            info!("Listening for leafnode connections on {addr}");
            tokio::spawn(listener::accept_loop(hub.clone(), listener));
        }
        for spoke in spokes {
            tokio::spawn(remote::solicit(hub.clone(), Arc::new(spoke)));
        }
        tokio::spawn(mapped::follow(Arc::downgrade(&hub), hub.broker.accounts.changed()));
        Ok(hub)
    }

    /// The hub of a server whose leaf listener is bound to `listen_addr`
    /// (if it has one), with nothing started (the session tests use it as
    /// it is); its gate is `clients` or its own, as the broker's options say.
    pub(crate) fn new(
        broker: Arc<Broker>,
        clients: &Arc<Gate>,
        opts: LeafnodeOptions,
        listen_addr: Option<SocketAddr>,
    ) -> Result<Hub, LeafError> {
        let tls = listener::leaf_tls(&opts)?.map(|t| Arc::new(crate::tls::CurrentTls::new(Some(t))));
        let (gate, own_login) = login::gate(&broker.opts, clients)?;
        let loop_subject = format!("$LDS.{}", crate::nkeys::new_nonce()).into_bytes().into_boxed_slice();
        let proxies = opts.proxy_protocol.then(|| {
            let trusted = opts.trusted_proxies.iter().filter_map(|p| crate::cidr::Cidr::parse_or_address(p));
            crate::conn::proxied::Proxies::new(trusted.collect(), &opts.accept_rate, "leafnode")
        });
        Ok(Hub {
            broker,
            gate,
            own_login,
            opts,
            tls,
            pending: Arc::new(Pending::new(MAX_PENDING_LEAFS, MAX_PENDING_LEAFS_PER_IP)),
            proxies,
            listen_addr,
            loop_subject,
            accounts: Mutex::new(HashMap::new()),
        })
    }

    /// The login a reload to `opts` gives leafs, checked before anything of
    /// the reload is applied; [`ReloadedLogin::apply`] puts it in force.
    pub fn reload_login(self: &Arc<Self>, opts: &crate::config::Options) -> Result<ReloadedLogin, LeafError> {
        let authenticator = login::reloaded(opts, self.own_login)?;
        Ok(ReloadedLogin { hub: self.clone(), authenticator })
    }

    /// Where the leaf listener is bound, if there is one.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// Leaf connections accepted and not yet logged in.
    pub fn pending_leafs(&self) -> usize {
        self.pending.count()
    }

    /// The leaf listener's TLS, when it has TLS (what certificate rotation
    /// swaps).
    pub(crate) fn tls(&self) -> Option<&Arc<crate::tls::CurrentTls>> {
        self.tls.as_ref()
    }

    /// The leafs connected now.
    pub fn leafs(&self) -> Vec<Arc<LeafLink>> {
        self.accounts.lock().values().flat_map(|a| a.leafs.iter().cloned()).collect()
    }

    /// The URL leafs are told to reconnect to.
    fn leafnode_urls(&self) -> Vec<String> {
        if self.opts.no_advertise {
            return Vec::new();
        }
        let bound = self.listen_addr.map(|a| a.to_string());
        self.opts.advertise.clone().or(bound).into_iter().collect()
    }

    /// Time a leaf has to log in.
    fn auth_timeout(&self) -> Duration {
        self.opts
            .auth_timeout
            .or(self.broker.opts.authorization.as_ref().and_then(|a| a.timeout))
            .unwrap_or(LEAF_AUTH_TIMEOUT)
    }

    /// The count `link` is told of: everyone's but its own, and with
    /// `isolate_leafnode_interest` no leaf's at all for a leaf this server
    /// accepted.
    fn seen(&self, count: &Count, link: &LeafLink) -> u32 {
        if link.spoke {
            return count.total.saturating_sub(count.not_for_hubs);
        }
        let leafs = if self.opts.isolate_leafnode_interest {
            count.by_leaf.values().sum()
        } else {
            count.by_leaf.get(&link.client.id).copied().unwrap_or(0)
        };
        let same_cluster = link.client.leaf_cluster().and_then(|c| count.by_origin.get(c)).copied().unwrap_or(0);
        count.total.saturating_sub(leafs).saturating_sub(same_cluster)
    }

    /// Whether a change of `holder`'s interest changes what `link` sees.
    fn concerns(&self, holder: &Holder<'_>, link: &LeafLink) -> bool {
        if link.spoke {
            return !holder.not_for_hubs;
        }
        let isolated = self.opts.isolate_leafnode_interest && holder.leaf.is_some();
        let same_cluster = holder.origin.is_some() && holder.origin == link.client.leaf_cluster();
        holder.leaf != Some(link.client.id) && !isolated && !same_cluster
    }

    /// Adds an established leaf and tells it of the account's interest (all
    /// of it but its own, which is none yet) and of the loop subject, under
    /// the lock, so no change is lost or reordered.
    fn register(&self, link: Arc<LeafLink>) {
        let mut accounts = self.accounts.lock();
        let account = accounts.entry(link.account.clone()).or_default();
        if account.leafs.is_empty() {
            account.sources = self.drawn_subjects(&link.account);
        }
        let mut lines = rs_plus(InterestTo::Leaf, &self.loop_subject, None, 0);
        for ((subject, queue), count) in &account.interest {
            if !link.announces(subject, queue.as_deref()) {
                continue;
            }
            let seen = self.seen(count, &link) + account.source(subject, queue.as_deref());
            if seen > 0 {
                lines.extend_from_slice(&rs_plus(InterestTo::Leaf, subject, queue.as_deref(), seen));
            }
        }
        for source in &account.sources {
            let held = account.interest.get(&(source.clone(), None)).is_some_and(|c| self.seen(c, &link) > 0);
            if !held && link.announces(source, None) {
                lines.extend_from_slice(&rs_plus(InterestTo::Leaf, source, None, 1));
            }
        }
        link.client.send(&lines);
        account.leafs.push(link);
    }

    /// Forgets a leaf that closed.
    fn unregister(&self, link: &Arc<LeafLink>) {
        let mut accounts = self.accounts.lock();
        if let Some(account) = accounts.get_mut(&link.account) {
            account.leafs.retain(|l| !Arc::ptr_eq(l, link));
        }
    }

    /// Applies a change of `delta` (+1 or -1) to the interest behind `sub`
    /// and tells each other leaf of the account what it now sees.
    fn interest_changed(&self, sub: &Subscription, added: bool) {
        let holder = Holder::of(sub);
        let key: Key = (sub.subject.clone(), sub.queue.clone());
        let mut accounts = self.accounts.lock();
        let account = accounts.entry(sub.account.name.clone()).or_default();
        let (subject, queue) = (&key.0, key.1.as_deref());
        let source = account.source(subject, queue);
        let count = account.interest.entry(key.clone()).or_default();
        count.apply(&holder, added);
        let told = account.leafs.iter().filter(|l| self.concerns(&holder, l) && l.announces(subject, queue));
        for leaf in told {
            let seen = self.seen(count, leaf) + source;
            let line = match (seen, queue, added) {
                (0, _, _) => rs_minus(InterestTo::Leaf, subject, queue),
                (_, Some(_), _) => rs_plus(InterestTo::Leaf, subject, queue, seen),
                (1, None, true) => rs_plus(InterestTo::Leaf, subject, None, 1),
                _ => continue,
            };
            leaf.client.send(&line);
        }
        if count.total == 0 {
            account.interest.remove(&key);
        }
    }
}

/// The leaf login of a reload, built and checked, not yet in force.
#[derive(Debug)]
#[must_use = "a reloaded login does nothing until applied"]
pub struct ReloadedLogin {
    hub: Arc<Hub>,
    /// The hub's own gate's new authenticator; `None` when leafs log in
    /// through the clients' gate, which the reload replaces itself.
    authenticator: Option<Arc<dyn crate::auth::Authenticator>>,
}

impl ReloadedLogin {
    /// Puts the new leaf users in force: every leaf re-checks its login
    /// (and its permissions) against them, and one whose user is gone or
    /// whose credentials or account changed is closed, as clients are.
    /// Applied after the accounts, so a re-checked leaf finds its
    /// account's new state.
    pub fn apply(self) {
        if let Some(authenticator) = self.authenticator {
            self.hub.gate.replace(authenticator);
        }
    }
}

/// Every interest that may travel to leafs (local clients', routes' and
/// other leafs'), counted per account, subject and queue.
impl InterestObserver for Hub {
    fn side(&self) -> Via {
        Via::Leaf
    }

    fn interest_added(&self, sub: &Subscription) {
        self.interest_changed(sub, true);
    }

    fn interest_removed(&self, sub: &Subscription) {
        self.interest_changed(sub, false);
    }
}
