//! A throwaway PKI for TLS tests between servers: a CA (rcgen, ring), and
//! node certificates it signed for `localhost` and 127.0.0.1, each usable
//! by a server and a client: `node` with the subject
//! `CN=localhost,OU=NATS.io Operators` (as nats-server's `tlsauth` set) and
//! `rogue` with `CN=localhost` alone.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// The files, in a fresh directory: `ca.pem`, `node.pem`, `node-key.pem`,
/// `rogue.pem`, `rogue-key.pem`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let dir = super::temp_dir(name);
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        for (file, unit) in [("node", Some("NATS.io Operators")), ("rogue", None)] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, "localhost");
            if let Some(unit) = unit {
                params.distinguished_name.push(DnType::OrganizationalUnitName, unit);
            }
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
            std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{file}-key.pem")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    /// `tls { ... }` presenting `cert` (`node` or `rogue`), trusting the
    /// CA, with `extra` (", verify: true", ...) inside the braces.
    pub fn tls_block(&self, cert: &str, extra: &str) -> String {
        let path = |f: &str| self.dir.join(f).display().to_string();
        format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", timeout: 2{extra} }}",
            path(&format!("{cert}.pem")),
            path(&format!("{cert}-key.pem")),
            path("ca.pem"),
        )
    }
}
