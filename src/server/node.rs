//! What the listeners of one server share, and the INFO a client gets.

use std::sync::Arc;

use crate::auth::Gate;
use crate::broker::{Broker, Client};
use crate::cluster::Cluster;
use crate::proto::{ServerInfo, NATS_VERSION, WARDEN_VERSION};
use crate::tls::CurrentTls;

/// The pieces of one running server, wired together.
#[derive(Debug)]
pub(crate) struct Node {
    /// The broker's state.
    pub(crate) broker: Arc<Broker>,
    /// Client authentication.
    pub(crate) gate: Arc<Gate>,
    /// Client TLS, when configured.
    pub(crate) tls: Arc<CurrentTls>,
    /// The cluster, when configured.
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// The server's curve key, when the auth callout encrypts.
    pub(crate) xkey: Option<String>,
}

impl Node {
    /// The INFO `client` gets.
    pub(crate) fn info(&self, client: &Client) -> ServerInfo {
        let tls = self.tls.get();
        let broker = &self.broker;
        ServerInfo {
            server_id: broker.identity.id.clone(),
            server_name: broker.identity.name.clone(),
            version: NATS_VERSION.into(),
            warden_version: WARDEN_VERSION.into(),
            proto: 1,
            host: broker.addr.ip().to_string(),
            port: broker.addr.port(),
            headers: true,
            max_payload: broker.opts.max_payload,
            client_id: Some(client.id),
            client_ip: Some(client.addr.ip().to_string()),
            auth_required: self.gate.auth_required(),
            cluster: self.cluster.as_ref().and_then(|c| c.opts.name.clone()),
            connect_urls: self.cluster.as_ref().map(|c| c.connect_urls()).unwrap_or_default(),
            tls_required: tls.as_ref().is_some_and(|t| !t.allow_non_tls),
            tls_available: tls.as_ref().is_some_and(|t| t.allow_non_tls),
            tls_verify: tls.as_ref().is_some_and(|t| t.verify),
            xkey: self.xkey.clone(),
            ..Default::default()
        }
    }

    /// The INFO line for `client`.
    pub(crate) fn info_line(&self, client: &Client) -> Vec<u8> {
        self.info(client).to_line()
    }

    /// The first INFO line of a WebSocket connection: TLS is the WebSocket
    /// layer's business, so no TLS flags; its gate's `auth_required`.
    pub(crate) fn websocket_greeting(&self, client: &Client, nonce: Option<String>, auth_required: bool) -> Vec<u8> {
        let info = ServerInfo {
            nonce,
            auth_required,
            tls_required: false,
            tls_available: false,
            tls_verify: false,
            connect_urls: Vec::new(),
            ..self.info(client)
        };
        info.to_line()
    }

    /// The first INFO line of a connection, with its nonce.
    pub(crate) fn greeting_line(&self, client: &Client, nonce: Option<String>) -> Vec<u8> {
        ServerInfo { nonce, ..self.info(client) }.to_line()
    }

    /// Tells every protocol-1 client the current INFO (new `connect_urls`).
    pub(crate) fn send_info_to_clients(&self) {
        for client in self.broker.clients() {
            // WebSocket clients' URLs are not the client listener's.
            if client.takes_async_info() && !client.meta.lock().websocket {
                client.send(&self.info_line(&client));
            }
        }
    }
}

/// Monitoring sees the leaf hub through its narrow view.
impl crate::monitor::LeafView for crate::leaf::Hub {
    fn leafs(&self) -> Vec<crate::monitor::LeafConnView> {
        let links = crate::leaf::Hub::leafs(self);
        links
            .into_iter()
            .map(|l| crate::monitor::LeafConnView {
                client: l.client.clone(),
                account: l.account.to_string(),
                remote_id: l.remote_id.clone(),
                remote_name: l.remote_name.clone(),
                spoke: l.spoke,
            })
            .collect()
    }
}

/// Monitoring sees the gateways through their narrow view.
impl crate::monitor::GatewayView for crate::gateway::Gateways {
    fn name(&self) -> String {
        self.opts.name.clone()
    }

    fn listen_addr(&self) -> std::net::SocketAddr {
        self.listen_addr
    }

    fn links(&self) -> Vec<crate::monitor::GatewayConnView> {
        crate::gateway::Gateways::links(self)
            .into_iter()
            .map(|l| crate::monitor::GatewayConnView {
                client: l.client.clone(),
                name: l.name.clone(),
                remote_id: l.remote_id.clone(),
                outbound: l.outbound,
                configured: l.configured,
            })
            .collect()
    }

    fn remotes(&self) -> Vec<(String, Vec<String>)> {
        crate::gateway::Gateways::remotes(self)
    }

    fn rejects_unknown(&self) -> bool {
        self.opts.reject_unknown_cluster
    }

    fn connect_retries(&self) -> u32 {
        self.opts.connect_retries
    }

    fn auth_timeout(&self) -> std::time::Duration {
        crate::gateway::Gateways::auth_timeout(self)
    }

    fn interest_dropped(&self) -> u64 {
        crate::gateway::Gateways::interest_dropped(self)
    }
}

/// Monitoring sees the cluster through its narrow view.
impl crate::monitor::ClusterView for Cluster {
    fn name(&self) -> Option<String> {
        self.opts.name.clone()
    }

    fn listen_addr(&self) -> std::net::SocketAddr {
        self.listen_addr
    }

    fn seed_routes(&self) -> Vec<String> {
        let urls = self.opts.routes.iter().filter_map(|u| crate::cluster::RouteUrl::parse(u));
        urls.map(|u| format!("{}:{}", u.host, u.port)).collect()
    }

    fn connect_urls(&self) -> Vec<String> {
        Cluster::connect_urls(self)
    }

    fn route_count(&self) -> usize {
        Cluster::route_count(self)
    }

    fn routes(&self) -> Vec<crate::monitor::RouteView> {
        let links = Cluster::routes(self).into_iter();
        links
            .map(|link| crate::monitor::RouteView {
                client: link.client.clone(),
                remote_id: link.remote_id.clone(),
                remote_name: link.remote_name(),
                solicited: link.solicited,
                account: match &link.slot {
                    crate::cluster::Slot::Account(account) => Some(account.to_string()),
                    _ => None,
                },
            })
            .collect()
    }

    fn unreachable(&self) -> Vec<crate::monitor::UnreachableView> {
        let known = Cluster::unreachable(self).into_iter();
        known
            .map(|u| crate::monitor::UnreachableView {
                url: u.url,
                server_id: u.server_id,
                server_name: u.server_name,
                attempts: u.attempts,
                since: u.since,
                gave_up: u.gave_up,
            })
            .collect()
    }
}
