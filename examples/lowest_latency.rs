//! Lowest latency: several responders answer the same request; the
//! requester takes whichever answer comes first. Then the availability
//! check: every node answers a ping on a shared subject with the subject of
//! its own inbox, and the requester talks to the quickest node directly.
//!
//! `cargo run --example lowest_latency [-- --server URL --count REQUESTS]`

#[path = "common/args.rs"]
mod args;

use std::time::{Duration, Instant};

use futures::StreamExt;

/// (node name, how long it takes to answer)
const NODES: &[(&str, u64)] = &[("slow", 80), ("medium", 40), ("fast", 5)];

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = args::parse(3);
    for (name, delay) in NODES {
        let client = async_nats::connect(&args.server).await?;
        let mut work = client.subscribe("service.compute").await?;
        let mut ping = client.subscribe("service.ping").await?;
        let own_subject = format!("service.node.{name}");
        let mut direct = client.subscribe(own_subject.clone()).await?;
        client.flush().await?;
        tokio::spawn(async move {
            loop {
                let (request, answer) = tokio::select! {
                    Some(r) = work.next() => (r, format!("{name} computed it")),
                    Some(r) = direct.next() => (r, format!("{name} answered directly")),
                    Some(r) = ping.next() => (r, own_subject.clone()),
                    else => return,
                };
                tokio::time::sleep(Duration::from_millis(*delay)).await;
                if let Some(reply) = request.reply {
                    let _ = client.publish(reply, answer.into()).await;
                }
            }
        });
    }
    let client = async_nats::connect(&args.server).await?;
    for _ in 0..args.count {
        let started = Instant::now();
        let answer = client.request("service.compute", "2+2".into()).await?;
        println!("first answer after {:?}: {}", started.elapsed(), String::from_utf8_lossy(&answer.payload));
    }

    // Availability check: who is there, in order of response time?
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await?;
    client.publish_with_reply("service.ping", inbox, "".into()).await?;
    let deadline = tokio::time::sleep(Duration::from_millis(300));
    tokio::pin!(deadline);
    let mut available = Vec::new();
    loop {
        tokio::select! {
            Some(answer) = answers.next() => available.push(String::from_utf8_lossy(&answer.payload).into_owned()),
            _ = &mut deadline => break,
        }
    }
    println!("available nodes, quickest first: {available:?}");
    if let Some(quickest) = available.first() {
        let answer = client.request(quickest.clone(), "hello".into()).await?;
        println!("direct request to {quickest}: {}", String::from_utf8_lossy(&answer.payload));
    }
    Ok(())
}
