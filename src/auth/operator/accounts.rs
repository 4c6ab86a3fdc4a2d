//! Verified account JWTs as the broker's accounts: the same
//! [`AccountConfig`] config-mode accounts use, so isolation, imports,
//! exports, limits and reloads are one implementation. What only JWT
//! accounts have (signing keys, revocations, default permissions for
//! users) stays here, for [`super::JwtAuth`].
//!
//! Translation, as nats-server's `updateAccountClaimsWithRefresh`:
//! - an export without `token_req` is public; with it, only importers
//!   presenting a valid activation token (issued by the exporter or one of
//!   its signing keys, for that importer, subject and kind, unexpired and
//!   not revoked by the export) may import it;
//! - a stream import's `local_subject` renames, its deprecated `to` is a
//!   prefix; a service import's `local_subject` is what importers publish
//!   to, its deprecated `to` the exporter's subject;
//! - limits: negative means none, so `conn`/`subs`/`payload` of -1 are no
//!   limit and 0 is zero (as nats-server enforces).
//!
//! - `mappings` become the account's subject mappings ([`super::mappings`]).
//!
//! What cannot be honoured refuses the thing it is in, never silently: an
//! account with invalid `mappings`, a callout `authorization`, more imports or
//! exports than its own limits, or wildcard exports its limits forbid is
//! left out (its users cannot log in); an export with latency tracking or
//! an account token position is left out; an import whose exporter is not
//! held or whose activation does not verify is left out. Each is logged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::config::{
    check_accounts, AccountConfig, AccountLimits, Export, ExportKind, Import, ImportKind, LocalSubject, Location,
    MsgTrace, Options, Permissions, ResponsePermission, ResponseType, SubjectRules, DEFAULT_RESPONSE_THRESHOLD,
};
use crate::jwt::{
    self, AccountClaims, ActivationClaims, ExportType, Jwt, JwtExport, JwtImport, JwtPermissions, JwtTrace, UserScope,
};
use crate::perms::PermissionSet;

/// What [`super::JwtAuth`] needs to know of one account.
#[derive(Debug)]
pub struct JwtAccount {
    /// Its public key (also its name in the broker).
    pub key: String,
    /// Its JWT's `name`.
    pub name: String,
    /// Its JWT's tags.
    pub tags: Vec<String>,
    /// Keys that may sign its users (its own key first); a scoped key
    /// carries its template.
    pub signers: HashMap<String, Option<UserScope>>,
    /// Revoked users: key (or `*`) to the time before which their JWTs are revoked.
    pub revocations: BTreeMap<String, i64>,
    /// For users whose JWT has no permissions.
    pub default_permissions: Arc<PermissionSet>,
    /// User JWTs may not be bearer tokens.
    pub disallow_bearer: bool,
    /// Its JWT's `exp` (Unix seconds).
    pub expires: Option<i64>,
}

impl JwtAccount {
    /// Whether a user JWT of `user` issued at `issued_at` is revoked
    /// (nats-server's `isRevoked`: revoked at or after its issue time).
    pub fn is_revoked(&self, user: &str, issued_at: i64) -> bool {
        is_revoked(&self.revocations, user, issued_at)
    }
}

fn is_revoked(revocations: &BTreeMap<String, i64>, key: &str, issued_at: i64) -> bool {
    [key, "*"].iter().any(|k| revocations.get(*k).is_some_and(|at| *at >= issued_at))
}

/// The accounts of operator mode at one moment.
#[derive(Debug, Default)]
pub struct Directory {
    /// By public key.
    accounts: HashMap<String, Arc<JwtAccount>>,
    /// The broker's accounts.
    configs: Vec<AccountConfig>,
    /// The system account's key.
    system: Option<String>,
    /// The soonest time (Unix seconds) an account or activation expires,
    /// when the directory must be built again.
    next_expiry: Option<i64>,
}

impl Directory {
    /// Translates verified account JWTs at `now` (expired ones are left out).
    pub fn build(tokens: &BTreeMap<String, Jwt<AccountClaims>>, system: Option<&str>, now: i64) -> Directory {
        let mut directory = Directory { system: system.map(str::to_owned), ..Directory::default() };
        let held: BTreeMap<&str, &Jwt<AccountClaims>> = tokens
            .iter()
            .filter(|(key, claims)| match jwt::check_times(&claims.registered, now) {
                Ok(()) => account_usable(key, &claims.nats),
                Err(err) => {
                    warn!(account = %key, error = %err, "account JWT left out");
                    false
                }
            })
            .map(|(key, claims)| (key.as_str(), claims))
            .collect();
        // Who each token_req export admits: (exporter, export index) -> importers.
        let mut admitted: HashMap<(&str, usize), Vec<String>> = HashMap::new();
        let mut imports: HashMap<&str, Vec<Import>> = HashMap::new();
        for (importer, claims) in &held {
            for import in &claims.nats.imports {
                let Some(exporter) = held.get(import.account.as_str()) else {
                    warn!(account = %importer, exporter = %import.account, subject = %import.subject, "import left out: exporting account not held");
                    continue;
                };
                let Some(index) = exporting(exporter, import) else {
                    warn!(account = %importer, subject = %import.subject, "import left out: the exporter exports no such subject");
                    continue;
                };
                let export = &exporter.nats.exports[index];
                if export.token_req {
                    match activation(import, exporter, export, importer, now) {
                        Ok(expires) => {
                            directory.expiring(expires);
                            admitted
                                .entry((exporter.registered.sub.as_str(), index))
                                .or_default()
                                .push(importer.to_string());
                        }
                        Err(why) => {
                            warn!(account = %importer, subject = %import.subject, "import left out: activation {why}");
                            continue;
                        }
                    }
                }
                imports.entry(importer).or_default().push(translate_import(import));
            }
        }
        for (key, claims) in &held {
            let Some(account) = jwt_account(key, claims) else { continue };
            let mappings = match super::mappings::rules(&claims.nats) {
                Ok(rules) => rules,
                Err(errors) => {
                    warn!(account = %key, errors = ?errors, "account JWT left out: invalid mappings");
                    continue;
                }
            };
            directory.expiring(account.expires);
            let mut exports = Vec::new();
            for (i, export) in claims.nats.exports.iter().enumerate() {
                if export.service_latency.is_some() || export.account_token_position != 0 {
                    warn!(account = %key, subject = %export.subject, "export left out: latency tracking and account token positions are not supported");
                    continue;
                }
                let accounts = export.token_req.then(|| admitted.get(&(*key, i)).cloned().unwrap_or_default());
                exports.push(translate_export(export, accounts, key));
            }
            let limits = &claims.nats.limits;
            directory.configs.push(AccountConfig {
                name: key.to_string(),
                nkey: Some(key.to_string()),
                exports,
                imports: imports.remove(key).unwrap_or_default(),
                limits: AccountLimits {
                    max_connections: limit(limits.conn),
                    max_subscriptions: limit(limits.subs),
                    max_payload: limit(limits.payload),
                    max_leafnodes: limit(limits.leaf),
                    ..AccountLimits::default()
                },
                mappings,
                msg_trace: claims.nats.trace.as_ref().and_then(msg_trace),
                ..AccountConfig::default()
            });
            directory.accounts.insert(key.to_string(), Arc::new(account));
        }
        if let Some(sys) = system {
            if !directory.configs.iter().any(|c| c.name == sys) {
                directory.configs.push(AccountConfig {
                    name: sys.to_owned(),
                    nkey: Some(sys.to_owned()),
                    ..AccountConfig::default()
                });
            }
        }
        directory.drop_failing_imports();
        directory
    }

    /// The account with public key `key`.
    pub fn account(&self, key: &str) -> Option<&Arc<JwtAccount>> {
        self.accounts.get(key)
    }

    /// `base` with these accounts (and operator mode's system account).
    pub fn options(&self, base: &Options) -> Options {
        let mut opts = base.clone();
        opts.accounts = self.configs.clone();
        opts.system_account = self.system.clone();
        opts
    }

    /// When (Unix seconds) this directory must be rebuilt because
    /// something in it expires.
    pub fn next_expiry(&self) -> Option<i64> {
        self.next_expiry
    }

    fn expiring(&mut self, at: Option<i64>) {
        if let Some(at) = at {
            self.next_expiry = Some(self.next_expiry.map_or(at, |n| n.min(at)));
        }
    }

    /// Imports the account rules refuse (a cycle, say) are left out one by
    /// one, so one account's JWT cannot stop the others from loading.
    fn drop_failing_imports(&mut self) {
        let check = |configs: &[AccountConfig], system: &Option<String>| {
            let opts = Options { accounts: configs.to_vec(), system_account: system.clone(), ..Options::default() };
            check_accounts(&opts)
        };
        for _ in 0..=self.configs.iter().map(|c| c.imports.len()).sum::<usize>() {
            match check(&self.configs, &self.system) {
                Ok(()) => return,
                Err(err) => match err.location {
                    Location::Import(a, i) if a < self.configs.len() && i < self.configs[a].imports.len() => {
                        warn!(account = %self.configs[a].name, error = %err.message, "import left out");
                        self.configs[a].imports.remove(i);
                    }
                    _ => {
                        warn!(error = %err.message, "operator-mode accounts do not fit together; none loaded");
                        self.configs.clear();
                        self.accounts.clear();
                        return;
                    }
                },
            }
        }
    }
}

/// Whether an account JWT uses nothing warden cannot honour.
fn account_usable(key: &str, claims: &AccountClaims) -> bool {
    let limits = &claims.limits;
    let count_over = |limit: i64, n: usize| limit >= 0 && usize::try_from(limit).is_ok_and(|l| n > l);
    let why = if !claims.authorization.is_null() && claims.authorization != serde_json::json!({}) {
        Some("auth callout in account JWTs is not supported")
    } else if count_over(limits.imports, claims.imports.len()) {
        Some("more imports than its limits allow")
    } else if count_over(limits.exports, claims.exports.len()) {
        Some("more exports than its limits allow")
    } else if !limits.wildcards && claims.exports.iter().any(|e| e.subject.contains(['*', '>'])) {
        Some("wildcard exports that its limits forbid")
    } else {
        None
    };
    match why {
        Some(why) => {
            warn!(account = %key, "account JWT left out: {why}");
            false
        }
        None => true,
    }
}

fn jwt_account(key: &str, claims: &Jwt<AccountClaims>) -> Option<JwtAccount> {
    let default_permissions = match permissions(&claims.nats.default_permissions) {
        None => Arc::new(PermissionSet::unrestricted()),
        Some(perms) => match PermissionSet::compile(&perms) {
            Ok(set) => Arc::new(set),
            Err(err) => {
                warn!(account = %key, error = %err, "account JWT left out: default_permissions do not compile");
                return None;
            }
        },
    };
    let mut signers: HashMap<String, Option<UserScope>> = HashMap::new();
    signers.insert(key.to_owned(), None);
    for signing in &claims.nats.signing_keys {
        match signing {
            jwt::SigningKey::Plain(k) => signers.insert(k.clone(), None),
            jwt::SigningKey::Scoped(scope) => signers.insert(scope.key.clone(), Some((**scope).clone())),
        };
    }
    Some(JwtAccount {
        key: key.to_owned(),
        name: claims.registered.name.clone(),
        tags: claims.nats.tags.clone(),
        signers,
        revocations: claims.nats.revocations.clone(),
        default_permissions,
        disallow_bearer: claims.nats.limits.disallow_bearer,
        expires: (claims.registered.exp > 0).then_some(claims.registered.exp),
    })
}

/// A JWT permission block in the config's shape; `None` when it has no rule.
pub(super) fn permissions(p: &JwtPermissions) -> Option<Permissions> {
    if p.is_empty() {
        return None;
    }
    let rules = |r: &jwt::Rules| {
        (!r.is_empty()).then(|| SubjectRules {
            allow: (!r.allow.is_empty()).then(|| r.allow.clone()),
            deny: (!r.deny.is_empty()).then(|| r.deny.clone()),
            literal: None,
        })
    };
    Some(Permissions {
        publish: rules(&p.publish),
        subscribe: rules(&p.subscribe),
        allow_responses: p.resp.map(|r| ResponsePermission {
            max: match r.max {
                m if m < 0 => None,
                0 => Some(1),
                m => usize::try_from(m).ok(),
            },
            expires: match u64::try_from(r.ttl) {
                Ok(ns) if ns > 0 => Duration::from_nanos(ns),
                _ => ResponsePermission::default().expires,
            },
        }),
    })
}

/// A negative limit is none.
fn limit(n: i64) -> Option<usize> {
    usize::try_from(n).ok()
}

/// The index of the export of `exporter` that `import` takes.
fn exporting(exporter: &Jwt<AccountClaims>, import: &JwtImport) -> Option<usize> {
    let remote = remote_subject(import);
    exporter
        .nats
        .exports
        .iter()
        .position(|e| e.kind == import.kind && crate::subject::is_subset(remote.as_bytes(), e.subject.as_bytes()))
}

/// The subject an import names in the exporting account.
fn remote_subject(import: &JwtImport) -> &str {
    match import.kind {
        ExportType::Service if import.local_subject.is_empty() && !import.to.is_empty() => &import.to,
        _ => &import.subject,
    }
}

/// Verifies the activation token of `import`; its expiry if it has one.
fn activation(
    import: &JwtImport,
    exporter: &Jwt<AccountClaims>,
    export: &JwtExport,
    importer: &str,
    now: i64,
) -> Result<Option<i64>, String> {
    if import.token.is_empty() {
        return Err("missing".into());
    }
    if import.token.starts_with("http") {
        return Err("tokens by URL are not supported".into());
    }
    let token = jwt::decode::<ActivationClaims>(&import.token, now).map_err(|e| e.to_string())?;
    let exporter_key = exporter.registered.sub.as_str();
    let issuer = token.registered.iss.as_str();
    let by_exporter = issuer == exporter_key
        || (token.nats.issuer_account == exporter_key && exporter.nats.signing_keys.iter().any(|k| k.key() == issuer));
    if !by_exporter {
        return Err("not issued by the exporting account".into());
    }
    if token.registered.sub != importer {
        return Err("issued for another account".into());
    }
    if token.nats.kind != import.kind
        || !crate::subject::is_subset(remote_subject(import).as_bytes(), token.nats.subject.as_bytes())
    {
        return Err("for another subject".into());
    }
    if is_revoked(&export.revocations, importer, token.registered.iat) {
        return Err("revoked".into());
    }
    Ok((token.registered.exp > 0).then_some(token.registered.exp))
}

/// What the Go library's validation says of an account JWT's tracing
/// claims, in its words: a `trace` destination that is not a literal
/// subject, sampling outside 0 to 100, `allow_trace` on a service import
/// or a stream export. nats-server refuses such a JWT whole.
pub(super) fn trace_errors(claims: &AccountClaims) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(trace) = &claims.trace {
        if trace.dest.is_empty() {
            errors.push("the account Trace.Destination subject cannot be empty".to_owned());
        } else if !crate::subject::is_valid_literal(trace.dest.as_bytes()) {
            errors
                .push(format!("the account Trace.Destination subject {:?} is not a valid publish subject", trace.dest));
        }
        if !(0..=100).contains(&trace.sampling) {
            errors.push(format!(
                "the account Trace.Sampling value '{}' is not valid, should be in the range [1..100]",
                trace.sampling
            ));
        }
    }
    if claims.imports.iter().any(|i| i.allow_trace && i.kind == ExportType::Service) {
        errors.push("AllowTrace only valid for stream import".to_owned());
    }
    if claims.exports.iter().any(|e| e.allow_trace && e.kind == ExportType::Stream) {
        errors.push("AllowTrace only valid for service export".to_owned());
    }
    errors
}

/// An account JWT's `trace` as a config account's `msg_trace` (sampling 0
/// is 100, as the Go library's validation sets it); `None` for what
/// [`trace_errors`] refuses.
fn msg_trace(trace: &JwtTrace) -> Option<MsgTrace> {
    if !crate::subject::is_valid_literal(trace.dest.as_bytes()) {
        return None;
    }
    let sampling = match trace.sampling {
        0 => 100,
        n => u8::try_from(n).ok().filter(|n| *n <= 100)?,
    };
    Some(MsgTrace { dest: trace.dest.clone(), sampling })
}

fn translate_export(export: &JwtExport, accounts: Option<Vec<String>>, key: &str) -> Export {
    let kind = match export.kind {
        ExportType::Stream => ExportKind::Stream,
        ExportType::Service => ExportKind::Service {
            response: match export.response_type.to_ascii_lowercase().as_str() {
                "stream" => ResponseType::Stream,
                "chunked" => ResponseType::Chunked,
                _ => ResponseType::Singleton,
            },
            threshold: match export.response_threshold {
                0 => DEFAULT_RESPONSE_THRESHOLD,
                ns => Duration::from_nanos(ns),
            },
        },
    };
    Export {
        subject: export.subject.clone(),
        kind,
        accounts,
        allow_trace: export.allow_trace,
        pos: format!("the JWT of account {key}"),
    }
}

fn translate_import(import: &JwtImport) -> Import {
    let pos = format!("an import of {}", import.subject);
    match import.kind {
        ExportType::Stream => {
            let local = if !import.local_subject.is_empty() {
                LocalSubject::To(import.local_subject.clone())
            } else if !import.to.is_empty() {
                LocalSubject::Prefix(import.to.clone())
            } else {
                LocalSubject::Same
            };
            Import {
                account: import.account.clone(),
                subject: import.subject.clone(),
                kind: ImportKind::Stream { local },
                allow_trace: import.allow_trace,
                pos,
            }
        }
        ExportType::Service => {
            let (subject, to) = if !import.local_subject.is_empty() {
                (import.subject.clone(), import.local_subject.clone())
            } else if !import.to.is_empty() {
                (import.to.clone(), import.subject.clone())
            } else {
                (import.subject.clone(), import.subject.clone())
            };
            Import {
                account: import.account.clone(),
                subject,
                kind: ImportKind::Service { to, share: import.share },
                allow_trace: false,
                pos,
            }
        }
    }
}
