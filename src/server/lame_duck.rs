//! Lame-duck mode, nats-server's way of leaving a cluster without a
//! reconnect storm (`warden` enters it on SIGTERM): the listener is already
//! closed; every client that speaks protocol 1 gets an async INFO with
//! `"ldm":true` (and `connect_urls` without this server), so its library
//! can move to another server, and every route peer gets this server's
//! route INFO with `"ldm":true`, so it stops offering it to its own clients;
//! after the grace
//! period the clients still here are closed one by one, spread over the rest
//! of `lame_duck_duration` (at most 1 s apart), each after what is queued to
//! it was flushed. Unlike nats-server it stops waiting as soon as the last
//! client has left, and a shutdown (SIGINT) cuts it short.

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::info;

use super::Node;
use crate::broker::{stopping, CloseReason};

/// Longest pause between two closes, as nats-server.
const MAX_CLOSE_PAUSE: Duration = Duration::from_secs(1);
/// Shortest pause; with more clients than that allows, they close in batches.
const MIN_CLOSE_PAUSE: Duration = Duration::from_millis(1);

/// How to spread `n` closes over `spread`: clients per batch, and the pause
/// after each batch.
pub(super) fn close_schedule(n: usize, spread: Duration) -> (usize, Duration) {
    if n <= 1 || spread.is_zero() {
        return (n.max(1), Duration::ZERO);
    }
    let per_client = spread / u32::try_from(n).unwrap_or(u32::MAX);
    if per_client >= MIN_CLOSE_PAUSE {
        return (1, per_client.min(MAX_CLOSE_PAUSE));
    }
    let slots = usize::try_from(spread.as_millis()).unwrap_or(usize::MAX).max(1);
    (n.div_ceil(slots), MIN_CLOSE_PAUSE)
}

/// What ended a wait.
enum Wake {
    /// The time was up.
    Elapsed,
    /// Every connection has finished, or shutdown began: stop draining.
    Done,
}

/// Sleeps for `pause` unless every connection finishes or shutdown begins first.
async fn wait(node: &Node, done: &mut mpsc::Receiver<()>, pause: Duration) -> Wake {
    let mut shutdown = node.broker.shutdown_signal();
    tokio::select! {
        biased;
        _ = stopping(&mut shutdown) => Wake::Done,
        _ = done.recv() => Wake::Done,
        _ = tokio::time::sleep(pause) => Wake::Elapsed,
    }
}

/// Tells clients, waits the grace period, then closes the remaining clients
/// gradually. The caller has stopped accepting and shuts down afterwards.
/// `done` yields `None` once every connection task has finished.
pub(super) async fn drain(node: &Node, done: &mut mpsc::Receiver<()>) {
    let opts = &node.broker.opts;
    let clients = node.broker.clients();
    info!(
        clients = clients.len(),
        grace = ?opts.lame_duck_grace_period,
        duration = ?opts.lame_duck_duration,
        "entering lame duck mode: no longer accepting clients"
    );
    if let Some(cluster) = &node.cluster {
        cluster.announce_lame_duck();
    }
    for client in &clients {
        if client.takes_async_info() {
            let mut info = node.info(client);
            info.ldm = true;
            // As nats-server: only the other servers, where clients should go.
            let own = node.broker.addr.to_string();
            info.connect_urls.retain(|url| *url != own);
            client.send(&info.to_line());
        }
    }
    if let Wake::Done = wait(node, done, opts.lame_duck_grace_period).await {
        return;
    }
    let mut clients = node.broker.clients();
    clients.sort_by_key(|c| c.id);
    let spread = opts.lame_duck_duration.saturating_sub(opts.lame_duck_grace_period);
    let (batch, pause) = close_schedule(clients.len(), spread);
    info!(clients = clients.len(), over = ?spread, "lame duck: closing the remaining clients");
    let mut batches = clients.chunks(batch).peekable();
    while let Some(chunk) = batches.next() {
        for client in chunk {
            client.outbound.close(CloseReason::ServerShutdown);
        }
        if batches.peek().is_some() && matches!(wait(node, done, pause).await, Wake::Done) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_are_spread_at_most_one_second_apart() {
        assert_eq!(close_schedule(0, Duration::from_secs(110)), (1, Duration::ZERO));
        assert_eq!(close_schedule(1, Duration::from_secs(110)), (1, Duration::ZERO));
        assert_eq!(close_schedule(10, Duration::from_secs(110)), (1, MAX_CLOSE_PAUSE));
        assert_eq!(close_schedule(1000, Duration::from_secs(110)), (1, Duration::from_millis(110)));
    }

    #[test]
    fn many_clients_close_in_batches_of_a_millisecond() {
        // 100,000 clients over 10 s: 10,000 slots of 1 ms, 10 clients each.
        assert_eq!(close_schedule(100_000, Duration::from_secs(10)), (10, MIN_CLOSE_PAUSE));
        assert_eq!(close_schedule(5, Duration::ZERO), (5, Duration::ZERO));
    }
}
