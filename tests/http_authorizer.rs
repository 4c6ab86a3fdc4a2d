//! warden's HTTP authorizer end to end: a local HTTPS authorizer (a hyper
//! server with a certificate from a test CA) decides logins of stock raw
//! protocol clients; what it grants is enforced, what it refuses stays out,
//! and a certificate warden cannot verify, a slow or broken authorizer, or
//! a bad nkey signature refuse, while configured users still get in.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{options_from, start, temp_dir, Raw};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use warden::nkeys::{KeyPair, KeyType};
use warden::tls::Ca;

/// What the authorizer was asked: (the document, its Authorization header).
type Asked = Arc<Mutex<Vec<(Value, Option<String>)>>>;

/// The test authorizer's decision for one document.
async fn decide(doc: &Value, bearer: Option<&str>) -> (u16, String) {
    if bearer != Some("Bearer test-secret") {
        return (401, "{}".into());
    }
    if let Some(nkey) = doc["nkey"].as_str() {
        return (200, json!({ "allow": true, "account": "APP", "user": nkey }).to_string());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let answer = match (doc["user"].as_str(), doc["password"].as_str()) {
        (Some("alice"), Some("secret")) => json!({
            "allow": true, "account": "APP", "user": "Alice",
            "permissions": { "publish": { "allow": ["app.>"], "deny": ["app.secret"] }, "subscribe": ["app.>"] },
        }),
        (Some("short"), _) => json!({ "allow": true, "account": "APP", "expires": now + 2 }),
        (Some("denied"), _) => json!({ "allow": false, "reason": "not today" }),
        (Some("elsewhere"), _) => json!({ "allow": true, "account": "NOPE" }),
        // `user.get("permissions", {})`: would grant everything if read as no rules.
        (Some("emptyhanded"), _) => json!({ "allow": true, "account": "APP", "permissions": {} }),
        (Some("halfopen"), _) => json!({ "allow": true, "account": "APP", "permissions": { "publish": {} } }),
        (Some("broken"), _) => return (500, "oops".into()),
        (Some("garbage"), _) => return (200, "not json".into()),
        (Some("slow"), _) => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json!({ "allow": true, "account": "APP" })
        }
        _ => json!({ "allow": false }),
    };
    (200, answer.to_string())
}

/// Serves the test authorizer over HTTPS with `cert`; returns its address.
async fn authorizer(cert: &warden::tls::Issued, asked: Asked) -> SocketAddr {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes()).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, asked) = (acceptor.clone(), asked.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let asked = asked.clone();
                    async move {
                        let bearer =
                            request.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                        let body = request.into_body().collect().await?.to_bytes();
                        let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let (status, answer) = decide(&doc, bearer.as_deref()).await;
                        asked.lock().push((doc, bearer));
                        let mut response = hyper::Response::new(Full::new(Bytes::from(answer)));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    addr
}

fn config(port: u16, ca: &Path) -> String {
    format!(
        "accounts {{ APP {{}} }}\n\
         authorization {{\n  timeout: 2\n  failure_delay_max: \"0s\"\n  users: [ {{user: local, password: lpw}} ]\n\
         http_authorizer {{ url: \"https://127.0.0.1:{port}/authorize\", ca_file: \"{}\", timeout: \"1s\", reveal_reason: true,\n\
         headers {{ Authorization: \"Bearer test-secret\" }} }}\n}}\n",
        ca.display()
    )
}

/// The first line after CONNECT + PING that is not a PING.
async fn login_answer(addr: SocketAddr, connect: Value) -> (String, Raw) {
    let (mut raw, _) = Raw::connect(addr).await;
    raw.send(format!("CONNECT {connect}\r\nPING\r\n")).await;
    (raw.next_non_ping().await, raw)
}

fn password(user: &str, pass: &str) -> Value {
    json!({ "verbose": false, "pedantic": false, "headers": true, "protocol": 1, "user": user, "pass": pass, "lang": "raw" })
}

async fn logs_in(addr: SocketAddr, user: &str, pass: &str) -> Raw {
    let (answer, raw) = login_answer(addr, password(user, pass)).await;
    assert_eq!(answer, "PONG", "{user} logs in");
    raw
}

async fn refused(addr: SocketAddr, user: &str, pass: &str) -> String {
    let (answer, _) = login_answer(addr, password(user, pass)).await;
    assert!(answer.starts_with("-ERR 'Authorization Violation"), "{user}: {answer}");
    answer
}

fn ca_files(name: &str) -> (Ca, std::path::PathBuf) {
    let ca = Ca::new("authorizer test CA").unwrap();
    let path = temp_dir(name).join("ca.pem");
    std::fs::write(&path, ca.issued().cert_pem).unwrap();
    (ca, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_authorizer_decides_unknown_clients_and_what_it_grants_is_enforced() {
    let (ca, ca_path) = ca_files("authz-ok");
    let asked: Asked = Arc::default();
    let at = authorizer(&ca.issue_server(&["127.0.0.1".into()]).unwrap(), asked.clone()).await;
    let server = start(options_from(&config(at.port(), &ca_path))).await;
    let addr = server.local_addr();

    let mut alice = logs_in(addr, "alice", "secret").await;
    alice.send("SUB app.news 1\r\nPUB app.news 2\r\nhi\r\n").await;
    alice.expect("MSG app.news 1 2").await;
    alice.payload(2).await;
    alice.send("PUB app.secret 0\r\n\r\n").await;
    alice.expect("-ERR 'Permissions Violation for Publish to \"app.secret\"'").await;
    alice.send("SUB other 2\r\n").await;
    alice.expect("-ERR 'Permissions Violation for Subscription to \"other\"'").await;
    let (doc, bearer) = asked.lock().iter().find(|(d, _)| d["user"] == "alice").cloned().expect("asked about alice");
    assert_eq!(bearer.as_deref(), Some("Bearer test-secret"), "the configured header is sent");
    assert_eq!(doc["password"], "secret");
    assert_eq!(doc["server"]["id"], server.broker().identity.id.as_str());
    assert_eq!(doc["client"]["host"], "127.0.0.1");
    assert_eq!(doc["client"]["lang"], "raw");
    assert_eq!((&doc["client"]["kind"], &doc["client"]["type"]), (&json!("Client"), &json!("nats")));

    // The reason, because reveal_reason; and every bad answer refuses.
    assert_eq!(refused(addr, "denied", "x").await, "-ERR 'Authorization Violation: not today'");
    for user in ["nobody", "broken", "garbage", "elsewhere", "emptyhanded", "halfopen"] {
        assert_eq!(refused(addr, user, "x").await, "-ERR 'Authorization Violation'", "{user}");
    }
    let started = Instant::now();
    refused(addr, "slow", "x").await;
    assert!(started.elapsed() < Duration::from_millis(1900), "the 1 s timeout held: {:?}", started.elapsed());

    // Configured users never reach the authorizer.
    drop(logs_in(addr, "local", "lpw").await);
    refused(addr, "local", "wrong").await;
    assert!(!asked.lock().iter().any(|(d, _)| d["user"] == "local"));

    // An nkey is sent only once its signature of the nonce checks out.
    let key = KeyPair::generate(KeyType::User).unwrap();
    let (mut raw, info) = Raw::connect(addr).await;
    let info: Value = serde_json::from_str(info.trim_start_matches("INFO ")).unwrap();
    let nonce = info["nonce"].as_str().expect("a nonce to sign").to_owned();
    let sig = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, key.sign(nonce.as_bytes()));
    let connect = json!({ "verbose": false, "protocol": 1, "nkey": key.public().as_str(), "sig": sig });
    raw.send(format!("CONNECT {connect}\r\nPING\r\n")).await;
    raw.expect("PONG").await;
    let forged = json!({ "verbose": false, "protocol": 1, "nkey": key.public().as_str(), "sig": sig });
    let (answer, _) = login_answer(addr, forged).await;
    assert_eq!(answer, "-ERR 'Authorization Violation'", "a signature of another nonce");
    let asked_nkey = asked.lock().iter().filter(|(d, _)| d["nkey"] == key.public().as_str()).count();
    assert_eq!(asked_nkey, 1, "only the proven key was sent");

    // An expiry closes the connection then.
    let mut short = logs_in(addr, "short", "x").await;
    let closed = short.expect_closed().await;
    assert!(closed.contains("User Authentication Expired"), "{closed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_whose_certificate_does_not_verify_is_never_told_a_password() {
    let (_, ca_path) = ca_files("authz-trust");
    let other = Ca::new("someone else's CA").unwrap();
    let asked: Asked = Arc::default();
    let at = authorizer(&other.issue_server(&["127.0.0.1".into()]).unwrap(), asked.clone()).await;
    let server = start(options_from(&config(at.port(), &ca_path))).await;
    let addr = server.local_addr();
    refused(addr, "alice", "secret").await;
    assert!(asked.lock().is_empty(), "the TLS handshake failed before any request");
    drop(logs_in(addr, "local", "lpw").await);
    let unavailable = server.broker().security.auth_service_unavailable.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(unavailable, 1);
}

#[test]
fn plain_http_is_refused_but_to_loopback_and_errors_name_their_place() {
    let load = |text: &str| warden::config::load_str(text, "t.conf").map(|_| ()).map_err(|e| e.to_string());
    let block = |inner: &str| format!("authorization {{\n  http_authorizer {{ {inner} }}\n}}\n");
    assert!(load(&block("url: \"http://127.0.0.1:8080/a\"")).is_ok());
    let err = load(&block("url: \"http://10.1.2.3/a\"")).unwrap_err();
    assert!(err.contains("t.conf:2:") && err.contains("must be https://"), "{err}");
    let err = load(&block("url: \"https://a.example/\", verify: false")).unwrap_err();
    assert!(err.contains("t.conf:2:") && err.contains("verify"), "{err}");
    let err = load(&block("url: \"http://127.0.0.1/\", ca_file: \"x.pem\"")).unwrap_err();
    assert!(err.contains("ca_file is for an https"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_is_told_the_clients_certificate_names() {
    let (ca, ca_path) = ca_files("authz-mtls");
    let dir = ca_path.parent().unwrap().to_path_buf();
    let save = |file: &str, issued: warden::tls::Issued| {
        std::fs::write(dir.join(format!("{file}.pem")), issued.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{file}-key.pem")), issued.key_pem).unwrap();
    };
    save("server", ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap());
    save("client", ca.issue_client("sensor-1").unwrap());
    let asked: Asked = Arc::default();
    let at = authorizer(&ca.issue_server(&["127.0.0.1".into()]).unwrap(), asked.clone()).await;
    let tls = format!(
        "tls {{ cert_file: \"{0}/server.pem\", key_file: \"{0}/server-key.pem\", ca_file: \"{0}/ca.pem\", verify: true }}\n",
        dir.display()
    );
    let server = start(options_from(&format!("{tls}{}", config(at.port(), &ca_path)))).await;
    let client = async_nats::ConnectOptions::with_user_and_password("alice".into(), "secret".into())
        .add_root_certificates(dir.join("ca.pem"))
        .add_client_certificate(dir.join("client.pem"), dir.join("client-key.pem"))
        .require_tls(true)
        .connect(format!("tls://localhost:{}", server.local_addr().port()))
        .await
        .expect("alice connects over mutual TLS");
    client.flush().await.unwrap();
    let (doc, _) = asked.lock().first().cloned().expect("the authorizer was asked");
    let tls = &doc["client"]["tls"];
    assert_eq!(tls["version"], "1.3");
    assert!(tls["subject"].as_str().unwrap().contains("CN=sensor-1"), "{tls}");
    assert!(tls["emails"].is_array() && tls["dns"].is_array(), "{tls}");
}

/// A stock nats-server 2.15.1 leaf logs in through the authorizer like a
/// client (the leaf port has no `authorization` block of its own): the
/// authorizer is told it is a leaf node, the leaf is bound to the account
/// it names, and what it grants holds on what the leaf sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_leaf_logs_in_through_the_authorizer_and_its_grant_holds() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    let (ca, ca_path) = ca_files("authz-leaf");
    let asked: Asked = Arc::default();
    let at = authorizer(&ca.issue_server(&["127.0.0.1".into()]).unwrap(), asked.clone()).await;
    let hub = start(options_from(&format!(
        "{}leafnodes {{ listen: \"127.0.0.1:0\" }}\n",
        config(at.port(), &ca_path)
            .replace("accounts { APP {} }", "accounts { APP { users: [ {user: app, password: apw} ] } }")
    )))
    .await;
    let leaf_addr = hub.leafnode_addr().unwrap();
    let port = common::peers::free_port();
    let _leaf = common::peers::spawn_nats_server(
        &binary,
        "authz-leaf",
        &format!("listen: 127.0.0.1:{port}\nleafnodes {{ remotes = [ {{ url: \"nats-leaf://alice:secret@{leaf_addr}\" }} ] }}\n"),
    );
    let leafs = hub.leaf_hub().unwrap().clone();
    common::peers::eventually("alice's leaf", || leafs.leafs().len() == 1).await;
    assert_eq!(&*leafs.leafs()[0].account, "APP", "bound to the account the authorizer named");
    let (doc, _) = asked.lock().iter().find(|(d, _)| d["user"] == "alice").cloned().expect("asked about alice");
    assert_eq!((&doc["client"]["kind"], &doc["client"]["type"]), (&json!("Leafnode"), &json!("")));

    // An APP client of the hub hears what alice may publish, not the rest.
    let on_hub = common::peers::login_retrying(&common::url(&hub), "app", "apw").await;
    let mut news = on_hub.subscribe("app.>").await.unwrap();
    on_hub.flush().await.unwrap();
    let on_leaf = async_nats::connect(format!("nats://127.0.0.1:{port}")).await.unwrap();
    common::within(async {
        loop {
            on_leaf.publish("app.secret", "no".into()).await.unwrap();
            on_leaf.publish("app.news", "yes".into()).await.unwrap();
            on_leaf.flush().await.unwrap();
            if let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(100), futures::StreamExt::next(&mut news)).await
            {
                assert_eq!(m.subject.as_str(), "app.news", "app.secret is denied to alice's leaf");
                break;
            }
        }
    })
    .await;
    hub.shutdown().await;
}
