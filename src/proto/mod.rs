//! The NATS client protocol, sans IO: bytes in, ops out; frames and error
//! lines for the way back. Nothing here touches sockets or the clock.

mod connect;
mod encode;
mod error;
mod info;
mod parser;

pub use connect::ConnectOptions;
pub use encode::{msg_len_bound, rmsg_len_bound, write_msg, write_rmsg, GLOBAL_ACCOUNT, NO_RESPONDERS_HEADER};
pub use error::ProtoError;
pub use info::ServerInfo;
pub use parser::{Op, ParseLimits, Parser, Publish, Step};
