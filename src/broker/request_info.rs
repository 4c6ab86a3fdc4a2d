//! Who a connection is, in nats-server's `ClientInfo` JSON: the `client`
//! of the connect and disconnect advisories, and the `Nats-Request-Info`
//! header a request carries into a service export.
//!
//! nats-server puts that header on every request that crosses a service
//! import (`processServiceImport`): the requester's account and RTT, and,
//! when the import says `share: true`, who it is (connection id, address,
//! user, name, library, start, this server and cluster). A service reads it
//! as who asked, so only the server may write it: whatever the requester's
//! message carried under that name is removed first
//! ([`crate::proto::headers::with_request_info`]). Fields nats-server
//! fills in that warden does not track (`jwt`, `issuer_key`, `name_tag`,
//! `tags`) are left out.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Broker, Client, ClientKind};

/// The header's name.
pub const REQUEST_INFO: &str = "Nats-Request-Info";

/// nats-server's `ClientInfo`, the fields warden knows, in its order.
#[derive(Debug, Default, Serialize)]
pub struct ClientInfo {
    /// When the connection started.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub start: String,
    /// The peer's address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Connection id.
    #[serde(skip_serializing_if = "is_zero")]
    pub id: u64,
    /// The account.
    pub acc: String,
    /// The user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// CONNECT `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// CONNECT `lang`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// CONNECT `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    /// Nanoseconds (Go's `time.Duration`); 0 is left out, as nats-server.
    #[serde(skip_serializing_if = "is_zero")]
    pub rtt: u64,
    /// The server's name (`share` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The server's cluster (`share` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// When it closed (disconnect advisories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// `Client` or `Leafnode`.
    #[serde(skip_serializing_if = "is_empty")]
    pub kind: &'static str,
    /// `nats` for a client.
    #[serde(skip_serializing_if = "is_empty")]
    pub client_type: &'static str,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_empty(s: &&str) -> bool {
    s.is_empty()
}

/// RFC 3339 in UTC (Go's `time.Time` JSON form).
pub fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(&Rfc3339).unwrap_or_default()
}

impl ClientInfo {
    /// Everything known of `client` (`stop`: when it closed).
    pub fn of(client: &Client, stop: Option<SystemTime>) -> ClientInfo {
        let meta = client.meta.lock();
        let leaf = client.kind == ClientKind::Leaf;
        ClientInfo {
            start: rfc3339(client.start),
            host: client.addr.ip().to_string(),
            id: client.id,
            acc: meta.account.as_deref().unwrap_or(crate::config::GLOBAL_ACCOUNT).to_owned(),
            user: meta.user.clone(),
            name: meta.name.clone(),
            lang: meta.lang.clone(),
            ver: meta.version.clone(),
            rtt: client.rtt_nanos.load(Ordering::Relaxed),
            server: None,
            cluster: None,
            stop: stop.map(rfc3339),
            kind: if leaf { "Leafnode" } else { "Client" },
            client_type: if leaf { "" } else { "nats" },
        }
    }

    /// The `Nats-Request-Info` of a request `client` makes through a
    /// service import: account and RTT, or with `share` everything known
    /// and this server's name and cluster (for a leaf connection, the
    /// leaf server's name, as nats-server's `addServerAndClusterInfo`).
    pub fn request(client: &Client, broker: &Broker, share: bool) -> Vec<u8> {
        let info = if share {
            let mut info = ClientInfo::of(client, None);
            info.server = Some(match client.kind {
                ClientKind::Leaf => client.meta.lock().name.clone().unwrap_or_default(),
                _ => broker.identity.name.clone(),
            });
            info.cluster = broker.opts.cluster.as_ref().and_then(|c| c.name.clone());
            info
        } else {
            ClientInfo {
                acc: client.meta.lock().account.as_deref().unwrap_or(crate::config::GLOBAL_ACCOUNT).to_owned(),
                rtt: client.rtt_nanos.load(Ordering::Relaxed),
                ..ClientInfo::default()
            }
        };
        serde_json::to_vec(&info).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn a_shared_request_says_who_asked_and_an_unshared_one_only_the_account() {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let identity = crate::broker::ServerIdentity::new(Some("here".into())).unwrap();
        let broker = Broker::new(crate::config::Options::default(), addr, identity);
        let client = Client::new(7, addr, 1024);
        {
            let mut meta = client.meta.lock();
            meta.account = Some("A".into());
            meta.user = Some("alice".into());
            meta.lang = Some("python3".into());
        }
        let shared: serde_json::Value = serde_json::from_slice(&ClientInfo::request(&client, &broker, true)).unwrap();
        assert_eq!(shared["acc"], "A");
        assert_eq!(shared["user"], "alice");
        assert_eq!(shared["id"], 7);
        assert_eq!(shared["host"], "127.0.0.1");
        assert_eq!(shared["kind"], "Client");
        assert_eq!(shared["server"], "here");
        let plain = String::from_utf8(ClientInfo::request(&client, &broker, false)).unwrap();
        assert_eq!(plain, r#"{"acc":"A"}"#, "an RTT of 0 is left out, as nats-server");
    }
}
