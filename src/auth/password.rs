//! Stored passwords, parsed once at config load: argon2 PHC strings (the
//! recommended form, made by `warden passwd`), bcrypt hashes (so configs from
//! nats-server keep working) and plain text.
//!
//! - Parse, don't guess: a string that starts like a hash (`$argon2…`,
//!   `$2?$`, or any `$scheme$…`) must be a valid hash of a supported scheme,
//!   or loading fails. It is never taken as a plain-text password, which
//!   would let anyone who can read the config log in with the hash itself.
//! - Verification is expensive on purpose (argon2, bcrypt): callers run it
//!   off the async reactor, behind a bound on concurrent checks. Parsing
//!   rejects parameters above [`MAX_ARGON2_M_COST_KIB`], [`MAX_ARGON2_T_COST`],
//!   [`MAX_ARGON2_P_COST`] and [`MAX_BCRYPT_COST`], so one config line cannot
//!   make every check take minutes or gigabytes.
//! - Plain text is kept only as an argon2id digest of itself (minimal
//!   parameters, random salt) and a candidate is digested the same way; the
//!   two fixed-length digests are compared in constant time, so neither the
//!   position of the first difference nor the stored length shows in timing.
//! - An unknown user must cost what a wrong password costs: see
//!   [`dummy_verify`] and [`PasswordHash::dummy_like`].
//! - bcrypt uses only the first 72 bytes of a password (as in every bcrypt
//!   implementation); another reason to migrate to argon2id.

use std::fmt;
use std::hint::black_box;
use std::sync::OnceLock;

use argon2::password_hash::{self, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// argon2 memory cost used by [`hash_password`], in KiB (19 MiB): the OWASP
/// minimum recommendation for argon2id, with [`ARGON2_T_COST`] passes.
pub const ARGON2_M_COST_KIB: u32 = 19_456;
/// argon2 passes used by [`hash_password`].
pub const ARGON2_T_COST: u32 = 2;
/// argon2 lanes used by [`hash_password`].
pub const ARGON2_P_COST: u32 = 1;

/// Largest argon2 memory cost accepted from a config, in KiB (1 GiB). Each
/// concurrent verification allocates this much.
pub const MAX_ARGON2_M_COST_KIB: u32 = 1 << 20;
/// Largest argon2 pass count accepted from a config.
pub const MAX_ARGON2_T_COST: u32 = 32;
/// Largest argon2 lane count accepted from a config.
pub const MAX_ARGON2_P_COST: u32 = 16;
/// Largest bcrypt cost accepted from a config (cost 16 is already seconds
/// per check).
pub const MAX_BCRYPT_COST: u32 = 16;

/// A fixed argon2id hash with the [`hash_password`] parameters, of a random
/// password nobody kept. [`dummy_verify`] checks candidates against it.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$L5H7PNUW2ayJ7S9R9DxzzA$O2IIYPbYDmRnEEqfWvBjq+4ocNsS9iLz57JIzJljP1w";

/// Which scheme a stored password uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordKind {
    /// argon2id PHC string: the recommended form.
    Argon2id,
    /// argon2i PHC string.
    Argon2i,
    /// argon2d PHC string.
    Argon2d,
    /// bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`), as nats-server configs hold.
    Bcrypt,
    /// Plain text: accepted, but the config should warn.
    PlainText,
}

impl PasswordKind {
    /// Whether the stored form is a hash rather than the password itself.
    pub fn is_hash(self) -> bool {
        self != PasswordKind::PlainText
    }

    /// Whether this is the form warden recommends (argon2id); the config
    /// warns about every other kind.
    pub fn is_recommended(self) -> bool {
        self == PasswordKind::Argon2id
    }
}

impl fmt::Display for PasswordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PasswordKind::Argon2id => "argon2id",
            PasswordKind::Argon2i => "argon2i",
            PasswordKind::Argon2d => "argon2d",
            PasswordKind::Bcrypt => "bcrypt",
            PasswordKind::PlainText => "plain text",
        })
    }
}

/// Why a stored password could not be used, or a password not hashed. No
/// variant carries the password or the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password (stored or to hash) is empty.
    Empty,
    /// Starts with `$argon2` but is not a valid argon2 PHC string.
    MalformedArgon2(String),
    /// Starts with `$2?$` but is not a valid bcrypt hash.
    MalformedBcrypt(&'static str),
    /// A `$scheme$…` hash of a scheme warden does not verify.
    UnsupportedScheme(String),
    /// A valid hash whose cost parameters exceed warden's limits.
    TooExpensive(&'static str),
    /// Hashing failed.
    Hashing(String),
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordError::Empty => f.write_str("password is empty"),
            PasswordError::MalformedArgon2(why) => write!(f, "malformed argon2 hash: {why}"),
            PasswordError::MalformedBcrypt(why) => write!(f, "malformed bcrypt hash: {why}"),
            PasswordError::UnsupportedScheme(id) => {
                write!(f, "unsupported password hash scheme \"${id}$\": use an argon2id hash from `warden passwd`")
            }
            PasswordError::TooExpensive(why) => write!(f, "password hash too expensive: {why}"),
            PasswordError::Hashing(why) => write!(f, "password hashing failed: {why}"),
        }
    }
}

impl std::error::Error for PasswordError {}

impl From<password_hash::Error> for PasswordError {
    fn from(e: password_hash::Error) -> Self {
        PasswordError::MalformedArgon2(e.to_string())
    }
}

impl From<argon2::Error> for PasswordError {
    fn from(e: argon2::Error) -> Self {
        PasswordError::MalformedArgon2(e.to_string())
    }
}

/// A stored password, parsed and checked at config load. `Debug` shows the
/// kind only.
#[derive(Clone)]
pub struct PasswordHash {
    stored: Stored,
}

#[derive(Clone)]
enum Stored {
    /// The PHC string, re-parsed per verification (cheap next to argon2).
    Argon2 { phc: String, kind: PasswordKind },
    /// The full 60-byte bcrypt string.
    Bcrypt { hash: String },
    /// An argon2id digest of the plain-text password (see [`plain_digest`]).
    Plain { salt: [u8; 16], digest: [u8; 32] },
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash").field("kind", &self.kind()).finish_non_exhaustive()
    }
}

impl std::str::FromStr for PasswordHash {
    type Err = PasswordError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PasswordHash::parse(s)
    }
}

impl TryFrom<&Secret> for PasswordHash {
    type Error = PasswordError;

    fn try_from(stored: &Secret) -> Result<Self, Self::Error> {
        PasswordHash::parse(stored.expose())
    }
}

impl PasswordHash {
    /// Parses a config's password value: an argon2 PHC string, a bcrypt hash,
    /// or plain text. Hash-shaped strings that do not parse are errors.
    pub fn parse(stored: &str) -> Result<PasswordHash, PasswordError> {
        if stored.is_empty() {
            return Err(PasswordError::Empty);
        }
        let stored = if stored.starts_with("$argon2") {
            parse_argon2(stored)?
        } else if looks_like_bcrypt(stored) {
            parse_bcrypt(stored)?;
            Stored::Bcrypt { hash: stored.to_owned() }
        } else if let Some(id) = scheme_id(stored) {
            return Err(PasswordError::UnsupportedScheme(id.to_owned()));
        } else {
            let mut salt = [0u8; 16];
            OsRng.fill_bytes(&mut salt);
            let digest = plain_digest(&salt, stored.as_bytes())
                .ok_or_else(|| PasswordError::Hashing("password too long".into()))?;
            Stored::Plain { salt, digest }
        };
        Ok(PasswordHash { stored })
    }

    /// The scheme, for config warnings.
    pub fn kind(&self) -> PasswordKind {
        match &self.stored {
            Stored::Argon2 { kind, .. } => *kind,
            Stored::Bcrypt { .. } => PasswordKind::Bcrypt,
            Stored::Plain { .. } => PasswordKind::PlainText,
        }
    }

    /// The scheme and cost parameters, which decide how long a verification
    /// takes (`argon2id m=19456,t=2,p=1`, `bcrypt cost 11`, `plain text`).
    /// Two hashes of one class cost the same to verify.
    pub fn cost_class(&self) -> String {
        match &self.stored {
            Stored::Argon2 { phc, kind } => {
                let params = password_hash::PasswordHash::new(phc)
                    .ok()
                    .and_then(|p| Params::try_from(&p).ok())
                    .map(|p| format!("m={},t={},p={}", p.m_cost(), p.t_cost(), p.p_cost()))
                    .unwrap_or_default();
                format!("{kind} {params}")
            }
            Stored::Bcrypt { hash } => format!("bcrypt cost {}", parse_bcrypt(hash).unwrap_or_default()),
            Stored::Plain { .. } => PasswordKind::PlainText.to_string(),
        }
    }

    /// Whether `candidate` is the password. Blocking and, for hashes,
    /// deliberately slow: call it off the async reactor.
    pub fn verify(&self, candidate: &str) -> bool {
        match &self.stored {
            Stored::Argon2 { phc, .. } => match password_hash::PasswordHash::new(phc) {
                Ok(parsed) => Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok(),
                Err(_) => false,
            },
            Stored::Bcrypt { hash } => bcrypt::verify(candidate, hash).unwrap_or(false),
            Stored::Plain { salt, digest } => match plain_digest(salt, candidate.as_bytes()) {
                Some(d) => d.ct_eq(digest).into(),
                None => false,
            },
        }
    }

    /// A hash of a random, forgotten password with the same scheme and cost
    /// as this one. An authenticator whose users are not hashed with the
    /// [`hash_password`] parameters verifies unknown users against this, so
    /// they cost the same as a wrong password. Costs one hash to make.
    pub fn dummy_like(&self) -> Result<PasswordHash, PasswordError> {
        let mut random = [0u8; 24];
        OsRng.fill_bytes(&mut random);
        let password = hex(&random);
        match &self.stored {
            Stored::Argon2 { phc, .. } => {
                let parsed = password_hash::PasswordHash::new(phc)?;
                let algorithm = Algorithm::try_from(parsed.algorithm)?;
                let version = match parsed.version {
                    Some(v) => Version::try_from(v)?,
                    None => Version::default(),
                };
                let params = Params::try_from(&parsed)?;
                let salt = SaltString::generate(&mut OsRng);
                let phc = Argon2::new(algorithm, version, params)
                    .hash_password(password.as_bytes(), &salt)
                    .map_err(|e| PasswordError::Hashing(e.to_string()))?
                    .to_string();
                PasswordHash::parse(&phc)
            }
            Stored::Bcrypt { hash } => {
                let cost = parse_bcrypt(hash)?;
                let made = bcrypt::hash(&password, cost).map_err(|e| PasswordError::Hashing(e.to_string()))?;
                PasswordHash::parse(&made)
            }
            Stored::Plain { .. } => PasswordHash::parse(&password),
        }
    }
}

/// Whether a config value is hash-shaped (argon2, bcrypt or another
/// `$scheme$` string) rather than a plain-text password. Hash-shaped values
/// of unsupported schemes fail [`PasswordHash::parse`].
pub fn is_hash(stored: &str) -> bool {
    stored.starts_with("$argon2") || looks_like_bcrypt(stored) || scheme_id(stored).is_some()
}

/// Hashes a password as argon2id with [`ARGON2_M_COST_KIB`],
/// [`ARGON2_T_COST`] and [`ARGON2_P_COST`] and a random 16-byte salt, giving
/// the PHC string for the config (what `warden passwd` prints).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = recommended_argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(hash.to_string())
}

/// Verifies `candidate` against a fixed argon2id hash with the
/// [`hash_password`] parameters and returns `false`: what an authenticator
/// does for an unknown user, so that costs as much as a wrong password.
pub fn dummy_verify(candidate: &str) -> bool {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    // A constant that the unit tests parse: it cannot fail at run time.
    #[allow(clippy::expect_used)]
    let dummy = DUMMY.get_or_init(|| PasswordHash::parse(DUMMY_HASH).expect("valid dummy hash"));
    black_box(dummy.verify(black_box(candidate)));
    false
}

fn recommended_argon2() -> Argon2<'static> {
    // Constants within argon2's ranges (tested): this cannot fail at run time.
    #[allow(clippy::expect_used)]
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks everything verification will need, so a hash that parses here
/// can only fail to verify because the password is wrong.
fn parse_argon2(stored: &str) -> Result<Stored, PasswordError> {
    let parsed = password_hash::PasswordHash::new(stored)?;
    let kind = match Algorithm::try_from(parsed.algorithm)? {
        Algorithm::Argon2id => PasswordKind::Argon2id,
        Algorithm::Argon2i => PasswordKind::Argon2i,
        Algorithm::Argon2d => PasswordKind::Argon2d,
    };
    if let Some(v) = parsed.version {
        Version::try_from(v)?;
    }
    let params = Params::try_from(&parsed)?;
    let salt = parsed.salt.ok_or_else(|| PasswordError::MalformedArgon2("no salt".into()))?;
    let mut buf = [0u8; 64];
    if salt.decode_b64(&mut buf)?.len() < argon2::MIN_SALT_LEN {
        return Err(PasswordError::MalformedArgon2("salt too short".into()));
    }
    if parsed.hash.is_none() {
        return Err(PasswordError::MalformedArgon2("no hash output".into()));
    }
    if params.m_cost() > MAX_ARGON2_M_COST_KIB {
        return Err(PasswordError::TooExpensive("argon2 memory cost above 1 GiB"));
    }
    if params.t_cost() > MAX_ARGON2_T_COST {
        return Err(PasswordError::TooExpensive("argon2 time cost above 32"));
    }
    if params.p_cost() > MAX_ARGON2_P_COST {
        return Err(PasswordError::TooExpensive("argon2 parallelism above 16"));
    }
    Ok(Stored::Argon2 { phc: stored.to_owned(), kind })
}

/// `$2` + one byte + `$`: the shape nats-server treats as bcrypt.
fn looks_like_bcrypt(stored: &str) -> bool {
    let b = stored.as_bytes();
    b.len() >= 4 && b.starts_with(b"$2") && b[3] == b'$'
}

/// The bcrypt base-64 alphabet.
const BCRYPT_ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Validates `$2v$NN$<22 salt chars><31 hash chars>` exactly (the bcrypt
/// crate's own parser tolerates extra `$`) and returns the cost.
fn parse_bcrypt(stored: &str) -> Result<u32, PasswordError> {
    let b = stored.as_bytes();
    if b.len() != 60 {
        return Err(PasswordError::MalformedBcrypt("not 60 characters"));
    }
    if !matches!(b[2], b'a' | b'b' | b'x' | b'y') {
        return Err(PasswordError::MalformedBcrypt("unknown version (expected $2a$, $2b$, $2x$ or $2y$)"));
    }
    if !(b[4].is_ascii_digit() && b[5].is_ascii_digit() && b[6] == b'$') {
        return Err(PasswordError::MalformedBcrypt("cost is not two digits"));
    }
    let cost = u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0');
    if !(4..=31).contains(&cost) {
        return Err(PasswordError::MalformedBcrypt("cost outside 4..=31"));
    }
    if cost > MAX_BCRYPT_COST {
        return Err(PasswordError::TooExpensive("bcrypt cost above 16"));
    }
    let index = |c: u8| BCRYPT_ALPHABET.iter().position(|&a| a == c);
    let (salt, hash) = b[7..].split_at(22);
    let mut digits = salt.iter().chain(hash).map(|&c| index(c));
    if digits.any(|d| d.is_none()) {
        return Err(PasswordError::MalformedBcrypt("character outside the bcrypt alphabet"));
    }
    // 22 chars carry 132 bits for a 128-bit salt, 31 chars 186 bits for a
    // 184-bit hash: the unused low bits of the last char must be zero.
    let last = |part: &[u8]| index(part[part.len() - 1]).unwrap_or(0);
    if last(salt) % 16 != 0 || last(hash) % 4 != 0 {
        return Err(PasswordError::MalformedBcrypt("non-canonical base-64"));
    }
    Ok(cost)
}

/// The `id` of a `$id$…` string (modular crypt format or PHC), if it has that
/// shape: up to 32 characters of `[a-z0-9-]` between the first two `$` (an
/// empty id catches a hash pasted after a stray `$`).
fn scheme_id(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix('$')?;
    let (id, _) = rest.split_once('$')?;
    let shaped = id.len() <= 32 && id.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    shaped.then_some(id)
}

/// A fixed-length keyed digest of a plain-text password: argon2id at its
/// minimum cost (8 KiB, one pass; microseconds), used only so the stored and
/// candidate passwords are compared as equal-length values.
/// `None` only for a password longer than argon2 takes (4 GiB).
fn plain_digest(salt: &[u8; 16], password: &[u8]) -> Option<[u8; 32]> {
    let params = Params::new(Params::MIN_M_COST, 1, 1, Some(32)).ok()?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password_into(password, salt, &mut out).ok()?;
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bcrypt's minimum cost keeps the tests fast; the scheme is the same.
    const TEST_BCRYPT_COST: u32 = 4;

    #[test]
    fn argon2id_round_trip() {
        let phc = hash_password("s3cret-pass").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let hash = PasswordHash::parse(&phc).unwrap();
        assert_eq!(hash.kind(), PasswordKind::Argon2id);
        assert!(hash.kind().is_recommended());
        assert!(hash.verify("s3cret-pass"));
        assert!(!hash.verify("s3cret-pasS"));
        assert!(!hash.verify(""));
        assert!(!hash.verify(&phc), "the hash is not the password");
        assert_ne!(phc, hash_password("s3cret-pass").unwrap(), "fresh salt each time");
    }

    #[test]
    fn argon2i_and_argon2d_verify() {
        for (algorithm, kind) in
            [(Algorithm::Argon2i, PasswordKind::Argon2i), (Algorithm::Argon2d, PasswordKind::Argon2d)]
        {
            let params = Params::new(Params::MIN_M_COST, 1, 1, None).unwrap();
            let salt = SaltString::generate(&mut OsRng);
            let phc = Argon2::new(algorithm, Version::V0x13, params).hash_password(b"pw", &salt).unwrap().to_string();
            let hash = PasswordHash::parse(&phc).unwrap();
            assert_eq!(hash.kind(), kind);
            assert!(!kind.is_recommended());
            assert!(hash.verify("pw"));
            assert!(!hash.verify("pw2"));
        }
    }

    #[test]
    fn bcrypt_hashes_from_nats_configs_verify() {
        let made = bcrypt::hash("bar", TEST_BCRYPT_COST).unwrap();
        let rest = &made[3..];
        for version in ["$2a", "$2b", "$2x", "$2y"] {
            let stored = format!("{version}{rest}");
            let hash = PasswordHash::parse(&stored).unwrap();
            assert_eq!(hash.kind(), PasswordKind::Bcrypt);
            assert!(!hash.kind().is_recommended());
            assert!(hash.verify("bar"), "{version}");
            assert!(!hash.verify("baz"), "{version}");
            assert!(!hash.verify(&stored), "the hash is not the password");
        }
    }

    #[test]
    fn malformed_hashes_are_load_errors() {
        let good_bcrypt = bcrypt::hash("pw", TEST_BCRYPT_COST).unwrap();
        let good_argon = hash_password("pw").unwrap();
        let mut bad: Vec<String> = vec![
            "$argon2id$".into(),
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ".into(),
            "$argon2x$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo".into(),
            "$argon2id$v=99$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo".into(),
            "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo".into(),
            "$argon2id$v=19$m=19456,t=2,p=1,q=3$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo".into(),
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaGhhc2hoYXNo".into(),
            good_argon[..good_argon.len() - 5].to_string() + "!!!!!",
            "$2a$".into(),
            "$2z$04$abcdefghijklmnopqrstuu".into(),
            good_bcrypt[..good_bcrypt.len() - 1].to_string(),
            good_bcrypt.replace("$04$", "$4$"),
            good_bcrypt.replace("$04$", "$03$"),
            good_bcrypt.replace("$04$", "$32$"),
            format!("{}!", &good_bcrypt[..59]),
            "$2b$10$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$".into(),
        ];
        // Non-canonical trailing bits in the salt: bcrypt itself refuses those.
        let mut noncanonical = good_bcrypt.clone().into_bytes();
        noncanonical[28] = b'/';
        let noncanonical = String::from_utf8(noncanonical).unwrap();
        assert!(bcrypt::verify("pw", &noncanonical).is_err());
        bad.push(noncanonical);
        for stored in &bad {
            let err = PasswordHash::parse(stored).unwrap_err();
            assert!(
                matches!(err, PasswordError::MalformedArgon2(_) | PasswordError::MalformedBcrypt(_)),
                "{stored}: {err:?}"
            );
            assert!(is_hash(stored), "{stored}");
        }
        assert_eq!(PasswordHash::parse("").unwrap_err(), PasswordError::Empty);
    }

    #[test]
    fn other_hash_schemes_are_refused_not_taken_as_plain_text() {
        for stored in [
            "$6$rounds=5000$salt$hash",
            "$5$salt$hash",
            "$1$salt$hash",
            "$y$j9T$salt$hash",
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "$pbkdf2-sha256$29000$salt$hash",
            "$2$04$salt",
            "$$2b$04$abcdefghijklmnopqrstuu",
        ] {
            assert!(is_hash(stored), "{stored}");
            assert!(matches!(PasswordHash::parse(stored), Err(PasswordError::UnsupportedScheme(_))), "{stored}");
        }
    }

    #[test]
    fn too_expensive_hashes_are_refused() {
        let b = bcrypt::hash("pw", TEST_BCRYPT_COST).unwrap().replace("$04$", "$17$");
        assert!(matches!(PasswordHash::parse(&b), Err(PasswordError::TooExpensive(_))));
        for params in ["m=2097152,t=2,p=1", "m=19456,t=33,p=1", "m=19456,t=2,p=17"] {
            let phc = format!("$argon2id$v=19${params}$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo");
            assert!(matches!(PasswordHash::parse(&phc), Err(PasswordError::TooExpensive(_))), "{params}");
        }
    }

    #[test]
    fn plain_text_is_compared_as_fixed_length_digests() {
        for stored in ["bar", "$ecret", "pa$$word", "a", "a much longer password than most"] {
            assert!(!is_hash(stored), "{stored}");
            let hash = PasswordHash::parse(stored).unwrap();
            assert_eq!(hash.kind(), PasswordKind::PlainText);
            assert!(!hash.kind().is_hash());
            assert!(hash.verify(stored));
            assert!(!hash.verify(&format!("{stored}x")));
            assert!(!hash.verify(&stored[..stored.len() - 1]));
            assert!(!hash.verify(""));
        }
        // The plain text itself is not kept: only salt and digest.
        let hash = PasswordHash::parse("bar").unwrap();
        match &hash.stored {
            Stored::Plain { digest, .. } => assert_eq!(digest.len(), 32),
            _ => unreachable!(),
        }
        // Two parses of the same password use different salts.
        let again = PasswordHash::parse("bar").unwrap();
        match (&hash.stored, &again.stored) {
            (Stored::Plain { digest: a, .. }, Stored::Plain { digest: b, .. }) => assert_ne!(a, b),
            _ => unreachable!(),
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let bcrypt_hash = bcrypt::hash("pw", TEST_BCRYPT_COST).unwrap();
        let argon = hash_password("pw").unwrap();
        for stored in ["hunter2", bcrypt_hash.as_str(), argon.as_str()] {
            let shown = format!("{:?}", PasswordHash::parse(stored).unwrap());
            assert!(!shown.contains(stored), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.starts_with("PasswordHash { kind: "), "{shown}");
        }
        let broken = format!("{argon}!");
        let err = PasswordHash::parse(&broken).unwrap_err();
        assert!(!format!("{err:?} {err}").contains(&broken));
    }

    #[test]
    fn dummy_verification_uses_the_recommended_parameters() {
        let dummy = PasswordHash::parse(DUMMY_HASH).unwrap();
        assert_eq!(dummy.kind(), PasswordKind::Argon2id);
        let phc = password_hash::PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&phc).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST)
        );
        assert!(!dummy_verify("anything"));
        assert!(!dummy_verify(""));
    }

    #[test]
    fn dummy_like_matches_scheme_and_cost() {
        let bcrypt_hash = PasswordHash::parse(&bcrypt::hash("pw", 5).unwrap()).unwrap();
        let dummy = bcrypt_hash.dummy_like().unwrap();
        assert_eq!(dummy.kind(), PasswordKind::Bcrypt);
        match &dummy.stored {
            Stored::Bcrypt { hash } => assert!(hash.starts_with("$2b$05$")),
            _ => unreachable!(),
        }
        assert!(!dummy.verify("pw"));

        let params = Params::new(Params::MIN_M_COST, 3, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let phc =
            Argon2::new(Algorithm::Argon2i, Version::V0x10, params).hash_password(b"pw", &salt).unwrap().to_string();
        let dummy = PasswordHash::parse(&phc).unwrap().dummy_like().unwrap();
        assert_eq!(dummy.kind(), PasswordKind::Argon2i);
        match &dummy.stored {
            Stored::Argon2 { phc, .. } => {
                assert!(phc.starts_with("$argon2i$v=16$m=8,t=3,p=1$"), "{phc}")
            }
            _ => unreachable!(),
        }
        let plain = PasswordHash::parse("pw").unwrap().dummy_like().unwrap();
        assert_eq!(plain.kind(), PasswordKind::PlainText);
        assert!(!plain.verify("pw"));
    }

    #[test]
    fn parses_from_a_config_secret() {
        let hash = PasswordHash::try_from(&Secret::new("bar")).unwrap();
        assert!(hash.verify("bar"));
    }

    #[test]
    fn empty_passwords_are_not_hashed() {
        assert_eq!(hash_password(""), Err(PasswordError::Empty));
    }
}
