//! The names in a verified client certificate, for mapping it to a user.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Names read from a client certificate, in the order nats-server tries them
/// for `verify_and_map`: email SANs, DNS SANs, URI SANs, then the subject DN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// rfc822Name SANs.
    pub emails: Vec<String>,
    /// dNSName SANs.
    pub dns_names: Vec<String>,
    /// URI SANs.
    pub uris: Vec<String>,
    /// Subject DN as (attribute, value) pairs, e.g. ("CN", "alice").
    pub subject: Vec<(String, String)>,
    /// Whether it claims to be a certificate authority: basicConstraints
    /// `cA: true`, or a keyUsage with keyCertSign or cRLSign. An extension
    /// that cannot be read counts as a claim (fail closed). Only the strict
    /// SPIFFE mapping looks at it: an X.509-SVID leaf must not be a CA.
    pub ca: Option<CaClaim>,
}

/// How a certificate claims to be a certificate authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaClaim {
    /// basicConstraints `cA: true` (or unreadable).
    BasicConstraints,
    /// keyUsage keyCertSign or cRLSign (or unreadable).
    KeyUsage,
}

impl std::fmt::Display for CaClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CaClaim::BasicConstraints => "basicConstraints cA is true",
            CaClaim::KeyUsage => "keyUsage allows keyCertSign or cRLSign",
        })
    }
}

impl PeerIdentity {
    /// Reads the names from a DER certificate; `None` if it cannot be parsed
    /// (the handshake already verified it, so that does not happen in practice).
    pub fn from_der(der: &[u8]) -> Option<PeerIdentity> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut id = PeerIdentity::default();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(s) => id.emails.push((*s).to_string()),
                    GeneralName::DNSName(s) => id.dns_names.push((*s).to_string()),
                    GeneralName::URI(s) => id.uris.push((*s).to_string()),
                    _ => {}
                }
            }
        }
        id.ca = ca_claim(&cert);
        let registry = x509_parser::objects::oid_registry();
        for attr in cert.subject().iter_attributes() {
            let key = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                .map(str::to_string)
                .unwrap_or_else(|_| attr.attr_type().to_id_string());
            if let Ok(value) = attr.as_str() {
                id.subject.push((key.to_ascii_uppercase(), value.to_string()));
            }
        }
        Some(id)
    }

    /// The subject DN in RFC 2253 order (most specific first), for logs.
    pub fn subject_dn(&self) -> String {
        self.subject.iter().rev().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    }

    /// Picks the first user name (from `users`) this certificate maps to,
    /// trying emails, DNS names, URIs, then the subject DN (order of RDNs
    /// does not matter).
    pub fn map_to<'a>(&self, users: impl Iterator<Item = &'a str> + Clone) -> Option<&'a str> {
        let exact = |names: &[String]| names.iter().find_map(|n| users.clone().find(|u| u == n));
        exact(&self.emails)
            .or_else(|| exact(&self.dns_names))
            .or_else(|| exact(&self.uris))
            .or_else(|| users.clone().find(|u| self.dn_equals(u)))
    }

    /// Whether `dn` (`CN=alice,O=Acme`) names the same RDN set as the subject.
    fn dn_equals(&self, dn: &str) -> bool {
        if self.subject.is_empty() || !dn.contains('=') {
            return false;
        }
        let mut theirs: Vec<(String, String)> = Vec::new();
        for part in dn.split(',') {
            let Some((k, v)) = part.split_once('=') else {
                return false;
            };
            theirs.push((k.trim().to_ascii_uppercase(), v.trim().to_string()));
        }
        let mut ours = self.subject.clone();
        ours.sort();
        theirs.sort();
        ours == theirs
    }
}

/// Whether `cert` claims to be a CA, and how (see [`PeerIdentity::ca`]).
fn ca_claim(cert: &X509Certificate<'_>) -> Option<CaClaim> {
    if cert.basic_constraints().map_or(true, |b| b.is_some_and(|b| b.value.ca)) {
        return Some(CaClaim::BasicConstraints);
    }
    if cert.key_usage().map_or(true, |k| k.is_some_and(|k| k.value.key_cert_sign() || k.value.crl_sign())) {
        return Some(CaClaim::KeyUsage);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> PeerIdentity {
        PeerIdentity {
            emails: vec!["alice@example.com".into()],
            dns_names: vec!["svc.example.com".into()],
            uris: vec!["spiffe://example.org/svc".into()],
            subject: vec![("C".into(), "US".into()), ("O".into(), "Acme".into()), ("CN".into(), "carol".into())],
            ca: None,
        }
    }

    #[test]
    fn mapping_order_and_dn_reordering() {
        let id = identity();
        let users = ["CN=carol,O=Acme,C=US", "svc.example.com", "alice@example.com"];
        assert_eq!(id.map_to(users.iter().copied()), Some("alice@example.com"), "email first");
        let users = ["spiffe://example.org/svc", "svc.example.com"];
        assert_eq!(id.map_to(users.iter().copied()), Some("svc.example.com"), "then DNS");
        let users = ["O=Acme, CN=carol, C=US"];
        assert_eq!(id.map_to(users.iter().copied()), Some("O=Acme, CN=carol, C=US"), "DN in any order");
        let users = ["CN=carol", "mallory"];
        assert_eq!(id.map_to(users.iter().copied()), None, "partial DN does not match");
        assert_eq!(id.subject_dn(), "CN=carol,O=Acme,C=US");
    }
}
