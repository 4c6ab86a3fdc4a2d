//! Operator mode at run time: the resolver's accounts turned into the
//! broker's accounts and the JWT authenticator, at start, on reload, when
//! an account JWT is pushed, and when something in them expires. Each
//! change is applied like a reload (accounts first, then the gate), so live
//! connections re-check their login against it at once.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::node::Node;
use super::StartError;
use crate::auth::operator::{JwtAuth, Resolver, Update};
use crate::auth::{self, Authenticator};
use crate::broker::stopping;
use crate::config::Options;
use crate::system::{ClaimsAnswer, ClaimsAsk, ClaimsRequest};

/// Operator mode's state: the config as read and the resolver.
#[derive(Debug)]
pub(super) struct OperatorMode {
    /// The config (without the JWT accounts, which are added to it).
    base: Mutex<Options>,
    resolver: Mutex<Arc<Resolver>>,
    /// When (Unix seconds) the accounts last built must be built again:
    /// kept from [`OperatorMode::effective`], so the task that waits for it
    /// does not build the accounts just to learn it.
    next_expiry: Mutex<Option<i64>>,
    /// Wakes that task when a reload or update may have moved `next_expiry`.
    changed: Notify,
}

/// The accounts and authenticator one moment of operator mode gives.
pub(super) struct Effective {
    /// The options with the JWT accounts.
    pub(super) options: Options,
    /// Who may log in.
    pub(super) authenticator: Arc<dyn Authenticator>,
}

impl Effective {
    /// A config-mode configuration: its accounts, its authenticator.
    pub(super) fn configured(options: Options, authenticator: Arc<dyn Authenticator>) -> Effective {
        Effective { options, authenticator }
    }
}

impl OperatorMode {
    /// Operator mode for `opts`, or `None` when the config is not in it.
    pub(super) fn new(opts: &Options) -> Result<Option<OperatorMode>, StartError> {
        let Some(resolver) = Resolver::load(opts).map_err(StartError::Operator)? else { return Ok(None) };
        Ok(Some(OperatorMode {
            base: Mutex::new(opts.clone()),
            resolver: Mutex::new(Arc::new(resolver)),
            next_expiry: Mutex::new(None),
            changed: Notify::new(),
        }))
    }

    /// Whether account JWTs can be pushed to and looked up in a directory.
    pub(super) fn is_directory(&self) -> bool {
        self.resolver.lock().is_directory()
    }

    /// The accounts and authenticator of now.
    pub(super) fn effective(&self) -> Effective {
        let base = self.base.lock().clone();
        let directory = self.resolver.lock().directory(base.system_account.as_deref());
        *self.next_expiry.lock() = directory.next_expiry();
        self.changed.notify_one();
        let options = directory.options(&base);
        Effective { options, authenticator: Arc::new(JwtAuth::new(Arc::new(directory))) }
    }

    /// A reload: the new config and its resolver (the directory read
    /// again) replace the old ones.
    pub(super) fn reconfigure(&self, opts: &Options) -> Result<(), StartError> {
        let resolver = Resolver::load(opts).map_err(StartError::Operator)?;
        let Some(resolver) = resolver else {
            return Err(StartError::Reload("operator mode cannot be turned off by a reload; restart the server"));
        };
        *self.base.lock() = opts.clone();
        *self.resolver.lock() = Arc::new(resolver);
        Ok(())
    }

    fn resolver(&self) -> Arc<Resolver> {
        self.resolver.lock().clone()
    }
}

/// The options and authenticator a config gives: its own, or in operator
/// mode the JWT accounts' (for `check` and `start`).
pub(super) fn resolve(opts: &Options) -> Result<(Effective, Option<OperatorMode>), StartError> {
    match OperatorMode::new(opts)? {
        Some(mode) => Ok((mode.effective(), Some(mode))),
        None => {
            let authenticator = auth::from_options(opts).map_err(StartError::Auth)?;
            Ok((Effective::configured(opts.clone(), authenticator), None))
        }
    }
}

/// Makes the broker's accounts and the gate what `effective` says.
pub(super) fn apply(node: &Node, effective: Effective) -> Result<(), StartError> {
    crate::config::check_accounts(&effective.options).map_err(StartError::Accounts)?;
    node.broker.configure_accounts(&effective.options).map_err(StartError::Accounts)?;
    node.gate.replace(effective.authenticator);
    Ok(())
}

/// Serves pushed JWTs and lookups, and rebuilds when something expires,
/// until shutdown.
pub(super) fn spawn(
    node: Arc<Node>,
    mode: Arc<OperatorMode>,
    mut asks: mpsc::Receiver<ClaimsRequest>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut shutdown = node.broker.shutdown_signal();
        loop {
            let wake = match *mode.next_expiry.lock() {
                Some(at) => {
                    let left = u64::try_from(at.saturating_sub(crate::jwt::now()) + 1).unwrap_or(0);
                    tokio::time::Instant::now() + Duration::from_secs(left)
                }
                None => tokio::time::Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                _ = stopping(&mut shutdown) => return,
                Some(ask) = asks.recv() => answer(&node, &mode, ask),
                () = mode.changed.notified() => {}
                _ = tokio::time::sleep_until(wake) => {
                    info!("an account or activation JWT expired; accounts rebuilt");
                    if let Err(err) = apply(&node, mode.effective()) {
                        warn!(error = %err, "accounts not rebuilt");
                    }
                }
            }
        }
    })
}

fn answer(node: &Node, mode: &OperatorMode, ask: ClaimsRequest) {
    let resolver = mode.resolver();
    let answer = match ask.ask {
        ClaimsAsk::Lookup { account } => ClaimsAnswer::Jwt(resolver.lookup(&account)),
        ClaimsAsk::Update { token, account } => match resolver.update(&token, account.as_deref()) {
            Ok(Update::Updated(account)) => match apply(node, mode.effective()) {
                Ok(()) => {
                    info!(%account, "account JWT updated");
                    ClaimsAnswer::Updated { account, message: "jwt updated" }
                }
                Err(err) => {
                    warn!(%account, error = %err, "account JWT stored, but the accounts do not fit together");
                    ClaimsAnswer::Refused { account, description: format!("jwt update resulted in error - {err}") }
                }
            },
            Ok(Update::Unchanged(account)) => ClaimsAnswer::Updated { account, message: "jwt update skipped" },
            Err(refused) => {
                warn!(account = %refused.account, error = %refused.description, "account JWT update refused");
                ClaimsAnswer::Refused { account: refused.account, description: refused.description }
            }
        },
    };
    let _ = ask.done.send(answer);
}
