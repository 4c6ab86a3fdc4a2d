//! `/routez`: the established routes to other servers, with nats-server's
//! field names; `subs=1` or `subs=detail` adds the interest each route
//! registered here. `unreachable` (not in nats-server) lists the servers
//! this node knows of (configured, or named by a peer) and cannot reach:
//! while it is not empty the mesh is partial and messages between this
//! node and those servers are lost.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::format::{go_duration, rfc3339, uptime};
use super::http::{json, Body};
use super::query::{ApiError, Query};
use super::subsz::SubDetail;
use super::Monitor;
use crate::broker::Subscription;

#[derive(Serialize)]
struct Routez<'a> {
    server_id: &'a str,
    now: String,
    num_routes: usize,
    routes: Vec<RouteInfo>,
    unreachable: Vec<Unreachable>,
}

/// A server known and not reachable.
#[derive(Serialize)]
struct Unreachable {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_name: Option<String>,
    attempts: u32,
    since: String,
    gave_up: bool,
}

/// nats-server's `RouteInfo` fields that warden has.
#[derive(Serialize)]
struct RouteInfo {
    rid: u64,
    remote_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    remote_name: String,
    did_solicit: bool,
    ip: String,
    port: u16,
    start: String,
    last_activity: String,
    rtt: String,
    uptime: String,
    idle: String,
    pending_size: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list_detail: Option<Vec<SubDetail>>,
    /// The pinned account a connection of its own carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
}

/// The subscriptions of the peer connections `ids` (routes, leafs), by
/// connection, each list sorted by subject.
pub(super) fn interest_of(monitor: &Monitor, ids: &[u64]) -> HashMap<u64, Vec<Arc<Subscription>>> {
    let mut interest: HashMap<u64, Vec<Arc<Subscription>>> = HashMap::new();
    if ids.is_empty() {
        return interest;
    }
    for sub in monitor.broker.all_subscriptions() {
        if ids.contains(&sub.owner.id) {
            interest.entry(sub.owner.id).or_default().push(sub);
        }
    }
    for subs in interest.values_mut() {
        subs.sort_by(|a, b| a.subject.cmp(&b.subject));
    }
    interest
}

pub(super) fn routez(monitor: &Monitor, query: &Query) -> Result<Body, ApiError> {
    let detail = query.get("subs") == Some("detail");
    let list = detail || query.flag("subs", ApiError::bad_request("invalid value for 'subs'"))?;
    let now = SystemTime::now();
    let mut links = monitor.cluster.as_ref().map(|c| c.routes()).unwrap_or_default();
    links.sort_by_key(|l| l.client.id);
    let ids: Vec<u64> = links.iter().map(|l| l.client.id).collect();
    let mut interest = if list { interest_of(monitor, &ids) } else { HashMap::new() };
    let since = |t: SystemTime| now.duration_since(t).unwrap_or_default();
    let routes = links
        .iter()
        .map(|link| {
            let c = &link.client;
            let subs = interest.remove(&c.id).unwrap_or_default();
            let text = |s: &Arc<Subscription>| String::from_utf8_lossy(&s.subject).into_owned();
            RouteInfo {
                rid: c.id,
                remote_id: link.remote_id.clone(),
                remote_name: link.remote_name.clone(),
                did_solicit: link.solicited,
                ip: c.addr.ip().to_string(),
                port: c.addr.port(),
                start: rfc3339(c.start),
                last_activity: rfc3339(c.last_activity()),
                rtt: go_duration(Duration::from_nanos(c.rtt_nanos.load(Ordering::Relaxed))),
                uptime: uptime(since(c.start)),
                idle: uptime(since(c.last_activity())),
                pending_size: c.outbound.pending(),
                in_msgs: c.stats.in_msgs.load(Ordering::Relaxed),
                out_msgs: c.stats.out_msgs.load(Ordering::Relaxed),
                in_bytes: c.stats.in_bytes.load(Ordering::Relaxed),
                out_bytes: c.stats.out_bytes.load(Ordering::Relaxed),
                subscriptions: c.subscription_count(),
                subscriptions_list: (list && !detail).then(|| subs.iter().map(text).collect()),
                subscriptions_list_detail: detail.then(|| subs.iter().map(|s| SubDetail::of(s)).collect()),
                account: link.account.clone(),
            }
        })
        .collect::<Vec<_>>();
    let mut known = monitor.cluster.as_ref().map(|c| c.unreachable()).unwrap_or_default();
    known.sort_by(|a, b| a.url.cmp(&b.url));
    let unreachable = known
        .into_iter()
        .map(|u| Unreachable {
            url: u.url,
            remote_id: u.server_id,
            remote_name: u.server_name,
            attempts: u.attempts,
            since: rfc3339(u.since),
            gave_up: u.gave_up,
        })
        .collect();
    let server_id = &monitor.broker.identity.id;
    json(&Routez { server_id, now: rfc3339(now), num_routes: routes.len(), routes, unreachable })
}
