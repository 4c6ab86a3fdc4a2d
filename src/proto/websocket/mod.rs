//! The WebSocket transport nats-server offers browsers (`websocket {}`),
//! sans IO: the opening handshake ([`handshake`]), frames ([`frame`]) and
//! `permessage-deflate` ([`deflate`]). The NATS protocol inside is the
//! client protocol unchanged; `conn::WsStream` carries it and
//! `server::websocket` does the upgrade.

pub mod deflate;
pub mod frame;
pub mod handshake;
