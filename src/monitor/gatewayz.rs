//! `/gatewayz`: this cluster's gateways, with nats-server's field names;
//! `gw_name=NAME` keeps one other cluster's.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::format::{go_duration, rfc3339};
use super::http::{json, Body};
use super::query::{ApiError, Query};
use super::{GatewayConnView, Monitor};

#[derive(Serialize)]
struct Gatewayz<'a> {
    server_id: &'a str,
    now: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    host: String,
    port: u16,
    outbound_gateways: BTreeMap<String, RemoteGatewayz>,
    inbound_gateways: BTreeMap<String, Vec<RemoteGatewayz>>,
    /// warden only: interest entries dropped at an account's bound.
    interest_dropped: u64,
}

/// nats-server's `RemoteGatewayz`.
#[derive(Serialize)]
struct RemoteGatewayz {
    configured: bool,
    connection: Connection,
}

/// The part of nats-server's `ConnInfo` a gateway connection shows.
#[derive(Serialize)]
struct Connection {
    cid: u64,
    ip: String,
    port: u16,
    rtt: String,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    pending_bytes: usize,
    /// The other server's id.
    name: String,
}

fn remote(link: &GatewayConnView) -> RemoteGatewayz {
    let c = &link.client;
    RemoteGatewayz {
        configured: link.configured,
        connection: Connection {
            cid: c.id,
            ip: c.addr.ip().to_string(),
            port: c.addr.port(),
            rtt: go_duration(Duration::from_nanos(c.rtt_nanos.load(Ordering::Relaxed))),
            in_msgs: c.stats.in_msgs.load(Ordering::Relaxed),
            out_msgs: c.stats.out_msgs.load(Ordering::Relaxed),
            in_bytes: c.stats.in_bytes.load(Ordering::Relaxed),
            out_bytes: c.stats.out_bytes.load(Ordering::Relaxed),
            subscriptions: c.subscription_count(),
            pending_bytes: c.outbound.pending(),
            name: link.remote_id.clone(),
        },
    }
}

pub(super) fn gatewayz(monitor: &Monitor, query: &Query) -> Result<Body, ApiError> {
    let only = query.get("gw_name");
    let mut out = Gatewayz {
        server_id: &monitor.broker.identity.id,
        now: rfc3339(SystemTime::now()),
        name: String::new(),
        host: String::new(),
        port: 0,
        outbound_gateways: BTreeMap::new(),
        inbound_gateways: BTreeMap::new(),
        interest_dropped: 0,
    };
    if let Some(gateways) = &monitor.gateways {
        out.name = gateways.name();
        out.host = gateways.listen_addr().ip().to_string();
        out.port = gateways.listen_addr().port();
        out.interest_dropped = gateways.interest_dropped();
        let mut links = gateways.links();
        links.retain(|l| only.is_none_or(|n| n == l.name));
        links.sort_by_key(|l| l.client.id);
        for link in &links {
            if link.outbound {
                out.outbound_gateways.insert(link.name.clone(), remote(link));
            } else {
                out.inbound_gateways.entry(link.name.clone()).or_default().push(remote(link));
            }
        }
    }
    json(&out)
}
