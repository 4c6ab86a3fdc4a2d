//! Headers only a server may assert, and their removal from a header block
//! a peer sent.
//!
//! Some headers carry a server's word rather than the sender's:
//! - `Nats-Request-Info`: the requester's identity (account, user, name),
//!   which nats-server adds to imported service requests when `share` is
//!   on and which services and JetStream read as who asked;
//! - `Nats-Trace-*` (`Nats-Trace-Dest`, `-Only`, `-Hop`,
//!   `-Origin-Account`): message tracing; a nats-server that receives
//!   `Nats-Trace-Dest` from a route or leaf publishes trace events there
//!   without asking whether the original sender may (advisory 2026-20);
//! - `Nats-Server-Xkey`: the server's key on warden's auth callout requests.
//!
//! A leaf is as untrusted as a client, and nats-server let one forge the
//! first (advisory 2026-08, CVE-2026-33246). So a message from a leaf
//! connection loses `Nats-Request-Info` and `Nats-Server-Xkey` before it is
//! delivered or forwarded ([`Asserted::Identity`]). Its `Nats-Trace-*`
//! headers stay, as nats-server 2.15.1 keeps them: the leaf session checks
//! the trace destination against the leaf's permissions first, exactly as
//! a client's, and then traces it itself (`leaf::session`); only a trace
//! that cannot be honoured loses them all ([`Asserted::All`]).
//!
//! What is removed: the block is read as lines ending in `\n` (the `\r`
//! before it optional: some readers accept a bare LF), and every line that
//! mentions one of the names anywhere, in any case, goes, with any
//! continuation line (one starting with a space or tab) right after it.
//! Matching anywhere in the line, not only before the colon, leaves nothing
//! that a lenient reader (whitespace before the colon, folding, a bare CR
//! as separator) could take for the header; a header whose value merely
//! mentions a name is lost with it. The first line is the version line: it
//! stays, unless it mentions a name itself, then it becomes `NATS/1.0`.
//!
//! An emptied block stays a block: `NATS/1.0\r\n\r\n` (12 bytes) and the
//! message stays an HMSG. Dropping the block would also drop a status on
//! the version line (`NATS/1.0 503`), and every client library reads a
//! header block with no headers. The result is never longer than the
//! input, so a message within `max_payload` stays within it.
//!
//! Cost: a message without headers is not looked at; a block is scanned
//! once for `nats-` (any case) and copied only when a name follows.

/// The names, lowercase; one ending in `-` is a prefix.
static ASSERTED: [&[u8]; 3] = [b"nats-request-info", b"nats-server-xkey", b"nats-trace-"];

/// Those that say who someone is.
static IDENTITY: [&[u8]; 2] = [b"nats-request-info", b"nats-server-xkey"];

/// Which of the names a message loses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asserted {
    /// All of them.
    All,
    /// Those that say who someone is (`Nats-Request-Info`,
    /// `Nats-Server-Xkey`), keeping the trace headers, which the receiver
    /// checked and honours.
    Identity,
}

impl Asserted {
    fn names(self) -> &'static [&'static [u8]] {
        match self {
            Asserted::All => &ASSERTED,
            Asserted::Identity => &IDENTITY,
        }
    }
}

/// What every name starts with: the scan looks for this first.
const STEM: &[u8] = b"nats-";

/// The version line an emptied or forged first line becomes.
const VERSION_LINE: &[u8] = b"NATS/1.0\r\n";

/// Whether `bytes` mentions a server-asserted header name, in any case.
pub fn mentions_asserted(bytes: &[u8]) -> bool {
    mentions(bytes, Asserted::All)
}

/// Whether `bytes` mentions one of `which`'s names, in any case.
fn mentions(bytes: &[u8], which: Asserted) -> bool {
    let names = which.names();
    let mut at = 0;
    while let Some(found) = bytes.get(at..).and_then(|rest| memchr::memchr2(b'n', b'N', rest)) {
        let rest = &bytes[at + found..];
        let starts = |name: &[u8]| rest.get(..name.len()).is_some_and(|head| head.eq_ignore_ascii_case(name));
        if starts(STEM) && names.iter().any(|name| starts(name)) {
            return true;
        }
        at += found + 1;
    }
    false
}

/// Appends the header block `block` to `out` without the lines that
/// mention one of `which`'s names (see the module doc for the rules).
pub fn strip_asserted(block: &[u8], which: Asserted, out: &mut Vec<u8>) {
    let mut lines = block.split_inclusive(|b| *b == b'\n');
    let mut dropping = false;
    if let Some(version) = lines.next() {
        dropping = mentions(version, which);
        out.extend_from_slice(if dropping { VERSION_LINE } else { version });
    }
    for line in lines {
        let continues = matches!(line.first(), Some(b' ' | b'\t'));
        dropping = mentions(line, which) || (dropping && continues);
        if !dropping {
            out.extend_from_slice(line);
        }
    }
}

/// A message's header length and bytes without `which`'s server-asserted
/// headers: `message` itself when its header block (the first
/// `header_len` bytes) has none, which is the common case and costs no
/// copy; otherwise the block stripped and the payload, written to
/// `rewritten`.
pub fn without_asserted<'a>(
    header_len: Option<usize>,
    message: &'a [u8],
    which: Asserted,
    rewritten: &'a mut Vec<u8>,
) -> (Option<usize>, &'a [u8]) {
    let Some((block, payload)) = header_len.and_then(|len| message.split_at_checked(len)) else {
        return (header_len, message);
    };
    if !mentions(block, which) {
        return (header_len, message);
    }
    rewritten.clear();
    rewritten.reserve(message.len());
    strip_asserted(block, which, rewritten);
    let len = rewritten.len();
    rewritten.extend_from_slice(payload);
    (Some(len), rewritten)
}

/// `message` (with a header block of `header_len` bytes, or none) with
/// `Nats-Request-Info: <value>` as the only request info it carries: what
/// the sender put under that name (or `Nats-Server-Xkey`) is removed, by
/// [`strip_asserted`]'s rules, and the server's line is added at the end of
/// the block (a block is made when there is none). Written to `out`.
pub fn with_request_info(header_len: Option<usize>, message: &[u8], value: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    out.reserve(message.len() + value.len() + 40);
    let payload = match header_len.and_then(|len| message.split_at_checked(len)) {
        Some((block, payload)) => {
            strip_asserted(block, Asserted::Identity, out);
            // The new line goes before the blank line that ends the block
            // (a block without one is taken as ending where it does).
            if out.ends_with(b"\r\n\r\n") {
                out.truncate(out.len() - 2);
            } else if !out.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
            payload
        }
        None => {
            out.extend_from_slice(VERSION_LINE);
            message
        }
    };
    out.extend_from_slice(b"Nats-Request-Info: ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n\r\n");
    let len = out.len();
    out.extend_from_slice(payload);
    len
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn strip(block: &str) -> String {
        let mut out = Vec::new();
        strip_asserted(block.as_bytes(), Asserted::All, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn only_the_asserted_headers_go_in_any_case_with_their_continuations() {
        let block =
            "NATS/1.0\r\nA: 1\r\nNats-Request-Info: {\"acc\":\"SYS\"}\r\nB: 2\r\nnats-trace-dest: spy\r\n  folded\r\n\
                     NATS-SERVER-XKEY: X\r\nNats-Msg-Id: 7\r\n\r\n";
        assert_eq!(strip(block), "NATS/1.0\r\nA: 1\r\nB: 2\r\nNats-Msg-Id: 7\r\n\r\n");
    }

    #[test]
    fn the_servers_request_info_replaces_any_the_sender_wrote() {
        let mut out = Vec::new();
        let len = with_request_info(None, b"hi", b"{}", &mut out);
        assert_eq!((len, &out[..]), (35, &b"NATS/1.0\r\nNats-Request-Info: {}\r\n\r\nhi"[..]));
        let forged = b"NATS/1.0\r\nA: 1\r\nnats-request-info: {\"acc\":\"SYS\"}\r\n\r\nhi";
        let len = with_request_info(Some(forged.len() - 2), forged, b"{\"acc\":\"A\"}", &mut out);
        assert_eq!(&out[..len], b"NATS/1.0\r\nA: 1\r\nNats-Request-Info: {\"acc\":\"A\"}\r\n\r\n");
        assert_eq!(&out[len..], b"hi");
    }

    #[test]
    fn identity_headers_go_and_trace_headers_stay() {
        let block = "NATS/1.0\r\nNats-Trace-Dest: t\r\nNats-Request-Info: {}\r\nnats-server-xkey: X\r\nNats-Trace-Hop: 1\r\n\r\n";
        let mut out = Vec::new();
        strip_asserted(block.as_bytes(), Asserted::Identity, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "NATS/1.0\r\nNats-Trace-Dest: t\r\nNats-Trace-Hop: 1\r\n\r\n");
    }

    #[test]
    fn a_block_left_with_no_header_keeps_its_version_line_and_status() {
        assert_eq!(strip("NATS/1.0\r\nNats-Request-Info: x\r\n\r\n"), "NATS/1.0\r\n\r\n");
        assert_eq!(strip("NATS/1.0 503\r\nNats-Trace-Only: true\r\n\r\n"), "NATS/1.0 503\r\n\r\n");
    }

    #[test]
    fn lenient_spellings_are_removed_too() {
        for line in [
            "Nats-Request-Info : x\r\n",
            " Nats-Request-Info: x\r\n",
            "Nats-Request-Info: x\n",
            "X: a\rNats-Request-Info: x\r\n",
            "Nats-Trace-Hop: 1\r\n",
        ] {
            assert_eq!(strip(&format!("NATS/1.0\r\n{line}\r\n")), "NATS/1.0\r\n\r\n", "{line:?}");
        }
        assert_eq!(strip("NATS/1.0\rNats-Request-Info: x\r\n\r\n"), "NATS/1.0\r\n\r\n", "a forged version line");
    }

    #[test]
    fn lookalike_names_are_kept() {
        let block = "NATS/1.0\r\nNats-Request: a\r\nNats-Tracer: b\r\nX-Nats-Server: c\r\n\r\n";
        assert!(!mentions_asserted(block.as_bytes()));
        assert_eq!(strip(block), block);
    }

    #[test]
    fn a_message_without_them_is_passed_through_uncopied() {
        let message = b"NATS/1.0\r\nA: b\r\n\r\npayload";
        let mut rewritten = Vec::new();
        let (len, out) = without_asserted(Some(18), message, Asserted::All, &mut rewritten);
        assert_eq!((len, out.as_ptr()), (Some(18), message.as_ptr()));
        assert_eq!(rewritten.capacity(), 0, "nothing allocated");
        assert_eq!(
            without_asserted(None, b"Nats-Request-Info: x", Asserted::All, &mut rewritten).0,
            None,
            "no block, no scan"
        );
        assert_eq!(
            without_asserted(Some(99), message, Asserted::All, &mut rewritten).1,
            message,
            "a length past the end"
        );
    }

    #[test]
    fn a_message_with_them_keeps_its_payload_and_gets_the_new_header_length() {
        let message = b"NATS/1.0\r\nNats-Request-Info: x\r\n\r\nNats-Request-Info in the payload";
        let mut rewritten = Vec::new();
        let (len, out) = without_asserted(Some(34), message, Asserted::Identity, &mut rewritten);
        assert_eq!(len, Some(12));
        assert_eq!(out, b"NATS/1.0\r\n\r\nNats-Request-Info in the payload", "the payload is not touched");
    }

    proptest! {
        #[test]
        fn the_result_never_mentions_a_name_and_never_grows(
            lines in proptest::collection::vec(
                prop_oneof![
                    Just("Nats-Request-Info: x".to_string()),
                    Just(" nats-trace-dest: y".to_string()),
                    Just("\tfolded".to_string()),
                    Just("NATS/1.0".to_string()),
                    "[ -~\r]{0,12}",
                ],
                0..8,
            ),
            bare_lf in any::<bool>(),
        ) {
            let block = lines.join(if bare_lf { "\n" } else { "\r\n" });
            let mut out = Vec::new();
            strip_asserted(block.as_bytes(), Asserted::All, &mut out);
            prop_assert!(!mentions_asserted(&out), "{:?} -> {:?}", block, String::from_utf8_lossy(&out));
            prop_assert!(out.len() <= block.len());
            if !mentions_asserted(block.as_bytes()) {
                prop_assert_eq!(&out[..], block.as_bytes());
            }
        }
    }
}
