//! Configuration: the typed options and (in the reader) our strict parser
//! for the nats-server config dialect.

mod options;

pub use options::*;
