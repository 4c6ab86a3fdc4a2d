//! The protocol session of one connection: what each client op does.
//!
//! Everything here is synchronous: a read batch is parsed and handled
//! without awaiting, publishers append to subscribers' outbound buffers and
//! remember whom they touched; `task.rs` then wakes those writers once per
//! batch and, if one of them is backed up, briefly stalls this publisher.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::{debug, info, warn};

use super::fanout::{Fanout, Message, Origin};
use super::{Append, Client, CloseReason};
use crate::auth::{Claims, ConnectionFacts, Identity, Verdict};
use crate::perms::{PublishCache, SubDecision};
use crate::proto::{ConnectOptions, Op, ParseLimits, Parser, ProtoError, Publish, Step, NO_RESPONDERS_HEADER};
use crate::router::Subscription;
use crate::server::Shared;
use crate::subject;

/// Why a read batch stopped before the end of the buffer.
#[derive(Debug)]
pub(super) enum Stop {
    /// Close the connection.
    Close(CloseReason),
    /// A CONNECT needs its credentials checked (off the reactor) before
    /// anything after it is handled.
    Authenticate(Claims),
}

impl From<CloseReason> for Stop {
    fn from(reason: CloseReason) -> Self {
        Stop::Close(reason)
    }
}

const OK: &[u8] = b"+OK\r\n";
const PONG: &[u8] = b"PONG\r\n";

/// Per-connection protocol state, owned by the connection's reader task.
pub(super) struct Session {
    shared: Arc<Shared>,
    client: Arc<Client>,
    parser: Parser,
    limits: ParseLimits,
    verbose: bool,
    echo: bool,
    headers: bool,
    no_responders: bool,
    /// Subscriptions by sid.
    subs: HashMap<Box<[u8]>, Arc<Subscription>>,
    /// Delivery state: match cache, touched clients, queue picks.
    fanout: Fanout,
    /// Inbound messages and bytes in the current batch.
    batch_in: (u64, u64),
    /// Credentials must be checked before anything else is handled.
    auth_required: bool,
    /// Who the client is, once known; its permissions guard every op.
    identity: Option<Identity>,
    /// Publish decisions in front of the identity's permissions.
    publish_perms: Option<PublishCache>,
    /// CONNECT options waiting for their credentials to be checked.
    pending_connect: Option<ConnectOptions>,
    /// Whether the client sent anything since the last keep-alive tick.
    pub(super) inbound_activity: bool,
    /// Unanswered server PINGs.
    pub(super) pings_out: u32,
}

impl Session {
    pub(super) fn new(shared: Arc<Shared>, client: Arc<Client>) -> Self {
        let authenticator = shared.authenticator();
        let auth_required = authenticator.auth_required();
        let limits =
            ParseLimits { max_payload: shared.opts.max_payload, max_control_line: shared.opts.max_control_line };
        let defaults = ConnectOptions::default();
        let fanout = Fanout::new(client.id);
        let mut session = Session {
            shared,
            client,
            parser: Parser::new(),
            limits,
            verbose: defaults.verbose,
            echo: defaults.echo,
            headers: defaults.headers,
            no_responders: defaults.no_responders,
            subs: HashMap::new(),
            fanout,
            batch_in: (0, 0),
            auth_required,
            identity: None,
            publish_perms: None,
            pending_connect: None,
            inbound_activity: false,
            pings_out: 0,
        };
        if !auth_required {
            // No credentials needed: the identity is known from the start.
            let facts = session.facts();
            if let Verdict::Accept(identity) = authenticator.authenticate(&Claims::default(), &facts) {
                session.set_identity(identity);
            }
        }
        session
    }

    /// The connection's facts for an authenticator.
    pub(super) fn facts(&self) -> ConnectionFacts {
        ConnectionFacts { addr: self.client.addr, peer: self.client.meta.lock().peer.clone() }
    }

    /// Whether the client still has to authenticate.
    pub(super) fn awaiting_auth(&self) -> bool {
        self.identity.is_none()
    }

    fn set_identity(&mut self, identity: Identity) {
        self.client.set_reply_tracking(&identity.permissions);
        self.client.meta.lock().user = identity.user.clone();
        match &mut self.publish_perms {
            Some(cache) => cache.replace(identity.permissions.clone()),
            None => self.publish_perms = Some(PublishCache::new(identity.permissions.clone())),
        }
        self.identity = Some(identity);
    }

    /// Handles every complete op at the start of `buf`. Returns the bytes
    /// used, how many bytes the unused rest must grow to before the next op
    /// can complete, and, if the connection must close, why.
    pub(super) fn process(&mut self, buf: &[u8]) -> (usize, usize, Option<Stop>) {
        self.fanout.begin_batch(self.shared.next_batch_token());
        let mut used = 0;
        loop {
            let step = self.parser.parse(&buf[used..], &self.limits);
            match step {
                Ok(Step::Op(op, n)) => {
                    used += n;
                    self.inbound_activity = true;
                    if let Err(stop) = self.handle(op) {
                        return (used, 0, Some(stop));
                    }
                }
                Ok(Step::NeedMore(need)) => return (used, need, None),
                Err(err) => return (used, 0, Some(Stop::Close(self.fail(err)))),
            }
        }
    }

    /// Sends the error line and returns the close reason if it closes.
    fn fail(&mut self, err: ProtoError) -> CloseReason {
        self.client.send(err.to_line().as_bytes());
        debug!(cid = self.client.id, error = %err, "closing connection on protocol error");
        match err {
            ProtoError::MaxPayload => CloseReason::MaxPayloadExceeded,
            ProtoError::MaxControlLine => CloseReason::MaxControlLineExceeded,
            ProtoError::InvalidClientProtocol => CloseReason::BadClientProtocolVersion,
            ProtoError::NoRespondersRequiresHeaders => CloseReason::NoRespondersRequiresHeaders,
            ProtoError::AuthorizationViolation => CloseReason::AuthenticationFailure,
            _ => CloseReason::ProtocolViolation,
        }
    }

    /// Reports an error that leaves the connection open, or closes for one that doesn't.
    fn refuse(&mut self, err: ProtoError) -> Result<(), CloseReason> {
        if err.closes_connection() {
            return Err(self.fail(err));
        }
        self.client.send(err.to_line().as_bytes());
        Ok(())
    }

    fn ack(&self) {
        if self.verbose {
            self.client.send(OK);
        }
    }

    fn handle(&mut self, op: Op<'_>) -> Result<(), Stop> {
        if self.awaiting_auth() && !matches!(op, Op::Connect(_)) {
            return Err(Stop::Close(self.fail(ProtoError::AuthorizationViolation)));
        }
        match op {
            Op::Connect(json) => self.connect(json),
            Op::Ping => {
                self.client.send(PONG);
                Ok(())
            }
            Op::Pong => {
                self.pings_out = 0;
                Ok(())
            }
            Op::Ok | Op::Info => Ok(()),
            Op::Err => Err(Stop::Close(CloseReason::ClientClosed)),
            Op::Pub(publish) => Ok(self.publish(publish)?),
            Op::Sub { subject, queue, sid } => Ok(self.subscribe(subject, queue, sid)?),
            Op::Unsub { sid, max } => {
                self.unsubscribe(sid, max);
                self.ack();
                Ok(())
            }
        }
    }

    fn connect(&mut self, json: &[u8]) -> Result<(), Stop> {
        let Ok(opts) = ConnectOptions::parse(json) else {
            return Err(self.fail(ProtoError::InvalidArguments("CONNECT is not valid JSON for its fields")).into());
        };
        if opts.account.is_some() || opts.new_account.is_some() {
            return Err(self.fail(ProtoError::AuthorizationViolation).into());
        }
        if self.auth_required && self.identity.is_some() {
            // nats-server re-authenticates and may switch the user of a live
            // connection; warden refuses a second CONNECT (see SECURITY.md).
            return Err(self.fail(ProtoError::AuthorizationViolation).into());
        }
        if !(0..=1).contains(&opts.protocol) {
            return Err(self.fail(ProtoError::InvalidClientProtocol).into());
        }
        if opts.no_responders && !opts.headers {
            return Err(self.fail(ProtoError::NoRespondersRequiresHeaders).into());
        }
        if self.identity.is_some() {
            self.apply_connect(opts);
            return Ok(());
        }
        let claims = Claims { user: opts.user.clone(), password: opts.pass.clone(), token: opts.auth_token.clone() };
        self.pending_connect = Some(opts);
        Err(Stop::Authenticate(claims))
    }

    /// Applies the authenticator's answer to the pending CONNECT.
    pub(super) fn complete_connect(&mut self, verdict: Verdict) -> Result<(), CloseReason> {
        let opts = self.pending_connect.take().unwrap_or_default();
        let user = opts.user.clone().unwrap_or_default();
        match verdict {
            Verdict::Accept(identity) => {
                self.shared.security.auth_successes.fetch_add(1, Ordering::Relaxed);
                if self.shared.audit.allow() {
                    info!(cid = self.client.id, addr = %self.client.addr, user = identity.user.as_deref().unwrap_or(""), "authenticated");
                }
                self.set_identity(identity);
                self.apply_connect(opts);
                Ok(())
            }
            Verdict::Refuse(reason) => {
                self.shared.security.count_auth_failure(reason);
                if self.shared.audit.allow() {
                    warn!(cid = self.client.id, addr = %self.client.addr, user = %user, %reason, "authentication failed");
                }
                Err(self.fail(ProtoError::AuthorizationViolation))
            }
        }
    }

    fn apply_connect(&mut self, opts: ConnectOptions) {
        self.verbose = opts.verbose;
        self.echo = opts.echo;
        self.headers = opts.headers;
        self.no_responders = opts.no_responders;
        self.client.set_headers(opts.headers);
        self.client.set_async_info(opts.protocol >= 1);
        {
            let mut meta = self.client.meta.lock();
            meta.name = opts.name;
            meta.lang = opts.lang;
            meta.version = opts.version;
        }
        self.ack();
    }

    /// Logs and counts a refused publish or subscribe, and tells the client.
    fn violation(&mut self, err: ProtoError, direction: &'static str) -> Result<(), CloseReason> {
        let user = self.identity.as_ref().and_then(|i| i.user.clone()).unwrap_or_default();
        self.shared.security.count_violation(&user, direction);
        if self.shared.audit.allow() {
            warn!(cid = self.client.id, addr = %self.client.addr, user = %user, direction, error = %err, "permission violation");
        }
        self.refuse(err)
    }

    fn publish(&mut self, publish: Publish<'_>) -> Result<(), CloseReason> {
        self.batch_in.0 += 1;
        self.batch_in.1 += publish.message.len() as u64;
        if publish.header_len.is_some() && !self.headers {
            return Err(self.fail(ProtoError::InvalidArguments("HPUB needs headers enabled in CONNECT")));
        }
        let reply_ok = publish.reply.is_none_or(subject::is_valid_literal);
        if !subject::is_valid_literal(publish.subject) || !reply_ok {
            // nats-server only warns in pedantic mode and delivers anyway;
            // warden never routes a malformed subject (see SECURITY.md).
            return self.refuse(ProtoError::InvalidPublishSubject);
        }
        let allowed = self.publish_perms.as_mut().is_some_and(|p| p.may_publish(publish.subject))
            || self.client.may_reply(publish.subject);
        if !allowed {
            let subject = String::from_utf8_lossy(publish.subject).into_owned();
            return self.violation(ProtoError::PublishViolation(subject), "publish");
        }
        self.ack();
        let msg = Message {
            subject: publish.subject,
            reply: publish.reply,
            header_len: publish.header_len,
            message: publish.message,
        };
        let delivered = self.fanout.publish(&self.shared, &msg, Origin::Client { id: self.client.id, echo: self.echo });
        if delivered == 0 && self.no_responders {
            if let Some(reply) = publish.reply {
                self.no_responders_reply(reply);
            }
        }
        Ok(())
    }

    /// Sends the 503 status to the publisher's own subscription for `reply`.
    fn no_responders_reply(&mut self, reply: &[u8]) {
        let own =
            self.subs.values().find(|s| s.queue.is_none() && !s.is_removed() && subject::matches(&s.subject, reply));
        if let Some(sub) = own {
            if self.client.deliver(reply, &sub.sid, None, Some(NO_RESPONDERS_HEADER.len()), NO_RESPONDERS_HEADER)
                == Append::Queued
            {
                self.fanout.touch(&self.client);
            }
        }
    }

    fn subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) -> Result<(), CloseReason> {
        if !subject::is_valid_pattern(subject) {
            return self.refuse(ProtoError::InvalidSubject);
        }
        let decision = match &self.identity {
            Some(identity) => identity.permissions.may_subscribe(subject, queue),
            None => SubDecision::Denied,
        };
        let SubDecision::Allowed { filter } = decision else {
            let err = ProtoError::SubscribeViolation {
                subject: String::from_utf8_lossy(subject).into_owned(),
                queue: queue.map(|q| String::from_utf8_lossy(q).into_owned()),
            };
            return self.violation(err, "subscribe");
        };
        if self.subs.get(sid).is_some_and(|s| !s.is_removed()) {
            // nats-server keeps the first subscription and ignores the duplicate.
            self.ack();
            return Ok(());
        }
        let max = self.shared.opts.max_subscriptions;
        if max > 0 && self.subs.len() >= max {
            self.subs.retain(|_, s| !s.is_removed());
            if self.subs.len() >= max {
                return self.refuse(ProtoError::MaxSubscriptions);
            }
        }
        let sub = Arc::new(Subscription::new(self.client.clone(), subject, queue, sid, filter));
        self.shared.add_subscription(sub.clone());
        self.subs.insert(sid.into(), sub);
        self.ack();
        Ok(())
    }

    fn unsubscribe(&mut self, sid: &[u8], max: Option<u64>) {
        let Some(sub) = self.subs.get(sid) else {
            return;
        };
        if max.is_none_or(|m| sub.set_max(m)) {
            self.shared.remove_subscription(sub);
            self.subs.remove(sid);
        }
    }

    /// Ends a read batch: publishes the batch's counters and returns the
    /// clients queued to, each once, so the caller can wake their writers.
    pub(super) fn take_touched(&mut self) -> std::vec::Drain<'_, Arc<Client>> {
        let (in_msgs, in_bytes) = std::mem::take(&mut self.batch_in);
        if in_msgs > 0 {
            let (hits, cached, fanout) = self.fanout.take_monitor_figures();
            let router = &self.shared.router.stats;
            if hits > 0 {
                router.cache_hits.fetch_add(hits, Ordering::Relaxed);
            }
            if fanout > router.max_fanout.load(Ordering::Relaxed) {
                router.max_fanout.fetch_max(fanout, Ordering::Relaxed);
            }
            self.client.set_cache_entries(cached);
        }
        let ((out_msgs, out_bytes), touched) = self.fanout.finish_batch();
        if in_msgs > 0 {
            let c = &self.client.stats;
            c.in_msgs.fetch_add(in_msgs, Ordering::Relaxed);
            c.in_bytes.fetch_add(in_bytes, Ordering::Relaxed);
            let s = &self.shared.stats;
            s.in_msgs.fetch_add(in_msgs, Ordering::Relaxed);
            s.in_bytes.fetch_add(in_bytes, Ordering::Relaxed);
            s.out_msgs.fetch_add(out_msgs, Ordering::Relaxed);
            s.out_bytes.fetch_add(out_bytes, Ordering::Relaxed);
        }
        touched
    }

    /// After a configuration reload: takes the identity's new permissions,
    /// re-checks every subscription (removing those no longer allowed, with
    /// nats-server's `(sid "N")` error), or closes if the user is gone.
    pub(super) fn apply_reload(&mut self) -> Result<(), CloseReason> {
        let Some(identity) = &self.identity else { return Ok(()) };
        let Some(identity) = self.shared.authenticator().refresh(identity) else {
            self.client.send(ProtoError::AuthorizationViolation.to_line().as_bytes());
            info!(cid = self.client.id, addr = %self.client.addr, "closing: user removed or credentials changed by a reload");
            return Err(CloseReason::UserRemoved);
        };
        let permissions = identity.permissions.clone();
        self.set_identity(identity);
        let sids: Vec<Box<[u8]>> = self.subs.keys().cloned().collect();
        for sid in sids {
            let Some(old) = self.subs.get(&sid).cloned() else { continue };
            match permissions.may_subscribe(&old.subject, old.queue.as_deref()) {
                SubDecision::Allowed { filter } => {
                    let renewed = Arc::new(old.renewed(filter));
                    self.shared.remove_subscription(&old);
                    self.shared.add_subscription(renewed.clone());
                    self.subs.insert(sid, renewed);
                }
                SubDecision::Denied => {
                    self.shared.remove_subscription(&old);
                    self.subs.remove(&sid);
                    let err = ProtoError::SubscriptionRevoked {
                        subject: String::from_utf8_lossy(&old.subject).into_owned(),
                        sid: String::from_utf8_lossy(&sid).into_owned(),
                    };
                    self.client.send(err.to_line().as_bytes());
                }
            }
        }
        Ok(())
    }

    /// Removes every subscription of this connection from the index.
    pub(super) fn unsubscribe_all(&mut self) {
        for (_, sub) in self.subs.drain() {
            self.shared.remove_subscription(&sub);
        }
    }

    /// The client this session serves.
    pub(super) fn client(&self) -> &Arc<Client> {
        &self.client
    }
}
