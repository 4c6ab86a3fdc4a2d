//! Go's names for TLS cipher suites and key exchange curves, as
//! nats-server's `cipher_suites` and `curve_preferences` take them (the
//! names `nats-server --help_tls` lists), and what warden does with each.
//!
//! warden's TLS is rustls with ring: forward-secret AEAD suites only, and
//! the X25519, P-256 and P-384 groups. A name for something it does not
//! implement is refused by name, with the reason, rather than dropped: an
//! operator who lists a suite expects it to be offered.

use crate::config::error::{invalid, ConfigError};
use crate::config::section;
use crate::config::value::Value;

/// What warden does with a name Go knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    /// Offered.
    Offered,
    /// Secure by Go's account, not implemented by warden, for this reason.
    Missing(&'static str),
    /// In Go's `InsecureCipherSuites()`: nats-server refuses it without
    /// `allow_insecure_cipher_suites`; warden implements none of them.
    Insecure,
}

use Support::{Insecure, Missing, Offered};

const CBC: &str =
    "a CBC-mode suite (open to padding-oracle attacks such as Lucky13); warden offers only AEAD suites (GCM, ChaCha20-Poly1305)";
const RSA_KEY_EXCHANGE: &str = "RSA key exchange has no forward secrecy; warden offers only ECDHE suites";
const POST_QUANTUM: &str = "post-quantum hybrid groups are not in warden's crypto provider (ring)";

/// Every suite nats-server 2.15.1 names, and whether warden offers it.
const SUITES: &[(&str, Support)] = &[
    // TLS 1.3: always offered (Go, too, ignores them in `cipher_suites`).
    ("TLS_AES_128_GCM_SHA256", Offered),
    ("TLS_AES_256_GCM_SHA384", Offered),
    ("TLS_CHACHA20_POLY1305_SHA256", Offered),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Offered),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", Offered),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", Offered),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Offered),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Offered),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", Offered),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Missing(CBC)),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", Missing(CBC)),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Missing(CBC)),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", Missing(CBC)),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", Missing(RSA_KEY_EXCHANGE)),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", Missing(RSA_KEY_EXCHANGE)),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", Missing(RSA_KEY_EXCHANGE)),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", Missing(RSA_KEY_EXCHANGE)),
    ("TLS_RSA_WITH_RC4_128_SHA", Insecure),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", Insecure),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", Insecure),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", Insecure),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", Insecure),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", Insecure),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", Insecure),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", Insecure),
];

/// Every curve nats-server 2.15.1 (built with Go 1.26) names.
const CURVES: &[(&str, Support)] = &[
    ("X25519", Offered),
    ("CurveP256", Offered),
    ("CurveP384", Offered),
    ("CurveP521", Missing("P-521 key exchange is not in warden's crypto provider (ring)")),
    ("X25519MLKEM768", Missing(POST_QUANTUM)),
    ("SecP256r1MLKEM768", Missing(POST_QUANTUM)),
    ("SecP384r1MLKEM1024", Missing(POST_QUANTUM)),
];

/// The names of a non-empty list of strings (`what`), each looked up in
/// `table`: unknown names are refused with nats-server's words, names
/// warden does not implement with the reason.
fn names<'v>(
    value: &'v Value,
    what: &str,
    table: &[(&str, Support)],
    unknown: &str,
) -> Result<Vec<(&'v Value, &'v str, Support)>, ConfigError> {
    let items = section::array(value, what)?;
    if items.is_empty() {
        return Err(invalid(value, format!("'{what}' cannot be empty")));
    }
    let mut found = Vec::with_capacity(items.len());
    for item in items {
        let name = section::string(item, what)?;
        let Some(&(_, support)) = table.iter().find(|(known, _)| *known == name) else {
            return Err(invalid(item, format!("{unknown} {name}")));
        };
        found.push((item, name, support));
    }
    Ok(found)
}

/// Refuses the first name of `found` that warden does not implement, with
/// its reason. Checked after unknown and insecure names, so a config
/// nats-server refuses is refused for nats-server's reason first.
fn refuse_missing(found: &[(&Value, &str, Support)], what: &str) -> Result<(), ConfigError> {
    match found.iter().find_map(|(item, name, s)| if let Missing(why) = s { Some((item, name, why)) } else { None }) {
        Some((item, name, why)) => Err(invalid(item, format!("{what}: {name} is not offered by warden: {why}"))),
        None => Ok(()),
    }
}

/// `cipher_suites`: the names, every one offered by warden. Insecure
/// suites are refused as nats-server refuses them without
/// `allow_insecure_cipher_suites`, and with it because warden has none.
pub(crate) fn cipher_suites(value: &Value, allow_insecure: bool) -> Result<Vec<String>, ConfigError> {
    let found = names(value, "cipher_suites", SUITES, "unrecognized cipher")?;
    let insecure: Vec<&str> = found.iter().filter(|(_, _, s)| *s == Insecure).map(|(_, n, _)| *n).collect();
    let listed = insecure.join(", ");
    if !insecure.is_empty() && !allow_insecure {
        return Err(invalid(
            value,
            format!("insecure cipher suites configured without 'allow_insecure_cipher_suites' option set: {listed}"),
        ));
    }
    refuse_missing(&found, "cipher_suites")?;
    if !insecure.is_empty() {
        return Err(invalid(
            value,
            format!("insecure cipher suites are not implemented by warden, even when allowed: {listed}"),
        ));
    }
    Ok(found.into_iter().map(|(_, name, _)| name.to_owned()).collect())
}

/// `curve_preferences`: the names, in order, every one offered by warden.
pub(crate) fn curve_preferences(value: &Value) -> Result<Vec<String>, ConfigError> {
    let found = names(value, "curve_preferences", CURVES, "unrecognized curve preference")?;
    refuse_missing(&found, "curve_preferences")?;
    Ok(found.into_iter().map(|(_, name, _)| name.to_owned()).collect())
}

/// `pinned_certs`: hex SHA-256 digests of SubjectPublicKeyInfo, 64 hex
/// digits each, in either case (nats-server's rule); an empty list pins
/// nothing, as in nats-server.
pub(crate) fn pinned_certs(value: &Value) -> Result<Option<Vec<[u8; 32]>>, ConfigError> {
    let mut pins = Vec::new();
    for item in section::array(value, "pinned_certs")? {
        let text = section::string(item, "pinned_certs")?;
        let bad = || {
            invalid(
                item,
                format!(
                    "'pinned_certs' key {text} does not look like hex-encoded sha256 of DER encoded SubjectPublicKeyInfo"
                ),
            )
        };
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut pin = [0u8; 32];
        for (byte, pair) in pin.iter_mut().zip(text.as_bytes().chunks(2)) {
            let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            *byte = digit(pair[0]) << 4 | digit(pair[1]);
        }
        pins.push(pin);
    }
    pins.sort_unstable();
    pins.dedup();
    Ok((!pins.is_empty()).then_some(pins))
}

/// The names warden offers, for tests that hold them against the crypto
/// provider.
#[cfg(test)]
pub(crate) fn offered() -> (Vec<&'static str>, Vec<&'static str>) {
    let pick =
        |table: &[(&'static str, Support)]| table.iter().filter(|(_, s)| *s == Offered).map(|(n, _)| *n).collect();
    (pick(SUITES), pick(CURVES))
}
