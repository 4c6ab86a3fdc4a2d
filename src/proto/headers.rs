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
//! connection loses these before it is delivered or forwarded (warden
//! itself neither traces nor adds `Nats-Request-Info`; tracing across a
//! warden hop is lost).
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
const ASSERTED: [&[u8]; 3] = [b"nats-request-info", b"nats-trace-", b"nats-server-xkey"];

/// What every name starts with: the scan looks for this first.
const STEM: &[u8] = b"nats-";

/// The version line an emptied or forged first line becomes.
const VERSION_LINE: &[u8] = b"NATS/1.0\r\n";

/// Whether `bytes` mentions a server-asserted header name, in any case.
pub fn mentions_asserted(bytes: &[u8]) -> bool {
    let mut at = 0;
    while let Some(found) = bytes.get(at..).and_then(|rest| memchr::memchr2(b'n', b'N', rest)) {
        let rest = &bytes[at + found..];
        let starts = |name: &[u8]| rest.get(..name.len()).is_some_and(|head| head.eq_ignore_ascii_case(name));
        if starts(STEM) && ASSERTED.iter().any(|name| starts(name)) {
            return true;
        }
        at += found + 1;
    }
    false
}

/// Appends the header block `block` to `out` without the lines that
/// mention a server-asserted name (see the module doc for the rules).
pub fn strip_asserted(block: &[u8], out: &mut Vec<u8>) {
    let mut lines = block.split_inclusive(|b| *b == b'\n');
    let mut dropping = false;
    if let Some(version) = lines.next() {
        dropping = mentions_asserted(version);
        out.extend_from_slice(if dropping { VERSION_LINE } else { version });
    }
    for line in lines {
        let continues = matches!(line.first(), Some(b' ' | b'\t'));
        dropping = mentions_asserted(line) || (dropping && continues);
        if !dropping {
            out.extend_from_slice(line);
        }
    }
}

/// A message's header length and bytes without the server-asserted
/// headers: `message` itself when its header block (the first
/// `header_len` bytes) has none, which is the common case and costs no
/// copy; otherwise the block stripped and the payload, written to
/// `rewritten`.
pub fn without_asserted<'a>(
    header_len: Option<usize>,
    message: &'a [u8],
    rewritten: &'a mut Vec<u8>,
) -> (Option<usize>, &'a [u8]) {
    let Some((block, payload)) = header_len.and_then(|len| message.split_at_checked(len)) else {
        return (header_len, message);
    };
    if !mentions_asserted(block) {
        return (header_len, message);
    }
    rewritten.clear();
    rewritten.reserve(message.len());
    strip_asserted(block, rewritten);
    let len = rewritten.len();
    rewritten.extend_from_slice(payload);
    (Some(len), rewritten)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn strip(block: &str) -> String {
        let mut out = Vec::new();
        strip_asserted(block.as_bytes(), &mut out);
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
        let (len, out) = without_asserted(Some(18), message, &mut rewritten);
        assert_eq!((len, out.as_ptr()), (Some(18), message.as_ptr()));
        assert_eq!(rewritten.capacity(), 0, "nothing allocated");
        assert_eq!(without_asserted(None, b"Nats-Request-Info: x", &mut rewritten).0, None, "no block, no scan");
        assert_eq!(without_asserted(Some(99), message, &mut rewritten).1, message, "a length past the end");
    }

    #[test]
    fn a_message_with_them_keeps_its_payload_and_gets_the_new_header_length() {
        let message = b"NATS/1.0\r\nNats-Request-Info: x\r\n\r\nNats-Request-Info in the payload";
        let mut rewritten = Vec::new();
        let (len, out) = without_asserted(Some(34), message, &mut rewritten);
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
            strip_asserted(block.as_bytes(), &mut out);
            prop_assert!(!mentions_asserted(&out), "{:?} -> {:?}", block, String::from_utf8_lossy(&out));
            prop_assert!(out.len() <= block.len());
            if !mentions_asserted(block.as_bytes()) {
                prop_assert_eq!(&out[..], block.as_bytes());
            }
        }
    }
}
