//! The `$SYS` services, used the way the `nats` CLI uses them: a stock
//! client (async-nats) publishes a request with an inbox and collects
//! every server's answer. Checked on one server (answers against the HTTP
//! endpoints, the rules for other accounts, KICK, events), on a 3-node
//! warden cluster, and in mixed clusters with nats-server 2.9.10 and
//! 2.15.1, where each kind of server answers the other's clients.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::peers::*;
use common::*;
use futures::StreamExt;
use serde_json::Value;
use warden::server::Server;

const ACCOUNTS: &str = r#"
accounts {
  A: { users: [ {user: a, password: pa} ] }
  SYS: { users: [
    {user: sys, password: ps}
    {user: monitor, password: pm,
     permissions: { publish: ["$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.PING.*", "$SYS.REQ.USER.INFO"], subscribe: ["_INBOX.>"] }}
    {user: kicker, password: pk, permissions: { publish: ["$SYS.REQ.SERVER.*.KICK"], subscribe: ["_INBOX.>"] }}
  ] }
}
system_account: SYS
"#;

async fn login(url: &str, user: &str, pass: &str) -> async_nats::Client {
    within(async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).connect(url)).await.unwrap()
}

/// What `nats server ping`/`nats server req` do: publish `body` on
/// `subject` with a fresh inbox as reply and collect the answers until
/// `expect` arrived, or until `quiet` passes without another one.
async fn ask(client: &async_nats::Client, subject: &str, body: &str, expect: usize, quiet: Duration) -> Vec<Value> {
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await.unwrap();
    client.publish_with_reply(subject.to_owned(), inbox, body.to_owned().into()).await.unwrap();
    client.flush().await.unwrap();
    let mut got = Vec::new();
    while got.len() < expect {
        match tokio::time::timeout(quiet, answers.next()).await {
            Ok(Some(m)) => got.push(serde_json::from_slice(&m.payload).unwrap()),
            _ => break,
        }
    }
    got
}

/// One answer, which must come.
async fn ask_one(client: &async_nats::Client, subject: &str, body: &str) -> Value {
    let mut got = ask(client, subject, body, 1, WAIT).await;
    assert_eq!(got.len(), 1, "no answer to {subject}");
    got.remove(0)
}

fn with_monitoring(config: &str) -> warden::config::Options {
    let mut opts = options_from(config);
    opts.http = Some(warden::config::HttpOptions { host: "127.0.0.1".into(), port: 0, tls: false });
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_requests_answer_what_the_http_endpoints_serve() {
    let server = start(with_monitoring(&format!("server_name: w1\n{ACCOUNTS}"))).await;
    let http = server.monitor_addr().unwrap();
    let id = server.broker().identity.id.clone();
    let sys = login(&url(&server), "sys", "ps").await;
    let a = login(&url(&server), "a", "pa").await;
    let _orders = a.subscribe("orders.*").await.unwrap();
    a.flush().await.unwrap();

    let ping = ask_one(&sys, "$SYS.REQ.SERVER.PING", "").await;
    assert_eq!((ping["server"]["id"].as_str(), ping["server"]["name"].as_str()), (Some(id.as_str()), Some("w1")));
    assert_eq!(ping["server"]["ver"], "2.9.10");
    assert_eq!(ping["statsz"]["connections"], 2);
    assert!(ping["statsz"]["mem"].as_u64().unwrap() > 0);

    let varz = ask_one(&sys, "$SYS.REQ.SERVER.PING.VARZ", "").await;
    let http_varz = monitor_json(http, "/varz").await;
    for field in ["server_id", "server_name", "max_payload", "connections", "system_account", "accounts"] {
        assert_eq!(varz["data"][field], http_varz[field], "{field}");
    }
    let connz = ask_one(&sys, &format!("$SYS.REQ.SERVER.{id}.CONNZ"), r#"{"subscriptions":true,"auth":true}"#).await;
    let http_connz = monitor_json(http, "/connz?subs=1&auth=1").await;
    let cids = |v: &Value| v["connections"].as_array().unwrap().iter().map(|c| c["cid"].clone()).collect::<Vec<_>>();
    assert_eq!(cids(&connz["data"]), cids(&http_connz));
    // `a`'s subscriptions (the requester's own change with each request).
    let a_subs = |v: &Value| v["connections"][1]["subscriptions_list"].clone();
    assert_eq!(a_subs(&connz["data"]), serde_json::json!(["orders.*"]));
    assert_eq!(a_subs(&connz["data"]), a_subs(&http_connz));
    let subsz = ask_one(&sys, "$SYS.REQ.SERVER.PING.SUBSZ", r#"{"subscriptions":true}"#).await;
    // The requests' own inboxes come and go; everything else is the same.
    let lasting = |v: &Value| {
        let list = v["subscriptions_list"].as_array().unwrap().iter();
        let mut subjects: Vec<String> =
            list.map(|s| s["subject"].as_str().unwrap().to_owned()).filter(|s| !s.starts_with("_INBOX.")).collect();
        subjects.sort();
        subjects
    };
    let http_subsz = monitor_json(http, "/subsz?subs=1").await;
    assert_eq!(lasting(&subsz["data"]), lasting(&http_subsz));
    assert!(lasting(&http_subsz).contains(&"$SYS.REQ.SERVER.PING".to_owned()));
    let accountz = ask_one(&sys, "$SYS.REQ.SERVER.PING.ACCOUNTZ", "").await;
    assert_eq!(accountz["data"]["accounts"], monitor_json(http, "/accountz").await["accounts"]);
    assert_eq!(ask_one(&sys, "$SYS.REQ.SERVER.PING.HEALTHZ", "").await["data"]["status"], "ok");
    assert_eq!(ask_one(&sys, "$SYS.REQ.SERVER.PING.ROUTEZ", "").await["data"]["num_routes"], 0);
    let idz = ask_one(&sys, "$SYS.REQ.SERVER.PING.IDZ", "").await;
    assert_eq!((idz["id"].as_str(), idz["name"].as_str()), (Some(id.as_str()), Some("w1")));

    // Account requests of the system account.
    let a_connz = ask_one(&sys, "$SYS.REQ.ACCOUNT.A.CONNZ", "").await;
    assert_eq!(a_connz["data"]["num_connections"], 1);
    assert_eq!(a_connz["data"]["connections"][0]["account"], "A");
    assert_eq!(ask_one(&sys, "$SYS.REQ.ACCOUNT.A.INFO", "").await["data"]["account_name"], "A");
    let statz = ask_one(&sys, "$SYS.REQ.ACCOUNT.PING.STATZ", "").await;
    let names: Vec<&str> =
        statz["data"]["account_statz"].as_array().unwrap().iter().map(|a| a["acc"].as_str().unwrap()).collect();
    assert_eq!(names, ["A", "SYS"]);

    // Filters select servers; a bad body is answered with an error.
    assert!(ask(&sys, "$SYS.REQ.SERVER.PING.VARZ", r#"{"server_name":"w2"}"#, 1, Duration::from_millis(300))
        .await
        .is_empty());
    assert!(ask(&sys, "$SYS.REQ.SERVER.PING.VARZ", r#"{"server_name":"w"}"#, 1, WAIT).await.len() == 1);
    let bad = ask_one(&sys, "$SYS.REQ.SERVER.PING.CONNZ", "not json").await;
    assert_eq!(bad["error"]["code"], 400);
    let bad = ask_one(&sys, "$SYS.REQ.SERVER.PING.CONNZ", r#"{"sort":"bogus"}"#).await;
    assert_eq!((bad["error"]["code"].as_u64(), bad.get("data")), (Some(400), None));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_accounts_may_ask_only_about_themselves() {
    let server = start(options_from(ACCOUNTS)).await;
    let addr = server.local_addr();
    let sys = login(&url(&server), "sys", "ps").await;
    let a = login(&url(&server), "a", "pa").await;

    // `$SYS.>` is closed outside the system account...
    let mut raw = Raw::login(addr, "a", "pa").await;
    raw.send("PUB $SYS.REQ.SERVER.PING 0\r\n\r\n").await;
    raw.expect("-ERR 'Permissions Violation for Publish to \"$SYS.REQ.SERVER.PING\"'").await;
    raw.send("PUB $SYS.ACCOUNT.A.CONNECT 2\r\n{}\r\n").await;
    raw.expect("-ERR 'Permissions Violation for Publish to \"$SYS.ACCOUNT.A.CONNECT\"'").await;
    raw.send("SUB $SYS.> 1\r\n").await;
    raw.expect("-ERR 'Permissions Violation for Subscription to \"$SYS.>\"'").await;
    raw.send("PUB orders.new $SYS.REQ.SERVER.PING 0\r\n\r\n").await;
    raw.expect("-ERR 'Permissions Violation for Publish with Reply of \"$SYS.REQ.SERVER.PING\"'").await;
    raw.send("SUB > 2\r\nPING\r\n").await;
    raw.expect("PONG").await;

    // ...but for the requests about oneself, answered with one's own data
    // only, whatever the body asks.
    let connz = ask_one(&a, "$SYS.REQ.SERVER.PING.CONNZ", r#"{"acc":"SYS","auth":true}"#).await;
    let accounts: Vec<&str> =
        connz["data"]["connections"].as_array().unwrap().iter().map(|c| c["account"].as_str().unwrap()).collect();
    assert_eq!(accounts, ["A", "A"]);
    let connz = ask_one(&a, "$SYS.REQ.ACCOUNT.PING.CONNZ", "").await;
    assert_eq!(connz["data"]["num_connections"], 2);
    let statz = ask_one(&a, "$SYS.REQ.ACCOUNT.PING.STATZ", r#"{"accounts":["SYS"]}"#).await;
    assert_eq!(statz["data"]["account_statz"].as_array().unwrap().len(), 1);
    assert_eq!(statz["data"]["account_statz"][0]["acc"], "A");
    let me = ask_one(&a, "$SYS.REQ.USER.INFO", "").await;
    assert_eq!((me["data"]["user"].as_str(), me["data"]["account"].as_str()), (Some("a"), Some("A")));
    assert!(me["data"].get("permissions").is_none(), "a has no rules: {me}");
    let monitor = login(&url(&server), "monitor", "pm").await;
    let me = ask_one(&monitor, "$SYS.REQ.USER.INFO", "").await;
    assert_eq!(me["data"]["permissions"]["subscribe"]["allow"], serde_json::json!(["_INBOX.>"]));
    // The `>` subscriber of A saw its own account's requests, nothing of SYS.
    ask_one(&sys, "$SYS.REQ.SERVER.PING.VARZ", "").await;
    raw.send("PING\r\n").await;
    let mut seen = Vec::new();
    loop {
        let line = raw.line().await;
        if line == "PONG" {
            break;
        }
        if line.starts_with("MSG ") {
            seen.push(line.split(' ').nth(1).unwrap().to_owned());
        }
    }
    assert!(seen.iter().all(|s| !s.starts_with("$SYS.REQ.SERVER.PING.VARZ")), "{seen:?}");

    // Inside the system account, permissions still apply.
    assert!(ask_one(&monitor, "$SYS.REQ.SERVER.PING", "").await["statsz"].is_object());
    let mut raw = Raw::login(addr, "monitor", "pm").await;
    raw.send("PUB $SYS.REQ.ACCOUNT.A.CONNZ _INBOX.x 0\r\n\r\n").await;
    raw.expect("-ERR 'Permissions Violation for Publish to \"$SYS.REQ.ACCOUNT.A.CONNZ\"'").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_needs_an_explicit_grant() {
    let server = start(options_from(ACCOUNTS)).await;
    let id = server.broker().identity.id.clone();
    let mut victim = Raw::login(server.local_addr(), "a", "pa").await;
    let cid = server.broker().clients().iter().map(|c| c.id).max().unwrap();
    let kick = format!("$SYS.REQ.SERVER.{id}.KICK");
    let body = format!(r#"{{"cid":{cid}}}"#);

    // An unrestricted system user may do everything but this.
    let sys = login(&url(&server), "sys", "ps").await;
    let refused = ask_one(&sys, &kick, &body).await;
    assert_eq!(refused["error"]["code"], 403);
    victim.ping_pong().await;

    let kicker = login(&url(&server), "kicker", "pk").await;
    let done = ask_one(&kicker, &kick, &body).await;
    assert!(done.get("error").is_none(), "{done}");
    victim.expect_closed().await;
    let missing = ask_one(&kicker, &kick, &body).await;
    assert_eq!(missing["error"]["code"], 404);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_over_nats_rereads_the_config_file_for_a_granted_user() {
    let conf = temp_dir("sys-reload").join("warden.conf");
    let reloader = r#"{user: reloader, password: pr, permissions: { publish: ["$SYS.REQ.SERVER.*.RELOAD"], subscribe: ["_INBOX.>"] }}"#;
    let config = format!(
        "listen: 127.0.0.1:0\n{}",
        ACCOUNTS.replace("{user: sys, password: ps}", &format!("{{user: sys, password: ps}}\n{reloader}"))
    );
    std::fs::write(&conf, &config).unwrap();
    let (_serving, addr) = common::binary::serve_file(&conf).await;
    let url = format!("nats://{addr}");
    let sys = login(&url, "sys", "ps").await;
    let id = ask_one(&sys, "$SYS.REQ.SERVER.PING.IDZ", "").await["id"].as_str().unwrap().to_owned();
    let reload = format!("$SYS.REQ.SERVER.{id}.RELOAD");

    // A new user in the file, applied only by a granted RELOAD.
    std::fs::write(
        &conf,
        config.replace("{user: a, password: pa}", "{user: a, password: pa}, {user: a2, password: pa2}"),
    )
    .unwrap();
    assert_eq!(ask_one(&sys, &reload, "").await["error"]["code"], 403);
    let opts = async_nats::ConnectOptions::with_user_and_password("a2".into(), "pa2".into());
    assert!(within(opts.connect(url.clone())).await.is_err());
    let reloader = login(&url, "reloader", "pr").await;
    let done = ask_one(&reloader, &reload, "").await;
    assert!(done.get("error").is_none() && done.get("data").is_none(), "{done}");
    login(&url, "a2", "pa2").await;

    // A file that does not load is refused, and the running config stays.
    std::fs::write(&conf, format!("{config}\nbogus_key: 1\n")).unwrap();
    assert_eq!(ask_one(&reloader, &reload, "").await["error"]["code"], 500);
    login(&url, "a2", "pa2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_disconnects_and_failed_logins_are_events() {
    let server = start(options_from(ACCOUNTS)).await;
    let id = server.broker().identity.id.clone();
    let sys = login(&url(&server), "sys", "ps").await;
    let mut connects = sys.subscribe("$SYS.ACCOUNT.*.CONNECT").await.unwrap();
    let mut disconnects = sys.subscribe("$SYS.ACCOUNT.*.DISCONNECT").await.unwrap();
    let mut auth_errors = sys.subscribe(format!("$SYS.SERVER.{id}.CLIENT.AUTH.ERR")).await.unwrap();
    sys.flush().await.unwrap();

    let a = within(
        async_nats::ConnectOptions::with_user_and_password("a".into(), "pa".into())
            .name("billing")
            .connect(url(&server)),
    )
    .await
    .unwrap();
    a.publish("orders.new", "x".into()).await.unwrap();
    a.flush().await.unwrap();
    // The system user's own login may be reported after its SUB.
    let event = within(async {
        loop {
            let event: Value = serde_json::from_slice(&connects.next().await.unwrap().payload).unwrap();
            if event["client"]["acc"] != "SYS" {
                return event;
            }
        }
    })
    .await;
    assert_eq!(event["type"], "io.nats.server.advisory.v1.client_connect");
    assert_eq!((event["client"]["acc"].as_str(), event["client"]["user"].as_str()), (Some("A"), Some("a")));
    assert_eq!(
        (event["client"]["name"].as_str(), event["server"]["id"].as_str()),
        (Some("billing"), Some(id.as_str()))
    );
    drop(a);
    let event: Value = serde_json::from_slice(&within(disconnects.next()).await.unwrap().payload).unwrap();
    assert_eq!(event["type"], "io.nats.server.advisory.v1.client_disconnect");
    assert_eq!(event["client"]["acc"], "A");
    assert_eq!(event["sent"]["msgs"], 1);
    assert_eq!(event["reason"], "Client Closed");

    let mut raw = Raw::connect(server.local_addr()).await.0;
    raw.send("CONNECT {\"user\":\"a\",\"pass\":\"guess-number-one\"}\r\n").await;
    raw.expect("-ERR 'Authorization Violation'").await;
    let message = within(auth_errors.next()).await.unwrap();
    let text = String::from_utf8(message.payload.to_vec()).unwrap();
    assert!(!text.contains("guess-number-one"), "{text}");
    let event: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (event["client"]["user"].as_str(), event["reason"].as_str()),
        (Some("a"), Some("Authentication Failure"))
    );
    server.shutdown().await;
}

/// As nats-server (`eventsHBInterval`): an account's connection count is
/// sent when it changes and again every 30 s while it has connections, so
/// a tool that starts listening sees it without waiting for a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_connection_count_is_sent_again_every_30_seconds() {
    let server = start(options_from(ACCOUNTS)).await;
    let sys = login(&url(&server), "sys", "ps").await;
    let mut conns = sys.subscribe("$SYS.ACCOUNT.A.SERVER.CONNS").await.unwrap();
    sys.flush().await.unwrap();
    let a = login(&url(&server), "a", "pa").await;
    let count = |message: async_nats::Message| {
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        (event["acc"].as_str().map(str::to_owned), event["conns"].as_u64())
    };
    let changed = within(conns.next()).await.unwrap();
    let since = Instant::now();
    assert_eq!(count(changed), (Some("A".into()), Some(1)));
    let again = tokio::time::timeout(Duration::from_secs(45), conns.next()).await.expect("sent again").unwrap();
    let waited = since.elapsed();
    assert_eq!(count(again), (Some("A".into()), Some(1)));
    assert!(waited >= Duration::from_secs(29), "sent again after {waited:?}, not 30 s");
    drop(a);
    let gone = within(conns.next()).await.unwrap();
    assert_eq!(count(gone), (Some("A".into()), Some(0)));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_gets_a_bounded_number_of_events() {
    // No failure throttle, so the flood is as fast as logins can fail.
    let config = format!("authorization {{ failure_delay_max: \"0s\" }}\n{ACCOUNTS}");
    let server = start(options_from(&config)).await;
    let sys = login(&url(&server), "sys", "ps").await;
    let mut auth_errors = sys.subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR").await.unwrap();
    sys.flush().await.unwrap();
    const LOGINS: usize = 400;
    let started = Instant::now();
    let floods: Vec<_> = (0..LOGINS)
        .map(|_| {
            let addr = server.local_addr();
            tokio::spawn(async move {
                let mut raw = Raw::connect(addr).await.0;
                raw.send("CONNECT {\"user\":\"a\",\"pass\":\"wrong\"}\r\n").await;
                raw.expect("-ERR 'Authorization Violation'").await;
            })
        })
        .collect();
    for flood in floods {
        within(flood).await.unwrap();
    }
    let elapsed = started.elapsed();
    // Every event reported is published before this answer.
    ask_one(&sys, "$SYS.REQ.SERVER.PING.IDZ", "").await;
    let mut events = 0;
    while tokio::time::timeout(Duration::from_millis(200), auth_errors.next()).await.is_ok() {
        events += 1;
    }
    let windows = elapsed.as_secs() as usize + 2;
    let bound = warden::broker::EVENTS_PER_SECOND as usize * windows;
    eprintln!("{LOGINS} failed logins in {elapsed:?}: {events} events (bound {bound})");
    assert!(events >= 1 && events <= bound.min(LOGINS), "{events} events for {LOGINS} failures in {elapsed:?}");
    server.shutdown().await;
}

fn cluster_config(name: &str, listen: &str, routes: &[String]) -> String {
    let routes: Vec<String> = routes.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "server_name: {name}\n{ACCOUNTS}\ncluster {{ name: c1, listen: \"{listen}\", routes: [{}], insecure_allow_unauthenticated_routes: true }}\n",
        routes.join(", ")
    )
}

async fn node(name: &str, routes: &[String]) -> Server {
    start(options_from(&cluster_config(name, "127.0.0.1:0", routes))).await
}

fn route_url(server: &Server) -> String {
    format!("nats-route://{}", server.cluster().unwrap().listen_addr)
}

/// Pings until `n` servers answer (interest reaches peers asynchronously);
/// returns their (id, name) pairs, sorted by name.
async fn ping_until(client: &async_nats::Client, n: usize) -> Vec<(String, String)> {
    within(async {
        loop {
            let answers = ask(client, "$SYS.REQ.SERVER.PING", "", n, Duration::from_millis(500)).await;
            if answers.len() == n {
                let mut servers: Vec<(String, String)> = answers
                    .iter()
                    .map(|a| {
                        assert!(a["statsz"]["connections"].as_u64().is_some(), "{a}");
                        let s = &a["server"];
                        (s["id"].as_str().unwrap().to_owned(), s["name"].as_str().unwrap().to_owned())
                    })
                    .collect();
                servers.sort_by(|a, b| a.1.cmp(&b.1));
                return servers;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_of_a_warden_cluster_answers() {
    let n1 = node("w1", &[]).await;
    let n2 = node("w2", &[route_url(&n1)]).await;
    let n3 = node("w3", &[route_url(&n1)]).await;
    for n in [&n1, &n2, &n3] {
        let cluster = n.cluster().unwrap().clone();
        eventually("a full mesh", || cluster.route_count() == 2).await;
    }
    let sys = login(&url(&n1), "sys", "ps").await;
    let servers = ping_until(&sys, 3).await;
    let want: Vec<(String, String)> = [(&n1, "w1"), (&n2, "w2"), (&n3, "w3")]
        .iter()
        .map(|(n, name)| (n.broker().identity.id.clone(), (*name).to_owned()))
        .collect();
    assert_eq!(servers, want);
    // A request to one server by id is answered by that server alone.
    let id3 = n3.broker().identity.id.clone();
    let answers = ask(&sys, &format!("$SYS.REQ.SERVER.{id3}.VARZ"), "", 2, Duration::from_millis(500)).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["data"]["server_name"], "w3");
    // Accounts answer for their own connections on every node.
    let _a3 = login(&url(&n3), "a", "pa").await;
    let a1 = login(&url(&n1), "a", "pa").await;
    let connz = within(async {
        loop {
            let answers = ask(&a1, "$SYS.REQ.ACCOUNT.PING.CONNZ", "", 3, Duration::from_millis(500)).await;
            let total: u64 = answers.iter().map(|a| a["data"]["num_connections"].as_u64().unwrap()).sum();
            if answers.len() == 3 && total == 2 {
                return answers;
            }
        }
    })
    .await;
    assert!(connz.iter().all(|a| a["data"]["connections"].as_array().unwrap().iter().all(|c| c["account"] == "A")));
    for n in [n3, n2, n1] {
        n.shutdown().await;
    }
}

/// A warden node `w1` routed with a nats-server node called `name`, and
/// the nats-server's client URL (the process ends when dropped).
async fn mixed_cluster(binary: &Path, name: &str) -> (Server, NatsServer, String) {
    let w = node("w1", &[]).await;
    let (client_port, route_port) = (free_port(), free_port());
    let config = cluster_config(name, &format!("127.0.0.1:{route_port}"), &[route_url(&w)])
        .replace(", insecure_allow_unauthenticated_routes: true", "");
    let nats = spawn_nats_server(binary, name, &format!("listen: 127.0.0.1:{client_port}\n{config}"));
    let cluster = w.cluster().unwrap().clone();
    eventually("the route to nats-server", || cluster.route_count() == 1).await;
    (w, nats, format!("nats://127.0.0.1:{client_port}"))
}

/// A warden node and a nats-server node: each answers the other's clients.
async fn mixed_cluster_with(binary: &Path, name: &str) {
    let (w, _nats, nats_url) = mixed_cluster(binary, name).await;
    let from_warden = ping_until(&login(&url(&w), "sys", "ps").await, 2).await;
    let from_nats = ping_until(&login_retrying(&nats_url, "sys", "ps").await, 2).await;
    assert_eq!(from_warden, from_nats);
    let names: Vec<&str> = from_warden.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, [name, "w1"]);
    assert!(from_warden.iter().any(|(id, _)| *id == w.broker().identity.id));
    w.shutdown().await;
}

/// A tenant's `$SYS.REQ.ACCOUNT.PING.CONNZ`, as the `nats` CLI asks it:
/// every answer that comes before a quiet half second, once each of the
/// `servers` (names) has answered (interest reaches peers asynchronously).
async fn tenant_connz(client: &async_nats::Client, servers: &[&str]) -> Vec<Value> {
    let quiet = Duration::from_millis(500);
    within(async {
        loop {
            // `auth`: nats-server names the connections' accounts only then.
            let answers = ask(client, "$SYS.REQ.ACCOUNT.PING.CONNZ", r#"{"auth":true}"#, usize::MAX, quiet).await;
            if servers.iter().all(|name| answers.iter().any(|a| a["server"]["name"] == *name)) {
                return answers;
            }
        }
    })
    .await
}

/// The servers that answered, by name, sorted.
fn answered_by(answers: &[Value]) -> Vec<&str> {
    let mut from: Vec<&str> = answers.iter().map(|a| a["server"]["name"].as_str().unwrap()).collect();
    from.sort_unstable();
    from
}

/// A tenant of either node of a mixed cluster gets one answer per server,
/// about its own account's connections only.
async fn tenants_of_a_mixed_cluster_with(binary: &Path, name: &str) {
    let (w, _nats, nats_url) = mixed_cluster(binary, name).await;
    ping_until(&login(&url(&w), "sys", "ps").await, 2).await;
    let servers = [name, "w1"];
    let on_warden = login(&url(&w), "a", "pa").await;
    let on_nats = login_retrying(&nats_url, "a", "pa").await;
    for (client, side) in [(&on_warden, "warden"), (&on_nats, name)] {
        // Once every server is heard from, a fresh request shows the count.
        tenant_connz(client, &servers).await;
        let answers = tenant_connz(client, &servers).await;
        assert_eq!(answered_by(&answers), servers, "asked on {side}: one answer per server, got {answers:?}");
        let total: u64 = answers.iter().map(|a| a["data"]["num_connections"].as_u64().unwrap()).sum();
        assert_eq!(total, 2, "asked on {side}: {answers:?}");
        for answer in &answers {
            let connections = answer["data"]["connections"].as_array().unwrap();
            assert!(connections.iter().all(|c| c["account"] == "A"), "asked on {side}: {answer}");
        }
    }
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_with_nats_server_2_9_answers_both_ways() {
    let Some(binary) = common::deps::nats_server_2_9() else { return };
    mixed_cluster_with(&binary, "n29").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_with_nats_server_2_15_answers_both_ways() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    mixed_cluster_with(&binary, "n215").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_of_a_mixed_cluster_with_nats_server_2_9_get_one_answer_per_server() {
    let Some(binary) = common::deps::nats_server_2_9() else { return };
    tenants_of_a_mixed_cluster_with(&binary, "n29").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_of_a_mixed_cluster_with_nats_server_2_15_get_one_answer_per_server() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    tenants_of_a_mixed_cluster_with(&binary, "n215").await;
}

/// A hub with accounts A and SYS whose leaf user `la` binds account A.
fn leaf_hub_config(name: &str) -> String {
    format!(
        "server_name: {name}\n{ACCOUNTS}\nleafnodes {{ listen: \"127.0.0.1:0\", authorization {{ users = [ {{user: la, password: pla, account: A}} ] }} }}\n"
    )
}

/// A leaf of `hub` with the same accounts, its A bound to the hub's A.
fn leaf_config(name: &str, port: u16, hub: std::net::SocketAddr) -> String {
    format!(
        "server_name: {name}\nlisten: 127.0.0.1:{port}\n{ACCOUNTS}\nleafnodes {{ remotes = [ {{url: \"nats-leaf://la:pla@{hub}\", account: A}} ] }}\n"
    )
}

/// A tenant on either side of a leaf connection hears from the servers on
/// both, as on nats-server: each counts the account's client and the leaf
/// connection (nats-server lists an account's leafs in its CONNZ).
async fn tenants_on_both_sides_of_a_leaf(hub_url: &str, leaf_url: &str, hub: &str, leaf: &str) {
    let on_hub = login_retrying(hub_url, "a", "pa").await;
    let on_leaf = login_retrying(leaf_url, "a", "pa").await;
    let mut servers = [hub, leaf];
    servers.sort_unstable();
    for (client, side) in [(&on_hub, hub), (&on_leaf, leaf)] {
        tenant_connz(client, &servers).await;
        let answers = tenant_connz(client, &servers).await;
        assert_eq!(answered_by(&answers), servers, "asked on {side}: one answer per server, got {answers:?}");
        for answer in &answers {
            let mut kinds: Vec<&str> =
                answer["data"]["connections"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
            kinds.sort_unstable();
            assert_eq!(kinds, ["Client", "Leafnode"], "asked on {side}: {answer}");
            assert_eq!(answer["data"]["num_connections"], 2, "asked on {side}: {answer}");
        }
    }
}

async fn warden_hub_with_a_reference_leaf(binary: &Path, name: &str) {
    let hub = start(options_from(&leaf_hub_config("hub"))).await;
    let port = free_port();
    let _leaf = spawn_nats_server(binary, name, &leaf_config(name, port, hub.leafnode_addr().unwrap()));
    tenants_on_both_sides_of_a_leaf(&url(&hub), &format!("nats://127.0.0.1:{port}"), "hub", name).await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_on_a_warden_hub_and_its_nats_server_2_9_leaf_hear_from_both() {
    let Some(binary) = common::deps::nats_server_2_9() else { return };
    warden_hub_with_a_reference_leaf(&binary, "leaf29").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_on_a_warden_hub_and_its_nats_server_2_15_leaf_hear_from_both() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    warden_hub_with_a_reference_leaf(&binary, "leaf215").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_on_a_nats_server_2_15_hub_and_its_warden_leaf_hear_from_both() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    let (hub_port, leaf_port) = (free_port(), free_port());
    let hub_config =
        leaf_hub_config("hub215").replace("listen: \"127.0.0.1:0\"", &format!("listen: \"127.0.0.1:{leaf_port}\""));
    let _hub = spawn_nats_server(&binary, "hub215", &format!("listen: 127.0.0.1:{hub_port}\n{hub_config}"));
    let hub_leaf_port: std::net::SocketAddr = format!("127.0.0.1:{leaf_port}").parse().unwrap();
    let leaf = start(options_from(&leaf_config("leaf", 0, hub_leaf_port))).await;
    tenants_on_both_sides_of_a_leaf(&format!("nats://127.0.0.1:{hub_port}"), &url(&leaf), "hub215", "leaf").await;
    leaf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_on_a_warden_hub_and_its_warden_leaf_hear_from_both() {
    let hub = start(options_from(&leaf_hub_config("hub"))).await;
    let leaf = start(options_from(&leaf_config("leaf", 0, hub.leafnode_addr().unwrap()))).await;
    tenants_on_both_sides_of_a_leaf(&url(&hub), &url(&leaf), "hub", "leaf").await;
    leaf.shutdown().await;
    hub.shutdown().await;
}
