//! Why a connection closed.

use std::fmt;

/// Why a connection closed, with nats-server's reason strings (shown in logs
/// and monitoring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client went away.
    ClientClosed,
    /// The client broke the protocol.
    ProtocolViolation,
    /// Outbound bytes exceeded max_pending.
    SlowConsumerPending,
    /// A write took longer than write_deadline.
    SlowConsumerWriteDeadline,
    /// Writing to the socket failed.
    WriteError,
    /// Reading from the socket failed.
    ReadError,
    /// Too many unanswered PINGs.
    StaleConnection,
    /// No CONNECT in time.
    AuthenticationTimeout,
    /// Bad credentials.
    AuthenticationFailure,
    /// Over max_payload.
    MaxPayloadExceeded,
    /// Over max_control_line.
    MaxControlLineExceeded,
    /// Over max_connections.
    MaxConnectionsExceeded,
    /// CONNECT asked for an unsupported protocol level.
    BadClientProtocolVersion,
    /// CONNECT asked for no_responders without headers.
    NoRespondersRequiresHeaders,
    /// TLS was required and not done.
    TlsHandshakeFailure,
    /// The server is shutting down.
    ServerShutdown,
    /// The user was removed by a configuration reload.
    UserRemoved,
    /// The account holds its `max_connections` connections.
    MaxAccountConnectionsExceeded,
    /// A system user's `KICK` request closed it.
    Kicked,
    /// Its login expired (a user JWT's `exp`, its account's, its window's end).
    AuthenticationExpired,
    /// Over its publish `rate_limit` for longer than `close_after`, with
    /// `rate_exceeded: close` (warden).
    RateExceeded,
}

impl CloseReason {
    /// Whether queued bytes (such as a final `-ERR`) are written before the
    /// socket closes. A slow consumer's backlog is dropped, as nats-server does.
    pub fn flushes(self) -> bool {
        !matches!(
            self,
            CloseReason::SlowConsumerPending
                | CloseReason::SlowConsumerWriteDeadline
                | CloseReason::WriteError
                | CloseReason::ClientClosed
        )
    }

    /// Whether this counts as a slow consumer.
    pub fn is_slow_consumer(self) -> bool {
        matches!(self, CloseReason::SlowConsumerPending | CloseReason::SlowConsumerWriteDeadline)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::SlowConsumerPending => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationFailure => "Authentication Failure",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::TlsHandshakeFailure => "TLS Handshake Failure",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::UserRemoved => "Authentication Expired",
            CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            CloseReason::Kicked => "Kicked",
            CloseReason::AuthenticationExpired => "Authentication Expired",
            CloseReason::RateExceeded => "Publish Rate Exceeded",
        })
    }
}
