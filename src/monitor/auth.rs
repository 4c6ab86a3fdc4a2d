//! Credentials for the monitoring endpoints: a bearer token or a user and
//! password (basic auth), stored hashed like client passwords.
//!
//! Verification is argon2/bcrypt, so it goes through the server's [`Guard`]
//! like every login: the failure throttle of this listener (a wrong
//! credential, or a right one after failures, is answered only when the
//! address's slot comes), then the shared verification pool. A recent
//! success is remembered by a keyed digest ([`VerifiedCache`]) so a
//! dashboard polling every second pays the hash once.

use std::net::IpAddr;
use std::time::Instant;

use base64::Engine;
use hyper::header::HeaderValue;
use subtle::ConstantTimeEq;

use crate::auth::password::{PasswordError, PasswordHash};
use crate::auth::{Guard, VerifiedCache};
use crate::config::HttpAuthorization;
use crate::secret::Secret;

/// Longest `Authorization` header value considered (longer is refused
/// unverified, so nobody makes argon2 hash megabytes).
const MAX_HEADER_LEN: usize = 1024;

#[derive(Debug)]
enum Required {
    Token(PasswordHash),
    Basic { user: String, password: PasswordHash },
}

impl Required {
    fn parse(config: &HttpAuthorization) -> Result<Self, PasswordError> {
        Ok(match config {
            HttpAuthorization::Token(token) => Required::Token(PasswordHash::parse(token.expose())?),
            HttpAuthorization::User { user, password } => {
                Required::Basic { user: user.clone(), password: PasswordHash::parse(password.expose())? }
            }
        })
    }
}

/// What a request presented.
struct Presented {
    user: Option<String>,
    secret: Secret,
}

/// Checks that `config`'s stored secret can be used (for `warden check`).
pub(super) fn validate(config: &HttpAuthorization) -> Result<(), PasswordError> {
    Required::parse(config).map(|_| ())
}

/// The configured monitoring credentials and their verification state.
#[derive(Debug)]
pub(super) struct MonitorAuth {
    required: Required,
    cache: VerifiedCache,
    guard: Guard,
}

impl MonitorAuth {
    /// Parses the stored secret (a hash or plain text); checks go through `guard`.
    pub(super) fn new(config: &HttpAuthorization, guard: Guard) -> Result<Self, PasswordError> {
        Ok(MonitorAuth { required: Required::parse(config)?, cache: VerifiedCache::default(), guard })
    }

    /// The `WWW-Authenticate` challenge for a 401.
    pub(super) fn challenge(&self) -> &'static str {
        match self.required {
            Required::Token(_) => "Bearer realm=\"warden monitoring\"",
            Required::Basic { .. } => "Basic realm=\"warden monitoring\", charset=\"UTF-8\"",
        }
    }

    /// Whether the request's `Authorization` header carries the configured
    /// credentials. A missing header is answered at once; anything else is
    /// answered when the guard allows.
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
        let hash = hash.clone();
        let secret = presented.secret.clone();
        let key = self.guard.throttle().user_key(presented.user.as_deref().unwrap_or_default());
        let check = move || hash.verify(secret.expose()) & user_ok;
        let verified = self.guard.check(ip, key, check, |ok| *ok).await.unwrap_or(false);
        if verified {
            self.cache.remember(name, presented.secret.expose(), Instant::now());
        }
        verified
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

    fn guard() -> Guard {
        let verifier = std::sync::Arc::new(crate::auth::Verifier::new(1));
        Guard::new(verifier, crate::auth::FailureThrottle::new(std::time::Duration::ZERO))
    }

    #[tokio::test]
    async fn bearer_token() {
        let auth = MonitorAuth::new(&HttpAuthorization::Token(Secret::new("s3cret")), guard()).unwrap();
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
        let auth = MonitorAuth::new(&config, guard()).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(auth.check(Some(&header(&format!("Basic {}", b64("ops:pw:with:colons")))), ip).await);
        assert!(!auth.check(Some(&header(&format!("Basic {}", b64("other:pw:with:colons")))), ip).await);
        assert!(!auth.check(Some(&header(&format!("Basic {}", b64("ops:nope")))), ip).await);
        assert!(!auth.check(Some(&header("Basic !!!")), ip).await);
        assert!(!auth.check(Some(&header("Bearer pw:with:colons")), ip).await);
    }
}
