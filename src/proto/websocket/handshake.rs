//! The opening handshake (RFC 6455 §4.2), as nats-server's `wsUpgrade`
//! checks it, in order: `GET`, `Host`, `Upgrade: websocket`, `Connection:
//! Upgrade`, a `Sec-WebSocket-Key` that is base64 of 16 bytes,
//! `Sec-WebSocket-Version: 13`. The origin and the forwarding headers are
//! read here and judged by the caller. Only the request head is read (its
//! size is the caller's bound); anything after it before the handshake
//! completed is an error, as in nats-server.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The GUID RFC 6455 appends to the key.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Headers read at most (a browser sends about 15).
const MAX_HEADERS: usize = 64;

/// Why a handshake is refused: the HTTP status and its text (the only
/// thing the response carries, as in nats-server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// What was wrong.
    pub reason: &'static str,
}

impl Refused {
    const fn bad(reason: &'static str) -> Refused {
        Refused { status: 400, reason }
    }

    /// The whole HTTP response.
    pub fn response(&self) -> Vec<u8> {
        let text = match self.status {
            403 => "Forbidden",
            405 => "Method Not Allowed",
            _ => "Bad Request",
        };
        format!(
            "HTTP/1.1 {} {text}\r\nSec-WebSocket-Version: 13\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.status,
            self.reason.len(),
            self.reason
        )
        .into_bytes()
    }
}

/// What an acceptable upgrade request said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// `Host`.
    pub host: String,
    /// `Origin`, when sent.
    pub origin: Option<String>,
    /// `Sec-WebSocket-Key`.
    pub key: String,
    /// Whether the client offered `permessage-deflate`.
    pub offers_deflate: bool,
    /// `X-Forwarded-For`, when sent (every value, in order, comma-joined
    /// across repeated headers).
    pub forwarded_for: Option<String>,
    /// `Cookie`, when sent.
    pub cookie: Option<String>,
}

/// Where the request head ends (after the empty line), if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Reads a complete request head.
pub fn parse(head: &[u8]) -> Result<Upgrade, Refused> {
    let text = std::str::from_utf8(head).map_err(|_| Refused::bad("request is not valid text"))?;
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split(' ');
    let (Some(method), Some(_path), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::bad("malformed request line"));
    };
    if method != "GET" {
        return Err(Refused { status: 405, reason: "request method must be GET" });
    }
    if version != "HTTP/1.1" {
        return Err(Refused::bad("HTTP version must be 1.1"));
    }
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        if headers.len() == MAX_HEADERS {
            return Err(Refused::bad("too many headers"));
        }
        let (name, value) = line.split_once(':').ok_or(Refused::bad("malformed header"))?;
        if name.is_empty() || name.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(Refused::bad("malformed header"));
        }
        headers.push((name, value.trim()));
    }
    let all = |name: &'static str| values(&headers, name);
    let one = |name: &'static str| all(name).next();
    let has_token = |name: &'static str, token: &str| {
        all(name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let host = one("Host").filter(|h| !h.is_empty()).ok_or(Refused::bad("'Host' missing in request"))?;
    if !has_token("Upgrade", "websocket") {
        return Err(Refused::bad("invalid value for header 'Upgrade'"));
    }
    if !has_token("Connection", "Upgrade") {
        return Err(Refused::bad("invalid value for header 'Connection'"));
    }
    let key = one("Sec-WebSocket-Key").ok_or(Refused::bad("key missing"))?;
    if STANDARD.decode(key).map_or(true, |k| k.len() != 16) {
        return Err(Refused::bad("invalid value for header 'Sec-WebSocket-Key'"));
    }
    if one("Sec-WebSocket-Version") != Some("13") {
        return Err(Refused::bad("invalid version"));
    }
    let offers_deflate = all("Sec-WebSocket-Extensions")
        .flat_map(|v| v.split(','))
        .any(|ext| ext.split(';').next().is_some_and(|name| name.trim().eq_ignore_ascii_case("permessage-deflate")));
    let forwarded: Vec<&str> = all("X-Forwarded-For").collect();
    Ok(Upgrade {
        host: host.to_owned(),
        origin: one("Origin").map(str::to_owned),
        key: key.to_owned(),
        offers_deflate,
        forwarded_for: (!forwarded.is_empty()).then(|| forwarded.join(",")),
        cookie: one("Cookie").map(str::to_owned),
    })
}

/// The values of every header called `name` (case-insensitively), in order.
fn values<'a>(headers: &'a [(&'a str, &'a str)], name: &'static str) -> impl Iterator<Item = &'a str> + 'a {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// `Sec-WebSocket-Accept` for `key`: base64 of SHA-1 of the key and the GUID.
pub fn accept_key(key: &str) -> String {
    let digest =
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, format!("{key}{ACCEPT_GUID}").as_bytes());
    STANDARD.encode(digest.as_ref())
}

/// The `101 Switching Protocols` response; `deflate`: compression was
/// agreed (without context takeover either way, as nats-server).
pub fn accepted(key: &str, deflate: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if deflate {
        out.push_str(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n",
        );
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "GET /ws HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://localhost:8080\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nX-Forwarded-For: 10.0.0.1\r\n\
        X-Forwarded-For: 10.0.0.2\r\nCookie: a=1; jwt=\"eyJx\"\r\n\r\n";

    #[test]
    fn a_browser_request_is_read_and_answered_with_the_rfc_accept_key() {
        assert_eq!(head_end(GOOD.as_bytes()), Some(GOOD.len()));
        let up = parse(GOOD.as_bytes()).unwrap();
        assert_eq!(up.host, "localhost:8080");
        assert_eq!(up.origin.as_deref(), Some("http://localhost:8080"));
        assert!(up.offers_deflate);
        assert_eq!(up.forwarded_for.as_deref(), Some("10.0.0.1,10.0.0.2"));
        assert_eq!(cookie(up.cookie.as_deref().unwrap(), "jwt"), Some("eyJx"));
        // RFC 6455 §1.3's example.
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let response = String::from_utf8(accepted(&up.key, true)).unwrap();
        assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.contains("permessage-deflate; server_no_context_takeover; client_no_context_takeover"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[test]
    fn each_missing_or_wrong_part_is_refused_in_nats_servers_order() {
        let cases = [
            (GOOD.replace("GET", "POST"), 405),
            (GOOD.replace("HTTP/1.1\r\n", "HTTP/1.0\r\n"), 400),
            (GOOD.replace("Host: localhost:8080\r\n", ""), 400),
            (GOOD.replace("Upgrade: websocket", "Upgrade: h2c"), 400),
            (GOOD.replace("keep-alive, Upgrade", "keep-alive"), 400),
            (GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), 400),
            (GOOD.replace("Version: 13", "Version: 8"), 400),
            (GOOD.replace("Origin:", "Bad Header:"), 400),
        ];
        for (request, status) in cases {
            let refused = parse(request.as_bytes()).unwrap_err();
            assert_eq!(refused.status, status, "{request}");
            let response = String::from_utf8(refused.response()).unwrap();
            assert!(response.starts_with(&format!("HTTP/1.1 {status} ")) && response.ends_with(refused.reason));
        }
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        assert!(parse(GOOD.replace("\r\n\r\n", &format!("\r\n{many}\r\n")).as_bytes()).is_err());
        assert!(parse(b"\xff\xfe").is_err());
    }
}
