//! The gateway session on arbitrary bytes, with no socket: another
//! cluster's server that dialled this one (inbound), or the server this one
//! dialled (outbound).
//!
//! Input: two control bytes, then the bytes the peer sends. The first picks
//! the side and a prefix, so the fuzzer spends its time on both sides of
//! the login: nothing (the peer must log in, or be refused), a complete
//! gateway login, or, outbound, the other server's INFO. The second seeds
//! the chunk sizes. Checked: no panic; the bytes queued to the peer, the
//! bytes delivered to a local subscriber on `>` and the close reason are
//! the same whether the input arrives whole, in pseudo-random chunks or
//! one byte at a time; and after each connection the gateways are back at
//! rest (no link, no pending slot, no other cluster's interest held).
#![no_main]

mod split;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden::gateway::fuzzing::{Harness, Outcome, Role, LOGIN, REMOTE_INFO};

/// One harness for the whole run: building a broker per input would cost
/// more than the session, and gateways that do not come back to rest are a
/// find.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::new(std::time::Instant::now()).expect("the harness builds"))
}

/// Plays one connection and checks the gateways are at rest after it.
fn run<'a>(role: Role, chunks: impl IntoIterator<Item = &'a [u8]>, how: &str) -> Outcome {
    let harness = harness();
    let outcome = harness.run(role, chunks).expect("a pending slot is free");
    if let Err(left) = harness.at_rest() {
        panic!("fed {how}, the gateways are not at rest: {left}");
    }
    outcome
}

fuzz_target!(|data: &[u8]| {
    let [pick, seed, input @ ..] = data else { return };
    let (role, prefix): (Role, &[u8]) = match pick % 4 {
        0 => (Role::Inbound, b""),
        1 => (Role::Inbound, LOGIN),
        2 => (Role::Outbound, REMOTE_INFO),
        _ => (Role::Outbound, b""),
    };
    let input = [prefix, input].concat();
    let whole = run(role, [&input[..]], "whole");
    let chunked = run(role, split::chunks(&input, *seed), "in chunks");
    assert_eq!(whole, chunked, "chunked input made a different session");
    if input.len() <= 512 {
        let bytes = run(role, input.chunks(1), "byte at a time");
        assert_eq!(whole, bytes, "byte-at-a-time input made a different session");
    }
});
