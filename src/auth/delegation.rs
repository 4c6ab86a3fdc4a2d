//! Handing logins to an external service (auth callout, the HTTP
//! authorizer), and the rules that keep that safe.
//!
//! The [`Gate`](super::Gate) checks the configured users first. What
//! happens next is [`Delegation::route`]'s decision:
//! - With `local_first` (warden's default), a configured user logs in as
//!   configured, right or wrong: a wrong password is refused here, and only
//!   clients the configuration does not know go to the service. This fixes
//!   nats-server #8044 (the callout overriding a valid local login).
//! - Without it (nats-server's order), every client goes to the service,
//!   except `auth_users`, the system account's users and (with
//!   `allowed_accounts`) local users of accounts not listed.
//! - Either way `auth_users` and system-account users never depend on the
//!   service, so operators keep a way in while it is down (nats-server
//!   #5724), and a service that does not answer in time refuses only the
//!   clients it was asked about.
//!
//! Questions run a bounded number at a time ([`Delegation::ask`] waits for
//! a slot, within the connection's auth timeout), behind the same failure
//! throttle as every login. A refusal text from the service reaches the
//! client only with `reveal_reason`, in the fixed form
//! `Authorization Violation: <reason>` with the text cleaned
//! ([`client_reason`]); otherwise the client sees what any refusal shows.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::info;

use super::{Claims, ConnectionFacts, Identity, RefusalReason, Verdict};

/// Longest service refusal text sent to a client.
const MAX_REASON_LEN: usize = 120;

/// A boxed future, for the object-safe [`Delegate`].
pub type Pending<'a> = Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;

/// An external authorizer: asked about one login, it answers with a
/// verdict. An implementation checks everything the service says (its
/// signature, that the answer is for this login) and refuses on anything
/// else; the [`Delegation`] bounds how many questions run and how long.
pub trait Delegate: Send + Sync + fmt::Debug {
    /// What the service decides about this client.
    fn ask<'a>(&'a self, claims: &'a Claims, facts: &'a ConnectionFacts) -> Pending<'a>;
}

/// Where a login is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// By the configured users: the local verdict stands.
    Local,
    /// By the service.
    Delegate,
}

/// An external authorizer with warden's rules around it.
#[derive(Debug)]
pub struct Delegation {
    delegate: Arc<dyn Delegate>,
    /// Users that always log in locally.
    auth_users: HashSet<String>,
    /// With `local_first: false`, the accounts whose local users are
    /// handed over; empty = all.
    allowed_accounts: HashSet<String>,
    local_first: bool,
    reveal_reason: bool,
    system_account: Option<Arc<str>>,
    /// The account the callout service runs in, whose `auth_users` may
    /// subscribe to the requests.
    service_account: Option<Arc<str>>,
    slots: Semaphore,
    timeout: Duration,
}

/// How a [`Delegation`] is set up.
#[derive(Debug, Clone)]
pub struct DelegationRules {
    /// Users that always log in locally.
    pub auth_users: Vec<String>,
    /// With `local_first: false`, the accounts whose local users are handed over.
    pub allowed_accounts: Vec<String>,
    /// Configured users first (warden's default).
    pub local_first: bool,
    /// Send the service's refusal text to the client.
    pub reveal_reason: bool,
    /// The system account, whose users never go to the service.
    pub system_account: Option<Arc<str>>,
    /// The callout service's account (none for the HTTP authorizer).
    pub service_account: Option<Arc<str>>,
    /// Questions at once.
    pub max_in_flight: usize,
    /// How long an answer may take.
    pub timeout: Duration,
}

impl Delegation {
    /// `delegate` under `rules`.
    pub fn new(delegate: Arc<dyn Delegate>, rules: DelegationRules) -> Delegation {
        Delegation {
            delegate,
            auth_users: rules.auth_users.into_iter().collect(),
            allowed_accounts: rules.allowed_accounts.into_iter().collect(),
            local_first: rules.local_first,
            reveal_reason: rules.reveal_reason,
            system_account: rules.system_account,
            service_account: rules.service_account,
            slots: Semaphore::new(rules.max_in_flight.max(1)),
            timeout: rules.timeout,
        }
    }

    /// Where a login with this local verdict is decided. `known_account`:
    /// the account of the configured user the claims name (a user name or
    /// nkey the configuration has), whether or not its credentials were right.
    pub fn route(&self, local: &Verdict, claims: &Claims, known_account: Option<&str>) -> Route {
        let named = claims.user.as_deref().or(claims.nkey.as_deref()).unwrap_or_default();
        let system = |account: &str| self.system_account.as_deref() == Some(account);
        if self.auth_users.contains(named) {
            return Route::Local;
        }
        match local {
            Verdict::Accept(identity) => {
                let account = identity.account.as_ref();
                let kept = self.local_first
                    || system(account)
                    || (!self.allowed_accounts.is_empty() && !self.allowed_accounts.contains(account));
                if kept {
                    Route::Local
                } else {
                    Route::Delegate
                }
            }
            _ => match known_account {
                Some(account) if self.local_first || system(account) => Route::Local,
                _ => Route::Delegate,
            },
        }
    }

    /// Asks the service, in a free slot, for at most the configured time.
    pub async fn ask(&self, claims: &Claims, facts: &ConnectionFacts) -> Verdict {
        let asked = async {
            let Ok(_slot) = self.slots.acquire().await else {
                return Verdict::Refuse(RefusalReason::ServiceUnavailable);
            };
            self.delegate.ask(claims, facts).await
        };
        match tokio::time::timeout(self.timeout, asked).await {
            // The service's text is logged where it is read.
            Ok(Verdict::Explained(reason, _)) if !self.reveal_reason => Verdict::Refuse(reason),
            Ok(verdict) => verdict,
            Err(_) => {
                info!(addr = %facts.addr, "the authorization service did not answer in time");
                Verdict::Refuse(RefusalReason::ServiceUnavailable)
            }
        }
    }

    /// `identity` with what this delegation grants it: whether it runs the
    /// callout service (a configured `auth_users` member in the service
    /// account; never a user the service itself admitted).
    pub fn mark(&self, mut identity: Identity) -> Identity {
        identity.serves_callout = !identity.delegated
            && self.service_account.as_deref() == Some(identity.account.as_ref())
            && identity.user.as_deref().is_some_and(|u| self.auth_users.contains(u));
        identity
    }
}

/// A service's refusal text as a client may see it: printable ASCII only,
/// no quotes, at most [`MAX_REASON_LEN`] bytes; `None` if nothing is left.
pub fn client_reason(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '\'' && c != '"' { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut cut = cleaned.len().min(MAX_REASON_LEN);
    while !cleaned.is_char_boundary(cut) {
        cut -= 1;
    }
    let reason = cleaned[..cut].trim_end();
    (!reason.is_empty()).then(|| reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perms::PermissionSet;

    #[derive(Debug)]
    struct Says(Verdict);

    impl Delegate for Says {
        fn ask<'a>(&'a self, _: &'a Claims, _: &'a ConnectionFacts) -> Pending<'a> {
            let verdict = self.0.clone();
            Box::pin(async move { verdict })
        }
    }

    #[derive(Debug)]
    struct Never;

    impl Delegate for Never {
        fn ask<'a>(&'a self, _: &'a Claims, _: &'a ConnectionFacts) -> Pending<'a> {
            Box::pin(std::future::pending())
        }
    }

    fn rules(local_first: bool) -> DelegationRules {
        DelegationRules {
            auth_users: vec!["auth".into()],
            allowed_accounts: Vec::new(),
            local_first,
            reveal_reason: false,
            system_account: Some("SYS".into()),
            service_account: Some("AUTH".into()),
            max_in_flight: 2,
            timeout: Duration::from_secs(2),
        }
    }

    fn accept(user: &str, account: &str) -> Verdict {
        Verdict::Accept(Identity::new(Some(user.into()), account.into(), Arc::new(PermissionSet::unrestricted()), 0))
    }

    fn claims(user: &str) -> Claims {
        Claims { user: Some(user.into()), ..Claims::default() }
    }

    fn facts() -> ConnectionFacts {
        ConnectionFacts::new("127.0.0.1:4000".parse().unwrap())
    }

    #[test]
    fn local_first_keeps_configured_users_local_even_with_a_wrong_password() {
        let d = Delegation::new(Arc::new(Never), rules(true));
        let refused = Verdict::Refuse(RefusalReason::BadCredentials);
        assert_eq!(d.route(&accept("alice", "APP"), &claims("alice"), Some("APP")), Route::Local);
        assert_eq!(d.route(&refused, &claims("alice"), Some("APP")), Route::Local);
        assert_eq!(d.route(&refused, &claims("stranger"), None), Route::Delegate);
        assert_eq!(d.route(&refused, &Claims::default(), None), Route::Delegate);
    }

    #[test]
    fn nats_server_order_still_keeps_auth_users_and_system_users_local() {
        let mut r = rules(false);
        r.allowed_accounts = vec!["APP".into()];
        let d = Delegation::new(Arc::new(Never), r);
        let refused = Verdict::Refuse(RefusalReason::BadCredentials);
        assert_eq!(d.route(&accept("alice", "APP"), &claims("alice"), Some("APP")), Route::Delegate);
        assert_eq!(d.route(&accept("bob", "OTHER"), &claims("bob"), Some("OTHER")), Route::Local);
        assert_eq!(d.route(&accept("auth", "AUTH"), &claims("auth"), Some("AUTH")), Route::Local);
        assert_eq!(d.route(&refused, &claims("auth"), Some("AUTH")), Route::Local);
        assert_eq!(d.route(&accept("admin", "SYS"), &claims("admin"), Some("SYS")), Route::Local);
        assert_eq!(d.route(&refused, &claims("admin"), Some("SYS")), Route::Local);
        assert_eq!(d.route(&refused, &claims("alice"), Some("APP")), Route::Delegate);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_service_refuses_within_the_timeout_and_reasons_stay_private_by_default() {
        let d = Delegation::new(Arc::new(Never), rules(true));
        let started = tokio::time::Instant::now();
        let verdict = d.ask(&claims("x"), &facts()).await;
        assert!(matches!(verdict, Verdict::Refuse(RefusalReason::ServiceUnavailable)));
        assert_eq!(started.elapsed(), Duration::from_secs(2));

        let text = Verdict::Explained(RefusalReason::ServiceRefused, "no such user".into());
        let private = Delegation::new(Arc::new(Says(text.clone())), rules(true));
        assert!(matches!(private.ask(&claims("x"), &facts()).await, Verdict::Refuse(RefusalReason::ServiceRefused)));
        let mut open = rules(true);
        open.reveal_reason = true;
        let open = Delegation::new(Arc::new(Says(text)), open);
        assert!(matches!(open.ask(&claims("x"), &facts()).await, Verdict::Explained(_, t) if t == "no such user"));
    }

    #[test]
    fn only_auth_users_of_the_service_account_serve_the_callout() {
        let d = Delegation::new(Arc::new(Never), rules(true));
        let identity = |user: &str, account: &str| match accept(user, account) {
            Verdict::Accept(i) => i,
            _ => unreachable!(),
        };
        assert!(d.mark(identity("auth", "AUTH")).serves_callout);
        assert!(!d.mark(identity("auth", "APP")).serves_callout);
        assert!(!d.mark(identity("alice", "AUTH")).serves_callout);
    }

    #[test]
    fn reasons_are_cleaned_and_bounded() {
        assert_eq!(client_reason("bad\r\n-ERR 'x'"), Some("bad -ERR x".into()));
        assert_eq!(client_reason("  \u{7}  "), None);
        assert_eq!(client_reason("é unknown"), Some("unknown".into()));
        assert_eq!(client_reason(&"a".repeat(500)).unwrap().len(), MAX_REASON_LEN);
    }
}
