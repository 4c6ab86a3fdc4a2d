//! Operator mode (JWT accounts and users) with tokens and `.creds` files
//! written by the official Go libraries (`tests/jwtgen`, built by
//! `scripts/jwtgen.sh`), the same configs run on nats-server 2.9.10 and on
//! warden, and stock clients (async-nats, nats-py) connecting with `.creds`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use async_nats::connection::State;
use common::peers::{eventually, free_port, spawn_nats_server};
use common::{options_from, start, temp_dir, within, WAIT};
use futures::StreamExt;
use serde_json::Value;

/// What `jwtgen` wrote.
struct Fixtures {
    dir: PathBuf,
    json: Value,
}

impl Fixtures {
    fn creds(&self, user: &str) -> PathBuf {
        PathBuf::from(self.json["creds"][user].as_str().unwrap())
    }

    fn account(&self, name: &str) -> String {
        self.json["accounts"][name].as_str().unwrap().to_owned()
    }

    fn text(&self, key: &str) -> String {
        self.json[key].as_str().unwrap().to_owned()
    }

    /// A copy of the generated `jwt/` store, for a directory resolver to change.
    fn store(&self, name: &str) -> PathBuf {
        let store = temp_dir(name);
        for entry in std::fs::read_dir(self.dir.join("jwt")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), store.join(entry.file_name())).unwrap();
        }
        store
    }

    /// A memory-resolver config with every account preloaded.
    fn memory_config(&self, port: u16) -> String {
        let preload: String = self.json["account_jwts"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, jwt)| format!("  {key}: {}\n", jwt.as_str().unwrap()))
            .collect();
        format!(
            "host: 127.0.0.1\nport: {port}\noperator: {}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload {{\n{preload}}}\n",
            self.dir.join("operator.jwt").display(),
            self.account("SYS"),
        )
    }

    /// A directory-resolver config over `store`.
    fn directory_config(&self, port: u16, store: &Path) -> String {
        format!(
            "host: 127.0.0.1\nport: {port}\noperator: {}\nsystem_account: {}\nresolver {{ type: full, dir: {:?}, allow_delete: false, interval: \"2m\" }}\n",
            self.dir.join("operator.jwt").display(),
            self.account("SYS"),
            store.display().to_string(),
        )
    }
}

/// Generates fresh fixtures with the Go libraries; `None` (the test says
/// it was skipped) when Go or its NATS packages cannot be had.
fn fixtures(name: &str) -> Option<Fixtures> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/jwtgen.sh");
    let built = Command::new("bash").arg(script).output().ok().filter(|o| o.status.success());
    let what = "the Go fixture generator";
    let built = common::deps::require(built, what, "scripts/jwtgen.sh builds it from Debian's Go NATS packages")?;
    let binary = String::from_utf8(built.stdout).unwrap().trim().to_owned();
    let dir = temp_dir(name);
    let status = Command::new(binary).arg(&dir).status().unwrap();
    assert!(status.success(), "jwtgen failed");
    let json = serde_json::from_slice(&std::fs::read(dir.join("fixtures.json")).unwrap()).unwrap();
    Some(Fixtures { dir, json })
}

async fn connect(url: &str, creds: &Path) -> Result<async_nats::Client, async_nats::ConnectError> {
    let opts = async_nats::ConnectOptions::with_credentials_file(creds).await.unwrap();
    within(opts.connection_timeout(Duration::from_secs(3)).max_reconnects(Some(1)).connect(url)).await
}

async fn connect_retrying(url: &str, creds: &Path) -> async_nats::Client {
    within(async {
        loop {
            if let Ok(client) = connect(url, creds).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Runs `publish` until `sub` gets a message, and returns its subject.
/// async-nats' `flush` only empties the client's buffer, so a SUB on one
/// connection may not be in when another connection publishes: retrying
/// is how to wait for it (every wait bounded).
async fn until_delivered<F, Fut>(sub: &mut async_nats::Subscriber, mut publish: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    within(async {
        loop {
            publish().await;
            if let Ok(msg) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                return msg.expect("subscription open").subject.to_string();
            }
        }
    })
    .await
}

async fn next_subject(sub: &mut async_nats::Subscriber) -> String {
    within(sub.next()).await.expect("subscription open").subject.to_string()
}

/// The scenario every server must pass the same way. `live_defaults`:
/// whether new default permissions apply to connected users (warden; a
/// nats-server user keeps the old ones until it reconnects).
async fn scenario(url: &str, fx: &Fixtures, live_defaults: bool) {
    let alice = connect_retrying(url, &fx.creds("alice")).await;
    let bob = connect(url, &fx.creds("bob")).await.expect("bob (signing key) connects");
    let carol = connect(url, &fx.creds("carol")).await.expect("carol (scoped key) connects");
    let bearer = connect(url, &fx.creds("bearer")).await.expect("a bearer token needs no signature");
    let service = connect(url, &fx.creds("service")).await.expect("B's user connects");

    // Permissions from the JWTs: carol's template allows scoped.carol.>
    // only, bob has the account's defaults (a.>).
    let mut seen = alice.subscribe("a.>").await.unwrap();
    let first = until_delivered(&mut seen, || async {
        carol.publish("a.from-carol", "x".into()).await.unwrap();
        carol.flush().await.unwrap();
        bob.publish("a.from-bob", "x".into()).await.unwrap();
        bob.flush().await.unwrap();
    })
    .await;
    assert_eq!(first, "a.from-bob");
    let mut own = carol.subscribe("scoped.carol.>").await.unwrap();
    carol.flush().await.unwrap();
    carol.publish("scoped.carol.x", "x".into()).await.unwrap();
    assert_eq!(next_subject(&mut own).await, "scoped.carol.x");

    // A service import through an activation token (with `share`: the
    // service is told who asked), and a stream import renamed by its
    // local subject.
    let mut requests = service.subscribe("svc.>").await.unwrap();
    service.flush().await.unwrap();
    let responder = service.clone();
    let answering = tokio::spawn(async move {
        if let Some(msg) = requests.next().await {
            let info = msg.headers.as_ref().and_then(|h| h.get("Nats-Request-Info")).map(|v| v.to_string());
            responder.publish(msg.reply.unwrap(), info.unwrap_or_default().into()).await.unwrap();
            responder.flush().await.unwrap();
        }
    });
    let answer = within(async {
        loop {
            // Until the service's subscription is in (another connection's
            // SUB). Through an import nats-server 2.9.10 may drop an early
            // request instead of answering "no responders": ask again.
            let asked = tokio::time::timeout(Duration::from_secs(1), alice.request("svc.ping", "ping".into())).await;
            match asked {
                Err(_) => {}
                Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Ok(answer) => return answer.expect("service answers through the import"),
            }
        }
    })
    .await;
    let info: Value = serde_json::from_slice(&answer.payload).expect("the request carried Nats-Request-Info");
    assert_eq!(info["acc"], fx.account("A"), "{info}");
    assert!(info["id"].as_u64().is_some_and(|id| id > 0) && info["kind"] == "Client", "shared: {info}");
    answering.await.unwrap();
    let mut feed = alice.subscribe("b.feed.>").await.unwrap();
    let first = until_delivered(&mut feed, || async {
        service.publish("feed.news", "x".into()).await.unwrap();
        service.flush().await.unwrap();
    })
    .await;
    assert_eq!(first, "b.feed.news");
    // B's subjects do not reach A otherwise.
    let mut leak = bearer.subscribe("a.>").await.unwrap();
    let first = until_delivered(&mut leak, || async {
        service.publish("a.secret", "x".into()).await.unwrap();
        service.flush().await.unwrap();
        bob.publish("a.marker", "x".into()).await.unwrap();
        bob.flush().await.unwrap();
    })
    .await;
    assert_eq!(first, "a.marker");

    // A pushed account update: "revoked" is revoked (and closed), and the
    // defaults no longer allow a.> (bob's publishes stop arriving).
    let revoked = connect(url, &fx.creds("revoked")).await.expect("revoked connects before the update");
    let sys = connect(url, &fx.creds("sys")).await.expect("the system user connects");
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", fx.account("A"));
    let reply = within(sys.request(subject, fx.text("updated_a").into())).await.expect("update answered");
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["data"]["code"], 200, "{reply}");
    assert_eq!(reply["data"]["message"], "jwt updated", "{reply}");
    eventually("the revoked user is disconnected", || revoked.connection_state() != State::Connected).await;
    assert!(connect(url, &fx.creds("revoked")).await.is_err(), "a revoked user cannot log in again");
    let bob = if live_defaults { bob } else { connect(url, &fx.creds("bob")).await.unwrap() };
    let mut after = alice.subscribe("a.>").await.unwrap();
    alice.flush().await.unwrap();
    bob.publish("a.after-update", "x".into()).await.unwrap();
    bob.flush().await.unwrap();
    alice.publish("a.from-alice", "x".into()).await.unwrap();
    alice.flush().await.unwrap();
    assert_eq!(next_subject(&mut after).await, "a.from-alice");
    drop(seen);

    // Users the JWTs refuse: expired, signed by a key the account does not
    // list, from an address outside `src`, WebSocket only. (Last: refused
    // logins slow the address's next logins down, the failure throttle.)
    for user in ["expired", "stranger", "elsewhere", "websocket-only"] {
        assert!(connect(url, &fx.creds(user)).await.is_err(), "{user} must be refused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_resolver_on_nats_server_and_on_warden() {
    let Some(fx) = fixtures("operator-memory") else { return };
    if let Some(nats_server) = common::deps::nats_server_2_9() {
        let port = free_port();
        let _server = spawn_nats_server(&nats_server, "operator-memory-ns", &fx.memory_config(port));
        scenario(&format!("nats://127.0.0.1:{port}"), &fx, false).await;
    }
    let Some(fx) = fixtures("operator-memory-warden") else { return };
    let server = start(options_from(&fx.memory_config(0))).await;
    scenario(&format!("nats://{}", server.local_addr()), &fx, true).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_jwt_expiring_while_connected_is_disconnected() {
    let Some(fx) = fixtures("operator-expiry") else { return };
    let server = start(options_from(&fx.memory_config(0))).await;
    let url = format!("nats://{}", server.local_addr());
    let client = connect(&url, &fx.creds("shortlived")).await.expect("connects before its exp");
    let expired = tokio::time::timeout(WAIT, async {
        while client.connection_state() == State::Connected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(expired.is_ok(), "still connected after its JWT expired");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_resolver_stores_verified_updates_only() {
    let Some(fx) = fixtures("operator-dir") else { return };
    let store = fx.store("operator-dir-store");
    // With the audit trail on: every push is recorded.
    let audit = temp_dir("operator-dir-audit").join("audit.log");
    let config = format!("{}\naudit {{ file: \"{}\" }}", fx.directory_config(0, &store), audit.display());
    let server = start(options_from(&config)).await;
    let url = format!("nats://{}", server.local_addr());
    let sys = connect(&url, &fx.creds("sys")).await.expect("the system user connects");
    let a = fx.account("A");
    let file = store.join(format!("{a}.jwt"));
    let before = std::fs::read_to_string(&file).unwrap();

    // A forged A (signed by an operator nobody trusts) is refused and not
    // stored. (nats-server 2.9.10 answers "jwt updated" and writes it.)
    let reply = within(sys.request("$SYS.REQ.CLAIMS.UPDATE", fx.text("forged_a").into())).await.unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["error"]["code"], 500, "{reply}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    // The real update is stored, applied and looked up.
    let revoked = connect(&url, &fx.creds("revoked")).await.expect("connects before the update");
    let reply = within(sys.request("$SYS.REQ.CLAIMS.UPDATE", fx.text("updated_a").into())).await.unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["data"]["message"], "jwt updated", "{reply}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), fx.text("updated_a"));
    eventually("the revoked user is disconnected", || revoked.connection_state() != State::Connected).await;
    let pushes = || -> Vec<Value> {
        common::json_lines(&audit).into_iter().filter(|r| r["type"] == "account_jwt_update").collect()
    };
    eventually("both pushes on the audit trail", || pushes().len() == 2).await;
    let pushes = pushes();
    assert_eq!((pushes[0]["applied"].as_bool(), pushes[1]["applied"].as_bool()), (Some(false), Some(true)));
    assert_eq!((pushes[1]["account"].as_str(), pushes[1]["result"].as_str()), (Some(a.as_str()), Some("jwt updated")));
    assert_eq!(pushes[1]["by"]["account"], fx.account("SYS"), "{}", pushes[1]);
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(!text.contains(&fx.text("updated_a")), "no JWT on the audit trail");
    let lookup = format!("$SYS.REQ.ACCOUNT.{a}.CLAIMS.LOOKUP");
    let jwt = within(sys.request(lookup, "".into())).await.unwrap();
    assert_eq!(std::str::from_utf8(&jwt.payload).unwrap(), fx.text("updated_a"));
    // Outside the system account, the claims subjects are closed.
    let alice = connect(&url, &fx.creds("alice")).await.unwrap();
    let refused = tokio::time::timeout(
        Duration::from_millis(500),
        alice.request("$SYS.REQ.CLAIMS.UPDATE", fx.text("updated_a").into()),
    )
    .await;
    assert!(!matches!(refused, Ok(Ok(_))), "a claims request from outside the system account was answered");
    server.shutdown().await;

    // After a restart the directory holds the update.
    let server = start(options_from(&fx.directory_config(0, &store))).await;
    let url = format!("nats://{}", server.local_addr());
    assert!(connect(&url, &fx.creds("revoked")).await.is_err(), "the stored revocation survives a restart");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_py_connects_with_creds() {
    let Some(fx) = fixtures("operator-py") else { return };
    let Some(python) = common::deps::python() else { return };
    let server = start(options_from(&fx.memory_config(0))).await;
    let url = format!("nats://{}", server.local_addr());
    const PY: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1], user_credentials=sys.argv[2], allow_reconnect=False)
    sub = await nc.subscribe("a.py")
    await nc.publish("a.py", b"hello")
    msg = await sub.next_msg(timeout=5)
    print(msg.data.decode())
    try:
        await nats.connect(sys.argv[1], user_credentials=sys.argv[3], allow_reconnect=False, max_reconnect_attempts=0)
        print("expired admitted")
    except Exception as e:
        print("expired refused")
    await nc.close()
asyncio.run(main())
"#;
    let (alice, expired) = (fx.creds("alice"), fx.creds("expired"));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg("-c").arg(PY).arg(url).arg(alice).arg(expired).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "hello\nexpired refused", "stderr: {}", String::from_utf8_lossy(&out.stderr));
    // Counted as what it was, for /varz and /metrics.
    let security = &server.broker().security;
    assert_eq!(security.auth_bad_jwt.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(connect(&format!("nats://{}", server.local_addr()), &fx.creds("elsewhere")).await.is_err());
    assert_eq!(security.auth_not_allowed_here.load(std::sync::atomic::Ordering::Relaxed), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn operator_configs_fail_closed_with_positions() {
    let Some(fx) = fixtures("operator-config") else { return };
    let good = fx.memory_config(0);
    let with_accounts = format!("{good}accounts {{ X: {{ users: [{{user: u, password: p}}] }} }}\n");
    let err = warden::config::load_str(&with_accounts, "op.conf").unwrap_err().to_string();
    assert!(err.contains("op.conf:") && err.contains("operators do not allow Accounts"), "{err}");
    let forged =
        good.replace(&fx.json["account_jwts"][fx.account("A")].as_str().unwrap().to_owned(), &fx.text("forged_a"));
    let err = warden::config::load_str(&forged, "op.conf").unwrap_err().to_string();
    assert!(err.contains("not signed by a trusted operator"), "{err}");
    let no_resolver = good.replace("resolver: MEMORY\n", "");
    assert!(warden::config::load_str(&no_resolver, "op.conf").is_err());
    let bad_operator = "operator: eyJub3QiOiJhIGp3dCJ9.e30.AAAA\nresolver: MEMORY\n";
    let err = warden::config::load_str(bad_operator, "op.conf").unwrap_err().to_string();
    assert!(err.contains("op.conf:1:"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_cluster_with_nats_server_shares_jwt_accounts_and_updates_pushed_to_warden() {
    mixed_cluster(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_cluster_with_nats_server_shares_jwt_accounts_and_updates_pushed_to_nats_server() {
    mixed_cluster(false).await;
}

/// warden and nats-server 2.9.10 routed together in operator mode; the
/// account update is pushed to warden or to nats-server.
async fn mixed_cluster(push_to_warden: bool) {
    let Some(fx) = fixtures(&format!("operator-cluster-{push_to_warden}")) else { return };
    let Some(nats_server) = common::deps::nats_server_2_9() else { return };
    let (client_port, route_port) = (free_port(), free_port());
    let ns_config = format!(
        "{}server_name: NS\ncluster {{ name: c1, listen: 127.0.0.1:{route_port} }}\n",
        fx.memory_config(client_port)
    );
    let _ns = spawn_nats_server(&nats_server, &format!("operator-cluster-ns-{push_to_warden}"), &ns_config);
    let ns_url = format!("nats://127.0.0.1:{client_port}");
    let warden_config = format!(
        "{}server_name: W\ncluster {{ name: c1, listen: \"127.0.0.1:0\", routes: [\"nats-route://127.0.0.1:{route_port}\"], insecure_allow_unauthenticated_routes: true }}\n",
        fx.memory_config(0)
    );
    let warden = start(options_from(&warden_config)).await;
    let w_url = format!("nats://{}", warden.local_addr());
    let routes = warden.cluster().unwrap().clone();
    eventually("the route to nats-server", || routes.route_count() == 1).await;

    // A's users on both servers are one account; B's service on nats-server
    // answers A's requests on warden through the activation-token import.
    let alice = connect_retrying(&w_url, &fx.creds("alice")).await;
    let bob = connect_retrying(&ns_url, &fx.creds("bob")).await;
    let mut seen = alice.subscribe("a.>").await.unwrap();
    let first = until_delivered(&mut seen, || async {
        bob.publish("a.across", "x".into()).await.unwrap();
        bob.flush().await.unwrap();
    })
    .await;
    assert_eq!(first, "a.across");
    let service = connect_retrying(&ns_url, &fx.creds("service")).await;
    let mut requests = service.subscribe("svc.>").await.unwrap();
    let responder = service.clone();
    tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            if let Some(reply) = msg.reply {
                let _ = responder.publish(reply, "pong".into()).await;
                let _ = responder.flush().await;
            }
        }
    });
    let answer = within(async {
        loop {
            match tokio::time::timeout(Duration::from_millis(500), alice.request("svc.ping", "ping".into())).await {
                Ok(Ok(answer)) => return answer,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert_eq!(&answer.payload[..], b"pong");

    // An update pushed to one server reaches the other through the route:
    // the revoked user is closed on both.
    let revoked_ns = connect_retrying(&ns_url, &fx.creds("revoked")).await;
    let revoked_w = connect_retrying(&w_url, &fx.creds("revoked")).await;
    let sys = connect_retrying(if push_to_warden { &w_url } else { &ns_url }, &fx.creds("sys")).await;
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", fx.account("A"));
    let reply = within(sys.request(subject, fx.text("updated_a").into())).await.expect("update answered");
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["data"]["code"], 200, "{reply}");
    eventually("revoked is closed on warden", || revoked_w.connection_state() != State::Connected).await;
    eventually("revoked is closed on nats-server", || revoked_ns.connection_state() != State::Connected).await;
    warden.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rereads_the_resolver_directory() {
    let Some(fx) = fixtures("operator-reload") else { return };
    let store = fx.store("operator-reload-store");
    let opts = options_from(&fx.directory_config(0, &store));
    let server = start(opts.clone()).await;
    let url = format!("nats://{}", server.local_addr());
    let revoked = connect(&url, &fx.creds("revoked")).await.expect("connects before the change");
    let alice = connect(&url, &fx.creds("alice")).await.expect("alice connects");
    // The operator replaces A's file (as `nsc` with a shared directory
    // would) and sends SIGHUP: the revocation applies, alice stays.
    std::fs::write(store.join(format!("{}.jwt", fx.account("A"))), fx.text("updated_a")).unwrap();
    server.reload(&opts).expect("reload");
    eventually("the revoked user is disconnected", || revoked.connection_state() != State::Connected).await;
    let mut own = alice.subscribe("a.>").await.unwrap();
    alice.publish("a.still", "x".into()).await.unwrap();
    assert_eq!(next_subject(&mut own).await, "a.still");
    server.shutdown().await;
}

/// A creds file's text for `jwt` and `seed` (the layout `nsc` writes).
fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_account_closes_its_users_and_refuses_new_ones() {
    use warden::nkeys::{KeyPair, KeyType};
    let (operator, account, user) = (
        KeyPair::generate(KeyType::Operator).unwrap(),
        KeyPair::generate(KeyType::Account).unwrap(),
        KeyPair::generate(KeyType::User).unwrap(),
    );
    let op = warden::jwt::sign(
        &operator,
        serde_json::json!({"sub": operator.public().as_str(), "nats": {"type": "operator", "version": 2}}),
    );
    let limits =
        serde_json::json!({"conn": -1, "subs": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true});
    let exp = warden::jwt::now() + 2;
    let acc = warden::jwt::sign(
        &operator,
        serde_json::json!({"sub": account.public().as_str(), "exp": exp, "nats": {"type": "account", "version": 2, "limits": limits}}),
    );
    let token = warden::jwt::sign(
        &account,
        serde_json::json!({"sub": user.public().as_str(), "nats": {"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1}}),
    );
    let config =
        format!("operator: {op}\nresolver: MEMORY\nresolver_preload {{ {}: {acc} }}\n", account.public().as_str());
    let server = start(options_from(&config)).await;
    let url = format!("nats://{}", server.local_addr());
    let text = creds(&token, user.seed().expose());
    let login = || async {
        async_nats::ConnectOptions::with_credentials(&text).unwrap().max_reconnects(Some(1)).connect(&url).await
    };
    let client = within(login()).await.expect("connects before the account expires");
    eventually("the account's user is closed at its expiry", || client.connection_state() != State::Connected).await;
    // A JWT is valid through the second of its `exp` (the Go library's
    // rule); past it, the account refuses logins.
    eventually("the account's exp has passed", || warden::jwt::now() > exp).await;
    assert!(within(login()).await.is_err(), "a new login to an expired account is refused");
    server.shutdown().await;
}

/// `websocket { jwt_cookie }`: a browser that cannot put a JWT in CONNECT
/// logs in with the one its cookie carries (a bearer user here, so no
/// nonce signature is needed); without the cookie it is refused, and so is
/// a page of another origin carrying it (the origin rule `jwt_cookie` needs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_logs_in_with_the_user_jwt_of_its_cookie() {
    let Some(fx) = fixtures("op-ws-cookie") else { return };
    let config = format!(
        "{}websocket {{ listen: \"127.0.0.1:0\", no_tls: true, jwt_cookie: \"jwt\", allowed_origins: [\"http://app.example\"] }}\n",
        fx.memory_config(0)
    );
    let server = start(options_from(&config)).await;
    let addr = server.websocket_addr().unwrap();
    let creds = std::fs::read_to_string(fx.creds("bearer")).unwrap();
    let jwt = warden::jwt::undecorate(&creds).to_owned();
    let login = b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n";
    let cookie = format!("Cookie: theme=dark; jwt={jwt}\r\n");
    let (mut ws, _) = common::ws::RawWs::open(addr, &format!("Origin: http://app.example\r\n{cookie}")).await;
    ws.until("INFO ").await;
    ws.frame(0x82, login).await;
    assert!(ws.until("PONG").await.contains("PONG"), "logged in with the cookie's JWT");
    let key = common::ws::KEY;
    let foreign = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n{cookie}\r\n");
    let (_, head) = common::ws::RawWs::request(addr, &foreign).await;
    assert!(head.starts_with("HTTP/1.1 403"), "a foreign page's WebSocket, cookie and all, is refused: {head}");
    let (mut ws, _) = common::ws::RawWs::open(addr, "Origin: http://app.example\r\n").await;
    ws.until("INFO ").await;
    ws.frame(0x82, login).await;
    assert!(ws.until("Authorization Violation").await.contains("-ERR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_sys_flood_cannot_make_the_operators_revocations_get_lost() {
    let Some(fx) = fixtures("operator-revocation-flood") else { return };
    let server = start(options_from(&fx.memory_config(0))).await;
    let url = format!("nats://{}", server.local_addr());
    let users: Vec<async_nats::Client> = {
        let mut users = Vec::new();
        for i in 0..20 {
            users.push(connect_retrying(&url, &fx.creds(&format!("flood{i}"))).await);
        }
        users
    };
    // A tenant (B's user) pipelines STATZ requests from three connections.
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut floods = Vec::new();
    for _ in 0..3 {
        let tenant = connect_retrying(&url, &fx.creds("service")).await;
        let flooding = flooding.clone();
        floods.push(tokio::spawn(async move {
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..200 {
                    let _ = tenant.publish_with_reply("$SYS.REQ.ACCOUNT.PING.STATZ", "_INBOX.flood", "".into()).await;
                }
                let _ = tenant.flush().await;
                // Still far past the old shared queue (1,024) every second,
                // without starving this binary's other tests of CPU.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sys = connect_retrying(&url, &fx.creds("sys")).await;
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", fx.account("A"));
    let series = fx.json["revoke_series"].as_array().unwrap().clone();
    let mut slowest = Duration::ZERO;
    for (i, update) in series.iter().enumerate() {
        let pushed = std::time::Instant::now();
        let reply = within(sys.request(subject.clone(), update.as_str().unwrap().to_owned().into())).await;
        let reply: Value = serde_json::from_slice(&reply.expect("every push answered").payload).unwrap();
        assert_eq!(reply["data"]["code"], 200, "push {i}: {reply}");
        assert_eq!(reply["data"]["message"], "jwt updated", "push {i}: {reply}");
        let revoked = &users[i];
        while revoked.connection_state() == State::Connected {
            assert!(pushed.elapsed() < Duration::from_millis(500), "flood{i} still connected 0.5 s after its push");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        slowest = slowest.max(pushed.elapsed());
    }
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    for flood in floods {
        within(flood).await.unwrap();
    }
    eprintln!("20 of 20 revocations applied during the flood; slowest disconnect {slowest:?} after its push");
    server.shutdown().await;
}

/// A subscriber on `to` that gets what `from` publishes on `subject`, once
/// interest crossed the leaf connection.
async fn crosses(from: &async_nats::Client, to: &async_nats::Client, subject: &str) {
    let mut sub = to.subscribe(subject.to_owned()).await.unwrap();
    to.flush().await.unwrap();
    within(async {
        loop {
            from.publish(subject.to_owned(), "over the leaf".into()).await.unwrap();
            from.flush().await.unwrap();
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                assert_eq!(&msg.payload[..], b"over the leaf");
                return;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_logs_in_with_a_creds_file_both_ways_with_nats_server_2_9_and_2_15() {
    for (version, binary) in [("2.9.10", common::deps::nats_server_2_9()), ("2.15.1", common::deps::nats_server_2_15())]
    {
        let Some(binary) = binary else { continue };
        let Some(fx) = fixtures(&format!("operator-leaf-{version}")) else { return };
        creds_both_ways(&binary, &fx).await;
    }
}

/// A warden leaf of an operator-mode `binary` hub with alice's `.creds`,
/// then a `binary` leaf of an operator-mode warden hub with the same.
async fn creds_both_ways(binary: &Path, fx: &Fixtures) {
    let alice = fx.creds("alice");
    let (hub_port, hub_leaf) = (free_port(), free_port());
    let _hub = spawn_nats_server(
        binary,
        "operator-leaf-hub",
        &format!("{}leafnodes {{ listen: 127.0.0.1:{hub_leaf} }}\n", fx.memory_config(hub_port)),
    );
    let leaf = start(options_from(&format!(
        "leafnodes {{ remotes = [ {{ url: \"nats-leaf://127.0.0.1:{hub_leaf}\", credentials: {:?} }} ] }}\n",
        alice.display().to_string()
    )))
    .await;
    let on_hub = connect_retrying(&format!("nats://127.0.0.1:{hub_port}"), &fx.creds("bob")).await;
    let on_leaf = within(async_nats::connect(common::url(&leaf))).await.unwrap();
    crosses(&on_hub, &on_leaf, "a.down").await;
    crosses(&on_leaf, &on_hub, "a.up").await;
    leaf.shutdown().await;

    let hub = start(options_from(&format!("{}leafnodes {{ listen: \"127.0.0.1:0\" }}\n", fx.memory_config(0)))).await;
    let warden_leaf = hub.leafnode_addr().unwrap();
    let leaf_port = free_port();
    let _leaf = spawn_nats_server(
        binary,
        "operator-leaf-spoke",
        &format!(
            "listen: 127.0.0.1:{leaf_port}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://{warden_leaf}\", credentials: {:?} }} ] }}\n",
            alice.display().to_string()
        ),
    );
    let on_hub = connect_retrying(&common::url(&hub), &fx.creds("bob")).await;
    let on_leaf = within(async {
        loop {
            if let Ok(client) = async_nats::connect(format!("nats://127.0.0.1:{leaf_port}")).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    crosses(&on_hub, &on_leaf, "a.down").await;
    crosses(&on_leaf, &on_hub, "a.up").await;
    hub.shutdown().await;
}

/// `warden check` in operator mode names the preloaded accounts by the
/// names their JWTs (made by the official Go jwt library) give them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_check_names_preloaded_accounts() {
    let Some(fx) = fixtures("operator-check") else { return };
    let conf = fx.dir.join("check.conf");
    std::fs::write(&conf, fx.memory_config(4222)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden")).args(["check", "--config"]).arg(&conf).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    for name in ["SYS", "A", "B"] {
        let line = format!("account \"{name}\" {} (preloaded)", fx.account(name));
        assert!(said.contains(&line), "{line} in:\n{said}");
    }
}

/// warden's rate limit tags on a user JWT written by the official Go
/// library: the user is held to 500 messages a second, losing nothing; a
/// tag that cannot be read refuses the login (fails closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_jwts_rate_tags_hold_it_to_its_rate() {
    let Some(fx) = fixtures("operator-rate") else { return };
    let server = start(options_from(&fx.memory_config(0))).await;
    let url = format!("nats://{}", server.local_addr());
    assert!(connect(&url, &fx.creds("mistagged")).await.is_err(), "an unreadable warden tag refuses the login");
    let limited = connect(&url, &fx.creds("limited")).await.expect("limited connects");
    let watcher = connect(&url, &fx.creds("alice")).await.expect("alice connects");
    let mut sub = watcher.subscribe("a.rate").await.unwrap();
    // A round trip on the same connection: the server has the SUB after it.
    let inbox = watcher.new_inbox();
    let mut probe = watcher.subscribe(inbox.clone()).await.unwrap();
    watcher.publish(inbox, "probe".into()).await.unwrap();
    within(probe.next()).await.expect("the probe comes back");
    let start = tokio::time::Instant::now();
    let publisher = tokio::spawn(async move {
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(3) {
            limited.publish("a.rate", bytes::Bytes::from_static(&[b'x'; 8192])).await.unwrap();
            sent += 1;
        }
        limited.flush().await.unwrap();
        sent
    });
    let (mut in_window, mut all) = (0u64, 0u64);
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        all += 1;
        if (Duration::from_secs(1)..Duration::from_secs(3)).contains(&start.elapsed()) {
            in_window += 1;
        }
    }
    let sent = within(publisher).await.unwrap();
    assert_eq!(all, sent, "every message arrived");
    assert!((900..=1_100).contains(&in_window), "{in_window} in 2 s at 500 a second");
    server.shutdown().await;
}

/// `warden-rate-exceeded:close` with `warden-close-after:2s` on a user JWT:
/// a publisher that stays over its rate is closed after about 2 s, as the
/// config's `rate_exceeded: close`; another user goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_jwts_rate_exceeded_close_tag_cuts_a_flooder() {
    let Some(fx) = fixtures("operator-rate-close") else { return };
    let server = start(options_from(&fx.memory_config(0))).await;
    let url = format!("nats://{}", server.local_addr());
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    let closed_tx = std::sync::Mutex::new(Some(closed_tx));
    let cutoff = async_nats::ConnectOptions::with_credentials_file(fx.creds("cutoff"))
        .await
        .unwrap()
        .max_reconnects(Some(1))
        .event_callback(move |event| {
            let tx = closed_tx.lock().unwrap().take_if(|_| matches!(event, async_nats::Event::Disconnected));
            async move {
                if let Some(tx) = tx {
                    let _ = tx.send(());
                }
            }
        })
        .connect(&url)
        .await
        .expect("cutoff connects");
    let start = tokio::time::Instant::now();
    let flood = tokio::spawn(async move {
        while start.elapsed() < Duration::from_secs(10) {
            if cutoff.publish("a.cut", bytes::Bytes::from_static(b"x")).await.is_err() {
                break;
            }
        }
    });
    within(closed_rx).await.expect("the flooder is closed");
    let after = start.elapsed();
    assert!((Duration::from_secs(2)..Duration::from_secs(6)).contains(&after), "closed after {after:?}");
    flood.abort();
    let alice = connect(&url, &fx.creds("alice")).await.expect("alice connects");
    let mut sub = alice.subscribe("a.still").await.unwrap();
    alice.publish("a.still", "here".into()).await.unwrap();
    within(sub.next()).await.expect("the neighbour goes on");
    server.shutdown().await;
}

/// Pushes an account JWT through `$SYS.REQ.CLAIMS.UPDATE`; the reply.
async fn push(sys: &async_nats::Client, token: String) -> Value {
    let reply = within(sys.request("$SYS.REQ.CLAIMS.UPDATE", token.into())).await.unwrap();
    serde_json::from_slice(&reply.payload).unwrap()
}

/// An account JWT's `mappings` claim (written by the official Go library)
/// applies as a config account's `mappings {}` does: a transform function,
/// weights, a cluster-scoped entry. A pushed update replaces them; an
/// invalid one is refused with the answer nats-server 2.15.1 gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_jwt_mappings_apply_and_are_replaced_by_updates() {
    let Some(fx) = fixtures("operator-mappings") else { return };
    let store = fx.store("operator-mappings-store");
    let server = start(options_from(&fx.directory_config(0, &store))).await;
    let url = format!("nats://{}", server.local_addr());
    let sys = connect(&url, &fx.creds("sys")).await.expect("the system user connects");
    let mapper = connect(&url, &fx.creds("mapper")).await.expect("M's user connects");
    let mut seen = mapper.subscribe("m.>").await.unwrap();
    assert_eq!(
        until_delivered(&mut seen, || async { mapper.publish("m.in.x", "".into()).await.unwrap() }).await,
        "m.out.x"
    );
    mapper.publish("m.scoped", "".into()).await.unwrap();
    assert_eq!(next_subject(&mut seen).await, "m.anywhere", "not in cluster east: the unscoped entry");
    let (mut left, mut right) = (0, 0);
    for _ in 0..200 {
        mapper.publish("m.split", "".into()).await.unwrap();
        match next_subject(&mut seen).await.as_str() {
            "m.left" => left += 1,
            "m.right" => right += 1,
            other => panic!("m.split became {other}"),
        }
    }
    // Binomial(200, 0.5): 5 standard deviations is about 35.
    assert!((65..=135).contains(&left) && left + right == 200, "{left} left, {right} right");

    // Invalid mappings are refused whole, as nats-server 2.15.1 refuses
    // them (the same answer), and change nothing.
    let bad = push(&sys, fx.text("bad_m")).await;
    assert_eq!(bad["error"]["code"], 500, "{bad}");
    let said = bad["error"]["description"].as_str().unwrap().to_owned();
    assert!(said.starts_with("jwt validation failed - validation errors: [Mapping \"m.in.*\" exceeds 100%"), "{said}");
    if let Some(binary) = common::deps::nats_server_2_15() {
        let port = free_port();
        let ns_store = fx.store("operator-mappings-ns-store");
        let _ns = spawn_nats_server(&binary, "operator-mappings-ns", &fx.directory_config(port, &ns_store));
        let ns_url = format!("nats://127.0.0.1:{port}");
        let ns_sys = connect_retrying(&ns_url, &fx.creds("sys")).await;
        let ns_bad = push(&ns_sys, fx.text("bad_m")).await;
        assert_eq!(ns_bad["error"]["description"].as_str().unwrap(), said, "warden {bad}, nats-server {ns_bad}");
    }
    // The Go library lets an unknown function through; no server can
    // apply it (nats-server loads the account without the mapping).
    let bad_fn = push(&sys, fx.text("bad_fn_m")).await;
    assert_eq!(bad_fn["error"]["code"], 500, "{bad_fn}");
    assert!(bad_fn["error"]["description"].as_str().unwrap().contains("unknown function"), "{bad_fn}");
    mapper.publish("m.in.y", "".into()).await.unwrap();
    assert_eq!(next_subject(&mut seen).await, "m.out.y", "the refused pushes changed nothing");

    // The update replaces the mappings: m.in.* moves, m.split is gone.
    let updated = push(&sys, fx.text("updated_m")).await;
    assert_eq!(updated["data"]["message"], "jwt updated", "{updated}");
    within(async {
        loop {
            mapper.publish("m.in.z", "".into()).await.unwrap();
            match next_subject(&mut seen).await.as_str() {
                "m.moved.z" => break,
                before => assert_eq!(before, "m.out.z"),
            }
        }
    })
    .await;
    mapper.publish("m.split", "".into()).await.unwrap();
    assert_eq!(next_subject(&mut seen).await, "m.split", "a mapping the update left out is gone");
    server.shutdown().await;
}
