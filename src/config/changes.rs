//! What a reload changed, for the audit trail: users, accounts and
//! permissions by name, and which other settings moved. It names things and
//! never shows a value: a changed password is "password", not the hash.

use std::collections::BTreeMap;

use serde::Serialize;

use super::options::{AccountConfig, NkeyUser, Options, Permissions, RateLimit, User, GLOBAL_ACCOUNT};
use crate::secret::Secret;

/// The differences between two configurations. Empty lists are left out
/// of the JSON.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct ConfigChanges {
    /// Users (by name or nkey) that were not there before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users_added: Vec<UserRef>,
    /// Users that are gone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users_removed: Vec<UserRef>,
    /// Users still there whose login or rights changed, and what of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users_changed: Vec<Changed<UserRef>>,
    /// Accounts that were not there before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts_added: Vec<String>,
    /// Accounts that are gone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts_removed: Vec<String>,
    /// Accounts still there whose exports, imports, limits, mappings or
    /// default permissions changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts_changed: Vec<Changed<AccountRef>>,
    /// Other settings that changed, by their config name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings_changed: Vec<&'static str>,
}

/// A user of an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UserRef {
    /// Its name, or its public nkey.
    pub user: String,
    /// Its account (`$G` for users outside `accounts`).
    pub account: String,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRef {
    /// Its name.
    pub account: String,
}

/// Something that is still there, and what of it changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed<T> {
    /// What.
    #[serde(flatten)]
    pub what: T,
    /// The parts that changed, by their config name.
    pub changed: Vec<&'static str>,
}

impl ConfigChanges {
    /// What changed from `old` to `new`.
    pub fn between(old: &Options, new: &Options) -> ConfigChanges {
        let (old_users, new_users) = (users(old), users(new));
        let mut changes = ConfigChanges::default();
        for (key, facts) in &new_users {
            match old_users.get(key) {
                None => changes.users_added.push(key.clone()),
                Some(before) => {
                    let changed = facts.changed_from(before);
                    if !changed.is_empty() {
                        changes.users_changed.push(Changed { what: key.clone(), changed });
                    }
                }
            }
        }
        changes.users_removed = old_users.keys().filter(|k| !new_users.contains_key(*k)).cloned().collect();
        let (old_accounts, new_accounts) = (accounts(old), accounts(new));
        for (name, account) in &new_accounts {
            match old_accounts.get(name) {
                None => changes.accounts_added.push((*name).to_owned()),
                Some(before) => {
                    let changed = account_changes(before, account);
                    if !changed.is_empty() {
                        changes
                            .accounts_changed
                            .push(Changed { what: AccountRef { account: (*name).to_owned() }, changed });
                    }
                }
            }
        }
        changes.accounts_removed =
            old_accounts.keys().filter(|n| !new_accounts.contains_key(*n)).map(|n| (*n).to_owned()).collect();
        changes.settings_changed = settings_changed(old, new);
        changes
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == ConfigChanges::default()
    }
}

/// What of a user is compared: its credential and its rights.
#[derive(PartialEq)]
struct UserFacts<'a> {
    password: Option<&'a Secret>,
    permissions: Option<&'a Permissions>,
    rate_limit: Option<RateLimit>,
    connection_types: &'a [String],
    tags: &'a [String],
}

impl UserFacts<'_> {
    fn changed_from(&self, before: &UserFacts<'_>) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut note = |differs: bool, name| {
            if differs {
                changed.push(name);
            }
        };
        note(self.password != before.password, "password");
        note(self.permissions != before.permissions, "permissions");
        note(self.rate_limit != before.rate_limit, "rate_limit");
        note(self.connection_types != before.connection_types, "allowed_connection_types");
        note(self.tags != before.tags, "tags");
        changed
    }
}

/// Every configured user by account, with its effective permissions (its
/// own, else its account's default, else the server's default).
fn users(o: &Options) -> BTreeMap<UserRef, UserFacts<'_>> {
    let mut all = BTreeMap::new();
    let server_default = o.authorization.as_ref().and_then(|a| a.default_permissions.as_ref());
    if let Some(a) = &o.authorization {
        add_users(&mut all, GLOBAL_ACCOUNT, &a.users, &a.nkeys, server_default);
        if let Some(user) = &a.user {
            let single = UserFacts {
                password: a.password.as_ref(),
                permissions: server_default,
                rate_limit: None,
                connection_types: &[],
                tags: &[],
            };
            all.insert(UserRef { user: user.clone(), account: GLOBAL_ACCOUNT.to_owned() }, single);
        }
    }
    for account in &o.accounts {
        let default = account.default_permissions.as_ref().or(server_default);
        add_users(&mut all, &account.name, &account.users, &account.nkeys, default);
    }
    all
}

fn add_users<'a>(
    all: &mut BTreeMap<UserRef, UserFacts<'a>>,
    account: &str,
    users: &'a [User],
    nkeys: &'a [NkeyUser],
    default: Option<&'a Permissions>,
) {
    for u in users {
        let facts = UserFacts {
            password: u.password.as_ref(),
            permissions: u.permissions.as_ref().or(default),
            rate_limit: u.rate_limit,
            connection_types: &u.allowed_connection_types,
            tags: &u.tags,
        };
        all.insert(UserRef { user: u.user.clone(), account: account.to_owned() }, facts);
    }
    for n in nkeys {
        let facts = UserFacts {
            password: None,
            permissions: n.permissions.as_ref().or(default),
            rate_limit: n.rate_limit,
            connection_types: &n.allowed_connection_types,
            tags: &n.tags,
        };
        all.insert(UserRef { user: n.nkey.clone(), account: account.to_owned() }, facts);
    }
}

fn accounts(o: &Options) -> BTreeMap<&str, &AccountConfig> {
    o.accounts.iter().map(|a| (a.name.as_str(), a)).collect()
}

fn account_changes(before: &AccountConfig, after: &AccountConfig) -> Vec<&'static str> {
    let parts: [(&'static str, bool); 7] = [
        ("nkey", before.nkey != after.nkey),
        ("exports", before.exports != after.exports),
        ("imports", before.imports != after.imports),
        ("limits", before.limits != after.limits),
        ("mappings", before.mappings != after.mappings),
        ("default_permissions", before.default_permissions != after.default_permissions),
        ("msg_trace", before.msg_trace != after.msg_trace),
    ];
    parts.into_iter().filter(|(_, differs)| *differs).map(|(name, _)| name).collect()
}

/// The settings outside users and accounts that a reload applies; the
/// restart-only ones (`authorization.timeout`, `system_account`, ...) never
/// differ in an applied reload, which refuses them.
fn settings_changed(old: &Options, new: &Options) -> Vec<&'static str> {
    let authorization = |o: &Options| o.authorization.clone().unwrap_or_default();
    let (a, b) = (authorization(old), authorization(new));
    let parts: [(&'static str, bool); 9] = [
        ("authorization.token", a.token != b.token),
        ("authorization.default_permissions", a.default_permissions != b.default_permissions),
        ("no_auth_user", old.no_auth_user != new.no_auth_user),
        ("tls", old.tls != new.tls),
        ("leafnodes", old.leafnodes != new.leafnodes),
        ("websocket", old.websocket != new.websocket),
        ("operator", old.operator != new.operator),
        ("debug", old.debug != new.debug),
        ("trace", old.trace != new.trace || old.trace_verbose != new.trace_verbose),
    ];
    parts.into_iter().filter(|(_, differs)| *differs).map(|(name, _)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Options {
        crate::config::load_str(text, "test.conf").unwrap().options
    }

    #[test]
    fn users_accounts_and_settings_are_named_never_their_secrets() {
        let before = load(
            r#"
            accounts {
              A { users = [ {user: alice, password: "s3cret-one-0123456789"}, {user: bob, password: "bob-password-0123456789"} ] }
              B { users = [ {user: carol, password: "carol-pass-0123456789"} ] }
            }
            "#,
        );
        let after = load(
            r#"
            accounts {
              A {
                users = [
                  {user: alice, password: "s3cret-two-0123456789"},
                  {user: bob, password: "bob-password-0123456789", permissions: { publish: "orders.>" }},
                  {user: dave, password: "dave-password-0123456789"}
                ]
                exports = [ { stream: "orders.>" } ]
              }
              C { users = [ {user: erin, password: "erin-password-0123456789"} ] }
            }
            debug: true
            "#,
        );
        let changes = ConfigChanges::between(&before, &after);
        let user = |u: &str, a: &str| UserRef { user: u.into(), account: a.into() };
        assert_eq!(changes.users_added, vec![user("dave", "A"), user("erin", "C")]);
        assert_eq!(changes.users_removed, vec![user("carol", "B")]);
        assert_eq!(
            changes.users_changed,
            vec![
                Changed { what: user("alice", "A"), changed: vec!["password"] },
                Changed { what: user("bob", "A"), changed: vec!["permissions"] },
            ]
        );
        assert_eq!(changes.accounts_added, vec!["C"]);
        assert_eq!(changes.accounts_removed, vec!["B"]);
        assert_eq!(
            changes.accounts_changed,
            vec![Changed { what: AccountRef { account: "A".to_owned() }, changed: vec!["exports"] }]
        );
        assert_eq!(changes.settings_changed, vec!["debug"]);
        let json = serde_json::to_string(&changes).unwrap();
        assert!(!json.contains("s3cret") && !json.contains("password-0123"), "{json}");
        assert!(json.contains(r#"{"user":"alice","account":"A","changed":["password"]}"#), "{json}");
        assert!(ConfigChanges::between(&after, &after).is_empty());
    }
}
