//! Read buffers lent to subscribers' queues.
//!
//! A read batch that may carry large payloads is handed to the protocol as
//! refcounted [`Bytes`], so a subscriber's queue can reference a payload
//! rather than copy it (see [`crate::broker::Outbound::append_spliced`]).
//! Queues let go of it at different times, when their writers have
//! written what they referenced; the last one to let go gives the buffer
//! back to its connection's spares, and the connection reads into it
//! again. So a publisher of large messages cycles through a few warm
//! buffers instead of allocating, and faulting in, fresh memory for every
//! batch (which cost more than the copies it saved).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::broker::ReadBuffer;

/// Most buffers a connection keeps for reuse; more come back only when its
/// subscribers' writers let go of many at once, and those are freed.
const MAX_SPARES: usize = 32;

/// A connection's read buffers that came back from the queues.
#[derive(Debug, Default)]
pub(super) struct Spares {
    buffers: Mutex<Vec<BytesMut>>,
}

impl Spares {
    /// Lends `buffer` (what was read) out as a [`ReadBuffer`]: it comes
    /// back here when the last reference to it is dropped.
    pub(super) fn lend(self: &Arc<Self>, buffer: BytesMut) -> ReadBuffer {
        let held = buffer.capacity();
        ReadBuffer { bytes: Bytes::from_owner(Lent { buffer, home: self.clone() }), held }
    }

    /// An empty buffer of at least `capacity` bytes: one that came back, or
    /// a new one (rounded up, so that it serves later batches, whose needs
    /// vary, as well).
    pub(super) fn take(&self, capacity: usize) -> BytesMut {
        let mut buffers = self.buffers.lock();
        while let Some(buffer) = buffers.pop() {
            if buffer.capacity() >= capacity {
                return buffer;
            }
        }
        BytesMut::with_capacity(capacity.next_power_of_two())
    }
}

/// A buffer out on loan: the owner of the [`Bytes`] it was lent as.
struct Lent {
    buffer: BytesMut,
    home: Arc<Spares>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let mut spares = self.home.buffers.lock();
        if spares.len() < MAX_SPARES {
            spares.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_slice_is_dropped() {
        let spares = Arc::new(Spares::default());
        let mut buffer = spares.take(1000);
        let capacity = buffer.capacity();
        buffer.extend_from_slice(b"PUB a 5\r\nhello\r\n");
        let at = buffer.as_ptr();
        let lent = spares.lend(buffer);
        assert_eq!(lent.held, capacity);
        let payload = lent.bytes.slice(9..14);
        drop(lent);
        assert!(spares.buffers.lock().is_empty(), "still referenced");
        assert_eq!(&payload[..], b"hello");
        drop(payload);
        let again = spares.take(1000);
        assert_eq!((again.as_ptr(), again.len(), again.capacity()), (at, 0, capacity), "the same buffer, empty");
    }

    #[test]
    fn spares_are_bounded_and_too_small_ones_are_let_go() {
        let spares = Arc::new(Spares::default());
        let lent: Vec<ReadBuffer> = (0..2 * MAX_SPARES).map(|_| spares.lend(BytesMut::with_capacity(100))).collect();
        drop(lent);
        assert_eq!(spares.buffers.lock().len(), MAX_SPARES);
        assert!(spares.take(1000).capacity() >= 1000);
        assert!(spares.buffers.lock().is_empty(), "none was large enough");
    }
}
