//! What an accepted route must present to log in: `cluster { authorization
//! { user, password } }`, and under `tls { verify_and_map }` a certificate
//! that names the user (nats-server's `isRouterAuthorized`).

use crate::auth::password::PasswordHash;
use crate::secret::Secret;
use crate::spiffe::TrustDomain;
use crate::tls::{log_refusal, spiffe_user, PeerIdentity};

/// The route login this server expects.
#[derive(Debug, Clone)]
pub(crate) struct RouteCredentials {
    /// `authorization { user }`.
    pub(crate) user: String,
    /// `authorization { password }`; `None` only when `certificate` is set.
    pub(crate) password: Option<PasswordHash>,
    /// `tls { verify_and_map }`: the route's certificate must name `user`
    /// (email, DNS name, URI or subject DN, as for clients), and the user in
    /// its CONNECT is not looked at (nats-server does not either).
    pub(crate) certificate: bool,
    /// `tls { spiffe_trust_domain }` (with `certificate`): the certificate
    /// must name `user` strictly, as its one SPIFFE ID of this domain
    /// (`tls::spiffe_user`), not by any of its names.
    pub(crate) spiffe: Option<TrustDomain>,
}

impl RouteCredentials {
    /// Whether a route that presented these logs in. Blocking when a
    /// password hash is checked: call it on the verification pool.
    pub(crate) fn admit(
        &self,
        user: Option<String>,
        pass: Option<Secret>,
        certificate: Option<Box<PeerIdentity>>,
    ) -> bool {
        let named = match (&certificate, self.certificate, &self.spiffe) {
            (Some(peer), true, Some(domain)) => match spiffe_user(peer, domain, |name| name == self.user) {
                Ok(_) => true,
                Err(why) => {
                    log_refusal("route", peer, &why);
                    false
                }
            },
            (Some(peer), true, None) => peer.map_to(std::iter::once(self.user.as_str())).is_some(),
            (None, true, _) => false,
            (_, false, _) => user.as_deref() == Some(self.user.as_str()),
        };
        // The password is checked even when the name is wrong, so a wrong
        // user costs what a wrong password does.
        let password_ok = self.password.as_ref().is_none_or(|h| h.verify(pass.as_ref().map_or("", Secret::expose)));
        named && password_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(dn: &[(&str, &str)]) -> PeerIdentity {
        PeerIdentity { subject: dn.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(), ..Default::default() }
    }

    fn mapped(password: Option<&str>) -> RouteCredentials {
        RouteCredentials {
            user: "CN=localhost,OU=NATS.io Operators".into(),
            password: password.map(|p| PasswordHash::parse(p).unwrap()),
            certificate: true,
            spiffe: None,
        }
    }

    #[test]
    fn a_mapped_route_logs_in_by_its_certificate_alone() {
        let ours = certificate(&[("OU", "NATS.io Operators"), ("CN", "localhost")]);
        let creds = mapped(None);
        assert!(creds.admit(None, None, Some(Box::new(ours.clone()))));
        assert!(
            creds.admit(Some("someone else".into()), None, Some(Box::new(ours))),
            "the CONNECT user is not looked at"
        );
        assert!(
            !creds.admit(None, None, Some(Box::new(certificate(&[("CN", "localhost")])))),
            "a partial DN does not map"
        );
        assert!(!creds.admit(Some(creds.user.clone()), None, None), "no certificate, no login");
    }

    #[test]
    fn a_password_configured_with_mapping_is_checked_too() {
        let ours = certificate(&[("OU", "NATS.io Operators"), ("CN", "localhost")]);
        let creds = mapped(Some("s3cret-route-pass"));
        assert!(creds.admit(None, Some(Secret::new("s3cret-route-pass")), Some(Box::new(ours.clone()))));
        assert!(!creds.admit(None, Some(Secret::new("wrong")), Some(Box::new(ours.clone()))));
        assert!(!creds.admit(None, None, Some(Box::new(ours))));
    }

    #[test]
    fn without_mapping_user_and_password_must_both_match() {
        let creds = RouteCredentials {
            user: "route".into(),
            password: Some(PasswordHash::parse("s3cret-route-pass").unwrap()),
            certificate: false,
            spiffe: None,
        };
        let pass = || Some(Secret::new("s3cret-route-pass"));
        assert!(creds.admit(Some("route".into()), pass(), None));
        assert!(!creds.admit(Some("other".into()), pass(), None));
        assert!(!creds.admit(Some("route".into()), None, None));
        assert!(!creds.admit(None, pass(), Some(Box::new(certificate(&[("CN", "route")])))));
    }

    #[test]
    fn a_strict_route_logs_in_by_its_spiffe_id_alone() {
        let user = "spiffe://example.org/nats/route";
        let creds = RouteCredentials {
            user: user.into(),
            password: None,
            certificate: true,
            spiffe: Some(TrustDomain::parse("example.org").unwrap()),
        };
        let svid =
            |uris: &[&str]| PeerIdentity { uris: uris.iter().map(|u| (*u).into()).collect(), ..certificate(&[]) };
        assert!(creds.admit(None, None, Some(Box::new(svid(&[user])))));
        assert!(!creds.admit(None, None, Some(Box::new(svid(&[user, user])))), "two URI SANs");
        assert!(!creds.admit(None, None, Some(Box::new(svid(&["spiffe://example.org/other"])))), "another user");
        let dn_named = PeerIdentity { emails: vec![user.into()], ..certificate(&[("CN", user)]) };
        assert!(!creds.admit(None, None, Some(Box::new(dn_named))), "no fallback to other names");
        assert!(!creds.admit(Some(user.into()), None, None), "no certificate, no login");
    }
}
