//! `/metrics`: the same counters in the Prometheus text exposition format
//! (version 0.0.4), written by hand: one `# HELP` and `# TYPE` per family,
//! counters named `*_total`, label values escaped.

use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use super::varz::{audit_counts, security, tls_certificates};
use super::{process, Monitor, PATHS};
use crate::broker::Broker;

/// Accumulates the exposition text.
struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a metric family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape_label(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn render(monitor: &Monitor) -> String {
    let broker = &monitor.broker;
    let stats = &broker.stats;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut m = Exposition { out: String::with_capacity(4096) };

    m.family("warden_info", "gauge", "Server identity; the value is always 1.");
    m.sample(
        "warden_info",
        &[
            ("server_id", &broker.identity.id),
            ("server_name", &broker.identity.name),
            ("version", crate::proto::WARDEN_VERSION),
            ("nats_version", crate::proto::NATS_VERSION),
        ],
        1,
    );
    let start = broker.identity.started.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    m.single("warden_start_time_seconds", "gauge", "When the server started, in seconds since the Unix epoch.", start);
    m.single("warden_connections", "gauge", "Client connections open now.", broker.client_count());
    m.single(
        "warden_connections_total",
        "counter",
        "Client connections accepted since start.",
        load(&stats.total_connections),
    );
    let index = Broker::index_totals(&broker.accounts.all());
    m.single("warden_subscriptions", "gauge", "Subscriptions in the indexes now.", index.subscriptions);
    m.single("warden_accounts", "gauge", "Accounts now.", broker.accounts.len());
    let routes = monitor.cluster.as_ref().map_or(0, |c| c.route_count());
    m.single("warden_routes", "gauge", "Servers this one has routes to now.", routes);
    let connections = monitor.cluster.as_ref().map_or(0, |c| c.routes().len());
    m.single("warden_route_connections", "gauge", "Route connections now (several per pooling peer).", connections);
    m.single("warden_in_messages_total", "counter", "Messages received from clients.", load(&stats.in_msgs));
    m.single("warden_out_messages_total", "counter", "Messages delivered to clients.", load(&stats.out_msgs));
    m.single("warden_in_bytes_total", "counter", "Payload bytes received from clients.", load(&stats.in_bytes));
    m.single("warden_out_bytes_total", "counter", "Payload bytes delivered to clients.", load(&stats.out_bytes));
    m.single(
        "warden_slow_consumers_total",
        "counter",
        "Clients closed as slow consumers.",
        load(&stats.slow_consumers),
    );
    m.single(
        "warden_subscription_lookups_total",
        "counter",
        "Subscription lookups for published messages (cache hits and index walks).",
        index.cache_hits + index.matches,
    );
    m.single(
        "warden_subscription_cache_hits_total",
        "counter",
        "Lookups answered by a connection's match cache.",
        index.cache_hits,
    );

    let seconds = |nanos: u64| Duration::from_nanos(nanos).as_secs_f64();
    m.single(
        "warden_rate_held_seconds_total",
        "counter",
        "Time clients were not read because they were over a publish rate_limit, summed over clients.",
        seconds(load(&stats.rate_held_nanos)),
    );
    m.family(
        "warden_account_rate_held_seconds_total",
        "counter",
        "Time an account's rate_limit held its connections on this server back, by account.",
    );
    for account in broker.accounts.all() {
        if let Some(rate) = &account.state().rate {
            m.sample(
                "warden_account_rate_held_seconds_total",
                &[("account", &account.name)],
                rate.held().as_secs_f64(),
            );
        }
    }

    let sec = security(monitor);
    m.single("warden_auth_successes_total", "counter", "Successful client logins.", sec.auth_successes);
    m.family("warden_auth_failures_total", "counter", "Refused client logins, by reason.");
    let failures = &sec.auth_failures;
    for (reason, n) in [
        ("missing_credentials", failures.missing_credentials),
        ("bad_credentials", failures.bad_credentials),
        ("bad_jwt", failures.bad_jwt),
        ("not_allowed_here", failures.not_allowed_here),
        ("certificate_not_mapped", failures.certificate_not_mapped),
        ("service_refused", failures.service_refused),
        ("service_unavailable", failures.service_unavailable),
        ("throttled", failures.throttled),
        ("timeout", failures.timeout),
    ] {
        m.sample("warden_auth_failures_total", &[("reason", reason)], n);
    }
    m.family(
        "warden_permission_violations_total",
        "counter",
        "Refused publishes and subscribes, by user (empty: no user) and direction.",
    );
    for v in &sec.permission_violations {
        m.sample("warden_permission_violations_total", &[("user", &v.user), ("direction", v.direction)], v.count);
    }
    m.single(
        "warden_tls_handshake_failures_total",
        "counter",
        "Client TLS handshakes that failed or timed out.",
        sec.tls_handshake_failures,
    );
    let tls = tls_certificates(monitor);
    m.family(
        "warden_tls_certificate_not_after_seconds",
        "gauge",
        "When each certificate a TLS listener presents expires, in seconds since the Unix epoch.",
    );
    for c in &tls.certificates {
        m.sample(
            "warden_tls_certificate_not_after_seconds",
            &[("listener", c.listener), ("subject", &c.subject), ("serial", &c.serial)],
            c.not_after_unix,
        );
    }
    m.single("warden_tls_rotations_total", "counter", "Certificates rotated from changed files.", tls.rotations);
    m.single(
        "warden_tls_rotation_failures_total",
        "counter",
        "Changed certificate files that could not be used; the old certificate stayed.",
        tls.rotation_failures,
    );
    if let Some(audit) = audit_counts(monitor) {
        m.single("warden_audit_records_total", "counter", "Audit records written.", audit.written);
        m.single(
            "warden_audit_dropped_total",
            "counter",
            "Audit records lost because the trail fell behind.",
            audit.dropped,
        );
        m.single(
            "warden_audit_write_errors_total",
            "counter",
            "Audit records the audit file could not take.",
            audit.write_errors,
        );
    }
    m.family("warden_connections_refused_total", "counter", "Connections refused by a limit, by limit.");
    m.sample("warden_connections_refused_total", &[("reason", "max_connections")], sec.refused_max_connections);
    m.sample(
        "warden_connections_refused_total",
        &[("reason", "max_connections_per_ip")],
        sec.refused_max_connections_per_ip,
    );
    m.sample("warden_connections_refused_total", &[("reason", "proxy_header")], sec.refused_proxy_headers);
    m.family(
        "warden_accept_rate_refused_total",
        "counter",
        "Connections closed at accept by the listener's accept_rate, by listener.",
    );
    let accept = &sec.refused_accept_rate;
    for (listener, n) in [("client", accept.client), ("websocket", accept.websocket), ("leafnode", accept.leafnode)] {
        m.sample("warden_accept_rate_refused_total", &[("listener", listener)], n);
    }
    m.single(
        "warden_http_auth_failures_total",
        "counter",
        "Monitoring requests refused for missing or wrong credentials.",
        sec.http_auth_failures,
    );
    m.single(
        "warden_leafnode_loops_total",
        "counter",
        "Leaf connections closed because this server's loop subject came back.",
        sec.leafnode_loops,
    );
    m.family("warden_http_requests_total", "counter", "Monitoring requests, by path.");
    for (path, n) in PATHS.iter().zip(&monitor.requests) {
        m.sample("warden_http_requests_total", &[("path", path)], load(n));
    }

    m.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", process::resident_bytes());
    m.single(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
        process::cpu_seconds(),
    );
    m.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        let mut m = Exposition { out: String::new() };
        m.family("t_total", "counter", "Test.");
        m.sample("t_total", &[("user", "bo\"b"), ("direction", "publish")], 3);
        assert_eq!(
            m.out,
            "# HELP t_total Test.\n# TYPE t_total counter\nt_total{user=\"bo\\\"b\",direction=\"publish\"} 3\n"
        );
    }
}
