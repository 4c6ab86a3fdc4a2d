//! Subject mappings across leaf connections, with nats-server 2.15.1 as
//! the other side: the server whose account maps `map.in.*` to
//! `map.out.$1` tells the other side of each leaf connection of interest
//! in `map.in.*` (as nats-server does for its mapping sources), so a
//! client over there publishing `map.in.x` reaches a subscriber of
//! `map.out.>` here. Hub or leaf, warden or nats-server; and a reload
//! that changes the mappings changes what the other side is told.

mod common;

use std::time::Duration;

use common::peers::{connect_retrying, free_port, nats_server_2_15, spawn_nats_server};
use common::{options_from, start, within};
use futures::StreamExt;

const MAPPINGS: &str = "mappings { \"map.in.*\": \"map.out.$1\" }\n";

/// Publishes `subject` on `from` until `sub` gets a message (interest
/// crosses the leaf connection asynchronously); the subject it arrived on.
async fn arrives_as(from: &async_nats::Client, subject: &str, sub: &mut async_nats::Subscriber) -> String {
    within(async {
        loop {
            from.publish(subject.to_owned(), "x".into()).await.unwrap();
            from.flush().await.unwrap();
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                return msg.subject.to_string();
            }
        }
    })
    .await
}

fn reference() -> Option<std::path::PathBuf> {
    common::deps::require(nats_server_2_15(), "nats-server 2.15.1", "scripts/test.sh installs it")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_hubs_mapping_source_reaches_it_from_a_nats_server_leaf_and_follows_a_reload() {
    let Some(binary) = reference() else { return };
    let config = format!("{MAPPINGS}leafnodes {{ listen: \"127.0.0.1:0\" }}\n");
    let hub = start(options_from(&config)).await;
    let port = free_port();
    let leaf_config = format!(
        "listen: 127.0.0.1:{port}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://{}\" }} ] }}\n",
        hub.leafnode_addr().unwrap()
    );
    let _leaf = spawn_nats_server(&binary, "map-leaf-2-15", &leaf_config);
    let on_hub = connect_retrying(&common::url(&hub)).await;
    let on_leaf = connect_retrying(&format!("nats://127.0.0.1:{port}")).await;
    let mut out = on_hub.subscribe("map.out.>").await.unwrap();
    assert_eq!(arrives_as(&on_leaf, "map.in.a", &mut out).await, "map.out.a");

    // A reload adds a source: the leaf is told of it.
    let reloaded = format!(
        "mappings {{ \"map.in.*\": \"map.out.$1\", \"map.new\": \"map.out.new\" }}\n{}",
        &config[MAPPINGS.len()..]
    );
    hub.reload(&options_from(&reloaded)).expect("reload");
    assert_eq!(arrives_as(&on_leaf, "map.new", &mut out).await, "map.out.new");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warden_leafs_mapping_source_reaches_it_from_a_nats_server_hub() {
    let Some(binary) = reference() else { return };
    let (client_port, leaf_port) = (free_port(), free_port());
    let _hub = spawn_nats_server(
        &binary,
        "map-hub-2-15",
        &format!("listen: 127.0.0.1:{client_port}\nleafnodes {{ listen: 127.0.0.1:{leaf_port} }}\n"),
    );
    let leaf_config =
        format!("{MAPPINGS}leafnodes {{ remotes = [ {{ url: \"nats-leaf://127.0.0.1:{leaf_port}\" }} ] }}\n");
    let leaf = start(options_from(&leaf_config)).await;
    let on_leaf = connect_retrying(&common::url(&leaf)).await;
    let on_hub = connect_retrying(&format!("nats://127.0.0.1:{client_port}")).await;
    let mut out = on_leaf.subscribe("map.out.>").await.unwrap();
    assert_eq!(arrives_as(&on_hub, "map.in.b", &mut out).await, "map.out.b");
    leaf.shutdown().await;
}

/// What nats-server 2.15.1 does on both ends, the behaviour matched above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_2_15_announces_its_mapping_sources_to_its_leafs() {
    let Some(binary) = reference() else { return };
    let (client_port, leaf_port, other_port) = (free_port(), free_port(), free_port());
    let _hub = spawn_nats_server(
        &binary,
        "map-ref-hub",
        &format!("{MAPPINGS}listen: 127.0.0.1:{client_port}\nleafnodes {{ listen: 127.0.0.1:{leaf_port} }}\n"),
    );
    let _leaf = spawn_nats_server(
        &binary,
        "map-ref-leaf",
        &format!("listen: 127.0.0.1:{other_port}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://127.0.0.1:{leaf_port}\" }} ] }}\n"),
    );
    let on_hub = connect_retrying(&format!("nats://127.0.0.1:{client_port}")).await;
    let on_leaf = connect_retrying(&format!("nats://127.0.0.1:{other_port}")).await;
    let mut out = on_hub.subscribe("map.out.>").await.unwrap();
    assert_eq!(arrives_as(&on_leaf, "map.in.c", &mut out).await, "map.out.c");
}

/// A service the hub's account imports is reachable from the other side of
/// its leaf connections: the hub tells its leafs of interest in each
/// service-import subject (nats-server's `initLeafNodeSmapAndSendSubs`
/// does), so a request from a nats-server 2.15.1 leaf's client on `svc.x`
/// crosses to the hub, goes through the import to the exporting account,
/// and its answer comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_the_hubs_account_imports_answers_a_request_from_a_nats_server_leaf() {
    let Some(binary) = reference() else { return };
    let hub = start(options_from(
        r#"accounts {
  A { users = [ { user: a, password: "a-pw" } ], exports = [ { service: "svc.>" } ] }
  B { users = [ { user: b, password: "b-pw" } ], imports = [ { service: { account: A, subject: "svc.>" } } ] }
}
leafnodes {
  listen: "127.0.0.1:0"
  authorization { users = [ { user: edge, password: "edge-pw", account: B } ] }
}
"#,
    ))
    .await;
    let responder = within(
        async_nats::ConnectOptions::with_user_and_password("a".into(), "a-pw".into()).connect(common::url(&hub)),
    )
    .await
    .unwrap();
    let mut requests = responder.subscribe("svc.>").await.unwrap();
    responder.flush().await.unwrap();
    let answering = tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            if let Some(reply) = msg.reply {
                responder.publish(reply, format!("answer to {}", msg.subject).into()).await.unwrap();
            }
        }
    });
    let port = free_port();
    let leaf_config = format!(
        "listen: 127.0.0.1:{port}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://edge:edge-pw@{}\" }} ] }}\n",
        hub.leafnode_addr().unwrap()
    );
    let _leaf = spawn_nats_server(&binary, "svc-leaf-2-15", &leaf_config);
    let on_leaf = connect_retrying(&format!("nats://127.0.0.1:{port}")).await;
    let answer = within(async {
        loop {
            // Until the hub's interest has crossed the leaf connection.
            let asked = tokio::time::timeout(Duration::from_millis(200), on_leaf.request("svc.orders", "?".into()));
            if let Ok(Ok(answer)) = asked.await {
                return answer;
            }
        }
    })
    .await;
    assert_eq!(&answer.payload[..], b"answer to svc.orders");
    answering.abort();
    hub.shutdown().await;
}
