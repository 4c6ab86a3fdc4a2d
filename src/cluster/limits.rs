//! What a route peer, or anyone who reaches the cluster port, may make
//! this server hold. Each bound is a documented constant (SECURITY.md,
//! "Clustering").

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// Route connections accepted and not yet authenticated, in all.
pub const MAX_PENDING_ROUTES: usize = 64;
/// Route connections accepted and not yet authenticated, per peer address.
pub const MAX_PENDING_ROUTES_PER_IP: usize = 8;
/// Established routes (a full mesh of this many servers).
pub const MAX_ROUTES: usize = 256;
/// Interest entries (subject and queue pairs) one route may register.
pub const MAX_REMOTE_INTEREST: usize = 1 << 18;
/// Bytes of subjects and queue names one route's interest may hold.
pub const MAX_REMOTE_INTEREST_BYTES: usize = 32 << 20;
/// Client URLs kept from one peer's INFO.
pub const MAX_PEER_CONNECT_URLS: usize = 16;
/// Client URLs this server offers its clients, its own included.
pub const MAX_CONNECT_URLS: usize = 128;
/// Longest client URL kept from a peer.
const MAX_URL_LEN: usize = 256;
/// Time an accepted route connection has to authenticate when the cluster
/// `authorization { timeout }` sets none (nats-server's default too).
pub const ROUTE_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// An established route younger than this may still lose a duplicate
/// tie-break (two servers that dialled each other at once); an older one is
/// kept, and a second route claiming its server id is refused.
pub const SETTLED_ROUTE: Duration = Duration::from_secs(2);

/// Counts accepted route connections that have not authenticated yet.
#[derive(Debug, Default)]
pub(crate) struct PendingRoutes {
    per_ip: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A pending route connection's place in [`PendingRoutes`]; given back on
/// drop (when the route authenticated or closed).
#[derive(Debug)]
pub(crate) struct PendingSlot {
    pending: Arc<PendingRoutes>,
    ip: IpAddr,
}

impl PendingRoutes {
    /// A slot for a connection from `ip`, unless the bounds are reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<PendingSlot> {
        let mut guard = self.per_ip.lock();
        let (total, per_ip) = &mut *guard;
        let from_ip = per_ip.entry(ip).or_insert(0);
        if *total >= MAX_PENDING_ROUTES || *from_ip >= MAX_PENDING_ROUTES_PER_IP {
            if *from_ip == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *from_ip += 1;
        *total += 1;
        Some(PendingSlot { pending: self.clone(), ip })
    }

    /// Connections pending now.
    pub(crate) fn count(&self) -> usize {
        self.per_ip.lock().0
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut guard = self.pending.per_ip.lock();
        let (total, per_ip) = &mut *guard;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// The client URLs kept from a peer's INFO: at most
/// [`MAX_PEER_CONNECT_URLS`], each a short `host:port` with a valid port and
/// a host of letters, digits, `.`, `-`, `_`, `:` (IPv6) or `[]`.
pub(crate) fn peer_connect_urls(urls: Vec<String>) -> Vec<String> {
    urls.into_iter().filter(|u| is_host_port(u)).take(MAX_PEER_CONNECT_URLS).collect()
}

fn is_host_port(url: &str) -> bool {
    if url.is_empty() || url.len() > MAX_URL_LEN {
        return false;
    }
    let Some((host, port)) = url.rsplit_once(':') else { return false };
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']'));
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_route_connections_are_bounded_per_address_and_in_all() {
        let pending = Arc::new(PendingRoutes::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<PendingSlot> = (0..MAX_PENDING_ROUTES_PER_IP).map(|_| pending.admit(a).unwrap()).collect();
        assert!(pending.admit(a).is_none(), "per address");
        let mut others = Vec::new();
        for i in 0..MAX_PENDING_ROUTES {
            if let Some(slot) = pending.admit(IpAddr::from([10, 1, (i / 250) as u8, (i % 250) as u8])) {
                others.push(slot);
            }
        }
        assert_eq!(pending.count(), MAX_PENDING_ROUTES, "in all");
        drop(slots);
        drop(others);
        assert_eq!(pending.count(), 0, "slots are given back");
        assert!(pending.admit(a).is_some());
    }

    #[test]
    fn peer_urls_are_filtered_and_capped() {
        let urls = vec![
            "127.0.0.1:4222".to_string(),
            "[::1]:4222".into(),
            "nats.example.com:4222".into(),
            "evil\r\nINFO {}:1".into(),
            "x:0".into(),
            "noport".into(),
            format!("{}:1", "a".repeat(300)),
        ];
        assert_eq!(peer_connect_urls(urls), vec!["127.0.0.1:4222", "[::1]:4222", "nats.example.com:4222"]);
        let many: Vec<String> = (1..100).map(|p| format!("10.0.0.1:{p}")).collect();
        assert_eq!(peer_connect_urls(many).len(), MAX_PEER_CONNECT_URLS);
    }
}
