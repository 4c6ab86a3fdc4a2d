//! NATS JWTs: the operator, account, user and activation claims of NATS's
//! decentralized auth, as the official `nats-io/jwt` v2 library writes them.
//!
//! A token is three base64url parts without padding: the header
//! `{"typ":"JWT","alg":"ed25519-nkey"}` (the older `ed25519` is accepted,
//! as nats-server does), the claims JSON, and the Ed25519 signature of the
//! ASCII `header.claims` by the issuer's nkey (`iss`). No JWT crate speaks
//! `ed25519-nkey`, so this is the small encoding layer; the signature check
//! is `ring`'s, through [`crate::nkeys`].
//!
//! [`decode`] checks everything a token says about itself: the header, the
//! claim type and version (v2, or a v1 operator, account or user token,
//! converted as the Go library does: see `v1.rs`),
//! the key types of issuer and subject, the signature, and `exp`/`nbf`
//! against `now`. Whether the issuer is *trusted* is the caller's question
//! (the operator's keys for an account, the account's keys for a user).

pub mod claims;
mod v1;

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::Digest;

use crate::nkeys::{KeyPair, KeyType, PublicKey};

pub use claims::{
    AccountClaims, ActivationClaims, AuthorizationResponseClaims, ExportType, JwtExport, JwtImport, JwtLimits,
    JwtPermissions, JwtTrace, OperatorClaims, Rules, SigningKey, TimeRange, UserClaims, UserScope, WeightedMapping,
};

/// The longest token accepted (an account JWT with many imports and
/// exports is a few KiB; a user JWT arrives in CONNECT, which
/// `max_control_line` bounds anyway).
pub const MAX_TOKEN_LEN: usize = 256 * 1024;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url parts, or longer than [`MAX_TOKEN_LEN`].
    Format(&'static str),
    /// The header is not a NATS JWT header.
    Header(String),
    /// The claims are not the JSON of this claim type.
    Claims(String),
    /// A claim type other than the one expected.
    WrongType {
        /// What was expected (`user`, `account`, ...).
        expected: &'static str,
        /// What the token says.
        found: String,
    },
    /// Not a version 2 token.
    Version(u64),
    /// `iss` or `sub` is not a public nkey of the right type.
    Key(&'static str),
    /// The signature does not verify with the issuer's key.
    Signature,
    /// `exp` is in the past.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Format(why) => write!(f, "not a JWT: {why}"),
            JwtError::Header(why) => write!(f, "not a NATS JWT header: {why}"),
            JwtError::Claims(why) => write!(f, "claims do not parse: {why}"),
            JwtError::WrongType { expected, found } => write!(f, "expected a {expected} JWT, found {found:?}"),
            JwtError::Version(v) => {
                write!(f, "JWT version {v} is not supported (only version 2; reissue it with a current nsc)")
            }
            JwtError::Key(what) => write!(f, "{what}"),
            JwtError::Signature => f.write_str("signature does not verify with the issuer's key"),
            JwtError::Expired => f.write_str("JWT has expired"),
            JwtError::NotYetValid => f.write_str("JWT is not valid yet (nbf)"),
        }
    }
}

impl std::error::Error for JwtError {}

/// A claim type: the `nats` part of a token, and what its keys must be.
pub trait ClaimType: DeserializeOwned {
    /// `nats.type`.
    const TYPE: &'static str;
    /// The key types that may issue it.
    const ISSUERS: &'static [KeyType];
    /// The key type of its subject.
    const SUBJECT: KeyType;
}

/// The registered claims every NATS JWT carries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct Registered {
    /// `jti`: the claims' hash (an id, not checked: it carries no trust).
    pub jti: String,
    /// `iat`: issued at, Unix seconds (revocations compare with it).
    pub iat: i64,
    /// `iss`: the issuer's public nkey.
    pub iss: String,
    /// `sub`: the subject's public nkey.
    pub sub: String,
    /// `name`.
    pub name: String,
    /// `aud`.
    pub aud: String,
    /// `exp`: expiry, Unix seconds; 0 = never.
    pub exp: i64,
    /// `nbf`: not before, Unix seconds; 0 = always.
    pub nbf: i64,
}

/// A decoded, self-consistent token: signature verified, times checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwt<T> {
    /// The registered claims.
    pub registered: Registered,
    /// The issuer's key (verified the signature).
    pub issuer: PublicKey,
    /// The `nats` claims.
    pub nats: T,
    /// The token as received (for LOOKUP answers and the resolver's files).
    pub token: String,
}

#[derive(Deserialize)]
struct Header {
    typ: String,
    alg: String,
}

/// Only the part of `nats` that says what the rest is.
#[derive(Deserialize)]
struct Kind {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    version: u64,
}

/// Decodes and verifies a token of claim type `T` at `now` (Unix seconds).
pub fn decode<T: ClaimType>(token: &str, now: i64) -> Result<Jwt<T>, JwtError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Format("longer than 256 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(body), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Format("expected three parts separated by '.'"));
    };
    let header: Header = serde_json::from_slice(&b64(header)?).map_err(|e| JwtError::Header(e.to_string()))?;
    if !header.typ.eq_ignore_ascii_case("JWT") {
        return Err(JwtError::Header(format!("type {:?}", header.typ)));
    }
    let alg = header.alg.to_ascii_lowercase();
    if alg != "ed25519-nkey" && alg != "ed25519" {
        return Err(JwtError::Header(format!("algorithm {:?}", header.alg)));
    }
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&b64(body)?).map_err(|e| JwtError::Claims(e.to_string()))?;
    let registered = Registered::deserialize(&serde_json::Value::Object(claims.clone()))
        .map_err(|e| JwtError::Claims(e.to_string()))?;
    // A v1 token signs its claims part alone; v2 signs `header.claims`.
    let (nats, signed) = match v1::claim_type(&claims) {
        Some(kind) if kind != T::TYPE => return Err(JwtError::WrongType { expected: T::TYPE, found: kind.to_owned() }),
        Some(kind) => (v1::migrate(kind, &claims)?, body),
        None => {
            let nats = claims.get("nats").cloned().unwrap_or_default();
            let kind = Kind::deserialize(&nats).map_err(|e| JwtError::Claims(e.to_string()))?;
            if kind.kind != T::TYPE {
                return Err(JwtError::WrongType { expected: T::TYPE, found: kind.kind });
            }
            if kind.version != 2 {
                return Err(JwtError::Version(kind.version));
            }
            (nats, &token[..header_and_body_len(token)])
        }
    };
    let issuer = PublicKey::parse(&registered.iss).map_err(|_| JwtError::Key("iss is not a public nkey"))?;
    if !T::ISSUERS.contains(&issuer.kind()) {
        return Err(JwtError::Key("iss is not a key of a type that may issue this JWT"));
    }
    if PublicKey::parse_as(&registered.sub, T::SUBJECT).is_err() {
        return Err(JwtError::Key("sub is not a public nkey of the JWT's subject type"));
    }
    let signature = b64(signature)?;
    if !issuer.verify(signed.as_bytes(), &signature) {
        return Err(JwtError::Signature);
    }
    check_times(&registered, now)?;
    let nats = T::deserialize(nats).map_err(|e| JwtError::Claims(e.to_string()))?;
    Ok(Jwt { registered, issuer, nats, token: token.to_owned() })
}

/// `exp` and `nbf` against `now`.
pub fn check_times(registered: &Registered, now: i64) -> Result<(), JwtError> {
    if registered.exp > 0 && now > registered.exp {
        return Err(JwtError::Expired);
    }
    if registered.nbf > 0 && registered.nbf > now {
        return Err(JwtError::NotYetValid);
    }
    Ok(())
}

fn header_and_body_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Format("a part is not base64url without padding"))
}

/// The JWT inside a decorated file (`nsc`'s and `.creds` files:
/// `-----BEGIN NATS ... JWT-----` / `------END ...`), or the text itself
/// when it is not decorated.
pub fn undecorate(text: &str) -> &str {
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.starts_with("-----BEGIN") && line.contains("JWT") {
            return lines.find(|l| !l.is_empty()).unwrap_or_default();
        }
    }
    text.trim()
}

/// Signs `claims` (registered claims and `nats`) as a JWT issued by
/// `issuer` (whose key becomes `iss`). For what the server itself issues
/// (auth callout requests; tests and benchmarks).
pub fn sign(issuer: &KeyPair, mut claims: serde_json::Value) -> String {
    claims["iss"] = issuer.public().as_str().into();
    // `jti` as the Go library makes it: base32 (no padding) of the
    // SHA-512/256 of the claims without one.
    if let Some(map) = claims.as_object_mut() {
        map.remove("jti");
    }
    let digest = sha2::Sha512_256::digest(claims.to_string().as_bytes());
    claims["jti"] = crate::nkeys::base32_std(&digest).into();
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let signature = URL_SAFE_NO_PAD.encode(issuer.sign(signed.as_bytes()));
    format!("{signed}.{signature}")
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
