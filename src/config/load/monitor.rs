//! The monitoring listener (`http`, `http_port`, `https`, `https_port`) and
//! `http_authorization`.

use super::LOOPBACK;
use crate::config::auth;
use crate::config::error::{conflict, invalid, ConfigError, ErrorKind};
use crate::config::options::{HttpAuthorization, HttpOptions, Options};
use crate::config::schema::{Block, Found, Opt, Reload, Step::Check, Step::Key, Ty};
use crate::config::section;
use crate::config::value::{Entry, Pos, Value};
use crate::secret::Secret;

/// The options that each configure the monitoring listener; at most one
/// may be set.
const LISTENERS: [&str; 4] = ["http", "http_port", "https", "https_port"];

/// Why an HTTP and an HTTPS monitoring listener together are refused.
/// nats-server 2.15.1 passes such a config at `-t` but will not start with
/// it ("Can't start monitoring: can't specify both HTTP (8422) and HTTPs
/// (9443) ports", tried on its own `server/configs/listen.conf`); warden
/// says so at check time instead of at start.
pub(crate) const HTTP_AND_HTTPS: &str =
    "can't specify both HTTP and HTTPS monitoring ports (nats-server refuses to start with both, too): keep one";

/// The one entry that configures the monitoring listener, if any.
pub(super) fn one_listener<'a>(f: &Found<'a>) -> Result<Option<&'a Entry>, ConfigError> {
    let mut set = LISTENERS.iter().filter_map(|name| f.get(name));
    let first = set.next();
    if let (Some(first), Some(other)) = (first, set.next()) {
        let https = |e: &Entry| e.key.to_ascii_lowercase().starts_with("https");
        let message = if https(first) != https(other) {
            format!("`{}` and `{}`: {HTTP_AND_HTTPS}", first.key, other.key)
        } else {
            format!("`{}` already sets the monitoring address; remove one of them", first.key)
        };
        return Err(ConfigError::at(ErrorKind::Conflict, &other.key_pos, message));
    }
    Ok(first)
}

/// Reads the monitoring listener from `http`/`https` (an address) or
/// `http_port`/`https_port` (a port on loopback); `tls` for HTTPS.
pub(super) fn listener(e: &Entry, o: &mut Options, tls: bool) -> Result<(), ConfigError> {
    let (host, port) = if e.key.eq_ignore_ascii_case("http") || e.key.eq_ignore_ascii_case("https") {
        section::host_port(&e.value, &e.key.to_ascii_lowercase(), LOOPBACK)?
    } else {
        (LOOPBACK.to_owned(), section::port(&e.value, &e.key)?)
    };
    if tls && o.tls.is_none() {
        return Err(invalid(
            &e.value,
            "https serves monitoring with the `tls {}` certificate, but there is no tls block",
        ));
    }
    o.http = Some(HttpOptions { host, port, tls });
    Ok(())
}

/// What `http_authorization {}` is read into.
pub(super) struct HttpAuth {
    /// The block, where missing credentials are reported.
    at: Pos,
    token: Option<Secret>,
    user: Option<String>,
    password: Option<Secret>,
    warnings: Vec<String>,
}

/// `http_authorization { token }` or `{ user, password }`.
pub(super) fn http_authorization(entry: &Entry, warnings: &mut Vec<String>) -> Result<HttpAuthorization, ConfigError> {
    let mut b = HttpAuth { at: entry.value.pos.clone(), token: None, user: None, password: None, warnings: Vec::new() };
    HTTP_AUTH.read_value("http_authorization", &entry.value, &mut b)?;
    warnings.append(&mut b.warnings);
    match (b.token, b.user, b.password) {
        (Some(token), _, _) => Ok(HttpAuthorization::Token(token)),
        (None, Some(user), Some(password)) => Ok(HttpAuthorization::User { user, password }),
        _ => Err(no_credentials(&b.at)),
    }
}

pub(super) static HTTP_AUTH: Block<HttpAuth> = Block {
    unsupported: &[],
    steps: &[
        Check(|b, f| match (f.get("token"), f.get("user"), f.get("password")) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => Ok(()),
            (Some(t), _, _) => Err(conflict(t, "http_authorization takes a token or a user and password, not both")),
            (None, Some(u), None) => Err(invalid(&u.value, "http_authorization user needs a password")),
            (None, None, Some(p)) => Err(conflict(p, "http_authorization password needs a user")),
            (None, None, None) => Err(no_credentials(&b.at)),
        }),
        Key(
            &Opt::new(&["token"], Ty::Secret, Reload::Restart)
                .means("A bearer token the monitoring endpoints require; or `user` and `password`"),
            |e, b, _| {
                let token = auth::checked_secret(&e.value, "token", "the monitoring token", &mut b.warnings)?;
                b.token = Some(token);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["user", "username"], Ty::String, Reload::Restart)
                .means("The user of HTTP basic authentication"),
            |e, b, _| section::word(&e.value, "user").map(|u| b.user = Some(u.to_owned())),
        ),
        Key(&Opt::new(&["password", "pass"], Ty::Secret, Reload::Restart).means("Its password"), |e, b, _| {
            let whose = format!("the password of monitoring user \"{}\"", b.user.as_deref().unwrap_or_default());
            b.password = Some(auth::checked_secret(&e.value, "password", &whose, &mut b.warnings)?);
            Ok(())
        }),
    ],
};

/// Monitoring is protected by a token or by a user and password.
fn no_credentials(at: &Pos) -> ConfigError {
    ConfigError::at(ErrorKind::Invalid, at, "http_authorization needs a token or a user and password")
}

/// Longest `http_base_path` accepted.
const MAX_BASE_PATH: usize = 256;

/// `http_base_path`, normalised as nats-server does (a leading `/`, no
/// trailing one; `/` alone is no prefix). Only URL path characters that
/// need no escaping, and no `.` or `..` segment, so the prefix matches the
/// request path byte for byte.
pub(super) fn base_path(value: &Value) -> Result<Option<String>, ConfigError> {
    let text = section::word(value, "http_base_path")?;
    let bad = || invalid(value, "http_base_path must be a URL path like /nats (letters, digits, - _ ~ and /)");
    if text.len() > MAX_BASE_PATH {
        return Err(bad());
    }
    let mut path = String::new();
    for segment in text.split('/').filter(|s| !s.is_empty()) {
        let plain = segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_~.".contains(&b));
        if !plain || segment == "." || segment == ".." {
            return Err(bad());
        }
        path.push('/');
        path.push_str(segment);
    }
    Ok((!path.is_empty()).then_some(path))
}
