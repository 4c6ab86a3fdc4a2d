//! Monitoring: nats-server's HTTP endpoints (`/varz`, `/connz`, `/subsz`,
//! `/routez`, `/healthz`) with its JSON field names, so nats-top and other
//! NATS tooling read them unchanged, plus Prometheus `/metrics` and
//! warden's security counters.
//!
//! - Served by hyper (HTTP/1.1), on its own listener, 127.0.0.1 unless the
//!   config says otherwise, optionally over TLS with the client `tls {}`
//!   certificate.
//! - Reading is cheap for the data path: every figure is an atomic the
//!   connections already keep, or is summed over the live clients when a
//!   request comes; the only locks taken are the client registry's and the
//!   subscription index's read lock (for subscription lists), each briefly.
//! - Unlike nats-server, the endpoints can require a bearer token or basic
//!   auth (`http_authorization`), never reflect request input (no JSONP
//!   `callback`; errors are fixed texts) and never show a secret
//!   (`/connz?auth=1` shows user names only). `/healthz` stays open so load
//!   balancers can probe it; it reveals only whether clients are accepted.

mod auth;
mod connz;
mod format;
mod http;
mod metrics;
mod process;
mod query;
mod routez;
mod subsz;
mod varz;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::auth::AuthSetupError;
use crate::config::Options;
use crate::server::{Shared, StartError};
use crate::tls::TlsError;

/// How long `stop` waits for in-flight requests.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The paths served, in the order `/varz`'s `http_req_stats` lists them.
const PATHS: [&str; 8] = ["/", "/varz", "/connz", "/subsz", "/routez", "/healthz", "/metrics", "/subscriptionsz"];

/// Everything a request handler reads.
#[derive(Debug)]
struct Monitor {
    shared: Arc<Shared>,
    /// The bound monitoring address.
    addr: SocketAddr,
    /// Whether this listener serves HTTPS.
    tls: bool,
    /// Required credentials, if configured.
    auth: Option<auth::MonitorAuth>,
    /// CPU use between requests.
    cpu: process::CpuMeter,
    /// Requests per path in [`PATHS`] (a fixed set, so bounded).
    requests: [AtomicU64; PATHS.len()],
    /// Requests refused for missing or wrong credentials.
    auth_failures: AtomicU64,
}

impl Monitor {
    fn count_request(&self, path: &str) {
        if let Some(i) = PATHS.iter().position(|p| *p == path) {
            self.requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A running monitoring listener.
#[derive(Debug)]
pub struct MonitorHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MonitorHandle {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and closes.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        if tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), self.task).await.is_err() {
            warn!("monitoring listener did not stop in time");
        }
    }
}

/// Checks what `start` would check without binding (for `warden check`).
pub fn check(opts: &Options) -> Result<(), StartError> {
    prepare(opts).map(|_| ())
}

fn prepare(opts: &Options) -> Result<Option<auth::MonitorAuth>, StartError> {
    if opts.http.as_ref().is_some_and(|h| h.tls) && opts.tls.is_none() {
        return Err(StartError::Tls(TlsError::Config("https monitoring needs the tls {} block".into())));
    }
    opts.http_authorization
        .as_ref()
        .map(auth::MonitorAuth::new)
        .transpose()
        .map_err(|source| StartError::Auth(AuthSetupError::Password { owner: "http_authorization".into(), source }))
}

/// Binds the monitoring listener if the options ask for one and starts
/// serving. Nothing is bound if a check fails.
pub async fn start(shared: Arc<Shared>) -> Result<Option<MonitorHandle>, StartError> {
    let Some(http) = shared.opts.http.clone() else { return Ok(None) };
    let auth = prepare(&shared.opts)?;
    let bind = |source| StartError::Bind { addr: format!("{}:{}", http.host, http.port), source };
    let listener = TcpListener::bind((http.host.as_str(), http.port)).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let scheme = if http.tls { "https" } else { "http" };
    if auth.is_none() {
        let exposed = !listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
        if exposed {
            warn!(%addr, "monitoring is reachable from the network without authentication; set http_authorization");
        }
    }
    info!(url = %format!("{scheme}://{addr}"), auth = auth.is_some(), "monitoring listening");
    let monitor = Arc::new(Monitor {
        shared,
        addr,
        tls: http.tls,
        auth,
        cpu: process::CpuMeter::new(),
        requests: Default::default(),
        auth_failures: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(http::serve(listener, monitor, stopped));
    Ok(Some(MonitorHandle { addr, stop, task }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> Monitor {
        let opts = Options::default();
        let authenticator = crate::auth::from_options(&opts).unwrap();
        let addr: SocketAddr = "127.0.0.1:4222".parse().unwrap();
        let shared = Arc::new(Shared::new(opts, addr, None, authenticator));
        Monitor {
            shared,
            addr: "127.0.0.1:8222".parse().unwrap(),
            tls: false,
            auth: None,
            cpu: process::CpuMeter::new(),
            requests: Default::default(),
            auth_failures: AtomicU64::new(0),
        }
    }

    #[test]
    fn healthz_is_503_once_shutdown_begins() {
        let monitor = monitor();
        assert!(http::healthz(&monitor).is_ok());
        monitor.shared.begin_shutdown();
        let err = http::healthz(&monitor).err().unwrap();
        assert_eq!(err.status, hyper::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn https_without_tls_and_bad_hashes_are_refused_before_binding() {
        let mut opts = Options {
            http: Some(crate::config::HttpOptions { host: "127.0.0.1".into(), port: 0, tls: true }),
            ..Options::default()
        };
        assert!(matches!(check(&opts), Err(StartError::Tls(_))));
        opts.http = Some(crate::config::HttpOptions { host: "127.0.0.1".into(), port: 0, tls: false });
        opts.http_authorization =
            Some(crate::config::HttpAuthorization::Token(crate::secret::Secret::new("$argon2id$broken")));
        assert!(matches!(check(&opts), Err(StartError::Auth(_))));
    }

    #[test]
    fn request_counts_are_kept_for_known_paths_only() {
        let monitor = monitor();
        monitor.count_request("/varz");
        monitor.count_request("/varz");
        monitor.count_request("/attacker-chosen");
        let counted: u64 = monitor.requests.iter().map(|n| n.load(Ordering::Relaxed)).sum();
        assert_eq!((monitor.requests[1].load(Ordering::Relaxed), counted), (2, 2));
    }
}
