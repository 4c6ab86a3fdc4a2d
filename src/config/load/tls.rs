//! `tls { ... }`: the client listener's, the cluster's and the websocket's
//! certificate settings.

use std::path::PathBuf;
use std::time::Duration;

use super::{invalid, path_string};
use crate::config::error::{ConfigError, ErrorKind};
use crate::config::options::{TlsOptions, TlsVersion};
use crate::config::section::{self, Bare, Section};
use crate::config::value::{Entry, Kind, Value};

/// nats-server's `tls` keys that warden does not implement.
const UNSUPPORTED_TLS: &[&str] = &[
    "cipher_suites",
    "curve_preferences",
    "insecure",
    "pinned_certs",
    "verify_cert_and_check_known_urls",
    "connection_rate_limit",
    "cert_store",
    "cert_match",
    "cert_match_by",
    "ocsp_peer",
    "certs",
];

/// `tls { ... }` (client or cluster).
pub(super) fn tls_options(value: &Value, name: &'static str) -> Result<TlsOptions, ConfigError> {
    let map = section::map(value, name)?;
    let mut s = Section::new(name, map);
    let cert = s.get(&["cert_file"])?;
    let key = s.get(&["key_file"])?;
    let ca = s.get(&["ca_file"])?;
    let verify = s.get(&["verify"])?;
    let verify_and_map = s.get(&["verify_and_map"])?;
    let timeout = s.get(&["timeout"])?;
    let min_version = s.get(&["min_version"])?;
    let handshake_first = s.get(&["handshake_first"])?;
    let allow_non_tls = s.get(&["allow_non_tls"])?;
    s.finish(UNSUPPORTED_TLS)?;

    let required = |e: Option<&Entry>, key: &str| match e {
        Some(e) => path_string(&e.value, key).map(PathBuf::from),
        None => Err(invalid(value, format!("{name} needs `{key}`"))),
    };
    let mut tls = TlsOptions {
        cert_file: required(cert, "cert_file")?,
        key_file: required(key, "key_file")?,
        ca_file: ca.map(|e| path_string(&e.value, "ca_file").map(PathBuf::from)).transpose()?,
        verify: verify.map(|e| section::boolean(&e.value, "verify")).transpose()?.unwrap_or(false),
        verify_and_map: verify_and_map
            .map(|e| section::boolean(&e.value, "verify_and_map"))
            .transpose()?
            .unwrap_or(false),
        timeout: Duration::from_secs(2),
        min_version: TlsVersion::V1_2,
        handshake_first: false,
        handshake_first_fallback: None,
        allow_non_tls: allow_non_tls.map(|e| section::boolean(&e.value, "allow_non_tls")).transpose()?.unwrap_or(false),
    };
    if let Some(e) = handshake_first {
        (tls.handshake_first, tls.handshake_first_fallback) = handshake_first_value(&e.value)?;
    }
    if let Some(e) = timeout {
        let (d, _) = section::duration(&e.value, "tls timeout", Bare::FractionalSeconds)?;
        if d.is_zero() {
            return Err(invalid(&e.value, "tls timeout must be more than zero"));
        }
        tls.timeout = d;
    }
    if let Some(e) = min_version {
        tls.min_version = match &e.value.kind {
            Kind::String(v) if v == "1.2" => TlsVersion::V1_2,
            Kind::String(v) if v == "1.3" => TlsVersion::V1_3,
            Kind::Float(f) if *f == 1.2 => TlsVersion::V1_2,
            Kind::Float(f) if *f == 1.3 => TlsVersion::V1_3,
            _ => return Err(invalid(&e.value, "min_version must be \"1.2\" or \"1.3\"")),
        };
    }
    // verify_and_map implies verify, as in nats-server.
    tls.verify |= tls.verify_and_map;
    if let (Some(e), true) = (allow_non_tls, tls.plain_text_skips_verify()) {
        return Err(invalid(&e.value, TlsOptions::PLAIN_TEXT_SKIPS_VERIFY));
    }
    if tls.verify && tls.ca_file.is_none() {
        let at = verify_and_map.or(verify).map_or(value, |e| &e.value);
        return Err(invalid(
            at,
            format!("{name}: verifying client certificates needs `ca_file` (warden does not trust the system roots for clients)"),
        ));
    }
    Ok(tls)
}

/// nats-server's fallback delay for `handshake_first: auto`.
const HANDSHAKE_FIRST_AUTO: Duration = Duration::from_millis(50);

/// `handshake_first`: a boolean, `"on"`/`"off"`, `"auto"` (fall back to
/// the NATS order after 50 ms) or a duration to wait before falling back.
fn handshake_first_value(value: &Value) -> Result<(bool, Option<Duration>), ConfigError> {
    match &value.kind {
        Kind::Bool(on) => Ok((*on, None)),
        Kind::String(text) => match text.to_ascii_lowercase().as_str() {
            "true" | "on" => Ok((true, None)),
            "false" | "off" => Ok((false, None)),
            "auto" | "auto_fallback" => Ok((true, Some(HANDSHAKE_FIRST_AUTO))),
            _ => section::duration(value, "handshake_first", Bare::No).map(|(d, _)| (true, Some(d))),
        },
        _ => Err(ConfigError::at(
            ErrorKind::Type,
            &value.pos,
            "handshake_first must be true, false, \"auto\" or a duration such as \"300ms\"",
        )),
    }
}
