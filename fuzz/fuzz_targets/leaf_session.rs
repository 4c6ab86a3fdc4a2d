//! The leaf node session on arbitrary bytes, with no socket: a leaf's bytes
//! to this server as the hub, or a hub's to this server as the leaf.
//!
//! Input: two control bytes, then the bytes the peer sends. The first picks
//! the role and a prefix, so the fuzzer spends its time on both sides of
//! the login: nothing (the leaf must log in itself, or be refused), a
//! CONNECT as `leaf` (may do anything) or as `edge` (publish `up.>`,
//! subscribe `down.>`), or, as the leaf, the hub's INFO. The second seeds
//! the chunk sizes. Checked: no panic; the bytes queued to the peer, the
//! bytes delivered to a local subscriber on `>` and the close reason are
//! the same whether the input arrives whole, in pseudo-random chunks or
//! one byte at a time; and after each connection the hub is back at rest
//! (no interest in the account's router but the local subscriber's, none
//! counted by the hub, no leaf registered, pending or counted).
#![no_main]

mod split;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden::leaf::fuzzing::{Harness, Outcome, Role, HUB_INFO, LOGIN_EDGE, LOGIN_LEAF};

/// One hub for the whole run: building a broker per input would cost more
/// than the session, and a hub that does not come back to rest is a find.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::new(std::time::Instant::now()).expect("the harness builds"))
}

/// Plays one connection and checks the hub is at rest after it.
fn run<'a>(role: Role, chunks: impl IntoIterator<Item = &'a [u8]>, how: &str) -> Outcome {
    let harness = harness();
    let outcome = harness.run(role, chunks).expect("a pending slot is free");
    if let Err(left) = harness.at_rest() {
        panic!("fed {how}, the hub is not at rest: {left}");
    }
    outcome
}

fuzz_target!(|data: &[u8]| {
    let [pick, seed, input @ ..] = data else { return };
    let (role, prefix): (Role, &[u8]) = match pick % 5 {
        0 => (Role::Hub, b""),
        1 => (Role::Hub, LOGIN_LEAF),
        2 => (Role::Hub, LOGIN_EDGE),
        3 => (Role::Spoke, HUB_INFO),
        _ => (Role::Spoke, b""),
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
