//! Who may log in on the leaf port. Leafs log in like clients, through the
//! clients' gate, unless the leafnodes block decides otherwise:
//!
//! - `leafnodes { authorization }` names the leaf users: a user and
//!   password, an nkey (the leaf signs the INFO nonce with its seed), or a
//!   `users` list of either, each bound to an account. Client credentials
//!   then do not open the leaf port, nor leaf credentials the client port.
//! - `leafnodes { tls { verify_and_map } }` is not the clients' setting:
//!   whether a certificate names the user is the leaf listener's choice
//!   (nats-server's `LeafNode.TLSMap`), so a leaf presenting a certificate
//!   is mapped to a configured user even where clients are not, and a leaf
//!   logging in with a password is not refused because clients are mapped.
//!   So is its `spiffe_trust_domain` (strict mapping by SPIFFE ID).
//!
//! In either case the hub has a gate of its own, built from a view of the
//! options, on the clients' throttle and verification pool: signature and
//! password checks run off the reactor, bounded, and guesses split between
//! the two ports are counted together. A reload rebuilds that gate from the
//! new options; every leaf re-checks its login against it and one whose
//! user is gone, whose credentials or account changed, is closed.

use std::sync::Arc;

use super::LeafError;
use crate::auth::{self, Authenticator, Gate};
use crate::config::{Authorization, LeafAuthorization, NkeyUser, Options, User, GLOBAL_ACCOUNT};

/// The options leafs log in against when they are not the clients', or
/// `None` when leafs log in exactly as clients do.
pub(crate) fn own_view(opts: &Options) -> Option<Options> {
    let leaf = opts.leafnodes.as_ref()?;
    // How certificates map: not at all, by any name, or strictly by a
    // SPIFFE ID of a trust domain; leafs need their own gate if it differs.
    let maps = |tls: Option<&crate::config::TlsOptions>| {
        tls.filter(|t| t.verify_and_map).map(|t| t.spiffe_trust_domain.clone())
    };
    if leaf.authorization.is_none() && maps(leaf.tls.as_ref()) == maps(opts.tls.as_ref()) {
        return None;
    }
    let mut view = opts.clone();
    // The leaf listener's TLS: its verify_and_map (and spiffe_trust_domain)
    // decides whether (and how) a leaf's certificate names the user.
    view.tls = leaf.tls.clone();
    if let Some(own) = &leaf.authorization {
        only_leaf_users(&mut view, own);
    }
    Some(view)
}

/// `view` with only the leafnodes block's users, each in its account (`$G`
/// without one), and no default user: a client's credentials do not open
/// the leaf port.
fn only_leaf_users(view: &mut Options, own: &LeafAuthorization) {
    let in_account = |name: &str| -> (Vec<User>, Vec<NkeyUser>) {
        let here = |account: &Option<String>| account.as_deref().unwrap_or(GLOBAL_ACCOUNT) == name;
        let users = own.users.iter().filter(|(_, a)| here(a)).map(|(u, _)| u.clone()).collect();
        let nkeys = own.nkeys.iter().filter(|(_, a)| here(a)).map(|(u, _)| u.clone()).collect();
        (users, nkeys)
    };
    let (users, nkeys) = in_account(GLOBAL_ACCOUNT);
    view.authorization = Some(Authorization { users, nkeys, timeout: own.timeout, ..Default::default() });
    for account in &mut view.accounts {
        (account.users, account.nkeys) = in_account(&account.name);
    }
    view.no_auth_user = None;
}

/// The gate leafs log in through under `opts`: the clients' own, or one
/// built from [`own_view`] on the clients' throttle and pool (and, when
/// leafs otherwise log in as clients, the clients' external authorizer).
/// The flag says which, so a reload can tell whether it changed.
pub(crate) fn gate(opts: &Options, clients: &Arc<Gate>) -> Result<(Arc<Gate>, bool), LeafError> {
    let Some(view) = own_view(opts) else { return Ok((clients.clone(), false)) };
    let own = opts.leafnodes.as_ref().and_then(|l| l.authorization.as_ref());
    let authenticator = auth::from_options(&view).map_err(LeafError::Auth)?;
    let timeout = own.and_then(|a| a.timeout).unwrap_or(clients.timeout());
    let delegation = own.is_none().then(|| clients.delegation().cloned()).flatten();
    Ok((Arc::new(Gate::new(authenticator, clients.guard().clone(), timeout).delegating(delegation)), true))
}

/// The authenticator a reload to `opts` gives a hub whose gate is its own
/// (`own`), or `None` when leafs log in through the clients' gate (which
/// the reload rebuilds). A reload cannot move leafs from one gate to the
/// other: established leafs listen to the gate they logged in through.
pub(crate) fn reloaded(opts: &Options, own: bool) -> Result<Option<Arc<dyn Authenticator>>, LeafError> {
    match (own_view(opts), own) {
        (Some(view), true) => auth::from_options(&view).map(Some).map_err(LeafError::Auth),
        (None, false) => Ok(None),
        _ => Err(LeafError::LoginChanged),
    }
}

#[cfg(test)]
mod tests;
