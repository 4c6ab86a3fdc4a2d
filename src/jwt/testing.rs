//! Signing tokens in unit tests (the interoperability tests use tokens of
//! the official Go library instead, see `vectors/` and `tests/jwtgen`).

use crate::nkeys::KeyPair;

/// A token with `registered` claims and `nats`, signed by `issuer`.
pub(crate) fn sign(issuer: &KeyPair, mut registered: serde_json::Value, nats: serde_json::Value) -> String {
    registered["nats"] = nats;
    super::sign(issuer, registered)
}

/// A v1 token as `nsc` wrote them in 2018-2019: `claims` (with a top-level
/// `type`) under the header `{"typ":"jwt","alg":"ed25519"}`, the claims part
/// alone signed by `issuer`.
pub(crate) fn sign_v1(issuer: &KeyPair, mut claims: serde_json::Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    claims["iss"] = issuer.public().as_str().into();
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"jwt","alg":"ed25519"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(issuer.sign(body.as_bytes()));
    format!("{header}.{body}.{signature}")
}
