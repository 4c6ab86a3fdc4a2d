//! Publish/subscribe, the first snippet of the talk: subscribe to `hello`,
//! publish `world`, print what arrives.
//!
//! Run against a broker (`cargo run --release -- serve --config examples/demo.conf`):
//! `cargo run --example pubsub [-- --server nats://127.0.0.1:4222 --count 3]`

#[path = "common/args.rs"]
mod args;

use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = args::parse(1);
    let client = async_nats::connect(&args.server).await?;
    let mut sub = client.subscribe("hello").await?;
    for _ in 0..args.count {
        client.publish("hello", "world".into()).await?;
    }
    for _ in 0..args.count {
        let msg = sub.next().await.ok_or("subscription ended")?;
        println!("received on {}: {}", msg.subject, String::from_utf8_lossy(&msg.payload));
    }
    Ok(())
}
