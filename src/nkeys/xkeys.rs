//! Curve keys (`X...`) and nkeys' `xkv1` sealed messages, the encryption
//! auth callout uses between the server and its service.
//!
//! A curve key is an X25519 key in the nkeys text form (prefix `X`, seed
//! `SX...`). A sealed message is the four bytes `xkv1`, a random 24-byte
//! nonce, then a NaCl box of the message (X25519, then XSalsa20-Poly1305,
//! the authenticator first) from the sender's secret key to the
//! recipient's public key: `nkeys/xkeys.go`'s `Seal`/`Open`. The
//! cryptography is RustCrypto's `crypto_box`; only the framing is here.

use crypto_box::aead::Aead;
use crypto_box::{PublicKey as BoxPublic, SalsaBox, SecretKey};
use rand::RngCore;

use super::{decode_checked, encode_checked, NkeyError, KEY_LEN, PREFIX_SEED};
use crate::secret::Secret;

/// The prefix byte of a curve key (`X`).
const PREFIX_CURVE: u8 = 23 << 3;
/// What a sealed message starts with.
const XKV1: &[u8; 4] = b"xkv1";
/// Bytes of the nonce after [`XKV1`].
const NONCE_LEN: usize = 24;

/// Why a sealed message could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError;

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an xkv1 message sealed to this key by that sender")
    }
}

impl std::error::Error for OpenError {}

/// A public curve key, decoded and checked.
#[derive(Clone, PartialEq, Eq)]
pub struct CurvePublic {
    raw: [u8; KEY_LEN],
    text: String,
}

impl std::fmt::Debug for CurvePublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl CurvePublic {
    /// Decodes an `X...` key.
    pub fn parse(text: &str) -> Result<CurvePublic, NkeyError> {
        let body = decode_checked(text)?;
        let Some((&PREFIX_CURVE, key)) = body.split_first() else {
            return Err(NkeyError::WrongType { expected: "a public curve key (X...)" });
        };
        let raw: [u8; KEY_LEN] = key.try_into().map_err(|_| NkeyError::Encoding)?;
        Ok(CurvePublic { raw, text: text.to_owned() })
    }

    fn from_raw(raw: [u8; KEY_LEN]) -> CurvePublic {
        let mut body = Vec::with_capacity(1 + KEY_LEN);
        body.push(PREFIX_CURVE);
        body.extend_from_slice(&raw);
        CurvePublic { raw, text: encode_checked(body) }
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A curve key pair; `Debug` shows the public key only.
pub struct CurveKeyPair {
    secret: SecretKey,
    public: CurvePublic,
}

impl std::fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveKeyPair").field("public", &self.public).finish_non_exhaustive()
    }
}

impl CurveKeyPair {
    /// A fresh key pair from the operating system's CSPRNG.
    pub fn generate() -> CurveKeyPair {
        let mut secret = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        CurveKeyPair::from_secret(SecretKey::from(secret))
    }

    fn from_secret(secret: SecretKey) -> CurveKeyPair {
        let public = CurvePublic::from_raw(*secret.public_key().as_bytes());
        CurveKeyPair { secret, public }
    }

    /// The key pair of an `SX...` seed.
    pub fn from_seed(text: &str) -> Result<CurveKeyPair, NkeyError> {
        let body = decode_checked(text.trim())?;
        let [b1, b2, seed @ ..] = body.as_slice() else { return Err(NkeyError::Encoding) };
        let prefix = ((b1 & 0x07) << 5) | ((b2 & 0xF8) >> 3);
        if b1 & 0xF8 != PREFIX_SEED || prefix != PREFIX_CURVE {
            return Err(NkeyError::WrongType { expected: "a curve seed (SX...)" });
        }
        let seed: [u8; KEY_LEN] = seed.try_into().map_err(|_| NkeyError::Encoding)?;
        Ok(CurveKeyPair::from_secret(SecretKey::from(seed)))
    }

    /// The seed's text form (a secret).
    pub fn seed(&self) -> Secret {
        let mut body = Vec::with_capacity(2 + KEY_LEN);
        body.push(PREFIX_SEED | (PREFIX_CURVE >> 5));
        body.push((PREFIX_CURVE & 0x1F) << 3);
        body.extend_from_slice(&self.secret.to_bytes());
        Secret::new(encode_checked(body))
    }

    /// The public key.
    pub fn public(&self) -> &CurvePublic {
        &self.public
    }

    /// `message` sealed from this key to `recipient`.
    pub fn seal(&self, message: &[u8], recipient: &CurvePublic) -> Vec<u8> {
        let sealer = SalsaBox::new(&BoxPublic::from(recipient.raw), &self.secret);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encrypting into a Vec cannot fail (only a full fixed buffer can).
        let boxed = sealer.encrypt(&nonce.into(), message).unwrap_or_default();
        let mut out = Vec::with_capacity(XKV1.len() + NONCE_LEN + boxed.len());
        out.extend_from_slice(XKV1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&boxed);
        out
    }

    /// Opens a message `sender` sealed to this key.
    pub fn open(&self, sealed: &[u8], sender: &CurvePublic) -> Result<Vec<u8>, OpenError> {
        let rest = sealed.strip_prefix(XKV1.as_slice()).ok_or(OpenError)?;
        if rest.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, boxed) = rest.split_at(NONCE_LEN);
        let opener = SalsaBox::new(&BoxPublic::from(sender.raw), &self.secret);
        opener.decrypt(nonce.into(), boxed).map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_keys_round_trip_in_the_nkeys_text_form() {
        let pair = CurveKeyPair::generate();
        assert!(pair.public().as_str().starts_with('X'));
        let seed = pair.seed();
        assert!(seed.expose().starts_with("SX"), "{}", seed.expose());
        let again = CurveKeyPair::from_seed(seed.expose()).unwrap();
        assert_eq!(again.public(), pair.public());
        assert_eq!(CurvePublic::parse(pair.public().as_str()).unwrap(), *pair.public());
        // An account key is not a curve key, nor an account seed a curve seed.
        let account = crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::Account).unwrap();
        assert!(CurvePublic::parse(account.public().as_str()).is_err());
        assert!(CurveKeyPair::from_seed(account.seed().expose()).is_err());
    }

    #[test]
    fn sealed_messages_open_only_for_the_recipient_from_the_sender() {
        let (server, service, other) = (CurveKeyPair::generate(), CurveKeyPair::generate(), CurveKeyPair::generate());
        let sealed = server.seal(b"eyJhbGciOi", service.public());
        assert!(sealed.starts_with(b"xkv1"));
        assert_eq!(sealed.len(), 4 + 24 + 16 + 10);
        assert_eq!(service.open(&sealed, server.public()).unwrap(), b"eyJhbGciOi");
        assert_eq!(other.open(&sealed, server.public()), Err(OpenError));
        assert_eq!(service.open(&sealed, other.public()), Err(OpenError));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(service.open(&tampered, server.public()), Err(OpenError));
        assert_eq!(service.open(&sealed[..20], server.public()), Err(OpenError));
        assert_eq!(service.open(b"eyJ...", server.public()), Err(OpenError));
    }
}
