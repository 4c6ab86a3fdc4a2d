//! The typed, validated configuration. The config reader produces one
//! `Options`; nothing at run time looks options up by name.

use std::path::PathBuf;
use std::time::Duration;

use super::syslog::SyslogTarget;
use crate::secret::Secret;

/// Everything the server needs to start. `Options::default()` is the safe
/// embedded default a newcomer runs first: loopback only, nats-server's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Client listen host (`host`/`net`, or the host part of `listen`).
    pub host: String,
    /// Client listen port; 0 picks a free port.
    pub port: u16,
    /// `server_name`; the server id when absent.
    pub server_name: Option<String>,
    /// `server_tags`: labels in `/varz` and every `$SYS` message's server
    /// info, which `$SYS.REQ.SERVER.PING.*` requests filter on (`tags`).
    /// Kept as written (trimmed, duplicates dropped), as nats-server 2.15.
    pub server_tags: Vec<String>,
    /// `server_metadata`: free-form `key: value` strings shown in `/varz`
    /// and every `$SYS` message's server info (`metadata`), by key.
    pub server_metadata: std::collections::BTreeMap<String, String>,
    /// `max_connections` / `max_conn`; 0 refuses every client (nats-server
    /// reads 0 and below so).
    pub max_connections: usize,
    /// `max_connections_per_ip` (warden only): live connections one peer
    /// address may hold; 0 = no limit (the default, as nats-server has none).
    pub max_connections_per_ip: usize,
    /// `accept_rate { ... }` (warden only) of the client listener, or
    /// nats-server's `tls { connection_rate_limit }` read into it.
    pub accept_rate: AcceptRate,
    /// `proxy_protocol`: the client listener reads a PROXY protocol header
    /// (v1 or v2) from connections from `trusted_proxies`, and takes the
    /// client's address from it.
    pub proxy_protocol: bool,
    /// `trusted_proxies` (warden only) at the top level: the addresses or
    /// CIDRs `proxy_protocol` believes, and which must send a header.
    pub trusted_proxies: Vec<String>,
    /// `max_subscriptions` / `max_subs` per connection; 0 = unlimited.
    /// warden's default is [`DEFAULT_MAX_SUBSCRIPTIONS`], not unlimited
    /// (nats-server's 0): one connection should not hold hundreds of MiB.
    pub max_subscriptions: usize,
    /// `max_payload`, bytes.
    pub max_payload: usize,
    /// `max_pending`, bytes of outbound data per client before it is a slow consumer.
    pub max_pending: usize,
    /// `max_control_line`, bytes.
    pub max_control_line: usize,
    /// `ping_interval`.
    pub ping_interval: Duration,
    /// `ping_max`: unanswered PINGs before `Stale Connection`.
    pub ping_max: u32,
    /// `write_deadline`: a write that takes longer makes a slow consumer.
    pub write_deadline: Duration,
    /// `lame_duck_duration`.
    pub lame_duck_duration: Duration,
    /// `lame_duck_grace_period`.
    pub lame_duck_grace_period: Duration,
    /// `tls_watch_interval` (warden only): how often the TLS listeners'
    /// certificate, key and CA files are looked at, to rotate them without
    /// a restart; zero turns it off.
    pub tls_watch_interval: Duration,
    /// `tls_expiry_warning` (warden only): a certificate that expires
    /// within it is warned about at start and daily.
    pub tls_expiry_warning: Duration,
    /// `debug`.
    pub debug: bool,
    /// `trace`: nats-server's protocol trace, each op in and out.
    pub trace: bool,
    /// `trace_verbose`: the system account's connections are traced too.
    pub trace_verbose: bool,
    /// `max_traced_msg_len`: payload bytes a trace line shows (0: all).
    pub max_traced_msg_len: usize,
    /// `logtime`.
    pub logtime: bool,
    /// `log_file` / `logfile`.
    pub log_file: Option<PathBuf>,
    /// `logfile_size_limit` / `log_size_limit`: the log file rotates past
    /// this many bytes (0: never).
    pub log_size_limit: u64,
    /// `logfile_max_num` / `log_max_num`: rotated files kept, the current
    /// one included (0: all).
    pub log_max_num: usize,
    /// `log_format: json` (warden): one JSON object a line, for log
    /// shippers; `text` (the default) is nats-server's lines.
    pub log_json: bool,
    /// `syslog` / `-s`: log to the local syslog daemon (unless `log_file`
    /// or `remote_syslog` is set, as nats-server chooses).
    pub syslog: bool,
    /// `remote_syslog` / `-r`: log to a syslog daemon over UDP, TCP or a
    /// Unix socket (unless `log_file` is set).
    pub remote_syslog: Option<SyslogTarget>,
    /// `audit {}` (warden only): the audit trail of logins, denials and
    /// admin actions; `None`: no trail.
    pub audit: Option<AuditOptions>,
    /// `pid_file` / `pidfile`: the process id is written there at start and
    /// the file removed at exit (what `-sl ...=FILE` reads).
    pub pid_file: Option<PathBuf>,
    /// `ports_file_dir`: a `<executable>_<pid>.ports` file with the bound
    /// URLs is written there at start and removed at exit.
    pub ports_file_dir: Option<PathBuf>,
    /// `no_auth_user`: a configured user that connections presenting no
    /// credentials are logged in as.
    pub no_auth_user: Option<String>,
    /// `authorization { ... }`.
    pub authorization: Option<Authorization>,
    /// `tls { ... }` for client connections.
    pub tls: Option<TlsOptions>,
    /// Monitoring listener: `http`, `http_port`, `monitor_port`, or
    /// (served over TLS with the `tls {}` certificate) `https`, `https_port`.
    pub http: Option<HttpOptions>,
    /// `http_base_path`: a path prefix for every monitoring endpoint,
    /// normalised to `/a/b` (no trailing slash); `None` serves them at `/`.
    pub http_base_path: Option<String>,
    /// `http_authorization { ... }`: credentials the monitoring endpoints
    /// require (warden-specific; nats-server's monitoring has none).
    pub http_authorization: Option<HttpAuthorization>,
    /// `cluster { ... }`.
    pub cluster: Option<ClusterOptions>,
    /// `websocket { ... }`: the listener for browsers.
    pub websocket: Option<WebsocketOptions>,
    /// `leafnodes { ... }`: the leaf node listener (hub side).
    pub leafnodes: Option<LeafnodeOptions>,
    /// `gateway { ... }`: this cluster in a supercluster.
    pub gateway: Option<GatewayOptions>,
    /// `check_reply_subjects` (warden only, default on): a PUB's reply
    /// subject must be one the publisher may subscribe to, so a requester
    /// cannot borrow a service's publish rights through it.
    pub check_reply_subjects: bool,
    /// `accounts { NAME: { ... } }`: the tenants besides the global account
    /// `$G` (where users of `authorization` live).
    pub accounts: Vec<AccountConfig>,
    /// `mappings` at the top level: the global account's subject mappings.
    pub mappings: Vec<crate::subject::MappingRule>,
    /// `system_account` (default `$SYS`, created if absent); `None` with
    /// `no_system_account: true`. In operator mode, an account's public key.
    pub system_account: Option<String>,
    /// Operator mode (`operator`, `resolver`, `resolver_preload`): accounts
    /// and users come from JWTs, not from this file.
    pub operator: Option<OperatorOptions>,
}

/// Operator mode: who is trusted to sign accounts, and where their JWTs are.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorOptions {
    /// The operator JWTs (verified at load).
    pub operators: Vec<String>,
    /// Where account JWTs come from.
    pub resolver: ResolverOptions,
    /// `resolver_preload`: account public key and its JWT (verified at
    /// load), in config order.
    pub preload: Vec<(String, String)>,
}

/// An account resolver.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolverOptions {
    /// `resolver: MEMORY`: the preloaded accounts; pushed updates of them
    /// last until restart.
    Memory,
    /// `resolver { type: full | cache, dir }`: `<dir>/<key>.jwt` files,
    /// updated by pushed JWTs.
    Directory {
        /// `dir`.
        dir: std::path::PathBuf,
        /// `type: full` (every account of the operator) rather than `cache`.
        full: bool,
        /// `allow_delete` (accepted; deletion requests are not implemented).
        allow_delete: bool,
        /// `interval` (accepted; warden does not sync stores between servers).
        interval: Duration,
        /// `limit`: most accounts held.
        limit: usize,
    },
}

/// The account of users defined outside `accounts` (nats-server's name).
pub const GLOBAL_ACCOUNT: &str = "$G";

/// The system account's name when `system_account` is not set.
pub const DEFAULT_SYSTEM_ACCOUNT: &str = "$SYS";

/// Default of an account's `limits { max_pending_responses }`.
pub const DEFAULT_MAX_PENDING_RESPONSES: usize = 65_536;

/// Default service-export `threshold`, as nats-server.
pub const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);

/// One entry of `accounts`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountConfig {
    /// The account's name.
    pub name: String,
    /// `nkey`: the account's public key (`A...`), checked at load.
    pub nkey: Option<String>,
    /// `users`: the entries with a user name.
    pub users: Vec<User>,
    /// `users`: the entries with an nkey.
    pub nkeys: Vec<NkeyUser>,
    /// `default_permissions`: for this account's users without their own.
    pub default_permissions: Option<Permissions>,
    /// `exports`.
    pub exports: Vec<Export>,
    /// `imports`.
    pub imports: Vec<Import>,
    /// `limits`.
    pub limits: AccountLimits,
    /// `mappings`: the account's subject mappings.
    pub mappings: Vec<crate::subject::MappingRule>,
    /// `msg_trace`: where sampled `traceparent` messages are traced.
    pub msg_trace: Option<MsgTrace>,
}

/// An account's `msg_trace { dest, sampling }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgTrace {
    /// The subject trace events go to (a valid literal subject).
    pub dest: String,
    /// Percent of sampled `traceparent` messages traced, 1 to 100.
    pub sampling: u8,
}

/// An account's `limits { ... }`; `None` = no limit of the account's own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccountLimits {
    /// `max_connections`: live connections of the account on this server.
    pub max_connections: Option<usize>,
    /// `max_subscriptions`: subscriptions per connection (as nats-server).
    pub max_subscriptions: Option<usize>,
    /// `max_payload`: largest message a connection of the account may publish.
    pub max_payload: Option<usize>,
    /// `max_leafnodes`: leaf node connections bound to the account on this
    /// server (counted apart from `max_connections`, as nats-server).
    pub max_leafnodes: Option<usize>,
    /// `max_pending_responses` (warden only): service-import requests of
    /// this account waiting for their response, per import; the oldest is
    /// forgotten when a new one would exceed it.
    pub max_pending_responses: usize,
    /// `rate_limit` (warden): how fast the account's connections on this
    /// server may publish, together.
    pub rate_limit: Option<RateLimit>,
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            max_connections: None,
            max_subscriptions: None,
            max_payload: None,
            max_leafnodes: None,
            max_pending_responses: DEFAULT_MAX_PENDING_RESPONSES,
            rate_limit: None,
        }
    }
}

/// How a service answers (`response` of a service export).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseType {
    /// One response per request (the default).
    #[default]
    Singleton,
    /// Any number of responses until the threshold.
    Stream,
    /// Any number of responses (parts of one) until the threshold.
    Chunked,
}

impl ResponseType {
    /// nats-server's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Singleton => "Singleton",
            ResponseType::Stream => "Stream",
            ResponseType::Chunked => "Chunked",
        }
    }
}

/// One entry of an account's `exports`.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// `stream` or `service`: the subject (pattern) exported.
    pub subject: String,
    /// What is exported.
    pub kind: ExportKind,
    /// `accounts`: who may import it; `None` = every account (public, as
    /// nats-server; warden names each public export at start).
    pub accounts: Option<Vec<String>>,
    /// `allow_trace`: message traces may cross this export (nats-server
    /// 2.11). Kept for message tracing, which warden does not do yet.
    pub allow_trace: bool,
    /// Where it was written, for messages (`file:line:col`).
    pub pos: String,
}

/// A stream or a service export.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExportKind {
    /// `stream`: messages published in the exporting account.
    Stream,
    /// `service`: requests from importers, answered by the exporter.
    Service {
        /// `response`.
        response: ResponseType,
        /// `threshold`: how long a request may wait for (more) responses.
        threshold: Duration,
    },
}

/// One entry of an account's `imports`.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// The exporting account.
    pub account: String,
    /// The exporter's subject.
    pub subject: String,
    /// What is imported, and under which local subject.
    pub kind: ImportKind,
    /// `allow_trace` on a stream import: message traces may follow the
    /// stream into this account (nats-server 2.11). Kept for message
    /// tracing, which warden does not do yet.
    pub allow_trace: bool,
    /// Where it was written, for messages (`file:line:col`).
    pub pos: String,
}

/// A stream or a service import.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportKind {
    /// `stream`: delivered to this account's subscribers.
    Stream {
        /// `prefix` prepended to the subject, or `to` (positional wildcards).
        local: LocalSubject,
    },
    /// `service`: this account's requests to `to` (default: `subject`) go
    /// to the exporter.
    Service {
        /// The local subject requests are published to.
        to: String,
        /// `share`: requests carry the requester's details in
        /// `Nats-Request-Info` (`broker::ClientInfo::request`).
        share: bool,
    },
}

/// How a stream import names its subjects locally.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalSubject {
    /// The exporter's subject, unchanged.
    Same,
    /// `prefix`.
    Prefix(String),
    /// `to`.
    To(String),
}

/// Default per-connection `max_subscriptions`: about 9 MiB of server memory
/// at ~560 bytes each (`scripts/resources.sh`). Write `max_subscriptions: 0`
/// for nats-server's unlimited.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 16_384;

/// Default client port, as nats-server.
pub const DEFAULT_PORT: u16 = 4222;

impl Options {
    /// The syslog daemon the log goes to, if any. One sink, chosen as
    /// nats-server chooses it: `log_file`, else `remote_syslog`, else
    /// `syslog`, else standard error.
    pub fn syslog_target(&self) -> Option<SyslogTarget> {
        match (&self.log_file, &self.remote_syslog) {
            (Some(_), _) => None,
            (None, Some(remote)) => Some(remote.clone()),
            (None, None) => self.syslog.then_some(SyslogTarget::Local),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            server_name: None,
            server_tags: Vec::new(),
            server_metadata: std::collections::BTreeMap::new(),
            max_connections: 65_536,
            max_connections_per_ip: 0,
            accept_rate: AcceptRate::default(),
            proxy_protocol: false,
            trusted_proxies: Vec::new(),
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_payload: 1024 * 1024,
            max_pending: 64 * 1024 * 1024,
            max_control_line: 4096,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            write_deadline: Duration::from_secs(10),
            lame_duck_duration: Duration::from_secs(120),
            lame_duck_grace_period: Duration::from_secs(10),
            tls_watch_interval: Duration::from_secs(5),
            tls_expiry_warning: Duration::from_secs(30 * 24 * 3600),
            debug: false,
            trace: false,
            trace_verbose: false,
            max_traced_msg_len: 0,
            log_size_limit: 0,
            log_max_num: 0,
            log_json: false,
            syslog: false,
            remote_syslog: None,
            audit: None,
            logtime: true,
            log_file: None,
            pid_file: None,
            ports_file_dir: None,
            no_auth_user: None,
            authorization: None,
            tls: None,
            http: None,
            http_base_path: None,
            http_authorization: None,
            cluster: None,
            websocket: None,
            leafnodes: None,
            gateway: None,
            check_reply_subjects: true,
            accounts: Vec::new(),
            mappings: Vec::new(),
            system_account: Some(DEFAULT_SYSTEM_ACCOUNT.into()),
            operator: None,
        }
    }
}

/// A listener's `accept_rate { ... }` (warden only): new connections a
/// second it keeps, in all and from one peer address, each with a burst.
/// A connection over either is closed as soon as it is accepted, before
/// TLS and INFO. 0 = no limit (the default: nats-server has none but
/// `tls { connection_rate_limit }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcceptRate {
    /// `conns_per_sec`: connections a second the listener keeps in all.
    pub conns_per_sec: u32,
    /// `burst_conns`: connections it keeps at once after a quiet spell
    /// (default: `conns_per_sec`).
    pub burst_conns: u32,
    /// `conns_per_sec_per_ip`: connections a second from one address.
    pub conns_per_sec_per_ip: u32,
    /// `burst_conns_per_ip`: at once from one address (default:
    /// `conns_per_sec_per_ip`).
    pub burst_conns_per_ip: u32,
}

impl AcceptRate {
    /// Whether it limits anything.
    pub fn is_on(&self) -> bool {
        self.conns_per_sec > 0 || self.conns_per_sec_per_ip > 0
    }
}

/// `audit { file, max_file_size, max_files, publish, denials_per_second }`
/// (warden only): where the audit trail goes. See `src/audit/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// `file`: JSON lines are appended to it (created with mode 0600).
    pub file: Option<PathBuf>,
    /// `max_file_size`: the file rotates past this many bytes (0: never).
    pub max_file_size: u64,
    /// `max_files`: files kept, the current one included (0: all).
    pub max_files: usize,
    /// `publish`: every record also goes to `$SYS.AUDIT.<server id>.<type>`
    /// in the system account.
    pub publish: bool,
    /// `denials_per_second`: permission denials recorded a second per
    /// source address; the rest are counted in a summary record.
    pub denials_per_second: u32,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            file: None,
            max_file_size: 100 * 1024 * 1024,
            max_files: 10,
            publish: false,
            denials_per_second: 10,
        }
    }
}

/// `authorization { ... }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Authorization {
    /// Single `token`.
    pub token: Option<Secret>,
    /// Single `user` / `username`.
    pub user: Option<String>,
    /// Single `password` / `pass`.
    pub password: Option<Secret>,
    /// `timeout`: time allowed between connect and CONNECT.
    pub timeout: Option<Duration>,
    /// `users = [ ... ]`: the entries with a user name.
    pub users: Vec<User>,
    /// `users = [ {nkey: U...} ]`: the entries with an nkey.
    pub nkeys: Vec<NkeyUser>,
    /// `default_permissions`: for users without their own.
    pub default_permissions: Option<Permissions>,
    /// `failure_delay_max` (warden only): longest delay before answering a
    /// repeated login failure from one address; `"0s"` turns the throttle off.
    pub failure_delay_max: Option<Duration>,
    /// `auth_callout { }` or (warden only) `http_authorizer { }`: a service
    /// that admits the clients the configured users do not.
    pub delegation: Option<Delegation>,
}

/// An external service that decides logins (`auth_callout`,
/// `http_authorizer`), and how far it is trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Delegation {
    /// Which service, and how to reach it.
    pub service: DelegateService,
    /// `auth_users`: users who always log in locally, never through the
    /// service (the service's own users).
    pub auth_users: Vec<String>,
    /// `allowed_accounts` (with `local_first: false`): the accounts whose
    /// local users are handed to the service; empty = all.
    pub allowed_accounts: Vec<String>,
    /// `local_first` (warden only, default true): configured users log in
    /// as configured and only unknown clients go to the service. False is
    /// nats-server's order: everyone but `auth_users` goes to the service.
    pub local_first: bool,
    /// `reveal_reason` (warden only, default false): send the service's
    /// refusal text to the client (`Authorization Violation: <reason>`).
    pub reveal_reason: bool,
    /// `max_in_flight` (warden only): questions outstanding at once; more
    /// wait for a free slot (within their auth timeout).
    pub max_in_flight: usize,
    /// `timeout`: how long an answer may take (default: the auth timeout).
    pub timeout: Option<Duration>,
}

/// The service a [`Delegation`] asks.
#[derive(Debug, Clone, PartialEq)]
pub enum DelegateService {
    /// nats-server 2.10's auth callout: a request on `$SYS.REQ.USER.AUTH`.
    Callout {
        /// `issuer`: the account key (`A...`) that signs the answers.
        issuer: String,
        /// `account`: where the service listens (default `$G`).
        account: String,
        /// `xkey`: the service's curve key (`X...`), to encrypt both ways.
        xkey: Option<String>,
    },
    /// warden's HTTP authorizer: a JSON POST.
    Http {
        /// `url`: `https://...` (or `http://` to a loopback address).
        url: String,
        /// `ca_file`: the roots the server's certificate is checked against
        /// (default: the system's bundle).
        ca_file: Option<PathBuf>,
        /// `headers`: sent with every request (values may be secrets).
        headers: Vec<(String, Secret)>,
    },
}

/// One entry of `users`.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// `user` / `username`; for certificate mapping, an email, DNS name, URI or DN.
    pub user: String,
    /// `password` / `pass`: an argon2 PHC string, a bcrypt hash or plain text.
    pub password: Option<Secret>,
    /// `permissions` / `permission`.
    pub permissions: Option<Permissions>,
    /// `tags` (warden): `key:value` strings for `{{tag(key)}}` in
    /// permission templates, as a user JWT's tags are.
    pub tags: Vec<String>,
    /// `rate_limit` (warden): how fast each of the user's connections may
    /// publish.
    pub rate_limit: Option<RateLimit>,
    /// `allowed_connection_types` / `connection_types` / `clients`: the
    /// kinds of connection the user may log in on, by nats-server's names
    /// (upper case); empty = every kind.
    pub allowed_connection_types: Vec<String>,
}

/// One `users` entry that logs in with an nkey: no password, the client
/// signs the connection's nonce.
#[derive(Debug, Clone, PartialEq)]
pub struct NkeyUser {
    /// The user's public nkey (`U...`), checked at load.
    pub nkey: String,
    /// `permissions` / `permission`.
    pub permissions: Option<Permissions>,
    /// `tags` (warden), as for [`User::tags`].
    pub tags: Vec<String>,
    /// `rate_limit` (warden), as for [`User::rate_limit`].
    pub rate_limit: Option<RateLimit>,
    /// As [`User::allowed_connection_types`].
    pub allowed_connection_types: Vec<String>,
}

/// The connection types nats-server's `allowed_connection_types` names.
/// warden serves `STANDARD`, `WEBSOCKET` and `LEAFNODE`; a user allowed
/// only on the others (MQTT, in-process, leaf nodes over WebSocket) logs
/// in nowhere, as on a nats-server without those listeners.
pub const CONNECTION_TYPES: &[&str] =
    &["STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS", "IN_PROCESS"];

/// `rate_limit { msgs_per_sec, bytes_per_sec, burst_msgs, burst_bytes }`
/// (warden): how fast a publisher may send. One over it is not read until
/// it is back within it, so TCP holds it back; nothing is dropped and no
/// error is sent. A rate of 0 does not limit that dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// Messages a second.
    pub msgs_per_sec: u64,
    /// Bytes of messages (headers and payload) a second.
    pub bytes_per_sec: u64,
    /// Messages that may go at once after a quiet spell (read as
    /// `msgs_per_sec` when not given).
    pub burst_msgs: u64,
    /// Bytes that may go at once after a quiet spell (read as
    /// `bytes_per_sec` when not given).
    pub burst_bytes: u64,
    /// `rate_exceeded: close`: a connection over its rate for this long
    /// without a break is closed instead of waiting (`close_after`);
    /// `None` (`rate_exceeded: wait`, the default) holds it back only.
    pub close_after: Option<Duration>,
}

/// A permission set as written in the config (compiled later).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Permissions {
    /// `publish` / `pub`.
    pub publish: Option<SubjectRules>,
    /// `subscribe` / `sub`.
    pub subscribe: Option<SubjectRules>,
    /// `allow_responses`.
    pub allow_responses: Option<ResponsePermission>,
}

/// Allow and deny lists. A string or a list in the config is an allow list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubjectRules {
    /// `allow`: subjects (and, for subscribe, `"subject queue"` pairs).
    pub allow: Option<Vec<String>>,
    /// `deny`.
    pub deny: Option<Vec<String>>,
    /// `literal` (warden, subscribe only): patterns a SUB may match only
    /// with a literal subject, so `sensor.*.temp` admits `SUB
    /// sensor.12.temp` but not `SUB sensor.*.temp`, which would wiretap every
    /// sensor. Present, it makes the rules an allow list even without
    /// `allow`.
    pub literal: Option<Vec<String>>,
}

/// `allow_responses`: may publish to reply subjects of received requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponsePermission {
    /// Replies allowed per request; `None` = unlimited.
    pub max: Option<usize>,
    /// How long the grant lasts.
    pub expires: Duration,
}

impl Default for ResponsePermission {
    fn default() -> Self {
        ResponsePermission { max: Some(1), expires: Duration::from_secs(120) }
    }
}

/// Lowest TLS version to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

/// A certificate chain and its private key (`tls { certs: [...] }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// `tls { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsOptions {
    /// `cert_file`: PEM certificate chain.
    pub cert_file: PathBuf,
    /// `key_file`: PEM private key.
    pub key_file: PathBuf,
    /// `ca_file`: PEM CA bundle to verify client certificates.
    pub ca_file: Option<PathBuf>,
    /// `verify`: require a client certificate.
    pub verify: bool,
    /// `verify_and_map`: require one and map it to a user.
    pub verify_and_map: bool,
    /// `spiffe_trust_domain` (warden's, with `verify_and_map` only): map
    /// strictly, by the certificate's one SPIFFE ID of this trust domain
    /// (see `tls::spiffe_user`), instead of by any of its names.
    pub spiffe_trust_domain: Option<crate::spiffe::TrustDomain>,
    /// `timeout`: handshake deadline.
    pub timeout: Duration,
    /// `min_version`.
    pub min_version: TlsVersion,
    /// `handshake_first`: TLS before INFO.
    pub handshake_first: bool,
    /// `handshake_first: "auto"` or a duration (nats-server 2.10): wait this
    /// long for the client to start TLS; if it does not, send INFO and
    /// accept TLS in the NATS order.
    pub handshake_first_fallback: Option<Duration>,
    /// `allow_non_tls` (nats-server 2.10): plain-text clients may use the
    /// TLS port too (off by default; warned about at every start). Never
    /// with `verify`: see [`TlsOptions::plain_text_skips_verify`].
    pub allow_non_tls: bool,
    /// `certs` after the first (which is `cert_file`/`key_file` here): a
    /// listener presents the first whose names cover the name the client
    /// asked for (SNI), the first of all when none does, as Go does.
    pub sni_certs: Vec<CertPair>,
    /// `cipher_suites`: the TLS 1.2 suites offered, by their Go names
    /// (`None`: all warden has). TLS 1.3's are always all offered, as in Go.
    pub cipher_suites: Option<Vec<String>>,
    /// `curve_preferences`: the key exchange groups offered, by their Go
    /// names, in order of preference (`None`: warden's default order).
    pub curve_preferences: Option<Vec<String>>,
    /// `pinned_certs`: the SHA-256 digests of the SubjectPublicKeyInfo a
    /// peer's certificate must have (`None`: any the CA vouches for).
    pub pinned_certs: Option<Vec<[u8; 32]>>,
}

impl Default for TlsOptions {
    /// A block's settings before its keys are read (no certificate).
    fn default() -> Self {
        TlsOptions {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            ca_file: None,
            verify: false,
            verify_and_map: false,
            spiffe_trust_domain: None,
            timeout: Duration::from_secs(2),
            min_version: TlsVersion::V1_2,
            handshake_first: false,
            handshake_first_fallback: None,
            allow_non_tls: false,
            sni_certs: Vec::new(),
            cipher_suites: None,
            curve_preferences: None,
            pinned_certs: None,
        }
    }
}

impl TlsOptions {
    /// The files this TLS is made from: certificate and key, each of
    /// `certs`, and the CA (what certificate rotation watches).
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        let pairs = std::iter::once((&self.cert_file, &self.key_file))
            .chain(self.sni_certs.iter().map(|p| (&p.cert_file, &p.key_file)));
        let mut files: Vec<std::path::PathBuf> = pairs.flat_map(|(c, k)| [c.clone(), k.clone()]).collect();
        files.extend(self.ca_file.clone());
        files
    }

    /// The certificate and key this side presents, if any: always on a
    /// listener; on a connection this server dials (a leafnode remote)
    /// only when configured, for mutual TLS.
    pub fn client_certificate(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        (!self.cert_file.as_os_str().is_empty()).then_some((self.cert_file.as_path(), self.key_file.as_path()))
    }

    /// Why `allow_non_tls` with `verify` (or `verify_and_map`) is refused.
    pub const PLAIN_TEXT_SKIPS_VERIFY: &'static str = "allow_non_tls cannot be combined with verify or verify_and_map: a plain-text client presents no certificate, so it would log in with a password alone (or with nothing when no users are configured); remove allow_non_tls to require client certificates";

    /// Whether plain-text clients would silently skip the client
    /// certificate that `verify` requires (nats-server lets them): a
    /// combination refused when the config is read and when TLS is loaded.
    pub fn plain_text_skips_verify(&self) -> bool {
        self.allow_non_tls && (self.verify || self.verify_and_map)
    }
}

/// Monitoring listener address.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// Bind host (127.0.0.1 unless told otherwise).
    pub host: String,
    /// Bind port.
    pub port: u16,
    /// Serve HTTPS with the client `tls {}` certificate (`https`, `https_port`).
    pub tls: bool,
}

/// What the monitoring endpoints require (`http_authorization { ... }`):
/// exactly one of a bearer token or a user and password for basic auth.
/// Secrets are stored like user passwords: an argon2 or bcrypt hash, or
/// plain text (with a warning).
#[derive(Debug, Clone, PartialEq)]
pub enum HttpAuthorization {
    /// `token`: requests send `Authorization: Bearer <token>`.
    Token(Secret),
    /// `user` and `password`: requests send `Authorization: Basic ...`.
    User {
        /// The user name.
        user: String,
        /// The stored password.
        password: Secret,
    },
}

/// `cluster { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterOptions {
    /// `name`.
    pub name: Option<String>,
    /// Route listen host.
    pub host: String,
    /// Route listen port.
    pub port: u16,
    /// A `cluster {}` without `listen` or `port` (as nats-server's tests
    /// write them, setting the port in code): nats-server then runs no
    /// routing at all, and warden likewise, with a warning; `--cluster`
    /// gives it a listener.
    pub no_listener: bool,
    /// `routes`: seed URLs, `nats-route://[user:pass@]host:port`.
    pub routes: Vec<String>,
    /// `authorization { user, password, timeout }`.
    pub authorization: Option<RouteAuthorization>,
    /// `tls { ... }` for routes.
    pub tls: Option<TlsOptions>,
    /// `no_advertise`.
    pub no_advertise: bool,
    /// `connect_retries`.
    pub connect_retries: u32,
    /// `connect_backoff`: the delay between attempts to dial a route
    /// doubles up to 30 s (nats-server's ceiling) instead of warden's 5 s.
    pub connect_backoff: bool,
    /// `insecure_allow_unauthenticated_routes` (warden only): run the route
    /// listener without route authentication or TLS. Without it such a
    /// cluster refuses to start, since anyone reaching the port could read
    /// and inject every message; meant for loopback-only test setups.
    pub allow_unauthenticated: bool,
    /// `pool_size`: route connections to each peer that pools too, the
    /// accounts spread over them by name (nats-server 2.10+); 0 (`-1` in
    /// the config) speaks to every peer over one connection.
    pub pool_size: u32,
    /// `accounts`: accounts with a connection of their own to each pooling
    /// peer, as listed (the system account is added by the server).
    pub pinned_accounts: Vec<String>,
    /// `permissions { import, export }`: which subjects cross the routes.
    pub permissions: Option<RoutePermissions>,
}

impl ClusterOptions {
    /// The route pool size nats-server 2.10+ uses when none is configured.
    pub const DEFAULT_POOL_SIZE: u32 = 3;
    /// The largest `pool_size` warden takes, from its config or a peer.
    pub const MAX_POOL_SIZE: u32 = 32;
}

/// `cluster { permissions { import, export } }`, nats-server's meaning
/// (`setClusterPermissions` in its `opts.go`): both are seen from this
/// server. `import`: subjects it takes messages on from a route, so it tells
/// routes only of local interest on them. `export`: subjects it sends to a
/// route, so it accepts a route's interest only on them. nats-server also
/// reads `publish`/`subscribe` as `import`/`export`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoutePermissions {
    /// `import` (or `publish`, `pub`): no rules = every subject.
    pub import: Option<SubjectRules>,
    /// `export` (or `subscribe`, `sub`): no rules = every subject.
    pub export: Option<SubjectRules>,
}

impl Default for ClusterOptions {
    /// A cluster block before its options are read (or cluster flags
    /// applied): loopback, any port, no name, routes or credentials.
    fn default() -> Self {
        ClusterOptions {
            name: None,
            host: "127.0.0.1".to_owned(),
            port: 0,
            no_listener: false,
            routes: Vec::new(),
            authorization: None,
            tls: None,
            no_advertise: false,
            connect_retries: 0,
            connect_backoff: false,
            allow_unauthenticated: false,
            pool_size: ClusterOptions::DEFAULT_POOL_SIZE,
            pinned_accounts: Vec::new(),
            permissions: None,
        }
    }
}

/// `leafnodes { ... }`: the port leaf node servers connect to (this
/// server as their hub). Leaf nodes log in like clients, through the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafnodeOptions {
    /// Listen host.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// `advertise`: the `host:port` leafs are told to reconnect to.
    pub advertise: Option<String>,
    /// `no_advertise`: tell leafs no URL of this server.
    pub no_advertise: bool,
    /// `tls { ... }` for leaf connections.
    pub tls: Option<TlsOptions>,
    /// `auth_timeout`: time a leaf has to log in (default: the client
    /// `authorization { timeout }`).
    pub auth_timeout: Option<Duration>,
    /// `insecure_allow_unauthenticated_leafnodes` (warden only): run the
    /// leaf listener on a server whose clients need no credentials. Without
    /// it such a config refuses to start: anyone reaching the port could
    /// read and inject every message of the global account.
    pub allow_unauthenticated: bool,
    /// Whether the block has a listener (`listen` or `port`); a server
    /// with only `remotes` is a leaf and accepts no leafs.
    pub accept: bool,
    /// `authorization { user, password, account | users = [...] }`: the
    /// leafs' own users, instead of the clients'.
    pub authorization: Option<LeafAuthorization>,
    /// `min_version`: leafs reporting an older version (or none) are
    /// refused, as nats-server 2.8+ does.
    pub min_version: Option<(u64, u64, u64)>,
    /// `isolate_leafnode_interest`: a leaf is not told of other leafs'
    /// interest (their messages then never pass through this hub between
    /// leafs), which keeps interest storms among many leafs down.
    pub isolate_leafnode_interest: bool,
    /// `remotes`: the hubs this server connects to as a leaf.
    pub remotes: Vec<LeafRemote>,
    /// `accept_rate { ... }` (warden only) of the leaf listener.
    pub accept_rate: AcceptRate,
    /// `proxy_protocol`: leaf connections from `trusted_proxies` start with
    /// a PROXY protocol header naming the leaf's address.
    pub proxy_protocol: bool,
    /// `trusted_proxies` (warden only): the load balancers whose PROXY
    /// header is believed, as addresses or CIDRs.
    pub trusted_proxies: Vec<String>,
}

/// `leafnodes { authorization {...} }`: who may connect as a leaf, each
/// bound to an account (`$G` without one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeafAuthorization {
    /// The users, with the account each is bound to. Without a password
    /// only under `leafnodes { tls { verify_and_map } }`, where the leaf's
    /// certificate names the user.
    pub users: Vec<(User, Option<String>)>,
    /// Leafs that sign the nonce with a user seed, with their account: the
    /// block's own `nkey` (nats-server 2.11+) or `nkey` entries of `users`
    /// (warden only; nats-server allows one nkey leaf per hub).
    pub nkeys: Vec<(NkeyUser, Option<String>)>,
    /// `timeout`: time a leaf has to log in.
    pub timeout: Option<Duration>,
}

/// One of `leafnodes { remotes = [...] }`: a hub this server is a leaf of.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafRemote {
    /// `url` / `urls`: `nats-leaf://[user:password@]host:port` (or
    /// `nats://`, `tls://`; or all of them `ws://`/`wss://`, the hub's
    /// WebSocket port), tried in turn.
    pub urls: Vec<String>,
    /// `account`: the local account the connection is bound to (`$G`).
    pub account: Option<String>,
    /// `credentials`: a `.creds` file (user JWT and the seed that signs the
    /// hub's nonce).
    pub credentials: Option<PathBuf>,
    /// `nkey`: a user seed that signs the hub's nonce.
    pub nkey: Option<Secret>,
    /// `deny_imports`: subjects never taken from the hub.
    pub deny_imports: Vec<String>,
    /// `deny_exports`: subjects never sent to the hub.
    pub deny_exports: Vec<String>,
    /// `tls {}` (or a `tls://` URL, which alone means TLS verified against
    /// the system's roots): `ca_file` to trust instead, `cert_file` and
    /// `key_file` for mutual TLS, `handshake_first` for a hub that wants
    /// TLS before its INFO.
    pub tls: Option<TlsOptions>,
    /// `first_info_timeout`: how long the hub's INFO may take (1 s); over
    /// WebSocket, also how long the hub's answer to the upgrade may take.
    pub first_info_timeout: Duration,
    /// `hub`: this server takes the hub's role on the connection it dials
    /// (the server it dials becomes its leaf), as nats-server's option.
    pub hub: bool,
    /// `ws_no_masking`: over WebSocket (`ws://`/`wss://` URLs), ask the hub
    /// to take unmasked frames; masked anyway unless it agrees.
    pub ws_no_masking: bool,
}

impl LeafRemote {
    /// Whether this remote dials a hub's WebSocket port: its URLs are
    /// `ws://`/`wss://` (the config never mixes them with others).
    pub fn over_websocket(&self) -> bool {
        self.urls.iter().any(|u| is_websocket_url(u))
    }
}

/// Whether `url` names a WebSocket port (`ws://` or `wss://`).
pub fn is_websocket_url(url: &str) -> bool {
    url.split_once("://").is_some_and(|(s, _)| s.eq_ignore_ascii_case("ws") || s.eq_ignore_ascii_case("wss"))
}

impl Default for LeafnodeOptions {
    /// A leafnodes block before its options are read.
    fn default() -> Self {
        LeafnodeOptions {
            host: "127.0.0.1".to_owned(),
            port: 0,
            advertise: None,
            no_advertise: false,
            tls: None,
            auth_timeout: None,
            allow_unauthenticated: false,
            accept: false,
            authorization: None,
            min_version: None,
            isolate_leafnode_interest: false,
            remotes: Vec::new(),
            accept_rate: AcceptRate::default(),
            proxy_protocol: false,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Route credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteAuthorization {
    /// `user`.
    pub user: String,
    /// `password`: `None` only under `tls { verify_and_map }`, where the
    /// route's certificate must name `user` instead.
    pub password: Option<Secret>,
    /// `timeout`.
    pub timeout: Option<Duration>,
}

/// `gateway { ... }`, nats-server's meaning, with authentication required
/// and `reject_unknown_cluster` on by default.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayOptions {
    /// `name`: this cluster's name among the supercluster's.
    pub name: String,
    /// Listen host.
    pub host: String,
    /// Listen port (0 picks a free one).
    pub port: u16,
    /// `advertise`: `host:port` other clusters dial.
    pub advertise: Option<String>,
    /// `authorization { user, password, timeout }`, one for all gateways.
    pub authorization: Option<RouteAuthorization>,
    /// `tls { ... }`, both ways.
    pub tls: Option<TlsOptions>,
    /// `gateways`: the other clusters to dial.
    pub gateways: Vec<RemoteGateway>,
    /// `reject_unknown_cluster` (default on, unlike nats-server).
    pub reject_unknown_cluster: bool,
    /// `connect_retries` for gateways learned from gossip.
    pub connect_retries: u32,
    /// `authentication_timeout`.
    pub auth_timeout: Option<Duration>,
    /// `insecure_allow_unauthenticated_gateways` (warden only).
    pub allow_unauthenticated: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            name: String::new(),
            host: "127.0.0.1".into(),
            port: 0,
            advertise: None,
            authorization: None,
            tls: None,
            gateways: Vec::new(),
            reject_unknown_cluster: true,
            connect_retries: 0,
            auth_timeout: None,
            allow_unauthenticated: false,
        }
    }
}

/// One of `gateway { gateways = [...] }`.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteGateway {
    /// The other cluster's name.
    pub name: String,
    /// `url` / `urls`: `nats://[user:password@]host:port`.
    pub urls: Vec<String>,
    /// `tls { ... }` for dialling it (else the gateway block's).
    pub tls: Option<TlsOptions>,
}

/// `websocket { ... }` (nats-server 2.9.10's keys, and warden's
/// `trusted_proxies`).
#[derive(Debug, Clone, PartialEq)]
pub struct WebsocketOptions {
    /// Bind host.
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// `tls { ... }`; `None` only with `no_tls: true`.
    pub tls: Option<TlsOptions>,
    /// `same_origin`: a browser's `Origin` must be this listener's own.
    pub same_origin: bool,
    /// `allowed_origins`: the origins browsers may connect from.
    pub allowed_origins: Vec<AllowedOrigin>,
    /// `compression`: agree to `permessage-deflate` when a client offers it.
    pub compression: bool,
    /// `handshake_timeout`: time for the TLS and WebSocket handshakes.
    pub handshake_timeout: Duration,
    /// `authorization { user, password | token, timeout }`: replaces the
    /// client listener's single user or token for WebSocket clients.
    pub authorization: Option<Authorization>,
    /// `no_auth_user` for WebSocket clients.
    pub no_auth_user: Option<String>,
    /// `jwt_cookie`: the cookie whose value is the user JWT when CONNECT
    /// carries none (operator mode).
    pub jwt_cookie: Option<String>,
    /// `trusted_proxies` (warden only): the addresses whose
    /// `X-Forwarded-For` is believed; from anyone else it is ignored. With
    /// `proxy_protocol`, also those whose PROXY header is believed.
    pub trusted_proxies: Vec<String>,
    /// `proxy_protocol`: connections from `trusted_proxies` start with a
    /// PROXY protocol header naming the client (as at the top level).
    pub proxy_protocol: bool,
    /// `accept_rate { ... }` (warden only); a trusted proxy's connections
    /// count only against the listener-wide rate.
    pub accept_rate: AcceptRate,
}

/// One `allowed_origins` entry: scheme, host and port (defaulted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    /// `http` or `https`.
    pub scheme: String,
    /// Host, lower case.
    pub host: String,
    /// Port (80 or 443 when not written).
    pub port: u16,
}

/// A version as `MAJOR.MINOR.PATCH` (a `-suffix` or `+build` ignored), as
/// leaf `min_version` compares them.
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.trim().trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}
