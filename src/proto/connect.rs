//! The CONNECT options a client sends.

use serde::Deserialize;

use crate::secret::Secret;

/// CONNECT JSON. Omitted `verbose`, `pedantic` and `echo` default to `true`,
/// as in nats-server (its options start from `{verbose, pedantic, echo}` and
/// the JSON is read over them); official clients always send all three.
/// Unknown fields are ignored, as Go's decoder does.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConnectOptions {
    /// Acknowledge every accepted op with `+OK`.
    pub verbose: bool,
    /// Extra subject checks on publish.
    pub pedantic: bool,
    /// The client wants TLS.
    pub tls_required: bool,
    /// Token credential.
    pub auth_token: Option<Secret>,
    /// User name credential.
    pub user: Option<String>,
    /// Password credential.
    pub pass: Option<Secret>,
    /// Client-chosen connection name.
    pub name: Option<String>,
    /// Client library language.
    pub lang: Option<String>,
    /// Client library version.
    pub version: Option<String>,
    /// Protocol level: 0 (original) or 1 (async INFO).
    pub protocol: i64,
    /// Deliver this connection's own publications to its subscriptions.
    pub echo: bool,
    /// The client understands HMSG.
    pub headers: bool,
    /// Answer requests nobody listens to with a 503 status message.
    pub no_responders: bool,
    /// The nkey user's signature of the INFO nonce (base64url).
    pub sig: Option<String>,
    /// The nkey user's public key.
    pub nkey: Option<String>,
    /// User JWT (not supported).
    pub jwt: Option<Secret>,
    /// Account selection: refused like nats-server does for plain users.
    pub account: Option<String>,
    /// Account creation: refused.
    pub new_account: Option<bool>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            verbose: true,
            pedantic: true,
            tls_required: false,
            auth_token: None,
            user: None,
            pass: None,
            name: None,
            lang: None,
            version: None,
            protocol: 0,
            echo: true,
            headers: false,
            no_responders: false,
            sig: None,
            nkey: None,
            jwt: None,
            account: None,
            new_account: None,
        }
    }
}

impl ConnectOptions {
    /// Decodes the JSON of a CONNECT line.
    pub fn parse(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_flags_default_like_nats_server() {
        let c = ConnectOptions::parse(b"{}").unwrap();
        assert!(c.verbose && c.pedantic && c.echo && !c.headers);
        let c = ConnectOptions::parse(br#"{"verbose":false,"pass":"s3cret","x":1}"#).unwrap();
        assert!(!c.verbose);
        assert!(!format!("{c:?}").contains("s3cret"), "passwords never reach Debug output");
        assert!(ConnectOptions::parse(br#"{"verbose":"yes"}"#).is_err());
        assert!(ConnectOptions::parse(b"{bad").is_err());
    }
}
