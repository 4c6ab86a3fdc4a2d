//! `warden bench`: a benchmark client for any NATS server (warden or
//! nats-server): publish, subscribe, publish/subscribe with N publishers and
//! M subscribers, queue-group fan-out, and request/reply latency with a
//! full histogram. Publishers and subscribers may use different servers,
//! which measures cross-node traffic in a cluster.

mod conn;
mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conn::PROBE_SID;
pub use conn::{Conn, Event, Target};
pub use report::{Latencies, Report};

type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Publishers only.
    Pub,
    /// Subscribers only, waiting for an outside publisher.
    Sub,
    /// Publishers and plain subscribers (each subscriber gets every message).
    PubSub,
    /// Publishers and one queue group (each message goes to one member).
    Queue,
    /// Sequential requests to one responder; latency percentiles.
    ReqRep,
}

/// A benchmark run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// What to measure.
    pub mode: Mode,
    /// Server for publishers and the requester.
    pub publish_to: Target,
    /// Server for subscribers and the responder.
    pub subscribe_to: Target,
    /// Messages (or requests) in all.
    pub msgs: u64,
    /// Payload size in bytes.
    pub size: usize,
    /// Publisher connections.
    pub pubs: usize,
    /// Subscriber connections.
    pub subs: usize,
    /// Subject.
    pub subject: String,
    /// Print a live progress line on stderr.
    pub progress: bool,
    /// Upper bound on the whole run.
    pub deadline: Duration,
}

/// Runs the benchmark.
pub async fn run(opts: &BenchOptions) -> Result<Report, BenchError> {
    tokio::time::timeout(opts.deadline, run_inner(opts)).await.map_err(|_| "benchmark exceeded its deadline")?
}

/// Subjects of the probes that wait for interest to cross to another server.
const PROBE_PREFIX: &str = "_WARDEN_BENCH_PROBE";
/// How often a probe is sent until one arrives.
const PROBE_EVERY: Duration = Duration::from_millis(100);

async fn run_inner(opts: &BenchOptions) -> Result<Report, BenchError> {
    if opts.mode == Mode::ReqRep {
        return request_reply(opts).await;
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let all_delivered = Arc::new(tokio::sync::Notify::new());
    let subscribers = if matches!(opts.mode, Mode::Sub | Mode::PubSub | Mode::Queue) { opts.subs.max(1) } else { 0 };
    let expected = match opts.mode {
        Mode::Queue => opts.msgs,
        _ => opts.msgs * subscribers as u64,
    };
    let mut sub_tasks = Vec::new();
    let probed = Arc::new(AtomicU64::new(0));
    let all_probed = Arc::new(tokio::sync::Notify::new());
    for i in 0..subscribers {
        let mut conn = Conn::connect(&opts.subscribe_to, &format!("bench-sub-{i}")).await?;
        let queue = if opts.mode == Mode::Queue { " bench" } else { "" };
        // The probe subscription goes after the measured one, on the same
        // connection: once a probe arrives, so has the interest before it.
        conn.write(format!("SUB {}{queue} 1\r\nSUB {PROBE_PREFIX}.{i} {PROBE_SID}\r\n", opts.subject).as_bytes())
            .await?;
        conn.flush().await?;
        let (delivered, all_delivered) = (delivered.clone(), all_delivered.clone());
        let (probed, all_probed) = (probed.clone(), all_probed.clone());
        sub_tasks.push(tokio::spawn(async move {
            let mut seen_probe = false;
            loop {
                match conn.next_event().await? {
                    Event::Msg { probe: true, .. } => {
                        if !std::mem::replace(&mut seen_probe, true)
                            && probed.fetch_add(1, Ordering::Relaxed) + 1 == subscribers as u64
                        {
                            all_probed.notify_one();
                        }
                    }
                    Event::Msg { .. } => {
                        if delivered.fetch_add(1, Ordering::Relaxed) + 1 == expected {
                            all_delivered.notify_one();
                        }
                    }
                    Event::Err(e) => return Err::<(), BenchError>(e.into()),
                    Event::Pong => {}
                }
            }
        }));
    }
    if subscribers > 0 && opts.publish_to.url != opts.subscribe_to.url {
        // The subscribers are on another server: wait until their interest
        // reached the publishers' (a route, leaf or gateway hop away).
        let mut prober = Conn::connect(&opts.publish_to, "bench-probe").await?;
        let waited = all_probed.notified();
        tokio::pin!(waited);
        waited.as_mut().enable();
        loop {
            if probed.load(Ordering::Relaxed) >= subscribers as u64 {
                break;
            }
            for i in 0..subscribers {
                prober.write(format!("PUB {PROBE_PREFIX}.{i} 0\r\n\r\n").as_bytes()).await?;
            }
            prober.flush().await?;
            if tokio::time::timeout(PROBE_EVERY, waited.as_mut()).await.is_ok() {
                break;
            }
        }
    }
    let progress = opts.progress.then(|| spawn_progress(delivered.clone()));
    let started = Instant::now();
    let mut pub_tasks = Vec::new();
    if opts.mode != Mode::Sub {
        let pubs = opts.pubs.max(1);
        for p in 0..pubs {
            let count = opts.msgs / pubs as u64 + u64::from((p as u64) < opts.msgs % pubs as u64);
            let mut conn = Conn::connect(&opts.publish_to, &format!("bench-pub-{p}")).await?;
            let subject = opts.subject.clone();
            let size = opts.size;
            pub_tasks.push(tokio::spawn(async move {
                publish(&mut conn, &subject, size, count).await?;
                conn.flush().await?;
                Ok::<(), BenchError>(())
            }));
        }
    }
    for task in pub_tasks {
        task.await??;
    }
    let published_in = started.elapsed();
    if expected > 0 {
        all_delivered.notified().await;
    }
    for task in &sub_tasks {
        task.abort();
    }
    let elapsed = started.elapsed();
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let published = if opts.mode == Mode::Sub { 0 } else { opts.msgs };
    Ok(Report::throughput(opts, published, published_in, delivered.load(Ordering::Relaxed), elapsed))
}

/// Sends `count` messages in large batched writes.
async fn publish(conn: &mut Conn, subject: &str, size: usize, count: u64) -> Result<(), BenchError> {
    let mut frame = format!("PUB {subject} {size}\r\n").into_bytes();
    frame.extend(std::iter::repeat_n(b'x', size));
    frame.extend_from_slice(b"\r\n");
    let per_batch = (64 * 1024 / frame.len()).max(1) as u64;
    let batch: Vec<u8> = frame.repeat(per_batch as usize);
    let mut left = count;
    while left > 0 {
        let n = left.min(per_batch);
        conn.write(&batch[..frame.len() * n as usize]).await?;
        left -= n;
    }
    Ok(())
}

fn spawn_progress(delivered: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let n = delivered.load(Ordering::Relaxed);
            let rate = n as f64 / started.elapsed().as_secs_f64();
            eprint!("\r{n} delivered, {rate:.0} msgs/s   ");
        }
    })
}

async fn request_reply(opts: &BenchOptions) -> Result<Report, BenchError> {
    let mut responder = Conn::connect(&opts.subscribe_to, "bench-responder").await?;
    responder.write(format!("SUB {} 1\r\n", opts.subject).as_bytes()).await?;
    responder.flush().await?;
    let size = opts.size;
    let responder_task = tokio::spawn(async move {
        let payload = vec![b'r'; size];
        loop {
            match responder.next_event().await? {
                Event::Msg { reply: Some(reply), .. } => {
                    let mut out = b"PUB ".to_vec();
                    out.extend_from_slice(&reply);
                    out.extend_from_slice(format!(" {size}\r\n").as_bytes());
                    out.extend_from_slice(&payload);
                    out.extend_from_slice(b"\r\n");
                    responder.write(&out).await?;
                }
                Event::Err(e) => return Err::<(), BenchError>(e.into()),
                _ => {}
            }
        }
    });
    let mut requester = Conn::connect(&opts.publish_to, "bench-requester").await?;
    requester.write(format!("SUB _INBOX.bench.* 1\r\nSUB {PROBE_PREFIX}.reply {PROBE_SID}\r\n").as_bytes()).await?;
    requester.flush().await?;
    if opts.publish_to.url != opts.subscribe_to.url {
        // The responder is on another server: ask until it answers (its
        // interest, and the requester's, crossed the hop).
        let probe = format!("PUB {} {PROBE_PREFIX}.reply 0\r\n\r\n", opts.subject);
        'probing: loop {
            requester.write(probe.as_bytes()).await?;
            let answered = tokio::time::timeout(PROBE_EVERY, async {
                loop {
                    match requester.next_event().await? {
                        Event::Msg { probe: true, .. } => return Ok::<bool, BenchError>(true),
                        Event::Err(e) => return Err(e.into()),
                        _ => {}
                    }
                }
            });
            if let Ok(answered) = answered.await {
                if answered? {
                    break 'probing;
                }
            }
        }
    }
    let payload = vec![b'q'; size];
    let warmup = (opts.msgs / 20).min(1000);
    let mut samples = Vec::with_capacity(opts.msgs as usize);
    let started = Instant::now();
    for i in 0..warmup + opts.msgs {
        let mut out = format!("PUB {} _INBOX.bench.{i} {size}\r\n", opts.subject).into_bytes();
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"\r\n");
        let sent = Instant::now();
        requester.write(&out).await?;
        loop {
            match requester.next_event().await? {
                // A late answer to a probe is not this request's.
                Event::Msg { probe: true, .. } => {}
                Event::Msg { .. } => break,
                Event::Err(e) => return Err(e.into()),
                Event::Pong => {}
            }
        }
        if i >= warmup {
            samples.push(sent.elapsed());
        }
    }
    responder_task.abort();
    Ok(Report::latency(opts, samples, started.elapsed()))
}
