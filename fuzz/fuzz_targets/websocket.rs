//! The WebSocket decoders on arbitrary bytes: the upgrade request head and
//! a server's answer head, and client frames (and, in the client role, a
//! server's) fed whole and split at an arbitrary point, with and without
//! compression, as whole frames and in place as the transport decodes them. No panic, no hang; the feedings agree (in place, a frame
//! cut at the end passes on what of it came); nothing decodes to more than
//! the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::proto::websocket::frame::{Control, Decoder};
use warden::proto::websocket::handshake;

const LIMIT: usize = 64 * 1024;

/// The decoders under test: a server's with and without compression, and
/// a client's (of a server's frames).
fn decoder(role: u8) -> Decoder {
    match role {
        0 => Decoder::new(LIMIT, false),
        1 => Decoder::new(LIMIT, true),
        _ => Decoder::of_server(LIMIT),
    }
}

fn decode(input: &[u8], split: usize, role: u8) -> Result<(Vec<u8>, usize), u16> {
    let mut decoder = decoder(role);
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
fn in_place(input: &[u8], split: usize, role: u8) -> Result<(Vec<u8>, usize), u16> {
    let mut decoder = decoder(role);
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
        let _ = handshake::check_answer(&data[..end], "dGhlIHNhbXBsZSBub25jZQ==");
    }
    let Some((&split, frames)) = data.split_first() else { return };
    for role in 0..3 {
        let whole = decode(frames, frames.len(), role);
        let halves = decode(frames, usize::from(split) * frames.len() / 256, role);
        if let (Ok(a), Ok(b)) = (&whole, &halves) {
            assert_eq!(a, b, "split feeding changed the stream");
        }
        if let (Ok(a), Ok(b)) = (&whole, &in_place(frames, usize::from(split) * frames.len() / 256, role)) {
            assert!(b.0.starts_with(&a.0), "in place changed the stream");
        }
        if let Ok((out, _)) = &whole {
            // Each message is bounded; several frames may add up.
            assert!(out.len() <= frames.len().max(1) * LIMIT);
        }
    }
});
