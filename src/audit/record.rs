//! What the audit trail records: one JSON object a line, with the time,
//! the server and a `type`. Records carry names, addresses and reasons,
//! never a password, token, seed, JWT or key.

use serde::Serialize;

use crate::config::ConfigChanges;

/// A connection as a record names it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Conn {
    /// The connection id (`cid`, as in `/connz`).
    pub cid: u64,
    /// `client`, `websocket`, `leaf` or `route`.
    pub kind: &'static str,
    /// The client's address (behind a trusted proxy, the one the PROXY
    /// header gave).
    pub addr: String,
    /// The user it logged in as (or claimed, for a refused login).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Its account, once logged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// CONNECT `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The verified client certificate's subject DN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_subject: Option<String>,
    /// Its URI SANs (a SPIFFE ID among them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_uris: Vec<String>,
}

/// How a client proved who it is: what it presented, never the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Nothing (a server without authentication, or `no_auth_user`).
    None,
    /// A user name and password.
    Password,
    /// A token.
    Token,
    /// An nkey signature of the nonce.
    Nkey,
    /// A user JWT (operator mode or a decentralised account).
    Jwt,
    /// A verified client certificate (`verify_and_map`).
    Certificate,
    /// An auth callout service decided.
    AuthCallout,
    /// The HTTP authorizer decided.
    HttpAuthorizer,
}

/// Who asked for a reload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum ReloadCause {
    /// SIGHUP (or `warden --signal reload`).
    Signal,
    /// A `$SYS.REQ.SERVER.<id>.RELOAD` request, by this connection.
    SystemRequest {
        /// The requester (always a client of this server: RELOAD needs a
        /// local client's explicit permission).
        #[serde(skip_serializing_if = "Option::is_none")]
        requester: Option<Conn>,
    },
    /// A program embedding the server called `Server::reload`.
    Embedder,
}

/// One audit event. The `type` field of the JSON line is the variant's
/// name in snake case.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// The trail started (with the server).
    Started {
        /// warden's version.
        version: &'static str,
    },
    /// A login was accepted.
    Login {
        /// The connection.
        conn: Conn,
        /// How it proved who it is.
        method: Method,
    },
    /// A login was refused.
    LoginRefused {
        /// The connection; `user` is the one it claimed.
        conn: Conn,
        /// What it presented.
        method: Method,
        /// Why (the server's reason, which the client is not told).
        reason: String,
    },
    /// A publish or subscribe was refused by the connection's permissions.
    PermissionDenied {
        /// The connection.
        conn: Conn,
        /// `publish` or `subscribe`.
        direction: &'static str,
        /// The subject (or pattern) refused.
        subject: String,
    },
    /// Denials from one address that were over its budget in one second:
    /// counted, not recorded one by one.
    PermissionDenialsSuppressed {
        /// The address; absent for the addresses past the tracked number,
        /// which share one budget.
        #[serde(skip_serializing_if = "Option::is_none")]
        addr: Option<String>,
        /// How many were not recorded.
        count: u64,
        /// The first users they came from.
        users: Vec<String>,
        /// More users than those.
        more_users: bool,
    },
    /// A connection was closed by a `$SYS` KICK request.
    Kick {
        /// The requester, when it is a client of this server.
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<Conn>,
        /// The connection kicked.
        target: Conn,
    },
    /// A configuration reload was applied or refused.
    Reload {
        /// Who asked.
        #[serde(flatten)]
        cause: ReloadCause,
        /// Whether it was applied.
        applied: bool,
        /// Why it was refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// What it changed, when applied.
        #[serde(skip_serializing_if = "Option::is_none")]
        changes: Option<ConfigChanges>,
    },
    /// An account JWT was pushed (operator mode): applied, skipped as
    /// unchanged, or refused.
    AccountJwtUpdate {
        /// The account's public key (`n/a` when the push named none).
        account: String,
        /// Whether the account now holds the pushed JWT.
        applied: bool,
        /// The answer the pusher got (`jwt updated`, `jwt update skipped`,
        /// or why it was refused).
        result: String,
        /// The pusher, when it is a client of this server (a push a peer
        /// server forwarded names none).
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<Conn>,
    },
    /// A listener's certificate was replaced from its files.
    CertificateRotated {
        /// The listener: `client`, `websocket`, `leafnodes`, `cluster`.
        listener: String,
        /// The new certificate's subject DN.
        subject: String,
        /// Its serial number (hex).
        serial: String,
        /// When it expires (RFC 3339).
        not_after: String,
    },
    /// A listener's certificate files changed but could not be used; the
    /// old certificate stays in force.
    CertificateRotationFailed {
        /// The listener.
        listener: String,
        /// Why.
        error: String,
    },
    /// A connection has been held over its publish `rate_limit` for a while.
    RateHeld {
        /// The connection.
        conn: Conn,
        /// How long it has been over, in milliseconds.
        over_ms: u64,
    },
    /// An account has been held over its `limits { rate_limit }` for a while.
    AccountRateHeld {
        /// The account.
        account: String,
        /// How long it has been over, in milliseconds.
        over_ms: u64,
    },
    /// Lame duck mode began: clients are closed over the duration.
    LameDuck {
        /// `lame_duck_duration`, in milliseconds.
        duration_ms: u64,
    },
    /// The server is shutting down.
    Shutdown,
    /// The trail fell behind and lost records; written by the trail
    /// itself as soon as it can, so no loss goes unrecorded.
    RecordsDropped {
        /// How many records were lost since the last such record.
        count: u64,
    },
}

impl Event {
    /// The `type` of its JSON line, upper case: the last token of the
    /// subject it is published on.
    pub fn subject_token(&self) -> &'static str {
        match self {
            Event::Started { .. } => "STARTED",
            Event::Login { .. } => "LOGIN",
            Event::LoginRefused { .. } => "LOGIN_REFUSED",
            Event::PermissionDenied { .. } => "PERMISSION_DENIED",
            Event::PermissionDenialsSuppressed { .. } => "PERMISSION_DENIALS_SUPPRESSED",
            Event::Kick { .. } => "KICK",
            Event::Reload { .. } => "RELOAD",
            Event::AccountJwtUpdate { .. } => "ACCOUNT_JWT_UPDATE",
            Event::CertificateRotated { .. } => "CERTIFICATE_ROTATED",
            Event::CertificateRotationFailed { .. } => "CERTIFICATE_ROTATION_FAILED",
            Event::RateHeld { .. } => "RATE_HELD",
            Event::AccountRateHeld { .. } => "ACCOUNT_RATE_HELD",
            Event::LameDuck { .. } => "LAME_DUCK",
            Event::Shutdown => "SHUTDOWN",
            Event::RecordsDropped { .. } => "RECORDS_DROPPED",
        }
    }
}

/// A record as written: when, where, and the event.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
    /// The server's name.
    pub server: &'a str,
    /// The server's id (its public nkey).
    pub server_id: &'a str,
    /// The event, whose fields sit beside these.
    #[serde(flatten)]
    pub event: &'a Event,
}
