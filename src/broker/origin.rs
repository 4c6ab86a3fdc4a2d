//! Loop prevention, written once: where a message came from decides where
//! it may be forwarded, and where a subscription's owner sits decides
//! whether the subscription is a delivery or interest to forward to.
//!
//! Routes form a full mesh, so a message crosses at most one route: what
//! came in over a route goes to local subscribers and leaf nodes only, and
//! route interest is never announced to other routes. A leaf node's
//! messages and interest go everywhere but back to that leaf (as
//! nats-server: the hub relays between its leafs and into its cluster).
//! Gateways will be one more [`Via`] with its rows in
//! [`Via::may_forward_to`]; nothing else in the broker needs to learn
//! about them.

use super::{Client, ClientKind};
use crate::proto::route::QueueNames;

/// Which side of this server a message or an interest comes from, and
/// which side a subscriber is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A client of this server, or the server itself.
    Local,
    /// Another server of the cluster.
    Route,
    /// A leaf node server.
    Leaf,
}

impl Via {
    /// Where a connection of `kind` sits.
    pub fn of(kind: ClientKind) -> Via {
        match kind {
            ClientKind::Route => Via::Route,
            ClientKind::Leaf => Via::Leaf,
            ClientKind::Client | ClientKind::Internal => Via::Local,
        }
    }

    /// The rule: whether something that arrived via `self` may go on to a
    /// subscriber (or, for interest, a peer) on side `to`. Local delivery
    /// is always allowed; a route never feeds another route.
    pub fn may_forward_to(self, to: Via) -> bool {
        match (self, to) {
            (_, Via::Local) => true,
            (Via::Route, Via::Route) => false,
            (Via::Local | Via::Leaf, Via::Route) => true,
            (_, Via::Leaf) => true,
        }
    }
}

/// Where a message came from, which decides where it may go.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A local client (or the server's internal client).
    Client {
        /// The publisher's id.
        id: u64,
        /// Whether the publisher receives its own messages.
        echo: bool,
    },
    /// A route: it also says which queue groups the origin server picked
    /// this server for.
    Route {
        /// Queue groups named in the RMSG.
        queues: QueueNames<'a>,
    },
    /// A leaf node connection.
    Leaf {
        /// The connection's id: nothing goes back to it.
        id: u64,
        /// Queue groups named in the LMSG; none means every group.
        queues: QueueNames<'a>,
    },
    /// Sent on by a service import (a request into the exporter, or a
    /// response back): never to shadows (as nats-server), and onwards as
    /// the message that triggered it.
    Import {
        /// How the triggering message reached this server.
        via: Via,
    },
}

impl Origin<'_> {
    /// How the message reached this server.
    pub fn via(&self) -> Via {
        match self {
            Origin::Client { .. } => Via::Local,
            Origin::Route { .. } => Via::Route,
            Origin::Leaf { .. } => Via::Leaf,
            Origin::Import { via } => *via,
        }
    }

    /// Whether a delivery may go to a subscription of `owner`'s: by the
    /// rule for its side, and never back to the leaf it came from.
    pub fn may_reach(&self, owner: &Client) -> bool {
        match self {
            Origin::Leaf { id, .. } if *id == owner.id => false,
            _ => self.may_forward_to(owner.via()),
        }
    }

    /// Whether queue group `name` is served: a route names the groups its
    /// server picked this one for; a leaf may name some (else all are).
    pub fn serves_queue(&self, name: &[u8]) -> bool {
        match self {
            Origin::Route { queues } => queues.contains(name),
            Origin::Leaf { queues, .. } => queues.is_empty() || queues.contains(name),
            _ => true,
        }
    }

    /// Whether a delivery may go to a subscriber on side `to`.
    pub fn may_forward_to(&self, to: Via) -> bool {
        self.via().may_forward_to(to)
    }

    /// Whether a service import may send the message into its exporter: a
    /// message from another server was imported where it was published.
    pub fn may_import(&self) -> bool {
        self.via() == Via::Local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Via; 3] = [Via::Local, Via::Route, Via::Leaf];

    #[test]
    fn a_route_never_feeds_a_route_and_everything_reaches_local_subscribers() {
        for from in ALL {
            assert!(from.may_forward_to(Via::Local));
        }
        assert!(Via::Local.may_forward_to(Via::Route));
        assert!(!Via::Route.may_forward_to(Via::Route));
        assert!(Via::Leaf.may_forward_to(Via::Route));
        for from in ALL {
            assert!(from.may_forward_to(Via::Leaf), "{from:?} reaches leafs");
        }
    }

    #[test]
    fn nothing_goes_back_to_the_leaf_it_came_from() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let leaf = |id| Client::with_kind(id, addr, 1024, ClientKind::Leaf);
        let from = Origin::Leaf { id: 7, queues: QueueNames::default() };
        assert!(!from.may_reach(&leaf(7)));
        assert!(from.may_reach(&leaf(8)));
        assert!(from.may_reach(&Client::with_kind(9, addr, 1024, ClientKind::Route)));
    }

    #[test]
    fn a_leaf_serves_all_queue_groups_unless_it_names_some() {
        let all = Origin::Leaf { id: 1, queues: QueueNames::default() };
        assert!(all.serves_queue(b"q"));
        let some = Origin::Leaf { id: 1, queues: QueueNames::new(b"a b") };
        assert!(some.serves_queue(b"b") && !some.serves_queue(b"q"));
        assert!(!Origin::Route { queues: QueueNames::default() }.serves_queue(b"q"));
        assert!(Origin::Client { id: 1, echo: true }.serves_queue(b"q"));
    }

    #[test]
    fn an_import_forwards_as_the_message_that_triggered_it() {
        for via in ALL {
            let origin = Origin::Import { via };
            for to in ALL {
                assert_eq!(origin.may_forward_to(to), via.may_forward_to(to));
            }
            assert_eq!(origin.may_import(), via == Via::Local);
        }
        assert!(Origin::Client { id: 1, echo: false }.may_import());
        assert!(!Origin::Route { queues: QueueNames::default() }.may_import());
    }

    #[test]
    fn connections_sit_where_their_kind_says() {
        assert_eq!(Via::of(ClientKind::Client), Via::Local);
        assert_eq!(Via::of(ClientKind::Internal), Via::Local);
        assert_eq!(Via::of(ClientKind::Route), Via::Route);
        assert_eq!(Via::of(ClientKind::Leaf), Via::Leaf);
    }
}
