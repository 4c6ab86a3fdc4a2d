//! `accounts { NAME: { users, default_permissions, exports, imports, limits,
//! nkey } }`, read as nats-server 2.9.10 reads it (`parseAccounts`,
//! `parseAccountExports`/`Imports`, `parseExportStreamOrService`,
//! `parseImportStreamOrService`, `parseAccountLimits`), strictly: every key
//! must mean something, and what warden does not implement (`mappings`,
//! `jetstream`, service `latency`, `account_token_position`) is refused
//! rather than ignored. The rules that relate accounts to each other
//! (imports authorized by exports, no cycles, unique users) are in
//! [`super::account_rules`], shared with the broker.

use std::collections::HashMap;
use std::time::Duration;

use super::auth::{self, UsersList};
use super::error::{conflict, invalid, ConfigError, ErrorKind};
use super::options::{
    AccountConfig, AccountLimits, Export, ExportKind, Import, ImportKind, LocalSubject, ResponseType,
    DEFAULT_RESPONSE_THRESHOLD, GLOBAL_ACCOUNT,
};
use super::section::{self, Bare, Section};
use super::value::{Entry, Kind, Pos, Value};
use crate::nkeys::{KeyType, PublicKey};
use crate::subject::is_valid_pattern;

/// nats-server's per-account keys that warden does not implement.
const UNSUPPORTED_ACCOUNT: &[&str] = &["mappings", "maps", "jetstream", "msg_trace"];
/// nats-server's export keys that warden does not implement.
const UNSUPPORTED_EXPORT: &[&str] = &["latency", "account_token_position"];
/// nats-server's limits keys that warden does not implement.
const UNSUPPORTED_LIMITS: &[&str] = &["max_leafnodes", "max_leafs"];

/// Where each import and export was written, for errors found once all
/// accounts are read (keyed by account index, then item index).
#[derive(Debug, Default)]
pub(crate) struct Positions {
    /// The account names.
    pub(crate) accounts: Vec<Pos>,
    /// Each account's imports.
    pub(crate) imports: HashMap<(usize, usize), Pos>,
    /// Each account's exports.
    pub(crate) exports: HashMap<(usize, usize), Pos>,
    /// Each account's users list.
    pub(crate) users: HashMap<usize, Pos>,
}

/// `accounts`: a map of account blocks, or (nats-server's other form) an
/// array of names of accounts without users.
pub(crate) fn accounts(
    entry: &Entry,
    maps_certificates: bool,
    warnings: &mut Vec<String>,
) -> Result<(Vec<AccountConfig>, Positions), ConfigError> {
    let mut out = Vec::new();
    let mut positions = Positions::default();
    match &entry.value.kind {
        Kind::Array(items) => {
            for item in items {
                let name = account_name(item, section::string(item, "an account name")?)?;
                if out.iter().any(|a: &AccountConfig| a.name == name) {
                    return Err(invalid(item, format!("Duplicate Account Entry: {name}")));
                }
                out.push(AccountConfig { name: name.to_owned(), ..AccountConfig::default() });
                positions.accounts.push(item.pos.clone());
            }
        }
        Kind::Map(map) => {
            for account in &map.entries {
                if account.used_as_variable {
                    continue;
                }
                let index = out.len();
                let name = account_name(&account.value, &account.key)?;
                let config = account_block(index, name, &account.value, maps_certificates, warnings, &mut positions)?;
                out.push(config);
                positions.accounts.push(account.key_pos.clone());
            }
        }
        _ => {
            return Err(ConfigError::at(
                ErrorKind::Type,
                &entry.value.pos,
                format!(
                    "accounts must be a map of account blocks or a list of names, found {}",
                    entry.value.describe()
                ),
            ))
        }
    }
    Ok((out, positions))
}

/// An account name: it travels in route protocol lines and in `$SYS`
/// subjects, so it must read as a subject without wildcards (nats-server
/// accepts any string; a name with a space would break the route protocol,
/// and its own examples use dotted names such as `nats.io`).
fn account_name<'a>(value: &Value, name: &'a str) -> Result<&'a str, ConfigError> {
    if name == GLOBAL_ACCOUNT {
        return Err(invalid(value, format!("{name:?} is a Reserved Account")));
    }
    if !crate::subject::is_valid_literal(name.as_bytes()) {
        return Err(invalid(
            value,
            format!("account name {name:?} must read as a subject: no spaces, control characters or wildcards"),
        ));
    }
    Ok(name)
}

fn account_block(
    index: usize,
    name: &str,
    value: &Value,
    maps_certificates: bool,
    warnings: &mut Vec<String>,
    positions: &mut Positions,
) -> Result<AccountConfig, ConfigError> {
    let map = section::map(value, "an account")?;
    let mut s = Section::new("an account", map);
    let nkey = s.get(&["nkey"])?;
    let users = s.get(&["users"])?;
    let defaults = s.get(&["default_permissions"])?;
    let exports = s.get(&["exports"])?;
    let imports = s.get(&["imports"])?;
    let limits = s.get(&["limits"])?;
    s.finish(UNSUPPORTED_ACCOUNT)?;
    let mut account = AccountConfig { name: name.to_owned(), ..AccountConfig::default() };
    if let Some(e) = nkey {
        let text = section::word(&e.value, "account nkey")?;
        if PublicKey::parse_as(text, KeyType::Account).is_err() {
            return Err(invalid(&e.value, format!("Not a valid public nkey for an account: {text:?}")));
        }
        account.nkey = Some(text.to_owned());
    }
    if let Some(e) = users {
        let UsersList { users, nkeys } = auth::users_list(&e.value, maps_certificates, warnings)?;
        (account.users, account.nkeys) = (users, nkeys);
        positions.users.insert(index, e.key_pos.clone());
    }
    if let Some(e) = defaults {
        account.default_permissions = Some(auth::permissions(&e.value, "default_permissions")?);
    }
    if let Some(e) = exports {
        for (i, item) in section::array(&e.value, "exports")?.iter().enumerate() {
            account.exports.push(export(item)?);
            positions.exports.insert((index, i), item.pos.clone());
        }
    }
    if let Some(e) = imports {
        for (i, item) in section::array(&e.value, "imports")?.iter().enumerate() {
            let import = import(item, warnings)?;
            if let ImportKind::Service { to } = &import.kind {
                if let Some(dup) =
                    account.imports.iter().find(|i| matches!(&i.kind, ImportKind::Service { to: t } if t == to))
                {
                    return Err(ConfigError::at(
                        ErrorKind::Conflict,
                        &item.pos,
                        format!(
                            "Duplicate service import subject {to:?}, previously used in import for account {:?}, subject {:?}",
                            dup.account, dup.subject
                        ),
                    ));
                }
            }
            account.imports.push(import);
            positions.imports.insert((index, i), item.pos.clone());
        }
    }
    if let Some(e) = limits {
        account.limits = account_limits(&e.value)?;
    }
    Ok(account)
}

fn account_limits(value: &Value) -> Result<AccountLimits, ConfigError> {
    let map = section::map(value, "account limits")?;
    let mut s = Section::new("account limits", map);
    let conns = s.get(&["max_connections", "max_conn"])?;
    let subs = s.get(&["max_subscriptions", "max_subs"])?;
    let payload = s.get(&["max_payload", "max_pay"])?;
    let responses = s.get(&["max_pending_responses"])?;
    s.finish(UNSUPPORTED_LIMITS)?;
    // nats-server reads -1 (and, for these, 0) as "no limit".
    let limit = |e: Option<&Entry>, what: &str| -> Result<Option<usize>, ConfigError> {
        match e {
            None => Ok(None),
            Some(e) => match section::integer(&e.value, what)? {
                n if n <= 0 => Ok(None),
                n => usize::try_from(n).map(Some).map_err(|_| invalid(&e.value, format!("{what} is out of range"))),
            },
        }
    };
    let mut limits = AccountLimits {
        max_connections: limit(conns, "max_connections")?,
        max_subscriptions: limit(subs, "max_subscriptions")?,
        max_payload: limit(payload, "max_payload")?,
        ..AccountLimits::default()
    };
    if let Some(e) = responses {
        limits.max_pending_responses = section::count(&e.value, "max_pending_responses", 1)?;
    }
    Ok(limits)
}

/// `{stream: S, accounts: [..]}` or `{service: S, accounts, response, threshold}`.
fn export(value: &Value) -> Result<Export, ConfigError> {
    let map = section::map(value, "an export")?;
    let mut s = Section::new("an export", map);
    let stream = s.get(&["stream"])?;
    let service = s.get(&["service"])?;
    let accounts = s.get(&["accounts"])?;
    let response = s.get(&["response", "response_type"])?;
    let threshold = s.get(&["threshold", "response_threshold", "response_max_time", "response_time"])?;
    s.finish(UNSUPPORTED_EXPORT)?;
    let (subject_entry, is_service) = match (stream, service) {
        (Some(st), Some(sv)) => {
            let (first, second) = if st.key_pos.line <= sv.key_pos.line { (st, sv) } else { (sv, st) };
            return Err(conflict(second, &format!("Detected {} but already saw a {}", second.key, first.key)));
        }
        (Some(e), None) => (e, false),
        (None, Some(e)) => (e, true),
        (None, None) => return Err(invalid(value, "an export needs `stream` or `service`")),
    };
    let subject = pattern(&subject_entry.value, if is_service { "service" } else { "stream" })?;
    if !is_service {
        if let Some(e) = response.or(threshold) {
            return Err(conflict(e, "Detected response directive on non-service"));
        }
    }
    let accounts = match accounts {
        None => None,
        Some(e) => {
            let mut names = Vec::new();
            for item in section::array(&e.value, "export accounts")? {
                names.push(section::word(item, "an account name")?.to_owned());
            }
            Some(names)
        }
    };
    let kind = if is_service {
        let response = match response {
            None => ResponseType::Singleton,
            Some(e) => match section::string(&e.value, "response")?.to_ascii_lowercase().as_str() {
                "single" | "singleton" => ResponseType::Singleton,
                "stream" => ResponseType::Stream,
                "chunk" | "chunked" => ResponseType::Chunked,
                other => return Err(invalid(&e.value, format!("Unknown response type: {other:?}"))),
            },
        };
        let threshold = match threshold {
            None => DEFAULT_RESPONSE_THRESHOLD,
            Some(e) => {
                if !matches!(e.value.kind, Kind::String(_)) {
                    return Err(ConfigError::at(
                        ErrorKind::Type,
                        &e.value.pos,
                        "Expected response threshold to be a parseable time duration",
                    ));
                }
                let (d, _) = section::duration(&e.value, "response threshold", Bare::No)?;
                positive(d, &e.value, "response threshold")?
            }
        };
        ExportKind::Service { response, threshold }
    } else {
        ExportKind::Stream
    };
    Ok(Export { subject, kind, accounts, pos: value.pos.to_string() })
}

fn positive(d: Duration, value: &Value, what: &str) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(invalid(value, format!("{what} must be more than zero")));
    }
    Ok(d)
}

/// `{stream: {account, subject}, prefix | to}` or `{service: {account, subject}, to, share}`.
fn import(value: &Value, warnings: &mut Vec<String>) -> Result<Import, ConfigError> {
    let map = section::map(value, "an import")?;
    let mut s = Section::new("an import", map);
    let stream = s.get(&["stream"])?;
    let service = s.get(&["service"])?;
    let prefix = s.get(&["prefix"])?;
    let to = s.get(&["to"])?;
    let share = s.get(&["share"])?;
    s.finish(&[])?;
    let (source, is_service) = match (stream, service) {
        (Some(_), Some(e)) => return Err(conflict(e, "Detected service but already saw a stream")),
        (Some(e), None) => (e, false),
        (None, Some(e)) => (e, true),
        (None, None) => return Err(invalid(value, "an import needs `stream` or `service`")),
    };
    let (account, subject) = import_source(&source.value)?;
    let to = to.map(|e| pattern(&e.value, "to").map(|s| (s, e))).transpose()?;
    let kind = if is_service {
        if let Some(e) = prefix {
            return Err(conflict(e, "a service import takes `to`, not `prefix`"));
        }
        if let Some(e) = share {
            section::boolean(&e.value, "share")?;
            warnings.push(format!(
                "{}: share has no effect: warden adds no Nats-Request-Info header to imported requests",
                e.key_pos
            ));
        }
        ImportKind::Service { to: to.map_or_else(|| subject.clone(), |(s, _)| s) }
    } else {
        if let Some(e) = share {
            return Err(conflict(e, "`share` applies to service imports only"));
        }
        let local = match (prefix, to) {
            (Some(_), Some((_, e))) => {
                return Err(conflict(e, "Stream import can not have a 'prefix' and a 'to' property"))
            }
            (Some(e), None) => {
                let p = section::word(&e.value, "prefix")?;
                let p = p.strip_suffix('.').unwrap_or(p);
                if !crate::subject::is_valid_literal(p.as_bytes()) {
                    return Err(invalid(&e.value, "a stream import prefix must be a subject without wildcards"));
                }
                LocalSubject::Prefix(p.to_owned())
            }
            (None, Some((s, _))) => LocalSubject::To(s),
            (None, None) => LocalSubject::Same,
        };
        ImportKind::Stream { local }
    };
    Ok(Import { account, subject, kind, pos: value.pos.to_string() })
}

/// `{account: NAME, subject: S}`.
fn import_source(value: &Value) -> Result<(String, String), ConfigError> {
    let map = section::map(value, "an import source")?;
    let mut s = Section::new("an import source", map);
    let account = s.get(&["account"])?;
    let subject = s.get(&["subject"])?;
    s.finish(&[])?;
    let (Some(account), Some(subject)) = (account, subject) else {
        return Err(invalid(value, "Expect an account name and a subject"));
    };
    Ok((section::word(&account.value, "account")?.to_owned(), pattern(&subject.value, "subject")?))
}

/// A valid subject pattern.
fn pattern(value: &Value, what: &str) -> Result<String, ConfigError> {
    let s = section::string(value, what)?;
    if !is_valid_pattern(s.as_bytes()) {
        return Err(invalid(value, format!("subject {s:?} is not a valid subject")));
    }
    Ok(s.to_owned())
}
