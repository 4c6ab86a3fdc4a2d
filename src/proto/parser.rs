//! Sans-IO parser for the client side of the NATS protocol.
//!
//! The parser works over the connection's read buffer. It finds a complete
//! control line, decodes it, and for PUB/HPUB checks the announced size
//! against max_payload *before* any payload is buffered; the returned op
//! borrows subject, reply and payload from the buffer, so nothing is copied.
//! When an op is incomplete it reports how many bytes are needed and
//! remembers how far it has already scanned, so a line or payload that
//! arrives one byte at a time is not rescanned from the start. The result is
//! the same however the input is split across reads (tested below for every
//! split point).

use memchr::memchr;

use super::error::ProtoError;

/// Limits the parser enforces.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Largest accepted payload (headers included), in bytes.
    pub max_payload: usize,
    /// Longest accepted control-line argument text, in bytes.
    pub max_control_line: usize,
}

/// A decoded client operation, borrowing from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    /// `CONNECT {json}`.
    Connect(&'a [u8]),
    /// `INFO {json}` from a client: ignored.
    Info,
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK` from a client: ignored.
    Ok,
    /// `-ERR ...` from a client: nats-server closes the connection.
    Err,
    /// `PUB` or `HPUB`.
    Pub(Publish<'a>),
    /// `SUB subject [queue] sid`.
    Sub {
        /// Subject or pattern, not yet validated.
        subject: &'a [u8],
        /// Queue group, if any.
        queue: Option<&'a [u8]>,
        /// Client-chosen subscription id.
        sid: &'a [u8],
    },
    /// `UNSUB sid [max]`.
    Unsub {
        /// Subscription id.
        sid: &'a [u8],
        /// Auto-unsubscribe after this many messages in total.
        max: Option<u64>,
    },
}

/// A message published by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish<'a> {
    /// Subject, not yet validated.
    pub subject: &'a [u8],
    /// Reply subject, if any.
    pub reply: Option<&'a [u8]>,
    /// Length of the header block at the start of `message` (HPUB only).
    pub header_len: Option<usize>,
    /// Header block followed by payload, without the trailing CRLF.
    pub message: &'a [u8],
}

/// Outcome of one parse step.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// An op and the number of buffer bytes it used.
    Op(Op<'a>, usize),
    /// More input is needed; at least this many bytes in total.
    NeedMore(usize),
}

/// Parser state kept between reads: only how far the current line was scanned.
#[derive(Debug, Default)]
pub struct Parser {
    scanned: usize,
}

/// Bytes a control line may have beyond `max_control_line`: the verb and
/// separators, which nats-server does not count.
const LINE_SLACK: usize = 16;

/// Most arguments any verb takes (HPUB with reply: 4), plus one to detect excess.
const MAX_ARGS: usize = 5;

impl Parser {
    /// A fresh parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the op at the start of `buf`.
    ///
    /// After `Step::Op(_, n)` the caller drops `n` bytes from the buffer
    /// before calling again; after `NeedMore` it appends input and calls
    /// again with the same (grown) buffer.
    pub fn parse<'a>(&mut self, buf: &'a [u8], limits: &ParseLimits) -> Result<Step<'a>, ProtoError> {
        // Verb (up to 7 bytes) and separators are not counted by nats-server.
        let max_line = limits.max_control_line.saturating_add(LINE_SLACK);
        let Some(nl) = memchr(b'\n', &buf[self.scanned.min(buf.len())..]).map(|i| i + self.scanned) else {
            if buf.len() > max_line {
                return Err(ProtoError::MaxControlLine);
            }
            self.scanned = buf.len();
            return Ok(Step::NeedMore(buf.len() + 1));
        };
        // The bound an unterminated line gets must hold for a complete one
        // too, or a long CONNECT or PING line would be refused or accepted
        // depending on how it was split across reads (found by fuzzing).
        if nl > max_line {
            return Err(ProtoError::MaxControlLine);
        }
        let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
        let line = &buf[..line_end];
        let after_line = nl + 1;
        let (verb, rest) = split_verb(line);
        let op = match classify(verb)? {
            Verb::Ping => Op::Ping,
            Verb::Pong => Op::Pong,
            Verb::Ok => Op::Ok,
            Verb::Err => Op::Err,
            Verb::Info => Op::Info,
            Verb::Connect => Op::Connect(trim(rest)),
            Verb::Pub | Verb::Hpub | Verb::Sub | Verb::Unsub if !starts_with_space(rest) => {
                return Err(ProtoError::UnknownOperation)
            }
            verb => {
                let args_text = trim(rest);
                if args_text.len() > limits.max_control_line {
                    return Err(ProtoError::MaxControlLine);
                }
                let mut args: [&[u8]; MAX_ARGS] = [&[]; MAX_ARGS];
                let n = split_args(args_text, &mut args);
                match verb {
                    Verb::Sub => parse_sub(&args[..n])?,
                    Verb::Unsub => parse_unsub(&args[..n])?,
                    _ => {
                        let (publish, total) = parse_pub_header(verb == Verb::Hpub, &args[..n], limits)?;
                        let need = after_line + total + 2;
                        if buf.len() < need {
                            self.scanned = nl;
                            return Ok(Step::NeedMore(need));
                        }
                        if &buf[after_line + total..need] != b"\r\n" {
                            return Err(ProtoError::UnknownOperation);
                        }
                        self.scanned = 0;
                        let message = &buf[after_line..after_line + total];
                        if let Some(h) = publish.header_len {
                            if !is_header_block(&message[..h]) {
                                return Err(ProtoError::InvalidHeaders);
                            }
                        }
                        return Ok(Step::Op(Op::Pub(Publish { message, ..publish }), need));
                    }
                }
            }
        };
        self.scanned = 0;
        Ok(Step::Op(op, after_line))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Connect,
    Info,
    Ping,
    Pong,
    Ok,
    Err,
    Pub,
    Hpub,
    Sub,
    Unsub,
}

/// Splits the line into the verb (letters and `+`/`-`) and the rest.
fn split_verb(line: &[u8]) -> (&[u8], &[u8]) {
    let end = line.iter().position(|b| !(b.is_ascii_alphabetic() || *b == b'+' || *b == b'-')).unwrap_or(line.len());
    line.split_at(end)
}

fn classify(verb: &[u8]) -> Result<Verb, ProtoError> {
    let upper = |s: &[u8]| verb.eq_ignore_ascii_case(s);
    // nats-server stops reading PING/PONG/+OK after their last letter, so
    // `PINGPONG` is a PING; match on prefixes for those three.
    let prefix = |s: &[u8]| verb.len() >= s.len() && verb[..s.len()].eq_ignore_ascii_case(s);
    Ok(if prefix(b"PING") {
        Verb::Ping
    } else if prefix(b"PONG") {
        Verb::Pong
    } else if prefix(b"+OK") {
        Verb::Ok
    } else if upper(b"-ERR") {
        Verb::Err
    } else if upper(b"PUB") {
        Verb::Pub
    } else if upper(b"HPUB") {
        Verb::Hpub
    } else if upper(b"SUB") {
        Verb::Sub
    } else if upper(b"UNSUB") {
        Verb::Unsub
    } else if upper(b"CONNECT") {
        Verb::Connect
    } else if upper(b"INFO") {
        Verb::Info
    } else {
        return Err(ProtoError::UnknownOperation);
    })
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn starts_with_space(s: &[u8]) -> bool {
    s.first().is_some_and(|b| is_space(*b))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_space(*b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_space(*b)).map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// Splits on runs of spaces/tabs; returns how many arguments were found,
/// saturating at `MAX_ARGS` (callers treat that as too many).
fn split_args<'a>(s: &'a [u8], out: &mut [&'a [u8]; MAX_ARGS]) -> usize {
    let mut n = 0;
    for arg in s.split(|b| is_space(*b)).filter(|a| !a.is_empty()) {
        if n == MAX_ARGS {
            return n;
        }
        out[n] = arg;
        n += 1;
    }
    n
}

/// Parses a decimal size: digits only, no sign, no overflow.
fn parse_size(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 12 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0usize, |acc, d| acc.checked_mul(10)?.checked_add(usize::from(d - b'0')))
}

/// The version line every NATS header block starts with.
const HEADER_VERSION: &[u8] = b"NATS/1.0";

/// Whether an HPUB's header block has NATS's shape: the version line first
/// (a status may follow it, as in `NATS/1.0 503`) and an empty line last.
/// nats-server forwards any bytes; a block that is not one would reach
/// subscribers as headers their libraries cannot parse.
fn is_header_block(block: &[u8]) -> bool {
    block.starts_with(HEADER_VERSION) && block.ends_with(b"\r\n\r\n")
}

fn parse_pub_header<'a>(
    headers: bool,
    args: &[&'a [u8]],
    limits: &ParseLimits,
) -> Result<(Publish<'a>, usize), ProtoError> {
    let bad = ProtoError::InvalidArguments;
    let (subject, reply, header_arg, total_arg) = match (headers, args) {
        (false, &[s, t]) => (s, None, None, t),
        (false, &[s, r, t]) => (s, Some(r), None, t),
        (true, &[s, h, t]) => (s, None, Some(h), t),
        (true, &[s, r, h, t]) => (s, Some(r), Some(h), t),
        (false, _) => return Err(bad("PUB takes a subject, an optional reply and a size")),
        (true, _) => return Err(bad("HPUB takes a subject, an optional reply, a header size and a total size")),
    };
    let total = parse_size(total_arg).ok_or(bad("message size is not a valid number"))?;
    let header_len = match header_arg {
        None => None,
        Some(h) => {
            let h = parse_size(h).ok_or(bad("header size is not a valid number"))?;
            if h > total {
                return Err(bad("header size is larger than the total size"));
            }
            Some(h)
        }
    };
    if total > limits.max_payload {
        return Err(ProtoError::MaxPayload);
    }
    Ok((Publish { subject, reply, header_len, message: &[] }, total))
}

fn parse_sub<'a>(args: &[&'a [u8]]) -> Result<Op<'a>, ProtoError> {
    match *args {
        [subject, sid] => Ok(Op::Sub { subject, queue: None, sid }),
        [subject, queue, sid] => Ok(Op::Sub { subject, queue: Some(queue), sid }),
        _ => Err(ProtoError::InvalidArguments("SUB takes a subject, an optional queue group and a sid")),
    }
}

fn parse_unsub<'a>(args: &[&'a [u8]]) -> Result<Op<'a>, ProtoError> {
    match *args {
        [sid] => Ok(Op::Unsub { sid, max: None }),
        // nats-server reads a non-numeric max as -1: unsubscribe at once.
        [sid, max] => Ok(Op::Unsub { sid, max: Some(parse_size(max).unwrap_or(0) as u64) }),
        _ => Err(ProtoError::InvalidArguments("UNSUB takes a sid and an optional maximum")),
    }
}

#[cfg(test)]
mod tests;
