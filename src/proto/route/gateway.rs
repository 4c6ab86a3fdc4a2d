//! The gateway handshake's JSON (nats-server's field names): the INFO a
//! gateway listener sends and every gateway command, and the CONNECT of the
//! server that dialled. The ops after it are the route ops with an account
//! (see [`super::Dialect::Gateway`]).

use base64::Engine;
use serde::{Deserialize, Serialize};

/// `gateway_cmd`: the INFO gossips another gateway's URLs.
pub const CMD_GOSSIP: u8 = 1;
/// `gateway_cmd`: all of an account's interest follows.
pub const CMD_ALL_SUBS_START: u8 = 2;
/// `gateway_cmd`: all of an account's interest was sent.
pub const CMD_ALL_SUBS_COMPLETE: u8 = 3;

/// A gateway INFO.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayInfo {
    /// The sender's server id.
    pub server_id: String,
    /// The sender's server name.
    pub server_name: String,
    /// Its version.
    pub version: String,
    /// Protocol level.
    pub proto: i64,
    /// Host of its gateway listener.
    pub host: String,
    /// Port of its gateway listener.
    pub port: u16,
    /// HMSG understood.
    pub headers: bool,
    /// The gateway CONNECT needs credentials.
    pub auth_required: bool,
    /// TLS is required.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    /// Largest payload it takes.
    pub max_payload: usize,
    /// The sender's cluster (gateway) name; absent on a client or route port.
    pub gateway: String,
    /// Gateway URLs of its cluster's servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateway_urls: Vec<String>,
    /// Its own gateway URL.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway_url: String,
    /// Replies mapped with the `_GR_.` prefix (always, since 2.2).
    pub gateway_nrp: bool,
    /// Every account is in interest-only mode from the start (2.9+).
    pub gateway_iom: bool,
    /// A command ([`CMD_GOSSIP`], ...), 0 for the handshake's INFO.
    #[serde(skip_serializing_if = "is_zero")]
    pub gateway_cmd: u8,
    /// The account a command is about (Go's `[]byte`: base64 in JSON).
    #[serde(skip_serializing_if = "Option::is_none", with = "base64_bytes")]
    pub gateway_cmd_payload: Option<Vec<u8>>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// A gateway CONNECT.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConnect {
    /// Always false.
    pub echo: bool,
    /// Always false.
    pub verbose: bool,
    /// Always false.
    pub pedantic: bool,
    /// Gateway user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Gateway password (sent in the clear inside the connection, as
    /// nats-server does: use gateway TLS).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "super::expose_secret")]
    pub pass: Option<crate::secret::Secret>,
    /// TLS is in use.
    pub tls_required: bool,
    /// HMSG understood.
    pub headers: bool,
    /// The sender's server id.
    pub name: String,
    /// The sender's cluster (gateway) name; a client or route has none.
    pub gateway: String,
}

/// Go's JSON for `[]byte`: standard base64.
mod base64_bytes {
    use super::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text {
            None => Ok(None),
            Some(t) => base64::engine::general_purpose::STANDARD.decode(t).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_servers_info_reads() {
        // What nats-server 2.15.1 sent on its gateway port (127.0.0.1).
        let json = br#"{"server_id":"NCNAMV6RN2T3J4OD5DCMRWLJ2IA4YJVVZADXT4QYNU25MYFOYCYUAWZQ","server_name":"nsA","version":"2.15.1","proto":3,"go":"","host":"127.0.0.1","port":15722,"headers":true,"auth_required":true,"max_payload":1048576,"gateway":"A","gateway_urls":["127.0.0.1:15722"],"gateway_url":"127.0.0.1:15722","gateway_nrp":true,"gateway_iom":true}"#;
        let info: GatewayInfo = serde_json::from_slice(json).unwrap();
        assert_eq!((info.gateway.as_str(), info.gateway_iom, info.gateway_nrp), ("A", true, true));
        assert_eq!(info.gateway_urls, ["127.0.0.1:15722"]);
    }

    #[test]
    fn a_command_names_its_account_in_base64_as_go_writes_bytes() {
        let info = GatewayInfo {
            gateway: "A".into(),
            gateway_cmd: CMD_ALL_SUBS_START,
            gateway_cmd_payload: Some(b"$G".to_vec()),
            ..GatewayInfo::default()
        };
        let json = serde_json::to_string(&info).unwrap();
        assert!(json.contains(r#""gateway_cmd":2"#) && json.contains(r#""gateway_cmd_payload":"JEc=""#), "{json}");
        let back: GatewayInfo = serde_json::from_str(&json).unwrap();
        assert_eq!(back.gateway_cmd_payload.as_deref(), Some(&b"$G"[..]));
    }
}
