//! nats-server's protocol trace (`-V`, `-DV`, `trace: true`): how each op a
//! connection sends (`<<-`) and each line it is sent (`->>`) is written,
//! with credentials redacted. Only formatting lives here, from the raw
//! bytes of an op (so the parsed op never has to be kept for it); the
//! connection decides whether to trace, with one flag it already reads.

/// What replaces a credential in a traced CONNECT.
pub const REDACTED: &str = "[REDACTED]";

/// CONNECT fields that carry a secret: a password, a token, a JWT, a
/// signature of the nonce.
const SECRET_FIELDS: &[&str] = &["pass", "auth_token", "jwt", "sig"];

/// `MSG_PAYLOAD: ["..."]` for a message's headers and payload, cut at
/// `max` bytes (`max_traced_msg_len`; 0: whole) with `...` after.
pub fn payload(message: &[u8], max: usize) -> String {
    let cut = if max > 0 && message.len() > max { &message[..max] } else { message };
    let more = if cut.len() < message.len() { "..." } else { "" };
    format!("MSG_PAYLOAD: [{:?}{more}]", String::from_utf8_lossy(cut))
}

/// The trace text of a delivery to a client, after `->> `: `[MSG subject
/// sid [reply] size]` or `[HMSG subject sid [reply] hdr size]`.
pub fn delivery(subject: &[u8], sid: &[u8], reply: Option<&[u8]>, header_len: Option<usize>, size: usize) -> String {
    let verb = if header_len.is_some() { "HMSG" } else { "MSG" };
    let mut text = format!("[{verb} {} {}", String::from_utf8_lossy(subject), String::from_utf8_lossy(sid));
    if let Some(reply) = reply {
        text.push(' ');
        text.push_str(&String::from_utf8_lossy(reply));
    }
    if let Some(h) = header_len {
        text.push_str(&format!(" {h}"));
    }
    text.push_str(&format!(" {size}]"));
    text
}

/// The trace texts of protocol lines sent as one write (PONG, +OK, -ERR,
/// INFO, a route's or leaf's interest, the CONNECT this server sends a
/// peer, redacted), each `[LINE]` without its CRLF.
pub fn outbound(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    bytes
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .map(|line| match verb(line, b"CONNECT") {
            Some(json) => format!("[CONNECT {}]", redact_connect(json)),
            None => format!("[{}]", String::from_utf8_lossy(line)),
        })
}

/// What follows `name` and a space or tab at the start of `line`, in any
/// case (the protocol's verbs are case-insensitive, so `connect {...}` is
/// redacted as well as `CONNECT {...}`).
fn verb<'l>(line: &'l [u8], name: &[u8]) -> Option<&'l [u8]> {
    let head = line.get(..name.len())?;
    let rest = &line[name.len()..];
    (head.eq_ignore_ascii_case(name) && rest.first().is_some_and(|b| *b == b' ' || *b == b'\t')).then(|| &rest[1..])
}

/// The trace texts of one op a connection sent, from its raw bytes: its
/// control line (a CONNECT redacted), then a message's payload as
/// [`payload`] writes it, cut at `max` bytes.
pub fn received(bytes: &[u8], max: usize) -> Vec<String> {
    let end = bytes.iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| i + 1);
    let (line, rest) = bytes.split_at(end);
    let mut texts: Vec<String> = outbound(line).collect();
    let carries_payload = [&b"PUB"[..], b"HPUB", b"RMSG", b"LMSG", b"HMSG"].iter().any(|v| verb(line, v).is_some());
    if carries_payload {
        texts.push(payload(rest.strip_suffix(b"\r\n").unwrap_or(rest), max));
    }
    texts
}

/// A CONNECT's JSON with every credential's value replaced by
/// [`REDACTED`]; JSON that does not parse is not shown at all (it may be a
/// credential cut short).
pub fn redact_connect(json: &[u8]) -> String {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice::<serde_json::Value>(json) else {
        return "(not valid JSON, not shown)".to_owned();
    };
    for field in SECRET_FIELDS {
        if let Some(value) = fields.get_mut(*field) {
            *value = REDACTED.into();
        }
    }
    serde_json::Value::Object(fields).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_written_as_nats_server_traces_them() {
        assert_eq!(
            received(b"PUB foo _INBOX.1 5\r\nhello\r\n", 0),
            ["[PUB foo _INBOX.1 5]", "MSG_PAYLOAD: [\"hello\"]"]
        );
        assert_eq!(received(b"pub foo 0\r\n\r\n", 0), ["[pub foo 0]", "MSG_PAYLOAD: [\"\"]"]);
        assert_eq!(received(b"SUB foo.* q 1\r\n", 0), ["[SUB foo.* q 1]"]);
        assert_eq!(received(b"PING\r\n", 0), ["[PING]"]);
        assert_eq!(delivery(b"foo", b"1", Some(b"r"), None, 5), "[MSG foo 1 r 5]");
        assert_eq!(delivery(b"foo", b"1", None, Some(12), 14), "[HMSG foo 1 12 14]");
        assert_eq!(outbound(b"PONG\r\n+OK\r\n").collect::<Vec<_>>(), ["[PONG]", "[+OK]"]);
        assert_eq!(payload(b"hello", 0), "MSG_PAYLOAD: [\"hello\"]");
        assert_eq!(payload(b"hello", 3), "MSG_PAYLOAD: [\"hel\"...]");
    }

    #[test]
    fn a_peers_ops_are_traced_from_their_bytes() {
        assert_eq!(received(b"RS+ $G foo\r\n", 0), ["[RS+ $G foo]"]);
        assert_eq!(received(b"RMSG $G foo 5\r\nhello\r\n", 3), ["[RMSG $G foo 5]", "MSG_PAYLOAD: [\"hel\"...]"]);
        assert_eq!(received(b"LMSG foo 0\r\n\r\n", 0), ["[LMSG foo 0]", "MSG_PAYLOAD: [\"\"]"]);
        let connect = received(b"CONNECT {\"user\":\"r\",\"pass\":\"rp\"}\r\n", 0);
        assert!(connect[0].contains(REDACTED) && !connect[0].contains("rp\""), "{connect:?}");
    }

    #[test]
    fn credentials_never_reach_the_trace() {
        let connect =
            b"connect\t{\"user\":\"alice\",\"pass\":\"s3cret\",\"auth_token\":\"t0k\",\"jwt\":\"eyJ.x.y\",\"sig\":\"c2ln\",\"nkey\":\"UABC\"}\r\n";
        let text = received(connect, 0).join(" ");
        for secret in ["s3cret", "t0k", "eyJ.x.y", "c2ln"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("\"user\":\"alice\"") && text.contains("\"nkey\":\"UABC\""), "{text}");
        assert_eq!(text.matches(REDACTED).count(), 4);
        let sent: Vec<String> = outbound(b"CONNECT {\"user\":\"r\",\"pass\":\"rpass\"}\r\nPING\r\n").collect();
        assert_eq!(sent, [format!("[CONNECT {{\"user\":\"r\",\"pass\":\"{REDACTED}\"}}]"), "[PING]".into()]);
        let cut = received(br#"CONNECT {"pass":"s3cr"#, 0).join(" ");
        assert!(!cut.contains("s3cr"), "a CONNECT that does not parse is not shown: {cut}");
    }
}
