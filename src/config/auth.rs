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
use super::options::{Authorization, NkeyUser, Permissions, RateLimit, ResponsePermission, SubjectRules, User};
use super::schema::{Block, Found, Keys, Opt, Reload, Step::Check, Step::Key, Ty};
use super::section::{self, Bare};
use super::value::{Entry, Kind, Pos, Value};
use crate::nkeys::{KeyType, PublicKey};

/// nats-server's `authorization` keys that warden does not implement.
const UNSUPPORTED_AUTH: &[&str] = &["nkeys", "accounts", "no_auth_user"];
/// nats-server's users-entry keys that warden does not implement.
const UNSUPPORTED_USER: &[&str] = &["authorization", "account", "proxy_required"];
/// nats-server's permissions keys that warden does not implement.
const UNSUPPORTED_PERMISSIONS: &[&str] = &["import", "export"];

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

/// What `authorization {}` is read into.
pub(crate) struct Auth {
    /// The `authorization` key, where a block that requires nothing is
    /// reported.
    at: Pos,
    /// Whether `tls { verify_and_map }` is on, the only case in which a
    /// users entry may have no password.
    maps_certificates: bool,
    /// Whether users of accounts log in, so the block may hold only its
    /// settings.
    accounts_log_in: bool,
    auth: Authorization,
    warnings: Vec<String>,
}

/// `authorization { ... }` of the client listener.
pub(crate) fn authorization(
    entry: &Entry,
    maps_certificates: bool,
    accounts_log_in: bool,
    warnings: &mut Vec<String>,
) -> Result<Authorization, ConfigError> {
    let mut b = Auth {
        at: entry.key_pos.clone(),
        maps_certificates,
        accounts_log_in,
        auth: Authorization::default(),
        warnings: Vec::new(),
    };
    AUTHORIZATION.read_value("authorization", &entry.value, &mut b)?;
    warnings.append(&mut b.warnings);
    Ok(b.auth)
}

/// `authorization {}`: the credentials are read before the checks that
/// combine them, so a bad value is reported before a combination.
pub(crate) static AUTHORIZATION: Block<Auth> = Block {
    unsupported: UNSUPPORTED_AUTH,
    steps: &[
        Key(
            &Opt::new(&["token"], Ty::Secret, Reload::Yes)
                .means("The one token every client logs in with; not with a user or `users`"),
            |e, b, _| {
                let token = checked_secret(&e.value, "token", "the authorization token", &mut b.warnings)?;
                b.auth.token = Some(token);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["user", "username"], Ty::String, Reload::Yes)
                .means("The one user every client logs in as, with `password`; not with `users`"),
            |e, b, _| section::user_name(&e.value, "user").map(|u| b.auth.user = Some(u.to_owned())),
        ),
        Key(&Opt::new(&["password", "pass"], Ty::Secret, Reload::Yes).means("Its password"), |e, b, f| {
            if variable_only_password(e, f) {
                b.warnings.push(format!(
                    "{}: `{}` in authorization is used as a variable ($-reference), not as a password: \
                    the users array has its own (nats-server ignores a lone password beside users)",
                    e.key_pos, e.key
                ));
                return Ok(());
            }
            let whose = match &b.auth.user {
                Some(name) => format!("the password of user \"{name}\""),
                None => "the authorization password".to_owned(),
            };
            b.auth.password = Some(checked_secret(&e.value, "password", &whose, &mut b.warnings)?);
            Ok(())
        }),
        Key(
            &Opt::new(&["timeout"], Ty::Seconds, Reload::Restart)
                .means("Time a client has from connecting (after TLS) to logging in")
                .default("2s; 3s with `tls`"),
            |e, b, _| {
                let (d, _) = section::nonzero_duration(&e.value, "authorization timeout", Bare::FractionalSeconds)?;
                b.auth.timeout = Some(d);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["failure_delay_max"], Ty::Seconds, Reload::Restart)
                .means("Longest delay repeated login failures from one address earn; `0s` turns the throttle off")
                .default("5s")
                .differs("warden only"),
            |e, b, _| {
                let (d, _) = section::duration(&e.value, "failure_delay_max", Bare::FractionalSeconds)?;
                b.auth.failure_delay_max = Some(d);
                Ok(())
            },
        ),
        Key(
            &Opt::new(
                &["default_permissions", "default_permission", "permissions"],
                Ty::Block(&PERMISSIONS),
                Reload::Yes,
            )
            .means("The permissions of users without their own")
            .default("everything allowed"),
            |e, b, _| permissions(&e.value, "default_permissions").map(|p| b.auth.default_permissions = Some(p)),
        ),
        Key(
            &Opt::new(&["users"], Ty::List(&USER), Reload::Yes)
                .means("The users: each a name and password, or an nkey, with permissions"),
            |e, b, _| {
                let UsersList { users, nkeys } = users_list(&e.value, b.maps_certificates, &mut b.warnings)?;
                (b.auth.users, b.auth.nkeys) = (users, nkeys);
                Ok(())
            },
        ),
        Check(|_, f| match (f.get("auth_callout"), f.get("http_authorizer")) {
            (Some(_), Some(h)) => Err(conflict(h, "auth_callout and http_authorizer cannot both be set")),
            _ => Ok(()),
        }),
        Key(
            &Opt::new(&["auth_callout", "auth_hook"], Ty::Block(&super::delegation::CALLOUT), Reload::Refused)
                .means(
                    "An auth callout service (nats-server 2.10) admits the clients the configured \
                    users do not",
                )
                .differs("By default configured users log in locally first (`local_first`)"),
            |e, b, _| super::delegation::auth_callout(e).map(|d| b.auth.delegation = Some(d)),
        ),
        Key(
            &Opt::new(&["http_authorizer"], Ty::Block(&super::delegation::HTTP_AUTHORIZER), Reload::Refused)
                .means("An HTTP service (a JSON POST) admits the clients the configured users do not")
                .differs("warden only"),
            |e, b, _| super::delegation::http_authorizer(e).map(|d| b.auth.delegation = Some(d)),
        ),
        // Combinations nats-server refuses, with its messages.
        Check(|_, f| {
            let (token, user, users) = (f.get("token"), f.get("user"), f.get("users"));
            let password = f.get("password").filter(|p| !variable_only_password(p, f));
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
                (Some(u), None) => Err(invalid(&u.value, "authorization user needs a password")),
                (None, Some(p)) => {
                    Err(ConfigError::at(ErrorKind::Invalid, &p.key_pos, "authorization password needs a user"))
                }
                _ => Ok(()),
            }
        }),
        Check(|b, _| {
            let a = &b.auth;
            let nobody = a.token.is_none() && a.user.is_none() && a.users.is_empty() && a.nkeys.is_empty();
            if nobody && !b.accounts_log_in && a.delegation.is_none() {
                return Err(ConfigError::at(
                    ErrorKind::Invalid,
                    &b.at,
                    "authorization sets no token, user or users, so it would not require authentication; add credentials or remove the block",
                ));
            }
            Ok(())
        }),
    ],
};

/// Whether the `password` entry `e` is only a variable: referred to as
/// `$PASS` (nats-server's `test/configs/authorization.conf` defines `PASS`
/// inside `authorization` for its users), beside a `users` array and no
/// `user`. nats-server reads it as the password too and ignores it, since a
/// password without a user logs nobody in; warden reads it as the variable
/// it is used as, and says so.
fn variable_only_password(e: &Entry, f: &Found<'_>) -> bool {
    e.used_as_variable && f.get("users").is_some() && f.get("user").is_none()
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

/// What one users entry is read into.
pub(crate) struct UserB {
    /// The entry, where a missing name or password is reported.
    at: Pos,
    /// Whether the entry may go without a password.
    maps_certificates: bool,
    user: Option<String>,
    password: Option<Secret>,
    nkey: Option<String>,
    permissions: Option<Permissions>,
    tags: Vec<String>,
    rate_limit: Option<RateLimit>,
    allowed_connection_types: Vec<String>,
    warnings: Vec<String>,
}

/// One users entry.
fn user_entry(value: &Value, maps_certificates: bool, warnings: &mut Vec<String>) -> Result<UserEntry, ConfigError> {
    let mut b = UserB {
        at: value.pos.clone(),
        maps_certificates,
        user: None,
        password: None,
        nkey: None,
        permissions: None,
        tags: Vec::new(),
        rate_limit: None,
        allowed_connection_types: Vec::new(),
        warnings: Vec::new(),
    };
    USER.read_value("a users entry", value, &mut b)?;
    warnings.append(&mut b.warnings);
    match (b.nkey, b.user) {
        (Some(nkey), _) => Ok(UserEntry::Nkey(NkeyUser {
            nkey,
            permissions: b.permissions,
            tags: b.tags,
            rate_limit: b.rate_limit,
            allowed_connection_types: b.allowed_connection_types,
        })),
        (None, Some(user)) => Ok(UserEntry::Named(User {
            user,
            password: b.password,
            permissions: b.permissions,
            tags: b.tags,
            rate_limit: b.rate_limit,
            allowed_connection_types: b.allowed_connection_types,
        })),
        (None, None) => Err(no_name(&b.at)),
    }
}

/// One element of `users`. An nkey entry takes no name or password.
/// Without a password a named entry is refused unless client certificates
/// are mapped to users (nats-server would let anyone who sends that user
/// name in).
pub(crate) static USER: Block<UserB> = Block {
    unsupported: UNSUPPORTED_USER,
    steps: &[
        Check(|b, f| match (f.get("user"), f.get("nkey")) {
            (None, None) => Err(no_name(&b.at)),
            _ => Ok(()),
        }),
        Key(
            &Opt::new(&["user", "username"], Ty::String, Reload::Yes).means(
                "The user's name (under `verify_and_map`, the certificate's email, DNS name, URI \
                    or DN; with `spiffe_trust_domain`, its SPIFFE ID); or `nkey`",
            ),
            |e, b, f| {
                nkey_takes_no(e, f)?;
                section::user_name(&e.value, "user").map(|u| b.user = Some(u.to_owned()))
            },
        ),
        Key(
            &Opt::new(&["password", "pass"], Ty::Secret, Reload::Yes).means("Its password").differs(
                "Required unless `tls { verify_and_map }` maps certificates to users \
                    (nats-server lets a user without one in)",
            ),
            |e, b, f| {
                nkey_takes_no(e, f)?;
                let whose = format!("the password of user \"{}\"", b.user.as_deref().unwrap_or_default());
                b.password = Some(checked_secret(&e.value, "password", &whose, &mut b.warnings)?);
                Ok(())
            },
        ),
        Check(|b, f| {
            match (f.get("nkey"), f.get("password"), b.maps_certificates) {
            (None, None, false) => Err(ConfigError::at(
                ErrorKind::Invalid,
                &b.at,
                format!(
                    "user {:?} has no password; a user without one is allowed only when tls {{ verify_and_map: true }} maps client certificates to users",
                    b.user.as_deref().unwrap_or_default()
                ),
            )),
            _ => Ok(()),
        }
        }),
        Key(
            &Opt::new(&["nkey"], Ty::String, Reload::Yes)
                .means("A user public nkey (`U...`): the client signs the server's nonce, no name or password"),
            |e, b, _| public_user_key(&e.value).map(|k| b.nkey = Some(k)),
        ),
        Key(
            &Opt::new(&["permissions", "permission"], Ty::Block(&PERMISSIONS), Reload::Yes)
                .means("The user's permissions")
                .default("`default_permissions`"),
            |e, b, _| {
                let what = match (&b.nkey, &b.user) {
                    (Some(nkey), _) => format!("permissions of nkey user \"{nkey}\""),
                    (None, user) => format!("permissions of user \"{}\"", user.as_deref().unwrap_or_default()),
                };
                permissions(&e.value, &what).map(|p| b.permissions = Some(p))
            },
        ),
        Key(
            &Opt::new(&["tags"], Ty::Strings, Reload::Yes)
                .means("`key:value` strings for `{{tag(key)}}` in permission templates, lower-cased")
                .default("none")
                .differs("warden's own: nats-server has tags only on JWT users"),
            |e, b, _| tags(&e.value).map(|t| b.tags = t),
        ),
        Key(
            &Opt::new(&["rate_limit"], Ty::Block(&super::rate::RATE_LIMIT), Reload::Yes)
                .means("How fast each of the user's connections may publish")
                .default("no limit")
                .differs("warden only"),
            |e, b, _| super::rate::read(&e.value, "user rate_limit").map(|r| b.rate_limit = Some(r)),
        ),
        Key(
            &Opt::new(&["allowed_connection_types", "connection_types", "clients"], Ty::Strings, Reload::Yes)
                .means(
                    "The kinds of connection the user may log in on: `STANDARD`, `WEBSOCKET`, `LEAFNODE`, \
                    `LEAFNODE_WS`, `MQTT`, `MQTT_WS`, `IN_PROCESS` (any case); on any other the login \
                    fails with `Authorization Violation`",
                )
                .default("every kind")
                .differs("warden has no MQTT, in-process or WebSocket leaf connections: those kinds admit nobody"),
            |e, b, _| connection_types(&e.value).map(|t| b.allowed_connection_types = t),
        ),
    ],
};

/// `allowed_connection_types`: a list of nats-server's connection type
/// names (or one), upper-cased. An unknown name is refused with
/// nats-server's message (it refuses the config too).
fn connection_types(value: &Value) -> Result<Vec<String>, ConfigError> {
    let items = match &value.kind {
        Kind::Array(items) => items.iter().collect(),
        _ => vec![value],
    };
    let mut types = Vec::new();
    let mut unknown = Vec::new();
    for item in items {
        let name = section::string(item, "a connection type")?.to_ascii_uppercase();
        if !super::options::CONNECTION_TYPES.contains(&name.as_str()) {
            unknown.push(format!("{name:?}"));
        } else if !types.contains(&name) {
            types.push(name);
        }
    }
    if !unknown.is_empty() {
        return Err(invalid(value, format!("invalid connection types [{}]", unknown.join(" "))));
    }
    Ok(types)
}

/// A user's `tags` (warden): strings such as `team:eng`, for
/// `{{tag(team)}}` in permission templates. Lower-cased, as nats-server
/// does a JWT's tags.
fn tags(value: &Value) -> Result<Vec<String>, ConfigError> {
    let items = match &value.kind {
        Kind::Array(items) => items.iter().collect(),
        _ => vec![value],
    };
    items
        .into_iter()
        .map(|item| match &item.kind {
            Kind::String(tag) if !tag.trim().is_empty() => Ok(tag.trim().to_lowercase()),
            _ => Err(invalid(item, "a tag must be a non-empty string such as \"team:eng\"")),
        })
        .collect()
}

/// A users entry names its user or its nkey.
fn no_name(at: &Pos) -> ConfigError {
    ConfigError::at(ErrorKind::Invalid, at, "a users entry needs `user` or `nkey`")
}

/// A user's public nkey (`U...`), checked here so a typo is refused where
/// it stands rather than when the server builds its users.
pub(crate) fn public_user_key(value: &Value) -> Result<String, ConfigError> {
    let text = section::word(value, "nkey")?;
    if PublicKey::parse_as(text, KeyType::User).is_err() {
        return Err(invalid(value, "Not a valid public nkey for a user"));
    }
    Ok(text.to_owned())
}

/// An nkey entry logs in by signature, so a name or password beside it
/// (`e`) is a mistake.
pub(crate) fn nkey_takes_no(e: &Entry, f: &Found<'_>) -> Result<(), ConfigError> {
    match f.get("nkey") {
        Some(_) => Err(conflict(e, "Nkey users do not take usernames or passwords")),
        None => Ok(()),
    }
}

/// A permission set `{ publish, subscribe, allow_responses }`.
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
    let mut perms = Permissions::default();
    PERMISSIONS.read("permissions", map, &mut perms)?;
    Ok(perms)
}

/// A permission set. As in nats-server, `allow_responses` without `publish`
/// makes the publish allow list an explicit empty list: the user may
/// publish only replies.
pub(crate) static PERMISSIONS: Block<Permissions> = Block {
    unsupported: UNSUPPORTED_PERMISSIONS,
    steps: &[
        Key(
            &Opt::new(&["publish", "pub"], Ty::Or("subject or list of subjects", &SUBJECT_RULES), Reload::Yes)
                .means("Subjects the user may publish to; a subject or list is an allow list")
                .default("all subjects")
                .differs("An empty map is refused (it would restrict nothing)"),
            |e, p, _| subject_rules(&e.value, Direction::Publish).map(|r| p.publish = Some(r)),
        ),
        Key(
            &Opt::new(&["subscribe", "sub"], Ty::Or("subject or list of subjects", &SUBSCRIBE_RULES), Reload::Yes)
                .means(
                    "Subjects the user may subscribe to (`\"subject queue\"`: only in that queue \
                    group); a subject or list is an allow list",
                )
                .default("all subjects")
                .differs("An empty map is refused (it would restrict nothing)"),
            |e, p, _| subject_rules(&e.value, Direction::Subscribe).map(|r| p.subscribe = Some(r)),
        ),
        Key(
            &Opt::new(
                &["allow_responses", "publish_allow_responses"],
                Ty::Or("boolean", &ALLOW_RESPONSES),
                Reload::Yes,
            )
            .means("May publish to the reply subjects of requests it received; without `publish`, only there")
            .default("false"),
            |e, p, _| response_permission(&e.value).map(|r| p.allow_responses = r),
        ),
        Check(|p, _| {
            if p.allow_responses.is_some() && p.publish.is_none() {
                p.publish = Some(SubjectRules { allow: Some(Vec::new()), deny: None, literal: None });
            }
            Ok(())
        }),
    ],
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Publish,
    Subscribe,
    /// A route's `import` or `export` (`cluster { permissions }`): plain
    /// subjects, no queue groups (nats-server's
    /// `checkClusterPermissionSubjects`), no templates (a route has no
    /// user to fill them from), no `literal`.
    Route(&'static str),
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Publish => "publish",
            Direction::Subscribe => "subscribe",
            Direction::Route(name) => name,
        }
    }
}

/// A route's `import` or `export` rules (`what`): a subject or a list (an
/// allow list), or `{ allow, deny }`, as nats-server reads them.
pub(crate) fn route_rules(value: &Value, what: &'static str) -> Result<SubjectRules, ConfigError> {
    subject_rules(value, Direction::Route(what))
}

/// `allow` of `{ allow, deny }`.
static ALLOW: Opt = Opt::new(&["allow"], Ty::Subjects, Reload::Yes).means("The subjects allowed; any other is denied");
/// `deny` of `{ allow, deny }`.
static DENY: Opt =
    Opt::new(&["deny"], Ty::Subjects, Reload::Yes).means("The subjects denied, even where `allow` covers them");
/// `{ allow, deny }` of `publish` and `subscribe`: read by
/// [`subject_rules`], not as a [`Block`], so that an unknown key gets
/// nats-server's message.
pub(crate) static SUBJECT_RULES: Keys = Keys(&[&ALLOW, &DENY]);
/// `literal` of `subscribe { allow, literal, deny }` (warden's own).
static LITERAL: Opt = Opt::new(&["literal"], Ty::Subjects, Reload::Yes)
    .means("Subjects a SUB may match only with a literal subject: `sensor.*.temp` admits `sensor.12.temp`, not `sensor.*.temp`")
    .differs("warden's own; nats-server cannot refuse a wildcard SUB that an allow pattern covers");
/// `{ allow, literal, deny }` of `subscribe`.
pub(crate) static SUBSCRIBE_RULES: Keys = Keys(&[&ALLOW, &LITERAL, &DENY]);

/// A string or a list (an allow list), or `{ allow, deny }`.
fn subject_rules(value: &Value, dir: Direction) -> Result<SubjectRules, ConfigError> {
    match &value.kind {
        Kind::String(_) | Kind::Array(_) => {
            Ok(SubjectRules { allow: Some(subject_list(value, dir)?), deny: None, literal: None })
        }
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
                let literal = LITERAL.matches(&entry.key);
                let slot = if ALLOW.matches(&entry.key) {
                    &mut rules.allow
                } else if DENY.matches(&entry.key) {
                    &mut rules.deny
                } else if literal && dir == Direction::Subscribe {
                    &mut rules.literal
                } else if literal {
                    return Err(ConfigError::at(
                        ErrorKind::UnknownKey,
                        &entry.key_pos,
                        "`literal` applies to subscribe rules only: every publish subject is literal already",
                    ));
                } else {
                    let permitted = match dir {
                        Direction::Publish | Direction::Route(_) => "'allow' or 'deny'",
                        Direction::Subscribe => "'allow', 'deny' or 'literal' (warden)",
                    };
                    return Err(ConfigError::at(
                        ErrorKind::UnknownKey,
                        &entry.key_pos,
                        format!(
                            "Unknown field name {:?} parsing subject permissions, only {permitted} are permitted",
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
    let bad = || {
        match text.contains("{{") {
        true => ConfigError::at(
            ErrorKind::Invalid,
            &value.pos,
            format!(
                "subject {text:?}: a template must be a whole token, one of {{{{name()}}}}, {{{{subject()}}}}, {{{{account-name()}}}}, {{{{account-subject()}}}}, {{{{tag(key)}}}} or {{{{account-tag(key)}}}}"
            ),
        ),
        false => ConfigError::at(ErrorKind::Invalid, &value.pos, format!("subject {text:?} is not a valid subject")),
    }
    };
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    match (dir, fields.as_slice()) {
        (Direction::Route(_), [subject]) if is_valid_pattern(subject.as_bytes()) => Ok((*subject).to_owned()),
        (Direction::Route(what), _) => Err(ConfigError::at(
            ErrorKind::Invalid,
            &value.pos,
            format!("cluster {what}: subject {text:?} is not a valid subject"),
        )),
        (_, [subject]) if is_permission_subject(subject) => Ok((*subject).to_owned()),
        (Direction::Subscribe, [subject, queue]) if is_permission_subject(subject) => {
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

/// A permission subject: a valid pattern, whose tokens may also be whole
/// template functions (`chat.{{name()}}.>`), filled in per user later.
fn is_permission_subject(subject: &str) -> bool {
    if !subject.contains("{{") && !subject.contains("}}") {
        return is_valid_pattern(subject.as_bytes());
    }
    let mut shape = Vec::with_capacity(subject.len());
    for (i, token) in subject.split('.').enumerate() {
        if i > 0 {
            shape.push(b'.');
        }
        if token.contains("{{") || token.contains("}}") {
            if !crate::subject::is_template_token(token) {
                return false;
            }
            shape.push(b'x');
        } else {
            shape.extend_from_slice(token.as_bytes());
        }
    }
    is_valid_pattern(&shape)
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
    let mut rp = ResponsePermission::default();
    ALLOW_RESPONSES.read("allow_responses", map, &mut rp)?;
    Ok(Some(rp))
}

/// `allow_responses { max, expires }`: how many replies, for how long.
pub(crate) static ALLOW_RESPONSES: Block<ResponsePermission> = Block {
    unsupported: &[],
    steps: &[
        Key(
            &Opt::new(&["max", "max_msgs", "max_messages", "max_responses"], Ty::Integer, Reload::Yes)
                .means("Replies allowed per request; negative = unlimited, 0 = 1")
                .default("1"),
            |e, rp, _| {
                rp.max = match section::integer(&e.value, "allow_responses max")? {
                    n if n < 0 => None,
                    0 => Some(1),
                    n => Some(usize::try_from(n).map_err(|_| invalid(&e.value, "max is out of range"))?),
                };
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["expires", "expiration", "ttl"], Ty::Duration, Reload::Yes)
                .means("How long after the request the replies are allowed")
                .default("2m"),
            |e, rp, _| {
                if !matches!(e.value.kind, Kind::String(_)) {
                    return Err(ConfigError::at(
                        ErrorKind::Type,
                        &e.value.pos,
                        "error parsing expires, not a duration string",
                    ));
                }
                let (d, _) = section::nonzero_duration(&e.value, "allow_responses expires", Bare::No)?;
                rp.expires = d;
                Ok(())
            },
        ),
    ],
};

#[cfg(test)]
mod tests;
