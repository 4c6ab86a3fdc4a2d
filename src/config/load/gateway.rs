//! `gateway { ... }`: this cluster's name among the clusters of a
//! supercluster, the gateway listener, the other clusters to dial and how
//! gateways authenticate.

use std::time::Duration;

use super::tls;
use super::LOOPBACK;
use crate::config::auth;
use crate::config::error::{conflict, invalid, ConfigError, ErrorKind};
use crate::config::options::{GatewayOptions, RemoteGateway, RouteAuthorization};
use crate::config::schema::{Block, Opt, Reload, Step::Check, Step::Key, Ty};
use crate::config::section::{self, Bare};
use crate::config::value::{Entry, Pos, Value};
use crate::secret::Secret;

/// nats-server's `gateway` keys that warden does not implement.
const UNSUPPORTED_GATEWAY: &[&str] = &["send_qsub_buf", "write_deadline", "write_timeout"];

/// Why a gateway listener without authentication is refused, and the ways out.
pub const UNAUTHENTICATED_GATEWAYS: &str = "gateway has no authentication: anyone who reaches the gateway port would join the supercluster and receive every account's messages for which it announces interest. Add `authorization { user, password }` or `tls { cert_file, key_file, ca_file }` (peers verified both ways) to the gateway block, or, on a trusted loopback-only network, `insecure_allow_unauthenticated_gateways: true`";

/// What `gateway {}` is read into.
pub(super) struct Gateway {
    at: Pos,
    g: GatewayOptions,
    warnings: Vec<String>,
}

/// `gateway { ... }`; `None` for a block with neither a name nor a port,
/// which runs no gateways (as in nats-server, whose tests write such
/// blocks and set the rest in code).
pub(super) fn read(entry: &Entry, warnings: &mut Vec<String>) -> Result<Option<GatewayOptions>, ConfigError> {
    let mut b = Gateway { at: entry.key_pos.clone(), g: GatewayOptions::default(), warnings: Vec::new() };
    GATEWAY.read_value("gateway", &entry.value, &mut b)?;
    warnings.append(&mut b.warnings);
    Ok((!b.g.name.is_empty()).then_some(b.g))
}

/// Whether the block sets neither a name nor a listener.
fn disabled(f: &crate::config::schema::Found<'_>) -> bool {
    f.get("name").is_none() && f.get("listen").or(f.get("port")).is_none()
}

pub(super) static GATEWAY: Block<Gateway> = Block {
    unsupported: UNSUPPORTED_GATEWAY,
    steps: &[
        Check(|b, f| {
            if f.get("name").is_some() {
                return Ok(());
            }
            if disabled(f) {
                b.warnings.push(format!(
                    "{}: gateway has no `name` and no `listen` or `port`, so this server runs no gateways (as \
                     nats-server)",
                    b.at
                ));
                return Ok(());
            }
            Err(ConfigError::at(ErrorKind::Invalid, &b.at, "gateway needs a `name`: this cluster's name"))
        }),
        Key(
            &Opt::new(&["name"], Ty::String, Reload::Restart)
                .means("This cluster's name in the supercluster; every server of the cluster has the same"),
            |e, b, _| {
                let name = section::word(&e.value, "gateway name")?;
                if name.contains(' ') {
                    return Err(invalid(&e.value, "gateway name cannot contain spaces"));
                }
                b.g.name = name.to_owned();
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["listen"], Ty::HostPort, Reload::Restart)
                .means("Where gateways connect, instead of `host` and `port`")
                .differs("A missing host is 127.0.0.1 (nats-server: 0.0.0.0)"),
            |e, b, f| {
                if let Some(other) = f.get("host").or(f.get("port")) {
                    return Err(conflict(other, "`listen` already sets the gateway host and port; remove one of them"));
                }
                (b.g.host, b.g.port) = section::host_port(&e.value, "gateway listen", LOOPBACK)?;
                Ok(())
            },
        ),
        Key(&Opt::new(&["port"], Ty::Port, Reload::Restart).means("The gateway port"), |e, b, _| {
            section::port(&e.value, "gateway port").map(|p| b.g.port = p)
        }),
        Key(
            &Opt::new(&["host", "net"], Ty::String, Reload::Restart)
                .means("The address the gateway listener binds")
                .default("127.0.0.1")
                .differs("nats-server's default is 0.0.0.0"),
            |e, b, _| section::word(&e.value, "gateway host").map(|h| b.g.host = h.to_owned()),
        ),
        Check(|b, f| match f.get("listen").or(f.get("port")) {
            Some(_) => Ok(()),
            None if disabled(f) => Ok(()),
            None => Err(ConfigError::at(ErrorKind::Invalid, &b.at, "gateway needs `listen` or `port`")),
        }),
        Key(
            &Opt::new(&["advertise"], Ty::String, Reload::Restart)
                .means("The `host:port` other clusters are told to reach this server's gateway at"),
            |e, b, _| section::word(&e.value, "gateway advertise").map(|a| b.g.advertise = Some(a.to_owned())),
        ),
        Key(
            &Opt::new(&["authorization"], Ty::Block(&GATEWAY_AUTH), Reload::Restart)
                .means("The user and password gateways log in with, both ways (one for the supercluster)"),
            |e, b, _| authorization(&e.value, &mut b.warnings).map(|a| b.g.authorization = Some(a)),
        ),
        Key(
            &Opt::new(&["tls"], Ty::Block(&tls::TLS), Reload::Restart)
                .means("TLS for gateways; `verify_and_map` takes the gateway user from the other side's certificate")
                .differs(
                    "Both sides' certificates are always verified against `ca_file` (nats-server: only with `verify`)",
                ),
            |e, b, _| tls::read(&e.value, "gateway tls").map(|t| b.g.tls = Some(t)),
        ),
        Key(
            &Opt::new(&["gateways"], Ty::Text("list of { name, url | urls, tls }"), Reload::Restart)
                .means("The other clusters to dial: `[ { name: B, urls: [\"nats://user:pass@host:port\"] } ]`"),
            |e, b, _| {
                for item in section::array(&e.value, "gateways")? {
                    let remote = remote(item)?;
                    if b.g.gateways.iter().any(|g| g.name == remote.name) {
                        return Err(invalid(item, format!("gateway {:?} is listed twice", remote.name)));
                    }
                    b.g.gateways.push(remote);
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["reject_unknown_cluster", "reject_unknown"], Ty::Bool, Reload::Restart)
                .means("Refuse gateways of clusters not listed in `gateways`")
                .default("true")
                .differs("nats-server's default is false: any cluster that reaches the port joins"),
            |e, b, _| section::boolean(&e.value, "reject_unknown_cluster").map(|r| b.g.reject_unknown_cluster = r),
        ),
        Key(
            &Opt::new(&["connect_retries"], Ty::Integer, Reload::Restart)
                .means(
                    "Attempts to dial a gateway learned from gossip before giving up; listed ones are retried forever",
                )
                .default("0"),
            |e, b, _| {
                let n = section::integer_in(&e.value, "connect_retries", 0, i64::from(u32::MAX))?;
                b.g.connect_retries = u32::try_from(n).unwrap_or(u32::MAX);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["authentication_timeout", "auth_timeout"], Ty::Seconds, Reload::Restart)
                .means("Time a gateway has to log in")
                .default("2"),
            |e, b, _| {
                let (d, _) = section::nonzero_duration(&e.value, "gateway auth_timeout", Bare::FractionalSeconds)?;
                b.g.auth_timeout = Some(d);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["connect_backoff"], Ty::Bool, Reload::Restart)
                .means("Accepted for nats-server's configs; warden always backs off, up to 30 s")
                .default("false"),
            |e, _, _| section::boolean(&e.value, "connect_backoff").map(|_| ()),
        ),
        Key(
            &Opt::new(&["insecure_allow_unauthenticated_gateways"], Ty::Bool, Reload::Restart)
                .means("Run the gateway listener without authentication (loopback test setups)")
                .default("false")
                .differs("warden only: without it a gateway without authentication is refused"),
            |e, b, _| {
                section::boolean(&e.value, "insecure_allow_unauthenticated_gateways")
                    .map(|a| b.g.allow_unauthenticated = a)
            },
        ),
        Check(|b, f| {
            if disabled(f) {
                return Ok(());
            }
            // Gateway TLS always verifies the other side's certificate
            // against `ca_file`, both ways (as route TLS does).
            if b.g.authorization.is_none() && b.g.tls.is_none() && !b.g.allow_unauthenticated {
                return Err(ConfigError::at(ErrorKind::Invalid, &b.at, UNAUTHENTICATED_GATEWAYS));
            }
            let mapped = b.g.tls.as_ref().is_some_and(|t| t.verify_and_map);
            match &b.g.authorization {
                Some(a) if a.password.is_none() && !mapped => Err(missing_credentials(&b.at)),
                None if mapped => Err(ConfigError::at(
                    ErrorKind::Invalid,
                    &b.at,
                    "gateway tls verify_and_map needs `authorization { user }`: the name gateway certificates must carry",
                )),
                _ => Ok(()),
            }
        }),
    ],
};

/// One entry of `gateways`.
fn remote(value: &Value) -> Result<RemoteGateway, ConfigError> {
    let map = section::map(value, "a gateway")?;
    let mut name = None;
    let mut urls = Vec::new();
    let mut tls_options = None;
    for entry in &map.entries {
        match entry.key.to_ascii_lowercase().as_str() {
            "name" => name = Some(section::word(&entry.value, "gateway name")?.to_owned()),
            "url" => urls.push(gateway_url(&entry.value)?),
            "urls" => {
                for url in section::array(&entry.value, "gateway urls")? {
                    urls.push(gateway_url(url)?);
                }
            }
            "tls" => tls_options = Some(tls::read(&entry.value, "gateway remote tls")?),
            _ => {
                return Err(ConfigError::at(
                    ErrorKind::UnknownKey,
                    &entry.key_pos,
                    format!("unknown key `{}` in a gateway; known keys: name, url, urls, tls", entry.key),
                ))
            }
        }
    }
    let Some(name) = name else { return Err(invalid(value, "a gateway needs a `name`")) };
    if urls.is_empty() {
        return Err(invalid(value, format!("gateway {name:?} needs `url` or `urls`")));
    }
    Ok(RemoteGateway { name, urls, tls: tls_options })
}

/// A gateway URL: `nats://[user:password@]host:port`. Messages do not
/// repeat the URL: it may carry a password.
fn gateway_url(value: &Value) -> Result<String, ConfigError> {
    super::cluster::server_url(value, "a gateway url", "a gateway url must be nats://[user:password@]host:port")
}

/// What `gateway { authorization {} }` is read into.
pub(super) struct GatewayAuth {
    at: Pos,
    user: Option<String>,
    password: Option<Secret>,
    timeout: Option<Duration>,
    warnings: Vec<String>,
}

fn authorization(value: &Value, warnings: &mut Vec<String>) -> Result<RouteAuthorization, ConfigError> {
    let mut b = GatewayAuth { at: value.pos.clone(), user: None, password: None, timeout: None, warnings: Vec::new() };
    GATEWAY_AUTH.read_value("gateway authorization", value, &mut b)?;
    warnings.append(&mut b.warnings);
    match b.user {
        Some(user) => Ok(RouteAuthorization { user, password: b.password, timeout: b.timeout }),
        None => Err(missing_credentials(&b.at)),
    }
}

pub(super) static GATEWAY_AUTH: Block<GatewayAuth> = Block {
    unsupported: &[],
    steps: &[
        Key(
            &Opt::new(&["token"], Ty::Secret, Reload::Restart)
                .means("Refused with nats-server's message: gateways do not take tokens"),
            |e, _, _| Err(conflict(e, "Gateway authorization does not support tokens")),
        ),
        Key(
            &Opt::new(&["users"], Ty::Text("list"), Reload::Restart)
                .means("Refused with nats-server's message: gateways take one user"),
            |e, _, _| Err(conflict(e, "Gateway authorization does not allow multiple users")),
        ),
        Key(
            &Opt::new(&["user", "username"], Ty::String, Reload::Restart)
                .means("The user gateways log in as; required"),
            |e, b, _| section::user_name(&e.value, "gateway user").map(|u| b.user = Some(u.to_owned())),
        ),
        Key(
            &Opt::new(&["password", "pass"], Ty::Secret, Reload::Restart)
                .means("Its password; required unless `tls { verify_and_map }` maps gateway certificates"),
            |e, b, _| {
                let whose = format!("the password of gateway user \"{}\"", b.user.as_deref().unwrap_or_default());
                b.password = Some(auth::checked_secret(&e.value, "password", &whose, &mut b.warnings)?);
                Ok(())
            },
        ),
        Key(&Opt::new(&["timeout"], Ty::Seconds, Reload::Restart).means("Time a gateway has to log in"), |e, b, _| {
            let (d, _) = section::nonzero_duration(&e.value, "gateway authorization timeout", Bare::FractionalSeconds)?;
            b.timeout = Some(d);
            Ok(())
        }),
    ],
};

/// Gateways authenticate with one user and password.
fn missing_credentials(at: &Pos) -> ConfigError {
    ConfigError::at(ErrorKind::Invalid, at, "gateway authorization needs `user` and `password`")
}
