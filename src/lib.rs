//! warden: a security-focused message broker speaking the NATS client protocol.
//!
//! # Layers
//! Arrows point down only; no module imports one above it, and none of the
//! same layer imports another except `cluster` and `leaf`, which run their
//! sessions on `conn`'s driver (a leaf logs in with `conn`'s `Login`).
//! ```text
//! L0 leaves    subject  proto (client, route and WebSocket protocols, sans IO)  config  perms  secret  tls  nkeys  jwt  cidr  logfile  spiffe
//! L1 decisions audit    (the audit trail: records, the bounded queue, its writer thread)
//!              auth     (who may connect: passwords, nkeys, JWTs of operator mode, the throttle,
//!                        the verification pool, the gate)
//! L2 state     broker   (subscription index, client registry, delivery, the server's own
//!                        internal client, counters, lifecycle)
//! L3 actors    conn     (the one connection driver every peer protocol runs on, the writer,
//!                        the shared keep-alive, the WebSocket transport, the accept loop
//!                        with its accept rate, and the client session, its first protocol)
//!              cluster  (routes: a sans-IO route session on conn's driver; plugs into
//!                        interest changes through an observer)
//!              leaf     (leaf nodes, hub side: a sans-IO leaf session on conn's driver,
//!                        logged in by the gate; observes interest like the cluster)
//!              monitor  (HTTP endpoints; reads the broker and a narrow view of the cluster)
//!              system   ($SYS services and events, in the system account)
//!              delegate (external authorizers: auth callout, the HTTP authorizer)
//! L4 wiring    server   (listeners, accept, TLS handshakes, INFO, shutdown, lame duck)
//!              main.rs  (command line only)
//! ```
//! - [`subject`]: subject and pattern rules, the subject trie, the bounded
//!   per-connection subject cache, transforms and subject mappings.
//! - [`proto`]: the client protocol (parser, INFO/CONNECT, MSG encoding, the
//!   exact `-ERR` texts), the route protocol ([`proto::route`]) and
//!   message tracing's headers and event JSON ([`proto::msg_trace`]).
//! - [`config`]: typed options and the strict config reader.
//! - [`perms`]: compiled permissions and the one publish guard;
//!   [`tls`]: certificates and TLS state; [`spiffe`]: SPIFFE IDs, for
//!   `verify_and_map`'s strict mode;
//!   [`nkeys`]: Ed25519 keys in NATS's text form; [`jwt`]: NATS JWTs
//!   (decode and verify; v1 tokens converted to v2 as the Go library does).
//! - [`auth`]: authenticators, and the [`auth::Gate`] every login passes;
//!   [`auth::operator`]: accounts and users from JWTs.
//! - [`broker`]: the shared state every connection delivers through.
//! - [`conn`]: the connection driver (bytes and timers only), the
//!   WebSocket transport ([`conn::WsStream`]) and the client session; a new
//!   kind of peer is a new sans-IO protocol on that driver.
//! - [`cluster`]: routes to other servers (nats-server's route protocol), a
//!   sans-IO `RouteSession` on the same driver; `cluster { permissions }`
//!   decides which interest and messages cross (compiled [`perms`]).
//! - [`leaf`]: the leaf node hub: nats-server and warden leafs connect,
//!   log in like clients and trade interest and messages in one account,
//!   every `LMSG` and `LS+` checked against the leaf user's permissions.
//! - [`monitor`]: nats-server's `/varz`, `/connz`, `/subsz`, ... and
//!   Prometheus `/metrics`, read from the counters the data path keeps.
//! - [`server`]: starts and stops everything.
//!
//! # Data path
//! The connection driver reads a batch of bytes and hands it to the
//! connection's protocol (the client or route session), which parses and
//! handles the ops synchronously. A PUB's subject is first rewritten by its
//! account's subject mappings, if it has any (`subject::Mappings`, applied by
//! the connection's `broker::Mapper`), then checked by `perms::PublishGuard`
//! and matched (per-connection cache, else the trie under a read lock) and appended to each subscriber's outbound queue
//! (an HPUB whose headers ask for a trace carries a `broker::Trace` through
//! the fan-out, which records each step and is published as an event after)
//! (reusable 64 KiB chunks) under that queue's short mutex; after the batch
//! every touched subscriber's writer is woken once. Writers take up to 64
//! chunks and write them with one vectored call, then hand the chunks back
//! for reuse. No lock is held across IO.
//!
//! # Locks
//! Router trie (`RwLock`) and a client's outbound buffer (`Mutex`) are never
//! held together; the client registry (`Mutex`) is taken only on connect,
//! close and monitoring reads. Monitoring takes the registry, then (after
//! releasing it) the trie's read lock, then a client's `meta`, never two at
//! once. The cluster takes its interest map before its route map; its
//! `soliciting` and `unreachable` maps are leaves, each taken alone. The
//! leaf hub's account map is taken before the account registry's map and
//! an account's state (read under it for the account's mapping sources;
//! neither is ever held while the hub is called) and it appends to a
//! leaf's outbound queue under it, whose mutex is a leaf of every order.
//! Sessions (client, route and leaf) hold no lock across a batch: they are owned
//! by their driver task.
#![forbid(unsafe_code)]
// Nothing from the network or a config may reach a panic: outside tests,
// `unwrap`, `expect` and `panic!` must justify themselves with an `allow`.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod auth;
pub mod bench;
pub mod broker;
pub mod cidr;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod delegate;
pub mod gateway;
pub mod jwt;
pub mod leaf;
pub mod logfile;
pub mod monitor;
pub mod nkeys;
pub mod perms;
pub mod proto;
pub mod secret;
pub mod server;
pub mod spiffe;
pub mod subject;
pub mod system;
pub mod tls;
