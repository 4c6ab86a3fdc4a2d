//! One route connection: handshake, interest, forwarded messages, keep-alive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, info};

use super::link::RouteLink;
use super::solicit::RouteUrl;
use super::{Cluster, InterestKey};
use crate::broker::{stopping, Broker, Client, ClientKind, CloseReason, Fanout, Message, Origin, Subscription};
use crate::conn::write_loop;
use crate::proto::route::{self, json_line, RouteConnect, RouteInfo, RouteOp, GLOBAL_ACCOUNT};
use crate::subject;

/// Time a peer has to complete the route handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// First route PING, as nats-server.
const FIRST_PING: Duration = Duration::from_secs(1);
/// Most interest entries one peer may register.
const MAX_REMOTE_INTEREST: usize = 1 << 20;

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
    let mut shutdown = cluster.broker.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            _ = stopping(&mut shutdown) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let cluster = cluster.clone();
                tokio::spawn(async move {
                    match cluster.tls.clone() {
                        None => {
                            run_route(cluster, stream, peer, None).await;
                        }
                        Some(tls) => match timeout(tls.timeout, tls.acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                run_route(cluster, stream, peer, None).await;
                            }
                            _ => cluster.warn("route TLS handshake failed", &peer),
                        },
                    }
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Per-connection route state.
struct RouteState {
    cluster: Arc<Cluster>,
    broker: Arc<Broker>,
    client: Arc<Client>,
    peer: SocketAddr,
    solicited: Option<RouteUrl>,
    /// The peer's CONNECT was accepted (or we solicited).
    connected: bool,
    link: Option<Arc<RouteLink>>,
    remote: HashMap<InterestKey, Arc<Subscription>>,
    fanout: Fanout,
    pings_out: u32,
}

/// Runs one route connection until it closes.
pub(crate) async fn run_route<S>(
    cluster: Arc<Cluster>,
    stream: S,
    peer: SocketAddr,
    solicited: Option<RouteUrl>,
) -> RouteEnd
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
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
        link: None,
        remote: HashMap::new(),
        fanout: Fanout::new(id),
        pings_out: 0,
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
        loop {
            buf.reserve(64 * 1024);
            tokio::select! {
                _ = self.client.outbound.closing.notified() => return Ok(()),
                _ = stopping(&mut shutdown) => return Ok(()),
                _ = sleep_until(handshake_deadline), if self.link.is_none() => {
                    self.cluster.warn("handshake not completed in time", &self.peer);
                    return Ok(());
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
                    self.flush();
                    outcome?;
                }
            }
        }
    }

    fn flush(&mut self) {
        let ((out_msgs, out_bytes), touched) = self.fanout.finish_batch();
        for client in touched {
            client.outbound.wake();
        }
        let stats = &self.broker.stats;
        stats.out_msgs.fetch_add(out_msgs, Ordering::Relaxed);
        stats.out_bytes.fetch_add(out_bytes, Ordering::Relaxed);
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
            // Interest and messages of accounts warden does not host (such as
            // nats-server's `$SYS`) are dropped, so they never enter the
            // global account's index.
            RouteOp::Sub { account, subject, queue } => {
                if self.link.is_none() {
                    return self.refuse("interest before route handshake");
                }
                if account != GLOBAL_ACCOUNT {
                    return Ok(());
                }
                self.remote_sub(subject, queue.map(|(q, _)| q))
            }
            RouteOp::Unsub { account, subject, queue } => {
                if account != GLOBAL_ACCOUNT {
                    return Ok(());
                }
                if let Some(sub) = self.remote.remove(&(subject.into(), queue.map(Into::into))) {
                    self.broker.remove_subscription(&sub);
                }
                Ok(())
            }
            RouteOp::Msg(msg) => {
                if self.link.is_none() {
                    return self.refuse("message before route handshake");
                }
                if msg.account != GLOBAL_ACCOUNT {
                    return Ok(());
                }
                self.client.stats.in_msgs.fetch_add(1, Ordering::Relaxed);
                self.client.stats.in_bytes.fetch_add(msg.message.len() as u64, Ordering::Relaxed);
                let message = Message {
                    subject: msg.subject,
                    reply: msg.reply,
                    header_len: msg.header_len,
                    message: msg.message,
                };
                let origin = Origin::Route { queues: msg.queues };
                self.fanout.publish(&self.broker, &message, origin, std::time::Instant::now());
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
            let ok = self.cluster.route_credentials_ok(self.peer.ip(), connect.user, connect.pass).await;
            if !ok {
                return self.refuse("Authorization Violation");
            }
        }
        self.connected = true;
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
                // Gossip about another server: connect to it if we are not yet.
                if !info.ip.is_empty() && !self.cluster.has_route(&info.server_id) {
                    if let Some(url) = RouteUrl::parse(&info.ip) {
                        let retries = self.cluster.opts.connect_retries.max(3);
                        self.cluster.solicit(url, Some(retries));
                    }
                }
                Ok(())
            }
        }
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
            Some(url) => format!("nats-route://{}/", url.key()),
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

    fn remote_sub(&mut self, subject: &[u8], queue: Option<&[u8]>) -> Result<(), RouteEnd> {
        if !subject::is_valid_pattern(subject) {
            return Ok(());
        }
        let key: InterestKey = (subject.into(), queue.map(Into::into));
        if self.remote.contains_key(&key) {
            return Ok(());
        }
        if self.remote.len() >= MAX_REMOTE_INTEREST {
            return self.refuse("too much route interest");
        }
        let sub = Arc::new(Subscription::new(self.client.clone(), subject, queue, b"", None));
        self.broker.add_subscription(sub.clone());
        self.remote.insert(key, sub);
        Ok(())
    }
}
