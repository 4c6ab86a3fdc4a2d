//! External authorizers: the services an operator plugs in to decide who
//! connects, without writing Rust. [`callout`] is nats-server 2.10's auth
//! callout over NATS; [`http`] is warden's HTTP authorizer. Both are
//! [`Delegate`]s behind a [`Delegation`], whose rules (local users first,
//! `auth_users` and system users always local, a bounded number of
//! questions in flight, reasons private by default) are in
//! [`crate::auth::delegation`].

pub mod callout;
pub mod http;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{AuthSetupError, Delegation, DelegationRules, Verifier};
use crate::broker::Broker;
use crate::config::{DelegateService, Options};
use crate::nkeys::{CurveKeyPair, CurvePublic};
use crate::proto::NATS_VERSION;
use callout::{AuthCallout, CalloutSetup};

/// Why the configured authorizer cannot be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum DelegateSetupError {
    /// The permissions users it admits would get do not compile.
    Permissions(AuthSetupError),
    /// A key in its configuration is not usable.
    Key(&'static str),
    /// The HTTP authorizer's TLS roots cannot be loaded.
    Tls(String),
}

impl fmt::Display for DelegateSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DelegateSetupError::Permissions(err) => write!(f, "authorization service: {err}"),
            DelegateSetupError::Key(what) => write!(f, "authorization service: {what}"),
            DelegateSetupError::Tls(why) => write!(f, "http_authorizer: {why}"),
        }
    }
}

impl std::error::Error for DelegateSetupError {}

/// A started authorizer.
#[derive(Debug)]
pub struct Started {
    /// Its rules and the service, for the gate.
    pub delegation: Arc<Delegation>,
    /// The server's curve key, when the callout encrypts (INFO's `xkey`).
    pub server_xkey: Option<String>,
}

/// The authorizer the options configure (`None` without one), started.
/// `timeout`: the client auth timeout, the default for an answer.
pub fn from_options(
    opts: &Options,
    broker: &Arc<Broker>,
    verifier: &Arc<Verifier>,
    timeout: Duration,
    cluster: Option<String>,
) -> Result<Option<Started>, DelegateSetupError> {
    let Some(config) = opts.authorization.as_ref().and_then(|a| a.delegation.as_ref()) else { return Ok(None) };
    let mut server_xkey = None;
    let timeout = config.timeout.unwrap_or(timeout).min(timeout);
    let defaults = crate::auth::account_defaults(opts).map_err(DelegateSetupError::Permissions)?;
    let (delegate, service_account): (Arc<dyn crate::auth::Delegate>, _) = match &config.service {
        DelegateService::Callout { issuer, account, xkey } => {
            let service_xkey = match xkey {
                Some(key) => {
                    Some(CurvePublic::parse(key).map_err(|_| DelegateSetupError::Key("xkey is not a curve key"))?)
                }
                None => None,
            };
            let pair = service_xkey.as_ref().map(|_| Arc::new(CurveKeyPair::generate()));
            server_xkey = pair.as_ref().map(|p| p.public().as_str().to_owned());
            let setup = CalloutSetup {
                issuer: issuer.clone(),
                account: account.as_str().into(),
                server_xkey: pair,
                service_xkey,
                server_key: broker.identity.key.clone(),
                server_name: broker.identity.name.clone(),
                host: opts.host.clone(),
                version: NATS_VERSION.into(),
                cluster,
                timeout_secs: i64::try_from(timeout.as_secs().max(1)).unwrap_or(i64::MAX),
                defaults,
            };
            let callout = AuthCallout::start(broker.clone(), verifier.clone(), setup);
            (Arc::new(callout), Some(account.as_str().into()))
        }
        DelegateService::Http { url, ca_file, headers } => {
            let authorizer = http::HttpAuthorizer::new(url, ca_file.as_deref(), headers, broker, verifier, defaults)?;
            (Arc::new(authorizer), None)
        }
    };
    let rules = DelegationRules {
        auth_users: config.auth_users.clone(),
        allowed_accounts: config.allowed_accounts.clone(),
        local_first: config.local_first,
        reveal_reason: config.reveal_reason,
        system_account: opts.system_account.as_deref().map(Into::into),
        service_account,
        max_in_flight: config.max_in_flight,
        timeout,
    };
    Ok(Some(Started { delegation: Arc::new(Delegation::new(delegate, rules)), server_xkey }))
}
