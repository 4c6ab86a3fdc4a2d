//! Loop prevention, written once: where a message came from decides where
//! it may be forwarded, and where a subscription's owner sits decides
//! whether the subscription is a delivery or interest to forward to.
//!
//! Routes form a full mesh, so a message crosses at most one route: what
//! came in over a route goes to local subscribers only, and route interest
//! is never announced to other routes. Leaf nodes and gateways are further
//! [`Via`]s with their own rows in [`Via::may_forward_to`] (nats-server
//! sends a leaf's messages on to routes and other leafs, and a route's to
//! leafs); nothing else in the broker needs to learn about them.

use super::ClientKind;
use crate::proto::route::QueueNames;

/// Which side of this server a message or an interest comes from, and
/// which side a subscriber is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A client of this server, or the server itself.
    Local,
    /// Another server of the cluster.
    Route,
}

impl Via {
    /// Where a connection of `kind` sits.
    pub fn of(kind: ClientKind) -> Via {
        match kind {
            ClientKind::Route => Via::Route,
            ClientKind::Client | ClientKind::Internal => Via::Local,
        }
    }

    /// The rule: whether something that arrived via `self` may go on to a
    /// subscriber (or, for interest, a peer) on side `to`. Local delivery
    /// is always allowed; a route never feeds another route.
    pub fn may_forward_to(self, to: Via) -> bool {
        match (self, to) {
            (_, Via::Local) => true,
            (Via::Local, Via::Route) => true,
            (Via::Route, Via::Route) => false,
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
            Origin::Import { via } => *via,
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

    const ALL: [Via; 2] = [Via::Local, Via::Route];

    #[test]
    fn a_route_never_feeds_a_route_and_everything_reaches_local_subscribers() {
        for from in ALL {
            assert!(from.may_forward_to(Via::Local));
        }
        assert!(Via::Local.may_forward_to(Via::Route));
        assert!(!Via::Route.may_forward_to(Via::Route));
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
    }
}
