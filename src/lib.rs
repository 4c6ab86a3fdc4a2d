//! warden: a security-focused message broker speaking the NATS client protocol.
//!
//! # Architecture
//! - [`proto`]: sans-IO client protocol (parser, INFO/CONNECT, MSG encoding,
//!   the exact `-ERR` texts).
//! - [`subject`]: subject and pattern rules and the subject trie.
//! - [`router`]: the shared subscription index with a generation counter,
//!   and the per-connection match cache.
//! - [`conn`]: one connection: its shared `Client` handle (bounded outbound
//!   queue), its protocol session, and its reader and writer tasks.
//! - [`server`]: listener, accept loop, connection registry and limits,
//!   shutdown and lame duck.
//! - [`config`]: typed options and the strict config reader.
//! - [`auth`], [`perms`], [`tls`]: who may connect, what each connection may
//!   do (compiled permissions), and the TLS transport.
//! - [`cluster`]: routes to other servers (nats-server's route protocol).
//! - [`monitor`]: the HTTP monitoring endpoints (nats-server's `/varz`,
//!   `/connz`, `/subsz`, ... and Prometheus `/metrics`), read from the
//!   counters the data path keeps in atomics.
//!
//! # Data path
//! A reader task parses a batch of ops from its socket. A PUB is matched
//! (per-connection cache, else the trie under a read lock) and appended to
//! each subscriber's outbound queue (reusable 64 KiB chunks) under that
//! queue's short mutex; after the batch every touched subscriber's writer is
//! woken once. Writers take up to 64 chunks and write them with one vectored
//! call, then hand the chunks back for reuse. No lock is held across IO.
//!
//! # Locks
//! Router trie (`RwLock`) and a client's outbound buffer (`Mutex`) are never
//! held together; the client registry (`Mutex`) is taken only on connect,
//! close and monitoring reads. Monitoring takes the registry, then (after
//! releasing it) the trie's read lock, then a client's `meta`, never two at once.
#![forbid(unsafe_code)]

pub mod auth;
pub mod bench;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod monitor;
pub mod perms;
pub mod proto;
pub mod router;
pub mod secret;
pub mod server;
pub mod subject;
pub mod tls;
