//! v1 JWTs (as `nsc` wrote them in 2018-2019), converted to the v2 layout
//! the way the official `nats-io/jwt` v2 library migrates them
//! (`loadClaims` and the `migrateV1` of `decoder_operator.go`,
//! `decoder_account.go`, `decoder_user.go`), which is what nats-server
//! 2.15.1 runs.
//!
//! What makes a token v1: a top-level `type` (v2 moved it into `nats`).
//! Its signature covers the base64url claims part alone, not
//! `header.claims` as in v2. The layout differs in where things are: `type`
//! and `tags` (and a user's `issuer_account`) sit beside the registered
//! claims. Only the fields the Go library's v1 structs carry survive:
//!
//! - operator: `signing_keys`, `account_server_url`,
//!   `operator_service_urls`, `system_account`;
//! - account: `imports`, `exports`, `signing_keys`, `revocations`, and the
//!   NATS and account `limits` (a limit left out is 0, as in Go's zero
//!   value: `limits: {}` allows no connection, in nats-server too);
//! - user: `pub`, `sub`, `resp`, `src`, `times`, `times_location`,
//!   `bearer_token`, and `subs`, `data`, `payload` (unlimited when left
//!   out); `max` (v1's deprecated limit) is dropped, as Go drops it.
//!
//! Where the Go library silently drops any other field of a v1 user, warden
//! refuses the token, as it refuses unknown fields in v2 users: a
//! restriction must not vanish unnoticed. Activation v1 tokens are not
//! converted (refused as version 1).

use serde_json::{Map, Value};

use super::JwtError;

/// The v1 claim type of a decoded claims object (its top-level `type`), or
/// `None` for a v2 token.
pub(super) fn claim_type(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("type").and_then(Value::as_str).filter(|t| !t.is_empty())
}

/// The v2 `nats` object for a v1 token of claim type `kind` whose claims
/// are `claims`.
pub(super) fn migrate(kind: &str, claims: &Map<String, Value>) -> Result<Value, JwtError> {
    let empty = Map::new();
    let v1 = match claims.get("nats") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(nats)) => nats,
        Some(_) => return Err(JwtError::Claims("v1 `nats` is not an object".to_owned())),
    };
    let mut nats = Map::new();
    let copy = |nats: &mut Map<String, Value>, keys: &[&str]| {
        for key in keys {
            if let Some(v) = v1.get(*key) {
                nats.insert((*key).to_owned(), v.clone());
            }
        }
    };
    match kind {
        "operator" => {
            copy(&mut nats, &["signing_keys", "account_server_url", "operator_service_urls", "system_account"])
        }
        "account" => {
            copy(&mut nats, &["imports", "exports", "signing_keys", "revocations"]);
            let mut limits = Map::new();
            if let Some(Value::Object(v1_limits)) = v1.get("limits") {
                const KEPT: &[&str] =
                    &["subs", "data", "payload", "imports", "exports", "wildcards", "disallow_bearer", "conn", "leaf"];
                for key in KEPT {
                    if let Some(v) = v1_limits.get(*key) {
                        limits.insert((*key).to_owned(), v.clone());
                    }
                }
            }
            nats.insert("limits".to_owned(), Value::Object(limits));
        }
        "user" => {
            const KEPT: &[&str] =
                &["pub", "sub", "resp", "src", "times", "times_location", "bearer_token", "subs", "data", "payload"];
            if let Some(unknown) = v1.keys().find(|k| !KEPT.contains(&k.as_str()) && k.as_str() != "max") {
                return Err(JwtError::Claims(format!("unknown field `{unknown}` in a v1 user JWT")));
            }
            copy(&mut nats, KEPT);
            for limit in ["subs", "data", "payload"] {
                nats.entry(limit).or_insert(Value::from(-1));
            }
            if let Some(account) = claims.get("issuer_account") {
                nats.insert("issuer_account".to_owned(), account.clone());
            }
        }
        _ => return Err(JwtError::Version(1)),
    }
    if let Some(tags) = claims.get("tags") {
        nats.insert("tags".to_owned(), tags.clone());
    }
    nats.insert("type".to_owned(), Value::from(kind));
    nats.insert("version".to_owned(), Value::from(1));
    Ok(Value::Object(nats))
}
