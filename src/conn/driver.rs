//! The one async loop of every peer connection (a client, a route, and the
//! leaf and gateway connections to come): it only moves bytes and timers.
//!
//! What a connection *is* lives in a sans-IO [`Protocol`] value: bytes and
//! `now` go in; out come the bytes it queued (to its own client's outbound
//! queue and to subscribers'), the next deadline, and [`Event`]s such as
//! "check these credentials". How bytes travel is the stream the driver is
//! given (plain TCP, TLS, WebSocket), so a new kind of peer is a new
//! protocol, never a new loop. The driver reads into a buffer that grows
//! with the traffic and is dropped when the connection goes quiet, sleeps
//! until the protocol's deadline, awaits the credential check the protocol
//! asks for (the protocol's own deadline still running), and after each
//! batch wakes the writers the batch queued to, stalling briefly behind a
//! backed-up subscriber so TCP pushes back on a fast sender.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::SystemTime;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf, ReadHalf};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};

use super::lent::Spares;
use super::writer::{write_loop, CLOSE_FLUSH};
use crate::broker::{stall_behind, stopping, Client, CloseReason, ReadBuffer, SPLICE_MIN};

/// Read size after a quiet spell (read into the stack, see `read_some`).
const READ_START: usize = 512;
/// Most bytes read ahead in one call when no op needs more.
const READ_MAX_CHUNK: usize = 64 * 1024;

/// What the driver must do after [`Protocol::receive`].
#[derive(Debug)]
pub(crate) enum Event<L> {
    /// Close the connection.
    Close(CloseReason),
    /// Credentials need checking (off the reactor) before anything after
    /// them is handled; then call [`Protocol::authenticated`].
    Authenticate(L),
    /// The peer is over its publish rate: read nothing until then, when
    /// the rest of the buffer is handled again (TCP holds the peer back).
    Hold(Instant),
}

/// The outcome of [`Protocol::receive`].
#[derive(Debug)]
pub(crate) struct Received<L> {
    /// Bytes of the input used.
    pub(crate) used: usize,
    /// How many bytes the unused rest must grow to before the next op can
    /// complete.
    pub(crate) need: usize,
    /// Set when the batch stopped early.
    pub(crate) event: Option<Event<L>>,
}

/// A connection's protocol, sans IO: the driver's only view of it.
pub(crate) trait Protocol {
    /// What a credential check is asked with.
    type Login;
    /// What a credential check answers.
    type Verdict;

    /// Handles every complete op at the start of `buf`, read at `now`.
    fn receive(&mut self, buf: &[u8], now: Instant) -> Received<Self::Login>;
    /// [`Protocol::receive`] of a batch in a refcounted buffer: a protocol
    /// may queue large payloads from it to subscribers by reference
    /// rather than copy them. By default it copies as `receive` does.
    fn receive_shared(&mut self, buf: &ReadBuffer, now: Instant) -> Received<Self::Login> {
        self.receive(&buf.bytes, now)
    }
    /// The answer to the last [`Event::Authenticate`].
    fn authenticated(&mut self, verdict: Self::Verdict) -> Result<(), CloseReason>;
    /// When [`Protocol::on_timer`] must next be called.
    fn deadline(&self) -> Instant;
    /// The deadline came (auth timeout, keep-alive, expiry).
    fn on_timer(&mut self, now: Instant) -> Result<(), CloseReason>;
    /// The configuration (users, accounts) changed.
    fn reconfigure(&mut self) -> Result<(), CloseReason>;
    /// Ends a read batch: wakes the writers it queued to and returns those
    /// that are backed up (never the connection itself).
    fn end_batch(&mut self) -> Vec<Arc<Client>>;
    /// The connection ended: gives back what it held in shared state.
    fn finish(&mut self, reason: CloseReason);
    /// The client whose outbound queue carries this connection's bytes.
    fn client(&self) -> &Arc<Client>;
}

/// Who answers a protocol's credential checks (the gate for clients, the
/// cluster's route credentials for routes): behind the failure throttle,
/// on the verification pool.
pub(crate) trait Authority<P: Protocol> {
    /// Checks `login`.
    fn check(&self, login: P::Login) -> impl Future<Output = P::Verdict> + Send;
}

/// What tells a connection to stop or to re-read its configuration.
#[derive(Debug)]
pub(crate) struct Signals {
    /// The server is shutting down.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Bumped when the configuration the protocol depends on changed.
    pub(crate) reconfigured: watch::Receiver<u64>,
    /// How long a write may take (the writer's slow-consumer bound).
    pub(crate) write_deadline: std::time::Duration,
}

/// Serves one connection over `stream` until it closes: spawns its writer,
/// runs the read loop, closes the outbound queue, lets the protocol give
/// back what it held, and waits (bounded) for the last bytes to be written.
pub(crate) async fn drive<P, A, S>(protocol: &mut P, authority: &A, stream: S, signals: Signals) -> CloseReason
where
    P: Protocol + Send,
    A: Authority<P> + Sync,
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let client = protocol.client().clone();
    let write_deadline = signals.write_deadline;
    let writer = tokio::spawn(write_loop(client.clone(), writer, write_deadline));
    let reason = read_loop(protocol, authority, reader, signals).await;
    client.outbound.close(reason);
    protocol.finish(reason);
    let _ = timeout(CLOSE_FLUSH.max(write_deadline), writer).await;
    reason
}

async fn read_loop<P, A, S>(protocol: &mut P, authority: &A, mut reader: ReadHalf<S>, signals: Signals) -> CloseReason
where
    P: Protocol,
    A: Authority<P>,
    S: AsyncRead,
{
    let Signals { mut shutdown, mut reconfigured, .. } = signals;
    let client = protocol.client().clone();
    let mut buf = BytesMut::new();
    // Read buffers that came back from subscribers' queues (see `receive_shared`).
    let mut spares = None;
    // Bytes the buffer must hold before the next op can complete.
    let mut need: usize = 1;
    // Read size: doubles while reads fill it, halves when they do not.
    let mut chunk = READ_START;
    // Over its rate: nothing is read until then.
    let mut held: Option<Instant> = None;
    loop {
        // A quiet connection waits with no buffer at all (see `read_some`).
        let quiet = buf.capacity() == 0 && chunk == READ_START;
        if !quiet {
            buf.reserve(need.saturating_sub(buf.len()).max(chunk));
        }
        let spare = if quiet { READ_START } else { buf.capacity() - buf.len() };
        tokio::select! {
            biased;
            _ = client.outbound.closing.notified() => {
                return client.outbound.closed().unwrap_or(CloseReason::ClientClosed);
            }
            _ = stopping(&mut shutdown) => return CloseReason::ServerShutdown,
            _ = reconfigured.changed() => {
                if let Err(reason) = protocol.reconfigure() {
                    return reason;
                }
            }
            // One timer for the protocol's deadline and the end of a hold:
            // a timer is a tenth of an idle connection's task.
            _ = sleep_until(held.map_or(protocol.deadline(), |until| until.min(protocol.deadline()))) => {
                let now = Instant::now();
                if protocol.deadline() <= now {
                    if let Err(reason) = protocol.on_timer(now) {
                        return reason;
                    }
                }
                if held.is_some_and(|until| until <= now) {
                    match handle_buffer(protocol, authority, &mut buf, &mut spares, chunk).await {
                        Ok(next) => (need, held) = next,
                        Err(reason) => return reason,
                    }
                }
            }
            read = read_some(&mut reader, &mut buf), if held.is_none() => {
                match read {
                    Ok(0) => return CloseReason::ClientClosed,
                    Err(_) => return CloseReason::ReadError,
                    Ok(n) if n >= spare => chunk = (chunk * 2).min(READ_MAX_CHUNK),
                    Ok(n) if n < chunk / 4 => chunk = (chunk / 2).max(READ_START),
                    Ok(_) => {}
                }
                client.touch(SystemTime::now());
                match handle_buffer(protocol, authority, &mut buf, &mut spares, chunk).await {
                    Ok(next) => (need, held) = next,
                    Err(reason) => return reason,
                }
                if buf.is_empty() && (chunk == READ_START || buf.capacity() > 2 * READ_MAX_CHUNK) {
                    // A quiet connection holds no read buffer between reads
                    // (idle connections are most of a big server's memory);
                    // a busy one keeps its buffer.
                    buf = BytesMut::new();
                    spares = None;
                }
            }
        }
    }
}

/// Reads what the peer sent into `buf`. A buffer with no room (a quiet
/// connection's, given back after its last read) is not allocated until
/// bytes arrive: they are read into the stack, at most `READ_START`, and
/// copied. So an idle connection's task holds no read buffer while it
/// waits (512 bytes each, a tenth of an idle connection's memory), and a
/// read costs the copy of at most 512 bytes, only after a quiet spell.
fn read_some<'a, S: AsyncRead>(
    reader: &'a mut ReadHalf<S>,
    buf: &'a mut BytesMut,
) -> impl Future<Output = std::io::Result<usize>> + 'a {
    std::future::poll_fn(move |cx| {
        if buf.capacity() > buf.len() {
            let read = reader.read_buf(&mut *buf);
            tokio::pin!(read);
            return read.poll(cx);
        }
        let mut stack = [0u8; READ_START];
        let mut into = ReadBuf::new(&mut stack);
        ready!(Pin::new(&mut *reader).poll_read(cx, &mut into))?;
        buf.extend_from_slice(into.filled());
        Poll::Ready(Ok(into.filled().len()))
    })
}

/// Handles everything complete in `buf`, pausing at credentials that must
/// be checked. Returns how many bytes the buffer must hold for the next
/// op and, for a peer over its rate, until when nothing is read; or why
/// the connection closes. A batch of [`SPLICE_MIN`] bytes or more is lent
/// out (see `receive_shared`); `chunk` is the read size, which the buffer
/// that replaces it has room for.
async fn handle_buffer<P, A>(
    protocol: &mut P,
    authority: &A,
    buf: &mut BytesMut,
    spares: &mut Option<Arc<Spares>>,
    chunk: usize,
) -> Result<(usize, Option<Instant>), CloseReason>
where
    P: Protocol,
    A: Authority<P>,
{
    loop {
        let received = if buf.len() >= SPLICE_MIN {
            receive_shared(protocol, buf, spares.get_or_insert_with(Default::default), chunk)
        } else {
            let received = protocol.receive(buf, Instant::now());
            buf.advance(received.used);
            received
        };
        flush_and_stall(protocol).await;
        match received.event {
            None => return Ok((received.need, None)),
            Some(Event::Hold(until)) => return Ok((1, Some(until))),
            Some(Event::Close(reason)) => return Err(reason),
            Some(Event::Authenticate(login)) => {
                // Boxed: a check (the gate's, with JWT resolution and the
                // auth callout) is a future of over 3 KiB, and held inline it
                // would make every idle connection's task that much larger,
                // though a connection checks credentials once.
                let mut check = Box::pin(authority.check(login));
                // The protocol's deadline covers both the auth timeout and keep-alive.
                let verdict = loop {
                    tokio::select! {
                        verdict = &mut check => break verdict,
                        _ = sleep_until(protocol.deadline()) => protocol.on_timer(Instant::now())?,
                    }
                };
                protocol.authenticated(verdict)?;
                flush_and_stall(protocol).await;
            }
        }
    }
}

/// Hands a batch that may carry a large payload to the protocol as a
/// refcounted buffer lent out from `spares` (see [`super::lent`]), so
/// subscribers' queues can reference payloads in it; what the protocol did
/// not use is copied to the front of the next buffer (as reading into the
/// same one again would move it there too), which has room for it and a
/// read of `chunk` bytes (the read loop's current read size).
fn receive_shared<P: Protocol>(
    protocol: &mut P,
    buf: &mut BytesMut,
    spares: &Arc<Spares>,
    chunk: usize,
) -> Received<P::Login> {
    let lent = spares.lend(std::mem::take(buf));
    let received = protocol.receive_shared(&lent, Instant::now());
    let rest = lent.bytes.get(received.used..).unwrap_or_default();
    *buf = spares.take(rest.len().max(received.need) + chunk);
    buf.extend_from_slice(rest);
    received
}

/// Wakes the writer of every client this batch queued to, then holds this
/// sender back briefly for any of them that is more than half full, so a
/// fast publisher (or a route carrying one) slows to its subscribers' pace
/// instead of making them slow consumers.
async fn flush_and_stall<P: Protocol>(protocol: &mut P) {
    let backed_up = protocol.end_batch();
    stall_behind(backed_up).await;
}
