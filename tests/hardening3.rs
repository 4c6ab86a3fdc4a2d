//! Security hardening III: the defences that turned against legitimate
//! users, and the `$SYS` services, audit trail, WebSocket listener and
//! service imports tried again as an attacker would, end to end with raw
//! sockets and stock clients. SECURITY.md ("What we tested") gives the
//! figures.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::binary::serve_logged;
use common::ws::RawWs;
use common::*;
use futures::StreamExt;
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};

/// Connects to `addr` from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
    within(socket.connect(addr)).await.expect("connect")
}

/// Logs in as `user` over a raw connection from `from`; returns the first
/// line the server answered the CONNECT + PING with.
async fn raw_login(addr: SocketAddr, from: Ipv4Addr, user: &str, pass: &str) -> String {
    let mut raw = Raw::new(connect_from(from, addr).await);
    let info = raw.line().await;
    assert!(info.starts_with("INFO "), "{info}");
    let connect = serde_json::json!({"verbose": false, "user": user, "pass": pass});
    raw.send(format!("CONNECT {connect}\r\nPING\r\n")).await;
    raw.next_non_ping().await
}

fn users(names: impl Iterator<Item = String>) -> String {
    names.map(|n| format!("{{ user: {n}, password: \"{n}-pw\" }}")).collect::<Vec<_>>().join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_password_behind_one_address_never_locks_out_its_neighbours() {
    let list = users((0..50).map(|i| format!("u{i}")).chain(["stale".to_owned()]));
    let server = start(options_from(&format!("authorization {{ users: [{list}] }}\n"))).await;
    let addr = server.local_addr();
    let local = Ipv4Addr::LOCALHOST;
    let run = Duration::from_secs(20);
    let started = Instant::now();
    // The client with a stale password, reconnecting every 100 ms.
    let stale = tokio::spawn(async move {
        let mut attempts = 0;
        while started.elapsed() < run {
            let answer = raw_login(addr, local, "stale", "old-password").await;
            assert_eq!(answer, "-ERR 'Authorization Violation'");
            attempts += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        attempts
    });
    // 50 colleagues behind the same address, connecting and reconnecting.
    let slowest = Arc::new(parking_lot::Mutex::new(Duration::ZERO));
    let colleagues: Vec<_> = (0..50)
        .map(|i| {
            let slowest = slowest.clone();
            tokio::spawn(async move {
                let mut logins = 0;
                while started.elapsed() < run {
                    let begun = Instant::now();
                    let user = format!("u{i}");
                    let answer = raw_login(addr, local, &user, &format!("{user}-pw")).await;
                    let took = begun.elapsed();
                    assert_eq!(answer, "PONG", "{user} after {took:?}");
                    {
                        let mut worst = slowest.lock();
                        *worst = (*worst).max(took);
                    }
                    logins += 1;
                    tokio::time::sleep(Duration::from_millis(400 + 10 * i)).await;
                }
                logins
            })
        })
        .collect();
    let mut logins = 0;
    for colleague in colleagues {
        logins += tokio::time::timeout(run + WAIT, colleague).await.unwrap().unwrap();
    }
    let attempts = tokio::time::timeout(run + WAIT, stale).await.unwrap().unwrap();
    let checked = server.gate().throttle().failures(local.into());
    let slowest = *slowest.lock();
    eprintln!(
        "{logins} logins of 50 users, slowest {slowest:?}; the stale client: {attempts} attempts, {checked} checked"
    );
    assert!(slowest < Duration::from_secs(1), "every colleague in within 1 s: {slowest:?}");
    // 4 free, the ramp (0.25 + 0.5 + 1 + 2 s), then one per 5 s.
    assert!(checked <= 13, "at most one guess per 5 s after the ramp: {checked} in 20 s");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guess_rate_at_one_user_is_bounded_however_many_connections() {
    let server = start(options_from("authorization { users: [ { user: victim, password: \"right\" } ] }\n")).await;
    let addr = server.local_addr();
    let from = Ipv4Addr::new(127, 0, 0, 7);
    let run = Duration::from_secs(8);
    let started = Instant::now();
    // 20 connections guessing in parallel, each reconnecting at once.
    let guessers: Vec<_> = (0..20)
        .map(|i| {
            tokio::spawn(async move {
                let mut answers = 0;
                while started.elapsed() < run {
                    let answer = raw_login(addr, from, "victim", &format!("guess-{i}-{answers}")).await;
                    assert_eq!(answer, "-ERR 'Authorization Violation'");
                    answers += 1;
                }
                answers
            })
        })
        .collect();
    let mut answers = 0;
    for guesser in guessers {
        answers += tokio::time::timeout(run + WAIT, guesser).await.unwrap().unwrap();
    }
    let checked = server.gate().throttle().failures(from.into());
    eprintln!("20 parallel guessers for {run:?}: {answers} answers, {checked} guesses checked");
    // Checks at 0, 0, 0, 0, 0.25, 0.75, 1.75, 3.75, then every 5 s: 9 in
    // 8 s, and one more for an attempt that started before the end.
    assert!(checked <= 10, "{checked} guesses checked in {run:?}");
    let throttled = server.broker().security.auth_throttled.load(Ordering::Relaxed);
    assert!(throttled > 0 && answers as u64 > throttled, "the rest were answered, unchecked: {throttled}");
    // Answered within the auth timeout, never timed out: every answer above
    // was the violation (a timeout would have said so).
    assert_eq!(raw_login(addr, Ipv4Addr::new(127, 0, 0, 8), "victim", "right").await, "PONG");
    server.shutdown().await;
}

/// Accounts for the `$SYS` tests: a system account, tenants A and B, and
/// accounts whose names look like the request's tokens.
const SYS_ACCOUNTS: &str = "accounts {
  SYS { users: [ { user: sys, password: sys-pw } ] }
  A { users: [ { user: a, password: a-pw } ] }
  B { users: [ { user: b, password: b-pw } ] }
  PING { users: [ { user: ping, password: ping-pw } ] }
  SYSLIKE { users: [ { user: syslike, password: syslike-pw } ] }
  NARROW { users: [
    { user: narrow, password: narrow-pw, permissions: { publish: { allow: [\"$SYS.REQ.ACCOUNT.PING.STATZ\", \"$SYS.REQ.USER.INFO\", \"_INBOX.>\"] } } }
    { user: watcher, password: watcher-pw }
  ] }
}
system_account: SYS
";

async fn client(url: &str, user: &str) -> async_nats::Client {
    let pass = format!("{user}-pw");
    within(async_nats::ConnectOptions::with_user_and_password(user.into(), pass).connect(url)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_sys_flood_leaves_every_other_tenant_answered() {
    let server = start(options_from(SYS_ACCOUNTS)).await;
    let url = url(&server);
    // Tenant A pipelines STATZ requests from three connections.
    let flooding = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut floods = Vec::new();
    for _ in 0..3 {
        let mut raw = Raw::login(server.local_addr(), "a", "a-pw").await;
        let (flooding, sent) = (flooding.clone(), sent.clone());
        floods.push(tokio::spawn(async move {
            let batch = "PUB $SYS.REQ.ACCOUNT.PING.STATZ _INBOX.flood 0\r\n\r\n".repeat(200);
            while flooding.load(Ordering::Relaxed) {
                raw.send(&batch).await;
                raw.ping_pong().await;
                sent.fetch_add(200, Ordering::Relaxed);
            }
        }));
    }
    let b = client(&url, "b").await;
    let mut answered = 0;
    for _ in 0..20 {
        let reply = within(b.request("$SYS.REQ.USER.INFO", "".into())).await;
        let reply = reply.expect("B's own request answered during A's flood");
        let info: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(info["data"]["account"], "B");
        let statz = within(b.request("$SYS.REQ.ACCOUNT.PING.STATZ", "".into())).await;
        let statz: Value = serde_json::from_slice(&statz.expect("B's STATZ answered").payload).unwrap();
        assert_eq!(statz["data"]["account_statz"][0]["acc"], "B");
        answered += 2;
    }
    flooding.store(false, Ordering::Relaxed);
    for flood in floods {
        within(flood).await.unwrap();
    }
    let dropped = server.broker().accounts.get("A").unwrap().requests.dropped();
    eprintln!(
        "A sent {} requests ({dropped} over its budget); B: {answered} of 40 answered",
        sent.load(Ordering::Relaxed)
    );
    assert!(dropped > 0, "the flood was over A's budget");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_named_like_request_tokens_read_only_their_own_statistics() {
    let server = start(options_from(SYS_ACCOUNTS)).await;
    let url = url(&server);
    // B has a connection, so it has statistics to leak.
    let _b = client(&url, "b").await;
    for user in ["ping", "syslike"] {
        let c = client(&url, user).await;
        let body = r#"{"accounts":["B","SYS","A"],"include_unused":true}"#;
        let reply = within(c.request("$SYS.REQ.ACCOUNT.PING.STATZ", body.into())).await.unwrap();
        let statz: Value = serde_json::from_slice(&reply.payload).unwrap();
        let accounts: Vec<&str> =
            statz["data"]["account_statz"].as_array().unwrap().iter().map(|a| a["acc"].as_str().unwrap()).collect();
        let own = if user == "ping" { "PING" } else { "SYSLIKE" };
        assert_eq!(accounts, vec![own], "{user} sees only its own account");
    }
    // The system account's form still reports the accounts it names.
    let sys = client(&url, "sys").await;
    let reply = within(sys.request("$SYS.REQ.ACCOUNT.PING.STATZ", r#"{"accounts":["B"]}"#.into())).await.unwrap();
    let statz: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(statz["data"]["account_statz"][0]["acc"], "B");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sys_service_answers_only_where_its_requester_may_publish() {
    let server = start(options_from(SYS_ACCOUNTS)).await;
    let watcher = client(&url(&server), "watcher").await;
    let mut alerts = watcher.subscribe("alerts.critical").await.unwrap();
    watcher.flush().await.unwrap();
    let mut narrow = Raw::login(server.local_addr(), "narrow", "narrow-pw").await;
    narrow.send("PUB $SYS.REQ.ACCOUNT.PING.STATZ alerts.critical 0\r\n\r\nPING\r\n").await;
    narrow.expect("-ERR 'Permissions Violation for Publish with Reply of \"alerts.critical\"'").await;
    narrow.expect("PONG").await;
    // To an inbox it is answered.
    narrow.send("SUB _INBOX.mine 1\r\nPUB $SYS.REQ.ACCOUNT.PING.STATZ _INBOX.mine 0\r\n\r\n").await;
    let msg = narrow.next_non_ping().await;
    assert!(msg.starts_with("MSG _INBOX.mine 1 "), "{msg}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), alerts.next()).await.is_err(),
        "nothing on alerts.critical"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_from_one_address_cannot_erase_anothers_failures() {
    let config = format!(
        "authorization {{ failure_delay_max: \"0s\" }}\n{}",
        SYS_ACCOUNTS.replace(
            "A { users: [ { user: a, password: a-pw } ] }",
            "A { users: [ { user: a, password: a-pw }, { user: victim, password: victim-pw } ] }"
        )
    );
    let (serving, addr, log) = serve_logged("audit-budget", &config).await;
    let url = format!("nats://{addr}");
    let sys = client(&url, "sys").await;
    let mut auth_errors = sys.subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR").await.unwrap();
    sys.flush().await.unwrap();
    // One tenant's cheap successful logins from 127.0.0.1, for 3 s.
    let flooding = Arc::new(AtomicBool::new(true));
    let logins = Arc::new(AtomicUsize::new(0));
    let floods: Vec<_> = (0..16)
        .map(|_| {
            let (flooding, logins) = (flooding.clone(), logins.clone());
            tokio::spawn(async move {
                while flooding.load(Ordering::Relaxed) {
                    assert_eq!(raw_login(addr, Ipv4Addr::LOCALHOST, "a", "a-pw").await, "PONG");
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Four guesses at another user from another address, mid-flood.
    let guesser = Ipv4Addr::new(127, 0, 0, 9);
    for i in 0..4 {
        let answer = raw_login(addr, guesser, "victim", &format!("guess{i}")).await;
        assert_eq!(answer, "-ERR 'Authorization Violation'");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    flooding.store(false, Ordering::Relaxed);
    for flood in floods {
        within(flood).await.unwrap();
    }
    let logins = logins.load(Ordering::Relaxed);
    let mut events = 0;
    while events < 4 {
        let event = within(auth_errors.next()).await.unwrap();
        let event: Value = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(event["client"]["user"], "victim");
        events += 1;
    }
    // Every failure logged, and the flood's dropped lines in a digest
    // naming its address and user (written within a second or two).
    let failed =
        |log: &[String]| log.iter().filter(|l| l.contains("authentication failed") && l.contains("127.0.0.9")).count();
    let digest = |log: &[String]| {
        log.iter().any(|l| l.contains("over their source's budget") && l.contains("127.0.0.1") && l.contains("users=a"))
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = log.lock().unwrap().clone();
        if failed(&lines) == 4 && digest(&lines) {
            break;
        }
        assert!(Instant::now() < deadline, "failures logged: {}, digest: {}", failed(&lines), digest(&lines));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{logins} successful logins in 3 s; 4 of 4 failures logged and published");
    assert!(logins > 200, "the flood was over the budget: {logins}");
    drop(serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_cannot_lock_the_websocket_listener() {
    let config = "websocket { listen: \"127.0.0.1:0\", no_tls: true, handshake_timeout: \"20s\" }\n";
    let server = start(options_from(config)).await;
    let ws = server.websocket_addr().unwrap();
    // 256 silent sockets from 16 addresses: every handshake slot.
    let mut silent = Vec::new();
    for i in 0..256usize {
        silent.push(connect_from(Ipv4Addr::new(127, 3, 0, (i / 16) as u8 + 1), ws).await);
    }
    let mut upgraded = 0;
    for _ in 0..12 {
        let (mut raw, _) = RawWs::open(ws, "").await;
        raw.frame(0x81, b"CONNECT {\"verbose\":false}\r\nPING\r\n").await;
        assert!(raw.until("PONG").await.contains("PONG"));
        upgraded += 1;
    }
    eprintln!("{upgraded} of 12 upgrades through 256 silent sockets");
    assert_eq!(upgraded, 12);
    // The longest-waiting silent socket gave way (each upgrade, once
    // through, frees its slot again, so one eviction makes room for all).
    let mut closed = 0;
    for mut socket in silent {
        let mut byte = [0u8; 1];
        let read =
            tokio::time::timeout(Duration::from_millis(20), tokio::io::AsyncReadExt::read(&mut socket, &mut byte));
        if matches!(read.await, Ok(Ok(0) | Err(_))) {
            closed += 1;
        }
    }
    assert!(closed >= 1, "{closed} silent sockets closed");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_reply_subjects_cannot_pin_memory_through_a_service_import() {
    let config = "accounts {
  SVC { users: [ { user: svc, password: svc-pw } ], exports: [ { service: \"svc.>\" } ] }
  APP { users: [ { user: app, password: app-pw } ], imports: [ { service: { account: SVC, subject: \"svc.>\" } } ] }
}
";
    let (serving, addr, _) = serve_logged("reply-bytes", config).await;
    let url = format!("nats://{addr}");
    // A service that takes every request and never answers.
    let svc = client(&url, "svc").await;
    let mut requests = svc.subscribe("svc.>").await.unwrap();
    svc.flush().await.unwrap();
    const REQUESTS: usize = 32_768;
    let taken = tokio::spawn(async move {
        let mut n = 0;
        while n < REQUESTS {
            if within(requests.next()).await.is_none() {
                break;
            }
            n += 1;
        }
        n
    });
    let before = serving.rss_bytes();
    let mut app = Raw::login(addr, "app", "app-pw").await;
    let reply = "r".repeat(4000);
    let batch: String = (0..64).map(|i| format!("PUB svc.x _INBOX.{i}.{reply} 0\r\n\r\n")).collect();
    for _ in 0..REQUESTS / 64 {
        app.send(&batch).await;
    }
    app.ping_pong().await;
    assert_eq!(within(taken).await.unwrap(), REQUESTS);
    let after = serving.rss_bytes();
    let grown = after.saturating_sub(before);
    eprintln!("{REQUESTS} unanswered requests with 4 KiB replies: RSS {before} -> {after} (+{} MiB)", grown >> 20);
    // Unbounded in bytes this was +128 MiB (32,768 × 4 KiB).
    assert!(grown < 48 << 20, "RSS grew by {} MiB", grown >> 20);
    drop(serving);
}
