//! The SPIFFE ID parser (`warden::spiffe`) and the strict mapping
//! (`warden::tls::spiffe_user`) on arbitrary text, checked against the
//! specification's grammar written out naively here:
//! - `SpiffeId::parse` accepts exactly `spiffe://` + a trust domain of 1 to
//!   255 bytes of `a-z 0-9 . - _` + one or more `/segment`s of
//!   `a-zA-Z0-9 . - _`, none `.` or `..`, 2,048 bytes at most, and what it
//!   accepts keeps the input's spelling, split where the grammar says;
//! - `TrustDomain::parse` accepts exactly the trust domains of that grammar,
//!   and a parsed ID is in its own trust domain;
//! - the strict mapping of a certificate whose one URI SAN is the input
//!   accepts exactly the IDs that parse, are of `example.org`, and name a user.
//!
//! The certificate decoder (`PeerIdentity::from_der`, which reads the CA
//! marks) also runs on the raw bytes: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::spiffe::{SpiffeId, TrustDomain};
use warden::tls::{spiffe_user, PeerIdentity};

fn domain_ok(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 255
        && d.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

fn segment_ok(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The naive grammar: `Some((trust domain, path))` for a valid workload ID.
fn naive(input: &str) -> Option<(&str, &str)> {
    let rest = input.strip_prefix("spiffe://")?;
    let at = rest.find('/')?;
    let (domain, path) = rest.split_at(at);
    let valid = input.len() <= 2048 && domain_ok(domain) && path[1..].split('/').all(segment_ok);
    valid.then_some((domain, path))
}

fuzz_target!(|data: &[u8]| {
    let _ = PeerIdentity::from_der(data);
    let Ok(input) = std::str::from_utf8(data) else { return };
    let parsed = SpiffeId::parse(input);
    match (&parsed, naive(input)) {
        (Ok(id), Some((domain, path))) => {
            assert_eq!((id.as_str(), id.trust_domain(), id.path()), (input, domain, path));
            let own = TrustDomain::parse(id.trust_domain()).expect("a parsed ID's trust domain parses");
            assert!(id.is_in(&own));
        }
        (Err(_), None) => {}
        (got, want) => panic!("{input:?}: parser {got:?}, grammar {want:?}"),
    }
    assert_eq!(TrustDomain::parse(input).is_ok(), domain_ok(input), "{input:?} as a trust domain");

    let example = TrustDomain::parse("example.org").expect("a valid trust domain");
    let peer = PeerIdentity { uris: vec![input.to_owned()], ..PeerIdentity::default() };
    let mapped = spiffe_user(&peer, &example, |name| name.len() % 2 == 0);
    let want = parsed.as_ref().is_ok_and(|id| id.trust_domain() == "example.org" && input.len() % 2 == 0);
    assert_eq!(mapped.is_ok(), want, "{input:?}: {mapped:?}");
});
