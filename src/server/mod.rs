//! The server: wires the broker, authentication, TLS, the cluster and
//! monitoring together; owns the client listener and its accept loop, the
//! connection limits, shutdown and lame duck.

mod audit;
mod handshake;
mod lame_duck;
mod node;
mod operator;
mod pinned;
mod proxied;
mod websocket;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use crate::audit::ReloadCause;
use crate::auth::{self, AuthSetupError, FailureThrottle, Gate, Guard, Verifier};
use crate::broker::{Broker, BudgetKind, Client, InterestObserver, Refusal, ServerIdentity};
use crate::cluster::{Cluster, ClusterError, RouteUrl};
use crate::config::{Options, TlsOptions};
use crate::conn::accept_rate::AcceptLimiter;
use crate::conn::AcceptLimit;
use crate::gateway::{GatewayError, Gateways};
use crate::leaf::{Hub, LeafError};
use crate::monitor::{self, MonitorApi, MonitorError, MonitorHandle, Sources};
use crate::proto::ProtoError;
use crate::system::{ReloadRequests, SystemServices};
use crate::tls::{CurrentTls, Rotation, TlsError, TlsState};
use operator::OperatorMode;

use node::Node;

/// Why the server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The TLS configuration is unusable.
    Tls(TlsError),
    /// Passwords or permissions in the configuration are unusable.
    Auth(AuthSetupError),
    /// The cluster could not start.
    Cluster(ClusterError),
    /// The leaf node listener could not start.
    Leaf(LeafError),
    /// The gateways could not start.
    Gateway(GatewayError),
    /// Monitoring could not start.
    Monitor(MonitorError),
    /// The server's key pair could not be made.
    Identity(crate::nkeys::NkeyError),
    /// Operator mode cannot start (an operator JWT, the resolver's directory).
    Operator(crate::auth::operator::OperatorError),
    /// The external authorizer cannot be set up.
    Delegate(crate::delegate::DelegateSetupError),
    /// A reload cannot make this change.
    Reload(&'static str),
    /// A reload changes an option that only a restart applies (the config
    /// reference marks it "restart"); nothing of that reload was applied.
    RestartOnly {
        /// The option, by its config path: `port`, `cluster`,
        /// `leafnodes.port`, `tls.spiffe_trust_domain`.
        option: String,
    },
    /// The accounts' imports and exports do not fit together.
    Accounts(crate::config::AccountsError),
    /// The audit trail's file could not be opened.
    Audit {
        /// The file.
        path: String,
        /// What the OS said.
        source: io::Error,
    },
    /// The listener could not be bound.
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: io::Error,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Tls(err) => write!(f, "TLS: {err}"),
            StartError::Auth(err) => write!(f, "authorization: {err}"),
            StartError::Cluster(err) => write!(f, "cluster: {err}"),
            StartError::Leaf(err) => write!(f, "{err}"),
            StartError::Gateway(err) => write!(f, "{err}"),
            StartError::Monitor(err) => write!(f, "monitoring: {err}"),
            StartError::Identity(err) => write!(f, "server identity: {err}"),
            StartError::Operator(err) => write!(f, "operator mode: {err}"),
            StartError::Delegate(err) => err.fmt(f),
            StartError::Reload(why) => f.write_str(why),
            StartError::RestartOnly { option } => {
                write!(f, "`{option}` changed, {}", crate::config::TAKES_EFFECT_AT_RESTART)
            }
            StartError::Accounts(err) => write!(f, "accounts: {err}"),
            StartError::Audit { path, source } => write!(f, "audit: cannot open {path}: {source}"),
            StartError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Tls(err) => Some(err),
            StartError::Auth(err) => Some(err),
            StartError::Cluster(err) => Some(err),
            StartError::Leaf(err) => Some(err),
            StartError::Gateway(err) => Some(err),
            StartError::Monitor(err) => Some(err),
            StartError::Identity(err) => Some(err),
            StartError::Operator(err) => Some(err),
            StartError::Delegate(err) => Some(err),
            StartError::Reload(_) | StartError::RestartOnly { .. } => None,
            StartError::Accounts(err) => Some(err),
            StartError::Audit { source, .. } | StartError::Bind { source, .. } => Some(source),
        }
    }
}

/// Extra time past write_deadline that shutdown waits for connections to flush.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);
/// Longest delay before answering a repeated login failure from one address.
const AUTH_FAILURE_MAX_DELAY: Duration = Duration::from_secs(5);
/// Default authentication timeout.
const AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Pushed account JWTs waiting to be applied; more are refused (the
/// system service answers nothing for them).
const CLAIMS_QUEUE: usize = 16;

/// The options `warden check` describes: the config's own, or in operator
/// mode with the accounts its resolver holds.
pub fn effective_options(opts: &Options) -> Result<Options, StartError> {
    Ok(operator::resolve(opts)?.0.options)
}

/// Default authentication timeout with TLS.
const AUTH_TIMEOUT_TLS: Duration = Duration::from_secs(3);

/// Time a client has to authenticate: `authorization.timeout`, else 2 s
/// (3 s with TLS, counted after the handshake), as nats-server.
fn auth_timeout(opts: &Options) -> Duration {
    let configured = opts.authorization.as_ref().and_then(|a| a.timeout);
    configured.unwrap_or(if opts.tls.is_some() { AUTH_TIMEOUT_TLS } else { AUTH_TIMEOUT })
}

/// A running server. Dropping it does not stop it; call `shutdown` or
/// `lame_duck`.
#[derive(Debug)]
pub struct Server {
    node: Arc<Node>,
    local_addr: SocketAddr,
    /// The accept loop; owns the listener, so the listener closes when it ends.
    /// `None` once it was stopped.
    accept: Option<JoinHandle<()>>,
    /// Closes when every connection task has finished (each holds a sender).
    done: mpsc::Receiver<()>,
    /// The monitoring listener, when configured.
    monitor: Option<MonitorHandle>,
    /// The `$SYS` services, when there is a system account.
    system: Option<SystemServices>,
    /// `RELOAD` requests over NATS, until someone who can reload takes them.
    reload_requests: Option<ReloadRequests>,
    /// Sends clients a fresh INFO when the cluster's client URLs change.
    info_updates: Option<JoinHandle<()>>,
    /// Operator mode (accounts from JWTs), when configured.
    operator: Option<Arc<OperatorMode>>,
    /// Serves pushed account JWTs and rebuilds accounts as they expire.
    operator_task: Option<JoinHandle<()>>,
    /// The WebSocket listener, when configured.
    websocket: Option<Websocket>,
    /// The leaf node hub, when configured.
    leaf: Option<Arc<Hub>>,
    /// The gateways, when configured.
    gateways: Option<Arc<Gateways>>,
    /// The authenticator an embedder installed with
    /// [`Server::start_with_authenticator`]. A reload keeps it: the
    /// config's `authorization` never described who may log in here, and
    /// without one a reload would install "no auth".
    embedded: Option<Arc<dyn auth::Authenticator>>,
    /// The configuration in force (the start's, then each applied
    /// reload's): what the audit trail's reload records compare against.
    applied: parking_lot::Mutex<Box<Options>>,
}

/// The running WebSocket listener.
#[derive(Debug)]
struct Websocket {
    addr: SocketAddr,
    listener: Arc<websocket::WsListener>,
    /// Whether its gate is its own (`websocket { authorization }` or
    /// `no_auth_user`), rebuilt on reload.
    own_gate: bool,
    task: JoinHandle<()>,
}

impl Server {
    /// Loads TLS material (if configured), binds the client listener and
    /// starts accepting. Nothing is bound if any check fails.
    /// In operator mode the accounts and users come from the resolver's JWTs.
    pub async fn start(opts: Options) -> Result<Server, StartError> {
        let (effective, mode) = operator::resolve(&opts)?;
        Server::start_inner(effective.options, effective.authenticator, mode.map(Arc::new), false).await
    }

    /// Like [`Server::start`], but with an authenticator of the embedder's
    /// own instead of the one the options' `authorization` describes.
    pub async fn start_with_authenticator(
        opts: Options,
        authenticator: Arc<dyn auth::Authenticator>,
    ) -> Result<Server, StartError> {
        Server::start_inner(opts, authenticator, None, true).await
    }

    /// `embedded`: `authenticator` is the embedder's, kept by reloads.
    async fn start_inner(
        opts: Options,
        authenticator: Arc<dyn auth::Authenticator>,
        operator: Option<Arc<OperatorMode>>,
        embedded: bool,
    ) -> Result<Server, StartError> {
        let embedded = embedded.then(|| authenticator.clone());
        let (tls, mut warnings) = prepare_tls(&opts)?;
        warnings.extend(auth::timing_warnings(&opts));
        warnings.extend(crate::config::public_export_warnings(&opts));
        for warning in &warnings {
            warn!("{warning}");
        }
        crate::config::check_accounts(&opts).map_err(StartError::Accounts)?;
        monitor::check(&opts).map_err(StartError::Monitor)?;
        let bind = |e: io::Error| StartError::Bind { addr: format!("{}:{}", opts.host, opts.port), source: e };
        let listener = listen(&opts.host, opts.port).await.map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        let failure_delay =
            opts.authorization.as_ref().and_then(|a| a.failure_delay_max).unwrap_or(AUTH_FAILURE_MAX_DELAY);
        let timeout = auth_timeout(&opts);
        // A cluster block without a listener runs no routes (its warning
        // was given with the config's).
        let cluster_opts = opts.cluster.clone().filter(|c| !c.no_listener);
        let identity = ServerIdentity::new(opts.server_name.clone()).map_err(StartError::Identity)?;
        let broker = Arc::new(Broker::new(opts, local_addr, identity));
        broker.configure_accounts(&broker.opts).map_err(StartError::Accounts)?;
        // Before any listener: every login is on the trail.
        audit::start(&broker)?;
        // One pool for every listener's credential checks, so a flood on one
        // port cannot take more CPU than the pool has.
        let verifier = Arc::new(Verifier::new(auth::default_parallelism()));
        let guard = |delay| Guard::new(verifier.clone(), FailureThrottle::new(delay));
        let cluster_name = broker.opts.cluster.as_ref().and_then(|c| c.name.clone());
        let started = crate::delegate::from_options(&broker.opts, &broker, &verifier, timeout, cluster_name)
            .map_err(StartError::Delegate)?;
        let (delegation, xkey) = match started {
            Some(started) => (Some(started.delegation), started.server_xkey),
            None => (None, None),
        };
        // No slot further than half the auth timeout: a throttled client is
        // answered, slowly, instead of timing out.
        let client_guard = Guard::new(verifier.clone(), FailureThrottle::new(failure_delay).with_patience(timeout / 2));
        let gate = Arc::new(Gate::new(authenticator, client_guard, timeout).delegating(delegation));
        let cluster = match cluster_opts {
            Some(cluster_opts) => Some(
                Cluster::start(broker.clone(), guard(AUTH_FAILURE_MAX_DELAY), cluster_opts)
                    .await
                    .map_err(StartError::Cluster)?,
            ),
            None => None,
        };
        let leaf = match broker.opts.leafnodes.clone() {
            Some(leaf_opts) => {
                match Hub::start(broker.clone(), gate.clone(), leaf_opts).await.map_err(StartError::Leaf) {
                    Ok(hub) => Some(hub),
                    Err(err) => {
                        // The cluster's tasks end with the shutdown signal.
                        broker.begin_shutdown();
                        return Err(err);
                    }
                }
            }
            None => None,
        };
        let gateways = match broker.opts.gateway.clone() {
            Some(gw_opts) => {
                let started =
                    Gateways::start(broker.clone(), guard(AUTH_FAILURE_MAX_DELAY), cluster.clone(), gw_opts).await;
                match started {
                    Ok(gateways) => Some(gateways),
                    Err(err) => {
                        broker.begin_shutdown();
                        return Err(StartError::Gateway(err));
                    }
                }
            }
            None => None,
        };
        let mut observers: Vec<Weak<dyn InterestObserver>> = Vec::new();
        if let Some(gateways) = &gateways {
            observers.push(Arc::downgrade(gateways) as Weak<dyn InterestObserver>);
        }
        if let Some(cluster) = &cluster {
            observers.push(Arc::downgrade(cluster) as Weak<dyn InterestObserver>);
        }
        if let Some(hub) = &leaf {
            observers.push(Arc::downgrade(hub) as Weak<dyn InterestObserver>);
        }
        broker.observe_interest(observers);
        let node = Arc::new(Node { broker: broker.clone(), gate, tls: Arc::new(CurrentTls::new(tls)), cluster, xkey });
        let api = MonitorApi::new(Sources {
            broker: broker.clone(),
            gate: node.gate.clone(),
            tls: node.tls.clone(),
            cluster: node.cluster.clone().map(|c| c as Arc<dyn monitor::ClusterView>),
            leafs: leaf.clone().map(|h| h as Arc<dyn monitor::LeafView>),
            gateways: gateways.clone().map(|g| g as Arc<dyn monitor::GatewayView>),
        });
        let monitor = match monitor::start(&api, guard(AUTH_FAILURE_MAX_DELAY)).await {
            Ok(monitor) => monitor,
            Err(err) => {
                // The cluster's tasks end with the shutdown signal.
                broker.begin_shutdown();
                return Err(StartError::Monitor(err));
            }
        };
        let (reloads, reload_requests) = mpsc::channel(1);
        let (claims, operator_task) = match &operator {
            Some(mode) => {
                let (asks, asked) = mpsc::channel(CLAIMS_QUEUE);
                let task = operator::spawn(node.clone(), mode.clone(), asked);
                (Some((asks, mode.is_directory())), Some(task))
            }
            None => (None, None),
        };
        let websocket = match broker.opts.websocket.clone() {
            Some(ws) => match start_websocket(&node, ws).await {
                Ok(ws) => Some(ws),
                Err(err) => {
                    broker.begin_shutdown();
                    return Err(err);
                }
            },
            None => None,
        };
        watch_certificates(&node, websocket.as_ref(), leaf.as_ref());
        let system = SystemServices::start(broker.clone(), api, reloads, claims);
        let info_updates = node.cluster.as_ref().map(|cluster| spawn_info_updates(&node, cluster));
        spawn_digests(&broker);
        let (done_tx, done) = mpsc::channel(1);
        // nats-server's wording: test harnesses find the port in this line.
        info!(server_id = %broker.identity.id, "Listening for client connections on {local_addr}");
        let accept = tokio::spawn(accept_loop(node.clone(), listener, done_tx));
        info!("Server is ready");
        let applied = parking_lot::Mutex::new(Box::new(broker.opts.clone()));
        Ok(Server {
            applied,
            node,
            local_addr,
            accept: Some(accept),
            done,
            monitor,
            system,
            reload_requests: Some(reload_requests),
            info_updates,
            operator,
            operator_task,
            websocket,
            leaf,
            gateways,
            embedded,
        })
    }

    /// The leaf node hub, when `leafnodes` is configured.
    pub fn leaf_hub(&self) -> Option<&Arc<Hub>> {
        self.leaf.as_ref()
    }

    /// The bound gateway address, when gateways are configured.
    pub fn gateway_addr(&self) -> Option<SocketAddr> {
        self.gateways.as_ref().map(|g| g.listen_addr)
    }

    /// The gateways, when configured.
    pub fn gateways(&self) -> Option<&Arc<Gateways>> {
        self.gateways.as_ref()
    }

    /// The bound leaf node address, when the listener is configured.
    pub fn leafnode_addr(&self) -> Option<SocketAddr> {
        self.leaf.as_ref().and_then(|hub| hub.listen_addr())
    }

    /// The bound WebSocket address, when the listener is configured.
    pub fn websocket_addr(&self) -> Option<SocketAddr> {
        self.websocket.as_ref().map(|ws| ws.addr)
    }

    /// The `$SYS.REQ.SERVER.<id>.RELOAD` requests, for whoever can reload
    /// this server's configuration (once; `None` afterwards). Each is
    /// answered through the sender it carries. Untaken, they are refused.
    pub fn take_reload_requests(&mut self) -> Option<ReloadRequests> {
        self.reload_requests.take()
    }

    /// The bound monitoring address, when monitoring is on (useful with port 0).
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.monitor.as_ref().map(MonitorHandle::addr)
    }

    /// The bound client address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The cluster, when configured.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.node.cluster.as_ref()
    }

    /// The broker's state: subscriptions, live clients, counters.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.node.broker
    }

    /// Client authentication (the current authenticator, reloads).
    pub fn gate(&self) -> &Arc<Gate> {
        &self.node.gate
    }

    /// Applies a new configuration without a restart: users, passwords,
    /// permissions, accounts (their imports, exports and limits) and TLS
    /// certificates. Existing connections get their new permissions at once;
    /// those whose user is gone, whose password changed or whose account
    /// changed or went away are closed; a removed import stops delivering at
    /// once.
    ///
    /// `opts` that differ from the running options in one that only a
    /// restart applies (listeners, server limits, logging, `cluster`: what
    /// the config reference marks "restart") are refused whole with
    /// [`StartError::RestartOnly`] naming it, and nothing of them is
    /// applied, as a config file that changes one is.
    pub fn reload(&self, opts: &Options) -> Result<Vec<String>, StartError> {
        self.reload_by(opts, ReloadCause::Embedder)
    }

    /// [`Server::reload`], asked for by `cause`: the audit trail records
    /// who asked, and what changed or why it was refused.
    pub fn reload_by(&self, opts: &Options, cause: ReloadCause) -> Result<Vec<String>, StartError> {
        let result = self.apply_reload(opts);
        let mut applied = self.applied.lock();
        if self.node.broker.audit.is_on() {
            let outcome = match &result {
                Ok(_) => Ok(crate::config::ConfigChanges::between(&applied, opts)),
                Err(err) => Err(err.to_string()),
            };
            audit::record_reload(&self.node.broker, cause, outcome);
        }
        if result.is_ok() {
            **applied = opts.clone();
        }
        result
    }

    /// Records a reload that was refused before it reached the server (a
    /// config file that does not load, a restart-only change).
    pub fn reload_refused(&self, cause: ReloadCause, error: String) {
        audit::record_reload(&self.node.broker, cause, Err(error));
    }

    fn apply_reload(&self, opts: &Options) -> Result<Vec<String>, StartError> {
        // Only reloads that change none of them are applied, so the
        // restart-only options in force are still the start's.
        if let Some(option) = crate::config::restart_only_change(&self.applied.lock(), opts) {
            return Err(StartError::RestartOnly { option });
        }
        let (tls, mut warnings) = prepare_tls(opts)?;
        let delegation = |o: &Options| o.authorization.as_ref().and_then(|a| a.delegation.clone());
        if delegation(opts) != delegation(&self.node.broker.opts) {
            return Err(StartError::Reload(
                "auth_callout and http_authorizer cannot be changed by a reload (as in nats-server); restart the server",
            ));
        }
        let effective = match (&self.operator, &opts.operator) {
            (Some(mode), Some(_)) => {
                mode.reconfigure(opts)?;
                mode.effective()
            }
            (Some(_), None) => {
                return Err(StartError::Reload("operator mode cannot be turned off by a reload; restart the server"))
            }
            (None, Some(_)) => {
                return Err(StartError::Reload("operator mode cannot be turned on by a reload; restart the server"))
            }
            (None, None) => {
                let authenticator = match &self.embedded {
                    Some(embedded) => embedded.clone(),
                    None => auth::from_options(opts).map_err(StartError::Auth)?,
                };
                operator::Effective::configured(opts.clone(), authenticator)
            }
        };
        warnings.extend(crate::config::public_export_warnings(&effective.options));
        crate::config::check_accounts(&effective.options).map_err(StartError::Accounts)?;
        let leaf_login = self.leaf.as_ref().map(|hub| hub.reload_login(&effective.options)).transpose();
        let leaf_login = leaf_login.map_err(StartError::Leaf)?;
        let websocket_login = self.websocket_login(&effective.options)?;
        let pins = |tls: Option<&TlsState>| tls.and_then(|t| t.pinned.clone());
        let (old_pins, new_pins) = (pins(self.node.tls.get().as_deref()), pins(tls.as_ref()));
        self.node.tls.set(tls);
        match &opts.tls {
            Some(tls_opts) => watch_listener(&self.node.broker.tls_rotation, "client", &self.node.tls, tls_opts),
            None => self.node.broker.tls_rotation.forget("client"),
        }
        if old_pins != new_pins {
            pinned::close_unpinned_clients(&self.node.broker, new_pins.as_deref());
        }
        // Accounts first: connections that re-check their login after the
        // gate changes find their account's new state.
        if let (Some(ws), Some(authenticator)) = (&self.websocket, websocket_login) {
            ws.listener.gate().replace(authenticator);
        }
        operator::apply(&self.node, effective)?;
        if let Some(login) = leaf_login {
            login.apply();
        }
        self.reload_trace(opts.trace, opts.trace_verbose);
        info!("configuration reloaded");
        Ok(warnings)
    }

    /// The WebSocket listener's authenticator under `opts`, built before
    /// anything of a reload is applied, so that one that cannot be built
    /// refuses the reload whole. `None` when the listener logs in through
    /// the client listener's gate (which the reload replaces) or there is
    /// none. A reload that would give the listener a gate of its own, or
    /// take it away, is refused: the listener was bound to one or the other
    /// at start (nats-server refuses every change to `websocket` but its
    /// TLS files).
    fn websocket_login(&self, opts: &Options) -> Result<Option<Arc<dyn auth::Authenticator>>, StartError> {
        let Some(ws) = &self.websocket else { return Ok(None) };
        let own_gate = opts.websocket.as_ref().filter(|w| websocket_has_own_gate(opts, w));
        match (ws.own_gate, own_gate) {
            (false, None) => Ok(None),
            (true, Some(ws_opts)) => {
                auth::from_options(&websocket_auth_view(opts, ws_opts)).map(Some).map_err(StartError::Auth)
            }
            (false, Some(_)) | (true, None) => Err(StartError::Reload(
                "a reload cannot give the WebSocket listener a login of its own (websocket authorization, \
                 no_auth_user, or certificates mapped by other rules than the client listener's) or take it \
                 away; restart the server",
            )),
        }
    }

    /// Turns the protocol trace on or off for new and live connections of
    /// every kind, as nats-server's reload does.
    fn reload_trace(&self, on: bool, verbose: bool) {
        if !self.node.broker.set_trace(on, verbose) {
            return;
        }
        let routes = self.node.cluster.iter().flat_map(|c| c.routes()).map(|l| l.client.clone());
        let leafs = self.leaf.iter().flat_map(|h| h.leafs()).map(|l| l.client.clone());
        for client in routes.chain(leafs) {
            client.set_traced(on);
        }
        info!("Reloaded: trace = {on}, trace_verbose = {verbose}");
    }

    /// Stops accepting, closes every connection after flushing what is
    /// queued for it, and waits (bounded) for them to finish.
    pub async fn shutdown(mut self) {
        let broker = self.node.broker.clone();
        broker.audit.record(crate::audit::Event::Shutdown);
        broker.begin_shutdown();
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        if let Some(updates) = self.info_updates.take() {
            updates.abort();
        }
        if let Some(task) = self.operator_task.take() {
            let _ = task.await;
        }
        if let Some(ws) = self.websocket.take() {
            let _ = ws.task.await;
        }
        if let Some(system) = self.system.take() {
            system.join().await;
        }
        let bound = broker.opts.write_deadline + SHUTDOWN_SLACK;
        if tokio::time::timeout(bound, self.done.recv()).await.is_err() {
            warn!("some connections did not finish flushing before shutdown");
        }
        // Last, so /healthz answers 503 while connections drain.
        if let Some(monitor) = self.monitor.take() {
            monitor.stop().await;
        }
        // What the closing connections recorded is written before the end.
        let trail = broker.clone();
        let _ = tokio::task::spawn_blocking(move || trail.audit.close()).await;
        info!("Server Exiting..");
    }

    /// Lame-duck mode, then shutdown (what `warden` does on SIGTERM): closes
    /// the listener at once, sends protocol-1 clients an INFO with
    /// `"ldm":true`, waits `lame_duck_grace_period` (or until every client
    /// has left), then closes the remaining clients spread over the rest of
    /// `lame_duck_duration`, each after flushing what is queued to it.
    /// `broker().begin_shutdown()` from elsewhere cuts it short (SIGINT).
    ///
    /// The config reader keeps nats-server's 30 s minimum for
    /// `lame_duck_duration`; through the library any duration is accepted.
    pub async fn lame_duck(mut self) {
        let duration_ms = u64::try_from(self.node.broker.opts.lame_duck_duration.as_millis()).unwrap_or(u64::MAX);
        self.node.broker.audit.record(crate::audit::Event::LameDuck { duration_ms });
        self.node.broker.begin_lame_duck();
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        lame_duck::drain(&self.node, &mut self.done).await;
        self.shutdown().await;
    }
}

/// Writes the digests of dropped security log lines and events once a
/// second, so what a source's budget dropped is logged even when it goes
/// quiet; ends with the server.
fn spawn_digests(broker: &Arc<Broker>) {
    let broker = Arc::downgrade(broker);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(broker) = broker.upgrade() else { return };
            if broker.is_shutting_down() {
                return;
            }
            broker.log_budget.flush();
            broker.events.flush();
            broker.flush_audit_denials();
        }
    });
}

/// Pushes a fresh INFO to clients whenever the cluster's client URLs change.
fn spawn_info_updates(node: &Arc<Node>, cluster: &Arc<Cluster>) -> JoinHandle<()> {
    let mut changed = cluster.client_urls_signal();
    let node = Arc::downgrade(node);
    tokio::spawn(async move {
        while changed.changed().await.is_ok() {
            let Some(node) = node.upgrade() else { return };
            node.send_info_to_clients();
        }
    })
}

/// Runs every check `start` runs before binding (TLS files, and
/// permissions once compiled), without binding: `warden check`.
pub fn check(opts: &Options) -> Result<Vec<String>, StartError> {
    let (_, mut warnings) = prepare_tls(opts)?;
    let (effective, _) = operator::resolve(opts)?;
    let opts = &effective.options;
    crate::config::check_accounts(opts).map_err(StartError::Accounts)?;
    warnings.extend(auth::timing_warnings(opts));
    warnings.extend(crate::config::public_export_warnings(opts));
    monitor::check(opts).map_err(StartError::Monitor)?;
    if let Some(cluster) = opts.cluster.as_ref().filter(|c| !c.no_listener) {
        let unauthenticated = cluster.authorization.is_none() && cluster.tls.is_none();
        let open = unauthenticated && crate::config::open_loopback_listener(opts, &cluster.host);
        if unauthenticated && !cluster.allow_unauthenticated && !open {
            return Err(StartError::Cluster(ClusterError::Unauthenticated));
        }
        if open && !cluster.allow_unauthenticated {
            warnings.push(crate::config::OPEN_LOOPBACK_ROUTES.into());
        } else if unauthenticated {
            warnings.push(
                "cluster routes are not authenticated (insecure_allow_unauthenticated_routes): anyone who reaches the cluster port can read and inject every message".into(),
            );
        }
        for url in &cluster.routes {
            if RouteUrl::parse(url).is_none() {
                return Err(StartError::Cluster(ClusterError::BadUrl(url.clone())));
            }
        }
        crate::cluster::route_tls(cluster).map_err(StartError::Cluster)?;
    }
    if let Some(leaf) = &opts.leafnodes {
        if let Some(tls) = &leaf.tls {
            TlsState::load(tls).map_err(StartError::Tls)?;
        }
        if let Some(view) = crate::leaf::own_login_view(opts) {
            auth::from_options(&view).map_err(StartError::Auth)?;
        }
        if leaf.allow_unauthenticated {
            warnings.push(
                "leaf nodes need no credentials (insecure_allow_unauthenticated_leafnodes): anyone who reaches the leafnode port can read and inject every message of the global account".into(),
            );
        }
    }
    if let Some(ws) = &opts.websocket {
        if let Some(tls) = &ws.tls {
            TlsState::load(tls).map_err(StartError::Tls)?;
        }
        if ws.authorization.is_some() || ws.no_auth_user.is_some() {
            auth::from_options(&websocket_auth_view(opts, ws)).map_err(StartError::Auth)?;
        }
    }
    Ok(warnings)
}

fn prepare_tls(opts: &Options) -> Result<(Option<TlsState>, Vec<String>), StartError> {
    let Some(tls_opts) = &opts.tls else { return Ok((None, Vec::new())) };
    let (state, mut warnings) = TlsState::load(tls_opts).map_err(StartError::Tls)?;
    if state.allow_non_tls {
        warnings.push("tls allow_non_tls: clients may connect without TLS on the TLS port".into());
    }
    Ok((Some(state), warnings))
}

/// Registers every TLS listener's files for rotation (the client
/// listener's serves HTTPS monitoring too) and starts watching them.
fn watch_certificates(node: &Node, websocket: Option<&Websocket>, leaf: Option<&Arc<Hub>>) {
    let broker = &node.broker;
    let rotation = &broker.tls_rotation;
    if let Some(opts) = &broker.opts.tls {
        watch_listener(rotation, "client", &node.tls, opts);
    }
    let ws_opts = broker.opts.websocket.as_ref().and_then(|w| w.tls.as_ref());
    if let (Some(tls), Some(opts)) = (websocket.and_then(|w| w.listener.tls()), ws_opts) {
        watch_listener(rotation, "websocket", tls, opts);
    }
    let leaf_opts = broker.opts.leafnodes.as_ref().and_then(|l| l.tls.as_ref());
    if let (Some(tls), Some(opts)) = (leaf.and_then(|h| h.tls()), leaf_opts) {
        watch_listener(rotation, "leafnodes", tls, opts);
    }
    let (interval, window) = (broker.opts.tls_watch_interval, broker.opts.tls_expiry_warning);
    tokio::spawn(rotation.clone().run(interval, window, broker.shutdown_signal()));
}

/// Watches the files of `listener`'s TLS (`opts`), swapping `current`
/// when they change.
fn watch_listener(rotation: &Rotation, listener: &'static str, current: &Arc<CurrentTls>, opts: &TlsOptions) {
    let certificates = current.get().map(|s| s.certificates.clone()).unwrap_or_default();
    let (current, reloaded) = (current.clone(), opts.clone());
    let reload: crate::tls::Reload = Arc::new(move || {
        let (state, _) = TlsState::load(&reloaded).map_err(|e| e.to_string())?;
        let certificates = state.certificates.clone();
        current.set(Some(state));
        Ok(certificates)
    });
    rotation.watch(listener, opts.files(), certificates, reload);
}

/// The options a WebSocket listener with its own `authorization` or
/// `no_auth_user` logs its clients in with: the server's, with the block's
/// single user or token (nats-server: "websocket authorization overrides
/// the client auth for WebSocket clients") and its `no_auth_user`.
fn websocket_auth_view(opts: &Options, ws: &crate::config::WebsocketOptions) -> Options {
    let mut view = opts.clone();
    // WebSocket clients' certificates map by the WebSocket block's own
    // `verify_and_map`, as nats-server's `Websocket.TLSMap`.
    view.tls = ws.tls.clone();
    if let Some(own) = &ws.authorization {
        let mut auth = view.authorization.take().unwrap_or_default();
        auth.user = own.user.clone();
        auth.password = own.password.clone();
        auth.token = own.token.clone();
        view.authorization = Some(auth);
    }
    if let Some(user) = &ws.no_auth_user {
        view.no_auth_user = Some(user.clone());
    }
    view
}

/// Whether the WebSocket listener logs clients in differently from the
/// client listener: its own credentials or `no_auth_user`, or certificates
/// mapped by other rules (its own `verify_and_map` and SPIFFE mode).
fn websocket_has_own_gate(opts: &Options, ws: &crate::config::WebsocketOptions) -> bool {
    let mapping = |tls: Option<&TlsOptions>| tls.map(|t| (t.verify_and_map, t.spiffe_trust_domain.clone()));
    let mapping = |tls| mapping(tls).unwrap_or((false, None));
    ws.authorization.is_some() || ws.no_auth_user.is_some() || mapping(opts.tls.as_ref()) != mapping(ws.tls.as_ref())
}

/// Loads the WebSocket listener's TLS, builds its gate (the client
/// listener's unless the block has its own credentials; either way the same
/// throttle and pool), binds it and starts accepting.
async fn start_websocket(node: &Arc<Node>, ws: crate::config::WebsocketOptions) -> Result<Websocket, StartError> {
    let tls = match &ws.tls {
        Some(tls_opts) => Some(TlsState::load(tls_opts).map_err(StartError::Tls)?.0),
        None => None,
    };
    let own_gate = websocket_has_own_gate(&node.broker.opts, &ws);
    let gate = if own_gate {
        let view = websocket_auth_view(&node.broker.opts, &ws);
        let authenticator = auth::from_options(&view).map_err(StartError::Auth)?;
        let timeout = ws.authorization.as_ref().and_then(|a| a.timeout).unwrap_or(node.gate.timeout());
        let gate = Gate::new(authenticator, node.gate.guard().clone(), timeout);
        Arc::new(gate.delegating(node.gate.delegation().cloned()))
    } else {
        node.gate.clone()
    };
    let bind = |e: io::Error| StartError::Bind { addr: format!("{}:{}", ws.host, ws.port), source: e };
    let listener = listen(&ws.host, ws.port).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    if tls.is_none() {
        warn!("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
    }
    info!("Listening for websocket clients on {scheme}://{addr}");
    let listener_state = Arc::new(websocket::WsListener::new(ws, tls, gate));
    let task = tokio::spawn(websocket::accept_loop(node.clone(), listener_state.clone(), listener));
    Ok(Websocket { addr, listener: listener_state, own_gate, task })
}

/// Pending-connection queue of the client listener, as large as Linux's
/// default `somaxconn` (nats-server gets the same from Go), so a reconnect
/// storm is queued rather than dropped into SYN retransmits.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the client listener with `LISTEN_BACKLOG`.
async fn listen(host: &str, port: u16) -> io::Result<TcpListener> {
    let mut last_err = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_err = err,
        }
    }
    Err(last_err)
}

async fn accept_loop(node: Arc<Node>, listener: TcpListener, done: mpsc::Sender<()>) {
    let broker = node.broker.clone();
    let proxies = proxied::ClientProxies::new(&broker.opts).map(Arc::new);
    if proxies.is_some() {
        info!(trusted = ?broker.opts.trusted_proxies, "PROXY protocol required from trusted proxies on the client listener");
    }
    // A trusted proxy speaks for many clients: only the listener-wide
    // budget applies to it.
    let exempt = proxies.as_ref().map(|p| p.proxies().trusted().to_vec()).unwrap_or_default();
    let limit = AcceptLimiter::new(&broker.opts.accept_rate).map(|limiter| AcceptLimit {
        limiter: limiter.exempting(exempt),
        refused: &broker.stats.refused_accept_rate_client,
    });
    crate::conn::accept_until_shutdown(&broker, listener, "client", limit, |stream, addr| match &proxies {
        Some(proxies) if proxies.proxies().trusts(addr) => proxies.spawn(&node, stream, addr, done.clone()),
        _ => spawn_connection(&node, stream, addr, done.clone()),
    })
    .await;
}

fn spawn_connection(node: &Arc<Node>, stream: TcpStream, addr: SocketAddr, done: mpsc::Sender<()>) {
    let _ = stream.set_nodelay(true);
    let node = node.clone();
    let cid = node.broker.next_client_id();
    let client = match node.broker.register(cid, addr) {
        Ok(client) => client,
        Err(refusal) => {
            refuse(node, stream, cid, addr, refusal, done);
            return;
        }
    };
    tokio::spawn(async move {
        handshake::serve_socket(node.clone(), stream, client.clone()).await;
        node.broker.unregister(&client);
        drop(done);
    });
}

/// Counts and logs a refused connection, and tells the client why (after
/// INFO, with nats-server's text for both limits) on a task of its own.
fn refuse(node: Arc<Node>, stream: TcpStream, cid: u64, addr: SocketAddr, refusal: Refusal, done: mpsc::Sender<()>) {
    use std::sync::atomic::Ordering::Relaxed;
    let broker = &node.broker;
    match refusal {
        Refusal::MaxConnections => {
            broker.stats.refused_max_connections.fetch_add(1, Relaxed);
            if broker.log_budget.allow_from(addr.ip(), BudgetKind::Other, "") {
                warn!(%addr, max = broker.opts.max_connections, "maximum connections exceeded");
            }
        }
        Refusal::MaxConnectionsPerIp => {
            broker.stats.refused_max_connections_per_ip.fetch_add(1, Relaxed);
            if broker.log_budget.allow_from(addr.ip(), BudgetKind::Other, "") {
                warn!(%addr, max = broker.opts.max_connections_per_ip, "maximum connections per address exceeded");
            }
        }
    }
    let info = node.info_line(&Client::new(cid, addr, 0));
    tokio::spawn(async move {
        crate::conn::refuse_connection(stream, info, ProtoError::MaxConnections).await;
        drop(done);
    });
}
