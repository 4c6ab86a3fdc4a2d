//! Route permissions (`cluster { permissions { import, export } }`) between
//! two wardens and between warden and nats-server 2.15.1: a message on a
//! subject that is not exported does not cross, and interest in a subject
//! that is not imported is not sent (nor, when not exported, accepted).
//!
//! Node A has `import: "in.>"` and `export: { allow: "out.>", deny:
//! "out.secret" }`; its peer has no permissions.

mod common;

use std::time::Duration;

use common::peers::*;
use common::*;
use futures::{FutureExt, StreamExt};
use warden::config::{ClusterOptions, Options, RoutePermissions, SubjectRules};
use warden::server::Server;

fn rules(allow: &[&str], deny: &[&str]) -> Option<SubjectRules> {
    let list = |l: &[&str]| (!l.is_empty()).then(|| l.iter().map(|s| (*s).to_owned()).collect());
    Some(SubjectRules { allow: list(allow), deny: list(deny), literal: None })
}

fn cluster(routes: Vec<String>, permissions: Option<RoutePermissions>) -> ClusterOptions {
    ClusterOptions {
        name: Some("perms".into()),
        routes,
        // Loopback-only test cluster.
        allow_unauthenticated: true,
        permissions,
        ..ClusterOptions::default()
    }
}

/// Node A, with the permissions of this file's doc.
async fn node_a(routes: Vec<String>) -> Server {
    let perms = RoutePermissions { import: rules(&["in.>"], &[]), export: rules(&["out.>"], &["out.secret"]) };
    let opts = Options { server_name: Some("A".into()), cluster: Some(cluster(routes, Some(perms))), ..test_options() };
    start(opts).await
}

fn route_url(server: &Server) -> String {
    format!("nats-route://{}", server.cluster().unwrap().listen_addr)
}

async fn client(url: String) -> async_nats::Client {
    within(async {
        loop {
            if let Ok(c) = async_nats::connect(url.clone()).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// The subjects of the route interest `server` holds in `$G`.
fn route_subjects(server: &Server) -> Vec<String> {
    let global = server.broker().accounts.global();
    let subs = global.router.subscriptions();
    subs.iter()
        .filter(|s| s.owner.kind == warden::broker::ClientKind::Route)
        .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
        .collect()
}

/// Publishes `probe` on `subject` from `from` until `sub` receives one,
/// then drains the probes with a final `end` message.
async fn probe_until_received(from: &async_nats::Client, subject: &str, sub: &mut async_nats::Subscriber) {
    within(async {
        loop {
            from.publish(subject.to_owned(), "probe".into()).await.unwrap();
            from.flush().await.unwrap();
            if tokio::time::timeout(Duration::from_millis(100), sub.next()).await.is_ok() {
                break;
            }
        }
    })
    .await;
    from.publish(subject.to_owned(), "drained".into()).await.unwrap();
    from.flush().await.unwrap();
    within(async { while within(sub.next()).await.unwrap().payload != "drained" {} }).await;
}

/// The checks, with A's clients `on_a` and the peer's `on_p`.
/// `peer_interest` lists the subjects the peer holds from its routes.
async fn permissions_hold<F, Fut>(a: &Server, on_a: async_nats::Client, on_p: async_nats::Client, peer_interest: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    // Import: A subscribes to `other.x` first, then `in.x`; the peer only
    // hears of `in.x`.
    let mut other_on_a = on_a.subscribe("other.x").await.unwrap();
    let mut in_on_a = on_a.subscribe("in.x").await.unwrap();
    on_a.flush().await.unwrap();
    probe_until_received(&on_p, "in.x", &mut in_on_a).await;
    let held = peer_interest().await;
    assert!(held.contains(&"in.x".to_owned()), "{held:?}");
    assert!(!held.contains(&"other.x".to_owned()), "interest not imported was sent: {held:?}");
    on_p.publish("other.x", "no".into()).await.unwrap();
    on_p.publish("in.x", "end".into()).await.unwrap();
    on_p.flush().await.unwrap();
    assert_eq!(within(in_on_a.next()).await.unwrap().payload, "end");
    assert!(other_on_a.next().now_or_never().is_none(), "a message not imported crossed");

    // Export: the peer subscribes to `nope.x` first, then `out.>`; A keeps
    // only `out.>`, and withholds `out.secret` from it.
    let mut nope_on_p = on_p.subscribe("nope.x").await.unwrap();
    let mut out_on_p = on_p.subscribe("out.>").await.unwrap();
    on_p.flush().await.unwrap();
    probe_until_received(&on_a, "out.probe", &mut out_on_p).await;
    let held = route_subjects(a);
    assert!(held.contains(&"out.>".to_owned()), "{held:?}");
    assert!(!held.contains(&"nope.x".to_owned()), "interest not exported was accepted: {held:?}");
    on_a.publish("nope.x", "no".into()).await.unwrap();
    on_a.publish("out.secret", "no".into()).await.unwrap();
    on_a.publish("out.a", "end".into()).await.unwrap();
    on_a.flush().await.unwrap();
    let m = within(out_on_p.next()).await.unwrap();
    assert_eq!((m.subject.as_str(), &m.payload[..]), ("out.a", &b"end"[..]), "a denied subject crossed");
    assert!(nope_on_p.next().now_or_never().is_none(), "a message not exported crossed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_permissions_between_two_wardens() {
    let a = node_a(vec![]).await;
    let b_opts =
        Options { server_name: Some("B".into()), cluster: Some(cluster(vec![route_url(&a)], None)), ..test_options() };
    let b = start(b_opts).await;
    let ca = a.cluster().unwrap().clone();
    eventually("the route", || ca.route_count() == 1).await;
    let (on_a, on_b) = (client(url(&a)).await, client(url(&b)).await);
    permissions_hold(&a, on_a, on_b, || async { route_subjects(&b) }).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_permissions_with_nats_server_2_15() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    let a = node_a(vec![]).await;
    let (client_port, route_port, http_port) = (free_port(), free_port(), free_port());
    let _nats = spawn_nats_server(
        &binary,
        "route-perms",
        &format!(
            "listen: 127.0.0.1:{client_port}\nhttp: 127.0.0.1:{http_port}\nserver_name: N\n\
             cluster {{ name: perms, listen: 127.0.0.1:{route_port}, routes: [\"{}\"] }}\n",
            route_url(&a)
        ),
    );
    let ca = a.cluster().unwrap().clone();
    eventually("the route to nats-server", || ca.route_count() == 1).await;
    let on_a = client(url(&a)).await;
    let on_n = client(format!("nats://127.0.0.1:{client_port}")).await;
    // nats-server's view of A's interest: `/routez?subs=1`.
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], http_port));
    let n_interest = || async move {
        let routez = monitor_json(http, "/routez?subs=1").await;
        let routes = routez["routes"].as_array().cloned().unwrap_or_default();
        routes
            .iter()
            .flat_map(|r| r["subscriptions_list"].as_array().cloned().unwrap_or_default())
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect::<Vec<String>>()
    };
    permissions_hold(&a, on_a, on_n, n_interest).await;
    a.shutdown().await;
}
