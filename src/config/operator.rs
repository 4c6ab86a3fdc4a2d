//! Operator mode (`operator`, `resolver`, `resolver_preload`), read as
//! nats-server 2.9.10 reads it: the operator JWTs (a path or the JWT
//! itself, one or a list), the memory resolver with preloaded account JWTs,
//! or the directory resolver. Every JWT written in the config is verified
//! here, so a bad one is an error at its position, before anything starts.
//! The account JWTs become accounts later (`auth::operator`); the directory
//! resolver's files are data, read when the server starts.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{invalid, ConfigError, ErrorKind};
use super::options::{OperatorOptions, ResolverOptions};
use super::schema::{Block, Opt, Reload, Step::Check, Step::Key, Ty};
use super::section::{self, Bare};
use super::value::{Entry, Kind, Pos, Value};
use crate::jwt::{self, AccountClaims, OperatorClaims};

/// Most accounts a directory resolver holds unless `limit` says otherwise
/// (nats-server's default).
pub const DEFAULT_RESOLVER_LIMIT: usize = 1000;

/// nats-server's directory resolver keys that warden does not implement:
/// it does not sync stores with other servers (see SECURITY.md).
const UNSUPPORTED_RESOLVER: &[&str] = &["timeout", "ttl", "hard_delete"];

/// The operator JWT of one `operator` entry: the file it names, or the
/// JWT itself (nats-server accepts both).
fn operator_jwt(value: &Value) -> Result<String, ConfigError> {
    let text = section::string(value, "operator")?;
    let token = if text.starts_with("eyJ") {
        text.to_owned()
    } else {
        let contents =
            read_bounded(text).map_err(|e| invalid(value, format!("cannot read operator JWT file {text:?}: {e}")))?;
        jwt::undecorate(&contents).to_owned()
    };
    let operator = jwt::decode::<OperatorClaims>(&token, jwt::now())
        .map_err(|e| invalid(value, format!("operator JWT {text:?}: {e}")))?;
    let own = operator.registered.sub == operator.registered.iss;
    if !own && !operator.nats.signing_keys.contains(&operator.registered.iss) {
        return Err(invalid(value, "operator JWT is signed neither by the operator nor by one of its signing keys"));
    }
    Ok(token)
}

/// A file of at most a JWT's size (a longer one is an error, not a read
/// of whatever the path names).
fn read_bounded(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    let limit = jwt::MAX_TOKEN_LEN as u64 + 4096;
    std::fs::File::open(path)?.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than a JWT file can be"));
    }
    Ok(text)
}

/// The keys that may sign accounts for these operators.
pub fn trusted_keys(operators: &[jwt::Jwt<OperatorClaims>]) -> Vec<String> {
    let mut keys = Vec::new();
    for op in operators {
        if !op.nats.strict_signing_key_usage {
            keys.push(op.registered.sub.clone());
        }
        keys.extend(op.nats.signing_keys.iter().cloned());
    }
    keys
}

/// Decodes operator JWTs already checked at load.
pub fn decode_operators(tokens: &[String]) -> Result<Vec<jwt::Jwt<OperatorClaims>>, jwt::JwtError> {
    tokens.iter().map(|t| jwt::decode::<OperatorClaims>(t, jwt::now())).collect()
}

/// Reads `operator`, `resolver` and `resolver_preload`; `system_account`
/// is the config's, to be checked against the operators'. Returns the
/// options and the system account operator mode uses.
pub(crate) fn operator_mode(
    operator: &Entry,
    resolver: Option<&Entry>,
    preload: Option<&Entry>,
    system_account: Option<&Entry>,
) -> Result<(OperatorOptions, Option<String>), ConfigError> {
    let values: Vec<&Value> = match &operator.value.kind {
        Kind::Array(items) => items.iter().collect(),
        _ => vec![&operator.value],
    };
    if values.is_empty() {
        return Err(invalid(&operator.value, "operator lists no operator JWT"));
    }
    let operators = values.iter().map(|v| operator_jwt(v)).collect::<Result<Vec<_>, _>>()?;
    let decoded = decode_operators(&operators).map_err(|e| invalid(&operator.value, e.to_string()))?;
    let Some(resolver) = resolver else {
        return Err(ConfigError::at(
            ErrorKind::Invalid,
            &operator.key_pos,
            "operators require an account resolver to be configured (resolver: MEMORY, or resolver { type: full, dir: ... })",
        ));
    };
    let resolver_options = resolver_options(resolver)?;
    // The system account: the config's, which must be the operators' when
    // one names one, else the first operator's.
    let named: Vec<&str> = decoded.iter().map(|o| o.nats.system_account.as_str()).filter(|s| !s.is_empty()).collect();
    let system = match system_account {
        Some(e) => {
            let key = section::word(&e.value, "system_account")?;
            if !named.is_empty() && !named.contains(&key) {
                return Err(invalid(&e.value, "system_account in config and operator JWT must be identical"));
            }
            Some(key.to_owned())
        }
        None => decoded.first().map(|o| o.nats.system_account.clone()).filter(|s| !s.is_empty()),
    };
    if let Some(key) = &system {
        if crate::nkeys::PublicKey::parse_as(key, crate::nkeys::KeyType::Account).is_err() {
            let pos = system_account.map_or(&operator.value.pos, |e| &e.value.pos);
            return Err(ConfigError::at(
                ErrorKind::Invalid,
                pos,
                "in operator mode the system account is an account's public nkey",
            ));
        }
    }
    if system.is_none() && matches!(resolver_options, ResolverOptions::Directory { .. }) {
        return Err(invalid(
            &resolver.value,
            "using nats based account resolver - the system account needs to be specified in configuration or the operator jwt",
        ));
    }
    let trusted = trusted_keys(&decoded);
    let mut accounts = Vec::new();
    if let Some(e) = preload {
        if matches!(resolver_options, ResolverOptions::Directory { .. }) {
            return Err(invalid(
                &e.value,
                "resolver_preload is for the MEMORY resolver; a directory resolver reads its dir",
            ));
        }
        let map = section::map(&e.value, "resolver_preload")?;
        for entry in &map.entries {
            if entry.used_as_variable {
                continue;
            }
            let token = section::string(&entry.value, "an account JWT")?;
            let account = jwt::decode::<AccountClaims>(token, jwt::now())
                .map_err(|err| invalid(&entry.value, format!("account JWT of {}: {err}", entry.key)))?;
            if account.registered.sub != entry.key {
                return Err(invalid(
                    &entry.value,
                    format!("the JWT is for account {}, not {}", account.registered.sub, entry.key),
                ));
            }
            if !trusted.contains(&account.registered.iss) {
                return Err(invalid(
                    &entry.value,
                    format!("account JWT of {} is not signed by a trusted operator", entry.key),
                ));
            }
            accounts.push((entry.key.clone(), token.trim().to_owned()));
        }
    }
    Ok((OperatorOptions { operators, resolver: resolver_options, preload: accounts }, system))
}

/// `resolver: MEMORY`, or `resolver { type: full | cache, dir, allow_delete, interval, limit }`.
fn resolver_options(entry: &Entry) -> Result<ResolverOptions, ConfigError> {
    match &entry.value.kind {
        Kind::String(s) if s.eq_ignore_ascii_case("MEMORY") => Ok(ResolverOptions::Memory),
        Kind::String(s) if s.to_ascii_uppercase().starts_with("URL(") => Err(invalid(
            &entry.value,
            "the URL resolver (an account server over HTTP) is not supported; use MEMORY or a directory resolver",
        )),
        Kind::String(s) => {
            Err(invalid(&entry.value, format!("unknown resolver {s:?}: MEMORY or a resolver {{ }} block")))
        }
        Kind::Map(map) => {
            let mut b = Resolver {
                at: entry.value.pos.clone(),
                dir: PathBuf::new(),
                full: true,
                allow_delete: false,
                interval: Duration::from_secs(120),
                limit: DEFAULT_RESOLVER_LIMIT,
            };
            RESOLVER.read("resolver", map, &mut b)?;
            let Resolver { dir, full, allow_delete, interval, limit, .. } = b;
            Ok(ResolverOptions::Directory { dir, full, allow_delete, interval, limit })
        }
        _ => Err(invalid(&entry.value, "resolver must be MEMORY or a resolver { } block")),
    }
}

/// What `resolver {}` is read into.
pub(crate) struct Resolver {
    /// The block, where a missing `dir` is reported.
    at: Pos,
    dir: PathBuf,
    full: bool,
    allow_delete: bool,
    interval: Duration,
    limit: usize,
}

/// The directory resolver: where the account JWTs are and how many.
pub(crate) static RESOLVER: Block<Resolver> = Block {
    unsupported: UNSUPPORTED_RESOLVER,
    steps: &[
        Key(
            &Opt::new(&["type"], Ty::Text("`full` or `cache`"), Reload::Yes)
                .means(
                    "`full` holds every account of the operator; `cache` the ones it was told of, up \
                    to `limit`",
                )
                .default("full"),
            |e, b, _| {
                let t = section::word(&e.value, "type")?;
                b.full = match t {
                    t if t.eq_ignore_ascii_case("full") => true,
                    t if t.eq_ignore_ascii_case("cache") => false,
                    t => return Err(invalid(&e.value, format!("unknown resolver type {t:?}: full or cache"))),
                };
                Ok(())
            },
        ),
        Check(|b, f| f.require("dir", &b.at, "a directory resolver needs `dir`")),
        Key(
            &Opt::new(&["dir"], Ty::Path, Reload::Yes)
                .means("The directory of `<account public key>.jwt` files; required"),
            |e, b, _| section::word(&e.value, "dir").map(|d| b.dir = PathBuf::from(d)),
        ),
        Key(
            &Opt::new(&["allow_delete"], Ty::Bool, Reload::NoEffect)
                .means("Accept requests to delete account JWTs")
                .default("false")
                .differs("Accepted; deletion requests are not implemented"),
            |e, b, _| section::boolean(&e.value, "allow_delete").map(|a| b.allow_delete = a),
        ),
        Key(
            &Opt::new(&["interval"], Ty::Duration, Reload::NoEffect)
                .means("How often stores are synced with other servers")
                .default("2m")
                .differs("Accepted; warden does not sync stores between servers"),
            |e, b, _| section::duration(&e.value, "interval", Bare::No).map(|(d, _)| b.interval = d),
        ),
        Key(&Opt::new(&["limit"], Ty::Integer, Reload::Yes).means("Most accounts held").default("1000"), |e, b, _| {
            section::count(&e.value, "limit", 1).map(|n| b.limit = n)
        }),
    ],
};
