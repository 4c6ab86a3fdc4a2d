//! The tasks of one connection: a reader that parses and handles ops and
//! keeps the connection alive, and a writer that drains the outbound buffer.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, info};

use super::outbound::MAX_WRITE_CHUNKS;
use super::session::{Session, Stop};
use super::{Client, CloseReason};
use crate::auth::Verdict;
use crate::proto::ProtoError;
use crate::server::Shared;

/// Initial read buffer; small so idle connections stay cheap.
const READ_START: usize = 512;
/// Most bytes read ahead in one call when no op needs more.
const READ_MAX_CHUNK: usize = 64 * 1024;
/// Time to the first server PING, which measures the round-trip time.
const FIRST_PING: Duration = Duration::from_secs(2);
/// How long a publisher is held back while a subscriber it feeds drains.
const STALL: Duration = Duration::from_millis(100);
/// A writer idle this long gives its buffers back.
const RELEASE_AFTER_IDLE: Duration = Duration::from_millis(500);
/// Bound on flushing a closing connection's last bytes (such as its -ERR).
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Writes every chunk of `batch`, as many per syscall as the writer takes,
/// then flushes.
async fn write_chunks<W: AsyncWrite + Unpin>(writer: &mut W, batch: &VecDeque<BytesMut>) -> std::io::Result<()> {
    // Position: chunk index and bytes of it already written.
    let (mut first, mut offset) = (0, 0);
    loop {
        while batch.get(first).is_some_and(|chunk| chunk.len() <= offset) {
            first += 1;
            offset = 0;
        }
        if first >= batch.len() {
            break;
        }
        // The slices are built inside each poll, so the writer task's future
        // does not carry an array of them (1 KiB per connection) while idle.
        let mut n = std::future::poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_CHUNKS];
            let mut count = 0;
            for (i, chunk) in batch.iter().skip(first).take(MAX_WRITE_CHUNKS).enumerate() {
                let bytes = chunk.get(if i == 0 { offset } else { 0 }..).unwrap_or_default();
                if let (false, Some(slot)) = (bytes.is_empty(), slices.get_mut(count)) {
                    *slot = IoSlice::new(bytes);
                    count += 1;
                }
            }
            Pin::new(&mut *writer).poll_write_vectored(cx, slices.get(..count).unwrap_or_default())
        })
        .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        // Step past what was written.
        while let Some(chunk) = batch.get(first) {
            let left = chunk.len() - offset;
            if n < left {
                offset += n;
                break;
            }
            n -= left;
            first += 1;
            offset = 0;
        }
    }
    // A TLS stream reports plaintext as written once its session took it,
    // even when the socket was full; flushing sends the records it holds.
    writer.flush().await
}

/// Whether the connection still has to send its INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// Send INFO first.
    SendInfo,
    /// INFO went out before the TLS handshake.
    InfoSent,
}

/// Serves one accepted connection until it closes.
pub async fn run_connection<S>(shared: Arc<Shared>, stream: S, client: Arc<Client>, greeting: Greeting)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    if greeting == Greeting::SendInfo {
        client.send(&shared.info_line(&client));
    }
    let writer = tokio::spawn(write_loop(client.clone(), writer, shared.opts.write_deadline));
    let mut session = Session::new(shared.clone(), client.clone());
    let reason = read_loop(&shared, &mut session, reader).await;
    client.outbound.close(reason);
    if reason == CloseReason::SlowConsumerWriteDeadline {
        shared.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
    }
    session.unsubscribe_all();
    if reason.is_slow_consumer() {
        info!(cid = client.id, addr = %client.addr, %reason, "slow consumer closed");
    } else {
        debug!(cid = client.id, addr = %client.addr, %reason, "connection closed");
    }
    let _ = timeout(CLOSE_FLUSH.max(shared.opts.write_deadline), writer).await;
}

/// Tells a client it cannot be served (over max_connections) and closes.
pub async fn refuse_connection<S>(shared: Arc<Shared>, mut stream: S, cid: u64, addr: SocketAddr, err: ProtoError)
where
    S: AsyncWrite + Unpin,
{
    let client = Client::new(cid, addr, 0);
    let mut bytes = shared.info_line(&client);
    bytes.extend_from_slice(err.to_line().as_bytes());
    let _ = timeout(CLOSE_FLUSH, async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn read_loop<S: AsyncRead>(shared: &Shared, session: &mut Session, mut reader: ReadHalf<S>) -> CloseReason {
    let client = session.client().clone();
    let mut buf = BytesMut::new();
    let mut shutdown = shared.shutdown_signal();
    let mut reload = shared.reload_signal();
    let ping_interval = shared.opts.ping_interval;
    let mut next_ping = Instant::now() + FIRST_PING.min(ping_interval);
    let mut ping_sent: Option<Instant> = None;
    // The client must authenticate by then (only when credentials are needed).
    let auth_deadline = Instant::now() + shared.auth_timeout();
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
            _ = crate::server::stopping(&mut shutdown) => return CloseReason::ServerShutdown,
            _ = reload.changed() => {
                if let Err(reason) = session.apply_reload() {
                    return reason;
                }
            }
            _ = sleep_until(auth_deadline), if session.awaiting_auth() => {
                shared.security.auth_timeouts.fetch_add(1, Ordering::Relaxed);
                client.send(ProtoError::AuthenticationTimeout.to_line().as_bytes());
                return CloseReason::AuthenticationTimeout;
            }
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => return CloseReason::ClientClosed,
                    Err(_) => return CloseReason::ReadError,
                    Ok(n) if n >= spare => chunk = (chunk * 2).min(READ_MAX_CHUNK),
                    Ok(n) if n < chunk / 4 => chunk = (chunk / 2).max(READ_START),
                    Ok(_) => {}
                }
                client.touch();
                let was_pinging = session.pings_out;
                let handled = handle_buffer(shared, session, &mut buf, auth_deadline).await;
                if was_pinging > 0 && session.pings_out == 0 {
                    if let Some(sent) = ping_sent.take() {
                        client.rtt_nanos.store(sent.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    }
                }
                match handled {
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
            _ = sleep_until(next_ping) => {
                next_ping = Instant::now() + ping_interval;
                let active = std::mem::take(&mut session.inbound_activity) | client.outbound.take_activity();
                let measured = client.rtt_nanos.load(Ordering::Relaxed) != 0;
                if active && measured {
                    continue;
                }
                if session.pings_out + 1 > shared.opts.ping_max {
                    client.send(ProtoError::StaleConnection.to_line().as_bytes());
                    return CloseReason::StaleConnection;
                }
                session.pings_out += 1;
                ping_sent.get_or_insert_with(Instant::now);
                client.send(b"PING\r\n");
            }
        }
    }
}

/// Handles everything complete in `buf`, pausing at a CONNECT whose
/// credentials must be checked. Returns how many bytes the buffer must hold
/// for the next op, or why the connection closes.
async fn handle_buffer(
    shared: &Shared,
    session: &mut Session,
    buf: &mut BytesMut,
    auth_deadline: Instant,
) -> Result<usize, CloseReason> {
    loop {
        let (used, need, stop) = session.process(buf);
        buf.advance(used);
        flush_and_stall(session).await;
        match stop {
            None => return Ok(need),
            Some(Stop::Close(reason)) => return Err(reason),
            Some(Stop::Authenticate(claims)) => {
                let client = session.client().clone();
                let verdict = tokio::select! {
                    verdict = shared.authenticate(claims, session.facts()) => verdict,
                    _ = sleep_until(auth_deadline) => {
                        shared.security.auth_timeouts.fetch_add(1, Ordering::Relaxed);
                        client.send(ProtoError::AuthenticationTimeout.to_line().as_bytes());
                        return Err(CloseReason::AuthenticationTimeout);
                    }
                };
                if let Verdict::Refuse(_) = verdict {
                    let delay = shared.throttle.failure(client.addr.ip(), std::time::Instant::now());
                    tokio::time::sleep(delay).await;
                } else {
                    shared.throttle.success(client.addr.ip());
                }
                session.complete_connect(verdict)?;
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
    let mut backed_up: Vec<Arc<Client>> = Vec::new();
    for client in session.take_touched() {
        client.outbound.wake();
        if client.id != own_id && client.outbound.pending() > client.outbound.max_pending() / 2 {
            backed_up.push(client);
        }
    }
    for client in backed_up {
        let drained = client.outbound.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        let out = &client.outbound;
        if out.pending() > out.max_pending() / 2 && out.closed().is_none() {
            let _ = timeout(STALL, drained).await;
        }
    }
}

/// Drains `client`'s outbound queue into `writer` until the connection
/// closes (also used by routes).
pub async fn write_loop<S: AsyncWrite>(client: Arc<Client>, mut writer: WriteHalf<S>, deadline: Duration) {
    let out = &client.outbound;
    let mut batch = VecDeque::new();
    loop {
        let closing = out.take(&mut batch);
        if !batch.is_empty() {
            let written = tokio::select! {
                written = timeout(deadline, write_chunks(&mut writer, &batch)) => written,
                _ = out.abort.notified() => break,
            };
            match written {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    out.close(CloseReason::WriteError);
                    break;
                }
                Err(_) => {
                    out.close(CloseReason::SlowConsumerWriteDeadline);
                    break;
                }
            }
            out.written(&mut batch);
            continue;
        }
        if closing.is_some() {
            break;
        }
        if out.holds_memory(&batch) {
            // Quiet for a while: give the buffers back, then wait as long as it takes.
            if timeout(RELEASE_AFTER_IDLE, out.writer_wake.notified()).await.is_ok() {
                continue;
            }
            out.release(&mut batch);
        }
        out.writer_wake.notified().await;
    }
    let _ = timeout(CLOSE_FLUSH, writer.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use super::*;

    /// A writer like a TLS stream: it takes at most `per_call` bytes per
    /// call and holds them until flushed.
    struct Holding {
        per_call: usize,
        held: Vec<u8>,
        sent: Vec<u8>,
    }

    impl AsyncWrite for Holding {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.per_call);
            self.held.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            let held = std::mem::take(&mut self.held);
            self.sent.extend(held);
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn write_chunks_sends_every_byte_in_order_and_flushes() {
        let batch: VecDeque<BytesMut> =
            [&b"first"[..], b"", &[7; 3000], b"x", &[9; 70_000]].into_iter().map(BytesMut::from).collect();
        let want: Vec<u8> = batch.iter().flat_map(|c| c.iter().copied()).collect();
        for per_call in [1, 999, 4096, usize::MAX] {
            let mut writer = Holding { per_call, held: Vec::new(), sent: Vec::new() };
            write_chunks(&mut writer, &batch).await.unwrap();
            assert!(writer.held.is_empty(), "bytes left in the stream's buffer (per_call {per_call})");
            assert_eq!(writer.sent, want, "per_call {per_call}");
        }
    }
}
