//! The accept loop every listener runs: until the broker shuts down, each
//! accepted socket goes to the listener's handler, unless the listener's
//! accept rate refuses it (closed there, before anything is spent on it);
//! a failed accept (out of file descriptors and similar) backs off instead
//! of spinning.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tracing::warn;

use super::accept_rate::{AcceptLimiter, Refused};
use crate::broker::{stopping, Broker};

/// Pause after a failed accept.
const BACKOFF: Duration = Duration::from_millis(50);

/// A listener's accept rate, and where its refusals are counted.
#[derive(Debug)]
pub struct AcceptLimit<'a> {
    /// The budgets.
    pub limiter: AcceptLimiter,
    /// Connections it refused (for `/varz` and `/metrics`).
    pub refused: &'a AtomicU64,
}

/// Accepts on `listener` until `broker` shuts down (a shutdown that began
/// before the first accept included), handing each connection `limit`
/// lets in to `each`. `what` names the listener in the log.
pub async fn accept_until_shutdown(
    broker: &Broker,
    listener: TcpListener,
    what: &'static str,
    mut limit: Option<AcceptLimit<'_>>,
    mut each: impl FnMut(TcpStream, SocketAddr),
) {
    let mut shutdown = broker.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            _ = stopping(&mut shutdown) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Some(limit) = &mut limit {
                    if let Err(refused) = limit.limiter.admit(peer.ip(), Instant::now()) {
                        // Closed here: no task, no INFO, no TLS.
                        drop(stream);
                        limit.refused.fetch_add(1, Relaxed);
                        log_refused(what, peer, refused);
                        continue;
                    }
                }
                each(stream, peer)
            }
            Err(err) => {
                warn!(error = %err, listener = what, "accept failed");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// At most one line a second, with the count since the last and the
/// address that made this one due.
pub fn log_refused(what: &'static str, peer: SocketAddr, refused: Refused) {
    let Some(report) = refused.report else { return };
    warn!(
        listener = what,
        over_address = report.over_address,
        over_listener = report.over_listener,
        last = %peer.ip(),
        "connections closed at accept: over the listener's accept_rate"
    );
}
