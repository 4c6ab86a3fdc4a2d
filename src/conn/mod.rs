//! One client connection: the shared handle other connections deliver to
//! (`Client`), the protocol session that handles its ops, and the tasks that
//! read, write and keep it alive.

mod client;
mod close;
mod fanout;
mod outbound;
mod session;
mod task;

pub use client::{Client, ClientKind, ClientMeta, ClientStats};
pub use close::CloseReason;
pub use fanout::{Fanout, Message, Origin};
pub use outbound::{Append, Outbound};
pub use task::{refuse_connection, run_connection, write_loop, Greeting};
