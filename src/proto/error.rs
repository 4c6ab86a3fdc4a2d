//! The errors a client can cause, with the exact `-ERR` texts nats-server sends.

use std::fmt;

/// Something a client did wrong. `Display` is the text inside `-ERR '...'`,
/// byte-identical to nats-server 2.9.10 where it has one, because client
/// libraries parse these strings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// A verb that is not part of the client protocol.
    UnknownOperation,
    /// Arguments of a known verb that cannot be parsed. nats-server closes
    /// silently here; warden says why (a fixed text, never client input).
    InvalidArguments(&'static str),
    /// A PUB/HPUB announced more than max_payload.
    MaxPayload,
    /// An HPUB whose header block does not start with `NATS/1.0` and end
    /// with an empty line (nats-server forwards it; warden closes).
    InvalidHeaders,
    /// A control line longer than max_control_line.
    MaxControlLine,
    /// SUB with an invalid subject (connection stays open).
    InvalidSubject,
    /// PUB to a subject with wildcards or empty tokens (message dropped,
    /// connection stays open).
    InvalidPublishSubject,
    /// Failed or missing authentication.
    AuthorizationViolation,
    /// Refused by the external authorizer, which gave this (cleaned) reason
    /// and may tell the client.
    AuthorizationViolationBecause(String),
    /// No CONNECT within the authentication timeout.
    AuthenticationTimeout,
    /// The login expired (a user JWT's `exp`, the end of its connect window).
    AuthenticationExpired,
    /// Too many unanswered server PINGs.
    StaleConnection,
    /// Over max_connections.
    MaxConnections,
    /// The account holds its `max_connections` connections.
    MaxAccountConnections,
    /// Over max_subscriptions (connection stays open).
    MaxSubscriptions,
    /// CONNECT with a protocol other than 0 or 1.
    InvalidClientProtocol,
    /// CONNECT with no_responders but without headers.
    NoRespondersRequiresHeaders,
    /// TLS is required but the client spoke plain text or stalled the handshake.
    TlsRequired,
    /// Publish permission refused for this subject.
    PublishViolation(String),
    /// A PUB whose reply subject the publisher may not subscribe to.
    ReplyViolation(String),
    /// Subscribe permission refused for this subject (and queue group).
    SubscribeViolation { subject: String, queue: Option<String> },
    /// A reload withdrew the permission for an existing subscription.
    SubscriptionRevoked { subject: String, sid: String },
}

impl ProtoError {
    /// Whether nats-server closes the connection after this error.
    pub fn closes_connection(&self) -> bool {
        !matches!(
            self,
            ProtoError::InvalidSubject
                | ProtoError::InvalidPublishSubject
                | ProtoError::MaxSubscriptions
                | ProtoError::PublishViolation(_)
                | ProtoError::ReplyViolation(_)
                | ProtoError::SubscribeViolation { .. }
                | ProtoError::SubscriptionRevoked { .. }
        )
    }

    /// The full wire line, `-ERR '<text>'\r\n`.
    pub fn to_line(&self) -> String {
        format!("-ERR '{self}'\r\n")
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::UnknownOperation => f.write_str("Unknown Protocol Operation"),
            ProtoError::InvalidArguments(why) => write!(f, "Protocol Violation: {why}"),
            ProtoError::MaxPayload => f.write_str("Maximum Payload Violation"),
            ProtoError::InvalidHeaders => {
                f.write_str("Protocol Violation: header block must start with NATS/1.0 and end with an empty line")
            }
            ProtoError::MaxControlLine => f.write_str("maximum control line exceeded"),
            ProtoError::InvalidSubject => f.write_str("Invalid Subject"),
            ProtoError::InvalidPublishSubject => f.write_str("Invalid Publish Subject"),
            ProtoError::AuthorizationViolation => f.write_str("Authorization Violation"),
            ProtoError::AuthorizationViolationBecause(why) => write!(f, "Authorization Violation: {why}"),
            ProtoError::AuthenticationTimeout => f.write_str("Authentication Timeout"),
            ProtoError::AuthenticationExpired => f.write_str("User Authentication Expired"),
            ProtoError::StaleConnection => f.write_str("Stale Connection"),
            ProtoError::MaxConnections => f.write_str("maximum connections exceeded"),
            ProtoError::MaxAccountConnections => f.write_str("maximum account active connections exceeded"),
            ProtoError::MaxSubscriptions => f.write_str("maximum subscriptions exceeded"),
            ProtoError::InvalidClientProtocol => f.write_str("invalid client protocol"),
            ProtoError::NoRespondersRequiresHeaders => f.write_str("no responders requires headers support"),
            ProtoError::TlsRequired => f.write_str("Secure Connection - TLS Required"),
            ProtoError::PublishViolation(subject) => {
                write!(f, "Permissions Violation for Publish to \"{subject}\"")
            }
            ProtoError::ReplyViolation(reply) => {
                write!(f, "Permissions Violation for Publish with Reply of \"{reply}\"")
            }
            ProtoError::SubscribeViolation { subject, queue: None } => {
                write!(f, "Permissions Violation for Subscription to \"{subject}\"")
            }
            ProtoError::SubscribeViolation { subject, queue: Some(q) } => {
                write!(f, "Permissions Violation for Subscription to \"{subject}\" using queue \"{q}\"")
            }
            ProtoError::SubscriptionRevoked { subject, sid } => {
                write!(f, "Permissions Violation for Subscription to \"{subject}\" (sid \"{sid}\")")
            }
        }
    }
}

impl std::error::Error for ProtoError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_nats_server() {
        assert_eq!(ProtoError::UnknownOperation.to_line(), "-ERR 'Unknown Protocol Operation'\r\n");
        assert_eq!(
            ProtoError::PublishViolation("_SYS.foo".into()).to_line(),
            "-ERR 'Permissions Violation for Publish to \"_SYS.foo\"'\r\n"
        );
        assert_eq!(
            ProtoError::SubscribeViolation { subject: "foo".into(), queue: Some("q".into()) }.to_string(),
            "Permissions Violation for Subscription to \"foo\" using queue \"q\""
        );
        assert!(!ProtoError::InvalidSubject.closes_connection());
        assert!(ProtoError::MaxPayload.closes_connection());
    }
}
