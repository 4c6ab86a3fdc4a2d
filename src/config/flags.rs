//! nats-server's command line, so that images, charts and client test
//! suites that start `nats-server` with flags can start warden unchanged.
//!
//! The rules are those of Go's `flag` package, which nats-server uses: a
//! flag is `-name` or `--name`; a value follows as `-name=value` or as the
//! next argument (`-p -1` is the port -1); a boolean flag takes no next
//! argument but may be `-name=false`; `--` ends the flags. Flags override
//! the config file (nats-server reads the file, then the flags again). A
//! flag for something warden does not do (`-js`, `--profile`, ...) is an
//! error naming the flag, never silently ignored.

use std::fmt;
use std::path::PathBuf;

use super::options::{ClusterOptions, HttpOptions, Options, RouteAuthorization, TlsOptions};
use super::syslog::SyslogTarget;
use super::Authorization;
use crate::secret::Secret;

/// What the command line asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// `-c`/`--config`.
    pub config: Option<PathBuf>,
    /// `-t`: check the configuration and exit.
    pub test_config: bool,
    /// `-sl`/`--signal`: `<command>[=<pid or pid file>]`; sends it and exits.
    pub signal: Option<String>,
    /// `-h`/`--help`, or the positional command `help`.
    pub help: bool,
    /// `--help_tls`.
    pub help_tls: bool,
    /// `-v`/`--version`, or the positional command `version`.
    pub version: bool,
    /// `--log-level` (warden): overrides `-D`/`-V` and the config.
    pub log_level: Option<String>,
    host: Option<String>,
    port: Option<i64>,
    server_name: Option<String>,
    pid_file: Option<PathBuf>,
    ports_file_dir: Option<PathBuf>,
    http_port: Option<i64>,
    https_port: Option<i64>,
    listen: Option<String>,
    http: Option<String>,
    /// `-l`: the log file (read before the config, so a refusal can go there).
    pub log_file: Option<PathBuf>,
    logtime: Option<bool>,
    debug: Option<bool>,
    trace: Option<bool>,
    trace_verbose: Option<bool>,
    max_traced_msg_len: Option<i64>,
    log_size_limit: Option<i64>,
    log_format: Option<String>,
    syslog: Option<bool>,
    remote_syslog: Option<String>,
    user: Option<String>,
    pass: Option<Secret>,
    token: Option<Secret>,
    tls: Option<bool>,
    tls_verify: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    routes: Option<String>,
    cluster: Option<String>,
    cluster_name: Option<String>,
    no_advertise: Option<bool>,
    connect_retries: Option<i64>,
    unauthenticated_routes: Option<bool>,
    /// `-sd`/`--store_dir`: accepted and unused (JetStream's storage).
    pub store_dir: Option<PathBuf>,
}

/// Why the command line cannot be used. `Display` names the flag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlagError {
    /// A flag nats-server does not have either.
    Unknown(String),
    /// A nats-server flag for something warden does not do.
    Unsupported {
        /// The flag as given.
        flag: String,
        /// What it is for.
        what: &'static str,
    },
    /// A flag that needs a value came last.
    MissingValue(String),
    /// A value that does not parse, or is out of range.
    BadValue {
        /// The flag.
        flag: String,
        /// Why.
        why: String,
    },
    /// An argument that is not a flag (only `version` and `help` are).
    Positional(String),
    /// Flags (or flags and the config) that contradict each other.
    Conflict(String),
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagError::Unknown(flag) => write!(f, "flag provided but not defined: -{flag}"),
            FlagError::Unsupported { flag, what } => write!(f, "flag -{flag} ({what}) is not supported by warden"),
            FlagError::MissingValue(flag) => write!(f, "flag needs an argument: -{flag}"),
            FlagError::BadValue { flag, why } => write!(f, "invalid value for flag -{flag}: {why}"),
            FlagError::Positional(arg) => write!(f, "unrecognized command: {arg:?}"),
            FlagError::Conflict(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for FlagError {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Text,
}

/// nats-server 2.9.10 flags that warden does not implement, and what they are for.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("client_advertise", "client URL advertised to other servers"),
    ("profile", "Go's pprof profiler, served without authentication; see SECURITY.md, \"Profiling port\""),
    ("cluster_advertise", "cluster URL advertised to other servers"),
    ("js", "JetStream"),
    ("jetstream", "JetStream"),
];

/// One flag of the server's command line.
#[derive(Debug)]
pub struct Flag {
    /// Its names: the first is the one help shows first; Go's rules take
    /// each with one dash or two.
    pub names: &'static [&'static str],
    /// What its value is, for help; `None` for a boolean flag.
    pub value: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
}

/// Every flag warden takes as the server, in `-h`'s order: the parser's
/// table, and the source of `warden completions` and `warden man`.
pub const FLAGS: &[Flag] = &[
    flag(&["addr", "a", "net"], Some("host"), "Bind to host address (default: 127.0.0.1)"),
    flag(&["port", "p"], Some("port"), "Use port for clients (default: 4222; -1: any free port)"),
    flag(&["server_name", "n", "name"], Some("server_name"), "Server name (default: the server id)"),
    flag(&["pid", "P"], Some("file"), "File to store PID"),
    flag(&["http_port", "m"], Some("port"), "Use port for http monitoring"),
    flag(&["https_port", "ms"], Some("port"), "Use port for https monitoring"),
    flag(&["config", "c"], Some("file"), "Configuration file"),
    flag(&["t"], None, "Test configuration and exit"),
    flag(
        &["signal", "sl"],
        Some("signal[=pid]"),
        "Send signal to the server process (ldm, stop, quit, term, reopen, reload)",
    ),
    flag(
        &["ports_file_dir"],
        Some("dir"),
        "Creates a ports file in the specified directory (<executable_name>_<pid>.ports)",
    ),
    flag(&["listen"], Some("host:port"), "Client listen address (warden)"),
    flag(&["http"], Some("host:port"), "Monitoring listen address (warden)"),
    flag(&["log", "l"], Some("file"), "File to redirect log output"),
    flag(&["logtime", "T"], None, "Timestamp log entries (default: true)"),
    flag(&["debug", "D"], None, "Enable debugging output"),
    flag(&["trace", "V"], None, "Trace the raw protocol"),
    flag(&["DV"], None, "Debug and trace"),
    flag(&["VV"], None, "Verbose trace (traces system account as well)"),
    flag(&["DVV"], None, "Debug and verbose trace (traces system account as well)"),
    flag(&["max_traced_msg_len"], Some("len"), "Maximum printable length for traced messages (0: unlimited)"),
    flag(&["log_size_limit"], Some("limit"), "Logfile size limit in bytes, then it rotates (0: no limit)"),
    flag(&["syslog", "s"], None, "Enable syslog as log method"),
    flag(&["remote_syslog", "r"], Some("url"), "Syslog server addr (udp://127.0.0.1:514)"),
    flag(&["log-level"], Some("level"), "error, warn, info, debug or trace (warden)"),
    flag(&["log-format"], Some("format"), "text or json: one JSON object a line, for log shippers (warden)"),
    flag(&["user"], Some("user"), "User required for connections"),
    flag(&["pass"], Some("password"), "Password required for connections"),
    flag(&["auth"], Some("token"), "Authorization token required for connections"),
    flag(&["tls"], None, "Enable TLS, do not verify clients (default: false)"),
    flag(&["tlscert"], Some("file"), "Server certificate file"),
    flag(&["tlskey"], Some("file"), "Private key for server certificate"),
    flag(&["tlsverify"], None, "Enable TLS, verify client certificates"),
    flag(&["tlscacert"], Some("file"), "Client certificate CA for verification"),
    flag(&["routes"], Some("rurl-1, rurl-2"), "Routes to solicit and connect"),
    flag(&["cluster"], Some("cluster-url"), "Cluster URL for solicited routes (nats://[user:pass@]host:port)"),
    flag(&["cluster_listen"], Some("url"), "The same as --cluster"),
    flag(&["cluster_name"], Some("string"), "Cluster name"),
    flag(&["no_advertise"], None, "Do not advertise known cluster information to clients"),
    flag(&["connect_retries"], Some("number"), "For implicit routes, number of connect retries"),
    flag(
        &["insecure_allow_unauthenticated_routes"],
        None,
        "Routes without credentials or TLS, on a trusted loopback network (warden)",
    ),
    flag(&["help", "h"], None, "Show this message"),
    flag(&["version", "v"], None, "Show version"),
    flag(&["help_tls"], None, "TLS help"),
    flag(&["store_dir", "sd"], Some("dir"), "Accepted and unused (JetStream storage; JetStream itself is refused)"),
];

const fn flag(names: &'static [&'static str], value: Option<&'static str>, help: &'static str) -> Flag {
    Flag { names, value, help }
}

fn kind(name: &str) -> Option<Kind> {
    let flag = FLAGS.iter().find(|f| f.names.contains(&name))?;
    Some(if flag.value.is_some() { Kind::Text } else { Kind::Bool })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(flag: &str, value: &str) -> Result<bool, FlagError> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(FlagError::BadValue { flag: flag.into(), why: format!("{value:?} is not a boolean") }),
    }
}

fn parse_int(flag: &str, value: &str) -> Result<i64, FlagError> {
    value.parse().map_err(|_| FlagError::BadValue { flag: flag.into(), why: format!("{value:?} is not an integer") })
}

/// Parses the arguments after the program name (or after `serve`).
pub fn parse(args: &[String]) -> Result<Flags, FlagError> {
    let mut flags = Flags::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            for positional in rest.by_ref() {
                flags.positional(positional)?;
            }
            break;
        }
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')).filter(|b| !b.is_empty()) else {
            flags.positional(arg)?;
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        if let Some((_, what)) = UNSUPPORTED.iter().find(|(n, _)| *n == name) {
            return Err(FlagError::Unsupported { flag: name.into(), what });
        }
        let Some(kind) = kind(name) else { return Err(FlagError::Unknown(name.into())) };
        match kind {
            Kind::Bool => {
                let on = inline.map_or(Ok(true), |v| parse_bool(name, v))?;
                flags.set_bool(name, on);
            }
            Kind::Text => {
                let value = match inline {
                    Some(v) => v.to_owned(),
                    None => rest.next().cloned().ok_or_else(|| FlagError::MissingValue(name.into()))?,
                };
                flags.set_text(name, value)?;
            }
        }
    }
    Ok(flags)
}

impl Flags {
    fn positional(&mut self, arg: &str) -> Result<(), FlagError> {
        match arg {
            "version" => self.version = true,
            "help" => self.help = true,
            other => return Err(FlagError::Positional(other.into())),
        }
        Ok(())
    }

    fn set_bool(&mut self, name: &str, on: bool) {
        match name {
            "h" | "help" => self.help = on,
            "help_tls" => self.help_tls = on,
            "t" => self.test_config = on,
            "v" | "version" => self.version = on,
            "D" | "debug" => self.debug = Some(on),
            "V" | "trace" => self.trace = Some(on),
            "DV" => {
                self.debug = Some(on);
                self.trace = Some(on);
            }
            // Verbose trace: the system account's connections too.
            "VV" => {
                self.trace = Some(on);
                self.trace_verbose = Some(on);
            }
            "DVV" => {
                self.debug = Some(on);
                self.trace = Some(on);
                self.trace_verbose = Some(on);
            }
            "T" | "logtime" => self.logtime = Some(on),
            "s" | "syslog" => self.syslog = Some(on),
            "tls" => self.tls = Some(on),
            "tlsverify" => self.tls_verify = Some(on),
            "no_advertise" => self.no_advertise = Some(on),
            _ => self.unauthenticated_routes = Some(on),
        }
    }

    fn set_text(&mut self, name: &str, value: String) -> Result<(), FlagError> {
        match name {
            "c" | "config" => self.config = Some(value.into()),
            "sl" | "signal" => self.signal = Some(value),
            "p" | "port" => self.port = Some(parse_int(name, &value)?),
            "a" | "addr" | "net" => self.host = Some(value),
            "n" | "name" | "server_name" => self.server_name = Some(value),
            "P" | "pid" => self.pid_file = Some(value.into()),
            "ports_file_dir" => self.ports_file_dir = Some(value.into()),
            "m" | "http_port" => self.http_port = Some(parse_int(name, &value)?),
            "ms" | "https_port" => self.https_port = Some(parse_int(name, &value)?),
            "l" | "log" => self.log_file = Some(value.into()),
            "user" => self.user = Some(value),
            "pass" => self.pass = Some(Secret::new(value)),
            "auth" => self.token = Some(Secret::new(value)),
            "tlscert" => self.tls_cert = Some(value.into()),
            "tlskey" => self.tls_key = Some(value.into()),
            "tlscacert" => self.tls_ca = Some(value.into()),
            "routes" => self.routes = Some(value),
            "cluster" | "cluster_listen" => self.cluster = Some(value),
            "cluster_name" => self.cluster_name = Some(value),
            "connect_retries" => self.connect_retries = Some(parse_int(name, &value)?),
            "max_traced_msg_len" => self.max_traced_msg_len = Some(parse_int(name, &value)?),
            "log_size_limit" => self.log_size_limit = Some(parse_int(name, &value)?),
            "log-format" => self.log_format = Some(value),
            "r" | "remote_syslog" => self.remote_syslog = Some(value),
            "listen" => self.listen = Some(value),
            // Only JetStream uses it, and `-js` is refused; client test
            // harnesses pass it to every server they start.
            "sd" | "store_dir" => self.store_dir = Some(value.into()),
            "http" => self.http = Some(value),
            _ => self.log_level = Some(value),
        }
        Ok(())
    }

    /// Applies the flags over options read from the config file (or the
    /// defaults), as nats-server does: a flag that was given wins.
    pub fn apply(&self, opts: &mut Options) -> Result<(), FlagError> {
        if let Some(listen) = &self.listen {
            let (host, port) = host_port("listen", listen)?;
            if !host.is_empty() {
                opts.host = host;
            }
            opts.port = port;
        }
        if let Some(host) = &self.host {
            opts.host = host.clone();
        }
        if let Some(port) = self.port {
            opts.port = port_number("port", port)?;
        }
        if let Some(name) = &self.server_name {
            opts.server_name = Some(name.clone());
        }
        if let Some(path) = &self.pid_file {
            opts.pid_file = Some(path.clone());
        }
        if let Some(path) = &self.ports_file_dir {
            opts.ports_file_dir = Some(path.clone());
        }
        if let Some(path) = &self.log_file {
            opts.log_file = Some(path.clone());
        }
        if let Some(on) = self.logtime {
            opts.logtime = on;
        }
        if let Some(on) = self.debug {
            opts.debug = on;
        }
        if let Some(on) = self.trace {
            opts.trace = on;
        }
        if let Some(on) = self.trace_verbose {
            opts.trace_verbose = on;
        }
        if let Some(format) = &self.log_format {
            opts.log_json = match format.to_ascii_lowercase().as_str() {
                "json" => true,
                "text" => false,
                _ => {
                    return Err(FlagError::BadValue { flag: "log-format".into(), why: "must be text or json".into() });
                }
            };
        }
        if let Some(on) = self.syslog {
            opts.syslog = on;
        }
        if let Some(url) = &self.remote_syslog {
            let target = SyslogTarget::parse_remote(url)
                .map_err(|why| FlagError::BadValue { flag: "remote_syslog".into(), why })?;
            opts.remote_syslog = Some(target);
        }
        if let Some(limit) = self.log_size_limit {
            opts.log_size_limit = u64::try_from(limit).map_err(|_| FlagError::BadValue {
                flag: "log_size_limit".into(),
                why: "must not be negative".into(),
            })?;
        }
        if let Some(len) = self.max_traced_msg_len {
            opts.max_traced_msg_len = usize::try_from(len).map_err(|_| FlagError::BadValue {
                flag: "max_traced_msg_len".into(),
                why: "must not be negative".into(),
            })?;
        }
        self.apply_auth(opts)?;
        self.apply_tls(opts)?;
        self.apply_monitoring(opts)?;
        self.apply_cluster(opts)
    }

    fn apply_auth(&self, opts: &mut Options) -> Result<(), FlagError> {
        if self.user.is_none() && self.pass.is_none() && self.token.is_none() {
            return Ok(());
        }
        let auth = opts.authorization.get_or_insert_with(Authorization::default);
        if self.token.is_some() && (self.user.is_some() || self.pass.is_some()) {
            return Err(FlagError::Conflict("Cannot have a user/pass and token".into()));
        }
        if !auth.users.is_empty() {
            return Err(FlagError::Conflict("Can not have a single user/pass and a users array".into()));
        }
        if let Some(token) = &self.token {
            auth.token = Some(token.clone());
            auth.user = None;
            auth.password = None;
        }
        if let Some(user) = &self.user {
            auth.user = Some(user.clone());
            auth.token = None;
        }
        if let Some(pass) = &self.pass {
            auth.password = Some(pass.clone());
            auth.token = None;
        }
        match (&auth.user, &auth.password) {
            (Some(_), None) => Err(FlagError::MissingValue("pass".into())),
            (None, Some(_)) => Err(FlagError::MissingValue("user".into())),
            _ => Ok(()),
        }
    }

    /// As nats-server: any `--tls*` flag (unless `--tls=false`) replaces the
    /// config's `tls {}` with one made of the flags; `--tls=false` removes it.
    fn apply_tls(&self, opts: &mut Options) -> Result<(), FlagError> {
        if self.tls == Some(false) {
            opts.tls = None;
            return Ok(());
        }
        let any = self.tls.is_some()
            || self.tls_verify.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.tls_ca.is_some();
        if !any {
            return Ok(());
        }
        let cert_file = self
            .tls_cert
            .clone()
            .ok_or_else(|| FlagError::Conflict("TLS Server certificate must be present and valid".into()))?;
        let key_file = self
            .tls_key
            .clone()
            .ok_or_else(|| FlagError::Conflict("TLS Server private key must be present and valid".into()))?;
        let verify = self.tls_verify.unwrap_or(false);
        if verify && self.tls_ca.is_none() {
            return Err(FlagError::Conflict(
                "--tlsverify needs --tlscacert (warden does not trust the system roots for clients)".into(),
            ));
        }
        opts.tls =
            Some(TlsOptions { cert_file, key_file, ca_file: self.tls_ca.clone(), verify, ..TlsOptions::default() });
        Ok(())
    }

    /// `-m`/`--http_port`, `-ms`/`--https_port` and warden's `--http`. The
    /// monitoring host follows the client host, as nats-server's.
    fn apply_monitoring(&self, opts: &mut Options) -> Result<(), FlagError> {
        if self.http_port.is_some() && self.https_port.is_some() {
            return Err(FlagError::Conflict(format!("-m and -ms: {}", super::load::HTTP_AND_HTTPS)));
        }
        let host = opts.http.as_ref().map_or_else(|| opts.host.clone(), |h| h.host.clone());
        if let Some(port) = self.http_port {
            opts.http = Some(HttpOptions { host: host.clone(), port: port_number("http_port", port)?, tls: false });
        }
        if let Some(port) = self.https_port {
            if opts.tls.is_none() {
                return Err(FlagError::Conflict("-ms serves monitoring with the TLS certificate: give --tls".into()));
            }
            opts.http = Some(HttpOptions { host, port: port_number("https_port", port)?, tls: true });
        }
        if let Some(http) = &self.http {
            let (host, port) = host_port("http", http)?;
            let host = if host.is_empty() { "127.0.0.1".to_owned() } else { host };
            let tls = opts.http.as_ref().is_some_and(|h| h.tls);
            opts.http = Some(HttpOptions { host, port, tls });
        }
        Ok(())
    }

    fn apply_cluster(&self, opts: &mut Options) -> Result<(), FlagError> {
        if let Some(url) = &self.cluster {
            if url.is_empty() {
                opts.cluster = None;
            } else {
                let listen = ListenUrl::parse(url)?;
                let cluster = opts.cluster.get_or_insert_with(ClusterOptions::default);
                cluster.host = listen.host;
                cluster.port = listen.port;
                cluster.no_listener = false;
                cluster.authorization = listen.credentials;
            }
        }
        if let Some(routes) = &self.routes {
            let Some(cluster) = opts.cluster.as_mut() else {
                return Err(FlagError::Conflict(
                    "solicited routes require cluster capabilities, e.g. --cluster".into(),
                ));
            };
            cluster.routes = routes.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect();
        }
        let any_cluster_flag = self.cluster_name.is_some()
            || self.no_advertise.is_some()
            || self.connect_retries.is_some()
            || self.unauthenticated_routes.is_some();
        if !any_cluster_flag {
            return Ok(());
        }
        let Some(cluster) = opts.cluster.as_mut() else {
            return Err(FlagError::Conflict("cluster flags need a cluster: give --cluster".into()));
        };
        if let Some(name) = &self.cluster_name {
            cluster.name = Some(name.clone());
        }
        if let Some(on) = self.no_advertise {
            cluster.no_advertise = on;
        }
        if let Some(n) = self.connect_retries {
            cluster.connect_retries = u32::try_from(n).map_err(|_| FlagError::BadValue {
                flag: "connect_retries".into(),
                why: format!("{n} is not between 0 and {}", u32::MAX),
            })?;
        }
        if let Some(on) = self.unauthenticated_routes {
            cluster.allow_unauthenticated = on;
        }
        Ok(())
    }
}

/// A port flag: -1 (nats-server's "any free port") is 0 here.
fn port_number(flag: &str, port: i64) -> Result<u16, FlagError> {
    if port == -1 {
        return Ok(0);
    }
    u16::try_from(port).map_err(|_| FlagError::BadValue { flag: flag.into(), why: format!("{port} is not a port") })
}

/// `HOST:PORT`, `:PORT` or `[v6]:PORT` (warden's `--listen` and `--http`).
fn host_port(flag: &str, text: &str) -> Result<(String, u16), FlagError> {
    let bad = || FlagError::BadValue { flag: flag.into(), why: format!("{text:?} is not HOST:PORT") };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: i64 = port.parse().map_err(|_| bad())?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port_number(flag, port)?))
}

/// `--cluster nats://[user:pass@]host:port` (port -1: any free port).
struct ListenUrl {
    host: String,
    port: u16,
    credentials: Option<RouteAuthorization>,
}

impl ListenUrl {
    fn parse(url: &str) -> Result<ListenUrl, FlagError> {
        let bad = |why: &str| FlagError::BadValue { flag: "cluster".into(), why: why.into() };
        let (_, rest) = url.split_once("://").ok_or_else(|| bad("expected nats://[user:pass@]host:port"))?;
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, rest),
        };
        let (host, port) = host_port("cluster", hostport)?;
        let credentials = match userinfo {
            None => None,
            Some(info) => {
                let (user, pass) = info.split_once(':').ok_or_else(|| bad("expected cluster password to be set"))?;
                Some(RouteAuthorization { user: user.to_owned(), password: Some(Secret::new(pass)), timeout: None })
            }
        };
        Ok(ListenUrl { host: if host.is_empty() { "0.0.0.0".into() } else { host }, port, credentials })
    }
}

/// The flags, for `-h` (nats-server's layout, warden's additions marked).
pub const USAGE: &str = "\
Usage: nats-server [options]        (also: warden [options], warden serve [options])

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 127.0.0.1)
    -p, --port <port>                Use port for clients (default: 4222; -1: any free port)
    -n, --name
        --server_name <server_name>  Server name (default: the server id)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -ms,--https_port <port>          Use port for https monitoring
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to the server process (ldm, stop, quit, term, reopen, reload)
                                     <pid> can be either a PID (e.g. 1) or the path to a PID file
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports)
        --listen <host:port>         Client listen address (warden)
        --http <host:port>           Monitoring listen address (warden)

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -DV                              Debug and trace
    -VV                              Verbose trace (traces system account as well)
    -DVV                             Debug and verbose trace (traces system account as well)
        --max_traced_msg_len <len>   Maximum printable length for traced messages (0: unlimited)
        --log_size_limit <limit>     Logfile size limit in bytes, then it rotates (0: no limit)
    -s, --syslog                     Enable syslog as log method
    -r, --remote_syslog <url>        Syslog server addr (udp://127.0.0.1:514)
        --log-level <level>          error, warn, info, debug or trace (warden)
        --log-format <format>        text or json: one JSON object a line, for log shippers (warden)

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes (nats://[user:pass@]host:port)
        --cluster_listen <url>       The same
        --cluster_name <string>      Cluster name
        --no_advertise <bool>        Do not advertise known cluster information to clients
        --connect_retries <number>   For implicit routes, number of connect retries
        --insecure_allow_unauthenticated_routes
                                     Routes without credentials or TLS, on a trusted loopback network (warden)

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
        --help_tls                   TLS help

Not supported (an error): -js/--jetstream, --profile, --client_advertise,
--cluster_advertise.
Accepted and unused: -sd/--store_dir (JetStream storage; JetStream itself is refused).
";

/// `--help_tls`.
pub const TLS_USAGE: &str = "\
TLS Options:
    --tls                        Enable TLS, do not verify clients
    --tlscert <file>             Server certificate file (PEM)
    --tlskey <file>              Private key for the server certificate (PEM)
    --tlsverify                  Enable TLS, verify client certificates against --tlscacert
    --tlscacert <file>           CA bundle for client certificate verification (PEM)

warden offers TLS 1.2 and 1.3 with rustls' default (AEAD-only) cipher suites; a config
file's tls {} block also takes min_version, handshake_first and allow_non_tls.
";

#[cfg(test)]
mod tests;
