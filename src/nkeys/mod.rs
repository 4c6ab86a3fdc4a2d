//! NKeys: Ed25519 keys in NATS's text form, as the `nkeys` libraries write
//! them.
//!
//! A public key is base32 (RFC 4648, no padding) of a type prefix byte, the
//! 32-byte Ed25519 public key and a CRC-16/XMODEM of both, little-endian:
//! 56 characters starting with the type's letter (`U` user, `A` account,
//! `N` server, `O` operator, `C` cluster, `X` curve). A seed is the same
//! over two bytes that pack the seed prefix (`S`) with the type, then the
//! 32-byte Ed25519 seed: `SU...` for a user. Decoding checks the checksum,
//! then the prefix. The signing and verifying is `ring`'s Ed25519; nothing
//! cryptographic is written here, only the text encoding.

mod base32;
mod crc16;
mod xkeys;

use std::fmt;
use std::hash::{Hash, Hasher};

use base64::Engine;
use rand::RngCore;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};

use crate::secret::Secret;

pub use xkeys::{CurveKeyPair, CurvePublic, OpenError};

/// The prefix byte of a seed; the type follows in the next byte.
const PREFIX_SEED: u8 = 18 << 3;
/// Bytes of an Ed25519 public key or seed.
const KEY_LEN: usize = 32;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Random bytes in a connection nonce (nats-server's size).
const NONCE_LEN: usize = 11;

/// What a key identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// A user (`U`).
    User,
    /// An account (`A`).
    Account,
    /// A server (`N`).
    Server,
    /// An operator (`O`).
    Operator,
    /// A cluster (`C`).
    Cluster,
}

impl KeyType {
    fn prefix(self) -> u8 {
        match self {
            KeyType::User => 20 << 3,
            KeyType::Account => 0,
            KeyType::Server => 13 << 3,
            KeyType::Operator => 14 << 3,
            KeyType::Cluster => 2 << 3,
        }
    }

    fn from_prefix(prefix: u8) -> Option<KeyType> {
        [KeyType::User, KeyType::Account, KeyType::Server, KeyType::Operator, KeyType::Cluster]
            .into_iter()
            .find(|k| k.prefix() == prefix)
    }

    /// The type's name, as `warden nkey generate --type` takes it.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::User => "user",
            KeyType::Account => "account",
            KeyType::Server => "server",
            KeyType::Operator => "operator",
            KeyType::Cluster => "cluster",
        }
    }

    /// The type named `name`.
    pub fn from_name(name: &str) -> Option<KeyType> {
        [KeyType::User, KeyType::Account, KeyType::Server, KeyType::Operator, KeyType::Cluster]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key's text could not be used. No variant carries a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NkeyError {
    /// Not base32, or not the length of a key.
    Encoding,
    /// The checksum does not match.
    Checksum,
    /// A valid key of another type (or a seed where a public key was expected).
    WrongType {
        /// What was expected.
        expected: &'static str,
    },
    /// ring refused the key.
    Crypto,
}

impl fmt::Display for NkeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NkeyError::Encoding => f.write_str("not an nkey (base32 of the wrong length or alphabet)"),
            NkeyError::Checksum => f.write_str("nkey checksum does not match"),
            NkeyError::WrongType { expected } => write!(f, "not {expected}"),
            NkeyError::Crypto => f.write_str("the key was refused"),
        }
    }
}

impl std::error::Error for NkeyError {}

/// Decodes base32 text and checks its trailing CRC-16; returns the bytes
/// before the checksum.
fn decode_checked(text: &str) -> Result<Vec<u8>, NkeyError> {
    let raw = base32::decode(text.as_bytes()).ok_or(NkeyError::Encoding)?;
    if raw.len() < 3 {
        return Err(NkeyError::Encoding);
    }
    let (body, sum) = raw.split_at(raw.len() - 2);
    if crc16::checksum(body) != u16::from_le_bytes([sum[0], sum[1]]) {
        return Err(NkeyError::Checksum);
    }
    Ok(body.to_vec())
}

fn encode_checked(mut body: Vec<u8>) -> String {
    let sum = crc16::checksum(&body);
    body.extend_from_slice(&sum.to_le_bytes());
    base32::encode(&body)
}

/// A public key in its text form, decoded and checked.
#[derive(Clone)]
pub struct PublicKey {
    kind: KeyType,
    raw: [u8; KEY_LEN],
    text: String,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PublicKey {
    /// Decodes a public key of any type.
    pub fn parse(text: &str) -> Result<PublicKey, NkeyError> {
        let body = decode_checked(text)?;
        let (prefix, key) = body.split_first().ok_or(NkeyError::Encoding)?;
        let kind = KeyType::from_prefix(*prefix).ok_or(NkeyError::WrongType { expected: "a public nkey" })?;
        let raw: [u8; KEY_LEN] = key.try_into().map_err(|_| NkeyError::Encoding)?;
        Ok(PublicKey { kind, raw, text: text.to_owned() })
    }

    /// Decodes a public key that must be of type `kind`.
    pub fn parse_as(text: &str, kind: KeyType) -> Result<PublicKey, NkeyError> {
        let key = PublicKey::parse(text)?;
        if key.kind != kind {
            return Err(NkeyError::WrongType { expected: public_name(kind) });
        }
        Ok(key)
    }

    fn from_raw(kind: KeyType, raw: [u8; KEY_LEN]) -> PublicKey {
        let mut body = Vec::with_capacity(1 + KEY_LEN);
        body.push(kind.prefix());
        body.extend_from_slice(&raw);
        PublicKey { kind, raw, text: encode_checked(body) }
    }

    /// The key's type.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `signature` (64 bytes) is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.raw).verify(message, signature).is_ok()
    }
}

fn public_name(kind: KeyType) -> &'static str {
    match kind {
        KeyType::User => "a public nkey for a user",
        KeyType::Account => "a public nkey for an account",
        KeyType::Server => "a public nkey for a server",
        KeyType::Operator => "a public nkey for an operator",
        KeyType::Cluster => "a public nkey for a cluster",
    }
}

/// A key pair, made from a seed; `Debug` shows the public key only.
pub struct KeyPair {
    kind: KeyType,
    seed: [u8; KEY_LEN],
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair").field("public", &self.public).finish_non_exhaustive()
    }
}

impl KeyPair {
    fn from_raw_seed(kind: KeyType, seed: [u8; KEY_LEN]) -> Result<KeyPair, NkeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| NkeyError::Crypto)?;
        let raw: [u8; KEY_LEN] = pair.public_key().as_ref().try_into().map_err(|_| NkeyError::Crypto)?;
        Ok(KeyPair { kind, seed, pair, public: PublicKey::from_raw(kind, raw) })
    }

    /// A fresh key pair of type `kind`, from the operating system's CSPRNG.
    pub fn generate(kind: KeyType) -> Result<KeyPair, NkeyError> {
        let mut seed = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        KeyPair::from_raw_seed(kind, seed)
    }

    /// The key pair of a seed (`SU...`, `SA...`, ...).
    pub fn from_seed(text: &str) -> Result<KeyPair, NkeyError> {
        let body = decode_checked(text.trim())?;
        let [b1, b2, seed @ ..] = body.as_slice() else { return Err(NkeyError::Encoding) };
        if b1 & 0xF8 != PREFIX_SEED {
            return Err(NkeyError::WrongType { expected: "a seed" });
        }
        let prefix = ((b1 & 0x07) << 5) | ((b2 & 0xF8) >> 3);
        let kind = KeyType::from_prefix(prefix).ok_or(NkeyError::WrongType { expected: "a seed" })?;
        let seed: [u8; KEY_LEN] = seed.try_into().map_err(|_| NkeyError::Encoding)?;
        KeyPair::from_raw_seed(kind, seed)
    }

    /// The seed's text form (a secret: keep it out of logs).
    pub fn seed(&self) -> Secret {
        let prefix = self.kind.prefix();
        let mut body = Vec::with_capacity(2 + KEY_LEN);
        body.push(PREFIX_SEED | (prefix >> 5));
        body.push((prefix & 0x1F) << 3);
        body.extend_from_slice(&self.seed);
        Secret::new(encode_checked(body))
    }

    /// The public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

/// A signature as clients send it in CONNECT `sig`: base64url without
/// padding, or (as nats-server also accepts) standard base64.
pub fn decode_signature(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.decode(text).or_else(|_| STANDARD.decode(text)).ok().filter(|s| s.len() == SIGNATURE_LEN)
}

/// RFC 4648 base32 without padding (what the Go JWT library writes a
/// claims hash, `jti`, in).
pub fn base32_std(bytes: &[u8]) -> String {
    base32::encode(bytes)
}

/// A fresh connection nonce for INFO: 11 bytes from the CSPRNG, base64url
/// without padding; clients sign its ASCII text.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests;
