//! `permessage-deflate` (RFC 7692) without context takeover either way, as
//! nats-server agrees it: each message is raw deflate on its own, its
//! trailing `00 00 ff ff` dropped. `flate2` (its pure-Rust backend) does
//! the compression; the size of what a message inflates to is bounded
//! while inflating, a chunk at a time, so a compression bomb costs at most
//! the limit.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// What RFC 7692 has the sender drop and the receiver put back.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Bytes inflated per step.
const CHUNK: usize = 16 * 1024;

/// Inflates one message, appending it to `out`. `Err(true)`: it would be
/// larger than `limit`; `Err(false)`: it is not valid deflate data.
pub fn inflate(compressed: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), bool> {
    let mut inflater = Decompress::new(false);
    let mut input: Vec<u8> = Vec::with_capacity(compressed.len() + TAIL.len());
    input.extend_from_slice(compressed);
    input.extend_from_slice(&TAIL);
    let start = out.len();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let consumed = usize::try_from(inflater.total_in()).map_err(|_| false)?;
        let before = inflater.total_out();
        let status = inflater.decompress(&input[consumed..], &mut chunk, FlushDecompress::Sync).map_err(|_| false)?;
        let produced = usize::try_from(inflater.total_out() - before).map_err(|_| false)?;
        if out.len() - start + produced > limit {
            return Err(true);
        }
        out.extend_from_slice(&chunk[..produced]);
        let all_in = usize::try_from(inflater.total_in()).map_err(|_| false)? >= input.len();
        match status {
            Status::StreamEnd => return Ok(()),
            _ if all_in && produced < CHUNK => return Ok(()),
            Status::BufError if produced == 0 => return Err(false),
            _ => {}
        }
    }
}

/// Deflates one message (raw, sync-flushed, the tail dropped).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut deflater = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        let consumed = usize::try_from(deflater.total_in()).unwrap_or(data.len()).min(data.len());
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        if deflater.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync).is_err() {
            break;
        }
        let done = usize::try_from(deflater.total_in()).is_ok_and(|n| n >= data.len());
        if done && out.ends_with(&TAIL) {
            break;
        }
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bounds_what_a_message_inflates_to() {
        let data: Vec<u8> = b"PUB foo 5\r\nhello\r\n".repeat(500);
        let packed = deflate(&data);
        assert!(packed.len() < data.len() / 10, "{}", packed.len());
        assert!(!packed.ends_with(&TAIL));
        let mut out = Vec::new();
        inflate(&packed, data.len(), &mut out).unwrap();
        assert_eq!(out, data);
        // One byte less room: refused, and nothing beyond the limit kept.
        let mut out = Vec::new();
        assert_eq!(inflate(&packed, data.len() - 1, &mut out), Err(true));
        assert!(out.len() < data.len());
        assert_eq!(inflate(b"\xff\xff\xff\xff\xff", 1024, &mut Vec::new()), Err(false));
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compresses to about 64 KiB.
        let bomb = deflate(&vec![0u8; 64 << 20]);
        let mut out = Vec::new();
        assert_eq!(inflate(&bomb, 1 << 20, &mut out), Err(true));
        assert!(out.len() <= 1 << 20);
        assert!(out.capacity() <= 2 << 20, "allocated {}", out.capacity());
    }

    #[test]
    fn inflates_what_a_browser_sends() {
        // "Hello" as RFC 7692 §7.2.3.1 gives it, compressed without context.
        let mut out = Vec::new();
        inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
    }
}
