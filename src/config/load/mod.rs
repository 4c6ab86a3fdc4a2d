//! From the value tree to one validated [`Options`], strictly: option names
//! are case-insensitive with nats-server's aliases, every key must mean
//! something, every value has the right type and range, and contradictory
//! settings are refused. Nothing falls back to a default on a mistake.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::account_rules::{check_accounts, Location};
use super::accounts;
use super::auth;
use super::error::{ConfigError, ErrorKind};
use super::operator;
use super::options::{HttpOptions, Options, TlsOptions};
use super::parser::{self, EnvLookup};
use super::section::{self, Bare, Section};
use super::value::{Entry, Map, Value};

mod cluster;
mod monitor;
mod tls;

use cluster::cluster_options;
use monitor::{http_authorization, monitor_listener};
use tls::tls_options;

/// A loaded config: the options, and warnings to log at start-up (plain-text
/// passwords, bare numbers read as seconds). Warnings never contain secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated options.
    pub options: Options,
    /// Things that are accepted but should be fixed, each `file:line:col: ...`.
    pub warnings: Vec<String>,
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
    "http_base_path",
    "max_sub_tokens",
    "log_size_limit",
    "log_max_num",
    "syslog",
    "remote_syslog",
    "trace_verbose",
    "max_traced_msg_len",
    "no_header_support",
    "disable_sublist_cache",
    "no_sublist_cache",
    "max_closed_clients",
    "connect_error_reports",
    "reconnect_error_reports",
    "prof_port",
    "mappings",
    "jetstream",
    "leafnodes",
    "leaf",
    "gateway",
    "mqtt",
    "resolver_tls",
    "resolver_pinned_accounts",
    "trusted",
    "trusted_keys",
    "ocsp",
    "default_js_domain",
];

/// Why a cluster without route authentication is refused, and the ways out.
pub const UNAUTHENTICATED_ROUTES: &str = "cluster has no route authentication: anyone who reaches the cluster port could read and inject every message. Add `authorization { user, password }` or `tls { cert_file, key_file, ca_file }` (peers verified both ways) to the cluster block, or, on a trusted loopback-only network, `insecure_allow_unauthenticated_routes: true`";

/// The host a listener binds when the config names only a port.
const LOOPBACK: &str = "127.0.0.1";
/// nats-server's lower bound for `lame_duck_duration`.
const MIN_LAME_DUCK: Duration = Duration::from_secs(30);

/// The top-level entries, looked up before anything is interpreted so that
/// an unknown key (often a typo) is reported before what it causes.
struct Top<'a> {
    listen: Option<&'a Entry>,
    host: Option<&'a Entry>,
    port: Option<&'a Entry>,
    server_name: Option<&'a Entry>,
    max_connections: Option<&'a Entry>,
    max_connections_per_ip: Option<&'a Entry>,
    max_subscriptions: Option<&'a Entry>,
    max_payload: Option<&'a Entry>,
    max_pending: Option<&'a Entry>,
    max_control_line: Option<&'a Entry>,
    ping_interval: Option<&'a Entry>,
    ping_max: Option<&'a Entry>,
    write_deadline: Option<&'a Entry>,
    lame_duck: Option<&'a Entry>,
    grace: Option<&'a Entry>,
    debug: Option<&'a Entry>,
    trace: Option<&'a Entry>,
    logtime: Option<&'a Entry>,
    log_file: Option<&'a Entry>,
    pid_file: Option<&'a Entry>,
    ports_file_dir: Option<&'a Entry>,
    no_auth_user: Option<&'a Entry>,
    allow_non_tls: Option<&'a Entry>,
    tls: Option<&'a Entry>,
    authorization: Option<&'a Entry>,
    http: Option<&'a Entry>,
    http_port: Option<&'a Entry>,
    https: Option<&'a Entry>,
    https_port: Option<&'a Entry>,
    http_authorization: Option<&'a Entry>,
    cluster: Option<&'a Entry>,
    websocket: Option<&'a Entry>,
    check_reply_subjects: Option<&'a Entry>,
    accounts: Option<&'a Entry>,
    system_account: Option<&'a Entry>,
    no_system_account: Option<&'a Entry>,
    operator: Option<&'a Entry>,
    resolver: Option<&'a Entry>,
    resolver_preload: Option<&'a Entry>,
}

impl<'a> Top<'a> {
    fn lookup(map: &'a Map) -> Result<Self, ConfigError> {
        let mut s = Section::new("the top level", map);
        let top = Top {
            listen: s.get(&["listen"])?,
            host: s.get(&["host", "net"])?,
            port: s.get(&["port"])?,
            server_name: s.get(&["server_name"])?,
            max_connections: s.get(&["max_connections", "max_conn"])?,
            max_connections_per_ip: s.get(&["max_connections_per_ip"])?,
            max_subscriptions: s.get(&["max_subscriptions", "max_subs"])?,
            max_payload: s.get(&["max_payload"])?,
            max_pending: s.get(&["max_pending"])?,
            max_control_line: s.get(&["max_control_line"])?,
            ping_interval: s.get(&["ping_interval"])?,
            ping_max: s.get(&["ping_max"])?,
            write_deadline: s.get(&["write_deadline"])?,
            lame_duck: s.get(&["lame_duck_duration"])?,
            grace: s.get(&["lame_duck_grace_period"])?,
            debug: s.get(&["debug"])?,
            trace: s.get(&["trace"])?,
            logtime: s.get(&["logtime"])?,
            log_file: s.get(&["log_file", "logfile"])?,
            pid_file: s.get(&["pid_file", "pidfile"])?,
            ports_file_dir: s.get(&["ports_file_dir"])?,
            no_auth_user: s.get(&["no_auth_user"])?,
            allow_non_tls: s.get(&["allow_non_tls"])?,
            tls: s.get(&["tls"])?,
            authorization: s.get(&["authorization"])?,
            http: s.get(&["http"])?,
            http_port: s.get(&["http_port", "monitor_port"])?,
            https: s.get(&["https"])?,
            https_port: s.get(&["https_port"])?,
            http_authorization: s.get(&["http_authorization"])?,
            cluster: s.get(&["cluster"])?,
            websocket: s.get(&["websocket", "ws"])?,
            check_reply_subjects: s.get(&["check_reply_subjects"])?,
            accounts: s.get(&["accounts"])?,
            system_account: s.get(&["system_account", "system"])?,
            no_system_account: s.get(&["no_system_account"])?,
            operator: s.get(&["operator", "operators", "roots", "root", "root_operators", "root_operator"])?,
            resolver: s.get(&["resolver", "account_resolver", "accounts_resolver"])?,
            resolver_preload: s.get(&["resolver_preload"])?,
        };
        s.finish(UNSUPPORTED_TOP)?;
        Ok(top)
    }
}

/// Reads the top-level map into `Options`.
pub(crate) fn build(map: &Map, origin: &str) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let mut o = Options::default();
    let t = Top::lookup(map)?;

    if let Some(e) = t.listen {
        if let Some(other) = t.host.or(t.port) {
            return Err(conflict(other, "`listen` already sets the client host and port; remove one of them"));
        }
        (o.host, o.port) = section::host_port(&e.value, "listen", &o.host)?;
    }
    if let Some(e) = t.host {
        o.host = section::word(&e.value, "host")?.to_owned();
    }
    if let Some(e) = t.port {
        o.port = section::port(&e.value, "port")?;
    }
    if let Some(e) = t.server_name {
        o.server_name = Some(section::word(&e.value, "server_name")?.to_owned());
    }
    if let Some(e) = t.max_connections {
        o.max_connections = section::count(&e.value, "max_connections", 1)?;
    }
    if let Some(e) = t.max_connections_per_ip {
        o.max_connections_per_ip = section::count(&e.value, "max_connections_per_ip", 0)?;
    }
    if let Some(e) = t.max_subscriptions {
        o.max_subscriptions = section::count(&e.value, "max_subscriptions", 0)?;
    }
    if let Some(e) = t.max_payload {
        o.max_payload = section::count(&e.value, "max_payload", 1)?;
    }
    if let Some(e) = t.max_pending {
        o.max_pending = section::count(&e.value, "max_pending", 1)?;
    }
    if let Some(e) = t.max_control_line {
        o.max_control_line = section::count(&e.value, "max_control_line", 1)?;
    }
    if let Some(e) = t.ping_interval {
        o.ping_interval = positive_duration(e, Bare::Seconds, &mut warnings)?;
    }
    if let Some(e) = t.ping_max {
        let n = section::integer_in(&e.value, "ping_max", 1, i64::from(u32::MAX))?;
        o.ping_max = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(e) = t.write_deadline {
        o.write_deadline = positive_duration(e, Bare::Seconds, &mut warnings)?;
    }
    if let Some(e) = t.lame_duck {
        o.lame_duck_duration = positive_duration(e, Bare::No, &mut warnings)?;
        if o.lame_duck_duration < MIN_LAME_DUCK {
            return Err(invalid(&e.value, "lame_duck_duration must be at least 30 seconds"));
        }
    }
    if let Some(e) = t.grace {
        o.lame_duck_grace_period = section::duration(&e.value, "lame_duck_grace_period", Bare::No)?.0;
    }
    if o.lame_duck_grace_period >= o.lame_duck_duration {
        if let Some(e) = t.grace.or(t.lame_duck) {
            return Err(invalid(&e.value, "lame_duck_grace_period must be shorter than lame_duck_duration"));
        }
    }
    if let Some(e) = t.debug {
        o.debug = section::boolean(&e.value, "debug")?;
    }
    if let Some(e) = t.trace {
        o.trace = section::boolean(&e.value, "trace")?;
    }
    if let Some(e) = t.logtime {
        o.logtime = section::boolean(&e.value, "logtime")?;
    }
    if let Some(e) = t.log_file {
        o.log_file = Some(PathBuf::from(path_string(&e.value, "log_file")?));
    }
    if let Some(e) = t.pid_file {
        o.pid_file = Some(PathBuf::from(path_string(&e.value, "pid_file")?));
    }
    if let Some(e) = t.ports_file_dir {
        o.ports_file_dir = Some(PathBuf::from(path_string(&e.value, "ports_file_dir")?));
    }
    if let Some(e) = t.tls {
        o.tls = Some(tls_options(&e.value, "tls")?);
    }
    if let Some(e) = t.allow_non_tls {
        // nats-server 2.10 reads it at the top level; warden also takes it
        // inside `tls {}`.
        let on = section::boolean(&e.value, "allow_non_tls")?;
        match o.tls.as_mut() {
            Some(tls) => {
                tls.allow_non_tls |= on;
                if tls.plain_text_skips_verify() {
                    return Err(invalid(&e.value, TlsOptions::PLAIN_TEXT_SKIPS_VERIFY));
                }
            }
            None => {
                return Err(invalid(
                    &e.value,
                    "allow_non_tls lets plain-text clients use the TLS port, but there is no tls block",
                ))
            }
        }
    }
    let maps_certificates = o.tls.as_ref().is_some_and(|t| t.verify_and_map);
    let mut positions = accounts::Positions::default();
    if let Some(e) = t.accounts {
        (o.accounts, positions) = accounts::accounts(e, maps_certificates, &mut warnings)?;
    }
    if let Some(e) = t.authorization {
        // Users of accounts require authentication too, so an
        // `authorization` block may then hold only its settings.
        let accounts_log_in = o.accounts.iter().any(|a| !a.users.is_empty() || !a.nkeys.is_empty());
        o.authorization = Some(auth::authorization(e, maps_certificates, accounts_log_in, &mut warnings)?);
    }
    let monitor = monitor_listener(&t)?;
    if let Some((e, tls)) = monitor {
        let (host, port) = if e.key.eq_ignore_ascii_case("http") || e.key.eq_ignore_ascii_case("https") {
            section::host_port(&e.value, &e.key.to_ascii_lowercase(), LOOPBACK)?
        } else {
            (LOOPBACK.to_owned(), section::port(&e.value, &e.key)?)
        };
        if tls && o.tls.is_none() {
            return Err(invalid(
                &e.value,
                "https serves monitoring with the `tls {}` certificate, but there is no tls block",
            ));
        }
        o.http = Some(HttpOptions { host, port, tls });
    }
    if let Some(e) = t.http_authorization {
        if monitor.is_none() {
            return Err(invalid(&e.value, "http_authorization needs a monitoring listener (http or https)"));
        }
        o.http_authorization = Some(http_authorization(e, &mut warnings)?);
    }
    if let Some(e) = t.cluster {
        o.cluster = Some(cluster_options(e, &mut warnings)?);
    }
    if let Some(e) = t.websocket {
        o.websocket = Some(super::websocket::websocket(e, |v| tls_options(v, "websocket tls"), &mut warnings)?);
    }
    if let Some(e) = t.check_reply_subjects {
        o.check_reply_subjects = section::boolean(&e.value, "check_reply_subjects")?;
    }
    match (t.system_account, t.no_system_account) {
        (Some(e), Some(n)) if section::boolean(&n.value, "no_system_account")? => {
            return Err(conflict(e, "system_account is set, but no_system_account says there is none"));
        }
        (_, Some(n)) if section::boolean(&n.value, "no_system_account")? => o.system_account = None,
        (Some(e), _) => o.system_account = Some(section::word(&e.value, "system_account")?.to_owned()),
        _ => {}
    }
    if let Some(e) = t.operator {
        operator_conflicts(&o, &t)?;
        let (operator, system) = operator::operator_mode(e, t.resolver, t.resolver_preload, t.system_account)?;
        o.operator = Some(operator);
        o.system_account = system;
    } else if let Some(e) = t.resolver.or(t.resolver_preload) {
        return Err(conflict(e, "an account resolver needs operator mode: set `operator` to the operator JWT"));
    }
    // In operator mode the accounts come from JWTs and are checked when
    // the server builds them.
    if let (Err(err), None) = (check_accounts(&o), &o.operator) {
        let pos = match err.location {
            Location::Account(a) => positions.accounts.get(a),
            Location::Users(a) => positions.users.get(&a),
            Location::Export(a, i) => positions.exports.get(&(a, i)),
            Location::Import(a, i) => positions.imports.get(&(a, i)),
            Location::SystemAccount => t.system_account.map(|e| &e.value.pos),
        };
        return Err(match pos {
            Some(pos) => ConfigError::at(ErrorKind::Invalid, pos, err.message),
            None => ConfigError::in_file(ErrorKind::Invalid, origin, err.message),
        });
    }
    if let Some(e) = t.authorization {
        super::delegation::check(&o, e)?;
    }
    if let Some(e) = t.no_auth_user {
        let name = section::word(&e.value, "no_auth_user")?;
        let known = o.authorization.as_ref().is_some_and(|a| a.users.iter().any(|u| u.user == name))
            || o.accounts.iter().any(|a| a.users.iter().any(|u| u.user == name));
        if !known {
            return Err(invalid(
                &e.value,
                format!("no_auth_user: {name:?} not present as user in authorization block or account configuration"),
            ));
        }
        o.no_auth_user = Some(name.to_owned());
    }

    if let (Some(ws), Some(e)) = (&o.websocket, t.websocket) {
        super::websocket::check(&o, ws, e)?;
    }

    // Cross-option checks.
    if o.max_payload > o.max_pending {
        let message = format!("max_payload ({}) cannot be higher than max_pending ({})", o.max_payload, o.max_pending);
        return Err(match t.max_payload.or(t.max_pending) {
            Some(e) => invalid(&e.value, message),
            None => ConfigError::in_file(ErrorKind::Invalid, origin, message),
        });
    }
    if let (Some(e), true) = (t.tls, maps_certificates) {
        let account_users = o.accounts.iter().any(|a| !a.users.is_empty());
        if o.authorization.as_ref().is_none_or(|a| a.users.is_empty()) && !account_users {
            return Err(invalid(
                &e.value,
                "tls verify_and_map maps client certificates to users, but authorization has no users",
            ));
        }
    }
    check_port_clash(&o, monitor.map(|(e, _)| e), t.cluster, t.websocket)?;
    if let (Some(c), Some(e)) = (&o.cluster, t.cluster) {
        if c.authorization.is_none() && c.tls.is_none() && !c.allow_unauthenticated {
            return Err(ConfigError::at(ErrorKind::Invalid, &e.key_pos, UNAUTHENTICATED_ROUTES));
        }
    }
    Ok(Loaded { options: o, warnings })
}

/// In operator mode accounts and users come from JWTs only (nats-server:
/// "operators do not allow Accounts/users to be configured directly").
fn operator_conflicts(o: &Options, t: &Top<'_>) -> Result<(), ConfigError> {
    if let Some(e) = t.accounts {
        return Err(conflict(e, "operators do not allow Accounts to be configured directly"));
    }
    let auth = o.authorization.as_ref();
    let users =
        auth.is_some_and(|a| !a.users.is_empty() || !a.nkeys.is_empty() || a.user.is_some() || a.token.is_some());
    if let (Some(e), true) = (t.authorization, users) {
        return Err(conflict(e, "operators do not allow users to be configured directly"));
    }
    if let Some(e) = t.no_auth_user {
        return Err(conflict(
            e,
            "no_auth_user names a configured user, and operators do not allow users to be configured directly",
        ));
    }
    if let (Some(e), true) = (t.tls, o.tls.as_ref().is_some_and(|t| t.verify_and_map)) {
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
    Ok(())
}

fn conflict(entry: &Entry, message: &str) -> ConfigError {
    ConfigError::at(ErrorKind::Conflict, &entry.key_pos, message)
}

fn invalid(value: &Value, message: impl Into<String>) -> ConfigError {
    ConfigError::at(ErrorKind::Invalid, &value.pos, message)
}

/// A duration that must be more than zero; a bare number of seconds (where
/// allowed) is accepted with a warning, as nats-server does.
fn positive_duration(entry: &Entry, bare: Bare, warnings: &mut Vec<String>) -> Result<Duration, ConfigError> {
    let name = entry.key.to_ascii_lowercase();
    let (d, was_bare) = section::duration(&entry.value, &name, bare)?;
    if d.is_zero() {
        return Err(invalid(&entry.value, format!("{name} must be more than zero")));
    }
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

/// A file path: a non-empty string.
fn path_string<'v>(value: &'v Value, what: &str) -> Result<&'v str, ConfigError> {
    let s = section::string(value, what)?;
    if s.is_empty() {
        return Err(invalid(value, format!("{what} must not be empty")));
    }
    Ok(s)
}

#[cfg(test)]
mod tests;
