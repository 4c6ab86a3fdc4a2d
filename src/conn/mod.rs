//! One client connection: a sans-IO protocol session (states, keep-alive,
//! auth deadline, what each op does) and the thin async tasks that move its
//! bytes and timers: a reader that feeds the session, and a writer (also
//! used by routes) that drains the connection's outbound queue.

mod accept;
mod keepalive;
mod session;
mod task;
mod writer;

pub use accept::accept_until_shutdown;
pub use task::{refuse_connection, run_connection, Greeting, Start};
pub use writer::write_loop;
