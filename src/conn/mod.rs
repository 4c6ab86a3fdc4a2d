//! One client connection: the shared handle other connections deliver to
//! (`Client`), the protocol session that handles its ops, and the tasks that
//! read, write and keep it alive.

mod client;
mod close;
mod outbound;
mod session;
mod task;

pub use client::{Client, ClientMeta, ClientStats};
pub use close::CloseReason;
pub use outbound::{Append, Outbound};
pub use task::{refuse_connection, run_connection, Greeting};
