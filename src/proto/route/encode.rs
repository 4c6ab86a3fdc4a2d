//! Encoding the route ops warden sends: interest and messages.

use bytes::{BufMut, BytesMut};

/// Room for a frame's verb, account, separators, two sizes and two CRLFs.
const FRAME_OVERHEAD: usize = 96;

/// At least the length of the frame `write_rmsg` writes for these parts.
pub fn rmsg_len_bound<Q: AsRef<[u8]>>(
    account: &[u8],
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[Q],
    message: &[u8],
) -> usize {
    let queues: usize = queues.iter().map(|q| q.as_ref().len() + 1).sum();
    account.len() + subject.len() + reply.map_or(0, <[u8]>::len) + queues + message.len() + FRAME_OVERHEAD
}

/// Who a message frame is for, which decides its verb and first words.
#[derive(Debug, Clone, Copy)]
pub enum FrameTo<'a> {
    /// A route: `RMSG account ...` (`HMSG account ...` with headers).
    Route(&'a [u8]),
    /// A route peer that announced `lnoc`, for a message from the leaf node
    /// cluster `origin`: `LMSG origin account ... hdr size`, the header
    /// size always there (`0` for none), as nats-server sends it.
    RouteFromLeafCluster {
        /// The leaf node cluster.
        origin: &'a [u8],
        /// The account.
        account: &'a [u8],
    },
    /// A pinned account's route connection: `RMSG subject ...` (`HMSG
    /// subject ...`, and `LMSG origin subject ...` for `origin`'s message).
    PinnedRoute {
        /// The leaf node cluster the message came from, for a peer that
        /// announced `lnoc`.
        origin: Option<&'a [u8]>,
    },
    /// A leaf connection, bound to its account: `LMSG ...` (`HMSG ...`).
    Leaf,
}

/// Appends a message frame for `to`: `RMSG acc subject [reply] size`
/// without queue groups, or `RMSG acc subject + reply q1 q2 size` / `RMSG
/// acc subject | q1 q2 size` naming the queue groups the receiving server
/// should serve; `HMSG` with a header size before the total when the
/// message has headers. See [`FrameTo`] for the other two forms.
pub fn write_rmsg<Q: AsRef<[u8]>>(
    out: &mut BytesMut,
    to: FrameTo<'_>,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[Q],
    header_len: Option<usize>,
    message: &[u8],
) {
    let mut num = itoa::Buffer::new();
    // (origin, account, whether a message without headers is an RMSG)
    let (origin, account, route) = match to {
        FrameTo::Route(account) => (None, Some(account), true),
        FrameTo::RouteFromLeafCluster { origin, account } => (Some(origin), Some(account), true),
        FrameTo::PinnedRoute { origin } => (origin, None, true),
        FrameTo::Leaf => (None, None, false),
    };
    let bound = rmsg_len_bound(account.unwrap_or_default(), subject, reply, queues, message);
    out.reserve(bound + origin.map_or(0, <[u8]>::len));
    out.put_slice(match (origin, header_len, route) {
        (Some(_), _, _) => b"LMSG ",
        (None, Some(_), _) => b"HMSG ",
        (None, None, true) => b"RMSG ",
        (None, None, false) => b"LMSG ",
    });
    for word in [origin, account].into_iter().flatten() {
        out.put_slice(word);
        out.put_u8(b' ');
    }
    out.put_slice(subject);
    out.put_u8(b' ');
    match (reply, queues.is_empty()) {
        (Some(reply), true) => {
            out.put_slice(reply);
            out.put_u8(b' ');
        }
        (Some(reply), false) => {
            out.put_slice(b"+ ");
            out.put_slice(reply);
            out.put_u8(b' ');
        }
        (None, false) => out.put_slice(b"| "),
        (None, true) => {}
    }
    for q in queues {
        out.put_slice(q.as_ref());
        out.put_u8(b' ');
    }
    match (header_len, origin) {
        (Some(h), _) => {
            out.put_slice(num.format(h).as_bytes());
            out.put_u8(b' ');
        }
        (None, Some(_)) => out.put_slice(b"0 "),
        (None, None) => {}
    }
    out.put_slice(num.format(message.len()).as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(message);
    out.put_slice(b"\r\n");
}

/// Who an interest line is for, which decides its verb and whether it
/// names the account.
#[derive(Debug, Clone, Copy)]
pub enum InterestTo<'a> {
    /// A route: `RS+ acc subject ...`.
    Route(&'a [u8]),
    /// A pinned account's route connection: `RS+ subject ...`.
    PinnedRoute,
    /// A leaf connection, bound to its account: `LS+ subject ...`.
    Leaf,
}

impl<'a> InterestTo<'a> {
    /// The verb (`RS` or `LS`, the sign added by the caller) and account.
    fn parts(self) -> (&'static [u8], &'a [u8]) {
        match self {
            InterestTo::Route(account) => (b"RS", account),
            InterestTo::PinnedRoute => (b"RS", b""),
            InterestTo::Leaf => (b"LS", b""),
        }
    }
}

/// `RS+ acc subject [queue weight]\r\n` (see [`InterestTo`] for the other
/// forms).
pub fn rs_plus(to: InterestTo<'_>, subject: &[u8], queue: Option<&[u8]>, weight: u32) -> Vec<u8> {
    let mut line = interest_line(to, b'+', subject, queue);
    if queue.is_some() {
        line.push(b' ');
        line.extend_from_slice(itoa::Buffer::new().format(weight).as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// `RS- acc subject [queue]\r\n` (see [`InterestTo`] for the other forms).
pub fn rs_minus(to: InterestTo<'_>, subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
    let mut line = interest_line(to, b'-', subject, queue);
    line.extend_from_slice(b"\r\n");
    line
}

fn interest_line(to: InterestTo<'_>, sign: u8, subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
    let (verb, account) = to.parts();
    let mut line = Vec::with_capacity(verb.len() + account.len() + subject.len() + 32);
    line.extend_from_slice(verb);
    line.push(sign);
    line.push(b' ');
    if !account.is_empty() {
        line.extend_from_slice(account);
        line.push(b' ');
    }
    line.extend_from_slice(subject);
    if let Some(q) = queue {
        line.push(b' ');
        line.extend_from_slice(q);
    }
    line
}
