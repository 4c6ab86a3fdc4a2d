//! The built-in authenticators.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::password::{dummy_verify, PasswordHash};
use super::verified::VerifiedCache;
use super::{credential_fingerprint, Authenticator, Claims, ConnectionFacts, Identity, RefusalReason, Verdict};
use crate::config::RateLimit;
use crate::nkeys::{self, KeyPair, KeyType, PublicKey};
use crate::perms::PermissionSet;
use crate::spiffe::TrustDomain;
use crate::tls::{log_refusal, spiffe_user, PeerIdentity};

/// Verifies `candidate` against `hash`, using and feeding the cache.
fn verify_cached(cache: &VerifiedCache, name: &str, hash: &PasswordHash, candidate: &str) -> bool {
    let now = Instant::now();
    if cache.check(name, candidate, now) {
        return true;
    }
    let ok = hash.verify(candidate);
    if ok {
        cache.remember(name, candidate, now);
    }
    ok
}

/// No authentication (the default): everyone connects with the same
/// permissions, which still keep the reserved `_SYS.>` space closed.
#[derive(Debug)]
pub struct NoAuth {
    permissions: Arc<PermissionSet>,
}

impl NoAuth {
    /// Everyone gets `permissions`.
    pub fn new(permissions: Arc<PermissionSet>) -> Self {
        NoAuth { permissions }
    }
}

impl Authenticator for NoAuth {
    fn auth_required(&self) -> bool {
        false
    }

    fn authenticate(&self, _claims: &Claims, _facts: &ConnectionFacts) -> Verdict {
        Verdict::Accept(Identity::global(None, self.permissions.clone(), 0))
    }

    fn refresh(&self, _identity: &Identity) -> Option<Identity> {
        Some(Identity::global(None, self.permissions.clone(), 0))
    }
}

/// A single shared token (`authorization { token }`).
#[derive(Debug)]
pub struct TokenAuth {
    token: PasswordHash,
    credential: u64,
    permissions: Arc<PermissionSet>,
    cache: VerifiedCache,
}

impl TokenAuth {
    /// Accepts clients presenting `token` (plain, bcrypt or argon2);
    /// `credential` is the fingerprint of the stored token.
    pub fn new(token: PasswordHash, credential: u64, permissions: Arc<PermissionSet>) -> Self {
        TokenAuth { token, credential, permissions, cache: VerifiedCache::default() }
    }

    fn identity(&self) -> Identity {
        Identity::global(None, self.permissions.clone(), self.credential)
    }
}

impl Authenticator for TokenAuth {
    fn authenticate(&self, claims: &Claims, _facts: &ConnectionFacts) -> Verdict {
        let Some(token) = &claims.token else {
            return Verdict::Refuse(RefusalReason::MissingCredentials);
        };
        if verify_cached(&self.cache, "", &self.token, token.expose()) {
            Verdict::Accept(self.identity())
        } else {
            Verdict::Refuse(RefusalReason::BadCredentials)
        }
    }

    fn refresh(&self, identity: &Identity) -> Option<Identity> {
        (identity.credential == self.credential).then(|| self.identity())
    }
}

/// A single user and password (`authorization { user, password }`).
#[derive(Debug)]
pub struct SingleUser {
    user: String,
    password: PasswordHash,
    credential: u64,
    permissions: Arc<PermissionSet>,
    cache: VerifiedCache,
}

impl SingleUser {
    /// Accepts `user` with `password`; `credential` fingerprints the stored password.
    pub fn new(user: String, password: PasswordHash, credential: u64, permissions: Arc<PermissionSet>) -> Self {
        SingleUser { user, password, credential, permissions, cache: VerifiedCache::default() }
    }

    fn identity(&self) -> Identity {
        Identity::global(Some(self.user.clone()), self.permissions.clone(), self.credential)
    }
}

impl Authenticator for SingleUser {
    fn authenticate(&self, claims: &Claims, _facts: &ConnectionFacts) -> Verdict {
        let (Some(user), Some(password)) = (&claims.user, &claims.password) else {
            return Verdict::Refuse(RefusalReason::MissingCredentials);
        };
        // Verify even for a wrong name, so both failures cost the same.
        let password_ok = verify_cached(&self.cache, &self.user, &self.password, password.expose());
        if password_ok && *user == self.user {
            Verdict::Accept(self.identity())
        } else {
            Verdict::Refuse(RefusalReason::BadCredentials)
        }
    }

    fn refresh(&self, identity: &Identity) -> Option<Identity> {
        (identity.user.as_deref() == Some(self.user.as_str()) && identity.credential == self.credential)
            .then(|| self.identity())
    }

    fn account_of(&self, claims: &Claims) -> Option<Arc<str>> {
        (claims.user.as_deref() == Some(self.user.as_str())).then(|| crate::config::GLOBAL_ACCOUNT.into())
    }
}

/// One configured user.
#[derive(Debug)]
pub struct UserEntry {
    /// The user's account.
    pub account: Arc<str>,
    /// Stored password; `None` for certificate-only users.
    pub password: Option<PasswordHash>,
    /// The compiled permissions.
    pub permissions: Arc<PermissionSet>,
    /// Fingerprint of the stored credential, to notice changes on reload.
    pub credential: u64,
    /// The user's `rate_limit`.
    pub rate_limit: Option<RateLimit>,
    /// `allowed_connection_types`, upper case; empty = every kind.
    pub connection_types: Vec<String>,
}

/// Whether a user whose `allowed_connection_types` is `allowed` may log
/// in on `facts`' kind of connection (nats-server's `connectionTypeAllowed`:
/// an empty list allows every kind).
fn connection_allowed(allowed: &[String], facts: &ConnectionFacts) -> bool {
    super::connection_type_allowed(allowed, facts.connection)
}

/// One configured nkey user.
#[derive(Debug)]
pub struct NkeyEntry {
    /// The user's account.
    pub account: Arc<str>,
    /// The user's public key.
    pub key: PublicKey,
    /// The compiled permissions.
    pub permissions: Arc<PermissionSet>,
    /// The user's `rate_limit`.
    pub rate_limit: Option<RateLimit>,
    /// `allowed_connection_types`, upper case; empty = every kind.
    pub connection_types: Vec<String>,
}

impl NkeyEntry {
    /// The identity of a login as `nkey`.
    fn identity(&self, nkey: &str) -> Identity {
        let mut identity = Identity::new(
            Some(nkey.to_owned()),
            self.account.clone(),
            self.permissions.clone(),
            credential_fingerprint(nkey),
        );
        identity.limits.rate = self.rate_limit;
        identity.connection_types = self.connection_types.as_slice().into();
        identity
    }
}

/// The users list, by password, by nkey (a signature of the connection's
/// nonce), or (with `verify_and_map`) by client certificate.
#[derive(Debug)]
pub struct UsersAuth {
    users: HashMap<String, UserEntry>,
    /// Nkey users by public key.
    nkeys: HashMap<String, NkeyEntry>,
    /// Verified against for an unknown nkey, so it costs what a known
    /// key's failure costs (a random key nobody holds the seed of).
    decoy_key: Option<PublicKey>,
    map_certificates: bool,
    /// `tls { spiffe_trust_domain }`: with `map_certificates`, map only by
    /// the certificate's one SPIFFE ID of this domain (`tls::spiffe_user`).
    spiffe: Option<TrustDomain>,
    /// `no_auth_user`: who a connection presenting no credentials is.
    no_auth_user: Option<String>,
    /// Verified for unknown users, shaped like the configured hashes, so an
    /// unknown user costs what a wrong password costs.
    dummy: Option<PasswordHash>,
    cache: VerifiedCache,
}

impl UsersAuth {
    /// A users list; `map_certificates` maps a verified client certificate
    /// to a user instead of reading `user` from CONNECT.
    pub fn new(users: HashMap<String, UserEntry>, map_certificates: bool, dummy: Option<PasswordHash>) -> Self {
        UsersAuth {
            users,
            nkeys: HashMap::new(),
            decoy_key: None,
            map_certificates,
            spiffe: None,
            no_auth_user: None,
            dummy,
            cache: VerifiedCache::default(),
        }
    }

    /// Maps certificates strictly, by their SPIFFE ID of `domain` (with
    /// `map_certificates` only; `None` keeps nats-server's mapping).
    pub fn with_spiffe_trust_domain(mut self, domain: Option<TrustDomain>) -> Self {
        self.spiffe = domain;
        self
    }

    /// The configured user `peer`'s certificate maps to: by its SPIFFE ID
    /// in strict mode (a refusal logged with the rule it broke), else by
    /// the first of its names that is a user, as nats-server maps.
    fn mapped_user(&self, peer: &PeerIdentity, facts: &ConnectionFacts) -> Option<String> {
        let Some(domain) = &self.spiffe else {
            return peer.map_to(self.users.keys().map(String::as_str)).map(str::to_string);
        };
        match spiffe_user(peer, domain, |name| self.users.contains_key(name)) {
            Ok(id) => Some(id.as_str().to_owned()),
            Err(why) => {
                log_refusal(&format!("{} {}", facts.connection.jwt_name(), facts.addr), peer, &why);
                None
            }
        }
    }

    /// Adds nkey users (public key to entry).
    pub fn with_nkeys(mut self, nkeys: HashMap<String, NkeyEntry>) -> Self {
        self.decoy_key = KeyPair::generate(KeyType::User).ok().map(|pair| pair.public().clone());
        self.nkeys = nkeys;
        self
    }

    /// An nkey login: one signature check whether or not the key is known,
    /// so an unknown key is not told apart by time.
    fn authenticate_nkey(&self, nkey: &str, claims: &Claims, facts: &ConnectionFacts) -> Verdict {
        let entry = self.nkeys.get(nkey);
        let Some(key) = entry.map(|e| &e.key).or(self.decoy_key.as_ref()) else {
            return Verdict::Refuse(RefusalReason::BadCredentials);
        };
        let nonce = facts.nonce.as_deref().unwrap_or_default();
        let signature = claims.signature.as_deref().and_then(nkeys::decode_signature);
        let zeros = [0u8; nkeys::SIGNATURE_LEN];
        let verified = key.verify(nonce.as_bytes(), signature.as_deref().unwrap_or(&zeros));
        match entry {
            Some(entry) if verified && facts.nonce.is_some() && signature.is_some() => {
                if !connection_allowed(&entry.connection_types, facts) {
                    return Verdict::Refuse(RefusalReason::NotAllowedHere);
                }
                Verdict::Accept(entry.identity(nkey))
            }
            _ => Verdict::Refuse(RefusalReason::BadCredentials),
        }
    }

    /// Connections that present no credentials at all (no user, password or
    /// token) are logged in as `user`, as nats-server's `no_auth_user`.
    pub fn with_no_auth_user(mut self, user: Option<String>) -> Self {
        self.no_auth_user = user;
        self
    }

    fn identity(&self, name: &str) -> Option<Identity> {
        let entry = self.users.get(name)?;
        let mut identity =
            Identity::new(Some(name.to_owned()), entry.account.clone(), entry.permissions.clone(), entry.credential);
        identity.limits.rate = entry.rate_limit;
        identity.connection_types = entry.connection_types.as_slice().into();
        Some(identity)
    }

    fn check_password(&self, name: &str, entry: Option<&UserEntry>, candidate: Option<&str>) -> bool {
        match (entry.and_then(|e| e.password.as_ref()), candidate) {
            (Some(hash), Some(candidate)) => verify_cached(&self.cache, name, hash, candidate),
            (None, _) if entry.is_some() && self.map_certificates => true,
            (_, candidate) => {
                // Burn the same time as a real check.
                let candidate = candidate.unwrap_or_default();
                match &self.dummy {
                    Some(dummy) => dummy.verify(candidate),
                    None => dummy_verify(candidate),
                };
                false
            }
        }
    }
}

impl Authenticator for UsersAuth {
    fn authenticate(&self, claims: &Claims, facts: &ConnectionFacts) -> Verdict {
        if let (Some(nkey), false) = (&claims.nkey, self.nkeys.is_empty()) {
            return self.authenticate_nkey(nkey, claims, facts);
        }
        let candidate = claims.password.as_ref().map(|p| p.expose());
        let anonymous =
            claims.user.is_none() && claims.password.is_none() && claims.token.is_none() && claims.nkey.is_none();
        if let (Some(name), true, false) = (&self.no_auth_user, anonymous, self.map_certificates) {
            if self.users.get(name).is_some_and(|e| !connection_allowed(&e.connection_types, facts)) {
                return Verdict::Refuse(RefusalReason::NotAllowedHere);
            }
            return self.identity(name).map_or(Verdict::Refuse(RefusalReason::MissingCredentials), Verdict::Accept);
        }
        let name = if self.map_certificates {
            let Some(peer) = &facts.peer else {
                return Verdict::Refuse(RefusalReason::CertificateNotMapped);
            };
            match self.mapped_user(peer, facts) {
                Some(name) => name,
                None => return Verdict::Refuse(RefusalReason::CertificateNotMapped),
            }
        } else {
            match &claims.user {
                Some(user) => user.clone(),
                None => return Verdict::Refuse(RefusalReason::MissingCredentials),
            }
        };
        let entry = self.users.get(&name);
        if !self.check_password(&name, entry, candidate) {
            return Verdict::Refuse(RefusalReason::BadCredentials);
        }
        // After the password, so a guesser learns nothing of the user from it.
        if entry.is_some_and(|e| !connection_allowed(&e.connection_types, facts)) {
            return Verdict::Refuse(RefusalReason::NotAllowedHere);
        }
        self.identity(&name).map_or(Verdict::Refuse(RefusalReason::BadCredentials), Verdict::Accept)
    }

    fn refresh(&self, identity: &Identity) -> Option<Identity> {
        let name = identity.user.as_ref()?;
        if let Some(entry) = self.nkeys.get(name) {
            return (identity.credential == credential_fingerprint(name)).then(|| entry.identity(name));
        }
        self.identity(name).filter(|fresh| fresh.credential == identity.credential)
    }

    fn wants_nonce(&self) -> bool {
        !self.nkeys.is_empty()
    }

    fn account_of(&self, claims: &Claims) -> Option<Arc<str>> {
        let by_nkey = claims.nkey.as_ref().and_then(|k| self.nkeys.get(k)).map(|e| e.account.clone());
        by_nkey.or_else(|| claims.user.as_ref().and_then(|u| self.users.get(u)).map(|e| e.account.clone()))
    }
}

/// Tries each authenticator in turn; the first that accepts wins.
#[derive(Debug)]
pub struct Chain {
    links: Vec<Arc<dyn Authenticator>>,
}

impl Chain {
    /// A chain of `links`, tried in order.
    pub fn new(links: Vec<Arc<dyn Authenticator>>) -> Self {
        Chain { links }
    }
}

impl Authenticator for Chain {
    fn auth_required(&self) -> bool {
        self.links.iter().all(|l| l.auth_required())
    }

    fn wants_nonce(&self) -> bool {
        self.links.iter().any(|l| l.wants_nonce())
    }

    fn authenticate(&self, claims: &Claims, facts: &ConnectionFacts) -> Verdict {
        let mut last = Verdict::Refuse(RefusalReason::MissingCredentials);
        for link in &self.links {
            last = link.authenticate(claims, facts);
            if matches!(last, Verdict::Accept(_)) {
                return last;
            }
        }
        last
    }

    fn refresh(&self, identity: &Identity) -> Option<Identity> {
        self.links.iter().find_map(|l| l.refresh(identity))
    }

    fn account_of(&self, claims: &Claims) -> Option<Arc<str>> {
        self.links.iter().find_map(|l| l.account_of(claims))
    }
}
