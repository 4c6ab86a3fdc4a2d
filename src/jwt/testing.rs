//! Signing tokens in unit tests (the interoperability tests use tokens of
//! the official Go library instead, see `vectors/` and `tests/jwtgen`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::nkeys::KeyPair;

/// A token with `registered` claims (`iss` is filled in) and `nats`,
/// signed by `issuer`.
pub(crate) fn sign(issuer: &KeyPair, mut registered: serde_json::Value, nats: serde_json::Value) -> String {
    registered["iss"] = issuer.public().as_str().into();
    registered["nats"] = nats;
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(registered.to_string());
    let signed = format!("{header}.{body}");
    let signature = URL_SAFE_NO_PAD.encode(issuer.sign(signed.as_bytes()));
    format!("{signed}.{signature}")
}
