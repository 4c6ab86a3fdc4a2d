//! The part of a connection that other connections touch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;

use super::outbound::{Append, Outbound};
use crate::perms::{PermissionSet, ResponseTracker};
use crate::proto::write_msg;

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
    /// Negotiated TLS version, when on TLS.
    pub tls_version: Option<String>,
    /// Negotiated TLS cipher suite, when on TLS.
    pub tls_cipher_suite: Option<String>,
    /// Names in the verified client certificate, when one was presented.
    pub peer: Option<crate::tls::PeerIdentity>,
}

/// What is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A NATS client.
    Client,
    /// Another server of the cluster.
    Route,
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
    /// CONNECT `headers`: deliver HMSG rather than MSG.
    headers: AtomicBool,
    /// Last read batch that queued to this client (see `mark_batch`).
    batch: AtomicU64,
    /// Round-trip time measured with the server's PING, in nanoseconds (0 = not yet).
    pub rtt_nanos: AtomicU64,
    /// Monitoring facts; written at CONNECT, read by monitoring.
    pub meta: Mutex<ClientMeta>,
    /// Whether `replies` is in use, so publishers skip its lock otherwise.
    tracks_replies: AtomicBool,
    /// Reply subjects this client may answer (`allow_responses`), recorded
    /// by publishers when they deliver a request to it.
    replies: Mutex<Option<ResponseTracker>>,
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
            headers: AtomicBool::new(false),
            batch: AtomicU64::new(0),
            rtt_nanos: AtomicU64::new(0),
            meta: Mutex::new(ClientMeta::default()),
            tracks_replies: AtomicBool::new(false),
            replies: Mutex::new(None),
        }
    }

    /// Whether this is a route to another server.
    pub fn is_route(&self) -> bool {
        self.kind == ClientKind::Route
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
        self.headers.store(on, Ordering::Relaxed);
    }

    /// Whether the client understands headers.
    pub fn headers(&self) -> bool {
        self.headers.load(Ordering::Relaxed)
    }

    /// Starts (or stops) tracking reply subjects, per the permissions'
    /// `allow_responses`.
    pub fn set_reply_tracking(&self, permissions: &PermissionSet) {
        let tracker = ResponseTracker::for_set(permissions);
        self.tracks_replies.store(tracker.is_some(), Ordering::Release);
        *self.replies.lock() = tracker;
    }

    /// Records that a request with `reply` was delivered to this client.
    pub fn record_reply(&self, reply: &[u8]) {
        if self.tracks_replies.load(Ordering::Acquire) {
            if let Some(tracker) = self.replies.lock().as_mut() {
                tracker.record(reply, Instant::now());
            }
        }
    }

    /// Whether this client may publish to `subject` as a response (and
    /// uses up one response if so).
    pub fn may_reply(&self, subject: &[u8]) -> bool {
        self.tracks_replies.load(Ordering::Acquire)
            && self.replies.lock().as_mut().is_some_and(|t| t.may_reply(subject, Instant::now()))
    }

    /// Marks this client as touched by read batch `token`; true the first
    /// time in that batch, so the publisher wakes each writer once.
    pub fn mark_batch(&self, token: u64) -> bool {
        self.batch.swap(token, Ordering::Relaxed) != token
    }

    /// Queues one MSG/HMSG frame.
    pub fn deliver(
        &self,
        subject: &[u8],
        sid: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
    ) -> Append {
        let headers = self.headers();
        let appended = self.outbound.append(|buf| write_msg(buf, subject, sid, reply, header_len, message, headers));
        if appended == Append::Queued {
            self.stats.out_msgs.fetch_add(1, Ordering::Relaxed);
            self.stats.out_bytes.fetch_add(message.len() as u64, Ordering::Relaxed);
        }
        appended
    }

    /// Queues raw protocol bytes (PONG, +OK, -ERR, INFO) and wakes the writer.
    pub fn send(&self, bytes: &[u8]) -> Append {
        let appended = self.outbound.append(|buf| buf.extend_from_slice(bytes));
        self.outbound.wake();
        appended
    }
}
