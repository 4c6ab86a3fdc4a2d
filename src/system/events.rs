//! The audit stream: connection events in nats-server's advisory JSON
//! (`io.nats.server.advisory.v1.client_connect` / `client_disconnect`),
//! and with each the account's connection count
//! (`io.nats.server.advisory.v1.account_connections`, what `nats server
//! watch accounts` shows and nats-server peers count cluster-wide
//! connections with), on nats-server's subjects, published in the system
//! account; and warden's own `io.warden.advisory.v1.rate_held` on
//! `$SYS.ACCOUNT.<acc>.RATE.HELD` when a connection has been over its
//! publish `rate_limit` without a break for a while, and
//! `io.warden.advisory.v1.account_rate_held` on the same subject when the
//! whole account has been over its `limits { rate_limit }` on this server. Rate limited where
//! they are reported (`broker::EventHub`).

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use serde_json::Value;

use super::requests::ServerInfo;
use crate::broker::rate::{RateView, SharedRate};
use crate::broker::{Client, ClientInfo, ClientKind, CloseReason, ServerEvent};
use crate::monitor::rfc3339;

const CONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_connect";
const DISCONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_disconnect";
const ACCOUNT_CONNS_TYPE: &str = "io.nats.server.advisory.v1.account_connections";
/// warden's own advisory: a connection over its publish `rate_limit`.
const RATE_HELD_TYPE: &str = "io.warden.advisory.v1.rate_held";
/// warden's own advisory: an account over its `limits { rate_limit }`.
const ACCOUNT_RATE_HELD_TYPE: &str = "io.warden.advisory.v1.account_rate_held";

#[derive(Serialize)]
struct DataStats {
    msgs: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: &'a ServerInfo<'a>,
    client: ClientInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent: Option<DataStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    received: Option<DataStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// How long the connection has been over its rate, in nanoseconds
    /// (the rate advisory only).
    #[serde(skip_serializing_if = "Option::is_none")]
    over: Option<u64>,
}

/// The subject to publish `event` on, in the system account, and its
/// JSON; `None` for the global account's connects and disconnects, which
/// nats-server does not report either.
pub fn render(event: &ServerEvent, server: &ServerInfo<'_>, server_id: &str) -> Option<(String, Vec<u8>)> {
    let now = SystemTime::now();
    if let ServerEvent::AccountRateHeld { client, rate, over } = event {
        return Some(account_rate_held(client, rate, *over, server, now));
    }
    let (subject, kind, client, stop, reason, counters) = match event {
        ServerEvent::Connect { client } => {
            let account = account_of(client)?;
            (format!("$SYS.ACCOUNT.{account}.{}CONNECT", leaf_part(client)), CONNECT_TYPE, client, None, None, false)
        }
        ServerEvent::Disconnect { client, reason, stop } => {
            let account = account_of(client)?;
            let subject = format!("$SYS.ACCOUNT.{account}.{}DISCONNECT", leaf_part(client));
            (subject, DISCONNECT_TYPE, client, Some(*stop), Some(reason.to_string()), true)
        }
        ServerEvent::RateHeld { client, .. } => {
            // The global account too: this advisory is warden's own.
            let account = client.meta.lock().account.clone()?;
            (format!("$SYS.ACCOUNT.{account}.RATE.HELD"), RATE_HELD_TYPE, client, None, None, true)
        }
        ServerEvent::AccountRateHeld { .. } => return None,
        ServerEvent::AuthError { client, stop, .. } => {
            let subject = format!("$SYS.SERVER.{server_id}.CLIENT.AUTH.ERR");
            let reason = CloseReason::AuthenticationFailure.to_string();
            (subject, DISCONNECT_TYPE, client, Some(*stop), Some(reason), true)
        }
    };
    let mut info = ClientInfo::of(client, stop);
    if let ServerEvent::AuthError { user, .. } = event {
        info.user = user.clone();
    }
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let stats = &client.stats;
    let body = Event {
        kind,
        id: event_id(),
        timestamp: rfc3339(now),
        server,
        client: info,
        // nats-server's view: what the client sent is what the server received.
        sent: counters.then(|| DataStats { msgs: load(&stats.in_msgs), bytes: load(&stats.in_bytes) }),
        received: counters.then(|| DataStats { msgs: load(&stats.out_msgs), bytes: load(&stats.out_bytes) }),
        reason,
        over: match event {
            ServerEvent::RateHeld { over, .. } => Some(u64::try_from(over.as_nanos()).unwrap_or(u64::MAX)),
            _ => None,
        },
    };
    Some((subject, serde_json::to_vec(&body).unwrap_or_default()))
}

/// The account advisory: which account, how long it has been over its
/// rate on this server, how long its connections were held in all, and
/// its limit. The connection that saw it is not named: the account's
/// rate is every connection's doing.
fn account_rate_held(
    client: &Client,
    rate: &SharedRate,
    over: Duration,
    server: &ServerInfo<'_>,
    now: SystemTime,
) -> (String, Vec<u8>) {
    #[derive(Serialize)]
    struct AccountRateHeld<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: String,
        timestamp: String,
        server: &'a ServerInfo<'a>,
        acc: String,
        /// Nanoseconds over the rate without a break.
        over: u64,
        /// Nanoseconds the account's connections were held back, in all.
        held: u64,
        rate_limit: RateView,
    }
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let account = client.meta.lock().account.as_deref().unwrap_or(crate::config::GLOBAL_ACCOUNT).to_owned();
    let body = AccountRateHeld {
        kind: ACCOUNT_RATE_HELD_TYPE,
        id: event_id(),
        timestamp: rfc3339(now),
        server,
        over: nanos(over),
        held: nanos(rate.held()),
        rate_limit: rate.view(),
        acc: account.clone(),
    };
    (format!("$SYS.ACCOUNT.{account}.RATE.HELD"), serde_json::to_vec(&body).unwrap_or_default())
}

/// nats-server's `AccountNumConns` for one account: `stat` is its entry of
/// `account_statz` (`acc`, `conns`, `leafnodes`, `total_conns`, `sent`,
/// `received`, `slow_consumers`). Published on both subjects nats-server
/// 2.9.10 uses (`$SYS.ACCOUNT.<acc>.SERVER.CONNS`, and the older
/// `$SYS.SERVER.ACCOUNT.<acc>.CONNS` its peers still listen on).
pub fn account_conns(account: &str, stat: Value, server: &ServerInfo<'_>) -> ([String; 2], Vec<u8>) {
    #[derive(Serialize)]
    struct AccountNumConns<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: String,
        timestamp: String,
        server: &'a ServerInfo<'a>,
        #[serde(flatten)]
        stat: Value,
    }
    let body = AccountNumConns {
        kind: ACCOUNT_CONNS_TYPE,
        id: event_id(),
        timestamp: rfc3339(SystemTime::now()),
        server,
        stat,
    };
    let subjects = [format!("$SYS.ACCOUNT.{account}.SERVER.CONNS"), format!("$SYS.SERVER.ACCOUNT.{account}.CONNS")];
    (subjects, serde_json::to_vec(&body).unwrap_or_default())
}

/// The account whose connection count `event` changed, unless it is the
/// global account (whose connects nats-server does not report either).
pub fn counted_account(event: &ServerEvent) -> Option<String> {
    match event {
        ServerEvent::Connect { client } | ServerEvent::Disconnect { client, .. } => account_of(client),
        ServerEvent::AuthError { .. } | ServerEvent::RateHeld { .. } | ServerEvent::AccountRateHeld { .. } => None,
    }
}

/// A leaf node's events go to `LEAFNODE.CONNECT`/`LEAFNODE.DISCONNECT`
/// (nats-server's subjects), a client's to `CONNECT`/`DISCONNECT`.
fn leaf_part(client: &Client) -> &'static str {
    if client.kind == ClientKind::Leaf {
        "LEAFNODE."
    } else {
        ""
    }
}

/// The account of a logged-in client, unless it is the global account.
fn account_of(client: &Client) -> Option<String> {
    let account = client.meta.lock().account.clone()?;
    (*account != *crate::config::GLOBAL_ACCOUNT).then(|| account.to_string())
}

/// A fresh event id: 22 random alphanumerics, like nats-server's NUID.
fn event_id() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(22).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use super::*;
    use crate::system::requests::ServerFacts;

    fn client(account: &str, user: &str) -> Arc<Client> {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let client = Arc::new(Client::new(7, addr, 1024));
        {
            let mut meta = client.meta.lock();
            meta.account = Some(account.into());
            meta.user = Some(user.into());
            meta.name = Some("app".into());
        }
        client.stats.in_msgs.store(3, Ordering::Relaxed);
        client
    }

    fn render_json(event: &ServerEvent) -> Option<(String, Value)> {
        let metadata = std::collections::BTreeMap::new();
        let facts =
            ServerFacts { name: "n1", host: "127.0.0.1", id: "NID", cluster: None, tags: &[], metadata: &metadata };
        let server = ServerInfo::new(&facts, 1, rfc3339(SystemTime::now()));
        render(event, &server, "NID").map(|(s, b)| (s, serde_json::from_slice(&b).unwrap()))
    }

    #[test]
    fn connect_and_disconnect_events_name_the_account_and_client() {
        let (subject, json) = render_json(&ServerEvent::Connect { client: client("A", "alice") }).unwrap();
        assert_eq!(subject, "$SYS.ACCOUNT.A.CONNECT");
        assert_eq!(json["type"], CONNECT_TYPE);
        assert_eq!(json["id"].as_str().unwrap().len(), 22);
        assert_eq!(
            (&json["client"]["acc"], &json["client"]["user"], &json["client"]["id"]),
            (&"A".into(), &"alice".into(), &7.into())
        );
        assert_eq!(json["server"]["id"], "NID");
        assert!(json.get("sent").is_none());
        let stop = SystemTime::now();
        let event = ServerEvent::Disconnect { client: client("A", "alice"), reason: CloseReason::ClientClosed, stop };
        let (subject, json) = render_json(&event).unwrap();
        assert_eq!(subject, "$SYS.ACCOUNT.A.DISCONNECT");
        assert_eq!(json["reason"], "Client Closed");
        assert_eq!(json["sent"]["msgs"], 3);
        assert!(json["client"]["stop"].is_string());
    }

    #[test]
    fn a_leaf_nodes_events_go_to_the_leafnode_subjects() {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let leaf = Arc::new(Client::with_kind(9, addr, 1024, crate::broker::ClientKind::Leaf));
        leaf.meta.lock().account = Some("A".into());
        let (subject, json) = render_json(&ServerEvent::Connect { client: leaf.clone() }).unwrap();
        assert_eq!(subject, "$SYS.ACCOUNT.A.LEAFNODE.CONNECT");
        assert_eq!(json["client"]["kind"], "Leafnode");
        let event =
            ServerEvent::Disconnect { client: leaf, reason: CloseReason::ClientClosed, stop: SystemTime::now() };
        assert_eq!(render_json(&event).unwrap().0, "$SYS.ACCOUNT.A.LEAFNODE.DISCONNECT");
    }

    #[test]
    fn account_connection_counts_have_nats_servers_shape_and_subjects() {
        let metadata = std::collections::BTreeMap::new();
        let facts =
            ServerFacts { name: "n1", host: "127.0.0.1", id: "NID", cluster: None, tags: &[], metadata: &metadata };
        let server = ServerInfo::new(&facts, 1, rfc3339(SystemTime::now()));
        let stat = serde_json::json!({"acc": "A", "conns": 1, "leafnodes": 0, "total_conns": 1});
        let (subjects, body) = account_conns("A", stat, &server);
        assert_eq!(subjects, ["$SYS.ACCOUNT.A.SERVER.CONNS", "$SYS.SERVER.ACCOUNT.A.CONNS"]);
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["type"], ACCOUNT_CONNS_TYPE);
        assert_eq!(
            (&json["acc"], &json["total_conns"], &json["server"]["id"]),
            (&"A".into(), &1.into(), &"NID".into())
        );
        assert_eq!(counted_account(&ServerEvent::Connect { client: client("A", "alice") }).as_deref(), Some("A"));
        assert_eq!(counted_account(&ServerEvent::Connect { client: client("$G", "bob") }), None);
    }

    #[test]
    fn an_account_over_its_rate_is_reported_with_its_limit() {
        let limit = crate::config::RateLimit { msgs_per_sec: 100, burst_msgs: 10, ..Default::default() };
        let rate = Arc::new(SharedRate::new(limit));
        let over = Duration::from_secs(5);
        let (subject, json) =
            render_json(&ServerEvent::AccountRateHeld { client: client("A", "alice"), rate, over }).unwrap();
        assert_eq!(subject, "$SYS.ACCOUNT.A.RATE.HELD");
        assert_eq!(json["type"], ACCOUNT_RATE_HELD_TYPE);
        assert_eq!((&json["acc"], &json["over"]), (&"A".into(), &5_000_000_000u64.into()));
        assert_eq!((&json["rate_limit"]["msgs_per_sec"], &json["rate_limit"]["burst_msgs"]), (&100.into(), &10.into()));
        assert!(json.get("client").is_none(), "the account's doing, not one connection's");
    }

    #[test]
    fn global_account_activity_is_not_reported_but_auth_errors_are() {
        assert!(render_json(&ServerEvent::Connect { client: client("$G", "bob") }).is_none());
        let event =
            ServerEvent::AuthError { client: client("$G", "x"), user: Some("mallory".into()), stop: SystemTime::now() };
        let (subject, json) = render_json(&event).unwrap();
        assert_eq!(subject, "$SYS.SERVER.NID.CLIENT.AUTH.ERR");
        assert_eq!(json["client"]["user"], "mallory");
        assert_eq!(json["reason"], "Authentication Failure");
    }
}
