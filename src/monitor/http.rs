//! The HTTP side: the listener, one hyper HTTP/1.1 connection per client
//! (optionally inside TLS), routing, the auth gate and the response form.
//!
//! Bounded like the rest of warden: at most [`MAX_CONNECTIONS`] monitoring
//! connections at once (when full, a new one takes the slot of the one that
//! has waited longest for a request head, see `slots.rs`), request heads
//! capped at [`MAX_HEAD`] bytes and [`HEAD_TIMEOUT`], each connection closed
//! gracefully after [`MAX_CONNECTION_AGE`], request bodies never read.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::query::{ApiError, Query};
use super::slots::{Slot, Slots};
use super::{metrics, Endpoint, Monitor, STOP_GRACE};

/// Most monitoring connections served at once.
pub const MAX_CONNECTIONS: usize = 128;
/// Deadline for a request head once a connection is idle or starts one.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (and read buffer) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// A keep-alive connection is closed (between requests) after this long.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// Deadline for the TLS handshake of an HTTPS connection when the client
/// `tls {}` block sets none.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts until `stopped` turns true, then lets open connections finish
/// their request (bounded by `STOP_GRACE`).
pub(super) async fn serve(listener: TcpListener, monitor: Arc<Monitor>, mut stopped: watch::Receiver<bool>) {
    let slots = Slots::new(MAX_CONNECTIONS);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(error = %err, "monitoring accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = slots.take(tokio::time::Instant::now()) else {
            debug!(%peer, "every monitoring connection is answering a request; closing");
            continue;
        };
        let monitor = monitor.clone();
        let stopped = stopped.clone();
        connections.spawn(async move {
            let slot = Arc::new(slot);
            let evicted = slot.evicted.clone();
            tokio::select! {
                _ = serve_connection(stream, peer, monitor, stopped, slot) => {}
                _ = evicted.notified() => debug!(%peer, "monitoring connection closed to make room"),
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(STOP_GRACE, async { while connections.join_next().await.is_some() {} }).await;
    connections.shutdown().await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    monitor: Arc<Monitor>,
    stopped: watch::Receiver<bool>,
    slot: Arc<Slot>,
) {
    let _ = stream.set_nodelay(true);
    if !monitor.http.get().is_some_and(|h| h.https) {
        serve_http(TokioIo::new(stream), peer, monitor, stopped, slot).await;
        return;
    }
    // The current client TLS settings, so a reloaded certificate applies here too.
    let Some(tls) = monitor.tls.get() else { return };
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let deadline = if tls.timeout.is_zero() { TLS_HANDSHAKE_TIMEOUT } else { tls.timeout };
    match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_http(TokioIo::new(stream), peer, monitor, stopped, slot).await,
        Ok(Err(err)) => debug!(%peer, error = %err, "monitoring TLS handshake failed"),
        Err(_) => debug!(%peer, "monitoring TLS handshake timed out"),
    }
}

async fn serve_http<I>(
    io: I,
    peer: SocketAddr,
    monitor: Arc<Monitor>,
    mut stopped: watch::Receiver<bool>,
    slot: Arc<Slot>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let monitor = monitor.clone();
        let slot = slot.clone();
        async move {
            slot.busy();
            let response = handle(&monitor, req, peer).await;
            slot.idle(tokio::time::Instant::now());
            Ok::<_, Infallible>(response)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped.wait_for(|s| *s) => {}
        _ = tokio::time::sleep(MAX_CONNECTION_AGE) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(STOP_GRACE, conn).await;
}

/// The body and content type of a successful answer.
pub(super) enum Body {
    /// JSON, fields in declaration order: indented over HTTP (as
    /// nats-server writes it), compact inside a `$SYS` answer.
    Json(serde_json::Value),
    /// Prometheus text exposition.
    Metrics(String),
}

/// Serializes a response struct; serializing our own types cannot fail,
/// but if it did the client gets a 500, not a panic.
pub(super) fn json<T: Serialize>(value: &T) -> Result<Body, ApiError> {
    serde_json::to_value(value).map(Body::Json).map_err(|_| ApiError::internal())
}

async fn handle(monitor: &Monitor, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = error(ApiError { status: StatusCode::METHOD_NOT_ALLOWED, message: "method not allowed" });
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let Some(path) = strip_base_path(req.uri().path(), monitor.broker.opts.http_base_path.as_deref()) else {
        return error(ApiError { status: StatusCode::NOT_FOUND, message: "not found" });
    };
    monitor.count_request(path);
    if path == "/healthz" {
        return respond(healthz(monitor));
    }
    if let Some(auth) = monitor.http.get().and_then(|h| h.auth.as_ref()) {
        if !auth.check(req.headers().get(header::AUTHORIZATION), peer.ip()).await {
            monitor.auth_failures.fetch_add(1, Ordering::Relaxed);
            let mut response = error(ApiError { status: StatusCode::UNAUTHORIZED, message: "unauthorized" });
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(auth.challenge()));
            return response;
        }
    }
    let query = Query::parse(req.uri().query());
    let result = match path {
        "/" => index(),
        "/metrics" => Ok(Body::Metrics(metrics::render(monitor))),
        _ => match Endpoint::from_path(path) {
            Some(endpoint) => endpoint.answer(monitor, &query),
            None => Err(ApiError { status: StatusCode::NOT_FOUND, message: "not found" }),
        },
    };
    respond(result)
}

/// The endpoint path of a request under `http_base_path` (`base`): the
/// base alone is the index `/`, `base/varz` is `/varz`; any other path is
/// outside the monitoring tree (`None`: 404), as with nats-server's mux.
fn strip_base_path<'a>(path: &'a str, base: Option<&str>) -> Option<&'a str> {
    let Some(base) = base else { return Some(path) };
    let rest = path.strip_prefix(base)?;
    // As nats-server 2.15.1: `/nats` is the index, `/nats/` is not found.
    match rest {
        "" => Some("/"),
        "/" => None,
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

/// `{"status":"ok"}` while clients are accepted, else 503.
pub(super) fn healthz(monitor: &Monitor) -> Result<Body, ApiError> {
    if monitor.broker.is_shutting_down() {
        return Err(ApiError { status: StatusCode::SERVICE_UNAVAILABLE, message: "server is shutting down" });
    }
    if monitor.broker.in_lame_duck() {
        return Err(ApiError { status: StatusCode::SERVICE_UNAVAILABLE, message: "server is in lame duck mode" });
    }
    json(&serde_json::json!({ "status": "ok" }))
}

/// What is served here.
fn index() -> Result<Body, ApiError> {
    json(&serde_json::json!({
        "endpoints": ["/varz", "/connz", "/subsz", "/routez", "/leafz", "/gatewayz", "/accountz", "/healthz", "/metrics"],
    }))
}

fn respond(result: Result<Body, ApiError>) -> Response<Full<Bytes>> {
    match result {
        Ok(Body::Json(value)) => match serde_json::to_vec_pretty(&value) {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                build(StatusCode::OK, "application/json", bytes)
            }
            Err(_) => error(ApiError::internal()),
        },
        Ok(Body::Metrics(text)) => build(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", text.into_bytes()),
        Err(err) => error(err),
    }
}

/// An error answer: `{"status":"error","error":"<fixed text>"}` (the form
/// of nats-server's `/healthz` errors).
fn error(err: ApiError) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "status": "error", "error": err.message });
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    build(err.status, "application/json", bytes)
}

fn build(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::strip_base_path;

    #[test]
    fn the_base_path_is_stripped_and_nothing_outside_it_is_served() {
        assert_eq!(strip_base_path("/varz", None), Some("/varz"));
        assert_eq!(strip_base_path("/nats/varz", Some("/nats")), Some("/varz"));
        assert_eq!(strip_base_path("/nats", Some("/nats")), Some("/"));
        assert_eq!(strip_base_path("/nats/", Some("/nats")), None);
        assert_eq!(strip_base_path("/varz", Some("/nats")), None);
        assert_eq!(strip_base_path("/natsvarz", Some("/nats")), None);
        assert_eq!(strip_base_path("/nats/healthz", Some("/nats")), Some("/healthz"));
    }
}
