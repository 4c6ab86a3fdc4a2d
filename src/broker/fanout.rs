//! Delivering one published message in one account: to every matching
//! plain subscriber, one member of each matching queue group, and at most
//! once to each route with interest; through stream-import shadows to
//! importing accounts' subscribers; and through service imports to the
//! exporting account (and its responses back), with the exporter's subject
//! mappings applied to the request. Shared by client sessions
//! and route sessions; where a message may go is `origin`'s rule.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use super::account::{Account, ServiceImport, StreamImport};
use super::origin::{Origin, Via};
use super::router::{Claim, MatchCache, SubKind, Subscription};
use super::{Append, Broker, Client, ClientInfo, ClientKind, InboxMsg, ReadBuffer, Trace};
use crate::proto::headers;
use crate::proto::msg_trace::{self, error as trace_error};
use crate::proto::route::{rmsg_len_bound, write_rmsg, FrameTo};

/// A message to deliver, borrowing from the publisher's read buffer.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Literal subject.
    pub subject: &'a [u8],
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// Header block length at the start of `message`, for HPUB/HMSG.
    pub header_len: Option<usize>,
    /// Headers and payload.
    pub message: &'a [u8],
    /// The refcounted buffer the message was read into, when it has one:
    /// a large payload in it is queued to subscribers by reference, not
    /// copied. Bytes from elsewhere (a rewritten header block) are copied.
    pub buffer: Option<&'a ReadBuffer>,
}

/// Whether a peer's subscription takes `subject`: a leaf's wildcard
/// interest that overlaps its user's deny rules carries the same filter a
/// client's SUB would (a route's carries none).
#[inline]
fn peer_admits(sub: &Subscription, subject: &[u8]) -> bool {
    sub.filter.as_ref().is_none_or(|f| !f.denies(subject))
}

/// A route to forward to, and the queue groups it was picked for.
type RouteTarget = (Arc<Client>, Vec<Box<[u8]>>);

/// Match caches a publisher keeps, one per account it publishes in (a
/// client's own, the exporters of its service imports; a route's accounts).
const MAX_CACHES: usize = 4;

/// How long a publisher (a client, or a route's reader) is held back after
/// a read batch for each subscriber it fed that is more than half of its
/// `max_pending` behind; the wait ends early when that subscriber's writer
/// drains some. A subscriber that stays behind still reaches `max_pending`
/// (or its write deadline) and is cut.
pub const STALL: Duration = Duration::from_millis(100);

/// Most service imports one message may pass through (request into an
/// exporter that itself imports, and so on). Configured cycles are
/// refused at load; this bounds the rest.
const MAX_IMPORT_DEPTH: u8 = 8;

/// Per-publisher delivery state: match caches, the clients touched in the
/// current read batch, and counters.
#[derive(Debug)]
pub struct Fanout {
    caches: Vec<MatchCache>,
    touched: Vec<Arc<Client>>,
    batch: u64,
    rng: u64,
    /// Routes to forward the current message to, with the queue groups each
    /// was picked for; reused across messages.
    routes: Vec<RouteTarget>,
    /// Deliveries and delivered payload bytes in the current batch.
    delivered: (u64, u64),
    /// Most deliveries of one message in the current batch (for `/subsz`).
    max_fanout: u64,
    /// Service imports the current message is passing through.
    depth: u8,
    /// The buffer a request's subject is renamed into for the exporter,
    /// kept between requests so a request through an import allocates
    /// nothing for it (a nested import finds it taken and makes its own).
    import_subject: Vec<u8>,
    /// The current message's trace, when it is traced (set by the
    /// publisher around [`Fanout::publish`]; `None` on the hot path, which
    /// then pays one test per delivery).
    pub trace: Option<Box<Trace>>,
    /// The connection whose messages this fans out (a client or a leaf),
    /// named in the `Nats-Request-Info` of its requests into service
    /// imports; `None` for the server's own and a route's messages.
    requester: Option<Arc<Client>>,
}

impl Fanout {
    /// Fresh state; `seed` varies queue-member picks between publishers.
    pub fn new(seed: u64) -> Self {
        Fanout {
            caches: Vec::new(),
            touched: Vec::new(),
            batch: 0,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            routes: Vec::new(),
            delivered: (0, 0),
            max_fanout: 0,
            depth: 0,
            import_subject: Vec::new(),
            trace: None,
            requester: None,
        }
    }

    /// The fan-out of `client`'s messages, which its requests into service
    /// imports name as their requester.
    pub fn of(client: &Arc<Client>) -> Self {
        Fanout { requester: Some(client.clone()), ..Fanout::new(client.id) }
    }

    /// Starts a read batch.
    pub fn begin_batch(&mut self, token: u64) {
        self.batch = token;
    }

    /// The match cache for `account`'s index. The first one is the
    /// publisher's own account, checked before any search (the hot path).
    fn cache(&mut self, account: &Account) -> &mut MatchCache {
        let id = account.router.id();
        if self.caches.first().is_some_and(|c| c.router_id() == id) {
            return &mut self.caches[0];
        }
        let index = match self.caches.iter().position(|c| c.router_id() == id) {
            Some(i) => i,
            None if self.caches.len() < MAX_CACHES => {
                self.caches.push(MatchCache::new());
                self.caches.len() - 1
            }
            // Replaced, and cleared by its first lookup.
            None => self.caches.len() - 1,
        };
        &mut self.caches[index]
    }

    /// Delivers `msg`, published in `account`, at `now` (which dates reply
    /// grants and import requests); returns how many subscribers (or
    /// routes) got it.
    pub fn publish(
        &mut self,
        broker: &Broker,
        account: &Account,
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> usize {
        let delivered = self.deliver_in(broker, account, msg, origin, now);
        self.delivered.0 += delivered as u64;
        self.delivered.1 += (delivered * msg.message.len()) as u64;
        self.max_fanout = self.max_fanout.max(delivered as u64);
        delivered
    }

    fn deliver_in(
        &mut self,
        broker: &Broker,
        account: &Account,
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> usize {
        if let Some(replies) = broker.routed_replies.get() {
            if let Some(routed) = super::routed_reply::parse(msg.subject) {
                return self.deliver_routed(broker, replies, account, msg, routed, origin, now);
            }
        }
        let result = self.cache(account).lookup(&account.router, msg.subject);
        let mut delivered = 0;
        self.routes.clear();
        for sub in &result.plain {
            match sub.owner.via() {
                Via::Local => delivered += usize::from(self.deliver_to(broker, sub, msg, origin, now)),
                _ => {
                    if origin.may_reach(&sub.owner) && peer_admits(sub, msg.subject) {
                        add_route(&mut self.routes, &sub.owner, None);
                    }
                }
            }
        }
        for group in &result.groups {
            let Some(name) = group.first().and_then(|m| m.queue.as_deref()) else { continue };
            if !origin.serves_queue(name) {
                continue;
            }
            // Local members first; a route member only when none took it.
            let start = self.next_random() as usize % group.len().max(1);
            let mut taken = false;
            for i in 0..group.len() {
                let Some(member) = group.get((start + i) % group.len()) else { continue };
                if member.owner.via() == Via::Local && self.deliver_to(broker, member, msg, origin, now) {
                    taken = true;
                    break;
                }
            }
            if !taken {
                // This cluster's members (over a route or a leaf) before
                // another cluster's (over a gateway).
                let members = || (0..group.len()).filter_map(|i| group.get((start + i) % group.len()));
                let reachable = |m: &&Arc<Subscription>, gateway: bool| {
                    let via = m.owner.via();
                    via != Via::Local
                        && (via == Via::Gateway) == gateway
                        && origin.may_reach(&m.owner)
                        && peer_admits(m, msg.subject)
                };
                let remote = members().find(|m| reachable(m, false)).or_else(|| members().find(|m| reachable(m, true)));
                if let Some(remote) = remote {
                    add_route(&mut self.routes, &remote.owner, Some(name));
                    taken = true;
                }
            }
            delivered += usize::from(taken);
        }
        delivered += self.forward_to_routes(broker, account, msg, origin.leaf_cluster(), now);
        delivered
    }

    /// A message on a routed reply (`_GR_.<cluster>.<server>.<reply>`): to
    /// another cluster's, straight to the gateway there, whatever its
    /// interest; to this cluster's, over the route to the server that asked
    /// (when it came over a gateway to another server) or delivered here
    /// under the reply inside. What a route or gateway sends for another
    /// cluster is dropped: it left this cluster where it was published.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn deliver_routed(
        &mut self,
        broker: &Broker,
        replies: &super::RoutedReplies,
        account: &Account,
        msg: &Message<'_>,
        routed: super::routed_reply::Routed<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> usize {
        let via = origin.via();
        let onward = if routed.cluster != replies.cluster() {
            match via {
                Via::Route | Via::Gateway => return 0,
                _ => replies.paths().and_then(|p| p.gateway_to(routed.cluster)),
            }
        } else if routed.server != replies.server() && via == Via::Gateway {
            replies.paths().and_then(|p| p.route_to(routed.server, &account.name))
        } else {
            None
        };
        if let Some(peer) = onward {
            self.routes.clear();
            add_route(&mut self.routes, &peer, None);
            return self.forward_to_routes(broker, account, msg, None, now);
        }
        if routed.cluster != replies.cluster() {
            return 0;
        }
        let inner = Message { subject: routed.subject, ..*msg };
        // A reply inside a reply is not followed further.
        if super::routed_reply::parse(inner.subject).is_some() {
            return 0;
        }
        self.deliver_in(broker, account, &inner, origin, now)
    }

    /// Delivers a message an import made, inside the delivery of the one
    /// that reached it: the outer delivery's route targets are kept apart.
    fn deliver_nested(
        &mut self,
        broker: &Broker,
        account: &Account,
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> usize {
        let outer = std::mem::take(&mut self.routes);
        self.depth += 1;
        let delivered = self.deliver_in(broker, account, msg, origin, now);
        self.depth -= 1;
        self.routes = outer;
        delivered
    }

    /// Sends `msg` to the routes and leafs collected for it; `cluster`: the
    /// leaf node cluster it came from, named to route peers that take it.
    fn forward_to_routes(
        &mut self,
        broker: &Broker,
        account: &Account,
        msg: &Message<'_>,
        cluster: Option<&[u8]>,
        now: Instant,
    ) -> usize {
        let routes = std::mem::take(&mut self.routes);
        let mut sent = 0;
        let name = account.name.as_bytes();
        for (route, queues) in &routes {
            // A peer (route or leaf) that traces what it receives (its
            // `proto`, [`Client::traces`]) gets the message with a hop id
            // and reports its own steps; before one that does not, a
            // trace-only message stops here, as nats-server stops it
            // before a peer that would deliver it, and a delivered one is
            // sent on, noted as untraced from there.
            let mut hopped = Vec::new();
            let (mut header_len, mut body) = (msg.header_len, msg.message);
            if let Some(trace) = self.trace.as_mut() {
                if route.traces() {
                    let hop = trace.next_hop();
                    if let Some(len) = msg.header_len {
                        header_len = Some(msg_trace::set_header(msg.message, len, msg_trace::HOP, &hop, &mut hopped));
                        body = &hopped;
                    }
                    trace.egress_hop(route, route.meta.lock().name.clone().unwrap_or_default(), hop);
                } else if trace.only {
                    trace.egress(route, None, &account.name, trace_error::ONLY_NO_SUPPORT);
                    continue;
                } else {
                    trace.egress(route, None, &account.name, trace_error::NO_SUPPORT);
                }
            }
            // A leaf connection is bound to its account: LMSG names none.
            let origin = cluster.filter(|_| route.lnoc());
            let to = match (route.kind, origin) {
                (ClientKind::Leaf, _) => FrameTo::Leaf,
                _ if route.pinned_route() => FrameTo::PinnedRoute { origin },
                (_, Some(origin)) => FrameTo::RouteFromLeafCluster { origin, account: name },
                _ => FrameTo::Route(name),
            };
            // A reply leaving for another cluster leads back here.
            let mut mapped = Vec::new();
            let reply = match (route.kind, msg.reply, broker.routed_replies.get()) {
                (ClientKind::Gateway, Some(reply), Some(replies)) => Some(replies.map(reply, &mut mapped)),
                _ => msg.reply,
            };
            let size = rmsg_len_bound(name, msg.subject, reply, queues, body) + cluster.map_or(0, <[u8]>::len);
            let appended = route.outbound.append(size, |buf| {
                write_rmsg(buf, to, msg.subject, reply, queues, header_len, body);
            });
            if appended == Append::Queued {
                sent += 1;
                // A leaf user with `allow_responses` may answer what it was
                // sent, as a client may (a route's peer checks its own).
                if let (ClientKind::Leaf, Some(reply)) = (route.kind, msg.reply) {
                    route.record_reply(reply, now);
                }
                route.stats.out_msgs.fetch_add(1, Ordering::Relaxed);
                route.stats.out_bytes.fetch_add(msg.message.len() as u64, Ordering::Relaxed);
                self.touch(route);
            } else if appended == Append::SlowConsumer {
                warn!(rid = route.id, kind = ?route.kind, "peer server fell behind by more than max_pending; closing it");
                broker.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.routes = routes;
        self.routes.clear();
        sent
    }

    /// The hot path: a plain subscription is delivered to right here; the
    /// other kinds go through [`Fanout::deliver_other`], kept out of line
    /// so this stays small enough to inline into the delivery loops.
    #[inline(always)]
    fn deliver_to(
        &mut self,
        broker: &Broker,
        sub: &Arc<Subscription>,
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> bool {
        match &sub.kind {
            SubKind::Direct => self.deliver_direct(broker, sub, msg.subject, msg, origin, now),
            _ => self.deliver_other(broker, sub, msg, origin, now),
        }
    }

    #[inline(never)]
    fn deliver_other(
        &mut self,
        broker: &Broker,
        sub: &Arc<Subscription>,
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> bool {
        match &sub.kind {
            SubKind::Direct => self.deliver_direct(broker, sub, msg.subject, msg, origin, now),
            SubKind::Shadow { parent, import } => {
                if matches!(origin, Origin::Import { .. }) || import.is_revoked() {
                    return false;
                }
                let Some(parent) = parent.upgrade() else { return false };
                self.deliver_shadow(broker, &parent, import, msg, origin, now)
            }
            SubKind::Service(import) => self.send_request(broker, import, msg, origin, now),
            SubKind::Responses(import) => self.send_response(broker, import, msg, origin, now),
            SubKind::Inbox(inbox) => {
                inbox.admits(&sub.account, now)
                    && inbox.offer(InboxMsg {
                        account: sub.account.clone(),
                        subject: msg.subject.into(),
                        reply: msg.reply.map(Into::into),
                        header_len: msg.header_len,
                        message: msg.message.into(),
                        client: match origin {
                            Origin::Client { id, .. } => Some(id),
                            _ => None,
                        },
                    })
            }
        }
    }

    /// Delivers to `sub`'s owner under `subject` (the message's, or, for a
    /// shadow's parent, its name in the subscriber's account).
    #[inline]
    fn deliver_direct(
        &mut self,
        broker: &Broker,
        sub: &Arc<Subscription>,
        subject: &[u8],
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> bool {
        if self.trace.is_some() {
            return self.deliver_traced(broker, sub, subject, msg, origin, now);
        }
        if let Origin::Client { id, echo: false } = origin {
            if sub.owner.id == id {
                return false;
            }
        }
        if sub.filter.as_ref().is_some_and(|f| f.denies(subject)) {
            return false;
        }
        match sub.claim() {
            Claim::Done => return false,
            Claim::DeliverLast => broker.remove_subscription(sub),
            Claim::Deliver => {}
        }
        let owner = &sub.owner;
        match owner.deliver(subject, &sub.sid, msg.reply, msg.header_len, msg.message, msg.buffer) {
            Append::Queued => {
                if let Some(reply) = msg.reply {
                    // A routed reply is answered under the reply inside
                    // (see `routed_reply`).
                    let reply = match broker.routed_replies.get() {
                        Some(_) => super::routed_reply::inner(reply),
                        None => reply,
                    };
                    owner.record_reply(reply, now);
                }
                self.touch(owner);
                true
            }
            Append::SlowConsumer => {
                broker.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                warn!(
                    cid = owner.id,
                    max_pending = owner.outbound.max_pending(),
                    "slow consumer detected: max_pending exceeded"
                );
                false
            }
            Append::Closed => false,
        }
    }

    /// [`Fanout::deliver_direct`] of a traced message: each subscriber is
    /// an egress step, with why it did not get the message; trace-only
    /// counts as delivered without delivering.
    #[cold]
    #[inline(never)]
    fn deliver_traced(
        &mut self,
        broker: &Broker,
        sub: &Arc<Subscription>,
        subject: &[u8],
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> bool {
        let Some(mut trace) = self.trace.take() else { return false };
        let entry = Some((&*sub.subject, sub.queue.as_deref()));
        let no_echo = matches!(origin, Origin::Client { id, echo: false } if sub.owner.id == id);
        let delivered = if no_echo {
            trace.egress(&sub.owner, entry, &sub.account.name, trace_error::NO_ECHO);
            false
        } else if sub.filter.as_ref().is_some_and(|f| f.denies(subject)) {
            trace.egress(&sub.owner, entry, &sub.account.name, trace_error::SUB_DENY);
            false
        } else if trace.only {
            trace.egress(&sub.owner, entry, &sub.account.name, "");
            true
        } else {
            let delivered = self.deliver_direct(broker, sub, subject, msg, origin, now);
            let error = if delivered { "" } else { trace_error::CLIENT_CLOSED };
            trace.egress(&sub.owner, entry, &sub.account.name, error);
            delivered
        };
        self.trace = Some(trace);
        delivered
    }

    /// A message of the exporter reached a shadow: delivered to the
    /// importing client under its local name.
    fn deliver_shadow(
        &mut self,
        broker: &Broker,
        parent: &Arc<Subscription>,
        import: &StreamImport,
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> bool {
        let mut local = Vec::with_capacity(msg.subject.len() + 16);
        if !import.to_local.apply(msg.subject, &mut local) {
            return false;
        }
        if let Some(trace) = self.trace.as_mut() {
            trace.stream_export(&parent.account.name, &local);
            // Without the import's `allow_trace` the trace ends here: a
            // trace-only message counts as delivered, another goes on untraced.
            if !import.config.allow_trace {
                if trace.only {
                    return true;
                }
                let held = self.trace.take();
                let delivered = self.deliver_direct(broker, parent, &local, msg, origin, now);
                self.trace = held;
                return delivered;
            }
        }
        self.deliver_direct(broker, parent, &local, msg, origin, now)
    }

    /// A request reached a service import: sent on into the exporter,
    /// with a reply that leads back.
    fn send_request(
        &mut self,
        broker: &Broker,
        import: &ServiceImport,
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> bool {
        if !origin.may_import() {
            return false;
        }
        if import.is_revoked() || self.depth >= MAX_IMPORT_DEPTH {
            return false;
        }
        let mut subject = std::mem::take(&mut self.import_subject);
        subject.clear();
        let sent = import.to_exporter.apply(msg.subject, &mut subject)
            && self.send_renamed_request(broker, import, msg, &subject, now);
        // A subject may be as long as a control line: a long one is not kept.
        if subject.capacity() <= 1024 {
            self.import_subject = subject;
        }
        sent
    }

    /// [`Fanout::send_request`] once the subject is renamed into the
    /// exporter's space.
    fn send_renamed_request(
        &mut self,
        broker: &Broker,
        import: &ServiceImport,
        msg: &Message<'_>,
        subject: &[u8],
        now: Instant,
    ) -> bool {
        // The exporter's mappings apply to what enters it, as in
        // nats-server's service imports (one atomic test when it has none).
        let mapped;
        let subject = match super::mapping::map_into(&import.exporter, subject, self.next_random()) {
            None => subject,
            Some(Some(to)) => {
                mapped = to;
                &mapped[..]
            }
            Some(None) => return false,
        };
        let mut rewritten = Vec::new();
        let mut held = None;
        let (mut header_len, mut body) = (msg.header_len, msg.message);
        if let Some(trace) = self.trace.as_mut() {
            trace.service_import(&import.exporter.name, msg.subject, subject);
            // The trace follows the request only with the export's
            // `allow_trace`; its destination then becomes a reply into the
            // importer (so whoever traces it in the exporter reaches it);
            // without, the header says tracing is off from here.
            let dest = if import.allow_trace {
                import.open_request(&trace.dest, now).to_vec()
            } else if trace.only {
                return false;
            } else {
                held = self.trace.take();
                msg_trace::DEST_DISABLED.as_bytes().to_vec()
            };
            if let Some(len) = msg.header_len {
                let dest = String::from_utf8_lossy(&dest);
                header_len = Some(msg_trace::set_header(msg.message, len, msg_trace::DEST, &dest, &mut rewritten));
                body = &rewritten;
            }
        }
        // Who asked, as only this server may say it (nats-server's
        // `processServiceImport`): account and RTT, everything with `share`.
        let mut with_info = Vec::new();
        if let (Some(requester), 0) = (&self.requester, self.depth) {
            let info = ClientInfo::request(requester, broker, import.shares());
            header_len = Some(headers::with_request_info(header_len, body, &info, &mut with_info));
            body = &with_info;
        }
        let reply = msg.reply.map(|r| import.open_request(r, now));
        let request =
            Message { subject, reply: reply.as_ref().map(|r| &r[..]), header_len, message: body, buffer: msg.buffer };
        let delivered =
            self.deliver_nested(broker, &import.exporter, &request, Origin::Import { via: Via::Local }, now);
        if held.is_some() {
            self.trace = held;
        }
        if delivered == 0 {
            if let Some(reply) = &reply {
                import.forget(reply);
            }
        }
        delivered > 0
    }

    /// A response of the exporter reached an import's reply space: sent
    /// to the requester's reply subject in the importing account.
    fn send_response(
        &mut self,
        broker: &Broker,
        import: &ServiceImport,
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> bool {
        if import.is_revoked() || self.depth >= MAX_IMPORT_DEPTH {
            return false;
        }
        let payload_empty = msg.message.len() == msg.header_len.unwrap_or(0);
        let Some(reply) = import.answer(msg.subject, payload_empty, now) else { return false };
        let Some(importer) = import.importer.upgrade() else { return false };
        let response = Message { subject: &reply, reply: None, ..*msg };
        let delivered = self.deliver_nested(broker, &importer, &response, Origin::Import { via: origin.via() }, now);
        delivered > 0
    }

    /// Publishes a trace's event to its destination, as the server, in
    /// the account the traced message was published in.
    pub fn send_trace(&mut self, broker: &Broker, trace: Trace, now: Instant) {
        let (dest, account) = (trace.dest.clone(), trace.account.clone());
        let json = trace.render(super::trace_server(broker));
        let msg = Message { subject: &dest, reply: None, header_len: None, message: &json, buffer: None };
        self.publish(broker, &account, &msg, Origin::Client { id: 0, echo: true }, now);
    }

    /// Remembers that `client` has new bytes to write in this batch.
    pub fn touch(&mut self, client: &Arc<Client>) {
        if client.mark_batch(self.batch) {
            self.touched.push(client.clone());
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// For monitoring, once per batch: match-cache hits since the last
    /// call, cached subjects now, and the batch's largest fan-out.
    pub fn take_monitor_figures(&mut self) -> (u64, usize, u64) {
        let hits = self.caches.iter_mut().map(MatchCache::take_new_hits).sum();
        let cached = self.caches.iter().map(MatchCache::len).sum();
        (hits, cached, std::mem::take(&mut self.max_fanout))
    }

    /// Ends a batch for a publisher with no counters of its own (a route,
    /// the server's services): wakes the writers it reached and adds its
    /// deliveries to the server's counters. Returns the clients it fed that
    /// are backed up, for a route to [`stall_behind`] (the server's own
    /// services never wait).
    pub fn end_batch(&mut self, broker: &Broker) -> Vec<Arc<Client>> {
        let ((out_msgs, out_bytes), touched) = self.finish_batch();
        let backed_up = wake_writers(touched, None);
        broker.stats.out_msgs.fetch_add(out_msgs, Ordering::Relaxed);
        broker.stats.out_bytes.fetch_add(out_bytes, Ordering::Relaxed);
        backed_up
    }

    /// Ends a read batch of a peer connection (a route, leaf or gateway):
    /// counts what it received, `(messages, bytes)`, on `peer` (and on the
    /// server too when `server_counts_in`), adds its deliveries to the
    /// server's counters and wakes the writers it reached. Returns those
    /// that are backed up, the peer itself left out, for its reader to
    /// stall behind (so TCP pushes back on the other server).
    pub fn end_peer_batch(
        &mut self,
        broker: &Broker,
        peer: &Client,
        received: (u64, u64),
        server_counts_in: bool,
    ) -> Vec<Arc<Client>> {
        let (in_msgs, in_bytes) = received;
        if in_msgs > 0 {
            peer.stats.in_msgs.fetch_add(in_msgs, Ordering::Relaxed);
            peer.stats.in_bytes.fetch_add(in_bytes, Ordering::Relaxed);
            if server_counts_in {
                broker.stats.in_msgs.fetch_add(in_msgs, Ordering::Relaxed);
                broker.stats.in_bytes.fetch_add(in_bytes, Ordering::Relaxed);
            }
        }
        let ((out_msgs, out_bytes), touched) = self.finish_batch();
        if out_msgs > 0 {
            broker.stats.out_msgs.fetch_add(out_msgs, Ordering::Relaxed);
            broker.stats.out_bytes.fetch_add(out_bytes, Ordering::Relaxed);
        }
        wake_writers(touched, Some(peer.id))
    }

    /// Ends a batch: the deliveries counted, and the clients to wake.
    pub fn finish_batch(&mut self) -> ((u64, u64), std::vec::Drain<'_, Arc<Client>>) {
        (std::mem::take(&mut self.delivered), self.touched.drain(..))
    }
}

/// Wakes the writer of every client a batch queued to; returns those that
/// are [backed up](super::Outbound::backed_up), the publisher itself
/// (`publisher`, its own id) left out.
pub fn wake_writers(touched: impl Iterator<Item = Arc<Client>>, publisher: Option<u64>) -> Vec<Arc<Client>> {
    let mut backed_up = Vec::new();
    for client in touched {
        client.outbound.wake();
        if Some(client.id) != publisher && client.outbound.backed_up() {
            backed_up.push(client);
        }
    }
    backed_up
}

/// Holds a publisher back behind the subscribers of `backed_up`, up to
/// [`STALL`] for each that is still backed up: a fast publisher slows to
/// its subscribers' pace (as in nats-server) instead of making them slow
/// consumers. A route's reader waits here too, so the route's TCP window
/// pushes back to the publisher on the other server.
pub async fn stall_behind(backed_up: Vec<Arc<Client>>) {
    for client in backed_up {
        let drained = client.outbound.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        if client.outbound.backed_up() {
            let _ = tokio::time::timeout(STALL, drained).await;
        }
    }
}

fn add_route(routes: &mut Vec<RouteTarget>, route: &Arc<Client>, queue: Option<&[u8]>) {
    let index = match routes.iter().position(|(r, _)| Arc::ptr_eq(r, route)) {
        Some(i) => i,
        None => {
            routes.push((route.clone(), Vec::new()));
            routes.len() - 1
        }
    };
    if let Some(q) = queue {
        routes[index].1.push(q.into());
    }
}
