//! `accounts { NAME: { users, default_permissions, exports, imports, limits,
//! nkey } }`, read as nats-server 2.9.10 reads it (`parseAccounts`,
//! `parseAccountExports`/`Imports`, `parseExportStreamOrService`,
//! `parseImportStreamOrService`, `parseAccountLimits`), strictly: every key
//! must mean something, and what warden does not implement (
//! `jetstream`, service `latency`, `account_token_position`) is refused
//! rather than ignored. The rules that relate accounts to each other
//! (imports authorized by exports, no cycles, unique users) are in
//! [`super::account_rules`], shared with the broker.

use std::collections::HashMap;
use std::time::Duration;

use super::auth::{self, UsersList};
use super::error::{conflict, invalid, ConfigError, ErrorKind};
use super::options::{
    AccountConfig, AccountLimits, Export, ExportKind, Import, ImportKind, LocalSubject, MsgTrace, ResponseType,
    DEFAULT_RESPONSE_THRESHOLD, GLOBAL_ACCOUNT,
};
use super::schema::{Block, Opt, Reload, Step::Check, Step::Key, Ty};
use super::section::{self, Bare};
use super::value::{Entry, Kind, Pos, Value};
use crate::nkeys::{KeyType, PublicKey};
use crate::subject::is_valid_pattern;

/// nats-server's per-account keys that warden does not implement.
const UNSUPPORTED_ACCOUNT: &[&str] = &["jetstream"];
/// nats-server's export keys that warden does not implement.
const UNSUPPORTED_EXPORT: &[&str] = &["latency", "account_token_position"];
/// nats-server's limits keys that warden does not implement.
const UNSUPPORTED_LIMITS: &[&str] = &[];

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

/// What one account block is read into.
pub(crate) struct Account {
    /// The account's place in the list, which keys its positions.
    index: usize,
    /// Whether the account's users may go without passwords.
    maps_certificates: bool,
    account: AccountConfig,
    positions: Positions,
    warnings: Vec<String>,
}

fn account_block(
    index: usize,
    name: &str,
    value: &Value,
    maps_certificates: bool,
    warnings: &mut Vec<String>,
    positions: &mut Positions,
) -> Result<AccountConfig, ConfigError> {
    let mut b = Account {
        index,
        maps_certificates,
        account: AccountConfig { name: name.to_owned(), ..AccountConfig::default() },
        positions: std::mem::take(positions),
        warnings: Vec::new(),
    };
    ACCOUNT.read_value("an account", value, &mut b)?;
    *positions = b.positions;
    warnings.append(&mut b.warnings);
    Ok(b.account)
}

/// One account of the `accounts` map.
pub(crate) static ACCOUNT: Block<Account> = Block {
    unsupported: UNSUPPORTED_ACCOUNT,
    steps: &[
        Key(&Opt::new(&["nkey"], Ty::String, Reload::Yes).means("The account's public key (`A...`)"), |e, b, _| {
            let text = section::word(&e.value, "account nkey")?;
            if PublicKey::parse_as(text, KeyType::Account).is_err() {
                return Err(invalid(&e.value, format!("Not a valid public nkey for an account: {text:?}")));
            }
            b.account.nkey = Some(text.to_owned());
            Ok(())
        }),
        Key(
            &Opt::new(&["users"], Ty::List(&auth::USER), Reload::Yes)
                .means("The account's users, written as `authorization { users }`"),
            |e, b, _| {
                let UsersList { users, nkeys } = auth::users_list(&e.value, b.maps_certificates, &mut b.warnings)?;
                (b.account.users, b.account.nkeys) = (users, nkeys);
                b.positions.users.insert(b.index, e.key_pos.clone());
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["default_permissions"], Ty::Block(&auth::PERMISSIONS), Reload::Yes)
                .means("The permissions of the account's users without their own")
                .default("everything allowed"),
            |e, b, _| {
                auth::permissions(&e.value, "default_permissions").map(|p| b.account.default_permissions = Some(p))
            },
        ),
        Key(
            &Opt::new(&["exports"], Ty::List(&EXPORT), Reload::Yes)
                .means("Streams and services other accounts may import"),
            |e, b, _| {
                for (i, item) in section::array(&e.value, "exports")?.iter().enumerate() {
                    b.account.exports.push(export(item)?);
                    b.positions.exports.insert((b.index, i), item.pos.clone());
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["imports"], Ty::List(&IMPORT), Reload::Yes)
                .means("Streams and services this account takes from others"),
            |e, b, _| {
                for (i, item) in section::array(&e.value, "imports")?.iter().enumerate() {
                    let import = import(item, &mut b.warnings)?;
                    if let ImportKind::Service { to, .. } = &import.kind {
                        if let Some(dup) = b
                            .account
                            .imports
                            .iter()
                            .find(|i| matches!(&i.kind, ImportKind::Service { to: t, .. } if t == to))
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
                    b.account.imports.push(import);
                    b.positions.imports.insert((b.index, i), item.pos.clone());
                }
                Ok(())
            },
        ),
        Key(&Opt::new(&["limits"], Ty::Block(&LIMITS), Reload::Yes).means("The account's limits"), |e, b, _| {
            LIMITS.read_value("account limits", &e.value, &mut b.account.limits).map(|_| ())
        }),
        Key(
            &Opt::new(&["mappings", "maps"], Ty::Named(&super::mappings::DESTINATION), Reload::Yes)
                .means(super::mappings::MEANS)
                .differs(super::mappings::DIFFERS),
            |e, b, _| super::mappings::read(e, &mut b.warnings).map(|m| b.account.mappings = m),
        ),
        Key(
            &Opt::new(&["msg_trace", "trace_dest"], Ty::Text("a subject, or `{ dest, sampling }`"), Reload::Yes)
                .means(
                    "Where traces of messages with a sampled W3C `traceparent` header go (`dest`), \
                    and what share of them is traced (`sampling`, 1 to 100 or `\"25%\"`)",
                )
                .default("no account trace destination"),
            |e, b, _| msg_trace(&e.value, &e.key, &mut b.warnings).map(|t| b.account.msg_trace = t),
        ),
    ],
};

/// An account's `msg_trace`: a destination subject, or `{ dest, sampling }`
/// (nats-server's `parseAccountMsgTrace`); sampling defaults to 100, and
/// without a destination is ignored with a warning.
fn msg_trace(value: &Value, key: &str, warnings: &mut Vec<String>) -> Result<Option<MsgTrace>, ConfigError> {
    let dest_of = |v: &Value, k: &str| -> Result<String, ConfigError> {
        let Kind::String(dest) = &v.kind else {
            return Err(invalid(v, format!("Field {k:?} should be a string")));
        };
        if !crate::subject::is_valid_literal(dest.as_bytes()) {
            return Err(invalid(v, format!("Trace destination {dest:?} is not valid")));
        }
        Ok(dest.clone())
    };
    let (mut dest, mut sampling) = (None, 0u8);
    match &value.kind {
        Kind::String(_) => dest = Some(dest_of(value, key)?),
        Kind::Map(map) => {
            for e in &map.entries {
                match e.key.to_ascii_lowercase().as_str() {
                    "dest" => dest = Some(dest_of(&e.value, &e.key)?),
                    "sampling" => {
                        let n = match &e.value.kind {
                            Kind::Integer(n) => *n,
                            Kind::String(text) => text.trim_end_matches('%').parse::<i64>().map_err(|_| {
                                invalid(&e.value, format!("Invalid trace destination sampling value {text:?}"))
                            })?,
                            _ => return Err(invalid(
                                &e.value,
                                "Trace destination sampling field \"sampling\" should be an integer or a percentage",
                            )),
                        };
                        sampling = u8::try_from(n).ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
                            invalid(
                                &e.value,
                                format!("Trace destination sampling value {n} is invalid, needs to be [1..100]"),
                            )
                        })?;
                    }
                    _ if e.used_as_variable => {}
                    _ => {
                        return Err(invalid(
                            &e.value,
                            format!("Unknown field {:?} parsing account message trace map/struct {key:?}", e.key),
                        ))
                    }
                }
            }
        }
        _ => {
            return Err(invalid(
                value,
                format!("Expected account message trace {key:?} to be a string or a map/struct"),
            ))
        }
    }
    match dest {
        Some(dest) => Ok(Some(MsgTrace { dest, sampling: if sampling == 0 { 100 } else { sampling } })),
        None => {
            if sampling > 0 {
                warnings
                    .push(format!("{}: Trace destination sampling ignored since no destination was set", value.pos));
            }
            Ok(None)
        }
    }
}

/// An account's limit: nats-server reads -1 (and, for these, 0) as "no
/// limit".
fn limit(e: &Entry, what: &str) -> Result<Option<usize>, ConfigError> {
    match section::integer(&e.value, what)? {
        n if n <= 0 => Ok(None),
        n => usize::try_from(n).map(Some).map_err(|_| invalid(&e.value, format!("{what} is out of range"))),
    }
}

/// An account's `limits {}`.
pub(crate) static LIMITS: Block<AccountLimits> = Block {
    unsupported: UNSUPPORTED_LIMITS,
    steps: &[
        Key(
            &Opt::new(&["max_connections", "max_conn"], Ty::Integer, Reload::Yes)
                .means("Live connections of the account on this server; 0 or -1 = no limit")
                .default("no limit"),
            |e, l, _| limit(e, "max_connections").map(|n| l.max_connections = n),
        ),
        Key(
            &Opt::new(&["max_subscriptions", "max_subs"], Ty::Integer, Reload::Yes)
                .means("Subscriptions per connection of the account; 0 or -1 = no limit")
                .default("no limit"),
            |e, l, _| limit(e, "max_subscriptions").map(|n| l.max_subscriptions = n),
        ),
        Key(
            &Opt::new(&["max_payload", "max_pay"], Ty::Size, Reload::Yes)
                .means("Largest message a connection of the account may publish; 0 or -1 = no limit")
                .default("no limit"),
            |e, l, _| limit(e, "max_payload").map(|n| l.max_payload = n),
        ),
        Key(
            &Opt::new(&["max_leafnodes", "max_leafs"], Ty::Integer, Reload::Yes)
                .means("Leaf connections bound to the account on this server; 0 or -1 = no limit")
                .default("no limit"),
            |e, l, _| limit(e, "max_leafnodes").map(|n| l.max_leafnodes = n),
        ),
        Key(
            &Opt::new(&["max_pending_responses"], Ty::Integer, Reload::Yes)
                .means(
                    "Requests through one service import waiting for their response; past it the \
                    oldest is forgotten",
                )
                .default("65536")
                .differs("warden only"),
            |e, l, _| section::count(&e.value, "max_pending_responses", 1).map(|n| l.max_pending_responses = n),
        ),
        Key(
            &Opt::new(&["rate_limit"], Ty::Block(&super::rate::RATE_LIMIT), Reload::Yes)
                .means("How fast the account's connections on this server may publish, together")
                .default("no limit")
                .differs("warden only"),
            |e, l, _| super::rate::read(&e.value, "account rate_limit").map(|r| l.rate_limit = Some(r)),
        ),
    ],
};

/// What one export is read into.
pub(crate) struct ExportB {
    /// The export, where a missing subject is reported.
    at: Pos,
    subject: String,
    is_service: bool,
    accounts: Option<Vec<String>>,
    response: ResponseType,
    threshold: Duration,
    allow_trace: bool,
}

/// `{stream: S, accounts: [..]}` or `{service: S, accounts, response, threshold}`.
fn export(value: &Value) -> Result<Export, ConfigError> {
    let mut b = ExportB {
        at: value.pos.clone(),
        subject: String::new(),
        is_service: false,
        accounts: None,
        response: ResponseType::Singleton,
        threshold: DEFAULT_RESPONSE_THRESHOLD,
        allow_trace: false,
    };
    EXPORT.read_value("an export", value, &mut b)?;
    let kind = match b.is_service {
        true => ExportKind::Service { response: b.response, threshold: b.threshold },
        false => ExportKind::Stream,
    };
    Ok(Export {
        subject: b.subject,
        kind,
        accounts: b.accounts,
        allow_trace: b.allow_trace,
        pos: value.pos.to_string(),
    })
}

/// One element of an account's `exports`: a stream or a service, and the
/// response settings only a service has.
pub(crate) static EXPORT: Block<ExportB> = Block {
    unsupported: UNSUPPORTED_EXPORT,
    steps: &[
        Check(|b, f| match (f.get("stream"), f.get("service")) {
            (Some(st), Some(sv)) => {
                let (first, second) = if st.key_pos.line <= sv.key_pos.line { (st, sv) } else { (sv, st) };
                Err(conflict(second, &format!("Detected {} but already saw a {}", second.key, first.key)))
            }
            (None, None) => Err(ConfigError::at(ErrorKind::Invalid, &b.at, "an export needs `stream` or `service`")),
            _ => Ok(()),
        }),
        Key(
            &Opt::new(&["stream"], Ty::String, Reload::Yes)
                .means("The subject (wildcards allowed) of a stream export; or `service`"),
            |e, b, _| pattern(&e.value, "stream").map(|s| b.subject = s),
        ),
        Key(
            &Opt::new(&["service"], Ty::String, Reload::Yes)
                .means("The subject (wildcards allowed) of a service export; or `stream`"),
            |e, b, _| {
                b.is_service = true;
                pattern(&e.value, "service").map(|s| b.subject = s)
            },
        ),
        Check(|b, f| match (b.is_service, f.get("response").or(f.get("threshold"))) {
            (false, Some(e)) => Err(conflict(e, "Detected response directive on non-service")),
            _ => Ok(()),
        }),
        Key(
            &Opt::new(&["allow_trace"], Ty::Bool, Reload::Yes)
                .means("Message traces (`Nats-Trace-Dest`) may follow requests into this service")
                .default("false"),
            |e, b, _| {
                if !b.is_service {
                    return Err(conflict(e, "Detected allow_trace directive on non-service"));
                }
                section::boolean(&e.value, "allow_trace").map(|a| b.allow_trace = a)
            },
        ),
        Key(
            &Opt::new(&["accounts"], Ty::Strings, Reload::Yes)
                .means("The accounts that may import it")
                .default("every account (a public export; warned)"),
            |e, b, _| {
                let mut names = Vec::new();
                for item in section::array(&e.value, "export accounts")? {
                    names.push(section::word(item, "an account name")?.to_owned());
                }
                b.accounts = Some(names);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["response", "response_type"], Ty::Text("`singleton`, `stream` or `chunked`"), Reload::Yes)
                .means("How a service answers: one response, or many until `threshold`")
                .default("singleton"),
            |e, b, _| {
                b.response = match section::string(&e.value, "response")?.to_ascii_lowercase().as_str() {
                    "single" | "singleton" => ResponseType::Singleton,
                    "stream" => ResponseType::Stream,
                    "chunk" | "chunked" => ResponseType::Chunked,
                    other => return Err(invalid(&e.value, format!("Unknown response type: {other:?}"))),
                };
                Ok(())
            },
        ),
        Key(
            &Opt::new(
                &["threshold", "response_threshold", "response_max_time", "response_time"],
                Ty::Duration,
                Reload::Yes,
            )
            .means("How long a service request may wait for (more) responses")
            .default("2m"),
            |e, b, _| {
                if !matches!(e.value.kind, Kind::String(_)) {
                    return Err(ConfigError::at(
                        ErrorKind::Type,
                        &e.value.pos,
                        "Expected response threshold to be a parseable time duration",
                    ));
                }
                let (d, _) = section::nonzero_duration(&e.value, "response threshold", Bare::No)?;
                b.threshold = d;
                Ok(())
            },
        ),
    ],
};

/// What one import is read into.
pub(crate) struct ImportB {
    /// The import, where a missing source is reported.
    at: Pos,
    account: String,
    subject: String,
    is_service: bool,
    /// `to`, the local subject.
    to: Option<String>,
    /// Where a stream's messages land, from `prefix` or `to`.
    local: LocalSubject,
    allow_trace: bool,
    share: bool,
    warnings: Vec<String>,
}

/// `{stream: {account, subject}, prefix | to}` or `{service: {account, subject}, to, share}`.
fn import(value: &Value, warnings: &mut Vec<String>) -> Result<Import, ConfigError> {
    let mut b = ImportB {
        at: value.pos.clone(),
        account: String::new(),
        subject: String::new(),
        is_service: false,
        to: None,
        local: LocalSubject::Same,
        allow_trace: false,
        share: false,
        warnings: Vec::new(),
    };
    IMPORT.read_value("an import", value, &mut b)?;
    warnings.append(&mut b.warnings);
    let kind = match b.is_service {
        true => ImportKind::Service { to: b.to.unwrap_or_else(|| b.subject.clone()), share: b.share },
        false => ImportKind::Stream { local: b.to.map_or(b.local, LocalSubject::To) },
    };
    Ok(Import { account: b.account, subject: b.subject, kind, allow_trace: b.allow_trace, pos: value.pos.to_string() })
}

/// One element of an account's `imports`. `to` is read before `prefix`,
/// which it excludes on a stream; what belongs to the other kind of
/// import is refused before either is read.
pub(crate) static IMPORT: Block<ImportB> = Block {
    unsupported: &[],
    steps: &[
        Check(|b, f| match (f.get("stream"), f.get("service")) {
            (Some(_), Some(e)) => Err(conflict(e, "Detected service but already saw a stream")),
            (None, None) => Err(ConfigError::at(ErrorKind::Invalid, &b.at, "an import needs `stream` or `service`")),
            _ => Ok(()),
        }),
        Key(
            &Opt::new(&["stream"], Ty::Block(&IMPORT_SOURCE), Reload::Yes)
                .means("The exporting account and subject of a stream; or `service`"),
            |e, b, _| import_source(&e.value, b),
        ),
        Key(
            &Opt::new(&["service"], Ty::Block(&IMPORT_SOURCE), Reload::Yes)
                .means("The exporting account and subject of a service; or `stream`"),
            |e, b, _| {
                b.is_service = true;
                import_source(&e.value, b)
            },
        ),
        Key(
            &Opt::new(&["to"], Ty::String, Reload::Yes)
                .means(
                    "The local subject: where this account sends a service's requests, or where a \
                    stream's messages land",
                )
                .default("the exported subject"),
            |e, b, _| pattern(&e.value, "to").map(|s| b.to = Some(s)),
        ),
        Check(|b, f| match (b.is_service, f.get("prefix"), f.get("share")) {
            (true, Some(e), _) => Err(conflict(e, "a service import takes `to`, not `prefix`")),
            (false, _, Some(e)) => Err(conflict(e, "`share` applies to service imports only")),
            _ => Ok(()),
        }),
        Key(
            &Opt::new(&["prefix"], Ty::String, Reload::Yes)
                .means("A stream's messages land under `prefix.`; not with `to`"),
            |e, b, f| {
                if let Some(to) = f.get("to") {
                    return Err(conflict(to, "Stream import can not have a 'prefix' and a 'to' property"));
                }
                let p = section::word(&e.value, "prefix")?;
                let p = p.strip_suffix('.').unwrap_or(p);
                if !crate::subject::is_valid_literal(p.as_bytes()) {
                    return Err(invalid(&e.value, "a stream import prefix must be a subject without wildcards"));
                }
                b.local = LocalSubject::Prefix(p.to_owned());
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["allow_trace"], Ty::Bool, Reload::Yes)
                .means("Message traces (`Nats-Trace-Dest`) may follow a stream import into this account")
                .default("false"),
            |e, b, _| {
                if b.is_service {
                    return Err(conflict(e, "Detected allow_trace directive on a non-stream"));
                }
                section::boolean(&e.value, "allow_trace").map(|a| b.allow_trace = a)
            },
        ),
        Key(
            &Opt::new(&["share"], Ty::Bool, Reload::Yes)
                .means(
                    "Requests carry who made them into the service: `Nats-Request-Info` with the requester's \
                    connection id, address, user, name, library and start, and this server's name and \
                    cluster (without: only its account and RTT, as every imported request)",
                )
                .default("false")
                .differs("`jwt`, `issuer_key`, `name_tag` and `tags` are not included"),
            |e, b, _| section::boolean(&e.value, "share").map(|s| b.share = s),
        ),
    ],
};

/// `{account: NAME, subject: S}`, the source of an import.
fn import_source(value: &Value, import: &mut ImportB) -> Result<(), ConfigError> {
    let mut b = Source { at: value.pos.clone(), account: String::new(), subject: String::new() };
    IMPORT_SOURCE.read_value("an import source", value, &mut b)?;
    (import.account, import.subject) = (b.account, b.subject);
    Ok(())
}

/// What an import's source is read into.
pub(crate) struct Source {
    /// The source, where a missing part is reported.
    at: Pos,
    account: String,
    subject: String,
}

/// The `stream` or `service` of an import: both parts are required.
pub(crate) static IMPORT_SOURCE: Block<Source> = Block {
    unsupported: &[],
    steps: &[
        Check(|b, f| match (f.get("account"), f.get("subject")) {
            (Some(_), Some(_)) => Ok(()),
            _ => Err(ConfigError::at(ErrorKind::Invalid, &b.at, "Expect an account name and a subject")),
        }),
        Key(&Opt::new(&["account"], Ty::String, Reload::Yes).means("The exporting account; required"), |e, b, _| {
            section::word(&e.value, "account").map(|a| b.account = a.to_owned())
        }),
        Key(&Opt::new(&["subject"], Ty::String, Reload::Yes).means("The exported subject; required"), |e, b, _| {
            pattern(&e.value, "subject").map(|s| b.subject = s)
        }),
    ],
};

/// A valid subject pattern.
fn pattern(value: &Value, what: &str) -> Result<String, ConfigError> {
    let s = section::string(value, what)?;
    if !is_valid_pattern(s.as_bytes()) {
        return Err(invalid(value, format!("subject {s:?} is not a valid subject")));
    }
    Ok(s.to_owned())
}
