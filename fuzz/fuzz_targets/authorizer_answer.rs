//! What an external authorizer sends back, on arbitrary bytes: an HTTP
//! authorizer's answer document, and a sealed (xkv1) auth callout answer.
//! No panic, no hang; an answer that admits names an account that exists,
//! and nothing opens a sealed message but its sender's and recipient's keys.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use warden::auth::{AccountDefaults, Claims, ConnectionFacts, Verdict};
use warden::delegate::http::judge;
use warden::nkeys::CurveKeyPair;
use warden::perms::PermissionSet;

fn keys() -> &'static (CurveKeyPair, CurveKeyPair) {
    static KEYS: OnceLock<(CurveKeyPair, CurveKeyPair)> = OnceLock::new();
    KEYS.get_or_init(|| (CurveKeyPair::generate(), CurveKeyPair::generate()))
}

fuzz_target!(|data: &[u8]| {
    let defaults =
        HashMap::from([("APP".to_owned(), AccountDefaults::Compiled(Arc::new(PermissionSet::unrestricted())))]);
    let facts = ConnectionFacts::new("127.0.0.1:4000".parse().unwrap());
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    if let Verdict::Accept(identity) = judge(&defaults, &Claims::default(), &facts, data, now) {
        assert_eq!(&*identity.account, "APP");
        assert!(identity.delegated);
    }
    let (server, service) = keys();
    assert!(server.open(data, service.public()).is_err(), "arbitrary bytes opened as a sealed message");
});
