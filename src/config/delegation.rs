//! `authorization { auth_callout { } }` (nats-server 2.10's `parseAuthCallout`)
//! and warden's `authorization { http_authorizer { } }`: the external
//! service that admits clients, with warden's safety settings.
//!
//! Stricter than nats-server, fail-closed: every `auth_users` entry must be
//! a configured user of the callout account (nats-server only logs the
//! mismatch, and then nobody can run the service), `allowed_accounts` and
//! the callout account must exist, and an HTTP authorizer must be HTTPS
//! unless it is on a loopback address.

use std::net::IpAddr;
use std::path::PathBuf;

use super::error::{invalid, ConfigError, ErrorKind};
use super::options::{DelegateService, Delegation, Options};
use super::schema::{Block, Opt, Reload, Step, Step::Check, Step::Key, Step::Shared, Ty};
use super::section::{self, Bare};
use super::value::{Entry, Pos};
use super::GLOBAL_ACCOUNT;
use crate::nkeys::{CurvePublic, KeyType, PublicKey};

/// Questions outstanding at once by default (each holds one connection's
/// login; a flood of unknown clients waits beyond this, cheaply).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// nats-server's `auth_callout` keys that warden does not implement.
const UNSUPPORTED: &[&str] = &[];

/// What `auth_callout {}` or `http_authorizer {}` is read into.
pub(crate) struct Delegate {
    /// The block's key, where a missing option is reported.
    at: Pos,
    /// Whether the HTTP authorizer's url is https, which `ca_file` needs.
    tls: bool,
    /// Its `service` is the variant of the block being read, so each of
    /// that block's options finds its field there.
    d: Delegation,
}

/// Reads `entry` with `block`, starting from `service` with its defaults.
fn read(
    block: &Block<Delegate>,
    name: &'static str,
    entry: &Entry,
    service: DelegateService,
) -> Result<Delegation, ConfigError> {
    let mut b = Delegate {
        at: entry.key_pos.clone(),
        tls: false,
        d: Delegation {
            service,
            auth_users: Vec::new(),
            allowed_accounts: Vec::new(),
            local_first: true,
            reveal_reason: false,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            timeout: None,
        },
    };
    block.read_value(name, &entry.value, &mut b)?;
    Ok(b.d)
}

/// `auth_callout { issuer, account, auth_users, xkey, allowed_accounts }`.
pub(crate) fn auth_callout(entry: &Entry) -> Result<Delegation, ConfigError> {
    let service = DelegateService::Callout { issuer: String::new(), account: GLOBAL_ACCOUNT.to_owned(), xkey: None };
    read(&CALLOUT, "auth_callout", entry, service)
}

/// `http_authorizer { url, ca_file, timeout, headers, ... }`.
pub(crate) fn http_authorizer(entry: &Entry) -> Result<Delegation, ConfigError> {
    let service = DelegateService::Http { url: String::new(), ca_file: None, headers: Vec::new() };
    read(&HTTP_AUTHORIZER, "http_authorizer", entry, service)
}

/// The settings both services share: warden's safety settings, spliced
/// into each block after its own options. `timeout` is read first, so a
/// config with several mistakes still reports the one it always did.
static SHARED: &[Step<Delegate>] = &[
    Key(
        &Opt::new(&["timeout"], Ty::Seconds, Reload::Refused)
            .means("How long the service's answer may take")
            .default("the client auth timeout"),
        |e, b, _| {
            let (d, _) = section::nonzero_duration(&e.value, "timeout", Bare::FractionalSeconds)?;
            b.d.timeout = Some(d);
            Ok(())
        },
    ),
    Key(
        &Opt::new(&["auth_users", "users"], Ty::Strings, Reload::Refused)
            .means("Users who always log in as configured, never through the service (the service's own)")
            .differs(
                "Under `auth_callout` each must be a user of the callout account (nats-server \
                    only logs a mismatch)",
            ),
        |e, b, _| names(e, "auth_users").map(|n| b.d.auth_users = n),
    ),
    Key(
        &Opt::new(&["allowed_accounts"], Ty::Strings, Reload::Refused)
            .means("With `local_first: false`, the accounts whose users the service decides; empty = all")
            .differs("Each must be a configured account"),
        |e, b, _| names(e, "allowed_accounts").map(|n| b.d.allowed_accounts = n),
    ),
    Key(
        &Opt::new(&["local_first"], Ty::Bool, Reload::Refused)
            .means("Configured users log in as configured; only clients they do not cover go to the service")
            .default("true")
            .differs(
                "warden only: false is nats-server's order (everyone but `auth_users` goes to \
                    the service)",
            ),
        |e, b, _| section::boolean(&e.value, "local_first").map(|l| b.d.local_first = l),
    ),
    Key(
        &Opt::new(&["reveal_reason"], Ty::Bool, Reload::Refused)
            .means("Send the service's refusal reason to the client")
            .default("false")
            .differs("warden only"),
        |e, b, _| section::boolean(&e.value, "reveal_reason").map(|r| b.d.reveal_reason = r),
    ),
    Key(
        &Opt::new(&["max_in_flight"], Ty::Integer, Reload::Refused)
            .means("Questions outstanding at once; more wait, within their auth timeout")
            .default("64")
            .differs("warden only"),
        |e, b, _| section::count(&e.value, "max_in_flight", 1).map(|n| b.d.max_in_flight = n),
    ),
];

/// A list of user or account names.
fn names(e: &Entry, what: &str) -> Result<Vec<String>, ConfigError> {
    section::array(&e.value, what)?.iter().map(|v| section::word(v, what).map(str::to_owned)).collect()
}

/// `auth_callout {}`: who signs the answers and where the service runs.
/// The `issuer` and `auth_users` a callout cannot work without are
/// required before the options after them are read, so their absence is
/// reported before a mistake further down.
pub(crate) static CALLOUT: Block<Delegate> = Block {
    unsupported: UNSUPPORTED,
    steps: &[
        Check(|b, f| f.require("issuer", &b.at, "Authorization callouts require an issuer to be specified")),
        Key(
            &Opt::new(&["issuer"], Ty::String, Reload::Refused)
                .means("The account public key (`A...`) that signs the service's answers; required"),
            |e, b, _| {
                let key = section::word(&e.value, "issuer")?;
                if PublicKey::parse_as(key, KeyType::Account).is_err() {
                    return Err(invalid(
                        &e.value,
                        format!("Expected callout user to be a valid public account nkey, got {key:?}"),
                    ));
                }
                if let DelegateService::Callout { issuer, .. } = &mut b.d.service {
                    key.clone_into(issuer);
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["xkey", "key"], Ty::String, Reload::Refused)
                .means("The service's curve public key (`X...`): requests and answers are encrypted"),
            |e, b, _| {
                let key = section::word(&e.value, "xkey")?;
                if CurvePublic::parse(key).is_err() {
                    return Err(invalid(
                        &e.value,
                        format!("Expected callout xkey to be a valid public xkey, got {key:?}"),
                    ));
                }
                if let DelegateService::Callout { xkey, .. } = &mut b.d.service {
                    *xkey = Some(key.to_owned());
                }
                Ok(())
            },
        ),
        Check(|b, f| f.require("auth_users", &b.at, "Authorization callouts require authorized users to be specified")),
        Key(
            &Opt::new(&["account", "acc"], Ty::String, Reload::Refused)
                .means("The account the service's users are in")
                .default("$G"),
            |e, b, _| {
                let name = section::word(&e.value, "account")?;
                if let DelegateService::Callout { account, .. } = &mut b.d.service {
                    name.clone_into(account);
                }
                Ok(())
            },
        ),
        Shared(SHARED),
    ],
};

/// `http_authorizer {}`: where the service is and how to reach it.
/// Credentials travel in the request, so the url must be https unless it
/// is on loopback.
pub(crate) static HTTP_AUTHORIZER: Block<Delegate> = Block {
    unsupported: &[],
    steps: &[
        Check(|b, f| f.require("url", &b.at, "http_authorizer needs a url")),
        Key(
            &Opt::new(&["url"], Ty::Url, Reload::Refused)
                .means("Where requests are POSTed: `https://...`, or `http://` to a loopback address; required"),
            |e, b, _| {
                let text = section::string(&e.value, "url")?;
                let target = HttpTarget::parse(text).map_err(|why| invalid(&e.value, why))?;
                if !target.tls && !target.is_loopback() {
                    return Err(invalid(
                    &e.value,
                    "http_authorizer url must be https:// (plain http:// only to a loopback address): credentials travel in it",
                ));
                }
                b.tls = target.tls;
                if let DelegateService::Http { url, .. } = &mut b.d.service {
                    text.clone_into(url);
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["ca_file"], Ty::Path, Reload::Refused)
                .means("The roots the service's certificate is checked against (an `https://` url)")
                .default("the system's roots"),
            |e, b, _| {
                if !b.tls {
                    return Err(invalid(&e.value, "ca_file is for an https:// url"));
                }
                let path = PathBuf::from(section::string(&e.value, "ca_file")?);
                if let DelegateService::Http { ca_file, .. } = &mut b.d.service {
                    *ca_file = Some(path);
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["headers"], Ty::Map("header name: value"), Reload::Refused)
                .means("Headers sent with every request (values treated as secrets)"),
            |e, b, _| {
                let mut list = Vec::new();
                for h in &section::map(&e.value, "headers")?.entries {
                    let valid_name = !h.key.is_empty() && h.key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                    if !valid_name {
                        return Err(ConfigError::at(
                            ErrorKind::Invalid,
                            &h.key_pos,
                            "header names are letters, digits and '-'",
                        ));
                    }
                    let value = super::auth::secret(&h.value, "a header value")?;
                    if value.expose().bytes().any(|b| b.is_ascii_control()) {
                        return Err(invalid(&h.value, "header values may not hold control characters"));
                    }
                    list.push((h.key.clone(), value));
                }
                if let DelegateService::Http { headers, .. } = &mut b.d.service {
                    *headers = list;
                }
                Ok(())
            },
        ),
        Shared(SHARED),
    ],
};

/// Where an HTTP authorizer is: scheme, host, port and path of its url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// `https`.
    pub tls: bool,
    /// The host as written (a name, an IPv4 address or `[v6]` without brackets).
    pub host: String,
    /// The port (default 443 or 80).
    pub port: u16,
    /// The path and query (at least `/`).
    pub path: String,
}

impl HttpTarget {
    /// Reads `http[s]://host[:port][/path]`; no user info, no fragment.
    pub fn parse(url: &str) -> Result<HttpTarget, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("url must start with https:// or http://".into());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || path.contains('#') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err("url may not carry user info, a fragment, spaces or control characters".into());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("unclosed '[' in the url's host")?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("url has no host".into());
        }
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or("url port is not a port number")?,
            None if tls => 443,
            None => 80,
        };
        Ok(HttpTarget { tls, host: host.to_owned(), port, path: path.to_owned() })
    }

    /// The url as `warden check` shows it: scheme, host and port only. A
    /// path or query often carries a token (`/hooks/<secret>`,
    /// `?token=...`), so it is masked as the header values are.
    pub fn masked(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let path = if self.path == "/" { "/" } else { "/<redacted>" };
        format!("{scheme}://{host}:{}{path}", self.port)
    }

    /// Whether the host is a loopback address (or `localhost`).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost") || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The checks that need the whole configuration: the callout account and
/// `allowed_accounts` exist, every `auth_users` entry is a user of the
/// callout account, and operator mode is not mixed in.
pub(crate) fn check(o: &Options, authorization: &Entry) -> Result<(), ConfigError> {
    let Some(delegation) = o.authorization.as_ref().and_then(|a| a.delegation.as_ref()) else { return Ok(()) };
    let block = section::map(&authorization.value, "authorization")?
        .entries
        .iter()
        .find(|e| ["auth_callout", "auth_hook", "http_authorizer"].iter().any(|k| e.key.eq_ignore_ascii_case(k)));
    let Some(block) = block else { return Ok(()) };
    let at = |key: &str| -> &Entry {
        section::map(&block.value, "delegation")
            .ok()
            .and_then(|m| m.entries.iter().find(|e| e.key.eq_ignore_ascii_case(key)))
            .unwrap_or(block)
    };
    let fail = |e: &Entry, message: String| Err(ConfigError::at(ErrorKind::Invalid, &e.key_pos, message));
    if o.operator.is_some() {
        return fail(block, "auth_callout in operator mode is configured in the account JWT, which warden does not support yet; remove it from the server config".into());
    }
    let known = |name: &str| name == GLOBAL_ACCOUNT || o.accounts.iter().any(|a| a.name == name);
    for name in &delegation.allowed_accounts {
        if !known(name) {
            return fail(at("allowed_accounts"), format!("allowed_accounts: account {name:?} is not defined"));
        }
    }
    let DelegateService::Callout { account, .. } = &delegation.service else { return Ok(()) };
    if !known(account) {
        return fail(at("account"), format!("auth_callout account {account:?} is not defined in accounts"));
    }
    let auth = o.authorization.as_ref();
    let in_account = |user: &str| {
        if account == GLOBAL_ACCOUNT {
            auth.is_some_and(|a| {
                a.user.as_deref() == Some(user)
                    || a.users.iter().any(|u| u.user == user)
                    || a.nkeys.iter().any(|n| n.nkey == user)
            })
        } else {
            o.accounts
                .iter()
                .filter(|a| &a.name == account)
                .any(|a| a.users.iter().any(|u| u.user == user) || a.nkeys.iter().any(|n| n.nkey == user))
        }
    };
    for user in &delegation.auth_users {
        if !in_account(user) {
            return fail(
                at("auth_users"),
                format!("auth_users: {user:?} is not a user of the callout account {account:?}; the service could not log in"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_strictly() {
        let t = HttpTarget::parse("https://auth.example:8443/v1/check?x=1").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port, t.path.as_str()), (true, "auth.example", 8443, "/v1/check?x=1"));
        let t = HttpTarget::parse("http://127.0.0.1").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str(), t.is_loopback()), (false, 80, "/", true));
        assert_eq!(t.masked(), "http://127.0.0.1:80/");
        let t = HttpTarget::parse("https://[::1]:9000/a").unwrap();
        assert_eq!(t.masked(), "https://[::1]:9000/<redacted>");
        assert_eq!((t.host.as_str(), t.port, t.is_loopback()), ("::1", 9000, true));
        assert!(!HttpTarget::parse("http://10.0.0.1/").unwrap().is_loopback());
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@host/",
            "https://h:0/",
            "https://h:99999/",
            "https://h/a b",
            "https://[::1/",
        ] {
            assert!(HttpTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
