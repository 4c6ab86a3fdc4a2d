//! The `nats` claims of each token type, field for field as `nats-io/jwt`
//! v2 writes them (`omitempty` everywhere, so every field defaults).
//!
//! Limits keep the library's encoding: a negative number means no limit and
//! an absent one is 0, which nats-server enforces as zero (the libraries
//! write `-1` for "unlimited"). User and activation claims refuse fields
//! warden does not know: those are restrictions on a login, and ignoring
//! one would let in someone its issuer meant to keep out. Account and
//! operator claims refuse the features warden does not implement when they
//! are used (latency tracking, a callout `authorization`, ...), and ignore
//! the rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::ClaimType;
use crate::nkeys::KeyType;

/// An operator: the root of trust, self-signed or signed by one of its
/// signing keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct OperatorClaims {
    /// Other keys that may sign accounts for it.
    pub signing_keys: Vec<String>,
    /// The system account's public key.
    pub system_account: String,
    /// Only signing keys (not the operator's own) may sign accounts.
    pub strict_signing_key_usage: bool,
    /// The least server version the operator requires.
    pub assert_server_version: String,
    /// Where nats-server's URL resolver would fetch accounts (unused here).
    pub account_server_url: String,
    /// The operator's service URLs (informational).
    pub operator_service_urls: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
}

impl ClaimType for OperatorClaims {
    const TYPE: &'static str = "operator";
    const ISSUERS: &'static [KeyType] = &[KeyType::Operator];
    const SUBJECT: KeyType = KeyType::Operator;
}

/// An account: a tenant, signed by the operator or one of its signing keys.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default)]
pub struct AccountClaims {
    /// What it imports from other accounts.
    pub imports: Vec<JwtImport>,
    /// What it offers other accounts.
    pub exports: Vec<JwtExport>,
    /// Its limits.
    pub limits: JwtLimits,
    /// Keys that may sign its users, plain or scoped.
    pub signing_keys: Vec<SigningKey>,
    /// Revoked users: user key (or `*`) to the time before which its JWTs
    /// are revoked.
    pub revocations: BTreeMap<String, i64>,
    /// Permissions of users whose JWT has none.
    pub default_permissions: JwtPermissions,
    /// Subject mappings: a source subject (or pattern) to its weighted
    /// destinations, applied like an account's `mappings {}` in a config.
    pub mappings: BTreeMap<String, Vec<WeightedMapping>>,
    /// Auth callout settings of 2.10+ (not implemented: refused when present).
    pub authorization: serde_json::Value,
    /// Tags.
    pub tags: Vec<String>,
    /// Message tracing of nats-server 2.11+: where the traces of sampled
    /// `traceparent` messages go, as a config account's `msg_trace`.
    pub trace: Option<JwtTrace>,
}

/// An account's `trace` claim (the Go library's `MsgTrace`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct JwtTrace {
    /// The subject trace events go to: a literal subject.
    pub dest: String,
    /// Percent of sampled messages traced, 1 to 100; 0 (absent) is 100,
    /// as the Go library's validation sets it.
    pub sampling: i64,
}

impl ClaimType for AccountClaims {
    const TYPE: &'static str = "account";
    const ISSUERS: &'static [KeyType] = &[KeyType::Operator];
    const SUBJECT: KeyType = KeyType::Account;
}

/// One destination of a `mappings` claim entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct WeightedMapping {
    /// The destination subject, with `$N` and `{{function(...)}}` tokens.
    pub subject: String,
    /// Percent of the source's messages sent here; 0 (or absent) means 100,
    /// as the Go library's `GetWeight` reads it.
    pub weight: u8,
    /// Applies only on servers of this cluster; empty: anywhere.
    pub cluster: String,
}

impl WeightedMapping {
    /// The weight as nats-server applies it (absent is 100).
    pub fn weight(&self) -> u8 {
        match self.weight {
            0 => 100,
            w => w,
        }
    }
}

/// An account's limits (the JetStream ones are accepted and ignored:
/// warden has no JetStream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct JwtLimits {
    /// Subscriptions per connection.
    pub subs: i64,
    /// Bytes of data (not enforced: nats-server does not either for clients).
    pub data: i64,
    /// Largest message payload.
    pub payload: i64,
    /// Most imports.
    pub imports: i64,
    /// Most exports.
    pub exports: i64,
    /// Whether exports may use wildcards.
    pub wildcards: bool,
    /// Whether user JWTs may be bearer tokens.
    pub disallow_bearer: bool,
    /// Live connections.
    pub conn: i64,
    /// Leaf node connections (warden has none).
    pub leaf: i64,
}

/// A key that may sign an account's users.
#[derive(Debug, Clone, PartialEq)]
pub enum SigningKey {
    /// Signs users with the permissions their JWT carries.
    Plain(String),
    /// Signs users whose permissions come from its template.
    Scoped(Box<UserScope>),
}

impl SigningKey {
    /// The key.
    pub fn key(&self) -> &str {
        match self {
            SigningKey::Plain(key) => key,
            SigningKey::Scoped(scope) => &scope.key,
        }
    }
}

impl<'de> Deserialize<'de> for SigningKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Plain(String),
            Scoped(Box<UserScope>),
        }
        Ok(match Either::deserialize(deserializer)? {
            Either::Plain(key) => SigningKey::Plain(key),
            Either::Scoped(scope) => SigningKey::Scoped(scope),
        })
    }
}

/// A scoped signing key: users it signs get `template` (with `{{name()}}`,
/// `{{subject()}}`, `{{account-name()}}`, `{{account-subject()}}`,
/// `{{tag(x)}}` and `{{account-tag(x)}}` filled in) instead of the
/// permissions in their own JWT.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserScope {
    /// `user_scope`.
    pub kind: String,
    /// The signing key.
    pub key: String,
    /// A label.
    #[serde(default)]
    pub role: String,
    /// The users' permissions and limits.
    #[serde(default)]
    pub template: UserClaims,
}

/// A service or stream export.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default)]
pub struct JwtExport {
    /// A label.
    pub name: String,
    /// The exported subject (pattern).
    pub subject: String,
    /// Stream or service.
    #[serde(rename = "type")]
    pub kind: ExportType,
    /// Importers need an activation token.
    pub token_req: bool,
    /// Revoked activations: importer key (or `*`) to a time.
    pub revocations: BTreeMap<String, i64>,
    /// `Singleton`, `Stream` or `Chunked`.
    pub response_type: String,
    /// How long responses may take, in nanoseconds.
    pub response_threshold: u64,
    /// Latency tracking (not implemented: refused when present).
    pub service_latency: Option<serde_json::Value>,
    /// Account token position (not implemented: refused when nonzero).
    pub account_token_position: u32,
    /// Advertised (informational).
    pub advertise: bool,
    /// A service export across which requests are traced (only on a
    /// service, as a config export's `allow_trace`).
    pub allow_trace: bool,
    /// Description.
    pub description: String,
    /// Info URL.
    pub info_url: String,
}

/// An import from another account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct JwtImport {
    /// A label.
    pub name: String,
    /// The exporter's subject.
    pub subject: String,
    /// The exporter's public key.
    pub account: String,
    /// The activation token, when the export needs one.
    pub token: String,
    /// Deprecated: a stream import's prefix, or a service import's subject
    /// in the exporter.
    pub to: String,
    /// The subject it has in the importing account.
    pub local_subject: String,
    /// Stream or service.
    #[serde(rename = "type")]
    pub kind: ExportType,
    /// A service import's requests carry the requester's details
    /// (`Nats-Request-Info`), as a config import's `share`.
    pub share: bool,
    /// A stream import across which messages are traced (only on a
    /// stream, as a config import's `allow_trace`).
    pub allow_trace: bool,
}

/// What an export or import carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportType {
    /// Messages.
    #[default]
    Stream,
    /// Requests and their replies.
    Service,
}

impl<'de> Deserialize<'de> for ExportType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.to_ascii_lowercase().as_str() {
            "stream" => Ok(ExportType::Stream),
            "service" => Ok(ExportType::Service),
            other => Err(serde::de::Error::custom(format!("unknown export type {other:?}"))),
        }
    }
}

/// Publish and subscribe rules and response permissions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct JwtPermissions {
    /// Publish.
    #[serde(rename = "pub")]
    pub publish: Rules,
    /// Subscribe.
    #[serde(rename = "sub")]
    pub subscribe: Rules,
    /// Replies to received requests.
    pub resp: Option<Responses>,
}

impl JwtPermissions {
    /// No rule at all (the account's defaults apply).
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty() && self.resp.is_none()
    }
}

/// Allow and deny lists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Allowed subjects.
    pub allow: Vec<String>,
    /// Denied subjects.
    pub deny: Vec<String>,
}

impl Rules {
    /// Neither list has an entry.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// `resp`: replies allowed per request, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Responses {
    /// Replies per request; negative or 0 = unlimited (as nats-server).
    pub max: i64,
    /// How long, in nanoseconds; 0 = nats-server's default (2 minutes).
    pub ttl: i64,
}

/// A daily window in which a user may connect (`HH:MM:SS`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TimeRange {
    /// Start.
    pub start: String,
    /// End (before `start`: the window ends the next day).
    pub end: String,
}

/// A user: signed by its account or one of the account's signing keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct UserClaims {
    /// Publish.
    #[serde(rename = "pub")]
    pub publish: Rules,
    /// Subscribe.
    #[serde(rename = "sub")]
    pub subscribe: Rules,
    /// Replies to received requests.
    pub resp: Option<Responses>,
    /// Addresses it may connect from (CIDRs; a list or one comma-separated string).
    #[serde(deserialize_with = "cidr_list")]
    pub src: Vec<String>,
    /// Daily windows it may connect in.
    pub times: Vec<TimeRange>,
    /// The time zone of `times`.
    pub times_location: String,
    /// Subscriptions per connection.
    pub subs: i64,
    /// Bytes of data (not enforced, as nats-server).
    pub data: i64,
    /// Largest message payload.
    pub payload: i64,
    /// No nonce signature needed.
    pub bearer_token: bool,
    /// `STANDARD`, `WEBSOCKET`, `LEAFNODE`, `MQTT`, ...; empty = any.
    pub allowed_connection_types: Vec<String>,
    /// The account, when a signing key issued it.
    pub issuer_account: String,
    /// Tags.
    pub tags: Vec<String>,
    /// `user`.
    #[serde(rename = "type")]
    pub kind: String,
    /// 2.
    pub version: u64,
}

impl UserClaims {
    /// Its permissions alone.
    pub fn permissions(&self) -> JwtPermissions {
        JwtPermissions { publish: self.publish.clone(), subscribe: self.subscribe.clone(), resp: self.resp }
    }
}

impl ClaimType for UserClaims {
    const TYPE: &'static str = "user";
    const ISSUERS: &'static [KeyType] = &[KeyType::Account];
    const SUBJECT: KeyType = KeyType::User;
}

/// An auth callout service's answer (`authorization_response`, nats-server
/// 2.10+): issued by the callout's issuer account (or, in operator mode, a
/// signing key of it), `sub` the per-connection user key the request named,
/// `aud` the server id. It carries a user JWT for that key, or a refusal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct AuthorizationResponseClaims {
    /// The user JWT the connection logs in with.
    pub jwt: String,
    /// Why the service refused (then `jwt` is empty).
    pub error: String,
    /// The account, when a signing key of it issued the response.
    pub issuer_account: String,
    /// `authorization_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// 2.
    pub version: u64,
}

impl ClaimType for AuthorizationResponseClaims {
    const TYPE: &'static str = "authorization_response";
    const ISSUERS: &'static [KeyType] = &[KeyType::Account];
    const SUBJECT: KeyType = KeyType::User;
}

/// An activation: the exporter's grant of one import to one account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationClaims {
    /// The subject granted.
    pub subject: String,
    /// Stream or service.
    pub kind: ExportType,
    /// The exporter, when a signing key issued it.
    pub issuer_account: String,
    /// Tags.
    pub tags: Vec<String>,
    /// `activation`.
    #[serde(rename = "type")]
    pub kind_name: String,
    /// 2.
    pub version: u64,
}

impl ClaimType for ActivationClaims {
    const TYPE: &'static str = "activation";
    const ISSUERS: &'static [KeyType] = &[KeyType::Account];
    const SUBJECT: KeyType = KeyType::Account;
}

fn cidr_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(deserializer)? {
        Either::List(list) => list,
        Either::Text(text) => {
            text.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect()
        }
    })
}
