//! The hub side of one leaf node connection, sans IO: bytes and `now` in;
//! out go the bytes it queued (to the leaf, and to the local subscribers of
//! the messages it forwards), the login to check, and the next deadline.
//! `listener.rs` puts it on the connection driver; `session/tests.rs`
//! drives it directly, with no socket and no clock.
//!
//! Before its CONNECT has been checked a leaf may send only INFO, CONNECT,
//! PING and PONG, each line within `max_control_line`: interest and
//! messages are refused before a byte of their payload is held. Once in,
//! a message loses the headers only a server may assert
//! (`Nats-Request-Info`, `Nats-Server-Xkey`: `proto::headers`), from a
//! leaf and from a hub alike; its `Nats-Trace-*` headers stay only when
//! this server honours the trace they ask for (a destination the peer may
//! publish to), which it then reports its own steps of.
//!
//! The same session runs the other end when this server is the leaf
//! ([`LeafSession::solicited`]): it waits for the hub's INFO, answers with
//! its CONNECT (signing the nonce with its seed, if it has one) and is then
//! established; the hub's interest and messages pass the remote's
//! `deny_exports` and `deny_imports` the way a leaf's pass its user's
//! permissions on a hub, dropped without an `-ERR`.
// Sans IO: `now` comes from the driver (clippy.toml).
#![deny(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use memchr::memchr;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::remote::{SpokeLogin, SpokeRules};
use super::{Hub, LeafLink, LOOP_DELAY, MAX_LEAF_INTEREST, MAX_LEAF_INTEREST_BYTES};
use crate::auth::{Claims, ClientSoftware, ConnectionType, Identity, Verdict};
use crate::broker::{
    mapped, Account, Broker, BudgetKind, Client, CloseReason, Fanout, LeafRole, Mapper, Message, Origin, PendingSlot,
    Presented, ServerEvent, Subscription, Trace, Unroutable,
};
use crate::conn::{connection_facts, Event, KeepAlive, Login, Protocol, Received, FIRST_PEER_PING};
use crate::perms::{system_space, PublishGuard, Standing, SubDecision};
use crate::proto::route::{self, json_line, Dialect, LeafConnect, LeafInfo, RouteMsg, RouteOp};
use crate::proto::{headers, msg_trace, ProtoError};
use crate::subject;

/// A leaf's interest: subject and queue.
type InterestKey = (Box<[u8]>, Option<Box<[u8]>>);

/// Why this server refused a leaf; the `Display` is the `-ERR` text
/// (nats-server's where it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The CONNECT JSON did not parse.
    InvalidConnect,
    /// A client (its CONNECT has `lang`) dialled the leaf port.
    ClientOnLeafPort,
    /// A gateway dialled the leaf port.
    GatewayOnLeafPort,
    /// The leaf asked to be the hub, which warden does not do.
    /// The leaf's cluster is this server's.
    SameClusterName,
    /// Interest or a message before the login, or a second CONNECT.
    AuthorizationViolation,
    /// No valid CONNECT within the auth timeout.
    AuthenticationTimeout,
    /// A control line longer than `max_control_line` before the login.
    ControlLineTooLong,
    /// A second INFO before the CONNECT.
    SecondInfo,
    /// The leaf's version is below `min_version`.
    TooOld(String),
    /// Interest past [`MAX_LEAF_INTEREST`] or [`MAX_LEAF_INTEREST_BYTES`].
    TooMuchInterest,
    /// The leaf reported this server's own loop subject.
    Loop {
        /// The account the loop is in.
        account: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::InvalidConnect => f.write_str("Protocol Violation: leafnode CONNECT is not valid JSON"),
            Refusal::ClientOnLeafPort => f.write_str("attempted to connect to leaf node port"),
            Refusal::GatewayOnLeafPort => f.write_str("attempted to connect to leaf node port from a gateway"),
            Refusal::SameClusterName => f.write_str("remote leafnode has same cluster name"),
            Refusal::AuthorizationViolation => f.write_str("Authorization Violation"),
            Refusal::AuthenticationTimeout => f.write_str("Authentication Timeout"),
            Refusal::ControlLineTooLong => f.write_str("Maximum Control Line Exceeded"),
            Refusal::SecondInfo => f.write_str("Protocol Violation: a second INFO before CONNECT"),
            Refusal::TooOld(min) => write!(f, "connection rejected since minimum version required is {min:?}"),
            Refusal::TooMuchInterest => f.write_str("too much leafnode interest"),
            Refusal::Loop { account } => write!(
                f,
                "Loop detected for leafnode account={:?}. Delaying attempt to reconnect for {}s",
                account,
                LOOP_DELAY.as_secs()
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

/// A logged-in leaf.
struct Established {
    identity: Identity,
    account: Arc<Account>,
    publish: PublishGuard<Client>,
    link: Arc<LeafLink>,
    /// The account's subject mappings, applied to what the leaf sends
    /// (as nats-server maps a leaf's messages); taken again on a reload.
    mapper: Option<Mapper>,
}

/// What the trace headers of a message from the peer ask of this server.
enum LeafTrace {
    /// Nothing this server honours: the trace headers go.
    Untraced,
    /// Traced here, its trace headers kept for the next hop.
    Traced(Box<Trace>),
    /// A trace-only message whose trace cannot be honoured: dropped.
    Skip,
    /// A destination the peer may not publish to: dropped, a violation.
    Denied(String),
}

/// The trace a message from the peer asks for, as nats-server 2.15.1's
/// `initMsgTrace` decides for a leaf connection: its own hop id kept, a
/// sampled `traceparent` traced to the account's destination without
/// sampling again, and the destination one the peer may publish to (its
/// leaf user's publish permissions on a hub; on a leaf, what the hub may
/// send it), because this server publishes the events as the peer
/// (advisory 2026-20 was a leaf's trace destination taken unchecked).
#[cold]
#[inline(never)]
fn begin_trace(
    publish: &mut PublishGuard<Client>,
    account: &Arc<Account>,
    (client, name): (&Arc<Client>, String),
    block: &[u8],
    subject: &[u8],
    size: usize,
) -> LeafTrace {
    let Some(request) = msg_trace::scan(block) else { return LeafTrace::Untraced };
    let only = request.only;
    let unusable = if only { LeafTrace::Skip } else { LeafTrace::Untraced };
    if request.origin_account {
        return unusable;
    }
    let dest = match (&request.dest, account.state().msg_trace.clone()) {
        (Some(dest), _) => dest.clone(),
        (None, Some(config)) => config.dest,
        (None, None) => return LeafTrace::Untraced,
    };
    if !subject::is_valid_literal(dest.as_bytes()) {
        return unusable;
    }
    if !publish.may_publish_to(dest.as_bytes()) {
        return LeafTrace::Denied(dest);
    }
    let hop = request.hop.clone();
    let trace = Trace::start(request, dest.into_bytes().into(), only, client, account.clone(), subject, size);
    LeafTrace::Traced(Box::new(trace.arrived_via(hop, name)))
}

/// What the other server said about itself (its CONNECT, or a hub's INFO).
struct Peer {
    server_id: String,
    name: String,
    version: String,
    headers: bool,
    /// Its cluster name (empty for none): what comes from that cluster
    /// does not go back to it.
    cluster: String,
    /// Its protocol level: from `msg_trace::PROTO` on it traces what it
    /// is sent traced (nats-server's `msgTraceSupport`).
    proto: i64,
}

/// Where the connection is in its life.
enum State {
    /// This server dialled a hub: the hub's INFO comes first.
    AwaitingInfo,
    /// CONNECT sent; the hub's answering INFO brings the leaf user's
    /// permissions, which decide what interest it is told of.
    AwaitingConnectInfo(Box<Peer>),
    /// Only CONNECT is accepted, by the deadline; the slot bounds such
    /// connections and is given back with the state.
    AwaitingConnect(PendingSlot),
    /// The CONNECT is being checked.
    Authenticating(PendingSlot, Box<LeafConnect>),
    /// Logged in and registered with the hub.
    Established(Box<Established>),
    /// Closed.
    Done,
}

/// Per-connection leaf state, owned by the connection's reader task.
pub(crate) struct LeafSession {
    hub: Arc<Hub>,
    broker: Arc<Broker>,
    client: Arc<Client>,
    nonce: String,
    state: State,
    auth_deadline: Instant,
    keepalive: KeepAlive,
    /// The leaf's interest, by subject and queue.
    interest: HashMap<InterestKey, Arc<Subscription>>,
    /// Bytes of subjects and queue names in `interest`.
    interest_bytes: usize,
    fanout: Fanout,
    /// Messages and bytes received in the current batch.
    batch_in: (u64, u64),
    /// An INFO came before the CONNECT (a leaf sends at most one).
    early_info: bool,
    /// When this server dialled the hub: what it logs in with.
    spoke: Option<SpokeLogin>,
    /// The other end plays this server's hub (this server dialled it, or
    /// a leaf that dialled in asked for the hub's role with `is_hub`).
    to_hub: bool,
    /// This server is the leaf: what the hub may do on this side.
    spoke_rules: Option<Arc<SpokeRules>>,
    /// The interest the hub may be told of (its `import`), for the link.
    announce: Option<Arc<crate::perms::PermissionSet>>,
    /// The hub closed the connection because it saw a loop.
    looped: bool,
}

impl LeafSession {
    /// The session of a leaf connection accepted at `now` (holding `slot`
    /// among the pending ones), and the hub's INFO line, which the caller
    /// sends first: in clear text before a TLS handshake in the NATS order,
    /// or queued on the connection otherwise.
    pub(crate) fn new(hub: Arc<Hub>, client: Arc<Client>, slot: PendingSlot, now: Instant) -> (Self, Vec<u8>) {
        let broker = hub.broker.clone();
        let nonce = crate::nkeys::new_nonce();
        let info = LeafInfo {
            server_id: broker.identity.id.clone(),
            server_name: broker.identity.name.clone(),
            version: crate::proto::NATS_VERSION.into(),
            proto: msg_trace::PROTO,
            host: hub.listen_addr.map(|a| a.ip().to_string()).unwrap_or_default(),
            port: hub.listen_addr.map_or(0, |a| a.port()),
            headers: true,
            auth_required: true,
            tls_required: hub.tls.is_some(),
            max_payload: broker.opts.max_payload,
            client_id: client.id,
            nonce: nonce.clone(),
            info_on_connect: true,
            leafnode_urls: hub.leafnode_urls(),
            cluster: broker.opts.cluster.as_ref().and_then(|c| c.name.clone()).unwrap_or_default(),
            ..LeafInfo::default()
        };
        let info = json_line("INFO", &info);
        slot.bind(&client);
        (LeafSession::with_state(hub, client, State::AwaitingConnect(slot), nonce, None, now), info)
    }

    /// The session of a connection this server dialled to a hub, at `now`,
    /// giving the hub `identity` on this side and logging in with `login`.
    pub(crate) fn solicited(
        hub: Arc<Hub>,
        client: Arc<Client>,
        rules: Arc<SpokeRules>,
        login: SpokeLogin,
        now: Instant,
    ) -> Self {
        LeafSession::with_state(hub, client, State::AwaitingInfo, String::new(), Some((login, rules)), now)
    }

    fn with_state(
        hub: Arc<Hub>,
        client: Arc<Client>,
        state: State,
        nonce: String,
        spoke: Option<(SpokeLogin, Arc<SpokeRules>)>,
        now: Instant,
    ) -> Self {
        let broker = hub.broker.clone();
        let opts = &broker.opts;
        client.set_traced(broker.trace.on());
        let keepalive = KeepAlive::new(now, FIRST_PEER_PING, opts.ping_interval, opts.ping_max);
        let (spoke, spoke_rules) = spoke.unzip();
        let to_hub = spoke.as_ref().is_some_and(|login: &SpokeLogin| !login.as_hub);
        LeafSession {
            auth_deadline: now + hub.auth_timeout(),
            fanout: Fanout::of(&client),
            hub,
            broker,
            client,
            nonce,
            state,
            keepalive,
            interest: HashMap::new(),
            interest_bytes: 0,
            batch_in: (0, 0),
            early_info: false,
            spoke,
            to_hub,
            spoke_rules,
            announce: None,
            looped: false,
        }
    }

    /// Whether the hub closed this connection for a loop (the dialler then
    /// waits longer).
    pub(crate) fn loop_detected(&self) -> bool {
        self.looped
    }

    fn established(&self) -> Option<&Established> {
        match &self.state {
            State::Established(e) => Some(e),
            _ => None,
        }
    }

    /// Sends the refusal to the leaf, logs it, and returns the close reason.
    fn refuse(&mut self, refusal: Refusal) -> CloseReason {
        let text = refusal.to_string();
        self.client.send(format!("-ERR '{text}'\r\n").as_bytes());
        if self.broker.log_budget.allow_from(self.client.addr.ip(), BudgetKind::Other, "") {
            warn!(cid = self.client.id, addr = %self.client.addr, error = %text, "leafnode refused");
        }
        refusal.close_reason()
    }

    /// Before the login: the next line must fit `max_control_line` and be
    /// one of the ops a leaf may send then.
    fn check_unauthenticated(&self, rest: &[u8]) -> Result<(), Refusal> {
        let limit = self.broker.opts.max_control_line;
        let line = match memchr(b'\n', rest) {
            Some(nl) if nl <= limit => &rest[..nl],
            Some(_) => return Err(Refusal::ControlLineTooLong),
            None if rest.len() > limit => return Err(Refusal::ControlLineTooLong),
            None => return Ok(()),
        };
        let verb = line.split(|b| *b == b' ' || *b == b'\r').next().unwrap_or_default();
        let allowed = [&b"CONNECT"[..], b"INFO", b"PING", b"PONG", b"-ERR", b"+OK"];
        if allowed.iter().any(|v| verb.eq_ignore_ascii_case(v)) {
            Ok(())
        } else {
            Err(Refusal::AuthorizationViolation)
        }
    }

    fn handle(&mut self, op: RouteOp<'_>, now: Instant) -> Result<(), Event<Box<Login>>> {
        match op {
            RouteOp::Ping => {
                self.client.send(b"PONG\r\n");
                Ok(())
            }
            RouteOp::Pong => {
                self.keepalive.pong_from(now, &self.client);
                Ok(())
            }
            RouteOp::Info(json) if matches!(self.state, State::AwaitingInfo) => self.hub_info(json),
            RouteOp::Info(json) if matches!(self.state, State::AwaitingConnectInfo(_)) => self.hub_connect_info(json),
            // Before its CONNECT a leaf sends at most one INFO (nats-server's
            // compression negotiation, which a second INFO crashed in 2026).
            RouteOp::Info(_) if matches!(self.state, State::AwaitingConnect(_)) => {
                if std::mem::replace(&mut self.early_info, true) {
                    return Err(Event::Close(self.refuse(Refusal::SecondInfo)));
                }
                Ok(())
            }
            // A later INFO only updates what this server does not use (URLs,
            // the hub's view of the leaf's permissions).
            RouteOp::Ok | RouteOp::Info(_) => Ok(()),
            RouteOp::Err(text) => {
                let text = String::from_utf8_lossy(text);
                self.looped |= self.spoke.is_some() && text.contains("Loop detected");
                info!(cid = self.client.id, addr = %self.client.addr, error = %text, "leafnode peer said");
                Err(Event::Close(CloseReason::ClientClosed))
            }
            RouteOp::Connect(json) => self.connect(json),
            RouteOp::Sub { subject, queue, .. } => self.leaf_sub(subject, queue.map(|(q, _)| q)),
            RouteOp::Unsub { subject, queue, .. } => {
                self.leaf_unsub(subject, queue);
                Ok(())
            }
            RouteOp::Msg(msg) => self.leaf_msg(&msg, now),
            // Only the gateway dialect has it.
            RouteOp::Account { .. } => Ok(()),
        }
    }

    /// The leaf's CONNECT: refused from a client, a gateway, a leaf that
    /// wants to be the hub or shares this cluster's name; otherwise its
    /// credentials go to the gate.
    fn connect(&mut self, json: &[u8]) -> Result<(), Event<Box<Login>>> {
        let refused = |s: &mut Self, r| Err(Event::Close(s.refuse(r)));
        let (State::AwaitingConnect(_), None) = (&self.state, &self.spoke) else {
            return refused(self, Refusal::AuthorizationViolation);
        };
        let Ok(connect) = serde_json::from_slice::<LeafConnect>(json) else {
            return refused(self, Refusal::InvalidConnect);
        };
        if connect.lang.is_some() {
            return refused(self, Refusal::ClientOnLeafPort);
        }
        if connect.gateway.is_some() {
            return refused(self, Refusal::GatewayOnLeafPort);
        }
        // A leaf that asks for the hub's role (its remote says `hub: true`)
        // is this server's hub on this connection, as in nats-server.
        self.to_hub = connect.hub;
        if let Some(min) = self.hub.opts.min_version {
            if crate::config::parse_version(&connect.version).is_none_or(|v| v < min) {
                return refused(self, Refusal::TooOld(format!("{}.{}.{}", min.0, min.1, min.2)));
            }
        }
        let ours = self.broker.opts.cluster.as_ref().and_then(|c| c.name.as_deref());
        if ours.is_some_and(|ours| !connect.cluster.is_empty() && connect.cluster == ours) {
            return refused(self, Refusal::SameClusterName);
        }
        let claims = Claims {
            user: connect.user.clone(),
            password: connect.pass.clone(),
            token: connect.auth_token.clone(),
            nkey: connect.nkey.clone(),
            signature: connect.sig.clone(),
            jwt: connect.jwt.clone(),
            client: ClientSoftware {
                name: Some(connect.name.clone()).filter(|n| !n.is_empty()),
                version: Some(connect.version.clone()).filter(|v| !v.is_empty()),
                protocol: connect.protocol,
                ..ClientSoftware::default()
            },
        };
        let facts = connection_facts(&self.client, Some(self.nonce.clone()), ConnectionType::Leafnode);
        let State::AwaitingConnect(slot) = std::mem::replace(&mut self.state, State::Done) else {
            return refused(self, Refusal::AuthorizationViolation);
        };
        self.state = State::Authenticating(slot, Box::new(connect));
        Err(Event::Authenticate(Box::new(Login { claims, facts })))
    }

    /// The hub's first INFO, on a connection this server dialled: answered
    /// with this server's CONNECT, after which the link is established.
    fn hub_info(&mut self, json: &[u8]) -> Result<(), Event<Box<Login>>> {
        let (Ok(info), Some(login)) = (serde_json::from_slice::<LeafInfo>(json), self.spoke.as_ref()) else {
            return Err(Event::Close(CloseReason::ProtocolViolation));
        };
        if info.client_id == 0 {
            warn!(addr = %self.client.addr, "not a leafnode port (its INFO has no client_id)");
            return Err(Event::Close(CloseReason::ProtocolViolation));
        }
        let mut connect = serde_json::json!({
            "version": crate::proto::NATS_VERSION,
            "server_id": self.broker.identity.id,
            "name": self.broker.identity.name,
            "headers": true,
            "protocol": msg_trace::PROTO,
        });
        // The hub keeps what this cluster sends from coming back to it.
        if let Some(cluster) = self.broker.opts.cluster.as_ref().and_then(|c| c.name.as_deref()) {
            connect["cluster"] = cluster.into();
        }
        if login.as_hub {
            connect["is_hub"] = true.into();
        }
        if let Some(user) = &login.user {
            connect["user"] = user.as_str().into();
        }
        if let Some(pass) = &login.pass {
            connect["pass"] = pass.expose().into();
        }
        if let Some(jwt) = &login.jwt {
            connect["jwt"] = jwt.expose().into();
        }
        if let Some(nkey) = login.nkey() {
            connect["nkey"] = nkey.into();
        }
        if let Some(sig) = login.sign(&info.nonce) {
            connect["sig"] = sig.into();
        }
        self.client.send(format!("CONNECT {connect}\r\n").as_bytes());
        let peer = Peer {
            server_id: info.server_id,
            name: info.server_name,
            version: info.version,
            headers: info.headers,
            cluster: info.cluster,
            proto: info.proto,
        };
        if info.info_on_connect {
            // nats-server answers the CONNECT with its leaf user's
            // permissions: interest waits for them.
            self.state = State::AwaitingConnectInfo(Box::new(peer));
            return Ok(());
        }
        self.establish_spoke(peer, None, None)
    }

    /// The hub's answer to this server's CONNECT.
    fn hub_connect_info(&mut self, json: &[u8]) -> Result<(), Event<Box<Login>>> {
        let Ok(info) = serde_json::from_slice::<LeafInfo>(json) else {
            return Err(Event::Close(CloseReason::ProtocolViolation));
        };
        let State::AwaitingConnectInfo(peer) = std::mem::replace(&mut self.state, State::Done) else {
            return Err(Event::Close(CloseReason::ProtocolViolation));
        };
        self.establish_spoke(*peer, info.import.as_ref(), info.export.as_ref())
    }

    /// The link to a hub this server dialled is established, within the
    /// hub's `import`/`export` for its leaf user and this remote's denies.
    fn establish_spoke(
        &mut self,
        peer: Peer,
        import: Option<&crate::proto::route::SubjectPermission>,
        export: Option<&crate::proto::route::SubjectPermission>,
    ) -> Result<(), Event<Box<Login>>> {
        let rules = self.spoke_rules.clone();
        let identity = rules.as_ref().and_then(|r| r.identity(export));
        let announce = SpokeRules::announce_filter(import);
        let (Some(identity), Some(announce)) = (identity, announce) else {
            warn!(addr = %self.client.addr, "the leafnode hub's permissions cannot be followed");
            return Err(Event::Close(CloseReason::ProtocolViolation));
        };
        self.announce = announce;
        self.establish(identity, peer).map_err(Event::Close)
    }

    /// The connection joins its account and the hub's registry: a logged-in
    /// leaf, or the hub this server dialled, is told the account's interest.
    fn establish(&mut self, identity: Identity, peer: Peer) -> Result<(), CloseReason> {
        let Some(account) = self.broker.accounts.get(&identity.account) else {
            return Err(self.refuse(Refusal::AuthorizationViolation));
        };
        if !account.try_connect_leaf() {
            if self.spoke.is_some() {
                warn!(account = %account.name, "max_leafnodes reached: not joining the hub");
                return Err(CloseReason::MaxAccountConnectionsExceeded);
            }
            self.client.send(ProtoError::MaxAccountConnections.to_line().as_bytes());
            return Err(CloseReason::MaxAccountConnectionsExceeded);
        }
        self.client.set_headers(peer.headers);
        self.client.set_traces(peer.proto >= msg_trace::PROTO);
        self.client.set_reply_tracking(&identity.permissions);
        {
            let mut meta = self.client.meta.lock();
            meta.user = identity.user.clone();
            meta.account = Some(account.name.clone());
            meta.permissions = Some(identity.permissions.clone());
            meta.name = Some(peer.name.clone()).filter(|n| !n.is_empty());
            meta.version = Some(peer.version.clone()).filter(|v| !v.is_empty());
        }
        if self.spoke.is_none() {
            // As nats-server: the leaf user's permissions, so a leaf sends
            // only interest and messages the hub will take.
            let rules = |r: &Option<crate::config::SubjectRules>| {
                r.as_ref().map(|r| crate::proto::route::SubjectPermission {
                    allow: r.allow.clone().unwrap_or_default(),
                    deny: r.deny.clone().unwrap_or_default(),
                })
            };
            let source = identity.permissions.source();
            let info = LeafInfo {
                import: source.and_then(|p| rules(&p.subscribe)),
                export: source.and_then(|p| rules(&p.publish)),
                server_id: self.broker.identity.id.clone(),
                server_name: self.broker.identity.name.clone(),
                version: crate::proto::NATS_VERSION.into(),
                proto: msg_trace::PROTO,
                headers: true,
                auth_required: true,
                max_payload: self.broker.opts.max_payload,
                client_id: self.client.id,
                info_on_connect: true,
                connect_info: true,
                remote_account: Some(account.name.to_string()),
                leafnode_urls: self.hub.leafnode_urls(),
                ..LeafInfo::default()
            };
            self.client.send(&json_line("INFO", &info));
        }
        let standing = Standing { in_system: account.is_system(), serves_callout: identity.serves_callout };
        let publish = PublishGuard::new(
            identity.permissions.clone(),
            self.client.clone(),
            standing,
            self.broker.opts.check_reply_subjects,
        );
        let cluster = Some(peer.cluster.into_boxed_str()).filter(|c| !c.is_empty());
        self.client.set_leaf_role(LeafRole { to_hub: self.to_hub, cluster });
        let link = Arc::new(LeafLink {
            client: self.client.clone(),
            account: account.name.clone(),
            remote_id: peer.server_id,
            remote_name: peer.name,
            spoke: self.to_hub,
            announce: self.announce.take(),
        });
        info!(cid = self.client.id, addr = %self.client.addr, account = %account.name, remote = %link.remote_id, "leafnode connected");
        self.hub.register(link.clone());
        let mapper = Mapper::for_account(&account, self.client.id);
        self.state = State::Established(Box::new(Established { identity, account, publish, link, mapper }));
        if self.broker.events.is_active() {
            self.broker.events.report(ServerEvent::Connect { client: self.client.clone() });
        }
        Ok(())
    }

    /// `LS+`: interest of the leaf, checked like a client's SUB.
    fn leaf_sub(&mut self, subject: &[u8], queue: Option<&[u8]>) -> Result<(), Event<Box<Login>>> {
        let Some(established) = self.established() else {
            return Err(Event::Close(self.refuse(Refusal::AuthorizationViolation)));
        };
        if !subject::is_valid_pattern(subject) || queue.is_some_and(|q| !subject::is_valid_queue(q)) {
            self.client.send(ProtoError::InvalidSubject.to_line().as_bytes());
            return Ok(());
        }
        if *subject == *self.hub.loop_subject {
            self.broker.security.leafnode_loops.fetch_add(1, Ordering::Relaxed);
            let account = established.account.name.to_string();
            return Err(Event::Close(self.refuse(Refusal::Loop { account })));
        }
        let key = (Box::<[u8]>::from(subject), queue.map(Box::<[u8]>::from));
        if self.interest.contains_key(&key) {
            return Ok(());
        }
        let in_system = established.account.is_system();
        if !in_system && !system_space::leaf_may_announce(subject) {
            // A nats-server leaf announces the system services its own
            // account imports; outside the system account nobody here can
            // publish to the others (`USER.INFO` is answered by the
            // client's own server), so that interest is dropped, not an
            // error.
            debug!(cid = self.client.id, subject = %String::from_utf8_lossy(subject), "leafnode interest in the system space ignored");
            return Ok(());
        }
        let filter = match established.identity.permissions.may_subscribe(subject, queue) {
            SubDecision::Allowed { filter } => filter,
            SubDecision::Denied => {
                let err = ProtoError::SubscribeViolation {
                    subject: String::from_utf8_lossy(subject).into_owned(),
                    queue: queue.map(|q| String::from_utf8_lossy(q).into_owned()),
                };
                self.violation(&err, "subscribe");
                return Ok(());
            }
        };
        let bytes = subject.len() + queue.map_or(0, <[u8]>::len);
        if self.interest.len() >= MAX_LEAF_INTEREST || self.interest_bytes + bytes > MAX_LEAF_INTEREST_BYTES {
            return Err(Event::Close(self.refuse(Refusal::TooMuchInterest)));
        }
        let account = established.account.clone();
        let base = Subscription::new(self.client.clone(), account.clone(), subject, queue, b"", filter);
        let sub = Subscription::with_shadows(base, account.shadows_for(subject));
        self.broker.add_subscription(sub.clone());
        self.interest_bytes += bytes;
        self.interest.insert(key, sub);
        Ok(())
    }

    /// `LS-`.
    fn leaf_unsub(&mut self, subject: &[u8], queue: Option<&[u8]>) {
        let key = (Box::<[u8]>::from(subject), queue.map(Box::<[u8]>::from));
        if let Some(sub) = self.interest.remove(&key) {
            self.interest_bytes = self.interest_bytes.saturating_sub(subject.len() + queue.map_or(0, <[u8]>::len));
            self.broker.remove_subscription(&sub);
        }
    }

    /// `LMSG`/`HMSG`: a message the leaf publishes into its account,
    /// checked like a client's PUB, without the headers only a server may
    /// assert ([`headers`]).
    fn leaf_msg(&mut self, msg: &RouteMsg<'_>, now: Instant) -> Result<(), Event<Box<Login>>> {
        let State::Established(established) = &mut self.state else {
            return Err(Event::Close(self.refuse(Refusal::AuthorizationViolation)));
        };
        self.batch_in.0 += 1;
        self.batch_in.1 += msg.message.len() as u64;
        let reply_ok = msg.reply.is_none_or(subject::is_valid_literal);
        if !subject::is_valid_literal(msg.subject) || !reply_ok {
            self.client.send(ProtoError::InvalidPublishSubject.to_line().as_bytes());
            return Ok(());
        }
        // A routed reply is answered under the reply inside.
        let checked = match self.broker.routed_replies.get() {
            Some(_) => crate::broker::routed_reply::inner(msg.subject),
            None => msg.subject,
        };
        if let Err(violation) = established.publish.check(checked, msg.reply, now.into_std()) {
            let err = match msg.reply {
                Some(reply) if violation.blames_reply() => {
                    ProtoError::ReplyViolation(String::from_utf8_lossy(reply).into_owned())
                }
                _ => ProtoError::PublishViolation(String::from_utf8_lossy(msg.subject).into_owned()),
            };
            self.violation(&err, "publish");
            return Ok(());
        }
        // Mapped after the check, which (as in nats-server) is of the
        // subject the leaf sent, what its permissions speak of; the
        // rewritten subject must still stay out of the closed part of
        // `$SYS` (warden only: a mapping never opens it).
        let subject = match mapped(&mut established.mapper, msg.subject) {
            Ok(subject) => subject,
            Err(Unroutable::Dropped) => return Ok(()),
            Err(Unroutable::Invalid) => {
                self.client.send(ProtoError::InvalidPublishSubject.to_line().as_bytes());
                return Ok(());
            }
        };
        let (in_system, callout) = (established.account.is_system(), established.identity.serves_callout);
        if subject != msg.subject && !system_space::may_publish(subject, in_system, callout) {
            let err = ProtoError::PublishViolation(String::from_utf8_lossy(subject).into_owned());
            self.violation(&err, "publish");
            return Ok(());
        }
        // Headers a server asserts are not the peer's to set, hub or leaf:
        // copied only when present. Trace headers stay on a trace this
        // server honours (checked here), and go otherwise.
        let mut rewritten = Vec::new();
        let (header_len, bytes) =
            headers::without_asserted(msg.header_len, msg.message, headers::Asserted::Identity, &mut rewritten);
        let block = header_len.and_then(|len| bytes.get(..len));
        let asked = match block.filter(|b| msg_trace::may_trace(b)) {
            None => LeafTrace::Untraced,
            Some(block) => {
                let name = self.client.meta.lock().name.clone().unwrap_or_default();
                let peer = (&self.client, name);
                begin_trace(&mut established.publish, &established.account, peer, block, msg.subject, bytes.len())
            }
        };
        let mut trace = match asked {
            LeafTrace::Untraced => None,
            LeafTrace::Traced(trace) => Some(trace),
            LeafTrace::Skip => return Ok(()),
            LeafTrace::Denied(dest) => {
                self.violation(&ProtoError::PublishViolation(dest), "publish");
                return Ok(());
            }
        };
        if let (Some(trace), true) = (trace.as_mut(), subject != msg.subject) {
            trace.mapped(subject);
        }
        let account = established.account.clone();
        let mut untraced = Vec::new();
        let (header_len, bytes) = match trace {
            Some(_) => (header_len, bytes),
            None => headers::without_asserted(header_len, bytes, headers::Asserted::All, &mut untraced),
        };
        let message = Message { subject, reply: msg.reply, header_len, message: bytes, buffer: None };
        let cluster = self.client.leaf_cluster().unwrap_or_default().as_bytes();
        let origin = Origin::Leaf { id: self.client.id, queues: msg.queues, hub: self.to_hub, cluster };
        self.fanout.trace = trace;
        self.fanout.publish(&self.broker, &account, &message, origin, now.into_std());
        if let Some(trace) = self.fanout.trace.take() {
            self.fanout.send_trace(&self.broker, *trace, now.into_std());
        }
        Ok(())
    }

    /// Logs and counts a refused publish or subscribe, and tells the leaf
    /// (the connection stays, as for a client). A hub is not told: what it
    /// sends past `deny_imports`/`deny_exports` is dropped.
    fn violation(&self, err: &ProtoError, direction: &'static str) {
        let user = self.established().and_then(|e| e.identity.user.clone()).unwrap_or_default();
        self.broker.security.count_violation(&user, direction);
        if self.broker.log_budget.allow_from(self.client.addr.ip(), BudgetKind::Other, &user) {
            warn!(cid = self.client.id, addr = %self.client.addr, user = %user, direction, error = %err, "leafnode permission violation");
        }
        self.broker.audit_denial(&self.client, &user, err, direction);
        if self.spoke.is_none() {
            self.client.send(err.to_line().as_bytes());
        }
    }
}

impl Protocol for LeafSession {
    type Login = Box<Login>;
    type Verdict = Verdict;

    fn receive(&mut self, buf: &[u8], now: Instant) -> Received<Box<Login>> {
        self.fanout.begin_batch(self.broker.next_batch_token());
        let max_payload = self.broker.opts.max_payload;
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            if self.established().is_none() {
                if let Err(refusal) = self.check_unauthenticated(rest) {
                    return Received { used, need: 0, event: Some(Event::Close(self.refuse(refusal))) };
                }
            }
            match route::parse_dialect(rest, max_payload, Dialect::Leaf) {
                Ok(Some((op, n))) => {
                    if self.client.traced() {
                        self.client.trace_received(&rest[..n], self.broker.opts.max_traced_msg_len);
                    }
                    used += n;
                    self.keepalive.heard();
                    if let Err(event) = self.handle(op, now) {
                        return Received { used, need: 0, event: Some(event) };
                    }
                }
                Ok(None) => return Received { used, need: buf.len() - used + 1, event: None },
                Err(err) => {
                    let text = err.to_string();
                    self.client.send(format!("-ERR '{text}'\r\n").as_bytes());
                    debug!(cid = self.client.id, addr = %self.client.addr, error = %text, "leafnode protocol error");
                    return Received { used, need: 0, event: Some(Event::Close(CloseReason::ProtocolViolation)) };
                }
            }
        }
    }

    fn authenticated(&mut self, verdict: Verdict) -> Result<(), CloseReason> {
        let State::Authenticating(_slot, connect) = std::mem::replace(&mut self.state, State::Done) else {
            return Err(self.refuse(Refusal::AuthorizationViolation));
        };
        let user = connect.user.clone().or_else(|| connect.nkey.clone()).unwrap_or_default();
        let presented = self.broker.audit.is_on().then(|| Presented {
            jwt: connect.jwt.is_some(),
            nkey: connect.nkey.is_some(),
            token: connect.auth_token.is_some(),
            password: connect.pass.is_some(),
            certificate: self.client.meta.lock().peer().is_some(),
        });
        match verdict {
            Verdict::Accept(identity) => {
                self.broker.security.auth_successes.fetch_add(1, Ordering::Relaxed);
                let audited = presented.map(|p| (identity.clone(), p));
                let peer = Peer {
                    server_id: connect.server_id,
                    name: connect.name,
                    version: connect.version,
                    headers: connect.headers,
                    cluster: connect.cluster,
                    proto: connect.protocol,
                };
                let established = self.establish(identity, peer);
                match (&established, audited) {
                    (Ok(()), Some((identity, p))) => self.broker.audit_login(&self.client, &identity, p),
                    (Err(why), Some((_, p))) => {
                        self.broker.audit_login_refused(&self.client, Some(user), p, why.to_string())
                    }
                    _ => {}
                }
                established
            }
            Verdict::Refuse(reason) | Verdict::Explained(reason, _) => {
                self.broker.security.count_auth_failure(reason);
                if self.broker.log_budget.allow_from(self.client.addr.ip(), BudgetKind::Failure, &user) {
                    warn!(cid = self.client.id, addr = %self.client.addr, user = %user, %reason, "leafnode authentication failed");
                }
                if let Some(p) = presented {
                    self.broker.audit_login_refused(&self.client, Some(user), p, reason.to_string());
                }
                Err(self.refuse(Refusal::AuthorizationViolation))
            }
        }
    }

    fn deadline(&self) -> Instant {
        let keepalive = self.keepalive.next();
        match &self.state {
            State::Established(_) | State::Done => keepalive,
            _ => keepalive.min(self.auth_deadline),
        }
    }

    fn on_timer(&mut self, now: Instant) -> Result<(), CloseReason> {
        if matches!(self.state, State::AwaitingInfo | State::AwaitingConnectInfo(_)) && now >= self.auth_deadline {
            warn!(addr = %self.client.addr, "no INFO from the leafnode hub in time");
            return Err(CloseReason::AuthenticationTimeout);
        }
        if matches!(self.state, State::AwaitingConnect(_) | State::Authenticating(..)) && now >= self.auth_deadline {
            self.broker.security.auth_timeouts.fetch_add(1, Ordering::Relaxed);
            return Err(self.refuse(Refusal::AuthenticationTimeout));
        }
        if self.keepalive.run(now, &self.client).is_err() {
            self.client.send(ProtoError::StaleConnection.to_line().as_bytes());
            return Err(CloseReason::StaleConnection);
        }
        Ok(())
    }

    /// The users changed: the leaf keeps its login only if the gate still
    /// knows it in the same account; its interest is checked again. (A hub
    /// this server dialled keeps its identity until the next connection.)
    fn reconfigure(&mut self) -> Result<(), CloseReason> {
        if let State::Established(established) = &mut self.state {
            established.mapper = Mapper::for_account(&established.account, self.client.id);
        }
        if self.spoke.is_some() {
            return Ok(());
        }
        let State::Established(established) = &mut self.state else { return Ok(()) };
        let refreshed = self.hub.gate.refresh(&established.identity);
        let still = |i: &Identity| *i.account == *established.account.name && i.allows(ConnectionType::Leafnode);
        let Some(identity) = refreshed.filter(still) else {
            self.client.send(ProtoError::AuthorizationViolation.to_line().as_bytes());
            info!(cid = self.client.id, addr = %self.client.addr, "closing leafnode: user removed, credentials or account changed by a reload");
            return Err(CloseReason::UserRemoved);
        };
        let standing = Standing { in_system: established.account.is_system(), serves_callout: identity.serves_callout };
        established.publish.replace(identity.permissions.clone(), standing);
        let permissions = identity.permissions.clone();
        established.identity = identity;
        let account = established.account.clone();
        let keys: Vec<_> = self.interest.keys().cloned().collect();
        for key in keys {
            let Some(old) = self.interest.get(&key).cloned() else { continue };
            match permissions.may_subscribe(&old.subject, old.queue.as_deref()) {
                SubDecision::Allowed { filter } => {
                    let renewed = old.renewed(filter, account.shadows_for(&old.subject));
                    self.broker.replace_subscription(&old, renewed.clone());
                    self.interest.insert(key, renewed);
                }
                SubDecision::Denied => {
                    self.broker.remove_subscription(&old);
                    self.interest.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn end_batch(&mut self) -> Vec<Arc<Client>> {
        let received = std::mem::take(&mut self.batch_in);
        self.fanout.end_peer_batch(&self.broker, &self.client, received, true)
    }

    fn finish(&mut self, reason: CloseReason) {
        for (_, sub) in self.interest.drain() {
            self.broker.remove_subscription(&sub);
        }
        if let State::Established(established) = std::mem::replace(&mut self.state, State::Done) {
            self.hub.unregister(&established.link);
            established.account.disconnect_leaf();
            if self.broker.events.is_active() {
                let client = self.client.clone();
                // An event carries wall-clock time for its reader.
                #[allow(clippy::disallowed_methods)]
                let stop = std::time::SystemTime::now();
                self.broker.events.report(ServerEvent::Disconnect { client, reason, stop });
            }
            info!(cid = self.client.id, addr = %self.client.addr, remote = %established.link.remote_id, %reason, "leafnode closed");
        }
    }

    fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod harness;
#[cfg(test)]
mod tests;
