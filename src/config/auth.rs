//! `authorization { ... }`: credentials, users and permission sets, read
//! strictly (nats-server's `configureAuthorization`, `parseUsers`,
//! `parseUserPermissions`, `parseSubjectPermission`, `parseAllowResponses`).
//!
//! Where warden is stricter than nats-server, fail-closed on purpose: an
//! empty `authorization {}` or `permissions {}` (which would silently grant
//! everything), a user without a password unless certificates map users, and
//! an empty `{ }` subject rule are refused.

use crate::secret::Secret;
use crate::subject::is_valid_pattern;

use super::error::{conflict, invalid, ConfigError, ErrorKind};
use super::options::{Authorization, NkeyUser, Permissions, ResponsePermission, SubjectRules, User};
use super::section::{self, Bare, Section};
use super::value::{Entry, Kind, Pos, Value};
use crate::nkeys::{KeyType, PublicKey};

/// nats-server's `authorization` keys that warden does not implement.
const UNSUPPORTED_AUTH: &[&str] = &["nkeys", "accounts", "no_auth_user"];
/// nats-server's users-entry keys that warden does not implement.
const UNSUPPORTED_USER: &[&str] =
    &["authorization", "allowed_connection_types", "connection_types", "clients", "account"];

/// Whether a stored password is a hash warden can verify rather than plain
/// text: an argon2 PHC string or a bcrypt hash (`$2a$`, `$2b$`, `$2x$`, `$2y$`
/// followed by a two-digit cost).
pub fn is_password_hash(stored: &str) -> bool {
    if ["$argon2id$", "$argon2i$", "$argon2d$"].iter().any(|p| stored.starts_with(p)) {
        return true;
    }
    let b = stored.as_bytes();
    b.len() > 7
        && b.starts_with(b"$2")
        && matches!(b.get(2), Some(b'a' | b'b' | b'x' | b'y'))
        && b.get(3) == Some(&b'$')
        && b.get(4).is_some_and(u8::is_ascii_digit)
        && b.get(5).is_some_and(u8::is_ascii_digit)
        && b.get(6) == Some(&b'$')
}

/// The warning for a plain-text secret.
fn plaintext_warning(pos: &Pos, whose: &str) -> String {
    format!(
        "{pos}: {whose} is stored in plain text; store a hash instead: run `warden passwd` and put its output in the config, quoted"
    )
}

/// A password or token: a non-empty string. Messages never show it.
pub(crate) fn secret(value: &Value, what: &str) -> Result<Secret, ConfigError> {
    match &value.kind {
        Kind::String(s) if s.is_empty() => {
            Err(ConfigError::at(ErrorKind::Invalid, &value.pos, format!("{what} must not be empty")))
        }
        Kind::String(s) => Ok(Secret::new(s.clone())),
        _ => Err(ConfigError::at(
            ErrorKind::Type,
            &value.pos,
            format!("{what} must be a quoted string, found {}", value.describe()),
        )),
    }
}

/// A secret, with a warning pushed when it is not a hash.
pub(crate) fn checked_secret(
    value: &Value,
    what: &str,
    whose: &str,
    warnings: &mut Vec<String>,
) -> Result<Secret, ConfigError> {
    let secret = secret(value, what)?;
    if !is_password_hash(secret.expose()) {
        warnings.push(plaintext_warning(&value.pos, whose));
    }
    Ok(secret)
}

/// `authorization { ... }` of the client listener. `maps_certificates`:
/// whether `tls { verify_and_map }` is on, the only case in which a users
/// entry may have no password.
pub(crate) fn authorization(
    entry: &Entry,
    maps_certificates: bool,
    accounts_log_in: bool,
    warnings: &mut Vec<String>,
) -> Result<Authorization, ConfigError> {
    let map = section::map(&entry.value, "authorization")?;
    let mut s = Section::new("authorization", map);
    let mut auth = Authorization::default();

    let token = s.get(&["token"])?;
    let user = s.get(&["user", "username"])?;
    let password = s.get(&["password", "pass"])?;
    let timeout = s.get(&["timeout"])?;
    let failure_delay = s.get(&["failure_delay_max"])?;
    let users = s.get(&["users"])?;
    let defaults = s.get(&["default_permissions", "default_permission", "permissions"])?;
    let callout = s.get(&["auth_callout", "auth_hook"])?;
    let http = s.get(&["http_authorizer"])?;
    s.finish(UNSUPPORTED_AUTH)?;

    if let Some(e) = token {
        auth.token = Some(checked_secret(&e.value, "token", "the authorization token", warnings)?);
    }
    if let Some(e) = user {
        auth.user = Some(section::word(&e.value, "user")?.to_owned());
    }
    if let Some(e) = password {
        let whose = match &auth.user {
            Some(name) => format!("the password of user \"{name}\""),
            None => "the authorization password".to_owned(),
        };
        auth.password = Some(checked_secret(&e.value, "password", &whose, warnings)?);
    }
    if let Some(e) = timeout {
        let (d, _) = section::duration(&e.value, "authorization timeout", Bare::FractionalSeconds)?;
        if d.is_zero() {
            return Err(invalid(&e.value, "authorization timeout must be more than zero"));
        }
        auth.timeout = Some(d);
    }
    if let Some(e) = failure_delay {
        let (d, _) = section::duration(&e.value, "failure_delay_max", Bare::FractionalSeconds)?;
        auth.failure_delay_max = Some(d);
    }
    if let Some(e) = defaults {
        auth.default_permissions = Some(permissions(&e.value, "default_permissions")?);
    }
    if let Some(e) = users {
        let UsersList { users, nkeys } = users_list(&e.value, maps_certificates, warnings)?;
        (auth.users, auth.nkeys) = (users, nkeys);
    }

    auth.delegation = match (callout, http) {
        (Some(_), Some(h)) => return Err(conflict(h, "auth_callout and http_authorizer cannot both be set")),
        (Some(e), None) => Some(super::delegation::auth_callout(e)?),
        (None, Some(e)) => Some(super::delegation::http_authorizer(e)?),
        (None, None) => None,
    };

    // Combinations nats-server refuses, with its messages.
    let single = user.or(password);
    if let (Some(t), Some(_)) = (token, single) {
        return Err(conflict(t, "Cannot have a user/pass and token"));
    }
    if let (Some(u), Some(_)) = (users, single) {
        return Err(conflict(u, "Can not have a single user/pass and a users array"));
    }
    if let (Some(u), Some(_)) = (users, token) {
        return Err(conflict(u, "Can not have a token and a users array"));
    }
    match (user, password) {
        (Some(u), None) => {
            return Err(invalid(&u.value, "authorization user needs a password"));
        }
        (None, Some(p)) => {
            return Err(ConfigError::at(ErrorKind::Invalid, &p.key_pos, "authorization password needs a user"));
        }
        _ => {}
    }
    let nobody = token.is_none() && user.is_none() && auth.users.is_empty() && auth.nkeys.is_empty();
    if nobody && !accounts_log_in && auth.delegation.is_none() {
        return Err(ConfigError::at(
            ErrorKind::Invalid,
            &entry.key_pos,
            "authorization sets no token, user or users, so it would not require authentication; add credentials or remove the block",
        ));
    }
    Ok(auth)
}

/// A users entry: a user name or an nkey.
enum UserEntry {
    Named(User),
    Nkey(NkeyUser),
}

/// A `users` list, split by how each entry logs in.
pub(crate) struct UsersList {
    /// Entries with a user name.
    pub(crate) users: Vec<User>,
    /// Entries with an nkey.
    pub(crate) nkeys: Vec<NkeyUser>,
}

/// `users = [ {user, password, permissions} | {nkey, permissions}, ... ]`;
/// names and nkeys must be unique.
pub(crate) fn users_list(
    value: &Value,
    maps_certificates: bool,
    warnings: &mut Vec<String>,
) -> Result<UsersList, ConfigError> {
    let items = section::array(value, "users")?;
    let (mut users, mut nkeys): (Vec<User>, Vec<NkeyUser>) = (Vec::new(), Vec::new());
    for item in items {
        let duplicate =
            |what: &str| ConfigError::at(ErrorKind::Conflict, &item.pos, format!("Duplicate {what} detected"));
        match user_entry(item, maps_certificates, warnings)? {
            UserEntry::Named(user) => {
                if users.iter().any(|u| u.user == user.user) {
                    return Err(duplicate(&format!("user {:?}", user.user)));
                }
                users.push(user);
            }
            UserEntry::Nkey(user) => {
                if nkeys.iter().any(|u| u.nkey == user.nkey) {
                    return Err(duplicate(&format!("nkey {:?}", user.nkey)));
                }
                nkeys.push(user);
            }
        }
    }
    Ok(UsersList { users, nkeys })
}

/// One users entry. Without a password it is refused unless client
/// certificates are mapped to users (nats-server would let anyone who sends
/// that user name in).
fn user_entry(value: &Value, maps_certificates: bool, warnings: &mut Vec<String>) -> Result<UserEntry, ConfigError> {
    let map = section::map(value, "a users entry")?;
    let mut s = Section::new("a users entry", map);
    let name = s.get(&["user", "username"])?;
    let password = s.get(&["password", "pass"])?;
    let nkey = s.get(&["nkey"])?;
    let perms = s.get(&["permissions", "permission"])?;
    s.finish(UNSUPPORTED_USER)?;
    if let Some(nkey) = nkey {
        if let Some(e) = name.or(password) {
            return Err(conflict(e, "Nkey users do not take usernames or passwords"));
        }
        let text = section::word(&nkey.value, "nkey")?;
        if PublicKey::parse_as(text, KeyType::User).is_err() {
            return Err(invalid(&nkey.value, "Not a valid public nkey for a user"));
        }
        let permissions = match perms {
            Some(e) => Some(permissions(&e.value, &format!("permissions of nkey user \"{text}\""))?),
            None => None,
        };
        return Ok(UserEntry::Nkey(NkeyUser { nkey: text.to_owned(), permissions }));
    }
    let Some(name) = name else {
        return Err(invalid(value, "a users entry needs `user` or `nkey`"));
    };
    let user = section::word(&name.value, "user")?.to_owned();
    let password = match password {
        Some(e) => Some(checked_secret(
            &e.value,
            "password",
            &format!("the password of user \"{user}\""),
            warnings,
        )?),
        None if maps_certificates => None,
        None => {
            return Err(invalid(
                value,
                format!("user {user:?} has no password; a user without one is allowed only when tls {{ verify_and_map: true }} maps client certificates to users"),
            ))
        }
    };
    let permissions = match perms {
        Some(e) => Some(permissions(&e.value, &format!("permissions of user \"{user}\""))?),
        None => None,
    };
    Ok(UserEntry::Named(User { user, password, permissions }))
}

/// A permission set `{ publish, subscribe, allow_responses }`.
///
/// As in nats-server, `allow_responses` without `publish` makes the publish
/// allow list an explicit empty list: the user may publish only replies.
pub(crate) fn permissions(value: &Value, what: &str) -> Result<Permissions, ConfigError> {
    let map = section::map(value, what)?;
    if map.entries.is_empty() {
        return Err(invalid(
            value,
            format!(
                "{what}: an empty permissions map restricts nothing; write the publish/subscribe rules or remove it"
            ),
        ));
    }
    let mut s = Section::new("permissions", map);
    let publish = s.get(&["publish", "pub"])?;
    let subscribe = s.get(&["subscribe", "sub"])?;
    let responses = s.get(&["allow_responses", "publish_allow_responses"])?;
    s.finish(&["import", "export"])?;
    let mut perms = Permissions {
        publish: publish.map(|e| subject_rules(&e.value, Direction::Publish)).transpose()?,
        subscribe: subscribe.map(|e| subject_rules(&e.value, Direction::Subscribe)).transpose()?,
        allow_responses: responses.map(|e| response_permission(&e.value)).transpose()?.flatten(),
    };
    if perms.allow_responses.is_some() && perms.publish.is_none() {
        perms.publish = Some(SubjectRules { allow: Some(Vec::new()), deny: None });
    }
    Ok(perms)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Publish,
    Subscribe,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Publish => "publish",
            Direction::Subscribe => "subscribe",
        }
    }
}

/// A string or a list (an allow list), or `{ allow, deny }`.
fn subject_rules(value: &Value, dir: Direction) -> Result<SubjectRules, ConfigError> {
    match &value.kind {
        Kind::String(_) | Kind::Array(_) => Ok(SubjectRules { allow: Some(subject_list(value, dir)?), deny: None }),
        Kind::Map(map) => {
            if map.entries.is_empty() {
                return Err(invalid(
                    value,
                    format!(
                        "an empty {} map restricts nothing; write `{}: []` to deny everything, or allow/deny rules",
                        dir.name(),
                        dir.name()
                    ),
                ));
            }
            let mut rules = SubjectRules::default();
            for entry in &map.entries {
                let slot = if entry.key.eq_ignore_ascii_case("allow") {
                    &mut rules.allow
                } else if entry.key.eq_ignore_ascii_case("deny") {
                    &mut rules.deny
                } else {
                    return Err(ConfigError::at(
                        ErrorKind::UnknownKey,
                        &entry.key_pos,
                        format!(
                            "Unknown field name {:?} parsing subject permissions, only 'allow' or 'deny' are permitted",
                            entry.key
                        ),
                    ));
                };
                if slot.is_some() {
                    return Err(ConfigError::at(
                        ErrorKind::Conflict,
                        &entry.key_pos,
                        format!("`{}` is set twice in these {} rules", entry.key, dir.name()),
                    ));
                }
                *slot = Some(subject_list(&entry.value, dir)?);
            }
            Ok(rules)
        }
        _ => Err(ConfigError::at(
            ErrorKind::Type,
            &value.pos,
            format!(
                "{} permissions must be a subject, a list of subjects or {{ allow, deny }}, found {}",
                dir.name(),
                value.describe()
            ),
        )),
    }
}

/// A subject or a list of subjects, each validated.
fn subject_list(value: &Value, dir: Direction) -> Result<Vec<String>, ConfigError> {
    match &value.kind {
        Kind::Array(items) => items.iter().map(|v| subject(v, dir)).collect(),
        _ => Ok(vec![subject(value, dir)?]),
    }
}

/// One permission subject. For subscribe it may be `"subject queue"`; it is
/// stored as `subject` or `subject queue` (one space).
fn subject(value: &Value, dir: Direction) -> Result<String, ConfigError> {
    let Kind::String(text) = &value.kind else {
        return Err(ConfigError::at(
            ErrorKind::Type,
            &value.pos,
            format!("a {} subject must be a string, found {}", dir.name(), value.describe()),
        ));
    };
    let bad = || ConfigError::at(ErrorKind::Invalid, &value.pos, format!("subject {text:?} is not a valid subject"));
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    match (dir, fields.as_slice()) {
        (_, [subject]) if is_valid_pattern(subject.as_bytes()) => Ok((*subject).to_owned()),
        (Direction::Subscribe, [subject, queue]) if is_valid_pattern(subject.as_bytes()) => {
            if queue.chars().any(char::is_whitespace) {
                return Err(bad());
            }
            Ok(format!("{subject} {queue}"))
        }
        (Direction::Subscribe, [_, _, _, ..]) => Err(ConfigError::at(
            ErrorKind::Invalid,
            &value.pos,
            format!("subscribe permission {text:?} must be \"subject\" or \"subject queue\""),
        )),
        _ => Err(bad()),
    }
}

/// `allow_responses`: `true`, `false` (none), or `{ max, expires }`.
fn response_permission(value: &Value) -> Result<Option<ResponsePermission>, ConfigError> {
    let map = match &value.kind {
        Kind::Bool(true) => return Ok(Some(ResponsePermission::default())),
        Kind::Bool(false) => return Ok(None),
        Kind::Map(map) => map,
        _ => {
            return Err(ConfigError::at(
                ErrorKind::Type,
                &value.pos,
                format!("allow_responses must be true, false or {{ max, expires }}, found {}", value.describe()),
            ))
        }
    };
    let mut s = Section::new("allow_responses", map);
    let max = s.get(&["max", "max_msgs", "max_messages", "max_responses"])?;
    let expires = s.get(&["expires", "expiration", "ttl"])?;
    s.finish(&[])?;
    let mut rp = ResponsePermission::default();
    if let Some(e) = max {
        let n = section::integer(&e.value, "allow_responses max")?;
        rp.max = match n {
            n if n < 0 => None,
            0 => Some(1),
            n => Some(usize::try_from(n).map_err(|_| invalid(&e.value, "max is out of range"))?),
        };
    }
    if let Some(e) = expires {
        if !matches!(e.value.kind, Kind::String(_)) {
            return Err(ConfigError::at(ErrorKind::Type, &e.value.pos, "error parsing expires, not a duration string"));
        }
        let (d, _) = section::duration(&e.value, "allow_responses expires", Bare::No)?;
        if d.is_zero() {
            return Err(invalid(&e.value, "allow_responses expires must be more than zero"));
        }
        rp.expires = d;
    }
    Ok(Some(rp))
}

#[cfg(test)]
mod tests;
