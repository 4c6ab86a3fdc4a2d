//! A connection's bounded outbound queue.
//!
//! Publishers append frames under a short mutex (never held across IO) and
//! wake the connection's writer task, which takes the queued segments and
//! writes them with vectored calls: a burst of small messages leaves in
//! few syscalls. Past `max_pending` the connection is a slow consumer and is
//! closed.
//!
//! Frames are written into the tail of a buffer; the writer seals what is
//! there into a segment (a refcounted slice of that buffer) when it takes
//! it, so bytes are written where they were encoded and never moved. Once
//! every segment of a buffer has been written, the buffer is written into
//! again from its start (`BytesMut` reclaims it in place). A full tail is
//! sealed and a new buffer started rather than grown: a subscriber that
//! lags holds up to half of `max_pending` (32 MiB by default) before its
//! publisher is stalled; as one buffer that was regrown (copied) and freed
//! on every write, and the page faults of the fresh memory cost a fifth of
//! a fan-out run's server CPU.
//!
//! A large payload that arrived in a publisher's refcounted read buffer is
//! not copied at all ([`Outbound::append_spliced`]): the frame's line goes
//! into the tail, the payload is queued as a slice of the publisher's
//! buffer, and the writer sends `[line, payload, CRLF + next line, ...]`
//! in one vectored call. A referenced payload keeps the whole read buffer
//! alive, so each queue keeps count of the read buffers it holds: past
//! twice its pending bytes (plus [`PIN_SLACK`]) it copies instead, and what
//! a subscriber costs stays proportional to what `max_pending` counts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

use super::CloseReason;

/// Size of a queue buffer; a frame larger than this gets a buffer of its own.
pub(super) const CHUNK: usize = 64 * 1024;
/// First buffer of a connection with nothing queued: small, so an idle
/// connection's INFO or PONG costs little.
const FIRST_CHUNK: usize = 1024;
/// Most segments the writer hands to one vectored write: a spliced frame
/// is two (its payload, and the CRLF before the next line), so 128 large
/// messages at a time.
pub const MAX_WRITE_SEGMENTS: usize = 256;
/// Most bytes the writer takes at once: what it holds is no longer counted
/// as pending, so this bounds what a slow consumer holds beyond
/// `max_pending` (64 full buffers, as when segments were whole buffers).
const MAX_TAKE: usize = 64 * CHUNK;
/// Most written buffers a queue keeps to write into again.
const MAX_FREE: usize = 4;
/// Smallest payload queued by reference rather than copied: below it the
/// copy costs less than the extra segment and refcount (16-byte messages
/// keep the plain copy path); above it the copy is what a large message
/// costs the server most of.
pub const SPLICE_MIN: usize = 2048;
/// Read-buffer memory a queue may hold beyond twice its pending bytes: a
/// few of a busy publisher's 128 KiB buffers, however little of each it
/// references.
pub const PIN_SLACK: usize = 1024 * 1024;

/// A publisher's read buffer, which payloads may be queued from by
/// reference.
#[derive(Debug, Clone)]
pub struct ReadBuffer {
    /// What was read.
    pub bytes: Bytes,
    /// The memory it holds (its capacity): what a queue that references
    /// any of it keeps alive.
    pub held: usize,
}

/// A queued segment and the read-buffer memory it is charged with.
#[derive(Debug)]
struct Segment {
    bytes: Bytes,
    /// A referenced payload's buffer's `held`, when the segment is the
    /// first of the queue's run of payloads from that buffer; else 0.
    pins: u32,
}

/// The queue, under the mutex.
#[derive(Debug, Default)]
struct State {
    /// Sealed bytes, oldest first: slices of this queue's buffers and, for
    /// large payloads, of publishers' read buffers.
    segments: VecDeque<Segment>,
    /// The buffer publishers encode into; its bytes follow `segments`.
    tail: BytesMut,
    /// Buffers of this queue the writer has written all of, to be written
    /// into again: a fresh buffer's pages fault in, which cost a fifth of
    /// a fan-out run's server CPU when the queue took fresh ones.
    free: Vec<BytesMut>,
    closed: Option<CloseReason>,
    /// Read-buffer memory the queued segments keep alive (the sum of their
    /// `pins`; u32, with `last_pin` in what would be padding: a queue
    /// that would pin more copies).
    pinned: u32,
    /// Which read buffer the last referenced payload came from (see
    /// [`buffer_id`]): a payload from the same one pins nothing more. Off
    /// by at most one buffer (the one whose charged segment the writer
    /// took while later payloads from it wait), which [`PIN_SLACK`] covers.
    last_pin: u16,
}

impl State {
    /// Moves the tail's bytes, if any, to the end of `segments`; the tail
    /// keeps the rest of its buffer to write into.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            let bytes = self.tail.split().freeze();
            self.segments.push_back(Segment { bytes, pins: 0 });
        }
    }

    /// What queuing a payload from `from` would add to `pinned`, or `None`
    /// when it must be copied: past twice `pending` (with the payload)
    /// plus [`PIN_SLACK`].
    fn pin(&self, from: &ReadBuffer, payload: usize, pending: usize) -> Option<u32> {
        if self.last_pin == buffer_id(from) {
            return Some(0);
        }
        let pinned = self.pinned as usize + from.held;
        let allowed = pending.saturating_add(payload).saturating_mul(2).saturating_add(PIN_SLACK);
        if pinned > allowed {
            return None;
        }
        u32::try_from(pinned).ok()?;
        u32::try_from(from.held).ok()
    }

    /// The tail, with room for `size` more bytes without growing it.
    #[inline(always)]
    fn room(&mut self, size: usize) -> &mut BytesMut {
        if self.tail.capacity() - self.tail.len() < size {
            self.renew(size);
        }
        &mut self.tail
    }

    /// Seals a tail without `size` bytes of room and gives it a buffer that
    /// has: its own buffer again when every segment of it has been written
    /// (the reserve of an empty, unshared `BytesMut` reclaims it), else a
    /// new one.
    #[cold]
    fn renew(&mut self, size: usize) {
        let first = self.tail.capacity() == 0 && self.segments.is_empty();
        self.seal();
        let want = size.max(if first { FIRST_CHUNK } else { CHUNK });
        if !self.tail.try_reclaim(want) {
            if let Some(written) = self.free.pop() {
                self.tail = written;
            }
            self.tail.reserve(want);
        }
    }

    fn drop_queue(&mut self) {
        self.segments = VecDeque::new();
        self.tail = BytesMut::new();
        self.free = Vec::new();
        self.pinned = 0;
        self.last_pin = 0;
    }
}

/// Outbound bytes of one connection and the signals around them.
#[derive(Debug)]
pub struct Outbound {
    state: Mutex<State>,
    /// Sum of the segments' and the tail's lengths: changed only under
    /// the lock, read without it.
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

/// Which read buffer a payload came from: bits 12 to 27 of the address of
/// its bytes (buffers that large start on a page), never 0 (`last_pin`'s
/// none). Two buffers alike in them are at worst charged once too rarely,
/// which [`PIN_SLACK`] covers.
fn buffer_id(buffer: &ReadBuffer) -> u16 {
    ((buffer.bytes.as_ptr() as usize >> 12) as u16).max(1)
}

/// `part` as a slice of `buffer`, when it lies within it (a message's
/// payload in the read buffer it was parsed from); `None` for bytes from
/// elsewhere (a rewritten header block, say).
pub fn slice_within(buffer: &Bytes, part: &[u8]) -> Option<Bytes> {
    let start = (part.as_ptr() as usize).checked_sub(buffer.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= buffer.len()).then(|| buffer.slice(start..end))
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
    /// frame is still queued, at the cost of growing the tail). The caller
    /// wakes the writer (once per read batch) with `wake`. Always inlined:
    /// it is the delivery path's core, and the compiler's heuristics moved it
    /// out of line at the first new branch in [`super::Client::deliver`].
    #[inline(always)]
    pub fn append(&self, size: usize, encode: impl FnOnce(&mut BytesMut)) -> Append {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            return Append::Closed;
        }
        let tail = state.room(size);
        let before = tail.len();
        encode(tail);
        let added = tail.len() - before;
        self.count(state, added)
    }

    /// Appends a frame of three parts: the bytes `head` writes (at most
    /// `size`), `payload` (a slice of `from`), then `trailer`. The payload
    /// is queued by reference, not copied, unless the queue would hold too
    /// much read-buffer memory for its pending bytes (see [`PIN_SLACK`]).
    /// Counted against `max_pending` as if copied.
    pub fn append_spliced(
        &self,
        size: usize,
        head: impl FnOnce(&mut BytesMut),
        from: &ReadBuffer,
        payload: Bytes,
        trailer: &[u8],
    ) -> Append {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            return Append::Closed;
        }
        let Some(pins) = state.pin(from, payload.len(), self.pending.load(Ordering::Relaxed)) else {
            let tail = state.room(size + payload.len() + trailer.len());
            let before = tail.len();
            head(tail);
            tail.extend_from_slice(&payload);
            tail.extend_from_slice(trailer);
            let added = tail.len() - before;
            return self.count(state, added);
        };
        // Room for the trailer too: after the seal it goes into the rest
        // of the same buffer.
        let tail = state.room(size + trailer.len());
        let before = tail.len();
        head(tail);
        let added = tail.len() - before + payload.len() + trailer.len();
        state.seal();
        state.segments.push_back(Segment { bytes: payload, pins });
        state.pinned += pins;
        state.last_pin = buffer_id(from);
        state.tail.extend_from_slice(trailer);
        self.count(state, added)
    }

    /// Counts `added` queued bytes; past `max_pending` the queue is dropped
    /// and the connection closed as a slow consumer.
    #[inline(always)]
    fn count(&self, mut state: MutexGuard<'_, State>, added: usize) -> Append {
        let queued = self.pending.load(Ordering::Relaxed) + added;
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

    /// For the writer: moves queued segments, oldest first, into `batch`
    /// (which must be empty), everything queued up to about [`MAX_TAKE`]
    /// bytes, and returns the close reason if closing.
    pub fn take(&self, batch: &mut VecDeque<Bytes>) -> Option<CloseReason> {
        let mut state = self.state.lock();
        state.seal();
        let mut taken = 0;
        while taken < MAX_TAKE {
            let Some(segment) = state.segments.pop_front() else { break };
            taken += segment.bytes.len();
            state.pinned -= segment.pins;
            batch.push_back(segment.bytes);
        }
        if state.pinned == 0 {
            state.last_pin = 0;
        }
        self.pending.fetch_sub(taken, Ordering::Release);
        state.closed
    }

    /// For the writer: a segment it has written. The last one of one of
    /// this queue's buffers gives the buffer back, to be written into again.
    pub(crate) fn give_back(&self, segment: Bytes) {
        let Ok(mut buffer) = segment.try_into_mut() else { return };
        buffer.clear();
        if buffer.try_reclaim(CHUNK) {
            let mut state = self.state.lock();
            if state.free.len() < MAX_FREE {
                state.free.push(buffer);
            }
        }
    }

    /// For the writer: after a write, lets go of the batch (its buffers are
    /// written into again, or freed) and wakes stalled publishers. A queue
    /// left empty with a small tail (a quiet connection's first buffer, or
    /// the end of a large one) lets go of that too: otherwise every
    /// connection that was sent its INFO and a PONG held 1 KiB until the
    /// writer's idle release, and a burst of connections held that for
    /// each (5.8 KB a connection instead of 4.7 after 5,000 connected).
    pub fn written(&self, batch: &mut VecDeque<Bytes>) {
        batch.clear();
        {
            let mut state = self.state.lock();
            if state.tail.is_empty() && state.tail.capacity() <= FIRST_CHUNK && state.segments.is_empty() {
                state.tail = BytesMut::new();
            }
        }
        self.drained.notify_waiters();
    }

    /// For the writer of a connection that has gone quiet: gives back the
    /// buffers, so an idle connection holds no write buffer at all.
    pub(crate) fn release(&self, batch: &mut VecDeque<Bytes>) {
        *batch = VecDeque::new();
        let mut state = self.state.lock();
        if state.segments.is_empty() {
            state.segments = VecDeque::new();
        }
        if state.tail.is_empty() {
            state.tail = BytesMut::new();
        }
        state.free = Vec::new();
    }

    /// Whether buffers or queue capacity are held (for the writer's idle check).
    pub(crate) fn holds_memory(&self, batch: &VecDeque<Bytes>) -> bool {
        let state = self.state.lock();
        batch.capacity() > 0 || state.tail.capacity() > 0 || state.segments.capacity() > 0 || state.free.capacity() > 0
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
    fn a_written_buffer_is_written_into_again_and_given_back_when_quiet() {
        let out = Outbound::new(64 * 1024 * 1024);
        let mut batch = VecDeque::new();
        // Past the first small buffer, then 200 KB more, written as it
        // goes: each buffer's segments are all written by the time it is
        // full, so it is written into again, and every byte lands in the
        // same one or two buffers. Counted by the places frames start at,
        // not by the addresses' span: where the allocator puts the two
        // buffers is its business.
        put(&out, &[7; 2000]);
        let mut starts = std::collections::HashSet::new();
        for _ in 0..200 {
            put(&out, &[7; 1000]);
            out.take(&mut batch);
            starts.extend(batch.iter().map(|segment| segment.as_ptr() as usize));
            out.written(&mut batch);
        }
        // 200 frames in fresh memory would start at 200 places.
        let places = (2 * CHUNK + FIRST_CHUNK) / 1000 + 1;
        assert!(starts.len() <= places, "200 KB started at {} places", starts.len());
        assert!(out.holds_memory(&batch));
        out.release(&mut batch);
        assert!(!out.holds_memory(&batch), "a quiet connection holds no buffer");
    }

    #[test]
    fn a_buffer_the_writer_gives_back_is_written_into_again() {
        let out = Outbound::new(64 * 1024 * 1024);
        let mut batch = VecDeque::new();
        put(&out, &[1; 2000]);
        put(&out, &[2; CHUNK - 100]);
        out.take(&mut batch);
        let written = batch[1].as_ptr();
        // The writer still holds the full buffer: the next frame that does
        // not fit starts a new one.
        put(&out, &[3; 200]);
        for segment in batch.drain(..) {
            out.give_back(segment);
        }
        assert_eq!(out.state.lock().free.len(), 1, "the written full-size buffer came back");
        put(&out, &[4; CHUNK - 100]);
        out.take(&mut batch);
        assert_eq!(batch.back().map(|s| s.as_ptr()), Some(written), "and is written into again");
        assert!(out.state.lock().free.is_empty());
    }

    #[test]
    fn a_quiet_connection_starts_with_a_small_buffer() {
        let out = Outbound::new(1024 * 1024);
        put(&out, b"PONG\r\n");
        assert_eq!(out.state.lock().tail.capacity(), FIRST_CHUNK);
    }

    #[test]
    fn a_small_first_buffer_is_let_go_of_once_written() {
        let out = Outbound::new(1024 * 1024);
        let mut batch = VecDeque::new();
        put(&out, b"INFO {}\r\n");
        out.take(&mut batch);
        out.written(&mut batch);
        assert_eq!(out.state.lock().tail.capacity(), 0, "no buffer held between an INFO and the next frame");
        put(&out, &[7; 3000]);
        out.take(&mut batch);
        put(&out, b"PONG\r\n");
        out.written(&mut batch);
        assert!(out.state.lock().tail.capacity() > 0, "a queue with bytes in its tail keeps it");
    }

    fn read_buffer(bytes: Vec<u8>) -> ReadBuffer {
        let held = bytes.len();
        ReadBuffer { bytes: Bytes::from(bytes), held }
    }

    fn splice(out: &Outbound, head: &[u8], from: &ReadBuffer, payload: &Bytes) -> Append {
        out.append_spliced(head.len(), |b| b.extend_from_slice(head), from, payload.clone(), b"\r\n")
    }

    #[test]
    fn a_spliced_payload_is_referenced_not_copied_and_counted_in_full() {
        let out = Outbound::new(1 << 20);
        let from = read_buffer(vec![b'p'; 8192]);
        let payload = from.bytes.clone();
        put(&out, b"PONG\r\n");
        assert_eq!(splice(&out, b"MSG a 1 8192\r\n", &from, &payload), Append::Queued);
        assert_eq!(splice(&out, b"MSG a 1 8192\r\n", &from, &payload), Append::Queued);
        put(&out, b"PING\r\n");
        let frame = 14 + 8192 + 2;
        assert_eq!(out.pending(), 6 + 2 * frame + 6);
        assert_eq!(out.state.lock().pinned, 8192, "one buffer, charged once");
        let mut batch = VecDeque::new();
        out.take(&mut batch);
        assert_eq!((out.pending(), out.state.lock().pinned), (0, 0));
        let lens: Vec<usize> = batch.iter().map(Bytes::len).collect();
        assert_eq!(lens, [6 + 14, 8192, 2 + 14, 8192, 2 + 6], "line, payload, CRLF + line, payload, CRLF + PING");
        assert!(batch.iter().filter(|s| s.len() == 8192).all(|s| s.as_ptr() == payload.as_ptr()));
        let bytes: Vec<u8> = batch.iter().flat_map(|s| s.iter().copied()).collect();
        let mut want = b"PONG\r\n".to_vec();
        for _ in 0..2 {
            want.extend_from_slice(b"MSG a 1 8192\r\n");
            want.extend_from_slice(&payload);
            want.extend_from_slice(b"\r\n");
        }
        want.extend_from_slice(b"PING\r\n");
        assert_eq!(bytes, want);
    }

    #[test]
    fn small_parts_of_many_buffers_are_copied_past_the_slack() {
        // Each payload is 4 KiB of its own 256 KiB buffer: referencing them
        // all would hold 64 times the pending bytes.
        let out = Outbound::new(64 * 1024 * 1024);
        let buffers: Vec<ReadBuffer> = (0..40).map(|_| read_buffer(vec![b'p'; 256 * 1024])).collect();
        for from in &buffers {
            assert_eq!(splice(&out, b"M\r\n", from, &from.bytes.slice(..4096)), Append::Queued);
        }
        let state = out.state.lock();
        let referenced =
            state.segments.iter().filter(|s| buffers.iter().any(|b| b.bytes.as_ptr() == s.bytes.as_ptr())).count();
        assert!((1..40).contains(&referenced), "{referenced} referenced");
        assert!(state.pinned as usize <= 2 * out.pending() + PIN_SLACK);
        assert_eq!(state.pinned as usize, referenced * 256 * 1024);
    }

    #[test]
    fn a_slow_consumer_lets_go_of_what_it_referenced() {
        let from = read_buffer(vec![b'p'; 4096]);
        let out = Outbound::new(100_000);
        while splice(&out, b"M\r\n", &from, &from.bytes) == Append::Queued {}
        assert_eq!(out.closed(), Some(CloseReason::SlowConsumerPending));
        assert_eq!(out.state.lock().pinned, 0);
        assert!(from.bytes.is_unique(), "a dropped queue holds no reference");
    }

    #[test]
    fn slice_within_finds_only_parts_of_the_buffer() {
        let buffer = Bytes::from(b"PUB a 5\r\nhello\r\n".to_vec());
        let part = slice_within(&buffer, &buffer[9..14]).map(|b| b.to_vec());
        assert_eq!(part.as_deref(), Some(&b"hello"[..]));
        assert!(slice_within(&buffer, b"hello").is_none(), "elsewhere");
        let whole = buffer.to_vec();
        assert!(slice_within(&buffer, &whole[..]).is_none());
        assert!(slice_within(&buffer.slice(0..9), &buffer[9..14]).is_none(), "just past the end");
    }

    mod model {
        use proptest::prelude::*;

        use super::*;

        /// One step: a copied frame, a spliced one, or the writer taking.
        #[derive(Debug, Clone)]
        enum Step {
            Copy(usize),
            Splice(usize, usize),
            Take,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (0..3 * CHUNK).prop_map(Step::Copy),
                (0..200usize, 0..20_000usize).prop_map(|(h, p)| Step::Splice(h, p)),
                Just(Step::Take),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            /// Whatever the mix of copied and spliced frames and however
            /// the writer takes them, the bytes that come out are those
            /// appended, in order, and `pending` is what has not been taken.
            #[test]
            fn bytes_out_are_bytes_in(steps in prop::collection::vec(step(), 1..60)) {
                let out = Outbound::new(usize::MAX / 2);
                let buffer = read_buffer((0..40_000u32).map(|i| (i % 251) as u8).collect());
                let (mut want, mut got) = (Vec::new(), Vec::new());
                let mut batch = VecDeque::new();
                for (n, step) in steps.into_iter().enumerate() {
                    let mark = n as u8;
                    match step {
                        Step::Copy(len) => {
                            let frame = vec![mark; len];
                            prop_assert_eq!(put(&out, &frame), Append::Queued);
                            want.extend_from_slice(&frame);
                        }
                        Step::Splice(head, len) => {
                            let head = vec![mark; head];
                            let payload = buffer.bytes.slice(n..n + len);
                            prop_assert_eq!(splice(&out, &head, &buffer, &payload), Append::Queued);
                            want.extend_from_slice(&head);
                            want.extend_from_slice(&payload);
                            want.extend_from_slice(b"\r\n");
                        }
                        Step::Take => {
                            out.take(&mut batch);
                            got.extend(batch.iter().flat_map(|s| s.iter().copied()));
                            out.written(&mut batch);
                        }
                    }
                    prop_assert_eq!(out.pending(), want.len() - got.len());
                    let pinned = out.state.lock().pinned;
                    prop_assert!(pinned == 0 || pinned as usize == buffer.held, "{} pinned", pinned);
                }
                got.extend(out.drain());
                prop_assert_eq!(out.pending(), 0);
                prop_assert!(got == want, "{} bytes out, {} in", got.len(), want.len());
            }
        }
    }
}
