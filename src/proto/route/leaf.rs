//! The INFO and CONNECT JSON of a leaf node connection, with nats-server's
//! field names (`server/leafnode.go`: `Info`, `leafConnectInfo`).

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The hub's INFO to a leaf. A nats-server leaf (2.9 and 2.15 alike) takes
/// an INFO without `client_id` or without a `leafnode_urls` array for one
/// from the wrong port, so both are always sent. No `compression` field:
/// a 2.10+ leaf then connects without compression.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LeafInfo {
    /// The hub's server id.
    pub server_id: String,
    /// The hub's server name.
    pub server_name: String,
    /// Software version.
    pub version: String,
    /// Protocol level.
    pub proto: i64,
    /// Leaf listen host.
    pub host: String,
    /// Leaf listen port.
    pub port: u16,
    /// HMSG understood.
    pub headers: bool,
    /// Leafs must log in (always).
    pub auth_required: bool,
    /// TLS is required.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    /// Largest payload.
    pub max_payload: usize,
    /// The connection's id; never 0.
    pub client_id: u64,
    /// The nonce a leaf with an nkey or a user JWT signs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// Always true: this INFO is the greeting.
    pub info_on_connect: bool,
    /// After login: this INFO answers the CONNECT.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub connect_info: bool,
    /// After login: the account the leaf is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    /// After login: what the leaf user may receive (its subscribe
    /// permissions); a leaf sends interest only within them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    /// After login: what the leaf user may send (its publish permissions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    /// Where leafs may reconnect (empty with `no_advertise`, never absent).
    pub leafnode_urls: Vec<String>,
    /// Cluster name of the hub.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
}

/// Allow and deny lists in a hub's INFO (nats-server's `SubjectPermission`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SubjectPermission {
    /// Subjects allowed; empty means no allow list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Subjects denied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// A leaf's CONNECT.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LeafConnect {
    /// Software version.
    pub version: String,
    /// User name (from the remote URL).
    pub user: Option<String>,
    /// Password.
    pub pass: Option<Secret>,
    /// Token.
    pub auth_token: Option<Secret>,
    /// A user JWT (a `.creds` file's).
    pub jwt: Option<Secret>,
    /// The nonce signed with the user's or nkey's seed.
    pub sig: Option<String>,
    /// The nkey public key (2.11+).
    pub nkey: Option<String>,
    /// The leaf's server id.
    pub server_id: String,
    /// The leaf's server name.
    pub name: String,
    /// The leaf's cluster name.
    pub cluster: String,
    /// HMSG understood.
    pub headers: bool,
    /// The leaf asks to play the hub (its remote says `hub: true`).
    #[serde(rename = "is_hub")]
    pub hub: bool,
    /// Protocol level.
    pub protocol: i64,
    /// Present only when a *client* connects to the leaf port by mistake.
    pub lang: Option<String>,
    /// Present only when a *gateway* connects to the leaf port by mistake.
    pub gateway: Option<String>,
}
