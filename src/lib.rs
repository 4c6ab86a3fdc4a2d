//! warden: a security-focused message broker speaking the NATS client protocol.
#![forbid(unsafe_code)]

pub mod config;
pub mod proto;
pub mod secret;
pub mod subject;
