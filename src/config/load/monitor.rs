//! The monitoring listener (`http`, `http_port`, `https`, `https_port`) and
//! `http_authorization`.

use super::{conflict, invalid, Top};
use crate::config::auth;
use crate::config::error::{ConfigError, ErrorKind};
use crate::config::options::HttpAuthorization;
use crate::config::section::{self, Section};
use crate::config::value::Entry;

/// The one entry that configures the monitoring listener, and whether it
/// is HTTPS. nats-server, too, refuses both HTTP and HTTPS.
pub(super) fn monitor_listener<'a>(t: &Top<'a>) -> Result<Option<(&'a Entry, bool)>, ConfigError> {
    let all = [(t.http, false), (t.http_port, false), (t.https, true), (t.https_port, true)];
    let mut set = all.iter().filter_map(|(e, tls)| e.map(|e| (e, *tls)));
    let first = set.next();
    if let (Some((first, _)), Some((other, _))) = (first, set.next()) {
        let message = format!("`{}` already sets the monitoring address; remove one of them", first.key);
        return Err(ConfigError::at(ErrorKind::Conflict, &other.key_pos, message));
    }
    Ok(first)
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
