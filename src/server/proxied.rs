//! The client listener's side of `proxy_protocol` (see
//! [`crate::conn::proxied`]): connections from a trusted proxy wait for
//! their header on a task of their own, at most [`MAX_PENDING`] at once
//! (the longest-waiting gives way to a newer one), and then go on as any
//! client's under the address it names.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::Node;
use crate::broker::Pending;
use crate::cidr::Cidr;
use crate::conn::proxied::Proxies;

/// Headers awaited at once.
pub const MAX_PENDING: usize = 256;

/// The client listener's proxies and the headers awaited from them.
#[derive(Debug)]
pub(super) struct ClientProxies {
    proxies: Proxies,
    pending: Arc<Pending>,
}

impl ClientProxies {
    /// The client listener's, when `proxy_protocol` is on.
    pub(super) fn new(opts: &crate::config::Options) -> Option<ClientProxies> {
        let trusted: Vec<Cidr> = opts.trusted_proxies.iter().filter_map(|p| Cidr::parse_or_address(p)).collect();
        (opts.proxy_protocol && !trusted.is_empty()).then(|| ClientProxies {
            proxies: Proxies::new(trusted, &opts.accept_rate, "client"),
            pending: Arc::new(Pending::new(MAX_PENDING, MAX_PENDING)),
        })
    }

    /// The proxies.
    pub(super) fn proxies(&self) -> &Proxies {
        &self.proxies
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
        let (node, this) = (node.clone(), self.clone());
        tokio::spawn(async move {
            let mut stream = stream;
            let refused = &node.broker.stats.refused_accept_rate_client;
            let Some(addr) = this.proxies.client(&node.broker, &mut stream, peer, &slot, refused).await else { return };
            drop(slot);
            super::spawn_connection(&node, stream, addr, done);
        });
    }
}
