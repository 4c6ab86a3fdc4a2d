//! The PROXY protocol header (HAProxy's, versions 1 and 2) a TCP load
//! balancer sends before the client's bytes, naming the client's address.
//!
//! Sans IO: [`Decoder::feed`] takes whatever bytes arrived, in any split,
//! and answers "more", the header and how many of the bytes it used (the
//! rest are the client's), or an error. What it keeps is fixed: the
//! longest v1 line (107 bytes) or v2's fixed part and the largest address
//! block it reads (16 + 36 bytes); everything else of a v2 header (TLVs,
//! a Unix address) is counted past, never stored, and v2's 16-bit length
//! bounds how much there is to count. Whoever drives it bounds the time.
//!
//! Who may send a header at all is the listener's business (only its
//! `trusted_proxies`); this module only reads one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// v2's 12-byte signature.
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// v1's start.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest v1 line, CRLF included (the specification's bound).
pub const V1_MAX: usize = 107;
/// v2's fixed part: signature, version and command, family, length.
const V2_FIXED: usize = 16;
/// The v2 address block read for IPv6 (source, destination, two ports);
/// IPv4's is 12. The rest of the block is skipped.
const V2_KEPT: usize = 36;
/// The shortest header: `PROXY UNKNOWN\r\n`.
const SHORTEST: usize = 15;
/// The most bytes one header can take: v2's fixed part and the largest
/// length its 16-bit field can say.
pub const MAX_HEADER: usize = V2_FIXED + u16::MAX as usize;

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A proxied connection from `source`.
    Proxied {
        /// The client's address and port.
        source: SocketAddr,
    },
    /// The proxy's own connection (v2 `LOCAL`, v1 `UNKNOWN`, v2 `UNSPEC`):
    /// a health check; the socket's address stands.
    Local,
}

/// Why a header was refused; the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// The first bytes are neither v1's `PROXY ` nor v2's signature.
    NotProxy,
    /// A v1 line longer than [`V1_MAX`] without its CRLF.
    TooLong,
    /// Bytes that break the format; the text says which part.
    Malformed(&'static str),
    /// A well-formed header for something other than TCP over IP (UDP,
    /// Unix sockets, an unknown family).
    Unsupported(&'static str),
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::NotProxy => f.write_str("no PROXY protocol header"),
            ProxyError::TooLong => f.write_str("PROXY v1 line too long"),
            ProxyError::Malformed(what) => write!(f, "malformed PROXY header: {what}"),
            ProxyError::Unsupported(what) => write!(f, "unsupported PROXY header: {what}"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Where [`Decoder::feed`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The header is not complete: feed more.
    More,
    /// The header, and how many bytes of the last input it took (the rest
    /// are the client's first bytes).
    Done {
        /// What the header says.
        header: Header,
        /// Bytes of the last `feed` that belonged to the header.
        used: usize,
    },
}

/// Which part of a header is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The first bytes, until they show the version.
    Start,
    /// A v1 line, until its LF.
    Line,
    /// v2's address block: `left` bytes to go, the first of them kept.
    Block { left: usize },
    /// A header already decoded or refused: nothing more is read.
    Finished,
}

/// Reads one header from bytes fed in any split. Fixed size; allocates
/// nothing.
#[derive(Debug, Clone)]
pub struct Decoder {
    part: Part,
    /// The bytes kept: the v1 line, or v2's fixed part and address.
    kept: [u8; V1_MAX],
    /// How many of `kept` hold bytes.
    len: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder expecting the first byte of a connection.
    pub fn new() -> Decoder {
        Decoder { part: Part::Start, kept: [0; V1_MAX], len: 0 }
    }

    /// How many bytes the decoder can take without reading past the
    /// header: a reader that asks the socket for at most this many never
    /// takes the client's first bytes, so the connection goes on as if the
    /// header had never been there (no bytes to hand back, TLS included).
    /// 0 once finished.
    pub fn wants(&self) -> usize {
        match self.part {
            // The shortest header is v1's `PROXY UNKNOWN\r\n` (15 bytes).
            Part::Start => SHORTEST.saturating_sub(self.len).max(1),
            // The line can end within two bytes only after a CR.
            Part::Line if self.len > 0 && self.kept[self.len - 1] == b'\r' => 1,
            Part::Line => 2,
            Part::Block { left } => left.max(1),
            Part::Finished => 0,
        }
    }

    /// Reads `input`, the next bytes of the connection. After `Done` or an
    /// error the decoder is finished and refuses more input.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, ProxyError> {
        let result = self.step(input);
        if !matches!(result, Ok(Progress::More)) {
            self.part = Part::Finished;
        }
        result
    }

    fn step(&mut self, input: &[u8]) -> Result<Progress, ProxyError> {
        let mut used = 0;
        while used < input.len() || matches!(self.part, Part::Block { left: 0 }) {
            match self.part {
                Part::Start => {
                    self.keep(input[used])?;
                    used += 1;
                    self.part = self.started()?;
                }
                Part::Line => {
                    let byte = input[used];
                    self.keep(byte)?;
                    used += 1;
                    if byte == b'\n' {
                        return Ok(Progress::Done { header: self.line()?, used });
                    }
                    if self.len == V1_MAX {
                        return Err(ProxyError::TooLong);
                    }
                }
                Part::Block { left: 0 } => return Ok(Progress::Done { header: self.block()?, used }),
                Part::Block { left } => {
                    let take = left.min(input.len() - used);
                    let room = (V2_FIXED + V2_KEPT).saturating_sub(self.len).min(take);
                    for &byte in &input[used..used + room] {
                        self.keep(byte)?;
                    }
                    used += take;
                    self.part = Part::Block { left: left - take };
                }
                Part::Finished => return Err(ProxyError::Malformed("input after the header")),
            }
        }
        Ok(Progress::More)
    }

    fn keep(&mut self, byte: u8) -> Result<(), ProxyError> {
        let slot = self.kept.get_mut(self.len).ok_or(ProxyError::Malformed("header too long"))?;
        *slot = byte;
        self.len += 1;
        Ok(())
    }

    /// What the bytes so far show: still the start, a v1 line, or (with
    /// v2's fixed part complete) its address block.
    fn started(&self) -> Result<Part, ProxyError> {
        let seen = &self.kept[..self.len];
        let v1 = V1_PREFIX.starts_with(seen);
        let v2 = V2_SIG.starts_with(seen) || seen.starts_with(V2_SIG);
        if v1 && seen.len() >= V1_PREFIX.len() {
            return Ok(Part::Line);
        }
        if !v1 && !v2 {
            return Err(ProxyError::NotProxy);
        }
        if seen.len() < V2_FIXED {
            return Ok(Part::Start);
        }
        if seen[12] >> 4 != 2 {
            return Err(ProxyError::Malformed("version is not 2"));
        }
        let left = usize::from(u16::from_be_bytes([seen[14], seen[15]]));
        Ok(Part::Block { left })
    }

    /// The v1 line in `kept`, `PROXY ` to LF.
    fn line(&self) -> Result<Header, ProxyError> {
        let line = &self.kept[V1_PREFIX.len()..self.len];
        let line = line.strip_suffix(b"\r\n").ok_or(ProxyError::Malformed("v1 line without CRLF"))?;
        let line = std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("v1 line is not text"))?;
        if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
            return Ok(Header::Local);
        }
        let mut fields = line.split(' ');
        let mut next = || fields.next().ok_or(ProxyError::Malformed("v1 line has too few fields"));
        let (proto, src, dst, sport, dport) = (next()?, next()?, next()?, next()?, next()?);
        if fields.next().is_some() {
            return Err(ProxyError::Malformed("v1 line has too many fields"));
        }
        let ip: IpAddr = match proto {
            "TCP4" => IpAddr::V4(src.parse().map_err(|_| ProxyError::Malformed("v1 TCP4 source address"))?),
            "TCP6" => IpAddr::V6(src.parse().map_err(|_| ProxyError::Malformed("v1 TCP6 source address"))?),
            _ => return Err(ProxyError::Malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN")),
        };
        let dst_ok = match proto {
            "TCP4" => dst.parse::<Ipv4Addr>().is_ok(),
            _ => dst.parse::<Ipv6Addr>().is_ok(),
        };
        if !dst_ok {
            return Err(ProxyError::Malformed("v1 destination address"));
        }
        let source = SocketAddr::new(ip, port(sport)?);
        port(dport)?;
        Ok(Header::Proxied { source })
    }

    /// v2's fixed part and the kept start of its address block.
    fn block(&self) -> Result<Header, ProxyError> {
        let (command, family) = (self.kept[12] & 0x0f, self.kept[13]);
        let addr = &self.kept[V2_FIXED..self.len];
        match command {
            0 => return Ok(Header::Local),
            1 => {}
            _ => return Err(ProxyError::Malformed("v2 command is neither LOCAL nor PROXY")),
        }
        let short = ProxyError::Malformed("v2 address block too short for its family");
        let source = match family {
            0x00 => return Ok(Header::Local),
            0x11 => {
                let a: [u8; 12] = addr.get(..12).and_then(|a| a.try_into().ok()).ok_or(short)?;
                let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
                SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([a[8], a[9]]))
            }
            0x21 => {
                let a: [u8; 36] = addr.get(..36).and_then(|a| a.try_into().ok()).ok_or(short)?;
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&a[..16]);
                SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), u16::from_be_bytes([a[32], a[33]]))
            }
            0x12 | 0x22 => return Err(ProxyError::Unsupported("UDP")),
            0x31 | 0x32 => return Err(ProxyError::Unsupported("Unix socket")),
            _ => return Err(ProxyError::Unsupported("unknown address family")),
        };
        Ok(Header::Proxied { source })
    }
}

/// A v1 port: decimal, 0 to 65535, no sign.
fn port(text: &str) -> Result<u16, ProxyError> {
    let bad = ProxyError::Malformed("v1 port");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    text.parse().map_err(|_| bad)
}

#[cfg(test)]
mod tests;
