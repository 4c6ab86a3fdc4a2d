//! Credentials for the monitoring endpoints: a bearer token or a user and
//! password (basic auth), stored hashed like client passwords.
//!
//! Verification is argon2/bcrypt, so it runs on a blocking thread, one at
//! a time (monitoring is not worth more CPU than that); a recent success is
//! remembered by a keyed digest ([`VerifiedCache`]) so a dashboard polling
//! every second pays the hash once. Wrong credentials are answered after a
//! delay that grows per client address.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hyper::header::HeaderValue;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::auth::password::{PasswordError, PasswordHash};
use crate::auth::{FailureThrottle, VerifiedCache};
use crate::config::HttpAuthorization;
use crate::secret::Secret;

/// Longest delay before answering repeated failures from one address.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);
/// Longest `Authorization` header value considered (longer is refused
/// unverified, so nobody makes argon2 hash megabytes).
const MAX_HEADER_LEN: usize = 1024;

#[derive(Debug)]
enum Required {
    Token(PasswordHash),
    Basic { user: String, password: PasswordHash },
}

/// What a request presented.
struct Presented {
    user: Option<String>,
    secret: Secret,
}

/// The configured monitoring credentials and their verification state.
#[derive(Debug)]
pub(super) struct MonitorAuth {
    required: Required,
    cache: VerifiedCache,
    /// One verification at a time.
    slots: Arc<Semaphore>,
    throttle: FailureThrottle,
}

impl MonitorAuth {
    /// Parses the stored secret (a hash or plain text).
    pub(super) fn new(config: &HttpAuthorization) -> Result<Self, PasswordError> {
        let required = match config {
            HttpAuthorization::Token(token) => Required::Token(PasswordHash::parse(token.expose())?),
            HttpAuthorization::User { user, password } => {
                Required::Basic { user: user.clone(), password: PasswordHash::parse(password.expose())? }
            }
        };
        Ok(MonitorAuth {
            required,
            cache: VerifiedCache::default(),
            slots: Arc::new(Semaphore::new(1)),
            throttle: FailureThrottle::new(MAX_FAILURE_DELAY),
        })
    }

    /// The `WWW-Authenticate` challenge for a 401.
    pub(super) fn challenge(&self) -> &'static str {
        match self.required {
            Required::Token(_) => "Bearer realm=\"warden monitoring\"",
            Required::Basic { .. } => "Basic realm=\"warden monitoring\", charset=\"UTF-8\"",
        }
    }

    /// Whether the request's `Authorization` header carries the configured
    /// credentials. A missing header is answered at once; a wrong one after
    /// the per-address delay.
    pub(super) async fn check(&self, header: Option<&HeaderValue>, ip: IpAddr) -> bool {
        let Some(presented) = header.and_then(|h| self.presented(h)) else { return false };
        let (name, hash, user_ok) = match &self.required {
            Required::Token(hash) => ("", hash, true),
            Required::Basic { user, password } => {
                let same = presented.user.as_deref().is_some_and(|u| bool::from(u.as_bytes().ct_eq(user.as_bytes())));
                (user.as_str(), password, same)
            }
        };
        if user_ok && self.cache.check(name, presented.secret.expose(), Instant::now()) {
            return true;
        }
        // Verify even for a wrong user name, so both failures cost the same.
        let verified = match self.slots.clone().acquire_owned().await {
            Ok(permit) => {
                let hash = hash.clone();
                let secret = presented.secret.clone();
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    hash.verify(secret.expose())
                })
                .await
                .unwrap_or(false)
            }
            Err(_) => false,
        };
        if verified && user_ok {
            self.cache.remember(name, presented.secret.expose(), Instant::now());
            self.throttle.success(ip);
            return true;
        }
        let delay = self.throttle.failure(ip, Instant::now());
        tokio::time::sleep(delay).await;
        false
    }

    /// The credentials in an `Authorization` value of the configured scheme.
    fn presented(&self, header: &HeaderValue) -> Option<Presented> {
        let value = header.to_str().ok()?;
        if value.len() > MAX_HEADER_LEN {
            return None;
        }
        let (scheme, rest) = value.split_once(' ')?;
        let rest = rest.trim();
        match self.required {
            Required::Token(_) if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() => {
                Some(Presented { user: None, secret: Secret::new(rest) })
            }
            Required::Basic { .. } if scheme.eq_ignore_ascii_case("basic") => {
                let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
                let text = String::from_utf8(decoded).ok()?;
                let (user, password) = text.split_once(':')?;
                Some(Presented { user: Some(user.to_owned()), secret: Secret::new(password) })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[tokio::test]
    async fn bearer_token() {
        let auth = MonitorAuth::new(&HttpAuthorization::Token(Secret::new("s3cret"))).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(auth.check(Some(&header("Bearer s3cret")), ip).await);
        assert!(auth.check(Some(&header("bearer s3cret")), ip).await, "cached, scheme case-insensitive");
        assert!(!auth.check(Some(&header("Bearer wrong")), ip).await);
        assert!(!auth.check(Some(&header("Basic czNjcmV0")), ip).await, "wrong scheme");
        assert!(!auth.check(None, ip).await);
        assert!(auth.challenge().starts_with("Bearer "));
    }

    #[tokio::test]
    async fn basic_user_and_password() {
        let config = HttpAuthorization::User { user: "ops".into(), password: Secret::new("pw:with:colons") };
        let auth = MonitorAuth::new(&config).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(auth.check(Some(&header(&format!("Basic {}", b64("ops:pw:with:colons")))), ip).await);
        assert!(!auth.check(Some(&header(&format!("Basic {}", b64("other:pw:with:colons")))), ip).await);
        assert!(!auth.check(Some(&header(&format!("Basic {}", b64("ops:nope")))), ip).await);
        assert!(!auth.check(Some(&header("Basic !!!")), ip).await);
        assert!(!auth.check(Some(&header("Bearer pw:with:colons")), ip).await);
    }
}
