//! Accounts: isolated subject spaces. Each account has its own
//! subscription index, so a message published in one reaches only that
//! account's subscribers and those of accounts importing it.
//!
//! # Pieces and who owns them
//! - [`Account`]: one per tenant, behind an `Arc`, held by the registry,
//!   by every connection logged in to it (resolved once, at CONNECT) and by
//!   the subscriptions in its index. Its name and index never change; what
//!   a reload can change (limits, imports, exports) is one [`AccountState`]
//!   swapped whole. Its subject mappings are part of that state; each
//!   connection takes them into its own `Mapper` when it logs in and after
//!   every reload.
//! - [`Accounts`]: the registry by name, always holding the global account
//!   `$G` and, unless disabled, the system account.
//! - [`StreamImport`], [`ServiceImport`]: compiled imports (see `imports`),
//!   with the bounded [`ReplyMap`] of a service import's open requests.

mod imports;
mod registry;
mod replies;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;

use super::inbox::RequestBudget;
use super::router::Router;
use super::{Client, ClientKind};
use crate::config::{AccountLimits, Export};

pub use imports::{ServiceImport, StreamImport};
pub use registry::{Accounts, Changes};
pub use replies::ReplyMap;

/// What a reload may change about an account.
#[derive(Debug, Default)]
pub struct AccountState {
    /// `limits`.
    pub limits: AccountLimits,
    /// Stream imports, compiled.
    pub streams: Vec<Arc<StreamImport>>,
    /// Service imports, compiled.
    pub services: Vec<Arc<ServiceImport>>,
    /// Exports as configured (for monitoring; imports were checked
    /// against them when they were compiled).
    pub exports: Vec<Export>,
    /// Whether this is the system account.
    pub is_system: bool,
    /// `limits { rate_limit }`: the account's publish rate on this server,
    /// shared by its connections (a reload makes a fresh, full one).
    pub rate: Option<Arc<crate::broker::rate::SharedRate>>,
    /// When this state was made (the account's config applied, at start or
    /// by a reload): nats-server's `update_time` in `/accountz` and the
    /// `$SYS` account `INFO`, which the `nats` CLI shows.
    pub updated: Option<SystemTime>,
    /// `mappings`, compiled for this server's cluster; `None` when there
    /// are none (what a publish tests first).
    pub mappings: Option<Arc<crate::subject::Mappings>>,
    /// `msg_trace`: where messages with a sampled `traceparent` are traced
    /// (read only when a message carries one).
    pub msg_trace: Option<crate::config::MsgTrace>,
    /// The internal subscriptions of `services`: each import's local
    /// subject (in this account) and its responses (in the exporter).
    internal_subs: Vec<registry::ImportSubs>,
}

/// One account. See the module docs.
#[derive(Debug)]
pub struct Account {
    /// The account's name (`$G` for the global account).
    pub name: Arc<str>,
    /// The account's subscription index.
    pub router: Router,
    /// Owner of the account's internal subscriptions (service imports and
    /// their responses); never connected, never written to.
    internal: Arc<Client>,
    state: RwLock<Arc<AccountState>>,
    /// Live connections logged in to the account on this server.
    connections: AtomicUsize,
    /// Live leaf node connections bound to the account on this server.
    leafnodes: AtomicUsize,
    /// Set when a reload removed the account: its connections close.
    removed: AtomicBool,
    /// The current state has mappings: lets the service-import path skip
    /// the state's lock when it has none.
    has_mappings: AtomicBool,
    /// Its `$SYS` requests' budget on this server (see `broker::inbox`).
    pub requests: RequestBudget,
}

impl Account {
    /// An empty account.
    pub fn new(name: Arc<str>, is_system: bool) -> Account {
        let nowhere = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        Account {
            name,
            router: Router::new(),
            internal: Arc::new(Client::with_kind(0, nowhere, 0, ClientKind::Internal)),
            state: RwLock::new(Arc::new(AccountState { is_system, ..AccountState::default() })),
            connections: AtomicUsize::new(0),
            leafnodes: AtomicUsize::new(0),
            removed: AtomicBool::new(false),
            has_mappings: AtomicBool::new(false),
            requests: RequestBudget::default(),
        }
    }

    /// The current limits, imports and exports (a snapshot: read at
    /// CONNECT, SUB and by monitoring, never per message).
    pub fn state(&self) -> Arc<AccountState> {
        self.state.read().clone()
    }

    /// Whether this is the system account.
    pub fn is_system(&self) -> bool {
        self.state.read().is_system
    }

    /// The stream imports a subscription to `subject` draws from, with the
    /// subject of the shadow each needs in its exporter's index.
    pub fn shadows_for(&self, subject: &[u8]) -> Vec<(Arc<StreamImport>, Vec<u8>)> {
        let state = self.state.read();
        state.streams.iter().filter_map(|import| import.shadow_subject(subject).map(|s| (import.clone(), s))).collect()
    }

    /// Counts a connection in, unless the account's `max_connections` is
    /// reached (then false, and nothing is counted).
    pub fn try_connect(&self) -> bool {
        let max = self.state.read().limits.max_connections.unwrap_or(usize::MAX);
        self.connections.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
    }

    /// Counts a leaf node connection in, unless the account's
    /// `max_leafnodes` is reached (then false, and nothing is counted).
    pub fn try_connect_leaf(&self) -> bool {
        let max = self.state.read().limits.max_leafnodes.unwrap_or(usize::MAX);
        self.leafnodes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
    }

    /// Counts a leaf node connection out (once per successful
    /// [`Account::try_connect_leaf`]).
    pub fn disconnect_leaf(&self) {
        let _ = self.leafnodes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Counts a connection out (once per successful [`Account::try_connect`]).
    pub fn disconnect(&self) {
        let _ = self.connections.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Live connections of the account on this server.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Leaf node connections bound to the account on this server (what
    /// `max_leafnodes` bounds).
    pub fn leafnodes(&self) -> usize {
        self.leafnodes.load(Ordering::Acquire)
    }

    /// Whether the account's current state has subject mappings.
    pub fn has_mappings(&self) -> bool {
        self.has_mappings.load(Ordering::Acquire)
    }

    /// Whether a reload removed the account.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// The owner of internal subscriptions.
    pub(crate) fn internal_client(&self) -> &Arc<Client> {
        &self.internal
    }
}
