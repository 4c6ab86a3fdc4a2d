//! A cache of recent successful verifications, so a reconnect storm of
//! legitimate clients does not pay argon2 for every connection.
//!
//! An entry is a keyed SHA-256 digest of the password that verified, under
//! a random key made when the authenticator is built: a hit proves the
//! client knows that password, and the cache dies with its authenticator
//! (so a reload invalidates it). Bounded in entries and in age.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Most remembered identities.
const CAPACITY: usize = 4096;
/// How long a verification is remembered.
const TTL: Duration = Duration::from_secs(600);

/// Remembered verifications, keyed by user name (from the config, so the
/// key space is the configured users, not client input).
#[derive(Debug)]
pub struct VerifiedCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, ([u8; 32], Instant)>>,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        VerifiedCache { key, entries: Mutex::new(HashMap::new()) }
    }
}

impl VerifiedCache {
    fn digest(&self, user: &str, secret: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(secret.as_bytes());
        h.finalize().into()
    }

    /// Whether `secret` is the one that last verified for `user`, recently.
    pub fn check(&self, user: &str, secret: &str, now: Instant) -> bool {
        let digest = self.digest(user, secret);
        let entries = self.entries.lock();
        entries.get(user).is_some_and(|(d, at)| now.duration_since(*at) < TTL && bool::from(d.ct_eq(&digest)))
    }

    /// Records a successful verification.
    pub fn remember(&self, user: &str, secret: &str, now: Instant) {
        let digest = self.digest(user, secret);
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(user) {
            entries.retain(|_, (_, at)| now.duration_since(*at) < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(user.to_string(), (digest, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_same_password_and_expires() {
        let cache = VerifiedCache::default();
        let now = Instant::now();
        assert!(!cache.check("alice", "pw", now));
        cache.remember("alice", "pw", now);
        assert!(cache.check("alice", "pw", now));
        assert!(!cache.check("alice", "other", now));
        assert!(!cache.check("bob", "pw", now));
        assert!(!cache.check("alice", "pw", now + TTL));
    }
}
