//! A minimal RFC 6455 client for the WebSocket tests: what stock clients
//! cannot be made to do (forged headers, bad frames, cookies).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden::proto::websocket::{deflate, handshake};

use super::within;

/// The key RFC 6455 uses in its example.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A WebSocket connection read frame by frame.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Sends `request` (a whole request head) and returns the response head.
    pub async fn request(addr: SocketAddr, request: &str) -> (RawWs, String) {
        let stream = within(TcpStream::connect(addr)).await.unwrap();
        RawWs::from_stream(stream, request).await
    }

    /// The same on a connected stream.
    pub async fn from_stream(mut stream: TcpStream, request: &str) -> (RawWs, String) {
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = RawWs { stream, buf: Vec::new() };
        let head = within(async {
            loop {
                if let Some(end) = handshake::head_end(&raw.buf) {
                    let head = String::from_utf8_lossy(&raw.buf[..end]).into_owned();
                    raw.buf.drain(..end);
                    return head;
                }
                let mut chunk = vec![0u8; 4096];
                let n = raw.stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed during the handshake");
                raw.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await;
        (raw, head)
    }

    pub async fn open(addr: SocketAddr, extra: &str) -> (RawWs, String) {
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        );
        let (raw, head) = RawWs::request(addr, &request).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        (raw, head)
    }

    /// Sends one masked client frame.
    pub async fn frame(&mut self, first: u8, payload: &[u8]) {
        // The length as RFC 6455 §5.2 writes it (7 bits, or 126/127 and
        // 16/64 bits), with the mask bit; then the key and the masked bytes.
        let len = payload.len() as u64;
        let (code, extended): (u8, Vec<u8>) = match len {
            0..=125 => (len as u8, Vec::new()),
            126..=65535 => (126, (len as u16).to_be_bytes().to_vec()),
            _ => (127, len.to_be_bytes().to_vec()),
        };
        let key = [0x5a, 0xa5, 0x0f, 0xf0];
        let mut out = [vec![first, 0x80 | code], extended, key.to_vec()].concat();
        out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next server frame: (first byte, payload).
    pub async fn next(&mut self) -> (u8, Vec<u8>) {
        within(async {
            loop {
                if self.buf.len() >= 2 {
                    let (len, at) = match self.buf[1] & 0x7f {
                        126 if self.buf.len() >= 4 => (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4),
                        127 if self.buf.len() >= 10 => {
                            (u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize, 10)
                        }
                        126 | 127 => (usize::MAX, 0),
                        n => (n as usize, 2),
                    };
                    if len != usize::MAX && self.buf.len() >= at + len {
                        let first = self.buf[0];
                        let payload = self.buf[at..at + len].to_vec();
                        self.buf.drain(..at + len);
                        return (first, payload);
                    }
                }
                let mut chunk = vec![0u8; 65536];
                let n = self.stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed while waiting for a frame");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
    }

    /// The NATS text of the next data frames until one contains `want`.
    pub async fn until(&mut self, want: &str) -> String {
        let mut text = String::new();
        while !text.contains(want) {
            let (first, payload) = self.next().await;
            let payload = if first & 0x40 != 0 {
                let mut out = Vec::new();
                deflate::inflate(&payload, 1 << 20, &mut out).unwrap();
                out
            } else {
                payload
            };
            assert_eq!(first & 0x0f, 2, "binary frames only: {first:#x}");
            text.push_str(&String::from_utf8_lossy(&payload));
        }
        text
    }
}
