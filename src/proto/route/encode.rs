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
    let (origin, account) = match to {
        FrameTo::Route(account) => (None, Some(account)),
        FrameTo::RouteFromLeafCluster { origin, account } => (Some(origin), Some(account)),
        FrameTo::Leaf => (None, None),
    };
    let bound = rmsg_len_bound(account.unwrap_or_default(), subject, reply, queues, message);
    out.reserve(bound + origin.map_or(0, <[u8]>::len));
    out.put_slice(match (origin, header_len, account) {
        (Some(_), _, _) => b"LMSG ",
        (None, Some(_), _) => b"HMSG ",
        (None, None, Some(_)) => b"RMSG ",
        (None, None, None) => b"LMSG ",
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

/// `RS+ acc subject [queue weight]\r\n`, or `LS+ subject [queue weight]`
/// without an account (a leaf connection).
pub fn rs_plus(account: Option<&[u8]>, subject: &[u8], queue: Option<&[u8]>, weight: u32) -> Vec<u8> {
    let verb: &[u8] = if account.is_some() { b"RS+ " } else { b"LS+ " };
    let mut line = interest_line(verb, account, subject, queue);
    if queue.is_some() {
        line.push(b' ');
        line.extend_from_slice(itoa::Buffer::new().format(weight).as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// `RS- acc subject [queue]\r\n`, or `LS- subject [queue]` without an account.
pub fn rs_minus(account: Option<&[u8]>, subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
    let verb: &[u8] = if account.is_some() { b"RS- " } else { b"LS- " };
    let mut line = interest_line(verb, account, subject, queue);
    line.extend_from_slice(b"\r\n");
    line
}

fn interest_line(verb: &[u8], account: Option<&[u8]>, subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
    let account = account.unwrap_or_default();
    let mut line = Vec::with_capacity(verb.len() + account.len() + subject.len() + 32);
    line.extend_from_slice(verb);
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
