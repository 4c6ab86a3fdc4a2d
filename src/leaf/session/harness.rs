//! A leaf session driven as `conn::driver` drives it, but synchronously
//! and without a socket or a clock: the session tests and the
//! `leaf_session` fuzz target (`fuzz/`, through the `fuzzing` feature)
//! share it, so what the fuzzer checks is the session the tests pin.
//!
//! [`Harness`] is one hub of a fresh broker with a local subscriber on `>`
//! in `$G` (so whatever a leaf's messages deliver is seen), whose logins
//! are answered at once from a fixed table ([`Harness::verdict`]) instead
//! of by the gate. [`Harness::run`] plays one whole connection, hub or
//! spoke side, and returns the bytes it produced; [`Harness::at_rest`]
//! says whether the hub is back where it was before (no interest, no leaf
//! registered, no pending slot, no leaf counted in the account).
//! Every session of a harness gets the same client id and the same `now`,
//! so two runs on the same input produce the same bytes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Event, Hub, LeafSession, Login, Protocol, SpokeLogin, SpokeRules};
use crate::auth::{FailureThrottle, Gate, Guard, Identity, NoAuth, RefusalReason, Verdict, Verifier};
use crate::broker::{Broker, Client, ClientKind, CloseReason, InterestObserver, ServerIdentity, Subscription};
use crate::config::{LeafnodeOptions, Options, Permissions, ResponsePermission, SubjectRules};
use crate::perms::PermissionSet;

/// Why a harness could not be built (none of these depend on input).
#[derive(Debug)]
#[non_exhaustive]
pub enum HarnessError {
    /// The server key could not be made.
    Identity(crate::nkeys::NkeyError),
    /// The accounts of the options did not configure.
    Accounts(crate::config::AccountsError),
    /// The hub could not be made.
    Hub(super::super::LeafError),
    /// The `edge` user's permissions did not compile.
    Permissions(crate::perms::PermsError),
    /// No pending slot was free for a new leaf (a previous session kept one).
    NoPendingSlot,
}

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HarnessError::Identity(err) => write!(f, "server identity: {err}"),
            HarnessError::Accounts(err) => write!(f, "accounts: {err}"),
            HarnessError::Hub(err) => write!(f, "hub: {err}"),
            HarnessError::Permissions(err) => write!(f, "edge permissions: {err}"),
            HarnessError::NoPendingSlot => f.write_str("no pending leaf slot free"),
        }
    }
}

impl std::error::Error for HarnessError {}

/// The address every harness leaf connects from.
const LEAF_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000);

/// A hub of a fresh broker with `opts`, observing its interest, with
/// nothing started and no login needed by the gate (the tests and
/// [`Harness`] answer logins themselves).
pub(crate) fn hub_on(opts: Options, leaf_opts: LeafnodeOptions) -> Result<Arc<Hub>, HarnessError> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4222);
    let identity = ServerIdentity::new(None).map_err(HarnessError::Identity)?;
    let broker = Arc::new(Broker::new(opts, addr, identity));
    broker.configure_accounts(&broker.opts).map_err(HarnessError::Accounts)?;
    let guard = Guard::new(Arc::new(Verifier::new(1)), FailureThrottle::new(Duration::ZERO));
    let gate = Arc::new(Gate::new(
        Arc::new(NoAuth::new(Arc::new(PermissionSet::unrestricted()))),
        guard,
        Duration::from_secs(2),
    ));
    let listen = SocketAddr::new(addr.ip(), 7422);
    let hub = Arc::new(Hub::new(broker.clone(), &gate, leaf_opts, Some(listen)).map_err(HarnessError::Hub)?);
    broker.observe_interest(vec![Arc::downgrade(&hub) as std::sync::Weak<dyn InterestObserver>]);
    Ok(hub)
}

/// A leaf connection with client id `id` accepted at `now` (it queued the
/// hub's INFO), or `None` when no pending slot is free.
pub(crate) fn accept(hub: &Arc<Hub>, id: u64, now: Instant) -> Option<LeafSession> {
    let client = Arc::new(Client::with_kind(id, LEAF_ADDR, 1 << 20, ClientKind::Leaf));
    let slot = hub.pending.admit(client.addr.ip(), true)?;
    let (session, info) = LeafSession::new(hub.clone(), client.clone(), slot, now);
    client.send(&info);
    Some(session)
}

/// Which end of the link this server plays in a [`Harness::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A leaf connected to this server (the input is the leaf's).
    Hub,
    /// This server dialled a hub (the input is the hub's); it logs in as
    /// `leaf` with a password, so its CONNECT is the same every run.
    Spoke,
}

/// What one connection produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes queued to the peer (after the hub's greeting, whose nonce
    /// differs every run).
    pub to_peer: Vec<u8>,
    /// Bytes queued to the local subscriber on `>`.
    pub delivered: Vec<u8>,
    /// Why the session closed; `None` when the input ran out first.
    pub closed: Option<CloseReason>,
}

/// A hub, a local subscriber on `>`, and a fixed login table. See the
/// module doc.
#[derive(Debug)]
pub struct Harness {
    hub: Arc<Hub>,
    /// The local subscriber whose queue records deliveries.
    local: Arc<Client>,
    /// Its subscription, the one piece of interest the hub holds at rest.
    local_sub: Arc<Subscription>,
    /// The client id every session of this harness gets.
    leaf_id: u64,
    /// The instant every session of this harness runs at.
    now: Instant,
    /// `edge`'s permissions: publish `up.>` (and answer requests),
    /// subscribe `down.>`.
    edge: Arc<PermissionSet>,
}

/// A CONNECT that logs in as `leaf`, whom [`Harness::verdict`] lets do
/// anything.
pub const LOGIN_LEAF: &[u8] =
    b"CONNECT {\"user\":\"leaf\",\"pass\":\"pw\",\"server_id\":\"NLEAF\",\"headers\":true}\r\n";
/// A CONNECT that logs in as `edge`, whom [`Harness::verdict`] restricts.
pub const LOGIN_EDGE: &[u8] =
    b"CONNECT {\"user\":\"edge\",\"pass\":\"pw\",\"server_id\":\"NEDGE\",\"headers\":true}\r\n";
/// The INFO a hub greets this server with when it dialled (no
/// `info_on_connect`: the link is established on it).
pub const HUB_INFO: &[u8] =
    b"INFO {\"server_id\":\"NHUB\",\"client_id\":7,\"nonce\":\"n0nce\",\"headers\":true,\"leafnode_urls\":[]}\r\n";

impl Harness {
    /// A harness whose sessions run at `now`, with a small control line
    /// (256) and payload (4096) so the fuzzer reaches both limits.
    pub fn new(now: std::time::Instant) -> Result<Harness, HarnessError> {
        let opts = Options { ping_max: 2, max_control_line: 256, max_payload: 4096, ..Options::default() };
        let hub = hub_on(opts, LeafnodeOptions { allow_unauthenticated: true, ..LeafnodeOptions::default() })?;
        let broker = &hub.broker;
        let local_addr = SocketAddr::new(LEAF_ADDR.ip(), 1);
        let local = Arc::new(Client::new(broker.next_client_id(), local_addr, 1 << 24));
        let local_sub =
            Arc::new(Subscription::new(local.clone(), broker.accounts.global().clone(), b">", None, b"1", None));
        broker.add_subscription(local_sub.clone());
        let rules = |allow: &str| Some(SubjectRules { allow: Some(vec![allow.into()]), deny: None, literal: None });
        let perms = Permissions {
            publish: rules("up.>"),
            subscribe: rules("down.>"),
            allow_responses: Some(ResponsePermission { max: Some(1), ..Default::default() }),
        };
        let edge = Arc::new(PermissionSet::compile(&perms).map_err(HarnessError::Permissions)?);
        let leaf_id = broker.next_client_id();
        Ok(Harness { hub, local, local_sub, leaf_id, now: Instant::from_std(now), edge })
    }

    /// The login table: `leaf` may do anything, `edge` is restricted (see
    /// [`Harness`]), anyone else is refused.
    fn verdict(&self, login: &Login) -> Verdict {
        let permissions = match login.claims.user.as_deref() {
            Some("leaf") => Arc::new(PermissionSet::unrestricted()),
            Some("edge") => self.edge.clone(),
            _ => return Verdict::Refuse(RefusalReason::BadCredentials),
        };
        Verdict::Accept(Identity::global(login.claims.user.clone(), permissions, 0))
    }

    /// A new session of `role`, its greeting drained.
    fn open(&self, role: Role) -> Result<LeafSession, HarnessError> {
        let session = match role {
            Role::Hub => accept(&self.hub, self.leaf_id, self.now).ok_or(HarnessError::NoPendingSlot)?,
            Role::Spoke => {
                let client = Arc::new(Client::with_kind(self.leaf_id, LEAF_ADDR, 1 << 20, ClientKind::Leaf));
                let rules = Arc::new(SpokeRules {
                    account: "$G".into(),
                    deny_imports: vec!["secret.>".into()],
                    deny_exports: vec!["secret.>".into()],
                });
                let login = SpokeLogin { as_hub: false, user: Some("leaf".into()), pass: None, jwt: None, key: None };
                LeafSession::solicited(self.hub.clone(), client, rules, login, self.now)
            }
        };
        session.client.outbound.drain();
        Ok(session)
    }

    /// Plays one connection of `role` whose peer sends `chunks`, one read
    /// each, as the driver would: every complete op handled, a login
    /// answered at once, the batch ended after each step; then the session
    /// finishes (closed, or when the input ran out).
    pub fn run<'a>(&self, role: Role, chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Outcome, HarnessError> {
        let mut session = self.open(role)?;
        let mut buf = Vec::new();
        let mut closed = None;
        'read: for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                let received = session.receive(&buf, self.now);
                buf.drain(..received.used.min(buf.len()));
                session.end_batch();
                match received.event {
                    // A leaf has no publish rate: nothing holds it.
                    None | Some(Event::Hold(_)) => break,
                    Some(Event::Close(reason)) => {
                        closed = Some(reason);
                        break 'read;
                    }
                    Some(Event::Authenticate(login)) => {
                        let answered = session.authenticated(self.verdict(&login));
                        session.end_batch();
                        if let Err(reason) = answered {
                            closed = Some(reason);
                            break 'read;
                        }
                    }
                }
            }
        }
        let to_peer = session.client.outbound.drain();
        let reason = closed.unwrap_or(CloseReason::ClientClosed);
        session.client.outbound.close(reason);
        session.finish(reason);
        Ok(Outcome { to_peer, delivered: self.local.outbound.drain(), closed })
    }

    /// `Ok` when the hub is back where it was before any session: the
    /// account's router holds only the local subscriber, the hub's interest
    /// counts only it, no leaf is registered or pending, and the account
    /// counts no leaf; otherwise what was left behind.
    pub fn at_rest(&self) -> Result<(), String> {
        let account = self.hub.broker.accounts.global();
        let subs = account.router.subscriptions();
        if subs.len() != 1 || !subs.iter().all(|s| Arc::ptr_eq(s, &self.local_sub)) {
            return Err(format!("{} subscriptions in $G, not just the local one", subs.len()));
        }
        if !self.hub.leafs().is_empty() {
            return Err("a leaf is still registered".into());
        }
        if self.hub.pending_leafs() != 0 {
            return Err("a pending slot is still held".into());
        }
        if account.leafnodes() != 0 {
            return Err(format!("the account counts {} leafs", account.leafnodes()));
        }
        let accounts = self.hub.accounts.lock();
        for (name, leafs) in accounts.iter() {
            let only_local = leafs.interest.iter().all(|((subject, queue), count)| {
                name.as_ref() == "$G"
                    && &**subject == b">"
                    && queue.is_none()
                    && count.total == 1
                    && count.by_leaf.is_empty()
            });
            if !only_local || !leafs.leafs.is_empty() {
                return Err(format!("the hub still counts interest or leafs in {name}"));
            }
        }
        Ok(())
    }
}
