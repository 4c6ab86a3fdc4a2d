//! Where each restart-only option lands in [`Options`]: for a reload of
//! options from code, whether the running and the new options agree on it.
//!
//! Which options are restart-only is the schema's to say (the tables'
//! `Reload::Restart` markings, walked by `restart_only_paths`); this table
//! only says how to compare each. Its tests fail when a restart-only
//! option has no comparison here, when one here is no longer restart-only
//! (it would refuse a reloadable change), and when a change of an option
//! written in a config file is not seen here (each has a sample).
//!
//! A block that is absent compares as the block's defaults where the block
//! has them (`leafnodes`), so adding `leafnodes { remotes }` is named
//! `leafnodes.remotes`, not its listener. Where several keys set one field
//! (`http`, `http_port`, `https`, `https_port`), each compares it and the
//! first in table order names a change; `listen` is left to `host` and
//! `port`, which name it more closely.

use std::sync::LazyLock;

use crate::config::options::{LeafnodeOptions, Options, WebsocketOptions};

/// Whether two configurations agree on one option.
type Same = fn(&Options, &Options) -> bool;

/// The [`Same`] that compares what `$read` takes from each configuration
/// (`$o` standing for it).
macro_rules! same {
    ($o:ident => $read:expr) => {{
        fn compare(a: &Options, b: &Options) -> bool {
            fn read($o: &Options) -> impl PartialEq + '_ {
                $read
            }
            read(a) == read(b)
        }
        compare as Same
    }};
}

/// The comparison for the restart-only option at `path`, if it has one.
pub(super) fn same(path: &str) -> Option<Same> {
    FIELDS.iter().find(|(p, _)| *p == path).map(|(_, same)| *same)
}

/// An option that is checked (and maybe warned about) but sets nothing in
/// [`Options`]: `feature_flags`, `write_timeout` (`default` and `close`
/// both close), `prof_port` (only 0 is accepted).
fn unstored(_: &Options, _: &Options) -> bool {
    true
}

/// An option whose fields other options compare: `listen` sets what `host`
/// and `port` do, and a change is named by the one that differs.
fn elsewhere(_: &Options, _: &Options) -> bool {
    true
}

/// The leafnodes block, or its defaults when there is none.
fn leafnodes(o: &Options) -> &LeafnodeOptions {
    static NONE: LazyLock<LeafnodeOptions> = LazyLock::new(LeafnodeOptions::default);
    o.leafnodes.as_ref().unwrap_or(&NONE)
}

/// The websocket block: it always has a listener, so its presence is
/// compared with each of its options.
fn websocket(o: &Options) -> Option<&WebsocketOptions> {
    o.websocket.as_ref()
}

/// `websocket.host` where both have the block; a block added or removed is
/// named by `websocket.port`, which comes next.
fn websocket_host(a: &Options, b: &Options) -> bool {
    match (websocket(a), websocket(b)) {
        (Some(a), Some(b)) => a.host == b.host,
        _ => true,
    }
}

/// Each restart-only option by its path (as `RestartOnly` names it), in
/// table order.
static FIELDS: &[(&str, Same)] = &[
    ("listen", elsewhere),
    ("host", same!(o => &o.host)),
    ("port", same!(o => o.port)),
    ("server_name", same!(o => &o.server_name)),
    ("server_tags", same!(o => &o.server_tags)),
    ("server_metadata", same!(o => &o.server_metadata)),
    ("max_connections", same!(o => o.max_connections)),
    ("max_connections_per_ip", same!(o => o.max_connections_per_ip)),
    ("accept_rate", same!(o => o.accept_rate)),
    ("proxy_protocol", same!(o => o.proxy_protocol)),
    ("trusted_proxies", same!(o => &o.trusted_proxies)),
    ("max_subscriptions", same!(o => o.max_subscriptions)),
    ("max_payload", same!(o => o.max_payload)),
    ("max_pending", same!(o => o.max_pending)),
    ("max_control_line", same!(o => o.max_control_line)),
    ("ping_interval", same!(o => o.ping_interval)),
    ("ping_max", same!(o => o.ping_max)),
    ("write_deadline", same!(o => o.write_deadline)),
    ("feature_flags", unstored),
    ("write_timeout", unstored),
    ("lame_duck_duration", same!(o => o.lame_duck_duration)),
    ("lame_duck_grace_period", same!(o => o.lame_duck_grace_period)),
    ("tls_watch_interval", same!(o => o.tls_watch_interval)),
    ("tls_expiry_warning", same!(o => o.tls_expiry_warning)),
    ("max_traced_msg_len", same!(o => o.max_traced_msg_len)),
    ("logfile_size_limit", same!(o => o.log_size_limit)),
    ("logfile_max_num", same!(o => o.log_max_num)),
    ("log_format", same!(o => o.log_json)),
    ("logtime", same!(o => o.logtime)),
    ("log_file", same!(o => &o.log_file)),
    ("prof_port", unstored),
    ("syslog", same!(o => o.syslog)),
    ("remote_syslog", same!(o => &o.remote_syslog)),
    ("audit", same!(o => &o.audit)),
    ("pid_file", same!(o => &o.pid_file)),
    ("ports_file_dir", same!(o => &o.ports_file_dir)),
    ("http", same!(o => &o.http)),
    ("http_base_path", same!(o => &o.http_base_path)),
    ("http_port", same!(o => &o.http)),
    ("https", same!(o => &o.http)),
    ("https_port", same!(o => &o.http)),
    ("http_authorization", same!(o => &o.http_authorization)),
    ("cluster", same!(o => &o.cluster)),
    ("gateway", same!(o => &o.gateway)),
    ("check_reply_subjects", same!(o => o.check_reply_subjects)),
    ("system_account", same!(o => &o.system_account)),
    ("no_system_account", same!(o => &o.system_account)),
    // Live clients re-check their user at a reload, not how their
    // certificate was mapped: turning strict mapping on would keep the
    // ones it would refuse.
    ("tls.spiffe_trust_domain", same!(o => o.tls.as_ref().and_then(|t| t.spiffe_trust_domain.as_ref()))),
    // Read into the client listener's accept rate.
    ("tls.connection_rate_limit", same!(o => o.accept_rate)),
    ("leafnodes.listen", elsewhere),
    ("leafnodes.port", same!(o => (leafnodes(o).accept, leafnodes(o).port))),
    ("leafnodes.host", same!(o => &leafnodes(o).host)),
    ("leafnodes.advertise", same!(o => &leafnodes(o).advertise)),
    ("leafnodes.no_advertise", same!(o => leafnodes(o).no_advertise)),
    ("leafnodes.tls", same!(o => &leafnodes(o).tls)),
    ("leafnodes.auth_timeout", same!(o => leafnodes(o).auth_timeout)),
    ("leafnodes.remotes", same!(o => &leafnodes(o).remotes)),
    ("leafnodes.min_version", same!(o => leafnodes(o).min_version)),
    ("leafnodes.isolate_leafnode_interest", same!(o => leafnodes(o).isolate_leafnode_interest)),
    ("leafnodes.insecure_allow_unauthenticated_leafnodes", same!(o => leafnodes(o).allow_unauthenticated)),
    ("leafnodes.accept_rate", same!(o => leafnodes(o).accept_rate)),
    ("leafnodes.proxy_protocol", same!(o => leafnodes(o).proxy_protocol)),
    ("leafnodes.trusted_proxies", same!(o => &leafnodes(o).trusted_proxies)),
    ("leafnodes.authorization.timeout", same!(o => leafnodes(o).authorization.as_ref().and_then(|a| a.timeout))),
    ("websocket.listen", elsewhere),
    ("websocket.host", websocket_host),
    ("websocket.port", same!(o => websocket(o).map(|w| w.port))),
    ("websocket.no_tls", same!(o => websocket(o).map(|w| w.tls.is_none()))),
    ("websocket.tls", same!(o => websocket(o).map(|w| &w.tls))),
    ("websocket.same_origin", same!(o => websocket(o).map(|w| w.same_origin))),
    ("websocket.allowed_origins", same!(o => websocket(o).map(|w| &w.allowed_origins))),
    ("websocket.handshake_timeout", same!(o => websocket(o).map(|w| w.handshake_timeout))),
    ("websocket.compression", same!(o => websocket(o).map(|w| w.compression))),
    ("websocket.jwt_cookie", same!(o => websocket(o).map(|w| &w.jwt_cookie))),
    ("websocket.trusted_proxies", same!(o => websocket(o).map(|w| &w.trusted_proxies))),
    ("websocket.proxy_protocol", same!(o => websocket(o).map(|w| w.proxy_protocol))),
    ("websocket.accept_rate", same!(o => websocket(o).map(|w| w.accept_rate))),
    (
        "websocket.authorization.timeout",
        same!(o => websocket(o).and_then(|w| w.authorization.as_ref()).and_then(|a| a.timeout)),
    ),
    ("authorization.timeout", same!(o => o.authorization.as_ref().and_then(|a| a.timeout))),
    ("authorization.failure_delay_max", same!(o => o.authorization.as_ref().and_then(|a| a.failure_delay_max))),
];

#[cfg(test)]
mod tests;
