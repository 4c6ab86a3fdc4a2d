//! Reading the PROXY protocol header a trusted load balancer sends first
//! (`proxy_protocol` with `trusted_proxies`, on the client, WebSocket and
//! leaf node listeners): from then on the client's address is what every
//! per-address defence sees — it is registered under it
//! (`max_connections_per_ip`), logs in under it (the failure throttle, JWT
//! `src`), and `/connz`, the `$SYS` events and the logs show it.
//!
//! Who may send a header: only `trusted_proxies`. From them a header is
//! required, read before anything is written (the PROXY specification's
//! rule: a receiver must not guess whether a header is there), so the INFO
//! carries the client's address and TLS starts after the header. From
//! anyone else the connection goes on as an ordinary one, and a header it
//! sends is refused by what reads it there: the NATS session and the leaf
//! session answer `-ERR` and close, the WebSocket upgrade an HTTP error, a
//! TLS handshake fails. Nothing of it is believed.
//!
//! The accept rate: at accept a trusted proxy has only the listener-wide
//! budget (it speaks for many clients); the per-address budget
//! (`conns_per_sec_per_ip`) is charged to the client the header names,
//! in a table of its own, and a client over it is closed without a word,
//! as at accept.
//!
//! Bounds: the header is read within [`HEADER_TIMEOUT`], never past its
//! end (see [`Decoder::wants`]), into a fixed buffer, while the listener's
//! pending slot is held (a newer connection may take it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tracing::{debug, warn};

use super::accept_rate::AcceptLimiter;
use crate::broker::{Broker, BudgetKind, PendingSlot};
use crate::cidr::Cidr;
use crate::config::AcceptRate;
use crate::proto::proxy::{Decoder, Header, Progress, ProxyError};

/// How long a trusted proxy has to send the header (nats-server's bound).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read at once while skipping a v2 header's TLVs.
const CHUNK: usize = 512;

/// A listener's trusted proxies, and the per-address accept budgets of
/// the clients behind them.
#[derive(Debug)]
pub struct Proxies {
    trusted: Vec<Cidr>,
    /// The per-address accept budgets of the clients behind the proxies,
    /// when the listener's `accept_rate` has one.
    per_client: Option<Mutex<AcceptLimiter>>,
    /// The listener, for the log.
    listener: &'static str,
}

impl Proxies {
    /// `trusted`, for a listener whose accept rate is `rate`.
    pub fn new(trusted: Vec<Cidr>, rate: &AcceptRate, listener: &'static str) -> Proxies {
        // The listener-wide budget was charged at accept: only the
        // per-address one here.
        let per_client = AcceptLimiter::new(&AcceptRate { conns_per_sec: 0, burst_conns: 0, ..*rate });
        Proxies { trusted, per_client: per_client.map(Mutex::new), listener }
    }

    /// The trusted ranges (exempt from the accept rate's per-address budget:
    /// a proxy speaks for many clients).
    pub fn trusted(&self) -> &[Cidr] {
        &self.trusted
    }

    /// Whether `peer` is a trusted proxy.
    pub fn trusts(&self, peer: SocketAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(peer.ip()))
    }

    /// The client's address, from the header `peer` (a trusted proxy) sends
    /// first on `stream` (the proxy's own for a health check's `LOCAL`);
    /// `None` when the connection is to be closed: no valid header in
    /// [`HEADER_TIMEOUT`], `slot` taken for a newer connection, or the
    /// client over its accept rate (counted in `refused`).
    pub async fn client(
        &self,
        broker: &Broker,
        stream: &mut TcpStream,
        peer: SocketAddr,
        slot: &PendingSlot,
        refused: &AtomicU64,
    ) -> Option<SocketAddr> {
        let addr = read_header(broker, stream, peer, slot).await?;
        let Some(limiter) = &self.per_client else { return Some(addr) };
        let admitted = limiter.lock().admit(addr.ip(), Instant::now());
        let Err(over) = admitted else { return Some(addr) };
        refused.fetch_add(1, Relaxed);
        crate::conn::log_refused(self.listener, addr, over);
        None
    }
}

/// The client's address from the header (the proxy's own for a health
/// check's `LOCAL`), or `None` when the connection is to be closed.
async fn read_header(
    broker: &Broker,
    stream: &mut TcpStream,
    peer: SocketAddr,
    slot: &PendingSlot,
) -> Option<SocketAddr> {
    let mut shutdown = broker.shutdown_signal();
    let read = tokio::select! {
        // Shutdown waits for no header (nor lets one register a client).
        () = crate::broker::stopping(&mut shutdown) => return None,
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
    broker.stats.refused_proxy_headers.fetch_add(1, Relaxed);
    if broker.log_budget.allow_from(peer.ip(), BudgetKind::Other, "") {
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
