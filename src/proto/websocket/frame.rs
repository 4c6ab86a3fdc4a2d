//! WebSocket frames (RFC 6455 §5), sans IO: the decoder turns a client's
//! frames into the NATS byte stream they carry, and the encoder frames the
//! server's bytes. The rules are nats-server's (`wsRead`): client frames
//! are masked; RSV2 and RSV3 are clear; RSV1 (compressed) only on the first
//! frame of a data message and only if compression was agreed; control
//! frames are final, uncompressed and at most 125 bytes; a data frame that
//! is not a continuation cannot start while a message is unfinished. Any
//! violation is an error with the close status to send (1002, or 1009 for
//! a frame or message over the limit, 1007 for compressed data that does
//! not inflate).
//!
//! Message boundaries mean nothing to NATS, so uncompressed data is passed
//! on frame by frame; a compressed message is held (bounded) until its
//! last frame, then inflated with its size bounded before allocation.

use super::deflate;

/// Largest control frame payload.
const MAX_CONTROL: usize = 125;

/// Opcodes.
const CONTINUATION: u8 = 0;
const TEXT: u8 = 1;
const BINARY: u8 = 2;
const CLOSE: u8 = 8;
const PING: u8 = 9;
const PONG: u8 = 10;

/// Close statuses.
pub const NORMAL: u16 = 1000;
/// A protocol error.
pub const PROTOCOL_ERROR: u16 = 1002;
/// Data that does not decode (compressed data that does not inflate).
pub const INVALID_DATA: u16 = 1007;
/// A frame or message over the limit.
pub const TOO_BIG: u16 = 1009;

/// Why the connection is closed, and the status to tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsError {
    /// The close status.
    pub code: u16,
    /// What was wrong (sent as the close reason).
    pub reason: &'static str,
}

const fn protocol(reason: &'static str) -> WsError {
    WsError { code: PROTOCOL_ERROR, reason }
}

/// A control frame the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Answer with a pong carrying this payload.
    Ping(Vec<u8>),
    /// The client closes, with this status (none if it sent none): answer
    /// with a close and end the connection.
    Close(Option<u16>),
}

/// A compressed message being received.
#[derive(Debug, Default)]
struct Held {
    data: Vec<u8>,
}

/// The decoder of one connection's client frames.
#[derive(Debug)]
pub struct Decoder {
    /// Largest frame payload, and largest message (inflated or not).
    limit: usize,
    /// Whether `permessage-deflate` was agreed.
    deflate: bool,
    /// A data message is unfinished (its next frames are continuations).
    in_message: bool,
    /// The unfinished message is compressed: its data so far.
    held: Option<Held>,
}

impl Decoder {
    /// A decoder accepting frames and messages up to `limit` bytes.
    pub fn new(limit: usize, deflate: bool) -> Decoder {
        Decoder { limit, deflate, in_message: false, held: None }
    }

    /// Decodes every complete frame at the start of `input`, appending the
    /// data they carry to `data` and their control frames to `controls`.
    /// Returns how many bytes of `input` were used (a partial frame at the
    /// end is left for later).
    pub fn decode(&mut self, input: &[u8], data: &mut Vec<u8>, controls: &mut Vec<Control>) -> Result<usize, WsError> {
        let mut used = 0;
        while let Some((header, payload_len)) = self.header(&input[used..])? {
            let start = used + header.len;
            let Some(end) = start.checked_add(payload_len).filter(|end| *end <= input.len()) else { break };
            let mut payload = input[start..end].to_vec();
            unmask(&mut payload, header.mask);
            used = end;
            match header.opcode {
                CLOSE => {
                    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    controls.push(Control::Close(code));
                    return Ok(used);
                }
                PING => controls.push(Control::Ping(payload)),
                PONG => {}
                _ => self.data(&header, payload, data)?,
            }
        }
        Ok(used)
    }

    /// The next frame's header, if all of it is there.
    fn header(&self, input: &[u8]) -> Result<Option<(Header, usize)>, WsError> {
        let [b0, b1, ..] = *input else { return Ok(None) };
        let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
        if b0 & 0x30 != 0 {
            return Err(protocol("RSV2 and RSV3 must be clear"));
        }
        if b1 & 0x80 == 0 {
            return Err(protocol("mask bit missing"));
        }
        let control = opcode >= CLOSE;
        match opcode {
            CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG => {}
            _ => return Err(protocol("unknown opcode")),
        }
        if control && (!fin || rsv1) {
            return Err(protocol("control frame must be final and uncompressed"));
        }
        if rsv1 && (!self.deflate || opcode == CONTINUATION) {
            return Err(protocol("RSV1 set but compression not agreed or on a continuation"));
        }
        if opcode == CONTINUATION && !self.in_message {
            return Err(protocol("continuation frame without a message"));
        }
        if (opcode == TEXT || opcode == BINARY) && self.in_message {
            return Err(protocol("new message before the previous one ended"));
        }
        let (len, at) = match b1 & 0x7f {
            126 => match input.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match input.get(2..10) {
                Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or_default()), 10),
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        if control && len > MAX_CONTROL as u64 {
            return Err(protocol("control frame longer than 125 bytes"));
        }
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= self.limit)
            .ok_or(WsError { code: TOO_BIG, reason: "frame over the limit" })?;
        let Some(mask) = input.get(at..at + 4) else { return Ok(None) };
        let header = Header { fin, rsv1, opcode, mask: [mask[0], mask[1], mask[2], mask[3]], len: at + 4 };
        Ok(Some((header, len)))
    }

    /// A data frame's payload.
    fn data(&mut self, header: &Header, payload: Vec<u8>, data: &mut Vec<u8>) -> Result<(), WsError> {
        if header.rsv1 {
            self.held = Some(Held::default());
        }
        self.in_message = !header.fin;
        let Some(held) = self.held.as_mut() else {
            data.extend_from_slice(&payload);
            return Ok(());
        };
        if held.data.len() + payload.len() > self.limit {
            return Err(WsError { code: TOO_BIG, reason: "message over the limit" });
        }
        held.data.extend_from_slice(&payload);
        if header.fin {
            let held = self.held.take().unwrap_or_default();
            deflate::inflate(&held.data, self.limit, data).map_err(|too_big| match too_big {
                true => WsError { code: TOO_BIG, reason: "message over the limit" },
                false => WsError { code: INVALID_DATA, reason: "compressed data does not inflate" },
            })?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Header {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Bytes of the header itself.
    len: usize,
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// Appends a server frame (final, unmasked) with `opcode` and `payload`.
fn frame(out: &mut Vec<u8>, opcode: u8, compressed: bool, payload: &[u8]) {
    out.push(0x80 | if compressed { 0x40 } else { 0 } | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Appends `data` as one binary frame (the only data frames the server
/// sends), compressed when `compress` and worth it (64 bytes or more, as
/// nats-server).
pub fn binary(out: &mut Vec<u8>, data: &[u8], compress: bool) {
    if compress && data.len() >= 64 {
        frame(out, BINARY, true, &deflate::deflate(data));
    } else {
        frame(out, BINARY, false, data);
    }
}

/// Appends a pong answering a ping's `payload`.
pub fn pong(out: &mut Vec<u8>, payload: &[u8]) {
    frame(out, PONG, false, payload);
}

/// Appends a close frame with `code` and `reason`.
pub fn close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(MAX_CONTROL - 2)]);
    frame(out, CLOSE, false, &payload);
}

#[cfg(test)]
mod tests;
