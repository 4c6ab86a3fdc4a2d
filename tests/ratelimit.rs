//! Publish rate limits end to end with async-nats: a user held to its rate
//! by backpressure, losing nothing and seeing no error, while another user
//! on the same server keeps answering at once; an account's limit shared
//! by its connections; and the config's refusals.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use tokio::time::Instant;

static PAYLOAD: bytes::Bytes = bytes::Bytes::from_static(&[b'x'; 8192]);

const CONFIG: &str = r#"
accounts {
  APP: { users: [
    {user: flood, password: flood-pw, rate_limit: { msgs_per_sec: 1000, burst_msgs: 50 }}
    {user: calm, password: calm-pw}
    {user: cut, password: cut-pw, rate_limit: { msgs_per_sec: 100, burst_msgs: 10, rate_exceeded: close, close_after: "2s" }}
  ] }
  SYS: { users: [ {user: ops, password: ops-pw} ] }
  FREE: { users: [ {user: free, password: free-pw} ] }
  TEAM: {
    users: [ {user: t1, password: t1-pw}, {user: t2, password: t2-pw} ]
    limits: { rate_limit: { msgs_per_sec: 1000, burst_msgs: 50 } }
  }
}
system_account: SYS
http: "127.0.0.1:0"
"#;

/// The body of `GET path` on the monitoring port, as JSON.
async fn monitor(server: &warden::server::Server, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.monitor_addr().expect("monitoring is on");
    let mut stream = within_secs(10, tokio::net::TcpStream::connect(addr)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    within_secs(10, stream.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let body = answer.split_once("\r\n\r\n").expect("a body").1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// Logs in as `user`, counting in `trouble` every server error and
/// disconnection the client sees.
async fn login(server: &warden::server::Server, user: &str, trouble: &Arc<AtomicU64>) -> async_nats::Client {
    let pass = format!("{user}-pw");
    let who = user.to_owned();
    let trouble = trouble.clone();
    async_nats::ConnectOptions::with_user_and_password(user.into(), pass)
        .event_callback(move |event| {
            let (who, trouble) = (who.clone(), trouble.clone());
            async move {
                if matches!(
                    event,
                    async_nats::Event::ServerError(_)
                        | async_nats::Event::Disconnected
                        | async_nats::Event::SlowConsumer(_)
                ) {
                    trouble.fetch_add(1, Ordering::Relaxed);
                    eprintln!("{who}: {event} at {:?}", std::time::SystemTime::now());
                }
            }
        })
        // A small client-side queue: what backpressure leaves queued in the
        // client drains at the limited rate once the flood stops.
        .client_capacity(64)
        .connect(url(server))
        .await
        .unwrap()
}

/// Subscribes `client` to `subject`, and returns once the server has the
/// subscription: async-nats' flush only empties the client's buffer, so a
/// round trip through a probe subject, after it on the same connection,
/// is what proves it.
async fn subscribed(client: &async_nats::Client, subject: &'static str) -> async_nats::Subscriber {
    let sub = client.subscribe(subject).await.unwrap();
    let inbox = client.new_inbox();
    let mut probe = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "probe".into()).await.unwrap();
    within_secs(10, probe.next()).await.expect("the probe comes back");
    sub
}

/// Publishes 8 KiB messages on `subject` as fast as the client can until
/// `stop`, then says how many it published. (Large messages keep what TCP
/// buffers while the publisher is held to a few hundred, which drain in
/// well under a second at the limited rate.)
fn flood(client: async_nats::Client, subject: &'static str, stop: Instant) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut sent = 0u64;
        while Instant::now() < stop {
            client.publish(subject, PAYLOAD.clone()).await.unwrap();
            sent += 1;
        }
        client.flush().await.unwrap();
        sent
    })
}

/// Counts what `sub` receives, by time since `start`, until `total` arrived
/// (or the bound ran out).
async fn count(mut sub: async_nats::Subscriber, start: Instant, window: (Duration, Duration)) -> (u64, u64) {
    let (mut in_window, mut all) = (0u64, 0u64);
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        all += 1;
        let at = start.elapsed();
        if at >= window.0 && at < window.1 {
            in_window += 1;
        }
    }
    (in_window, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_held_to_its_rate_losing_nothing_while_its_neighbour_is_not() {
    let server = start(options_from(CONFIG)).await;
    let trouble = Arc::new(AtomicU64::new(0));
    let (flooder, calm) = (login(&server, "flood", &trouble).await, login(&server, "calm", &trouble).await);
    let ops = login(&server, "ops", &trouble).await;
    let advisories = subscribed(&ops, "$SYS.ACCOUNT.APP.RATE.HELD").await;
    let sub = subscribed(&calm, "flood.>").await;
    let start = Instant::now();
    let counter = tokio::spawn(count(sub, start, (Duration::from_secs(1), Duration::from_secs(11))));
    let sent = flood(flooder.clone(), "flood.x", start + Duration::from_secs(11));

    // Meanwhile the neighbour's requests are answered at once.
    let mut service = subscribed(&calm, "svc").await;
    let responder = calm.clone();
    tokio::spawn(async move {
        while let Some(msg) = service.next().await {
            if let Some(reply) = msg.reply {
                responder.publish(reply, "ok".into()).await.unwrap();
            }
        }
    });
    calm.flush().await.unwrap();
    let asker = login(&server, "calm", &trouble).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let asked = Instant::now();
        asker.request("svc", "?".into()).await.unwrap();
        slowest = slowest.max(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(slowest < Duration::from_millis(250), "the neighbour waited {slowest:?}");

    let sent = within_secs(40, sent).await.unwrap();
    let (per_10s, received) = within_secs(40, counter).await.unwrap();
    assert_eq!(received, sent, "every message published arrived");
    assert!((9_500..=10_500).contains(&per_10s), "{per_10s} messages in 10 s at 1,000 a second");
    eprintln!("held to {per_10s} messages in 10 s; {received} of {sent} arrived; slowest request {slowest:?}");
    let held = server.broker().clients().iter().map(|c| c.stats.held_nanos.load(Ordering::Relaxed)).max().unwrap();
    assert!(held > 1_000_000_000, "the flooder was held back {held} ns");
    let total = server.broker().stats.rate_held_nanos.load(Ordering::Relaxed);
    assert!(total >= held, "the server-wide counter has it: {total}");
    // The system account heard that flood was held back (once a stretch
    // over its rate, after 5 s of it).
    let advisory = within_secs(10, advisories.take(1).next()).await.expect("an advisory");
    let advisory: serde_json::Value = serde_json::from_slice(&advisory.payload).unwrap();
    assert_eq!(advisory["type"], "io.warden.advisory.v1.rate_held", "{advisory}");
    assert_eq!(advisory["client"]["user"], "flood", "{advisory}");
    assert!(advisory["over"].as_u64().is_some_and(|ns| ns >= 5_000_000_000), "{advisory}");
    let connz = monitor(&server, "/connz?auth=1").await;
    let flood = connz["connections"].as_array().unwrap().iter().find(|c| c["authorized_user"] == "flood").unwrap();
    assert!(flood["rate_held"].as_str().is_some_and(|h| h.ends_with('s')), "{flood}");
    let calm = connz["connections"].as_array().unwrap().iter().find(|c| c["authorized_user"] == "calm").unwrap();
    assert!(calm.get("rate_held").is_none(), "only a held connection shows it: {calm}");
    assert_eq!(trouble.load(Ordering::Relaxed), 0, "no client saw an error or a disconnection");
    server.shutdown().await;
}

/// An account's limit holds its connections together to its rate, the
/// system account hears when the account has been over it for 5 s, and
/// another account's user on the same server is not held at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_limit_holds_across_its_connections() {
    let server = start(options_from(CONFIG)).await;
    let trouble = Arc::new(AtomicU64::new(0));
    let ops = login(&server, "ops", &trouble).await;
    let advisories = subscribed(&ops, "$SYS.ACCOUNT.TEAM.RATE.HELD").await;
    let (t1, t2) = (login(&server, "t1", &trouble).await, login(&server, "t2", &trouble).await);
    let watcher = login(&server, "t1", &trouble).await;
    let sub = subscribed(&watcher, "team.>").await;
    let free = login(&server, "free", &trouble).await;
    let free_sub = subscribed(&free, "free.x").await;
    let start = Instant::now();
    let counter = tokio::spawn(count(sub, start, (Duration::from_secs(1), Duration::from_secs(6))));
    let stop = start + Duration::from_secs(6);
    // The publishers stay open until everything is counted: a client that
    // closes with unread input resets its socket, and the kernel then
    // discards what the held server has not read yet.
    let (a, b) = (flood(t1.clone(), "team.a", stop), flood(t2.clone(), "team.b", stop));
    // Meanwhile the other account publishes 20,000 messages, twenty
    // seconds' worth at TEAM's rate: none of it is held.
    let free_count = tokio::spawn(count(free_sub, start, (Duration::ZERO, Duration::from_secs(60))));
    for _ in 0..20_000 {
        free.publish("free.x", bytes::Bytes::from_static(b"free")).await.unwrap();
    }
    free.flush().await.unwrap();
    let free_done = start.elapsed();
    let (a, b) = (within_secs(40, a).await.unwrap(), within_secs(40, b).await.unwrap());
    let (per_5s, received) = within_secs(40, counter).await.unwrap();
    let seen: Vec<(u64, u64, u64)> = server
        .broker()
        .clients()
        .iter()
        .map(|c| (c.id, c.stats.in_msgs.load(Ordering::Relaxed), c.stats.out_msgs.load(Ordering::Relaxed)))
        .collect();
    assert_eq!(received, a + b, "every message published arrived: sent {a} + {b}; server (cid, in, out): {seen:?}");
    assert!((4_750..=5_250).contains(&per_5s), "{per_5s} messages in 5 s at 1,000 a second for the account");
    assert!(a > 1_000 && b > 1_000, "both connections got their turn: {a} and {b}");
    assert_eq!(within_secs(40, free_count).await.unwrap().1, 20_000, "the other account's messages all arrived");
    assert!(free_done < Duration::from_secs(5), "the other account published 20,000 in {free_done:?}");
    let free_held: u64 = server
        .broker()
        .clients()
        .iter()
        .filter(|c| c.meta.lock().account.as_deref() == Some("FREE"))
        .map(|c| c.stats.held_nanos.load(Ordering::Relaxed))
        .sum();
    assert_eq!(free_held, 0, "no FREE connection was held");
    // The account advisory: once, for the stretch, with the account's limit.
    let mut advisories = advisories;
    let account_advisory = within_secs(10, async {
        while let Some(msg) = advisories.next().await {
            let json: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
            if json["type"] == "io.warden.advisory.v1.account_rate_held" {
                return json;
            }
        }
        panic!("the advisories ended")
    })
    .await;
    assert_eq!(account_advisory["acc"], "TEAM", "{account_advisory}");
    assert_eq!(account_advisory["rate_limit"]["msgs_per_sec"], 1000, "{account_advisory}");
    assert!(account_advisory["over"].as_u64().is_some_and(|ns| ns >= 5_000_000_000), "{account_advisory}");
    drop((t1, t2));
    let team = server.broker().accounts.get("TEAM").unwrap();
    let held = team.state().rate.as_ref().unwrap().held();
    assert!(held > Duration::from_secs(1), "the account's counter: {held:?}");
    let accountz = monitor(&server, "/accountz?acc=TEAM").await;
    let rate = &accountz["account_detail"]["rate_limit"];
    assert_eq!((rate["msgs_per_sec"].as_u64(), rate["burst_msgs"].as_u64()), (Some(1000), Some(50)), "{accountz}");
    assert!(rate["held"].as_str().is_some_and(|h| h.ends_with('s')), "{accountz}");
    assert_eq!(trouble.load(Ordering::Relaxed), 0, "no client saw an error or a disconnection");
    server.shutdown().await;
}

async fn within_secs<F: std::future::Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f).await.expect("within the bound")
}

/// `rate_exceeded: close`: a connection over its rate for `close_after`
/// without a break is closed (no `-ERR`: none of nats-server's fits),
/// while a neighbour goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_exceeded_close_cuts_a_publisher_that_stays_over_its_rate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(options_from(CONFIG)).await;
    let trouble = Arc::new(AtomicU64::new(0));
    let calm = login(&server, "calm", &trouble).await;
    let stream = tokio::net::TcpStream::connect(server.local_addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(b"CONNECT {\"user\":\"cut\",\"pass\":\"cut-pw\",\"verbose\":false}\r\n").await.unwrap();
    let start = Instant::now();
    let flood = tokio::spawn(async move {
        let batch = b"PUB cut.x 2\r\nhi\r\n".repeat(100);
        while writer.write_all(&batch).await.is_ok() {}
    });
    let mut seen = Vec::new();
    let closed = within_secs(15, async {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break start.elapsed(),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed >= Duration::from_secs(2) && closed < Duration::from_secs(6), "closed after {closed:?}");
    assert!(!String::from_utf8_lossy(&seen).contains("-ERR"), "{}", String::from_utf8_lossy(&seen));
    let _ = within_secs(10, flood).await;
    calm.publish("calm.x", "still here".into()).await.unwrap();
    calm.flush().await.unwrap();
    assert_eq!(trouble.load(Ordering::Relaxed), 0);
    server.shutdown().await;
}

#[test]
fn rate_limit_blocks_are_checked() {
    for (block, says) in [
        ("{}", "rate_limit sets no rate"),
        ("{ burst_msgs: 10, bytes_per_sec: 1MB }", "burst_msgs needs its rate (msgs_per_sec)"),
        ("{ msgs_per_sec: -1 }", "msgs_per_sec"),
        ("{ msg_per_sec: 5 }", "did you mean `msgs_per_sec`?"),
        ("{ msgs_per_sec: 5, close_after: \"2s\" }", "close_after needs rate_exceeded: close"),
        ("{ msgs_per_sec: 5, rate_exceeded: cut }", "rate_exceeded must be \"wait\" or \"close\""),
        ("{ msgs_per_sec: 5, rate_exceeded: close, close_after: \"0s\" }", "close_after must be more than zero"),
    ] {
        let config = format!("authorization {{ users = [ {{user: u, password: p, rate_limit: {block}}} ] }}");
        let err = warden::config::load_str(&config, "r.conf").expect_err("refused").to_string();
        assert!(err.contains(says) && err.starts_with("r.conf:1:"), "{block}: {err}");
    }
    let ok = warden::config::load_str(
        "authorization { users = [ {user: u, password: p, rate_limit: { bytes_per_sec: 1MB }} ] }",
        "r.conf",
    )
    .unwrap();
    let limit = ok.options.authorization.unwrap().users[0].rate_limit.unwrap();
    assert_eq!((limit.bytes_per_sec, limit.burst_bytes, limit.msgs_per_sec), (1 << 20, 1 << 20, 0));
}

/// `warden check` prints each user's and each account's limits.
#[test]
fn warden_check_prints_the_limits() {
    let loaded = warden::config::load_str(CONFIG, "r.conf").unwrap();
    let summary = warden::config::summary(&loaded.options);
    assert!(summary.contains("user \"flood\": no permissions: may publish and subscribe to anything in its account; rate_limit 1000 msgs/s (burst 50)"), "{summary}");
    assert!(summary.contains("  limits: rate_limit 1000 msgs/s (burst 50)"), "{summary}");
    assert!(summary.contains("rate_limit 100 msgs/s (burst 10), closed after 2s over it"), "{summary}");
}
