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

/// Appends a route message: `RMSG acc subject [reply] size` without queue
/// groups, or `RMSG acc subject + reply q1 q2 size` / `RMSG acc subject | q1
/// q2 size` naming the queue groups the receiving server should serve;
/// `HMSG` with a header size before the total when the message has headers.
/// Without an account (a leaf connection's is bound at CONNECT) the verb
/// is `LMSG` (`HMSG` still for headers) and no account is written.
pub fn write_rmsg<Q: AsRef<[u8]>>(
    out: &mut BytesMut,
    account: Option<&[u8]>,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[Q],
    header_len: Option<usize>,
    message: &[u8],
) {
    let mut num = itoa::Buffer::new();
    out.reserve(rmsg_len_bound(account.unwrap_or_default(), subject, reply, queues, message));
    out.put_slice(match (header_len, account) {
        (Some(_), _) => b"HMSG ",
        (None, Some(_)) => b"RMSG ",
        (None, None) => b"LMSG ",
    });
    if let Some(account) = account {
        out.put_slice(account);
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
    if let Some(h) = header_len {
        out.put_slice(num.format(h).as_bytes());
        out.put_u8(b' ');
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
