//! Query strings and the fixed-text errors the endpoints answer with.
//!
//! No error message contains anything from the request: a value that does
//! not parse is named by its parameter (a key warden knows), never echoed.

use hyper::StatusCode;

/// Most `key=value` pairs read from one query; the rest is ignored.
const MAX_PAIRS: usize = 32;

/// A refused request: a status and a fixed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ApiError {
    /// HTTP status.
    pub(super) status: StatusCode,
    /// Fixed text (never request input).
    pub(super) message: &'static str,
}

impl ApiError {
    /// 400 with `message`.
    pub(super) const fn bad_request(message: &'static str) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message }
    }

    /// 500: something that cannot happen did.
    pub(super) const fn internal() -> Self {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: "internal error" }
    }
}

/// The decoded `key=value` pairs of a query string.
#[derive(Debug, Default)]
pub(super) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b=x%20y`; `+` is a space. Malformed escapes are kept
    /// literally (the value then fails its own parse, if it matters).
    pub(super) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .take(MAX_PAIRS)
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query { pairs }
    }

    /// The pairs given, in order (the first of a key is the one read).
    pub(super) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Query { pairs }
    }

    /// Every pair, in order.
    #[cfg(test)]
    pub(super) fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The first value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A boolean: `1`/`true`/`0`/`false` (any case); absent or empty is false.
    pub(super) fn flag(&self, key: &str, error: ApiError) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some(v) => parse_bool(v).ok_or(error),
        }
    }

    /// A non-negative integer, or `default` when absent or empty.
    pub(super) fn number(&self, key: &str, default: usize, error: ApiError) -> Result<usize, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|_| error),
        }
    }
}

/// Go's `strconv.ParseBool` subset nats-server's monitoring accepts.
pub(super) fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

/// Percent-decoding (`+` as space); invalid UTF-8 is replaced.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b))) {
                (Some(high), Some(low)) => {
                    out.push((high << 4) | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any query string (it comes from the network) parses without
        /// panicking, and no error message carries any of it.
        #[test]
        fn arbitrary_queries_never_panic_or_reflect(raw in ".{0,200}", key in "[a-z]{1,8}") {
            let q = Query::parse(Some(&raw));
            let err = ApiError::bad_request("fixed");
            let _ = q.get(&key);
            if let Err(e) = q.flag(&key, err) {
                prop_assert_eq!(e.message, "fixed");
            }
            if let Err(e) = q.number(&key, 1, err) {
                prop_assert_eq!(e.message, "fixed");
            }
        }
    }

    #[test]
    fn pairs_decoding_and_flags() {
        let q = Query::parse(Some("subs=1&sort=bytes_to&test=a.%3E&x&limit=&sp=a+b&bad=%zz&end=%4"));
        assert_eq!(q.get("sort"), Some("bytes_to"));
        assert_eq!(q.get("test"), Some("a.>"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(q.get("sp"), Some("a b"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("end"), Some("%4"));
        let err = ApiError::bad_request("bad");
        assert_eq!(q.flag("subs", err), Ok(true));
        assert_eq!(q.flag("missing", err), Ok(false));
        assert_eq!(q.flag("sort", err), Err(err));
        assert_eq!(q.number("limit", 7, err), Ok(7));
        assert_eq!(q.number("sort", 7, err), Err(err));
        assert_eq!(Query::parse(None).get("a"), None);
    }
}
