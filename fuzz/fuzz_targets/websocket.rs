//! The WebSocket decoders on arbitrary bytes: the upgrade request head, and
//! client frames fed whole and split at an arbitrary point, with and
//! without compression, as whole frames and in place as the transport
//! decodes them. No panic, no hang; the feedings agree (in place, a frame
//! cut at the end passes on what of it came); nothing decodes to more than
//! the limit.
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

/// The transport's feeding: each piece decoded where it lies, what a call
/// leaves (after a compressed message) fed again.
fn in_place(input: &[u8], split: usize, deflate: bool) -> Result<(Vec<u8>, usize), u16> {
    let mut decoder = Decoder::new(LIMIT, deflate);
    let (mut data, mut controls) = (Vec::new(), Vec::new());
    let split = split.min(input.len());
    for piece in [&input[..split], &input[split..]] {
        let mut rest = piece.to_vec();
        while !rest.is_empty() {
            let mut inflated = Vec::new();
            let done = decoder.decode_in_place(&mut rest, &mut inflated, &mut controls).map_err(|e| e.code)?;
            data.extend_from_slice(&rest[..done.data]);
            data.extend(inflated);
            if controls.iter().any(|c| matches!(c, Control::Close(_))) {
                return Ok((data, controls.len()));
            }
            rest.drain(..done.used);
        }
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
        if let (Ok(a), Ok(b)) = (&whole, &in_place(frames, usize::from(split) * frames.len() / 256, deflate)) {
            assert!(b.0.starts_with(&a.0), "in place changed the stream");
        }
        if let Ok((out, _)) = &whole {
            // Each message is bounded; several frames may add up.
            assert!(out.len() <= frames.len().max(1) * LIMIT);
        }
    }
});
