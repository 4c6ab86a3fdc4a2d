//! The WebSocket listener (`websocket {}`): browsers and clients behind
//! HTTPS-only networks speak the NATS client protocol inside WebSocket
//! frames. After the TLS handshake (unless `no_tls`) and the upgrade, the
//! connection is an ordinary client connection: the same session, gate,
//! permissions, accounts, limits and slow-consumer handling, on the same
//! driver, over [`WsStream`], which frames the byte stream both ways.
//!
//! Every stage is bounded: pending handshakes ([`MAX_PENDING`], and
//! [`MAX_PENDING_PER_IP`] from one address but a trusted proxy), the
//! request head ([`MAX_HEAD`]) and the `handshake_timeout` before a client
//! counts as connected; frames and messages (max_payload plus the largest
//! control line) after; compressed messages are inflated only up to that.
//!
//! The client's address is the socket's, unless the socket's peer is one of
//! `trusted_proxies`: then it is the nearest `X-Forwarded-For` hop that is
//! not itself a trusted proxy. nats-server believes the header from anyone,
//! which lets any client choose the address that per-address limits and the
//! failure throttle count.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info};

use super::Node;
use crate::auth::Gate;
use crate::broker::{Pending, PendingSlot};
use crate::cidr::Cidr;
use crate::config::WebsocketOptions;
use crate::conn::accept_rate::AcceptLimiter;
use crate::conn::proxied::Proxies;
use crate::conn::{run_connection, AcceptLimit, Greeting, Start, WsStream};
use crate::proto::websocket::frame::{self, NORMAL};
use crate::proto::websocket::handshake::{self, Refused};
use crate::proto::ProtoError;
use crate::secret::Secret;
use crate::tls::{CurrentTls, PeerIdentity, TlsState};

/// Handshakes in progress at once; connections past it are closed at once.
pub const MAX_PENDING: usize = 256;
/// Handshakes in progress from one address (but a trusted proxy's).
pub const MAX_PENDING_PER_IP: usize = 16;
/// Largest request head read (a browser's is under 2 KiB).
pub const MAX_HEAD: usize = 8 * 1024;
/// Bound on the last writes to a connection refused after its upgrade.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// The listener's settings, ready to use.
#[derive(Debug)]
pub(crate) struct WsListener {
    opts: WebsocketOptions,
    /// `Some` when the listener has TLS; its certificates rotate.
    tls: Option<Arc<CurrentTls>>,
    proxies: Vec<Cidr>,
    /// With `proxy_protocol`: the same proxies, whose PROXY header names
    /// the client (read before TLS).
    proxy_protocol: Option<Proxies>,
    /// The gate its clients log in through (the client listener's, unless
    /// the block has its own `authorization` or `no_auth_user`).
    gate: Arc<Gate>,
    pending: Arc<Pending>,
}

impl WsListener {
    /// The listener for `opts`, with its TLS loaded.
    pub(crate) fn new(opts: WebsocketOptions, tls: Option<TlsState>, gate: Arc<Gate>) -> WsListener {
        let proxies: Vec<Cidr> = opts.trusted_proxies.iter().filter_map(|p| Cidr::parse_or_address(p)).collect();
        let pending = Arc::new(Pending::new(MAX_PENDING, MAX_PENDING_PER_IP));
        let proxy_protocol = opts.proxy_protocol.then(|| Proxies::new(proxies.clone(), &opts.accept_rate, "websocket"));
        let tls = tls.map(|t| Arc::new(CurrentTls::new(Some(t))));
        WsListener { opts, tls, proxies, proxy_protocol, gate, pending }
    }

    /// Its TLS, when it has TLS (what certificate rotation swaps).
    pub(crate) fn tls(&self) -> Option<&Arc<CurrentTls>> {
        self.tls.as_ref()
    }

    /// The gate its clients log in through.
    pub(crate) fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }
}

/// Accepts WebSocket connections until shutdown.
pub(crate) async fn accept_loop(node: Arc<Node>, ws: Arc<WsListener>, listener: TcpListener) {
    let broker = node.broker.clone();
    // A trusted proxy speaks for many clients: only the listener-wide
    // budget applies to it (the client behind it is known only after the
    // HTTP head).
    let limit = AcceptLimiter::new(&ws.opts.accept_rate).map(|limiter| AcceptLimit {
        limiter: limiter.exempting(ws.proxies.clone()),
        refused: &broker.stats.refused_accept_rate_websocket,
    });
    crate::conn::accept_until_shutdown(&broker, listener, "websocket", limit, |stream, peer| {
        let proxy = ws.proxies.iter().any(|p| p.contains(peer.ip()));
        let Some(slot) = ws.pending.admit_evicting(peer.ip(), !proxy) else {
            debug!(%peer, "websocket connection dropped: too many handshakes in progress");
            return;
        };
        let (node, ws) = (node.clone(), ws.clone());
        tokio::spawn(async move { serve(node, ws, stream, peer, slot).await });
    })
    .await;
}

/// One connection: handshakes (bounded by `handshake_timeout`, holding a
/// pending slot), then the session.
/// A newer connection that finds every slot taken makes the longest-waiting
/// one give way (see `broker::pending`): the handshake ends there.
async fn serve(node: Arc<Node>, ws: Arc<WsListener>, mut stream: TcpStream, peer: SocketAddr, slot: PendingSlot) {
    let _ = stream.set_nodelay(true);
    // From a trusted proxy with `proxy_protocol`: the client is who the
    // header names, for everything after (X-Forwarded-For included: the
    // client is no trusted proxy, so its header is ignored).
    let peer = match ws.proxy_protocol.as_ref().filter(|p| p.trusts(peer)) {
        Some(proxies) => {
            let refused = &node.broker.stats.refused_accept_rate_websocket;
            let Some(client) = proxies.client(&node.broker, &mut stream, peer, &slot, refused).await else { return };
            client
        }
        None => peer,
    };
    match ws.tls.as_ref().and_then(|t| t.get()) {
        // Boxed: a connection's task is as large as its largest state, and
        // the TLS handshake's and TLS stream's would otherwise be carried
        // by every plain connection too (about 7 KiB each, measured).
        Some(tls) => Box::pin(serve_tls(node, ws, tls, stream, peer, slot)).await,
        None => upgrade(node, ws, stream, peer, None, slot).await,
    }
}

/// The TLS handshake (bounded, giving way like the upgrade), then the upgrade.
async fn serve_tls(
    node: Arc<Node>,
    ws: Arc<WsListener>,
    tls: Arc<TlsState>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: PendingSlot,
) {
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let Some(accepted) = slot.unless_evicted(timeout(ws.opts.handshake_timeout, acceptor.accept(stream))).await else {
        return debug!(%peer, "websocket handshake gave way to a newer connection");
    };
    let Ok(Ok(stream)) = accepted else {
        node.broker.stats.tls_handshake_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        debug!(%peer, "websocket TLS handshake failed");
        return;
    };
    let (_, session) = stream.get_ref();
    let tls_facts = TlsMeta {
        version: session.protocol_version().and_then(|v| v.as_str()).map(str::to_owned),
        cipher: session.negotiated_cipher_suite().and_then(|s| s.suite().as_str()).map(str::to_owned),
        chain: session.peer_certificates().map(|c| c.iter().map(|c| c.to_vec()).collect()),
    };
    upgrade(node, ws, stream, peer, Some(tls_facts), slot).await;
}

/// What the TLS layer established, for the client's record.
struct TlsMeta {
    version: Option<String>,
    cipher: Option<String>,
    chain: Option<Vec<Vec<u8>>>,
}

/// What the upgrade agreed: all the session keeps of the request.
struct Agreed {
    deflate: bool,
    addr: SocketAddr,
    cookie_jwt: Option<Secret>,
}

/// The WebSocket handshake, then the session over [`WsStream`].
async fn upgrade<S>(
    node: Arc<Node>,
    ws: Arc<WsListener>,
    mut stream: S,
    peer: SocketAddr,
    tls: Option<TlsMeta>,
    slot: PendingSlot,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(Agreed { deflate, addr, cookie_jwt }) = agree(&ws, &mut stream, peer, slot).await else { return };
    let cid = node.broker.next_client_id();
    let client = match node.broker.register(cid, addr) {
        Ok(client) => client,
        Err(refusal) => {
            info!(%addr, ?refusal, "websocket connection refused");
            let mut out = Vec::new();
            frame::binary(&mut out, ProtoError::MaxConnections.to_line().as_bytes(), false, None);
            frame::close(&mut out, NORMAL, "", None);
            let _ = timeout(CLOSE_FLUSH, stream.write_all(&out)).await;
            return;
        }
    };
    {
        let mut meta = client.meta.lock();
        meta.websocket = true;
        if let Some(tls) = tls {
            meta.tls = Some(Box::new(crate::broker::TlsMeta {
                version: tls.version,
                cipher_suite: tls.cipher,
                peer: tls.chain.as_ref().and_then(|c| c.first()).and_then(|c| PeerIdentity::from_der(c)),
                chain: tls.chain.filter(|c| !c.is_empty()).map(Arc::from),
            }));
        }
    }
    let limit = node.broker.opts.max_payload + node.broker.opts.max_control_line + 1024;
    // Boxed: the connection's task would otherwise carry the stream's
    // state twice (in `run_connection`'s and the driver's arguments).
    let stream = Box::new(WsStream::new(stream, limit, deflate));
    let nonce = ws.gate.wants_nonce().then(crate::nkeys::new_nonce);
    let info = node.websocket_greeting(&client, nonce.clone(), ws.gate.auth_required());
    let start = Start { greeting: Greeting::Send(info), nonce, cookie_jwt };
    run_connection(node.broker.clone(), ws.gate.clone(), stream, client.clone(), start).await;
    node.broker.unregister(&client);
}

/// The HTTP upgrade, holding the pending slot (given back once answered).
/// A function of its own so that the request head and what was parsed of
/// it are gone before the session starts, not kept for its lifetime.
async fn agree<S>(ws: &WsListener, stream: &mut S, peer: SocketAddr, slot: PendingSlot) -> Option<Agreed>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(head) = slot.unless_evicted(timeout(ws.opts.handshake_timeout, read_head(stream))).await else {
        debug!(%peer, "websocket handshake gave way to a newer connection");
        return None;
    };
    let head = match head {
        Ok(Ok(head)) => head,
        Ok(Err(refused)) => return refuse(stream, peer, refused).await,
        Err(_) => {
            debug!(%peer, "websocket handshake timed out");
            return None;
        }
    };
    let request = match handshake::parse(&head) {
        Ok(request) => request,
        Err(refused) => return refuse(stream, peer, refused).await,
    };
    if !origin_allowed(&ws.opts, ws.tls.is_some(), &request.host, request.origin.as_deref()) {
        let refused = Refused { status: 403, reason: "origin not allowed" };
        return refuse(stream, peer, refused).await;
    }
    let deflate = ws.opts.compression && request.offers_deflate;
    let written =
        timeout(ws.opts.handshake_timeout, stream.write_all(&handshake::accepted(&request.key, deflate))).await;
    if !matches!(written, Ok(Ok(()))) {
        return None;
    }
    drop(slot);
    let addr = client_address(&ws.proxies, peer, request.forwarded_for.as_deref());
    let cookie_jwt = match (&ws.opts.jwt_cookie, &request.cookie) {
        (Some(name), Some(header)) => handshake::cookie(header, name).map(|v| Secret::new(v.to_owned())),
        _ => None,
    };
    Some(Agreed { deflate, addr, cookie_jwt })
}

/// Reads the request head, bounded by [`MAX_HEAD`]; nothing may follow it
/// before the handshake completes (nats-server answers 400 then too).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, Refused> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| Refused { status: 400, reason: "read error" })?;
        if n == 0 {
            return Err(Refused { status: 400, reason: "connection closed during the handshake" });
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = handshake::head_end(&head) {
            if end != head.len() {
                return Err(Refused { status: 400, reason: "client sent data before the handshake completed" });
            }
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(Refused { status: 400, reason: "request head too large" });
        }
    }
}

/// Answers a refused upgrade with its HTTP status and closes; the
/// connection goes no further.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, peer: SocketAddr, refused: Refused) -> Option<Agreed> {
    debug!(%peer, status = refused.status, reason = refused.reason, "websocket handshake refused");
    let _ = timeout(CLOSE_FLUSH, async {
        let _ = stream.write_all(&refused.response()).await;
        let _ = stream.shutdown().await;
    })
    .await;
    None
}

/// nats-server's origin rules (`checkOrigin`), but for a missing `Origin`
/// when `allowed_origins` is set: browsers always send one, so its absence
/// with a list configured is refused (nats-server accepts it).
pub(crate) fn origin_allowed(opts: &WebsocketOptions, tls: bool, host: &str, origin: Option<&str>) -> bool {
    if !opts.same_origin && opts.allowed_origins.is_empty() {
        return true;
    }
    let Some(origin) = origin else { return !opts.same_origin && opts.allowed_origins.is_empty() };
    let Ok(origin) = crate::config::parse_origin(origin) else { return false };
    if opts.same_origin {
        let scheme = if tls { "https" } else { "http" };
        let Ok(own) = crate::config::parse_origin(&format!("{scheme}://{host}")) else { return false };
        if origin != own {
            return false;
        }
    }
    opts.allowed_origins.is_empty() || opts.allowed_origins.contains(&origin)
}

/// The client's address: `peer`, unless `peer` is a trusted proxy; then the
/// nearest `X-Forwarded-For` hop (from the right) that is not one, or the
/// leftmost if all are. Values that are not addresses end the walk.
pub(crate) fn client_address(proxies: &[Cidr], peer: SocketAddr, forwarded: Option<&str>) -> SocketAddr {
    let trusted = |ip: IpAddr| proxies.iter().any(|p| p.contains(ip));
    let (Some(forwarded), true) = (forwarded, trusted(peer.ip())) else { return peer };
    let mut client = peer.ip();
    for hop in forwarded.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    SocketAddr::new(client, peer.port())
}

#[cfg(test)]
mod tests;
