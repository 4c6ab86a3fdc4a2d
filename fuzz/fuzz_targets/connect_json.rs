//! CONNECT JSON on arbitrary bytes: no panic, and a password or token that
//! was read never shows in the options' `Debug` output (it is a `Secret`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::proto::ConnectOptions;

fuzz_target!(|data: &[u8]| {
    let Ok(opts) = ConnectOptions::parse(data) else { return };
    let shown = format!("{opts:?}");
    // Only secrets long and odd enough not to occur elsewhere by chance.
    let visible = |s: &str| s.len() >= 12 && !s.contains("redacted") && s.chars().all(|c| c.is_ascii_alphanumeric());
    for secret in [opts.pass.as_ref(), opts.auth_token.as_ref(), opts.jwt.as_ref()].into_iter().flatten() {
        let secret = secret.expose();
        let elsewhere = [&opts.user, &opts.name, &opts.lang, &opts.version, &opts.sig, &opts.nkey, &opts.account]
            .into_iter()
            .flatten()
            .any(|field| field.contains(secret));
        if visible(secret) && !elsewhere {
            assert!(!shown.contains(secret), "a secret reached Debug output");
        }
    }
});
