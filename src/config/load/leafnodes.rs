//! `leafnodes { ... }`: the port leaf node servers connect to, with this
//! server as their hub.

use super::{tls, LOOPBACK};
use crate::config::error::{conflict, invalid, ConfigError, ErrorKind};
use crate::config::options::{LeafnodeOptions, Options};
use crate::config::schema::{Block, Step::Check, Step::Key};
use crate::config::section::{self, Bare};
use crate::config::value::{Entry, Kind, Pos};

/// nats-server's `leafnodes` keys that warden does not implement yet.
const UNSUPPORTED_LEAFNODES: &[&str] = &[
    "authorization",
    "remotes",
    "isolate_leafnode_interest",
    "min_version",
    "reconnect",
    "reconnect_interval",
    "tls_map",
    "proxy_required",
    "write_deadline",
];

/// Why an unauthenticated leaf listener is refused, and the ways out.
pub const UNAUTHENTICATED_LEAFNODES: &str = "leafnodes: leaf nodes log in like clients, and clients need no credentials here: anyone who reaches the leafnode port could read and inject every message. Configure users (authorization, accounts or operator mode) or, on a trusted loopback-only network, `insecure_allow_unauthenticated_leafnodes: true`";

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
}

/// `leafnodes { ... }`.
pub(super) fn read(entry: &Entry) -> Result<LeafnodeOptions, ConfigError> {
    let mut b = Leafnodes { at: entry.key_pos.clone(), l: LeafnodeOptions::default() };
    LEAFNODES.read_value("leafnodes", &entry.value, &mut b)?;
    Ok(b.l)
}

pub(super) static LEAFNODES: Block<Leafnodes> = Block {
    unsupported: UNSUPPORTED_LEAFNODES,
    steps: &[
        Key(&["listen"], |e, b, f| {
            if let Some(other) = f.get("host").or(f.get("port")) {
                return Err(conflict(other, "`listen` already sets the leafnode host and port; remove one of them"));
            }
            (b.l.host, b.l.port) = section::host_port(&e.value, "leafnodes listen", LOOPBACK)?;
            Ok(())
        }),
        Check(|b, f| match f.get("listen").or(f.get("port")) {
            Some(_) => Ok(()),
            None => Err(ConfigError::at(ErrorKind::Invalid, &b.at, "leafnodes needs `listen` or `port`")),
        }),
        Key(&["port"], |e, b, _| section::port(&e.value, "leafnodes port").map(|p| b.l.port = p)),
        Key(&["host", "net"], |e, b, _| section::word(&e.value, "leafnodes host").map(|h| b.l.host = h.to_owned())),
        Key(&["advertise"], |e, b, _| {
            let (host, port) = section::host_port(&e.value, "leafnodes advertise", "")?;
            if host.is_empty() || port == 0 {
                return Err(invalid(&e.value, "leafnodes advertise must be host:port"));
            }
            b.l.advertise = Some(format!("{host}:{port}"));
            Ok(())
        }),
        Key(&["no_advertise"], |e, b, _| section::boolean(&e.value, "no_advertise").map(|n| b.l.no_advertise = n)),
        Key(&["tls"], |e, b, _| tls::read(&e.value, "leafnodes tls").map(|t| b.l.tls = Some(t))),
        Key(&["auth_timeout"], |e, b, _| {
            let (d, _) = section::nonzero_duration(&e.value, "leafnodes auth_timeout", Bare::FractionalSeconds)?;
            b.l.auth_timeout = Some(d);
            Ok(())
        }),
        // warden does not compress (S2 is where nats-server's pre-auth
        // panics were); a 2.10+ leaf negotiates down to none by itself.
        Key(&["compression"], |e, _, _| match &e.value.kind {
            Kind::Bool(false) => Ok(()),
            Kind::String(s) if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("disabled") => Ok(()),
            _ => Err(invalid(&e.value, NO_COMPRESSION)),
        }),
        Key(&["insecure_allow_unauthenticated_leafnodes"], |e, b, _| {
            section::boolean(&e.value, "insecure_allow_unauthenticated_leafnodes")
                .map(|a| b.l.allow_unauthenticated = a)
        }),
    ],
};
