//! The opening handshake (RFC 6455 §4.2), as nats-server's `wsUpgrade`
//! checks it, in order: `GET`, `Host`, `Upgrade: websocket`, `Connection:
//! Upgrade`, a `Sec-WebSocket-Key` that is base64 of 16 bytes,
//! `Sec-WebSocket-Version: 13`. The origin and the forwarding headers are
//! read here and judged by the caller. Only the request head is read (its
//! size is the caller's bound); anything after it before the handshake
//! completed is an error, as in nats-server.
//!
//! The client's side is here too, for a leaf dialling a hub's WebSocket
//! port as nats-server's leaf does (`leafNodeSolicitWSConnection`): the
//! request for [`LEAF_PATH`] ([`request`]), and the check of the answer
//! ([`check_answer`]): status 101, `Upgrade: websocket`, `Connection:
//! Upgrade`, the `Sec-WebSocket-Accept` the key calls for, and no extension
//! (none was offered). Only the answer's head is read (its size is the
//! caller's bound).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The GUID RFC 6455 appends to the key.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Headers read at most (a browser sends about 15).
const MAX_HEADERS: usize = 64;
/// The path a leaf asks for: nats-server's hub makes a connection upgraded
/// on a path ending in it a leaf connection, not a client's.
pub const LEAF_PATH: &str = "/leafnode";
/// nats-server's header by which a leaf asks the hub to take unmasked
/// frames, and the hub agrees (value `true` both ways).
const NO_MASKING: &str = "Nats-No-Masking";

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

/// Where a request or answer head ends (after the empty line), if it is
/// complete.
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
    let headers = header_lines(lines).map_err(Refused::bad)?;
    let all = |name: &'static str| values(&headers, name);
    let one = |name: &'static str| all(name).next();
    let has_token = |name: &'static str, token: &str| has_token(&headers, name, token);
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

/// The header lines up to the empty one, as names and trimmed values; at
/// most [`MAX_HEADERS`].
fn header_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<(&'a str, &'a str)>, &'static str> {
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        if headers.len() == MAX_HEADERS {
            return Err("too many headers");
        }
        let (name, value) = line.split_once(':').ok_or("malformed header")?;
        if name.is_empty() || name.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err("malformed header");
        }
        headers.push((name, value.trim()));
    }
    Ok(headers)
}

/// Whether a header called `name` lists `token` (case-insensitively).
fn has_token(headers: &[(&str, &str)], name: &'static str, token: &str) -> bool {
    values(headers, name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
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

/// A fresh `Sec-WebSocket-Key`: base64 of 16 random bytes.
pub fn client_key(random: [u8; 16]) -> String {
    STANDARD.encode(random)
}

/// A client's upgrade request for `path` on `host` (`host:port`, what the
/// URL names) with `key`, asking the server to take unmasked frames if
/// `no_masking`. No `Origin`: a leaf is not a browser, and nats-server's
/// origin check lets a request without one through.
pub fn request(host: &str, path: &str, key: &str, no_masking: bool) -> Vec<u8> {
    let mut out = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if no_masking {
        out.push_str(NO_MASKING);
        out.push_str(": true\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Why a server's answer to an upgrade request is not an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAnswer {
    /// Not an HTTP/1.x response head.
    Malformed,
    /// A status other than 101: the port refused the upgrade (nats-server
    /// says why in the body, which is not read), or is not a WebSocket port.
    Status(u16),
    /// This header is missing or wrong (`Sec-WebSocket-Accept` wrong: the
    /// answer is not to this request).
    Header(&'static str),
    /// An extension was agreed that was not offered.
    Extension,
}

impl std::fmt::Display for BadAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadAnswer::Malformed => f.write_str("the answer is not an HTTP/1.1 response"),
            BadAnswer::Status(status) => write!(f, "HTTP status {status}, not 101 Switching Protocols"),
            BadAnswer::Header(name) => write!(f, "header '{name}' missing or wrong"),
            BadAnswer::Extension => f.write_str("the server agreed to an extension that was not offered"),
        }
    }
}

impl std::error::Error for BadAnswer {}

/// What a server's accepting answer agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The server takes unmasked frames (it answered `Nats-No-Masking:
    /// true`; only worth anything if the request asked).
    pub no_masking: bool,
}

/// Checks the server's answer `head` (up to and including the empty line)
/// to a request made with `key`.
pub fn check_answer(head: &[u8], key: &str) -> Result<Answer, BadAnswer> {
    let text = std::str::from_utf8(head).map_err(|_| BadAnswer::Malformed)?;
    let mut lines = text.split("\r\n");
    let mut status_line = lines.next().unwrap_or_default().splitn(3, ' ');
    let (Some(version), Some(status)) = (status_line.next(), status_line.next()) else {
        return Err(BadAnswer::Malformed);
    };
    let status = status.parse::<u16>().map_err(|_| BadAnswer::Malformed)?;
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(BadAnswer::Malformed);
    }
    if status != 101 {
        return Err(BadAnswer::Status(status));
    }
    let headers = header_lines(lines).map_err(|_| BadAnswer::Malformed)?;
    if !has_token(&headers, "Upgrade", "websocket") {
        return Err(BadAnswer::Header("Upgrade"));
    }
    if !has_token(&headers, "Connection", "Upgrade") {
        return Err(BadAnswer::Header("Connection"));
    }
    if values(&headers, "Sec-WebSocket-Accept").next() != Some(accept_key(key).as_str()) {
        return Err(BadAnswer::Header("Sec-WebSocket-Accept"));
    }
    if values(&headers, "Sec-WebSocket-Extensions").any(|v| !v.is_empty()) {
        return Err(BadAnswer::Extension);
    }
    let no_masking = values(&headers, NO_MASKING).next() == Some("true");
    Ok(Answer { no_masking })
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

    #[test]
    fn a_leafs_request_is_nats_servers_and_our_own_server_side_takes_it() {
        let key = client_key([7; 16]);
        assert_eq!(key, "BwcHBwcHBwcHBwcHBwcHBw==");
        let req = request("hub.example:8080", LEAF_PATH, &key, false);
        assert_eq!(
            String::from_utf8(req.clone()).unwrap(),
            "GET /leafnode HTTP/1.1\r\nHost: hub.example:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: BwcHBwcHBwcHBwcHBwcHBw==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let up = parse(&req).unwrap();
        assert_eq!((up.host.as_str(), up.key.as_str(), up.offers_deflate), ("hub.example:8080", key.as_str(), false));
        let asking = String::from_utf8(request("h:1", LEAF_PATH, &key, true)).unwrap();
        assert!(asking.ends_with("Sec-WebSocket-Version: 13\r\nNats-No-Masking: true\r\n\r\n"));
        // Our server's answer is one the client takes.
        assert_eq!(check_answer(&accepted(&key, false), &key), Ok(Answer { no_masking: false }));
    }

    #[test]
    fn an_answer_is_checked_against_the_key_and_no_masking_read() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        // nats-server's answer when the leaf asked for no masking.
        let hub = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nNats-No-Masking: true\r\n\r\n";
        assert_eq!(head_end(hub.as_bytes()), Some(hub.len()));
        assert_eq!(check_answer(hub.as_bytes(), key), Ok(Answer { no_masking: true }));
        let plain = hub.replace("Nats-No-Masking: true\r\n", "");
        assert_eq!(check_answer(plain.as_bytes(), key), Ok(Answer { no_masking: false }));
        let cases = [
            (hub.replace("101 Switching Protocols", "400 Bad Request"), BadAnswer::Status(400)),
            (hub.replace("s3pPLM", "s4pPLM"), BadAnswer::Header("Sec-WebSocket-Accept")),
            (hub.replace("Sec-WebSocket-Accept", "Sec-WebSocket-Nope"), BadAnswer::Header("Sec-WebSocket-Accept")),
            (hub.replace("Upgrade: websocket", "Upgrade: h2c"), BadAnswer::Header("Upgrade")),
            (hub.replace("Connection: Upgrade", "Connection: close"), BadAnswer::Header("Connection")),
            (hub.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"), BadAnswer::Extension),
            (hub.replace("HTTP/1.1 101", "HTTP/2 101"), BadAnswer::Malformed),
            (hub.replace("HTTP/1.1 101", "HTTP/1.1 1x1"), BadAnswer::Malformed),
            ("INFO {}\r\n\r\n".to_owned(), BadAnswer::Malformed),
            (hub.replace("Upgrade: websocket", "Upgrade websocket"), BadAnswer::Malformed),
        ];
        for (answer, why) in cases {
            assert_eq!(check_answer(answer.as_bytes(), key), Err(why), "{answer}");
        }
        assert_eq!(check_answer(b"HTTP/1.1 101 \xff\r\n\r\n", key), Err(BadAnswer::Malformed));
        assert_eq!(check_answer(b"", key), Err(BadAnswer::Malformed));
    }
}
