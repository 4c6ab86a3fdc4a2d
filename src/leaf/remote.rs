//! This server as a leaf of another hub (`leafnodes { remotes }`): dialling
//! each remote's URLs (its leafnode port, or its WebSocket port) in turn with a pause between attempts (growing from
//! 100 ms to 1 s while dials fail; 1 s after a connection ends; 30 s after
//! the hub said it saw a loop, as nats-server), and the login a
//! [`LeafSession`] presents once the hub's INFO arrived.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, Instant};
use tracing::{info, warn};

use super::dial::{self, DialTls, HubStream};
use super::session::LeafSession;
use super::{Hub, LeafError, LOOP_DELAY};
use crate::auth::Identity;
use crate::broker::{stopping, Broker, Client, ClientKind, CloseReason};
use crate::config::{LeafRemote, Permissions, SubjectRules};
use crate::conn::{drive, Protocol, Signals};
use crate::nkeys::KeyPair;
use crate::perms::PermissionSet;
use crate::proto::route::SubjectPermission;
use crate::secret::Secret;

/// Pause before dialling again after a connection ended (nats-server's
/// default `reconnect_interval`), and the longest pause after failed dials.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// First pause after a failed dial; it doubles up to [`RECONNECT_DELAY`],
/// so a hub that starts a moment after its leaf is reached at once.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Time a TCP connection to a hub may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// What a leaf presents: the URL's user and password, or a user JWT and
/// the seed that signs the hub's nonce, or an nkey seed alone.
pub(crate) struct SpokeLogin {
    /// The remote says `hub: true`: this server takes the hub's role on the
    /// connection it dials (its CONNECT says `is_hub`).
    pub(crate) as_hub: bool,
    pub(crate) user: Option<String>,
    pub(crate) pass: Option<Secret>,
    pub(crate) jwt: Option<Secret>,
    pub(crate) key: Option<KeyPair>,
}

impl SpokeLogin {
    /// The `sig` of `nonce`, when there is a key to sign it with.
    pub(crate) fn sign(&self, nonce: &str) -> Option<String> {
        self.key.as_ref().map(|k| URL_SAFE_NO_PAD.encode(k.sign(nonce.as_bytes())))
    }

    /// The public key sent as `nkey` (with a seed but no JWT).
    pub(crate) fn nkey(&self) -> Option<String> {
        match (&self.jwt, &self.key) {
            (None, Some(key)) => Some(key.public().as_str().to_owned()),
            _ => None,
        }
    }
}

/// Most entries a hub's `import`/`export` lists may have; a longer one is
/// a hub this server does not follow (the connection closes).
const MAX_HUB_RULES: usize = 1024;

/// What a hub may do on this side: publish into the local account (all
/// but `deny_imports`), and draw messages out by its interest (all but
/// `deny_exports`, and within the leaf user's publish permissions the hub
/// sends as `export`). The hub's `import` (the leaf user's subscribe
/// permissions) bounds the interest this server tells it of, so a local
/// client's subscription never makes the hub close the link.
#[derive(Debug)]
pub(crate) struct SpokeRules {
    pub(crate) account: Arc<str>,
    pub(crate) deny_imports: Vec<String>,
    pub(crate) deny_exports: Vec<String>,
}

impl SpokeRules {
    /// The hub's identity on this side, given the `export` it sent.
    pub(crate) fn identity(&self, export: Option<&SubjectPermission>) -> Option<Identity> {
        let export = export.filter(|e| e.allow.len() + e.deny.len() <= MAX_HUB_RULES);
        let mut deny_out = self.deny_exports.clone();
        deny_out.extend(export.map(|e| e.deny.clone()).unwrap_or_default());
        let allow_out = export.map(|e| e.allow.clone()).filter(|a| !a.is_empty());
        let perms = Permissions {
            publish: rules(None, &self.deny_imports),
            subscribe: rules(allow_out, &deny_out),
            allow_responses: None,
        };
        let set = PermissionSet::compile(&perms).ok()?;
        Some(Identity::new(None, self.account.clone(), Arc::new(set), 0))
    }

    /// What interest the hub may be told of, given the `import` it sent;
    /// `None` when the lists cannot be followed.
    pub(crate) fn announce_filter(import: Option<&SubjectPermission>) -> Option<Option<Arc<PermissionSet>>> {
        let Some(import) = import else { return Some(None) };
        if import.allow.len() + import.deny.len() > MAX_HUB_RULES {
            return None;
        }
        let allow = Some(import.allow.clone()).filter(|a| !a.is_empty());
        let perms = Permissions { publish: None, subscribe: rules(allow, &import.deny), allow_responses: None };
        PermissionSet::compile(&perms).ok().map(|set| Some(Arc::new(set)))
    }
}

/// Allow and deny lists as config rules (`None` when both are empty).
fn rules(allow: Option<Vec<String>>, deny: &[String]) -> Option<SubjectRules> {
    let deny = Some(deny.to_vec()).filter(|d| !d.is_empty());
    (allow.is_some() || deny.is_some()).then_some(SubjectRules { allow, deny, literal: None })
}

/// A remote, ready to dial.
pub(crate) struct Spoke {
    /// `host:port` of each URL, with the user and password it carries.
    urls: Vec<(String, Option<String>, Option<Secret>)>,
    /// The JWT and seed of `credentials`, or the `nkey` seed.
    jwt: Option<Secret>,
    seed: Option<Secret>,
    rules: Arc<SpokeRules>,
    /// `tls {}` or a `tls://` URL.
    tls: Option<DialTls>,
    /// `first_info_timeout`.
    first_info: Duration,
    /// `hub`: this server plays the hub on the connection.
    as_hub: bool,
    /// `ws://`/`wss://` URLs: the hub's WebSocket port, and whether to ask
    /// it for unmasked frames (`ws_no_masking`).
    websocket: Option<WebSocket>,
}

/// How a remote over WebSocket frames its writes.
#[derive(Debug, Clone, Copy)]
struct WebSocket {
    /// `ws_no_masking`: ask the hub to take unmasked frames.
    no_masking: bool,
}

impl Spoke {
    /// Reads a remote's credentials and checks its account exists.
    pub(crate) fn new(broker: &Broker, remote: &LeafRemote) -> Result<Spoke, LeafError> {
        let account = remote.account.clone().unwrap_or_else(|| crate::config::GLOBAL_ACCOUNT.to_owned());
        if broker.accounts.get(&account).is_none() {
            return Err(LeafError::UnknownAccount(account));
        }
        let (jwt, seed) = match (&remote.credentials, &remote.nkey) {
            (Some(path), _) => {
                let (jwt, seed) = read_creds(path)?;
                (Some(jwt), Some(seed))
            }
            (None, Some(seed)) => (None, Some(seed.clone())),
            (None, None) => (None, None),
        };
        let rules = Arc::new(SpokeRules {
            account: account.into(),
            deny_imports: remote.deny_imports.clone(),
            deny_exports: remote.deny_exports.clone(),
        });
        if rules.identity(None).is_none() {
            return Err(LeafError::Credentials(PathBuf::from("deny_imports/deny_exports"), "not valid".into()));
        }
        let urls = remote.urls.iter().filter_map(|u| split_url(u)).collect();
        let tls = remote.tls.as_ref().map(DialTls::load).transpose().map_err(LeafError::RemoteTls)?;
        let websocket = remote.over_websocket().then_some(WebSocket { no_masking: remote.ws_no_masking });
        let first_info = remote.first_info_timeout;
        Ok(Spoke { urls, jwt, seed, rules, tls, first_info, as_hub: remote.hub, websocket })
    }

    fn login(&self, user: Option<String>, pass: Option<Secret>) -> SpokeLogin {
        let key = self.seed.as_ref().and_then(|s| KeyPair::from_seed(s.expose()).ok());
        SpokeLogin { as_hub: self.as_hub, user, pass, jwt: self.jwt.clone(), key }
    }
}

/// A `.creds` file: the user JWT and the user seed.
fn read_creds(path: &std::path::Path) -> Result<(Secret, Secret), LeafError> {
    let err = |why: &str| LeafError::Credentials(path.to_path_buf(), why.to_owned());
    let meta = std::fs::metadata(path).map_err(|e| err(&e.to_string()))?;
    if meta.len() > 64 * 1024 {
        return Err(err("larger than 64 KiB"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(&e.to_string()))?;
    let jwt = crate::jwt::undecorate(&text);
    if jwt.is_empty() || jwt.starts_with("-----") {
        return Err(err("no user JWT"));
    }
    let seed = text.lines().map(str::trim).find(|l| l.starts_with("SU")).ok_or_else(|| err("no user seed"))?;
    KeyPair::from_seed(seed).map_err(|_| err("the seed is not valid"))?;
    Ok((Secret::new(jwt), Secret::new(seed)))
}

/// `scheme://[user:pass@]host:port` into `host:port`, user and password.
fn split_url(url: &str) -> Option<(String, Option<String>, Option<Secret>)> {
    let rest = url.split_once("://")?.1.trim_end_matches('/');
    Some(match rest.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, pass) = match userinfo.split_once(':') {
                Some((u, p)) => (u.to_owned(), Some(Secret::new(p))),
                None => (userinfo.to_owned(), None),
            };
            (host_port.to_owned(), Some(user), pass)
        }
        None => (rest.to_owned(), None, None),
    })
}

/// Dials `spoke`'s URLs in turn until shutdown.
pub(crate) async fn solicit(hub: Arc<Hub>, spoke: Arc<Spoke>) {
    let mut shutdown = hub.broker.shutdown_signal();
    let mut next = 0usize;
    let mut backoff = FIRST_RETRY;
    loop {
        let Some((addr, user, pass)) = spoke.urls.get(next % spoke.urls.len().max(1)).cloned() else { return };
        next = next.wrapping_add(1);
        let delay = match timeout(DIAL_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                backoff = FIRST_RETRY;
                let host = addr.rsplit_once(':').map_or(addr.as_str(), |(host, _)| host);
                let peer = stream.peer_addr().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                let (tls, within) = (spoke.tls.as_ref(), spoke.first_info);
                let secured = match spoke.websocket {
                    Some(ws) => {
                        dial::secure_websocket(stream, host, &addr, tls, ws.no_masking, within).await.map(|s| (s, None))
                    }
                    None => dial::secure(stream, host, tls, within).await,
                };
                let looped = match secured {
                    Ok((HubStream::Plain(stream), info)) => {
                        run_spoke(&hub, &spoke, stream, peer, info, user, pass).await
                    }
                    Ok((HubStream::Tls(stream), info)) => {
                        run_spoke(&hub, &spoke, *stream, peer, info, user, pass).await
                    }
                    Ok((HubStream::Ws(stream), info)) => run_spoke(&hub, &spoke, *stream, peer, info, user, pass).await,
                    Ok((HubStream::Wss(stream), info)) => {
                        run_spoke(&hub, &spoke, *stream, peer, info, user, pass).await
                    }
                    Err(err) => {
                        if hub.broker.log_budget.allow() {
                            warn!(hub = %addr, "leafnode connection to the hub failed: {err}");
                        }
                        false
                    }
                };
                if looped {
                    warn!(hub = %addr, "the hub detected a loop; waiting {}s before reconnecting", LOOP_DELAY.as_secs());
                    LOOP_DELAY
                } else {
                    RECONNECT_DELAY
                }
            }
            _ => {
                if hub.broker.log_budget.allow() {
                    info!(hub = %addr, "cannot connect to leafnode hub; retrying");
                }
                let delay = backoff;
                backoff = (backoff * 2).min(RECONNECT_DELAY);
                delay
            }
        };
        tokio::select! {
            _ = sleep(delay) => {}
            _ = stopping(&mut shutdown) => return,
        }
    }
}

/// Runs one connection to a hub at `peer`, whose INFO line `info` may
/// have been read already; returns whether the hub saw a loop.
async fn run_spoke<S>(
    hub: &Arc<Hub>,
    spoke: &Spoke,
    stream: S,
    peer: SocketAddr,
    info: Option<Vec<u8>>,
    user: Option<String>,
    pass: Option<Secret>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let broker = hub.broker.clone();
    let client = Arc::new(Client::with_kind(broker.next_client_id(), peer, broker.opts.max_pending, ClientKind::Leaf));
    let login = spoke.login(user, pass);
    let now = Instant::now();
    let mut session = LeafSession::solicited(hub.clone(), client, spoke.rules.clone(), login, now);
    // The INFO read before TLS is the session's first input, as if it had
    // come through the driver.
    if let Some(info) = info {
        let received = session.receive(&info, now);
        if received.used != info.len() || received.event.is_some() {
            session.finish(CloseReason::ProtocolViolation);
            return session.loop_detected();
        }
    }
    let signals = Signals {
        shutdown: broker.shutdown_signal(),
        reconfigured: hub.gate.reload_signal(),
        write_deadline: broker.opts.write_deadline,
    };
    drive(&mut session, hub.gate.as_ref(), stream, signals).await;
    session.loop_detected()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_their_address_and_credentials() {
        let (addr, user, pass) = split_url("nats-leaf://leaf:pw@127.0.0.1:7422").unwrap();
        assert_eq!(
            (addr.as_str(), user.as_deref(), pass.as_ref().map(Secret::expose)),
            ("127.0.0.1:7422", Some("leaf"), Some("pw"))
        );
        let (addr, user, pass) = split_url("nats://hub.example:7422/").unwrap();
        assert_eq!((addr.as_str(), user, pass.is_none()), ("hub.example:7422", None, true));
    }

    #[test]
    fn a_seed_signs_the_nonce_and_names_its_key() {
        let key = KeyPair::generate(crate::nkeys::KeyType::User).unwrap();
        let public = key.public().clone();
        let login = SpokeLogin { as_hub: false, user: None, pass: None, jwt: None, key: Some(key) };
        let sig = login.sign("nonce").unwrap();
        let raw = crate::nkeys::decode_signature(&sig).unwrap();
        assert!(public.verify(b"nonce", &raw));
        assert_eq!(login.nkey().as_deref(), Some(public.as_str()));
    }
}
