//! Leaf nodes, hub side: the port nats-server (and warden) leaf nodes
//! connect to. A leaf logs in like a client (the gate: config users, nkeys,
//! user JWTs whose `allowed_connection_types` include `LEAFNODE`, the auth
//! callout), is bound to that user's account, and then trades interest
//! (`LS+`/`LS-`) and messages (`LMSG`/`HMSG`) with this server in that one
//! account. Every message and every interest a leaf sends is checked
//! against the leaf user's publish and subscribe permissions (nats-server
//! did not check `LMSG` at all before 2.14).
//!
//! [`Hub`] holds the listener's settings, the leafs by account and the
//! interest each has been told of; it observes the broker's interest like
//! the cluster does. [`session::LeafSession`] is the sans-IO protocol of
//! one connection, run on `conn`'s driver by [`listener`].

mod listener;
mod remote;
mod session;

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
use crate::proto::route::{rs_minus, rs_plus};

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
    /// A remote's `credentials` file could not be read or has no seed.
    Credentials(std::path::PathBuf, String),
    /// A remote names an account this server does not have.
    UnknownAccount(String),
}

impl std::fmt::Display for LeafError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeafError::Bind(err) => write!(f, "cannot listen for leaf nodes: {err}"),
            LeafError::Tls(err) => write!(f, "leafnodes tls: {err}"),
            LeafError::Credentials(path, why) => write!(f, "leafnode remote credentials {}: {why}", path.display()),
            LeafError::UnknownAccount(name) => write!(f, "leafnode remote: no account {name:?}"),
        }
    }
}

impl std::error::Error for LeafError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LeafError::Bind(err) => Some(err),
            LeafError::Tls(err) => Some(err),
            LeafError::Credentials(..) | LeafError::UnknownAccount(_) => None,
        }
    }
}

/// Subject and queue of a piece of interest in one account.
type Key = (Box<[u8]>, Option<Box<[u8]>>);

/// How many subscriptions stand behind one piece of interest, and how many
/// of them each leaf holds itself (a leaf is never told of its own).
#[derive(Debug, Default)]
struct Count {
    total: u32,
    by_leaf: HashMap<u64, u32>,
}

impl Count {
    /// The count a leaf is told: everyone's but its own.
    fn seen_by(&self, leaf: u64) -> u32 {
        self.total.saturating_sub(self.by_leaf.get(&leaf).copied().unwrap_or(0))
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
    /// This server dialled it (it is the hub, this server the leaf).
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
}

/// The hub: the leaf listener's settings and every leaf connected to it.
pub struct Hub {
    pub(crate) broker: Arc<Broker>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) opts: LeafnodeOptions,
    tls: Option<listener::LeafTls>,
    pending: Arc<Pending>,
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
    /// leaf nodes and connecting to the remotes.
    pub async fn start(broker: Arc<Broker>, gate: Arc<Gate>, opts: LeafnodeOptions) -> Result<Arc<Hub>, LeafError> {
        let spokes = opts.remotes.iter().map(|r| remote::Spoke::new(&broker, r)).collect::<Result<Vec<_>, _>>()?;
        let listener = match opts.accept {
            true => Some(TcpListener::bind((opts.host.as_str(), opts.port)).await.map_err(LeafError::Bind)?),
            false => None,
        };
        let listen_addr = listener.as_ref().map(TcpListener::local_addr).transpose().map_err(LeafError::Bind)?;
        let hub = Arc::new(Hub::new(broker, gate, opts, listen_addr)?);
        if let (Some(listener), Some(addr)) = (listener, listen_addr) {
            info!("Listening for leafnode connections on {addr}");
            tokio::spawn(listener::accept_loop(hub.clone(), listener));
        }
        for spoke in spokes {
            tokio::spawn(remote::solicit(hub.clone(), Arc::new(spoke)));
        }
        Ok(hub)
    }

    /// The hub of a server whose leaf listener is bound to `listen_addr`
    /// (if it has one), with nothing started (the session tests use it as
    /// it is).
    pub(crate) fn new(
        broker: Arc<Broker>,
        gate: Arc<Gate>,
        opts: LeafnodeOptions,
        listen_addr: Option<SocketAddr>,
    ) -> Result<Hub, LeafError> {
        let tls = listener::leaf_tls(&opts)?;
        let loop_subject = format!("$LDS.{}", crate::nkeys::new_nonce()).into_bytes().into_boxed_slice();
        Ok(Hub {
            broker,
            gate,
            opts,
            tls,
            pending: Arc::new(Pending::new(MAX_PENDING_LEAFS, MAX_PENDING_LEAFS_PER_IP)),
            listen_addr,
            loop_subject,
            accounts: Mutex::new(HashMap::new()),
        })
    }

    /// Where the leaf listener is bound, if there is one.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// Leaf connections accepted and not yet logged in.
    pub fn pending_leafs(&self) -> usize {
        self.pending.count()
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
        if self.opts.isolate_leafnode_interest && !link.spoke {
            count.total.saturating_sub(count.by_leaf.values().sum())
        } else {
            count.seen_by(link.client.id)
        }
    }

    /// Adds an established leaf and tells it of the account's interest (all
    /// of it but its own, which is none yet) and of the loop subject, under
    /// the lock, so no change is lost or reordered.
    fn register(&self, link: Arc<LeafLink>) {
        let mut accounts = self.accounts.lock();
        let account = accounts.entry(link.account.clone()).or_default();
        let mut lines = rs_plus(None, &self.loop_subject, None, 0);
        for ((subject, queue), count) in &account.interest {
            if !link.announces(subject, queue.as_deref()) {
                continue;
            }
            let seen = self.seen(count, &link);
            if seen > 0 {
                lines.extend_from_slice(&rs_plus(None, subject, queue.as_deref(), seen));
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
        let owner = (sub.owner.via() == Via::Leaf).then_some(sub.owner.id);
        let key: Key = (sub.subject.clone(), sub.queue.clone());
        let mut accounts = self.accounts.lock();
        let account = accounts.entry(sub.account.name.clone()).or_default();
        let count = account.interest.entry(key.clone()).or_default();
        if added {
            count.total += 1;
            if let Some(id) = owner {
                *count.by_leaf.entry(id).or_insert(0) += 1;
            }
        } else {
            count.total = count.total.saturating_sub(1);
            if let Some(id) = owner {
                if let Some(n) = count.by_leaf.get_mut(&id) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        count.by_leaf.remove(&id);
                    }
                }
            }
        }
        let (subject, queue) = (&key.0, key.1.as_deref());
        // With isolate_leafnode_interest a leaf's interest reaches no other
        // leaf this server accepted (only the hubs it dialled, and routes).
        let isolated = self.opts.isolate_leafnode_interest && owner.is_some();
        let told = account
            .leafs
            .iter()
            .filter(|l| Some(l.client.id) != owner && (l.spoke || !isolated) && l.announces(subject, queue));
        for leaf in told {
            let seen = self.seen(count, leaf);
            let line = match (seen, queue, added) {
                (0, _, _) => rs_minus(None, subject, queue),
                (_, Some(_), _) => rs_plus(None, subject, queue, seen),
                (1, None, true) => rs_plus(None, subject, None, 1),
                _ => continue,
            };
            leaf.client.send(&line);
        }
        if count.total == 0 {
            account.interest.remove(&key);
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
