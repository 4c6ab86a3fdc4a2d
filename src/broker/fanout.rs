//! Delivering one published message: to every matching plain subscriber,
//! one member of each matching queue group, and at most once to each route
//! with interest. Shared by client sessions and route sessions.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tracing::warn;

use super::router::{Claim, MatchCache, Subscription};
use super::{Append, Broker, Client};
use crate::proto::route::{rmsg_len_bound, write_rmsg, QueueNames, GLOBAL_ACCOUNT};

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
}

/// Where a message came from, which decides where it may go.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A local client: local subscribers and routes.
    Client {
        /// The publisher's id.
        id: u64,
        /// Whether the publisher receives its own messages.
        echo: bool,
    },
    /// A route: local subscribers only (one hop), and only the queue groups
    /// the origin server picked this server for.
    Route {
        /// Queue groups named in the RMSG.
        queues: QueueNames<'a>,
    },
}

/// A route to forward to, and the queue groups it was picked for.
type RouteTarget = (Arc<Client>, Vec<Box<[u8]>>);

/// Per-publisher delivery state: match cache, the clients touched in the
/// current read batch, and counters.
#[derive(Debug)]
pub struct Fanout {
    cache: MatchCache,
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
}

impl Fanout {
    /// Fresh state; `seed` varies queue-member picks between publishers.
    pub fn new(seed: u64) -> Self {
        Fanout {
            cache: MatchCache::new(),
            touched: Vec::new(),
            batch: 0,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            routes: Vec::new(),
            delivered: (0, 0),
            max_fanout: 0,
        }
    }

    /// Starts a read batch.
    pub fn begin_batch(&mut self, token: u64) {
        self.batch = token;
    }

    /// Delivers `msg` at `now` (which dates reply grants); returns how many
    /// subscribers (or routes) got it.
    pub fn publish(&mut self, broker: &Broker, msg: &Message<'_>, origin: Origin<'_>, now: Instant) -> usize {
        let result = self.cache.lookup(&broker.router, msg.subject);
        let from_client = matches!(origin, Origin::Client { .. });
        let mut delivered = 0;
        self.routes.clear();
        for sub in &result.plain {
            if sub.owner.is_route() {
                if from_client {
                    self.add_route(&sub.owner, None);
                }
                continue;
            }
            delivered += usize::from(self.deliver_to(broker, sub, msg, origin, now));
        }
        for group in &result.groups {
            let Some(name) = group.first().and_then(|m| m.queue.as_deref()) else { continue };
            if let Origin::Route { queues } = origin {
                if !queues.contains(name) {
                    continue;
                }
            }
            // Local members first; a route member only when none took it.
            let start = self.next_random() as usize % group.len().max(1);
            let mut taken = false;
            for i in 0..group.len() {
                let Some(member) = group.get((start + i) % group.len()) else { continue };
                if !member.owner.is_route() && self.deliver_to(broker, member, msg, origin, now) {
                    taken = true;
                    break;
                }
            }
            if !taken && from_client {
                if let Some(remote) =
                    (0..group.len()).filter_map(|i| group.get((start + i) % group.len())).find(|m| m.owner.is_route())
                {
                    self.add_route(&remote.owner, Some(name));
                    taken = true;
                }
            }
            delivered += usize::from(taken);
        }
        delivered += self.forward_to_routes(broker, msg);
        self.delivered.0 += delivered as u64;
        self.delivered.1 += (delivered * msg.message.len()) as u64;
        self.max_fanout = self.max_fanout.max(delivered as u64);
        delivered
    }

    fn add_route(&mut self, route: &Arc<Client>, queue: Option<&[u8]>) {
        let entry = match self.routes.iter_mut().find(|(r, _)| Arc::ptr_eq(r, route)) {
            Some(entry) => entry,
            None => {
                self.routes.push((route.clone(), Vec::new()));
                let last = self.routes.len() - 1;
                &mut self.routes[last]
            }
        };
        if let Some(q) = queue {
            entry.1.push(q.into());
        }
    }

    fn forward_to_routes(&mut self, broker: &Broker, msg: &Message<'_>) -> usize {
        let routes = std::mem::take(&mut self.routes);
        let mut sent = 0;
        for (route, queues) in &routes {
            let size = rmsg_len_bound(GLOBAL_ACCOUNT, msg.subject, msg.reply, queues, msg.message);
            let appended = route.outbound.append(size, |buf| {
                write_rmsg(buf, GLOBAL_ACCOUNT, msg.subject, msg.reply, queues, msg.header_len, msg.message);
            });
            if appended == Append::Queued {
                sent += 1;
                route.stats.out_msgs.fetch_add(1, Ordering::Relaxed);
                route.stats.out_bytes.fetch_add(msg.message.len() as u64, Ordering::Relaxed);
                self.touch(route);
            } else if appended == Append::SlowConsumer {
                warn!(rid = route.id, "route fell behind by more than max_pending; closing it");
                broker.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.routes = routes;
        self.routes.clear();
        sent
    }

    fn deliver_to(
        &mut self,
        broker: &Broker,
        sub: &Arc<Subscription>,
        msg: &Message<'_>,
        origin: Origin<'_>,
        now: Instant,
    ) -> bool {
        if let Origin::Client { id, echo: false } = origin {
            if sub.owner.id == id {
                return false;
            }
        }
        if sub.filter.as_ref().is_some_and(|f| f.denies(msg.subject)) {
            return false;
        }
        match sub.claim() {
            Claim::Done => return false,
            Claim::DeliverLast => broker.remove_subscription(sub),
            Claim::Deliver => {}
        }
        let owner = &sub.owner;
        match owner.deliver(msg.subject, &sub.sid, msg.reply, msg.header_len, msg.message) {
            Append::Queued => {
                if let Some(reply) = msg.reply {
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
        (self.cache.take_new_hits(), self.cache.len(), std::mem::take(&mut self.max_fanout))
    }

    /// Ends a batch: the deliveries counted, and the clients to wake.
    pub fn finish_batch(&mut self) -> ((u64, u64), std::vec::Drain<'_, Arc<Client>>) {
        (std::mem::take(&mut self.delivered), self.touched.drain(..))
    }
}
