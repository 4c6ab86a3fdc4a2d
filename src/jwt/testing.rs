//! Signing tokens in unit tests (the interoperability tests use tokens of
//! the official Go library instead, see `vectors/` and `tests/jwtgen`).

use crate::nkeys::KeyPair;

/// A token with `registered` claims and `nats`, signed by `issuer`.
pub(crate) fn sign(issuer: &KeyPair, mut registered: serde_json::Value, nats: serde_json::Value) -> String {
    registered["nats"] = nats;
    super::sign(issuer, registered)
}
