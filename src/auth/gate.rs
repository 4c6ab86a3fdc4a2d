//! Where every login passes: the failure throttle, then the bounded
//! verification pool, then (for clients) a check that the verdict still
//! holds under the configuration in force when it is applied. Written once
//! and used by the client listener ([`Gate`]), the route listener and the
//! monitoring listener ([`Guard`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;
use tokio::time::Instant;

use super::throttle::Slot;
use super::{
    Authenticator, Claims, ConnectionFacts, Delegation, FailureThrottle, Identity, RefusalReason, Route, Verdict,
    Verifier,
};

/// The failure throttle of one listener and the server's verification
/// pool, used together.
#[derive(Debug, Clone)]
pub struct Guard {
    verifier: Arc<Verifier>,
    throttle: Arc<FailureThrottle>,
}

impl Guard {
    /// A guard over `throttle` that runs checks on `verifier`.
    pub fn new(verifier: Arc<Verifier>, throttle: FailureThrottle) -> Self {
        Guard { verifier, throttle: Arc::new(throttle) }
    }

    /// The throttle (for its user keys and counts).
    pub fn throttle(&self) -> &FailureThrottle {
        &self.throttle
    }

    /// Waits for the attempt's slot in the throttle, runs `check` on the
    /// pool and records whether it `succeeded` there, so an attempt that
    /// started is counted even if its connection is gone by the time it
    /// ends. `None` when the throttle refused it unchecked or the pool
    /// could not run it (treat as a failure).
    pub async fn check<R, F, S>(&self, ip: IpAddr, user_key: u64, check: F, succeeded: S) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
        S: FnOnce(&R) -> bool + Send + 'static,
    {
        let now = Instant::now();
        match self.throttle.slot(ip, user_key, now) {
            Slot::At(at) => tokio::time::sleep_until(at).await,
            Slot::Refuse(at) => {
                tokio::time::sleep_until(at).await;
                return None;
            }
        }
        let throttle = self.throttle.clone();
        self.verifier
            .run(move || {
                let result = check();
                throttle.record(ip, user_key, succeeded(&result), now);
                result
            })
            .await
    }

    /// Waits for the attempt's slot in the throttle and starts it; it
    /// counts as a failure unless [`Attempt::finish`] says otherwise (so a
    /// client that hangs up while its login is decided is still counted).
    /// `None` (after waiting out the throttle's patience): refused without
    /// being checked, and not counted.
    pub async fn begin(&self, ip: IpAddr, user_key: u64) -> Option<Attempt> {
        let now = Instant::now();
        match self.throttle.slot(ip, user_key, now) {
            Slot::At(at) => {
                tokio::time::sleep_until(at).await;
                Some(Attempt { throttle: self.throttle.clone(), ip, user_key, started: now, done: false })
            }
            Slot::Refuse(at) => {
                tokio::time::sleep_until(at).await;
                None
            }
        }
    }

    /// Runs `job` on the verification pool; `None` if the pool could not.
    pub async fn run<R, F>(&self, job: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        self.verifier.run(job).await
    }
}

/// One login attempt in the failure throttle (see [`Guard::begin`]).
#[derive(Debug)]
pub struct Attempt {
    throttle: Arc<FailureThrottle>,
    ip: IpAddr,
    user_key: u64,
    started: Instant,
    done: bool,
}

impl Attempt {
    /// Records how the attempt ended.
    pub fn finish(mut self, succeeded: bool) {
        self.done = true;
        self.throttle.record(self.ip, self.user_key, succeeded, self.started);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.throttle.record(self.ip, self.user_key, false, self.started);
        }
    }
}

/// The client listener's authentication: the configured authenticator
/// (replaced whole on reload), the guard and the time a client has.
#[derive(Debug)]
pub struct Gate {
    authenticator: RwLock<Arc<dyn Authenticator>>,
    /// Bumped by every reload; connections watch it.
    generation: watch::Sender<u64>,
    guard: Guard,
    timeout: Duration,
    /// The external authorizer, when one is configured (set at start; not
    /// changed by reloads).
    delegation: Option<Arc<Delegation>>,
}

impl Gate {
    /// A gate in front of `authenticator`; clients have `timeout` to log in.
    pub fn new(authenticator: Arc<dyn Authenticator>, guard: Guard, timeout: Duration) -> Self {
        Gate {
            authenticator: RwLock::new(authenticator),
            generation: watch::channel(0).0,
            guard,
            timeout,
            delegation: None,
        }
    }

    /// This gate, handing the clients `delegation`'s rules send it to its
    /// external authorizer.
    pub fn delegating(mut self, delegation: Option<Arc<Delegation>>) -> Self {
        self.delegation = delegation;
        self
    }

    /// The throttle and pool this gate checks logins with (for another
    /// listener's gate to share, so guesses split between listeners are
    /// still counted together).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The external authorizer's rules, when there is one.
    pub fn delegation(&self) -> Option<&Arc<Delegation>> {
        self.delegation.as_ref()
    }

    /// The current authenticator.
    pub fn authenticator(&self) -> Arc<dyn Authenticator> {
        self.authenticator.read().clone()
    }

    /// Whether clients must send credentials (INFO `auth_required`).
    pub fn auth_required(&self) -> bool {
        self.delegation.is_some() || self.authenticator.read().auth_required()
    }

    /// Whether clients get a nonce to sign in INFO: nkey users are
    /// configured, or an external authorizer may be asked about an nkey.
    pub fn wants_nonce(&self) -> bool {
        self.delegation.is_some() || self.authenticator.read().wants_nonce()
    }

    /// Time a client has from connecting (after TLS) to being authenticated.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The throttle of client logins.
    pub fn throttle(&self) -> &FailureThrottle {
        self.guard.throttle()
    }

    /// Swaps in a new authenticator and tells every connection to re-check
    /// its identity.
    pub fn replace(&self, authenticator: Arc<dyn Authenticator>) {
        *self.authenticator.write() = authenticator;
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// Reloads so far.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// A receiver that changes on every reload.
    pub fn reload_signal(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Checks a client's credentials: throttled, on the pool, then (if the
    /// delegation's rules say so) by the external authorizer, and then
    /// re-checked against the configuration in force *now* if a reload
    /// completed meanwhile, so a user a reload removed cannot get in with a
    /// check that was queued before it.
    pub async fn admit(&self, claims: Claims, facts: ConnectionFacts) -> Verdict {
        let generation = self.generation();
        let authenticator = self.authenticator();
        let ip = facts.addr.ip();
        let user_key = self.throttle().credential_key(&claims);
        let Some(attempt) = self.guard.begin(ip, user_key).await else {
            return Verdict::Refuse(RefusalReason::Throttled);
        };
        let local = authenticator.clone();
        let checked = self
            .guard
            .run(move || {
                let verdict = local.authenticate(&claims, &facts);
                (verdict, claims, facts)
            })
            .await;
        let Some((verdict, claims, facts)) = checked else {
            return Verdict::Refuse(RefusalReason::BadCredentials);
        };
        let verdict = match &self.delegation {
            Some(delegation) => {
                let known = authenticator.account_of(&claims);
                match delegation.route(&verdict, &claims, known.as_deref()) {
                    Route::Local => verdict,
                    Route::Delegate => delegation.ask(&claims, &facts).await,
                }
            }
            None => verdict,
        };
        attempt.finish(matches!(verdict, Verdict::Accept(_)));
        match verdict {
            Verdict::Accept(identity) if self.generation() != generation => match self.refresh(&identity) {
                Some(identity) => Verdict::Accept(identity),
                None => Verdict::Refuse(RefusalReason::BadCredentials),
            },
            Verdict::Accept(identity) => Verdict::Accept(self.mark(identity)),
            verdict => verdict,
        }
    }

    /// After a reload: the identity a connection logged in as, as the
    /// configuration now sees it (`None`: close it). Identities an external
    /// authorizer admitted keep what it granted, until their expiry.
    pub fn refresh(&self, identity: &Identity) -> Option<Identity> {
        if identity.delegated {
            return Some(identity.clone());
        }
        self.authenticator().refresh(identity).map(|identity| self.mark(identity))
    }

    fn mark(&self, identity: Identity) -> Identity {
        match &self.delegation {
            Some(delegation) => delegation.mark(identity),
            None => identity,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use parking_lot::Mutex;

    use super::*;
    use crate::auth::{Identity, NoAuth};
    use crate::perms::PermissionSet;

    /// Admits alice, after telling the test it started and waiting for
    /// its go-ahead.
    #[derive(Debug)]
    struct OnlyAlice {
        entered: Mutex<std::sync::mpsc::Sender<()>>,
        proceed: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl Authenticator for OnlyAlice {
        fn authenticate(&self, claims: &Claims, _: &ConnectionFacts) -> Verdict {
            let _ = self.entered.lock().send(());
            let _ = self.proceed.lock().recv();
            match claims.user.as_deref() {
                Some("alice") => {
                    Verdict::Accept(Identity::global(Some("alice".into()), Arc::new(PermissionSet::unrestricted()), 1))
                }
                _ => Verdict::Refuse(RefusalReason::BadCredentials),
            }
        }

        fn refresh(&self, identity: &Identity) -> Option<Identity> {
            Some(identity.clone())
        }
    }

    /// Refuses everyone on refresh: the configuration after a reload that
    /// removed every user.
    #[derive(Debug)]
    struct NobodyAnyMore;

    impl Authenticator for NobodyAnyMore {
        fn authenticate(&self, _: &Claims, _: &ConnectionFacts) -> Verdict {
            Verdict::Refuse(RefusalReason::BadCredentials)
        }

        fn refresh(&self, _: &Identity) -> Option<Identity> {
            None
        }
    }

    fn facts() -> ConnectionFacts {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        ConnectionFacts::new(addr)
    }

    fn claims(user: &str) -> Claims {
        Claims { user: Some(user.into()), ..Claims::default() }
    }

    fn gate(authenticator: Arc<dyn Authenticator>) -> Gate {
        let guard = Guard::new(Arc::new(Verifier::new(1)), FailureThrottle::new(Duration::from_secs(5)));
        Gate::new(authenticator, guard, Duration::from_secs(2))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_are_counted_and_a_reload_during_the_check_is_honoured() {
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (go, proceed) = std::sync::mpsc::channel();
        let alice = OnlyAlice { entered: Mutex::new(entered_tx), proceed: Mutex::new(proceed) };
        let gate = Arc::new(gate(Arc::new(alice)));
        go.send(()).unwrap();
        assert!(matches!(gate.admit(claims("mallory"), facts()).await, Verdict::Refuse(_)));
        entered.recv().unwrap();
        assert_eq!(gate.throttle().failures(facts().addr.ip()), 1);
        go.send(()).unwrap();
        assert!(matches!(gate.admit(claims("alice"), facts()).await, Verdict::Accept(_)));
        entered.recv().unwrap();
        // A reload lands while alice's check runs: the new config decides.
        let admit = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit(claims("alice"), facts()).await }
        });
        let entered = tokio::task::spawn_blocking(move || entered.recv()).await.unwrap();
        assert!(entered.is_ok());
        gate.replace(Arc::new(NobodyAnyMore));
        go.send(()).unwrap();
        assert!(matches!(admit.await.unwrap(), Verdict::Refuse(_)));
        assert_eq!(gate.generation(), 1);
    }

    #[tokio::test]
    async fn no_auth_admits_everyone() {
        let gate = gate(Arc::new(NoAuth::new(Arc::new(PermissionSet::unrestricted()))));
        assert!(!gate.auth_required());
        assert!(matches!(gate.admit(Claims::default(), facts()).await, Verdict::Accept(_)));
    }
}
