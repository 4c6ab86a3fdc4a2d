//! What a route peer, or anyone who reaches the cluster port, may make
//! this server hold. Each bound is a documented constant (SECURITY.md,
//! "Clustering").

use std::time::Duration;

/// Route connections accepted and not yet authenticated, in all.
pub const MAX_PENDING_ROUTES: usize = 64;
/// Route connections accepted and not yet authenticated, per peer address.
pub const MAX_PENDING_ROUTES_PER_IP: usize = 8;
/// Established routes (a full mesh of this many servers).
pub const MAX_ROUTES: usize = 256;
/// Route URLs learned by gossip that this server dials or is routed to at
/// once (implicit routes); gossip past it is dropped and logged. Each is
/// tried `connect_retries` times (at least 3) and then given up.
pub const MAX_GOSSIPED_ROUTES: usize = MAX_ROUTES;
/// Servers remembered as known but unreachable (shown in `/routez`).
pub const MAX_UNREACHABLE: usize = MAX_ROUTES;
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
