//! The message-trace header scan on arbitrary header blocks: `scan` and
//! `may_trace` (its cheap prefilter) never panic, `scan` asks for a trace
//! only where `may_trace` said it might, and `set_header` keeps the payload
//! and returns a header length inside what it wrote.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::proto::msg_trace::{may_trace, scan, set_header};

fuzz_target!(|data: &[u8]| {
    let [split, rest @ ..] = data else { return };
    let header_len = (*split as usize).min(rest.len());
    let block = &rest[..header_len];
    if let Some(request) = scan(block) {
        assert!(may_trace(block), "scan traced what may_trace ruled out");
        assert!(request.dest.is_some() || !request.only, "trace-only needs a destination");
    }
    let mut out = b"kept".to_vec();
    let new_len = set_header(rest, header_len, "Nats-Trace-Hop", "1.2", &mut out);
    assert!(out.starts_with(b"kept"), "what was in the buffer is kept");
    let written = &out[4..];
    assert!(new_len <= written.len(), "header length {new_len} past the {} bytes written", written.len());
    assert!(written.ends_with(&rest[header_len..]), "the payload is kept");
});
