//! Request/reply: a responder on `service.B` and a requester with a timeout.
//!
//! Then the two ways a request can fail, and how they differ:
//! - **no responders**: nobody subscribes to the subject, and the broker
//!   says so at once (a `503` status message), so the client fails fast;
//! - **timeout**: somebody subscribes but never answers; only the
//!   requester's own timer can end the wait (`nats: timeout` in Go).
//!
//! `cargo run --example request_reply [-- --server URL --count N]`

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use async_nats::RequestErrorKind;
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = args::parse(3);
    let responder = async_nats::connect(&args.server).await?;
    let mut service = responder.subscribe("service.B").await?;
    // A service that receives requests and never answers.
    let mut silent = responder.subscribe("service.silent").await?;
    responder.flush().await?;
    tokio::spawn(async move {
        while let Some(request) = service.next().await {
            if let Some(reply) = request.reply {
                let answer = format!("B handled {}", String::from_utf8_lossy(&request.payload));
                let _ = responder.publish(reply, answer.into()).await;
            }
        }
    });
    tokio::spawn(async move { while silent.next().await.is_some() {} });

    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_millis(500)))
        .connect(&args.server)
        .await?;
    for i in 0..args.count {
        let answer = client.request("service.B", format!("request {i}").into()).await?;
        println!("answer: {}", String::from_utf8_lossy(&answer.payload));
    }
    match client.request("service.C", "anyone?".into()).await {
        Err(e) if e.kind() == RequestErrorKind::NoResponders => {
            println!("service.C: no responders (the broker answered at once: nobody listens)")
        }
        other => println!("service.C: unexpected {other:?}"),
    }
    match client.request("service.silent", "hello?".into()).await {
        Err(e) if e.kind() == RequestErrorKind::TimedOut => {
            println!("service.silent: timed out after 500 ms (someone listens but did not answer)")
        }
        other => println!("service.silent: unexpected {other:?}"),
    }
    Ok(())
}
