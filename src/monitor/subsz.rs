//! `/subsz` (alias `/subscriptionsz`): the subscription index's counters,
//! and with `subs=1` its subscriptions, paged and optionally filtered by
//! `test=<subject>` to those a message on that subject would reach.
//!
//! warden's figures, honestly computed from what it keeps (nats-server's
//! come from its one shared match cache):
//! - `num_matches`: every publish lookup (cache hits plus index walks);
//! - `cache_hit_rate`: the share answered by a connection's match cache;
//! - `num_cache`: subjects cached across all connections' caches;
//! - `max_fanout`: most deliveries of one published message since start;
//! - `avg_fanout`: deliveries per published message since start
//!   (`out_msgs / in_msgs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::format::rfc3339;
use super::http::{json, Body};
use super::query::{ApiError, Query};
use super::Monitor;
use crate::broker::{Account, Broker, Subscription};
use crate::subject;

/// Subscriptions listed when `limit` is absent or 0.
const DEFAULT_LIMIT: usize = 1024;

/// One subscription, as nats-server's `SubDetail`.
#[derive(Serialize)]
pub(super) struct SubDetail {
    account: String,
    subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    qgroup: Option<String>,
    sid: String,
    msgs: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    cid: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl SubDetail {
    pub(super) fn of(sub: &Subscription) -> SubDetail {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        SubDetail {
            account: sub.account.name.to_string(),
            subject: text(&sub.subject),
            qgroup: sub.queue.as_deref().map(text),
            sid: text(&sub.sid),
            msgs: sub.delivered(),
            max: sub.max(),
            cid: sub.owner.id,
        }
    }
}

#[derive(Serialize)]
struct Subsz<'a> {
    server_id: &'a str,
    now: String,
    num_subscriptions: usize,
    num_cache: usize,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    cache_hit_rate: f64,
    max_fanout: u64,
    avg_fanout: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list: Option<Vec<SubDetail>>,
}

pub(super) fn subsz(monitor: &Monitor, query: &Query) -> Result<Body, ApiError> {
    let list = query.flag("subs", ApiError::bad_request("invalid value for 'subs'"))?;
    let offset = query.number("offset", 0, ApiError::bad_request("invalid value for 'offset'"))?;
    let limit = match query.number("limit", DEFAULT_LIMIT, ApiError::bad_request("invalid value for 'limit'"))? {
        0 => DEFAULT_LIMIT,
        n => n,
    };
    let test = match query.get("test") {
        None | Some("") => None,
        Some(t) if subject::is_valid_literal(t.as_bytes()) => Some(t),
        Some(_) => return Err(ApiError::bad_request("invalid value for 'test': a subject without wildcards")),
    };
    let broker = &monitor.broker;
    let accounts: Vec<Arc<Account>> = match query.get("acc") {
        None | Some("") => broker.accounts.all(),
        Some(name) => broker.accounts.get(name).into_iter().collect(),
    };
    let totals = Broker::index_totals(&accounts);
    let hits = totals.cache_hits;
    let lookups = hits + totals.matches;
    let in_msgs = broker.stats.in_msgs.load(Ordering::Relaxed);
    let out_msgs = broker.stats.out_msgs.load(Ordering::Relaxed);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { ((a as f64 / b as f64) * 10_000.0).round() / 10_000.0 };
    let mut subsz = Subsz {
        server_id: &broker.identity.id,
        now: rfc3339(SystemTime::now()),
        num_subscriptions: totals.subscriptions,
        num_cache: broker.clients().iter().map(|c| c.cache_entries()).sum(),
        num_inserts: totals.inserts,
        num_removes: totals.removes,
        num_matches: lookups,
        cache_hit_rate: ratio(hits, lookups),
        max_fanout: totals.max_fanout,
        avg_fanout: ratio(out_msgs, in_msgs),
        total: None,
        offset: None,
        limit: None,
        subscriptions_list: None,
    };
    if list {
        let mut subs: Vec<Arc<Subscription>> = accounts
            .iter()
            .flat_map(|a| a.router.subscriptions())
            .filter(|s| test.is_none_or(|t| subject::matches(&s.subject, t.as_bytes())))
            .collect();
        subs.sort_by(|a, b| a.owner.id.cmp(&b.owner.id).then_with(|| a.sid.cmp(&b.sid)));
        subsz.total = Some(subs.len());
        subsz.offset = Some(offset);
        subsz.limit = Some(limit);
        subsz.subscriptions_list = Some(subs.iter().skip(offset).take(limit).map(|s| SubDetail::of(s)).collect());
    }
    json(&subsz)
}
