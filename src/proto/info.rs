//! The INFO a server sends on connect.

use serde::Serialize;

/// The nats-server version whose protocol and features warden implements,
/// reported as INFO `version` because client libraries gate features on it
/// (headers need 2.2, for example; a `0.1.0` read as a server that predates
/// them). warden's own version travels in `warden_version`.
pub const NATS_VERSION: &str = "2.9.10";

/// warden's own version, for INFO `warden_version` and `/varz`.
pub const WARDEN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Server INFO, with nats-server's field names. Optional fields are left out
/// when they do not apply, as nats-server does.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ServerInfo {
    /// Random id per start, nkey-shaped (`N` + 55 base32 characters).
    pub server_id: String,
    /// Configured name, else the id.
    pub server_name: String,
    /// The nats-server version warden speaks ([`NATS_VERSION`]).
    pub version: String,
    /// warden's own version ([`WARDEN_VERSION`]).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub warden_version: String,
    /// Protocol level (1).
    pub proto: u8,
    /// Listen host.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Headers are supported.
    pub headers: bool,
    /// Largest accepted payload.
    pub max_payload: usize,
    /// This connection's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// This connection's peer address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Credentials are needed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    /// TLS is needed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    /// TLS is offered but plain text is allowed too (`allow_non_tls`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_available: bool,
    /// Client certificates are needed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_verify: bool,
    /// Cluster name, when clustered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Client URLs of every server in the cluster, for reconnecting.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// A fresh per-connection value for nkey users to sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The server's curve key (`X...`), when the auth callout encrypts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xkey: Option<String>,
    /// Lame-duck mode: the server is about to go away.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ldm: bool,
}

impl ServerInfo {
    /// The full wire line, `INFO {json}\r\n`.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = b"INFO ".to_vec();
        // Serializing plain strings and numbers cannot fail.
        if serde_json::to_writer(&mut line, self).is_err() {
            line.extend_from_slice(b"{}");
        }
        line.extend_from_slice(b"\r\n");
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_omitted() {
        let info = ServerInfo { proto: 1, client_id: Some(3), ..Default::default() };
        let line = String::from_utf8(info.to_line()).unwrap();
        assert!(line.starts_with("INFO {\"server_id\""));
        assert!(line.ends_with("}\r\n"));
        assert!(line.contains("\"client_id\":3"));
        assert!(!line.contains("auth_required"));
    }
}
