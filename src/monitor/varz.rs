//! `/varz`: server identity, limits, totals, process figures, the cluster,
//! and warden's security counters.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::Serialize;

use super::format::{rfc3339, uptime};
use super::http::{json, Body};
use super::query::ApiError;
use super::{process, Monitor, PATHS};

/// nats-server's `/varz` fields that warden has, in its order, plus `warden`.
#[derive(Serialize)]
struct Varz<'a> {
    server_id: &'a str,
    server_name: &'a str,
    version: &'static str,
    /// warden's own version (nats-server has none).
    warden_version: &'static str,
    proto: u8,
    host: &'a str,
    port: u16,
    auth_required: bool,
    tls_required: bool,
    tls_verify: bool,
    connect_urls: Vec<String>,
    /// -1 when `max_connections` is 0 (every client refused), as nats-server.
    max_connections: i64,
    max_subscriptions: usize,
    /// Nanoseconds, as Go's `time.Duration`.
    ping_interval: u128,
    ping_max: u32,
    http_host: &'a str,
    http_port: u16,
    https_port: u16,
    /// Seconds.
    auth_timeout: f64,
    max_control_line: usize,
    max_payload: usize,
    max_pending: usize,
    /// Seconds.
    tls_timeout: f64,
    /// Nanoseconds.
    write_deadline: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterInfo>,
    /// Empty (`{}`) without gateways, as nats-server's.
    gateway: GatewayInfo,
    /// Empty (`{}`) without a websocket listener, as nats-server's.
    websocket: WebsocketVarz,
    start: String,
    now: String,
    uptime: String,
    mem: u64,
    cores: usize,
    cpu: f64,
    connections: usize,
    total_connections: u64,
    routes: usize,
    remotes: usize,
    leafnodes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    slow_consumers: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_account: Option<String>,
    /// Accounts hosted (warden; nats-server has no such field).
    accounts: usize,
    http_req_stats: BTreeMap<&'static str, u64>,
    config_load_time: String,
    /// `server_tags`, as written.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    /// `server_metadata`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, String>,
    warden: Warden,
}

/// The `websocket {}` settings, as nats-server's `WebsocketOptsVarz` names
/// them (each field left out when unset, as there).
#[derive(Serialize, Default)]
struct WebsocketVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    host: String,
    #[serde(skip_serializing_if = "is_zero")]
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_auth_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt_cookie: Option<String>,
    /// Nanoseconds, as Go's `time.Duration`.
    #[serde(skip_serializing_if = "is_zero_nanos")]
    handshake_timeout: u128,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    no_tls: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    same_origin: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_origins: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    compression: bool,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

fn is_zero_nanos(n: &u128) -> bool {
    *n == 0
}

impl WebsocketVarz {
    fn of(ws: Option<&crate::config::WebsocketOptions>) -> WebsocketVarz {
        let Some(ws) = ws else { return WebsocketVarz::default() };
        WebsocketVarz {
            host: ws.host.clone(),
            port: ws.port,
            no_auth_user: ws.no_auth_user.clone(),
            jwt_cookie: ws.jwt_cookie.clone(),
            handshake_timeout: ws.handshake_timeout.as_nanos(),
            no_tls: ws.tls.is_none(),
            same_origin: ws.same_origin,
            allowed_origins: ws
                .allowed_origins
                .iter()
                .map(|o| format!("{}://{}:{}", o.scheme, o.host, o.port))
                .collect(),
            compression: ws.compression,
        }
    }
}

/// The `cluster {}` settings (route URLs without their credentials).
#[derive(Serialize)]
struct ClusterInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    addr: String,
    cluster_port: u16,
    urls: Vec<String>,
}

/// The `gateway {}` settings (URLs without their credentials), nats-server's
/// `GatewayOptsVarz`.
#[derive(Serialize, Default)]
struct GatewayInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    host: String,
    #[serde(skip_serializing_if = "is_zero")]
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_timeout: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_retries: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gateways: Vec<RemoteGatewayInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reject_unknown: Option<bool>,
}

#[derive(Serialize)]
struct RemoteGatewayInfo {
    name: String,
    urls: Vec<String>,
}

impl GatewayInfo {
    fn of(view: Option<&std::sync::Arc<dyn super::GatewayView>>) -> GatewayInfo {
        let Some(g) = view else { return GatewayInfo::default() };
        GatewayInfo {
            name: g.name(),
            host: g.listen_addr().ip().to_string(),
            port: g.listen_addr().port(),
            auth_timeout: Some(g.auth_timeout().as_secs_f64()),
            connect_retries: Some(g.connect_retries()),
            gateways: g.remotes().into_iter().map(|(name, urls)| RemoteGatewayInfo { name, urls }).collect(),
            reject_unknown: Some(g.rejects_unknown()),
        }
    }
}

/// The warden-specific part of `/varz`.
#[derive(Serialize)]
struct Warden {
    security: Security,
    tls: TlsCertificates,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<AuditCounts>,
}

/// The audit trail's counters, when it runs: a loss is never silent.
#[derive(Serialize)]
pub(super) struct AuditCounts {
    /// Records written.
    pub(super) written: u64,
    /// Records lost because the trail fell behind (each loss is also
    /// written as a `records_dropped` record).
    pub(super) dropped: u64,
    /// Records the audit file could not take.
    pub(super) write_errors: u64,
}

/// The audit trail's counters, shared with `/metrics`.
pub(super) fn audit_counts(monitor: &Monitor) -> Option<AuditCounts> {
    let trail = &monitor.broker.audit;
    let counts = trail.counts();
    let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    trail.is_on().then(|| AuditCounts {
        written: load(&counts.written),
        dropped: load(&counts.dropped),
        write_errors: load(&counts.write_errors),
    })
}

/// What each TLS listener presents, and its rotations, so an alert can
/// fire before a certificate expires or when one could not be rotated.
#[derive(Serialize)]
pub(super) struct TlsCertificates {
    pub(super) certificates: Vec<TlsCertificate>,
    /// Certificates rotated from changed files since start.
    pub(super) rotations: u64,
    /// Changed files that could not be used (the old certificate stayed).
    pub(super) rotation_failures: u64,
}

/// One certificate a listener presents.
#[derive(Serialize)]
pub(super) struct TlsCertificate {
    pub(super) listener: &'static str,
    pub(super) subject: String,
    pub(super) serial: String,
    /// RFC 3339.
    pub(super) not_after: String,
    /// Unix seconds, for `/metrics`.
    #[serde(skip)]
    pub(super) not_after_unix: i64,
}

/// The TLS listeners' certificates, shared with `/metrics`.
pub(super) fn tls_certificates(monitor: &Monitor) -> TlsCertificates {
    let rotation = &monitor.broker.tls_rotation;
    let certificates = rotation
        .certificates()
        .into_iter()
        .map(|(listener, c)| TlsCertificate {
            listener,
            not_after: super::format::rfc3339(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(c.not_after).unwrap_or(0)),
            ),
            not_after_unix: c.not_after,
            subject: c.subject,
            serial: c.serial,
        })
        .collect();
    TlsCertificates { certificates, rotations: rotation.rotated(), rotation_failures: rotation.failures() }
}

/// Login, permission and limit counters since start.
#[derive(Serialize)]
pub(super) struct Security {
    pub(super) auth_successes: u64,
    pub(super) auth_failures: AuthFailures,
    pub(super) permission_violations: Vec<Violation>,
    pub(super) tls_handshake_failures: u64,
    pub(super) refused_max_connections: u64,
    /// Connections refused by `max_connections_per_ip`.
    pub(super) refused_max_connections_per_ip: u64,
    /// Connections from trusted proxies closed without a valid PROXY header.
    pub(super) refused_proxy_headers: u64,
    /// Connections closed at accept by each listener's `accept_rate`.
    pub(super) refused_accept_rate: AcceptRefusals,
    /// Monitoring requests refused for missing or wrong credentials.
    pub(super) http_auth_failures: u64,
    /// Leaf connections closed for a loop.
    pub(super) leafnode_loops: u64,
}

/// Connections closed at accept by a listener's accept rate, by listener.
#[derive(Serialize)]
pub(super) struct AcceptRefusals {
    pub(super) client: u64,
    pub(super) websocket: u64,
    pub(super) leafnode: u64,
}

/// Failed logins by reason.
#[derive(Serialize)]
pub(super) struct AuthFailures {
    pub(super) missing_credentials: u64,
    pub(super) bad_credentials: u64,
    pub(super) bad_jwt: u64,
    pub(super) not_allowed_here: u64,
    pub(super) certificate_not_mapped: u64,
    pub(super) service_refused: u64,
    pub(super) service_unavailable: u64,
    pub(super) throttled: u64,
    pub(super) timeout: u64,
}

/// Refused publishes or subscribes of one user in one direction. Users
/// come from the config (an anonymous client is `""`), so the list is bounded.
#[derive(Serialize)]
pub(super) struct Violation {
    pub(super) user: String,
    pub(super) direction: &'static str,
    pub(super) count: u64,
}

/// The security counters, shared with `/metrics`.
pub(super) fn security(monitor: &Monitor) -> Security {
    let s = &monitor.broker.security;
    let st = &monitor.broker.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Security {
        auth_successes: load(&s.auth_successes),
        auth_failures: AuthFailures {
            missing_credentials: load(&s.auth_missing),
            bad_credentials: load(&s.auth_bad_credentials),
            bad_jwt: load(&s.auth_bad_jwt),
            not_allowed_here: load(&s.auth_not_allowed_here),
            certificate_not_mapped: load(&s.auth_unmapped_certificate),
            service_refused: load(&s.auth_service_refused),
            service_unavailable: load(&s.auth_service_unavailable),
            throttled: load(&s.auth_throttled),
            timeout: load(&s.auth_timeouts),
        },
        permission_violations: s
            .violations()
            .into_iter()
            .map(|(user, direction, count)| Violation { user, direction, count })
            .collect(),
        tls_handshake_failures: load(&st.tls_handshake_failures),
        refused_max_connections: load(&st.refused_max_connections),
        refused_max_connections_per_ip: load(&st.refused_max_connections_per_ip),
        refused_proxy_headers: load(&st.refused_proxy_headers),
        refused_accept_rate: AcceptRefusals {
            client: load(&st.refused_accept_rate_client),
            websocket: load(&st.refused_accept_rate_websocket),
            leafnode: load(&st.refused_accept_rate_leafnode),
        },
        http_auth_failures: monitor.auth_failures.load(Ordering::Relaxed),
        leafnode_loops: load(&s.leafnode_loops),
    }
}

pub(super) fn varz(monitor: &Monitor) -> Result<Body, ApiError> {
    let broker = &monitor.broker;
    let opts = &broker.opts;
    let stats = &broker.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let now = SystemTime::now();
    let tls = monitor.tls.get();
    let cluster = monitor.cluster.as_ref();
    let http_host = opts.http.as_ref().map_or("", |h| h.host.as_str());
    let (http_port, https_port) = match monitor.http.get() {
        Some(h) if h.https => (0, h.addr.port()),
        Some(h) => (h.addr.port(), 0),
        None => (0, 0),
    };
    let requests = PATHS.iter().zip(&monitor.requests).map(|(p, n)| (*p, n.load(Ordering::Relaxed))).collect();
    json(&Varz {
        server_id: &broker.identity.id,
        server_name: &broker.identity.name,
        version: crate::proto::NATS_VERSION,
        warden_version: crate::proto::WARDEN_VERSION,
        proto: 1,
        host: &opts.host,
        port: broker.addr.port(),
        auth_required: monitor.gate.auth_required(),
        tls_required: tls.as_ref().is_some_and(|t| !t.allow_non_tls),
        tls_verify: tls.as_ref().is_some_and(|t| t.verify),
        connect_urls: cluster.map(|c| c.connect_urls()).unwrap_or_default(),
        max_connections: match opts.max_connections {
            0 => -1,
            n => i64::try_from(n).unwrap_or(i64::MAX),
        },
        max_subscriptions: opts.max_subscriptions,
        ping_interval: opts.ping_interval.as_nanos(),
        ping_max: opts.ping_max,
        http_host,
        http_port,
        https_port,
        auth_timeout: monitor.gate.timeout().as_secs_f64(),
        max_control_line: opts.max_control_line,
        max_payload: opts.max_payload,
        max_pending: opts.max_pending,
        tls_timeout: tls.as_ref().map_or(0.0, |t| t.timeout.as_secs_f64()),
        write_deadline: opts.write_deadline.as_nanos(),
        cluster: cluster.map(|c| ClusterInfo {
            name: c.name(),
            addr: c.listen_addr().ip().to_string(),
            cluster_port: c.listen_addr().port(),
            // Host and port only: a route URL may carry a password.
            urls: c.seed_routes(),
        }),
        gateway: GatewayInfo::of(monitor.gateways.as_ref()),
        websocket: WebsocketVarz::of(opts.websocket.as_ref()),
        start: rfc3339(broker.identity.started),
        now: rfc3339(now),
        uptime: uptime(now.duration_since(broker.identity.started).unwrap_or_default()),
        mem: process::resident_bytes(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu: monitor.cpu.percent(),
        connections: broker.client_count(),
        total_connections: load(&stats.total_connections),
        // As nats-server counts them: route connections, and the servers
        // they go to.
        routes: cluster.map_or(0, |c| c.routes().len()),
        remotes: cluster.map_or(0, |c| c.route_count()),
        leafnodes: monitor.leafs.as_ref().map_or(0, |l| l.leafs().len()),
        in_msgs: load(&stats.in_msgs),
        out_msgs: load(&stats.out_msgs),
        in_bytes: load(&stats.in_bytes),
        out_bytes: load(&stats.out_bytes),
        slow_consumers: load(&stats.slow_consumers),
        subscriptions: broker.subscription_count(),
        system_account: broker.accounts.system().map(|a| a.name.to_string()),
        accounts: broker.accounts.len(),
        http_req_stats: requests,
        config_load_time: rfc3339(broker.identity.started),
        tags: &opts.server_tags,
        metadata: &opts.server_metadata,
        warden: Warden { security: security(monitor), tls: tls_certificates(monitor), audit: audit_counts(monitor) },
    })
}
