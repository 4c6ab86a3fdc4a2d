//! From the value tree to one validated [`Options`], strictly: option names
//! are case-insensitive with nats-server's aliases, every key must mean
//! something, every value has the right type and range, and contradictory
//! settings are refused. Nothing falls back to a default on a mistake.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::accept_rate;
use super::account_rules::{check_accounts, Location};
use super::accounts;
use super::auth;
use super::error::{conflict, invalid, ConfigError, ErrorKind};
use super::operator;
use super::options::{Options, TlsOptions};
use super::parser::{self, EnvLookup};
use super::restart::RestartOnly;
use super::schema::{Block, Found, Opt, Reload, Step::Check, Step::Key, Table, Ty};
use super::section::{self, Bare};
use super::syslog::SyslogTarget;
use super::value::{Entry, Map, Value};

mod cluster;
mod gateway;
mod leafnodes;
mod monitor;
mod tls;
mod tls_names;
pub(crate) use monitor::HTTP_AND_HTTPS;
#[cfg(test)]
pub(crate) use tls_names::offered as offered_tls_names;

use monitor::http_authorization;
/// The `tls {}` table, for the reference's `websocket { tls {} }`, which
/// `websocket.rs` reads through the function it is handed.
pub(super) use tls::TLS;

/// A loaded config: the options, and warnings to log at start-up (plain-text
/// passwords, bare numbers read as seconds). Warnings never contain secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated options.
    pub options: Options,
    /// Things that are accepted but should be fixed, each `file:line:col: ...`.
    pub warnings: Vec<String>,
    /// The options set that a reload cannot apply, as written: a reload
    /// compares them with the running config's.
    pub restart_only: RestartOnly,
}

/// Reads, parses and validates the config file at `path` and every file it
/// includes; `$VARIABLES` not defined in the config come from the process
/// environment.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    load_file_with_env(path, &parser::process_env)
}

/// [`load_file`] with a given environment.
pub fn load_file_with_env(path: &Path, env: EnvLookup<'_>) -> Result<Loaded, ConfigError> {
    let map = parser::parse_file_with_env(path, env)?;
    build(&map, &path.display().to_string())
}

/// Parses and validates config text; `origin` names it in errors and its
/// directory is where relative includes start.
pub fn load_str(text: &str, origin: &str) -> Result<Loaded, ConfigError> {
    load_str_with_env(text, origin, &parser::process_env)
}

/// [`load_str`] with a given environment.
pub fn load_str_with_env(text: &str, origin: &str, env: EnvLookup<'_>) -> Result<Loaded, ConfigError> {
    let map = parser::parse_bytes_with_env(text.as_bytes(), origin, env)?;
    build(&map, origin)
}

/// nats-server's top-level options that warden does not implement.
const UNSUPPORTED_TOP: &[&str] = &[
    "client_advertise",
    "max_sub_tokens",
    "no_header_support",
    "disable_sublist_cache",
    "no_sublist_cache",
    "max_closed_clients",
    "jetstream",
    "mqtt",
    "resolver_tls",
    "resolver_pinned_accounts",
    "trusted",
    "trusted_keys",
    "ocsp",
    "default_js_domain",
];

/// Why `prof_port` (and `--profile`) is refused.
pub(crate) const PROF_PORT_REFUSED: &str = "prof_port is refused: nats-server serves Go's pprof profiler there to anyone, without authentication (memory, goroutines, command line), and warden has no Go profiler; remove it or set it to 0 (see SECURITY.md, \"Profiling port\")";

/// Why a cluster without route authentication is refused, and the ways out.
pub const UNAUTHENTICATED_ROUTES: &str = "cluster has no route authentication: anyone who reaches the cluster port could read and inject every message. Add `authorization { user, password }` or `tls { cert_file, key_file, ca_file }` (peers verified both ways) to the cluster block, or, on a trusted loopback-only network, `insecure_allow_unauthenticated_routes: true`";

/// Whether a route or leaf node listener on `host` may go without
/// authentication of its own because nothing here authenticates: no client
/// needs credentials (no users, token, nkeys, callout or operator mode) and
/// the listener binds a loopback address, so only this machine reaches it.
/// Such a listener still reaches more than the client port does (a route
/// carries every account, the system account's requests included), which
/// is why it must be loopback; the server warns at every start.
pub fn open_loopback_listener(o: &Options, host: &str) -> bool {
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback && !leafnodes::clients_authenticate(o)
}

/// The warning for routes admitted by [`open_loopback_listener`].
pub const OPEN_LOOPBACK_ROUTES: &str = "cluster routes are not authenticated: allowed because no client needs credentials and the route listener is on loopback; anyone on this machine can join the cluster and read or inject every message of every account. Add cluster authorization before the cluster leaves this machine";

/// The warning for leaf nodes admitted by [`open_loopback_listener`].
pub const OPEN_LOOPBACK_LEAFNODES: &str = "leaf nodes need no credentials: allowed because no client needs credentials and the leafnode listener is on loopback; anyone on this machine can connect as a leaf node to the global account";

/// The host a listener binds when the config names only a port.
const LOOPBACK: &str = "127.0.0.1";
/// nats-server's lower bound for `lame_duck_duration`.
const MIN_LAME_DUCK: Duration = Duration::from_secs(30);

/// What the top level is read into: the options, and what its later steps
/// need of the earlier ones.
struct Top {
    o: Options,
    warnings: Vec<String>,
    /// Where each account's parts stand, for errors `check_accounts` finds.
    positions: accounts::Positions,
    /// The config's name, for errors that belong to no entry.
    origin: String,
    /// `tls { connection_rate_limit }`, for `accept_rate`.
    tls_connection_rate_limit: u32,
}

/// Reads the top-level map into `Options`.
pub(crate) fn build(map: &Map, origin: &str) -> Result<Loaded, ConfigError> {
    let mut top = Top {
        o: Options::default(),
        warnings: Vec::new(),
        positions: accounts::Positions::default(),
        origin: origin.to_owned(),
        tls_connection_rate_limit: 0,
    };
    TOP.read("the top level", map, &mut top)?;
    Ok(Loaded { options: top.o, warnings: top.warnings, restart_only: RestartOnly::of(map) })
}

/// The top level's table, where the reference starts.
pub(super) fn table() -> &'static dyn Table {
    &TOP
}

/// The top level: every option and section, in the order they are read
/// (`tls` before `allow_non_tls` and `accounts`, which depend on it;
/// `accounts` before `authorization`; the users before `no_auth_user`),
/// with the checks across them. A new section is one line here.
static TOP: Block<Top> = Block {
    unsupported: UNSUPPORTED_TOP,
    steps: &[
        Key(
            &Opt::new(&["listen"], Ty::HostPort, Reload::Restart)
                .means("Where clients connect, instead of `host` and `port`")
                .default("127.0.0.1:4222")
                .differs("nats-server listens on 0.0.0.0 unless told; warden on loopback"),
            |e, t, f| {
                if let Some(other) = f.get("host").or(f.get("port")) {
                    return Err(conflict(other, "`listen` already sets the client host and port; remove one of them"));
                }
                (t.o.host, t.o.port) = section::host_port(&e.value, "listen", &t.o.host)?;
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["host", "net"], Ty::String, Reload::Restart)
                .means("The address the client listener binds")
                .default("127.0.0.1")
                .differs("nats-server's default is 0.0.0.0"),
            |e, t, _| section::word(&e.value, "host").map(|h| t.o.host = h.to_owned()),
        ),
        Key(&Opt::new(&["port"], Ty::Port, Reload::Restart).means("The client port").default("4222"), |e, t, _| {
            section::port(&e.value, "port").map(|p| t.o.port = p)
        }),
        Key(
            &Opt::new(&["server_name"], Ty::String, Reload::Restart)
                .means("The server's name in INFO, monitoring and to cluster peers")
                .default("the server id"),
            |e, t, _| section::word(&e.value, "server_name").map(|n| t.o.server_name = Some(n.to_owned())),
        ),
        Key(
            &Opt::new(&["server_tags"], Ty::Strings, Reload::Restart)
                .means(
                    "Labels (`az:1`, unquoted or quoted; trimmed, lower-cased) shown in `/varz` and in \
                    every `$SYS` message's server info; `$SYS.REQ.SERVER.PING.*` requests with `tags` reach \
                    only servers holding all of them",
                )
                .default("none"),
            |e, t, _| server_tags(&e.value).map(|tags| t.o.server_tags = tags),
        ),
        Key(
            &Opt::new(&["server_metadata"], Ty::Map("name: string"), Reload::Restart)
                .means("Free-form strings shown in `/varz` and in every `$SYS` message's server info (`metadata`)")
                .default("none"),
            |e, t, _| server_metadata(&e.value).map(|m| t.o.server_metadata = m),
        ),
        Key(
            &Opt::new(&["max_connections", "max_conn"], Ty::Integer, Reload::Restart)
                .means(
                    "Most client connections at once; past it a client gets `-ERR 'maximum \
                    connections exceeded'`; 0 (or less) refuses every client, as nats-server",
                )
                .default("65536"),
            |e, t, _| {
                // nats-server reads 0 and below as "refuse every client"
                // (its `-1` in `/varz`).
                let n = section::integer(&e.value, "max_connections")?;
                t.o.max_connections = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["max_connections_per_ip"], Ty::Integer, Reload::Restart)
                .means("Most live connections one peer address (an IPv6 /64 counts as one) may hold; 0 = no limit")
                .default("0")
                .differs("warden only"),
            |e, t, _| section::count(&e.value, "max_connections_per_ip", 0).map(|n| t.o.max_connections_per_ip = n),
        ),
        Key(
            &Opt::new(&["accept_rate"], Ty::Block(&accept_rate::ACCEPT_RATE), Reload::Restart)
                .means(
                    "New connections a second the client listener keeps, in all and per peer address; \
                    the excess is closed at accept, before TLS and INFO",
                )
                .default("no limit")
                .differs("warden only; nats-server has `tls { connection_rate_limit }`, which warden maps onto it"),
            |e, t, _| accept_rate::read(&e.value, "accept_rate").map(|r| t.o.accept_rate = r),
        ),
        Key(
            &Opt::new(&["proxy_protocol"], Ty::Bool, Reload::Restart)
                .means(
                    "Connections from `trusted_proxies` start with a PROXY protocol header (v1 or v2, \
                    as HAProxy's `send-proxy`/`send-proxy-v2`) naming the client, whose address every \
                    per-address limit, the failure throttle, JWT `src`, `/connz` and the events then see; \
                    from them a connection without one is closed, and a header from anyone else is refused",
                )
                .default("false")
                .differs(
                    "nats-server 2.14 believes a header from any address and does not require one; \
                    warden needs `trusted_proxies` and requires the header from them",
                ),
            |e, t, _| section::boolean(&e.value, "proxy_protocol").map(|b| t.o.proxy_protocol = b),
        ),
        Key(
            &Opt::new(&["trusted_proxies"], Ty::Strings, Reload::Restart)
                .means("Addresses or CIDRs of the load balancers whose PROXY protocol header is believed")
                .default("none")
                .differs("warden only"),
            |e, t, _| super::websocket::trusted_proxies(&e.value).map(|p| t.o.trusted_proxies = p),
        ),
        Check(|t, f| match (f.get("proxy_protocol"), f.get("trusted_proxies")) {
            (Some(e), _) if t.o.proxy_protocol && t.o.trusted_proxies.is_empty() => Err(invalid(
                &e.value,
                "proxy_protocol needs `trusted_proxies: [CIDR, ...]`, the load balancers allowed to name \
                a client's address (from anyone else a header would let a client choose its own)",
            )),
            (_, Some(e)) if !t.o.proxy_protocol => {
                Err(invalid(&e.value, "trusted_proxies at the top level is used only with `proxy_protocol: true`"))
            }
            _ => Ok(()),
        }),
        Key(
            &Opt::new(&["max_subscriptions", "max_subs"], Ty::Integer, Reload::Restart)
                .means("Most subscriptions per connection; 0 = no limit")
                .default("16384")
                .differs("nats-server's default is no limit"),
            |e, t, _| section::count(&e.value, "max_subscriptions", 0).map(|n| t.o.max_subscriptions = n),
        ),
        Key(
            &Opt::new(&["max_payload"], Ty::Size, Reload::Restart)
                .means("Largest message payload a client may publish; at most `max_pending`")
                .default("1MB"),
            |e, t, _| section::count(&e.value, "max_payload", 1).map(|n| t.o.max_payload = n),
        ),
        Key(
            &Opt::new(&["max_pending"], Ty::Size, Reload::Restart)
                .means("Bytes queued to one client before it is a slow consumer and is closed")
                .default("64MB"),
            |e, t, _| section::count(&e.value, "max_pending", 1).map(|n| t.o.max_pending = n),
        ),
        Key(
            &Opt::new(&["max_control_line"], Ty::Size, Reload::Restart)
                .means("Longest protocol line (`PUB`, `SUB`, ...) a client may send")
                .default("4KB"),
            |e, t, _| section::count(&e.value, "max_control_line", 1).map(|n| t.o.max_control_line = n),
        ),
        Key(
            &Opt::new(&["ping_interval"], Ty::Seconds, Reload::Restart)
                .means("How often the server PINGs a client")
                .default("2m"),
            |e, t, _| positive_duration(e, Bare::Seconds, &mut t.warnings).map(|d| t.o.ping_interval = d),
        ),
        Key(
            &Opt::new(&["ping_max"], Ty::Integer, Reload::Restart)
                .means("Unanswered PINGs before the connection is closed as stale")
                .default("2"),
            |e, t, _| {
                let n = section::integer_in(&e.value, "ping_max", 1, i64::from(u32::MAX))?;
                t.o.ping_max = u32::try_from(n).unwrap_or(u32::MAX);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["write_deadline"], Ty::Seconds, Reload::Restart)
                .means("A write to a client that takes longer makes it a slow consumer")
                .default("10s"),
            |e, t, _| positive_duration(e, Bare::Seconds, &mut t.warnings).map(|d| t.o.write_deadline = d),
        ),
        Key(
            &Opt::new(&["feature_flags"], Ty::Map("flag: true or false"), Reload::Restart)
                .means("Opt in or out of nats-server behaviour changes by name; every 2.15 flag is about JetStream")
                .default("none")
                .differs("warden has no feature flags: each one is accepted with a warning that it changes nothing"),
            |e, t, _| feature_flags(e, &mut t.warnings),
        ),
        Key(
            &Opt::new(&["connect_error_reports"], Ty::Integer, Reload::NoEffect)
                .means("How often (in attempts) nats-server logs a route or leaf that keeps failing to connect")
                .default("3600")
                .differs("Accepted; warden logs every failed route dial at debug level and a give-up once"),
            |e, _, _| section::integer_in(&e.value, "connect_error_reports", 0, i64::MAX).map(|_| ()),
        ),
        Key(
            &Opt::new(&["reconnect_error_reports"], Ty::Integer, Reload::NoEffect)
                .means("How often (in attempts) nats-server logs a lost route or leaf that fails to reconnect")
                .default("1")
                .differs("Accepted; as `connect_error_reports`"),
            |e, _, _| section::integer_in(&e.value, "reconnect_error_reports", 0, i64::MAX).map(|_| ()),
        ),
        Key(
            &Opt::new(&["write_timeout"], Ty::Text("`default` or `close`"), Reload::Restart)
                .means(
                    "What a client write that misses `write_deadline` does: `close` (and `default`, which \
                    is `close` for clients) closes the connection as a slow consumer",
                )
                .default("default")
                .differs("`retry` (keep a slow client that made progress) is refused: warden always closes it"),
            |e, _, _| write_timeout(&e.value, "write_timeout", "clients"),
        ),
        Key(
            &Opt::new(&["lame_duck_duration"], Ty::Duration, Reload::Restart)
                .means(
                    "Lame-duck mode (SIGTERM) closes the remaining clients spread over this time; at \
                    least 30s",
                )
                .default("2m"),
            |e, t, _| {
                t.o.lame_duck_duration = positive_duration(e, Bare::No, &mut t.warnings)?;
                if t.o.lame_duck_duration < MIN_LAME_DUCK {
                    return Err(invalid(&e.value, "lame_duck_duration must be at least 30 seconds"));
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["lame_duck_grace_period"], Ty::Duration, Reload::Restart)
                .means(
                    "How long lame-duck mode waits before it starts closing clients; less than \
                    `lame_duck_duration`",
                )
                .default("10s"),
            |e, t, _| {
                section::duration(&e.value, "lame_duck_grace_period", Bare::No)
                    .map(|(d, _)| t.o.lame_duck_grace_period = d)
            },
        ),
        Check(|t, f| match f.get("lame_duck_grace_period").or(f.get("lame_duck_duration")) {
            Some(e) if t.o.lame_duck_grace_period >= t.o.lame_duck_duration => {
                Err(invalid(&e.value, "lame_duck_grace_period must be shorter than lame_duck_duration"))
            }
            _ => Ok(()),
        }),
        Key(
            &Opt::new(&["tls_watch_interval"], Ty::Duration, Reload::Restart)
                .means(
                    "How often every TLS listener's certificate, key and CA files are looked at; changed files \
                    are loaded and put in force without a restart (a file that cannot be used keeps the old \
                    certificate); 0 turns it off",
                )
                .default("5s")
                .differs("warden only: nats-server re-reads certificates only on a reload"),
            |e, t, _| {
                section::duration(&e.value, "tls_watch_interval", Bare::No).map(|(d, _)| t.o.tls_watch_interval = d)
            },
        ),
        Key(
            &Opt::new(&["tls_expiry_warning"], Ty::Duration, Reload::Restart)
                .means("A listener's certificate that expires within this is warned about at start and daily")
                .default("720h")
                .differs("warden only"),
            |e, t, _| {
                section::duration(&e.value, "tls_expiry_warning", Bare::No).map(|(d, _)| t.o.tls_expiry_warning = d)
            },
        ),
        Key(
            &Opt::new(&["debug"], Ty::Bool, Reload::Yes).means("Log debug messages").default("false"),
            |e, t, _| section::boolean(&e.value, "debug").map(|b| t.o.debug = b),
        ),
        Key(
            &Opt::new(&["trace"], Ty::Bool, Reload::Yes)
                .means(
                    "Log the protocol trace: every op in and out, secrets redacted; a reload turns it on or off \
                    for the live connections too",
                )
                .default("false"),
            |e, t, _| section::boolean(&e.value, "trace").map(|b| t.o.trace = b),
        ),
        Key(
            &Opt::new(&["trace_verbose"], Ty::Bool, Reload::Yes)
                .means("Trace the system account's connections too; implies `trace`")
                .default("false"),
            |e, t, _| {
                section::boolean(&e.value, "trace_verbose")
                    .map(|b| (t.o.trace, t.o.trace_verbose) = (t.o.trace || b, b))
            },
        ),
        Key(
            &Opt::new(&["max_traced_msg_len"], Ty::Integer, Reload::Restart)
                .means("Payload bytes a trace line shows; 0 = all")
                .default("0"),
            |e, t, _| section::count(&e.value, "max_traced_msg_len", 0).map(|n| t.o.max_traced_msg_len = n),
        ),
        Key(
            &Opt::new(&["logfile_size_limit", "log_size_limit"], Ty::Size, Reload::Restart)
                .means("The log file rotates past this many bytes; 0 = never")
                .default("0"),
            |e, t, _| section::count(&e.value, "logfile_size_limit", 0).map(|n| t.o.log_size_limit = n as u64),
        ),
        Key(
            &Opt::new(&["logfile_max_num", "log_max_num"], Ty::Integer, Reload::Restart)
                .means("Log files kept on rotation, the current one included; 0 = all")
                .default("0"),
            |e, t, _| section::count(&e.value, "logfile_max_num", 0).map(|n| t.o.log_max_num = n),
        ),
        Key(
            &Opt::new(&["log_format"], Ty::Text("`text` or `json`"), Reload::Restart)
                .means("`json` writes one JSON object a line, for log shippers")
                .default("text")
                .differs("warden only"),
            |e, t, _| match section::word(&e.value, "log_format")?.to_ascii_lowercase().as_str() {
                "json" => {
                    t.o.log_json = true;
                    Ok(())
                }
                "text" => {
                    t.o.log_json = false;
                    Ok(())
                }
                _ => Err(crate::config::error::invalid(&e.value, "log_format must be text or json")),
            },
        ),
        Key(
            &Opt::new(&["logtime"], Ty::Bool, Reload::Restart).means("Timestamps on log lines").default("true"),
            |e, t, _| section::boolean(&e.value, "logtime").map(|b| t.o.logtime = b),
        ),
        Key(
            &Opt::new(&["log_file", "logfile"], Ty::Path, Reload::Restart)
                .means("Log to this file (SIGUSR1 reopens it)")
                .default("standard error"),
            |e, t, _| path_string(&e.value, "log_file").map(|p| t.o.log_file = Some(PathBuf::from(p))),
        ),
        Key(
            &Opt::new(&["prof_port"], Ty::Port, Reload::Restart)
                .means("nats-server serves Go's pprof profiler on this port, without authentication")
                .default("0 (off)")
                .differs("Refused unless 0: warden has no Go profiler, and an unauthenticated endpoint exposing process internals is not one it would serve (SECURITY.md, \"Profiling port\")"),
            |e, _, _| match section::integer(&e.value, "prof_port")? {
                0 => Ok(()),
                _ => Err(invalid(&e.value, PROF_PORT_REFUSED)),
            },
        ),
        Key(
            &Opt::new(&["syslog"], Ty::Bool, Reload::Restart)
                .means("Log to the local syslog daemon (/dev/log, facility daemon), unless `log_file` or `remote_syslog` is set")
                .default("false")
                .differs("Never blocks the server: lines past a bounded queue are dropped, counted and reported"),
            |e, t, _| section::boolean(&e.value, "syslog").map(|b| t.o.syslog = b),
        ),
        Key(
            &Opt::new(&["remote_syslog"], Ty::Text("`udp://host:port`, `tcp://host:port` or `unix:///path`"), Reload::Restart)
                .means("Log to this syslog daemon (RFC 3164 lines, as nats-server sends), unless `log_file` is set")
                .differs("Never blocks the server: lines past a bounded queue are dropped, counted and reported"),
            |e, t, _| {
                let url = section::string(&e.value, "remote_syslog")?;
                let target = SyslogTarget::parse_remote(url).map_err(|why| invalid(&e.value, why))?;
                t.o.remote_syslog = Some(target);
                Ok(())
            },
        ),
        // nats-server logs to one place and says nothing about the others.
        Check(|t, f| {
            let log_file = t.o.log_file.is_some();
            let ignored = [
                ("syslog", t.o.syslog && (log_file || t.o.remote_syslog.is_some())),
                ("remote_syslog", t.o.remote_syslog.is_some() && log_file),
            ];
            for (key, e) in ignored.into_iter().filter(|(_, ignored)| *ignored).filter_map(|(k, _)| Some((k, f.get(k)?))) {
                let by = if log_file { "log_file" } else { "remote_syslog" };
                t.warnings.push(format!("{}: {key} is ignored: the log goes to {by}", e.key_pos));
            }
            Ok(())
        }),
        Key(
            &Opt::new(&["audit"], Ty::Block(&crate::config::audit::AUDIT), Reload::Restart)
                .means(
                    "The audit trail: logins, refused logins, permission denials, admin actions, reloads, \
                    certificate rotations, rate-limit holds, lame duck and shutdown, as JSON lines \
                    (see SECURITY.md, \"Audit trail\")",
                )
                .default("off")
                .differs("warden only"),
            |e, t, _| crate::config::audit::read(&e.value).map(|a| t.o.audit = Some(a)),
        ),
        Key(
            &Opt::new(&["pid_file", "pidfile"], Ty::Path, Reload::Restart)
                .means("Holds the process id while the server runs (what `--signal CMD=FILE` reads)"),
            |e, t, _| path_string(&e.value, "pid_file").map(|p| t.o.pid_file = Some(PathBuf::from(p))),
        ),
        Key(
            &Opt::new(&["ports_file_dir"], Ty::Path, Reload::Restart)
                .means("Directory where `<executable>_<pid>.ports` lists the bound URLs while the server runs"),
            |e, t, _| path_string(&e.value, "ports_file_dir").map(|p| t.o.ports_file_dir = Some(PathBuf::from(p))),
        ),
        Key(
            &Opt::new(&["tls"], Ty::Block(&tls::TLS), Reload::Yes)
                .means("TLS for client connections (and for the `https` monitoring listener)"),
            |e, t, _| {
                let (tls, rate_limit) = tls::read_client(&e.value)?;
                t.o.tls = Some(tls);
                t.tls_connection_rate_limit = rate_limit;
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["allow_non_tls"], Ty::Bool, Reload::Yes)
                .means("Plain-text clients may use the TLS port too (logged at every start)")
                .default("false")
                .differs("Also taken inside `tls {}`; refused with `verify` or `verify_and_map`"),
            |e, t, _| {
                // nats-server 2.10 reads it at the top level; warden also takes
                // it inside `tls {}`.
                let on = section::boolean(&e.value, "allow_non_tls")?;
                let Some(tls) = t.o.tls.as_mut() else {
                    return Err(invalid(
                        &e.value,
                        "allow_non_tls lets plain-text clients use the TLS port, but there is no tls block",
                    ));
                };
                tls.allow_non_tls |= on;
                if tls.plain_text_skips_verify() {
                    return Err(invalid(&e.value, TlsOptions::PLAIN_TEXT_SKIPS_VERIFY));
                }
                Ok(())
            },
        ),
        Check(|t, f| match f.get("tls") {
            Some(e) => accept_rate::with_tls_limit(&mut t.o.accept_rate, t.tls_connection_rate_limit, e),
            None => Ok(()),
        }),
        // Before the users: `leafnodes { tls { verify_and_map } }` and
        // `websocket { tls { verify_and_map } }` let them go without a
        // password.
        Key(
            &Opt::new(&["leafnodes", "leaf"], Ty::Block(&leafnodes::LEAFNODES), Reload::PerOption)
                .means("The leaf node listener (this server as hub), and the hubs this server is a leaf of"),
            |e, t, _| leafnodes::read(e, &mut t.warnings).map(|l| t.o.leafnodes = Some(l)),
        ),
        Key(
            &Opt::new(&["websocket", "ws"], Ty::Block(&super::websocket::WEBSOCKET), Reload::PerOption)
                .means("The WebSocket listener, for browsers"),
            |e, t, _| {
                let ws = super::websocket::websocket(e, tls::read_websocket, &mut t.warnings)?;
                t.o.websocket = Some(ws);
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["accounts"], Ty::Named(&accounts::ACCOUNT), Reload::Yes)
                .means(
                    "The accounts (tenants) besides the global account `$G`; or a list of names of \
                    accounts without users",
                )
                .differs("An account name must read as a subject: no spaces or wildcards"),
            |e, t, _| {
                (t.o.accounts, t.positions) = accounts::accounts(e, maps_certificates(&t.o), &mut t.warnings)?;
                Ok(())
            },
        ),
        Key(
            &Opt::new(&["mappings", "maps"], Ty::Named(&super::mappings::DESTINATION), Reload::Yes)
                .means(super::mappings::MEANS)
                .differs(super::mappings::DIFFERS),
            |e, t, _| super::mappings::read(e, &mut t.warnings).map(|m| t.o.mappings = m),
        ),
        Key(
            &Opt::new(&["authorization"], Ty::Block(&auth::AUTHORIZATION), Reload::PerOption)
                .means("Who may connect as a client, and with which permissions")
                .differs("A block that requires no credentials is refused"),
            |e, t, _| {
                // Users of accounts require authentication too, so an
                // `authorization` block may then hold only its settings.
                let accounts_log_in = t.o.accounts.iter().any(|a| !a.users.is_empty() || !a.nkeys.is_empty());
                let auth = auth::authorization(e, maps_certificates(&t.o), accounts_log_in, &mut t.warnings)?;
                t.o.authorization = Some(auth);
                Ok(())
            },
        ),
        Check(|_, f| monitor::one_listener(f).map(|_| ())),
        Key(
            &Opt::new(&["http"], Ty::HostPort, Reload::Restart)
                .means("The monitoring listener (HTTP)")
                .differs("A port alone binds 127.0.0.1 (nats-server: the client `host`)"),
            |e, t, _| monitor::listener(e, &mut t.o, false),
        ),
        Key(
            &Opt::new(&["http_base_path"], Ty::String, Reload::Restart)
                .means("A path prefix for every monitoring endpoint: `/nats` serves `/nats/varz`")
                .default("none (endpoints at `/`)"),
            |e, t, _| monitor::base_path(&e.value).map(|p| t.o.http_base_path = p),
        ),
        Key(
            &Opt::new(&["http_port", "monitor_port"], Ty::Port, Reload::Restart)
                .means("The monitoring port, on 127.0.0.1")
                .differs("nats-server binds it on the client `host`"),
            |e, t, _| monitor::listener(e, &mut t.o, false),
        ),
        Key(
            &Opt::new(&["https"], Ty::HostPort, Reload::Restart)
                .means("The monitoring listener over HTTPS, with the `tls {}` certificate")
                .differs("A port alone binds 127.0.0.1"),
            |e, t, _| monitor::listener(e, &mut t.o, true),
        ),
        Key(
            &Opt::new(&["https_port"], Ty::Port, Reload::Restart)
                .means("The HTTPS monitoring port, on 127.0.0.1")
                .differs("nats-server binds it on the client `host`"),
            |e, t, _| monitor::listener(e, &mut t.o, true),
        ),
        Key(
            &Opt::new(&["http_authorization"], Ty::Block(&monitor::HTTP_AUTH), Reload::Restart)
                .means("Credentials the monitoring endpoints require")
                .differs("warden only: nats-server's monitoring has none"),
            |e, t, _| {
                if t.o.http.is_none() {
                    return Err(invalid(&e.value, "http_authorization needs a monitoring listener (http or https)"));
                }
                http_authorization(e, &mut t.warnings).map(|a| t.o.http_authorization = Some(a))
            },
        ),
        Key(
            &Opt::new(&["cluster"], Ty::Block(&cluster::CLUSTER), Reload::Restart)
                .means("Routes to the other servers of a cluster")
                .differs(
                    "Refused without route authentication or route TLS, unless \
                    `insecure_allow_unauthenticated_routes`",
                ),
            |e, t, _| cluster::read(e, &mut t.warnings).map(|c| t.o.cluster = Some(c)),
        ),
        Key(
            &Opt::new(&["gateway"], Ty::Block(&gateway::GATEWAY), Reload::Restart)
                .means("This cluster's gateways to the other clusters of a supercluster")
                .differs(
                    "Refused without authentication (a user and password, or verified TLS) unless \
                    `insecure_allow_unauthenticated_gateways`; `reject_unknown_cluster` is on by default",
                ),
            |e, t, _| gateway::read(e, &mut t.warnings).map(|g| t.o.gateway = g),
        ),
        Key(
            &Opt::new(&["check_reply_subjects"], Ty::Bool, Reload::Restart)
                .means("A PUB's reply subject must be one its publisher may subscribe to")
                .default("true")
                .differs("warden only"),
            |e, t, _| section::boolean(&e.value, "check_reply_subjects").map(|b| t.o.check_reply_subjects = b),
        ),
        Key(
            &Opt::new(&["system_account", "system"], Ty::String, Reload::Restart)
                .means(
                    "The account of the `$SYS` services, created if `accounts` lacks it; in operator \
                    mode an account public key",
                )
                .default("$SYS"),
            |e, t, f| {
                if let Some(n) = f.get("no_system_account") {
                    if section::boolean(&n.value, "no_system_account")? {
                        return Err(conflict(e, "system_account is set, but no_system_account says there is none"));
                    }
                }
                section::word(&e.value, "system_account").map(|name| t.o.system_account = Some(name.to_owned()))
            },
        ),
        Key(
            &Opt::new(&["no_system_account", "no_system", "no_sys_acc"], Ty::Bool, Reload::Restart)
                .means("Run without a system account")
                .default("false"),
            |e, t, _| {
                if section::boolean(&e.value, "no_system_account")? {
                    t.o.system_account = None;
                }
                Ok(())
            },
        ),
        Key(
            &Opt::new(
                &["operator", "operators", "roots", "root", "root_operators", "root_operator"],
                Ty::Text("JWT or path, or a list"),
                Reload::Yes,
            )
            .means(
                "Operator mode: the operator JWTs (the token or a file holding it) whose \
                    accounts and users log in",
            )
            .differs("A reload cannot turn operator mode on or off"),
            |e, t, f| {
                operator_conflicts(&t.o, f)?;
                let (operator, system) =
                    operator::operator_mode(e, f.get("resolver"), f.get("resolver_preload"), f.get("system_account"))?;
                t.o.operator = Some(operator);
                t.o.system_account = system;
                Ok(())
            },
        ),
        // Read by `operator`.
        Key(
            &Opt::new(
                &["resolver", "account_resolver", "accounts_resolver"],
                Ty::Or("`MEMORY`", &operator::RESOLVER),
                Reload::Yes,
            )
            .means("Where operator mode finds account JWTs: `MEMORY` (`resolver_preload`) or a directory")
            .differs("The URL resolver is refused"),
            needs_operator,
        ),
        Key(
            &Opt::new(&["resolver_preload"], Ty::Map("account public key: account JWT"), Reload::Yes)
                .means("The account JWTs of the `MEMORY` resolver, verified at load"),
            needs_operator,
        ),
        // In operator mode the accounts come from JWTs and are checked when
        // the server builds them.
        Check(|t, f| {
            let (Err(err), None) = (check_accounts(&t.o), &t.o.operator) else { return Ok(()) };
            let pos = match err.location {
                Location::Account(a) => t.positions.accounts.get(a),
                Location::Users(a) => t.positions.users.get(&a),
                Location::Export(a, i) => t.positions.exports.get(&(a, i)),
                Location::Import(a, i) => t.positions.imports.get(&(a, i)),
                Location::SystemAccount => f.get("system_account").map(|e| &e.value.pos),
            };
            Err(match pos {
                Some(pos) => ConfigError::at(ErrorKind::Invalid, pos, err.message),
                None => ConfigError::in_file(ErrorKind::Invalid, &t.origin, err.message),
            })
        }),
        Check(|t, f| f.get("authorization").map_or(Ok(()), |e| super::delegation::check(&t.o, e))),
        Key(
            &Opt::new(&["no_auth_user"], Ty::String, Reload::Yes)
                .means("The configured user that clients presenting no credentials log in as"),
            |e, t, _| {
                let name = section::user_name(&e.value, "no_auth_user")?;
                let known = t.o.authorization.as_ref().is_some_and(|a| a.users.iter().any(|u| u.user == name))
                    || t.o.accounts.iter().any(|a| a.users.iter().any(|u| u.user == name));
                if !known {
                    return Err(invalid(
                        &e.value,
                        format!(
                        "no_auth_user: {name:?} not present as user in authorization block or account configuration"
                    ),
                    ));
                }
                t.o.no_auth_user = Some(name.to_owned());
                Ok(())
            },
        ),
        Check(|t, f| match (&t.o.websocket, f.get("websocket")) {
            (Some(ws), Some(e)) => super::websocket::check(&t.o, ws, e),
            _ => Ok(()),
        }),
        Check(|t, f| {
            if t.o.max_payload <= t.o.max_pending {
                return Ok(());
            }
            let message =
                format!("max_payload ({}) cannot be higher than max_pending ({})", t.o.max_payload, t.o.max_pending);
            Err(match f.get("max_payload").or(f.get("max_pending")) {
                Some(e) => invalid(&e.value, message),
                None => ConfigError::in_file(ErrorKind::Invalid, &t.origin, message),
            })
        }),
        Check(|t, f| {
            let clients = f.get("tls").filter(|_| t.o.tls.as_ref().is_some_and(|t| t.verify_and_map));
            let leafs = f.get("leafnodes").filter(|_| leafs_map_certificates(&t.o));
            let websocket = f.get("websocket").filter(|_| websocket_maps_certificates(&t.o));
            let (e, whose) = match (clients, leafs, websocket) {
                (Some(e), _, _) => (e, "tls verify_and_map maps client certificates"),
                (None, Some(e), _) => (e, "leafnodes tls verify_and_map maps leaf certificates"),
                (None, None, Some(e)) => (e, "websocket tls verify_and_map maps WebSocket client certificates"),
                (None, None, None) => return Ok(()),
            };
            let account_users = t.o.accounts.iter().any(|a| !a.users.is_empty());
            if t.o.authorization.as_ref().is_none_or(|a| a.users.is_empty()) && !account_users {
                return Err(invalid(&e.value, format!("{whose} to users, but authorization has no users")));
            }
            Ok(())
        }),
        Check(|t, f| {
            let http = monitor::one_listener(f)?;
            check_port_clash(&t.o, http, f.get("cluster"), f.get("websocket"), f.get("leafnodes"))
        }),
        Check(|t, f| {
            let (Some(own), Some(e)) =
                (t.o.leafnodes.as_ref().and_then(|l| l.authorization.as_ref()), f.get("leafnodes"))
            else {
                return Ok(());
            };
            if t.o.operator.is_some() {
                return Err(conflict(
                    e,
                    "leafnodes authorization names users, but in operator mode users come from JWTs",
                ));
            }
            let known = |name: &str| name == super::GLOBAL_ACCOUNT || t.o.accounts.iter().any(|a| a.name == name);
            let accounts = own.users.iter().map(|(_, a)| a).chain(own.nkeys.iter().map(|(_, a)| a));
            match accounts.filter_map(Option::as_deref).find(|a| !known(a)) {
                Some(missing) => Err(invalid(&e.value, format!("leafnodes authorization: no account {missing:?}"))),
                None => Ok(()),
            }
        }),
        Check(|t, f| match (&t.o.leafnodes, f.get("leafnodes")) {
            (Some(l), Some(e))
                if l.accept
                    && l.authorization.is_none()
                    && !l.allow_unauthenticated
                    && !leafnodes::clients_authenticate(&t.o) =>
            {
                if !open_loopback_listener(&t.o, &l.host) {
                    return Err(ConfigError::at(ErrorKind::Invalid, &e.key_pos, leafnodes::UNAUTHENTICATED_LEAFNODES));
                }
                t.warnings.push(format!("{}: {OPEN_LOOPBACK_LEAFNODES}", e.key_pos));
                Ok(())
            }
            _ => Ok(()),
        }),
        Check(|t, f| match (&t.o.cluster, f.get("cluster")) {
            (Some(c), Some(e))
                if c.authorization.is_none()
                    && c.tls.is_none()
                    && !c.allow_unauthenticated
                    && !open_loopback_listener(&t.o, &c.host) =>
            {
                Err(ConfigError::at(ErrorKind::Invalid, &e.key_pos, UNAUTHENTICATED_ROUTES))
            }
            _ => Ok(()),
        }),
    ],
};

/// Whether `tls { verify_and_map }` maps client certificates to the users
/// of `authorization` and `accounts`: the clients' own, or the leaf
/// listener's when its `authorization` names no users of its own (leafs
/// then log in as those users, as in nats-server).
fn maps_certificates(o: &Options) -> bool {
    o.tls.as_ref().is_some_and(|t| t.verify_and_map) || leafs_map_certificates(o) || websocket_maps_certificates(o)
}

/// Whether `websocket { tls { verify_and_map } }` maps WebSocket clients'
/// certificates to the users (nats-server's `Websocket.TLSMap`: the
/// WebSocket block's own setting, not the client listener's).
fn websocket_maps_certificates(o: &Options) -> bool {
    o.websocket.as_ref().and_then(|w| w.tls.as_ref()).is_some_and(|t| t.verify_and_map)
}

/// Whether leaf certificates map to the users of `authorization` and
/// `accounts` (not to a leafnodes `authorization` block's).
fn leafs_map_certificates(o: &Options) -> bool {
    o.leafnodes
        .as_ref()
        .is_some_and(|l| l.accept && l.authorization.is_none() && l.tls.as_ref().is_some_and(|t| t.verify_and_map))
}

/// An account resolver is read by `operator`; without it, it has nothing
/// to resolve for.
fn needs_operator(e: &Entry, _: &mut Top, f: &Found<'_>) -> Result<(), ConfigError> {
    match f.get("operator") {
        Some(_) => Ok(()),
        None => Err(conflict(e, "an account resolver needs operator mode: set `operator` to the operator JWT")),
    }
}

/// In operator mode accounts and users come from JWTs only (nats-server:
/// "operators do not allow Accounts/users to be configured directly").
fn operator_conflicts(o: &Options, f: &Found<'_>) -> Result<(), ConfigError> {
    if let Some(e) = f.get("accounts") {
        return Err(conflict(e, "operators do not allow Accounts to be configured directly"));
    }
    let auth = o.authorization.as_ref();
    let users =
        auth.is_some_and(|a| !a.users.is_empty() || !a.nkeys.is_empty() || a.user.is_some() || a.token.is_some());
    if let (Some(e), true) = (f.get("authorization"), users) {
        return Err(conflict(e, "operators do not allow users to be configured directly"));
    }
    if let Some(e) = f.get("no_auth_user") {
        return Err(conflict(
            e,
            "no_auth_user names a configured user, and operators do not allow users to be configured directly",
        ));
    }
    if let (Some(e), true) = (f.get("leafnodes"), leafs_map_certificates(o)) {
        return Err(conflict(
            e,
            "leafnodes tls verify_and_map maps certificates to configured users, and operators do not allow those",
        ));
    }
    if let (Some(e), true) = (f.get("tls"), o.tls.as_ref().is_some_and(|t| t.verify_and_map)) {
        return Err(conflict(
            e,
            "tls verify_and_map maps certificates to configured users, and operators do not allow those",
        ));
    }
    Ok(())
}

/// Listeners may not share a port on overlapping addresses. `http` and
/// `cluster` are the entries that configured those listeners.
fn check_port_clash(
    o: &Options,
    http: Option<&Entry>,
    cluster: Option<&Entry>,
    websocket: Option<&Entry>,
    leafnodes: Option<&Entry>,
) -> Result<(), ConfigError> {
    let overlap = |a: &str, b: &str| a == b || [a, b].iter().any(|h| matches!(*h, "0.0.0.0" | "::" | ""));
    if let (Some(h), Some(e)) = (&o.http, http) {
        if h.port != 0 && h.port == o.port && overlap(&h.host, &o.host) {
            return Err(conflict(e, "the monitoring port is the client port"));
        }
    }
    if let (Some(c), Some(e)) = (&o.cluster, cluster) {
        let clash_client = c.port == o.port && overlap(&c.host, &o.host);
        let clash_http = o.http.as_ref().is_some_and(|h| c.port == h.port && overlap(&c.host, &h.host));
        if c.port != 0 && (clash_client || clash_http) {
            return Err(conflict(e, "the cluster port is already used by another listener"));
        }
    }
    if let (Some(w), Some(e)) = (&o.websocket, websocket) {
        let mut others = vec![(o.host.as_str(), o.port)];
        others.extend(o.http.as_ref().map(|h| (h.host.as_str(), h.port)));
        others.extend(o.cluster.as_ref().map(|c| (c.host.as_str(), c.port)));
        if w.port != 0 && others.iter().any(|(host, port)| *port == w.port && overlap(host, &w.host)) {
            return Err(conflict(e, "the websocket port is already used by another listener"));
        }
    }
    if let (Some(l), Some(e)) = (&o.leafnodes, leafnodes) {
        let mut others = vec![(o.host.as_str(), o.port)];
        others.extend(o.http.as_ref().map(|h| (h.host.as_str(), h.port)));
        others.extend(o.cluster.as_ref().map(|c| (c.host.as_str(), c.port)));
        others.extend(o.websocket.as_ref().map(|w| (w.host.as_str(), w.port)));
        if l.port != 0 && others.iter().any(|(host, port)| *port == l.port && overlap(host, &l.host)) {
            return Err(conflict(e, "the leafnode port is already used by another listener"));
        }
    }
    Ok(())
}

/// A duration that must be more than zero; a bare number of seconds (where
/// allowed) is accepted with a warning, as nats-server does.
fn positive_duration(entry: &Entry, bare: Bare, warnings: &mut Vec<String>) -> Result<Duration, ConfigError> {
    let name = entry.key.to_ascii_lowercase();
    let (d, was_bare) = section::nonzero_duration(&entry.value, &name, bare)?;
    if was_bare {
        warnings.push(format!(
            "{}: {name} is a bare number, read as {} seconds; write a duration string such as \"{}s\"",
            entry.value.pos,
            d.as_secs_f64(),
            d.as_secs_f64()
        ));
    }
    Ok(d)
}

/// `server_tags`: a string or a list of strings (`[ id:abc ]` unquoted
/// reads as the string `id:abc`), trimmed and lower-cased, empty ones and
/// repeats dropped: what nats-server 2.15.1 shows in `/varz`.
fn server_tags(value: &Value) -> Result<Vec<String>, ConfigError> {
    let items = match &value.kind {
        super::value::Kind::Array(items) => items.iter().collect(),
        _ => vec![value],
    };
    let mut tags: Vec<String> = Vec::new();
    for item in items {
        let tag = section::string(item, "a server tag")?.trim().to_lowercase();
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// `feature_flags { name: bool }`: nats-server 2.14's switches for new
/// behaviour, all about JetStream in 2.15; each is accepted with a warning
/// that warden has no such switch (nats-server itself only warns about an
/// unknown one).
fn feature_flags(entry: &Entry, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    for flag in &section::map(&entry.value, "feature_flags")?.entries {
        section::boolean(&flag.value, "a feature flag")?;
        warnings.push(format!(
            "{}: feature flag {:?} changes nothing: warden has no feature flags (nats-server's are about JetStream)",
            flag.key_pos, flag.key
        ));
    }
    Ok(())
}

/// `server_metadata { name: value }`: every value a string, as
/// nats-server requires.
fn server_metadata(value: &Value) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let map = section::map(value, "server_metadata")?;
    let mut out = std::collections::BTreeMap::new();
    for entry in &map.entries {
        let text = section::string(&entry.value, "a server_metadata value")?;
        out.insert(entry.key.clone(), text.to_owned());
    }
    Ok(out)
}

/// `write_timeout` (nats-server 2.14): `default`, `close` or `retry`, as
/// nats-server spells them (lower case). warden closes every connection
/// whose write misses its deadline, so `retry` is refused by name; for
/// `whose` connections `default` means what warden does.
pub(super) fn write_timeout(value: &Value, what: &str, whose: &str) -> Result<(), ConfigError> {
    match section::string(value, what)? {
        "default" | "close" => Ok(()),
        "retry" => Err(invalid(
            value,
            format!(
                "{what}: retry is not supported: warden closes {whose} whose write misses write_deadline \
                (use `close` or leave it out)"
            ),
        )),
        _ => Err(invalid(value, format!("{what} must be 'default', 'close' or 'retry'"))),
    }
}

/// A file path: a non-empty string.
pub(crate) fn path_string<'v>(value: &'v Value, what: &str) -> Result<&'v str, ConfigError> {
    let s = section::string(value, what)?;
    if s.is_empty() {
        return Err(invalid(value, format!("{what} must not be empty")));
    }
    Ok(s)
}

#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod spiffe_tests;
#[cfg(test)]
mod tests;
