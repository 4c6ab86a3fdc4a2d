//! An established route as the rest of the server sees it.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::limits::peer_connect_urls;

use crate::broker::Client;
use crate::proto::route::{json_line, RouteInfo};

/// Which of the connections to a peer a route is (nats-server 2.10+
/// pools routes: several connections per peer, each account's traffic on
/// one of them, and pinned accounts on their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// The only connection to a peer that does not pool (older servers,
    /// `pool_size: -1` on either side): every account's traffic.
    Single,
    /// Connection `n` of the pool: the accounts whose name hashes to `n`.
    Pool(usize),
    /// A pinned account's own connection: its ops leave the account out.
    Account(Arc<str>),
}

/// An established route to another server.
#[derive(Debug)]
pub struct RouteLink {
    /// Outbound side: RS+/RS-/RMSG are queued here.
    pub client: Arc<Client>,
    /// The peer's server id.
    pub remote_id: String,
    /// Which of the connections to the peer this is.
    pub slot: Slot,
    /// Whether this server opened the connection.
    pub solicited: bool,
    /// The peer's route URL (`nats-route://host:port/`), for gossip.
    pub route_url: String,
    /// When the route was established.
    established: Instant,
    /// The peer's latest INFO, its client URLs filtered and capped.
    info: Mutex<RouteInfo>,
}

impl RouteLink {
    /// A route to the server that sent `info`.
    pub fn new(client: Arc<Client>, mut info: RouteInfo, slot: Slot, solicited: bool, route_url: String) -> Self {
        info.connect_urls = peer_connect_urls(std::mem::take(&mut info.connect_urls));
        // What the peer said about this one connection is not gossiped.
        info.route_pool_idx = 0;
        info.route_account = String::new();
        RouteLink {
            client,
            remote_id: info.server_id.clone(),
            slot,
            solicited,
            route_url,
            established: Instant::now(),
            info: Mutex::new(info),
        }
    }

    /// How long the route has been established.
    pub fn age(&self) -> Duration {
        self.established.elapsed()
    }

    /// The peer's client URLs; none while it is in lame-duck mode, so
    /// clients are not sent to a server that is leaving.
    pub fn connect_urls(&self) -> Vec<String> {
        let info = self.info.lock();
        if info.ldm {
            return Vec::new();
        }
        info.connect_urls.clone()
    }

    /// The peer's server name.
    pub fn remote_name(&self) -> String {
        self.info.lock().server_name.clone()
    }

    /// The gateway URL the peer named, if it runs gateways.
    pub fn gateway_url(&self) -> String {
        self.info.lock().gateway_url.clone()
    }

    /// Replaces the peer's INFO (an update such as new connect_urls, or
    /// lame-duck mode); returns whether the client URLs it offers changed.
    pub fn update_info(&self, mut info: RouteInfo) -> bool {
        info.connect_urls = peer_connect_urls(std::mem::take(&mut info.connect_urls));
        let mut current = self.info.lock();
        let changed = current.connect_urls != info.connect_urls || current.ldm != info.ldm;
        *current = info;
        changed
    }

    /// The INFO line that tells other servers about this peer: its INFO with
    /// `ip` set to its route URL, so they can connect to it.
    pub fn gossip_info_line(&self) -> Vec<u8> {
        let mut info = self.info.lock().clone();
        info.ip = self.route_url.clone();
        json_line("INFO", &info)
    }
}
