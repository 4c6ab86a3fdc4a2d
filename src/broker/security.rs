//! Security counters: logins and permission violations.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::auth::RefusalReason;

/// Counters for `/varz` and `/metrics`. Violations are keyed by user name
/// (from the config, so the key space is bounded by the configured users).
#[derive(Debug, Default)]
pub struct SecurityStats {
    /// Successful logins.
    pub auth_successes: AtomicU64,
    /// Failed logins: no credentials.
    pub auth_missing: AtomicU64,
    /// Failed logins: unknown user, wrong password or token.
    pub auth_bad_credentials: AtomicU64,
    /// Failed logins: a user JWT that does not verify, is expired or
    /// revoked, or whose account is not held.
    pub auth_bad_jwt: AtomicU64,
    /// Failed logins: valid, but not from this address, at this time or
    /// on this kind of connection.
    pub auth_not_allowed_here: AtomicU64,
    /// Failed logins: client certificate not mapped to a user.
    pub auth_unmapped_certificate: AtomicU64,
    /// Failed logins: refused by the external authorizer.
    pub auth_service_refused: AtomicU64,
    /// Failed logins: the external authorizer did not answer validly in time.
    pub auth_service_unavailable: AtomicU64,
    /// Logins refused unchecked by the failure throttle.
    pub auth_throttled: AtomicU64,
    /// Clients that sent no CONNECT in time.
    pub auth_timeouts: AtomicU64,
    /// Leaf connections closed because the other side reported this
    /// server's own loop subject (a loop in the leaf topology).
    pub leafnode_loops: AtomicU64,
    /// Refused publishes and subscribes, by (user, "publish"|"subscribe").
    violations: Mutex<HashMap<(String, &'static str), u64>>,
}

/// Most distinct (user, direction) keys kept; more are folded into one.
const MAX_VIOLATION_KEYS: usize = 4096;

impl SecurityStats {
    /// Counts a refused login.
    pub fn count_auth_failure(&self, reason: RefusalReason) {
        let counter = match reason {
            RefusalReason::MissingCredentials => &self.auth_missing,
            RefusalReason::BadCredentials => &self.auth_bad_credentials,
            RefusalReason::BadJwt => &self.auth_bad_jwt,
            RefusalReason::NotAllowedHere => &self.auth_not_allowed_here,
            RefusalReason::CertificateNotMapped => &self.auth_unmapped_certificate,
            RefusalReason::ServiceRefused => &self.auth_service_refused,
            RefusalReason::ServiceUnavailable => &self.auth_service_unavailable,
            RefusalReason::Throttled => &self.auth_throttled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused publish or subscribe.
    pub fn count_violation(&self, user: &str, direction: &'static str) {
        let mut map = self.violations.lock();
        let key = if map.len() >= MAX_VIOLATION_KEYS && !map.contains_key(&(user.to_string(), direction)) {
            ("<other>".to_string(), direction)
        } else {
            (user.to_string(), direction)
        };
        *map.entry(key).or_insert(0) += 1;
    }

    /// Violation counts, sorted by user then direction.
    pub fn violations(&self) -> Vec<(String, &'static str, u64)> {
        let mut v: Vec<_> = self.violations.lock().iter().map(|((u, d), n)| (u.clone(), *d, *n)).collect();
        v.sort();
        v
    }

    /// Total failed logins.
    pub fn auth_failures(&self) -> u64 {
        self.auth_missing.load(Ordering::Relaxed)
            + self.auth_bad_credentials.load(Ordering::Relaxed)
            + self.auth_bad_jwt.load(Ordering::Relaxed)
            + self.auth_not_allowed_here.load(Ordering::Relaxed)
            + self.auth_unmapped_certificate.load(Ordering::Relaxed)
            + self.auth_service_refused.load(Ordering::Relaxed)
            + self.auth_service_unavailable.load(Ordering::Relaxed)
            + self.auth_throttled.load(Ordering::Relaxed)
    }
}
