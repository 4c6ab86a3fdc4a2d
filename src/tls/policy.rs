//! What a `tls {}` block chooses beyond its certificate: the cipher suites
//! and curves offered (`cipher_suites`, `curve_preferences`, by Go's names,
//! which the config reader has already checked against what warden has),
//! the certificate presented by the name a client asks for (`certs`), and
//! the keys a peer's certificate must carry (`pinned_certs`).
//!
//! Pins are checked inside the handshake, by wrapping the verifier that
//! checks the chain: a peer whose key is not pinned fails the handshake
//! like one whose chain does not verify, on every port and for every
//! connection this server dials, with no second place to forget.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, NamedGroup, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::go_names::go_cipher_name;
use crate::config::TlsOptions;

/// The crypto provider a block asks for: ring's, with the TLS 1.2 suites
/// narrowed to `cipher_suites` (TLS 1.3's are always all offered, as in
/// Go) and the groups to `curve_preferences`, in its order.
pub(super) fn provider(opts: &TlsOptions) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &opts.cipher_suites {
        provider.cipher_suites.retain(|suite| {
            suite.version() == &rustls::version::TLS13
                || suite.suite().as_str().is_some_and(|rustls_name| names.contains(&go_cipher_name(rustls_name)))
        });
    }
    if let Some(curves) = &opts.curve_preferences {
        let offered = std::mem::take(&mut provider.kx_groups);
        provider.kx_groups = curves
            .iter()
            .filter_map(|name| offered.iter().find(|g| go_curve_name(g.name()) == Some(name.as_str())).copied())
            .collect();
    }
    provider
}

/// Go's name for a key exchange group rustls offers.
fn go_curve_name(group: NamedGroup) -> Option<&'static str> {
    match group {
        NamedGroup::X25519 => Some("X25519"),
        NamedGroup::secp256r1 => Some("CurveP256"),
        NamedGroup::secp384r1 => Some("CurveP384"),
        _ => None,
    }
}

/// `certs`: the certificate whose names cover the client's SNI, the first
/// when none does or the client sent none (Go's choice).
#[derive(Debug)]
pub(super) struct SniCertificates {
    /// Each certificate with the DNS names it is for, in config order.
    certs: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl SniCertificates {
    /// Certificates in config order (at least one).
    pub(super) fn new(certs: Vec<Arc<CertifiedKey>>) -> SniCertificates {
        let certs = certs.into_iter().map(|key| (dns_names(&key), key)).collect();
        SniCertificates { certs }
    }
}

impl ResolvesServerCert for SniCertificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello.server_name().and_then(|sni| {
            self.certs.iter().find(|(names, _)| names.iter().any(|n| name_covers(n, sni))).map(|(_, k)| k)
        });
        chosen.or(self.certs.first().map(|(_, k)| k)).cloned()
    }
}

/// The DNS names a certificate's leaf is for (its SAN; Go ignores the CN).
fn dns_names(key: &CertifiedKey) -> Vec<String> {
    let Some(leaf) = key.cert.first() else { return Vec::new() };
    let Ok((_, cert)) = X509Certificate::from_der(leaf) else { return Vec::new() };
    let Ok(Some(san)) = cert.subject_alternative_name() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(s) => Some(s.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Whether a certificate name covers `host`: equal (ignoring case), or a
/// `*.` wildcard standing for exactly one leftmost label.
fn name_covers(name: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    match name.strip_prefix("*.") {
        Some(parent) => {
            host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(parent))
        }
        None => name.eq_ignore_ascii_case(host),
    }
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo (what `pinned_certs`
/// lists); `None` if it cannot be parsed.
pub fn spki_sha256(der: &[u8]) -> Option<[u8; 32]> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    digest.as_ref().try_into().ok()
}

/// Whether `der`'s key is one of `pins`.
fn pinned(pins: &[[u8; 32]], der: &CertificateDer<'_>) -> Result<(), Error> {
    match spki_sha256(der) {
        Some(spki) if pins.binary_search(&spki).is_ok() => Ok(()),
        _ => Err(Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)),
    }
}

/// A client certificate verifier that also requires a pinned key.
#[derive(Debug)]
pub(super) struct PinnedClients {
    pub(super) inner: Arc<dyn ClientCertVerifier>,
    /// Sorted.
    pub(super) pins: Vec<[u8; 32]>,
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        pinned(&self.pins, end_entity).map(|()| verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
}

/// A server certificate verifier (for the connections this server dials)
/// that also requires a pinned key.
#[derive(Debug)]
pub(super) struct PinnedServers {
    pub(super) inner: Arc<dyn ServerCertVerifier>,
    /// Sorted.
    pub(super) pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for PinnedServers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verified = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        pinned(&self.pins, end_entity).map(|()| verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_config_offers_is_in_the_provider() {
        let (suites, curves) = crate::config::offered_tls_names();
        let all = TlsOptions {
            cipher_suites: Some(suites.iter().map(|s| s.to_string()).collect()),
            curve_preferences: Some(curves.iter().map(|s| s.to_string()).collect()),
            ..TlsOptions::default()
        };
        let p = provider(&all);
        assert_eq!(p.cipher_suites.len(), rustls::crypto::ring::default_provider().cipher_suites.len());
        assert_eq!(p.kx_groups.len(), curves.len());
        let narrow = TlsOptions {
            cipher_suites: Some(vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]),
            curve_preferences: Some(vec!["CurveP384".into(), "X25519".into()]),
            ..TlsOptions::default()
        };
        let p = provider(&narrow);
        let tls12: Vec<_> = p.cipher_suites.iter().filter(|s| s.version() != &rustls::version::TLS13).collect();
        assert_eq!(tls12.len(), 1);
        assert_eq!(p.cipher_suites.len(), 4, "TLS 1.3's three stay");
        assert_eq!(
            p.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>(),
            [NamedGroup::secp384r1, NamedGroup::X25519]
        );
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_covers("*.example.com", "a.example.com"));
        assert!(name_covers("*.example.com", "A.Example.COM."));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("*.example.com", "a.b.example.com"));
        assert!(name_covers("nats.example.com", "NATS.example.com"));
        assert!(!name_covers("nats.example.com", "nats.example.org"));
    }
}
