//! Configuration: the typed [`Options`] and warden's own strict reader for
//! the nats-server config dialect.
//!
//! Layers, each in its own module:
//! - `lexer` scans characters (strings, keys, numbers with size suffixes)
//!   keeping line and column; [`parser`] builds a positioned [`value`] tree
//!   from them, resolving `$variables` and `include`s and refusing duplicate
//!   keys; inputs are bounded (see the limits in [`parser`]);
//! - `load` (with `schema`, `section`, `auth`, `duration`) reads that tree
//!   into [`Options`] with nats-server's option names, refusing unknown
//!   keys, wrong types and contradictions, and collecting warnings such as
//!   plain-text passwords. A block is a `schema::Block`: a table that names
//!   each option once with the function that reads it, and the checks
//!   across options; the top level's table (`load/mod.rs`) lists the
//!   sections, so a new section is a file and one line there;
//! - [`summary()`] describes the result for `warden check`;
//! - [`reference_markdown`] renders the same tables as the config
//!   reference, `docs/config.md`;
//! - every failure is one [`ConfigError`] naming `file:line:col`.
//!
//! Entry points: [`load_file`] and [`load_str`] (and `*_with_env` variants
//! that take the environment as a function, for tests); [`parser::parse_bytes`]
//! is the fuzzing entry point.
//!
//! Why not the `hocon` crate: on the seed's own authorization example
//! (`permissions: $admin`) it returns an empty config without an error, which
//! would start a broker without authentication, and it reads
//! `listen: 127.0.0.1:4222` as `"127.0.1"`. A security broker must read the
//! config exactly or refuse it, with a position.

mod accept_rate;
mod account_rules;
mod accounts;
mod audit;
mod auth;
mod changes;
mod delegation;
mod duration;
mod error;
pub mod flags;
mod lexer;
mod load;
mod mappings;
mod operator;
mod options;
pub mod parser;
mod rate;
mod reference;
mod restart;
mod schema;
mod section;
mod summary;
mod syslog;
pub mod value;
mod websocket;

pub use account_rules::{authorizing_export, check_accounts, public_export_warnings, AccountsError, Location};
pub use auth::is_password_hash;
pub use changes::{AccountRef, Changed, ConfigChanges, UserRef};
pub use delegation::{HttpTarget, DEFAULT_MAX_IN_FLIGHT};
pub(crate) use duration::parse_duration;
pub use error::{ConfigError, ErrorKind};
#[cfg(test)]
pub(crate) use load::offered_tls_names;
pub use load::{
    load_file, load_file_with_env, load_str, load_str_with_env, open_loopback_listener, Loaded,
    OPEN_LOOPBACK_LEAFNODES, OPEN_LOOPBACK_ROUTES, UNAUTHENTICATED_ROUTES,
};
pub use operator::{decode_operators, trusted_keys, DEFAULT_RESOLVER_LIMIT};
pub use options::*;
pub use rate::DEFAULT_CLOSE_AFTER;
pub use reference::reference_markdown;
pub use restart::{restart_only_change, RestartOnly, TAKES_EFFECT_AT_RESTART};
pub use summary::summary;
pub use syslog::{SyslogTarget, LOCAL_SYSLOG_SOCKET};
pub use websocket::parse_origin;
