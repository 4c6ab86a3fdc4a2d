//! The route parser: one op at the start of a buffer, borrowing from it.
//!
//! Stateless and allocation-free: an op that is not complete yet returns
//! `Ok(None)` and is parsed again from its start once more bytes arrived,
//! so the result never depends on how the input was split (the fuzz target
//! `route_parser` checks that). Queue lists of any length stay a borrowed
//! slice of the control line ([`QueueNames`]).

use std::fmt;

use memchr::memchr;

/// Longest route control line (queue lists make them longer than a client's).
pub const MAX_ROUTE_LINE: usize = 64 * 1024;

/// One op from a route peer, borrowing from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteOp<'a> {
    /// `INFO {json}`.
    Info(&'a [u8]),
    /// `CONNECT {json}`.
    Connect(&'a [u8]),
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR '...'`.
    Err(&'a [u8]),
    /// `RS+ account subject [queue weight]` (also `LS+ origin account ...`).
    Sub {
        /// The leaf node cluster the interest comes from (`LS+`).
        origin: Option<&'a [u8]>,
        /// Account name.
        account: &'a [u8],
        /// Subject or pattern, not yet validated.
        subject: &'a [u8],
        /// Queue group and its weight.
        queue: Option<(&'a [u8], u32)>,
    },
    /// `RS- account subject [queue]` (also `LS- account ...`: warden does
    /// not announce `lnocu`, so its peers send `LS-` without the origin).
    Unsub {
        /// Account name.
        account: &'a [u8],
        /// Subject or pattern.
        subject: &'a [u8],
        /// Queue group.
        queue: Option<&'a [u8]>,
    },
    /// `RMSG` / `HMSG` with its payload.
    Msg(RouteMsg<'a>),
    /// A gateway's `A+ account` / `A- account`: the other cluster has (or
    /// no longer has) interest in the account as a whole (its optimistic
    /// mode, which warden never asks for).
    Account {
        /// Account name.
        account: &'a [u8],
        /// `A+`.
        interest: bool,
    },
}

/// A message forwarded by a route.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMsg<'a> {
    /// The leaf node cluster the message comes from (a route's `LMSG`).
    pub origin: Option<&'a [u8]>,
    /// Account name (empty on a leaf connection).
    pub account: &'a [u8],
    /// Subject, not yet validated.
    pub subject: &'a [u8],
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// Queue groups the receiver should serve (one member each).
    pub queues: QueueNames<'a>,
    /// Header length, for HMSG.
    pub header_len: Option<usize>,
    /// Headers and payload.
    pub message: &'a [u8],
}

/// The queue group names of an RMSG: the space-separated tail of its
/// control line, read in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueNames<'a>(&'a [u8]);

impl<'a> QueueNames<'a> {
    /// Names given as a space-separated list (for tests and encoders).
    pub fn new(list: &'a [u8]) -> Self {
        QueueNames(trim(list))
    }

    /// Each name in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.split(|b| is_space(*b)).filter(|n| !n.is_empty())
    }

    /// Whether `name` is one of them.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.iter().any(|n| n == name)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a route peer sent that cannot be parsed. The connection is closed;
/// `Display` is for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteProtoError {
    /// A control line longer than [`MAX_ROUTE_LINE`].
    LineTooLong,
    /// A verb that is not part of the route protocol.
    UnknownOperation,
    /// `RS+`/`LS+` without account and subject, or with a queue but no weight.
    BadSubscribe,
    /// `RS-`/`LS-` without account and subject, or with extra arguments.
    BadUnsubscribe,
    /// `RMSG`/`HMSG` arguments that do not have one of the forms.
    BadMessage,
    /// A size that is not a decimal number.
    BadSize,
    /// An HMSG header size larger than its total size.
    HeaderTooLarge,
    /// A message larger than max_payload.
    PayloadTooLarge,
    /// A payload not followed by CRLF.
    MissingPayloadEnd,
}

impl fmt::Display for RouteProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteProtoError::LineTooLong => "route control line too long",
            RouteProtoError::UnknownOperation => "unknown route operation",
            RouteProtoError::BadSubscribe => "RS+ takes an account, a subject and an optional queue and weight",
            RouteProtoError::BadUnsubscribe => "RS- takes an account, a subject and an optional queue",
            RouteProtoError::BadMessage => "RMSG arguments not understood",
            RouteProtoError::BadSize => "RMSG size is not a number",
            RouteProtoError::HeaderTooLarge => "HMSG header size larger than total",
            RouteProtoError::PayloadTooLarge => "RMSG larger than max_payload",
            RouteProtoError::MissingPayloadEnd => "RMSG payload not followed by CRLF",
        })
    }
}

impl std::error::Error for RouteProtoError {}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_space(*b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_space(*b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

/// The first token and what follows it.
fn first(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    let end = s.iter().position(|b| is_space(*b)).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// What precedes the last token, and the last token.
fn last(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    let start = s.iter().rposition(|b| is_space(*b)).map_or(0, |i| i + 1);
    Some((&s[..start], &s[start..]))
}

fn size(s: &[u8]) -> Result<usize, RouteProtoError> {
    if s.is_empty() || s.len() > 12 || !s.iter().all(u8::is_ascii_digit) {
        return Err(RouteProtoError::BadSize);
    }
    s.iter()
        .try_fold(0usize, |acc, d| acc.checked_mul(10)?.checked_add(usize::from(d - b'0')))
        .ok_or(RouteProtoError::BadSize)
}

/// Which peer protocol a connection speaks: the two differ only in
/// whether interest and messages name their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A route: `RS+ acc ...`, `RMSG acc ...`, and for what a leaf node
    /// cluster of the peer's sent, `LS+ origin acc ...`, `LS- acc ...` and
    /// `LMSG origin acc subject ... hdr size` (the header size always
    /// there, `0` for none).
    Route,
    /// A pinned account's route connection: the route ops without the
    /// account (`RS+ subject ...`, `LS+ origin subject ...`, `RMSG subject
    /// ...`). Ops parse with an empty account.
    PinnedRoute,
    /// A leaf node connection, bound to one account at CONNECT: `LS+
    /// subject ...`, `LMSG subject ...`, `HMSG subject ...`. Ops parse
    /// with an empty account.
    Leaf,
    /// A gateway: the route ops with an account (no `LS+`/`LMSG`), and
    /// `A+ account` / `A- account`.
    Gateway,
}

/// Parses one op at the start of `buf`: `Ok(Some((op, used)))`, or
/// `Ok(None)` when more bytes are needed.
pub fn parse(buf: &[u8], max_payload: usize) -> Result<Option<(RouteOp<'_>, usize)>, RouteProtoError> {
    parse_dialect(buf, max_payload, Dialect::Route)
}

/// [`parse`] for a connection speaking `dialect`.
pub fn parse_dialect(
    buf: &[u8],
    max_payload: usize,
    dialect: Dialect,
) -> Result<Option<(RouteOp<'_>, usize)>, RouteProtoError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > MAX_ROUTE_LINE {
            return Err(RouteProtoError::LineTooLong);
        }
        return Ok(None);
    };
    // The bound an unterminated line gets holds for a complete one too, so
    // the answer does not depend on how the line was split across reads.
    if nl > MAX_ROUTE_LINE {
        return Err(RouteProtoError::LineTooLong);
    }
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let after = nl + 1;
    let verb_end = line.iter().position(|b| is_space(*b)).unwrap_or(line.len());
    let (verb, rest) = line.split_at(verb_end);
    let is = |name: &[u8]| verb.eq_ignore_ascii_case(name);
    let named = matches!(dialect, Dialect::Route | Dialect::Gateway);
    let op = if is(b"PING") {
        RouteOp::Ping
    } else if is(b"PONG") {
        RouteOp::Pong
    } else if is(b"+OK") {
        RouteOp::Ok
    } else if is(b"-ERR") {
        RouteOp::Err(trim(rest))
    } else if is(b"INFO") {
        RouteOp::Info(trim(rest))
    } else if is(b"CONNECT") {
        RouteOp::Connect(trim(rest))
    } else if dialect == Dialect::Leaf {
        if is(b"LS+") {
            subscribe(None, rest, false)?
        } else if is(b"LS-") {
            unsubscribe(rest, false)?
        } else if is(b"LMSG") || is(b"HMSG") {
            let headers = if is(b"HMSG") { Headers::Sized } else { Headers::None };
            return message(buf, after, None, rest, headers, max_payload, false);
        } else {
            return Err(RouteProtoError::UnknownOperation);
        }
    } else if dialect == Dialect::Gateway && (is(b"A+") || is(b"A-")) {
        let (account, rest) = first(rest).ok_or(RouteProtoError::BadSubscribe)?;
        if first(rest).is_some() {
            return Err(RouteProtoError::BadSubscribe);
        }
        RouteOp::Account { account, interest: is(b"A+") }
    } else if dialect == Dialect::Gateway && (is(b"LS+") || is(b"LS-") || is(b"LMSG")) {
        return Err(RouteProtoError::UnknownOperation);
    } else if is(b"RS+") {
        subscribe(None, rest, named)?
    } else if is(b"LS+") {
        let (origin, rest) = first(rest).ok_or(RouteProtoError::BadSubscribe)?;
        subscribe(Some(origin), rest, named)?
    } else if is(b"RS-") || is(b"LS-") {
        unsubscribe(rest, named)?
    } else if is(b"RMSG") || is(b"HMSG") {
        let headers = if is(b"HMSG") { Headers::Sized } else { Headers::None };
        return message(buf, after, None, rest, headers, max_payload, named);
    } else if is(b"LMSG") {
        let (origin, rest) = first(rest).ok_or(RouteProtoError::BadMessage)?;
        return message(buf, after, Some(origin), rest, Headers::SizedOrZero, max_payload, named);
    } else {
        return Err(RouteProtoError::UnknownOperation);
    };
    Ok(Some((op, after)))
}

/// Whether a message's control line has a header size before its total.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Headers {
    /// `RMSG`, a leaf's `LMSG`: no header size.
    None,
    /// `HMSG`: a header size.
    Sized,
    /// A route's `LMSG`: always a header size, `0` for no headers.
    SizedOrZero,
}

/// The account token, when the dialect has one.
fn account(rest: &[u8], named: bool, bad: RouteProtoError) -> Result<(&[u8], &[u8]), RouteProtoError> {
    if named {
        first(rest).ok_or(bad)
    } else {
        Ok((&[], rest))
    }
}

fn subscribe<'a>(origin: Option<&'a [u8]>, rest: &'a [u8], named: bool) -> Result<RouteOp<'a>, RouteProtoError> {
    let bad = RouteProtoError::BadSubscribe;
    let (account, rest) = account(rest, named, bad)?;
    let (subject, rest) = first(rest).ok_or(bad)?;
    let queue = match first(rest) {
        None => None,
        Some((queue, rest)) => {
            let (weight, rest) = first(rest).ok_or(bad)?;
            if first(rest).is_some() {
                return Err(bad);
            }
            let weight = size(weight).ok().and_then(|w| u32::try_from(w).ok()).ok_or(bad)?;
            Some((queue, weight))
        }
    };
    Ok(RouteOp::Sub { origin, account, subject, queue })
}

fn unsubscribe(rest: &[u8], named: bool) -> Result<RouteOp<'_>, RouteProtoError> {
    let bad = RouteProtoError::BadUnsubscribe;
    let (account, rest) = account(rest, named, bad)?;
    let (subject, rest) = first(rest).ok_or(bad)?;
    let queue = match first(rest) {
        None => None,
        Some((queue, rest)) if first(rest).is_none() => Some(queue),
        Some(_) => return Err(bad),
    };
    Ok(RouteOp::Unsub { account, subject, queue })
}

/// `RMSG`/`LMSG`/`HMSG`: account (on a route) and subject first, the size (or header size and
/// total) last, and in between nothing, a reply, `+ reply queues...` or
/// `| queues...`.
fn message<'a>(
    buf: &'a [u8],
    after: usize,
    origin: Option<&'a [u8]>,
    rest: &'a [u8],
    headers: Headers,
    max_payload: usize,
    named: bool,
) -> Result<Option<(RouteOp<'a>, usize)>, RouteProtoError> {
    let bad = RouteProtoError::BadMessage;
    let (account, rest) = account(rest, named, bad)?;
    let (subject, rest) = first(rest).ok_or(bad)?;
    let (rest, total) = last(rest).ok_or(bad)?;
    let total = size(total)?;
    let (middle, header_len) = if headers == Headers::None {
        (rest, None)
    } else {
        let (middle, h) = last(rest).ok_or(bad)?;
        let h = size(h)?;
        if h > total {
            return Err(RouteProtoError::HeaderTooLarge);
        }
        (middle, (h > 0 || headers == Headers::Sized).then_some(h))
    };
    if total > max_payload {
        return Err(RouteProtoError::PayloadTooLarge);
    }
    let (reply, queues) = match first(middle) {
        None => (None, QueueNames::default()),
        Some((b"+", after_plus)) => {
            let (reply, queues) = first(after_plus).ok_or(bad)?;
            (Some(reply), QueueNames::new(queues))
        }
        Some((b"|", queues)) => (None, QueueNames::new(queues)),
        Some((reply, tail)) if first(tail).is_none() => (Some(reply), QueueNames::default()),
        Some(_) => return Err(bad),
    };
    let need = after + total + 2;
    if buf.len() < need {
        return Ok(None);
    }
    if &buf[after + total..need] != b"\r\n" {
        return Err(RouteProtoError::MissingPayloadEnd);
    }
    let message = &buf[after..after + total];
    Ok(Some((RouteOp::Msg(RouteMsg { origin, account, subject, reply, queues, header_len, message }), need)))
}
