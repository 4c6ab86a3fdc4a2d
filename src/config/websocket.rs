//! `websocket { ... }` as nats-server 2.9.10 reads it (`parseWebsocket`,
//! `validateWebsocketOptions`), strictly, with warden's
//! `trusted_proxies`. Fail-closed like nats-server: no TLS unless
//! `no_tls: true` ("websocket requires TLS configuration"); stricter:
//! `allowed_origins` must be absolute http(s) origins, trusted proxies
//! valid addresses or CIDRs, and `jwt_cookie` needs an origin rule.

use std::time::Duration;

use super::error::{invalid, ConfigError, ErrorKind};
use super::options::{AllowedOrigin, Authorization, TlsOptions, WebsocketOptions};
use super::schema::{Block, Opt, Reload, Step::Check, Step::Key, Ty};
use super::section::{self, Bare};
use super::value::{Entry, Pos, Value};

/// nats-server's default handshake timeout (its TLS timeout).
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// nats-server's `websocket` keys that warden does not implement.
const UNSUPPORTED: &[&str] = &["user_cookie", "pass_cookie", "token_cookie", "headers", "ping_interval"];

/// Reads a `tls {}` block the way the top level does.
pub(crate) type ReadTls = fn(&Value) -> Result<TlsOptions, ConfigError>;

/// What `websocket {}` is read into.
pub(crate) struct Ws {
    /// The `websocket` key, where block-wide mistakes are reported.
    at: Pos,
    tls: ReadTls,
    no_tls: bool,
    ws: WebsocketOptions,
    warnings: Vec<String>,
}

/// Reads the block; `tls` reads a `tls {}` the way the top level does.
pub(crate) fn websocket(
    entry: &Entry,
    tls: ReadTls,
    warnings: &mut Vec<String>,
) -> Result<WebsocketOptions, ConfigError> {
    let mut b = Ws {
        at: entry.key_pos.clone(),
        tls,
        no_tls: false,
        ws: WebsocketOptions {
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
            proxy_protocol: false,
            accept_rate: Default::default(),
        },
        warnings: Vec::new(),
    };
    WEBSOCKET.read_value("websocket", &entry.value, &mut b)?;
    warnings.append(&mut b.warnings);
    Ok(b.ws)
}

pub(crate) static WEBSOCKET: Block<Ws> = Block {
    unsupported: UNSUPPORTED,
    steps: &[
        Key(
            &Opt::new(&["advertise"], Ty::String, Reload::NoEffect)
                .means("The URL to gossip to cluster peers for WebSocket clients")
                .differs("Read but not used (warden does not gossip WebSocket URLs); a warning says so"),
            |e, b, _| {
                section::string(&e.value, "advertise")?;
                b.warnings.push(format!(
                "{}: websocket advertise is read but not used: warden does not gossip WebSocket URLs to cluster peers",
                e.key_pos
            ));
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["listen"], Ty::HostPort, Reload::Restart)
                .means("Where browsers connect, instead of `host` and `port`"),
            |e, b, _| {
                (b.ws.host, b.ws.port) = section::host_port(&e.value, "listen", "0.0.0.0")?;
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["host", "net"], Ty::String, Reload::Restart)
                .means("The address the WebSocket listener binds")
                .default("0.0.0.0"),
            |e, b, _| section::word(&e.value, "host").map(|h| b.ws.host = h.to_owned()),
        ),
        Key(&Opt::new(&["port"], Ty::Port, Reload::Restart).means("The WebSocket port"), |e, b, _| {
            section::port(&e.value, "port").map(|p| b.ws.port = p)
        }),
        Key(
            &Opt::new(&["no_tls"], Ty::Bool, Reload::Restart)
                .means("Run without TLS (behind a TLS-terminating proxy or on loopback; warned)")
                .default("false"),
            |e, b, _| section::boolean(&e.value, "no_tls").map(|n| b.no_tls = n),
        ),
        Key(
            &Opt::new(&["tls"], Ty::Block(&super::load::TLS), Reload::Restart)
                .means("TLS for the WebSocket listener; required unless `no_tls`"),
            |e, b, _| (b.tls)(&e.value).map(|t| b.ws.tls = Some(t)),
        ),
        Check(|b, f| {
            match (&b.ws.tls, b.no_tls, f.get("tls")) {
                (None, false, _) => {
                    return Err(ConfigError::at(ErrorKind::Invalid, &b.at, "websocket requires TLS configuration"))
                }
                (Some(_), true, e) => {
                    let at = e.map_or(&b.at, |e| &e.key_pos);
                    return Err(ConfigError::at(ErrorKind::Conflict, at, "websocket has both tls and no_tls: true"));
                }
                (None, true, _) => b.warnings.push(format!(
                    "{}: websocket without TLS (no_tls): browsers' credentials and messages cross the network in the clear; use it only behind a TLS-terminating proxy or on loopback",
                    b.at
                )),
                _ => {}
            }
            Ok(())
        }),
        Key(
            &Opt::new(&["same_origin"], Ty::Bool, Reload::Restart)
                .means("A browser's `Origin` must be this listener's own")
                .default("false"),
            |e, b, _| section::boolean(&e.value, "same_origin").map(|s| b.ws.same_origin = s),
        ),
        Key(
            &Opt::new(
                &["allowed_origins", "allowed_origin", "allow_origins", "allow_origin", "origins", "origin"],
                Ty::Strings,
                Reload::Restart,
            )
            .means("The origins browsers may connect from")
            .differs("Each must be an absolute `http(s)://host[:port]`"),
            |e, b, _| {
                for v in section::array(&e.value, "allowed_origins")? {
                    let text = section::string(v, "allowed_origins")?;
                    b.ws.allowed_origins.push(parse_origin(text).map_err(|why| invalid(v, why))?);
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["handshake_timeout"], Ty::Seconds, Reload::Restart)
                .means("Time the TLS and WebSocket handshakes may take")
                .default("2s"),
            |e, b, _| {
                let (d, _) = section::nonzero_duration(&e.value, "handshake_timeout", Bare::FractionalSeconds)?;
                b.ws.handshake_timeout = d;
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["compression", "compress"], Ty::Bool, Reload::Restart)
                .means("Agree to `permessage-deflate` when a browser offers it")
                .default("false"),
            |e, b, _| section::boolean(&e.value, "compression").map(|c| b.ws.compression = c),
        ),
        Key(
            &Opt::new(&["authorization", "authentication"], Ty::Block(&WEBSOCKET_AUTH), Reload::Yes)
                .means(
                    "A user and password, or a token, for WebSocket clients instead of the client \
                    listener's single user or token",
                )
                .differs(
                    "Reloaded while the listener keeps a login of its own (`authorization` or \
                    `no_auth_user`); a reload that adds the first or removes the last is refused \
                    (nats-server refuses every `websocket` change)",
                ),
            |e, b, _| websocket_authorization(e, &mut b.warnings).map(|a| b.ws.authorization = Some(a)),
        ),
        Key(
            &Opt::new(&["jwt_cookie"], Ty::String, Reload::Restart)
                .means("The cookie holding the user JWT when CONNECT carries none (operator mode)")
                .differs(
                    "Needs `same_origin` or `allowed_origins`: without an origin rule any web page \
                    could log in as the user",
                ),
            |e, b, _| {
                b.ws.jwt_cookie = Some(section::word(&e.value, "jwt_cookie")?.to_owned());
                // A cookie is an ambient credential: the browser sends it with a
                // WebSocket any page opens, so without an origin rule every site
                // the user visits logs in as them (nats-server accepts this).
                if !b.ws.same_origin && b.ws.allowed_origins.is_empty() {
                    return Err(ConfigError::at(
                    ErrorKind::Invalid,
                    &e.key_pos,
                    "websocket jwt_cookie needs same_origin: true or allowed_origins: the browser sends the cookie with a WebSocket any web page opens, so without an origin rule every site the user visits could log in as them (cross-site WebSocket hijacking)",
                ));
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["no_auth_user"], Ty::String, Reload::Yes)
                .means("The configured user WebSocket clients without credentials log in as")
                .differs(
                    "Reloaded while the listener keeps a login of its own (`authorization` or \
                    `no_auth_user`); a reload that adds the first or removes the last is refused \
                    (nats-server refuses every `websocket` change)",
                ),
            |e, b, _| section::user_name(&e.value, "no_auth_user").map(|n| b.ws.no_auth_user = Some(n.to_owned())),
        ),
        Key(
            &Opt::new(&["trusted_proxies"], Ty::Strings, Reload::Restart)
                .means("Addresses or CIDRs whose `X-Forwarded-For` is believed")
                .differs("warden only"),
            |e, b, _| trusted_proxies(&e.value).map(|p| b.ws.trusted_proxies.extend(p)),
        ),
        Key(
            &Opt::new(&["proxy_protocol"], Ty::Bool, Reload::Restart)
                .means(
                    "Connections from `trusted_proxies` start with a PROXY protocol header (v1 or v2) \
                    naming the client, read before TLS; a connection from them without one is closed",
                )
                .default("false")
                .differs("nats-server has it only for the client listener; warden needs `trusted_proxies`"),
            |e, b, _| section::boolean(&e.value, "proxy_protocol").map(|p| b.ws.proxy_protocol = p),
        ),
        Check(|b, f| {
            match f.get("proxy_protocol") {
            Some(e) if b.ws.proxy_protocol && b.ws.trusted_proxies.is_empty() => Err(invalid(
                &e.value,
                "proxy_protocol needs `trusted_proxies: [CIDR, ...]`, the load balancers allowed to name a client's address",
            )),
            _ => Ok(()),
        }
        }),
        Key(
            &Opt::new(&["accept_rate"], Ty::Block(&super::accept_rate::ACCEPT_RATE), Reload::Restart)
                .means(
                    "New connections a second the WebSocket listener keeps, in all and per peer address \
                    (a trusted proxy's count only in all); the excess is closed at accept, before TLS",
                )
                .default("no limit")
                .differs("warden only"),
            |e, b, _| super::accept_rate::read(&e.value, "websocket accept_rate").map(|r| b.ws.accept_rate = r),
        ),
    ],
};

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

/// What the listener's `authorization {}` is read into.
pub(crate) struct WsAuth {
    auth: Authorization,
    warnings: Vec<String>,
}

/// `authorization { user, password | token, timeout }` of the listener.
fn websocket_authorization(entry: &Entry, warnings: &mut Vec<String>) -> Result<Authorization, ConfigError> {
    let mut b = WsAuth { auth: Authorization::default(), warnings: Vec::new() };
    WEBSOCKET_AUTH.read_value("websocket authorization", &entry.value, &mut b)?;
    warnings.append(&mut b.warnings);
    let auth = b.auth;
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

pub(crate) static WEBSOCKET_AUTH: Block<WsAuth> = Block {
    unsupported: &["users", "nkeys"],
    steps: &[
        Key(
            &Opt::new(&["user", "username"], Ty::String, Reload::Yes)
                .means("The user WebSocket clients log in as, with `password`"),
            |e, b, _| section::user_name(&e.value, "user").map(|u| b.auth.user = Some(u.to_owned())),
        ),
        Key(&Opt::new(&["password", "pass"], Ty::Secret, Reload::Yes).means("Its password"), |e, b, _| {
            let password =
                super::auth::checked_secret(&e.value, "password", "the websocket password", &mut b.warnings)?;
            b.auth.password = Some(password);
            Ok(())
        }),
        Key(
            &Opt::new(&["token"], Ty::Secret, Reload::Yes)
                .means("The token WebSocket clients log in with, instead of a user"),
            |e, b, _| {
                let token = super::auth::checked_secret(&e.value, "token", "the websocket token", &mut b.warnings)?;
                b.auth.token = Some(token);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["timeout"], Ty::Seconds, Reload::Restart)
                .means("Time a WebSocket client has to log in; 0 = the client listener's")
                .default("the client auth timeout"),
            |e, b, _| {
                let (d, _) = section::duration(&e.value, "authorization timeout", Bare::FractionalSeconds)?;
                b.auth.timeout = Some(d).filter(|d| !d.is_zero());
                Ok(())
            },
        ),
    ],
};

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

/// A `trusted_proxies` list: addresses or CIDRs, each checked.
pub(super) fn trusted_proxies(value: &Value) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for v in section::array(value, "trusted_proxies")? {
        let text = section::string(v, "trusted_proxies")?;
        if crate::cidr::Cidr::parse_or_address(text).is_none() {
            return Err(invalid(v, format!("trusted_proxies: {text:?} is not an IP address or CIDR")));
        }
        out.push(text.to_owned());
    }
    Ok(out)
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
