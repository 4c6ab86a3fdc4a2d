//! The TLS settings a listener hands to new connections, swapped whole on
//! reload so existing connections keep theirs.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use super::{load_server_config, CertInfo, TlsError};
use crate::config::TlsOptions;

/// What a new client connection's TLS handshake uses.
#[derive(Debug)]
pub struct TlsState {
    /// rustls configuration.
    pub config: Arc<rustls::ServerConfig>,
    /// Handshake deadline.
    pub timeout: Duration,
    /// TLS before INFO.
    pub handshake_first: bool,
    /// With `handshake_first`: how long to wait for the client's TLS before
    /// falling back to INFO first.
    pub fallback: Option<Duration>,
    /// Client certificates are required.
    pub verify: bool,
    /// Plain-text clients may use the port too (`allow_non_tls`).
    pub allow_non_tls: bool,
    /// `pinned_certs`, sorted: the keys (SPKI SHA-256) a client
    /// certificate must carry. A reload that changes them closes the
    /// connections whose key is no longer among them.
    pub pinned: Option<Vec<[u8; 32]>>,
    /// What it presents (logged when it rotates, shown in `/varz`).
    pub certificates: Vec<CertInfo>,
}

impl TlsState {
    /// Loads and checks the certificate material of `opts`; also returns
    /// the warnings to log (such as a certificate close to expiry).
    pub fn load(opts: &TlsOptions) -> Result<(TlsState, Vec<String>), TlsError> {
        // Options built in code bypass the config reader's check: fail closed here too.
        if opts.plain_text_skips_verify() {
            return Err(TlsError::Config(TlsOptions::PLAIN_TEXT_SKIPS_VERIFY.into()));
        }
        let setup = load_server_config(opts)?;
        let state = TlsState {
            config: setup.config,
            timeout: opts.timeout,
            handshake_first: opts.handshake_first,
            fallback: opts.handshake_first.then_some(opts.handshake_first_fallback).flatten(),
            verify: opts.verify || opts.verify_and_map,
            allow_non_tls: opts.allow_non_tls && !opts.handshake_first,
            pinned: opts.pinned_certs.clone().map(|mut pins| {
                pins.sort_unstable();
                pins.dedup();
                pins
            }),
            certificates: setup.certificates,
        };
        Ok((state, setup.warnings))
    }
}

/// The current client TLS settings of a server (none without TLS); read by
/// the client listener and by HTTPS monitoring, replaced on reload.
#[derive(Debug, Default)]
pub struct CurrentTls(RwLock<Option<Arc<TlsState>>>);

impl CurrentTls {
    /// Holding `state`.
    pub fn new(state: Option<TlsState>) -> Self {
        CurrentTls(RwLock::new(state.map(Arc::new)))
    }

    /// The settings for a new connection, if TLS is on.
    pub fn get(&self) -> Option<Arc<TlsState>> {
        self.0.read().clone()
    }

    /// Replaces the settings (reload).
    pub fn set(&self, state: Option<TlsState>) {
        *self.0.write() = state.map(Arc::new);
    }
}
