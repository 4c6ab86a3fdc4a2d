//! Loading and validating the server's TLS material.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::ring::default_provider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::policy::{self, PinnedClients, PinnedServers, SniCertificates};
use crate::config::{CertPair, TlsOptions, TlsVersion};

/// A certificate this close to expiry is loaded with a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why TLS material could not be used. Each variant names the file.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    Read { path: PathBuf, reason: String },
    /// The private key does not belong to the certificate.
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// A certificate is expired or not yet valid.
    Validity { path: PathBuf, reason: String },
    /// The certificate does not chain to `ca_file`.
    Chain { cert: PathBuf, ca: PathBuf, reason: String },
    /// rustls refused the configuration.
    Config(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, reason } => write!(f, "{}: {reason}", path.display()),
            TlsError::KeyMismatch { cert, key } => {
                write!(f, "{}: private key does not match the certificate {}", key.display(), cert.display())
            }
            TlsError::Validity { path, reason } => write!(f, "{}: {reason}", path.display()),
            TlsError::Chain { cert, ca, reason } => {
                write!(f, "{}: does not chain to ca_file {}: {reason}", cert.display(), ca.display())
            }
            TlsError::Config(reason) => write!(f, "TLS configuration refused: {reason}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A ready server configuration and what loading it noticed.
#[derive(Debug)]
pub struct TlsSetup {
    /// For the acceptor.
    pub config: Arc<ServerConfig>,
    /// Warnings for the operator (such as a certificate that expires soon).
    pub warnings: Vec<String>,
    /// What the listener presents: `cert_file`'s certificate, then each of
    /// `certs`'.
    pub certificates: Vec<CertInfo>,
}

/// A certificate a listener presents, for logs, `/varz` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject DN (RFC 4514 order).
    pub subject: String,
    /// The serial number, hex.
    pub serial: String,
    /// The end of its validity, Unix seconds.
    pub not_after: i64,
}

impl CertInfo {
    /// Reads the leaf of a chain; `None` if it does not parse (it was
    /// checked already).
    fn of(der: &CertificateDer<'_>) -> Option<CertInfo> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Some(CertInfo {
            subject: cert.subject().to_string(),
            serial: cert.raw_serial_as_string().replace(':', ""),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// Seconds from `now` until it expires (negative once expired).
    pub fn seconds_left(&self, now: SystemTime) -> i64 {
        self.not_after - now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// The warning to log when it expires within `window` of `now`.
    pub fn expiry_warning(&self, now: SystemTime, window: Duration) -> Option<String> {
        let left = self.seconds_left(now);
        (left < i64::try_from(window.as_secs()).unwrap_or(i64::MAX)).then(|| {
            format!("certificate {} (serial {}) expires in {} days", self.subject, self.serial, left.max(0) / 86400)
        })
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Read { path: path.to_path_buf(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(err("no certificate found".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsError::Read { path: path.to_path_buf(), reason: format!("cannot read a private key: {e}") })
}

/// Checks a certificate's validity period; returns a warning if it ends soon.
fn check_validity(path: &Path, der: &CertificateDer<'_>, now: SystemTime) -> Result<Option<String>, TlsError> {
    let invalid = |reason: String| TlsError::Validity { path: path.to_path_buf(), reason };
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| invalid(format!("cannot parse certificate: {e}")))?;
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let validity = cert.validity();
    if validity.not_before.timestamp() > now_secs {
        return Err(invalid(format!("certificate is not valid before {}", validity.not_before)));
    }
    let not_after = validity.not_after.timestamp();
    if not_after < now_secs {
        return Err(invalid(format!("certificate expired on {}", validity.not_after)));
    }
    let left = Duration::from_secs((not_after - now_secs) as u64);
    Ok((left < EXPIRY_WARNING).then(|| {
        format!(
            "{}: certificate expires on {} (in {} days)",
            path.display(),
            validity.not_after,
            left.as_secs() / 86400
        )
    }))
}

fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::Read {
            path: path.to_path_buf(),
            reason: format!("unusable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// Loads and checks `cert_file`, `key_file` and `ca_file`, and builds the
/// rustls configuration: key matches certificate, certificate valid now and
/// chained to `ca_file` when one is given, client certificates required
/// when `verify` or `verify_and_map` is set.
pub fn load_server_config(opts: &TlsOptions) -> Result<TlsSetup, TlsError> {
    let provider = Arc::new(policy::provider(opts));
    let now = SystemTime::now();
    let roots = opts.ca_file.as_ref().map(|ca| read_roots(ca).map(|roots| (ca, Arc::new(roots)))).transpose()?;
    let mut warnings = Vec::new();
    let first = CertPair { cert_file: opts.cert_file.clone(), key_file: opts.key_file.clone() };
    let mut keys = Vec::with_capacity(1 + opts.sni_certs.len());
    for pair in std::iter::once(&first).chain(&opts.sni_certs) {
        keys.push(Arc::new(certified_key(pair, roots.as_ref(), now, &provider, &mut warnings)?));
    }
    let certificates = keys.iter().filter_map(|k| k.cert.first().and_then(CertInfo::of)).collect();
    let versions: &[&rustls::SupportedProtocolVersion] = match opts.min_version {
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if opts.verify || opts.verify_and_map {
        let (_, roots) = roots.ok_or_else(|| TlsError::Config("verify needs ca_file".into()))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| TlsError::Config(format!("client verifier: {e}")))?;
        match &opts.pinned_certs {
            Some(pins) => {
                builder.with_client_cert_verifier(Arc::new(PinnedClients { inner: verifier, pins: pins.clone() }))
            }
            None => builder.with_client_cert_verifier(verifier),
        }
    } else {
        if opts.pinned_certs.is_some() {
            return Err(TlsError::Config("pinned_certs on a listener needs verify".into()));
        }
        builder.with_no_client_auth()
    };
    let config = builder.with_cert_resolver(Arc::new(SniCertificates::new(keys)));
    Ok(TlsSetup { config: Arc::new(config), warnings, certificates })
}

/// One certificate and its key, checked: the key parses and belongs to the
/// leaf, every certificate is valid now (a warning when one ends soon), and
/// the chain leads to `ca_file` when there is one.
fn certified_key(
    pair: &CertPair,
    roots: Option<&(&PathBuf, Arc<RootCertStore>)>,
    now: SystemTime,
    provider: &rustls::crypto::CryptoProvider,
    warnings: &mut Vec<String>,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs(&pair.cert_file)?;
    let key = read_key(&pair.key_file)?;
    let certified = CertifiedKey::from_der(chain.clone(), key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            TlsError::KeyMismatch { cert: pair.cert_file.clone(), key: pair.key_file.clone() }
        }
        other => match chain.first().and_then(small_rsa_key) {
            Some(bits) => TlsError::Config(format!(
                "{}: an RSA key of {bits} bits; warden signs only with RSA keys of at least {MIN_RSA_BITS} bits \
                 (nats-server still accepts 1024)",
                pair.key_file.display()
            )),
            None => TlsError::Config(format!("{}: {other}", pair.key_file.display())),
        },
    })?;
    for cert in &chain {
        warnings.extend(check_validity(&pair.cert_file, cert, now)?);
    }
    if let Some((ca, roots)) = roots {
        verify_chain(&chain, roots, now, provider).map_err(|reason| TlsError::Chain {
            cert: pair.cert_file.clone(),
            ca: (*ca).clone(),
            reason,
        })?;
    }
    Ok(certified)
}

/// The smallest RSA modulus ring signs with: 1024-bit keys (which
/// nats-server's test configs still carry) are refused with this reason
/// instead of ring's "failed to parse private key".
const MIN_RSA_BITS: usize = 2048;

/// The modulus size of `cert`'s RSA key when it is below [`MIN_RSA_BITS`].
fn small_rsa_key(cert: &CertificateDer<'_>) -> Option<usize> {
    let (_, cert) = X509Certificate::from_der(cert).ok()?;
    match cert.public_key().parsed().ok()? {
        x509_parser::public_key::PublicKey::RSA(rsa) => Some(rsa.key_size()).filter(|&bits| bits < MIN_RSA_BITS),
        _ => None,
    }
}

/// Verifies the leaf of `chain` against `roots` for server authentication.
fn verify_chain(
    chain: &[CertificateDer<'static>],
    roots: &RootCertStore,
    now: SystemTime,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<(), String> {
    let (leaf, intermediates) = chain.split_first().ok_or("empty certificate chain")?;
    let leaf = webpki::EndEntityCert::try_from(leaf).map_err(|e| e.to_string())?;
    let now = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
    leaf.verify_for_usage(
        provider.signature_verification_algorithms.all,
        &roots.roots,
        intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// A client configuration that verifies servers against the roots in
/// `ca_file` and presents no certificate (the HTTP authorizer's).
pub fn load_verifying_client_config(ca_file: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = read_roots(ca_file)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration for connecting to peers (routes): trusts only
/// `ca_file` and presents `cert_file`/`key_file` as its own certificate.
pub fn load_client_config(opts: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let ca = opts.ca_file.as_ref().ok_or_else(|| TlsError::Config("route TLS needs ca_file to verify peers".into()))?;
    client_config(opts, read_roots(ca)?)
}

/// A client configuration for a leafnode remote: trusts `ca_file`, or the
/// system's roots without one (as nats-server does, so a hosted hub needs
/// no CA configured), and presents a certificate only when one is set.
pub fn load_dialler_config(opts: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = match &opts.ca_file {
        Some(ca) => read_roots(ca)?,
        None => system_roots()?,
    };
    client_config(opts, roots)
}

/// The operating system's trusted roots; none usable is an error.
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found.errors.first().map_or("none found".to_owned(), ToString::to_string);
        return Err(TlsError::Config(format!("no usable system root certificates ({why}); set ca_file")));
    }
    Ok(roots)
}

/// A client configuration trusting `roots` (and, with `pinned_certs`, only
/// servers whose key is pinned), at `min_version` or later, with the
/// block's suites and curves, presenting the certificate of `opts` when it
/// has one.
fn client_config(opts: &TlsOptions, roots: RootCertStore) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let versions: &[&rustls::SupportedProtocolVersion] = match opts.min_version {
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let provider = Arc::new(policy::provider(opts));
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &opts.pinned_certs {
        Some(pins) => {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(format!("server verifier: {e}")))?;
            let verifier = Arc::new(PinnedServers { inner, pins: pins.clone() });
            builder.dangerous().with_custom_certificate_verifier(verifier)
        }
        None => builder.with_root_certificates(roots),
    };
    let config = match opts.client_certificate() {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| TlsError::Config(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1024-bit RSA certificate (only the certificate is kept: keys are
    /// never committed) is recognised, so its key's refusal says why.
    #[test]
    fn a_small_rsa_key_is_named_by_its_size() {
        let pem = include_str!("testdata/rsa-1024-cert.pem");
        let cert = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(small_rsa_key(&cert), Some(1024));
        let ca = crate::tls::Ca::new("ecdsa").unwrap();
        let ecdsa = CertificateDer::from_pem_slice(ca.issued().cert_pem.as_bytes()).unwrap();
        assert_eq!(small_rsa_key(&ecdsa), None);
    }
}
