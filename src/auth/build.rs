//! Building the configured authenticator from the options, once, at start
//! and on reload: every password parsed and every permission set compiled
//! here, so nothing is parsed per connection.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::backends::{NoAuth, SingleUser, TokenAuth, UserEntry, UsersAuth};
use super::password::{PasswordError, PasswordHash};
use super::{credential_fingerprint, Authenticator};
use crate::config::{Options, Permissions};
use crate::perms::{PermissionSet, PermsError};
use crate::secret::Secret;

/// Why the configured authentication cannot be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthSetupError {
    /// A permission set does not compile.
    Permissions {
        /// Whose (`user "bob"`, `default_permissions`).
        owner: String,
        /// Why.
        source: PermsError,
    },
    /// A stored password or token cannot be used.
    Password {
        /// Whose.
        owner: String,
        /// Why.
        source: PasswordError,
    },
}

impl fmt::Display for AuthSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthSetupError::Permissions { owner, source } => write!(f, "permissions of {owner}: {source}"),
            AuthSetupError::Password { owner, source } => write!(f, "password of {owner}: {source}"),
        }
    }
}

impl std::error::Error for AuthSetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthSetupError::Permissions { source, .. } => Some(source),
            AuthSetupError::Password { source, .. } => Some(source),
        }
    }
}

fn compile(owner: &str, perms: &Permissions) -> Result<Arc<PermissionSet>, AuthSetupError> {
    PermissionSet::compile(perms)
        .map(Arc::new)
        .map_err(|source| AuthSetupError::Permissions { owner: owner.to_string(), source })
}

fn parse(owner: &str, secret: &Secret) -> Result<(PasswordHash, u64), AuthSetupError> {
    let hash = PasswordHash::parse(secret.expose())
        .map_err(|source| AuthSetupError::Password { owner: owner.to_string(), source })?;
    Ok((hash, credential_fingerprint(secret.expose())))
}

/// Builds the authenticator the options describe: no auth, a token, a
/// single user, or the users list (mapped from client certificates when
/// `tls { verify_and_map }`). Identities without their own permissions get
/// `default_permissions`, else everything but the reserved `_SYS.>` space.
pub fn from_options(opts: &Options) -> Result<Arc<dyn Authenticator>, AuthSetupError> {
    let Some(auth) = &opts.authorization else {
        return Ok(Arc::new(NoAuth::new(Arc::new(PermissionSet::unrestricted()))));
    };
    let default = match &auth.default_permissions {
        Some(perms) => compile("default_permissions", perms)?,
        None => Arc::new(PermissionSet::unrestricted()),
    };
    if let Some(token) = &auth.token {
        let (hash, credential) = parse("the token", token)?;
        return Ok(Arc::new(TokenAuth::new(hash, credential, default)));
    }
    if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
        let (hash, credential) = parse(&format!("user \"{user}\""), password)?;
        return Ok(Arc::new(SingleUser::new(user.clone(), hash, credential, default)));
    }
    if auth.users.is_empty() {
        return Ok(Arc::new(NoAuth::new(default)));
    }
    let mut users = HashMap::with_capacity(auth.users.len());
    let mut dummy_source: Option<PasswordHash> = None;
    for user in &auth.users {
        let owner = format!("user \"{}\"", user.user);
        let permissions = match &user.permissions {
            Some(perms) => compile(&owner, perms)?,
            None => default.clone(),
        };
        let (password, credential) = match &user.password {
            Some(secret) => {
                let (hash, credential) = parse(&owner, secret)?;
                if dummy_source.is_none() && hash.kind().is_hash() {
                    dummy_source = Some(hash.clone());
                }
                (Some(hash), credential)
            }
            None => (None, 0),
        };
        users.insert(user.user.clone(), UserEntry { password, permissions, credential });
    }
    let dummy = match dummy_source {
        Some(hash) => Some(
            hash.dummy_like()
                .map_err(|source| AuthSetupError::Password { owner: "the dummy verifier".into(), source })?,
        ),
        None => None,
    };
    let map_certificates = opts.tls.as_ref().is_some_and(|t| t.verify_and_map);
    Ok(Arc::new(UsersAuth::new(users, map_certificates, dummy)))
}
