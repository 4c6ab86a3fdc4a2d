//! `leafnodes { ... }`: the port leaf node servers connect to, with this
//! server as their hub.

use super::{tls, LOOPBACK};
use crate::config::auth::{nkey_takes_no, public_user_key};
use crate::config::error::{conflict, invalid, ConfigError, ErrorKind};
use crate::config::options::{
    is_websocket_url, LeafAuthorization, LeafRemote, LeafnodeOptions, NkeyUser, Options, User,
};
use crate::config::schema::{Block, Found, Opt, Reload, Step::Check, Step::Key, Ty};
use crate::config::section::{self, Bare};
use crate::config::value::{Entry, Kind, Pos};

/// nats-server's `leafnodes` keys that warden does not implement yet.
const UNSUPPORTED_LEAFNODES: &[&str] =
    &["reconnect", "reconnect_interval", "tls_map", "proxy_required", "write_deadline"];

/// Why an unauthenticated leaf listener is refused, and the ways out.
pub const UNAUTHENTICATED_LEAFNODES: &str = "leafnodes: leaf nodes log in like clients, and clients need no credentials here: anyone who reaches the leafnode port could read and inject every message. Configure users (authorization, accounts or operator mode) or, on a trusted loopback-only network, `insecure_allow_unauthenticated_leafnodes: true`";

/// How long a hub's INFO may take to arrive (nats-server's default).
const FIRST_INFO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a compression mode other than `off` is refused.
const NO_COMPRESSION: &str = "leafnodes compression: warden does not compress leaf connections; only `off` is accepted (nats-server leafs then connect without compression)";

/// Whether clients (and so leaf nodes, which log in like clients) need
/// credentials under `o`.
pub(super) fn clients_authenticate(o: &Options) -> bool {
    let configured = o.authorization.as_ref().is_some_and(|a| {
        a.token.is_some() || a.user.is_some() || !a.users.is_empty() || !a.nkeys.is_empty() || a.delegation.is_some()
    });
    configured || o.operator.is_some() || o.accounts.iter().any(|a| !a.users.is_empty() || !a.nkeys.is_empty())
}

/// What `leafnodes {}` is read into.
pub(super) struct Leafnodes {
    /// The `leafnodes` key, where a missing listener is reported.
    at: Pos,
    l: LeafnodeOptions,
    warnings: Vec<String>,
}

/// `leafnodes { ... }`.
pub(super) fn read(entry: &Entry, warnings: &mut Vec<String>) -> Result<LeafnodeOptions, ConfigError> {
    let mut b = Leafnodes { at: entry.key_pos.clone(), l: LeafnodeOptions::default(), warnings: Vec::new() };
    LEAFNODES.read_value("leafnodes", &entry.value, &mut b)?;
    warnings.append(&mut b.warnings);
    Ok(b.l)
}

pub(super) static LEAFNODES: Block<Leafnodes> = Block {
    unsupported: UNSUPPORTED_LEAFNODES,
    steps: &[
        Key(
            &Opt::new(&["listen"], Ty::HostPort, Reload::Restart)
                .means("Where leaf nodes connect, instead of `host` and `port`")
                .differs("A missing host is 127.0.0.1 (nats-server: 0.0.0.0)"),
            |e, b, f| {
                if let Some(other) = f.get("host").or(f.get("port")) {
                    return Err(conflict(
                        other,
                        "`listen` already sets the leafnode host and port; remove one of them",
                    ));
                }
                (b.l.host, b.l.port) = section::host_port(&e.value, "leafnodes listen", LOOPBACK)?;
                Ok(())
            },
        ),
        Check(|b, f| match f.get("listen").or(f.get("port")).or(f.get("remotes")) {
            Some(_) => Ok(()),
            None => Err(ConfigError::at(ErrorKind::Invalid, &b.at, "leafnodes needs `listen`, `port` or `remotes`")),
        }),
        Key(
            &Opt::new(&["port"], Ty::Port, Reload::Restart)
                .means("The leafnode port; a block with neither a port nor `remotes` is refused"),
            |e, b, _| section::port(&e.value, "leafnodes port").map(|p| b.l.port = p),
        ),
        Check(|b, f| {
            b.l.accept = f.get("listen").or(f.get("port")).is_some();
            Ok(())
        }),
        Key(
            &Opt::new(&["host", "net"], Ty::String, Reload::Restart)
                .means("The address the leafnode listener binds")
                .default("127.0.0.1")
                .differs("nats-server's default is 0.0.0.0"),
            |e, b, _| section::word(&e.value, "leafnodes host").map(|h| b.l.host = h.to_owned()),
        ),
        Key(
            &Opt::new(&["advertise"], Ty::HostPort, Reload::Restart)
                .means("The `host:port` leafs are told to reconnect to")
                .default("the bound address"),
            |e, b, _| {
                let (host, port) = section::host_port(&e.value, "leafnodes advertise", "")?;
                if host.is_empty() || port == 0 {
                    return Err(invalid(&e.value, "leafnodes advertise must be host:port"));
                }
                b.l.advertise = Some(format!("{host}:{port}"));
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["no_advertise"], Ty::Bool, Reload::Restart)
                .means("Tell leafs no URL of this server")
                .default("false"),
            |e, b, _| section::boolean(&e.value, "no_advertise").map(|n| b.l.no_advertise = n),
        ),
        Key(
            &Opt::new(&["tls"], Ty::Block(&tls::TLS), Reload::Restart)
                .means("TLS for leaf connections")
                .differs("`allow_non_tls` is refused here"),
            |e, b, _| {
                let t = tls::read(&e.value, "leafnodes tls")?;
                if t.allow_non_tls {
                    return Err(invalid(
                        &e.value,
                        "leafnodes tls: allow_non_tls is not supported on the leafnode port",
                    ));
                }
                b.l.tls = Some(t);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["auth_timeout"], Ty::Seconds, Reload::Restart)
                .means("Time a leaf has to log in")
                .default("the client `authorization { timeout }`, else 2s"),
            |e, b, _| {
                let (d, _) = section::nonzero_duration(&e.value, "leafnodes auth_timeout", Bare::FractionalSeconds)?;
                b.l.auth_timeout = Some(d);
                Ok(())
            },
        ),
        // warden does not compress (S2 is where nats-server's pre-auth
        // panics were); a 2.10+ leaf negotiates down to none by itself.
        Key(
            &Opt::new(&["compression"], Ty::Text("`off` or false"), Reload::NoEffect)
                .means("Leaf connection compression")
                .default("off")
                .differs(
                    "warden does not compress: only `off` is accepted (nats-server 2.10+ leafs then \
                    connect uncompressed)",
                ),
            |e, _, _| match &e.value.kind {
                Kind::Bool(false) => Ok(()),
                Kind::String(s) if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("disabled") => Ok(()),
                _ => Err(invalid(&e.value, NO_COMPRESSION)),
            },
        ),
        Key(
            &Opt::new(&["remotes", "remote"], Ty::List(&REMOTE), Reload::Restart)
                .means("The hubs this server connects to as a leaf"),
            |e, b, _| {
                for remote in section::array(&e.value, "leafnodes remotes")? {
                    b.l.remotes.push(read_remote(remote)?);
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["authorization"], Ty::Block(&LEAF_AUTH), Reload::Yes)
                .means("The leafs' own users, instead of the clients'")
                .differs(
                    "A reload rebuilds these users (nats-server refuses to); adding or removing the \
                    whole block is refused",
                ),
            |e, b, _| {
                let maps_certificates = b.l.tls.as_ref().is_some_and(|t| t.verify_and_map);
                let mut auth = LeafAuth {
                    at: e.key_pos.clone(),
                    a: LeafAuthorization::default(),
                    single: LeafUser::with_mapping(maps_certificates),
                    warnings: Vec::new(),
                };
                LEAF_AUTH.read_value("leafnodes authorization", &e.value, &mut auth)?;
                b.warnings.append(&mut auth.warnings);
                b.l.authorization = Some(auth.a);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["min_version"], Ty::Text("`MAJOR.MINOR.PATCH`"), Reload::Restart)
                .means("Leafs reporting an older version (or none) are refused; at least 2.8.0"),
            |e, b, _| {
                let text = section::word(&e.value, "min_version")?;
                match crate::config::parse_version(text) {
                    Some(v) if v >= (2, 8, 0) => {
                        b.l.min_version = Some(v);
                        Ok(())
                    }
                    Some(_) => Err(invalid(&e.value, "leafnodes min_version cannot be lower than 2.8.0")),
                    None => Err(invalid(&e.value, "leafnodes min_version must be MAJOR.MINOR.PATCH")),
                }
            },
        ),
        Key(
            &Opt::new(&["isolate_leafnode_interest", "isolate"], Ty::Bool, Reload::Restart)
                .means("A leaf is not told of other leafs' interest")
                .default("false"),
            |e, b, _| {
                section::boolean(&e.value, "isolate_leafnode_interest").map(|i| b.l.isolate_leafnode_interest = i)
            },
        ),
        Key(
            &Opt::new(&["insecure_allow_unauthenticated_leafnodes"], Ty::Bool, Reload::Restart)
                .means(
                    "Run the leaf listener on a server whose clients need no credentials (trusted \
                    loopback networks)",
                )
                .default("false")
                .differs("warden only: without it such a config is refused"),
            |e, b, _| {
                section::boolean(&e.value, "insecure_allow_unauthenticated_leafnodes")
                    .map(|a| b.l.allow_unauthenticated = a)
            },
        ),
        Key(
            &Opt::new(&["accept_rate"], Ty::Block(&crate::config::accept_rate::ACCEPT_RATE), Reload::Restart)
                .means(
                    "New connections a second the leafnode listener keeps, in all and per peer address; \
                    the excess is closed at accept, before INFO and TLS",
                )
                .default("no limit")
                .differs("warden only"),
            |e, b, _| {
                if !b.l.accept {
                    return Err(invalid(&e.value, "leafnodes accept_rate limits the leafnode listener, but this block has none (no `listen` or `port`)"));
                }
                crate::config::accept_rate::read(&e.value, "leafnodes accept_rate").map(|r| b.l.accept_rate = r)
            },
        ),
        Key(
            &Opt::new(&["proxy_protocol"], Ty::Bool, Reload::Restart)
                .means(
                    "Leaf connections from `trusted_proxies` start with a PROXY protocol header (v1 or v2) \
                    naming the leaf's address, read before INFO and TLS; one from them without it is closed",
                )
                .default("false")
                .differs("nats-server has it only for the client listener; warden needs `trusted_proxies`"),
            |e, b, _| section::boolean(&e.value, "leafnodes proxy_protocol").map(|p| b.l.proxy_protocol = p),
        ),
        Key(
            &Opt::new(&["trusted_proxies"], Ty::Strings, Reload::Restart)
                .means("Addresses or CIDRs of the load balancers whose PROXY protocol header is believed")
                .default("none")
                .differs("warden only"),
            |e, b, _| super::super::websocket::trusted_proxies(&e.value).map(|p| b.l.trusted_proxies = p),
        ),
        Check(|b, f| match (f.get("proxy_protocol"), f.get("trusted_proxies")) {
            (Some(e), _) if b.l.proxy_protocol && (b.l.trusted_proxies.is_empty() || !b.l.accept) => Err(invalid(
                &e.value,
                "leafnodes proxy_protocol needs a listener (`listen` or `port`) and `trusted_proxies: [CIDR, ...]`, \
                the load balancers allowed to name a leaf's address",
            )),
            (_, Some(e)) if !b.l.proxy_protocol => {
                Err(invalid(&e.value, "leafnodes trusted_proxies is used only with `proxy_protocol: true`"))
            }
            _ => Ok(()),
        }),
    ],
};

/// nats-server's remote keys that warden does not implement yet.
const UNSUPPORTED_REMOTE: &[&str] = &["dial_timeout", "proxy", "disabled", "ignore_discovered_servers"];

/// Why `ws_compression: true` is refused.
const NO_WS_COMPRESSION: &str = "leafnode remote ws_compression: warden does not compress WebSocket leaf connections (no permessage-deflate); leave it out or set it to false";

/// One remote (`leafnodes { remotes = [ {...} ] }`).
fn read_remote(value: &crate::config::value::Value) -> Result<LeafRemote, ConfigError> {
    let mut remote = LeafRemote {
        urls: Vec::new(),
        account: None,
        credentials: None,
        nkey: None,
        deny_imports: Vec::new(),
        deny_exports: Vec::new(),
        tls: None,
        first_info_timeout: FIRST_INFO_TIMEOUT,
        hub: false,
        ws_no_masking: false,
    };
    let found = REMOTE.read_value("a leafnode remote", value, &mut remote)?;
    if remote.urls.is_empty() {
        return Err(ConfigError::at(ErrorKind::Invalid, &value.pos, "a leafnode remote needs `url` or `urls`"));
    }
    // As nats-server: a remote dials a hub's WebSocket port or its leafnode
    // port, never both in turn.
    let websocket = remote.urls.iter().filter(|u| is_websocket_url(u)).count();
    if websocket != 0 && websocket != remote.urls.len() {
        let why = "a leafnode remote cannot mix websocket (ws://, wss://) and non-websocket urls";
        return Err(ConfigError::at(ErrorKind::Invalid, &value.pos, why));
    }
    // A `tls://` or `wss://` URL alone asks for TLS, verified against the system's roots.
    if remote.tls.is_none() && remote.urls.iter().any(|u| has_scheme(u, "tls") || has_scheme(u, "wss")) {
        remote.tls = Some(tls::defaults());
    }
    if let (Some(_), Some(e)) = (&remote.credentials, found.get("nkey")) {
        return Err(conflict(e, "a leafnode remote logs in with `credentials` or `nkey`, not both"));
    }
    Ok(remote)
}

pub(super) static REMOTE: Block<LeafRemote> = Block {
    unsupported: UNSUPPORTED_REMOTE,
    steps: &[
        Key(
            &Opt::new(&["url"], Ty::Url, Reload::Restart).means(
                "The hub: `nats-leaf://[user:password@]host:port` (or `nats://`, `leafnode://`, \
                    `tls://`, `ws://`, `wss://`); `url` or `urls` is required",
            ),
            |e, r, _| leaf_url(&e.value).map(|u| r.urls.push(u)),
        ),
        Key(
            &Opt::new(&["urls"], Ty::Strings, Reload::Restart)
                .means("URLs of the hub, tried in turn; all WebSocket (`ws://`, `wss://`) or none"),
            |e, r, _| {
                for url in section::array(&e.value, "urls")? {
                    r.urls.push(leaf_url(url)?);
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["account", "local"], Ty::String, Reload::Restart)
                .means("The local account the connection is bound to")
                .default("$G"),
            |e, r, _| section::word(&e.value, "remote account").map(|a| r.account = Some(a.to_owned())),
        ),
        Key(
            &Opt::new(&["credentials", "creds"], Ty::Path, Reload::Restart)
                .means("A `.creds` file: the user JWT, and the seed that signs the hub's nonce"),
            |e, r, _| section::word(&e.value, "credentials").map(|p| r.credentials = Some(p.into())),
        ),
        Key(
            &Opt::new(&["nkey", "seed"], Ty::Secret, Reload::Restart)
                .means("A user seed (`SU...`) that signs the hub's nonce; not with `credentials`"),
            |e, r, _| {
                let seed = section::word(&e.value, "nkey")?;
                crate::nkeys::KeyPair::from_seed(seed)
                    .ok()
                    .filter(|k| k.public().kind() == crate::nkeys::KeyType::User)
                    .ok_or_else(|| invalid(&e.value, "a leafnode remote `nkey` must be a user seed (SU...)"))?;
                r.nkey = Some(crate::secret::Secret::new(seed));
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["deny_imports", "deny_import"], Ty::Subjects, Reload::Restart)
                .means("Subjects never taken from the hub"),
            |e, r, _| subjects(&e.value, "deny_imports").map(|s| r.deny_imports = s),
        ),
        Key(
            &Opt::new(&["deny_exports", "deny_export"], Ty::Subjects, Reload::Restart)
                .means("Subjects never sent to the hub"),
            |e, r, _| subjects(&e.value, "deny_exports").map(|s| r.deny_exports = s),
        ),
        Key(
            &Opt::new(&["tls"], Ty::Block(&tls::TLS), Reload::Restart)
                .means(
                    "TLS to the hub: `ca_file` instead of the system roots, `cert_file` and \
                    `key_file` for mutual TLS; a `tls://` or `wss://` URL alone means TLS",
                )
                .differs("`verify`, `verify_and_map` and `allow_non_tls` are refused here"),
            |e, r, _| tls::read_dialler(&e.value, "leafnode remote tls").map(|t| r.tls = Some(t)),
        ),
        Key(
            &Opt::new(&["hub"], Ty::Bool, Reload::Restart)
                .means("This server takes the hub's role on the connection it dials")
                .default("false"),
            |e, r, _| section::boolean(&e.value, "hub").map(|h| r.hub = h),
        ),
        Key(
            &Opt::new(&["first_info_timeout"], Ty::Seconds, Reload::Restart)
                .means("How long the hub's INFO (over WebSocket, its upgrade answer) may take")
                .default("1s"),
            |e, r, _| {
                section::nonzero_duration(&e.value, "first_info_timeout", Bare::FractionalSeconds)
                    .map(|(d, _)| r.first_info_timeout = d)
            },
        ),
        Key(
            &Opt::new(&["ws_no_masking"], Ty::Bool, Reload::Restart)
                .means("Over WebSocket, ask the hub to take unmasked frames")
                .default("false"),
            |e, r, _| section::boolean(&e.value, "ws_no_masking").map(|m| r.ws_no_masking = m),
        ),
        Key(
            &Opt::new(&["ws_compression"], Ty::Bool, Reload::NoEffect)
                .means("WebSocket compression to the hub")
                .default("false")
                .differs("warden does not compress: only false is accepted"),
            |e, _, _| match &e.value.kind {
                Kind::Bool(false) => Ok(()),
                _ => Err(invalid(&e.value, NO_WS_COMPRESSION)),
            },
        ),
        Key(
            &Opt::new(&["compression"], Ty::Text("`off` or false"), Reload::NoEffect)
                .means("Compression to the hub")
                .default("off")
                .differs("warden does not compress: only `off` is accepted"),
            |e, _, _| match &e.value.kind {
                Kind::Bool(false) => Ok(()),
                Kind::String(s) if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("disabled") => Ok(()),
                _ => Err(invalid(&e.value, NO_COMPRESSION)),
            },
        ),
    ],
};

/// Whether `url` has `scheme`.
fn has_scheme(url: &str, scheme: &str) -> bool {
    url.split_once("://").is_some_and(|(s, _)| s.eq_ignore_ascii_case(scheme))
}

/// A hub URL: `nats-leaf://`, `nats://`, `leafnode://`, `tls://`, or a
/// WebSocket port's `ws://`/`wss://`, with an optional `user:password@`
/// and no path. Messages do not repeat the URL: it may carry a password.
fn leaf_url(value: &crate::config::value::Value) -> Result<String, ConfigError> {
    let text = section::word(value, "a leafnode remote url")?;
    let bad = || {
        invalid(value, "a leafnode remote url must be nats-leaf://[user:password@]host:port (or tls://, ws://, wss://)")
    };
    let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
    if !["nats-leaf", "nats", "leafnode", "tls", "ws", "wss"].iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
        return Err(bad());
    }
    let host_port = rest.trim_end_matches('/').rsplit_once('@').map_or(rest.trim_end_matches('/'), |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => Ok(text.to_owned()),
        _ => Err(bad()),
    }
}

/// A list of subjects (or one), each a valid pattern.
fn subjects(value: &crate::config::value::Value, what: &str) -> Result<Vec<String>, ConfigError> {
    let one = |v: &crate::config::value::Value| {
        let s = section::word(v, what)?;
        if crate::subject::is_valid_pattern(s.as_bytes()) {
            Ok(s.to_owned())
        } else {
            Err(invalid(v, format!("{what}: {s:?} is not a valid subject")))
        }
    };
    match &value.kind {
        Kind::Array(items) => items.iter().map(one).collect(),
        _ => Ok(vec![one(value)?]),
    }
}

/// What `leafnodes { authorization {} }` is read into.
pub(super) struct LeafAuth {
    /// The block, where missing users are reported.
    at: Pos,
    a: LeafAuthorization,
    /// The block's own `user`/`password`/`nkey`/`account`, if written.
    single: LeafUser,
    warnings: Vec<String>,
}

/// One leaf user: a name and password, or an nkey; and an account.
#[derive(Default)]
pub(super) struct LeafUser {
    user: Option<String>,
    password: Option<crate::secret::Secret>,
    nkey: Option<String>,
    account: Option<String>,
    /// `leafnodes { tls { verify_and_map } }`: the certificate names the
    /// user, so a name without a password is a complete login.
    maps_certificates: bool,
    /// Plain-text password warnings (`warden check` lists stored
    /// passwords through `timing_warnings` too).
    warnings: Vec<String>,
}

/// A leaf user as read: how it logs in, and its account.
enum LeafLogin {
    Named(User, Option<String>),
    Nkey(NkeyUser, Option<String>),
}

impl LeafUser {
    fn with_mapping(maps_certificates: bool) -> Self {
        LeafUser { maps_certificates, ..LeafUser::default() }
    }

    fn is_written(&self) -> bool {
        self.user.is_some() || self.password.is_some() || self.nkey.is_some() || self.account.is_some()
    }

    /// The user, or why it cannot log in (a name and password, a name
    /// whose certificate maps to it, or an nkey).
    fn done(self, at: &Pos) -> Result<LeafLogin, ConfigError> {
        match (self.nkey, self.user, self.password) {
            (Some(nkey), _, _) => Ok(LeafLogin::Nkey(NkeyUser { nkey, permissions: None, tags: Vec::new(), rate_limit: None, allowed_connection_types: Vec::new() }, self.account)),
            (None, Some(user), password) if password.is_some() || self.maps_certificates => {
                Ok(LeafLogin::Named(User { user, password, permissions: None, tags: Vec::new(), rate_limit: None, allowed_connection_types: Vec::new() }, self.account))
            }
            _ => Err(ConfigError::at(
                ErrorKind::Invalid,
                at,
                "a leafnode user needs `user` and `password`, or `nkey` (a name alone only with tls { verify_and_map: true })",
            )),
        }
    }
}

fn read_user(e: &Entry, u: &mut LeafUser, f: &Found<'_>) -> Result<(), ConfigError> {
    nkey_takes_no(e, f)?;
    section::user_name(&e.value, "leafnode user").map(|n| u.user = Some(n.to_owned()))
}

fn read_password(e: &Entry, u: &mut LeafUser, f: &Found<'_>) -> Result<(), ConfigError> {
    nkey_takes_no(e, f)?;
    let whose = format!("the password of leafnode user \"{}\"", u.user.as_deref().unwrap_or_default());
    u.password = Some(crate::config::auth::checked_secret(&e.value, "password", &whose, &mut u.warnings)?);
    Ok(())
}

fn read_nkey(e: &Entry, u: &mut LeafUser) -> Result<(), ConfigError> {
    public_user_key(&e.value).map(|k| u.nkey = Some(k))
}

fn read_account(e: &Entry, u: &mut LeafUser) -> Result<(), ConfigError> {
    section::word(&e.value, "leafnode account").map(|a| u.account = Some(a.to_owned()))
}

/// One entry of `leafnodes { authorization { users = [...] } }`. nats-server
/// takes only names and passwords here; an `nkey` entry is warden's, so
/// several nkey leafs can each be bound to their own account.
pub(super) static LEAF_USER: Block<LeafUser> = Block {
    unsupported: &["permissions", "proxy_required"],
    steps: &[
        Key(&Opt::new(&["user", "username"], Ty::String, Reload::Yes).means("The leaf user's name"), read_user),
        Key(
            &Opt::new(&["password", "pass"], Ty::Secret, Reload::Yes)
                .means("Its password; optional only under `leafnodes { tls { verify_and_map } }`"),
            read_password,
        ),
        Key(
            &Opt::new(&["nkey"], Ty::String, Reload::Yes)
                .means("A user public nkey (`U...`) the leaf signs with, instead of a name")
                .differs("warden only: nats-server takes names here"),
            |e, u, _| read_nkey(e, u),
        ),
        Key(
            &Opt::new(&["account"], Ty::String, Reload::Yes).means("The account the leaf is bound to").default("$G"),
            |e, u, _| read_account(e, u),
        ),
    ],
};

/// `leafnodes { authorization {...} }`: the block's own user or nkey, or a
/// users list (never both, as in nats-server), each bound to an account.
pub(super) static LEAF_AUTH: Block<LeafAuth> = Block {
    unsupported: &["token", "permissions", "proxy_required"],
    steps: &[
        Key(
            &Opt::new(&["user", "username"], Ty::String, Reload::Yes)
                .means("The one leaf user's name; not with `users`"),
            |e, b, f| read_user(e, &mut b.single, f),
        ),
        Key(
            &Opt::new(&["password", "pass"], Ty::Secret, Reload::Yes)
                .means("Its password; optional only under `leafnodes { tls { verify_and_map } }`"),
            |e, b, f| read_password(e, &mut b.single, f),
        ),
        Key(
            &Opt::new(&["nkey"], Ty::String, Reload::Yes)
                .means("The one leaf's user public nkey (`U...`), instead of a name")
                .differs("As nats-server 2.11"),
            |e, b, _| read_nkey(e, &mut b.single),
        ),
        Key(
            &Opt::new(&["account"], Ty::String, Reload::Yes)
                .means("The account the one leaf is bound to")
                .default("$G"),
            |e, b, _| read_account(e, &mut b.single),
        ),
        Check(|b, f| {
            let fresh = LeafUser::with_mapping(b.single.maps_certificates);
            let mut single = std::mem::replace(&mut b.single, fresh);
            b.warnings.append(&mut single.warnings);
            if !single.is_written() {
                return Ok(());
            }
            if let Some(users) = f.get("users") {
                let what = if single.nkey.is_some() { "nkey" } else { "user/pass" };
                let message = format!("can not have a single {what} and a users array");
                return Err(ConfigError::at(ErrorKind::Conflict, &users.key_pos, message));
            }
            let at = b.at.clone();
            b.a.push(single.done(&at)?, &at)
        }),
        Key(
            &Opt::new(&["users"], Ty::List(&LEAF_USER), Reload::Yes).means("Leaf users, each bound to its account"),
            |e, b, _| {
                for item in section::array(&e.value, "leafnodes authorization users")? {
                    let mut one = LeafUser::with_mapping(b.single.maps_certificates);
                    LEAF_USER.read_value("a leafnode user", item, &mut one)?;
                    b.warnings.append(&mut one.warnings);
                    b.a.push(one.done(&item.pos)?, &item.pos)?;
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["timeout"], Ty::Seconds, Reload::Restart)
                .means("Time a leaf has to log in")
                .default("the client auth timeout"),
            |e, b, _| {
                let what = "leafnodes authorization timeout";
                section::nonzero_duration(&e.value, what, Bare::FractionalSeconds).map(|(d, _)| b.a.timeout = Some(d))
            },
        ),
        Check(|b, _| match b.a.users.is_empty() && b.a.nkeys.is_empty() {
            true => Err(ConfigError::at(
                ErrorKind::Invalid,
                &b.at,
                "leafnodes authorization needs `user` and `password`, `nkey`, or `users`",
            )),
            false => Ok(()),
        }),
    ],
};

impl LeafAuthorization {
    /// Adds a user read at `at`; a second user of the same name or nkey is
    /// refused (nats-server: "duplicate user").
    fn push(&mut self, login: LeafLogin, at: &Pos) -> Result<(), ConfigError> {
        let duplicate = |what: String| ConfigError::at(ErrorKind::Conflict, at, format!("Duplicate {what} detected"));
        match login {
            LeafLogin::Named(user, account) => {
                if self.users.iter().any(|(u, _)| u.user == user.user) {
                    return Err(duplicate(format!("user {:?}", user.user)));
                }
                self.users.push((user, account));
            }
            LeafLogin::Nkey(user, account) => {
                if self.nkeys.iter().any(|(u, _)| u.nkey == user.nkey) {
                    return Err(duplicate(format!("nkey {:?}", user.nkey)));
                }
                self.nkeys.push((user, account));
            }
        }
        Ok(())
    }
}
