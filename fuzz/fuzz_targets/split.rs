//! How the split-invariance targets cut their input: shared, so every
//! target feeds its decoder the same way (`mod split;` in each).

/// `data` cut into chunks of 1 to 32 bytes, the lengths from a xorshift
/// seeded by `seed` (so a crash replays with the same cuts).
pub fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (state % 32) as usize + 1;
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}
