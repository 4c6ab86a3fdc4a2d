//! Routes that log in by their certificate: `cluster { tls { verify_and_map
//! }, authorization { user: "<DN>" } }` with no password, as nats-server's
//! `tls_cert_cn_routes.conf` writes it. A peer whose certificate names the
//! route user joins; one whose certificate names someone else does not.
//! Held against nats-server 2.15.1 as a peer both ways.

mod common;

use std::path::Path;

use common::peers::*;
use common::pki::Pki;
use common::*;
use warden::server::Server;

/// The route user: the subject of the cluster's node certificates.
const ROUTE_USER: &str = "CN=localhost,OU=NATS.io Operators";

/// The cluster block's `tls` and `authorization`, presenting `cert`.
fn cluster_auth(pki: &Pki, cert: &str) -> String {
    format!("{}\nauthorization {{ user: \"{ROUTE_USER}\" }}", pki.tls_block(cert, ", verify_and_map: true"))
}

/// A warden node presenting `cert`, dialling `routes`.
async fn node(pki: &Pki, name: &str, cert: &str, routes: &[String]) -> Server {
    let routes: Vec<String> = routes.iter().map(|r| format!("\"{r}\"")).collect();
    let config = format!(
        "server_name: {name}\ncluster {{ name: c1, listen: \"127.0.0.1:0\", routes: [{}]\n{} }}\n",
        routes.join(", "),
        cluster_auth(pki, cert)
    );
    start(options_from(&config)).await
}

fn route_url(server: &Server) -> String {
    format!("nats-route://{}", server.cluster().unwrap().listen_addr)
}

async fn client(url: &str) -> async_nats::Client {
    within(async_nats::connect(url)).await.unwrap()
}

/// Waits until `server` has refused `n` route logins.
async fn refused(server: &Server, n: u64) {
    let security = &server.broker().security;
    eventually("route logins to be refused", || security.auth_failures() >= n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_whose_certificate_names_the_route_user_joins_and_others_do_not() {
    let pki = Pki::new("route-cert-users");
    let a = node(&pki, "A", "node", &[]).await;
    let b = node(&pki, "B", "node", &[route_url(&a)]).await;
    let on_a = client(&url(&a)).await;
    let on_b = client(&url(&b)).await;
    let mut sub = on_b.subscribe("mapped.route").await.unwrap();
    on_b.flush().await.unwrap();
    probe_until_received(&on_a, "mapped.route", &mut sub).await;

    // Same CA, but its subject lacks the OU: not the route user.
    let rogue = node(&pki, "R", "rogue", &[route_url(&a)]).await;
    refused(&a, 2).await;
    // The rogue's side looks up between A's INFO and A's refusal (the
    // protocol has no login answer); A's never does.
    let names: Vec<String> = a.cluster().unwrap().routes().iter().map(|l| l.remote_name()).collect();
    assert!(!names.iter().any(|n| n == "R"), "A has no route to the rogue: {names:?}");
    for s in [a, b, rogue] {
        s.shutdown().await;
    }
}

/// nats-server 2.15.1 with the same cluster block, routing to warden and
/// routed to by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_routes_log_in_by_certificate_both_ways() {
    let Some(binary) = nats_server_2_15() else { return };
    let pki = Pki::new("route-cert-users-nats");
    let a = node(&pki, "A", "node", &[]).await;
    let nats_conf = |cert: &str, name: &str, client_port: u16, route_port: u16| {
        format!(
            "server_name: {name}\nlisten: \"127.0.0.1:{client_port}\"\n\
             cluster {{ name: c1, listen: \"127.0.0.1:{route_port}\", routes: [\"{}\"]\n{} }}\n",
            route_url(&a),
            cluster_auth(&pki, cert)
        )
    };
    let (client_port, route_port) = (free_port(), free_port());
    let nats =
        spawn_nats_server(Path::new(&binary), "route-cert-nats", &nats_conf("node", "N", client_port, route_port));
    // warden dials nats-server too, so both directions log in by certificate.
    let c = node(&pki, "C", "node", &[format!("nats-route://127.0.0.1:{route_port}")]).await;
    let on_n = login_retrying(&format!("nats://127.0.0.1:{client_port}"), "", "").await;
    for server in [&a, &c] {
        let on_w = client(&url(server)).await;
        let mut from_nats = on_w.subscribe("to.warden").await.unwrap();
        on_w.flush().await.unwrap();
        probe_until_received(&on_n, "to.warden", &mut from_nats).await;
        let mut from_warden = on_n.subscribe("to.nats").await.unwrap();
        on_n.flush().await.unwrap();
        probe_until_received(&on_w, "to.nats", &mut from_warden).await;
    }
    drop(nats);

    // A nats-server whose certificate names someone else is refused by A
    // (what it logs of A's -ERR is read, twice: once could be a race).
    let rogue = spawn_nats_server(
        Path::new(&binary),
        "route-cert-nats-rogue",
        &nats_conf("rogue", "R", free_port(), free_port()),
    );
    let log = rogue.1.clone().unwrap();
    eventually("the rogue nats-server to be refused twice", || {
        std::fs::read_to_string(&log).unwrap_or_default().matches("Authorization Violation").count() >= 2
    })
    .await;
    let names: Vec<String> = a.cluster().unwrap().routes().iter().map(|l| l.remote_name()).collect();
    assert!(!names.iter().any(|n| n == "R"), "A has no route to the rogue: {names:?}");
    for s in [a, c] {
        s.shutdown().await;
    }
}
