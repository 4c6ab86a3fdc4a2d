//! Soak: many `async-nats` clients doing mixed publish, subscribe and
//! request/reply against the real `warden` binary for a while, with the
//! server's resident memory sampled from /proc.
//!
//! Checked: every subscriber (they all keep up) receives every message
//! published to its subject, every request is answered, and the server's
//! memory has no growth trend: after a warm-up, the average of the last
//! third of the samples is at most 20 % (plus 2 MiB) above the first third.
//!
//! Short by default (100 clients, 12 s, run in CI); `scripts/soak.sh` runs
//! the long form: `WARDEN_SOAK_CLIENTS=500 WARDEN_SOAK_SECS=300`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::binary::serve;
use common::*;
use futures::StreamExt;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Each client publishes this often.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Every this many publishes, a client also sends a request.
const REQUEST_EVERY: u64 = 5;
/// Subscribers per subject.
const GROUP: usize = 5;
/// Memory samples are taken this often.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Counts {
    sent: Vec<AtomicU64>,
    received: Vec<AtomicU64>,
    requests_ok: AtomicU64,
    requests_failed: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_mixed_traffic_loses_nothing_and_memory_stays_flat() {
    let clients = env_or("WARDEN_SOAK_CLIENTS", 100) as usize;
    let secs = env_or("WARDEN_SOAK_SECS", 12);
    let (serving, addr) = serve("soak", "").await;
    let url = format!("nats://{addr}");
    let groups = clients.div_ceil(GROUP);
    let counts = Arc::new(Counts {
        sent: (0..groups).map(|_| AtomicU64::new(0)).collect(),
        received: (0..clients).map(|_| AtomicU64::new(0)).collect(),
        ..Counts::default()
    });

    // Connect everyone and subscribe before traffic starts.
    let mut conns = Vec::new();
    for i in 0..clients {
        let client = within(async_nats::connect(url.as_str())).await.expect("connect");
        let mut sub = client.subscribe(format!("soak.g{}", i % groups)).await.unwrap();
        let c = counts.clone();
        tokio::spawn(async move {
            while sub.next().await.is_some() {
                c.received[i].fetch_add(1, Ordering::Relaxed);
            }
        });
        // One client in ten also serves requests, in one queue group.
        if i % 10 == 0 {
            let mut svc = client.queue_subscribe("soak.svc", "svc".into()).await.unwrap();
            let responder = client.clone();
            tokio::spawn(async move {
                while let Some(msg) = svc.next().await {
                    if let Some(reply) = msg.reply {
                        let _ = responder.publish(reply, msg.payload).await;
                    }
                }
            });
        }
        within(client.flush()).await.unwrap();
        conns.push(client);
    }

    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut workers = Vec::new();
    for (i, client) in conns.iter().cloned().enumerate() {
        let c = counts.clone();
        workers.push(tokio::spawn(async move {
            let group = i % groups;
            let payload = bytes::Bytes::from(vec![b'x'; 128]);
            // Spread the clients' ticks over the interval.
            let offset = PUBLISH_EVERY * (i as u32 % 100) / 100;
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, PUBLISH_EVERY);
            let mut n = 0u64;
            while Instant::now() < deadline {
                tick.tick().await;
                client.publish(format!("soak.g{group}"), payload.clone()).await.unwrap();
                c.sent[group].fetch_add(1, Ordering::Relaxed);
                n += 1;
                if n % REQUEST_EVERY == 0 {
                    let answered = tokio::time::timeout(WAIT, client.request("soak.svc", payload.clone())).await;
                    match answered {
                        Ok(Ok(reply)) if reply.payload == payload => c.requests_ok.fetch_add(1, Ordering::Relaxed),
                        _ => c.requests_failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
            client.flush().await.unwrap();
        }));
    }

    // Sample the server's memory while the traffic runs.
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        samples.push(serving.rss_bytes());
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    for w in workers {
        within(w).await.unwrap();
    }

    // Everything published reaches every subscriber of its subject (bounded wait).
    let settle = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let missing: u64 = (0..clients)
            .map(|i| {
                let want = counts.sent[i % groups].load(Ordering::Relaxed);
                want.saturating_sub(counts.received[i].load(Ordering::Relaxed))
            })
            .sum();
        if missing == 0 || Instant::now() > settle {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sent: u64 = counts.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let received: u64 = counts.received.iter().map(|r| r.load(Ordering::Relaxed)).sum();
    let ok = counts.requests_ok.load(Ordering::Relaxed);
    let failed = counts.requests_failed.load(Ordering::Relaxed);

    let warm = samples.len() / 4;
    let steady = &samples[warm..];
    let third = (steady.len() / 3).max(1);
    let avg = |s: &[u64]| s.iter().sum::<u64>() / s.len().max(1) as u64;
    let (first, last) = (avg(&steady[..third]), avg(&steady[steady.len() - third..]));
    let max = samples.iter().max().copied().unwrap_or(0);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "soak: {clients} clients, {secs} s: {sent} published, {received} delivered, {missing} missing; \
         {ok} requests answered, {failed} failed; server RSS first third {:.1} MiB, last third {:.1} MiB, \
         max {:.1} MiB ({} samples)",
        mib(first),
        mib(last),
        mib(max),
        samples.len()
    );
    assert_eq!(missing, 0, "messages lost");
    assert_eq!(failed, 0, "requests not answered");
    assert!(ok > 0 && sent > 0);
    assert!(samples.len() >= 8 && first > 0, "too few memory samples");
    assert!(last <= first + first / 5 + 2 * 1024 * 1024, "memory grew: {first} -> {last} bytes");
    drop(conns);
}
