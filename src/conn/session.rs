//! The protocol session of one connection, sans IO: bytes and `now` in;
//! out go the bytes queued to clients (this one's own outbound queue and
//! its subscribers'), the events the task must act on (close, check
//! credentials) and the next deadline.
//!
//! Everything here is synchronous: a read batch is parsed and handled
//! without awaiting; publishers append to subscribers' outbound buffers and
//! remember whom they touched; `task.rs` then wakes those writers once per
//! batch and, if one of them is backed up, briefly stalls this publisher.
//! The unit tests below drive a session directly, with no socket and no
//! clock.
// Sans IO: `now` comes from the driver (clippy.toml).
#![deny(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::keepalive::{KeepAlive, FIRST_CLIENT_PING};
use crate::auth::{Claims, ClientSoftware, ConnectionFacts, ConnectionType, Gate, Identity, TlsFacts, Verdict};
use crate::broker::rate::Throttle;
use crate::broker::{
    mapped, Account, Append, Broker, BudgetKind, Client, CloseReason, Fanout, Mapper, Message, Origin, Presented,
    ReadBuffer, ServerEvent, Subscription, Trace, Unroutable,
};
use crate::perms::{system_space, PublishGuard, PublishViolation, Standing, SubDecision};
use crate::proto::msg_trace;
use crate::proto::{ConnectOptions, Op, ParseLimits, Parser, ProtoError, Publish, Step, NO_RESPONDERS_HEADER};
use crate::subject;

/// What the driver must do after [`Session::receive`].
pub(super) type Event = super::driver::Event<Box<Login>>;

/// What a credential check needs (a client's or a leaf node's).
#[derive(Debug)]
pub(crate) struct Login {
    /// What the CONNECT presented.
    pub(crate) claims: Claims,
    /// What the server knows of the connection.
    pub(crate) facts: ConnectionFacts,
}

/// The outcome of [`Session::receive`].
pub(super) type Received = super::driver::Received<Box<Login>>;

const OK: &[u8] = b"+OK\r\n";
const PONG: &[u8] = b"PONG\r\n";

/// Where the connection is in its life.
#[derive(Debug)]
enum State {
    /// Credentials are needed and no CONNECT came yet: nothing but CONNECT
    /// is accepted.
    AwaitingConnect,
    /// A CONNECT's credentials are being checked; the task reads nothing
    /// meanwhile.
    Authenticating(Box<ConnectOptions>),
    /// The client is known; its permissions guard every op (boxed: the
    /// caches make it much larger than the other states).
    Established(Box<Established>),
}

/// An authenticated (or, without auth, anonymous) connection.
#[derive(Debug)]
struct Established {
    identity: Identity,
    /// The identity's account, resolved once: every PUB is matched in its
    /// index, every SUB goes there. The connection is counted in it.
    account: Arc<Account>,
    /// `max_subscriptions` of the server and the account, the lower (0: none).
    max_subscriptions: usize,
    /// Every PUB's permission check: the identity's rules (cached), its
    /// reply grants, its standing towards `$SYS`, reserved replies.
    publish: PublishGuard<Client>,
    /// The identity came from checking a CONNECT's credentials (so a second
    /// CONNECT is refused rather than re-authenticated).
    logged_in: bool,
    /// The account is the system account: `$SYS.>` is open to it.
    in_system: bool,
    /// The login ends then (the identity's expiry).
    expires: Option<Instant>,
    /// The account's subject mappings (`None`, the common case: a publish
    /// pays one test), taken again after every reload.
    mapper: Option<Mapper>,
}

/// What [`Session::begin_trace`] decided.
enum Begin {
    /// No trace: the message goes on as it is.
    Untraced,
    /// Traced.
    Trace(Box<Trace>),
    /// Dropped (trace-only that cannot be traced, or a destination the
    /// publisher may not publish to).
    Skip,
    /// Sent on with `Nats-Trace-Dest: trace disabled` in the first `.0`
    /// bytes' header block, so no server further on traces it.
    Disable(usize),
}

/// CONNECT options that shape every op after it.
#[derive(Debug, Clone, Copy)]
struct Flags {
    verbose: bool,
    echo: bool,
    headers: bool,
    no_responders: bool,
}

/// Per-connection protocol state, owned by the connection's reader task.
pub(super) struct Session {
    broker: Arc<Broker>,
    gate: Arc<Gate>,
    client: Arc<Client>,
    parser: Parser,
    limits: ParseLimits,
    flags: Flags,
    state: State,
    /// Subscriptions by sid.
    subs: HashMap<Box<[u8]>, Arc<Subscription>>,
    /// Its login was reported as a connect event (so its close is too).
    reported: bool,
    /// Delivery state: match cache, touched clients, queue picks.
    fanout: Fanout,
    /// Inbound messages and bytes in the current batch.
    batch_in: (u64, u64),
    keepalive: KeepAlive,
    /// The client must be established by then.
    auth_deadline: Instant,
    /// The configuration generation the identity was last checked against.
    generation: u64,
    /// The nonce this connection's INFO carried; used once, by the CONNECT
    /// that logs in.
    nonce: Option<String>,
    /// A WebSocket client's user JWT from its cookie (`jwt_cookie`), for a
    /// CONNECT without one.
    cookie_jwt: Option<crate::secret::Secret>,
    /// The last publish subject that passed validation: a publisher that
    /// repeats its subject (the common case) skips the byte scan, which was
    /// ~190 of the ~1,100 instructions a published message costs.
    valid_subject: Vec<u8>,
    /// The user's and the account's publish rate (`None`: no limit, the
    /// common case, one check per PUB).
    throttle: Option<Throttle>,
}

impl Session {
    /// The session of a connection accepted at `now`.
    pub(super) fn new(
        broker: Arc<Broker>,
        gate: Arc<Gate>,
        client: Arc<Client>,
        nonce: Option<String>,
        now: Instant,
    ) -> Self {
        let opts = &broker.opts;
        client.set_traced(broker.trace.on());
        let limits = ParseLimits { max_payload: opts.max_payload, max_control_line: opts.max_control_line };
        let defaults = ConnectOptions::default();
        let keepalive = KeepAlive::new(now, FIRST_CLIENT_PING, opts.ping_interval, opts.ping_max);
        let mut session = Session {
            fanout: Fanout::of(&client),
            auth_deadline: now + gate.timeout(),
            generation: gate.generation(),
            broker,
            client,
            parser: Parser::new(),
            limits,
            flags: Flags {
                verbose: defaults.verbose,
                echo: defaults.echo,
                headers: defaults.headers,
                no_responders: defaults.no_responders,
            },
            state: State::AwaitingConnect,
            subs: HashMap::new(),
            reported: false,
            batch_in: (0, 0),
            keepalive,
            gate,
            nonce,
            cookie_jwt: None,
            valid_subject: Vec::new(),
            throttle: None,
        };
        let authenticator = session.gate.authenticator();
        if !authenticator.auth_required() {
            // No credentials needed: the identity is known from the start.
            // (If its account cannot take it, the session waits for a
            // CONNECT it cannot complete, and times out.)
            if let Verdict::Accept(identity) = authenticator.authenticate(&Claims::default(), &session.facts()) {
                let _ = session.establish(identity, false);
            }
        }
        session
    }

    /// Sets the user JWT a WebSocket cookie carried.
    pub(super) fn set_cookie_jwt(&mut self, jwt: Option<crate::secret::Secret>) {
        self.cookie_jwt = jwt;
    }

    /// The connection's facts for an authenticator.
    fn facts(&self) -> ConnectionFacts {
        connection_facts(&self.client, self.nonce.clone(), self.connection_type())
    }

    /// What `allowed_connection_types` calls this connection.
    fn connection_type(&self) -> ConnectionType {
        if self.client.meta.lock().websocket {
            ConnectionType::Websocket
        } else {
            ConnectionType::Standard
        }
    }

    fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    /// Makes `identity` this connection's, in its account. A first login
    /// joins the account (refused at its `max_connections`); after a
    /// reload the account must be the same one.
    fn establish(&mut self, identity: Identity, logged_in: bool) -> Result<(), ProtoError> {
        let account = match &self.state {
            State::Established(e) if *e.account.name == *identity.account && !e.account.is_removed() => {
                e.account.clone()
            }
            State::Established(_) => return Err(ProtoError::AuthorizationViolation),
            _ => {
                let Some(account) = self.broker.accounts.get(&identity.account) else {
                    return Err(ProtoError::AuthorizationViolation);
                };
                if !account.try_connect() {
                    return Err(ProtoError::MaxAccountConnections);
                }
                account
            }
        };
        let limits = account.state().limits;
        let lower = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let max_payload = lower(limits.max_payload, identity.limits.max_payload);
        self.limits.max_payload =
            max_payload.map_or(self.broker.opts.max_payload, |m| m.min(self.broker.opts.max_payload));
        let server_max = self.broker.opts.max_subscriptions;
        let own = lower(limits.max_subscriptions, identity.limits.max_subscriptions);
        let max_subscriptions = match (server_max, own) {
            (0, own) => own.unwrap_or(0),
            (server, own) => own.map_or(server, |a| a.min(server)),
        };
        // The expiry is wall-clock time (a JWT's `exp`); the session's
        // deadlines are monotonic, so it is converted once, here.
        #[allow(clippy::disallowed_methods)]
        let expires = identity.expires.map(|at| {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            Instant::now() + left
        });
        self.client.set_reply_tracking(&identity.permissions);
        {
            let mut meta = self.client.meta.lock();
            meta.user = identity.user.clone();
            meta.account = Some(account.name.clone());
            meta.permissions = Some(identity.permissions.clone());
        }
        let in_system = account.is_system();
        // As nats-server: the system account's traffic only with `-VV`.
        self.client.set_traced(self.broker.trace.traces(in_system));
        let standing = Standing { in_system, serves_callout: identity.serves_callout };
        let publish = match std::mem::replace(&mut self.state, State::AwaitingConnect) {
            State::Established(mut old) => {
                old.publish.replace(identity.permissions.clone(), standing);
                old.publish
            }
            _ => PublishGuard::new(
                identity.permissions.clone(),
                self.client.clone(),
                standing,
                self.broker.opts.check_reply_subjects,
            ),
        };
        self.throttle = Throttle::new(identity.limits.rate.as_ref(), account.state().rate.clone());
        let mapper = Mapper::for_account(&account, self.client.id);
        self.state = State::Established(Box::new(Established {
            identity,
            account,
            max_subscriptions,
            publish,
            logged_in,
            in_system,
            expires,
            mapper,
        }));
        Ok(())
    }

    /// When [`Session::on_timer`] must next be called.
    pub(super) fn deadline(&self) -> Instant {
        let keepalive = self.keepalive.next();
        match &self.state {
            State::Established(e) => e.expires.map_or(keepalive, |at| keepalive.min(at)),
            _ => keepalive.min(self.auth_deadline),
        }
    }

    /// The deadline came: closes a client that did not authenticate in
    /// time, and keeps the connection alive (PING, or close as stale).
    pub(super) fn on_timer(&mut self, now: Instant) -> Result<(), CloseReason> {
        if !self.is_established() && now >= self.auth_deadline {
            self.broker.security.auth_timeouts.fetch_add(1, Ordering::Relaxed);
            self.client.send(ProtoError::AuthenticationTimeout.to_line().as_bytes());
            return Err(CloseReason::AuthenticationTimeout);
        }
        if matches!(&self.state, State::Established(e) if e.expires.is_some_and(|at| now >= at)) {
            info!(cid = self.client.id, addr = %self.client.addr, user = %self.user(), "closing: the login expired");
            self.client.send(ProtoError::AuthenticationExpired.to_line().as_bytes());
            return Err(CloseReason::AuthenticationExpired);
        }
        if self.keepalive.run(now, &self.client).is_err() {
            self.client.send(ProtoError::StaleConnection.to_line().as_bytes());
            return Err(CloseReason::StaleConnection);
        }
        Ok(())
    }

    /// Handles every complete op at the start of `buf`, read at `now`.
    pub(super) fn receive(&mut self, buf: &[u8], now: Instant) -> Received {
        self.receive_from(buf, None, now)
    }

    /// [`Session::receive`] of a batch in a refcounted buffer: large
    /// payloads in it are queued to subscribers by reference, not copied.
    pub(super) fn receive_shared(&mut self, buf: &ReadBuffer, now: Instant) -> Received {
        self.receive_from(&buf.bytes, Some(buf), now)
    }

    fn receive_from(&mut self, buf: &[u8], shared: Option<&ReadBuffer>, now: Instant) -> Received {
        if self.gate.generation() != self.generation {
            // A reload completed: nothing more is handled under the old rules.
            if let Err(reason) = self.reload() {
                return Received { used: 0, need: 0, event: Some(Event::Close(reason)) };
            }
        }
        self.fanout.begin_batch(self.broker.next_batch_token());
        let mut used = 0;
        loop {
            let step = self.parser.parse(&buf[used..], &self.limits);
            match step {
                Ok(Step::Op(op, n)) => {
                    if let Some(throttle) = self.throttle.as_mut() {
                        if let Op::Pub(publish) = &op {
                            if let Err(until) = throttle.admit(publish.message.len(), now) {
                                // Left unread until then: handled again after the hold.
                                return Received { used, need: 0, event: Some(self.hold(until, now)) };
                            }
                        }
                    }
                    // The client's flag, not a copy: a reload turns the
                    // trace on or off for live connections.
                    if self.client.traced() {
                        self.client.trace_received(&buf[used..used + n], self.broker.opts.max_traced_msg_len);
                    }
                    used += n;
                    self.keepalive.heard();
                    if let Err(event) = self.handle(op, shared, now) {
                        return Received { used, need: 0, event: Some(event) };
                    }
                }
                Ok(Step::NeedMore(need)) => return Received { used, need, event: None },
                Err(err) => return Received { used, need: 0, event: Some(Event::Close(self.fail(err))) },
            }
        }
    }

    /// The hold the throttle just imposed (until `until`): counted; a
    /// stretch over the rate that has lasted [`crate::broker::rate::ADVISORY_AFTER`] is
    /// reported to the system account once, the connection's and its
    /// account's; past a `rate_exceeded: close`
    /// limit's `close_after`, the connection closes instead.
    #[cold]
    fn hold(&mut self, until: Instant, now: Instant) -> Event {
        let Some(throttle) = self.throttle.as_mut() else { return Event::Hold(until) };
        let held = u64::try_from(throttle.take_held().as_nanos()).unwrap_or(u64::MAX);
        self.client.stats.held_nanos.fetch_add(held, Ordering::Relaxed);
        self.broker.stats.rate_held_nanos.fetch_add(held, Ordering::Relaxed);
        let over = throttle.over_for(now);
        if throttle.must_close(now) {
            let user = self.client.meta.lock().user.clone().unwrap_or_default();
            info!(cid = self.client.id, addr = %self.client.addr, user = %user, over = ?over, "closing a connection over its publish rate_limit (rate_exceeded: close)");
            return Event::Close(CloseReason::RateExceeded);
        }
        let held = throttle.report_once(now).then_some(over);
        if held.is_some() {
            self.broker.events.report(ServerEvent::RateHeld { client: self.client.clone(), over });
        }
        let account_over = throttle.take_account_report();
        if let (Some(over), Some(rate)) = (account_over, throttle.account()) {
            let event = ServerEvent::AccountRateHeld { client: self.client.clone(), rate: rate.clone(), over };
            self.broker.events.report(event);
        }
        if held.is_some() || account_over.is_some() {
            self.broker.audit_rate_held(&self.client, held, account_over);
        }
        Event::Hold(until)
    }

    /// Sends the error line and returns the close reason.
    fn fail(&mut self, err: ProtoError) -> CloseReason {
        self.client.send(err.to_line().as_bytes());
        debug!(cid = self.client.id, error = %err, "closing connection on protocol error");
        match err {
            ProtoError::MaxPayload => CloseReason::MaxPayloadExceeded,
            ProtoError::MaxControlLine => CloseReason::MaxControlLineExceeded,
            ProtoError::InvalidClientProtocol => CloseReason::BadClientProtocolVersion,
            ProtoError::NoRespondersRequiresHeaders => CloseReason::NoRespondersRequiresHeaders,
            ProtoError::AuthorizationViolation | ProtoError::AuthorizationViolationBecause(_) => {
                CloseReason::AuthenticationFailure
            }
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
        if self.flags.verbose {
            self.client.send(OK);
        }
    }

    fn handle(&mut self, op: Op<'_>, shared: Option<&ReadBuffer>, now: Instant) -> Result<(), Event> {
        if !self.is_established() && !matches!(op, Op::Connect(_)) {
            return Err(Event::Close(self.fail(ProtoError::AuthorizationViolation)));
        }
        let closed = |reason| Event::Close(reason);
        match op {
            Op::Connect(json) => self.connect(json),
            Op::Ping => {
                self.client.send(PONG);
                Ok(())
            }
            Op::Pong => {
                self.keepalive.pong_from(now, &self.client);
                Ok(())
            }
            Op::Ok | Op::Info => Ok(()),
            Op::Err => Err(Event::Close(CloseReason::ClientClosed)),
            Op::Pub(publish) => self.publish(publish, shared, now).map_err(closed),
            Op::Sub { subject, queue, sid } => self.subscribe(subject, queue, sid).map_err(closed),
            Op::Unsub { sid, max } => {
                self.unsubscribe(sid, max);
                self.ack();
                Ok(())
            }
        }
    }

    fn connect(&mut self, json: &[u8]) -> Result<(), Event> {
        let close = |session: &mut Session, err| Err(Event::Close(session.fail(err)));
        let Ok(opts) = ConnectOptions::parse(json) else {
            return close(self, ProtoError::InvalidArguments("CONNECT is not valid JSON for its fields"));
        };
        if opts.account.is_some() || opts.new_account.is_some() {
            return close(self, ProtoError::AuthorizationViolation);
        }
        if matches!(&self.state, State::Established(e) if e.logged_in) {
            // nats-server re-authenticates and may switch the user of a live
            // connection; warden refuses a second CONNECT (see SECURITY.md).
            return close(self, ProtoError::AuthorizationViolation);
        }
        if !(0..=1).contains(&opts.protocol) {
            return close(self, ProtoError::InvalidClientProtocol);
        }
        if opts.no_responders && !opts.headers {
            return close(self, ProtoError::NoRespondersRequiresHeaders);
        }
        if self.is_established() {
            self.apply_connect(opts);
            return Ok(());
        }
        let claims = Claims {
            user: opts.user.clone(),
            password: opts.pass.clone(),
            token: opts.auth_token.clone(),
            nkey: opts.nkey.clone(),
            signature: opts.sig.clone(),
            jwt: opts.jwt.clone().or_else(|| self.cookie_jwt.clone()),
            client: ClientSoftware {
                name: opts.name.clone(),
                lang: opts.lang.clone(),
                version: opts.version.clone(),
                protocol: opts.protocol,
            },
        };
        self.state = State::Authenticating(Box::new(opts));
        let facts = self.facts();
        // Single use: a signature of this nonce cannot log in twice.
        self.nonce = None;
        Err(Event::Authenticate(Box::new(Login { claims, facts })))
    }

    /// Applies the gate's verdict on the CONNECT that asked for it.
    pub(super) fn authenticated(&mut self, verdict: Verdict) -> Result<(), CloseReason> {
        let State::Authenticating(opts) = std::mem::replace(&mut self.state, State::AwaitingConnect) else {
            // Only a CONNECT asks for a verdict; anything else is a bug of the caller's.
            return Err(self.fail(ProtoError::AuthorizationViolation));
        };
        let user = opts.user.clone().unwrap_or_default();
        match verdict {
            Verdict::Accept(identity) => {
                self.broker.security.auth_successes.fetch_add(1, Ordering::Relaxed);
                let name = identity.user.as_deref().unwrap_or("");
                if self.broker.log_budget.allow_from(self.client.addr.ip(), BudgetKind::Success, name) {
                    info!(cid = self.client.id, addr = %self.client.addr, user = identity.user.as_deref().unwrap_or(""), "authenticated");
                }
                self.generation = self.gate.generation();
                let audited = self.broker.audit.is_on().then(|| (identity.clone(), self.presented(&opts)));
                if let Err(err) = self.establish(identity, true) {
                    if self.broker.log_budget.allow_from(self.client.addr.ip(), BudgetKind::Failure, &user) {
                        warn!(cid = self.client.id, addr = %self.client.addr, user = %user, error = %err, "login refused by its account");
                    }
                    if let Some((_, presented)) = audited {
                        self.broker.audit_login_refused(&self.client, claimed(&opts), presented, err.to_string());
                    }
                    return Err(match err {
                        ProtoError::MaxAccountConnections => {
                            self.client.send(err.to_line().as_bytes());
                            CloseReason::MaxAccountConnectionsExceeded
                        }
                        other => self.fail(other),
                    });
                }
                if let Some((identity, presented)) = audited {
                    self.broker.audit_login(&self.client, &identity, presented);
                }
                self.apply_connect(*opts);
                Ok(())
            }
            Verdict::Refuse(reason) | Verdict::Explained(reason, _) => {
                let told = match &verdict {
                    Verdict::Explained(_, text) => crate::auth::client_reason(text),
                    _ => None,
                };
                self.broker.security.count_auth_failure(reason);
                if self.broker.events.is_active() {
                    let user = claimed(&opts);
                    let client = self.client.clone();
                    // An event carries wall-clock time for its reader.
                    #[allow(clippy::disallowed_methods)]
                    self.broker.events.report(ServerEvent::AuthError { client, user, stop: SystemTime::now() });
                }
                if self.broker.log_budget.allow_from(self.client.addr.ip(), BudgetKind::Failure, &user) {
                    warn!(cid = self.client.id, addr = %self.client.addr, user = %user, %reason, "authentication failed");
                }
                if self.broker.audit.is_on() {
                    self.broker.audit_login_refused(
                        &self.client,
                        claimed(&opts),
                        self.presented(&opts),
                        reason.to_string(),
                    );
                }
                Err(self.fail(match told {
                    Some(text) => ProtoError::AuthorizationViolationBecause(text),
                    None => ProtoError::AuthorizationViolation,
                }))
            }
        }
    }

    fn apply_connect(&mut self, opts: ConnectOptions) {
        self.flags =
            Flags { verbose: opts.verbose, echo: opts.echo, headers: opts.headers, no_responders: opts.no_responders };
        self.client.set_headers(opts.headers);
        self.client.set_async_info(opts.protocol >= 1);
        {
            let mut meta = self.client.meta.lock();
            meta.name = opts.name;
            meta.lang = opts.lang;
            meta.version = opts.version;
        }
        if !self.reported && self.is_established() && self.broker.events.is_active() {
            self.reported = true;
            self.broker.events.report(ServerEvent::Connect { client: self.client.clone() });
        }
        self.ack();
    }

    /// What the CONNECT presented, for the audit trail.
    fn presented(&self, opts: &ConnectOptions) -> Presented {
        Presented {
            jwt: opts.jwt.is_some() || self.cookie_jwt.is_some(),
            nkey: opts.nkey.is_some(),
            token: opts.auth_token.is_some(),
            password: opts.pass.is_some(),
            certificate: self.client.meta.lock().peer().is_some(),
        }
    }

    fn user(&self) -> String {
        match &self.state {
            State::Established(e) => e.identity.user.clone().unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// Logs and counts a refused publish or subscribe, and tells the client.
    fn violation(&mut self, err: ProtoError, direction: &'static str) -> Result<(), CloseReason> {
        let user = self.user();
        self.broker.security.count_violation(&user, direction);
        if self.broker.log_budget.allow_from(self.client.addr.ip(), BudgetKind::Other, &user) {
            warn!(cid = self.client.id, addr = %self.client.addr, user = %user, direction, error = %err, "permission violation");
        }
        self.broker.audit_denial(&self.client, &user, &err, direction);
        self.refuse(err)
    }

    /// Publishes a PUB or HPUB; `shared`: the buffer it was read into, if refcounted.
    fn publish(&mut self, publish: Publish<'_>, shared: Option<&ReadBuffer>, now: Instant) -> Result<(), CloseReason> {
        self.batch_in.0 += 1;
        self.batch_in.1 += publish.message.len() as u64;
        if publish.header_len.is_some() && !self.flags.headers {
            return Err(self.fail(ProtoError::InvalidArguments("HPUB needs headers enabled in CONNECT")));
        }
        let reply_ok = publish.reply.is_none_or(subject::is_valid_literal);
        let subject_ok = self.valid_subject == publish.subject || subject::is_valid_literal(publish.subject);
        if !subject_ok || !reply_ok {
            // nats-server only warns in pedantic mode and delivers anyway;
            // warden never routes a malformed subject (see SECURITY.md).
            return self.refuse(ProtoError::InvalidPublishSubject);
        }
        if self.valid_subject != publish.subject {
            self.valid_subject.clear();
            self.valid_subject.extend_from_slice(publish.subject);
        }
        // Only a header block can ask for a trace: one test per PUB, one
        // scan per HPUB.
        let mut disabled = Vec::new();
        let mut publish = publish;
        let mut trace = None;
        if let Some(block) = publish.header_len.and_then(|len| publish.message.get(..len)) {
            if msg_trace::may_trace(block) {
                match self.begin_trace(&publish, block) {
                    Begin::Untraced => {}
                    Begin::Trace(t) => trace = Some(t),
                    Begin::Skip => return Ok(()),
                    Begin::Disable(len) => {
                        let header_len = msg_trace::set_header(
                            publish.message,
                            len,
                            msg_trace::DEST,
                            msg_trace::DEST_DISABLED,
                            &mut disabled,
                        );
                        publish = Publish { header_len: Some(header_len), message: &disabled, ..publish };
                    }
                }
            }
        }
        if trace.is_some() {
            return self.publish_traced(publish, trace, shared, now);
        }
        let State::Established(established) = &mut self.state else {
            return Err(self.fail(ProtoError::AuthorizationViolation));
        };
        // Mapped first, then checked and routed under the new subject, as
        // in nats-server (SECURITY.md: what is checked is what is delivered).
        let subject = match mapped(&mut established.mapper, publish.subject) {
            Ok(subject) => subject,
            Err(Unroutable::Dropped) => return self.dropped(publish.reply),
            Err(Unroutable::Invalid) => return self.refuse(ProtoError::InvalidPublishSubject),
        };
        // A routed reply is answered under the reply inside (see
        // `broker::routed_reply`).
        let checked = match self.broker.routed_replies.get() {
            Some(_) => crate::broker::routed_reply::inner(subject),
            None => subject,
        };
        if let Err(violation) = established.publish.check(checked, publish.reply, now.into_std()) {
            let err = refusal(violation, subject, publish.reply);
            return self.violation(err, "publish");
        }
        if self.flags.verbose {
            self.client.send(OK);
        }
        let msg = delivered(subject, &publish, shared);
        let origin = Origin::Client { id: self.client.id, echo: self.flags.echo };
        let delivered = self.fanout.publish(&self.broker, &established.account, &msg, origin, now.into_std());
        if delivered == 0 && self.flags.no_responders {
            if let Some(reply) = publish.reply {
                self.no_responders_reply(reply);
            }
        }
        Ok(())
    }

    /// What a header block that mentions tracing means for its message, as
    /// nats-server's `initMsgTrace` decides for a client: traced (its
    /// destination one the publisher may publish to), untraced, dropped,
    /// or sent on with tracing switched off in its header.
    #[cold]
    #[inline(never)]
    fn begin_trace(&mut self, publish: &Publish<'_>, block: &[u8]) -> Begin {
        // `Nats-Trace-Only` without a destination is an ordinary header.
        let Some(request) = msg_trace::scan(block) else { return Begin::Untraced };
        let only = request.only;
        let State::Established(established) = &mut self.state else { return Begin::Untraced };
        if request.origin_account {
            return if only { Begin::Skip } else { Begin::Disable(block.len()) };
        }
        let dest = match &request.dest {
            Some(dest) => dest.clone(),
            None => {
                let Some(config) = established.account.state().msg_trace.clone() else { return Begin::Untraced };
                // nats-server's draw: 0..100 at most `sampling`.
                if config.sampling < 100 && rand::Rng::gen_range(&mut rand::thread_rng(), 0..100u8) > config.sampling {
                    return Begin::Disable(block.len());
                }
                config.dest
            }
        };
        if !subject::is_valid_literal(dest.as_bytes()) {
            return if only { Begin::Skip } else { Begin::Untraced };
        }
        // The server publishes the events as the publisher: only where it
        // may publish itself (advisories 2026-20 and others were this check
        // missing on one path or another).
        if !established.publish.may_publish_to(dest.as_bytes()) {
            let _ = self.violation(ProtoError::PublishViolation(dest), "publish");
            return Begin::Skip;
        }
        let account = established.account.clone();
        Begin::Trace(Box::new(Trace::start(
            request,
            dest.into_bytes().into(),
            only,
            &self.client,
            account,
            publish.subject,
            publish.message.len(),
        )))
    }

    /// [`Session::publish`] of a traced message, the steps recorded on
    /// the way and the event published when it is done.
    #[cold]
    #[inline(never)]
    fn publish_traced(
        &mut self,
        publish: Publish<'_>,
        mut trace: Option<Box<Trace>>,
        shared: Option<&ReadBuffer>,
        now: Instant,
    ) -> Result<(), CloseReason> {
        let State::Established(established) = &mut self.state else {
            return Err(self.fail(ProtoError::AuthorizationViolation));
        };
        let subject = match mapped(&mut established.mapper, publish.subject) {
            Ok(subject) => subject,
            Err(Unroutable::Dropped) => {
                self.send_trace(trace, now);
                return self.dropped(publish.reply);
            }
            Err(Unroutable::Invalid) => return self.refuse(ProtoError::InvalidPublishSubject),
        };
        if subject != publish.subject {
            if let Some(t) = trace.as_mut() {
                t.mapped(subject);
            }
        }
        if let Err(violation) = established.publish.check(subject, publish.reply, now.into_std()) {
            let err = refusal(violation, subject, publish.reply);
            if let Some(t) = trace.as_mut() {
                t.refused(err.to_string());
            }
            let result = self.violation(err, "publish");
            self.send_trace(trace, now);
            return result;
        }
        if self.flags.verbose {
            self.client.send(OK);
        }
        let msg = delivered(subject, &publish, shared);
        let origin = Origin::Client { id: self.client.id, echo: self.flags.echo };
        self.fanout.trace = trace;
        let delivered = self.fanout.publish(&self.broker, &established.account, &msg, origin, now.into_std());
        let trace = self.fanout.trace.take();
        if delivered == 0 && self.flags.no_responders {
            if let Some(reply) = publish.reply {
                self.no_responders_reply(reply);
            }
        }
        self.send_trace(trace, now);
        Ok(())
    }

    /// Publishes a trace's event to its destination, as the server, in
    /// the publisher's account.
    fn send_trace(&mut self, trace: Option<Box<Trace>>, now: Instant) {
        if let Some(trace) = trace {
            self.fanout.send_trace(&self.broker, *trace, now.into_std());
        }
    }

    /// A mapping dropped the message (the weight no destination was
    /// given): nobody gets it, and the publisher hears what it would of a
    /// subject without subscribers.
    #[cold]
    fn dropped(&mut self, reply: Option<&[u8]>) -> Result<(), CloseReason> {
        if self.flags.verbose {
            self.client.send(OK);
        }
        if let (Some(reply), true) = (reply, self.flags.no_responders) {
            self.no_responders_reply(reply);
        }
        Ok(())
    }

    /// Sends the 503 status to the publisher's own subscription for `reply`.
    fn no_responders_reply(&mut self, reply: &[u8]) {
        let own =
            self.subs.values().find(|s| s.queue.is_none() && !s.is_removed() && subject::matches(&s.subject, reply));
        if let Some(sub) = own {
            if self.client.deliver(reply, &sub.sid, None, Some(NO_RESPONDERS_HEADER.len()), NO_RESPONDERS_HEADER, None)
                == Append::Queued
            {
                self.fanout.touch(&self.client);
            }
        }
    }

    fn subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) -> Result<(), CloseReason> {
        if !subject::is_valid_pattern(subject) || queue.is_some_and(|q| !subject::is_valid_queue(q)) {
            return self.refuse(ProtoError::InvalidSubject);
        }
        let State::Established(established) = &self.state else {
            return Err(self.fail(ProtoError::AuthorizationViolation));
        };
        let callout = established.identity.serves_callout && subject == system_space::AUTH_CALLOUT_SUBJECT;
        let decision = if established.in_system || callout || system_space::outsider_may_subscribe(subject) {
            established.identity.permissions.may_subscribe(subject, queue)
        } else {
            SubDecision::Denied
        };
        let (account, max) = (established.account.clone(), established.max_subscriptions);
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
        if max > 0 && self.subs.len() >= max {
            self.subs.retain(|_, s| !s.is_removed());
            if self.subs.len() >= max {
                return self.refuse(ProtoError::MaxSubscriptions);
            }
        }
        let base = Subscription::new(self.client.clone(), account.clone(), subject, queue, sid, filter);
        let sub = Subscription::with_shadows(base, account.shadows_for(subject));
        self.broker.add_subscription(sub.clone());
        self.subs.insert(sid.into(), sub);
        self.ack();
        Ok(())
    }

    fn unsubscribe(&mut self, sid: &[u8], max: Option<u64>) {
        let Some(sub) = self.subs.get(sid) else {
            return;
        };
        if max.is_none_or(|m| sub.set_max(m)) {
            self.broker.remove_subscription(sub);
            self.subs.remove(sid);
        }
    }

    /// Ends a read batch: publishes the batch's counters and returns the
    /// clients queued to, each once, so the caller can wake their writers.
    pub(super) fn take_touched(&mut self) -> std::vec::Drain<'_, Arc<Client>> {
        let (in_msgs, in_bytes) = std::mem::take(&mut self.batch_in);
        if in_msgs > 0 {
            let (hits, cached, fanout) = self.fanout.take_monitor_figures();
            let router = match &self.state {
                State::Established(e) => &e.account.router.stats,
                _ => &self.broker.accounts.global().router.stats,
            };
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
            let s = &self.broker.stats;
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
    pub(super) fn reload(&mut self) -> Result<(), CloseReason> {
        self.generation = self.gate.generation();
        let State::Established(established) = &self.state else { return Ok(()) };
        let logged_in = established.logged_in;
        let connection = self.connection_type();
        let refreshed = self.gate.refresh(&established.identity).filter(|identity| identity.allows(connection));
        let Some(Ok(())) = refreshed.map(|identity| self.establish(identity, logged_in)) else {
            self.client.send(ProtoError::AuthorizationViolation.to_line().as_bytes());
            info!(cid = self.client.id, addr = %self.client.addr, "closing: user removed, credentials, account or allowed connection types changed by a reload");
            return Err(CloseReason::UserRemoved);
        };
        let State::Established(established) = &self.state else { return Ok(()) };
        let permissions = established.identity.permissions.clone();
        let account = established.account.clone();
        let sids: Vec<Box<[u8]>> = self.subs.keys().cloned().collect();
        for sid in sids {
            let Some(old) = self.subs.get(&sid).cloned() else { continue };
            match permissions.may_subscribe(&old.subject, old.queue.as_deref()) {
                SubDecision::Allowed { filter } => {
                    let renewed = old.renewed(filter, account.shadows_for(&old.subject));
                    self.broker.replace_subscription(&old, renewed.clone());
                    self.subs.insert(sid, renewed);
                }
                SubDecision::Denied => {
                    self.broker.remove_subscription(&old);
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

    /// The connection ended for `reason`: removes every subscription of it
    /// from the indexes, counts it out of its account and reports it.
    pub(super) fn finish(&mut self, reason: CloseReason) {
        for (_, sub) in self.subs.drain() {
            self.broker.remove_subscription(&sub);
        }
        // Counted out before the event is reported: the account's
        // connection count published with it must not include this one.
        if let State::Established(established) = std::mem::replace(&mut self.state, State::AwaitingConnect) {
            established.account.disconnect();
        }
        if self.reported {
            let client = self.client.clone();
            // An event carries wall-clock time for its reader.
            #[allow(clippy::disallowed_methods)]
            self.broker.events.report(ServerEvent::Disconnect { client, reason, stop: SystemTime::now() });
        }
    }

    /// The client this session serves.
    pub(super) fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

/// What the server knows of `client`'s connection, for an authenticator:
/// its address, certificate and TLS session, and the nonce its INFO sent.
pub(crate) fn connection_facts(client: &Client, nonce: Option<String>, connection: ConnectionType) -> ConnectionFacts {
    let meta = client.meta.lock();
    let tls = meta.tls.as_ref().and_then(|tls| match (&tls.version, &tls.cipher_suite) {
        (Some(version), Some(cipher)) => Some(TlsFacts {
            version: version.clone(),
            cipher: cipher.clone(),
            chain: tls.chain.clone().unwrap_or_else(|| Arc::from(Vec::new())),
        }),
        _ => None,
    });
    ConnectionFacts { addr: client.addr, peer: meta.peer().cloned(), nonce, client_id: client.id, tls, connection }
}

/// The `-ERR` a refused publish gets: nats-server's texts, naming the
/// reply subject when the reply is what was refused, else the subject as
/// checked (the mapped one).
fn refusal(violation: PublishViolation, subject: &[u8], reply: Option<&[u8]>) -> ProtoError {
    match reply {
        Some(reply) if violation.blames_reply() => {
            ProtoError::ReplyViolation(String::from_utf8_lossy(reply).into_owned())
        }
        _ => ProtoError::PublishViolation(String::from_utf8_lossy(subject).into_owned()),
    }
}

/// Who a CONNECT claimed to be (its user or nkey), never a secret: for the
/// events and the audit trail.
fn claimed(opts: &ConnectOptions) -> Option<String> {
    opts.user.clone().or_else(|| opts.nkey.clone())
}

/// What a publish delivers under `subject` (its subject, mapped); `buffer`:
/// the refcounted read buffer it was parsed from, if any.
fn delivered<'a>(subject: &'a [u8], publish: &Publish<'a>, buffer: Option<&'a ReadBuffer>) -> Message<'a> {
    Message { subject, reply: publish.reply, header_len: publish.header_len, message: publish.message, buffer }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod account_tests;

#[cfg(test)]
mod mapping_tests;

#[cfg(test)]
mod trace_tests;
