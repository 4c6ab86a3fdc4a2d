//! Loop prevention, written once: where a message came from decides where
//! it may be forwarded, and where a subscription's owner sits decides
//! whether the subscription is a delivery or interest to forward to.
//!
//! Routes form a full mesh, so a message crosses at most one route: what
//! came in over a route goes to local subscribers and leaf nodes only, and
//! route interest is never announced to other routes. A leaf node's
//! messages and interest go everywhere but back to that leaf (as
//! nats-server: the hub relays between its leafs and into its cluster).
//! What this server's own hub sends stays off the routes, and what came
//! over a route stays off the hub connection, since every server of a leaf
//! cluster has its own connection to the hub (nats-server's rule, which
//! keeps a leaf cluster from hearing everything twice). And nothing goes
//! back to the leaf node cluster it came from, over whichever connection
//! (the origin a route's `LMSG` names, or the cluster a leaf logged in as).
//! Clusters joined by gateways form a full mesh too, each server with its
//! own connection to every other cluster: a message crosses at most one
//! gateway, and what came over a gateway reaches the whole cluster (its
//! routes, leafs and hub) but no gateway. Interest travels differently
//! from messages there: the interest of the whole cluster (a route's
//! included) is announced to gateways, and a gateway's interest is
//! announced to nobody ([`Via::may_announce_to`]).

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
    /// A leaf node server connected to this one (this server is its hub).
    Leaf,
    /// This server's hub, over a connection this server dialled as its leaf.
    Hub,
    /// A server of another cluster, over a gateway.
    Gateway,
}

impl Via {
    /// Where a connection of `kind` sits.
    pub fn of(kind: ClientKind) -> Via {
        match kind {
            ClientKind::Route => Via::Route,
            ClientKind::Leaf => Via::Leaf,
            ClientKind::Gateway => Via::Gateway,
            ClientKind::Client | ClientKind::Internal => Via::Local,
        }
    }

    /// The rule: whether something that arrived via `self` may go on to a
    /// subscriber (or, for interest, a peer) on side `to`. Local delivery
    /// is always allowed; a route never feeds another route.
    pub fn may_forward_to(self, to: Via) -> bool {
        match (self, to) {
            (_, Via::Local) => true,
            (Via::Route | Via::Hub, Via::Route) => false,
            (Via::Local | Via::Leaf | Via::Gateway, Via::Route) => true,
            (_, Via::Leaf) => true,
            (Via::Route | Via::Hub, Via::Hub) => false,
            (Via::Local | Via::Leaf | Via::Gateway, Via::Hub) => true,
            // The server the message entered the cluster at sent it to
            // every gateway itself.
            (Via::Route | Via::Gateway, Via::Gateway) => false,
            (Via::Local | Via::Leaf | Via::Hub, Via::Gateway) => true,
        }
    }

    /// Whether interest held on side `self` is announced to peers on side
    /// `to`: as messages travel, except that a route's interest is the
    /// cluster's, which every gateway hears from each server, and a
    /// gateway's interest stays with the connection that brought it.
    pub fn may_announce_to(self, to: Via) -> bool {
        match (self, to) {
            (Via::Gateway, _) => false,
            (Via::Route, Via::Gateway) => true,
            _ => self.may_forward_to(to),
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
        /// The leaf node cluster an `LMSG` came from (empty for none).
        cluster: &'a [u8],
    },
    /// A leaf node connection.
    Leaf {
        /// The connection's id: nothing goes back to it.
        id: u64,
        /// Queue groups named in the LMSG; none means every group.
        queues: QueueNames<'a>,
        /// The connection goes to this server's hub.
        hub: bool,
        /// The other server's cluster (empty for none).
        cluster: &'a [u8],
    },
    /// A gateway: it names the queue groups the other cluster picked this
    /// one for.
    Gateway {
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
            Origin::Gateway { .. } => Via::Gateway,
            Origin::Leaf { hub: false, .. } => Via::Leaf,
            Origin::Leaf { hub: true, .. } => Via::Hub,
            Origin::Import { via } => *via,
        }
    }

    /// Whether a delivery may go to a subscription of `owner`'s: by the
    /// rule for its side, never back to the leaf it came from, nor to
    /// another leaf connection of the leaf node cluster it came from.
    pub fn may_reach(&self, owner: &Client) -> bool {
        match self {
            Origin::Leaf { id, .. } if *id == owner.id => false,
            Origin::Leaf { cluster, .. } | Origin::Route { cluster, .. }
                if !cluster.is_empty() && owner.leaf_cluster().is_some_and(|c| c.as_bytes() == *cluster) =>
            {
                false
            }
            _ => self.may_forward_to(owner.via()),
        }
    }

    /// The leaf node cluster the message came from, if it names one.
    pub fn leaf_cluster(&self) -> Option<&[u8]> {
        match self {
            Origin::Leaf { cluster, .. } | Origin::Route { cluster, .. } if !cluster.is_empty() => Some(cluster),
            _ => None,
        }
    }

    /// Whether queue group `name` is served: a route names the groups its
    /// server picked this one for; a leaf may name some (else all are).
    pub fn serves_queue(&self, name: &[u8]) -> bool {
        match self {
            Origin::Route { queues, .. } | Origin::Gateway { queues } => queues.contains(name),
            Origin::Leaf { queues, .. } => queues.is_empty() || queues.contains(name),
            _ => true,
        }
    }

    /// Whether a delivery may go to a subscriber on side `to`.
    pub fn may_forward_to(&self, to: Via) -> bool {
        self.via().may_forward_to(to)
    }

    /// Whether a service import may send the message into its exporter:
    /// not a message from a route, which the other server of the cluster
    /// imported where it was published. A leaf connection (either way)
    /// joins another server's account to this one, whose imports are this
    /// server's to apply, as nats-server applies them to what its leafs
    /// send (it tells them of interest in each import subject for that).
    /// A gateway's message was imported in its own cluster likewise.
    pub fn may_import(&self) -> bool {
        !matches!(self.via(), Via::Route | Via::Gateway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Via; 5] = [Via::Local, Via::Route, Via::Leaf, Via::Hub, Via::Gateway];

    fn from_leaf(id: u64, queues: QueueNames<'_>) -> Origin<'_> {
        Origin::Leaf { id, queues, hub: false, cluster: b"" }
    }

    fn route() -> Origin<'static> {
        Origin::Route { queues: QueueNames::default(), cluster: b"" }
    }

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
    fn a_message_crosses_one_gateway_and_reaches_the_whole_cluster() {
        for to in [Via::Local, Via::Route, Via::Leaf, Via::Hub] {
            assert!(Via::Gateway.may_forward_to(to), "a gateway's message reaches {to:?}");
        }
        assert!(!Via::Gateway.may_forward_to(Via::Gateway) && !Via::Route.may_forward_to(Via::Gateway));
        for from in [Via::Local, Via::Leaf, Via::Hub] {
            assert!(from.may_forward_to(Via::Gateway));
        }
    }

    #[test]
    fn the_clusters_interest_goes_to_gateways_and_a_gateways_to_nobody() {
        for from in [Via::Local, Via::Route, Via::Leaf, Via::Hub] {
            assert!(from.may_announce_to(Via::Gateway), "{from:?}'s interest is the cluster's");
        }
        for to in ALL {
            assert!(!Via::Gateway.may_announce_to(to));
        }
        assert!(!Via::Route.may_announce_to(Via::Route), "otherwise as messages");
    }

    #[test]
    fn the_hubs_traffic_stays_off_the_routes_and_the_routes_off_the_hub() {
        assert!(!Via::Hub.may_forward_to(Via::Route), "every server of a leaf cluster hears the hub itself");
        assert!(!Via::Route.may_forward_to(Via::Hub), "the hub hears each server of the cluster itself");
        assert!(!Via::Hub.may_forward_to(Via::Hub), "one hub's traffic is not another hub's");
        assert!(Via::Local.may_forward_to(Via::Hub) && Via::Leaf.may_forward_to(Via::Hub));
        assert!(Via::Hub.may_forward_to(Via::Leaf) && Via::Hub.may_forward_to(Via::Local));
    }

    #[test]
    fn nothing_goes_back_to_the_leaf_cluster_it_came_from() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let leaf_of = |id, cluster: Option<&str>| {
            let c = Client::with_kind(id, addr, 1024, ClientKind::Leaf);
            c.set_leaf_role(super::super::LeafRole { to_hub: false, cluster: cluster.map(Into::into) });
            c
        };
        let routed = Origin::Route { queues: QueueNames::default(), cluster: b"EDGE" };
        assert!(!routed.may_reach(&leaf_of(1, Some("EDGE"))), "a route's LMSG from EDGE skips EDGE's leafs");
        assert!(routed.may_reach(&leaf_of(2, Some("OTHER"))) && routed.may_reach(&leaf_of(3, None)));
        let from = Origin::Leaf { id: 4, queues: QueueNames::default(), hub: false, cluster: b"EDGE" };
        assert!(!from.may_reach(&leaf_of(5, Some("EDGE"))), "nor does one of EDGE's leafs reach another");
        assert!(from.may_reach(&Client::with_kind(6, addr, 1024, ClientKind::Route)), "the route peer decides");
        assert_eq!(from.leaf_cluster(), Some(&b"EDGE"[..]));
        assert_eq!(route().leaf_cluster(), None);
        let hub = Client::with_kind(7, addr, 1024, ClientKind::Leaf);
        hub.set_leaf_role(super::super::LeafRole { to_hub: true, cluster: None });
        assert_eq!(hub.via(), Via::Hub);
        assert!(!routed.may_reach(&hub), "a route's message never goes to the hub");
    }

    #[test]
    fn nothing_goes_back_to_the_leaf_it_came_from() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let leaf = |id| Client::with_kind(id, addr, 1024, ClientKind::Leaf);
        let from = from_leaf(7, QueueNames::default());
        assert!(!from.may_reach(&leaf(7)));
        assert!(from.may_reach(&leaf(8)));
        assert!(from.may_reach(&Client::with_kind(9, addr, 1024, ClientKind::Route)));
    }

    #[test]
    fn a_leaf_serves_all_queue_groups_unless_it_names_some() {
        let all = from_leaf(1, QueueNames::default());
        assert!(all.serves_queue(b"q"));
        let some = from_leaf(1, QueueNames::new(b"a b"));
        assert!(some.serves_queue(b"b") && !some.serves_queue(b"q"));
        assert!(!route().serves_queue(b"q"));
        assert!(Origin::Client { id: 1, echo: true }.serves_queue(b"q"));
    }

    #[test]
    fn an_import_forwards_as_the_message_that_triggered_it() {
        for via in ALL {
            let origin = Origin::Import { via };
            for to in ALL {
                assert_eq!(origin.may_forward_to(to), via.may_forward_to(to));
            }
            assert_eq!(origin.may_import(), !matches!(via, Via::Route | Via::Gateway));
        }
        assert!(Origin::Client { id: 1, echo: false }.may_import());
        assert!(!route().may_import());
    }

    #[test]
    fn connections_sit_where_their_kind_says() {
        assert_eq!(Via::of(ClientKind::Client), Via::Local);
        assert_eq!(Via::of(ClientKind::Internal), Via::Local);
        assert_eq!(Via::of(ClientKind::Route), Via::Route);
        assert_eq!(Via::of(ClientKind::Leaf), Via::Leaf);
    }
}
