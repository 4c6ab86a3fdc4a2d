//! WebSocket frames (RFC 6455 §5), sans IO: the decoder turns a client's
//! frames into the NATS byte stream they carry, and the encoder frames the
//! server's bytes. The same two serve the client role (a leaf dialling a
//! hub's WebSocket port): [`Decoder::of_server`] reads the server's
//! frames, which must be unmasked (RFC 6455 §5.1: a client closes on a
//! masked one), and the encoder masks what it writes with the key it is
//! given (the caller draws a fresh random one per frame, so the codec stays
//! deterministic). The rules are nats-server's (`wsRead`): client frames
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
pub(crate) const CONTINUATION: u8 = 0;
pub(crate) const TEXT: u8 = 1;
pub(crate) const BINARY: u8 = 2;
pub(crate) const CLOSE: u8 = 8;
pub(crate) const PING: u8 = 9;
pub(crate) const PONG: u8 = 10;

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

/// Longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER: usize = 14;

/// The frame whose payload is being received.
#[derive(Debug)]
struct Current {
    header: Header,
    /// Payload bytes still to come.
    left: usize,
    /// Payload bytes seen, for the mask's phase.
    seen: usize,
    /// A control frame's payload so far (at most 125 bytes).
    control: Vec<u8>,
}

/// What [`Decoder::decode_in_place`] made of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InPlace {
    /// Input bytes used; the rest is for the next call (decoding stops
    /// early after a close, and after a compressed message so that the
    /// data before it is handed on first).
    pub used: usize,
    /// Data bytes now at the start of the input.
    pub data: usize,
}

/// The decoder of one connection's frames (a client's, or in the client
/// role the server's). It keeps a frame cut by a read (up to 14 header
/// bytes, a control payload of up to 125, a compressed message up to the
/// limit), so a transport can decode each read where it landed.
#[derive(Debug)]
pub struct Decoder {
    /// Largest frame payload, and largest message (inflated or not).
    limit: usize,
    /// Whether `permessage-deflate` was agreed.
    deflate: bool,
    /// Whether frames must be masked (a client's, read by the server) or
    /// must not be (the server's, read by a client).
    masked: bool,
    /// A data message is unfinished (its next frames are continuations).
    in_message: bool,
    /// The unfinished message is compressed: its data so far.
    held: Option<Held>,
    /// The start of a header cut by the end of the input.
    head: [u8; MAX_HEADER],
    /// Bytes of `head` filled.
    head_len: usize,
    /// The frame whose payload is being received.
    current: Option<Current>,
}

impl Decoder {
    /// A decoder of a client's (masked) frames, accepting frames and
    /// messages up to `limit` bytes.
    pub fn new(limit: usize, deflate: bool) -> Decoder {
        Decoder {
            limit,
            deflate,
            masked: true,
            in_message: false,
            held: None,
            head: [0; MAX_HEADER],
            head_len: 0,
            current: None,
        }
    }

    /// A decoder of a server's (unmasked, uncompressed) frames, for the
    /// client role, accepting data frames up to `limit` bytes. Data frames
    /// are passed on as they arrive, never held, so the limit bounds no
    /// memory: a nats-server hub frames all it has pending as one frame,
    /// which can be as large as its `max_pending`.
    pub fn of_server(limit: usize) -> Decoder {
        Decoder { masked: false, ..Decoder::new(limit, false) }
    }

    /// Decodes every complete frame at the start of `input`, appending the
    /// data they carry to `data` and their control frames to `controls`.
    /// Returns how many bytes of `input` were used (a partial frame at the
    /// end is left for later). Whole frames only, each copied once: for
    /// callers that keep their own buffer; a transport uses
    /// [`Decoder::decode_in_place`].
    pub fn decode(&mut self, input: &[u8], data: &mut Vec<u8>, controls: &mut Vec<Control>) -> Result<usize, WsError> {
        let mut used = 0;
        while let Some((header, payload_len)) = self.header(&input[used..])? {
            let Some(end) = (used + header.len).checked_add(payload_len).filter(|end| *end <= input.len()) else {
                break;
            };
            let mut frame = input[used..end].to_vec();
            let start = data.len();
            let done = self.decode_in_place(&mut frame, data, controls)?;
            data.splice(start..start, frame[..done.data].iter().copied());
            used = end;
            if matches!(controls.last(), Some(Control::Close(_))) {
                break;
            }
        }
        Ok(used)
    }

    /// Decodes `input` where it lies: the data its frames carry is unmasked
    /// and moved to the start of `input` (a data byte never moves right,
    /// so nothing is copied elsewhere); a frame cut by the end of `input`
    /// is kept for the next call. A compressed message is held until its
    /// last frame, then inflated onto `inflated` (after the data at the
    /// start of `input`); control frames go to `controls`.
    pub fn decode_in_place(
        &mut self,
        input: &mut [u8],
        inflated: &mut Vec<u8>,
        controls: &mut Vec<Control>,
    ) -> Result<InPlace, WsError> {
        let (mut read, mut data) = (0, 0);
        loop {
            let Some(current) = self.current.as_mut() else {
                if read == input.len() {
                    break;
                }
                let take = (MAX_HEADER - self.head_len).min(input.len() - read);
                self.head[self.head_len..self.head_len + take].copy_from_slice(&input[read..read + take]);
                let Some((header, left)) = self.header(&self.head[..self.head_len + take])? else {
                    self.head_len += take;
                    read += take;
                    continue;
                };
                read += header.len - self.head_len;
                self.head_len = 0;
                if header.opcode < CLOSE {
                    if header.rsv1 {
                        self.held = Some(Held::default());
                    }
                    self.in_message = !header.fin;
                }
                self.current = Some(Current { header, left, seen: 0, control: Vec::new() });
                continue;
            };
            let n = current.left.min(input.len() - read);
            let payload = &mut input[read..read + n];
            if let Some(key) = current.header.mask {
                apply_mask(payload, key, current.seen);
            }
            if current.header.opcode >= CLOSE {
                current.control.extend_from_slice(payload);
            } else if let Some(held) = self.held.as_mut() {
                if held.data.len() + n > self.limit {
                    return Err(WsError { code: TOO_BIG, reason: "message over the limit" });
                }
                held.data.extend_from_slice(payload);
            } else {
                input.copy_within(read..read + n, data);
                data += n;
            }
            read += n;
            current.left -= n;
            current.seen += n;
            if current.left > 0 {
                break;
            }
            let Some(Current { header, control, .. }) = self.current.take() else { break };
            match header.opcode {
                CLOSE => {
                    let code = control.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    controls.push(Control::Close(code));
                    break;
                }
                PING => controls.push(Control::Ping(control)),
                PONG => {}
                _ if header.fin && self.held.is_some() => {
                    let held = self.held.take().unwrap_or_default();
                    deflate::inflate(&held.data, self.limit, inflated).map_err(|too_big| match too_big {
                        true => WsError { code: TOO_BIG, reason: "message over the limit" },
                        false => WsError { code: INVALID_DATA, reason: "compressed data does not inflate" },
                    })?;
                    break;
                }
                _ => {}
            }
        }
        Ok(InPlace { used: read, data })
    }

    /// The next frame's header, if all of it is there.
    fn header(&self, input: &[u8]) -> Result<Option<(Header, usize)>, WsError> {
        let [b0, b1, ..] = *input else { return Ok(None) };
        let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
        if b0 & 0x30 != 0 {
            return Err(protocol("RSV2 and RSV3 must be clear"));
        }
        match (self.masked, b1 & 0x80 != 0) {
            (true, false) => return Err(protocol("mask bit missing")),
            (false, true) => return Err(protocol("masked frame from the server")),
            _ => {}
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
        let (mask, len_with_mask) = match self.masked {
            true => match input.get(at..at + 4) {
                Some(m) => (Some([m[0], m[1], m[2], m[3]]), at + 4),
                None => return Ok(None),
            },
            false => (None, at),
        };
        Ok(Some((Header { fin, rsv1, opcode, mask, len: len_with_mask }, len)))
    }
}

#[derive(Debug)]
struct Header {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    /// The masking key (client frames only).
    mask: Option<[u8; 4]>,
    /// Bytes of the header itself.
    len: usize,
}

/// Masks or unmasks (the same XOR) `payload`, which starts `seen` bytes
/// into its frame's payload. Eight bytes at a time: a byte at a time cost
/// more than the rest of a small message's decoding.
pub fn apply_mask(payload: &mut [u8], mask: [u8; 4], seen: usize) {
    let mut key = [0; 8];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(seen + i) % 4];
    }
    let wide = u64::from_ne_bytes(key);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// A frame's header (final) for `opcode` and a payload of `len` bytes,
/// masked with `mask` if given (a client's frame), and how many bytes of
/// the array it fills.
fn header(opcode: u8, compressed: bool, len: usize, mask: Option<[u8; 4]>) -> ([u8; MAX_HEADER], usize) {
    let mut head = [0; MAX_HEADER];
    head[0] = 0x80 | if compressed { 0x40 } else { 0 } | opcode;
    let mut used = match len {
        n if n < 126 => {
            head[1] = n as u8;
            2
        }
        n if n <= usize::from(u16::MAX) => {
            head[1] = 126;
            head[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            4
        }
        n => {
            head[1] = 127;
            head[2..10].copy_from_slice(&(n as u64).to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        head[1] |= 0x80;
        head[used..used + 4].copy_from_slice(&key);
        used += 4;
    }
    (head, used)
}

/// The header of an uncompressed binary frame of `len` bytes, for a
/// transport that writes the payload from its caller's buffer (so
/// unmasked: masking would have to change the caller's bytes).
pub fn binary_header(len: usize) -> ([u8; MAX_HEADER], usize) {
    header(BINARY, false, len, None)
}

/// Appends a final frame with `opcode` and `payload`, masked with `mask`
/// if given.
fn frame(out: &mut Vec<u8>, opcode: u8, compressed: bool, payload: &[u8], mask: Option<[u8; 4]>) {
    frame_of(out, opcode, compressed, [payload], mask);
}

/// Appends a final frame whose payload is `parts` joined, masked with
/// `mask` if given: each byte is copied once.
fn frame_of<'a, I>(out: &mut Vec<u8>, opcode: u8, compressed: bool, parts: I, mask: Option<[u8; 4]>)
where
    I: IntoIterator<Item = &'a [u8]> + Clone,
{
    let (head, len) = header(opcode, compressed, parts.clone().into_iter().map(<[u8]>::len).sum(), mask);
    out.extend_from_slice(&head[..len]);
    let start = out.len();
    for part in parts {
        out.extend_from_slice(part);
    }
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// Appends `data` as one binary frame (the only data frames sent),
/// compressed when `compress` and worth it (64 bytes or more, as
/// nats-server), masked with `mask` if given.
pub fn binary(out: &mut Vec<u8>, data: &[u8], compress: bool, mask: Option<[u8; 4]>) {
    if compress && data.len() >= 64 {
        frame(out, BINARY, true, &deflate::deflate(data), mask);
    } else {
        frame(out, BINARY, false, data, mask);
    }
}

/// Appends `parts` joined as one uncompressed binary frame masked with
/// `mask`: a client's data frame, built from its caller's slices.
pub fn masked_binary<'a, I>(out: &mut Vec<u8>, parts: I, mask: [u8; 4])
where
    I: IntoIterator<Item = &'a [u8]> + Clone,
{
    frame_of(out, BINARY, false, parts, Some(mask));
}

/// Appends a pong answering a ping's `payload`, masked with `mask` if given.
pub fn pong(out: &mut Vec<u8>, payload: &[u8], mask: Option<[u8; 4]>) {
    frame(out, PONG, false, payload, mask);
}

/// Appends a close frame with `code` and `reason`, masked with `mask` if given.
pub fn close(out: &mut Vec<u8>, code: u16, reason: &str, mask: Option<[u8; 4]>) {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(MAX_CONTROL - 2)]);
    frame(out, CLOSE, false, &payload, mask);
}

#[cfg(test)]
pub(crate) mod tests;
