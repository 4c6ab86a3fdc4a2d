//! `cluster { ... }`: the route listener, the routes to dial and how
//! routes authenticate.

use super::tls::tls_options;
use super::{conflict, invalid, LOOPBACK};
use crate::config::auth;
use crate::config::error::{ConfigError, ErrorKind};
use crate::config::options::{ClusterOptions, RouteAuthorization};
use crate::config::section::{self, Bare, Section};
use crate::config::value::{Entry, Value};

/// nats-server's `cluster` keys that warden does not implement.
const UNSUPPORTED_CLUSTER: &[&str] =
    &["advertise", "cluster_advertise", "permissions", "pool_size", "accounts", "compression", "pinned_certs"];

/// `cluster { ... }`.
pub(super) fn cluster_options(entry: &Entry, warnings: &mut Vec<String>) -> Result<ClusterOptions, ConfigError> {
    let map = section::map(&entry.value, "cluster")?;
    let mut s = Section::new("cluster", map);
    let name = s.get(&["name"])?;
    let listen = s.get(&["listen"])?;
    let host = s.get(&["host", "net"])?;
    let port = s.get(&["port"])?;
    let routes = s.get(&["routes"])?;
    let authorization = s.get(&["authorization"])?;
    let tls = s.get(&["tls"])?;
    let no_advertise = s.get(&["no_advertise"])?;
    let connect_retries = s.get(&["connect_retries"])?;
    let unauthenticated = s.get(&["insecure_allow_unauthenticated_routes"])?;
    s.finish(UNSUPPORTED_CLUSTER)?;

    let mut c = ClusterOptions {
        name: name.map(|e| section::word(&e.value, "cluster name").map(str::to_owned)).transpose()?,
        host: LOOPBACK.to_owned(),
        port: 0,
        routes: Vec::new(),
        authorization: None,
        tls: None,
        no_advertise: false,
        connect_retries: 0,
        allow_unauthenticated: false,
    };
    match (listen, host.or(port)) {
        (Some(_), Some(other)) => {
            return Err(conflict(other, "`listen` already sets the cluster host and port; remove one of them"))
        }
        (Some(e), None) => (c.host, c.port) = section::host_port(&e.value, "cluster listen", LOOPBACK)?,
        (None, _) => {
            let Some(p) = port else {
                return Err(ConfigError::at(ErrorKind::Invalid, &entry.key_pos, "cluster needs `listen` or `port`"));
            };
            c.port = section::port(&p.value, "cluster port")?;
            if let Some(h) = host {
                c.host = section::word(&h.value, "cluster host")?.to_owned();
            }
        }
    }
    if let Some(e) = routes {
        for route in section::array(&e.value, "routes")? {
            c.routes.push(route_url(route)?);
        }
    }
    if let Some(e) = authorization {
        c.authorization = Some(route_authorization(&e.value, warnings)?);
    }
    if let Some(e) = tls {
        c.tls = Some(tls_options(&e.value, "cluster tls")?);
    }
    if let Some(e) = no_advertise {
        c.no_advertise = section::boolean(&e.value, "no_advertise")?;
    }
    if let Some(e) = connect_retries {
        let n = section::integer_in(&e.value, "connect_retries", 0, i64::from(u32::MAX))?;
        c.connect_retries = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(e) = unauthenticated {
        c.allow_unauthenticated = section::boolean(&e.value, "insecure_allow_unauthenticated_routes")?;
    }
    Ok(c)
}

/// `cluster { authorization { user, password, timeout } }`.
fn route_authorization(value: &Value, warnings: &mut Vec<String>) -> Result<RouteAuthorization, ConfigError> {
    let map = section::map(value, "cluster authorization")?;
    let mut s = Section::new("cluster authorization", map);
    let user = s.get(&["user", "username"])?;
    let password = s.get(&["password", "pass"])?;
    let timeout = s.get(&["timeout"])?;
    if let Some(e) = s.get(&["token"])? {
        return Err(conflict(e, "Cluster authorization does not support tokens"));
    }
    if let Some(e) = s.get(&["users"])? {
        return Err(conflict(e, "Cluster authorization does not allow multiple users"));
    }
    s.finish(&[])?;
    let (Some(user), Some(password)) = (user, password) else {
        return Err(invalid(value, "cluster authorization needs `user` and `password`"));
    };
    let user = section::word(&user.value, "cluster user")?.to_owned();
    let password =
        auth::checked_secret(&password.value, "password", &format!("the password of route user \"{user}\""), warnings)?;
    let timeout = match timeout {
        Some(e) => {
            let (d, _) = section::duration(&e.value, "cluster authorization timeout", Bare::FractionalSeconds)?;
            if d.is_zero() {
                return Err(invalid(&e.value, "cluster authorization timeout must be more than zero"));
            }
            Some(d)
        }
        None => None,
    };
    Ok(RouteAuthorization { user, password, timeout })
}

/// A route URL: `nats-route://[user:password@]host:port` (or `nats://`).
/// Messages do not repeat the URL: it may carry a password.
fn route_url(value: &Value) -> Result<String, ConfigError> {
    let text = section::word(value, "a route")?;
    let bad = || invalid(value, "a route must be nats-route://[user:password@]host:port");
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
