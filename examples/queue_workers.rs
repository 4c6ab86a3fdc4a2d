//! Queue groups: N workers in group `workers` on `service.A` share the
//! jobs a producer sends; each job is handled by exactly one worker.
//!
//! `cargo run --example queue_workers [-- --server URL --count JOBS]`

#[path = "common/args.rs"]
mod args;

use futures::StreamExt;

const WORKERS: usize = 3;

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = args::parse(30);
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    for worker in 0..WORKERS {
        let client = async_nats::connect(&args.server).await?;
        let mut jobs = client.queue_subscribe("service.A", "workers".into()).await?;
        client.flush().await?;
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            while let Some(job) = jobs.next().await {
                let _ = done_tx.send((worker, String::from_utf8_lossy(&job.payload).into_owned()));
            }
        });
    }
    let producer = async_nats::connect(&args.server).await?;
    for job in 0..args.count {
        producer.publish("service.A", format!("job {job}").into()).await?;
    }
    producer.flush().await?;
    let mut spread = [0usize; WORKERS];
    let mut seen = std::collections::HashSet::new();
    for _ in 0..args.count {
        let (worker, job) = done.recv().await.ok_or("workers stopped")?;
        spread[worker] += 1;
        if !seen.insert(job.clone()) {
            println!("{job} was handled twice!");
        }
    }
    for (worker, n) in spread.iter().enumerate() {
        println!("worker {worker} handled {n} jobs");
    }
    println!("{} jobs, each handled exactly once: {}", args.count, seen.len() == args.count);
    Ok(())
}
