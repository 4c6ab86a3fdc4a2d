//! The strict SPIFFE mapping of `tls { verify_and_map, spiffe_trust_domain }`:
//! a verified client certificate names a user only if it is an X.509-SVID
//! of the configured trust domain (SPIFFE X509-SVID.md §2, §4.1, §4.3).
//!
//! The default mapping (nats-server's) tries every email, DNS name and URI
//! SAN and then the subject DN against every configured user, so a
//! certificate a CA issued for one purpose can log in as a user named by
//! any of its other names, and a CA certificate presented as a leaf maps
//! like any other. Where the CA is a SPIFFE issuer (SPIRE, cert-manager's
//! csi-driver-spiffe, Istio), the identity is the SPIFFE ID and nothing
//! else; these rules make the mapping say exactly that:
//!
//! 1. exactly one URI SAN (an SVID has one; two would be ambiguous);
//! 2. it is a SPIFFE ID by the specification's grammar ([`crate::spiffe`]);
//! 3. of the configured trust domain (a CA trusted for several domains,
//!    or a federated bundle, cannot lend another domain's workloads a user);
//! 4. the leaf is not a CA (basicConstraints `cA` false or absent, no
//!    keyCertSign or cRLSign): a signing certificate is not a workload;
//! 5. a configured user is named by exactly that SPIFFE ID (nats-server's
//!    spelling of a URI-mapped user, so a config moves between the two).
//!
//! No other name in the certificate is looked at, and nothing falls back.

use std::fmt;

use super::peer::{CaClaim, PeerIdentity};
use crate::spiffe::{SpiffeId, SpiffeIdError, TrustDomain};

/// The rule a certificate broke, for the log line of a refused login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvidRefusal {
    /// No URI SAN.
    NoUri,
    /// More than one URI SAN (how many).
    SeveralUris(usize),
    /// The URI SAN is not a SPIFFE ID.
    NotSpiffeId(SpiffeIdError),
    /// A SPIFFE ID of another trust domain.
    OtherTrustDomain,
    /// The leaf claims to be a CA.
    Ca(CaClaim),
    /// No configured user is named by the SPIFFE ID.
    NoUser,
}

impl fmt::Display for SvidRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SvidRefusal::NoUri => f.write_str("the certificate has no URI SAN"),
            SvidRefusal::SeveralUris(n) => write!(f, "the certificate has {n} URI SANs, not exactly one"),
            SvidRefusal::NotSpiffeId(why) => write!(f, "the URI SAN is not a SPIFFE ID: {why}"),
            SvidRefusal::OtherTrustDomain => f.write_str("the SPIFFE ID is not of the configured trust domain"),
            SvidRefusal::Ca(claim) => write!(f, "the certificate is a CA ({claim}), not a workload's"),
            SvidRefusal::NoUser => f.write_str("no configured user is named by the SPIFFE ID"),
        }
    }
}

impl std::error::Error for SvidRefusal {}

/// The user `peer` maps to under the strict rules of `domain` (the module
/// doc): its SPIFFE ID, if `is_user` says a user has that name.
pub fn spiffe_user(
    peer: &PeerIdentity,
    domain: &TrustDomain,
    is_user: impl Fn(&str) -> bool,
) -> Result<SpiffeId, SvidRefusal> {
    let uri = match peer.uris.as_slice() {
        [] => return Err(SvidRefusal::NoUri),
        [uri] => uri,
        several => return Err(SvidRefusal::SeveralUris(several.len())),
    };
    let id = SpiffeId::parse(uri).map_err(SvidRefusal::NotSpiffeId)?;
    if !id.is_in(domain) {
        return Err(SvidRefusal::OtherTrustDomain);
    }
    if let Some(claim) = peer.ca {
        return Err(SvidRefusal::Ca(claim));
    }
    if !is_user(id.as_str()) {
        return Err(SvidRefusal::NoUser);
    }
    Ok(id)
}

/// Logs a refused strict mapping: the rule, the subject DN and the URI SANs
/// (public names the CA signed, never more of the certificate). `who` says
/// what tried to log in ("STANDARD 10.0.0.7:53122", "route", ...).
pub fn log_refusal(who: &str, peer: &PeerIdentity, why: &SvidRefusal) {
    // Debug-quoted: a SAN is IA5 text and may hold control characters that
    // would forge a log line. A certificate bounds its SANs, but the line is
    // kept short anyway.
    let uris: Vec<&str> = peer.uris.iter().take(4).map(String::as_str).collect();
    tracing::info!(subject = ?peer.subject_dn(), ?uris, rule = %why, "{who} certificate refused by the strict SPIFFE mapping");
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "spiffe://example.org/ns/prod/sa/orders";

    fn svid(uris: &[&str]) -> PeerIdentity {
        PeerIdentity {
            uris: uris.iter().map(|u| (*u).to_string()).collect(),
            subject: vec![("CN".into(), "orders".into())],
            ..PeerIdentity::default()
        }
    }

    fn map(peer: &PeerIdentity) -> Result<SpiffeId, SvidRefusal> {
        let domain = TrustDomain::parse("example.org").unwrap();
        spiffe_user(peer, &domain, |name| name == GOOD || name == "spiffe://example.org/other")
    }

    #[test]
    fn one_spiffe_id_of_the_domain_on_a_leaf_maps_to_its_user() {
        assert_eq!(map(&svid(&[GOOD])).unwrap().as_str(), GOOD);
    }

    #[test]
    fn each_rule_refuses_by_name() {
        assert_eq!(map(&svid(&[])), Err(SvidRefusal::NoUri));
        assert_eq!(map(&svid(&[GOOD, "spiffe://example.org/other"])), Err(SvidRefusal::SeveralUris(2)));
        assert_eq!(
            map(&svid(&["https://example.org/orders"])),
            Err(SvidRefusal::NotSpiffeId(SpiffeIdError::WrongScheme))
        );
        assert_eq!(
            map(&svid(&["spiffe://example.org/ns/../orders"])),
            Err(SvidRefusal::NotSpiffeId(SpiffeIdError::DotSegment))
        );
        assert_eq!(map(&svid(&["spiffe://example.com/ns/prod/sa/orders"])), Err(SvidRefusal::OtherTrustDomain));
        assert_eq!(map(&svid(&["spiffe://example.org/nobody"])), Err(SvidRefusal::NoUser));
        for claim in [CaClaim::BasicConstraints, CaClaim::KeyUsage] {
            let peer = PeerIdentity { ca: Some(claim), ..svid(&[GOOD]) };
            assert_eq!(map(&peer), Err(SvidRefusal::Ca(claim)));
        }
    }

    #[test]
    fn other_names_never_stand_in_for_the_spiffe_id() {
        // A user named by the certificate's email, DNS name or DN exists,
        // but strict mode looks at the URI SAN only.
        let peer = PeerIdentity {
            emails: vec![GOOD.into()],
            dns_names: vec![GOOD.into()],
            subject: vec![("CN".into(), GOOD.into())],
            ..PeerIdentity::default()
        };
        assert_eq!(map(&peer), Err(SvidRefusal::NoUri));
    }

    #[test]
    fn the_ca_marks_are_read_from_real_certificates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(GOOD.try_into().unwrap())];
        let leaf = params.clone().self_signed(&key).unwrap();
        let peer = PeerIdentity::from_der(leaf.der()).unwrap();
        assert_eq!((peer.uris.as_slice(), peer.ca), (&[GOOD.to_string()][..], None));

        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.clone().self_signed(&key).unwrap();
        assert_eq!(PeerIdentity::from_der(ca.der()).unwrap().ca, Some(CaClaim::BasicConstraints));

        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyCertSign];
        let signer = params.clone().self_signed(&key).unwrap();
        assert_eq!(PeerIdentity::from_der(signer.der()).unwrap().ca, Some(CaClaim::KeyUsage));

        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let workload = params.self_signed(&key).unwrap();
        assert_eq!(PeerIdentity::from_der(workload.der()).unwrap().ca, None, "cA: false is not a CA");
    }
}
