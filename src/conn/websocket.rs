//! WebSocket as a transport: [`WsStream`] carries a byte stream in
//! WebSocket frames over any stream (TCP or TLS), so a connection speaks
//! its protocol over WebSocket on the same driver as over TCP.
//!
//! Reading decodes frames where the bytes landed, in the reader's own
//! buffer (unmasked in place, headers squeezed out): no copy but a
//! compressed message's inflation. Writing sends each chunk as one binary
//! frame: a header of up to 10 bytes, then the payload straight from the
//! writer's buffer in the same vectored write (a compressed frame is built
//! whole). Pings are answered, a close is echoed and ends the stream, a
//! framing error is answered with its close status and ends it too; the
//! stream's shutdown sends its own close. Between messages the stream
//! holds no buffer: what it keeps is a fixed struct (the decoder's partial
//! header, a frame header being written, two wakers).
//!
//! The same stream serves both roles. As the server ([`WsStream::new`]) it
//! reads masked frames and writes unmasked ones. As a client
//! ([`WsStream::client`], a leaf on a hub's WebSocket port) it reads
//! unmasked frames (a masked one is a protocol error) and masks every frame
//! it writes with a fresh random key, as RFC 6455 §5.3 asks, unless the
//! server agreed to go without (nats-server's `Nats-No-Masking`). A masked
//! frame cannot be written from the writer's buffer, whose bytes it must
//! change, so it is built whole, like a compressed one, and freed once out.
//!
//! The reader and the writer share the socket (the driver splits this
//! stream, not the socket), so the reader's pongs and closes are queued
//! behind the frame the writer is in the middle of, and whichever side
//! next writes sends them. A reader that had to write wakes the writer
//! afterwards, since a socket remembers only the last task waiting to
//! write; and a peer that pings without reading its pongs stops being read
//! once [`MAX_QUEUED`] bytes of answers wait.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::proto::websocket::frame::{self, Control, Decoder, MAX_HEADER, NORMAL};

/// Largest data frame sent: what warden has always sent, and far below
/// what clients refuse (aiohttp, under nats-py, refuses 4 MiB messages).
const MAX_FRAME: usize = 64 * 1024;
/// Control frames and compressed frames queued before the reader waits
/// for them to be written.
const MAX_QUEUED: usize = 4 * 1024;
/// Largest number of the writer's slices passed on in one write.
const MAX_SLICES: usize = 64;

/// A byte stream carried in WebSocket frames over `S` (after the upgrade).
#[derive(Debug)]
pub struct WsStream<S> {
    inner: S,
    decoder: Decoder,
    /// Whether data frames are compressed (`permessage-deflate` agreed).
    compress: bool,
    /// Whether every frame written is masked (the client role, unless the
    /// server agreed to unmasked frames).
    mask_writes: bool,
    /// Decoded data the reader's buffer had no room for (an inflated
    /// message); handed out before anything else is read.
    spill: Vec<u8>,
    /// Bytes read but not yet decoded (what followed a compressed message
    /// in the same read).
    raw: Vec<u8>,
    /// The stream has ended for the reader (the peer closed, a framing
    /// error, or the socket's end).
    read_done: bool,
    /// The header of the data frame being written, and how much of it is out.
    head: [u8; MAX_HEADER],
    head_len: usize,
    head_at: usize,
    /// Payload bytes the frame being written still needs from the writer.
    frame_left: usize,
    /// Whole frames of our own (pongs, closes, compressed data) to send
    /// once no data frame is half written, and how much of them is out.
    queued: Vec<u8>,
    queued_at: usize,
    /// A close frame is queued or sent: no data frame may follow it.
    closing: bool,
    /// The writer waits for the socket; the reader wakes it after writing.
    writer: Option<Waker>,
    /// The reader waits for its answers to be written.
    reader: Option<Waker>,
}

impl<S> WsStream<S> {
    /// The server's stream over `inner`, after the upgrade: client frames
    /// up to `limit` bytes (each message too, once inflated), data
    /// compressed both ways if `compress`.
    pub fn new(inner: S, limit: usize, compress: bool) -> WsStream<S> {
        WsStream::with(inner, Decoder::new(limit, compress), compress, false, Vec::new())
    }

    /// A client's stream over `inner`, after the upgrade: `read_ahead` is
    /// what came after the server's answer in the same read (its first
    /// frames); writes are masked unless `masked` is false (the server
    /// agreed). Uncompressed: warden does not offer `permessage-deflate`.
    pub fn client(inner: S, read_ahead: Vec<u8>, masked: bool) -> WsStream<S> {
        WsStream::with(inner, Decoder::of_server(usize::MAX), false, masked, read_ahead)
    }

    fn with(inner: S, decoder: Decoder, compress: bool, mask_writes: bool, raw: Vec<u8>) -> WsStream<S> {
        WsStream {
            inner,
            decoder,
            compress,
            mask_writes,
            spill: Vec::new(),
            raw,
            read_done: false,
            head: [0; MAX_HEADER],
            head_len: 0,
            head_at: 0,
            frame_left: 0,
            queued: Vec::new(),
            queued_at: 0,
            closing: false,
            writer: None,
            reader: None,
        }
    }

    /// Queues a close frame (no data frame follows it).
    fn queue_close(&mut self, code: u16, reason: &str) {
        if !self.closing {
            let mask = self.mask();
            frame::close(&mut self.queued, code, reason, mask);
            self.closing = true;
        }
    }

    /// The key for the next frame written: fresh and unpredictable (from
    /// the thread's CSPRNG) in the client role, so that no one who chooses
    /// the payload can choose the bytes on the wire (RFC 6455 §10.3).
    fn mask(&self) -> Option<[u8; 4]> {
        self.mask_writes.then(rand::random)
    }

    /// Bytes of our own waiting to be written.
    fn queued_len(&self) -> usize {
        self.queued.len() - self.queued_at
    }
}

impl<S: AsyncWrite + Unpin> WsStream<S> {
    /// Writes the data frame's header, then (once no data frame is half
    /// written) the queued frames. Ready when both are out.
    fn poll_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.head_at < self.head_len {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.head[self.head_at..self.head_len]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.head_at += n;
        }
        if self.frame_left > 0 {
            return Poll::Ready(Ok(()));
        }
        while self.queued_at < self.queued.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.queued[self.queued_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.queued_at += n;
        }
        // Nothing kept between messages.
        self.queued = Vec::new();
        self.queued_at = 0;
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(()))
    }

    /// The writer's bytes: one binary frame per call, up to [`MAX_FRAME`].
    fn write_frames(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        if self.closing && self.frame_left == 0 {
            // A frame begun before the close is finished; no new one starts.
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let total = bufs.iter().map(|b| b.len()).sum::<usize>();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        if self.frame_left == 0 {
            // A new frame: everything before it goes first.
            ready!(self.poll_queued(cx))?;
            if self.compress || self.mask_writes {
                let mut parts = [IoSlice::new(&[]); MAX_SLICES];
                let (count, len) = gather(bufs, MAX_FRAME, &mut parts);
                let parts = parts[..count].iter().map(|p| &**p);
                let mask = self.mask();
                match mask {
                    Some(key) if !self.compress => frame::masked_binary(&mut self.queued, parts, key),
                    _ => {
                        // Deflate wants the message in one piece.
                        let mut data = Vec::with_capacity(len);
                        parts.for_each(|p| data.extend_from_slice(p));
                        frame::binary(&mut self.queued, &data, true, mask);
                    }
                }
                // Taken whole; the socket gets it now or at the next write or flush.
                let _ = self.poll_queued(cx)?;
                return Poll::Ready(Ok(len));
            }
            let len = total.min(MAX_FRAME);
            (self.head, self.head_len) = frame::binary_header(len);
            self.head_at = 0;
            self.frame_left = len;
        }
        loop {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES + 1];
            slices[0] = IoSlice::new(&self.head[self.head_at..self.head_len]);
            let count = 1 + gather(bufs, self.frame_left, &mut slices[1..]).0;
            let header = self.head_len - self.head_at;
            let start = usize::from(header == 0);
            let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, &slices[start..count]))?;
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            self.head_at += n.min(header);
            let payload = n.saturating_sub(header);
            if payload > 0 {
                self.frame_left -= payload;
                if self.frame_left == 0 {
                    // What the reader queued meanwhile follows this frame.
                    let _ = self.poll_queued(cx)?;
                }
                return Poll::Ready(Ok(payload));
            }
        }
    }

    /// Sends what the reader queued, if no data frame is half written, and
    /// wakes the writer, whose wait on the socket this may have replaced.
    /// Pending only when more than [`MAX_QUEUED`] bytes still wait.
    fn poll_answers(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.queued_len() == 0 {
            return Poll::Ready(Ok(()));
        }
        let sent = match self.frame_left {
            0 => self.poll_queued(cx),
            _ => Poll::Pending,
        };
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
        match sent {
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            _ if self.queued_len() > MAX_QUEUED => {
                self.reader = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Decodes the bytes at `buf`'s filled end from `from` on, leaving only
    /// their data there; answers control frames. Returns whether the reader
    /// has something (data, or the stream's end).
    fn decode(&mut self, buf: &mut ReadBuf<'_>, from: usize) -> bool {
        let mut controls = Vec::new();
        let filled = buf.filled().len();
        let decoded = self.decoder.decode_in_place(&mut buf.filled_mut()[from..], &mut self.spill, &mut controls);
        let done = match decoded {
            Ok(done) => done,
            Err(err) => {
                // What this read carried is dropped with the connection.
                buf.set_filled(from);
                self.spill = Vec::new();
                self.queue_close(err.code, err.reason);
                self.read_done = true;
                return true;
            }
        };
        let rest = from + done.used..filled;
        if !rest.is_empty() && !self.read_done {
            let mut raw = buf.filled()[rest].to_vec();
            raw.append(&mut self.raw);
            self.raw = raw;
        }
        buf.set_filled(from + done.data);
        for control in controls {
            match control {
                Control::Ping(payload) if !self.closing => {
                    let mask = self.mask();
                    frame::pong(&mut self.queued, &payload, mask);
                }
                Control::Ping(_) => {}
                Control::Close(code) => {
                    // Echo the client's status (RFC 6455 §5.5.1); nothing after it is read.
                    self.queue_close(code.unwrap_or(NORMAL), "");
                    self.read_done = true;
                    self.raw = Vec::new();
                }
            }
        }
        self.hand_out_spill(buf);
        buf.filled().len() > from || self.read_done
    }

    /// Moves what fits of the spilled data into `buf`.
    fn hand_out_spill(&mut self, buf: &mut ReadBuf<'_>) {
        if self.spill.is_empty() {
            return;
        }
        let n = self.spill.len().min(buf.remaining());
        buf.put_slice(&self.spill[..n]);
        self.spill.drain(..n);
        if self.spill.is_empty() {
            self.spill = Vec::new();
        }
    }
}

/// Fills `out` with the first `room` bytes of `bufs` (as far as `out`
/// reaches); returns how many slices and bytes it took.
fn gather<'a>(bufs: &'a [IoSlice<'_>], room: usize, out: &mut [IoSlice<'a>]) -> (usize, usize) {
    let (mut count, mut taken) = (0, 0);
    for (slot, buf) in out.iter_mut().zip(bufs.iter().filter(|b| !b.is_empty())) {
        if taken == room {
            break;
        }
        let take = buf.len().min(room - taken);
        *slot = IoSlice::new(&buf[..take]);
        count += 1;
        taken += take;
    }
    (count, taken)
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_answers(cx))?;
            if !this.spill.is_empty() {
                this.hand_out_spill(buf);
                return Poll::Ready(Ok(()));
            }
            if this.read_done || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let from = buf.filled().len();
            if !this.raw.is_empty() {
                let n = this.raw.len().min(buf.remaining());
                buf.put_slice(&this.raw[..n]);
                this.raw.drain(..n);
                if this.raw.is_empty() {
                    this.raw = Vec::new();
                }
            } else {
                ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                if buf.filled().len() == from {
                    this.read_done = true;
                    return Poll::Ready(Ok(()));
                }
            }
            if this.decode(buf, from) {
                // Answers go out before the reader sees the data (or the end).
                let _ = this.poll_answers(cx)?;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = this.write_frames(cx, bufs);
        if written.is_pending() {
            this.writer = Some(cx.waker().clone());
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = match this.poll_queued(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        };
        if flushed.is_pending() {
            this.writer = Some(cx.waker().clone());
        }
        flushed
    }

    /// Sends our close (unless one was sent, or a data frame was
    /// cut short: then the socket just closes), then shuts the socket.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let shut = if this.frame_left == 0 {
            this.queue_close(NORMAL, "");
            match this.poll_queued(cx) {
                Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
                other => other,
            }
        } else {
            Pin::new(&mut this.inner).poll_shutdown(cx)
        };
        if shut.is_pending() {
            this.writer = Some(cx.waker().clone());
        }
        shut
    }
}

#[cfg(test)]
mod tests;
