//! What the `nats` CLI needs from warden's `$SYS` services: every answer
//! and event, taken off the wire in a mixed cluster (warden routed to
//! nats-server), decodes into nats-server's own Go types, the types the
//! CLI decodes them with, strictly (`tests/sysdecode`, built by
//! `scripts/sysdecode.sh` from Debian's nats-server 2.9.10 source: no
//! unknown field, no mistyped field, no missing field the CLI shows).
//! nats-server 2.9.10's own answers go through the same decoder, which
//! checks the decoder; 2.15.1's carry fields 2.9.10 does not know, so of
//! that cluster only warden's answers are decoded. `docs/nats-cli.md` says
//! what each `nats` command shows against warden.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::peers::*;
use common::*;
use futures::StreamExt;
use serde_json::Value;

const ACCOUNTS: &str = r#"
accounts {
  A: { users: [ {user: a, password: pa}, {user: b, password: pb} ]
       exports: [ {service: "help.>"}, {stream: "news.>"} ] }
  B: { users: [ {user: c, password: pc} ]
       imports: [ {service: {account: A, subject: "help.>"}}, {stream: {account: A, subject: "news.>"}, prefix: feed} ] }
  SYS: { users: [ {user: sys, password: ps} ] }
}
system_account: SYS
"#;

/// Builds the Go decoder; `None` (a skip, a failure under CI) without Go
/// or Debian's nats-server source package.
fn decoder() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sysdecode.sh");
    let built = Command::new("bash").arg(script).output().ok().filter(|o| o.status.success());
    let what = "the Go $SYS decoder (tests/sysdecode)";
    let built = common::deps::require(built, what, "scripts/sysdecode.sh builds it from Debian's Go NATS packages")?;
    Some(PathBuf::from(String::from_utf8(built.stdout).unwrap().trim()))
}

/// Messages to decode: (kind, label, answer), see tests/sysdecode.
#[derive(Default)]
struct Batch(Vec<(String, String, Answer)>);

impl Batch {
    /// A plain JSON message.
    fn add(&mut self, kind: &str, label: impl Into<String>, payload: &[u8]) {
        self.add_answer(kind, label, Answer { payload: payload.to_vec(), snappy: false });
    }

    fn add_answer(&mut self, kind: &str, label: impl Into<String>, answer: Answer) {
        self.0.push((kind.to_owned(), label.into(), answer));
    }

    /// Removes `account` from the routes of the plain ROUTEZ answers,
    /// after checking it names one of `pinned` and that some route had it.
    fn drop_route_accounts(&mut self, pinned: &[&str]) {
        let mut seen = 0;
        for (kind, label, answer) in &mut self.0 {
            if kind != "routez" || answer.snappy {
                continue;
            }
            let mut json: Value = serde_json::from_slice(&answer.payload).unwrap();
            let routes = json["data"]["routes"].as_array_mut().into_iter().flatten();
            for route in routes.filter_map(Value::as_object_mut) {
                if let Some(account) = route.remove("account") {
                    assert!(pinned.iter().any(|p| account == *p), "{label}: a route for {account}");
                    seen += 1;
                }
            }
            answer.payload = serde_json::to_vec(&json).unwrap();
        }
        assert!(seen > 0, "the pinned system account's route is listed");
    }

    /// Runs the decoder over the batch: each label with `None` (decoded)
    /// or why not, and the file that keeps the decoder's input.
    fn decode(&self, decoder: &Path) -> (Vec<(String, Option<String>)>, PathBuf) {
        let mut input = Vec::new();
        for (kind, label, answer) in &self.0 {
            let payload = if answer.snappy {
                // Compressed: hex in a JSON string, for the decoder to inflate.
                let hex: String = answer.payload.iter().map(|b| format!("{b:02x}")).collect();
                format!(r#""{hex}","snappy":true"#)
            } else {
                // A JSON text has raw newlines only between tokens.
                String::from_utf8_lossy(&answer.payload).replace(['\n', '\r'], " ")
            };
            let line =
                format!(r#"{{"kind":{},"label":{},"payload":{payload}}}"#, Value::from(&**kind), Value::from(&**label));
            writeln!(input, "{line}").unwrap();
        }
        let saved = temp_dir("sysdecode").join("answers.jsonl");
        std::fs::write(&saved, &input).unwrap();
        let mut child = Command::new(decoder).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let results: Vec<(String, Option<String>)> = text
            .lines()
            .map(|line| {
                let mut parts = line.splitn(3, '\t');
                let (status, label, why) = (parts.next().unwrap(), parts.next().unwrap_or(""), parts.next());
                (label.to_owned(), (status != "ok").then(|| why.unwrap_or("").to_owned()))
            })
            .collect();
        assert_eq!(results.len(), self.0.len(), "one result a message: {text}");
        (results, saved)
    }

    /// Every message decodes.
    fn assert_decodes(&self, decoder: &Path) {
        let (results, saved) = self.decode(decoder);
        let failed: Vec<String> =
            results.iter().filter_map(|(label, why)| why.as_ref().map(|why| format!("{label}: {why}"))).collect();
        eprintln!("decoded strictly: {}", results.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join(", "));
        let saved = saved.display();
        assert!(failed.is_empty(), "not decoded into nats-server's types (input in {saved}):\n{}", failed.join("\n"));
    }
}

async fn login(url: &str, user: &str, pass: &str) -> async_nats::Client {
    login_retrying(url, user, pass).await
}

/// One answer: its payload, and whether it is snappy-compressed (only
/// nats-server compresses; warden answers in plain JSON, which the CLI reads
/// as well).
struct Answer {
    payload: Vec<u8>,
    snappy: bool,
}

impl Answer {
    /// The id of the server that sent it; compressed ones are nats-server's.
    fn sender(&self) -> Option<String> {
        (!self.snappy).then(|| sender(&self.payload))
    }
}

/// Publishes `body` on `subject` with a fresh inbox and collects the raw
/// answers, until `expect` came or `quiet` passed without one. Like the
/// CLI (jsm.go's `serverdata.DoReqAsync`), it offers snappy for all but
/// `SERVER.PING` and the account requests; the answers must still be
/// plain JSON, or snappy with `Content-Encoding` saying so (nats-server's).
async fn answers(
    client: &async_nats::Client,
    subject: &str,
    body: &str,
    expect: usize,
    quiet: Duration,
) -> Vec<Answer> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    if subject != "$SYS.REQ.SERVER.PING" && !subject.starts_with("$SYS.REQ.ACCOUNT") {
        headers.insert("Accept-Encoding", "snappy");
    }
    client.publish_with_reply_and_headers(subject.to_owned(), inbox, headers, body.to_owned().into()).await.unwrap();
    client.flush().await.unwrap();
    let mut got = Vec::new();
    while got.len() < expect {
        match tokio::time::timeout(quiet, sub.next()).await {
            Ok(Some(m)) => {
                let encoding = m.headers.as_ref().and_then(|h| h.get("Content-Encoding")).map(|v| v.to_string());
                let snappy = encoding.as_deref() == Some("snappy");
                assert!(encoding.is_none() || snappy, "{subject}: {encoding:?}");
                got.push(Answer { payload: m.payload.to_vec(), snappy });
            }
            _ => break,
        }
    }
    got
}

/// The id of the server that sent `payload` (`server.id`, or IDZ's `id`).
fn sender(payload: &[u8]) -> String {
    let json: Value = serde_json::from_slice(payload).unwrap();
    json["server"]["id"].as_str().or(json["id"].as_str()).unwrap_or_default().to_owned()
}

/// Asks every server (a `PING` subject) and files each answer under the
/// server it came from; both must answer.
async fn ask_both(
    batch: &mut Batch,
    client: &async_nats::Client,
    kind: &str,
    subject: &str,
    body: &str,
    warden_id: &str,
    peer: Option<&str>,
) {
    let got = answers(client, subject, body, 2, WAIT).await;
    assert_eq!(got.len(), 2, "both servers answer {subject} {body}");
    let mut from_warden = 0;
    for answer in got {
        if answer.sender().as_deref() == Some(warden_id) {
            from_warden += 1;
            batch.add_answer(kind, format!("warden {subject} {body}"), answer);
        } else if let Some(peer) = peer {
            batch.add_answer(kind, format!("{peer} {subject} {body}"), answer);
        }
    }
    assert_eq!(from_warden, 1, "warden answers {subject} once");
}

/// Asks warden alone (by its id, or a subject only it answers), as `who`.
async fn ask_warden(
    batch: &mut Batch,
    (client, who): (&async_nats::Client, &str),
    kind: &str,
    subject: &str,
    body: &str,
    warden_id: &str,
) {
    let mut got = answers(client, subject, body, 1, WAIT).await;
    assert_eq!(got.len(), 1, "an answer to {subject} {body}");
    assert_eq!(got[0].sender().as_deref(), Some(warden_id), "warden answers {subject}");
    batch.add_answer(kind, format!("warden (as {who}) {subject} {body}"), got.remove(0));
}

/// A tenant's request about its own account, as `who`: warden answers it
/// once, and in a mixed cluster the peer may answer too, in either order
/// (the request goes on in the system account, as nats-server's import
/// sends it: docs/nats-cli.md); warden's answer is filed.
async fn ask_tenant(
    batch: &mut Batch,
    (client, who): (&async_nats::Client, &str),
    kind: &str,
    subject: &str,
    warden_id: &str,
) {
    let got = answers(client, subject, "", 2, Duration::from_secs(2)).await;
    let mut mine: Vec<Answer> = got.into_iter().filter(|a| a.sender().as_deref() == Some(warden_id)).collect();
    assert_eq!(mine.len(), 1, "warden answers {subject} once");
    batch.add_answer(kind, format!("warden (as {who}) {subject} "), mine.remove(0));
}

/// The next message on `sub` that `server_id` sent.
async fn next_from(sub: &mut async_nats::Subscriber, server_id: &str) -> async_nats::Message {
    next_where(sub, server_id, |_| true).await
}

/// The next message on `sub` that `server_id` sent and `wanted` accepts.
async fn next_where(
    sub: &mut async_nats::Subscriber,
    server_id: &str,
    wanted: impl Fn(&Value) -> bool,
) -> async_nats::Message {
    within(async {
        loop {
            let message = sub.next().await.expect("subscription open");
            let json: Value = serde_json::from_slice(&message.payload).unwrap();
            if sender(&message.payload) == server_id && wanted(&json) {
                return message;
            }
        }
    })
    .await
}

/// `extra`: more keys of the cluster block, after a comma.
fn cluster_config(name: &str, listen: &str, routes: &[String], extra: &str) -> String {
    let routes: Vec<String> = routes.iter().map(|r| format!("\"{r}\"")).collect();
    let routes = routes.join(", ");
    format!(
        "server_name: {name}\n{ACCOUNTS}\ncluster {{ name: c1, listen: \"{listen}\", routes: [{routes}]{extra} }}\n"
    )
}

/// A warden node routed to nats-server `binary`; every `$SYS` request the
/// CLI sends, asked of warden (and of both servers for the `PING` ones),
/// and every event, decoded. `decode_peer`: decode nats-server's answers
/// too (only 2.9.10's fit 2.9.10's types).
async fn every_answer_decodes(binary: &Path, name: &str, decode_peer: bool) {
    let Some(decoder) = decoder() else { return };
    // nats-server's routes carry no credentials.
    let config = cluster_config("w1", "127.0.0.1:0", &[], ", insecure_allow_unauthenticated_routes: true");
    let w = start(options_from(&config)).await;
    let wid = w.broker().identity.id.clone();
    let (client_port, route_port) = (free_port(), free_port());
    let route = format!("nats-route://{}", w.cluster().unwrap().listen_addr);
    let peer_config = cluster_config(name, &format!("127.0.0.1:{route_port}"), &[route], "");
    let _peer = spawn_nats_server(binary, name, &format!("listen: 127.0.0.1:{client_port}\n{peer_config}"));
    let peer_url = format!("nats://127.0.0.1:{client_port}");
    let cluster = w.cluster().unwrap().clone();
    eventually("the route to nats-server", || cluster.route_count() == 1).await;
    let peer = decode_peer.then_some(name);
    let mut batch = Batch::default();

    let sys = login(&url(&w), "sys", "ps").await;
    // The events, subscribed before anything happens.
    let mut connects = sys.subscribe("$SYS.ACCOUNT.*.CONNECT").await.unwrap();
    let mut disconnects = sys.subscribe("$SYS.ACCOUNT.*.DISCONNECT").await.unwrap();
    let mut auth_errors = sys.subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR").await.unwrap();
    let mut statsz = sys.subscribe("$SYS.SERVER.*.STATSZ").await.unwrap();
    let mut conns = sys.subscribe("$SYS.ACCOUNT.*.SERVER.CONNS").await.unwrap();
    sys.flush().await.unwrap();
    let a = login(&url(&w), "a", "pa").await;
    let _orders = a.subscribe("orders.*").await.unwrap();
    a.flush().await.unwrap();
    // Clients on nats-server too: its counters are not all zero either.
    let peer_sys = login(&peer_url, "sys", "ps").await;
    let peer_a = login(&peer_url, "a", "pa").await;
    let _peer_orders = peer_a.subscribe("orders.*").await.unwrap();
    peer_a.flush().await.unwrap();
    // Until warden answers PING with two servers' answers, interest is still
    // on its way across the route.
    within(async { while answers(&sys, "$SYS.REQ.SERVER.PING", "", 2, Duration::from_millis(500)).await.len() < 2 {} })
        .await;

    // `nats server list` and `nats server ping`.
    ask_both(&mut batch, &sys, "statsz", "$SYS.REQ.SERVER.PING", "", &wid, peer).await;
    ask_both(&mut batch, &sys, "statsz", "$SYS.REQ.SERVER.PING.STATSZ", "", &wid, peer).await;
    // `nats server info`, `nats server request ...`, `nats server report ...`.
    ask_both(&mut batch, &sys, "varz", "$SYS.REQ.SERVER.PING.VARZ", "", &wid, peer).await;
    ask_both(
        &mut batch,
        &sys,
        "connz",
        "$SYS.REQ.SERVER.PING.CONNZ",
        r#"{"subscriptions":true,"auth":true}"#,
        &wid,
        peer,
    )
    .await;
    ask_both(&mut batch, &sys, "subsz", "$SYS.REQ.SERVER.PING.SUBSZ", r#"{"subscriptions":true}"#, &wid, peer).await;
    ask_both(&mut batch, &sys, "routez", "$SYS.REQ.SERVER.PING.ROUTEZ", "", &wid, peer).await;
    ask_both(&mut batch, &sys, "accountz", "$SYS.REQ.SERVER.PING.ACCOUNTZ", "", &wid, peer).await;
    ask_both(&mut batch, &sys, "accountz", "$SYS.REQ.SERVER.PING.ACCOUNTZ", r#"{"account":"A"}"#, &wid, peer).await;
    ask_both(&mut batch, &sys, "healthz", "$SYS.REQ.SERVER.PING.HEALTHZ", "", &wid, peer).await;
    ask_both(&mut batch, &sys, "leafz", "$SYS.REQ.SERVER.PING.LEAFZ", "", &wid, peer).await;
    // `nats server info w1` / `nats server request ... --name w1`.
    let exact = r#"{"server_name":"w1","exact_match":true}"#;
    ask_warden(&mut batch, (&sys, "sys"), "varz", "$SYS.REQ.SERVER.PING.VARZ", exact, &wid).await;
    let by_id = |what: &str| format!("$SYS.REQ.SERVER.{wid}.{what}");
    for (kind, what, body) in [
        ("statsz", "STATSZ", ""),
        ("varz", "VARZ", ""),
        ("connz", "CONNZ", r#"{"subscriptions_detail":true,"auth":true,"sort":"msgs_to"}"#),
        ("subsz", "SUBSZ", r#"{"subscriptions":true,"test":"orders.new"}"#),
        ("routez", "ROUTEZ", r#"{"subscriptions":true}"#),
        ("accountz", "ACCOUNTZ", r#"{"account":"SYS"}"#),
        ("healthz", "HEALTHZ", ""),
        ("leafz", "LEAFZ", ""),
        ("idz", "IDZ", ""),
    ] {
        ask_warden(&mut batch, (&sys, "sys"), kind, &by_id(what), body, &wid).await;
    }
    // `nats account ...` and `nats server report accounts`: about account A.
    for (kind, what) in [("connz", "CONNZ"), ("subsz", "SUBSZ"), ("accinfo", "INFO"), ("accstatz", "STATZ")] {
        ask_both(&mut batch, &sys, kind, &format!("$SYS.REQ.ACCOUNT.A.{what}"), "", &wid, peer).await;
    }
    ask_both(&mut batch, &sys, "accinfo", "$SYS.REQ.ACCOUNT.B.INFO", "", &wid, peer).await;
    ask_both(&mut batch, &sys, "accountz", "$SYS.REQ.SERVER.PING.ACCOUNTZ", r#"{"account":"B"}"#, &wid, peer).await;
    ask_both(&mut batch, &sys, "accstatz", "$SYS.REQ.ACCOUNT.PING.STATZ", r#"{"accounts":["A"]}"#, &wid, peer).await;
    ask_both(&mut batch, &sys, "accstatz", "$SYS.REQ.ACCOUNT.PING.STATZ", r#"{"include_unused":true}"#, &wid, peer)
        .await;
    // An account's own requests (`nats account info` as a tenant).
    for (kind, subject) in [("connz", "$SYS.REQ.ACCOUNT.PING.CONNZ"), ("accstatz", "$SYS.REQ.ACCOUNT.PING.STATZ")] {
        ask_tenant(&mut batch, (&a, "a"), kind, subject, &wid).await;
    }
    ask_warden(&mut batch, (&a, "a"), "userinfo", "$SYS.REQ.USER.INFO", "", &wid).await;
    ask_warden(&mut batch, (&sys, "sys"), "userinfo", "$SYS.REQ.USER.INFO", "", &wid).await;
    // A refusal is nats-server's error envelope.
    ask_warden(&mut batch, (&sys, "sys"), "error", &by_id("CONNZ"), r#"{"sort":"bogus"}"#, &wid).await;

    // Events: a connect and a disconnect in A, a failed login, and the
    // periodic statistics.
    // A has `a` on warden; `b` makes two, then one again.
    let count = |n: u64| move |json: &Value| json["acc"] == "A" && json["conns"] == n;
    let b = login(&url(&w), "b", "pb").await;
    batch.add("connect", "warden $SYS.ACCOUNT.A.CONNECT", &next_from(&mut connects, &wid).await.payload);
    let event = next_where(&mut conns, &wid, count(2)).await;
    batch.add("accconns", "warden $SYS.ACCOUNT.A.SERVER.CONNS (2)", &event.payload);
    drop(b);
    batch.add("disconnect", "warden $SYS.ACCOUNT.A.DISCONNECT", &next_from(&mut disconnects, &wid).await.payload);
    let event = next_where(&mut conns, &wid, count(1)).await;
    batch.add("accconns", "warden $SYS.ACCOUNT.A.SERVER.CONNS (1)", &event.payload);
    let mut raw = Raw::connect(w.local_addr()).await.0;
    raw.send("CONNECT {\"user\":\"a\",\"pass\":\"wrong\"}\r\n").await;
    raw.expect("-ERR 'Authorization Violation'").await;
    batch.add(
        "disconnect",
        "warden $SYS.SERVER.<id>.CLIENT.AUTH.ERR",
        &next_from(&mut auth_errors, &wid).await.payload,
    );
    batch.add("statsz", "warden $SYS.SERVER.<id>.STATSZ", &next_from(&mut statsz, &wid).await.payload);
    if let Some(peer) = peer {
        // The same events from nats-server, which check the decoder.
        let got = answers(&peer_sys, "$SYS.REQ.SERVER.PING", "", 2, WAIT).await;
        let peer_id = got.iter().filter_map(Answer::sender).find(|id| *id != wid).expect("nats-server answers");
        let b = login(&peer_url, "b", "pb").await;
        batch.add(
            "connect",
            format!("{peer} $SYS.ACCOUNT.A.CONNECT"),
            &next_from(&mut connects, &peer_id).await.payload,
        );
        let event = next_where(&mut conns, &peer_id, count(2)).await;
        batch.add("accconns", format!("{peer} $SYS.ACCOUNT.A.SERVER.CONNS"), &event.payload);
        drop(b);
        let event = next_from(&mut disconnects, &peer_id).await;
        batch.add("disconnect", format!("{peer} $SYS.ACCOUNT.A.DISCONNECT"), &event.payload);
        batch.add("statsz", format!("{peer} $SYS.SERVER.<id>.STATSZ"), &next_from(&mut statsz, &peer_id).await.payload);
    }

    if !decode_peer {
        // Routes pooled with 2.15.1 list the system account's own
        // connection with `account`, a 2.10+ field (2.15.1's answers carry
        // it too, and `route_pool.rs` holds the list against 2.15.1's):
        // checked here, then left out for 2.9.10's types.
        batch.drop_route_accounts(&["SYS"]);
    }
    batch.assert_decodes(&decoder);
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sys_answer_decodes_into_nats_server_2_9_types_in_a_cluster_with_2_9() {
    let Some(binary) = common::deps::nats_server_2_9() else { return };
    every_answer_decodes(&binary, "n29", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sys_answer_decodes_into_nats_server_2_9_types_in_a_cluster_with_2_15() {
    let Some(binary) = common::deps::nats_server_2_15() else { return };
    every_answer_decodes(&binary, "n215", false).await;
}

/// The decoder is strict: warden's own answers, changed by one field,
/// fail (an unknown field, a mistyped one, a missing one, a zero one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decoder_refuses_unknown_mistyped_and_missing_fields() {
    let Some(decoder) = decoder() else { return };
    let server = start(options_from(ACCOUNTS)).await;
    let sys = login(&url(&server), "sys", "ps").await;
    let stats = answers(&sys, "$SYS.REQ.SERVER.PING", "", 1, WAIT).await.remove(0).payload;
    let idz = answers(&sys, "$SYS.REQ.SERVER.PING.IDZ", "", 1, WAIT).await.remove(0).payload;
    let changed = |payload: &[u8], change: &dyn Fn(&mut Value)| {
        let mut json: Value = serde_json::from_slice(payload).unwrap();
        change(&mut json);
        serde_json::to_vec(&json).unwrap()
    };
    let mut batch = Batch::default();
    batch.add("statsz", "as sent", &stats);
    batch.add("idz", "as sent", &idz);
    batch.add("statsz", "unknown field", &changed(&stats, &|j| j["statsz"]["bogus"] = 1.into()));
    batch.add("statsz", "mistyped field", &changed(&stats, &|j| j["statsz"]["mem"] = "1 MiB".into()));
    batch.add(
        "statsz",
        "missing field",
        &changed(&stats, &|j| drop(j["server"].as_object_mut().unwrap().remove("ver"))),
    );
    batch.add("statsz", "zero field", &changed(&stats, &|j| j["statsz"]["cores"] = 0.into()));
    batch.add("idz", "mistyped field", &changed(&idz, &|j| j["id"] = 7.into()));
    batch.add("idz", "unknown field", &changed(&idz, &|j| j["cluster"] = "c1".into()));
    let (results, _) = batch.decode(&decoder);
    let refused: Vec<&str> = results.iter().filter(|(_, why)| why.is_some()).map(|(label, _)| label.as_str()).collect();
    assert_eq!(
        refused,
        ["unknown field", "mistyped field", "missing field", "zero field", "mistyped field", "unknown field"],
        "{results:?}"
    );
    server.shutdown().await;
}
