//! A gateway session driven as `conn::driver` drives it, but synchronously
//! and without a socket or a clock: the session tests and the
//! `gateway_session` fuzz target (`fuzz/`, through the `fuzzing` feature)
//! share it, so what the fuzzer checks is the session the tests pin.
//!
//! [`Harness`] is cluster `A`'s gateways on a fresh broker, listing
//! cluster `B`, with a local subscriber on `>` in `$G` (so whatever an
//! inbound gateway's messages deliver is seen, and every inbound link is
//! told of that interest). Logins are answered at once against the
//! gateway credentials `gw` / `gw-pass`. [`Harness::run`] plays one whole
//! connection, inbound or outbound; [`Harness::at_rest`] says whether the
//! gateways are back where they were (no link, no pending slot, no
//! interest of another cluster left in the account).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::super::{GatewayUrl, Gateways};
use super::{Accepted, GatewaySession};
use crate::auth::{FailureThrottle, Guard, Verifier};
use crate::broker::{
    Broker, Client, ClientKind, CloseReason, InterestObserver, ReplyPaths, RoutedReplies, ServerIdentity, Subscription,
};
use crate::config::{GatewayOptions, Options, RemoteGateway, RouteAuthorization};
use crate::conn::Event;
use crate::secret::Secret;

/// Why a harness could not be built (none of these depend on input).
#[derive(Debug)]
#[non_exhaustive]
pub enum HarnessError {
    /// The server key could not be made.
    Identity(crate::nkeys::NkeyError),
    /// The accounts of the options did not configure.
    Accounts(crate::config::AccountsError),
    /// The gateways could not be made.
    Gateways(super::super::GatewayError),
    /// No pending slot was free (a previous session kept one).
    NoPendingSlot,
}

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HarnessError::Identity(err) => write!(f, "server identity: {err}"),
            HarnessError::Accounts(err) => write!(f, "accounts: {err}"),
            HarnessError::Gateways(err) => write!(f, "gateways: {err}"),
            HarnessError::NoPendingSlot => f.write_str("no pending gateway slot free"),
        }
    }
}

impl std::error::Error for HarnessError {}

/// The address every harness peer connects from.
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000);

/// Which end of the link this server plays in a [`Harness::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A server of cluster `B` dialled this one (the input is its).
    Inbound,
    /// This server dialled cluster `B` (the input is the other server's).
    Outbound,
}

/// What one connection produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes queued to the peer (after this server's greeting).
    pub to_peer: Vec<u8>,
    /// Bytes queued to the local subscriber on `>`.
    pub delivered: Vec<u8>,
    /// Why the session closed; `None` when the input ran out first.
    pub closed: Option<CloseReason>,
}

/// What a server of cluster `B` that dialled this one sends to log in.
pub const LOGIN: &[u8] = b"CONNECT {\"gateway\":\"B\",\"user\":\"gw\",\"pass\":\"gw-pass\",\"name\":\"NB1\",\"headers\":true}\r\nINFO {\"gateway\":\"B\",\"server_id\":\"NB1\",\"gateway_iom\":true}\r\n";
/// The INFO a server of cluster `B` greets this server with when it dialled.
pub const REMOTE_INFO: &[u8] = b"INFO {\"server_id\":\"NB2\",\"gateway\":\"B\",\"gateway_nrp\":true,\"gateway_iom\":true,\"headers\":true,\"gateway_urls\":[\"127.0.0.1:7223\"]}\r\n";

/// Cluster `A`'s gateways, a local subscriber on `>`, and a fixed login.
#[derive(Debug)]
pub struct Harness {
    pub(crate) gateways: Arc<Gateways>,
    local: Arc<Client>,
    local_sub: Arc<Subscription>,
    /// The client id every session gets.
    id: u64,
    now: Instant,
}

impl Harness {
    /// A harness whose sessions run at `now`, with a small control line
    /// (256) and payload (4096) so the fuzzer reaches both limits.
    pub fn new(now: std::time::Instant) -> Result<Harness, HarnessError> {
        Harness::with_account_bound(now, None)
    }

    /// [`Harness::new`] whose links hold at most `bound` (entries, bytes)
    /// of interest per account, when given.
    pub(crate) fn with_account_bound(
        now: std::time::Instant,
        bound: Option<(usize, usize)>,
    ) -> Result<Harness, HarnessError> {
        let opts = Options { ping_max: 2, max_control_line: 256, max_payload: 4096, ..Options::default() };
        let addr = SocketAddr::new(PEER.ip(), 4222);
        let broker = Arc::new(Broker::new(opts, addr, ServerIdentity::new(None).map_err(HarnessError::Identity)?));
        broker.configure_accounts(&broker.opts).map_err(HarnessError::Accounts)?;
        let guard = Guard::new(Arc::new(Verifier::new(1)), FailureThrottle::new(Duration::ZERO));
        let gw_opts = GatewayOptions {
            name: "A".into(),
            port: 7222,
            authorization: Some(RouteAuthorization {
                user: "gw".into(),
                password: Some(Secret::new("gw-pass")),
                timeout: None,
            }),
            gateways: vec![RemoteGateway {
                name: "B".into(),
                urls: vec!["nats://gw:gw-pass@127.0.0.1:7223".into()],
                tls: None,
            }],
            ..GatewayOptions::default()
        };
        let listen = SocketAddr::new(PEER.ip(), 7222);
        let gateways = Gateways::new(broker.clone(), guard, None, gw_opts, listen).map_err(HarnessError::Gateways)?;
        if let Some(bound) = bound {
            gateways.set_account_bound(bound);
        }
        let paths = Arc::downgrade(&gateways) as std::sync::Weak<dyn ReplyPaths>;
        let _ = broker.routed_replies.set(RoutedReplies::new("A", &broker.identity.id, paths));
        broker.observe_interest(vec![Arc::downgrade(&gateways) as std::sync::Weak<dyn InterestObserver>]);
        let local = Arc::new(Client::new(broker.next_client_id(), SocketAddr::new(PEER.ip(), 1), 1 << 24));
        let local_sub =
            Arc::new(Subscription::new(local.clone(), broker.accounts.global().clone(), b">", None, b"1", None));
        broker.add_subscription(local_sub.clone());
        let id = broker.next_client_id();
        Ok(Harness { gateways, local, local_sub, id, now: Instant::from_std(now) })
    }

    /// The broker under the harness.
    pub(crate) fn broker(&self) -> &Arc<Broker> {
        &self.gateways.broker
    }

    /// A new session of `role`, its greeting drained.
    pub(crate) fn open(&self, role: Role) -> Result<GatewaySession, HarnessError> {
        let client = Arc::new(Client::with_kind(self.id, PEER, 1 << 20, ClientKind::Gateway));
        let session = match role {
            Role::Inbound => {
                let slot = self.gateways.pending.admit(PEER.ip(), true).ok_or(HarnessError::NoPendingSlot)?;
                let accepted = Accepted { slot, deadline: self.now + Duration::from_secs(2), certificate: None };
                GatewaySession::new(self.gateways.clone(), client, None, Some(accepted), self.now)
            }
            Role::Outbound => {
                let url = GatewayUrl::parse("nats://127.0.0.1:7223").ok_or(HarnessError::NoPendingSlot)?;
                GatewaySession::new(self.gateways.clone(), client, Some(("B".into(), url)), None, self.now)
            }
        };
        session.client().outbound.drain();
        Ok(session)
    }

    /// Feeds `chunks` to `session` as the driver would: every complete op
    /// handled, a login answered at once, the batch ended after each step.
    /// Returns why it closed, if it did.
    pub(crate) fn feed<'a>(
        &self,
        session: &mut GatewaySession,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<CloseReason> {
        let mut buf = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                let received = session.receive(&buf, self.now);
                buf.drain(..received.used.min(buf.len()));
                session.end_batch();
                match received.event {
                    None | Some(Event::Hold(_)) => break,
                    Some(Event::Close(reason)) => return Some(reason),
                    Some(Event::Authenticate(login)) => {
                        let ok =
                            self.gateways.credentials.as_ref().is_none_or(|c| c.admit(login.user, login.pass, None));
                        let answered = session.authenticated(ok);
                        session.end_batch();
                        if let Err(reason) = answered {
                            return Some(reason);
                        }
                    }
                }
            }
        }
        None
    }

    /// Plays one whole connection of `role` whose peer sends `chunks`;
    /// then the session finishes.
    pub fn run<'a>(&self, role: Role, chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Outcome, HarnessError> {
        let mut session = self.open(role)?;
        let closed = self.feed(&mut session, chunks);
        Ok(self.close(session, closed))
    }

    /// Ends `session` as the driver does and says what it produced.
    pub(crate) fn close(&self, mut session: GatewaySession, closed: Option<CloseReason>) -> Outcome {
        let to_peer = session.client().outbound.drain();
        let reason = closed.unwrap_or(CloseReason::ClientClosed);
        session.client().outbound.close(reason);
        session.finish();
        Outcome { to_peer, delivered: self.local.outbound.drain(), closed }
    }

    /// `Ok` when the gateways are back where they were before any
    /// session; otherwise what was left behind.
    pub fn at_rest(&self) -> Result<(), String> {
        let subs = self.broker().accounts.global().router.subscriptions();
        if subs.len() != 1 || !subs.iter().all(|s| Arc::ptr_eq(s, &self.local_sub)) {
            return Err(format!("{} subscriptions in $G, not just the local one", subs.len()));
        }
        if !self.gateways.links().is_empty() {
            return Err("a gateway link is still registered".into());
        }
        if self.gateways.pending_gateways() != 0 {
            return Err("a pending slot is still held".into());
        }
        if !self.gateways.announced.lock().inbound.is_empty() {
            return Err("an inbound link still hears interest".into());
        }
        Ok(())
    }
}
