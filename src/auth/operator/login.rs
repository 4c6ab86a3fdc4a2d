//! Logging in with a user JWT (nats-server's `processClientOrLeafAuthentication`
//! for `trustedKeys`): the JWT verifies and is current; its account is
//! held and its issuer is the account or one of the account's signing keys;
//! unless it is a bearer token (and the account allows those), the client
//! signed the INFO nonce with the user's key; it is not revoked; and the
//! address, time and connection type are ones it allows. The identity's
//! expiry is the soonest of the user's `exp`, the account's `exp` and the
//! end of its connect window: the session closes the connection then.
//!
//! Every failure is logged with its reason here (the client gets only
//! `Authorization Violation`). Checking costs two Ed25519 verifications
//! and a permission compile, on the verification pool like every login.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tracing::info;

use super::accounts::{permissions, Directory, JwtAccount};
use super::conditions::{self, NotHere};
use super::template::{self, Values};
use crate::auth::{
    credential_fingerprint, Authenticator, Claims, ConnectionFacts, Identity, RefusalReason, UserLimits, Verdict,
};
use crate::jwt::{self, Jwt, UserClaims};
use crate::nkeys::{self, PublicKey};
use crate::perms::PermissionSet;

/// The operator-mode authenticator over one [`Directory`] (replaced whole
/// when the accounts change).
#[derive(Debug)]
pub struct JwtAuth {
    directory: Arc<Directory>,
}

impl JwtAuth {
    /// Logs users in against `directory`.
    pub fn new(directory: Arc<Directory>) -> Self {
        JwtAuth { directory }
    }

    /// Everything but the nonce signature; the identity it would have.
    fn admit(
        &self,
        user: &Arc<Jwt<UserClaims>>,
        from: Option<(IpAddr, &str)>,
        now: i64,
    ) -> Result<Identity, RefusalReason> {
        let claims = &user.nats;
        let refuse = |why: &str| {
            info!(user = %user.registered.sub, name = %user.registered.name, "user JWT refused: {why}");
            RefusalReason::BadJwt
        };
        let issuer = &user.registered.iss;
        let account_key = if claims.issuer_account.is_empty() { issuer } else { &claims.issuer_account };
        let Some(account) = self.directory.account(account_key) else {
            return Err(refuse("its account is not held (unknown, expired or left out)"));
        };
        let Some(scope) = account.signers.get(issuer) else {
            return Err(refuse("its issuer is not the account or one of the account's signing keys"));
        };
        jwt::check_times(&user.registered, now).map_err(|e| refuse(&e.to_string()))?;
        if account.expires.is_some_and(|at| now > at) {
            return Err(refuse("its account JWT has expired"));
        }
        if account.is_revoked(&user.registered.sub, user.registered.iat) {
            return Err(refuse("revoked by its account"));
        }
        if claims.bearer_token && account.disallow_bearer {
            return Err(refuse("bearer tokens are disallowed by its account"));
        }
        // A scoped key's users take its template, and may carry nothing of
        // their own (the Go library's ValidateScopedSigner).
        let effective = match scope {
            Some(scope) => {
                let own = UserClaims {
                    issuer_account: String::new(),
                    tags: Vec::new(),
                    kind: String::new(),
                    version: 0,
                    ..claims.clone()
                };
                if own != UserClaims::default() {
                    return Err(refuse("a scoped signing key's users may not carry permissions or limits"));
                }
                filled(&scope.template, user, account)
                    .ok_or_else(|| refuse("its scope template makes an invalid deny subject"))?
            }
            None => claims.clone(),
        };
        let mut identity = user_identity(
            user,
            &effective,
            account.key.as_str().into(),
            &account.default_permissions,
            account.expires,
            from,
            now,
        )?;
        identity.jwt = Some(user.clone());
        Ok(identity)
    }
}

/// The identity a verified user JWT gives in `account`, with `effective`
/// its claims after any scope template: its connect conditions checked
/// for a connection from `from` (address and connection type; not checked
/// without one) at `now`, its
/// permissions compiled (`defaults` when it has none), its limits, and an
/// expiry at the soonest of its `exp`, `account_expires` and the end of its
/// connect window. Every refusal is logged here with its reason. Shared by
/// operator-mode logins and the users an auth callout answers with.
pub(crate) fn user_identity(
    user: &Jwt<UserClaims>,
    effective: &UserClaims,
    account: Arc<str>,
    defaults: &Arc<PermissionSet>,
    account_expires: Option<i64>,
    from: Option<(IpAddr, &str)>,
    now: i64,
) -> Result<Identity, RefusalReason> {
    let refuse = |why: &str| {
        info!(user = %user.registered.sub, name = %user.registered.name, "user JWT refused: {why}");
        RefusalReason::BadJwt
    };
    let window_end = match conditions::check(effective, from, now) {
        Ok(end) => end,
        Err(NotHere::Unreadable(why)) => return Err(refuse(&why)),
        Err(not_here) => {
            info!(user = %user.registered.sub, ?not_here, from = ?from, "user JWT refused here");
            return Err(RefusalReason::NotAllowedHere);
        }
    };
    let permissions = match permissions(&effective.permissions()) {
        None => defaults.clone(),
        Some(perms) => match PermissionSet::compile(&perms) {
            Ok(set) => Arc::new(set),
            Err(err) => return Err(refuse(&format!("its permissions do not compile: {err}"))),
        },
    };
    let expires = [(user.registered.exp > 0).then_some(user.registered.exp), account_expires, window_end]
        .into_iter()
        .flatten()
        .min()
        .and_then(|at| u64::try_from(at).ok())
        .map(|at| UNIX_EPOCH + Duration::from_secs(at));
    let mut identity =
        Identity::new(Some(user.registered.sub.clone()), account, permissions, credential_fingerprint(&user.token));
    identity.expires = expires;
    identity.limits = UserLimits {
        max_subscriptions: usize::try_from(effective.subs).ok(),
        max_payload: usize::try_from(effective.payload).ok(),
        rate: super::rate_tags::rate_limit(&effective.tags).map_err(|why| refuse(&why))?,
    };
    Ok(identity)
}

/// A scope's template filled in for `user`; `None` if a deny entry cannot be.
fn filled(template: &UserClaims, user: &Jwt<UserClaims>, account: &JwtAccount) -> Option<UserClaims> {
    let values = Values {
        name: &user.registered.name,
        subject: &user.registered.sub,
        account_name: &account.name,
        account_subject: &account.key,
        tags: &user.nats.tags,
        account_tags: &account.tags,
    };
    Some(UserClaims {
        publish: template::apply(&template.publish, &values)?,
        subscribe: template::apply(&template.subscribe, &values)?,
        ..template.clone()
    })
}

/// Whether `signature` (CONNECT `sig`) is the user key's signature of `nonce`.
fn signed_nonce(user: &str, nonce: Option<&str>, signature: Option<&str>) -> bool {
    let (Some(nonce), Some(signature)) = (nonce, signature.and_then(nkeys::decode_signature)) else { return false };
    PublicKey::parse_as(user, nkeys::KeyType::User).is_ok_and(|key| key.verify(nonce.as_bytes(), &signature))
}

impl Authenticator for JwtAuth {
    fn wants_nonce(&self) -> bool {
        true
    }

    fn authenticate(&self, claims: &Claims, facts: &ConnectionFacts) -> Verdict {
        let Some(token) = &claims.jwt else {
            return Verdict::Refuse(RefusalReason::MissingCredentials);
        };
        let now = jwt::now();
        let user = match jwt::decode::<UserClaims>(token.expose(), now) {
            Ok(user) => Arc::new(user),
            Err(err) => {
                info!(addr = %facts.addr, error = %err, "user JWT refused");
                return Verdict::Refuse(RefusalReason::BadJwt);
            }
        };
        let identity = match self.admit(&user, Some((facts.addr.ip(), facts.connection.jwt_name())), now) {
            Ok(identity) => identity,
            Err(reason) => return Verdict::Refuse(reason),
        };
        if !user.nats.bearer_token
            && !signed_nonce(&user.registered.sub, facts.nonce.as_deref(), claims.signature.as_deref())
        {
            info!(user = %user.registered.sub, "user JWT refused: the nonce signature is missing or wrong");
            return Verdict::Refuse(RefusalReason::BadCredentials);
        }
        Verdict::Accept(identity)
    }

    /// After the accounts changed: the same user JWT, checked against the
    /// new directory (a revoked user, a removed signing key or account
    /// closes the connection; new default permissions apply). The address
    /// is not checked again: it has not changed.
    fn refresh(&self, identity: &Identity) -> Option<Identity> {
        self.admit(identity.jwt.as_ref()?, None, jwt::now()).ok()
    }
}
