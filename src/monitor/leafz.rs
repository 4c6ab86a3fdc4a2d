//! `/leafz`: the leaf nodes connected to this hub, with nats-server's field
//! names; `subs=1` adds the interest each leaf registered here, `acc=NAME`
//! keeps one account's leafs.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::format::{go_duration, rfc3339};
use super::http::{json, Body};
use super::query::{ApiError, Query};
use super::Monitor;

#[derive(Serialize)]
struct Leafz<'a> {
    server_id: &'a str,
    now: String,
    leafnodes: usize,
    leafs: Vec<LeafInfo>,
}

/// nats-server's `LeafInfo` fields that warden has.
#[derive(Serialize)]
struct LeafInfo {
    id: u64,
    name: String,
    is_spoke: bool,
    account: String,
    ip: String,
    port: u16,
    rtt: String,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list: Option<Vec<String>>,
}

pub(super) fn leafz(monitor: &Monitor, query: &Query) -> Result<Body, ApiError> {
    let list = query.flag("subs", ApiError::bad_request("invalid value for 'subs'"))?;
    let account = query.get("acc");
    let mut links = monitor.leafs.as_ref().map(|l| l.leafs()).unwrap_or_default();
    links.retain(|l| account.is_none_or(|a| a == l.account));
    links.sort_by_key(|l| l.client.id);
    let ids: Vec<u64> = links.iter().map(|l| l.client.id).collect();
    let mut interest = if list { super::routez::interest_of(monitor, &ids) } else { Default::default() };
    let leafs = links
        .iter()
        .map(|link| {
            let c = &link.client;
            let subs = interest.remove(&c.id).unwrap_or_default();
            LeafInfo {
                id: c.id,
                name: if link.remote_name.is_empty() { link.remote_id.clone() } else { link.remote_name.clone() },
                is_spoke: link.spoke,
                account: link.account.clone(),
                ip: c.addr.ip().to_string(),
                port: c.addr.port(),
                rtt: go_duration(Duration::from_nanos(c.rtt_nanos.load(Ordering::Relaxed))),
                in_msgs: c.stats.in_msgs.load(Ordering::Relaxed),
                out_msgs: c.stats.out_msgs.load(Ordering::Relaxed),
                in_bytes: c.stats.in_bytes.load(Ordering::Relaxed),
                out_bytes: c.stats.out_bytes.load(Ordering::Relaxed),
                subscriptions: c.subscription_count(),
                subscriptions_list: list
                    .then(|| subs.iter().map(|s| String::from_utf8_lossy(&s.subject).into_owned()).collect()),
            }
        })
        .collect::<Vec<_>>();
    let server_id = &monitor.broker.identity.id;
    json(&Leafz { server_id, now: rfc3339(SystemTime::now()), leafnodes: leafs.len(), leafs })
}
