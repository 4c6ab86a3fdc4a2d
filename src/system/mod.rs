//! The server's own services over NATS, in the system account: the `$SYS`
//! requests the `nats` CLI and other NATS tooling send (`server ping`,
//! `server info`, `server report connections`, nats-top over NATS), the
//! self-service requests every account may make about itself, and the
//! audit stream of connection events and periodic statistics.
//!
//! # How it fits
//! - One task owns everything here, and subscribes and publishes through
//!   an [`InternalClient`]. Its subscriptions are ordinary entries in the
//!   accounts' indexes whose deliveries go to an [`Inbox`] (a bounded
//!   channel; when full, requests are dropped, never queued without
//!   bound), so the system account is routed like any other: a
//!   `$SYS.REQ.SERVER.PING` published on one node reaches every node,
//!   warden or nats-server, and each answers.
//! - Five inboxes, served in this order: account JWT pushes (claims), the
//!   system account's requests, the answers to forwarded self-service
//!   requests, `$SYS.REQ.USER.INFO`, and the other accounts' self-service
//!   requests. Only the system account reaches the first three, so no
//!   tenant can fill the queue an operator's revocation waits in; the last
//!   two are budgeted per account ([`crate::broker::RequestBudget`]), so no
//!   tenant can take another's answers away.
//! - A tenant's self-service request is heard by its own server (routes
//!   do not hear of the interest; leaf connections do, as nats-server's
//!   import subscriptions) and sent on in the system account, as
//!   nats-server's imports send it (`forward`): every server, warden or
//!   nats-server, answers it there once.
//! - The data is the monitoring API's ([`MonitorApi`]), the same code the
//!   HTTP endpoints answer with.
//! - Answers and events are published by the same client, as any
//!   publisher's, in the account the request came from.
//! - Who may ask is decided before a request gets here: outside the system
//!   account, publishing in `$SYS.>` is refused but for the self-service
//!   subjects (`perms`), and inside it the users' own permissions apply.
//!   `KICK` and `RELOAD` need more: a grant in the requester's publish
//!   allow list (an unrestricted system user may do neither), and the
//!   requester must be a client of this server.
//! - `RELOAD` is carried out by whoever runs the server (the `warden`
//!   command reloads its config file, as on SIGHUP) through
//!   [`ReloadRequests`]; an embedder that takes none gets it refused.

mod claims;
mod events;
mod forward;
mod heartbeat;
mod requests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::audit::Event;
use crate::broker::{
    audit_conn, stopping, Account, Announce, Broker, CloseReason, Inbox, InboxMsg, Interest, InternalClient, Message,
    ServerEvent,
};
use crate::monitor::{rfc3339, ApiFailure, Endpoint, MonitorApi};
use forward::Forwarded;
use heartbeat::Heartbeats;
use requests::{AccountRequest, Body, Request, ServerFacts, ServerInfo, SELF_SERVICE};

/// The first periodic `$SYS.SERVER.<id>.STATSZ` goes out this soon after
/// start; the interval then doubles up to [`STATSZ_INTERVAL`] (nats-server's
/// schedule).
const STATSZ_FIRST: Duration = Duration::from_millis(250);
/// The periodic statistics interval (nats-server 2.9.10's).
const STATSZ_INTERVAL: Duration = Duration::from_secs(30);
/// How long a `RELOAD` request waits for the reload to be done.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

pub use claims::{ClaimsAnswer, ClaimsAsk, ClaimsRequest};

/// How long a claims request waits for the resolver.
const CLAIMS_TIMEOUT: Duration = Duration::from_secs(10);

/// Where claims requests go in operator mode, and whether the resolver is
/// a directory (which also serves the general update and lookups).
pub type ClaimsService = (mpsc::Sender<ClaimsRequest>, bool);

/// One reload asked for over NATS: who asked, and where the receiver says
/// how it went (why it was refused, which the requester is sent, as
/// nats-server sends it).
#[derive(Debug)]
pub struct ReloadRequest {
    /// The requester, when it is a client of this server (for the audit trail).
    pub requester: Option<crate::audit::Conn>,
    /// Where to answer.
    pub done: oneshot::Sender<Result<(), String>>,
}

/// Where `RELOAD` requests arrive, for whoever can reload the server.
pub type ReloadRequests = mpsc::Receiver<ReloadRequest>;

/// The running services. They stop with the server's shutdown signal.
#[derive(Debug)]
pub struct SystemServices {
    task: JoinHandle<()>,
}

impl SystemServices {
    /// Subscribes in the system account (and the self-service subjects in
    /// every other account) and starts answering; `None` without a system
    /// account.
    /// `claims`: operator mode's resolver, which gets account JWT updates.
    pub fn start(
        broker: Arc<Broker>,
        api: MonitorApi,
        reloads: mpsc::Sender<ReloadRequest>,
        claims: Option<ClaimsService>,
    ) -> Option<SystemServices> {
        broker.accounts.system()?;
        let (pushes, pushes_rx) = Inbox::new(Announce::Everywhere, "account JWT pushes");
        let (system, system_rx) = Inbox::new(Announce::Everywhere, "system account requests");
        let (tenants, tenants_rx) = Inbox::budgeted(Announce::Leafs, "self-service $SYS requests");
        let (answers, answers_rx) = Inbox::new(Announce::Everywhere, "answers to forwarded self-service requests");
        let (local, local_rx) = Inbox::budgeted(Announce::Nowhere, "$SYS.REQ.USER.INFO requests");
        let events = broker.events.take_receiver();
        let service = Service {
            client: InternalClient::new(broker.clone()),
            seq: 0,
            inboxes: Inboxes { pushes, system, answers, tenants, local },
            forwarded: Forwarded::new(),
            reloads,
            claims,
            broker,
            api,
            heartbeats: Heartbeats::default(),
        };
        let queues =
            Queues { pushes: pushes_rx, system: system_rx, answers: answers_rx, tenants: tenants_rx, local: local_rx };
        Some(SystemServices { task: tokio::spawn(service.run(queues, events)) })
    }

    /// Waits for the task to end (after shutdown began).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// This server's facts, owned (for the borrowing [`ServerFacts`]).
struct OwnFacts {
    name: String,
    host: String,
    id: String,
    cluster: Option<String>,
    tags: Vec<String>,
    metadata: std::collections::BTreeMap<String, String>,
}

impl OwnFacts {
    fn view(&self) -> ServerFacts<'_> {
        ServerFacts {
            name: &self.name,
            host: &self.host,
            id: &self.id,
            cluster: self.cluster.as_deref(),
            tags: &self.tags,
            metadata: &self.metadata,
        }
    }
}

/// Where the service's subscriptions deliver (see the module doc).
struct Inboxes {
    /// Account JWT pushes and lookups (system account only).
    pushes: Arc<Inbox>,
    /// The system account's other requests, which peers hear of.
    system: Arc<Inbox>,
    /// Peers' (and this server's) answers to the self-service requests
    /// sent on in the system account ([`forward`]).
    answers: Arc<Inbox>,
    /// Other accounts' self-service requests, from this server's clients
    /// and its leaf connections (as nats-server's import subscriptions,
    /// routes do not hear of them: they hear the request [`forward`] sends
    /// on).
    tenants: Arc<Inbox>,
    /// `$SYS.REQ.USER.INFO`, answered only by the requester's own server
    /// (as nats-server: the interest is not propagated).
    local: Arc<Inbox>,
}

/// The receiving ends of [`Inboxes`].
struct Queues {
    pushes: mpsc::Receiver<InboxMsg>,
    system: mpsc::Receiver<InboxMsg>,
    answers: mpsc::Receiver<InboxMsg>,
    tenants: mpsc::Receiver<InboxMsg>,
    local: mpsc::Receiver<InboxMsg>,
}

struct Service {
    broker: Arc<Broker>,
    api: MonitorApi,
    /// The service's subscriptions in every account, and its publisher.
    client: InternalClient,
    /// Messages sent so far (`ServerInfo.seq`).
    seq: u64,
    inboxes: Inboxes,
    /// Tenants' requests sent on in the system account, awaiting answers.
    forwarded: Forwarded,
    /// Operator mode's resolver.
    claims: Option<ClaimsService>,
    reloads: mpsc::Sender<ReloadRequest>,
    /// When each account with connections has its count sent again.
    heartbeats: Heartbeats,
}

impl Service {
    async fn run(mut self, mut queues: Queues, mut events: Option<mpsc::Receiver<ServerEvent>>) {
        let mut shutdown = self.broker.shutdown_signal();
        let mut changed = self.broker.accounts.changed();
        self.resubscribe();
        let mut every = STATSZ_FIRST;
        let mut next_statsz = tokio::time::Instant::now() + every;
        loop {
            // In order: an operator's push is never behind a request.
            tokio::select! {
                biased;
                _ = stopping(&mut shutdown) => break,
                Ok(()) = changed.changed() => self.resubscribe(),
                Some(msg) = queues.pushes.recv() => self.request(&msg).await,
                Some(msg) = queues.system.recv() => self.request(&msg).await,
                Some(msg) = queues.answers.recv() => self.relay(&msg),
                Some(msg) = queues.local.recv() => self.request(&msg).await,
                Some(msg) = queues.tenants.recv() => self.request(&msg).await,
                Some(event) = next_event(&mut events) => self.event(&event),
                _ = sleep_until_some(self.heartbeats.next()) => self.heartbeat(),
                _ = tokio::time::sleep_until(next_statsz) => {
                    let subject = format!("$SYS.SERVER.{}.STATSZ", self.broker.identity.id);
                    let system = self.broker.accounts.system();
                    if let Some(system) = system {
                        self.send_stats(&system, subject.as_bytes());
                    }
                    every = (every * 2).min(STATSZ_INTERVAL);
                    next_statsz += every;
                }
            }
        }
        // The client's subscriptions end with it, as the task ends.
    }

    /// Makes the subscriptions match the accounts (at start and after each
    /// reload): the service subjects in the system account, the
    /// self-service ones in every other.
    fn resubscribe(&mut self) {
        let system = self.broker.accounts.system();
        let tenants: Vec<Arc<str>> = (self.broker.accounts.all().into_iter())
            .filter(|a| !system.as_ref().is_some_and(|s| Arc::ptr_eq(s, a)))
            .map(|a| a.name.clone())
            .collect();
        self.forwarded.keep(&tenants);
        let wanted: Vec<(Arc<Account>, Vec<Interest>)> = self
            .broker
            .accounts
            .all()
            .into_iter()
            .map(|account| {
                let is_system = system.as_ref().is_some_and(|s| Arc::ptr_eq(s, &account));
                let interests = self.interests(is_system);
                (account, interests)
            })
            .collect();
        self.client.subscribe(wanted);
    }

    /// The subjects served in the system account (`system`) or in any other.
    fn interests(&self, system: bool) -> Vec<Interest> {
        let id = &self.broker.identity.id;
        let inboxes = &self.inboxes;
        let mut wanted = Vec::new();
        if system {
            wanted.extend(
                requests::SYSTEM_SUBJECTS.iter().map(|s| Interest::new(s.replace("{id}", id), &inboxes.system)),
            );
            let answers = self.forwarded.response_subjects();
            wanted.extend(answers.map(|s| Interest::new(s, &inboxes.answers)));
            if let Some((_, directory)) = &self.claims {
                wanted.extend(claims::subjects(*directory).into_iter().map(|s| Interest::new(s, &inboxes.pushes)));
            }
        } else {
            let shared = SELF_SERVICE.iter().filter(|s| **s != requests::USER_INFO);
            wanted.extend(shared.map(|s| Interest::new(s, &inboxes.tenants)));
        }
        wanted.push(Interest::new(requests::USER_INFO, &inboxes.local));
        wanted
    }

    fn facts(&self) -> OwnFacts {
        let broker = &self.broker;
        OwnFacts {
            name: broker.identity.name.clone(),
            host: broker.opts.host.clone(),
            id: broker.identity.id.clone(),
            cluster: self.api.cluster_name(),
            tags: broker.opts.server_tags.clone(),
            metadata: broker.opts.server_metadata.clone(),
        }
    }

    fn server_info<'a>(&mut self, facts: &'a ServerFacts<'a>) -> ServerInfo<'a> {
        self.seq += 1;
        ServerInfo::new(facts, self.seq, rfc3339(SystemTime::now()))
    }

    /// Answers one request, if it is one this server answers.
    async fn request(&mut self, msg: &InboxMsg) {
        let system = msg.account.is_system();
        if let (true, Some((_, directory))) = (system, &self.claims) {
            if let Some(ask) = claims::parse(&msg.subject, msg.payload(), *directory) {
                return self.claims(msg, ask).await;
            }
        }
        let Some(reply) = msg.reply.as_deref() else { return };
        let own = self.facts();
        let Some(request) = requests::parse(&msg.subject, &msg.account.name, system, &own.id) else { return };
        if let (false, Request::Account { name, what, .. }) = (system, &request) {
            if self.forward(name, *what, reply, msg.payload()) {
                return;
            }
        }
        let facts = own.view();
        let body = match Body::parse(msg.payload()) {
            Ok(body) => body,
            Err(failure) => {
                let server = self.server_info(&facts);
                let answer = requests::envelope(&server, Err(failure));
                self.publish(&msg.account, reply, &answer);
                return;
            }
        };
        // nats-server 2.15.1 answers IDZ whatever the filter says.
        if request != Request::Idz && !body.selects(&facts) {
            return;
        }
        let data = match request {
            Request::Stats => {
                let account = msg.account.clone();
                self.send_stats(&account, reply);
                return;
            }
            Request::Idz => {
                let idz = serde_json::json!({ "name": own.name, "host": own.host, "id": own.id });
                self.publish(&msg.account, reply, idz.to_string().as_bytes());
                return;
            }
            Request::Endpoint(endpoint) => self.api.request(endpoint, &body.options, None),
            Request::Kick => self.granted(msg).and_then(|()| self.kick(msg, &body)),
            Request::Reload => match self.granted(msg) {
                Ok(()) => self.reload(msg).await,
                Err(refused) => Err(refused),
            },
            Request::Account { name, every, what } => match self.account_request(&name, every, what, &body) {
                Some(data) => data,
                None => return,
            },
            Request::UserInfo => match self.user_info(msg) {
                Some(data) => Ok(data),
                None => return,
            },
        };
        let server = self.server_info(&facts);
        let answer = requests::envelope(&server, data);
        self.publish(&msg.account, reply, &answer);
    }

    /// Sends a tenant's request on in the system account ([`forward`]);
    /// false when it is to be answered here alone.
    fn forward(&mut self, account: &str, what: AccountRequest, reply: &[u8], body: &[u8]) -> bool {
        let Some(system) = self.broker.accounts.system() else { return false };
        let Some(system) = self.client.account(&system.name).cloned() else { return false };
        let now = std::time::Instant::now();
        let Some(sent) = self.forwarded.open(account, what, reply, body, now) else { return false };
        let msg = Message {
            subject: &sent.subject,
            reply: Some(&sent.reply),
            header_len: None,
            message: &sent.body,
            buffer: None,
        };
        self.client.publish(&system, &msg);
        true
    }

    /// Hands an answer to a forwarded request to its requester.
    fn relay(&mut self, msg: &InboxMsg) {
        if !msg.account.is_system() {
            return;
        }
        let Some((name, reply)) = self.forwarded.answer(&msg.subject, std::time::Instant::now()) else { return };
        let Some(account) = self.client.account(&name).cloned() else { return };
        let out =
            Message { subject: &reply, reply: None, header_len: msg.header_len, message: &msg.message, buffer: None };
        let delivered = self.client.publish(&account, &out);
        debug!(account = %name, delivered, "answer to a forwarded self-service request relayed");
    }

    /// An account JWT update or lookup: handed to the resolver's owner,
    /// answered (when the request has a reply subject) as nats-server does.
    async fn claims(&mut self, msg: &InboxMsg, ask: ClaimsAsk) {
        let Some((asks, _)) = &self.claims else { return };
        let (done, answer) = oneshot::channel();
        let account = ask.account().unwrap_or("n/a").to_owned();
        let update = matches!(ask, ClaimsAsk::Update { .. });
        let busy = |account| ClaimsAnswer::Refused { account, description: "the resolver is busy; push again".into() };
        // Never dropped silently: a push that cannot be applied is answered.
        let answer = match asks.try_send(ClaimsRequest { ask, done }) {
            Err(_) => {
                warn!(%account, "account JWT push refused: the resolver is busy");
                busy(account)
            }
            Ok(()) => match tokio::time::timeout(CLAIMS_TIMEOUT, answer).await {
                Ok(Ok(answer)) => answer,
                _ => {
                    warn!(%account, "account JWT push not answered by the resolver in time");
                    busy(account)
                }
            },
        };
        if update && self.broker.audit.is_on() {
            let (account, applied, result) = match &answer {
                ClaimsAnswer::Updated { account, message } => (account.clone(), true, (*message).to_owned()),
                ClaimsAnswer::Refused { account, description } => (account.clone(), false, description.clone()),
                ClaimsAnswer::Jwt(_) => ("n/a".to_owned(), false, String::new()),
            };
            self.broker.audit.record(Event::AccountJwtUpdate { account, applied, result, by: self.requester(msg) });
        }
        let Some(reply) = msg.reply.as_deref() else { return };
        let body = match &answer {
            ClaimsAnswer::Jwt(Some(token)) => token.clone().into_bytes(),
            ClaimsAnswer::Jwt(None) => return,
            _ => {
                let own = self.facts();
                let facts = own.view();
                let server = serde_json::to_value(self.server_info(&facts)).unwrap_or_default();
                match claims::update_answer(server, &answer) {
                    Some(body) => body,
                    None => return,
                }
            }
        };
        self.publish(&msg.account, reply, &body);
    }

    /// `None`: stay silent (nats-server's "filtered response").
    /// `every`: the system account's `$SYS.REQ.ACCOUNT.PING.STATZ`, about
    /// the accounts the body names (never inferred from an account's name).
    fn account_request(
        &self,
        name: &str,
        every: bool,
        what: AccountRequest,
        body: &Body,
    ) -> Option<Result<Value, ApiFailure>> {
        Some(match what {
            AccountRequest::Connz => self.api.request(Endpoint::Connz, &body.options, Some(name)),
            AccountRequest::Subsz => self.api.request(Endpoint::Subsz, &body.options, Some(name)),
            AccountRequest::Info => self.api.account_info(name),
            AccountRequest::Statz => {
                let accounts = if every { body.accounts() } else { vec![name.to_owned()] };
                let statz = self.api.account_statz(&accounts, body.include_unused());
                let empty = statz.as_ref().is_ok_and(|s| s["account_statz"].as_array().is_none_or(Vec::is_empty));
                if empty && !body.include_unused() {
                    return None;
                }
                statz
            }
        })
    }

    /// `$SYS.REQ.USER.INFO`: the requesting client's user, account and
    /// permissions (nats-server 2.10's `UserInfo`).
    fn user_info(&self, msg: &InboxMsg) -> Option<Value> {
        let client = self.broker.client(msg.client?)?;
        let meta = client.meta.lock();
        let mut info = serde_json::json!({
            "user": meta.user.clone().unwrap_or_default(),
            "account": meta.account.as_deref().unwrap_or_default(),
        });
        if let Some(rules) = meta.permissions.as_ref().and_then(|p| p.source()) {
            info["permissions"] = requests::permissions_json(rules);
        }
        Some(info)
    }

    /// Whether the requester may `KICK` or `RELOAD`: a client of this
    /// server whose publish allow list grants the request's subject.
    fn granted(&self, msg: &InboxMsg) -> Result<(), ApiFailure> {
        let requester = msg.client.and_then(|id| self.broker.client(id));
        let granted = requester.is_some_and(|c| {
            let meta = c.meta.lock();
            meta.permissions.as_ref().is_some_and(|p| !p.publish_is_unrestricted() && p.may_publish(&msg.subject))
        });
        if granted {
            Ok(())
        } else {
            Err(ApiFailure { code: 403, description: "this request needs an explicit publish permission".into() })
        }
    }

    /// `KICK`: closes connection `cid` of this server.
    fn kick(&self, msg: &InboxMsg, body: &Body) -> Result<Value, ApiFailure> {
        let Some(cid) = body.cid() else { return Err(ApiFailure::bad_request("cid is required")) };
        let Some(target) = self.broker.client(cid) else {
            return Err(ApiFailure { code: 404, description: "no connection with that cid".into() });
        };
        info!(cid, by = msg.client, "connection kicked by a system request");
        if self.broker.audit.is_on() {
            let by = self.requester(msg);
            self.broker.audit.record(Event::Kick { by, target: audit_conn(&target) });
        }
        target.outbound.close(CloseReason::Kicked);
        Ok(Value::Null)
    }

    /// `RELOAD`: asks whoever runs the server to reload, and waits (bounded).
    async fn reload(&self, msg: &InboxMsg) -> Result<Value, ApiFailure> {
        let unavailable = ApiFailure { code: 503, description: "reload is not available on this server".into() };
        let (done, result) = oneshot::channel();
        let request = ReloadRequest { requester: self.requester(msg), done };
        self.reloads.try_send(request).map_err(|_| unavailable.clone())?;
        info!(by = msg.client, "configuration reload asked for by a system request");
        match tokio::time::timeout(RELOAD_TIMEOUT, result).await {
            Ok(Ok(Ok(()))) => Ok(Value::Null),
            Ok(Ok(Err(why))) => Err(ApiFailure { code: 500, description: format!("reload refused: {why}").into() }),
            _ => Err(unavailable),
        }
    }

    /// The client of this server that sent `msg`, as the audit trail names it.
    fn requester(&self, msg: &InboxMsg) -> Option<crate::audit::Conn> {
        msg.client.and_then(|id| self.broker.client(id)).map(|c| audit_conn(&c))
    }

    fn send_stats(&mut self, account: &Arc<Account>, subject: &[u8]) {
        let statsz = match self.api.request(Endpoint::Statsz, &serde_json::Map::new(), None) {
            Ok(statsz) => statsz,
            Err(_) => return,
        };
        let own = self.facts();
        let facts = own.view();
        let server = self.server_info(&facts);
        let message = requests::stats_message(&server, statsz);
        self.publish(account, subject, &message);
    }

    fn event(&mut self, event: &ServerEvent) {
        let Some(system) = self.broker.accounts.system() else { return };
        let own = self.facts();
        let facts = own.view();
        let server = self.server_info(&facts);
        if let Some((subject, body)) = events::render(event, &server, &own.id) {
            self.publish(&system, subject.as_bytes(), &body);
        }
        if let Some(account) = events::counted_account(event) {
            self.send_account_conns(&system, &account);
        }
    }

    /// Sends the count of every account due for it (see [`heartbeat`]).
    fn heartbeat(&mut self) {
        let due = self.heartbeats.take_due(tokio::time::Instant::now());
        let Some(system) = self.broker.accounts.system() else { return };
        for account in due {
            self.send_account_conns(&system, &account);
        }
    }

    /// The connection count of `account` on this server, as nats-server
    /// sends it whenever an account gains or loses a connection, and every
    /// 30 s while it has any.
    fn send_account_conns(&mut self, system: &Account, account: &str) {
        let Ok(mut statz) = self.api.account_statz(&[account.to_owned()], true) else { return };
        let stat = statz["account_statz"][0].take();
        if !stat.is_object() {
            return;
        }
        let any = stat["total_conns"].as_u64().is_some_and(|n| n > 0);
        self.heartbeats.sent(account, any, tokio::time::Instant::now());
        let own = self.facts();
        let facts = own.view();
        let server = self.server_info(&facts);
        let (subjects, body) = events::account_conns(account, stat, &server);
        for subject in subjects {
            self.publish(system, subject.as_bytes(), &body);
        }
    }

    /// Publishes in `account` as the server.
    fn publish(&mut self, account: &Account, subject: &[u8], payload: &[u8]) {
        let msg = Message { subject, reply: None, header_len: None, message: payload, buffer: None };
        let delivered = self.client.publish(account, &msg);
        debug!(subject = %String::from_utf8_lossy(subject), delivered, "system message sent");
    }
}

/// Completes at `at`; never without it.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_event(events: &mut Option<mpsc::Receiver<ServerEvent>>) -> Option<ServerEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
