//! The part of a connection that other connections touch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use parking_lot::Mutex;

use super::origin::Via;
use super::outbound::{slice_within, Append, Outbound, ReadBuffer, SPLICE_MIN};
use crate::perms::{PermissionSet, ReplyGrants, ResponseTracker};
use crate::proto::{msg_body, msg_len_bound, write_msg, write_msg_line};

/// Message and byte counters of one connection (payload bytes, no framing).
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Messages received from the client.
    pub in_msgs: AtomicU64,
    /// Bytes received from the client.
    pub in_bytes: AtomicU64,
    /// Messages delivered to the client.
    pub out_msgs: AtomicU64,
    /// Bytes delivered to the client.
    pub out_bytes: AtomicU64,
    /// Nanoseconds the client was not read because it was over its
    /// publish rate (`rate_limit`).
    pub held_nanos: AtomicU64,
}

/// Descriptive facts about a connection, for monitoring and logs.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    /// `name` from CONNECT.
    pub name: Option<String>,
    /// `lang` from CONNECT.
    pub lang: Option<String>,
    /// `version` from CONNECT.
    pub version: Option<String>,
    /// The authenticated user, if any.
    pub user: Option<String>,
    /// The account the connection is logged in to, once it is.
    pub account: Option<std::sync::Arc<str>>,
    /// The logged-in user's permissions (for the `$SYS` requests that need
    /// an explicit grant).
    pub permissions: Option<std::sync::Arc<PermissionSet>>,
    /// The TLS session's facts, when on TLS. Boxed: inline they cost every
    /// connection 160 bytes, and most of a big server's are idle ones.
    pub tls: Option<Box<TlsMeta>>,
    /// It came through the WebSocket listener.
    pub websocket: bool,
}

/// What a connection's TLS session negotiated and verified.
#[derive(Debug, Clone, Default)]
pub struct TlsMeta {
    /// Negotiated TLS version.
    pub version: Option<String>,
    /// Negotiated TLS cipher suite.
    pub cipher_suite: Option<String>,
    /// Names in the verified client certificate, when one was presented.
    pub peer: Option<crate::tls::PeerIdentity>,
    /// The client's certificate chain (DER, leaf first), when it sent one,
    /// for an external authorizer.
    pub chain: Option<std::sync::Arc<[Vec<u8>]>>,
}

impl ClientMeta {
    /// Names in the verified client certificate, when one was presented.
    pub fn peer(&self) -> Option<&crate::tls::PeerIdentity> {
        self.tls.as_ref().and_then(|tls| tls.peer.as_ref())
    }
}

/// What is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientKind {
    /// A NATS client.
    Client,
    /// Another server of the cluster.
    Route,
    /// A leaf node server connected to this one, bound to one account.
    Leaf,
    /// A server of another cluster, over a gateway.
    Gateway,
    /// The server itself: owner of an account's internal subscriptions.
    Internal,
}

/// A client connection as other connections see it: where to deliver, and
/// what it asked for at CONNECT.
#[derive(Debug)]
pub struct Client {
    /// Connection id (`cid`), unique per server run.
    pub id: u64,
    /// Client or route.
    pub kind: ClientKind,
    /// CONNECT `protocol` is 1 or more: the client takes async INFO.
    async_info: AtomicBool,
    /// Peer address.
    pub addr: SocketAddr,
    /// When the connection was accepted.
    pub start: SystemTime,
    /// Bounded outbound buffer.
    pub outbound: Outbound,
    /// Counters.
    pub stats: ClientStats,
    /// What a delivery reads, in one load: [`HEADERS`] (CONNECT `headers`:
    /// deliver HMSG rather than MSG) and [`TRACED`] (the protocol trace is
    /// on: what the connection is sent is traced here, what it sends by its
    /// session). One word, so tracing off costs a delivery nothing more.
    delivery_flags: AtomicU8,
    /// Last read batch that queued to this client (see `mark_batch`).
    batch: AtomicU64,
    /// Round-trip time measured with the server's PING, in nanoseconds (0 = not yet).
    pub rtt_nanos: AtomicU64,
    /// Monitoring facts; written at CONNECT, read by monitoring.
    pub meta: Mutex<ClientMeta>,
    /// Milliseconds since the Unix epoch of the last read from the socket;
    /// set once per read batch (not per message), read by monitoring.
    last_activity_ms: AtomicU64,
    /// Subscriptions of this client in the index; kept by the router on
    /// insert and remove (never per message), read by monitoring.
    subscriptions: AtomicUsize,
    /// Entries in this connection's match cache, published once per read
    /// batch that published, for `/subsz`'s `num_cache`.
    cache_entries: AtomicUsize,
    /// Whether `replies` is in use, so publishers skip its lock otherwise.
    tracks_replies: AtomicBool,
    /// Reply subjects this client may answer (`allow_responses`), recorded
    /// by publishers when they deliver a request to it. Boxed: few clients
    /// have `allow_responses`, and inline it cost every client 96 bytes.
    replies: Mutex<Option<Box<ResponseTracker>>>,
    /// A leaf connection's role and the other server's cluster, fixed at
    /// its login.
    leaf: std::sync::OnceLock<LeafRole>,
    /// A route peer that announced `lnoc`: a leaf node cluster's messages
    /// go to it as `LMSG` naming that cluster.
    lnoc: AtomicBool,
    /// A pinned account's route connection: message frames leave the
    /// account out.
    pinned_route: AtomicBool,
    /// A route peer that traces messages itself (its INFO's `proto` is
    /// nats-server's `MsgTraceProto`, 3, or more): a traced message goes
    /// to it with `Nats-Trace-Hop`, trace-only ones included.
    traces: AtomicBool,
}

/// [`Client::delivery_flags`]: the client takes HMSG.
const HEADERS: u8 = 1;
/// [`Client::delivery_flags`]: the protocol trace is on.
const TRACED: u8 = 2;

/// Where a leaf connection sits, fixed at its login: what loop prevention
/// needs to know of it.
#[derive(Debug, Clone)]
pub struct LeafRole {
    /// This server dialled it: the other end is this server's hub.
    pub to_hub: bool,
    /// The other server's cluster name, if it has one: a leaf node cluster
    /// gets nothing back that came from that cluster.
    pub cluster: Option<Box<str>>,
}

impl Client {
    /// A client with an empty outbound buffer.
    pub fn new(id: u64, addr: SocketAddr, max_pending: usize) -> Self {
        Client::with_kind(id, addr, max_pending, ClientKind::Client)
    }

    /// A connection of the given kind.
    pub fn with_kind(id: u64, addr: SocketAddr, max_pending: usize, kind: ClientKind) -> Self {
        Client {
            id,
            kind,
            async_info: AtomicBool::new(false),
            addr,
            start: SystemTime::now(),
            outbound: Outbound::new(max_pending),
            stats: ClientStats::default(),
            delivery_flags: AtomicU8::new(0),
            batch: AtomicU64::new(0),
            rtt_nanos: AtomicU64::new(0),
            meta: Mutex::new(ClientMeta::default()),
            last_activity_ms: AtomicU64::new(unix_millis(SystemTime::now())),
            subscriptions: AtomicUsize::new(0),
            cache_entries: AtomicUsize::new(0),
            tracks_replies: AtomicBool::new(false),
            replies: Mutex::new(None),
            leaf: std::sync::OnceLock::new(),
            lnoc: AtomicBool::new(false),
            pinned_route: AtomicBool::new(false),
            traces: AtomicBool::new(false),
        }
    }

    fn set_flag(&self, flag: u8, on: bool) {
        if on {
            self.delivery_flags.fetch_or(flag, Ordering::Relaxed);
        } else {
            self.delivery_flags.fetch_and(!flag, Ordering::Relaxed);
        }
    }

    /// Turns the protocol trace of this connection on or off.
    pub fn set_traced(&self, on: bool) {
        self.set_flag(TRACED, on);
    }

    /// Whether the protocol trace is on for this connection.
    #[inline]
    pub fn traced(&self) -> bool {
        self.delivery_flags.load(Ordering::Relaxed) & TRACED != 0
    }

    /// Traces a delivery to this client; out of line, so the delivery path
    /// stays as small as without the trace.
    #[cold]
    #[inline(never)]
    fn trace_delivery(&self, subject: &[u8], sid: &[u8], reply: Option<&[u8]>, header_len: Option<usize>, size: usize) {
        self.trace("->>", &crate::proto::trace::delivery(subject, sid, reply, header_len, size));
    }

    /// Traces protocol lines queued to this connection.
    #[cold]
    #[inline(never)]
    fn trace_sent(&self, bytes: &[u8]) {
        for line in crate::proto::trace::outbound(bytes) {
            self.trace("->>", &line);
        }
    }

    /// Traces one op the connection sent, from its bytes.
    #[cold]
    #[inline(never)]
    pub fn trace_received(&self, bytes: &[u8], max_payload_shown: usize) {
        for text in crate::proto::trace::received(bytes, max_payload_shown) {
            self.trace("<<-", &text);
        }
    }

    /// Writes one trace line for this connection, in nats-server's shape:
    /// `ADDR - cid:N - <<- [OP ...]` (`->>` for what it is sent).
    pub fn trace(&self, direction: &str, text: &str) {
        tracing::trace!(target: "warden::trace", "{} - cid:{} - {direction} {text}", self.addr, self.id);
    }

    /// Fixes a leaf connection's role at its login (once).
    pub fn set_leaf_role(&self, role: LeafRole) {
        let _ = self.leaf.set(role);
    }

    /// The cluster of the server at the other end of a leaf connection.
    pub fn leaf_cluster(&self) -> Option<&str> {
        self.leaf.get().and_then(|r| r.cluster.as_deref())
    }

    /// Records that a route peer understands `LMSG` with an origin cluster.
    pub fn set_lnoc(&self, on: bool) {
        self.lnoc.store(on, Ordering::Relaxed);
    }

    /// Records that a route or leaf peer traces messages itself.
    pub fn set_traces(&self, on: bool) {
        self.traces.store(on, Ordering::Relaxed);
    }

    /// Whether a route or leaf peer traces messages itself.
    pub fn traces(&self) -> bool {
        self.traces.load(Ordering::Relaxed)
    }

    /// Whether a route peer understands `LMSG` with an origin cluster.
    pub fn lnoc(&self) -> bool {
        self.lnoc.load(Ordering::Relaxed)
    }

    /// Marks a route connection as a pinned account's (set once, before
    /// it carries interest).
    pub fn set_pinned_route(&self) {
        self.pinned_route.store(true, Ordering::Relaxed);
    }

    /// Whether this is a pinned account's route connection.
    pub fn pinned_route(&self) -> bool {
        self.pinned_route.load(Ordering::Relaxed)
    }

    /// Records that the client sent something at `at` (once per read batch).
    pub fn touch(&self, at: SystemTime) {
        self.last_activity_ms.store(unix_millis(at), Ordering::Relaxed);
    }

    /// When the client last sent something (its connect time before that).
    pub fn last_activity(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed))
    }

    /// Number of this client's subscriptions in the index.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.load(Ordering::Relaxed)
    }

    /// For the router: a subscription of this client entered (`true`) or
    /// left (`false`) the index.
    pub(crate) fn count_subscription(&self, added: bool) {
        if added {
            self.subscriptions.fetch_add(1, Ordering::Relaxed);
        } else {
            self.subscriptions.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Entries in this connection's match cache, as of its last publishing batch.
    pub fn cache_entries(&self) -> usize {
        self.cache_entries.load(Ordering::Relaxed)
    }

    /// For the session: publishes its match cache size.
    pub(crate) fn set_cache_entries(&self, n: usize) {
        self.cache_entries.store(n, Ordering::Relaxed);
    }

    /// Which side of this server it sits on: its subscriptions are
    /// deliveries when local, interest to forward to when not.
    pub fn via(&self) -> Via {
        match self.kind {
            ClientKind::Leaf if self.leaf.get().is_some_and(|r| r.to_hub) => Via::Hub,
            kind => Via::of(kind),
        }
    }

    /// Records that the client speaks protocol 1 (takes async INFO).
    pub fn set_async_info(&self, on: bool) {
        self.async_info.store(on, Ordering::Relaxed);
    }

    /// Whether the client takes async INFO updates.
    pub fn takes_async_info(&self) -> bool {
        self.async_info.load(Ordering::Relaxed)
    }

    /// Records whether the client understands headers.
    pub fn set_headers(&self, on: bool) {
        self.set_flag(HEADERS, on);
    }

    /// Whether the client understands headers.
    pub fn headers(&self) -> bool {
        self.delivery_flags.load(Ordering::Relaxed) & HEADERS != 0
    }

    /// Starts (or stops) tracking reply subjects, per the permissions'
    /// `allow_responses`.
    pub fn set_reply_tracking(&self, permissions: &PermissionSet) {
        let tracker = ResponseTracker::for_set(permissions).map(Box::new);
        self.tracks_replies.store(tracker.is_some(), Ordering::Release);
        *self.replies.lock() = tracker;
    }

    /// Records that a request with `reply` was delivered to this client at `now`.
    pub fn record_reply(&self, reply: &[u8], now: Instant) {
        if self.tracks_replies.load(Ordering::Acquire) {
            if let Some(tracker) = self.replies.lock().as_mut() {
                tracker.record(reply, now);
            }
        }
    }

    /// Marks this client as touched by read batch `token`; true the first
    /// time in that batch, so the publisher wakes each writer once.
    pub fn mark_batch(&self, token: u64) -> bool {
        self.batch.swap(token, Ordering::Relaxed) != token
    }

    /// Queues one MSG/HMSG frame. `buffer`: the refcounted read buffer
    /// `message` was parsed from, if it has one; a large payload in it is
    /// queued by reference rather than copied (see [`Outbound::append_spliced`]).
    pub fn deliver(
        &self,
        subject: &[u8],
        sid: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
        buffer: Option<&ReadBuffer>,
    ) -> Append {
        let flags = self.delivery_flags.load(Ordering::Relaxed);
        let headers = flags & HEADERS != 0;
        let appended = match buffer {
            Some(buffer) if message.len() >= SPLICE_MIN => {
                self.queue_spliced(buffer, subject, sid, reply, header_len, message, headers)
            }
            _ => {
                let size = msg_len_bound(subject, sid, reply, message);
                self.outbound.append(size, |buf| write_msg(buf, subject, sid, reply, header_len, message, headers))
            }
        };
        if flags & TRACED != 0 {
            self.trace_delivery(subject, sid, reply, header_len, message.len());
        }
        if appended == Append::Queued {
            self.stats.out_msgs.fetch_add(1, Ordering::Relaxed);
            self.stats.out_bytes.fetch_add(message.len() as u64, Ordering::Relaxed);
        }
        appended
    }

    /// [`Client::deliver`] of a large message: its line is written, its body
    /// referenced in `buffer` (copied when the body is not in it, or, with
    /// the headers left out, no longer large). Out of line, so the small
    /// messages' path stays as it was.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn queue_spliced(
        &self,
        buffer: &ReadBuffer,
        subject: &[u8],
        sid: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
        headers: bool,
    ) -> Append {
        let (line_header_len, body) = msg_body(header_len, message, headers);
        match slice_within(&buffer.bytes, body).filter(|body| body.len() >= SPLICE_MIN) {
            Some(payload) => {
                let size = msg_len_bound(subject, sid, reply, &[]);
                let line = |buf: &mut BytesMut| write_msg_line(buf, subject, sid, reply, line_header_len, body.len());
                self.outbound.append_spliced(size, line, buffer, payload, b"\r\n")
            }
            None => {
                let size = msg_len_bound(subject, sid, reply, message);
                self.outbound.append(size, |buf| write_msg(buf, subject, sid, reply, header_len, message, headers))
            }
        }
    }

    /// Queues raw protocol bytes (PONG, +OK, -ERR, INFO) and wakes the writer.
    pub fn send(&self, bytes: &[u8]) -> Append {
        if self.traced() {
            self.trace_sent(bytes);
        }
        let appended = self.outbound.append(bytes.len(), |buf| buf.extend_from_slice(bytes));
        self.outbound.wake();
        appended
    }
}

/// The publish guard asks a client's grants only when its static rules
/// refuse; a client without `allow_responses` answers from an atomic, with
/// no lock.
impl ReplyGrants for Client {
    fn may_reply(&self, subject: &[u8], now: Instant) -> bool {
        self.tracks_replies.load(Ordering::Acquire)
            && self.replies.lock().as_mut().is_some_and(|t| t.may_reply(subject, now))
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
