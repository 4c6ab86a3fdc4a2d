//! `websocket { ... }` as nats-server 2.9.10 reads it (`parseWebsocket`,
//! `validateWebsocketOptions`), strictly, with warden's
//! `trusted_proxies`. Fail-closed like nats-server: no TLS unless
//! `no_tls: true` ("websocket requires TLS configuration"); stricter:
//! `allowed_origins` must be absolute http(s) origins, trusted proxies
//! valid addresses or CIDRs, and `jwt_cookie` needs an origin rule.

use std::time::Duration;

use super::error::{ConfigError, ErrorKind};
use super::options::{AllowedOrigin, Authorization, WebsocketOptions};
use super::section::{self, Bare, Section};
use super::value::{Entry, Value};

/// nats-server's default handshake timeout (its TLS timeout).
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// nats-server's `websocket` keys that warden does not implement.
const UNSUPPORTED: &[&str] = &["user_cookie", "pass_cookie", "token_cookie", "headers", "ping_interval"];

fn invalid(value: &Value, message: impl Into<String>) -> ConfigError {
    ConfigError::at(ErrorKind::Invalid, &value.pos, message)
}

/// Reads the block; `tls` reads a `tls {}` the way the top level does.
pub(crate) fn websocket(
    entry: &Entry,
    tls: impl Fn(&Value) -> Result<super::options::TlsOptions, ConfigError>,
    warnings: &mut Vec<String>,
) -> Result<WebsocketOptions, ConfigError> {
    let map = section::map(&entry.value, "websocket")?;
    let mut s = Section::new("websocket", map);
    let listen = s.get(&["listen"])?;
    let port = s.get(&["port"])?;
    let host = s.get(&["host", "net"])?;
    let no_tls = s.get(&["no_tls"])?;
    let tls_entry = s.get(&["tls"])?;
    let same_origin = s.get(&["same_origin"])?;
    let origins =
        s.get(&["allowed_origins", "allowed_origin", "allow_origins", "allow_origin", "origins", "origin"])?;
    let handshake_timeout = s.get(&["handshake_timeout"])?;
    let compression = s.get(&["compression", "compress"])?;
    let authorization = s.get(&["authorization", "authentication"])?;
    let jwt_cookie = s.get(&["jwt_cookie"])?;
    let no_auth_user = s.get(&["no_auth_user"])?;
    let proxies = s.get(&["trusted_proxies"])?;
    let advertise = s.get(&["advertise"])?;
    s.finish(UNSUPPORTED)?;
    if let Some(e) = advertise {
        section::string(&e.value, "advertise")?;
        warnings.push(format!(
            "{}: websocket advertise is read but not used: warden does not gossip WebSocket URLs to cluster peers",
            e.key_pos
        ));
    }

    let mut ws = WebsocketOptions {
        host: "0.0.0.0".into(),
        port: 0,
        tls: None,
        same_origin: false,
        allowed_origins: Vec::new(),
        compression: false,
        handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        authorization: None,
        no_auth_user: None,
        jwt_cookie: None,
        trusted_proxies: Vec::new(),
    };
    if let Some(e) = listen {
        (ws.host, ws.port) = section::host_port(&e.value, "listen", "0.0.0.0")?;
    }
    if let Some(e) = host {
        ws.host = section::word(&e.value, "host")?.to_owned();
    }
    if let Some(e) = port {
        ws.port = section::port(&e.value, "port")?;
    }
    let no_tls = no_tls.map(|e| section::boolean(&e.value, "no_tls")).transpose()?.unwrap_or(false);
    ws.tls = tls_entry.map(|e| tls(&e.value)).transpose()?;
    match (&ws.tls, no_tls) {
        (None, false) => {
            return Err(ConfigError::at(ErrorKind::Invalid, &entry.key_pos, "websocket requires TLS configuration"))
        }
        (Some(_), true) => {
            let e = tls_entry.unwrap_or(entry);
            return Err(ConfigError::at(ErrorKind::Conflict, &e.key_pos, "websocket has both tls and no_tls: true"));
        }
        (None, true) => warnings.push(format!(
            "{}: websocket without TLS (no_tls): browsers' credentials and messages cross the network in the clear; use it only behind a TLS-terminating proxy or on loopback",
            entry.key_pos
        )),
        _ => {}
    }
    if let Some(e) = same_origin {
        ws.same_origin = section::boolean(&e.value, "same_origin")?;
    }
    if let Some(e) = origins {
        for v in section::array(&e.value, "allowed_origins")? {
            let text = section::string(v, "allowed_origins")?;
            ws.allowed_origins.push(parse_origin(text).map_err(|why| invalid(v, why))?);
        }
    }
    if let Some(e) = handshake_timeout {
        let (d, _) = section::duration(&e.value, "handshake_timeout", Bare::FractionalSeconds)?;
        if d.is_zero() {
            return Err(invalid(&e.value, "handshake_timeout must be more than zero"));
        }
        ws.handshake_timeout = d;
    }
    if let Some(e) = compression {
        ws.compression = section::boolean(&e.value, "compression")?;
    }
    if let Some(e) = authorization {
        ws.authorization = Some(websocket_authorization(e, warnings)?);
    }
    if let Some(e) = jwt_cookie {
        ws.jwt_cookie = Some(section::word(&e.value, "jwt_cookie")?.to_owned());
        // A cookie is an ambient credential: the browser sends it with a
        // WebSocket any page opens, so without an origin rule every site
        // the user visits logs in as them (nats-server accepts this).
        if !ws.same_origin && ws.allowed_origins.is_empty() {
            return Err(ConfigError::at(
                ErrorKind::Invalid,
                &e.key_pos,
                "websocket jwt_cookie needs same_origin: true or allowed_origins: the browser sends the cookie with a WebSocket any web page opens, so without an origin rule every site the user visits could log in as them (cross-site WebSocket hijacking)",
            ));
        }
    }
    if let Some(e) = no_auth_user {
        ws.no_auth_user = Some(section::word(&e.value, "no_auth_user")?.to_owned());
    }
    if let Some(e) = proxies {
        for v in section::array(&e.value, "trusted_proxies")? {
            let text = section::string(v, "trusted_proxies")?;
            if crate::cidr::Cidr::parse_or_address(text).is_none() {
                return Err(invalid(v, format!("trusted_proxies: {text:?} is not an IP address or CIDR")));
            }
            ws.trusted_proxies.push(text.to_owned());
        }
    }
    Ok(ws)
}

/// What the block needs of the rest of the config (nats-server's
/// `validateWebsocketOptions`): its `no_auth_user` is a configured user, its
/// own user or token does not sit beside a users list, and `jwt_cookie`
/// has operator mode to log in to.
pub(crate) fn check(o: &super::Options, ws: &WebsocketOptions, entry: &Entry) -> Result<(), ConfigError> {
    let at = |message: String| ConfigError::at(ErrorKind::Invalid, &entry.key_pos, message);
    let auth = o.authorization.as_ref();
    let has_users = auth.is_some_and(|a| !a.users.is_empty() || !a.nkeys.is_empty())
        || o.accounts.iter().any(|a| !a.users.is_empty() || !a.nkeys.is_empty());
    if let (Some(name), false) = (&ws.no_auth_user, o.operator.is_some()) {
        let known = auth.is_some_and(|a| a.users.iter().any(|u| &u.user == name))
            || o.accounts.iter().any(|a| a.users.iter().any(|u| &u.user == name));
        if !known {
            return Err(at(format!("websocket no_auth_user: {name:?} is not a configured user")));
        }
    }
    if let (Some(wa), true) = (&ws.authorization, has_users) {
        let what = if wa.token.is_some() { "token" } else { "username" };
        return Err(at(format!("websocket authentication {what} not compatible with presence of users/nkeys")));
    }
    if let (Some(cookie), None) = (&ws.jwt_cookie, &o.operator) {
        return Err(at(format!(
            "trusted operators or trusted keys configuration is required for JWT authentication via cookie {cookie:?}"
        )));
    }
    Ok(())
}

/// `authorization { user, password | token, timeout }` of the listener.
fn websocket_authorization(entry: &Entry, warnings: &mut Vec<String>) -> Result<Authorization, ConfigError> {
    let map = section::map(&entry.value, "websocket authorization")?;
    let mut s = Section::new("websocket authorization", map);
    let user = s.get(&["user", "username"])?;
    let password = s.get(&["password", "pass"])?;
    let token = s.get(&["token"])?;
    let timeout = s.get(&["timeout"])?;
    s.finish(&["users", "nkeys"])?;
    let mut auth = Authorization::default();
    if let Some(e) = user {
        auth.user = Some(section::word(&e.value, "user")?.to_owned());
    }
    if let Some(e) = password {
        auth.password = Some(super::auth::checked_secret(&e.value, "password", "the websocket password", warnings)?);
    }
    if let Some(e) = token {
        auth.token = Some(super::auth::checked_secret(&e.value, "token", "the websocket token", warnings)?);
    }
    if let Some(e) = timeout {
        let (d, _) = section::duration(&e.value, "authorization timeout", Bare::FractionalSeconds)?;
        auth.timeout = Some(d).filter(|d| !d.is_zero());
    }
    match (&auth.user, &auth.password, &auth.token) {
        (Some(_), Some(_), None) | (None, None, Some(_)) => Ok(auth),
        (None, None, None) => Err(ConfigError::at(
            ErrorKind::Invalid,
            &entry.key_pos,
            "websocket authorization sets no user and password or token",
        )),
        _ => Err(ConfigError::at(
            ErrorKind::Conflict,
            &entry.key_pos,
            "websocket authorization takes a user and password, or a token",
        )),
    }
}

/// An origin: `http(s)://host[:port]`, nothing after.
pub fn parse_origin(text: &str) -> Result<AllowedOrigin, String> {
    let (scheme, rest) = text.split_once("://").ok_or_else(|| format!("{text:?} is not an absolute http(s) origin"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(format!("{text:?}: an origin's scheme is http or https")),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(format!("{text:?}: an origin is scheme://host[:port], nothing more"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            let port = port.parse::<u16>().map_err(|_| format!("{text:?}: bad port"))?;
            (host, port)
        }
        _ => (authority, default),
    };
    Ok(AllowedOrigin { scheme, host: host.trim_matches(['[', ']']).to_ascii_lowercase(), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_absolute_http_urls_with_default_ports() {
        let o = parse_origin("https://App.Example").unwrap();
        assert_eq!((o.scheme.as_str(), o.host.as_str(), o.port), ("https", "app.example", 443));
        let o = parse_origin("http://localhost:8080/").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("localhost", 8080));
        let o = parse_origin("http://[::1]:9").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("::1", 9));
        for bad in ["example.com", "ftp://x", "https://", "https://a/b", "http://a:x", "https://u@a"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
