//! The transport without sockets: a scripted stream gives the client's
//! bytes in chosen pieces and takes the server's a few bytes at a time.

use std::collections::VecDeque;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::proto::websocket::deflate;
use crate::proto::websocket::frame::tests::client;
use crate::proto::websocket::frame::{BINARY, CLOSE, CONTINUATION, PING, PONG, PROTOCOL_ERROR, TEXT};

/// Reads come in the given pieces, then the end; writes take at most
/// `per_write` bytes a call.
struct Script {
    reads: VecDeque<Vec<u8>>,
    written: Vec<u8>,
    per_write: usize,
}

impl Script {
    fn new(input: &[u8], cuts: &[usize], per_write: usize) -> Script {
        let mut reads = VecDeque::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([&input.len()]) {
            if cut > at {
                reads.push_back(input[at..cut].to_vec());
                at = cut;
            }
        }
        Script { reads, written: Vec::new(), per_write }
    }
}

impl AsyncRead for Script {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(mut piece) = self.reads.pop_front() {
            let n = piece.len().min(buf.remaining());
            buf.put_slice(&piece[..n]);
            if n < piece.len() {
                self.reads.push_front(piece.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Script {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.per_write);
        self.written.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The server's frames in `bytes`: first byte and payload of each.
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while let [b0, b1, rest @ ..] = bytes {
        assert_eq!(b1 & 0x80, 0, "server frames are unmasked");
        let (len, rest) = match b1 & 0x7f {
            126 => (usize::from(u16::from_be_bytes([rest[0], rest[1]])), &rest[2..]),
            127 => (usize::try_from(u64::from_be_bytes(rest[..8].try_into().unwrap())).unwrap(), &rest[8..]),
            n => (usize::from(n), rest),
        };
        frames.push((*b0, rest[..len].to_vec()));
        bytes = &rest[len..];
    }
    frames
}

/// Everything the reader gets, read through a small buffer so the spill
/// and the raw rest are used too.
async fn read_all<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WsStream<S>, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0; chunk];
    loop {
        let n = ws.read(&mut buf).await.unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Data, an interleaved ping and pong, a continuation, a compressed
/// message, a text frame, then a close and a frame after it.
fn conversation() -> (Vec<u8>, Vec<u8>) {
    let text = b"PUB subject 11\r\nhello world\r\n".repeat(20);
    let mut input = client(BINARY, false, false, b"PUB a 2\r\n");
    input.extend(client(PING, true, false, b"hi"));
    input.extend(client(PONG, true, false, b""));
    input.extend(client(CONTINUATION, true, false, b"ok\r\n"));
    input.extend(client(BINARY, true, true, &deflate::deflate(&text)));
    input.extend(client(TEXT, true, false, b"PING\r\n"));
    input.extend(client(CLOSE, true, false, &1001u16.to_be_bytes()));
    input.extend(client(BINARY, true, false, b"never read"));
    let mut want = b"PUB a 2\r\nok\r\n".to_vec();
    want.extend_from_slice(&text);
    want.extend_from_slice(b"PING\r\n");
    (input, want)
}

#[tokio::test]
async fn frames_cut_at_every_byte_read_the_same_and_controls_are_answered() {
    let (input, want) = conversation();
    for cut in 0..=input.len() {
        for chunk in [3, 4096] {
            let mut ws = WsStream::new(Script::new(&input, &[cut], 5), 4096, true);
            assert_eq!(read_all(&mut ws, chunk).await, want, "cut at {cut}, read {chunk} at a time");
            let answers = server_frames(&ws.inner.written);
            assert_eq!(answers, vec![(0x8a, b"hi".to_vec()), (0x88, 1001u16.to_be_bytes().to_vec())], "cut {cut}");
            // The close was echoed: nothing more may be sent.
            assert!(ws.write_all(b"MSG").await.is_err());
        }
    }
    // Byte by byte.
    let every: Vec<usize> = (0..input.len()).collect();
    let mut ws = WsStream::new(Script::new(&input, &every, 1), 4096, true);
    assert_eq!(read_all(&mut ws, 1).await, want);
}

#[tokio::test]
async fn a_framing_error_is_answered_with_its_status_and_ends_the_stream() {
    let mut input = client(BINARY, true, false, b"PING\r\n");
    input.extend(client(BINARY, false, false, b"a"));
    input.extend(client(BINARY, true, false, b"b"));
    let mut ws = WsStream::new(Script::new(&input, &[], 64), 1024, false);
    let got = read_all(&mut ws, 4096).await;
    assert!(b"PING\r\n".starts_with(&got), "{got:?}");
    ws.shutdown().await.unwrap();
    let frames = server_frames(&ws.inner.written);
    assert_eq!(frames.len(), 1, "one close, not a second at shutdown");
    assert_eq!((frames[0].0, u16::from_be_bytes([frames[0].1[0], frames[0].1[1]])), (0x88, PROTOCOL_ERROR));
}

#[tokio::test]
async fn writes_become_binary_frames_and_shutdown_closes() {
    for (compress, per_write) in [(false, 1), (false, 7), (false, usize::MAX), (true, 3), (true, usize::MAX)] {
        let mut ws = WsStream::new(Script::new(&[], &[], per_write), 1024, compress);
        let big: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        ws.write_all(b"INFO {}\r\n").await.unwrap();
        ws.write_all(&big).await.unwrap();
        ws.shutdown().await.unwrap();
        let frames = server_frames(&ws.inner.written);
        let (last, data) = frames.split_last().unwrap();
        assert_eq!(last, &(0x88, NORMAL.to_be_bytes().to_vec()), "close last");
        let mut got = Vec::new();
        for (b0, payload) in data {
            assert!(payload.len() <= MAX_FRAME);
            match b0 {
                0x82 => got.extend_from_slice(payload),
                0xc2 => deflate::inflate(payload, MAX_FRAME, &mut got).unwrap(),
                other => panic!("frame {other:#x}"),
            }
        }
        assert_eq!(&got[..9], b"INFO {}\r\n");
        assert!(got[9..] == big[..], "compress {compress}, per_write {per_write}");
        assert_eq!(data.iter().any(|(b0, _)| *b0 == 0xc2), compress);
    }
}

#[tokio::test]
async fn a_pong_waits_for_the_frame_being_written() {
    let ping = client(PING, true, false, b"p");
    let mut ws = WsStream::new(Script::new(&ping, &[], 4), 1024, false);
    let payload = [b'x'; 100];
    // The header and a few payload bytes go out; the frame is unfinished.
    let n = ws.write(&payload).await.unwrap();
    assert!(n < payload.len());
    // The ping is read meanwhile: its pong must not cut into the frame.
    assert_eq!(read_all(&mut ws, 64).await, b"");
    ws.write_all(&payload[n..]).await.unwrap();
    ws.flush().await.unwrap();
    let frames = server_frames(&ws.inner.written);
    assert_eq!(frames, vec![(0x82, payload.to_vec()), (0x8a, b"p".to_vec())]);
}

#[tokio::test]
async fn a_close_read_mid_frame_follows_that_frame_and_ends_writing() {
    let close = client(CLOSE, true, false, &1001u16.to_be_bytes());
    let mut ws = WsStream::new(Script::new(&close, &[], 4), 1024, false);
    let payload = [b'x'; 100];
    let n = ws.write(&payload).await.unwrap();
    assert_eq!(read_all(&mut ws, 64).await, b"");
    ws.write_all(&payload[n..]).await.unwrap();
    assert!(ws.write_all(b"more").await.is_err(), "nothing after the close");
    ws.shutdown().await.unwrap();
    let frames = server_frames(&ws.inner.written);
    assert_eq!(frames, vec![(0x82, payload.to_vec()), (0x88, 1001u16.to_be_bytes().to_vec())]);
}

#[tokio::test]
async fn an_idle_stream_holds_no_buffers() {
    let text = b"PUB subject 11\r\nhello world\r\n".repeat(20);
    let mut input = client(BINARY, true, true, &deflate::deflate(&text));
    input.extend(client(PING, true, false, b"hi"));
    input.extend(client(BINARY, true, false, b"PING\r\n"));
    let mut ws = WsStream::new(Script::new(&input, &[], usize::MAX), 4096, true);
    let mut got = vec![0; 16];
    let mut read = Vec::new();
    while read.len() < text.len() + 6 {
        let n = ws.read(&mut got).await.unwrap();
        read.extend_from_slice(&got[..n]);
    }
    ws.write_all(&text).await.unwrap();
    ws.flush().await.unwrap();
    assert_eq!(
        (ws.spill.capacity(), ws.raw.capacity(), ws.queued.capacity()),
        (0, 0, 0),
        "buffers kept between messages"
    );
}

/// A client's frames in `bytes`: first byte, masking key and unmasked
/// payload of each.
fn client_frames(mut bytes: &[u8]) -> Vec<(u8, [u8; 4], Vec<u8>)> {
    let mut frames = Vec::new();
    while let [b0, b1, rest @ ..] = bytes {
        assert_eq!(b1 & 0x80, 0x80, "client frames are masked");
        let (len, rest) = match b1 & 0x7f {
            126 => (usize::from(u16::from_be_bytes([rest[0], rest[1]])), &rest[2..]),
            127 => (usize::try_from(u64::from_be_bytes(rest[..8].try_into().unwrap())).unwrap(), &rest[8..]),
            n => (usize::from(n), rest),
        };
        let key = [rest[0], rest[1], rest[2], rest[3]];
        let mut payload = rest[4..4 + len].to_vec();
        frame::apply_mask(&mut payload, key, 0);
        frames.push((*b0, key, payload));
        bytes = &rest[4 + len..];
    }
    frames
}

/// A hub's side of a conversation: data cut across frames, a ping, a
/// 70 kB frame, then a close.
fn hub_conversation() -> (Vec<u8>, Vec<u8>) {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mut input = Vec::new();
    frame::binary(&mut input, b"INFO {}\r\n", false, None);
    frame::pong(&mut input, b"", None);
    input.extend([0x89, 2, b'h', b'i']); // a ping
    frame::binary(&mut input, &big, false, None);
    frame::close(&mut input, NORMAL, "", None);
    frame::binary(&mut input, b"never read", false, None);
    let mut want = b"INFO {}\r\n".to_vec();
    want.extend_from_slice(&big);
    (input, want)
}

#[tokio::test]
async fn the_client_reads_the_same_at_every_cut_with_what_the_upgrade_read_ahead() {
    let (input, want) = hub_conversation();
    let cuts = (0..input.len()).filter(|c| *c < 64 || *c % 211 == 0 || input.len() - c < 64);
    for (ahead, cut) in cuts.flat_map(|c| [(0, c), (c.min(20), c)]) {
        for chunk in [5, 65536] {
            let (read_ahead, rest) = input.split_at(ahead);
            let script = Script::new(rest, &[cut.saturating_sub(ahead)], 7);
            let mut ws = WsStream::client(script, read_ahead.to_vec(), true);
            assert_eq!(read_all(&mut ws, chunk).await, want, "read ahead {ahead}, cut {cut}, chunk {chunk}");
            let answers: Vec<(u8, Vec<u8>)> =
                client_frames(&ws.inner.written).into_iter().map(|(b0, _, p)| (b0, p)).collect();
            assert_eq!(answers, vec![(0x8a, b"hi".to_vec()), (0x88, NORMAL.to_be_bytes().to_vec())]);
        }
    }
}

#[tokio::test]
async fn a_clients_writes_are_masked_with_a_fresh_key_per_frame() {
    for per_write in [1, 9, usize::MAX] {
        let mut ws = WsStream::client(Script::new(&[], &[], per_write), Vec::new(), true);
        let big: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        ws.write_all(b"CONNECT {}\r\n").await.unwrap();
        ws.write_all(&big).await.unwrap();
        ws.shutdown().await.unwrap();
        // What the hub's side reads back: the data and the close.
        let (mut data, mut controls) = (Vec::new(), Vec::new());
        let used = Decoder::new(usize::MAX, false).decode(&ws.inner.written, &mut data, &mut controls).unwrap();
        assert_eq!(used, ws.inner.written.len());
        assert_eq!((&data[..12], &data[12..] == big.as_slice()), (&b"CONNECT {}\r\n"[..], true));
        assert_eq!(controls, vec![Control::Close(Some(NORMAL))]);
        let frames = client_frames(&ws.inner.written);
        assert!(frames.iter().all(|(_, _, p)| p.len() <= MAX_FRAME));
        let mut keys: Vec<[u8; 4]> = frames.iter().map(|(_, k, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        assert!(keys.len() >= frames.len() - 1, "a fresh key per frame: {keys:?}");
        assert_eq!(ws.queued.capacity(), 0, "nothing kept once written");
    }
    // Unmasked when the hub agreed: frames straight from the writer's buffer.
    let mut ws = WsStream::client(Script::new(&[], &[], usize::MAX), Vec::new(), false);
    ws.write_all(b"PING\r\n").await.unwrap();
    assert_eq!(server_frames(&ws.inner.written), vec![(0x82, b"PING\r\n".to_vec())]);
}

#[tokio::test]
async fn a_masked_frame_from_the_hub_ends_the_client_stream_with_1002() {
    let mut input = Vec::new();
    frame::binary(&mut input, b"INFO {}\r\n", false, None);
    input.extend(client(BINARY, true, false, b"+OK\r\n"));
    // Read apart: what a read with a framing error carried is dropped with it.
    let mut ws = WsStream::client(Script::new(&input, &[11], usize::MAX), Vec::new(), true);
    assert_eq!(read_all(&mut ws, 4096).await, b"INFO {}\r\n");
    ws.shutdown().await.unwrap();
    let frames = client_frames(&ws.inner.written);
    assert_eq!(frames.len(), 1, "one close");
    assert_eq!((frames[0].0, &frames[0].2[..2]), (0x88, &PROTOCOL_ERROR.to_be_bytes()[..]));
}
