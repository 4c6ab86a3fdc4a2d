//! CONNECT JSON on arbitrary bytes: no panic, and a password, token or JWT
//! that was read never shows in the options' `Debug` output (it is a
//! `Secret`).
//!
//! Other fields may legitimately contain the secret's text, also through
//! `Debug`'s escaping (`"a\nb"` prints as `a\nb`), so the check compares the
//! secret's occurrences with those in the output of the same options
//! without their secrets. Only alphanumeric secrets of 12 bytes or more are
//! checked: they cannot straddle the punctuation between fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::proto::ConnectOptions;

fuzz_target!(|data: &[u8]| {
    let Ok(opts) = ConnectOptions::parse(data) else { return };
    let shown = format!("{opts:?}");
    let mut bare = opts.clone();
    bare.pass = None;
    bare.auth_token = None;
    bare.jwt = None;
    let baseline = format!("{bare:?}");
    let checkable = |s: &str| s.len() >= 12 && s.bytes().all(|b| b.is_ascii_alphanumeric());
    for secret in [&opts.pass, &opts.auth_token, &opts.jwt].into_iter().flatten() {
        let secret = secret.expose();
        if checkable(secret) {
            assert_eq!(
                shown.matches(secret).count(),
                baseline.matches(secret).count(),
                "a secret reached Debug output"
            );
        }
    }
});
