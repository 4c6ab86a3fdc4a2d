//! A connection's bounded outbound buffer.
//!
//! Publishers append frames under a short mutex (never held across IO) and
//! wake the connection's writer task, which swaps the whole buffer out and
//! writes it in one call: a burst of small messages leaves in few syscalls.
//! Past `max_pending` the connection is a slow consumer and is closed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::CloseReason;

/// A writer buffer larger than this is not kept for reuse after a write.
const KEEP_CAPACITY: usize = 64 * 1024;
/// A writer buffer this small is not kept when the connection goes quiet.
const SMALL_CAPACITY: usize = 4 * 1024;

#[derive(Debug, Default)]
struct State {
    buf: BytesMut,
    closed: Option<CloseReason>,
}

/// Outbound bytes of one connection and the signals around them.
#[derive(Debug)]
pub struct Outbound {
    state: Mutex<State>,
    /// Mirror of the buffered length, readable without the lock.
    pending: AtomicUsize,
    /// Limit on `pending`.
    max_pending: usize,
    /// Set by any delivery; the keep-alive timer clears it.
    activity: AtomicBool,
    /// Wakes the writer task.
    pub(super) writer_wake: Notify,
    /// Wakes publishers stalled on this connection after the writer drained it.
    pub(super) drained: Notify,
    /// Wakes the reader task when the connection must close.
    pub(crate) closing: Notify,
    /// Interrupts a write in progress when the backlog is to be dropped.
    pub(super) abort: Notify,
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
    /// An empty outbound buffer with the given limit.
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

    /// Appends bytes produced by `encode`. The caller wakes the writer (once
    /// per read batch) with `wake`.
    pub fn append(&self, encode: impl FnOnce(&mut BytesMut)) -> Append {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            return Append::Closed;
        }
        encode(&mut state.buf);
        let len = state.buf.len();
        if len > self.max_pending {
            state.buf = BytesMut::new();
            state.closed = Some(CloseReason::SlowConsumerPending);
            self.pending.store(0, Ordering::Release);
            drop(state);
            self.abort.notify_one();
            self.wake_all();
            return Append::SlowConsumer;
        }
        self.pending.store(len, Ordering::Release);
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
            state.buf = BytesMut::new();
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

    /// For the writer: swaps the queued bytes into `spare` (which must be
    /// empty) and returns the close reason if closing.
    pub(super) fn take(&self, spare: &mut BytesMut) -> Option<CloseReason> {
        let mut state = self.state.lock();
        std::mem::swap(&mut state.buf, spare);
        self.pending.store(0, Ordering::Release);
        state.closed
    }

    /// For the writer: after a write, recycle the buffer and wake stalled publishers.
    pub(super) fn written(&self, buf: &mut BytesMut) {
        buf.clear();
        // Keep a buffer for a busy connection; give back a huge one, and a
        // small one when nothing more is queued (an idle connection then
        // holds no write buffer at all).
        if buf.capacity() > KEEP_CAPACITY || (buf.capacity() <= SMALL_CAPACITY && self.pending() == 0) {
            *buf = BytesMut::new();
        }
        self.drained.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_max_pending_is_a_slow_consumer_and_drops_the_buffer() {
        let out = Outbound::new(10);
        assert_eq!(out.append(|b| b.extend_from_slice(b"12345")), Append::Queued);
        assert_eq!(out.pending(), 5);
        assert_eq!(out.append(|b| b.extend_from_slice(b"123456")), Append::SlowConsumer);
        assert_eq!(out.pending(), 0);
        assert_eq!(out.closed(), Some(CloseReason::SlowConsumerPending));
        assert_eq!(out.append(|b| b.extend_from_slice(b"1")), Append::Closed);
    }

    #[test]
    fn close_keeps_pending_bytes_when_the_reason_flushes() {
        let out = Outbound::new(100);
        out.append(|b| b.extend_from_slice(b"-ERR 'x'\r\n"));
        assert!(out.close(CloseReason::ProtocolViolation));
        assert!(!out.close(CloseReason::ClientClosed), "first reason wins");
        let mut spare = BytesMut::new();
        assert_eq!(out.take(&mut spare), Some(CloseReason::ProtocolViolation));
        assert_eq!(&spare[..], b"-ERR 'x'\r\n");
    }
}
