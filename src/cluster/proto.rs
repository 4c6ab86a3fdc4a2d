//! The route protocol of nats-server 2.9, sans IO: INFO and CONNECT JSON,
//! and a parser for the ops one server sends another.

use memchr::memchr;

use crate::proto::GLOBAL_ACCOUNT as ACCOUNT;
use serde::{Deserialize, Serialize};

/// Longest route control line (queue lists make them longer than a client's).
pub const MAX_ROUTE_LINE: usize = 64 * 1024;

/// A route INFO, with nats-server's field names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteInfo {
    /// The sender's server id.
    pub server_id: String,
    /// The sender's server name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    /// Software version.
    pub version: String,
    /// Protocol level.
    pub proto: i64,
    /// Route listen host.
    pub host: String,
    /// Route listen port.
    pub port: u16,
    /// The sender understands HMSG.
    pub headers: bool,
    /// Routes need credentials.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    /// Routes need TLS.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    /// Largest payload.
    pub max_payload: usize,
    /// Cluster name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Client URLs of the sender, for clients' reconnect lists.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// Route URL of the server this INFO describes (gossip).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// The sender understands leafnode-origin cluster info.
    pub lnoc: bool,
    /// The sender is in lame-duck mode.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ldm: bool,
}

/// A route CONNECT, with nats-server's field names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteConnect {
    /// Always true for routes.
    pub echo: bool,
    /// Always false for routes.
    pub verbose: bool,
    /// Always false for routes.
    pub pedantic: bool,
    /// Route user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Route password (sent in the clear inside the route connection, as
    /// nats-server does: use route TLS).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_secret")]
    pub pass: Option<crate::secret::Secret>,
    /// TLS is in use.
    pub tls_required: bool,
    /// HMSG understood.
    pub headers: bool,
    /// The sender's server id.
    pub name: String,
    /// Cluster name.
    pub cluster: String,
    /// Leafnode-origin cluster understood.
    pub lnoc: bool,
    /// Present only when a *client* connects to the route port by mistake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// Writes the password of an outgoing route CONNECT; `Secret` itself has
/// no `Serialize`, so secrets cannot end up in other JSON by accident.
fn expose_secret<S: serde::Serializer>(pass: &Option<crate::secret::Secret>, serializer: S) -> Result<S::Ok, S::Error> {
    match pass {
        Some(secret) => serializer.serialize_str(secret.expose()),
        None => serializer.serialize_none(),
    }
}

/// `VERB {json}\r\n` for an INFO or CONNECT.
pub(crate) fn json_line(verb: &str, value: &impl Serialize) -> Vec<u8> {
    let mut line = format!("{verb} ").into_bytes();
    if serde_json::to_writer(&mut line, value).is_err() {
        line.extend_from_slice(b"{}");
    }
    line.extend_from_slice(b"\r\n");
    line
}

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
        /// Subject or pattern.
        subject: &'a [u8],
        /// Queue group and its weight.
        queue: Option<(&'a [u8], u32)>,
    },
    /// `RS- account subject [queue]`.
    Unsub {
        /// Subject or pattern.
        subject: &'a [u8],
        /// Queue group.
        queue: Option<&'a [u8]>,
    },
    /// `RMSG` / `HMSG` with its payload.
    Msg(RouteMsg<'a>),
    /// An interest change or message for an account warden does not host
    /// (nats-server announces its `$SYS` account's subscriptions): ignored,
    /// so that it never enters the global account's index.
    OtherAccount,
}

/// A message forwarded by a route.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMsg<'a> {
    /// Subject.
    pub subject: &'a [u8],
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// Queue groups the receiver should serve (one member each).
    pub queues: Vec<&'a [u8]>,
    /// Header length, for HMSG.
    pub header_len: Option<usize>,
    /// Headers and payload.
    pub message: &'a [u8],
}

/// What a route peer sent that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteProtoError(pub &'static str);

impl std::fmt::Display for RouteProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn size(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 12 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0usize, |acc, d| acc.checked_mul(10)?.checked_add(usize::from(d - b'0')))
}

/// Parses one op at the start of `buf`: `Ok(Some((op, used)))`, or
/// `Ok(None)` when more bytes are needed.
pub fn parse(buf: &[u8], max_payload: usize) -> Result<Option<(RouteOp<'_>, usize)>, RouteProtoError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > MAX_ROUTE_LINE {
            return Err(RouteProtoError("route control line too long"));
        }
        return Ok(None);
    };
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let after = nl + 1;
    let (verb, rest) = match line.iter().position(|b| *b == b' ' || *b == b'\t') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &line[line.len()..]),
    };
    let args: Vec<&[u8]> = rest.split(|b| *b == b' ' || *b == b'\t').filter(|a| !a.is_empty()).collect();
    let upper = verb.to_ascii_uppercase();
    let op = match upper.as_slice() {
        b"PING" => RouteOp::Ping,
        b"PONG" => RouteOp::Pong,
        b"+OK" => RouteOp::Ok,
        b"-ERR" => RouteOp::Err(rest),
        b"INFO" => RouteOp::Info(rest),
        b"CONNECT" => RouteOp::Connect(rest),
        b"RS+" | b"LS+" => {
            // LS+ carries a leafnode origin cluster first.
            let args = if upper == b"LS+" { args.get(1..).unwrap_or_default() } else { &args[..] };
            match args {
                [acc, ..] if *acc != ACCOUNT && matches!(args.len(), 2 | 4) => RouteOp::OtherAccount,
                [_acc, subject] => RouteOp::Sub { subject, queue: None },
                [_acc, subject, queue, weight] => {
                    let weight = size(weight).and_then(|w| u32::try_from(w).ok()).unwrap_or(1);
                    RouteOp::Sub { subject, queue: Some((queue, weight)) }
                }
                _ => return Err(RouteProtoError("RS+ takes an account, a subject and an optional queue and weight")),
            }
        }
        b"RS-" | b"LS-" => {
            let args = if upper == b"LS-" { args.get(1..).unwrap_or_default() } else { &args[..] };
            match args {
                [acc, ..] if *acc != ACCOUNT && matches!(args.len(), 2 | 3) => RouteOp::OtherAccount,
                [_acc, subject] => RouteOp::Unsub { subject, queue: None },
                [_acc, subject, queue] => RouteOp::Unsub { subject, queue: Some(queue) },
                _ => return Err(RouteProtoError("RS- takes an account, a subject and an optional queue")),
            }
        }
        b"RMSG" | b"HMSG" => {
            let headers = upper == b"HMSG";
            let sizes = if headers { 2 } else { 1 };
            if args.len() < 2 + sizes {
                return Err(RouteProtoError("RMSG/HMSG has too few arguments"));
            }
            let subject = args[1];
            let middle = &args[2..args.len() - sizes];
            let total = size(args[args.len() - 1]).ok_or(RouteProtoError("RMSG size is not a number"))?;
            let header_len = if headers {
                let h = size(args[args.len() - 2]).ok_or(RouteProtoError("HMSG header size is not a number"))?;
                if h > total {
                    return Err(RouteProtoError("HMSG header size larger than total"));
                }
                Some(h)
            } else {
                None
            };
            if total > max_payload {
                return Err(RouteProtoError("RMSG larger than max_payload"));
            }
            let (reply, queues): (Option<&[u8]>, Vec<&[u8]>) = match middle {
                [] => (None, Vec::new()),
                [plus, reply, queues @ ..] if *plus == b"+" => (Some(*reply), queues.to_vec()),
                [bar, queues @ ..] if *bar == b"|" => (None, queues.to_vec()),
                [reply] => (Some(*reply), Vec::new()),
                _ => return Err(RouteProtoError("RMSG arguments not understood")),
            };
            let need = after + total + 2;
            if buf.len() < need {
                return Ok(None);
            }
            if &buf[after + total..need] != b"\r\n" {
                return Err(RouteProtoError("RMSG payload not followed by CRLF"));
            }
            if args[0] != ACCOUNT {
                return Ok(Some((RouteOp::OtherAccount, need)));
            }
            let message = &buf[after..after + total];
            return Ok(Some((RouteOp::Msg(RouteMsg { subject, reply, queues, header_len, message }), need)));
        }
        _ => return Err(RouteProtoError("unknown route operation")),
    };
    Ok(Some((op, after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &str) -> RouteOp<'_> {
        parse(input.as_bytes(), 1024).unwrap().unwrap().0
    }

    #[test]
    fn interest_and_messages() {
        assert_eq!(one("RS+ $G foo.bar\r\n"), RouteOp::Sub { subject: b"foo.bar", queue: None });
        assert_eq!(one("RS+ $G foo q 3\r\n"), RouteOp::Sub { subject: b"foo", queue: Some((b"q", 3)) });
        assert_eq!(one("LS+ C1 $G foo\r\n"), RouteOp::Sub { subject: b"foo", queue: None });
        assert_eq!(one("RS- $G foo q\r\n"), RouteOp::Unsub { subject: b"foo", queue: Some(b"q") });
        let RouteOp::Msg(m) = one("RMSG $G foo + r q1 q2 2\r\nhi\r\n") else { panic!() };
        assert_eq!((m.reply, m.queues.len(), m.message), (Some(&b"r"[..]), 2, &b"hi"[..]));
        let RouteOp::Msg(m) = one("RMSG $G foo | q1 0\r\n\r\n") else { panic!() };
        assert_eq!((m.reply, m.queues), (None, vec![&b"q1"[..]]));
        let RouteOp::Msg(m) = one("RMSG $G foo r 1\r\nx\r\n") else { panic!() };
        assert_eq!(m.reply, Some(&b"r"[..]));
        let RouteOp::Msg(m) = one("HMSG $G foo 2 3\r\nh\rx\r\n") else { panic!() };
        assert_eq!(m.header_len, Some(2));
        assert!(parse(b"RMSG $G foo 5\r\nab", 1024).unwrap().is_none(), "waits for the payload");
        assert_eq!(one("RS+ $SYS $SYS.REQ.SERVER.PING\r\n"), RouteOp::OtherAccount);
        assert_eq!(one("RS- $SYS $SYS.REQ.SERVER.PING\r\n"), RouteOp::OtherAccount);
        assert_eq!(one("LS+ C1 $SYS foo q 1\r\n"), RouteOp::OtherAccount);
        let (op, used) = parse(b"RMSG $SYS foo 2\r\nhi\r\nPING\r\n", 1024).unwrap().unwrap();
        assert_eq!((op, used), (RouteOp::OtherAccount, 21), "the payload is consumed");
        assert!(parse(b"RS+ $SYS foo q\r\n", 1024).is_err(), "still checked for shape");
        assert!(parse(b"RMSG $G foo 5000\r\n", 1024).is_err(), "max payload");
        assert!(parse(b"FOO\r\n", 1024).is_err());
    }
}
