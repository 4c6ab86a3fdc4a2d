//! A client connection on the driver: its greeting, its [`Session`] as a
//! [`Protocol`], and the gate as the [`Authority`] that checks its
//! credentials. The loop itself is [`super::driver`]'s.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, Instant};
use tracing::{debug, info};

use super::driver::{drive, Authority, Protocol, Received, Signals};
use super::session::{Login, Session};
use super::writer::CLOSE_FLUSH;
use crate::auth::{Gate, Verdict};
use crate::broker::{wake_writers, Broker, Client, CloseReason, ReadBuffer, TlsMeta};
use crate::proto::ProtoError;
use crate::tls::PeerIdentity;

/// Whether the connection still has to send its INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    /// Send this INFO line first.
    Send(Vec<u8>),
    /// INFO went out before the TLS handshake.
    Sent,
}

/// How a connection starts: its INFO, and the nonce that INFO carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// Whether INFO still has to be sent.
    pub greeting: Greeting,
    /// The nonce in that INFO, if any.
    pub nonce: Option<String>,
    /// The user JWT a WebSocket client's cookie carried (`jwt_cookie`),
    /// used when its CONNECT has none.
    pub cookie_jwt: Option<crate::secret::Secret>,
}

/// Serves one accepted connection until it closes.
pub async fn run_connection<S>(broker: Arc<Broker>, gate: Arc<Gate>, stream: S, client: Arc<Client>, start: Start)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    if let Greeting::Send(info) = start.greeting {
        client.send(&info);
    }
    let mut session = Session::new(broker.clone(), gate.clone(), client.clone(), start.nonce, Instant::now());
    session.set_cookie_jwt(start.cookie_jwt);
    let signals = Signals {
        shutdown: broker.shutdown_signal(),
        reconfigured: gate.reload_signal(),
        write_deadline: broker.opts.write_deadline,
    };
    let reason = drive(&mut session, gate.as_ref(), stream, signals).await;
    if reason == CloseReason::SlowConsumerWriteDeadline {
        broker.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
    }
    if reason.is_slow_consumer() {
        info!(cid = client.id, addr = %client.addr, %reason, "slow consumer closed");
    } else {
        debug!(cid = client.id, addr = %client.addr, %reason, "connection closed");
    }
}

/// The client protocol on the driver.
impl Protocol for Session {
    type Login = Box<Login>;
    type Verdict = Verdict;

    fn receive(&mut self, buf: &[u8], now: Instant) -> Received<Box<Login>> {
        Session::receive(self, buf, now)
    }

    fn receive_shared(&mut self, buf: &ReadBuffer, now: Instant) -> Received<Box<Login>> {
        Session::receive_shared(self, buf, now)
    }

    fn authenticated(&mut self, verdict: Verdict) -> Result<(), CloseReason> {
        Session::authenticated(self, verdict)
    }

    fn deadline(&self) -> Instant {
        Session::deadline(self)
    }

    fn on_timer(&mut self, now: Instant) -> Result<(), CloseReason> {
        Session::on_timer(self, now)
    }

    fn reconfigure(&mut self) -> Result<(), CloseReason> {
        self.reload()
    }

    fn end_batch(&mut self) -> Vec<Arc<Client>> {
        let own_id = self.client().id;
        wake_writers(self.take_touched(), Some(own_id))
    }

    fn finish(&mut self, reason: CloseReason) {
        Session::finish(self, reason);
    }

    fn client(&self) -> &Arc<Client> {
        Session::client(self)
    }
}

/// Clients' credentials, and leaf nodes' (which log in like clients), are
/// checked by the gate.
impl<P: Protocol<Login = Box<Login>, Verdict = Verdict>> Authority<P> for Gate {
    fn check(&self, login: Box<Login>) -> impl std::future::Future<Output = Verdict> + Send {
        self.admit(login.claims, login.facts)
    }
}

/// Records the TLS facts of a connection (protocol, cipher, the peer's
/// verified chain and the names in it) where monitoring and
/// authenticators read them.
pub(crate) fn note_tls_session(client: &Client, session: &rustls::ServerConnection) {
    let chain = session.peer_certificates().unwrap_or_default();
    let tls = TlsMeta {
        version: session.protocol_version().and_then(|v| v.as_str()).map(str::to_string),
        cipher_suite: session.negotiated_cipher_suite().and_then(|s| s.suite().as_str()).map(str::to_string),
        peer: chain.first().and_then(|c| PeerIdentity::from_der(c)),
        chain: (!chain.is_empty()).then(|| chain.iter().map(|c| c.to_vec()).collect()),
    };
    client.meta.lock().tls = Some(Box::new(tls));
}

/// Tells a client it cannot be served (after its INFO line) and closes.
pub async fn refuse_connection<S>(mut stream: S, info: Vec<u8>, err: ProtoError)
where
    S: AsyncWrite + Unpin,
{
    let mut bytes = info;
    bytes.extend_from_slice(err.to_line().as_bytes());
    let _ = timeout(CLOSE_FLUSH, async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
