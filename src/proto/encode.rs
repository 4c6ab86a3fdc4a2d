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
    let mut num = itoa::Buffer::new();
    let (verb, header_len, body): (&[u8], _, _) = match header_len {
        Some(h) if receiver_has_headers => (b"HMSG ", Some(h), message),
        Some(h) => (b"MSG ", None, message.get(h..).unwrap_or_default()),
        None => (b"MSG ", None, message),
    };
    out.reserve(msg_len_bound(subject, sid, reply, body));
    out.put_slice(verb);
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
    out.put_slice(num.format(body.len()).as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(body);
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
