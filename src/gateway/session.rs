//! The gateway protocol of one connection, sans IO: bytes and `now` in;
//! out go the bytes it queued, the credentials to check and the next
//! deadline. `connect.rs` puts it on the connection driver; the unit tests
//! drive it directly, with no socket and no clock.
//!
//! On a connection this server dialled (outbound) the other server speaks
//! first: its INFO must name the cluster that was dialled, and is answered
//! with CONNECT and this server's INFO; its interest then arrives (`RS+`,
//! `RS-`) and messages go out. On one it accepted (inbound) this server's
//! INFO goes first, the other side's CONNECT must log in within the auth
//! timeout and name an admitted cluster, its INFO establishes the link,
//! and its messages (`RMSG`, `HMSG`) come in.
// Sans IO: `now` comes from the driver (clippy.toml).
#![deny(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::{GatewayLink, GatewayUrl, Gateways, InterestKey, MAX_GATEWAY_INTEREST, MAX_GATEWAY_INTEREST_BYTES};
use crate::audit::{Event as AuditEvent, Method};
use crate::broker::peer_interest::{interest_bytes, PeerInterest};
use crate::broker::routed_reply::hash;
use crate::broker::Subscription;
use crate::broker::{audit_conn, Account, Broker, Client, CloseReason, Fanout, Message, Origin};
use crate::conn::{Event, KeepAlive, Received, FIRST_PEER_PING};
use crate::proto::route::gateway::{GatewayConnect, GatewayInfo, CMD_GOSSIP};
use crate::proto::route::{self, json_line, Dialect, RouteOp};
use crate::subject;

/// Time the other side has to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Gateway credentials to check (an inbound CONNECT): a gateway logs in
/// with what a route does.
pub(crate) type GatewayLogin = crate::cluster::RouteLogin;
/// An accepted gateway connection before it logged in, held as a route's.
pub(crate) use crate::cluster::Accepted;

#[derive(Debug)]
enum State {
    /// Inbound: only a CONNECT is taken, by the deadline.
    AwaitingConnect(Accepted),
    /// Inbound after its CONNECT (the name it gave), or outbound: the
    /// other side's INFO establishes the link.
    AwaitingInfo(Option<String>),
    /// Registered.
    Established(Arc<GatewayLink>),
}

/// Per-connection gateway state, owned by the connection's reader task.
pub(crate) struct GatewaySession {
    gateways: Arc<Gateways>,
    broker: Arc<Broker>,
    client: Arc<Client>,
    peer: SocketAddr,
    /// Outbound: the cluster dialled, and the URL it was dialled by.
    dialled: Option<(String, GatewayUrl)>,
    state: State,
    handshake_deadline: Instant,
    keepalive: KeepAlive,
    /// The other cluster's interest (outbound), hosted in the accounts (or
    /// held for accounts this server does not host yet).
    remote: PeerInterest,
    fanout: Fanout,
    batch_in: (u64, u64),
    last_account: Option<Arc<Account>>,
    /// The user an inbound CONNECT claimed, for the audit trail.
    claimed: Option<String>,
    /// The cluster an inbound CONNECT named, until its INFO.
    claimed_cluster: Option<String>,
    /// It was registered at some point.
    pub(crate) registered: bool,
}

impl GatewaySession {
    /// The session of a connection opened at `now`: dialled to cluster
    /// `dialled` by a URL, or `accepted`.
    pub(crate) fn new(
        gateways: Arc<Gateways>,
        client: Arc<Client>,
        dialled: Option<(String, GatewayUrl)>,
        accepted: Option<Accepted>,
        now: Instant,
    ) -> Self {
        let broker = gateways.broker.clone();
        client.set_traced(broker.trace.on());
        let state = match accepted {
            Some(accepted) => {
                accepted.slot.bind(&client);
                client.send(&json_line("INFO", &gateways.our_info()));
                State::AwaitingConnect(accepted)
            }
            None => State::AwaitingInfo(None),
        };
        let opts = &broker.opts;
        let interval = opts.ping_interval.min(super::MAX_PING_INTERVAL);
        let keepalive = KeepAlive::new(now, FIRST_PEER_PING, interval, opts.ping_max);
        GatewaySession {
            fanout: Fanout::new(client.id),
            peer: client.addr,
            gateways,
            broker,
            client,
            dialled,
            state,
            handshake_deadline: now + HANDSHAKE_TIMEOUT,
            keepalive,
            remote: PeerInterest::default(),
            batch_in: (0, 0),
            last_account: None,
            claimed: None,
            claimed_cluster: None,
            registered: false,
        }
    }

    fn link(&self) -> Option<&Arc<GatewayLink>> {
        match &self.state {
            State::Established(link) => Some(link),
            _ => None,
        }
    }

    /// The client whose outbound queue carries this connection's bytes.
    pub(crate) fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// When [`GatewaySession::on_timer`] must next be called.
    pub(crate) fn deadline(&self) -> Instant {
        let keepalive = self.keepalive.next();
        match &self.state {
            State::Established(_) => keepalive,
            State::AwaitingInfo(_) => keepalive.min(self.handshake_deadline),
            State::AwaitingConnect(a) => keepalive.min(self.handshake_deadline).min(a.deadline),
        }
    }

    /// The deadline came: a peer that did not log in is refused, an
    /// unfinished handshake closed, the link kept alive.
    pub(crate) fn on_timer(&mut self, now: Instant) -> Result<(), CloseReason> {
        if let State::AwaitingConnect(accepted) = &self.state {
            if now >= accepted.deadline {
                return Err(self.refuse("Authentication Timeout", CloseReason::AuthenticationTimeout));
            }
        }
        if self.link().is_none() && now >= self.handshake_deadline {
            self.warn("handshake not completed in time");
            return Err(CloseReason::AuthenticationTimeout);
        }
        // Before the handshake a dialled peer expects CONNECT first: no PING.
        if self.link().is_some() && self.keepalive.run(now, &self.client).is_err() {
            self.warn("stale gateway (no PONG)");
            return Err(CloseReason::StaleConnection);
        }
        Ok(())
    }

    /// Handles every complete op at the start of `buf`, read at `now`.
    pub(crate) fn receive(&mut self, buf: &[u8], now: Instant) -> Received<GatewayLogin> {
        self.fanout.begin_batch(self.broker.next_batch_token());
        let max_payload = self.broker.opts.max_payload;
        let mut used = 0;
        loop {
            match route::parse_dialect(&buf[used..], max_payload, Dialect::Gateway) {
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
                Ok(None) => return Received { used, need: buf.len() - used + 1, event: None },
                Err(err) => {
                    self.warn(&format!("protocol error: {err}"));
                    return Received { used, need: 0, event: Some(Event::Close(CloseReason::ProtocolViolation)) };
                }
            }
        }
    }

    /// The answer to the credential check of an inbound CONNECT.
    pub(crate) fn authenticated(&mut self, ok: bool) -> Result<(), CloseReason> {
        if !ok {
            let reason = self.gateways.refusal_reason();
            self.broker.security.count_auth_failure(reason);
            if self.broker.audit.is_on() {
                let mut conn = audit_conn(&self.client);
                conn.user = self.claimed.take();
                let method = if self.gateways.certificates() { Method::Certificate } else { Method::Password };
                let event = AuditEvent::LoginRefused { conn, method, reason: reason.to_string() };
                self.broker.audit.record(event);
            }
            return Err(self.refuse("Authorization Violation", CloseReason::AuthenticationFailure));
        }
        if let State::AwaitingConnect(_) = self.state {
            let name = self.claimed_cluster.take();
            self.state = State::AwaitingInfo(name);
        }
        Ok(())
    }

    /// Ends a read batch: wakes the subscribers it fed, counts it.
    pub(crate) fn end_batch(&mut self) -> Vec<Arc<Client>> {
        let received = std::mem::take(&mut self.batch_in);
        self.fanout.end_peer_batch(&self.broker, &self.client, received, false)
    }

    /// The connection ended: its interest leaves the indexes, the link the
    /// registry.
    pub(crate) fn finish(&mut self) {
        self.remote.clear(&self.broker);
        if let State::Established(link) = std::mem::replace(&mut self.state, State::AwaitingInfo(None)) {
            self.gateways.unregister(&link);
            info!(peer = %self.peer, gateway = %link.name, outbound = link.outbound, "gateway closed");
        }
    }

    fn warn(&self, what: &str) {
        warn!(peer = %self.peer, "gateway: {what}");
    }

    /// Sends `-ERR 'text'`, logs it, and returns `reason`.
    fn refuse(&self, text: &str, reason: CloseReason) -> CloseReason {
        self.client.send(format!("-ERR '{text}'\r\n").as_bytes());
        self.warn(text);
        reason
    }

    fn handle(&mut self, op: RouteOp<'_>, now: Instant) -> Result<(), Event<GatewayLogin>> {
        let violation = |s: &Self, text: &str| Err(Event::Close(s.refuse(text, CloseReason::ProtocolViolation)));
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
                self.warn(&format!("peer said {}", String::from_utf8_lossy(text)));
                Err(Event::Close(CloseReason::ClientClosed))
            }
            RouteOp::Connect(json) => self.connect(json),
            RouteOp::Info(json) => self.info(json),
            RouteOp::Sub { account, subject, queue, .. } => match self.link() {
                Some(link) if link.outbound => self.remote_sub(account, subject, queue.map(|(q, _)| q)),
                _ => violation(self, "interest on an inbound gateway"),
            },
            RouteOp::Unsub { account, subject, queue } => {
                self.remote_unsub(account, subject, queue);
                Ok(())
            }
            // Account-level interest is the optimistic mode's; in
            // interest-only mode every account starts with none.
            RouteOp::Account { .. } => Ok(()),
            RouteOp::Msg(msg) => {
                match self.link() {
                    Some(link) if !link.outbound => {}
                    Some(_) => return violation(self, "message on an outbound gateway"),
                    None => return violation(self, "message before gateway handshake"),
                }
                let reply_ok = msg.reply.is_none_or(subject::is_valid_literal);
                if !subject::is_valid_literal(msg.subject) || !reply_ok {
                    return Ok(());
                }
                let Some(account) = self.account(msg.account) else { return Ok(()) };
                self.batch_in.0 += 1;
                self.batch_in.1 += msg.message.len() as u64;
                let message = Message {
                    subject: msg.subject,
                    reply: msg.reply,
                    header_len: msg.header_len,
                    message: msg.message,
                    buffer: None,
                };
                let origin = Origin::Gateway { queues: msg.queues };
                self.fanout.publish(&self.broker, &account, &message, origin, now.into_std());
                Ok(())
            }
        }
    }

    /// An inbound CONNECT: refused from a client or route (no gateway
    /// name), from this cluster or a cluster not admitted; its credentials
    /// go to the driver's check.
    fn connect(&mut self, json: &[u8]) -> Result<(), Event<GatewayLogin>> {
        let close = |s: &Self, text: &str, reason| Err(Event::Close(s.refuse(text, reason)));
        let State::AwaitingConnect(accepted) = &self.state else {
            return close(self, "unexpected CONNECT", CloseReason::ProtocolViolation);
        };
        let certificate = accepted.certificate.clone().map(Box::new);
        let Ok(connect) = serde_json::from_slice::<GatewayConnect>(json) else {
            return close(
                self,
                "Protocol Violation: gateway CONNECT is not valid JSON",
                CloseReason::ProtocolViolation,
            );
        };
        if connect.gateway.is_empty() {
            return close(self, "attempted to connect to gateway port", CloseReason::ProtocolViolation);
        }
        let ours = &self.gateways.opts.name;
        if connect.gateway == *ours || !self.gateways.admits(&connect.gateway) {
            let text = format!("Connection to gateway \"{}\" rejected", ours.escape_default());
            return close(self, &text, CloseReason::ProtocolViolation);
        }
        self.claimed_cluster = Some(connect.gateway.clone());
        if !self.gateways.auth_required() {
            return self.authenticated(true).map_err(Event::Close);
        }
        self.claimed.clone_from(&connect.user);
        Err(Event::Authenticate(GatewayLogin { peer: self.peer, user: connect.user, pass: connect.pass, certificate }))
    }

    fn info(&mut self, json: &[u8]) -> Result<(), Event<GatewayLogin>> {
        let Ok(info) = serde_json::from_slice::<GatewayInfo>(json) else {
            let reason =
                self.refuse("Protocol Violation: gateway INFO is not valid JSON", CloseReason::ProtocolViolation);
            return Err(Event::Close(reason));
        };
        match &self.state {
            State::AwaitingConnect(_) => {
                Err(Event::Close(self.refuse("Authorization Violation", CloseReason::AuthenticationFailure)))
            }
            State::AwaitingInfo(claimed) => {
                let claimed = claimed.clone();
                self.first_info(info, claimed)
            }
            State::Established(link) => {
                if link.outbound && (info.gateway_cmd == CMD_GOSSIP || info.gateway == link.name) {
                    self.gateways.discovered(&info.gateway, &info.gateway_urls);
                }
                // Commands 2 and 3 frame an account's interest, which this
                // server takes as interest-only from the start anyway.
                Ok(())
            }
        }
    }

    /// The other side's first INFO. Outbound: it must be the cluster
    /// dialled; CONNECT and this server's INFO answer it. Inbound: it
    /// must be the cluster its CONNECT named.
    fn first_info(&mut self, info: GatewayInfo, claimed: Option<String>) -> Result<(), Event<GatewayLogin>> {
        let close = |s: &Self, text: &str| Err(Event::Close(s.refuse(text, CloseReason::ProtocolViolation)));
        if info.server_id == self.broker.identity.id {
            return Err(Event::Close(CloseReason::ProtocolViolation));
        }
        let outbound = self.dialled.is_some();
        let name = match (&self.dialled, claimed) {
            (Some((dialled, _)), _) if info.gateway.is_empty() => {
                return close(self, &format!("Attempt to connect to gateway \"{dialled}\" using wrong port"));
            }
            (Some((dialled, _)), _) if info.gateway != *dialled => {
                let text = format!(
                    "Connection from \"{}\" rejected, wanted to connect to \"{dialled}\", this is \"{}\"",
                    self.gateways.opts.name,
                    info.gateway.escape_default()
                );
                return close(self, &text);
            }
            (Some((dialled, url)), _) => {
                let (user, pass) = self.gateways.credentials_for(url);
                let connect = GatewayConnect {
                    user,
                    pass,
                    headers: true,
                    name: self.broker.identity.id.clone(),
                    gateway: self.gateways.opts.name.clone(),
                    ..GatewayConnect::default()
                };
                self.client.send(&json_line("CONNECT", &connect));
                self.client.send(&json_line("INFO", &self.gateways.our_info()));
                dialled.clone()
            }
            (None, Some(claimed)) if info.gateway == claimed => claimed,
            (None, _) => return close(self, "gateway INFO names another cluster than its CONNECT"),
        };
        let mut urls = info.gateway_urls.clone();
        urls.extend(Some(info.gateway_url.clone()).filter(|u| !u.is_empty()));
        self.gateways.discovered(&name, &urls);
        let link = Arc::new(GatewayLink {
            client: self.client.clone(),
            cluster_hash: hash(&name),
            configured: self.gateways.opts.gateways.iter().any(|g| g.name == name),
            name,
            remote_id: info.server_id.clone(),
            remote_name: info.server_name.clone(),
            outbound,
        });
        self.client.meta.lock().name = Some(info.server_name).filter(|n| !n.is_empty());
        if !self.gateways.register(link.clone()) {
            return Err(Event::Close(CloseReason::ProtocolViolation));
        }
        info!(peer = %self.peer, gateway = %link.name, remote = %link.remote_id, outbound, "gateway established");
        self.state = State::Established(link);
        self.registered = true;
        Ok(())
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

    /// The other cluster's interest: hosted in the account's index, owned
    /// by this connection (so messages come here), within the bounds: an
    /// account's own first (past them its further interest is dropped and
    /// counted), then the connection's (past them it closes).
    fn remote_sub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) -> Result<(), Event<GatewayLogin>> {
        let valid = std::str::from_utf8(account).is_ok_and(|a| subject::is_valid_literal(a.as_bytes()));
        if !valid || !subject::is_valid_pattern(subject) || queue.is_some_and(|q| !subject::is_valid_queue(q)) {
            return Ok(());
        }
        let name: Arc<str> = String::from_utf8_lossy(account).into();
        let key: InterestKey = (name, subject.into(), queue.map(Into::into));
        if self.remote.contains(&key) {
            return Ok(());
        }
        let bytes = interest_bytes(&key);
        if self.remote.len() >= MAX_GATEWAY_INTEREST || self.remote.bytes() + bytes > MAX_GATEWAY_INTEREST_BYTES {
            return Err(Event::Close(self.refuse("too much gateway interest", CloseReason::ProtocolViolation)));
        }
        let (entries, held) = self.remote.in_account(&key.0);
        let (max_entries, max_bytes) = self.gateways.account_bound();
        if entries >= max_entries || held + bytes > max_bytes {
            let gateway = self.link().map(|l| l.name.clone()).unwrap_or_default();
            self.gateways.dropped_interest(&key.0, &gateway);
            return Ok(());
        }
        let hosted = self.account(account);
        let client = &self.client;
        self.remote.insert(&self.broker, key, hosted, |account, key| hosted_sub(client, account, key));
        Ok(())
    }

    /// After a reconfiguration: interest held for accounts now hosted goes
    /// into their indexes, interest in accounts that went away is held.
    pub(crate) fn rehost(&mut self) {
        let client = &self.client;
        self.remote.rehost(&self.broker, |account, key| hosted_sub(client, account, key));
    }

    fn remote_unsub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
        let name: Arc<str> = String::from_utf8_lossy(account).into();
        self.remote.remove(&self.broker, &(name, subject.into(), queue.map(Into::into)));
    }
}

/// The subscription that puts another cluster's interest into `account`'s
/// index, owned by the gateway connection it came over.
fn hosted_sub(client: &Arc<Client>, account: Arc<Account>, key: &InterestKey) -> Subscription {
    Subscription::new(client.clone(), account, &key.1, key.2.as_deref(), b"", None)
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod harness;
