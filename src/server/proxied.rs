//! The client listener behind a TCP load balancer (`proxy_protocol` with
//! `trusted_proxies`): a connection from a trusted proxy starts with a
//! PROXY protocol header naming the client, and from then on the client's
//! address is what every per-address defence sees — it is registered under
//! it (`max_connections_per_ip`), logs in under it (the failure throttle,
//! JWT `src`), and `/connz`, the `$SYS` events and the logs show it.
//!
//! Who may send a header: only `trusted_proxies`. From them a header is
//! required, read before anything is written (the PROXY specification's
//! rule: a receiver must not guess whether a header is there), so the INFO
//! carries the client's address. From anyone else the connection goes on
//! as an ordinary client's, and a header it sends is no NATS operation:
//! the session answers `-ERR 'Unknown Protocol Operation'` and closes
//! (or, under TLS, the handshake fails).
//!
//! The accept rate: at accept a trusted proxy has only the listener-wide
//! budget (it speaks for many clients); the per-address budget
//! (`conns_per_sec_per_ip`) is charged to the client the header names,
//! in a table of its own, and a client over it is closed without a word,
//! as at accept.
//!
//! Bounds: the header is read within [`HEADER_TIMEOUT`], never past its
//! end (see [`Decoder::wants`]), into a fixed buffer; at most
//! [`MAX_PENDING`] headers are awaited at once, the longest-waiting giving
//! way to a newer connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tracing::{debug, warn};

use super::Node;
use crate::broker::{AuditKind, Pending, PendingSlot};
use crate::cidr::Cidr;
use crate::config::AcceptRate;
use crate::conn::accept_rate::AcceptLimiter;
use crate::proto::proxy::{Decoder, Header, Progress, ProxyError};

/// How long a trusted proxy has to send the header (nats-server's bound).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Headers awaited at once.
pub const MAX_PENDING: usize = 256;
/// Bytes read at once while skipping a v2 header's TLVs.
const CHUNK: usize = 512;

/// The client listener's trusted proxies and the headers awaited from them.
#[derive(Debug)]
pub(super) struct Proxies {
    trusted: Vec<Cidr>,
    pending: Arc<Pending>,
    /// The per-address accept budgets of the clients behind the proxies,
    /// when `accept_rate` has one.
    per_client: Option<Mutex<AcceptLimiter>>,
}

impl Proxies {
    /// The listener's proxies, when `proxy_protocol` is on.
    pub(super) fn new(opts: &crate::config::Options) -> Option<Proxies> {
        let trusted: Vec<Cidr> = opts.trusted_proxies.iter().filter_map(|p| Cidr::parse_or_address(p)).collect();
        // The listener-wide budget was charged at accept: only the
        // per-address one here.
        let per_client = AcceptLimiter::new(&AcceptRate { conns_per_sec: 0, burst_conns: 0, ..opts.accept_rate });
        (opts.proxy_protocol && !trusted.is_empty()).then(|| Proxies {
            trusted,
            pending: Arc::new(Pending::new(MAX_PENDING, MAX_PENDING)),
            per_client: per_client.map(Mutex::new),
        })
    }

    /// The trusted ranges (exempt from the accept rate's per-address budget:
    /// a proxy speaks for many clients).
    pub(super) fn trusted(&self) -> &[Cidr] {
        &self.trusted
    }

    /// Whether `peer` is a trusted proxy.
    pub(super) fn trusts(&self, peer: SocketAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(peer.ip()))
    }

    /// Reads the header of `stream`, from trusted `peer`, on a task of its
    /// own; then the connection goes on under the client's address.
    pub(super) fn spawn(
        self: &Arc<Self>,
        node: &Arc<Node>,
        stream: TcpStream,
        peer: SocketAddr,
        done: mpsc::Sender<()>,
    ) {
        // Every connection here comes from a proxy: no per-address bound,
        // only the total (the oldest gives way).
        let Some(slot) = self.pending.admit_evicting(peer.ip(), false) else { return };
        let (node, proxies) = (node.clone(), self.clone());
        tokio::spawn(async move {
            let mut stream = stream;
            let Some(addr) = read_header(&node, &mut stream, peer, slot).await else { return };
            if proxies.over_rate(&node, addr) {
                return;
            }
            super::spawn_connection(&node, stream, addr, done);
        });
    }

    /// Whether the client at `addr` is over its per-address accept rate
    /// (counted and logged as a refusal at accept).
    fn over_rate(&self, node: &Node, addr: SocketAddr) -> bool {
        let Some(limiter) = &self.per_client else { return false };
        let admitted = limiter.lock().admit(addr.ip(), Instant::now());
        let Err(refused) = admitted else { return false };
        node.broker.stats.refused_accept_rate_client.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::conn::log_refused("client", addr, refused);
        true
    }
}

/// The client's address from the header (the proxy's own for a health
/// check's `LOCAL`), or `None` when the connection is to be closed.
async fn read_header(node: &Node, stream: &mut TcpStream, peer: SocketAddr, slot: PendingSlot) -> Option<SocketAddr> {
    let read = tokio::select! {
        () = slot.evicted() => {
            debug!(%peer, "PROXY header wait gave way to a newer connection");
            return None;
        }
        read = timeout(HEADER_TIMEOUT, decode(stream)) => read,
    };
    let why = match read {
        Ok(Ok(Header::Proxied { source })) => return Some(source),
        Ok(Ok(Header::Local)) => return Some(peer),
        Ok(Err(Failed::Closed)) => return None,
        Ok(Err(Failed::Refused(err))) => err.to_string(),
        Err(_) => "no PROXY header in time".to_owned(),
    };
    node.broker.stats.refused_proxy_headers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if node.broker.audit.allow_from(peer.ip(), AuditKind::Other, "") {
        warn!(%peer, reason = why, "connection from a trusted proxy closed: no valid PROXY header");
    }
    None
}

/// Why no header was read.
enum Failed {
    /// The socket closed or failed first.
    Closed,
    /// The bytes were no valid header.
    Refused(ProxyError),
}

/// Reads exactly one header off `stream`, never a byte past it.
async fn decode(stream: &mut TcpStream) -> Result<Header, Failed> {
    let mut decoder = Decoder::new();
    let mut buf = [0u8; CHUNK];
    loop {
        let want = decoder.wants().min(CHUNK);
        let n = match stream.read(&mut buf[..want]).await {
            Ok(0) | Err(_) => return Err(Failed::Closed),
            Ok(n) => n,
        };
        let chunk = buf.get(..n).ok_or(Failed::Closed)?;
        match decoder.feed(chunk).map_err(Failed::Refused)? {
            Progress::More => {}
            Progress::Done { header, .. } => return Ok(header),
        }
    }
}
