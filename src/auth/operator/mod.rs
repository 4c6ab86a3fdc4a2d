//! Operator mode: accounts and users from JWTs (NATS's decentralized auth).
//!
//! # The trust chain
//! The config names the operator JWTs. An operator's own key (unless it
//! asks for strict signing-key use) and its signing keys may sign account
//! JWTs; an account's own key and its signing keys may sign its users' JWTs
//! (a scoped signing key's users get its template instead of their own
//! permissions). A client presents its user JWT and a signature of the
//! INFO nonce by the user's key (the `.creds` file holds both), unless the
//! JWT is a bearer token. Every token is checked for signature, issuer,
//! subject, expiry and revocation where it is used; nothing unverified is
//! stored, so a forged account JWT pushed to the directory resolver never
//! reaches its disk (nats-server 2.9.10 stores it and fails later).
//!
//! # Pieces
//! - [`Resolver`]: the account JWTs the server holds (the preloaded ones, or
//!   a directory's `<key>.jwt` files), and pushed updates to them.
//! - [`accounts`]: verified account JWTs as the broker's account configs
//!   (exports, imports with their activation tokens, limits).
//! - [`login`]: the [`JwtAuth`] authenticator over one [`Directory`], the
//!   accounts' signing keys, revocations and default permissions.
//!
//! An update (pushed, a changed file plus reload, or an expiry passing)
//! builds a new directory and account set and is applied as a reload: live
//! connections re-check their login against it, so a revoked user is
//! closed and tightened permissions apply at once.

mod accounts;
mod conditions;
mod login;
mod mappings;
mod rate_tags;
mod template;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use tracing::warn;

use crate::config::{decode_operators, trusted_keys, Options, ResolverOptions};
use crate::jwt::{self, AccountClaims, Jwt, JwtError};

pub use accounts::Directory;
pub(crate) use login::user_identity;
pub use login::JwtAuth;

/// Largest account JWT file the directory resolver reads.
const MAX_FILE: u64 = jwt::MAX_TOKEN_LEN as u64;

/// Why operator mode cannot start.
#[derive(Debug)]
#[non_exhaustive]
pub enum OperatorError {
    /// An operator JWT no longer verifies (it expired since the config was read).
    Operator(JwtError),
    /// The directory resolver's directory cannot be read or made.
    Directory {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Display for OperatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperatorError::Operator(err) => write!(f, "operator JWT: {err}"),
            OperatorError::Directory { dir, source } => write!(f, "resolver dir {}: {source}", dir.display()),
        }
    }
}

impl std::error::Error for OperatorError {}

/// What a pushed account JWT did (nats-server's answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Stored and to be applied: `"jwt updated"`.
    Updated(String),
    /// Verified, but not newer than the one held, or for an account this
    /// server does not hold (memory resolver): nothing changes.
    Unchanged(String),
}

/// Why a pushed account JWT was refused: the account (if known) and the
/// text nats-server answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRefused {
    /// The account key, or `n/a`.
    pub account: String,
    /// `"jwt update resulted in error - ..."`, `"jwt validation failed - ..."`.
    pub description: String,
}

/// The account JWTs this server holds, and who may sign them.
#[derive(Debug)]
pub struct Resolver {
    /// Keys that may sign account JWTs.
    trusted: Vec<String>,
    /// Memory or directory, as configured.
    resolver: ResolverOptions,
    /// Account key to its JWT, every one verified when it entered.
    tokens: Mutex<BTreeMap<String, Jwt<AccountClaims>>>,
}

impl Resolver {
    /// The resolver `opts` describes (operator mode only), with its
    /// accounts read: the preloaded JWTs, or the directory's files (a file
    /// that does not verify is logged and left out).
    pub fn load(opts: &Options) -> Result<Option<Resolver>, OperatorError> {
        let Some(operator) = &opts.operator else { return Ok(None) };
        let operators = decode_operators(&operator.operators).map_err(OperatorError::Operator)?;
        let resolver = Resolver {
            trusted: trusted_keys(&operators),
            resolver: operator.resolver.clone(),
            tokens: Mutex::new(BTreeMap::new()),
        };
        let mut tokens = BTreeMap::new();
        match &operator.resolver {
            ResolverOptions::Memory => {
                for (key, token) in &operator.preload {
                    match resolver.verify(token, Some(key)) {
                        Ok(claims) => {
                            tokens.insert(key.clone(), claims);
                        }
                        Err(refused) => {
                            warn!(account = %key, error = %refused.description, "preloaded account JWT left out")
                        }
                    }
                }
            }
            ResolverOptions::Directory { dir, limit, .. } => {
                for (key, token) in read_dir(dir)? {
                    match resolver.verify(&token, Some(&key)) {
                        Ok(claims) if tokens.len() < *limit => {
                            tokens.insert(key, claims);
                        }
                        Ok(_) => warn!(account = %key, "resolver dir holds more accounts than its limit; left out"),
                        Err(refused) => {
                            warn!(file = %dir.join(format!("{key}.jwt")).display(), error = %refused.description, "account JWT left out")
                        }
                    }
                }
            }
        }
        *resolver.tokens.lock() = tokens;
        Ok(Some(resolver))
    }

    /// Whether this is the directory resolver (which answers
    /// `$SYS.REQ.CLAIMS.UPDATE` and `LOOKUP`).
    pub fn is_directory(&self) -> bool {
        matches!(self.resolver, ResolverOptions::Directory { .. })
    }

    /// The accounts and users the held JWTs describe, now.
    pub fn directory(&self, system_account: Option<&str>) -> Directory {
        let tokens = self.tokens.lock().clone();
        Directory::build(&tokens, system_account, jwt::now())
    }

    /// The held JWT of `key` (`$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP`).
    pub fn lookup(&self, key: &str) -> Option<String> {
        self.tokens.lock().get(key).map(|claims| claims.token.clone())
    }

    /// Verifies an account JWT: signature, expiry, valid `mappings` and
    /// tracing claims, a trusted issuer, and (when the subject named one)
    /// the right account.
    fn verify(&self, token: &str, expected: Option<&str>) -> Result<Jwt<AccountClaims>, UpdateRefused> {
        let refused = |account: &str, what: &str, err: &dyn fmt::Display| UpdateRefused {
            account: account.to_owned(),
            description: format!("{what} - {err}"),
        };
        let claims = jwt::decode::<AccountClaims>(token, jwt::now())
            .map_err(|e| refused(expected.unwrap_or("n/a"), "jwt update resulted in error", &e))?;
        let account = claims.registered.sub.clone();
        let mut errors = mappings::rules(&claims.nats).err().unwrap_or_default();
        errors.extend(accounts::trace_errors(&claims.nats));
        if !errors.is_empty() {
            let errors = format!("validation errors: [{}]", errors.join(" "));
            return Err(refused(&account, "jwt validation failed", &errors));
        }
        if expected.is_some_and(|key| key != account) {
            return Err(refused(&account, "jwt update resulted in error", &"subject does not match jwt content"));
        }
        if !self.trusted.contains(&claims.registered.iss) {
            return Err(refused(&account, "jwt validation failed", &"issuer is not a trusted operator key"));
        }
        Ok(claims)
    }

    /// A pushed account JWT (`$SYS.REQ.CLAIMS.UPDATE`, or
    /// `$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE` with `expected` = key).
    /// Verified before anything is stored; one not newer than the held one
    /// changes nothing; the memory resolver only updates accounts it holds.
    pub fn update(&self, token: &str, expected: Option<&str>) -> Result<Update, UpdateRefused> {
        let claims = self.verify(token, expected)?;
        let key = claims.registered.sub.clone();
        let mut tokens = self.tokens.lock();
        if let Some(old) = tokens.get(&key) {
            // The token itself, not its jti: the Go library's jti hashes
            // only the standard claims, so two updates signed in the same
            // second (another revocation, say) share one (nats-server
            // compares the tokens too).
            if old.token == claims.token || claims.registered.iat < old.registered.iat {
                return Ok(Update::Unchanged(key));
            }
        }
        match &self.resolver {
            ResolverOptions::Memory if !tokens.contains_key(&key) => return Ok(Update::Unchanged(key)),
            ResolverOptions::Memory => {}
            ResolverOptions::Directory { dir, limit, .. } => {
                if !tokens.contains_key(&key) && tokens.len() >= *limit {
                    return Err(UpdateRefused {
                        account: key,
                        description: "jwt update resulted in error - resolver limit reached".into(),
                    });
                }
                write_file(dir, &key, token).map_err(|e| UpdateRefused {
                    account: key.clone(),
                    description: format!("jwt update resulted in error - {e}"),
                })?;
            }
        }
        tokens.insert(key.clone(), claims);
        Ok(Update::Updated(key))
    }
}

/// `<dir>/<key>.jwt` (and nats-server's sharded `<dir>/<xy>/<key>.jwt`).
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, OperatorError> {
    let fail = |source| OperatorError::Directory { dir: dir.to_owned(), source };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            let path = entry.path();
            let meta = entry.metadata().map_err(fail)?;
            if meta.is_dir() && current == dir {
                pending.push(path);
                continue;
            }
            let Some(key) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jwt")) else {
                continue;
            };
            if meta.len() > MAX_FILE {
                warn!(file = %path.display(), "account JWT file larger than 256 KiB; left out");
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(text) => out.push((key.to_owned(), text.trim().to_owned())),
                Err(err) => warn!(file = %path.display(), error = %err, "cannot read account JWT file"),
            }
        }
    }
    Ok(out)
}

/// Writes `<dir>/<key>.jwt` whole or not at all (a temporary file renamed
/// over it), so a crash never leaves half a JWT.
fn write_file(dir: &Path, key: &str, token: &str) -> std::io::Result<()> {
    if crate::nkeys::PublicKey::parse_as(key, crate::nkeys::KeyType::Account).is_err() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid public key"));
    }
    let path = dir.join(format!("{key}.jwt"));
    let temporary = dir.join(format!(".{key}.jwt.tmp"));
    std::fs::write(&temporary, token)?;
    std::fs::rename(&temporary, &path)
}

#[cfg(test)]
mod tests;
