//! Client failover in a cluster: connects with the URLs of all nodes (and
//! learns the rest from INFO `connect_urls`), then publishes and receives a
//! tick every half second, printing which node it is on. Stop that node
//! (Ctrl-C in its terminal) and watch the client move to a survivor and
//! carry on.
//!
//! With the three nodes of examples/cluster/ running:
//! `cargo run --example cluster_failover -- --server nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 --count 60`

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = args::parse(20);
    let servers: Vec<async_nats::ServerAddr> = args.server.split(',').map(|s| s.parse()).collect::<Result<_, _>>()?;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Disconnected => println!("disconnected; reconnecting to another node"),
                async_nats::Event::Connected => println!("connected"),
                _ => {}
            }
        })
        .connect(servers)
        .await?;
    let mut ticks = client.subscribe("demo.ticks").await?;
    client.flush().await?;
    for i in 0..args.count {
        // Publishes made while reconnecting are buffered by the client.
        let _ = client.publish("demo.ticks", i.to_string().into()).await;
        match tokio::time::timeout(Duration::from_secs(2), ticks.next()).await {
            Ok(Some(msg)) => println!(
                "tick {} received via {}",
                String::from_utf8_lossy(&msg.payload),
                client.server_info().server_name
            ),
            _ => println!("tick {i} not received yet"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
