//! What connections tell the audit trail (`crate::audit`): the facts of a
//! connection as a record names them, logins, and permission denials,
//! which are sampled by a budget per source address so one address's flood
//! never takes another's records (what the budget drops is counted in a
//! `permission_denials_suppressed` record a second later).

use std::net::IpAddr;
use std::time::Duration;

use super::log_budget::{BudgetKind, Digest, SourceBudget};
use super::{Broker, Client, ClientKind};
use crate::audit::{Conn, Event, Method};
use crate::auth::Identity;
use crate::config::{AuditOptions, DelegateService};
use crate::proto::ProtoError;

/// The permission-denial budget of a server with `audit` options `opts`.
pub(super) fn denial_budget(opts: Option<&AuditOptions>) -> SourceBudget {
    let per_second = opts.map_or(AuditOptions::default().denials_per_second, |a| a.denials_per_second);
    SourceBudget::new(per_second, "permission denials not recorded: over their source's budget")
}

/// What a login presented, which says its [`Method`] (the secrets
/// themselves never reach the trail).
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented {
    /// A user JWT.
    pub jwt: bool,
    /// An nkey (and a signature).
    pub nkey: bool,
    /// A token.
    pub token: bool,
    /// A password.
    pub password: bool,
    /// A client certificate.
    pub certificate: bool,
}

impl Presented {
    fn method(self) -> Method {
        if self.jwt {
            Method::Jwt
        } else if self.nkey {
            Method::Nkey
        } else if self.token {
            Method::Token
        } else if self.password {
            Method::Password
        } else if self.certificate {
            Method::Certificate
        } else {
            Method::None
        }
    }
}

/// `client` as audit records name it.
pub fn audit_conn(client: &Client) -> Conn {
    let meta = client.meta.lock();
    let kind = match client.kind {
        ClientKind::Leaf => "leaf",
        ClientKind::Route => "route",
        ClientKind::Gateway => "gateway",
        _ if meta.websocket => "websocket",
        _ => "client",
    };
    Conn {
        cid: client.id,
        kind,
        addr: client.addr.to_string(),
        user: meta.user.clone(),
        account: meta.account.as_deref().map(str::to_owned),
        name: meta.name.clone(),
        tls_subject: meta.peer().map(|p| p.subject_dn()).filter(|s| !s.is_empty()),
        tls_uris: meta.peer().map(|p| p.uris.clone()).unwrap_or_default(),
    }
}

impl Broker {
    /// Records an accepted login of `client` as `identity`.
    pub fn audit_login(&self, client: &Client, identity: &Identity, presented: Presented) {
        if !self.audit.is_on() {
            return;
        }
        let method = match self.opts.authorization.as_ref().and_then(|a| a.delegation.as_ref()) {
            Some(d) if identity.delegated => match d.service {
                DelegateService::Callout { .. } => Method::AuthCallout,
                DelegateService::Http { .. } => Method::HttpAuthorizer,
            },
            _ => presented.method(),
        };
        let mut conn = audit_conn(client);
        conn.user = identity.user.clone();
        conn.account = Some(identity.account.to_string());
        self.audit.record(Event::Login { conn, method });
    }

    /// Records a refused login of `client`, which claimed to be `user`.
    pub fn audit_login_refused(&self, client: &Client, user: Option<String>, presented: Presented, reason: String) {
        if !self.audit.is_on() {
            return;
        }
        let mut conn = audit_conn(client);
        conn.user = user;
        self.audit.record(Event::LoginRefused { conn, method: presented.method(), reason });
    }

    /// Records a refused publish or subscribe of `client` (logged in as
    /// `user`), within its address's budget.
    pub fn audit_denial(&self, client: &Client, user: &str, err: &ProtoError, direction: &'static str) {
        if !self.audit.is_on() || !self.audit_denials.allow(client.addr.ip(), BudgetKind::Other, user) {
            return;
        }
        let subject = match err {
            ProtoError::PublishViolation(subject) | ProtoError::SubscribeViolation { subject, .. } => subject.clone(),
            other => other.to_string(),
        };
        self.audit.record(Event::PermissionDenied { conn: audit_conn(client), direction, subject });
    }

    /// Records that `client` has been over its publish rate for `over`
    /// (once a stretch, as the advisory), and, with `account_over`, that
    /// its account has been over the account's rate for that long.
    pub fn audit_rate_held(&self, client: &Client, over: Option<Duration>, account_over: Option<Duration>) {
        if !self.audit.is_on() {
            return;
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let conn = audit_conn(client);
        if let (Some(over), Some(account)) = (account_over, conn.account.clone()) {
            self.audit.record(Event::AccountRateHeld { account, over_ms: ms(over) });
        }
        if let Some(over) = over {
            self.audit.record(Event::RateHeld { conn, over_ms: ms(over) });
        }
    }

    /// Records what the denial budgets dropped in windows that ended
    /// (every second).
    pub fn flush_audit_denials(&self) {
        for digest in self.audit_denials.flush() {
            self.audit.record(suppressed(digest));
        }
    }
}

fn suppressed(digest: Digest) -> Event {
    Event::PermissionDenialsSuppressed {
        addr: digest.source.map(|ip: IpAddr| ip.to_string()),
        count: digest.dropped,
        users: digest.users,
        more_users: digest.more_users,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_is_what_was_presented_strongest_first() {
        let p = |jwt, nkey, token, password, certificate| Presented { jwt, nkey, token, password, certificate };
        assert_eq!(p(true, true, false, false, true).method(), Method::Jwt);
        assert_eq!(p(false, true, false, false, false).method(), Method::Nkey);
        assert_eq!(p(false, false, true, false, false).method(), Method::Token);
        assert_eq!(p(false, false, false, true, true).method(), Method::Password);
        assert_eq!(p(false, false, false, false, true).method(), Method::Certificate);
        assert_eq!(Presented::default().method(), Method::None);
    }
}
