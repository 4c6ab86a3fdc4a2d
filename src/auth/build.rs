//! Building the configured authenticator from the options, once, at start
//! and on reload: every password parsed and every permission set compiled
//! here, so nothing is parsed per connection.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::backends::{NkeyEntry, NoAuth, SingleUser, TokenAuth, UserEntry, UsersAuth};
use super::password::{PasswordError, PasswordHash};
use super::{credential_fingerprint, Authenticator};
use crate::config::{DelegateService, NkeyUser, Options, Permissions, User, GLOBAL_ACCOUNT};
use crate::nkeys::{KeyType, NkeyError, PublicKey};
use crate::perms::template::{self, Values};
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
    /// A configured nkey is not a user's public key.
    Nkey {
        /// Whose.
        owner: String,
        /// Why.
        source: NkeyError,
    },
    /// A deny entry's template cannot be filled in for this user (a
    /// missing tag or value, or one that is not a single literal token), so
    /// the user could never be held to it.
    Template {
        /// Whose.
        owner: String,
    },
}

impl fmt::Display for AuthSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthSetupError::Permissions { owner, source } => write!(f, "permissions of {owner}: {source}"),
            AuthSetupError::Password { owner, source } => write!(f, "password of {owner}: {source}"),
            AuthSetupError::Nkey { owner, source } => write!(f, "{owner}: {source}"),
            AuthSetupError::Template { owner } => write!(
                f,
                "permissions of {owner}: a deny template cannot be filled in (a missing tag or value, or one that is not one literal token)"
            ),
        }
    }
}

impl AuthSetupError {
    /// The same error, naming `owner` as whose it is.
    fn owned_by(self, owner: &str) -> AuthSetupError {
        match self {
            AuthSetupError::Permissions { source, .. } => {
                AuthSetupError::Permissions { owner: owner.to_owned(), source }
            }
            AuthSetupError::Template { .. } => AuthSetupError::Template { owner: owner.to_owned() },
            other => other,
        }
    }
}

impl std::error::Error for AuthSetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthSetupError::Permissions { source, .. } => Some(source),
            AuthSetupError::Password { source, .. } => Some(source),
            AuthSetupError::Nkey { source, .. } => Some(source),
            AuthSetupError::Template { .. } => None,
        }
    }
}

fn compile(owner: &str, perms: &Permissions) -> Result<Arc<PermissionSet>, AuthSetupError> {
    PermissionSet::compile(perms)
        .map(Arc::new)
        .map_err(|source| AuthSetupError::Permissions { owner: owner.to_string(), source })
}

/// `perms` compiled for one user, its templates filled in with `values`.
fn compile_for(owner: &str, perms: &Permissions, values: &Values<'_>) -> Result<Arc<PermissionSet>, AuthSetupError> {
    if !template::has_templates(perms) {
        return compile(owner, perms);
    }
    let filled = template::fill(perms, values).ok_or_else(|| AuthSetupError::Template { owner: owner.to_owned() })?;
    compile(owner, &filled)
}

/// A config user's values for templates: its name (an nkey user's is its
/// key), its key, its account's name and its `tags`. Config accounts have
/// neither key nor tags, so `{{account-subject()}}` and
/// `{{account-tag(x)}}` have no value in config mode.
pub fn config_values<'a>(name: &'a str, subject: &'a str, account: &'a str, tags: &'a [String]) -> Values<'a> {
    Values { name, subject, account_name: account, account_subject: "", tags, account_tags: &[] }
}

/// The permissions of a user in an account when nothing more specific
/// gives any: the account's `default_permissions`, compiled once and
/// shared, or, when they hold templates, filled in for each user (at load
/// for config users, at login for users an external authorizer admits).
#[derive(Debug, Clone)]
pub enum AccountDefaults {
    /// No templates: one set for every user.
    Compiled(Arc<PermissionSet>),
    /// Templates: the block as written, and whose it is, for messages.
    Templated(Arc<Permissions>, String),
}

impl AccountDefaults {
    fn new(owner: &str, perms: Option<&Permissions>) -> Result<AccountDefaults, AuthSetupError> {
        Ok(match perms {
            Some(perms) if template::has_templates(perms) => {
                AccountDefaults::Templated(Arc::new(perms.clone()), owner.to_owned())
            }
            Some(perms) => AccountDefaults::Compiled(compile(owner, perms)?),
            None => AccountDefaults::Compiled(Arc::new(PermissionSet::unrestricted())),
        })
    }

    /// The set for the user `values` describe.
    pub fn for_user(&self, values: &Values<'_>) -> Result<Arc<PermissionSet>, AuthSetupError> {
        match self {
            AccountDefaults::Compiled(set) => Ok(set.clone()),
            AccountDefaults::Templated(perms, owner) => compile_for(owner, perms, values),
        }
    }
}

fn parse(owner: &str, secret: &Secret) -> Result<(PasswordHash, u64), AuthSetupError> {
    let hash = PasswordHash::parse(secret.expose())
        .map_err(|source| AuthSetupError::Password { owner: owner.to_string(), source })?;
    Ok((hash, credential_fingerprint(secret.expose())))
}

/// The users' stored passwords grouped by [`PasswordHash::cost_class`]:
/// (class, one hash of it, how many), most common first.
fn most_common_class(hashes: &[PasswordHash]) -> Vec<(String, PasswordHash, usize)> {
    let mut classes: Vec<(String, PasswordHash, usize)> = Vec::new();
    for hash in hashes {
        let class = hash.cost_class();
        match classes.iter_mut().find(|(c, _, _)| *c == class) {
            Some(entry) => entry.2 += 1,
            None => classes.push((class, hash.clone(), 1)),
        }
    }
    classes.sort_by_key(|class| std::cmp::Reverse(class.2));
    classes
}

/// Every configured user in the order the config lists them, with its
/// account and the default permissions that apply to it: `authorization`
/// users (account `$G`, its `default_permissions`), then each account's
/// users (that account's `default_permissions`).
fn all_users(opts: &Options) -> Vec<(&str, &User, Option<&Permissions>)> {
    let mut all = Vec::new();
    if let Some(auth) = &opts.authorization {
        all.extend(auth.users.iter().map(|u| (GLOBAL_ACCOUNT, u, auth.default_permissions.as_ref())));
    }
    for account in &opts.accounts {
        all.extend(account.users.iter().map(|u| (account.name.as_str(), u, account.default_permissions.as_ref())));
    }
    all
}

/// [`all_users`] for nkey users.
fn all_nkeys(opts: &Options) -> Vec<(&str, &NkeyUser, Option<&Permissions>)> {
    let mut all = Vec::new();
    if let Some(auth) = &opts.authorization {
        all.extend(auth.nkeys.iter().map(|u| (GLOBAL_ACCOUNT, u, auth.default_permissions.as_ref())));
    }
    for account in &opts.accounts {
        all.extend(account.nkeys.iter().map(|u| (account.name.as_str(), u, account.default_permissions.as_ref())));
    }
    all
}

/// What the configured credentials let an attacker observe: with users
/// whose passwords differ in scheme or cost, the time a failed login takes
/// shows which class a user name belongs to (an unknown name costs what
/// the most common class costs). Passwords that do not parse are left to
/// [`from_options`] to refuse.
pub fn timing_warnings(opts: &Options) -> Vec<String> {
    let hashes: Vec<PasswordHash> = all_users(opts)
        .into_iter()
        .filter_map(|(_, u, _)| u.password.as_ref())
        .filter_map(|secret| PasswordHash::parse(secret.expose()).ok())
        .collect();
    let classes = most_common_class(&hashes);
    if classes.len() < 2 {
        return Vec::new();
    }
    let list: Vec<String> = classes.iter().map(|(class, _, n)| format!("{n} {class}")).collect();
    vec![format!(
        "users store passwords in different ways ({}): an unknown user costs what the most common kind costs, so the time a failed login takes shows which kind a user name has; store every password the same way (`warden passwd`)",
        list.join(", ")
    )]
}

/// The callout account's users, but for its `auth_users`, may not
/// subscribe to the auth callout requests (which carry clients' passwords)
/// or the answers (which carry the users' JWTs), not even through `>`: a
/// subscribe deny is added to their permissions.
#[derive(Debug, Clone, Copy)]
struct CalloutGuard<'a> {
    account: &'a str,
    auth_users: &'a [String],
}

impl CalloutGuard<'_> {
    /// Whether `user` (a name or nkey) of `account` is guarded.
    fn covers(&self, account: &str, user: &str) -> bool {
        account == self.account && !self.auth_users.iter().any(|u| u == user)
    }

    /// `base` (none: everything) with the requests denied.
    fn applied(&self, base: Option<&Permissions>) -> Permissions {
        let mut perms = base.cloned().unwrap_or_default();
        let subscribe = perms.subscribe.get_or_insert_with(Default::default);
        subscribe.deny.get_or_insert_with(Vec::new).extend(crate::perms::system_space::callout_private());
        perms
    }
}

fn callout_guard(opts: &Options) -> Option<CalloutGuard<'_>> {
    let delegation = opts.authorization.as_ref()?.delegation.as_ref()?;
    match &delegation.service {
        DelegateService::Callout { account, .. } => Some(CalloutGuard { account, auth_users: &delegation.auth_users }),
        DelegateService::Http { .. } => None,
    }
}

/// An account's `default_permissions` as configured (`$G`'s are
/// `authorization`'s).
fn default_rules<'a>(opts: &'a Options, account: &str) -> Option<&'a Permissions> {
    if account == GLOBAL_ACCOUNT {
        return opts.authorization.as_ref().and_then(|a| a.default_permissions.as_ref());
    }
    opts.accounts.iter().find(|a| a.name == account).and_then(|a| a.default_permissions.as_ref())
}

/// Each account's default permissions, shared by its users.
fn plain_defaults(opts: &Options) -> Result<HashMap<String, AccountDefaults>, AuthSetupError> {
    let mut defaults = HashMap::new();
    defaults.insert(
        GLOBAL_ACCOUNT.to_owned(),
        AccountDefaults::new("default_permissions", default_rules(opts, GLOBAL_ACCOUNT))?,
    );
    for account in &opts.accounts {
        let owner = format!("default_permissions of account \"{}\"", account.name);
        defaults.insert(account.name.clone(), AccountDefaults::new(&owner, account.default_permissions.as_ref())?);
    }
    Ok(defaults)
}

/// The permissions of a user an external authorizer admits into each
/// account without permissions of its own: the account's defaults (in the
/// callout account, with the requests denied).
pub fn account_defaults(opts: &Options) -> Result<HashMap<String, AccountDefaults>, AuthSetupError> {
    let mut defaults = plain_defaults(opts)?;
    if let Some(guard) = callout_guard(opts) {
        let owner = format!("default_permissions of account \"{}\"", guard.account);
        let guarded = AccountDefaults::new(&owner, Some(&guard.applied(default_rules(opts, guard.account))))?;
        defaults.insert(guard.account.to_owned(), guarded);
    }
    Ok(defaults)
}

/// Builds the authenticator the options describe: no auth, a token, a
/// single user, or the users of `authorization` and of every account
/// (mapped from client certificates when `tls { verify_and_map }`).
/// Identities without their own permissions get their block's
/// `default_permissions`, else everything but the reserved `_SYS.>` space.
pub fn from_options(opts: &Options) -> Result<Arc<dyn Authenticator>, AuthSetupError> {
    let defaults = plain_defaults(opts)?;
    // The global account's defaults for a login that names nobody.
    let global_default = |name: &str| {
        let values = config_values(name, "", GLOBAL_ACCOUNT, &[]);
        match defaults.get(GLOBAL_ACCOUNT) {
            Some(d) => d.for_user(&values),
            None => Ok(Arc::new(PermissionSet::unrestricted())),
        }
    };
    if let Some(auth) = &opts.authorization {
        if let Some(token) = &auth.token {
            let (hash, credential) = parse("the token", token)?;
            return Ok(Arc::new(TokenAuth::new(hash, credential, global_default("")?)));
        }
        if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
            let (hash, credential) = parse(&format!("user \"{user}\""), password)?;
            return Ok(Arc::new(SingleUser::new(user.clone(), hash, credential, global_default(user)?)));
        }
    }
    let (users, nkeys) = (all_users(opts), all_nkeys(opts));
    if users.is_empty() && nkeys.is_empty() {
        if opts.authorization.as_ref().is_some_and(|a| a.delegation.is_some()) {
            // Everyone goes to the external authorizer: nobody is admitted here.
            return Ok(Arc::new(UsersAuth::new(HashMap::new(), false, None)));
        }
        return Ok(Arc::new(NoAuth::new(global_default("")?)));
    }
    let guard = callout_guard(opts);
    let permissions_of = |who: &str, account: &str, own: Option<&Permissions>, values: &Values<'_>| {
        if let Some(guard) = guard.filter(|g| g.covers(account, who)) {
            let base = own.or_else(|| default_rules(opts, account));
            return compile_for(who, &guard.applied(base), values);
        }
        match (own, defaults.get(account)) {
            (Some(perms), _) => compile_for(who, perms, values),
            (None, Some(defaults)) => defaults.for_user(values),
            (None, None) => Ok(Arc::new(PermissionSet::unrestricted())),
        }
    };
    let mut nkey_entries = HashMap::with_capacity(nkeys.len());
    for (account, user, _) in nkeys {
        let owner = format!("nkey user {}", user.nkey);
        let values = config_values(&user.nkey, &user.nkey, account, &user.tags);
        let permissions = permissions_of(&user.nkey, account, user.permissions.as_ref(), &values)
            .map_err(|err| err.owned_by(&owner))?;
        let key = PublicKey::parse_as(&user.nkey, KeyType::User)
            .map_err(|source| AuthSetupError::Nkey { owner: owner.clone(), source })?;
        let entry = NkeyEntry {
            account: account.into(),
            key,
            permissions,
            rate_limit: user.rate_limit,
            connection_types: user.allowed_connection_types.clone(),
        };
        nkey_entries.insert(user.nkey.clone(), entry);
    }
    let mut entries = HashMap::with_capacity(users.len());
    let mut hashes = Vec::new();
    for (account, user, _) in users {
        let owner = format!("user \"{}\"", user.user);
        let values = config_values(&user.user, "", account, &user.tags);
        let permissions = permissions_of(&user.user, account, user.permissions.as_ref(), &values)
            .map_err(|err| err.owned_by(&owner))?;
        let (password, credential) = match &user.password {
            Some(secret) => {
                let (hash, credential) = parse(&owner, secret)?;
                hashes.push(hash.clone());
                (Some(hash), credential)
            }
            None => (None, 0),
        };
        let entry = UserEntry {
            account: account.into(),
            password,
            permissions,
            credential,
            rate_limit: user.rate_limit,
            connection_types: user.allowed_connection_types.clone(),
        };
        entries.insert(user.user.clone(), entry);
    }
    // Unknown users are verified against a hash of the most common scheme
    // and cost, so for a config whose users share one (plain text
    // included), an unknown user costs what a wrong password costs.
    let dummy = match most_common_class(&hashes).first() {
        Some((_, representative, _)) => Some(
            representative
                .dummy_like()
                .map_err(|source| AuthSetupError::Password { owner: "the dummy verifier".into(), source })?,
        ),
        None => None,
    };
    let map_certificates = opts.tls.as_ref().is_some_and(|t| t.verify_and_map);
    let spiffe = opts.tls.as_ref().and_then(|t| t.spiffe_trust_domain.clone());
    let users =
        UsersAuth::new(entries, map_certificates, dummy).with_spiffe_trust_domain(spiffe).with_nkeys(nkey_entries);
    Ok(Arc::new(users.with_no_auth_user(opts.no_auth_user.clone())))
}
