//! One route connection: handshake, interest, forwarded messages, keep-alive.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, info};

use super::limits::{MAX_REMOTE_INTEREST, MAX_REMOTE_INTEREST_BYTES};
use super::link::RouteLink;
use super::solicit::RouteUrl;
use super::{Cluster, Dial, InterestKey};
use crate::broker::PendingSlot;
use crate::broker::{
    stall_behind, stopping, Account, Broker, Client, ClientKind, CloseReason, Fanout, Message, Origin, Subscription,
};
use crate::conn::write_loop;
use crate::proto::route::{self, json_line, RouteConnect, RouteInfo, RouteOp};
use crate::subject;

/// Time a peer has to complete the route handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// First route PING, as nats-server.
const FIRST_PING: Duration = Duration::from_secs(1);

/// How a route connection ended.
#[derive(Debug)]
pub(crate) enum RouteEnd {
    /// The URL led back to this server.
    ToSelf,
    /// Another route to the same server won the tie-break.
    Duplicate(String),
    /// It closed; `registered` says whether it ever became a route.
    Closed {
        /// Whether the handshake completed.
        registered: bool,
    },
}

/// Accepts route connections until shutdown.
pub(crate) async fn accept_loop(cluster: Arc<Cluster>, listener: TcpListener) {
    let broker = cluster.broker.clone();
    crate::conn::accept_until_shutdown(&broker, listener, "route", |stream, peer| {
        // Bounded before anything is spent on it: a flood of idle
        // connections to the cluster port is closed at once.
        let Some(slot) = cluster.pending.admit(peer.ip(), true) else {
            if cluster.broker.audit.allow() {
                cluster.warn("too many unauthenticated route connections; closing", &peer);
            }
            return;
        };
        let _ = stream.set_nodelay(true);
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let accepted = Accepted { _slot: slot, deadline: Instant::now() + cluster.auth_timeout() };
            match cluster.tls.clone() {
                None => {
                    run_route(cluster, stream, peer, Dialled::No(accepted)).await;
                }
                Some(tls) => match timeout(tls.timeout, tls.acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        run_route(cluster, stream, peer, Dialled::No(accepted)).await;
                    }
                    _ => cluster.warn("route TLS handshake failed", &peer),
                },
            }
        });
    })
    .await;
}

/// How a route connection came about.
#[derive(Debug)]
pub(crate) enum Dialled {
    /// This server dialled the URL.
    Yes(RouteUrl),
    /// The peer dialled this server.
    No(Accepted),
}

/// An accepted route connection before it authenticated.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// Its place among the pending connections, given back once it is
    /// authenticated (or closed); held for its `Drop`.
    _slot: PendingSlot,
    /// It must be authenticated by then.
    deadline: Instant,
}

/// Per-connection route state.
struct RouteState {
    cluster: Arc<Cluster>,
    broker: Arc<Broker>,
    client: Arc<Client>,
    peer: SocketAddr,
    solicited: Option<RouteUrl>,
    /// Set while an accepted connection has not authenticated.
    accepted: Option<Accepted>,
    /// The peer's CONNECT was accepted (or we solicited).
    connected: bool,
    link: Option<Arc<RouteLink>>,
    remote: HashMap<InterestKey, Arc<Subscription>>,
    /// Interest in accounts this server does not host (yet): kept, within
    /// the same bounds, so an account added by a reload gets its peers'
    /// interest without their resending it.
    unhosted: HashSet<InterestKey>,
    /// Bytes of accounts, subjects and queue names in `remote` and `unhosted`.
    remote_bytes: usize,
    fanout: Fanout,
    pings_out: u32,
    /// The account of the last RMSG, so a run of messages in one account
    /// looks it up once.
    last_account: Option<Arc<Account>>,
}

/// Runs one route connection until it closes.
pub(crate) async fn run_route<S>(cluster: Arc<Cluster>, stream: S, peer: SocketAddr, dialled: Dialled) -> RouteEnd
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (solicited, accepted) = match dialled {
        Dialled::Yes(url) => (Some(url), None),
        Dialled::No(accepted) => (None, Some(accepted)),
    };
    let broker = cluster.broker.clone();
    let id = broker.next_client_id();
    let client = Arc::new(Client::with_kind(id, peer, broker.opts.max_pending, ClientKind::Route));
    let (mut reader, writer) = tokio::io::split(stream);
    let writer = tokio::spawn(write_loop(client.clone(), writer, broker.opts.write_deadline));
    let our_info = cluster.our_info();
    if let Some(url) = &solicited {
        let auth = cluster.opts.authorization.as_ref();
        let connect = RouteConnect {
            echo: true,
            verbose: false,
            pedantic: false,
            user: url.user.clone().or_else(|| auth.map(|a| a.user.clone())),
            pass: url.pass.clone().or_else(|| auth.map(|a| a.password.clone())),
            tls_required: cluster.tls.is_some(),
            headers: true,
            name: broker.identity.id.clone(),
            cluster: cluster.opts.name.clone().unwrap_or_default(),
            lnoc: true,
            lang: None,
        };
        client.send(&json_line("CONNECT", &connect));
    }
    client.send(&json_line("INFO", &our_info));
    let mut state = RouteState {
        cluster: cluster.clone(),
        broker: broker.clone(),
        client: client.clone(),
        peer,
        connected: solicited.is_some(),
        solicited,
        accepted,
        link: None,
        remote: HashMap::new(),
        unhosted: HashSet::new(),
        remote_bytes: 0,
        fanout: Fanout::new(id),
        pings_out: 0,
        last_account: None,
    };
    let end = state.read_loop(&mut reader).await;
    // Flushes what is queued (such as a final -ERR) within the writer's bound.
    client.outbound.close(CloseReason::ProtocolViolation);
    for (_, sub) in state.remote.drain() {
        broker.remove_subscription(&sub);
    }
    let registered = state.link.is_some();
    if let Some(link) = &state.link {
        cluster.unregister(link);
        info!(peer = %peer, remote = %link.remote_id, "route closed");
    }
    let _ = timeout(Duration::from_secs(1), writer).await;
    match end {
        Err(end) => end,
        Ok(()) => RouteEnd::Closed { registered },
    }
}

impl RouteState {
    async fn read_loop<R: AsyncRead + Unpin>(&mut self, reader: &mut R) -> Result<(), RouteEnd> {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut shutdown = self.broker.shutdown_signal();
        let handshake_deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let mut next_ping = Instant::now() + FIRST_PING;
        let max_payload = self.broker.opts.max_payload;
        let mut accounts_changed = self.broker.accounts.changed();
        loop {
            buf.reserve(64 * 1024);
            tokio::select! {
                _ = self.client.outbound.closing.notified() => return Ok(()),
                _ = accounts_changed.changed() => self.rehost(),
                _ = stopping(&mut shutdown) => return Ok(()),
                _ = sleep_until(handshake_deadline), if self.link.is_none() => {
                    self.cluster.warn("handshake not completed in time", &self.peer);
                    return Ok(());
                }
                _ = sleep_until(self.accepted.as_ref().map_or(handshake_deadline, |a| a.deadline)),
                    if self.accepted.is_some() => {
                    return self.refuse("Authentication Timeout");
                }
                _ = sleep_until(next_ping) => {
                    next_ping = Instant::now() + self.broker.opts.ping_interval;
                    if self.pings_out + 1 > self.broker.opts.ping_max {
                        self.cluster.warn("stale route (no PONG)", &self.peer);
                        return Ok(());
                    }
                    self.pings_out += 1;
                    self.client.send(b"PING\r\n");
                }
                read = reader.read_buf(&mut buf) => {
                    match read {
                        Ok(0) | Err(_) => return Ok(()),
                        Ok(_) => {}
                    }
                    self.fanout.begin_batch(self.broker.next_batch_token());
                    let mut used = 0;
                    let outcome = loop {
                        match route::parse(&buf[used..], max_payload) {
                            Ok(Some((op, n))) => {
                                used += n;
                                if let Err(end) = self.handle(op).await {
                                    break Err(end);
                                }
                            }
                            Ok(None) => break Ok(()),
                            Err(err) => {
                                self.cluster.warn(&format!("protocol error: {err}"), &self.peer);
                                break Err(RouteEnd::Closed { registered: self.link.is_some() });
                            }
                        }
                    };
                    buf.advance(used);
                    let backed_up = self.fanout.end_batch(&self.broker);
                    outcome?;
                    // Not reading while a local subscriber this batch fed
                    // is backed up lets TCP push back on the other server,
                    // whose publisher then waits (nats-server does the
                    // same); without it the subscriber was cut as a slow
                    // consumer here while the publisher ran at full speed.
                    stall_behind(backed_up).await;
                }
            }
        }
    }

    fn refuse(&self, text: &str) -> Result<(), RouteEnd> {
        self.client.send(format!("-ERR '{text}'\r\n").as_bytes());
        self.cluster.warn(text, &self.peer);
        Err(RouteEnd::Closed { registered: false })
    }

    async fn handle(&mut self, op: RouteOp<'_>) -> Result<(), RouteEnd> {
        match op {
            RouteOp::Ping => {
                self.client.send(b"PONG\r\n");
                Ok(())
            }
            RouteOp::Pong => {
                self.pings_out = 0;
                Ok(())
            }
            RouteOp::Ok => Ok(()),
            RouteOp::Err(text) => {
                self.cluster.warn(&format!("peer said {}", String::from_utf8_lossy(text)), &self.peer);
                Err(RouteEnd::Closed { registered: self.link.is_some() })
            }
            RouteOp::Connect(json) => self.connect(json).await,
            RouteOp::Info(json) => self.info(json),
            // Interest and messages of accounts this server does not host
            // are dropped, so they never enter another account's index.
            RouteOp::Sub { account, subject, queue } => {
                if self.link.is_none() {
                    return self.refuse("interest before route handshake");
                }
                self.remote_sub(account, subject, queue.map(|(q, _)| q))
            }
            RouteOp::Unsub { account, subject, queue } => {
                self.remote_unsub(account, subject, queue);
                Ok(())
            }
            RouteOp::Msg(msg) => {
                if self.link.is_none() {
                    return self.refuse("message before route handshake");
                }
                let reply_ok = msg.reply.is_none_or(subject::is_valid_literal);
                if !subject::is_valid_literal(msg.subject) || !reply_ok {
                    return Ok(());
                }
                let Some(account) = self.account(msg.account) else { return Ok(()) };
                self.client.stats.in_msgs.fetch_add(1, Ordering::Relaxed);
                self.client.stats.in_bytes.fetch_add(msg.message.len() as u64, Ordering::Relaxed);
                let message = Message {
                    subject: msg.subject,
                    reply: msg.reply,
                    header_len: msg.header_len,
                    message: msg.message,
                };
                let origin = Origin::Route { queues: msg.queues };
                self.fanout.publish(&self.broker, &account, &message, origin, std::time::Instant::now());
                Ok(())
            }
        }
    }

    async fn connect(&mut self, json: &[u8]) -> Result<(), RouteEnd> {
        let Ok(connect) = serde_json::from_slice::<RouteConnect>(json) else {
            return self.refuse("Protocol Violation: route CONNECT is not valid JSON");
        };
        if connect.lang.is_some() {
            return self.refuse("attempted to connect to route port");
        }
        if let Some(ours) = self.cluster.opts.name.as_deref() {
            if !connect.cluster.is_empty() && connect.cluster != ours {
                return self.refuse(&format!(
                    "Rejecting connection, cluster name \"{}\" does not match \"{ours}\"",
                    connect.cluster.escape_default()
                ));
            }
        }
        if self.cluster.route_auth_required() {
            let deadline = self.accepted.as_ref().map_or_else(Instant::now, |a| a.deadline);
            let check = self.cluster.route_credentials_ok(self.peer.ip(), connect.user, connect.pass);
            match tokio::time::timeout_at(deadline, check).await {
                Ok(true) => {}
                Ok(false) => return self.refuse("Authorization Violation"),
                Err(_) => return self.refuse("Authentication Timeout"),
            }
        }
        self.connected = true;
        // No longer one of the unauthenticated connections.
        self.accepted = None;
        Ok(())
    }

    fn info(&mut self, json: &[u8]) -> Result<(), RouteEnd> {
        let Ok(info) = serde_json::from_slice::<RouteInfo>(json) else {
            return self.refuse("Protocol Violation: route INFO is not valid JSON");
        };
        if info.server_id == self.broker.identity.id {
            return Err(RouteEnd::ToSelf);
        }
        match &self.link {
            None => self.first_info(info),
            Some(link) if link.remote_id == info.server_id => {
                if link.update_info(info) {
                    self.cluster.topology_changed();
                }
                Ok(())
            }
            Some(_) => {
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

    fn first_info(&mut self, info: RouteInfo) -> Result<(), RouteEnd> {
        if !self.connected {
            return self.refuse("Authorization Violation");
        }
        if let Some(ours) = self.cluster.opts.name.as_deref() {
            if !info.cluster.is_empty() && info.cluster != ours {
                return self.refuse(&format!(
                    "Rejecting connection, cluster name \"{}\" does not match \"{ours}\"",
                    info.cluster.escape_default()
                ));
            }
        }
        let route_url = match &self.solicited {
            Some(url) => url.route_url(),
            None => format!("nats-route://{}/", SocketAddr::new(self.peer.ip(), info.port)),
        };
        let remote_id = info.server_id.clone();
        let link = Arc::new(RouteLink::new(self.client.clone(), info, self.solicited.is_some(), route_url));
        if !self.cluster.register(link.clone(), &self.broker.identity.id) {
            debug!(peer = %self.peer, remote = %remote_id, "duplicate route closed");
            return Err(RouteEnd::Duplicate(remote_id));
        }
        info!(peer = %self.peer, remote = %remote_id, name = %link.remote_name(), "route established");
        self.link = Some(link);
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

    fn remote_sub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) -> Result<(), RouteEnd> {
        let valid = std::str::from_utf8(account).is_ok_and(|a| subject::is_valid_literal(a.as_bytes()));
        if !valid || !subject::is_valid_pattern(subject) || queue.is_some_and(|q| !subject::is_valid_queue(q)) {
            return Ok(());
        }
        let name: Arc<str> = String::from_utf8_lossy(account).into();
        let key: InterestKey = (name, subject.into(), queue.map(Into::into));
        if self.remote.contains_key(&key) || self.unhosted.contains(&key) {
            return Ok(());
        }
        let bytes = interest_bytes(&key);
        let held = self.remote.len() + self.unhosted.len();
        if held >= MAX_REMOTE_INTEREST || self.remote_bytes + bytes > MAX_REMOTE_INTEREST_BYTES {
            return self.refuse("too much route interest");
        }
        self.remote_bytes += bytes;
        match self.account(account) {
            Some(account) => self.host(account, key),
            None => {
                self.unhosted.insert(key);
            }
        }
        Ok(())
    }

    /// Puts interest into `account`'s index.
    fn host(&mut self, account: Arc<Account>, key: InterestKey) {
        let sub = Arc::new(Subscription::new(self.client.clone(), account, &key.1, key.2.as_deref(), b"", None));
        self.broker.add_subscription(sub.clone());
        self.remote.insert(key, sub);
    }

    /// After a reconfiguration: interest held for accounts that are now
    /// hosted goes into their indexes, and interest in accounts that went
    /// away is held again (in the new account of that name, if any).
    fn rehost(&mut self) {
        let stale: Vec<InterestKey> =
            self.remote.iter().filter(|(_, sub)| sub.account.is_removed()).map(|(k, _)| k.clone()).collect();
        for key in stale {
            if let Some(sub) = self.remote.remove(&key) {
                self.broker.remove_subscription(&sub);
            }
            self.unhosted.insert(key);
        }
        let ready: Vec<InterestKey> =
            self.unhosted.iter().filter(|k| self.broker.accounts.get(&k.0).is_some()).cloned().collect();
        for key in ready {
            self.unhosted.remove(&key);
            if let Some(account) = self.broker.accounts.get(&key.0) {
                self.host(account, key);
            }
        }
    }

    fn remote_unsub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
        let name: Arc<str> = String::from_utf8_lossy(account).into();
        let key: InterestKey = (name, subject.into(), queue.map(Into::into));
        if let Some(sub) = self.remote.remove(&key) {
            self.remote_bytes = self.remote_bytes.saturating_sub(interest_bytes(&key));
            self.broker.remove_subscription(&sub);
        } else if self.unhosted.remove(&key) {
            self.remote_bytes = self.remote_bytes.saturating_sub(interest_bytes(&key));
        }
    }
}

/// What one interest entry counts against [`MAX_REMOTE_INTEREST_BYTES`].
fn interest_bytes((account, subject, queue): &InterestKey) -> usize {
    account.len() + subject.len() + queue.as_ref().map_or(0, |q| q.len())
}
