//! `cluster { ... }`: the route listener, the routes to dial and how
//! routes authenticate.

use std::time::Duration;

use super::tls;
use super::LOOPBACK;
use crate::config::auth;
use crate::config::error::{conflict, invalid, ConfigError, ErrorKind};
use crate::config::options::{ClusterOptions, RouteAuthorization, RoutePermissions};
use crate::config::schema::{Block, Opt, Reload, Step::Check, Step::Key, Ty};
use crate::config::section::{self, Bare};
use crate::config::value::{Entry, Kind, Pos, Value};
use crate::secret::Secret;

/// nats-server's `cluster` keys that warden does not implement.
const UNSUPPORTED_CLUSTER: &[&str] = &["advertise", "cluster_advertise", "pinned_certs"];

/// What `cluster {}` is read into.
pub(super) struct Cluster {
    /// The `cluster` key, where a missing listener is reported.
    at: Pos,
    c: ClusterOptions,
    warnings: Vec<String>,
}

/// `cluster { ... }`.
pub(super) fn read(entry: &Entry, warnings: &mut Vec<String>) -> Result<ClusterOptions, ConfigError> {
    let mut b = Cluster { at: entry.key_pos.clone(), c: ClusterOptions::default(), warnings: Vec::new() };
    CLUSTER.read_value("cluster", &entry.value, &mut b)?;
    warnings.append(&mut b.warnings);
    Ok(b.c)
}

pub(super) static CLUSTER: Block<Cluster> = Block {
    unsupported: UNSUPPORTED_CLUSTER,
    steps: &[
        Key(
            &Opt::new(&["name"], Ty::String, Reload::Restart).means("The cluster's name, sent to route peers"),
            |e, b, _| section::word(&e.value, "cluster name").map(|n| b.c.name = Some(n.to_owned())),
        ),
        Key(
            &Opt::new(&["listen"], Ty::HostPort, Reload::Restart)
                .means("Where routes connect, instead of `host` and `port`; without either the server runs no routes")
                .differs("A missing host is 127.0.0.1 (nats-server: 0.0.0.0)"),
            |e, b, f| {
                if let Some(other) = f.get("host").or(f.get("port")) {
                    return Err(conflict(other, "`listen` already sets the cluster host and port; remove one of them"));
                }
                (b.c.host, b.c.port) = section::host_port(&e.value, "cluster listen", LOOPBACK)?;
                Ok(())
            },
        ),
        Check(|b, f| {
            if f.get("listen").or(f.get("port")).is_some() {
                return Ok(());
            }
            if let Some(routes) = f.get("routes") {
                return Err(invalid(&routes.value, "routes need a route listener: set cluster `listen` or `port`"));
            }
            b.c.no_listener = true;
            b.warnings.push(format!(
                "{}: cluster has no `listen` or `port`, so this server runs no routes (as nats-server); \
                set one, or `--cluster`, to cluster",
                b.at
            ));
            Ok(())
        }),
        Key(&Opt::new(&["port"], Ty::Port, Reload::Restart).means("The route port"), |e, b, _| {
            section::port(&e.value, "cluster port").map(|p| b.c.port = p)
        }),
        Key(
            &Opt::new(&["host", "net"], Ty::String, Reload::Restart)
                .means("The address the route listener binds")
                .default("127.0.0.1")
                .differs("nats-server's default is 0.0.0.0"),
            |e, b, _| section::word(&e.value, "cluster host").map(|h| b.c.host = h.to_owned()),
        ),
        Key(
            &Opt::new(&["routes"], Ty::Strings, Reload::Restart)
                .means("Routes to dial: `nats-route://[user:password@]host:port`"),
            |e, b, _| {
                for route in section::array(&e.value, "routes")? {
                    b.c.routes.push(route_url(route)?);
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["authorization"], Ty::Block(&ROUTE_AUTH), Reload::Restart)
                .means("The user and password routes log in with, both ways"),
            |e, b, _| route_authorization(&e.value, &mut b.warnings).map(|a| b.c.authorization = Some(a)),
        ),
        Key(
            &Opt::new(&["permissions"], Ty::Block(&ROUTE_PERMISSIONS), Reload::Restart)
                .means(
                    "Which subjects cross the routes: `import` (messages taken from routes) and `export` \
                    (messages sent to routes)",
                )
                .default("all subjects both ways")
                .differs(
                    "Also enforced on messages: a route's message on a subject not imported is dropped \
                    (nats-server only withholds the interest). A route SUB is exported only when its subject \
                    lies within an allow pattern (nats-server matches `>` against `*`); an empty map is refused",
                ),
            |e, b, _| route_permissions(&e.value).map(|p| b.c.permissions = Some(p)),
        ),
        Key(
            &Opt::new(&["tls"], Ty::Block(&tls::TLS), Reload::Restart)
                .means("TLS for routes; `verify_and_map` takes the route user from the peer's certificate"),
            |e, b, _| tls::read(&e.value, "cluster tls").map(|t| b.c.tls = Some(t)),
        ),
        Check(|b, f| {
            let mapped = b.c.tls.as_ref().is_some_and(|t| t.verify_and_map);
            match (&b.c.authorization, f.get("authorization")) {
                (Some(a), Some(e)) if a.password.is_none() && !mapped => Err(missing_credentials(&e.value.pos)),
                (None, _) if mapped => Err(ConfigError::at(
                    ErrorKind::Invalid,
                    &b.at,
                    "cluster tls verify_and_map needs `authorization { user }`: the name route certificates must carry",
                )),
                _ => Ok(()),
            }
        }),
        Check(|b, f| {
            // Under the strict SPIFFE mapping the route user is a SPIFFE ID
            // of the domain, or no route could ever log in.
            let domain = b.c.tls.as_ref().and_then(|t| t.spiffe_trust_domain.as_ref());
            let (Some(domain), Some(a), Some(e)) = (domain, &b.c.authorization, f.get("authorization")) else {
                return Ok(());
            };
            match crate::spiffe::SpiffeId::parse(&a.user) {
                Ok(id) if id.is_in(domain) => Ok(()),
                Ok(_) => Err(ConfigError::at(
                    ErrorKind::Invalid,
                    &e.value.pos,
                    format!("cluster authorization user {:?} is not of spiffe_trust_domain \"{domain}\"", a.user),
                )),
                Err(why) => Err(ConfigError::at(
                    ErrorKind::Invalid,
                    &e.value.pos,
                    format!(
                        "cluster authorization user {:?} must be the SPIFFE ID route certificates carry \
                        (cluster tls has spiffe_trust_domain): {why}",
                        a.user
                    ),
                )),
            }
        }),
        Key(
            &Opt::new(&["no_advertise"], Ty::Bool, Reload::Restart)
                .means("Do not tell clients the client URLs of the cluster's servers")
                .default("false"),
            |e, b, _| section::boolean(&e.value, "no_advertise").map(|n| b.c.no_advertise = n),
        ),
        Key(
            &Opt::new(&["connect_retries"], Ty::Integer, Reload::Restart)
                .means(
                    "Attempts to dial a route learned from a peer before giving up (at least 3); \
                    configured routes are retried forever",
                )
                .default("0"),
            |e, b, _| {
                let n = section::integer_in(&e.value, "connect_retries", 0, i64::from(u32::MAX))?;
                b.c.connect_retries = u32::try_from(n).unwrap_or(u32::MAX);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["connect_backoff"], Ty::Bool, Reload::Restart)
                .means("The delay between attempts to dial a route doubles up to 30 s")
                .default("false")
                .differs(
                    "Without it warden still doubles the delay, from 200 ms up to 5 s (nats-server: a \
                    fixed 1 s)",
                ),
            |e, b, _| section::boolean(&e.value, "connect_backoff").map(|on| b.c.connect_backoff = on),
        ),
        Key(
            &Opt::new(&["compression"], Ty::Text("`off` or `accept`, or `{ mode }`"), Reload::Restart)
                .means("S2 compression of route traffic; warden does not compress, so only `off` and `accept`")
                .default("accept")
                .differs("warden never compresses: any mode that would (`on`, `s2_*`) is refused by name"),
            |e, _, _| compression(&e.value),
        ),
        Key(
            &Opt::new(&["write_timeout"], Ty::Text("`default` or `close`"), Reload::Restart)
                .means("What a route write that misses `write_deadline` does: `close` closes the route")
                .default("default")
                .differs(
                    "nats-server's default for routes is `retry`; warden closes the route (it reconnects), \
                    and refuses `retry`",
                ),
            |e, _, _| super::write_timeout(&e.value, "cluster write_timeout", "routes"),
        ),
        Key(
            &Opt::new(&["pool_size"], Ty::Integer, Reload::Restart)
                .means(
                    "Route connections to each peer that pools too, accounts spread over them by name; \
                    -1 for one connection per peer (as servers before 2.10)",
                )
                .default("3")
                .differs("At most 32 (nats-server: no limit)"),
            |e, b, _| {
                let max = i64::from(ClusterOptions::MAX_POOL_SIZE);
                b.c.pool_size = match section::integer_in(&e.value, "pool_size", -1, max)? {
                    -1 => 0,
                    0 => ClusterOptions::DEFAULT_POOL_SIZE,
                    n => u32::try_from(n).unwrap_or(ClusterOptions::DEFAULT_POOL_SIZE),
                };
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["accounts"], Ty::Strings, Reload::Restart).means(
                "Accounts with a route connection of their own to each pooling peer (the system account \
                always has one while pooling is on)",
            ),
            |e, b, f| {
                for item in section::array(&e.value, "cluster accounts")? {
                    let name = section::word(item, "cluster accounts")?;
                    if b.c.pinned_accounts.iter().any(|a| a == name) {
                        return Err(invalid(
                            item,
                            format!("found duplicate account name {name:?} in pinned accounts list"),
                        ));
                    }
                    b.c.pinned_accounts.push(name.to_owned());
                }
                if b.c.pool_size == 0 && !b.c.pinned_accounts.is_empty() {
                    let at = f.get("pool_size").unwrap_or(e);
                    return Err(conflict(at, "pool_size cannot be negative if pinned accounts are specified"));
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["insecure_allow_unauthenticated_routes"], Ty::Bool, Reload::Restart)
                .means("Run the route listener without route authentication or TLS (loopback test setups)")
                .default("false")
                .differs("warden only: without it such a cluster is refused"),
            |e, b, _| {
                section::boolean(&e.value, "insecure_allow_unauthenticated_routes")
                    .map(|a| b.c.allow_unauthenticated = a)
            },
        ),
    ],
};

/// What `cluster { authorization {} }` is read into.
pub(super) struct RouteAuth {
    /// The block, where missing credentials are reported.
    at: Pos,
    user: Option<String>,
    password: Option<Secret>,
    timeout: Option<Duration>,
    warnings: Vec<String>,
}

/// `cluster { authorization { user, password, timeout } }`.
fn route_authorization(value: &Value, warnings: &mut Vec<String>) -> Result<RouteAuthorization, ConfigError> {
    let mut b = RouteAuth { at: value.pos.clone(), user: None, password: None, timeout: None, warnings: Vec::new() };
    ROUTE_AUTH.read_value("cluster authorization", value, &mut b)?;
    warnings.append(&mut b.warnings);
    // A user without a password is checked against `tls { verify_and_map }`
    // once the whole cluster block is read.
    match b.user {
        Some(user) => Ok(RouteAuthorization { user, password: b.password, timeout: b.timeout }),
        None => Err(missing_credentials(&b.at)),
    }
}

pub(super) static ROUTE_AUTH: Block<RouteAuth> = Block {
    unsupported: &[],
    steps: &[
        Key(
            &Opt::new(&["token"], Ty::Secret, Reload::Restart)
                .means("Refused with nats-server's message: routes do not take tokens"),
            |e, _, _| Err(conflict(e, "Cluster authorization does not support tokens")),
        ),
        Key(
            &Opt::new(&["users"], Ty::Text("list"), Reload::Restart)
                .means("Refused with nats-server's message: routes take one user"),
            |e, _, _| Err(conflict(e, "Cluster authorization does not allow multiple users")),
        ),
        Check(|b, f| match f.get("user") {
            Some(_) => Ok(()),
            None => Err(missing_credentials(&b.at)),
        }),
        Key(
            &Opt::new(&["user", "username"], Ty::String, Reload::Restart).means(
                "The user routes log in as; required. Under `tls { verify_and_map }` the route's certificate \
                must name it (email, DNS name, URI or subject DN, as for clients)",
            ),
            |e, b, _| section::user_name(&e.value, "cluster user").map(|u| b.user = Some(u.to_owned())),
        ),
        Key(
            &Opt::new(&["password", "pass"], Ty::Secret, Reload::Restart)
                .means("Its password; required unless `tls { verify_and_map }` maps route certificates"),
            |e, b, _| {
                let whose = format!("the password of route user \"{}\"", b.user.as_deref().unwrap_or_default());
                b.password = Some(auth::checked_secret(&e.value, "password", &whose, &mut b.warnings)?);
                Ok(())
            },
        ),
        Key(&Opt::new(&["timeout"], Ty::Seconds, Reload::Restart).means("Time a route has to log in"), |e, b, _| {
            let (d, _) = section::nonzero_duration(&e.value, "cluster authorization timeout", Bare::FractionalSeconds)?;
            b.timeout = Some(d);
            Ok(())
        }),
    ],
};

/// `compression`: `off` or `accept` (nats-server's names, any case, also
/// `disabled`, `false` and `{ mode: ... }`); a mode that would compress is
/// refused by name, since warden's routes never do.
fn compression(value: &Value) -> Result<(), ConfigError> {
    let mode = match &value.kind {
        Kind::Bool(false) => return Ok(()),
        Kind::Bool(true) => "true".to_owned(),
        Kind::String(mode) => mode.to_ascii_lowercase(),
        Kind::Map(map) => {
            let mut mode = None;
            for entry in &map.entries {
                match entry.key.to_ascii_lowercase().as_str() {
                    "mode" => mode = Some(&entry.value),
                    "rtt_thresholds" | "thresholds" | "rtts" | "rtt" => {
                        return Err(conflict(
                            entry,
                            "cluster compression rtt_thresholds only apply to s2_auto, which warden does not do",
                        ))
                    }
                    _ => {
                        return Err(ConfigError::at(
                            ErrorKind::UnknownKey,
                            &entry.key_pos,
                            format!("unknown key `{}` in cluster compression; known keys: mode", entry.key),
                        ))
                    }
                }
            }
            let Some(mode) = mode else {
                return Err(invalid(value, "cluster compression needs `mode`"));
            };
            return compression(mode);
        }
        _ => return Err(invalid(value, "cluster compression must be off, accept, or { mode: ... }")),
    };
    match mode.as_str() {
        "off" | "disabled" | "false" | "accept" => Ok(()),
        "on" | "enabled" | "true" | "auto" | "s2_auto" | "s2_uncompressed" | "s2_fast" | "s2_better" | "s2_best" => {
            Err(invalid(
                value,
                format!(
                    "cluster compression {mode:?} is refused: warden does not compress routes; use `off` or \
                    `accept` (a peer that asks for compression gets uncompressed traffic)"
                ),
            ))
        }
        _ => Err(invalid(value, format!("cluster compression: unsupported compression mode {mode:?}"))),
    }
}

/// `cluster { permissions { import, export } }`; an empty map is refused,
/// as a user's empty permissions are: it would restrict nothing.
fn route_permissions(value: &Value) -> Result<RoutePermissions, ConfigError> {
    let map = section::map(value, "cluster permissions")?;
    if map.entries.is_empty() {
        return Err(invalid(
            value,
            "cluster permissions: an empty permissions map restricts nothing; write import/export rules or remove it",
        ));
    }
    let mut p = RoutePermissions::default();
    ROUTE_PERMISSIONS.read("cluster permissions", map, &mut p)?;
    Ok(p)
}

pub(super) static ROUTE_PERMISSIONS: Block<RoutePermissions> = Block {
    unsupported: &[],
    steps: &[
        Key(
            &Opt::new(
                &["import", "publish", "pub"],
                Ty::Or("subject or list of subjects", &auth::SUBJECT_RULES),
                Reload::Restart,
            )
            .means(
                "Subjects this server takes messages on from routes: it tells routes only of local \
                    interest on them; a subject or list is an allow list",
            )
            .default("all subjects"),
            |e, p, _| auth::route_rules(&e.value, "import").map(|r| p.import = Some(r)),
        ),
        Key(
            &Opt::new(
                &["export", "subscribe", "sub"],
                Ty::Or("subject or list of subjects", &auth::SUBJECT_RULES),
                Reload::Restart,
            )
            .means(
                "Subjects this server sends to routes: it accepts a route's interest only on them; \
                    a subject or list is an allow list",
            )
            .default("all subjects"),
            |e, p, _| auth::route_rules(&e.value, "export").map(|r| p.export = Some(r)),
        ),
        Key(
            &Opt::new(&["allow_responses", "publish_allow_responses"], Ty::Text("boolean"), Reload::Restart)
                .means("Refused with nats-server's message: routes have no reply permissions"),
            |e, _, _| Err(conflict(e, "Cluster permissions do not support dynamic responses")),
        ),
    ],
};

/// Routes authenticate with one user and password.
fn missing_credentials(at: &Pos) -> ConfigError {
    ConfigError::at(ErrorKind::Invalid, at, "cluster authorization needs `user` and `password`")
}

/// A route URL: `nats-route://[user:password@]host:port` (or `nats://`).
/// Messages do not repeat the URL: it may carry a password.
fn route_url(value: &Value) -> Result<String, ConfigError> {
    server_url(value, "a route", "a route must be nats-route://[user:password@]host:port")
}

/// The URL of another server (`what`): `nats-route://` or `nats://`, then
/// `[user:password@]host:port`; refused with `refusal` otherwise.
pub(super) fn server_url(value: &Value, what: &str, refusal: &str) -> Result<String, ConfigError> {
    let text = section::word(value, what)?;
    let bad = || invalid(value, refusal);
    let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
    if !(scheme.eq_ignore_ascii_case("nats-route") || scheme.eq_ignore_ascii_case("nats")) {
        return Err(bad());
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) if !userinfo.is_empty() => host_port,
        Some(_) => return Err(bad()),
        None => authority,
    };
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':').ok_or_else(bad)?)
        }
        None => host_port.rsplit_once(':').ok_or_else(bad)?,
    };
    if host.is_empty() || (host.contains(['/', '@', ':']) && !host_port.starts_with('[')) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(text.to_owned()),
        _ => Err(bad()),
    }
}
