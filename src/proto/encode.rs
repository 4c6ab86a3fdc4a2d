//! Encoding of server-to-client message frames.

use bytes::{BufMut, BytesMut};

/// The status message sent back for a request nobody listens to.
pub const NO_RESPONDERS_HEADER: &[u8] = b"NATS/1.0 503\r\n\r\n";

/// Room for a frame's verb, separators, two sizes and two CRLFs.
const FRAME_OVERHEAD: usize = 64;

/// At least the length of the frame `write_msg` writes for these parts.
pub fn msg_len_bound(subject: &[u8], sid: &[u8], reply: Option<&[u8]>, message: &[u8]) -> usize {
    subject.len() + sid.len() + reply.map_or(0, <[u8]>::len) + message.len() + FRAME_OVERHEAD
}

/// Appends `MSG subject sid [reply] n\r\n payload\r\n`, or the HMSG form
/// when the message has headers and the receiver understands them. A
/// receiver without header support gets the payload alone, as nats-server does.
pub fn write_msg(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    message: &[u8],
    receiver_has_headers: bool,
) {
    let (header_len, body) = msg_body(header_len, message, receiver_has_headers);
    out.reserve(msg_len_bound(subject, sid, reply, body));
    write_msg_line(out, subject, sid, reply, header_len, body.len());
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

/// What of `message` a receiver is sent after the frame's line, and the
/// header length its line names (`None`: a `MSG` line): the headers go
/// only to a receiver that understands them.
#[inline]
pub fn msg_body(header_len: Option<usize>, message: &[u8], receiver_has_headers: bool) -> (Option<usize>, &[u8]) {
    match header_len {
        Some(h) if receiver_has_headers => (Some(h), message),
        Some(h) => (None, message.get(h..).unwrap_or_default()),
        None => (None, message),
    }
}

/// Appends the line of a frame whose body (from [`msg_body`]) is
/// `body_len` bytes: `MSG subject sid [reply] n\r\n`, or `HMSG ... h n\r\n`.
/// The body and its CRLF follow, copied or as a segment of their own.
#[inline]
pub fn write_msg_line(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    body_len: usize,
) {
    let mut num = itoa::Buffer::new();
    out.put_slice(if header_len.is_some() { b"HMSG " } else { b"MSG " });
    out.put_slice(subject);
    out.put_u8(b' ');
    out.put_slice(sid);
    out.put_u8(b' ');
    if let Some(reply) = reply {
        out.put_slice(reply);
        out.put_u8(b' ');
    }
    if let Some(h) = header_len {
        out.put_slice(num.format(h).as_bytes());
        out.put_u8(b' ');
    }
    out.put_slice(num.format(body_len).as_bytes());
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(reply: Option<&[u8]>, h: Option<usize>, msg: &[u8], hdrs: bool) -> String {
        let mut out = BytesMut::new();
        write_msg(&mut out, b"foo", b"1", reply, h, msg, hdrs);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn frames() {
        assert_eq!(enc(None, None, b"hello", true), "MSG foo 1 5\r\nhello\r\n");
        assert_eq!(enc(Some(b"r"), None, b"", false), "MSG foo 1 r 0\r\n\r\n");
        let m = b"NATS/1.0\r\n\r\nhi";
        assert_eq!(enc(None, Some(12), m, true), "HMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
        assert_eq!(enc(None, Some(12), m, false), "MSG foo 1 2\r\nhi\r\n", "headers stripped");
    }
}
