//! The route and leaf node protocol parser on arbitrary bytes.
//!
//! Input: two control bytes, then the bytes a route or leaf peer sends.
//! The first picks max_payload and the dialect (route, pinned route, leaf), the second seeds the chunk
//! sizes. Checked: no panic;
//! every op uses at least one byte and no more than the buffer; and the ops
//! and the final error are the same whether the input arrives whole, in
//! pseudo-random chunks or one byte at a time.
#![no_main]

mod split;

use libfuzzer_sys::fuzz_target;
use warden::proto::route::{parse_dialect, Dialect, RouteOp, RouteProtoError};

/// An owned rendering of an op, so ops from different buffers compare.
fn render(op: &RouteOp<'_>) -> String {
    match op {
        RouteOp::Msg(m) => format!(
            "MSG {:?} {:?} {:?} {:?} {:?} {:?}",
            m.account,
            m.subject,
            m.reply,
            m.queues.iter().collect::<Vec<_>>(),
            m.header_len,
            m.message
        ),
        other => format!("{other:?}"),
    }
}

/// Feeds `chunks` in order the way a route does: append, parse until more
/// is needed, drop what was used. Stops at the first error.
fn feed<'a>(
    chunks: impl Iterator<Item = &'a [u8]>,
    max_payload: usize,
    dialect: Dialect,
) -> (Vec<String>, Option<RouteProtoError>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut ops = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parse_dialect(&buf, max_payload, dialect) {
                Ok(Some((op, used))) => {
                    assert!(used > 0 && used <= buf.len(), "op used {used} of {} bytes", buf.len());
                    ops.push(render(&op));
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(err) => return (ops, Some(err)),
            }
        }
    }
    (ops, None)
}

fuzz_target!(|data: &[u8]| {
    let [pick, seed, input @ ..] = data else { return };
    let max_payload = match pick % 3 {
        0 => 1024 * 1024,
        1 => 16,
        _ => 0,
    };
    let dialect = match pick >> 6 {
        0 | 1 => Dialect::Route,
        2 => Dialect::PinnedRoute,
        _ => Dialect::Leaf,
    };
    let whole = feed(std::iter::once(input), max_payload, dialect);
    let split = feed(split::chunks(input, *seed).into_iter(), max_payload, dialect);
    assert_eq!(whole, split, "chunked input parsed differently");
    if input.len() <= 512 {
        let bytes = feed(input.chunks(1), max_payload, dialect);
        assert_eq!(whole, bytes, "byte-at-a-time input parsed differently");
    }
});
