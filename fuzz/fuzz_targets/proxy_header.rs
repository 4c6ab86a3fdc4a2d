//! The PROXY protocol decoder (`warden::proto::proxy`) on arbitrary bytes:
//! no panic, and split invariance. The first byte seeds the cuts; the rest
//! is fed once whole and once in chunks of 1 to 32 bytes, and both must
//! agree on the header, on where the client's bytes start, or on refusing.
//! What a header took is never more than the input nor than `MAX_HEADER`.
#![no_main]

mod split;

use libfuzzer_sys::fuzz_target;
use warden::proto::proxy::{Decoder, Header, Progress, ProxyError, MAX_HEADER};

/// The outcome of feeding `chunks` in order: the header and how many bytes
/// it took in all, `None` if it is still incomplete, or the error.
fn run<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Option<(Header, usize)>, ProxyError> {
    let mut decoder = Decoder::new();
    let mut before = 0;
    for chunk in chunks {
        match decoder.feed(chunk)? {
            Progress::More => before += chunk.len(),
            Progress::Done { header, used } => {
                assert!(used <= chunk.len(), "used {used} of a {}-byte chunk", chunk.len());
                return Ok(Some((header, before + used)));
            }
        }
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else { return };
    let whole = run([input]);
    let split = run(split::chunks(input, seed));
    match (&whole, &split) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "whole and split disagree"),
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} but split {split:?}"),
    }
    if let Ok(Some((_, taken))) = whole {
        assert!(taken <= input.len() && taken <= MAX_HEADER);
    }
});
