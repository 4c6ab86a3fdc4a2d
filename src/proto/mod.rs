//! The NATS protocols, sans IO: bytes in, ops out; frames and error lines
//! for the way back. Nothing here touches sockets or the clock.
//!
//! - The client protocol (what clients send and receive): [`Parser`],
//!   [`ConnectOptions`], [`ServerInfo`], [`write_msg`] and the `-ERR` texts
//!   of [`ProtoError`].
//! - The route protocol between servers of a cluster: [`route`].
//! - The headers only a server may assert, stripped from what a leaf
//!   sends: [`headers`].
//! - Message tracing: which headers ask for a trace, and the event JSON:
//!   [`msg_trace`].
// Sans IO: `now` comes from the driver (clippy.toml).
#![deny(clippy::disallowed_methods)]

mod connect;
mod encode;
mod error;
pub mod headers;
mod info;
pub mod msg_trace;
mod parser;
pub mod proxy;
pub mod route;
pub mod trace;
pub mod websocket;

pub use connect::ConnectOptions;
pub use encode::{msg_body, msg_len_bound, write_msg, write_msg_line, NO_RESPONDERS_HEADER};
pub use error::ProtoError;
pub use info::{ServerInfo, NATS_VERSION, WARDEN_VERSION};
pub use parser::{Op, ParseLimits, Parser, Publish, Step};
