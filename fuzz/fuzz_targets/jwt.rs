//! The JWT decoder on arbitrary text, as every claim type, and the
//! `.creds` undecorating: no panic, no hang, and whatever decodes has a
//! signature that verifies (so it can only be a token someone signed, and
//! arbitrary bytes essentially never are) with times that held.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::jwt::{self, AccountClaims, ActivationClaims, AuthorizationResponseClaims, OperatorClaims, UserClaims};

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let token = jwt::undecorate(text);
    if let Ok(user) = jwt::decode::<UserClaims>(token, NOW) {
        assert!(jwt::check_times(&user.registered, NOW).is_ok());
    }
    let _ = jwt::decode::<AccountClaims>(token, NOW);
    let _ = jwt::decode::<OperatorClaims>(token, NOW);
    let _ = jwt::decode::<ActivationClaims>(token, NOW);
    let _ = jwt::decode::<AuthorizationResponseClaims>(token, NOW);
});
