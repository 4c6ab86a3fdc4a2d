//! The reader task of a client connection: it only moves bytes and timers.
//! It reads from the socket into a buffer, hands the buffer and `now` to the
//! [`Session`], sleeps until the session's deadline, awaits the credential
//! check the session asks for, and after each batch wakes the writers the
//! batch queued to (stalling briefly behind a backed-up subscriber).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, info};

use super::session::{Event, Session};
use super::writer::{write_loop, CLOSE_FLUSH};
use crate::auth::Gate;
use crate::broker::{stall_behind, stopping, wake_writers, Broker, Client, CloseReason};
use crate::proto::ProtoError;

/// Initial read buffer; small so idle connections stay cheap.
const READ_START: usize = 512;
/// Most bytes read ahead in one call when no op needs more.
const READ_MAX_CHUNK: usize = 64 * 1024;

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
    let (reader, writer) = tokio::io::split(stream);
    if let Greeting::Send(info) = start.greeting {
        client.send(&info);
    }
    let writer = tokio::spawn(write_loop(client.clone(), writer, broker.opts.write_deadline));
    let mut session = Session::new(broker.clone(), gate.clone(), client.clone(), start.nonce, Instant::now());
    session.set_cookie_jwt(start.cookie_jwt);
    let reason = read_loop(&broker, &gate, &mut session, reader).await;
    client.outbound.close(reason);
    if reason == CloseReason::SlowConsumerWriteDeadline {
        broker.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
    }
    session.finish(reason);
    if reason.is_slow_consumer() {
        info!(cid = client.id, addr = %client.addr, %reason, "slow consumer closed");
    } else {
        debug!(cid = client.id, addr = %client.addr, %reason, "connection closed");
    }
    let _ = timeout(CLOSE_FLUSH.max(broker.opts.write_deadline), writer).await;
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

async fn read_loop<S: AsyncRead>(
    broker: &Broker,
    gate: &Gate,
    session: &mut Session,
    mut reader: ReadHalf<S>,
) -> CloseReason {
    let client = session.client().clone();
    let mut buf = BytesMut::new();
    let mut shutdown = broker.shutdown_signal();
    let mut reload = gate.reload_signal();
    // Bytes the buffer must hold before the next op can complete.
    let mut need: usize = 1;
    // Read size: doubles while reads fill it, halves when they do not.
    let mut chunk = READ_START;
    loop {
        buf.reserve(need.saturating_sub(buf.len()).max(chunk));
        let spare = buf.capacity() - buf.len();
        tokio::select! {
            biased;
            _ = client.outbound.closing.notified() => {
                return client.outbound.closed().unwrap_or(CloseReason::ClientClosed);
            }
            _ = stopping(&mut shutdown) => return CloseReason::ServerShutdown,
            _ = reload.changed() => {
                if let Err(reason) = session.reload() {
                    return reason;
                }
            }
            _ = sleep_until(session.deadline()) => {
                if let Err(reason) = session.on_timer(Instant::now()) {
                    return reason;
                }
            }
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => return CloseReason::ClientClosed,
                    Err(_) => return CloseReason::ReadError,
                    Ok(n) if n >= spare => chunk = (chunk * 2).min(READ_MAX_CHUNK),
                    Ok(n) if n < chunk / 4 => chunk = (chunk / 2).max(READ_START),
                    Ok(_) => {}
                }
                client.touch(SystemTime::now());
                match handle_buffer(gate, session, &mut buf).await {
                    Ok(still_needed) => need = still_needed,
                    Err(reason) => return reason,
                }
                if buf.is_empty() && (chunk == READ_START || buf.capacity() > 2 * READ_MAX_CHUNK) {
                    // A quiet connection holds no read buffer between reads
                    // (idle connections are most of a big server's memory);
                    // a busy one keeps its buffer.
                    buf = BytesMut::new();
                }
            }
        }
    }
}

/// Handles everything complete in `buf`, pausing at a CONNECT whose
/// credentials must be checked. Returns how many bytes the buffer must hold
/// for the next op, or why the connection closes.
async fn handle_buffer(gate: &Gate, session: &mut Session, buf: &mut BytesMut) -> Result<usize, CloseReason> {
    loop {
        let received = session.receive(buf, Instant::now());
        buf.advance(received.used);
        flush_and_stall(session).await;
        match received.event {
            None => return Ok(received.need),
            Some(Event::Close(reason)) => return Err(reason),
            Some(Event::Authenticate(login)) => {
                let admit = gate.admit(login.claims, login.facts);
                tokio::pin!(admit);
                // The session's deadline covers both the auth timeout and keep-alive.
                let verdict = loop {
                    tokio::select! {
                        verdict = &mut admit => break verdict,
                        _ = sleep_until(session.deadline()) => session.on_timer(Instant::now())?,
                    }
                };
                session.authenticated(verdict)?;
                flush_and_stall(session).await;
            }
        }
    }
}

/// Wakes the writer of every client this batch queued to, then holds this
/// publisher back briefly for any of them that is more than half full, so a
/// fast publisher slows to its subscribers' pace instead of making them slow
/// consumers.
async fn flush_and_stall(session: &mut Session) {
    let own_id = session.client().id;
    let backed_up = wake_writers(session.take_touched(), Some(own_id));
    stall_behind(backed_up).await;
}
