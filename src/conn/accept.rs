//! The accept loop every listener runs: until the broker shuts down, each
//! accepted socket goes to the listener's handler; a failed accept (out of
//! file descriptors and similar) backs off instead of spinning.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::warn;

use crate::broker::{stopping, Broker};

/// Pause after a failed accept.
const BACKOFF: Duration = Duration::from_millis(50);

/// Accepts on `listener` until `broker` shuts down (a shutdown that began
/// before the first accept included), handing each connection to `each`.
/// `what` names the listener in the log.
pub async fn accept_until_shutdown(
    broker: &Broker,
    listener: TcpListener,
    what: &'static str,
    mut each: impl FnMut(TcpStream, SocketAddr),
) {
    let mut shutdown = broker.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            _ = stopping(&mut shutdown) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => each(stream, peer),
            Err(err) => {
                warn!(error = %err, listener = what, "accept failed");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}
