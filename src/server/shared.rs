//! State every connection shares.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::identity::new_server_id;
use crate::config::Options;
use crate::conn::Client;
use crate::proto::ServerInfo;
use crate::router::Router;

/// Server-wide counters (aggregated per read batch, not per message).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Messages received from clients.
    pub in_msgs: AtomicU64,
    /// Payload bytes received from clients.
    pub in_bytes: AtomicU64,
    /// Messages delivered to clients.
    pub out_msgs: AtomicU64,
    /// Payload bytes delivered to clients.
    pub out_bytes: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Slow consumers closed since start.
    pub slow_consumers: AtomicU64,
    /// Connections refused because of max_connections.
    pub refused_max_connections: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: AtomicU64,
}

/// The TLS settings new connections use; swapped whole on reload so
/// existing connections keep theirs.
#[derive(Debug)]
pub struct TlsState {
    /// rustls configuration.
    pub config: Arc<rustls::ServerConfig>,
    /// Handshake deadline.
    pub timeout: std::time::Duration,
    /// TLS before INFO.
    pub handshake_first: bool,
    /// Client certificates are required.
    pub verify: bool,
}

/// Options, identity, the subscription index and the live connections.
#[derive(Debug)]
pub struct Shared {
    /// The validated options the server started with.
    pub opts: Options,
    /// Random id, nkey-shaped.
    pub server_id: String,
    /// `server_name`, or the id.
    pub server_name: String,
    /// Bound client address.
    pub addr: SocketAddr,
    /// When the server started.
    pub started: SystemTime,
    /// The subscription index.
    pub router: Router,
    /// Counters.
    pub stats: ServerStats,
    /// Live clients by id; locked only on connect, close and monitoring reads.
    clients: Mutex<HashMap<u64, Arc<Client>>>,
    /// TLS for client connections, if configured.
    tls: parking_lot::RwLock<Option<Arc<TlsState>>>,
    next_cid: AtomicU64,
    next_batch: AtomicU64,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    /// Shared state for a server bound at `addr`.
    pub fn new(opts: Options, addr: SocketAddr, tls: Option<TlsState>) -> Self {
        let server_id = new_server_id();
        let server_name = opts
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone());
        Shared {
            opts,
            server_id,
            server_name,
            addr,
            started: SystemTime::now(),
            router: Router::new(),
            stats: ServerStats::default(),
            clients: Mutex::new(HashMap::new()),
            tls: parking_lot::RwLock::new(tls.map(Arc::new)),
            next_cid: AtomicU64::new(1),
            next_batch: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
        }
    }

    /// A fresh connection id.
    pub fn next_client_id(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh read-batch token (see `Client::mark_batch`).
    pub fn next_batch_token(&self) -> u64 {
        self.next_batch.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a new client, or returns `None` when max_connections is reached.
    pub fn register(&self, cid: u64, addr: SocketAddr) -> Option<Arc<Client>> {
        let mut clients = self.clients.lock();
        if clients.len() >= self.opts.max_connections {
            return None;
        }
        let client = Arc::new(Client::new(cid, addr, self.opts.max_pending));
        clients.insert(cid, client.clone());
        self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        Some(client)
    }

    /// Forgets a closed client.
    pub fn unregister(&self, client: &Client) {
        self.clients.lock().remove(&client.id);
    }

    /// A snapshot of the live clients.
    pub fn clients(&self) -> Vec<Arc<Client>> {
        self.clients.lock().values().cloned().collect()
    }

    /// Number of live clients.
    pub fn client_count(&self) -> usize {
        self.clients.lock().len()
    }

    /// The TLS settings for a new connection, if TLS is on.
    pub fn tls(&self) -> Option<Arc<TlsState>> {
        self.tls.read().clone()
    }

    /// The INFO line for `client`.
    pub fn info_line(&self, client: &Client) -> Vec<u8> {
        let tls = self.tls();
        ServerInfo {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            proto: 1,
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
            headers: true,
            max_payload: self.opts.max_payload,
            client_id: Some(client.id),
            client_ip: Some(client.addr.ip().to_string()),
            tls_required: tls.is_some(),
            tls_verify: tls.as_ref().is_some_and(|t| t.verify),
            ..Default::default()
        }
        .to_line()
    }

    /// A receiver that changes when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Starts shutdown: the accept loop and every connection see it.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}
