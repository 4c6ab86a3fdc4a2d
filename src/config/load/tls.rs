//! `tls { ... }`: the client listener's, the cluster's and the websocket's
//! certificate settings.

use std::path::PathBuf;
use std::time::Duration;

use super::path_string;
use super::tls_names;
use crate::config::error::{invalid, ConfigError, ErrorKind};
use crate::config::options::{CertPair, TlsOptions, TlsVersion};
use crate::config::schema::{Block, Found, Opt, Reload, Step::Check, Step::Key, Ty};
use crate::config::section::{self, Bare};
use crate::config::value::{Kind, Pos, Value};

/// nats-server's `tls` keys that warden does not implement.
const UNSUPPORTED_TLS: &[&str] =
    &["insecure", "verify_cert_and_check_known_urls", "cert_store", "cert_match", "cert_match_by", "ocsp_peer"];

/// What a `tls {}` block is read into, and how messages name it.
pub(crate) struct Tls {
    /// "tls", "cluster tls" or "websocket tls".
    name: &'static str,
    /// The block of a connection this server dials (a leafnode remote):
    /// the certificate is optional (mTLS), server-side keys mean nothing.
    dialler: bool,
    /// The block, where a missing key is reported.
    at: Pos,
    tls: TlsOptions,
    /// `connection_rate_limit` (the client listener's only).
    connection_rate_limit: u32,
}

/// `tls { ... }` (client, cluster or websocket), called `name` in messages.
pub(super) fn read(value: &Value, name: &'static str) -> Result<TlsOptions, ConfigError> {
    read_block(value, name, false).map(|(tls, _)| tls)
}

/// The client listener's `tls { ... }`, with its `connection_rate_limit`
/// (0 when absent), which no other `tls {}` takes.
pub(super) fn read_client(value: &Value) -> Result<(TlsOptions, u32), ConfigError> {
    read_block(value, CLIENT, false)
}

/// The WebSocket listener's `tls { ... }`.
pub(super) fn read_websocket(value: &Value) -> Result<TlsOptions, ConfigError> {
    read(value, WEBSOCKET)
}

/// How the client listener's block is named, and told from the others.
const CLIENT: &str = "tls";

/// The `tls { ... }` of a connection this server dials (a leafnode
/// remote): `cert_file` and `key_file` together or not at all (an empty
/// path then, see [`TlsOptions::client_certificate`]), `ca_file` or the
/// system's roots, `handshake_first` as a boolean.
pub(super) fn read_dialler(value: &Value, name: &'static str) -> Result<TlsOptions, ConfigError> {
    read_block(value, name, true).map(|(tls, _)| tls)
}

fn read_block(value: &Value, name: &'static str, dialler: bool) -> Result<(TlsOptions, u32), ConfigError> {
    let mut t = Tls { name, dialler, at: value.pos.clone(), tls: defaults(), connection_rate_limit: 0 };
    TLS.read_value(name, value, &mut t)?;
    Ok((t.tls, t.connection_rate_limit))
}

/// A block's settings before its keys are read; also what a `tls://`
/// leafnode remote without a block uses (the system's roots, no
/// certificate of its own).
pub(super) fn defaults() -> TlsOptions {
    TlsOptions::default()
}

pub(crate) static TLS: Block<Tls> = Block {
    unsupported: UNSUPPORTED_TLS,
    steps: &[
        Key(
            &Opt::new(&["cert_file"], Ty::Path, Reload::Yes)
                .means("The certificate chain (PEM) this side presents; a listener needs it"),
            |e, t, _| path_string(&e.value, "cert_file").map(|p| t.tls.cert_file = p.into()),
        ),
        Check(|t, f| required(t, f, "cert_file")),
        Key(
            &Opt::new(&["key_file"], Ty::Path, Reload::Yes)
                .means("The certificate's private key (PEM); a listener needs it"),
            |e, t, _| path_string(&e.value, "key_file").map(|p| t.tls.key_file = p.into()),
        ),
        Check(|t, f| required(t, f, "key_file")),
        Key(
            &Opt::new(&["ca_file"], Ty::Path, Reload::Yes)
                .means("The CA bundle (PEM) peer certificates are verified against")
                .differs("`verify` needs it: warden does not trust the system roots for clients"),
            |e, t, _| path_string(&e.value, "ca_file").map(|p| t.tls.ca_file = Some(p.into())),
        ),
        Key(
            &Opt::new(&["verify"], Ty::Bool, Reload::Yes)
                .means("Require a client certificate, verified against `ca_file`")
                .default("false"),
            |e, t, _| section::boolean(&e.value, "verify").map(|b| t.tls.verify = b),
        ),
        Key(
            &Opt::new(&["verify_and_map"], Ty::Bool, Reload::Yes)
                .means("Require a client certificate and log it in as the user it names (implies `verify`)")
                .default("false"),
            |e, t, _| section::boolean(&e.value, "verify_and_map").map(|b| t.tls.verify_and_map = b),
        ),
        Key(
            &Opt::new(&["spiffe_trust_domain"], Ty::Text("a trust domain name, e.g. `example.org`"), Reload::Restart)
                .means(
                    "Strict mapping under `verify_and_map`: a peer's certificate logs in only if it has exactly \
                    one URI SAN, a SPIFFE ID of this trust domain, and is not a CA, and only as the user named by \
                    that SPIFFE ID; no other name is tried",
                )
                .default("none (map by email, DNS name, URI, then subject DN)")
                .differs(
                    "warden only; needs `verify_and_map`. Refused on a connection this server dials; under `cluster` \
                    the route user must be a SPIFFE ID of the domain. Restart-only: a reload re-checks a \
                    client's user, not how its certificate mapped. See SECURITY.md",
                ),
            |e, t, _| {
                let name = section::string(&e.value, "spiffe_trust_domain")?;
                let domain = crate::spiffe::TrustDomain::parse(name).map_err(|why| {
                    invalid(&e.value, format!("{}: spiffe_trust_domain {name:?} is not a trust domain: {why}", t.name))
                })?;
                t.tls.spiffe_trust_domain = Some(domain);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["allow_non_tls"], Ty::Bool, Reload::Yes)
                .means("Plain-text clients may use the TLS port too")
                .default("false")
                .differs(
                    "nats-server 2.10 reads it at the top level only; refused with `verify` or \
                    `verify_and_map`",
                ),
            |e, t, _| section::boolean(&e.value, "allow_non_tls").map(|b| t.tls.allow_non_tls = b),
        ),
        Key(
            &Opt::new(&["handshake_first"], Ty::Text("boolean, `auto` or a duration"), Reload::Yes)
                .means(
                    "TLS before INFO; `auto` or a duration falls back to INFO first for a client \
                    that has not started TLS by then",
                )
                .default("false"),
            |e, t, _| {
                (t.tls.handshake_first, t.tls.handshake_first_fallback) = handshake_first_value(&e.value)?;
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["timeout"], Ty::Seconds, Reload::Yes).means("Time the TLS handshake may take").default("2s"),
            |e, t, _| {
                let (d, _) = section::nonzero_duration(&e.value, "tls timeout", Bare::FractionalSeconds)?;
                t.tls.timeout = d;
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["min_version"], Ty::Text("`1.2` or `1.3`"), Reload::Yes)
                .means("Lowest TLS version accepted")
                .default("1.2"),
            |e, t, _| {
                t.tls.min_version = match &e.value.kind {
                    Kind::String(v) if v == "1.2" => TlsVersion::V1_2,
                    Kind::String(v) if v == "1.3" => TlsVersion::V1_3,
                    Kind::Float(f) if *f == 1.2 => TlsVersion::V1_2,
                    Kind::Float(f) if *f == 1.3 => TlsVersion::V1_3,
                    _ => return Err(invalid(&e.value, "min_version must be \"1.2\" or \"1.3\"")),
                };
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["certs", "certificates"], Ty::List(&CERT_PAIR), Reload::Yes)
                .means(
                    "Several certificates, instead of `cert_file`/`key_file`: a listener presents the first \
                    whose names cover the name the client asks for (SNI), else the first",
                )
                .differs("A connection this server dials presents the first"),
            |e, t, f| {
                if let Some(cert) = f.get("cert_file") {
                    return Err(invalid(
                        &cert.value,
                        format!("{}: cannot combine 'cert_file' option with 'certs' option", t.name),
                    ));
                }
                let mut pairs = Vec::new();
                for item in section::array(&e.value, "certs")? {
                    let mut pair = CertPair { cert_file: PathBuf::new(), key_file: PathBuf::new() };
                    CERT_PAIR.read_value("a certs entry", item, &mut pair)?;
                    pairs.push(pair);
                }
                let mut pairs = pairs.into_iter();
                let first =
                    pairs.next().ok_or_else(|| invalid(&e.value, "certs must list at least one certificate"))?;
                (t.tls.cert_file, t.tls.key_file) = (first.cert_file, first.key_file);
                t.tls.sni_certs = pairs.collect();
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["allow_insecure_cipher_suites"], Ty::Bool, Reload::Yes)
                .means("Let `cipher_suites` name Go's insecure suites")
                .default("false")
                .differs("warden implements none of them: a list naming one is refused even with this set"),
            |e, _, _| section::boolean(&e.value, "allow_insecure_cipher_suites").map(|_| ()),
        ),
        Key(
            &Opt::new(&["cipher_suites"], Ty::Strings, Reload::Yes)
                .means("The TLS 1.2 cipher suites offered, by their Go names; TLS 1.3's are always offered")
                .default("all of warden's: ECDHE with AES-GCM or ChaCha20-Poly1305")
                .differs("CBC-mode and RSA key exchange suites are refused by name (see SECURITY.md)"),
            |e, t, f| {
                let allow = match f.get("allow_insecure_cipher_suites") {
                    Some(a) => section::boolean(&a.value, "allow_insecure_cipher_suites")?,
                    None => false,
                };
                t.tls.cipher_suites = Some(tls_names::cipher_suites(&e.value, allow)?);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["curve_preferences"], Ty::Strings, Reload::Yes)
                .means("The key exchange groups offered, by their Go names, in order of preference")
                .default("X25519, CurveP256, CurveP384")
                .differs("CurveP521 and the post-quantum hybrids are refused by name"),
            |e, t, _| {
                t.tls.curve_preferences = Some(tls_names::curve_preferences(&e.value)?);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["pinned_certs"], Ty::Strings, Reload::Yes)
                .means(
                    "Hex SHA-256 digests of the SubjectPublicKeyInfo a peer's certificate must have \
                    (`openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum`)",
                )
                .default("none")
                .differs(
                    "On a listener it needs `verify` (without it no client presents a certificate and \
                    nats-server refuses every one); checked during the handshake",
                ),
            |e, t, _| {
                t.tls.pinned_certs = tls_names::pinned_certs(&e.value)?;
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["connection_rate_limit"], Ty::Integer, Reload::Restart)
                .means("TLS handshakes a second the client listener starts; 0 = no limit")
                .default("0")
                .differs(
                    "Client `tls {}` only (nats-server ignores it elsewhere; warden refuses it). Applied \
                    as `accept_rate { conns_per_sec: N, burst_conns: N }`: the excess is closed at accept, \
                    before INFO, without nats-server's `-ERR 'Connection throttling is active'`; with \
                    `allow_non_tls` plain-text connections count too",
                ),
            |e, t, _| {
                if t.name != CLIENT {
                    return Err(invalid(
                        &e.value,
                        format!(
                            "{}: connection_rate_limit limits the client listener only (as in nats-server); \
                            use this listener's accept_rate {{}} instead",
                            t.name
                        ),
                    ));
                }
                t.connection_rate_limit = crate::config::accept_rate::connection_rate_limit(&e.value)?;
                Ok(())
            },
        ),
        Check(|t, f| {
            if !t.dialler {
                return Ok(());
            }
            for key in ["verify", "verify_and_map", "spiffe_trust_domain", "allow_non_tls"] {
                if let Some(e) = f.get(key) {
                    return Err(invalid(
                        &e.value,
                        format!("{}: `{key}` has no meaning for a connection this server dials", t.name),
                    ));
                }
            }
            if let (Some(e), Some(_)) = (f.get("handshake_first"), t.tls.handshake_first_fallback) {
                return Err(invalid(&e.value, format!("{}: handshake_first is true or false here", t.name)));
            }
            match (f.get("cert_file"), f.get("key_file")) {
                (Some(_), None) | (None, Some(_)) => Err(ConfigError::at(
                    ErrorKind::Invalid,
                    &t.at,
                    format!("{}: a client certificate needs both `cert_file` and `key_file`", t.name),
                )),
                _ => Ok(()),
            }
        }),
        Check(|t, f| spiffe_needs_mapping(t, f)),
        Check(|t, f| {
            // verify_and_map implies verify, as in nats-server.
            t.tls.verify |= t.tls.verify_and_map;
            if let (Some(e), true) = (f.get("allow_non_tls"), t.tls.plain_text_skips_verify()) {
                return Err(invalid(&e.value, TlsOptions::PLAIN_TEXT_SKIPS_VERIFY));
            }
            if let (Some(e), false, false) = (f.get("pinned_certs"), t.tls.verify, t.dialler) {
                return Err(invalid(
                    &e.value,
                    format!(
                        "{}: pinned_certs checks client certificates, which only `verify: true` asks for; \
                        without it every client would be refused",
                        t.name
                    ),
                ));
            }
            if t.tls.verify && t.tls.ca_file.is_none() {
                let at = f.get("verify_and_map").or(f.get("verify")).map_or(&t.at, |e| &e.value.pos);
                return Err(ConfigError::at(
                    ErrorKind::Invalid,
                    at,
                    format!(
                        "{}: verifying client certificates needs `ca_file` (warden does not trust the system roots for clients)",
                        t.name
                    ),
                ));
            }
            Ok(())
        }),
    ],
};

/// How the WebSocket listener's block is named (see [`spiffe_needs_mapping`]).
const WEBSOCKET: &str = "websocket tls";

/// `spiffe_trust_domain` only narrows `verify_and_map`: alone it would
/// look like a restriction while every client with any certificate (or a
/// password) still logs in, so it is refused.
fn spiffe_needs_mapping(t: &Tls, f: &Found<'_>) -> Result<(), ConfigError> {
    let Some(e) = f.get("spiffe_trust_domain") else { return Ok(()) };
    if !t.tls.verify_and_map {
        return Err(invalid(
            &e.value,
            format!("{}: spiffe_trust_domain makes verify_and_map strict, and needs `verify_and_map: true`", t.name),
        ));
    }
    Ok(())
}

/// A key the block cannot do without (a listener's certificate, unless
/// `certs` lists them).
fn required(t: &Tls, f: &Found<'_>, key: &str) -> Result<(), ConfigError> {
    if t.dialler || f.get("certs").is_some() {
        return Ok(());
    }
    f.require(key, &t.at, &format!("{} needs `{key}`", t.name))
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

/// One entry of `certs`.
static CERT_PAIR: Block<CertPair> = Block {
    unsupported: &[],
    steps: &[
        Key(&Opt::new(&["cert_file"], Ty::Path, Reload::Yes).means("The certificate chain (PEM)"), |e, p, _| {
            path_string(&e.value, "cert_file").map(|f| p.cert_file = f.into())
        }),
        Key(&Opt::new(&["key_file"], Ty::Path, Reload::Yes).means("Its private key (PEM)"), |e, p, _| {
            path_string(&e.value, "key_file").map(|f| p.key_file = f.into())
        }),
        Check(|p, f| {
            if p.cert_file.as_os_str().is_empty() || p.key_file.as_os_str().is_empty() {
                let at = f.get("cert_file").or(f.get("key_file")).map(|e| &e.value);
                let message = "both 'cert_file' and 'key_file' are required in a certs entry";
                return Err(match at {
                    Some(v) => invalid(v, message),
                    None => ConfigError::new(ErrorKind::Invalid, message),
                });
            }
            Ok(())
        }),
    ],
};
