//! The monitoring listener (`http`, `http_port`, `https`, `https_port`) and
//! `http_authorization`.

use super::{conflict, invalid, LOOPBACK};
use crate::config::auth;
use crate::config::error::{ConfigError, ErrorKind};
use crate::config::options::{HttpAuthorization, HttpOptions, Options};
use crate::config::schema::Found;
use crate::config::section::{self, Section};
use crate::config::value::Entry;

/// The options that each configure the monitoring listener; at most one
/// may be set (nats-server, too, refuses both HTTP and HTTPS).
const LISTENERS: [&str; 4] = ["http", "http_port", "https", "https_port"];

/// The one entry that configures the monitoring listener, if any.
pub(super) fn one_listener<'a>(f: &Found<'a>) -> Result<Option<&'a Entry>, ConfigError> {
    let mut set = LISTENERS.iter().filter_map(|name| f.get(name));
    let first = set.next();
    if let (Some(first), Some(other)) = (first, set.next()) {
        let message = format!("`{}` already sets the monitoring address; remove one of them", first.key);
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

/// `http_authorization { token }` or `{ user, password }`.
pub(super) fn http_authorization(entry: &Entry, warnings: &mut Vec<String>) -> Result<HttpAuthorization, ConfigError> {
    let map = section::map(&entry.value, "http_authorization")?;
    let mut s = Section::new("http_authorization", map);
    let token = s.get(&["token"])?;
    let user = s.get(&["user", "username"])?;
    let password = s.get(&["password", "pass"])?;
    s.finish(&[])?;
    match (token, user, password) {
        (Some(t), None, None) => {
            Ok(HttpAuthorization::Token(auth::checked_secret(&t.value, "token", "the monitoring token", warnings)?))
        }
        (None, Some(u), Some(p)) => {
            let user = section::word(&u.value, "user")?.to_owned();
            let whose = format!("the password of monitoring user \"{user}\"");
            let password = auth::checked_secret(&p.value, "password", &whose, warnings)?;
            Ok(HttpAuthorization::User { user, password })
        }
        (Some(t), _, _) => Err(conflict(t, "http_authorization takes a token or a user and password, not both")),
        (None, Some(u), None) => Err(invalid(&u.value, "http_authorization user needs a password")),
        (None, None, Some(p)) => Err(conflict(p, "http_authorization password needs a user")),
        (None, None, None) => Err(invalid(&entry.value, "http_authorization needs a token or a user and password")),
    }
}
