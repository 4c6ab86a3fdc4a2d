//! The WebSocket decoders on arbitrary bytes: the upgrade request head, and
//! client frames fed whole and split at an arbitrary point, with and
//! without compression. No panic, no hang; the two feedings agree; nothing
//! decodes to more than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::proto::websocket::frame::{Control, Decoder};
use warden::proto::websocket::handshake;

const LIMIT: usize = 64 * 1024;

fn decode(input: &[u8], split: usize, deflate: bool) -> Result<(Vec<u8>, usize), u16> {
    let mut decoder = Decoder::new(LIMIT, deflate);
    let (mut data, mut controls) = (Vec::new(), Vec::new());
    let split = split.min(input.len());
    let first = decoder.decode(&input[..split], &mut data, &mut controls).map_err(|e| e.code)?;
    // A close ends the connection: nothing after it is read.
    if !controls.iter().any(|c| matches!(c, Control::Close(_))) {
        decoder.decode(&input[first..], &mut data, &mut controls).map_err(|e| e.code)?;
    }
    Ok((data, controls.len()))
}

fuzz_target!(|data: &[u8]| {
    if let Some(end) = handshake::head_end(data) {
        let _ = handshake::parse(&data[..end]);
    }
    let Some((&split, frames)) = data.split_first() else { return };
    for deflate in [false, true] {
        let whole = decode(frames, frames.len(), deflate);
        let halves = decode(frames, usize::from(split) * frames.len() / 256, deflate);
        if let (Ok(a), Ok(b)) = (&whole, &halves) {
            assert_eq!(a, b, "split feeding changed the stream");
        }
        if let Ok((out, _)) = &whole {
            // Each message is bounded; several frames may add up.
            assert!(out.len() <= frames.len().max(1) * LIMIT);
        }
    }
});
