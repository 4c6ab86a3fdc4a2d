//! Authentication: who may connect, and with which compiled permissions.
//!
//! An [`Authenticator`] gets the CONNECT credentials and the connection's
//! facts (peer address, verified client certificate) and returns an
//! [`Identity`] or a refusal. Verification may be expensive (argon2), so
//! every login goes through one [`Gate`] (clients) or [`Guard`] (routes,
//! monitoring): the failure throttle, then a fixed pool of verification
//! threads ([`Verifier`]), never the async reactor. Built-ins: no auth, a
//! token, a single user, the users list (passwords or certificate mapping),
//! and a chain of them.

mod backends;
mod build;
pub mod delegation;
mod gate;
pub mod operator;
pub mod password;
mod throttle;
mod verified;
mod verifier;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::jwt::{Jwt, UserClaims};
use crate::perms::PermissionSet;
use crate::secret::Secret;
use crate::tls::PeerIdentity;

pub use backends::{Chain, NkeyEntry, NoAuth, SingleUser, TokenAuth, UsersAuth};
pub use build::{account_defaults, config_values, from_options, timing_warnings, AccountDefaults, AuthSetupError};
pub use delegation::{client_reason, Delegate, Delegation, DelegationRules, Pending, Route};
pub use gate::{Gate, Guard};
pub use throttle::{FailureThrottle, FREE_FAILURES};
pub use verified::VerifiedCache;
pub use verifier::{default_parallelism, Verifier};

/// What a client presented in CONNECT.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    /// `user`.
    pub user: Option<String>,
    /// `pass`.
    pub password: Option<Secret>,
    /// `auth_token`.
    pub token: Option<Secret>,
    /// `nkey`: the public key the client claims.
    pub nkey: Option<String>,
    /// `sig`: its signature of the connection's nonce (base64url).
    pub signature: Option<String>,
    /// `jwt`: a user JWT (operator mode).
    pub jwt: Option<Secret>,
    /// `name`, `lang`, `version` and `protocol`: what the client says it is
    /// (for an external authorizer; never trusted).
    pub client: ClientSoftware,
}

/// What a client says about itself in CONNECT.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientSoftware {
    /// `name`.
    pub name: Option<String>,
    /// `lang`.
    pub lang: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `protocol`.
    pub protocol: i64,
}

/// What the server knows about the connection itself.
#[derive(Debug, Clone)]
pub struct ConnectionFacts {
    /// Peer address.
    pub addr: SocketAddr,
    /// Names from a verified client certificate, if one was presented.
    pub peer: Option<PeerIdentity>,
    /// The nonce this connection's INFO carried, for nkey signatures
    /// (`None` when none was sent).
    pub nonce: Option<String>,
    /// The connection's id (`cid`).
    pub client_id: u64,
    /// The TLS session, when on TLS.
    pub tls: Option<TlsFacts>,
    /// How it reached the server.
    pub connection: ConnectionType,
}

/// How a connection reached the server, in the words of a user JWT's
/// `allowed_connection_types` and of an auth callout request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConnectionType {
    /// A client on the client port.
    #[default]
    Standard,
    /// A client through the WebSocket listener.
    Websocket,
    /// A leaf node server on the leaf node port.
    Leafnode,
}

impl ConnectionType {
    /// The name `allowed_connection_types` uses.
    pub fn jwt_name(self) -> &'static str {
        match self {
            ConnectionType::Standard => "STANDARD",
            ConnectionType::Websocket => "WEBSOCKET",
            ConnectionType::Leafnode => "LEAFNODE",
        }
    }

    /// The `client_info` `kind` and `type` of an auth callout request
    /// (nats-server's `kindString` and `clientTypeString`).
    pub fn callout_kind_and_type(self) -> (&'static str, &'static str) {
        match self {
            ConnectionType::Standard => ("Client", "nats"),
            ConnectionType::Websocket => ("Client", "websocket"),
            ConnectionType::Leafnode => ("Leafnode", ""),
        }
    }
}

/// A connection's TLS session, as an external authorizer is told it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsFacts {
    /// The protocol version (rustls' name, `TLSv1_3`).
    pub version: String,
    /// The cipher suite (rustls' name).
    pub cipher: String,
    /// The client's certificate chain (DER, leaf first) when it sent one;
    /// the handshake verified it.
    pub chain: Arc<[Vec<u8>]>,
}

impl ConnectionFacts {
    /// The facts of a plain connection from `addr` that was sent no nonce.
    pub fn new(addr: SocketAddr) -> ConnectionFacts {
        ConnectionFacts { addr, peer: None, nonce: None, client_id: 0, tls: None, connection: ConnectionType::Standard }
    }
}

/// An authenticated identity. Non-exhaustive, so a field added for a new
/// kind of login does not break an embedder's code: build one with
/// [`Identity::new`] or [`Identity::global`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Identity {
    /// User name for logs and monitoring (never a secret; `None` without auth).
    pub user: Option<String>,
    /// The account the connection belongs to (`$G` for users outside
    /// `accounts`); a login naming an account the server does not host is
    /// refused.
    pub account: Arc<str>,
    /// What this identity may publish and subscribe to, compiled at load.
    pub permissions: Arc<PermissionSet>,
    /// Fingerprint of the stored credential that admitted it (0 if none),
    /// so a reload can tell a changed password from an unchanged one.
    pub credential: u64,
    /// When the login stops being valid (a user JWT's `exp`, its account's,
    /// the end of its connect window): the connection is closed then.
    pub expires: Option<SystemTime>,
    /// The user's own per-connection limits (a user JWT's `subs` and
    /// `payload`), on top of the account's and the server's.
    pub limits: UserLimits,
    /// The user JWT it logged in with (operator mode), so a changed
    /// account can be checked against it again.
    pub jwt: Option<Arc<Jwt<UserClaims>>>,
    /// An external authorizer admitted it: a reload of the configured
    /// users keeps it (its account must still exist).
    pub delegated: bool,
    /// It runs the auth callout service (an `auth_users` member of the
    /// callout account), so it may subscribe to `$SYS.REQ.USER.AUTH` and
    /// answer into `$SYS._INBOX.>`.
    pub serves_callout: bool,
    /// A configured user's `allowed_connection_types` (upper case; empty:
    /// every kind), checked at login and again by a reload, which closes
    /// the connections of a kind no longer allowed (as nats-server).
    pub connection_types: Arc<[String]>,
}

impl Identity {
    /// Whether a connection of kind `connection` may hold this identity.
    pub fn allows(&self, connection: ConnectionType) -> bool {
        connection_type_allowed(&self.connection_types, connection)
    }
}

/// Whether `allowed_connection_types` (upper case) lets `connection` in
/// (nats-server's `connectionTypeAllowed`: an empty list allows every kind).
pub(crate) fn connection_type_allowed(allowed: &[String], connection: ConnectionType) -> bool {
    allowed.is_empty() || allowed.iter().any(|t| t == connection.jwt_name())
}

/// Limits of one user's connections; `None` = none of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UserLimits {
    /// Subscriptions per connection.
    pub max_subscriptions: Option<usize>,
    /// Largest message payload.
    pub max_payload: Option<usize>,
    /// How fast the connection may publish (a config user's `rate_limit`).
    pub rate: Option<crate::config::RateLimit>,
}

impl Identity {
    /// An identity in `account` without limits, expiry or JWT of its own.
    pub fn new(user: Option<String>, account: Arc<str>, permissions: Arc<PermissionSet>, credential: u64) -> Identity {
        Identity {
            user,
            account,
            permissions,
            credential,
            expires: None,
            limits: UserLimits::default(),
            jwt: None,
            delegated: false,
            serves_callout: false,
            connection_types: Arc::from([]),
        }
    }

    /// An identity in the global account `$G`.
    pub fn global(user: Option<String>, permissions: Arc<PermissionSet>, credential: u64) -> Identity {
        Identity::new(user, crate::config::GLOBAL_ACCOUNT.into(), permissions, credential)
    }
}

/// Fingerprint of a stored credential (not of the secret a client sent).
pub fn credential_fingerprint(stored: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    stored.hash(&mut h);
    h.finish()
}

/// An authenticator's answer. Non-exhaustive: an embedder's `match` on
/// one keeps a catch-all arm, so a new kind of answer cannot be mistaken
/// for an accept.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Verdict {
    /// Connect as this identity.
    Accept(Identity),
    /// `-ERR 'Authorization Violation'`, then close. Why is logged, not sent.
    Refuse(RefusalReason),
    /// Refused by an external authorizer that gave this reason, which the
    /// client is sent (`Authorization Violation: <reason>`) when the
    /// delegation's `reveal_reason` allows; otherwise it is logged.
    Explained(RefusalReason, String),
}

/// Why a login was refused (for logs and counters, never sent to the client,
/// so an attacker cannot tell an unknown user from a wrong password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// No credentials where some were needed.
    MissingCredentials,
    /// Unknown user, wrong password or wrong token.
    BadCredentials,
    /// A client certificate was needed and none mapped to a user.
    CertificateNotMapped,
    /// A user JWT that does not verify, is expired or revoked, or whose
    /// account is unknown (the log line before says which).
    BadJwt,
    /// Its login is valid, but not from this address, at this time or on
    /// this kind of connection.
    NotAllowedHere,
    /// The external authorizer refused it.
    ServiceRefused,
    /// The external authorizer did not answer in time, or its answer did
    /// not verify (the log line before says which).
    ServiceUnavailable,
    /// Not checked: the failure throttle had no slot for it within the
    /// client's time to log in (earlier failures from its address).
    Throttled,
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefusalReason::MissingCredentials => "missing credentials",
            RefusalReason::BadCredentials => "bad credentials",
            RefusalReason::CertificateNotMapped => "certificate not mapped to a user",
            RefusalReason::BadJwt => "user JWT not valid",
            RefusalReason::NotAllowedHere => {
                "user not allowed from this address, at this time or on this connection type"
            }
            RefusalReason::ServiceRefused => "refused by the authorization service",
            RefusalReason::ServiceUnavailable => "no valid answer from the authorization service",
            RefusalReason::Throttled => "not checked: too many recent failures from this address",
        })
    }
}

/// Decides who may connect. Implement it to plug in your own scheme (see
/// `examples/embed_custom_auth.rs`).
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// Whether clients must send credentials (INFO `auth_required`).
    fn auth_required(&self) -> bool {
        true
    }

    /// Whether clients need a nonce to sign (INFO `nonce`): when nkey users
    /// are configured.
    fn wants_nonce(&self) -> bool {
        false
    }

    /// Checks the credentials. May block for a while (hash verification):
    /// the server calls it on a blocking thread, a few at a time.
    fn authenticate(&self, claims: &Claims, facts: &ConnectionFacts) -> Verdict;

    /// The account of the configured user `claims` names (by user name or
    /// nkey), whether or not its credentials are right: with an external
    /// authorizer, such a user is decided here, not there. `None`: nobody
    /// the configuration knows.
    fn account_of(&self, _claims: &Claims) -> Option<Arc<str>> {
        None
    }

    /// After a configuration reload: the identity a connection authenticated
    /// as, as the new configuration sees it, or `None` to close the
    /// connection (user removed or credentials changed). The default keeps
    /// the identity unchanged.
    fn refresh(&self, identity: &Identity) -> Option<Identity> {
        Some(identity.clone())
    }
}
