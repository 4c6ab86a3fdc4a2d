//! The audit trail (issue 33), end to end on the `warden` binary with
//! real clients: a scripted scenario (logins, a refused login, permission
//! denials past their budget, a KICK, a SIGHUP reload, a refused `$SYS`
//! RELOAD, a certificate rotation, lame duck and shutdown) leaves an audit
//! file whose every line parses as JSON and holds each record, with no
//! secret in it; the same records are published on `$SYS.AUDIT.>`.

mod common;

use std::path::Path;

use common::binary::{exit_status, serve_file, signal};
use common::peers::{eventually, free_port};
use common::*;
use futures::StreamExt;
use serde_json::Value;
use warden::tls::Ca;

/// Every record of the audit file so far; each complete line must parse.
fn records(path: &Path) -> Vec<Value> {
    json_lines(path)
}

/// Waits (bounded) for a record that `matches`, and returns it.
async fn record(path: &Path, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    eventually(what, || records(path).iter().any(&matches)).await;
    records(path).into_iter().find(|r| matches(r)).unwrap()
}

/// Sends PING and reads past the `-ERR`s before its PONG.
async fn until_pong(raw: &mut Raw) {
    raw.send("PING\r\n").await;
    while raw.line().await != "PONG" {}
}

async fn login(url: &str, user: &str, pass: &str) -> async_nats::Client {
    within(async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).connect(url)).await.unwrap()
}

async fn ask(client: &async_nats::Client, subject: &str, body: &str) -> Value {
    let reply = within(client.request(subject.to_owned(), body.to_owned().into())).await.unwrap();
    serde_json::from_slice(&reply.payload).unwrap()
}

const USERS: &str = r#"
system_account: SYS
accounts {
  SYS { users = [
    {user: admin, password: "admin-pass-1234",
     permissions: { publish: ["$SYS.REQ.SERVER.*.KICK", "$SYS.REQ.SERVER.*.RELOAD"], subscribe: ["_INBOX.>"] }},
    {user: auditor, password: "auditor-pass-1234"}
  ] }
  APP { users = [
    {user: alice, password: "alice-pass-1234", permissions: { publish: "orders.>", subscribe: ["orders.>", "_INBOX.>"] }}
  ] }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_scenario_leaves_every_record_in_the_audit_file() {
    let dir = temp_dir("audit-scenario");
    let audit = dir.join("audit.log");
    let ca = Ca::new("audit CA").unwrap();
    let first = ca.issue_server(&["localhost".into()]).unwrap();
    std::fs::write(dir.join("ws.pem"), &first.cert_pem).unwrap();
    std::fs::write(dir.join("ws-key.pem"), &first.key_pem).unwrap();
    let http = free_port();
    let head = format!(
        "listen: 127.0.0.1:0\nhttp: \"127.0.0.1:{http}\"\ntls_watch_interval: \"50ms\"\n\
         lame_duck_grace_period: \"100ms\"\n\
         websocket {{ listen: \"127.0.0.1:0\", tls {{ cert_file: \"{0}/ws.pem\", key_file: \"{0}/ws-key.pem\" }} }}\n\
         audit {{ file: \"{1}\", publish: true, denials_per_second: 3 }}\n",
        dir.display(),
        audit.display()
    );
    let conf = dir.join("warden.conf");
    std::fs::write(&conf, format!("{head}{USERS}")).unwrap();
    let (mut serving, addr) = serve_file(&conf).await;
    let url = format!("nats://{addr}");
    let started = record(&audit, "the started record", |r| r["type"] == "started").await;
    let id = started["server_id"].as_str().unwrap().to_owned();

    // The records are published too.
    let auditor = login(&url, "auditor", "auditor-pass-1234").await;
    let mut published = auditor.subscribe("$SYS.AUDIT.>").await.unwrap();
    auditor.flush().await.unwrap();

    // A login, and a refused one.
    let alice = login(&url, "alice", "alice-pass-1234").await;
    let refused = async_nats::ConnectOptions::with_user_and_password("alice".into(), "wrong-guess".into())
        .max_reconnects(Some(0))
        .connect(url.clone());
    assert!(within(refused).await.is_err());
    let logged = record(&audit, "alice's login", |r| r["type"] == "login" && r["conn"]["user"] == "alice").await;
    assert_eq!(logged["conn"]["account"], "APP");
    assert_eq!(logged["method"], "password");
    assert_eq!(logged["conn"]["kind"], "client");
    assert!(logged["conn"]["addr"].as_str().unwrap().starts_with("127.0.0.1:"), "{logged}");
    assert_eq!(logged["server_id"], id.as_str());
    let cid = logged["conn"]["cid"].as_u64().unwrap();
    let refusal = record(&audit, "the refused login", |r| r["type"] == "login_refused").await;
    assert_eq!(
        (refusal["conn"]["user"].as_str(), refusal["reason"].as_str()),
        (Some("alice"), Some("bad credentials"))
    );
    let first_published = within(async {
        loop {
            let msg = published.next().await.unwrap();
            let body: Value = serde_json::from_slice(&msg.payload).unwrap();
            if body["type"] == "login" && body["conn"]["user"] == "alice" {
                return (msg.subject.to_string(), body);
            }
        }
    })
    .await;
    assert_eq!(first_published.0, format!("$SYS.AUDIT.{id}.LOGIN"));

    // Ten denials in one burst: three recorded, seven counted.
    for _ in 0..10 {
        alice.publish("payroll.raise", "x".into()).await.unwrap();
    }
    alice.flush().await.unwrap();
    let summary = record(&audit, "the denials summary", |r| r["type"] == "permission_denials_suppressed").await;
    assert_eq!(summary["count"], 7, "{summary}");
    assert_eq!(summary["users"], serde_json::json!(["alice"]));
    assert_eq!(summary["addr"], "127.0.0.1");
    let denials: Vec<Value> = records(&audit).into_iter().filter(|r| r["type"] == "permission_denied").collect();
    assert_eq!(denials.len(), 3);
    assert_eq!(
        (denials[0]["direction"].as_str(), denials[0]["subject"].as_str()),
        (Some("publish"), Some("payroll.raise"))
    );

    // An admin kicks alice.
    let admin = login(&url, "admin", "admin-pass-1234").await;
    let kicked = ask(&admin, &format!("$SYS.REQ.SERVER.{id}.KICK"), &format!(r#"{{"cid":{cid}}}"#)).await;
    assert!(kicked.get("error").is_none(), "{kicked}");
    let kick = record(&audit, "the kick", |r| r["type"] == "kick").await;
    assert_eq!((kick["by"]["user"].as_str(), kick["by"]["account"].as_str()), (Some("admin"), Some("SYS")));
    assert_eq!(kick["target"]["cid"], cid);
    drop(alice);

    // A SIGHUP reload: a user added, alice's permissions changed.
    let changed = USERS
        .replace("publish: \"orders.>\"", "publish: [\"orders.>\", \"invoices.>\"]")
        .replace("APP { users = [", "APP { users = [\n    {user: bob, password: \"bob-pass-1234\"},");
    std::fs::write(&conf, format!("{head}{changed}")).unwrap();
    signal(&serving.0, "-HUP");
    let reload = record(&audit, "the SIGHUP reload", |r| r["type"] == "reload").await;
    assert_eq!((reload["by"].as_str(), reload["applied"].as_bool()), (Some("signal"), Some(true)), "{reload}");
    let changes = &reload["changes"];
    assert_eq!(changes["users_added"], serde_json::json!([{"user": "bob", "account": "APP"}]));
    assert_eq!(
        changes["users_changed"],
        serde_json::json!([{"user": "alice", "account": "APP", "changed": ["permissions"]}])
    );

    // A `$SYS` RELOAD of a file that does not load: refused, the reason
    // sent to the requester and recorded.
    std::fs::write(&conf, format!("{head}{changed}\nbogus_key: 1\n")).unwrap();
    let answer = ask(&admin, &format!("$SYS.REQ.SERVER.{id}.RELOAD"), "").await;
    assert_eq!(answer["error"]["code"], 500);
    assert!(answer["error"]["description"].as_str().unwrap().contains("bogus_key"), "{answer}");
    let refused = record(&audit, "the refused reload", |r| r["type"] == "reload" && r["applied"] == false).await;
    assert_eq!(refused["by"], "system_request");
    assert_eq!(refused["requester"]["user"], "admin");
    assert!(refused["error"].as_str().unwrap().contains("bogus_key"), "{refused}");
    std::fs::write(&conf, format!("{head}{changed}")).unwrap();

    // A certificate rotation, and a broken replacement.
    let second = ca.issue_server(&["localhost".into()]).unwrap();
    std::fs::write(dir.join("ws.pem.new"), &second.cert_pem).unwrap();
    std::fs::write(dir.join("ws-key.pem.new"), &second.key_pem).unwrap();
    std::fs::rename(dir.join("ws.pem.new"), dir.join("ws.pem")).unwrap();
    std::fs::rename(dir.join("ws-key.pem.new"), dir.join("ws-key.pem")).unwrap();
    let rotated = record(&audit, "the rotation", |r| r["type"] == "certificate_rotated").await;
    assert_eq!(rotated["listener"], "websocket");
    assert!(rotated["not_after"].as_str().unwrap().ends_with('Z'), "{rotated}");
    std::fs::write(dir.join("ws.pem"), "not a certificate").unwrap();
    let failed = record(&audit, "the failed rotation", |r| r["type"] == "certificate_rotation_failed").await;
    assert_eq!(failed["listener"], "websocket");

    // The counters, then lame duck and shutdown (no client left, so lame
    // duck ends at once).
    let varz = monitor_json(format!("127.0.0.1:{http}").parse().unwrap(), "/varz").await;
    assert!(varz["warden"]["audit"]["written"].as_u64().unwrap() >= 10, "{}", varz["warden"]);
    assert_eq!(varz["warden"]["audit"]["dropped"], 0);
    drop((admin, auditor, published));
    signal(&serving.0, "-TERM");
    assert!(exit_status(&mut serving).await.success());
    let all = records(&audit);
    let types: Vec<&str> = all.iter().map(|r| r["type"].as_str().unwrap()).collect();
    let at = |t: &str| types.iter().position(|x| *x == t).unwrap_or_else(|| panic!("no {t} in {types:?}"));
    assert!(at("lame_duck") < at("shutdown") && at("shutdown") < types.len(), "{types:?}");
    let text = std::fs::read_to_string(&audit).unwrap();
    for secret in ["alice-pass-1234", "wrong-guess", "admin-pass-1234", "bob-pass-1234", "auditor-pass-1234"] {
        assert!(!text.contains(secret), "a secret in the audit file: {secret}");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&audit).unwrap().permissions().mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_file_that_cannot_be_opened_stops_the_start() {
    let dir = temp_dir("audit-unopenable");
    let options = options_from(&format!("audit {{ file: \"{}/missing/dir/audit.log\" }}", dir.display()));
    let Err(err) = warden::server::Server::start(options).await else { panic!("the start is refused") };
    assert!(err.to_string().contains("audit: cannot open"), "{err}");
}

/// A login by certificate names the certificate: method `certificate`,
/// its subject and the user it mapped to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_by_certificate_is_recorded_with_its_subject() {
    let dir = temp_dir("audit-mtls");
    let ca = Ca::new("audit CA").unwrap();
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap();
        dir.join(name)
    };
    let server_cert = ca.issue_server(&["localhost".into()]).unwrap();
    let alice = ca.issue_client("alice").unwrap();
    let config = format!(
        r#"tls {{ cert_file: "{}", key_file: "{}", ca_file: "{}", verify_and_map: true }}
        authorization {{ users = [ {{user: "CN=alice"}} ] }}
        audit {{ file: "{}" }}"#,
        write("server.pem", &server_cert.cert_pem).display(),
        write("server-key.pem", &server_cert.key_pem).display(),
        write("ca.pem", &ca.issued().cert_pem).display(),
        dir.join("audit.log").display()
    );
    let server = start(options_from(&config)).await;
    let opts = async_nats::ConnectOptions::new()
        .add_root_certificates(dir.join("ca.pem"))
        .require_tls(true)
        .add_client_certificate(write("alice.pem", &alice.cert_pem), write("alice-key.pem", &alice.key_pem));
    let client = within(opts.connect(format!("tls://localhost:{}", server.local_addr().port()))).await.unwrap();
    client.flush().await.unwrap();
    let login = record(&dir.join("audit.log"), "the login", |r| r["type"] == "login").await;
    assert_eq!(login["method"], "certificate");
    assert_eq!(
        (login["conn"]["user"].as_str(), login["conn"]["tls_subject"].as_str()),
        (Some("CN=alice"), Some("CN=alice"))
    );
    server.shutdown().await;
}

/// One address's flood of denied publishes costs the trail a few records
/// a second from that address, and never the records of another address
/// (two clients behind a trusted proxy, so each has its own address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_denials_from_one_address_leaves_another_addresss_denials_recorded() {
    let dir = temp_dir("audit-neighbours");
    let audit = dir.join("audit.log");
    let config = format!(
        r#"proxy_protocol: true
        trusted_proxies: ["127.0.0.1"]
        authorization {{ users = [ {{user: u, password: p, permissions: {{ publish: "ok.>" }}}} ] }}
        audit {{ file: "{}", denials_per_second: 5 }}"#,
        audit.display()
    );
    let server = start(options_from(&config)).await;
    let addr = server.local_addr();
    let behind = |client: &'static str| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let header = format!("PROXY TCP4 {client} 127.0.0.1 40000 4222\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut stream, header.as_bytes()).await.unwrap();
        let mut raw = Raw::new(stream);
        assert!(raw.line().await.starts_with("INFO "));
        raw.send("CONNECT {\"user\":\"u\",\"pass\":\"p\",\"verbose\":false}\r\n").await;
        raw.ping_pong().await;
        raw
    };
    let mut flooder = behind("10.0.0.1").await;
    let mut neighbour = behind("10.0.0.2").await;
    flooder.send("PUB secret 1\r\nx\r\n".repeat(2000)).await;
    until_pong(&mut flooder).await;
    neighbour.send("PUB secret.neighbour 1\r\nx\r\nPUB secret.neighbour 1\r\nx\r\n").await;
    until_pong(&mut neighbour).await;
    let denied = |addr: &str| {
        records(&audit)
            .iter()
            .filter(|r| r["type"] == "permission_denied" && r["conn"]["addr"].as_str().unwrap().starts_with(addr))
            .count() as u64
    };
    let suppressed = || {
        records(&audit)
            .iter()
            .filter(|r| r["type"] == "permission_denials_suppressed" && r["addr"] == "10.0.0.1")
            .map(|r| r["count"].as_u64().unwrap())
            .sum::<u64>()
    };
    // Within a second (one budget window, or two on a slow machine):
    // 5 recorded a window, every other one counted.
    eventually("every flooding denial recorded or counted", || denied("10.0.0.1:") + suppressed() == 2000).await;
    assert!(matches!(denied("10.0.0.1:"), 5 | 10), "{}", denied("10.0.0.1:"));
    assert_eq!(denied("10.0.0.2:"), 2, "the neighbour's denials are all recorded");
    server.shutdown().await;
}
