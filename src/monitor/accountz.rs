//! `/accountz`: the accounts this server hosts, and with `acc=NAME` one
//! account's connections, subscriptions, exports and imports, in
//! nats-server 2.9.10's shape (`Accountz`, `AccountInfo`, `ExtExport`,
//! `ExtImport`; the JWT-only fields are absent).

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::Serialize;

use super::format::rfc3339;
use super::http::{json, Body};
use super::query::{ApiError, Query};
use super::Monitor;
use crate::broker::Account;
use crate::config::{ExportKind, ImportKind, LocalSubject};

#[derive(Serialize)]
struct Accountz<'a> {
    server_id: &'a str,
    now: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accounts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_detail: Option<AccountInfo>,
}

#[derive(Serialize)]
struct AccountInfo {
    account_name: String,
    /// nats-server always writes it (a Go `time.Time` is never omitted).
    #[serde(skip_serializing_if = "Option::is_none")]
    update_time: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_system: bool,
    expired: bool,
    complete: bool,
    jetstream_enabled: bool,
    leafnode_connections: usize,
    client_connections: usize,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<ExtExport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<ExtImport>,
    sublist_stats: SublistStats,
    /// Service-import requests waiting for a response, per import (warden).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pending_responses: Vec<PendingResponses>,
    /// `limits { rate_limit }` and how long it has held the account's
    /// connections back (warden; only for an account with one).
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<RateInfo>,
}

#[derive(Serialize)]
struct RateInfo {
    #[serde(flatten)]
    limit: crate::broker::rate::RateView,
    /// Go duration string, as `/connz`'s times.
    held: String,
}

#[derive(Serialize)]
struct ExtExport {
    subject: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
    /// Nanoseconds, as Go's `time.Duration`.
    #[serde(skip_serializing_if = "Option::is_none")]
    response_threshold: Option<u128>,
    /// Empty: public (every account may import).
    approved_accounts: Vec<String>,
}

#[derive(Serialize)]
struct ExtImport {
    subject: String,
    account: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_subject: Option<String>,
    invalid: bool,
    share: bool,
    tracking: bool,
}

#[derive(Serialize)]
struct SublistStats {
    num_subscriptions: usize,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    max_fanout: u64,
}

#[derive(Serialize)]
struct PendingResponses {
    account: String,
    subject: String,
    pending: usize,
}

pub(super) fn accountz(monitor: &Monitor, query: &Query) -> Result<Body, ApiError> {
    let broker = &monitor.broker;
    let mut reply = Accountz {
        server_id: &broker.identity.id,
        now: rfc3339(SystemTime::now()),
        system_account: broker.accounts.system().map(|a| a.name.to_string()),
        accounts: None,
        account_detail: None,
    };
    match query.get("acc") {
        None | Some("") => {
            reply.accounts = Some(broker.accounts.all().iter().map(|a| a.name.to_string()).collect());
        }
        Some(name) => {
            let account = broker.accounts.get(name).ok_or(ApiError::bad_request("account does not exist"))?;
            reply.account_detail = Some(info(&account));
        }
    }
    json(&reply)
}

/// One account's details alone (the `$SYS` `INFO` request's data).
pub(super) fn account_detail(monitor: &Monitor, name: &str) -> Result<Body, ApiError> {
    let account = monitor.broker.accounts.get(name).ok_or(ApiError::bad_request("account does not exist"))?;
    json(&info(&account))
}

fn info(account: &Account) -> AccountInfo {
    let state = account.state();
    let stats = &account.router.stats;
    let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
    let exports = state
        .exports
        .iter()
        .map(|e| {
            let (kind, response_type, response_threshold) = match e.kind {
                ExportKind::Stream => ("stream", None, None),
                ExportKind::Service { response, threshold } => {
                    ("service", Some(response.as_str()), Some(threshold.as_nanos()))
                }
            };
            ExtExport {
                subject: e.subject.clone(),
                kind,
                response_type,
                response_threshold,
                approved_accounts: e.accounts.clone().unwrap_or_default(),
            }
        })
        .collect();
    let mut imports: Vec<ExtImport> = state
        .streams
        .iter()
        .map(|s| {
            let local = match &s.config.kind {
                ImportKind::Stream { local: LocalSubject::Same } => None,
                _ => Some(s.config.local_subject()),
            };
            ExtImport {
                subject: s.config.subject.clone(),
                account: s.config.account.clone(),
                kind: "stream",
                to: None,
                local_subject: local,
                invalid: false,
                share: false,
                tracking: false,
            }
        })
        .collect();
    imports.extend(state.services.iter().map(|s| ExtImport {
        // nats-server's service ExtImport: `subject` is the local subject,
        // `to` the exporter's.
        subject: s.config.local_subject(),
        account: s.config.account.clone(),
        kind: "service",
        to: Some(s.config.subject.clone()),
        local_subject: None,
        invalid: false,
        share: false,
        tracking: false,
    }));
    let pending_responses = state
        .services
        .iter()
        .map(|s| PendingResponses {
            account: s.config.account.clone(),
            subject: s.config.subject.clone(),
            pending: s.pending(),
        })
        .collect();
    AccountInfo {
        account_name: account.name.to_string(),
        update_time: state.updated.map(rfc3339),
        is_system: state.is_system,
        expired: false,
        complete: true,
        jetstream_enabled: false,
        leafnode_connections: account.leafnodes(),
        client_connections: account.connections(),
        subscriptions: account.router.len(),
        exports,
        imports,
        sublist_stats: SublistStats {
            num_subscriptions: account.router.len(),
            num_inserts: load(&stats.inserts),
            num_removes: load(&stats.removes),
            num_matches: load(&stats.matches) + load(&stats.cache_hits),
            max_fanout: load(&stats.max_fanout),
        },
        pending_responses,
        rate_limit: state
            .rate
            .as_ref()
            .map(|rate| RateInfo { limit: rate.view(), held: super::format::go_duration(rate.held()) }),
    }
}
