//! The route protocol of one connection, sans IO: bytes and `now` in; out
//! go the bytes it queued (to the peer, and to the local subscribers of the
//! messages it forwards), the route credentials to check, and the next
//! deadline. `route.rs` puts it on the connection driver; the unit tests in
//! `session/tests.rs` drive it directly, with no socket and no clock.
//!
//! A connection this server dialled sends CONNECT and INFO at once and is
//! established by the peer's INFO. One the peer dialled must first send a
//! CONNECT whose credentials pass (the same throttle and verification pool
//! as clients, through the driver's credential check), within the route
//! auth timeout, before its INFO establishes it. Interest and messages
//! before that are refused.
// Sans IO: `now` comes from the driver (clippy.toml).
#![deny(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info};

use super::limits::{MAX_REMOTE_INTEREST, MAX_REMOTE_INTEREST_BYTES};
use super::link::{RouteLink, Slot};
use super::solicit::RouteUrl;
use super::{Cluster, Dial, InterestKey, Target};
use crate::audit::{Event as AuditEvent, Method};
use crate::broker::peer_interest::{interest_bytes, PeerInterest};
use crate::broker::Subscription;
use crate::broker::{audit_conn, Account, Broker, Client, CloseReason, Fanout, Message, Origin, PendingSlot, Trace};
use crate::conn::{Event, KeepAlive, Received, FIRST_PEER_PING};
use crate::proto::msg_trace;
use crate::proto::route::{self, json_line, Dialect, RouteConnect, RouteInfo, RouteOp};
use crate::secret::Secret;
use crate::subject;
use crate::tls::PeerIdentity;

/// Time a peer has to complete the route handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a route connection ended, for the dialler's retry decision.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RouteEnd {
    /// The URL led back to this server.
    ToSelf,
    /// Another route to the same server won the tie-break.
    Duplicate(String),
    /// The peer has no place for this connection: its pool is full, or
    /// the two servers cannot pin an account's connection.
    NoPlace,
    /// It closed; `registered` says whether it ever became a route.
    Closed {
        /// Whether the handshake completed.
        registered: bool,
    },
}

/// What nats-server and warden say when they refuse a route's login.
const AUTH_REFUSED: &[u8] = b"Authorization Violation";

/// Why this server refused a peer; the `Display` is the `-ERR` text sent
/// to it (nats-server's where it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The CONNECT or INFO JSON did not parse.
    InvalidJson(&'static str),
    /// A client (its CONNECT has `lang`) dialled the route port.
    ClientOnRoutePort,
    /// The peer belongs to another cluster.
    ClusterMismatch {
        /// The peer's cluster name.
        theirs: String,
        /// This server's.
        ours: String,
    },
    /// Wrong or missing route credentials, or INFO before CONNECT.
    AuthorizationViolation,
    /// No valid CONNECT within the route auth timeout.
    AuthenticationTimeout,
    /// RS+ before the handshake completed.
    InterestBeforeHandshake,
    /// RMSG before the handshake completed.
    MessageBeforeHandshake,
    /// Interest past [`MAX_REMOTE_INTEREST`] or [`MAX_REMOTE_INTEREST_BYTES`].
    TooMuchInterest,
    /// A pinned account's connection where one of the two servers does not pool.
    NoDedicatedRoute(Arc<str>),
    /// A pinned account's connection for an account this server does not pin.
    NoRouteForAccount(Arc<str>),
    /// A pool place outside the pool.
    BadPoolIndex {
        /// The place the peer named.
        index: i64,
        /// The peer's pool size.
        size: i64,
    },
    /// A pool place in the INFO of the server this one dialled.
    PoolIndexSet(i64),
    /// A pool size past [`crate::config::ClusterOptions::MAX_POOL_SIZE`].
    PoolTooLarge(i64),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::InvalidJson(what) => write!(f, "Protocol Violation: route {what} is not valid JSON"),
            Refusal::ClientOnRoutePort => f.write_str("attempted to connect to route port"),
            Refusal::ClusterMismatch { theirs, ours } => write!(
                f,
                "Rejecting connection, cluster name \"{}\" does not match \"{ours}\"",
                theirs.escape_default()
            ),
            Refusal::AuthorizationViolation => f.write_str("Authorization Violation"),
            Refusal::AuthenticationTimeout => f.write_str("Authentication Timeout"),
            Refusal::InterestBeforeHandshake => f.write_str("interest before route handshake"),
            Refusal::MessageBeforeHandshake => f.write_str("message before route handshake"),
            Refusal::TooMuchInterest => f.write_str("too much route interest"),
            Refusal::NoDedicatedRoute(account) => write!(
                f,
                "Not possible to have a dedicated route for account \"{}\" between those servers",
                account.escape_default()
            ),
            Refusal::NoRouteForAccount(account) => {
                write!(f, "No route for account \"{}\"", account.escape_default())
            }
            Refusal::BadPoolIndex { index, size } => {
                write!(f, "Invalid route pool index: {index} - pool size is {size}")
            }
            Refusal::PoolIndexSet(index) => {
                write!(f, "Route pool index should not be set but is set to {index}")
            }
            Refusal::PoolTooLarge(size) => write!(
                f,
                "route pool size {size} is larger than warden's {}",
                crate::config::ClusterOptions::MAX_POOL_SIZE
            ),
        }
    }
}

impl Refusal {
    /// How the connection is recorded as closed.
    fn close_reason(&self) -> CloseReason {
        match self {
            Refusal::AuthorizationViolation => CloseReason::AuthenticationFailure,
            Refusal::AuthenticationTimeout => CloseReason::AuthenticationTimeout,
            _ => CloseReason::ProtocolViolation,
        }
    }
}

/// Route credentials to check (a peer's CONNECT).
#[derive(Debug)]
pub(crate) struct RouteLogin {
    /// The peer's address (the throttle's key).
    pub(crate) peer: SocketAddr,
    /// The user it presented.
    pub(crate) user: Option<String>,
    /// The password it presented.
    pub(crate) pass: Option<Secret>,
    /// The names in its TLS certificate, for `tls { verify_and_map }`
    /// (boxed: the driver's events stay small).
    pub(crate) certificate: Option<Box<PeerIdentity>>,
}

/// An accepted route connection before it authenticated.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// Its place among the pending connections, given back once it is
    /// authenticated (or closed); the connection closes if a newer one
    /// takes it away.
    pub(crate) slot: PendingSlot,
    /// It must be authenticated by then.
    pub(crate) deadline: Instant,
    /// The names in the certificate it presented over TLS.
    pub(crate) certificate: Option<PeerIdentity>,
}

/// Where the connection is in its life.
#[derive(Debug)]
enum State {
    /// The peer dialled this server: only its CONNECT is accepted, by the
    /// deadline of `Accepted`.
    AwaitingConnect(Accepted),
    /// CONNECT accepted (or this server dialled): the peer's INFO
    /// establishes the route.
    AwaitingInfo,
    /// A route, registered with the cluster.
    Established(Arc<RouteLink>),
}

/// Per-connection route state, owned by the connection's reader task.
pub(crate) struct RouteSession {
    cluster: Arc<Cluster>,
    broker: Arc<Broker>,
    client: Arc<Client>,
    peer: SocketAddr,
    /// The URL this server dialled, with the credentials it presented.
    solicited: Option<RouteUrl>,
    /// Which connection to the peer this server dialled.
    target: Target,
    /// This server's INFO is held back until the peer's (a pool connection
    /// this server dialled: its INFO names its place in the pool).
    info_held: bool,
    /// The pinned account this connection carries, whose ops leave it out.
    pinned: Option<Arc<str>>,
    state: State,
    /// The handshake must be complete by then.
    handshake_deadline: Instant,
    keepalive: KeepAlive,
    /// The peer's interest, hosted in this server's account indexes (or
    /// held for accounts it does not host yet).
    remote: PeerInterest,
    fanout: Fanout,
    /// Messages and bytes received in the current batch, counted once per
    /// batch rather than per message.
    batch_in: (u64, u64),
    /// The account of the last RMSG, so a run of messages in one account
    /// looks it up once.
    last_account: Option<Arc<Account>>,
    /// How it ended, when that is more than "closed".
    end: Option<RouteEnd>,
    /// It was registered as a route at some point.
    registered: bool,
    /// The route user its CONNECT claimed, for the audit trail.
    claimed: Option<String>,
}

impl RouteSession {
    /// The session of a route connection opened at `now`, this server
    /// having dialled `solicited` (or accepted the peer, `accepted`). It
    /// queues this server's CONNECT (when it dialled) and INFO.
    pub(crate) fn new(
        cluster: Arc<Cluster>,
        client: Arc<Client>,
        solicited: Option<(RouteUrl, Target)>,
        accepted: Option<Accepted>,
        now: Instant,
    ) -> Self {
        let broker = cluster.broker.clone();
        client.set_traced(broker.trace.on());
        let (solicited, target) = match solicited {
            Some((url, target)) => (Some(url), target),
            None => (None, Target::Pool(None)),
        };
        if let Some(url) = &solicited {
            client.send(&json_line("CONNECT", &cluster.our_connect(url)));
        }
        let pinned = match (&solicited, &target) {
            (Some(_), Target::Account(account)) => Some(account.clone()),
            _ => None,
        };
        let info_held = solicited.is_some() && pinned.is_none() && cluster.pool_size() > 0;
        if !info_held {
            let mut info = cluster.our_info();
            info.route_account = pinned.as_deref().unwrap_or_default().to_owned();
            client.send(&json_line("INFO", &info));
        }
        let state = match accepted {
            Some(accepted) => {
                accepted.slot.bind(&client);
                State::AwaitingConnect(accepted)
            }
            None => State::AwaitingInfo,
        };
        let opts = &broker.opts;
        let keepalive = KeepAlive::new(now, FIRST_PEER_PING, opts.ping_interval, opts.ping_max);
        RouteSession {
            claimed: None,
            fanout: Fanout::new(client.id),
            peer: client.addr,
            cluster,
            broker,
            client,
            solicited,
            target,
            info_held,
            pinned,
            state,
            handshake_deadline: now + HANDSHAKE_TIMEOUT,
            keepalive,
            remote: PeerInterest::default(),
            batch_in: (0, 0),
            last_account: None,
            end: None,
            registered: false,
        }
    }

    /// How the connection ended (call after the driver returned).
    pub(crate) fn end(&mut self) -> RouteEnd {
        self.end.take().unwrap_or(RouteEnd::Closed { registered: self.registered })
    }

    /// The established route, if it is one.
    fn link(&self) -> Option<&Arc<RouteLink>> {
        match &self.state {
            State::Established(link) => Some(link),
            _ => None,
        }
    }

    /// When [`RouteSession::on_timer`] must next be called.
    pub(crate) fn deadline(&self) -> Instant {
        let keepalive = self.keepalive.next();
        match &self.state {
            State::Established(_) => keepalive,
            State::AwaitingInfo => keepalive.min(self.handshake_deadline),
            State::AwaitingConnect(a) => keepalive.min(self.handshake_deadline).min(a.deadline),
        }
    }

    /// The deadline came: an unauthenticated peer is refused, an unfinished
    /// handshake closed, and the route kept alive (PING, or closed as stale
    /// after `ping_max` unanswered).
    pub(crate) fn on_timer(&mut self, now: Instant) -> Result<(), CloseReason> {
        if let State::AwaitingConnect(accepted) = &self.state {
            if now >= accepted.deadline {
                return Err(self.refuse(Refusal::AuthenticationTimeout));
            }
        }
        if self.link().is_none() && now >= self.handshake_deadline {
            self.cluster.warn("handshake not completed in time", &self.peer);
            return Err(CloseReason::AuthenticationTimeout);
        }
        if self.keepalive.run(now, &self.client).is_err() {
            self.cluster.warn("stale route (no PONG)", &self.peer);
            return Err(CloseReason::StaleConnection);
        }
        Ok(())
    }

    /// Handles every complete op at the start of `buf`, read at `now`.
    pub(crate) fn receive(&mut self, buf: &[u8], now: Instant) -> Received<RouteLogin> {
        self.fanout.begin_batch(self.broker.next_batch_token());
        let max_payload = self.broker.opts.max_payload;
        let mut used = 0;
        loop {
            let dialect = if self.pinned.is_some() { Dialect::PinnedRoute } else { Dialect::Route };
            match route::parse_dialect(&buf[used..], max_payload, dialect) {
                Ok(Some((op, n))) => {
                    if self.client.traced() {
                        self.client.trace_received(&buf[used..used + n], self.broker.opts.max_traced_msg_len);
                    }
                    used += n;
                    self.keepalive.heard();
                    if let Err(event) = self.handle(op, now) {
                        return Received { used, need: 0, event: Some(event) };
                    }
                }
                // The route parser does not say how much more it needs: one
                // more byte, and the driver's read size grows with traffic.
                Ok(None) => return Received { used, need: buf.len() - used + 1, event: None },
                Err(err) => {
                    self.cluster.warn(&format!("protocol error: {err}"), &self.peer);
                    return Received { used, need: 0, event: Some(Event::Close(CloseReason::ProtocolViolation)) };
                }
            }
        }
    }

    /// The answer to the credential check of the peer's CONNECT.
    pub(crate) fn authenticated(&mut self, ok: bool) -> Result<(), CloseReason> {
        if !ok {
            // Counted with the clients' refusals, so `/varz` shows a peer
            // that keeps being turned away (the mesh is partial).
            let reason = self.cluster.refusal_reason();
            self.cluster.broker.security.count_auth_failure(reason);
            if self.broker.audit.is_on() {
                let method = if self.cluster.route_certificates() { Method::Certificate } else { Method::Password };
                let mut conn = audit_conn(&self.client);
                conn.user = self.claimed.take();
                self.broker.audit.record(AuditEvent::LoginRefused { conn, method, reason: reason.to_string() });
            }
            return Err(self.refuse(Refusal::AuthorizationViolation));
        }
        if matches!(self.state, State::AwaitingConnect(_)) {
            // No longer one of the unauthenticated connections.
            self.state = State::AwaitingInfo;
        }
        Ok(())
    }

    /// Ends a read batch: wakes the subscribers it fed, counts it, and
    /// returns those that are backed up, for the driver to stall behind (so
    /// TCP pushes back on the other server's publisher).
    pub(crate) fn end_batch(&mut self) -> Vec<Arc<Client>> {
        let received = std::mem::take(&mut self.batch_in);
        self.fanout.end_peer_batch(&self.broker, &self.client, received, false)
    }

    /// The connection ended: its interest leaves the indexes and the route
    /// the cluster.
    pub(crate) fn finish(&mut self) {
        self.remote.clear(&self.broker);
        if let State::Established(link) = std::mem::replace(&mut self.state, State::AwaitingInfo) {
            self.cluster.unregister(&link);
            info!(peer = %self.peer, remote = %link.remote_id, "route closed");
        }
    }

    /// The client whose outbound queue carries this route's bytes.
    pub(crate) fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// Sends the refusal to the peer, logs it, and returns the close reason.
    fn refuse(&mut self, refusal: Refusal) -> CloseReason {
        let text = refusal.to_string();
        self.client.send(format!("-ERR '{text}'\r\n").as_bytes());
        self.cluster.warn(&text, &self.peer);
        refusal.close_reason()
    }

    fn handle(&mut self, op: RouteOp<'_>, now: Instant) -> Result<(), Event<RouteLogin>> {
        let refused = |session: &mut Self, refusal| Err(Event::Close(session.refuse(refusal)));
        // A pinned account's connection: its ops name no account.
        let pinned = self.pinned.clone();

        match op {
            RouteOp::Ping => {
                self.client.send(b"PONG\r\n");
                Ok(())
            }
            RouteOp::Pong => {
                self.keepalive.pong_from(now, &self.client);
                Ok(())
            }
            RouteOp::Ok => Ok(()),
            RouteOp::Err(text) => {
                self.cluster.warn(&format!("peer said {}", String::from_utf8_lossy(text)), &self.peer);
                // The peer refused our credentials (after its INFO made the
                // route look up): a failed dial, so a peer that keeps
                // refusing is listed as unreachable, not as a flapping route.
                if text.windows(AUTH_REFUSED.len()).any(|w| w.eq_ignore_ascii_case(AUTH_REFUSED)) {
                    self.end = Some(RouteEnd::Closed { registered: false });
                }
                Err(Event::Close(CloseReason::ClientClosed))
            }
            RouteOp::Connect(json) => self.connect(json),
            RouteOp::Info(json) => self.info(json),
            // Interest and messages of accounts this server does not host
            // are dropped, so they never enter another account's index.
            RouteOp::Sub { origin, account, subject, queue } => {
                if self.link().is_none() {
                    return refused(self, Refusal::InterestBeforeHandshake);
                }
                let account = pinned.as_deref().map_or(account, str::as_bytes);
                self.remote_sub(origin, account, subject, queue.map(|(q, _)| q))
                    .map_err(|r| Event::Close(self.refuse(r)))
            }
            RouteOp::Unsub { account, subject, queue } => {
                let account = pinned.as_deref().map_or(account, str::as_bytes);
                self.remote_unsub(account, subject, queue);
                Ok(())
            }
            // Only the gateway dialect has it.
            RouteOp::Account { .. } => Ok(()),
            RouteOp::Msg(msg) => {
                if self.link().is_none() {
                    return refused(self, Refusal::MessageBeforeHandshake);
                }
                let reply_ok = msg.reply.is_none_or(subject::is_valid_literal);
                if !subject::is_valid_literal(msg.subject) || !reply_ok {
                    return Ok(());
                }
                // Routes were told only of imported interest; a message
                // on any other subject is dropped.
                if !self.cluster.imports(msg.subject) {
                    return Ok(());
                }
                let Some(account) = self.account(pinned.as_deref().map_or(msg.account, str::as_bytes)) else {
                    return Ok(());
                };
                self.batch_in.0 += 1;
                self.batch_in.1 += msg.message.len() as u64;
                let message = Message {
                    subject: msg.subject,
                    reply: msg.reply,
                    header_len: msg.header_len,
                    message: msg.message,
                    buffer: None,
                };
                let origin = Origin::Route { queues: msg.queues, cluster: msg.origin.unwrap_or_default() };
                let block = msg.header_len.and_then(|len| msg.message.get(..len));
                if let Some(block) = block.filter(|b| msg_trace::may_trace(b)) {
                    self.fanout.trace = self.begin_trace(block, &account, msg.subject, msg.message.len());
                }
                self.fanout.publish(&self.broker, &account, &message, origin, now.into_std());
                if let Some(trace) = self.fanout.trace.take() {
                    self.fanout.send_trace(&self.broker, *trace, now.into_std());
                }
                Ok(())
            }
        }
    }

    /// A trace of a message the peer sent on traced (its `Nats-Trace-Hop`
    /// kept for this server's event). The peer checked the destination
    /// against its publisher's rules; this server only checks that it is
    /// a subject. A sampled `traceparent` is traced to the account's
    /// destination without sampling again (the first server sampled).
    #[cold]
    #[inline(never)]
    fn begin_trace(&self, block: &[u8], account: &Arc<Account>, subject: &[u8], size: usize) -> Option<Box<Trace>> {
        let request = msg_trace::scan(block)?;
        if request.origin_account {
            return None;
        }
        let dest = match &request.dest {
            Some(dest) => dest.clone(),
            None => account.state().msg_trace.clone()?.dest,
        };
        if !subject::is_valid_literal(dest.as_bytes()) {
            return None;
        }
        let (only, hop) = (request.only, request.hop.clone());
        let name = self.link().map(|l| l.remote_name()).unwrap_or_default();
        let trace = Trace::start(request, dest.into_bytes().into(), only, &self.client, account.clone(), subject, size);
        Some(Box::new(trace.arrived_via(hop, name)))
    }

    /// The peer's CONNECT: refused from a client or another cluster; with
    /// route credentials configured, its credentials are checked (an event
    /// for the driver) unless this server dialled it.
    fn connect(&mut self, json: &[u8]) -> Result<(), Event<RouteLogin>> {
        let Ok(connect) = serde_json::from_slice::<RouteConnect>(json) else {
            return Err(Event::Close(self.refuse(Refusal::InvalidJson("CONNECT"))));
        };
        if connect.lang.is_some() {
            return Err(Event::Close(self.refuse(Refusal::ClientOnRoutePort)));
        }
        if let Some(refusal) = self.cluster_mismatch(&connect.cluster) {
            return Err(Event::Close(self.refuse(refusal)));
        }
        if !self.cluster.route_auth_required() {
            return self.authenticated(true).map_err(Event::Close);
        }
        let State::AwaitingConnect(accepted) = &self.state else {
            // Credentials are checked once, on the connection the peer
            // dialled; another CONNECT cannot log in again.
            return Err(Event::Close(self.refuse(Refusal::AuthorizationViolation)));
        };
        let certificate = accepted.certificate.clone().map(Box::new);
        self.claimed.clone_from(&connect.user);
        Err(Event::Authenticate(RouteLogin { peer: self.peer, user: connect.user, pass: connect.pass, certificate }))
    }

    /// A refusal when the peer names a cluster other than this server's.
    fn cluster_mismatch(&self, theirs: &str) -> Option<Refusal> {
        let ours = self.cluster.opts.name.as_deref()?;
        (!theirs.is_empty() && theirs != ours)
            .then(|| Refusal::ClusterMismatch { theirs: theirs.to_owned(), ours: ours.to_owned() })
    }

    fn info(&mut self, json: &[u8]) -> Result<(), Event<RouteLogin>> {
        let Ok(info) = serde_json::from_slice::<RouteInfo>(json) else {
            return Err(Event::Close(self.refuse(Refusal::InvalidJson("INFO"))));
        };
        if info.server_id == self.broker.identity.id {
            self.end = Some(RouteEnd::ToSelf);
            return Err(Event::Close(CloseReason::ProtocolViolation));
        }
        match &self.state {
            State::AwaitingConnect(_) => Err(Event::Close(self.refuse(Refusal::AuthorizationViolation))),
            State::AwaitingInfo => self.first_info(info),
            State::Established(link) if link.remote_id == info.server_id => {
                let gateway_url = link.gateway_url();
                if link.update_info(info) {
                    self.cluster.topology_changed();
                }
                if link.gateway_url() != gateway_url {
                    self.cluster.gateway_urls_changed();
                }
                Ok(())
            }
            State::Established(_) if info.gateway_cmd == crate::proto::route::gateway::CMD_GOSSIP => {
                self.cluster.gateway_gossip(&info.gateway, &info.gateway_urls);
                Ok(())
            }
            State::Established(_) => {
                self.gossip(info);
                Ok(())
            }
        }
    }

    /// Gossip about another server: connect to it if we are not yet. Only
    /// an established route gets here, so the peer authenticated (it
    /// presented the route credentials or a certificate of the cluster CA)
    /// or is one this server dialled with them: the URL it names is dialled
    /// with the credentials that peer already holds (those of the URL this
    /// server dialled it by, else the cluster's), never with others, so
    /// following it discloses nothing.
    fn gossip(&self, info: RouteInfo) {
        if info.ip.is_empty() || self.cluster.has_route(&info.server_id) {
            return;
        }
        let Some(mut url) = RouteUrl::parse(&info.ip) else { return };
        url.user = self.solicited.as_ref().and_then(|s| s.user.clone());
        url.pass = self.solicited.as_ref().and_then(|s| s.pass.clone());
        let dial = Dial::Gossiped { server_id: info.server_id, server_name: info.server_name };
        self.cluster.solicit(url, dial);
    }

    /// The peer's first INFO: the route is registered, unless one to the
    /// same server already is (the tie-break in [`Cluster::register`]).
    fn first_info(&mut self, info: RouteInfo) -> Result<(), Event<RouteLogin>> {
        if let Some(refusal) = self.cluster_mismatch(&info.cluster) {
            return Err(Event::Close(self.refuse(refusal)));
        }
        let slot = match self.slot(&info) {
            Ok(Some(slot)) => slot,
            Ok(None) => {
                debug!(peer = %self.peer, remote = %info.server_id, "route pool full; connection closed");
                self.end = Some(RouteEnd::NoPlace);
                return Err(Event::Close(CloseReason::ProtocolViolation));
            }
            Err(refusal) => {
                if matches!(refusal, Refusal::NoDedicatedRoute(_)) {
                    self.end = Some(RouteEnd::NoPlace);
                }
                return Err(Event::Close(self.refuse(refusal)));
            }
        };
        if std::mem::take(&mut self.info_held) {
            let mut ours = self.cluster.our_info();
            ours.route_pool_idx = if let Slot::Pool(n) = slot { n as i64 } else { 0 };
            self.client.send(&json_line("INFO", &ours));
        }
        let route_url = match &self.solicited {
            Some(url) => url.route_url(),
            None => format!("nats-route://{}/", SocketAddr::new(self.peer.ip(), info.port)),
        };
        let remote_id = info.server_id.clone();
        let pool_size = self.cluster.pool_size().max(usize::try_from(info.route_pool_size).unwrap_or(0));
        self.client.set_lnoc(info.lnoc);
        self.client.set_traces(info.proto >= crate::proto::msg_trace::PROTO);
        // The peer's name, for trace events' egress (nats-server's `getConnName`).
        self.client.meta.lock().name = Some(info.server_name.clone()).filter(|n| !n.is_empty());
        let link = Arc::new(RouteLink::new(self.client.clone(), info, slot, self.solicited.is_some(), route_url));
        if !self.cluster.register(link.clone(), &self.broker.identity.id) {
            debug!(peer = %self.peer, remote = %remote_id, slot = ?link.slot, "duplicate route closed");
            self.end = Some(RouteEnd::Duplicate(remote_id));
            return Err(Event::Close(CloseReason::ProtocolViolation));
        }
        info!(peer = %self.peer, remote = %remote_id, name = %link.remote_name(), slot = ?link.slot, "route established");
        if let (Some(url), Slot::Pool(_)) = (&self.solicited, &link.slot) {
            self.cluster.complete_pool(url, &remote_id, pool_size);
        }
        self.state = State::Established(link);
        self.registered = true;
        Ok(())
    }

    /// Which of the connections to the peer this one is, by the peer's
    /// first INFO (nats-server 2.10+'s rules): the only one when either
    /// server does not pool; else, on a connection this server dialled,
    /// the pinned account it asked for or a free place in the pool
    /// (`None`: the pool is full), and on one the peer dialled, the
    /// account or place the peer's INFO names.
    fn slot(&mut self, info: &RouteInfo) -> Result<Option<Slot>, Refusal> {
        let max = i64::from(crate::config::ClusterOptions::MAX_POOL_SIZE);
        if !(0..=max).contains(&info.route_pool_size) {
            return Err(Refusal::PoolTooLarge(info.route_pool_size));
        }
        let theirs = info.route_pool_size as usize;
        let pooling = self.cluster.pool_size() > 0 && theirs > 0;
        let size = self.cluster.pool_size().max(theirs);
        if self.solicited.is_some() {
            return match self.target.clone() {
                Target::Account(account) if !pooling => Err(Refusal::NoDedicatedRoute(account)),
                Target::Account(account) => Ok(Some(Slot::Account(account))),
                _ if info.route_pool_idx != 0 => Err(Refusal::PoolIndexSet(info.route_pool_idx)),
                _ if !pooling => Ok(Some(Slot::Single)),
                Target::Pool(Some(n)) => Ok((n < size).then_some(Slot::Pool(n))),
                Target::Pool(None) => Ok(self.cluster.free_pool_place(&info.server_id, size).map(Slot::Pool)),
            };
        }
        if !info.route_account.is_empty() {
            let account: Arc<str> = info.route_account.as_str().into();
            if !pooling {
                return Err(Refusal::NoDedicatedRoute(account));
            }
            if !self.cluster.is_pinned(&account) {
                return Err(Refusal::NoRouteForAccount(account));
            }
            self.pinned = Some(account.clone());
            return Ok(Some(Slot::Account(account)));
        }
        if !pooling {
            return Ok(Some(Slot::Single));
        }
        match usize::try_from(info.route_pool_idx) {
            Ok(n) if n < size => Ok(Some(Slot::Pool(n))),
            _ => Err(Refusal::BadPoolIndex { index: info.route_pool_idx, size: info.route_pool_size }),
        }
    }

    /// The hosted account called `name`, if any.
    fn account(&mut self, name: &[u8]) -> Option<Arc<Account>> {
        if let Some(last) = &self.last_account {
            if last.name.as_bytes() == name && !last.is_removed() {
                return Some(last.clone());
            }
        }
        let account = self.broker.accounts.get(std::str::from_utf8(name).ok()?)?;
        self.last_account = Some(account.clone());
        Some(account)
    }

    fn remote_sub(
        &mut self,
        origin: Option<&[u8]>,
        account: &[u8],
        subject: &[u8],
        queue: Option<&[u8]>,
    ) -> Result<(), Refusal> {
        let valid = std::str::from_utf8(account).is_ok_and(|a| subject::is_valid_literal(a.as_bytes()));
        if !valid || !subject::is_valid_pattern(subject) || queue.is_some_and(|q| !subject::is_valid_queue(q)) {
            return Ok(());
        }
        // Interest on a subject this server does not export is ignored, as
        // nats-server does: nothing is sent there.
        if self.cluster.exports(subject).is_none() {
            debug!(peer = %self.peer, "route interest on a subject not exported, ignored");
            return Ok(());
        }
        let name: Arc<str> = String::from_utf8_lossy(account).into();
        let key: InterestKey = (name, subject.into(), queue.map(Into::into));
        if self.remote.contains(&key) {
            return Ok(());
        }
        let bytes = interest_bytes(&key);
        if self.remote.len() >= MAX_REMOTE_INTEREST || self.remote.bytes() + bytes > MAX_REMOTE_INTEREST_BYTES {
            return Err(Refusal::TooMuchInterest);
        }
        let hosted = self.account(account);
        let (client, cluster) = (&self.client, &self.cluster);
        self.remote.insert(&self.broker, key, hosted, |account, key| hosted_sub(client, cluster, account, key, origin));
        Ok(())
    }

    /// After a reconfiguration: interest held for accounts that are now
    /// hosted goes into their indexes, and interest in accounts that went
    /// away is held again (in the new account of that name, if any).
    pub(crate) fn rehost(&mut self) {
        let (client, cluster) = (&self.client, &self.cluster);
        self.remote.rehost(&self.broker, |account, key| hosted_sub(client, cluster, account, key, None));
    }

    fn remote_unsub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
        let name: Arc<str> = String::from_utf8_lossy(account).into();
        self.remote.remove(&self.broker, &(name, subject.into(), queue.map(Into::into)));
    }
}

/// The subscription that puts a route's interest into `account`'s index
/// (of the leaf node cluster `origin`, if a route's `LS+` named one).
fn hosted_sub(
    client: &Arc<Client>,
    cluster: &Cluster,
    account: Arc<Account>,
    key: &InterestKey,
    origin: Option<&[u8]>,
) -> Subscription {
    // Interest is exported (checked when it arrived); the filter withholds
    // the export denies its wildcard overlaps.
    let filter = cluster.exports(&key.1).flatten();
    Subscription::new(client.clone(), account, &key.1, key.2.as_deref(), b"", filter).from_leaf_cluster(origin)
}

#[cfg(test)]
mod tests;
