//! A reload that changes the client listener's `pinned_certs` closes the
//! clients whose certificate key is no longer pinned, as nats-server's
//! `recheckPinnedCerts` does: otherwise removing a pin would only keep the
//! key out of new connections, and a connection made with a revoked key
//! would live on.

use tracing::info;

use crate::broker::{Broker, ClientKind, CloseReason};
use crate::tls::spki_sha256;

/// Closes the NATS clients (not WebSocket ones, which another listener
/// with its own `tls {}` admitted) whose first peer certificate's key is
/// not in `pins` (sorted), or that showed none; with no pins, none. Logs
/// and returns how many.
pub(super) fn close_unpinned_clients(broker: &Broker, pins: Option<&[[u8; 32]]>) -> usize {
    let Some(pins) = pins else { return 0 };
    let mut closed = 0;
    for client in broker.clients() {
        if client.kind != ClientKind::Client {
            continue;
        }
        let key = {
            let meta = client.meta.lock();
            if meta.websocket {
                continue;
            }
            let chain = meta.tls.as_ref().and_then(|tls| tls.chain.as_ref());
            chain.and_then(|chain| chain.first()).and_then(|der| spki_sha256(der))
        };
        let pinned = key.is_some_and(|key| pins.binary_search(&key).is_ok());
        if !pinned && client.outbound.close(CloseReason::TlsHandshakeFailure) {
            closed += 1;
        }
    }
    if closed > 0 {
        // nats-server's wording.
        info!("Disconnect {closed} clients due to pinned certs reload");
    }
    closed
}
