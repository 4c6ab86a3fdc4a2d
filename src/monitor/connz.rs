//! `/connz`: the live client connections (with `acc=`, that account's leaf
//! connections too), sorted and paged like nats-server's, with their
//! subscriptions and user names on request.

use std::cmp::Ordering as Order;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::format::{go_duration, rfc3339, uptime};
use super::http::{json, Body};
use super::query::{ApiError, Query};
use super::subsz::SubDetail;
use super::{LeafConnView, Monitor};
use crate::broker::{Client, Subscription};
use crate::tls::{go_cipher_name, go_version_name};

/// Connections listed when `limit` is absent or 0 (nats-server's).
const DEFAULT_LIMIT: usize = 1024;

/// `sort=`: cid ascending, everything else descending, ties by cid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Cid,
    Start,
    Subs,
    Pending,
    MsgsTo,
    MsgsFrom,
    BytesTo,
    BytesFrom,
    Last,
    Idle,
    Uptime,
}

impl SortBy {
    fn parse(v: Option<&str>) -> Result<SortBy, ApiError> {
        Ok(match v.unwrap_or("") {
            "" | "cid" => SortBy::Cid,
            "start" => SortBy::Start,
            "subs" => SortBy::Subs,
            "pending" => SortBy::Pending,
            "msgs_to" => SortBy::MsgsTo,
            "msgs_from" => SortBy::MsgsFrom,
            "bytes_to" => SortBy::BytesTo,
            "bytes_from" => SortBy::BytesFrom,
            "last" => SortBy::Last,
            "idle" => SortBy::Idle,
            "uptime" => SortBy::Uptime,
            "stop" | "reason" => {
                return Err(ApiError::bad_request("sort by stop or reason is only valid on closed connections"))
            }
            _ => return Err(ApiError::bad_request("invalid sorting option")),
        })
    }
}

/// Which subscription form to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subs {
    None,
    Subjects,
    Detail,
}

#[derive(Debug)]
struct ConnzOptions {
    sort: SortBy,
    offset: usize,
    limit: usize,
    subs: Subs,
    auth: bool,
    cid: Option<u64>,
    /// `acc=`: only this account's connections (needs `auth`, as nats-server).
    account: Option<String>,
    /// `user=`: only this user's connections (needs `auth`).
    user: Option<String>,
}

impl ConnzOptions {
    fn parse(q: &Query) -> Result<Self, ApiError> {
        match q.get("state") {
            None | Some("") | Some("open") => {}
            Some("closed" | "any" | "all") => {
                return Err(ApiError::bad_request("closed connections are not kept; only state=open is supported"))
            }
            Some(_) => return Err(ApiError::bad_request("invalid value for 'state'")),
        }
        let subs = match q.get("subs") {
            Some("detail") => Subs::Detail,
            _ if q.flag("subs", ApiError::bad_request("invalid value for 'subs'"))? => Subs::Subjects,
            _ => Subs::None,
        };
        let limit = q.number("limit", DEFAULT_LIMIT, ApiError::bad_request("invalid value for 'limit'"))?;
        let cid = match q.get("cid") {
            None | Some("") => None,
            Some(v) => Some(v.parse().map_err(|_| ApiError::bad_request("invalid value for 'cid'"))?),
        };
        let auth = q.flag("auth", ApiError::bad_request("invalid value for 'auth'"))?;
        let account = q.get("acc").filter(|a| !a.is_empty()).map(str::to_owned);
        let user = q.get("user").filter(|u| !u.is_empty()).map(str::to_owned);
        if !auth && (account.is_some() || user.is_some()) {
            return Err(ApiError::bad_request("filter by user or account only allowed with auth option"));
        }
        Ok(ConnzOptions {
            sort: SortBy::parse(q.get("sort"))?,
            offset: q.number("offset", 0, ApiError::bad_request("invalid value for 'offset'"))?,
            limit: if limit == 0 { DEFAULT_LIMIT } else { limit },
            subs,
            auth,
            cid,
            account,
            user,
        })
    }
}

/// One connection's figures, read once so sorting sees consistent values.
struct Row {
    client: Arc<Client>,
    /// The leaf server's name, when the connection is a leaf's.
    leaf: Option<String>,
    start: SystemTime,
    last: SystemTime,
    subs: usize,
    pending: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
}

impl Row {
    fn read(client: Arc<Client>) -> Row {
        let s = &client.stats;
        Row {
            start: client.start,
            last: client.last_activity(),
            subs: client.subscription_count(),
            pending: client.outbound.pending(),
            in_msgs: s.in_msgs.load(Ordering::Relaxed),
            out_msgs: s.out_msgs.load(Ordering::Relaxed),
            in_bytes: s.in_bytes.load(Ordering::Relaxed),
            out_bytes: s.out_bytes.load(Ordering::Relaxed),
            client,
            leaf: None,
        }
    }

    fn leaf(view: LeafConnView) -> Row {
        Row { leaf: Some(view.remote_name), ..Row::read(view.client) }
    }

    fn compare(&self, other: &Row, by: SortBy) -> Order {
        let descending = match by {
            SortBy::Cid => Order::Equal,
            SortBy::Start => other.start.cmp(&self.start),
            SortBy::Subs => other.subs.cmp(&self.subs),
            SortBy::Pending => other.pending.cmp(&self.pending),
            SortBy::MsgsTo => other.out_msgs.cmp(&self.out_msgs),
            SortBy::MsgsFrom => other.in_msgs.cmp(&self.in_msgs),
            SortBy::BytesTo => other.out_bytes.cmp(&self.out_bytes),
            SortBy::BytesFrom => other.in_bytes.cmp(&self.in_bytes),
            SortBy::Last => other.last.cmp(&self.last),
            // Longest idle first: least recent activity first.
            SortBy::Idle => self.last.cmp(&other.last),
            // Longest up first: earliest start first.
            SortBy::Uptime => self.start.cmp(&other.start),
        };
        descending.then(self.client.id.cmp(&other.client.id))
    }
}

#[derive(Serialize)]
struct Connz<'a> {
    server_id: &'a str,
    now: String,
    num_connections: usize,
    total: usize,
    offset: usize,
    limit: usize,
    connections: Vec<ConnInfo>,
}

/// nats-server's `ConnInfo` fields that apply to warden's clients.
#[derive(Serialize)]
struct ConnInfo {
    cid: u64,
    kind: &'static str,
    /// `nats` or `websocket` for a client; none for a leaf, as nats-server.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind_type: Option<&'static str>,
    ip: String,
    port: u16,
    start: String,
    last_activity: String,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cipher_suite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    /// The user NAME only, and only with `auth=1`; nothing for token or
    /// anonymous clients (nats-server shows a token client's raw token).
    #[serde(skip_serializing_if = "Option::is_none")]
    authorized_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list_detail: Option<Vec<SubDetail>>,
    /// How long the connection was not read because it was over its
    /// publish `rate_limit` (warden; only when it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_held: Option<String>,
}

pub(super) fn connz(monitor: &Monitor, query: &Query) -> Result<Body, ApiError> {
    let opts = ConnzOptions::parse(query)?;
    let now = SystemTime::now();
    // `account`: a client's own, a leaf's the one it is bound to.
    let wanted = |c: &Arc<Client>, account: Option<&str>| {
        opts.cid.is_none_or(|id| c.id == id)
            && opts.account.as_deref().is_none_or(|want| account == Some(want))
            && opts.user.as_deref().is_none_or(|want| c.meta.lock().user.as_deref() == Some(want))
    };
    let client_account = |c: &Arc<Client>| c.meta.lock().account.clone();
    let mut rows: Vec<Row> = monitor
        .broker
        .clients()
        .into_iter()
        .filter(|c| wanted(c, client_account(c).as_deref()))
        .map(Row::read)
        .collect();
    // One account's connections include its leafs, as nats-server's
    // (2.9 and 2.15 alike); the whole server's list is its clients.
    if opts.account.is_some() {
        let leafs = monitor.leafs.as_ref().map(|l| l.leafs()).unwrap_or_default();
        rows.extend(leafs.into_iter().filter(|l| wanted(&l.client, Some(&l.account))).map(Row::leaf));
    }
    rows.sort_unstable_by(|a, b| a.compare(b, opts.sort));
    let total = rows.len();
    let page: Vec<Row> = rows.into_iter().skip(opts.offset).take(opts.limit).collect();
    let mut subs = if opts.subs == Subs::None { HashMap::new() } else { subscriptions_of(monitor, &page) };
    let connections: Vec<ConnInfo> = page
        .iter()
        .map(|row| {
            let mine = subs.remove(&row.client.id).unwrap_or_default();
            conn_info(row, now, &opts, mine)
        })
        .collect();
    json(&Connz {
        server_id: &monitor.broker.identity.id,
        now: rfc3339(now),
        num_connections: connections.len(),
        total,
        offset: opts.offset,
        limit: opts.limit,
        connections,
    })
}

/// The subscriptions of the listed clients, from one walk of the index.
fn subscriptions_of(monitor: &Monitor, page: &[Row]) -> HashMap<u64, Vec<Arc<Subscription>>> {
    let mut by_client: HashMap<u64, Vec<Arc<Subscription>>> = page.iter().map(|r| (r.client.id, Vec::new())).collect();
    for sub in monitor.broker.all_subscriptions().into_iter().filter(|s| s.is_clients_own()) {
        if let Some(list) = by_client.get_mut(&sub.owner.id) {
            list.push(sub);
        }
    }
    for list in by_client.values_mut() {
        list.sort_by(|a, b| a.sid.cmp(&b.sid));
    }
    by_client
}

fn conn_info(row: &Row, now: SystemTime, opts: &ConnzOptions, subs: Vec<Arc<Subscription>>) -> ConnInfo {
    let client = &row.client;
    let meta = client.meta.lock().clone();
    let since = |t: SystemTime| now.duration_since(t).unwrap_or_default();
    let (subscriptions_list, subscriptions_list_detail) = match opts.subs {
        Subs::None => (None, None),
        Subs::Subjects => (Some(subs.iter().map(|s| String::from_utf8_lossy(&s.subject).into_owned()).collect()), None),
        Subs::Detail => (None, Some(subs.iter().map(|s| SubDetail::of(s)).collect())),
    };
    let (kind, kind_type, name) = match &row.leaf {
        Some(server) => ("Leafnode", None, Some(server.clone())),
        None => ("Client", Some(if meta.websocket { "websocket" } else { "nats" }), meta.name),
    };
    ConnInfo {
        cid: client.id,
        kind,
        kind_type,
        ip: client.addr.ip().to_string(),
        port: client.addr.port(),
        start: rfc3339(row.start),
        last_activity: rfc3339(row.last),
        rate_held: match client.stats.held_nanos.load(Ordering::Relaxed) {
            0 => None,
            held => Some(go_duration(Duration::from_nanos(held))),
        },
        rtt: go_duration(Duration::from_nanos(client.rtt_nanos.load(Ordering::Relaxed))),
        uptime: uptime(since(row.start)),
        idle: uptime(since(row.last)),
        pending_bytes: row.pending,
        in_msgs: row.in_msgs,
        out_msgs: row.out_msgs,
        in_bytes: row.in_bytes,
        out_bytes: row.out_bytes,
        subscriptions: row.subs,
        name: name.filter(|n| !n.is_empty()),
        lang: meta.lang,
        version: meta.version,
        tls_version: meta.tls.as_ref().and_then(|tls| tls.version.as_deref()).map(go_version_name),
        tls_cipher_suite: meta.tls.as_ref().and_then(|tls| tls.cipher_suite.as_deref()).map(go_cipher_name),
        // As nats-server: with `auth`, and only for accounts other than `$G`.
        account: meta.account.filter(|a| opts.auth && **a != *crate::config::GLOBAL_ACCOUNT).map(|a| a.to_string()),
        authorized_user: if opts.auth { meta.user } else { None },
        subscriptions_list,
        subscriptions_list_detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_fixed_errors() {
        let opts =
            ConnzOptions::parse(&Query::parse(Some("sort=bytes_to&offset=2&limit=0&subs=detail&auth=true"))).unwrap();
        assert_eq!(opts.sort, SortBy::BytesTo);
        assert_eq!((opts.offset, opts.limit, opts.subs, opts.auth), (2, DEFAULT_LIMIT, Subs::Detail, true));
        let err = ConnzOptions::parse(&Query::parse(Some("sort=%3Cscript%3E"))).unwrap_err();
        assert_eq!(err.message, "invalid sorting option");
        let err = ConnzOptions::parse(&Query::parse(Some("auth=maybe"))).unwrap_err();
        assert_eq!(err.message, "invalid value for 'auth'");
        assert!(ConnzOptions::parse(&Query::parse(Some("state=closed"))).is_err());
        assert!(ConnzOptions::parse(&Query::parse(Some("limit=-1"))).is_err());
    }
}
