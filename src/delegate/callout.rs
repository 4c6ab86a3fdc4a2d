//! nats-server 2.10's auth callout, wire-compatible: for each client it is
//! asked about, the server makes a fresh user key, publishes an
//! `authorization_request` JWT it signs on `$SYS.REQ.USER.AUTH` in the
//! callout account (sealed to the service's xkey when one is set), and
//! reads the service's `authorization_response` from a private inbox.
//!
//! The answer is trusted only if it verifies: issued by the configured
//! issuer account, `aud` this server's id, `sub` the key made for this
//! connection (so an answer for another login, or replayed from an earlier
//! one, is refused), unexpired; the user JWT inside likewise issued by the
//! issuer, for the same key, placing the user (`aud`) in an account this
//! server has. Its permissions compile with the same compiler as configured
//! users'; its connect conditions and `exp` apply as in operator mode.
//!
//! One task owns the publishing and the inbox subscription, through an
//! [`InternalClient`] (which re-makes the subscription when the account is
//! replaced); building, signing and checking run on the verification pool,
//! never on the reactor.
//!
//! A question that gets no answer (no service subscribed, or one that is
//! stuck) ends with the login's deadline, which cancels it; it is warned
//! about then, at most once a second, naming the subject and account, so a
//! service that is down shows in the log at the default level.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::auth::operator::user_identity;
use crate::auth::{AccountDefaults, Claims, ConnectionFacts, Delegate, Pending, RefusalReason, Verdict, Verifier};
use crate::broker::{stopping, Announce, Broker, Inbox, InboxMsg, Interest, InternalClient, LogLimiter, Message};
use crate::jwt::{self, AuthorizationResponseClaims, UserClaims};
use crate::nkeys::{CurveKeyPair, CurvePublic, KeyPair, KeyType};
use crate::perms::system_space::{AUTH_CALLOUT_SUBJECT, CALLOUT_INBOX_PREFIX};

/// The request JWT's audience (nats-server's `AuthRequestSubject`).
const REQUEST_AUDIENCE: &str = "nats-authorization-request";
/// The header naming the server's curve key on a sealed request.
const XKEY_HEADER: &str = "Nats-Server-Xkey";
/// What every JWT's text starts with: an answer that does not is sealed.
const JWT_PREFIX: &[u8] = b"eyJ";
/// Requests queued for the task before askers wait.
const QUEUE: usize = 256;
/// Unanswered questions warned about per second; the rest are counted.
const UNANSWERED_PER_SECOND: u32 = 1;

/// What the callout needs to build requests and judge answers.
#[derive(Debug)]
pub struct CalloutSetup {
    /// The account key that signs answers (`issuer`).
    pub issuer: String,
    /// The account the service listens in.
    pub account: Arc<str>,
    /// The service's curve key, to seal requests to and open answers from.
    pub service_xkey: Option<CurvePublic>,
    /// This server's curve key pair (with `service_xkey`).
    pub server_xkey: Option<Arc<CurveKeyPair>>,
    /// The server's signing key; its public key is the server id.
    pub server_key: Arc<KeyPair>,
    /// The server's name, host, version and cluster, as in the request.
    pub server_name: String,
    /// The client listener's host.
    pub host: String,
    /// The nats-server version warden speaks.
    pub version: String,
    /// The cluster's name.
    pub cluster: Option<String>,
    /// The request's `exp` is this far ahead (the auth timeout).
    pub timeout_secs: i64,
    /// What a user without permissions of its own gets, per account (and
    /// which accounts exist).
    pub defaults: HashMap<String, AccountDefaults>,
}

/// One request for the task to publish, and where its answer goes.
struct Outgoing {
    id: String,
    header: Option<Vec<u8>>,
    payload: Vec<u8>,
    answer: oneshot::Sender<Vec<u8>>,
}

/// The auth callout, as a [`Delegate`].
#[derive(Debug)]
pub struct AuthCallout {
    setup: Arc<CalloutSetup>,
    verifier: Arc<Verifier>,
    outgoing: mpsc::Sender<Outgoing>,
    /// Bounds the warnings about questions no service answered: a login
    /// flood while the service is down must not flood the log.
    unanswered: LogLimiter,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing").field("id", &self.id).finish_non_exhaustive()
    }
}

impl AuthCallout {
    /// Starts the task that publishes requests and collects answers in
    /// `setup.account`; it ends with the broker's shutdown.
    pub fn start(broker: Arc<Broker>, verifier: Arc<Verifier>, setup: CalloutSetup) -> AuthCallout {
        let (outgoing, requests) = mpsc::channel(QUEUE);
        let prefix = format!("{}{}.", String::from_utf8_lossy(CALLOUT_INBOX_PREFIX), random_token());
        tokio::spawn(run(broker, setup.account.clone(), prefix, requests));
        let unanswered =
            LogLimiter::new(UNANSWERED_PER_SECOND, "auth callout: unanswered logins not logged because of their rate");
        AuthCallout { setup: Arc::new(setup), verifier, outgoing, unanswered }
    }
}

/// A question on its way: warns, when dropped before an answer came (the
/// login's deadline or the delegation's timeout cancelled the wait, or the
/// client left), that no service answered.
struct Unanswered<'a> {
    callout: &'a AuthCallout,
    answered: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if !self.answered && self.callout.unanswered.allow() {
            warn!(
                subject = %String::from_utf8_lossy(AUTH_CALLOUT_SUBJECT),
                account = %self.callout.setup.account,
                "auth callout: no service answered the login request; is the service running and subscribed? (logins it should decide are refused)"
            );
        }
    }
}

impl Delegate for AuthCallout {
    fn ask<'a>(&'a self, claims: &'a Claims, facts: &'a ConnectionFacts) -> Pending<'a> {
        Box::pin(async move {
            let unavailable = Verdict::Refuse(RefusalReason::ServiceUnavailable);
            let (setup, c, f) = (self.setup.clone(), claims.clone(), facts.clone());
            let Some(Ok(request)) = self.verifier.run(move || Request::build(&setup, &c, &f, jwt::now())).await else {
                warn!("auth callout: cannot make a request");
                return unavailable;
            };
            let (answer, answered) = oneshot::channel();
            let user = request.user.clone();
            let outgoing = Outgoing { id: random_token(), header: request.header, payload: request.payload, answer };
            let mut waiting = Unanswered { callout: self, answered: false };
            if self.outgoing.send(outgoing).await.is_err() {
                return unavailable;
            }
            let Ok(reply) = answered.await else { return unavailable };
            waiting.answered = true;
            let (setup, c, f) = (self.setup.clone(), claims.clone(), facts.clone());
            let judged = self.verifier.run(move || judge(&setup, &user, &c, &f, &reply, jwt::now())).await;
            judged.unwrap_or(unavailable)
        })
    }
}

/// A built request: the user key made for it, and what to publish.
struct Request {
    user: String,
    header: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl Request {
    fn build(setup: &CalloutSetup, claims: &Claims, facts: &ConnectionFacts, now: i64) -> Result<Request, ()> {
        let user = KeyPair::generate(KeyType::User).map_err(|_| ())?;
        let user = user.public().as_str().to_owned();
        let token = jwt::sign(&setup.server_key, request_claims(setup, &user, claims, facts, now));
        let (header, payload) = match (&setup.service_xkey, &setup.server_xkey) {
            (Some(service), Some(server)) => {
                let header = format!("NATS/1.0\r\n{XKEY_HEADER}: {}\r\n\r\n", server.public().as_str());
                (Some(header.into_bytes()), server.seal(token.as_bytes(), service))
            }
            _ => (None, token.into_bytes()),
        };
        Ok(Request { user, header, payload })
    }
}

/// The `authorization_request` claims (nats-io/jwt's
/// `AuthorizationRequestClaims`), without `iss` (the signer adds it).
fn request_claims(setup: &CalloutSetup, user: &str, claims: &Claims, facts: &ConnectionFacts, now: i64) -> Value {
    let server_id = setup.server_key.public().as_str();
    let mut server = json!({
        "name": setup.server_name, "host": setup.host, "id": server_id, "version": setup.version,
    });
    if let Some(cluster) = &setup.cluster {
        server["cluster"] = cluster.as_str().into();
    }
    if let Some(xkey) = &setup.server_xkey {
        server["xkey"] = xkey.public().as_str().into();
    }
    let (kind, kind_type) = facts.connection.callout_kind_and_type();
    let mut client = json!({
        "host": facts.addr.ip().to_string(), "id": facts.client_id, "kind": kind, "type": kind_type,
    });
    if let Some(user) = claims.user.as_ref().or(claims.nkey.as_ref()) {
        client["user"] = user.as_str().into();
    }
    if let Some(name) = &claims.client.name {
        client["name"] = name.as_str().into();
    }
    let mut connect = serde_json::Map::new();
    let secrets = [("jwt", &claims.jwt), ("auth_token", &claims.token), ("pass", &claims.password)];
    for (key, value) in secrets {
        if let Some(value) = value {
            connect.insert(key.into(), value.expose().into());
        }
    }
    let plain = [
        ("nkey", &claims.nkey),
        ("sig", &claims.signature),
        ("user", &claims.user),
        ("name", &claims.client.name),
        ("lang", &claims.client.lang),
        ("version", &claims.client.version),
    ];
    for (key, value) in plain {
        if let Some(value) = value {
            connect.insert(key.into(), value.as_str().into());
        }
    }
    connect.insert("protocol".into(), claims.client.protocol.into());
    let mut nats = json!({
        "server_id": server, "user_nkey": user, "client_info": client, "connect_opts": connect,
        "type": "authorization_request", "version": 2,
    });
    if let (Some(nonce), Some(_)) = (&facts.nonce, &claims.signature) {
        nats["client_info"]["nonce"] = nonce.as_str().into();
        nats["request_nonce"] = nonce.as_str().into();
    }
    if let Some(tls) = &facts.tls {
        let mut client_tls = json!({ "version": crate::tls::go_version_name(&tls.version), "cipher": crate::tls::go_cipher_name(&tls.cipher) });
        if !tls.chain.is_empty() {
            // The handshake verified the chain, so it goes as nats-server's
            // `verified_chains`.
            let pems: Vec<String> = tls.chain.iter().map(|der| pem(der)).collect();
            client_tls["verified_chains"] = json!([pems]);
        }
        nats["client_tls"] = client_tls;
    }
    json!({
        "aud": REQUEST_AUDIENCE, "sub": setup.issuer, "iat": now, "exp": now + setup.timeout_secs, "nats": nats,
    })
}

/// A DER certificate as PEM.
fn pem(der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The service's answer for the login of `user` (the key made for it),
/// checked; every refusal is logged with its reason.
fn judge(
    setup: &CalloutSetup,
    user: &str,
    claims: &Claims,
    facts: &ConnectionFacts,
    reply: &[u8],
    now: i64,
) -> Verdict {
    let invalid = |why: &str| {
        info!(addr = %facts.addr, "auth callout answer refused: {why}");
        Verdict::Refuse(RefusalReason::ServiceUnavailable)
    };
    if reply.is_empty() {
        info!(addr = %facts.addr, "auth callout: the service refused without a reason");
        return Verdict::Refuse(RefusalReason::ServiceRefused);
    }
    let opened;
    let token = match (&setup.server_xkey, &setup.service_xkey) {
        (Some(server), Some(service)) if !reply.starts_with(JWT_PREFIX) => match server.open(reply, service) {
            Ok(plain) => {
                opened = plain;
                &opened[..]
            }
            Err(_) => return invalid("it is not sealed by the service's xkey"),
        },
        _ => reply,
    };
    let Ok(token) = std::str::from_utf8(token) else { return invalid("not UTF-8") };
    let response = match jwt::decode::<AuthorizationResponseClaims>(token, now) {
        Ok(response) => response,
        Err(err) => return invalid(&format!("the response JWT: {err}")),
    };
    if response.registered.iss != setup.issuer || !response.nats.issuer_account.is_empty() {
        return invalid("the response is not issued by the callout issuer");
    }
    if response.registered.sub != user {
        return invalid("the response is not for this connection's user key");
    }
    if response.registered.aud != setup.server_key.public().as_str() {
        return invalid("the response is not for this server");
    }
    if !response.nats.error.is_empty() {
        info!(addr = %facts.addr, reason = %response.nats.error, "auth callout: the service refused the login");
        return Verdict::Explained(RefusalReason::ServiceRefused, response.nats.error);
    }
    let granted = match jwt::decode::<UserClaims>(&response.nats.jwt, now) {
        Ok(granted) => granted,
        Err(err) => return invalid(&format!("the user JWT: {err}")),
    };
    if granted.registered.iss != setup.issuer || !granted.nats.issuer_account.is_empty() {
        return invalid("the user JWT is not issued by the callout issuer");
    }
    if granted.registered.sub != user {
        return invalid("the user JWT is not for this connection's user key");
    }
    let account = granted.registered.aud.as_str();
    let Some(defaults) = setup.defaults.get(account) else {
        return invalid(&format!("the user JWT places the user in {account:?}, which is not an account here"));
    };
    let mut effective = granted.nats.clone();
    if account == &*setup.account {
        // Like the callout account's own users: the requests stay private.
        if !effective.permissions().is_empty() {
            effective.subscribe.deny.extend(crate::perms::system_space::callout_private());
        }
    }
    let name = [granted.registered.name.as_str(), claims.user.as_deref().unwrap_or_default(), user]
        .into_iter()
        .find(|name| !name.is_empty())
        .unwrap_or_default();
    let defaults = match defaults.for_user(&crate::auth::config_values(name, user, account, &granted.nats.tags)) {
        Ok(set) => set,
        Err(err) => return invalid(&format!("the account's default permissions for this user: {err}")),
    };
    let from = Some((facts.addr.ip(), facts.connection.jwt_name()));
    match user_identity(&granted, &effective, account.into(), &defaults, None, from, now) {
        Ok(mut identity) => {
            identity.user = [granted.registered.name.as_str(), claims.user.as_deref().unwrap_or_default(), user]
                .into_iter()
                .find(|name| !name.is_empty())
                .map(str::to_owned);
            identity.delegated = true;
            Verdict::Accept(identity)
        }
        Err(reason) => Verdict::Refuse(reason),
    }
}

/// 16 random base32 characters.
fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    crate::nkeys::base32_std(&bytes)
}

/// The task: publishes requests in the callout account and hands each
/// answer on its inbox to whoever waits for it.
async fn run(broker: Arc<Broker>, account: Arc<str>, prefix: String, mut requests: mpsc::Receiver<Outgoing>) {
    let (inbox, mut answers) = Inbox::new(Announce::Everywhere, "auth callout answers");
    let mut shutdown = broker.shutdown_signal();
    let mut changed = broker.accounts.changed();
    let mut client = InternalClient::new(broker.clone());
    let mut pending: HashMap<String, oneshot::Sender<Vec<u8>>> = HashMap::new();
    let answers_to = Interest::new(format!("{prefix}*"), &inbox);
    let resubscribe = |client: &mut InternalClient| {
        client.subscribe(broker.accounts.get(&account).map(|a| (a, vec![answers_to.clone()])));
    };
    resubscribe(&mut client);
    loop {
        tokio::select! {
            _ = stopping(&mut shutdown) => break,
            Ok(()) = changed.changed() => resubscribe(&mut client),
            Some(request) = requests.recv() => {
                if pending.len() >= QUEUE {
                    // Askers that gave up (timed out, hung up) leave entries.
                    pending.retain(|_, answer| !answer.is_closed());
                }
                let Some(target) = client.account(&account).cloned() else { continue };
                let reply = format!("{prefix}{}", request.id);
                let header_len = request.header.as_ref().map(Vec::len);
                let mut message = request.header.unwrap_or_default();
                message.extend_from_slice(&request.payload);
                pending.insert(request.id, request.answer);
                let msg = Message { subject: AUTH_CALLOUT_SUBJECT, reply: Some(reply.as_bytes()), header_len, message: &message, buffer: None };
                let delivered = client.publish(&target, &msg);
                debug!(delivered, "auth callout request sent");
            }
            Some(answer) = answers.recv() => deliver(&mut pending, &answer),
        }
    }
}

fn deliver(pending: &mut HashMap<String, oneshot::Sender<Vec<u8>>>, answer: &InboxMsg) {
    let id = answer.subject.rsplit(|b| *b == b'.').next().unwrap_or_default();
    let Ok(id) = std::str::from_utf8(id) else { return };
    if let Some(waiting) = pending.remove(id) {
        let _ = waiting.send(answer.payload().to_vec());
    }
}

#[cfg(test)]
mod tests;
