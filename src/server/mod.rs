//! The server: listener, accept loop, connection registry, shared state and
//! shutdown.

mod identity;
mod shared;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Options;
use crate::conn::run_connection;
use crate::proto::ProtoError;

pub use shared::{ServerStats, Shared};

/// Extra time past write_deadline that shutdown waits for connections to flush.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

/// A running server. Dropping it does not stop it; call `shutdown`.
pub struct Server {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
    /// Closes when every connection task has finished (each holds a sender).
    done: mpsc::Receiver<()>,
}

impl Server {
    /// Binds the client listener and starts accepting.
    pub async fn start(opts: Options) -> io::Result<Server> {
        let listener = TcpListener::bind((opts.host.as_str(), opts.port)).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(opts, local_addr));
        let (done_tx, done) = mpsc::channel(1);
        info!(addr = %local_addr, server_id = %shared.server_id, "listening for client connections");
        let accept = tokio::spawn(accept_loop(shared.clone(), listener, done_tx));
        Ok(Server {
            shared,
            local_addr,
            accept,
            done,
        })
    }

    /// The bound client address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// State shared with connections (router, stats, registry).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, closes every connection after flushing what is
    /// queued for it, and waits (bounded) for them to finish.
    pub async fn shutdown(mut self) {
        self.shared.begin_shutdown();
        let _ = self.accept.await;
        let bound = self.shared.opts.write_deadline + SHUTDOWN_SLACK;
        if tokio::time::timeout(bound, self.done.recv()).await.is_err() {
            warn!("some connections did not finish flushing before shutdown");
        }
        info!("server stopped");
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, done: mpsc::Sender<()>) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
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

fn spawn_connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    addr: SocketAddr,
    done: mpsc::Sender<()>,
) {
    let _ = stream.set_nodelay(true);
    let shared = shared.clone();
    let cid = shared.next_client_id();
    let Some(client) = shared.register(cid, addr) else {
        shared
            .stats
            .refused_max_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        warn!(%addr, max = shared.opts.max_connections, "maximum connections exceeded");
        tokio::spawn(async move {
            crate::conn::refuse_connection(shared, stream, cid, addr, ProtoError::MaxConnections)
                .await;
            drop(done);
        });
        return;
    };
    tokio::spawn(async move {
        run_connection(shared, stream, client).await;
        drop(done);
    });
}
