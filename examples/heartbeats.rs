//! Discovery through wildcards: services publish
//! `service.<name>.heartbeats`; a monitor subscribes to
//! `service.*.heartbeats` and keeps a table of who is up, without knowing
//! the services' names in advance.
//!
//! `cargo run --example heartbeats [-- --server URL --count BEATS]`

#[path = "common/args.rs"]
mod args;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;

const SERVICES: &[&str] = &["billing", "search", "mailer"];

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = args::parse(3);
    let monitor = async_nats::connect(&args.server).await?;
    let mut beats = monitor.subscribe("service.*.heartbeats").await?;
    monitor.flush().await?;
    for (i, name) in SERVICES.iter().enumerate() {
        let client = async_nats::connect(&args.server).await?;
        // The last service stops after one beat: the monitor sees it fall behind.
        let count = if i == SERVICES.len() - 1 { 1 } else { args.count };
        tokio::spawn(async move {
            for beat in 0..count {
                let _ = client.publish(format!("service.{name}.heartbeats"), beat.to_string().into()).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = client.flush().await;
        });
    }
    let expected = (SERVICES.len() - 1) * args.count + 1;
    let mut table: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..expected {
        let beat = beats.next().await.ok_or("subscription ended")?;
        let name = beat.subject.split('.').nth(1).unwrap_or("?").to_string();
        *table.entry(name).or_default() += 1;
    }
    println!("{:<10} {:>6}  status", "service", "beats");
    for (name, n) in &table {
        let status = if *n == args.count { "up" } else { "silent" };
        println!("{name:<10} {n:>6}  {status}");
    }
    Ok(())
}
