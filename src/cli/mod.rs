//! The broker's side of the command line: nats-server's flags and
//! signals, logging (to standard error, a file or syslog), and the pid
//! and ports files.

pub mod files;
pub mod logging;
pub mod manual;
pub mod serve;
pub mod signal;
pub mod syslog;
