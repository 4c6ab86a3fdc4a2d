//! warden's HTTP authorizer: for teams without a NATS-speaking auth
//! service, each login it is asked about is one JSON `POST` to a URL, and
//! the JSON answer decides.
//!
//! The request (every field but `server` and `client` only when the client
//! sent it):
//! ```json
//! {"server": {"id": "N...", "name": "..."},
//!  "client": {"id": 7, "host": "192.0.2.1", "port": 50000, "kind": "Client", "type": "nats",
//!             "name": "...", "lang": "...", "version": "...",
//!             "tls": {"version": "1.3", "cipher": "...", "subject": "CN=alice", "dns": [], "emails": [], "uris": []}},
//!  "user": "alice", "password": "...", "token": "...", "nkey": "U..."}
//! ```
//! `kind` and `type` are an auth callout's: `Client` with `nats` or
//! `websocket`, or `Leafnode` (and an empty type) for a leaf node server.
//! An `nkey` is sent only after warden checked the client's signature of
//! its nonce, so the authorizer learns a proven key; a wrong signature is
//! refused without asking. The answer:
//! ```json
//! {"allow": true, "account": "APP", "user": "alice",
//!  "permissions": {"publish": {"allow": ["app.>"]}, "subscribe": ["app.>", "_INBOX.>"]},
//!  "expires": 1767225600}
//! {"allow": false, "reason": "unknown user"}
//! ```
//! `permissions` has the config's shape (a string or list is an allow
//! list; `allow_responses` true or `{max, expires}`); without it the
//! account's default permissions apply. As in the config, an empty
//! `permissions` or `publish`/`subscribe` object refuses the login: it
//! would otherwise grant everything, past the account's defaults.
//! `expires` (Unix seconds) closes the connection then. Anything but a `200` with such a document refuses the
//! login. HTTPS is verified against `ca_file` (default: the system's
//! bundle); plain HTTP is accepted only to a loopback address (checked when
//! the config is read). Answers are bounded at [`MAX_ANSWER`] bytes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::info;

use super::DelegateSetupError;
use crate::auth::{
    AccountDefaults, Claims, ConnectionFacts, Delegate, Identity, Pending, RefusalReason, Verdict, Verifier,
};
use crate::broker::Broker;
use crate::config::{HttpTarget, Permissions, ResponsePermission, SubjectRules};
use crate::nkeys::{self, KeyType, PublicKey};
use crate::perms::PermissionSet;
use crate::secret::Secret;

/// Largest answer read.
pub const MAX_ANSWER: usize = 64 * 1024;
/// Where Debian (and most Linux systems) keep the trusted roots.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The HTTP authorizer, as a [`Delegate`].
#[derive(Debug)]
pub struct HttpAuthorizer {
    target: HttpTarget,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    server_id: String,
    server_name: String,
    defaults: Arc<HashMap<String, AccountDefaults>>,
    /// Checking an answer (a permission compile) runs on the pool.
    verifier: Arc<Verifier>,
}

impl HttpAuthorizer {
    /// An authorizer at `url` (already checked by the config reader).
    pub fn new(
        url: &str,
        ca_file: Option<&Path>,
        headers: &[(String, Secret)],
        broker: &Broker,
        verifier: &Arc<Verifier>,
        defaults: HashMap<String, AccountDefaults>,
    ) -> Result<HttpAuthorizer, DelegateSetupError> {
        let target = HttpTarget::parse(url).map_err(DelegateSetupError::Tls)?;
        let tls = if target.tls {
            let roots = ca_file.unwrap_or(Path::new(SYSTEM_ROOTS));
            let config =
                crate::tls::load_verifying_client_config(roots).map_err(|e| DelegateSetupError::Tls(e.to_string()))?;
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| DelegateSetupError::Tls(format!("{:?} is not a host name", target.host)))?;
            Some((config, name))
        } else {
            None
        };
        let mut list = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| DelegateSetupError::Tls(format!("{name:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| DelegateSetupError::Tls(format!("the value of header {name} is not valid")))?;
            value.set_sensitive(true);
            list.push((name, value));
        }
        Ok(HttpAuthorizer {
            target,
            tls,
            headers: list,
            server_id: broker.identity.id.clone(),
            server_name: broker.identity.name.clone(),
            defaults: Arc::new(defaults),
            verifier: verifier.clone(),
        })
    }

    /// The request document for one login.
    fn document(&self, claims: &Claims, facts: &ConnectionFacts) -> Value {
        // `kind` and `type` as in an auth callout request: "Leafnode" tells
        // the authorizer a leaf node server is logging in, not a client.
        let (kind, client_type) = facts.connection.callout_kind_and_type();
        let mut client = json!({
            "id": facts.client_id,
            "host": facts.addr.ip().to_string(),
            "port": facts.addr.port(),
            "kind": kind,
            "type": client_type,
        });
        for (key, value) in
            [("name", &claims.client.name), ("lang", &claims.client.lang), ("version", &claims.client.version)]
        {
            if let Some(value) = value {
                client[key] = value.as_str().into();
            }
        }
        if let Some(tls) = &facts.tls {
            let mut t = json!({
                "version": crate::tls::go_version_name(&tls.version),
                "cipher": crate::tls::go_cipher_name(&tls.cipher),
            });
            if let Some(peer) = &facts.peer {
                let subject: Vec<String> = peer.subject.iter().map(|(k, v)| format!("{k}={v}")).collect();
                t["subject"] = subject.join(",").into();
                t["dns"] = json!(peer.dns_names);
                t["emails"] = json!(peer.emails);
                t["uris"] = json!(peer.uris);
            }
            client["tls"] = t;
        }
        let mut doc = json!({ "server": { "id": self.server_id, "name": self.server_name }, "client": client });
        if let Some(user) = &claims.user {
            doc["user"] = user.as_str().into();
        }
        for (key, secret) in [("password", &claims.password), ("token", &claims.token)] {
            if let Some(secret) = secret {
                doc[key] = secret.expose().into();
            }
        }
        if let Some(nkey) = &claims.nkey {
            doc["nkey"] = nkey.as_str().into();
        }
        doc
    }

    async fn post(&self, body: Vec<u8>) -> Result<(u16, Bytes), String> {
        let addr = (self.target.host.as_str(), self.target.port);
        let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some((config, name)) => {
                let connector = TlsConnector::from(config.clone());
                let stream = connector.connect(name.clone(), tcp).await.map_err(|e| format!("TLS: {e}"))?;
                self.exchange(stream, body).await
            }
            None => self.exchange(tcp, body).await,
        }
    }

    async fn exchange<S>(&self, stream: S, body: Vec<u8>) -> Result<(u16, Bytes), String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("HTTP: {e}"))?;
        // The connection is driven by its own task, which ends with it (when
        // `sender` is dropped, or the asker's timeout drops this future).
        let driver = tokio::spawn(connection);
        let host = match self.target.port {
            443 | 80 => self.target.host.clone(),
            port => format!("{}:{port}", self.target.host),
        };
        let mut request = hyper::Request::post(self.target.path.as_str())
            .header(HOST, host)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("HTTP: {e}"))?;
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let result = async {
            let response = sender.send_request(request).await.map_err(|e| format!("HTTP: {e}"))?;
            let status = response.status().as_u16();
            let answer = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("answer: {e}"))?
                .to_bytes();
            Ok((status, answer))
        }
        .await;
        driver.abort();
        result
    }
}

/// Whether the client proved it holds `nkey`: its signature of the nonce.
fn nkey_proven(claims: &Claims, facts: &ConnectionFacts) -> bool {
    let (Some(nkey), Some(nonce)) = (&claims.nkey, &facts.nonce) else { return claims.nkey.is_none() };
    let signature = claims.signature.as_deref().and_then(nkeys::decode_signature);
    match (PublicKey::parse_as(nkey, KeyType::User), signature) {
        (Ok(key), Some(signature)) => key.verify(nonce.as_bytes(), &signature),
        _ => false,
    }
}

impl Delegate for HttpAuthorizer {
    fn ask<'a>(&'a self, claims: &'a Claims, facts: &'a ConnectionFacts) -> Pending<'a> {
        Box::pin(async move {
            if !nkey_proven(claims, facts) {
                info!(addr = %facts.addr, "http authorizer not asked: the nkey signature is missing or wrong");
                return Verdict::Refuse(RefusalReason::BadCredentials);
            }
            let body = self.document(claims, facts).to_string().into_bytes();
            match self.post(body).await {
                Ok((200, answer)) => {
                    let (defaults, claims, facts) = (self.defaults.clone(), claims.clone(), facts.clone());
                    let judged = move || judge(&defaults, &claims, &facts, &answer, SystemTime::now());
                    let unavailable = Verdict::Refuse(RefusalReason::ServiceUnavailable);
                    self.verifier.run(judged).await.unwrap_or(unavailable)
                }
                Ok((status, _)) => {
                    info!(addr = %facts.addr, status, "http authorizer answered with an error status");
                    Verdict::Refuse(RefusalReason::ServiceUnavailable)
                }
                Err(why) => {
                    info!(addr = %facts.addr, error = %why, "http authorizer not reached");
                    Verdict::Refuse(RefusalReason::ServiceUnavailable)
                }
            }
        })
    }
}

/// The answer document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    allow: bool,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    permissions: Option<PermissionsDoc>,
    #[serde(default)]
    expires: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

/// Permissions in the config's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsDoc {
    #[serde(default, alias = "pub")]
    publish: Option<RulesDoc>,
    #[serde(default, alias = "sub")]
    subscribe: Option<RulesDoc>,
    #[serde(default)]
    allow_responses: Option<ResponsesDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RulesDoc {
    One(String),
    List(Vec<String>),
    Both {
        #[serde(default)]
        allow: Option<OneOrMany>,
        #[serde(default)]
        deny: Option<OneOrMany>,
        /// warden's literal-only subscribe rules (the config's `literal`).
        #[serde(default)]
        literal: Option<OneOrMany>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ResponsesDoc {
    On(bool),
    Limits {
        #[serde(default)]
        max: Option<usize>,
        /// Seconds.
        #[serde(default)]
        expires: Option<f64>,
    },
}

impl RulesDoc {
    /// The rules; `Err` for `{}` (or `{"allow": null}`), which would leave
    /// the direction unrestricted, as warden's config reader refuses it.
    fn rules(self, direction: &str) -> Result<SubjectRules, String> {
        Ok(match self {
            RulesDoc::One(s) => SubjectRules { allow: Some(vec![s]), deny: None, literal: None },
            RulesDoc::List(v) => SubjectRules { allow: Some(v), deny: None, literal: None },
            RulesDoc::Both { allow: None, deny: None, literal: None } => {
                return Err(format!("an empty {direction} object restricts nothing"))
            }
            RulesDoc::Both { literal: Some(_), .. } if direction == "publish" => {
                return Err("`literal` applies to subscribe rules only".into())
            }
            RulesDoc::Both { allow, deny, literal } => SubjectRules {
                allow: allow.map(OneOrMany::list),
                deny: deny.map(OneOrMany::list),
                literal: literal.map(OneOrMany::list),
            },
        })
    }
}

impl PermissionsDoc {
    /// The permissions, or why they are refused. An object that sets no
    /// rule at all (`{}`, or only `null`s) is refused rather than read as
    /// "no restrictions": that is what `user.get("permissions", {})` in an
    /// authorizer produces, and it would bypass the account's
    /// `default_permissions`. Leaving `permissions` out keeps the defaults.
    fn permissions(self) -> Result<Permissions, String> {
        if self.publish.is_none() && self.subscribe.is_none() && self.allow_responses.is_none() {
            return Err(
                "an empty permissions object restricts nothing (leave it out for the account's defaults)".into()
            );
        }
        let allow_responses = match self.allow_responses {
            None | Some(ResponsesDoc::On(false)) => None,
            Some(ResponsesDoc::On(true)) => Some(ResponsePermission::default()),
            Some(ResponsesDoc::Limits { max, expires }) => {
                let default = ResponsePermission::default();
                let expires = match expires {
                    Some(secs) if secs.is_finite() && secs > 0.0 => Duration::try_from_secs_f64(secs)
                        .map_err(|_| "allow_responses.expires is out of range".to_owned())?,
                    Some(_) => return Err("allow_responses.expires is not a positive number of seconds".into()),
                    None => default.expires,
                };
                Some(ResponsePermission { max: max.or(default.max), expires })
            }
        };
        Ok(Permissions {
            publish: self.publish.map(|r| r.rules("publish")).transpose()?,
            subscribe: self.subscribe.map(|r| r.rules("subscribe")).transpose()?,
            allow_responses,
        })
    }
}

/// The authorizer's answer for this login, checked (public for the
/// `authorizer_answer` fuzz target).
pub fn judge(
    defaults: &HashMap<String, AccountDefaults>,
    claims: &Claims,
    facts: &ConnectionFacts,
    answer: &[u8],
    now: SystemTime,
) -> Verdict {
    let invalid = |why: &str| {
        info!(addr = %facts.addr, "http authorizer answer refused: {why}");
        Verdict::Refuse(RefusalReason::ServiceUnavailable)
    };
    let answer: Answer = match serde_json::from_slice(answer) {
        Ok(answer) => answer,
        Err(err) => return invalid(&format!("not an answer document: {err}")),
    };
    if !answer.allow {
        let reason = answer.reason.unwrap_or_default();
        info!(addr = %facts.addr, %reason, "http authorizer refused the login");
        return match reason.is_empty() {
            true => Verdict::Refuse(RefusalReason::ServiceRefused),
            false => Verdict::Explained(RefusalReason::ServiceRefused, reason),
        };
    }
    let account = answer.account.unwrap_or_else(|| crate::config::GLOBAL_ACCOUNT.to_owned());
    let Some(default) = defaults.get(&account) else {
        return invalid(&format!("it places the user in {account:?}, which is not an account here"));
    };
    let user = answer.user.or_else(|| claims.user.clone()).or_else(|| claims.nkey.clone());
    let permissions = match answer.permissions.map(PermissionsDoc::permissions) {
        None => {
            let name = user.as_deref().unwrap_or_default();
            let values = crate::auth::config_values(name, claims.nkey.as_deref().unwrap_or_default(), &account, &[]);
            match default.for_user(&values) {
                Ok(set) => set,
                Err(err) => return invalid(&format!("the account's default permissions for this user: {err}")),
            }
        }
        Some(Err(why)) => return invalid(&format!("its permissions: {why}")),
        Some(Ok(perms)) => match PermissionSet::compile(&perms) {
            Ok(set) => Arc::new(set),
            Err(err) => return invalid(&format!("its permissions do not compile: {err}")),
        },
    };
    // Checked: an `expires` beyond what a system time holds is refused, not
    // a panic (the fuzz target's first find).
    let expires = match answer.expires.map(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs))) {
        Some(None) => return invalid("its expiry is out of range"),
        Some(Some(at)) if at <= now => return invalid("it expires in the past"),
        other => other.flatten(),
    };
    let credential = crate::auth::credential_fingerprint("http-authorizer");
    let mut identity = Identity::new(user, account.into(), permissions, credential);
    identity.expires = expires;
    identity.delegated = true;
    Verdict::Accept(identity)
}

#[cfg(test)]
mod tests;
