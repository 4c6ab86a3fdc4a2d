//! The route protocol of nats-server 2.9, sans IO: the INFO and CONNECT
//! JSON one server sends another, a parser for the ops a peer sends, and
//! the encoders for the ops warden sends. Everything that speaks about
//! accounts on a route is here, so accounts extend it in one place.
//!
//! Wire forms (`acc` is the account name, `$G` for the global account):
//! - `RS+ acc subject [queue weight]`, `RS- acc subject [queue]`: interest.
//! - `RMSG acc subject [reply] size` / `RMSG acc subject + reply q1 q2 size` /
//!   `RMSG acc subject | q1 q2 size`, and `HMSG` with a header size before
//!   the total: a message, with the queue groups the receiver should serve.
//! - `LS+ origin acc ...` / `LS- origin acc ...`: interest with a leafnode
//!   origin, read like `RS+`/`RS-`.
//!
//! A pinned account's route connection (2.10+ `cluster { accounts }`)
//! speaks the route ops without the account, which its first INFO names
//! ([`Dialect::PinnedRoute`]): `RS+ subject ...`, `RMSG subject ...`.
//!
//! A leaf node connection speaks the same ops without the account, which
//! it binds once at CONNECT ([`Dialect::Leaf`]): `LS+ subject [queue
//! weight]`, `LS- subject [queue]`, `LMSG subject ...`, `HMSG subject ...`.

mod encode;
pub mod gateway;
mod leaf;
mod parse;

use serde::{Deserialize, Serialize};

pub use encode::{rmsg_len_bound, rs_minus, rs_plus, write_rmsg, FrameTo, InterestTo};
pub use leaf::{LeafConnect, LeafInfo, SubjectPermission};
pub use parse::{parse, parse_dialect, Dialect, QueueNames, RouteMsg, RouteOp, RouteProtoError, MAX_ROUTE_LINE};

/// The account every route message belongs to while warden hosts one: `$G`.
pub const GLOBAL_ACCOUNT: &[u8] = b"$G";

/// A route INFO, with nats-server's field names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteInfo {
    /// The sender's server id.
    pub server_id: String,
    /// The sender's server name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    /// Software version.
    pub version: String,
    /// Protocol level.
    pub proto: i64,
    /// Route listen host.
    pub host: String,
    /// Route listen port.
    pub port: u16,
    /// The sender understands HMSG.
    pub headers: bool,
    /// Routes need credentials.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    /// Routes need TLS.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    /// Largest payload.
    pub max_payload: usize,
    /// Cluster name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Client URLs of the sender, for clients' reconnect lists.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// Route URL of the server this INFO describes (gossip).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// The sender understands leafnode-origin cluster info.
    pub lnoc: bool,
    /// The sender is in lame-duck mode.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ldm: bool,
    /// Route connections the sender keeps to each pooling peer (2.10+);
    /// absent (0) from a server that does not pool.
    #[serde(skip_serializing_if = "is_zero")]
    pub route_pool_size: i64,
    /// In a pooled connection's first INFO from the server that dialled
    /// it: its place in the pool.
    #[serde(skip_serializing_if = "is_zero")]
    pub route_pool_idx: i64,
    /// In a pinned account's connection's first INFO from the server that
    /// dialled it: the account, which its ops then leave out.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route_account: String,
    /// The sender's gateway URL (`host:port`), when it runs gateways: how
    /// the servers of a cluster learn each other's, to name them all to
    /// other clusters (nats-server's `gateway_url`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway_url: String,
    /// In a gateway gossip over a route (`gateway_cmd` 1, sent with the
    /// server id `GW<id>` so older servers ignore it): a cluster the sender
    /// has a gateway to.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// That cluster's gateway URLs (`host:port`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateway_urls: Vec<String>,
    /// 1 for a gateway gossip.
    #[serde(skip_serializing_if = "is_zero_u8")]
    pub gateway_cmd: u8,
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A route CONNECT, with nats-server's field names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteConnect {
    /// Always true for routes.
    pub echo: bool,
    /// Always false for routes.
    pub verbose: bool,
    /// Always false for routes.
    pub pedantic: bool,
    /// Route user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Route password (sent in the clear inside the route connection, as
    /// nats-server does: use route TLS).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_secret")]
    pub pass: Option<crate::secret::Secret>,
    /// TLS is in use.
    pub tls_required: bool,
    /// HMSG understood.
    pub headers: bool,
    /// The sender's server id.
    pub name: String,
    /// Cluster name.
    pub cluster: String,
    /// Leafnode-origin cluster understood.
    pub lnoc: bool,
    /// Present only when a *client* connects to the route port by mistake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// Writes the password of an outgoing route CONNECT; `Secret` itself has
/// no `Serialize`, so secrets cannot end up in other JSON by accident.
fn expose_secret<S: serde::Serializer>(pass: &Option<crate::secret::Secret>, serializer: S) -> Result<S::Ok, S::Error> {
    match pass {
        Some(secret) => serializer.serialize_str(secret.expose()),
        None => serializer.serialize_none(),
    }
}

/// `VERB {json}\r\n` for an INFO or CONNECT.
pub fn json_line(verb: &str, value: &impl Serialize) -> Vec<u8> {
    let mut line = format!("{verb} ").into_bytes();
    if serde_json::to_writer(&mut line, value).is_err() {
        line.extend_from_slice(b"{}");
    }
    line.extend_from_slice(b"\r\n");
    line
}

#[cfg(test)]
mod tests;
