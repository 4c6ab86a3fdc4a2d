//! The client protocol parser on arbitrary bytes.
//!
//! Input: two control bytes, then the bytes a client sends. The first picks
//! the limits (small ones reach the limit paths), the second seeds the
//! chunk sizes. Checked: no panic; every step makes progress (`Op` uses at
//! least one byte and no more than the buffer, `NeedMore` asks for more than
//! the buffer holds); and the ops and the final error are the same whether
//! the input arrives whole, in pseudo-random chunks or one byte at a time.
#![no_main]

mod split;

use libfuzzer_sys::fuzz_target;
use warden::proto::{Op, ParseLimits, Parser, ProtoError, Step};

/// An owned rendering of an op, so ops from different buffers compare.
fn render(op: &Op<'_>) -> String {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match op {
        Op::Pub(p) => format!("PUB {:?} {:?} {:?} {:?}", p.subject, p.reply, p.header_len, p.message),
        Op::Sub { subject, queue, sid } => format!("SUB {:?} {:?} {:?}", s(subject), queue.map(s), sid),
        Op::Unsub { sid, max } => format!("UNSUB {sid:?} {max:?}"),
        Op::Connect(json) => format!("CONNECT {json:?}"),
        other => format!("{other:?}"),
    }
}

/// Feeds `chunks` in order the way a connection does: append, parse until
/// `NeedMore`, drop what was used. Stops at the first error.
fn feed<'a>(chunks: impl Iterator<Item = &'a [u8]>, limits: &ParseLimits) -> (Vec<String>, Option<ProtoError>) {
    let mut parser = Parser::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut ops = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&buf, limits) {
                Ok(Step::Op(op, used)) => {
                    assert!(used > 0 && used <= buf.len(), "op used {used} of {} bytes", buf.len());
                    ops.push(render(&op));
                    buf.drain(..used);
                }
                Ok(Step::NeedMore(need)) => {
                    assert!(need > buf.len(), "NeedMore({need}) with {} bytes buffered", buf.len());
                    break;
                }
                Err(err) => return (ops, Some(err)),
            }
        }
    }
    (ops, None)
}

fuzz_target!(|data: &[u8]| {
    let [pick, seed, input @ ..] = data else { return };
    let limits = match pick % 4 {
        0 => ParseLimits { max_payload: 1024 * 1024, max_control_line: 4096 },
        1 => ParseLimits { max_payload: 64, max_control_line: 32 },
        2 => ParseLimits { max_payload: 0, max_control_line: 8 },
        _ => ParseLimits { max_payload: 16, max_control_line: 1 },
    };
    let whole = feed(std::iter::once(input), &limits);
    let split = feed(split::chunks(input, *seed).into_iter(), &limits);
    assert_eq!(whole, split, "chunked input parsed differently");
    if input.len() <= 512 {
        let bytes = feed(input.chunks(1), &limits);
        assert_eq!(whole, bytes, "byte-at-a-time input parsed differently");
    }
});
