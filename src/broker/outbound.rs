//! A connection's bounded outbound queue.
//!
//! Publishers append frames under a short mutex (never held across IO) and
//! wake the connection's writer task, which takes a run of queued chunks and
//! writes them with one vectored call: a burst of small messages leaves in
//! few syscalls. Past `max_pending` the connection is a slow consumer and is
//! closed.
//!
//! The queue is a list of fixed-size chunks rather than one growing buffer.
//! A subscriber that lags holds up to half of `max_pending` (32 MiB by
//! default) before its publisher is stalled; as one buffer that was regrown
//! (copied) and freed on every write, and the page faults of the fresh
//! memory cost a fifth of a fan-out run's server CPU. Chunks are written in
//! place and handed back for reuse instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::CloseReason;

/// Size of a queue chunk; a frame larger than this gets a chunk of its own.
pub(super) const CHUNK: usize = 64 * 1024;
/// First chunk of a connection with nothing queued and nothing to reuse:
/// small, so an idle connection's INFO or PONG costs little.
const FIRST_CHUNK: usize = 1024;
/// Most chunks the writer takes for one vectored write.
pub const MAX_WRITE_CHUNKS: usize = 64;
/// Reusable chunks kept even after small writes.
const MIN_FREE_CHUNKS: usize = 4;

/// The queue and its spare chunks, under the mutex.
#[derive(Debug, Default)]
struct State {
    /// Queued bytes, oldest first; publishers fill the last chunk.
    chunks: VecDeque<BytesMut>,
    /// Empty chunks of `CHUNK` capacity, for reuse. Never more than the
    /// writer's last batch (or `MIN_FREE_CHUNKS`), so memory follows the
    /// load, and all of it is given back when the connection goes quiet.
    free: Vec<BytesMut>,
    /// Sum of the chunks' lengths.
    queued: usize,
    closed: Option<CloseReason>,
}

impl State {
    /// The chunk a frame of up to `size` bytes is appended to without
    /// growing it.
    fn chunk_for(&mut self, size: usize) -> Option<&mut BytesMut> {
        let fits = self.chunks.back().is_some_and(|c| c.capacity() - c.len() >= size);
        if !fits {
            let chunk = match self.free.pop() {
                Some(chunk) if size <= CHUNK => chunk,
                spare => {
                    self.free.extend(spare);
                    let first = self.chunks.is_empty() && self.free.is_empty();
                    BytesMut::with_capacity(size.max(if first { FIRST_CHUNK } else { CHUNK }))
                }
            };
            self.chunks.push_back(chunk);
        }
        self.chunks.back_mut()
    }

    fn drop_queue(&mut self) {
        self.chunks = VecDeque::new();
        self.free = Vec::new();
        self.queued = 0;
    }
}

/// Outbound bytes of one connection and the signals around them.
#[derive(Debug)]
pub struct Outbound {
    state: Mutex<State>,
    /// Mirror of the queued length, readable without the lock.
    pending: AtomicUsize,
    /// Limit on `pending`.
    max_pending: usize,
    /// Set by any delivery; the keep-alive timer clears it.
    activity: AtomicBool,
    /// Wakes the writer task.
    pub(crate) writer_wake: Notify,
    /// Wakes publishers stalled on this connection after the writer drained some.
    pub(crate) drained: Notify,
    /// Wakes the reader task when the connection must close.
    pub(crate) closing: Notify,
    /// Interrupts a write in progress when the backlog is to be dropped.
    pub(crate) abort: Notify,
}

/// What an append found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Append {
    /// Queued.
    Queued,
    /// The connection is closed or closing: nothing was queued.
    Closed,
    /// This append pushed it past max_pending: it is now closed as a slow consumer.
    SlowConsumer,
}

impl Outbound {
    /// An empty outbound queue with the given limit.
    pub fn new(max_pending: usize) -> Self {
        Outbound {
            state: Mutex::new(State::default()),
            pending: AtomicUsize::new(0),
            max_pending,
            activity: AtomicBool::new(false),
            writer_wake: Notify::new(),
            drained: Notify::new(),
            closing: Notify::new(),
            abort: Notify::new(),
        }
    }

    /// Appends the bytes `encode` writes, at most `size` of them (a larger
    /// frame is still queued, at the cost of growing a chunk). The caller
    /// wakes the writer (once per read batch) with `wake`. Always inlined:
    /// it is the delivery path's core, and the compiler's heuristics moved it
    /// out of line at the first new branch in [`super::Client::deliver`].
    #[inline(always)]
    pub fn append(&self, size: usize, encode: impl FnOnce(&mut BytesMut)) -> Append {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            return Append::Closed;
        }
        let Some(chunk) = state.chunk_for(size) else { return Append::Closed };
        let before = chunk.len();
        encode(chunk);
        let added = chunk.len() - before;
        state.queued += added;
        let queued = state.queued;
        if queued > self.max_pending {
            state.drop_queue();
            state.closed = Some(CloseReason::SlowConsumerPending);
            self.pending.store(0, Ordering::Release);
            drop(state);
            self.abort.notify_one();
            self.wake_all();
            return Append::SlowConsumer;
        }
        self.pending.store(queued, Ordering::Release);
        self.activity.store(true, Ordering::Relaxed);
        Append::Queued
    }

    /// Wakes the writer.
    pub fn wake(&self) {
        self.writer_wake.notify_one();
    }

    /// Bytes queued and not yet handed to the socket.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// The max_pending limit.
    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// Whether more than half of `max_pending` is queued and the connection
    /// is open: a publisher that fed it should wait for its writer.
    pub fn backed_up(&self) -> bool {
        self.pending() > self.max_pending / 2 && self.closed().is_none()
    }

    /// Takes and clears the activity flag (for keep-alive).
    pub fn take_activity(&self) -> bool {
        self.activity.swap(false, Ordering::Relaxed)
    }

    /// Starts closing with `reason` unless already closing. Returns whether
    /// this call closed it.
    pub fn close(&self, reason: CloseReason) -> bool {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            return false;
        }
        if !reason.flushes() {
            state.drop_queue();
            self.pending.store(0, Ordering::Release);
            self.abort.notify_one();
        }
        state.closed = Some(reason);
        drop(state);
        self.wake_all();
        true
    }

    /// Why the connection is closing, if it is.
    pub fn closed(&self) -> Option<CloseReason> {
        self.state.lock().closed
    }

    fn wake_all(&self) {
        self.writer_wake.notify_one();
        self.closing.notify_one();
        self.drained.notify_waiters();
    }

    /// For the writer: moves up to `MAX_WRITE_CHUNKS` queued chunks, oldest
    /// first, into `batch` (which must be empty) and returns the close
    /// reason if closing.
    pub fn take(&self, batch: &mut VecDeque<BytesMut>) -> Option<CloseReason> {
        let mut state = self.state.lock();
        let n = state.chunks.len().min(MAX_WRITE_CHUNKS);
        let taken: usize = state.chunks.iter().take(n).map(BytesMut::len).sum();
        batch.extend(state.chunks.drain(..n));
        state.queued -= taken;
        self.pending.store(state.queued, Ordering::Release);
        state.closed
    }

    /// For the writer: after a write, keep the batch's chunks for reuse
    /// and wake stalled publishers.
    pub fn written(&self, batch: &mut VecDeque<BytesMut>) {
        let mut state = self.state.lock();
        let keep = batch.len().max(MIN_FREE_CHUNKS);
        for mut chunk in batch.drain(..) {
            if state.free.len() < keep && chunk.capacity() == CHUNK {
                chunk.clear();
                state.free.push(chunk);
            }
        }
        state.free.truncate(keep);
        drop(state);
        self.drained.notify_waiters();
    }

    /// For the writer of a connection that has gone quiet: gives back the
    /// spare chunks, so an idle connection holds no write buffer at all.
    pub(crate) fn release(&self, batch: &mut VecDeque<BytesMut>) {
        *batch = VecDeque::new();
        let mut state = self.state.lock();
        state.free = Vec::new();
        if state.chunks.is_empty() {
            state.chunks = VecDeque::new();
        }
    }

    /// Whether spare chunks or queue capacity are held (for the writer's idle check).
    pub(crate) fn holds_memory(&self, batch: &VecDeque<BytesMut>) -> bool {
        let state = self.state.lock();
        batch.capacity() > 0 || state.free.capacity() > 0 || state.chunks.capacity() > 0
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl Outbound {
    /// Everything queued since the last call, written out: what the
    /// socket-free session tests and harnesses read back.
    pub(crate) fn drain(&self) -> Vec<u8> {
        let mut batch = VecDeque::new();
        let mut bytes = Vec::new();
        loop {
            self.take(&mut batch);
            if batch.is_empty() {
                return bytes;
            }
            bytes.extend(batch.iter().flat_map(|c| c.iter().copied()));
            self.written(&mut batch);
        }
    }

    /// [`Outbound::drain`] as text.
    #[cfg(test)]
    pub(crate) fn drain_text(&self) -> String {
        String::from_utf8_lossy(&self.drain()).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(out: &Outbound, bytes: &[u8]) -> Append {
        out.append(bytes.len(), |b| b.extend_from_slice(bytes))
    }

    fn drain(out: &Outbound) -> (Vec<u8>, Option<CloseReason>) {
        let mut batch = VecDeque::new();
        let closed = out.take(&mut batch);
        let bytes = batch.iter().flat_map(|c| c.iter().copied()).collect();
        out.written(&mut batch);
        (bytes, closed)
    }

    #[test]
    fn past_max_pending_is_a_slow_consumer_and_drops_the_queue() {
        let out = Outbound::new(10);
        assert_eq!(put(&out, b"12345"), Append::Queued);
        assert_eq!(out.pending(), 5);
        assert_eq!(put(&out, b"123456"), Append::SlowConsumer);
        assert_eq!(out.pending(), 0);
        assert_eq!(out.closed(), Some(CloseReason::SlowConsumerPending));
        assert_eq!(put(&out, b"1"), Append::Closed);
    }

    #[test]
    fn close_keeps_pending_bytes_when_the_reason_flushes() {
        let out = Outbound::new(100);
        put(&out, b"-ERR 'x'\r\n");
        assert!(out.close(CloseReason::ProtocolViolation));
        assert!(!out.close(CloseReason::ClientClosed), "first reason wins");
        assert_eq!(drain(&out), (b"-ERR 'x'\r\n".to_vec(), Some(CloseReason::ProtocolViolation)));
    }

    #[test]
    fn frames_keep_their_order_across_chunks_and_writes() {
        let out = Outbound::new(64 * 1024 * 1024);
        let mut want = Vec::new();
        let mut got = Vec::new();
        for round in 0..3u32 {
            // Sizes around the chunk size: small frames, one that spans
            // several chunks, and ones that just fit or just miss.
            for (i, size) in [10, CHUNK - 7, 3, 3 * CHUNK + 1, CHUNK, 1, 200_000].into_iter().enumerate() {
                let frame: Vec<u8> = (0..size).map(|k| (k as u32 + round * 7 + i as u32) as u8).collect();
                assert_eq!(put(&out, &frame), Append::Queued);
                want.extend_from_slice(&frame);
            }
            assert_eq!(out.pending(), want.len() - got.len());
            while out.pending() > 0 {
                got.extend(drain(&out).0);
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn chunks_are_reused_and_given_back_when_quiet() {
        let out = Outbound::new(64 * 1024 * 1024);
        for _ in 0..1000 {
            put(&out, &[7; 1000]);
        }
        drain(&out);
        let reused = out.state.lock().free.len();
        assert!(reused >= MIN_FREE_CHUNKS, "{reused} chunks kept");
        put(&out, b"x");
        assert_eq!(out.state.lock().free.len(), reused - 1, "the next frame takes a kept chunk");
        drain(&out);
        let mut batch = VecDeque::new();
        assert!(out.holds_memory(&batch));
        out.release(&mut batch);
        assert!(!out.holds_memory(&batch), "a quiet connection holds no buffer");
    }

    #[test]
    fn a_quiet_connection_starts_with_a_small_chunk() {
        let out = Outbound::new(1024 * 1024);
        put(&out, b"PONG\r\n");
        assert_eq!(out.state.lock().chunks.front().map(BytesMut::capacity), Some(FIRST_CHUNK));
    }
}
