//! Route pooling and pinned accounts (nats-server 2.10+ `cluster {
//! pool_size, accounts }`): several connections to each peer, each
//! account's interest and messages on the one its name hashes to, and a
//! connection of its own for each pinned account (the system account
//! always). Held against nats-server 2.15.1 as a peer both ways, whose
//! `/routez` must list the same connections; nats-server 2.9.10 (no
//! pooling) keeps one route, as `cluster_accounts.rs` checks.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::peers::*;
use common::*;
use futures::StreamExt;
use warden::cluster::Slot;
use warden::server::Server;

/// Accounts spread over a pool of 3 (FNV-1a of the name modulo 3): A at
/// 0, T3 at 1, T1 at 2; C is pinned; SYS is the system account.
const ACCOUNTS: &str = r#"
system_account: SYS
accounts {
  A: { users: [ {user: a, password: pa} ] }
  T1: { users: [ {user: t1, password: p1} ] }
  T3: { users: [ {user: t3, password: p3} ] }
  C: { users: [ {user: c, password: pc} ] }
  SYS: { users: [ {user: sys, password: ps} ] }
}
"#;

/// The accounts whose traffic each test carries across, with a user each.
const TENANTS: &[(&str, &str, &str)] = &[("A", "a", "pa"), ("T1", "t1", "p1"), ("T3", "t3", "p3"), ("C", "c", "pc")];

/// A warden node with the accounts and `cluster_extra` in its cluster block.
async fn node(name: &str, routes: &[String], cluster_extra: &str) -> Server {
    let routes: Vec<String> = routes.iter().map(|r| format!("\"{r}\"")).collect();
    let config = format!(
        "server_name: {name}\n{ACCOUNTS}\ncluster {{ name: c1, listen: \"127.0.0.1:0\", routes: [{}], \
         insecure_allow_unauthenticated_routes: true, {cluster_extra} }}\n",
        routes.join(", ")
    );
    start(options_from(&config)).await
}

fn route_url(server: &Server) -> String {
    format!("nats-route://{}", server.cluster().unwrap().listen_addr)
}

/// The slots of `server`'s connections to its peers.
fn slots(server: &Server) -> BTreeSet<String> {
    server.cluster().unwrap().routes().iter().map(|l| format!("{:?}", l.slot)).collect()
}

fn pooled(pinned: &[&str]) -> BTreeSet<String> {
    let mut want: BTreeSet<String> = (0..3).map(|n| format!("{:?}", Slot::Pool(n))).collect();
    want.extend(pinned.iter().map(|a| format!("{:?}", Slot::Account((*a).into()))));
    want
}

async fn login(url: &str, user: &str, pass: &str) -> async_nats::Client {
    login_retrying(url, user, pass).await
}

/// Every tenant's messages cross both ways between the servers at
/// `one` and `two` (client URLs), and `$SYS.REQ.SERVER.PING` from the
/// system account on `one` is answered by both servers.
async fn traffic_crosses(one: &str, two: &str) {
    for (account, user, pass) in TENANTS {
        for (from, to) in [(one, two), (two, one)] {
            let publisher = login(from, user, pass).await;
            let subscriber = login(to, user, pass).await;
            let subject = format!("{account}.news");
            let mut sub = subscriber.subscribe(subject.clone()).await.unwrap();
            subscriber.flush().await.unwrap();
            probe_until_received(&publisher, &subject, &mut sub).await;
        }
    }
    let sys = login(one, "sys", "ps").await;
    let inbox = sys.new_inbox();
    let mut answers = sys.subscribe(inbox.clone()).await.unwrap();
    sys.flush().await.unwrap();
    let mut ids = BTreeSet::new();
    within(async {
        while ids.len() < 2 {
            sys.publish_with_reply("$SYS.REQ.SERVER.PING", inbox.clone(), "".into()).await.unwrap();
            sys.flush().await.unwrap();
            while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), answers.next()).await {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                ids.insert(v["server"]["id"].as_str().unwrap().to_owned());
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wardens_pool_routes_and_carry_each_account_on_its_connection() {
    let n1 = node("N1", &[], "accounts: [C]").await;
    let n2 = node("N2", &[route_url(&n1)], "accounts: [C]").await;
    for (name, s) in [("N1", &n1), ("N2", &n2)] {
        eventually(&format!("{name}'s pool, SYS and C connections"), || slots(s) == pooled(&["C", "SYS"])).await;
        assert_eq!(s.cluster().unwrap().route_count(), 1, "one peer");
    }
    traffic_crosses(&url(&n1), &url(&n2)).await;

    // Each account's interest arrived on the connection its name hashes
    // to (the pinned one's on its own), on both sides.
    let c1 = login(&url(&n1), "c", "pc").await;
    let t1 = login(&url(&n1), "t1", "p1").await;
    let _c_sub = c1.subscribe("C.held").await.unwrap();
    let _t_sub = t1.subscribe("T1.held").await.unwrap();
    c1.flush().await.unwrap();
    t1.flush().await.unwrap();
    let owner_slot = |account: &str, subject: &str| {
        let links = n2.cluster().unwrap().routes();
        let acc = n2.broker().accounts.get(account)?;
        let subs = acc.router.subscriptions();
        let sub = subs.iter().find(|s| &*s.subject == subject.as_bytes())?;
        links.iter().find(|l| l.client.id == sub.owner.id).map(|l| l.slot.clone())
    };
    eventually("C's interest on C's connection", || owner_slot("C", "C.held") == Some(Slot::Account("C".into()))).await;
    eventually("T1's interest on pool connection 2", || owner_slot("T1", "T1.held") == Some(Slot::Pool(2))).await;
    n2.shutdown().await;
    n1.shutdown().await;
}

/// nats-server 2.15.1 with the accounts, pinning C, its monitoring on
/// `http`; routing to `seed` if given. Returns it, its client URL and its
/// route URL.
fn nats_server(binary: &Path, seed: Option<&str>, http: u16, extra: &str) -> (NatsServer, String, String) {
    let (client_port, route_port) = (free_port(), free_port());
    let routes = seed.map(|s| format!("routes: [\"{s}\"],")).unwrap_or_default();
    let config = format!(
        "listen: 127.0.0.1:{client_port}\nhttp: 127.0.0.1:{http}\nserver_name: N\n{ACCOUNTS}\n\
         cluster {{ name: c1, listen: 127.0.0.1:{route_port}, {routes} {extra} }}\n"
    );
    let server = spawn_nats_server(binary, "route-pool-nats", &config);
    (server, format!("nats://127.0.0.1:{client_port}"), format!("nats-route://127.0.0.1:{route_port}"))
}

/// The connections nats-server's `/routez` lists to `remote_id`: how many,
/// and the accounts of the pinned ones.
async fn nats_routes(http: u16, remote_id: &str) -> (usize, BTreeSet<String>) {
    let routez = monitor_json(SocketAddr::from(([127, 0, 0, 1], http)), "/routez").await;
    let routes = routez["routes"].as_array().cloned().unwrap_or_default();
    let to: Vec<_> = routes.iter().filter(|r| r["remote_id"] == remote_id).collect();
    let accounts = to.iter().filter_map(|r| r["account"].as_str()).map(str::to_owned).collect();
    (to.len(), accounts)
}

/// Waits until nats-server lists `count` connections to `remote_id`
/// (pinned ones for `accounts`).
async fn nats_lists(http: u16, remote_id: &str, count: usize, accounts: &[&str]) {
    let want: BTreeSet<String> = accounts.iter().map(|a| (*a).to_owned()).collect();
    within(async {
        loop {
            let (n, pinned) = nats_routes(http, remote_id).await;
            if n == count && pinned == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// A warden node and nats-server 2.15.1, `warden_dials` saying which one
/// has the other in its `routes`: both pool, with the same connections.
async fn mixed_pool(warden_dials: bool) {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    let http = free_port();
    let (w, _nats, n_url) = if warden_dials {
        let (nats, n_url, n_route) = nats_server(&binary, None, http, "accounts: [C]");
        (node("W", &[n_route], "accounts: [C]").await, nats, n_url)
    } else {
        let w = node("W", &[], "accounts: [C]").await;
        let (nats, n_url, _) = nats_server(&binary, Some(&route_url(&w)), http, "accounts: [C]");
        (w, nats, n_url)
    };
    eventually("warden's pool, SYS and C connections to nats-server", || slots(&w) == pooled(&["C", "SYS"])).await;
    nats_lists(http, &w.broker().identity.id, 5, &["C", "SYS"]).await;
    traffic_crosses(&url(&w), &n_url).await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_dialling_nats_server_2_15_pools_as_it_does() {
    mixed_pool(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_2_15_dialling_warden_pools_as_it_does() {
    mixed_pool(false).await;
}

/// `pool_size: -1` speaks to nats-server 2.15.1 over one route, as a
/// server before 2.10 does: nats-server's dedicated SYS connection is
/// refused with its own message, and everything crosses on the one route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_size_minus_one_keeps_one_route_with_nats_server_2_15() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    let http = free_port();
    let w = node("W", &[], "pool_size: -1").await;
    let (_nats, n_url, _) = nats_server(&binary, Some(&route_url(&w)), http, "");
    eventually("one route", || slots(&w) == BTreeSet::from([format!("{:?}", Slot::Single)])).await;
    nats_lists(http, &w.broker().identity.id, 1, &[]).await;
    traffic_crosses(&url(&w), &n_url).await;
    assert_eq!(slots(&w).len(), 1, "still one route");
    w.shutdown().await;
}

/// The config refuses what nats-server refuses, and warden's bound.
#[test]
fn pool_configs_are_checked() {
    for (cluster, says) in [
        ("pool_size: -1, accounts: [C]", "pool_size cannot be negative if pinned accounts are specified"),
        ("accounts: [C, C]", "duplicate account name \"C\""),
        ("pool_size: 33", "pool_size"),
        ("pool_size: -2", "pool_size"),
    ] {
        let text = format!("cluster {{ listen: \"127.0.0.1:0\", {cluster} }}\n");
        let err = warden::config::load_str(&text, "pool.conf").expect_err(cluster).to_string();
        assert!(err.contains(says), "{cluster}: {err}");
        assert!(err.contains("pool.conf:1:"), "{cluster}: {err}");
    }
}
