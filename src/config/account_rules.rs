//! The rules that relate accounts to each other, checked once every
//! account is read: user names and nkeys unique across all accounts, every
//! named account defined, every import authorized by a matching export of
//! the exporter (and approved for the importer when the export names
//! accounts), every subject mapping invertible, and no import cycles — as
//! nats-server 2.9.10 checks them when it builds its accounts (its
//! `Error adding stream import ...: stream import not authorized` is a
//! start-up error there too). The config reader maps each failure to the
//! file position of the item; the broker runs the same checks on options
//! built in code.

use std::collections::HashSet;
use std::fmt;

use super::options::{
    AccountConfig, Export, ExportKind, Import, ImportKind, LocalSubject, Options, DEFAULT_SYSTEM_ACCOUNT,
    GLOBAL_ACCOUNT,
};
use crate::subject::{is_subset, overlaps, Transform};

/// What a rule failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// An account as a whole (by index in `accounts`).
    Account(usize),
    /// An account's users list.
    Users(usize),
    /// An export (account index, export index).
    Export(usize, usize),
    /// An import (account index, import index).
    Import(usize, usize),
    /// `system_account`.
    SystemAccount,
}

/// A broken rule between accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsError {
    /// Where.
    pub location: Location,
    /// What (nats-server's wording where it has one).
    pub message: String,
}

impl fmt::Display for AccountsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AccountsError {}

fn fail<T>(location: Location, message: impl Into<String>) -> Result<T, AccountsError> {
    Err(AccountsError { location, message: message.into() })
}

/// Checks every rule between the accounts of `opts`.
pub fn check_accounts(opts: &Options) -> Result<(), AccountsError> {
    check_users(opts)?;
    let accounts = &opts.accounts;
    let known = |name: &str| name == GLOBAL_ACCOUNT || accounts.iter().any(|a| a.name == name);
    if let Some(sys) = &opts.system_account {
        if sys != DEFAULT_SYSTEM_ACCOUNT && !accounts.iter().any(|a| &a.name == sys) {
            return fail(Location::SystemAccount, format!("system account {sys:?} is not defined in accounts"));
        }
    }
    for (a, account) in accounts.iter().enumerate() {
        for (e, export) in account.exports.iter().enumerate() {
            for name in export.accounts.iter().flatten() {
                if !known(name) {
                    let what = if export.kind == ExportKind::Stream { "stream" } else { "service" };
                    return fail(Location::Export(a, e), format!("{name:?} account not defined for {what} export"));
                }
            }
        }
    }
    for (a, account) in accounts.iter().enumerate() {
        for (i, import) in account.imports.iter().enumerate() {
            let at = Location::Import(a, i);
            let Some(exporter) = accounts.iter().find(|x| x.name == import.account) else {
                let what = if import.is_service() { "service" } else { "stream" };
                return fail(at, format!("{:?} account not defined for {what} import", import.account));
            };
            if exporter.name == account.name {
                return fail(at, format!("account {:?} cannot import from itself", account.name));
            }
            if authorizing_export(exporter, import, &account.name).is_none() {
                let what = if import.is_service() { "service" } else { "stream" };
                return fail(
                    at,
                    format!("Error adding {what} import {:?}: {what} import not authorized", import.subject),
                );
            }
            if let Err(err) = import.transform() {
                return fail(at, format!("import {:?}: {err}", import.subject));
            }
            if import_forms_cycle(accounts, &account.name, import) {
                return fail(at, format!("import {:?} from {:?} forms a cycle", import.subject, import.account));
            }
        }
    }
    Ok(())
}

/// One warning per public export (an export without `accounts`, which
/// every account may import: nats-server's default, kept for
/// compatibility), so that nobody makes one by accident.
pub fn public_export_warnings(opts: &Options) -> Vec<String> {
    let mut warnings = Vec::new();
    for account in &opts.accounts {
        for export in account.exports.iter().filter(|e| e.accounts.is_none()) {
            let what = if export.kind == ExportKind::Stream { "stream" } else { "service" };
            let at = if export.pos.is_empty() { String::new() } else { format!("{}: ", export.pos) };
            warnings.push(format!(
                "{at}account {:?} exports {what} {:?} to every account (no `accounts` list): any tenant may import it",
                account.name, export.subject
            ));
        }
    }
    warnings
}

/// User names and nkeys are unique across `authorization` and every
/// account; a single `authorization` user or token excludes account users.
fn check_users(opts: &Options) -> Result<(), AccountsError> {
    let mut names: HashSet<&str> = HashSet::new();
    let mut keys: HashSet<&str> = HashSet::new();
    if let Some(auth) = &opts.authorization {
        names.extend(auth.users.iter().map(|u| u.user.as_str()));
        keys.extend(auth.nkeys.iter().map(|u| u.nkey.as_str()));
    }
    for (a, account) in opts.accounts.iter().enumerate() {
        let has_users = !account.users.is_empty() || !account.nkeys.is_empty();
        if let (true, Some(auth)) = (has_users, &opts.authorization) {
            if auth.user.is_some() {
                return fail(Location::Users(a), "Can not have a single user/pass and accounts");
            }
            if auth.token.is_some() {
                return fail(Location::Users(a), "Can not have a token and accounts");
            }
        }
        for user in &account.users {
            if !names.insert(&user.user) {
                return fail(Location::Users(a), format!("Duplicate user {:?} detected", user.user));
            }
        }
        for user in &account.nkeys {
            if !keys.insert(&user.nkey) {
                return fail(Location::Users(a), format!("Duplicate nkey {:?} detected", user.nkey));
            }
        }
    }
    Ok(())
}

/// The export of `exporter` that lets `importer` import `import`: of the
/// same kind, containing the imported subject, and public or naming the
/// importer.
pub fn authorizing_export<'a>(exporter: &'a AccountConfig, import: &Import, importer: &str) -> Option<&'a Export> {
    exporter.exports.iter().find(|e| {
        (e.kind == ExportKind::Stream) != import.is_service()
            && is_subset(import.subject.as_bytes(), e.subject.as_bytes())
            && e.accounts.as_ref().is_none_or(|names| names.iter().any(|n| n == importer))
    })
}

/// Most import edges followed when looking for a cycle; a graph that
/// needs more is refused as one (fail closed).
const MAX_CYCLE_STEPS: usize = 10_000;

/// Whether following `import` (of account `importer`) through the
/// exporter's own imports of the same kind, wherever their local subjects
/// overlap the subject carried, leads back to an account already on the
/// path (nats-server's `checkServiceImportsForCycles` and its stream twin).
fn import_forms_cycle(accounts: &[AccountConfig], importer: &str, import: &Import) -> bool {
    let mut path = vec![importer];
    let mut steps = 0;
    leads_back(accounts, &import.account, &import.subject, import.is_service(), &mut path, &mut steps)
}

fn leads_back<'a>(
    accounts: &'a [AccountConfig],
    account: &'a str,
    subject: &str,
    service: bool,
    path: &mut Vec<&'a str>,
    steps: &mut usize,
) -> bool {
    let Some(config) = accounts.iter().find(|a| a.name == account) else { return false };
    path.push(account);
    for next in config.imports.iter().filter(|i| i.is_service() == service) {
        if !overlaps(subject.as_bytes(), next.local_subject().as_bytes()) {
            continue;
        }
        *steps += 1;
        if *steps > MAX_CYCLE_STEPS || path.contains(&next.account.as_str()) {
            return true;
        }
        if leads_back(accounts, &next.account, &next.subject, service, path, steps) {
            return true;
        }
    }
    path.pop();
    false
}

impl Import {
    /// Whether this is a service import.
    pub fn is_service(&self) -> bool {
        matches!(self.kind, ImportKind::Service { .. })
    }

    /// The subject (pattern) in the importing account.
    pub fn local_subject(&self) -> String {
        match &self.kind {
            ImportKind::Service { to, .. } => to.clone(),
            ImportKind::Stream { local: LocalSubject::Same } => self.subject.clone(),
            ImportKind::Stream { local: LocalSubject::Prefix(p) } => format!("{p}.{}", self.subject),
            ImportKind::Stream { local: LocalSubject::To(to) } => to.clone(),
        }
    }

    /// The mapping this import applies: for a stream, from the exporter's
    /// subject to the local one; for a service, from the local subject
    /// requests are published to, to the exporter's.
    pub fn transform(&self) -> Result<Transform, crate::subject::TransformError> {
        match &self.kind {
            ImportKind::Service { to, .. } => Transform::new(to, &self.subject),
            ImportKind::Stream { local: LocalSubject::Same } => Transform::new(&self.subject, &self.subject),
            ImportKind::Stream { local: LocalSubject::Prefix(p) } => Transform::with_prefix(&self.subject, p),
            ImportKind::Stream { local: LocalSubject::To(to) } => Transform::new(&self.subject, to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, ErrorKind};

    fn error_of(text: &str) -> crate::config::ConfigError {
        load_str(text, "t.conf").expect_err("should be refused")
    }

    const BASE: &str = r#"
accounts {
  A: { users: [{user: a, password: "$2a$11$abcdefghijklmnopqrstuuv8pvn8ZXUHzBPrNzjCZ6vSRv4HKyJhq"}],
       exports: [ {stream: "public.>"}, {stream: "private.>", accounts: [B]},
                  {service: "svc.time", accounts: [B], response: stream, threshold: "5s"} ] }
  B: { imports: [ {stream: {account: A, subject: "public.>"}, prefix: from_a},
                  {stream: {account: A, subject: "private.*"}, to: "p.$1"},
                  {service: {account: A, subject: "svc.time"}, to: "time"} ] }
  C: {}
}
"#;

    #[test]
    fn a_valid_multi_tenant_config_loads() {
        let loaded = load_str(BASE, "t.conf").unwrap();
        let o = &loaded.options;
        assert_eq!(o.accounts.len(), 3);
        assert_eq!(o.accounts[1].imports[0].local_subject(), "from_a.public.>");
        assert_eq!(o.accounts[1].imports[2].local_subject(), "time");
        assert!(matches!(o.accounts[0].exports[2].kind, ExportKind::Service { .. }));
    }

    #[test]
    fn an_export_for_b_is_refused_to_c_at_its_position() {
        let text = BASE.replace("  C: {}", "  C: { imports: [ {stream: {account: A, subject: \"private.x\"}} ] }");
        let err = error_of(&text);
        assert_eq!(err.message(), "Error adding stream import \"private.x\": stream import not authorized");
        assert_eq!((err.line(), err.column()), (Some(9), Some(19)));
        // A service export is not a stream export.
        let text = BASE.replace("  C: {}", "  C: { imports: [ {stream: {account: A, subject: \"svc.time\"}} ] }");
        assert!(error_of(&text).message().contains("not authorized"));
    }

    #[test]
    fn unknown_accounts_duplicates_and_cycles_are_refused() {
        let err = error_of("accounts { A: { imports: [ {service: {account: Z, subject: x}} ] } }");
        assert_eq!(err.message(), "\"Z\" account not defined for service import");
        let err = error_of("accounts { A: { exports: [ {stream: x, accounts: [Q]} ] } }");
        assert_eq!(err.message(), "\"Q\" account not defined for stream export");
        let err = error_of(
            r#"accounts { A: { users: [{user: u, password: "p1"}] }, B: { users: [{user: u, password: "p2"}] } }"#,
        );
        assert_eq!(err.message(), "Duplicate user \"u\" detected");
        let cycle = r#"accounts {
  A: { exports: [{service: "a"}], imports: [{service: {account: B, subject: b}, to: a}] }
  B: { exports: [{service: "b"}], imports: [{service: {account: A, subject: a}, to: b}] }
}"#;
        assert!(error_of(cycle).message().contains("forms a cycle"), "{}", error_of(cycle));
        let err = error_of("accounts { $G: {} }");
        assert_eq!(err.message(), "\"$G\" is a Reserved Account");
        let err = error_of("accounts { \"a b\": {} }");
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let err = error_of("accounts { \"a.*\": {} }");
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let err = error_of("accounts { A: {} }\nsystem_account: SYS");
        assert_eq!(err.message(), "system account \"SYS\" is not defined in accounts");
        assert_eq!(err.line(), Some(2));
    }

    #[test]
    fn mappings_must_be_invertible_and_prefixes_literal() {
        let text = r#"accounts {
  A: { exports: [{stream: "x.*.*"}] }
  B: { imports: [{stream: {account: A, subject: "x.*.*"}, to: "y.$1"}] }
}"#;
        assert!(error_of(text).message().contains("exactly once"));
        let text = r#"accounts { A: { exports: [{stream: "x"}] }, B: { imports: [{stream: {account: A, subject: x}, prefix: "p.*"}] } }"#;
        assert!(error_of(text).message().contains("without wildcards"));
        let text = r#"accounts { A: { exports: [{stream: "x"}] }, B: { imports: [{stream: {account: A, subject: x}, prefix: p, to: q}] } }"#;
        assert_eq!(error_of(text).message(), "Stream import can not have a 'prefix' and a 'to' property");
    }

    #[test]
    fn unsupported_keys_are_named_not_ignored() {
        let err = error_of("accounts { A: { jetstream: enabled } }");
        assert!(err.message().contains("does not support"), "{err}");
        let err = error_of("accounts { A: { exports: [{service: x, latency: y}] } }");
        assert!(err.message().contains("does not support"), "{err}");
        let err = error_of("accounts { A: { limits: { max_conns: 3 } } }");
        assert_eq!(err.kind(), ErrorKind::UnknownKey);
    }
}
