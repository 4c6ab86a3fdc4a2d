//! Message tracing as nats-server 2.11+ speaks it, sans IO: which header
//! block asks for a trace, how the block is rewritten on the way, and the
//! event JSON a server publishes to the trace destination.
//!
//! - A message is traced when its headers carry `Nats-Trace-Dest` (the
//!   subject events go to; `Nats-Trace-Only: true` asks that it be traced
//!   but not delivered), or a W3C `traceparent` whose sampled flag is set,
//!   in an account with `msg_trace { dest }` (then the account's
//!   destination, and its `sampling`, apply). [`scan`] reads the block as
//!   nats-server's `genHeaderMapIfTraceHeadersPresent` does: lines
//!   `key: value`, the dest header name case-sensitive, `traceparent` in
//!   any case, `Nats-Trace-Dest: trace disabled` switching tracing off.
//! - A server that sends a traced message to another (route, leaf) sets
//!   `Nats-Trace-Hop` to the hop's id ([`set_header`]); the next server
//!   traces it again and emits its own event with that hop, so the events
//!   of all servers can be linked.
//! - [`Event`] is the JSON (`server`, `request { header, msgsize }`,
//!   `hops`, `events`), field for field nats-server's `MsgTraceEvent`.
//!
//! Cost: nothing is looked at for a message without headers; a block is
//! scanned once for the two names ([`may_trace`]) before anything is
//! parsed or allocated.

use std::collections::BTreeMap;

use serde::Serialize;

/// The header naming the trace destination.
pub const DEST: &str = "Nats-Trace-Dest";
/// Its value when tracing was switched off upstream (not a valid subject,
/// so it can never be one).
pub const DEST_DISABLED: &str = "trace disabled";
/// `true`, `1` or `on`: trace, do not deliver.
pub const ONLY: &str = "Nats-Trace-Only";
/// The hop id a server sets when it sends a traced message on.
pub const HOP: &str = "Nats-Trace-Hop";
/// Set by pre-2.11 betas; its presence switches tracing off.
pub const ORIGIN_ACCOUNT: &str = "Nats-Trace-Origin-Account";
/// The W3C trace context header (any case).
pub const TRACEPARENT: &str = "traceparent";

/// The route `proto` of a server that traces what it receives
/// (nats-server's `MsgTraceProto`).
pub const PROTO: i64 = 3;

/// Kinds of connection in events, nats-server's numbering.
pub mod kind {
    /// A client.
    pub const CLIENT: u8 = 0;
    /// A route.
    pub const ROUTER: u8 = 1;
    /// A gateway connection.
    pub const GATEWAY: u8 = 2;
    /// A leaf node connection.
    pub const LEAF: u8 = 4;
}

/// Egress errors, nats-server's texts.
pub mod error {
    /// Trace-only through a peer that would deliver it.
    pub const ONLY_NO_SUPPORT: &str = "Not delivered because remote does not support message tracing";
    /// Delivered through a peer that emits no event of its own.
    pub const NO_SUPPORT: &str =
        "Message delivered but remote does not support message tracing so no trace event generated from there";
    /// The publisher's own subscription, with `echo: false`.
    pub const NO_ECHO: &str = "Not delivered because of no echo";
    /// The subscription's deny rules cover the subject.
    pub const SUB_DENY: &str = "Not delivered because subscription denies this subject";
    /// The subscriber is gone, or cut as a slow consumer.
    pub const CLIENT_CLOSED: &str = "Not delivered because client is closed";
    /// The leaf user may not receive the subject.
    pub const PUB_VIOLATION: &str = "Not delivered because publish denied for this subject";
}

/// Whether `block` may ask for a trace: it mentions `Nats-Trace-Dest`
/// (exactly) or `traceparent` (any case). Cheap; [`scan`] decides.
pub fn may_trace(block: &[u8]) -> bool {
    memchr::memmem::find(block, DEST.as_bytes()).is_some() || contains_ignore_case(block, TRACEPARENT.as_bytes())
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else { return true };
    let mut at = 0;
    while let Some(found) = hay.get(at..).and_then(|rest| memchr::memchr2(first, first.to_ascii_uppercase(), rest)) {
        let start = at + found;
        if hay.get(start..start + needle.len()).is_some_and(|w| w.eq_ignore_ascii_case(needle)) {
            return true;
        }
        at = start + 1;
    }
    false
}

/// What a header block asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Every header, by name (case kept) with its values in order: the
    /// event's `request.header`.
    pub headers: BTreeMap<String, Vec<String>>,
    /// `Nats-Trace-Dest`'s first value; `None` when only a sampled
    /// `traceparent` asks (the account's destination applies).
    pub dest: Option<String>,
    /// `Nats-Trace-Only` is `1`, `true` or `on` (any case).
    pub only: bool,
    /// `Nats-Trace-Hop`'s first value.
    pub hop: Option<String>,
    /// `Nats-Trace-Origin-Account` is present: no trace.
    pub origin_account: bool,
}

/// The trace request in `block`, or `None` when it asks for none (no
/// destination and no sampled `traceparent`, or the destination says
/// tracing was switched off). `Nats-Trace-Only` without a destination
/// asks for nothing: nats-server delivers such a message as any other.
pub fn scan(block: &[u8]) -> Option<Request> {
    let mut lines = Vec::new();
    let (mut dest_found, mut parent_found) = (false, false);
    // A status on the version line (`NATS/1.0 503`) is never traced.
    let rest = block.strip_prefix(b"NATS/1.0\r\n")?;
    let mut i = 0;
    while i < rest.len() {
        let Some(colon) = memchr::memchr(b':', &rest[i..]) else { break };
        let key = &rest[i..i + colon];
        i += colon + 1;
        while i < rest.len() && matches!(rest[i], b' ' | b'\t') {
            i += 1;
        }
        let Some(nl) = memchr::memmem::find(&rest[i..], b"\r\n") else { break };
        let mut end = i + nl;
        while end > i && matches!(rest[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        let value = &rest[i..end];
        if !key.is_empty() && !value.is_empty() {
            if !parent_found && key.eq_ignore_ascii_case(TRACEPARENT.as_bytes()) {
                parent_found = sampled(value);
            } else if !dest_found && key == DEST.as_bytes() {
                if value == DEST_DISABLED.as_bytes() {
                    return None;
                }
                dest_found = true;
            }
            lines.push((key, value));
        }
        i += nl + 2;
    }
    if !dest_found && !parent_found {
        return None;
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in lines {
        let value = String::from_utf8_lossy(value).into_owned();
        headers.entry(String::from_utf8_lossy(key).into_owned()).or_default().push(value);
    }
    let first = |name: &str| headers.get(name).and_then(|v| v.first()).cloned();
    let only =
        dest_found && first(ONLY).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "on"));
    Some(Request {
        dest: if dest_found { first(DEST) } else { None },
        only,
        hop: first(HOP),
        origin_account: first(ORIGIN_ACCOUNT).is_some_and(|v| !v.is_empty()),
        headers,
    })
}

/// A `traceparent` value `version-traceid-parentid-flags` whose flags
/// (two hex digits) have the sampled bit.
fn sampled(value: &[u8]) -> bool {
    let parts: Vec<&[u8]> = value.split(|b| *b == b'-').collect();
    let [_, _, _, flags] = parts.as_slice() else { return false };
    flags.len() == 2
        && std::str::from_utf8(flags).ok().and_then(|f| i8::from_str_radix(f, 16).ok()).is_some_and(|f| f & 1 == 1)
}

/// Appends to `out` the message `message` (its first `header_len` bytes
/// the header block) with header `name` set to `value`: its first line
/// with that name (exactly) gets the new value, or a line is added before
/// the block's end. Returns the new header length. A block that does not
/// end in an empty line is copied unchanged.
pub fn set_header(message: &[u8], header_len: usize, name: &str, value: &str, out: &mut Vec<u8>) -> usize {
    let (block, payload) = message.split_at(header_len.min(message.len()));
    out.reserve(message.len() + name.len() + value.len() + 4);
    let start = out.len();
    let Some(body) = block.strip_suffix(b"\r\n\r\n") else {
        out.extend_from_slice(message);
        return block.len();
    };
    let mut replaced = false;
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if n > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let is_it =
            n > 0 && !replaced && line.strip_prefix(name.as_bytes()).is_some_and(|rest| rest.first() == Some(&b':'));
        if is_it {
            replaced = true;
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
        } else {
            out.extend_from_slice(line);
        }
    }
    if !replaced {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    let len = out.len() - start;
    out.extend_from_slice(payload);
    len
}

/// The server at the head of an event (nats-server's `ServerInfo`).
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// `server_name`, or the id.
    pub name: String,
    /// The client listener's host.
    pub host: String,
    /// The server's id.
    pub id: String,
    /// The cluster's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The nats-server version spoken.
    pub ver: &'static str,
    /// `server_tags`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Always false: no JetStream.
    pub jetstream: bool,
    /// Events sent so far by this server.
    pub seq: u64,
    /// When the event was sent (RFC 3339).
    pub time: String,
}

#[cfg(test)]
impl Server {
    /// A server named `s` on host `h` with id `I`, for the trace tests.
    pub(crate) fn example(seq: u64, time: &str) -> Server {
        Server {
            name: "s".into(),
            host: "h".into(),
            id: "I".into(),
            cluster: None,
            ver: "2.9.10",
            tags: vec![],
            jetstream: false,
            seq,
            time: time.into(),
        }
    }
}

/// The traced message, as received.
#[derive(Debug, Clone, Serialize)]
pub struct RequestInfo {
    /// Its headers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    /// Its size (headers and payload).
    #[serde(skip_serializing_if = "is_zero")]
    pub msgsize: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// One server's trace event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The server that emits it.
    pub server: Server,
    /// The message.
    pub request: RequestInfo,
    /// How many peers it was sent on to.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub hops: u32,
    /// What happened to it, in order.
    pub events: Vec<Step>,
}

/// One step of a message through a server.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum Step {
    /// Where it came in.
    #[serde(rename = "in")]
    Ingress {
        /// When (RFC 3339).
        ts: String,
        /// Kind of connection ([`kind`]).
        kind: u8,
        /// Its id.
        cid: u64,
        /// Its name (a client's, or the peer server's).
        #[serde(skip_serializing_if = "String::is_empty")]
        name: String,
        /// The account.
        acc: String,
        /// The subject it was published to.
        subj: String,
        /// Why it went no further.
        #[serde(skip_serializing_if = "String::is_empty")]
        error: String,
    },
    /// A subject mapping rewrote its subject.
    #[serde(rename = "sm")]
    SubjectMapping {
        /// When.
        ts: String,
        /// The new subject.
        to: String,
    },
    /// It crossed a stream export into an importing account.
    #[serde(rename = "se")]
    StreamExport {
        /// When.
        ts: String,
        /// The importing account.
        acc: String,
        /// Its subject there.
        to: String,
    },
    /// It crossed a service import into the exporting account.
    #[serde(rename = "si")]
    ServiceImport {
        /// When.
        ts: String,
        /// The exporting account.
        acc: String,
        /// Its subject in the importer.
        from: String,
        /// Its subject in the exporter.
        to: String,
    },
    /// It went out (or did not) to a connection.
    #[serde(rename = "eg")]
    Egress {
        /// When.
        ts: String,
        /// Kind of connection ([`kind`]).
        kind: u8,
        /// Its id.
        cid: u64,
        /// Its name.
        #[serde(skip_serializing_if = "String::is_empty")]
        name: String,
        /// The hop id set on it (routes and leafs).
        #[serde(skip_serializing_if = "String::is_empty")]
        hop: String,
        /// The subscriber's account, when not the ingress account.
        #[serde(skip_serializing_if = "String::is_empty")]
        acc: String,
        /// The client's subscription subject.
        #[serde(skip_serializing_if = "String::is_empty")]
        sub: String,
        /// Its queue group.
        #[serde(skip_serializing_if = "String::is_empty")]
        queue: String,
        /// Why it was not delivered (or no event will come from there).
        #[serde(skip_serializing_if = "String::is_empty")]
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dest_header_asks_with_every_header_kept_by_name() {
        let block = b"NATS/1.0\r\nNats-Trace-Dest: t.1\r\nX-A: 1\r\nX-A:  2 \r\nNats-Trace-Only: TRUE\r\n\r\n";
        assert!(may_trace(block));
        let r = scan(block).unwrap();
        assert_eq!(r.dest.as_deref(), Some("t.1"));
        assert!(r.only);
        assert_eq!(r.headers["X-A"], vec!["1", "2"]);
        assert_eq!(r.headers.len(), 3);
    }

    #[test]
    fn no_dest_a_disabled_dest_or_a_lowercase_name_asks_for_nothing() {
        assert!(scan(b"NATS/1.0\r\nX: y\r\n\r\n").is_none());
        assert!(scan(b"NATS/1.0\r\nNats-Trace-Dest: trace disabled\r\n\r\n").is_none());
        assert!(scan(b"NATS/1.0\r\nnats-trace-dest: t\r\n\r\n").is_none(), "nats-server matches the name exactly");
        assert!(!may_trace(b"NATS/1.0\r\nX: y\r\n\r\n"));
    }

    #[test]
    fn a_sampled_traceparent_asks_for_the_accounts_dest() {
        let sampled = b"NATS/1.0\r\nTraceParent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
        assert!(may_trace(sampled));
        let r = scan(sampled).unwrap();
        assert_eq!((r.dest, r.only), (None, false));
        let unsampled = b"NATS/1.0\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\r\n\r\n";
        assert!(scan(unsampled).is_none());
        assert!(scan(b"NATS/1.0\r\ntraceparent: 00-x-01\r\n\r\n").is_none(), "not four parts");
    }

    #[test]
    fn a_header_is_replaced_or_added_and_the_payload_kept() {
        let msg = b"NATS/1.0\r\nNats-Trace-Dest: t\r\n\r\npayload";
        let mut out = Vec::new();
        let len = set_header(msg, 32, HOP, "1", &mut out);
        assert_eq!(&out[..len], b"NATS/1.0\r\nNats-Trace-Dest: t\r\nNats-Trace-Hop: 1\r\n\r\n");
        assert_eq!(&out[len..], b"payload");
        let mut again = Vec::new();
        let len2 = set_header(&out, len, HOP, "1.2", &mut again);
        assert_eq!(&again[..len2], b"NATS/1.0\r\nNats-Trace-Dest: t\r\nNats-Trace-Hop: 1.2\r\n\r\n");
        let mut off = Vec::new();
        let len3 = set_header(msg, 32, DEST, DEST_DISABLED, &mut off);
        assert_eq!(&off[..len3], b"NATS/1.0\r\nNats-Trace-Dest: trace disabled\r\n\r\n");
    }

    #[test]
    fn an_event_is_nats_servers_json() {
        let e = Event {
            server: Server::example(1, "t"),
            request: RequestInfo { header: BTreeMap::from([("A".into(), vec!["1".into()])]), msgsize: 3 },
            hops: 0,
            events: vec![
                Step::SubjectMapping { ts: "t".into(), to: "x".into() },
                Step::Egress {
                    ts: "t".into(),
                    kind: 0,
                    cid: 2,
                    name: String::new(),
                    hop: String::new(),
                    acc: String::new(),
                    sub: "x".into(),
                    queue: String::new(),
                    error: String::new(),
                },
            ],
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"server":{"name":"s","host":"h","id":"I","ver":"2.9.10","jetstream":false,"seq":1,"time":"t"},"request":{"header":{"A":["1"]},"msgsize":3},"events":[{"type":"sm","ts":"t","to":"x"},{"type":"eg","ts":"t","kind":0,"cid":2,"sub":"x"}]}"#
        );
    }
}
