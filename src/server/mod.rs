//! The server: listener, accept loop, connection registry (with the
//! connection limits), shared state, shutdown and lame duck.

mod audit;
mod handshake;
mod identity;
mod lame_duck;
mod security;
mod shared;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::auth::{self, AuthSetupError};
use crate::cluster::{Cluster, ClusterError, RouteUrl};
use crate::config::Options;
use crate::monitor::{self, MonitorHandle};
use crate::proto::ProtoError;
use crate::tls::{load_server_config, TlsError};

pub use security::SecurityStats;
pub use shared::{stopping, Refusal, ServerStats, Shared, TlsState};

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The TLS configuration is unusable.
    Tls(TlsError),
    /// Passwords or permissions in the configuration are unusable.
    Auth(AuthSetupError),
    /// The cluster could not start.
    Cluster(ClusterError),
    /// The listener could not be bound.
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: io::Error,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Tls(err) => write!(f, "TLS: {err}"),
            StartError::Auth(err) => write!(f, "authorization: {err}"),
            StartError::Cluster(err) => write!(f, "cluster: {err}"),
            StartError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Extra time past write_deadline that shutdown waits for connections to flush.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

/// A running server. Dropping it does not stop it; call `shutdown` or
/// `lame_duck`.
pub struct Server {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    /// The accept loop; owns the listener, so the listener closes when it ends.
    /// `None` once it was stopped.
    accept: Option<JoinHandle<()>>,
    /// Closes when every connection task has finished (each holds a sender).
    done: mpsc::Receiver<()>,
    /// The monitoring listener, when configured.
    monitor: Option<MonitorHandle>,
}

impl Server {
    /// Loads TLS material (if configured), binds the client listener and
    /// starts accepting. Nothing is bound if any check fails.
    pub async fn start(opts: Options) -> Result<Server, StartError> {
        let authenticator = auth::from_options(&opts).map_err(StartError::Auth)?;
        Server::start_with_authenticator(opts, authenticator).await
    }

    /// Like [`Server::start`], but with an authenticator of the embedder's
    /// own instead of the one the options' `authorization` describes.
    pub async fn start_with_authenticator(
        opts: Options,
        authenticator: Arc<dyn auth::Authenticator>,
    ) -> Result<Server, StartError> {
        let (tls, warnings) = prepare_tls(&opts)?;
        for warning in &warnings {
            warn!("{warning}");
        }
        let bind = |e: io::Error| StartError::Bind { addr: format!("{}:{}", opts.host, opts.port), source: e };
        let listener = listen(&opts.host, opts.port).await.map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        let cluster_opts = opts.cluster.clone();
        let shared = Arc::new(Shared::new(opts, local_addr, tls, authenticator));
        // Before accepting: if monitoring cannot start, nothing runs.
        let monitor = monitor::start(shared.clone()).await?;
        if let Some(cluster_opts) = cluster_opts {
            match Cluster::start(&shared, cluster_opts).await {
                Ok(cluster) => {
                    let _ = shared.cluster.set(cluster);
                }
                Err(err) => {
                    if let Some(monitor) = monitor {
                        monitor.stop().await;
                    }
                    return Err(StartError::Cluster(err));
                }
            }
        }
        let (done_tx, done) = mpsc::channel(1);
        info!(addr = %local_addr, server_id = %shared.server_id, "listening for client connections");
        let accept = tokio::spawn(accept_loop(shared.clone(), listener, done_tx));
        Ok(Server { shared, local_addr, accept: Some(accept), done, monitor })
    }

    /// The bound monitoring address, when monitoring is on (useful with port 0).
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.monitor.as_ref().map(MonitorHandle::addr)
    }

    /// The bound client address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The cluster, when configured.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.shared.cluster.get()
    }

    /// State shared with connections (router, stats, registry).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Applies a new configuration without a restart: users, passwords,
    /// permissions and TLS certificates. Listeners and limits stay as they
    /// were started. Existing connections get their new permissions at once;
    /// those whose user is gone (or whose password changed) are closed.
    pub fn reload(&self, opts: &Options) -> Result<Vec<String>, StartError> {
        let (tls, warnings) = prepare_tls(opts)?;
        let authenticator = auth::from_options(opts).map_err(StartError::Auth)?;
        self.shared.apply_reload(authenticator, tls);
        info!("configuration reloaded");
        Ok(warnings)
    }

    /// Stops accepting, closes every connection after flushing what is
    /// queued for it, and waits (bounded) for them to finish.
    pub async fn shutdown(mut self) {
        self.shared.begin_shutdown();
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        let bound = self.shared.opts.write_deadline + SHUTDOWN_SLACK;
        if tokio::time::timeout(bound, self.done.recv()).await.is_err() {
            warn!("some connections did not finish flushing before shutdown");
        }
        // Last, so /healthz answers 503 while connections drain.
        if let Some(monitor) = self.monitor.take() {
            monitor.stop().await;
        }
        info!("server stopped");
    }
}

impl Server {
    /// Lame-duck mode, then shutdown (what `warden` does on SIGTERM): closes
    /// the listener at once, sends protocol-1 clients an INFO with
    /// `"ldm":true`, waits `lame_duck_grace_period` (or until every client
    /// has left), then closes the remaining clients spread over the rest of
    /// `lame_duck_duration`, each after flushing what is queued to it.
    /// `shared().begin_shutdown()` from elsewhere cuts it short (SIGINT).
    ///
    /// The config reader keeps nats-server's 30 s minimum for
    /// `lame_duck_duration`; through the library any duration is accepted.
    pub async fn lame_duck(mut self) {
        self.shared.begin_lame_duck();
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        lame_duck::drain(&self.shared, &mut self.done).await;
        self.shutdown().await;
    }
}

/// Runs every check `start` runs before binding (TLS files, and
/// permissions once compiled), without binding: `warden check`.
pub fn check(opts: &Options) -> Result<Vec<String>, StartError> {
    let (_, warnings) = prepare_tls(opts)?;
    auth::from_options(opts).map_err(StartError::Auth)?;
    monitor::check(opts)?;
    if let Some(cluster) = &opts.cluster {
        for url in &cluster.routes {
            if RouteUrl::parse(url).is_none() {
                return Err(StartError::Cluster(ClusterError::BadUrl(url.clone())));
            }
        }
        crate::cluster::route_tls(cluster).map_err(StartError::Cluster)?;
    }
    Ok(warnings)
}

fn prepare_tls(opts: &Options) -> Result<(Option<TlsState>, Vec<String>), StartError> {
    let Some(tls_opts) = &opts.tls else { return Ok((None, Vec::new())) };
    let setup = load_server_config(tls_opts).map_err(StartError::Tls)?;
    let state = TlsState {
        config: setup.config,
        timeout: tls_opts.timeout,
        handshake_first: tls_opts.handshake_first,
        verify: tls_opts.verify || tls_opts.verify_and_map,
    };
    Ok((Some(state), setup.warnings))
}

/// Pending-connection queue of the client listener, as large as Linux's
/// default `somaxconn` (nats-server gets the same from Go), so a reconnect
/// storm is queued rather than dropped into SYN retransmits.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the client listener with `LISTEN_BACKLOG`.
async fn listen(host: &str, port: u16) -> io::Result<TcpListener> {
    let mut last_err = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_err = err,
        }
    }
    Err(last_err)
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, done: mpsc::Sender<()>) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            // `wait_for` also sees a shutdown that began before this task first ran.
            _ = crate::server::stopping(&mut shutdown) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => spawn_connection(&shared, stream, addr, done.clone()),
            Err(err) => {
                // Out of file descriptors and similar: back off instead of spinning.
                warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, stream: TcpStream, addr: SocketAddr, done: mpsc::Sender<()>) {
    let _ = stream.set_nodelay(true);
    let shared = shared.clone();
    let cid = shared.next_client_id();
    let client = match shared.register(cid, addr) {
        Ok(client) => client,
        Err(refusal) => {
            refuse(shared, stream, cid, addr, refusal, done);
            return;
        }
    };
    tokio::spawn(async move {
        handshake::serve_socket(shared.clone(), stream, client.clone()).await;
        shared.unregister(&client);
        drop(done);
    });
}

/// Counts and logs a refused connection, and tells the client why (after
/// INFO, with nats-server's text for both limits) on a task of its own.
fn refuse(
    shared: Arc<Shared>,
    stream: TcpStream,
    cid: u64,
    addr: SocketAddr,
    refusal: Refusal,
    done: mpsc::Sender<()>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    match refusal {
        Refusal::MaxConnections => {
            shared.stats.refused_max_connections.fetch_add(1, Relaxed);
            if shared.audit.allow() {
                warn!(%addr, max = shared.opts.max_connections, "maximum connections exceeded");
            }
        }
        Refusal::MaxConnectionsPerIp => {
            shared.stats.refused_max_connections_per_ip.fetch_add(1, Relaxed);
            if shared.audit.allow() {
                warn!(%addr, max = shared.opts.max_connections_per_ip, "maximum connections per address exceeded");
            }
        }
    }
    tokio::spawn(async move {
        crate::conn::refuse_connection(shared, stream, cid, addr, ProtoError::MaxConnections).await;
        drop(done);
    });
}
