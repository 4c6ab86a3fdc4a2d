//! The writer task of a connection (client or route): drains the outbound
//! queue into the socket with vectored writes, within the write deadline.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::time::timeout;

use crate::broker::{Client, CloseReason, MAX_WRITE_SEGMENTS};

/// A writer idle this long gives its buffers back.
const RELEASE_AFTER_IDLE: Duration = Duration::from_millis(500);
/// Bound on flushing a closing connection's last bytes (such as its -ERR).
pub(super) const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Writes every segment of `batch`, up to [`MAX_WRITE_SEGMENTS`] per
/// syscall, then flushes. Segments are handed to `written` as soon as they
/// are written: a payload referenced in a publisher's read buffer lets the
/// publisher read into it again without waiting for the rest of the batch.
async fn write_segments<W: AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &mut VecDeque<Bytes>,
    mut written: impl FnMut(Bytes),
) -> std::io::Result<()> {
    loop {
        while batch.front().is_some_and(Bytes::is_empty) {
            batch.pop_front();
        }
        if batch.is_empty() {
            break;
        }
        // The slices are built inside each poll, so the writer task's future
        // does not carry an array of them (4 KiB per connection) while idle.
        let segments = &*batch;
        let mut n = std::future::poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_SEGMENTS];
            let mut count = 0;
            for (slot, segment) in slices.iter_mut().zip(segments.iter().filter(|s| !s.is_empty())) {
                *slot = IoSlice::new(segment);
                count += 1;
            }
            Pin::new(&mut *writer).poll_write_vectored(cx, slices.get(..count).unwrap_or_default())
        })
        .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        // Step past what was written.
        while let Some(segment) = batch.front_mut() {
            if n < segment.len() {
                segment.advance(n);
                break;
            }
            n -= segment.len();
            written(batch.pop_front().unwrap_or_default());
        }
    }
    // A TLS stream reports plaintext as written once its session took it,
    // even when the socket was full; flushing sends the records it holds.
    writer.flush().await
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
                written = timeout(deadline, write_segments(&mut writer, &mut batch, |segment| out.give_back(segment))) => written,
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
    /// call (the limits in turn, round and round) and holds them until flushed.
    struct Holding {
        per_call: Vec<usize>,
        calls: usize,
        held: Vec<u8>,
        sent: Vec<u8>,
    }

    impl AsyncWrite for Holding {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut left = self.per_call[self.calls % self.per_call.len()];
            self.calls += 1;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(left);
                self.held.extend_from_slice(&buf[..take]);
                (n, left) = (n + take, left - take);
            }
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
    async fn write_segments_sends_every_byte_in_order_and_flushes() {
        let batch: VecDeque<Bytes> =
            [&b"first"[..], b"", &[7; 3000], b"x", &[9; 70_000]].into_iter().map(Bytes::copy_from_slice).collect();
        let want: Vec<u8> = batch.iter().flat_map(|c| c.iter().copied()).collect();
        for per_call in [1, 999, 4096, usize::MAX] {
            let mut writer = Holding { per_call: vec![per_call], calls: 0, held: Vec::new(), sent: Vec::new() };
            let mut taken = batch.clone();
            write_segments(&mut writer, &mut taken, drop).await.unwrap();
            assert!(taken.is_empty(), "written segments are let go of");
            assert!(writer.held.is_empty(), "bytes left in the stream's buffer (per_call {per_call})");
            assert_eq!(writer.sent, want, "per_call {per_call}");
        }
    }

    #[tokio::test]
    async fn more_segments_than_one_call_takes_go_out_in_several() {
        // A spliced frame is three segments; 100 of them need several calls.
        let payload = Bytes::from(vec![b'p'; 5000]);
        let batch: VecDeque<Bytes> = (0..100)
            .flat_map(|i| [Bytes::from(format!("MSG a {i} 5000\r\n")), payload.clone(), Bytes::from_static(b"\r\n")])
            .collect();
        let want: Vec<u8> = batch.iter().flat_map(|c| c.iter().copied()).collect();
        let mut writer = Holding { per_call: vec![usize::MAX], calls: 0, held: Vec::new(), sent: Vec::new() };
        write_segments(&mut writer, &mut batch.clone(), drop).await.unwrap();
        assert_eq!(writer.sent, want);
        assert_eq!(writer.calls, 300usize.div_ceil(MAX_WRITE_SEGMENTS));
    }

    mod model {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// For any segments and any sequence of partial writes, what
            /// reaches the socket is the segments' concatenation.
            #[test]
            fn any_split_of_writes_sends_the_concatenation(
                sizes in prop::collection::vec(0..10_000usize, 0..200),
                per_call in prop::collection::vec(1..20_000usize, 1..20),
            ) {
                let batch: VecDeque<Bytes> = sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| Bytes::from(vec![i as u8; n]))
                    .collect();
                let want: Vec<u8> = batch.iter().flat_map(|c| c.iter().copied()).collect();
                let mut writer = Holding { per_call, calls: 0, held: Vec::new(), sent: Vec::new() };
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                runtime.block_on(write_segments(&mut writer, &mut batch.clone(), drop)).unwrap();
                prop_assert!(writer.sent == want);
            }
        }
    }
}
