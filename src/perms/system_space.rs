//! The system account's subject space, `$SYS.>`, seen from every other
//! account: closed, except the few requests nats-server lets every account
//! make about itself. nats-server leaves `$SYS.>` an ordinary subject space
//! in other accounts (nobody answers there); warden refuses it with a
//! permissions error, so a client cannot spoof server events or requests
//! inside its own account and mistakes show at once.

use crate::subject::is_subset;

/// The requests every account may make about itself (nats-server imports
/// them into every account); answered with the asking account's data.
pub const SELF_SERVICE: [&[u8]; 4] = [
    b"$SYS.REQ.ACCOUNT.PING.CONNZ",
    b"$SYS.REQ.ACCOUNT.PING.STATZ",
    b"$SYS.REQ.SERVER.PING.CONNZ",
    b"$SYS.REQ.USER.INFO",
];

/// The self-service requests every server answers about the account (its
/// connections and statistics there); `USER.INFO` only the server the
/// client is on answers.
const ANSWERED_EVERYWHERE: [&[u8]; 3] = [SELF_SERVICE[0], SELF_SERVICE[1], SELF_SERVICE[2]];

/// Where the server asks the auth callout service (nats-server's
/// `AuthCalloutSubject`): no client publishes there, and only the service's
/// own users subscribe to it by name.
pub const AUTH_CALLOUT_SUBJECT: &[u8] = b"$SYS.REQ.USER.AUTH";
/// Where the callout service answers (nats-server's response inboxes).
pub const CALLOUT_INBOX_PREFIX: &[u8] = b"$SYS._INBOX.";

/// The subscribe denies that keep the callout's requests and answers
/// private in the callout account (for its users other than the service's).
pub fn callout_private() -> [String; 2] {
    [String::from_utf8_lossy(AUTH_CALLOUT_SUBJECT).into_owned(), "$SYS._INBOX.>".to_owned()]
}

const PREFIX: &[u8] = b"$SYS.";
const SPACE: &[u8] = b"$SYS.>";

/// Whether a valid literal subject lies in `$SYS.>` (a prefix test, run on
/// every PUB outside the system account).
pub fn is_system_subject(subject: &[u8]) -> bool {
    subject.len() > PREFIX.len() && subject.starts_with(PREFIX)
}

/// The prefix of the reply subjects NATS clients make (`_INBOX.<nuid>...`).
const INBOX_PREFIX: &[u8] = b"_INBOX.";

/// Whether `reply` is shaped like a client's inbox, where the server may
/// answer a `$SYS` request even when the requester may not publish there.
pub fn is_inbox(reply: &[u8]) -> bool {
    reply.len() > INBOX_PREFIX.len() && reply.starts_with(INBOX_PREFIX)
}

/// Whether a client outside the system account may publish to `subject`.
pub fn outsider_may_publish(subject: &[u8]) -> bool {
    !is_system_subject(subject) || SELF_SERVICE.contains(&subject)
}

/// Whether a client may publish to `subject` as far as `$SYS.>` goes:
/// anywhere in its own system account, outside it only the self-service
/// requests (and, for the auth callout service, its answers); nobody
/// publishes an auth callout request.
#[inline]
pub fn may_publish(subject: &[u8], in_system: bool, serves_callout: bool) -> bool {
    if !is_system_subject(subject) {
        return true;
    }
    if subject == AUTH_CALLOUT_SUBJECT {
        return false;
    }
    in_system || SELF_SERVICE.contains(&subject) || (serves_callout && subject.starts_with(CALLOUT_INBOX_PREFIX))
}

/// Whether a client outside the system account may subscribe to `pattern`:
/// not inside `$SYS.>` (a wildcard that merely overlaps it, such as `>`, is
/// fine: the only `$SYS` subjects in such an account are its own clients'
/// self-service requests).
pub fn outsider_may_subscribe(pattern: &[u8]) -> bool {
    !is_subset(pattern, SPACE)
}

/// Whether a leaf connection outside the system account may announce
/// interest in `pattern`: what a client may subscribe to, and the requests
/// every server answers about the account. The leaf's server answers its
/// share of the account's requests (nats-server's leafs announce the
/// system services their accounts import), so a tenant on either side hears
/// from the servers on both.
pub fn leaf_may_announce(pattern: &[u8]) -> bool {
    outsider_may_subscribe(pattern) || ANSWERED_EVERYWHERE.contains(&pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outsiders_get_the_self_service_requests_only() {
        assert!(outsider_may_publish(b"orders.new"));
        assert!(outsider_may_publish(b"$SYSTEM"));
        assert!(outsider_may_publish(b"$SYS.REQ.USER.INFO"));
        assert!(outsider_may_publish(b"$SYS.REQ.SERVER.PING.CONNZ"));
        assert!(!outsider_may_publish(b"$SYS.REQ.SERVER.PING"));
        assert!(!outsider_may_publish(b"$SYS.ACCOUNT.A.CONNECT"));
        assert!(outsider_may_subscribe(b">"));
        assert!(outsider_may_subscribe(b"*.REQ.>"));
        assert!(!outsider_may_subscribe(b"$SYS.>"));
        assert!(may_publish(b"a.b", false, false));
        assert!(may_publish(b"$SYS.SERVER.PING", true, false));
        assert!(!may_publish(b"$SYS.SERVER.PING", false, true));
        assert!(!may_publish(b"$SYS.REQ.USER.AUTH", true, true));
        assert!(may_publish(b"$SYS._INBOX.abc.1", false, true));
        assert!(!may_publish(b"$SYS._INBOX.abc.1", false, false));
        assert!(!outsider_may_subscribe(b"$SYS.ACCOUNT.*.CONNECT"));
        assert!(!outsider_may_subscribe(b"$SYS.REQ.USER.INFO"));
    }

    #[test]
    fn a_leaf_announces_the_requests_every_server_answers_and_no_other() {
        assert!(leaf_may_announce(b"orders.>"));
        assert!(leaf_may_announce(b"$SYS.REQ.ACCOUNT.PING.CONNZ"));
        assert!(leaf_may_announce(b"$SYS.REQ.ACCOUNT.PING.STATZ"));
        assert!(leaf_may_announce(b"$SYS.REQ.SERVER.PING.CONNZ"));
        assert!(!leaf_may_announce(b"$SYS.REQ.USER.INFO"), "answered by the client's own server alone");
        assert!(!leaf_may_announce(b"$SYS.REQ.ACCOUNT.*.CONNZ"));
        assert!(!leaf_may_announce(b"$SYS.>"));
    }
}
