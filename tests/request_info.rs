//! `Nats-Request-Info` on requests that cross a service import, as
//! nats-server 2.15.1 writes it: every imported request names its
//! requester's account, and with the import's `share: true` who the
//! requester is. The same config runs on both servers and an async-nats
//! service reads the header; a requester that writes the header itself is
//! never believed.

mod common;

use std::time::Duration;

use common::peers::{free_port, nats_server_2_15, spawn_nats_server};
use common::{options_from, start, within};
use futures::StreamExt;
use serde_json::Value;

const CONFIG: &str = r#"
server_name: here
accounts {
  A: {
    users: [ {user: alice, password: p} ]
    imports: [
      {service: {account: B, subject: "shared"}, share: true}
      {service: {account: B, subject: "plain"}}
    ]
  }
  B: { users: [ {user: svc, password: p} ], exports: [ {service: "shared"}, {service: "plain"} ] }
}
"#;

async fn connect(url: &str, user: &str) -> async_nats::Client {
    within(async {
        loop {
            let opts = async_nats::ConnectOptions::with_user_and_password(user.into(), "p".into()).name("asker");
            if let Ok(client) = opts.connect(url).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// What the service saw in `Nats-Request-Info` of one request to
/// `subject`, sent with `forged` as the requester's own header when given.
async fn seen(url: &str, subject: &str, forged: Option<&str>) -> Value {
    let service = connect(url, "svc").await;
    let mut requests = service.subscribe(subject.to_owned()).await.unwrap();
    service.flush().await.unwrap();
    let asker = connect(url, "alice").await;
    let mut headers = async_nats::HeaderMap::new();
    if let Some(forged) = forged {
        headers.insert("Nats-Request-Info", forged);
    }
    headers.insert("X-Other", "kept");
    asker.publish_with_headers(subject.to_owned(), headers, "q".into()).await.unwrap();
    asker.flush().await.unwrap();
    let request = within(requests.next()).await.unwrap();
    let headers = request.headers.expect("a header block");
    assert_eq!(headers.get("X-Other").map(|v| v.as_str()), Some("kept"), "the requester's other headers stay");
    let all: Vec<_> = headers.get_all("Nats-Request-Info").collect();
    assert_eq!(all.len(), 1, "one request info, the server's: {headers:?}");
    serde_json::from_str(all[0].as_str()).unwrap()
}

/// The fields given, but `rtt` (left out while it is 0, which depends on
/// when the server's first PING was answered).
fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().filter(|k| *k != "rtt").cloned().collect();
    keys.sort();
    keys
}

async fn check(url: &str, server: &str) -> (Value, Value) {
    let shared = seen(url, "shared", None).await;
    assert_eq!(shared["acc"], "A", "{server}: {shared}");
    assert_eq!(shared["user"], "alice", "{server}: {shared}");
    assert_eq!(shared["name"], "asker", "{server}: {shared}");
    assert_eq!(shared["kind"], "Client", "{server}: {shared}");
    assert_eq!(shared["server"], "here", "{server}: {shared}");
    assert!(shared["id"].as_u64().unwrap() > 0, "{server}: {shared}");
    let plain = seen(url, "plain", None).await;
    assert_eq!(plain["acc"], "A", "{server}: {plain}");
    assert!(
        plain.get("user").is_none() && plain.get("id").is_none(),
        "{server}: without share, only the account: {plain}"
    );
    // A forged header is replaced, with or without share.
    let forged = r#"{"acc":"SYS","user":"admin","server":"elsewhere"}"#;
    let replaced = seen(url, "shared", Some(forged)).await;
    assert_eq!((&replaced["acc"], &replaced["user"]), (&"A".into(), &"alice".into()), "{server}: {replaced}");
    let replaced = seen(url, "plain", Some(forged)).await;
    assert_eq!(replaced["acc"], "A", "{server}: {replaced}");
    assert!(replaced.get("user").is_none(), "{server}: {replaced}");
    (shared, plain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_import_tells_the_service_who_asked_as_nats_server_does() {
    let server = start(options_from(CONFIG)).await;
    let (ours_shared, ours_plain) = check(&common::url(&server), "warden").await;
    server.shutdown().await;
    let Some(binary) = common::deps::require(nats_server_2_15(), "nats-server 2.15.1", "scripts/test.sh installs it")
    else {
        return;
    };
    let port = free_port();
    let _reference = spawn_nats_server(&binary, "request-info-ref", &format!("listen: 127.0.0.1:{port}\n{CONFIG}"));
    let (ref_shared, ref_plain) = check(&format!("nats://127.0.0.1:{port}"), "nats-server").await;
    // The same fields but what warden does not track (SECURITY.md).
    let untracked = ["jwt", "issuer_key", "name_tag", "tags", "nonce"];
    let theirs: Vec<String> = keys(&ref_shared).into_iter().filter(|k| !untracked.contains(&k.as_str())).collect();
    assert_eq!(keys(&ours_shared), theirs, "warden {ours_shared}, nats-server {ref_shared}");
    assert_eq!(keys(&ours_plain), keys(&ref_plain), "warden {ours_plain}, nats-server {ref_plain}");
}
