//! Connections: the one driver every peer connection runs on (it moves
//! bytes and timers for a sans-IO [`Protocol`]), the writer that drains a
//! connection's outbound queue, the keep-alive every protocol shares, and
//! the first protocol, the client session (states, auth deadline, what
//! each op does). Routes (`cluster`) and leaf nodes (`leaf`) are further
//! protocols on the same driver; leaf nodes log in with the client's
//! [`Login`], checked by the gate. Transports are streams the driver is
//! given: TCP, TLS, and WebSocket framing over either ([`WsStream`]),
//! which any protocol can run on. Every listener accepts through
//! [`accept_until_shutdown`], which closes what the listener's
//! [`accept_rate`] refuses before anything is spent on it.

mod accept;
pub mod accept_rate;
mod driver;
mod keepalive;
mod lent;
pub mod proxied;
mod session;
mod starttls;
mod task;
mod websocket;
mod writer;

pub use accept::{accept_until_shutdown, log_refused, AcceptLimit};
pub(crate) use driver::{drive, Authority, Event, Protocol, Received, Signals};
pub(crate) use keepalive::{KeepAlive, FIRST_PEER_PING};
pub(crate) use session::{connection_facts, Login};
pub(crate) use starttls::{secure, NotSecured, Secured};
pub(crate) use task::note_tls_session;
pub use task::{refuse_connection, run_connection, Greeting, Start};
pub use websocket::WsStream;
pub use writer::write_loop;
