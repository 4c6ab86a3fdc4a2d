//! The figures only the `$SYS` services answer with: the server's
//! statistics (`STATSZ`, and the reply to `$SYS.REQ.SERVER.PING`) and the
//! per-account statistics (`STATZ`), in nats-server's JSON.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::Serialize;

use super::format::rfc3339;
use super::http::{json, Body};
use super::query::ApiError;
use super::{process, Monitor};

/// Messages and bytes.
#[derive(Serialize, Default, Clone, Copy)]
pub(super) struct DataStats {
    msgs: u64,
    bytes: u64,
}

/// One route's counters.
#[derive(Serialize)]
struct RouteStat {
    rid: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    sent: DataStats,
    received: DataStats,
    pending: usize,
}

/// nats-server's `ServerStats`.
#[derive(Serialize)]
struct ServerStats {
    start: String,
    mem: u64,
    cores: usize,
    cpu: f64,
    connections: usize,
    total_connections: u64,
    active_accounts: usize,
    subscriptions: usize,
    sent: DataStats,
    received: DataStats,
    slow_consumers: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<RouteStat>,
    /// This server and the peers it has routes to.
    active_servers: usize,
}

pub(super) fn statsz(monitor: &Monitor) -> Result<Body, ApiError> {
    let broker = &monitor.broker;
    let stats = &broker.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let routes: Vec<RouteStat> = monitor
        .cluster
        .as_ref()
        .map(|c| c.routes())
        .unwrap_or_default()
        .into_iter()
        .map(|r| RouteStat {
            rid: r.client.id,
            name: r.remote_name,
            sent: DataStats { msgs: load(&r.client.stats.out_msgs), bytes: load(&r.client.stats.out_bytes) },
            received: DataStats { msgs: load(&r.client.stats.in_msgs), bytes: load(&r.client.stats.in_bytes) },
            pending: r.client.outbound.pending(),
        })
        .collect();
    json(&ServerStats {
        start: rfc3339(broker.identity.started),
        mem: process::resident_bytes(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu: monitor.cpu.percent(),
        connections: broker.client_count(),
        total_connections: load(&stats.total_connections),
        active_accounts: broker.accounts.all().iter().filter(|a| a.connections() > 0).count(),
        subscriptions: broker.subscription_count(),
        sent: DataStats { msgs: load(&stats.out_msgs), bytes: load(&stats.out_bytes) },
        received: DataStats { msgs: load(&stats.in_msgs), bytes: load(&stats.in_bytes) },
        slow_consumers: load(&stats.slow_consumers),
        active_servers: 1 + routes.len(),
        routes,
    })
}

/// nats-server's `AccountStat`.
#[derive(Serialize)]
struct AccountStat {
    acc: String,
    conns: usize,
    leafnodes: usize,
    total_conns: usize,
    /// What the account's clients were sent.
    sent: DataStats,
    /// What they published.
    received: DataStats,
    slow_consumers: u64,
}

#[derive(Serialize)]
struct AccountStatz<'a> {
    server_id: &'a str,
    now: String,
    account_statz: Vec<AccountStat>,
}

/// `STATZ` for `accounts` (every account when empty); accounts without
/// connections only with `include_unused`.
pub(super) fn account_statz(monitor: &Monitor, accounts: &[String], include_unused: bool) -> Result<Body, ApiError> {
    let broker = &monitor.broker;
    let clients = broker.clients();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let account_statz = broker
        .accounts
        .all()
        .iter()
        .filter(|a| accounts.is_empty() || accounts.iter().any(|n| **n == *a.name))
        .filter(|a| include_unused || a.connections() > 0)
        .map(|a| {
            let (mut sent, mut received) = (DataStats::default(), DataStats::default());
            for c in clients.iter().filter(|c| c.meta.lock().account.as_deref() == Some(&*a.name)) {
                sent.msgs += load(&c.stats.out_msgs);
                sent.bytes += load(&c.stats.out_bytes);
                received.msgs += load(&c.stats.in_msgs);
                received.bytes += load(&c.stats.in_bytes);
            }
            AccountStat {
                acc: a.name.to_string(),
                conns: a.connections(),
                leafnodes: 0,
                total_conns: a.connections(),
                sent,
                received,
                slow_consumers: 0,
            }
        })
        .collect();
    json(&AccountStatz { server_id: &broker.identity.id, now: rfc3339(SystemTime::now()), account_statz })
}
