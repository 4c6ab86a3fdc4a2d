//! The talk's secure requestor: alice (admin) and bob (requestor) with
//! argon2id passwords over TLS. Bob's allowed request works; his forbidden
//! publish and subscribe come back as permission errors through the
//! client's error callback; alice sees everything.
//!
//! Needs the broker started with examples/secure.conf and certificates:
//! ```text
//! cargo run --release -- certs generate --out certs/
//! cargo run --release -- serve --config examples/secure.conf
//! cargo run --example secure_requestor -- --server tls://localhost:4222 --ca certs/ca.pem
//! ```

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use futures::StreamExt;

async fn connect(
    args: &args::Args,
    user: &str,
    pass: &str,
) -> Result<(async_nats::Client, tokio::sync::mpsc::UnboundedReceiver<String>), async_nats::Error> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut opts =
        async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(err) = event {
                    let _ = tx.send(err.to_string());
                }
            }
        });
    if let Some(ca) = &args.ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    Ok((opts.connect(&args.server).await?, rx))
}

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = args::parse(1);
    let (alice, _) = connect(&args, "alice", "alice-demo-password").await?;
    let mut everything = alice.subscribe(">").await?;
    let mut requests = alice.subscribe("req.foo").await?;
    alice.flush().await?;
    let responder = alice.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                let _ = responder.publish(reply, "foo is served".into()).await;
            }
        }
    });

    let (bob, mut bob_errors) = connect(&args, "bob", "bob-demo-password").await?;
    for _ in 0..args.count {
        let answer = bob.request("req.foo", "please".into()).await?;
        println!("bob's request to req.foo: {}", String::from_utf8_lossy(&answer.payload));
    }
    bob.publish("admin.shutdown", "now".into()).await?;
    bob.flush().await?;
    println!("bob publishing to admin.shutdown: {}", bob_errors.recv().await.unwrap_or_default());
    let _sneaky = bob.subscribe("req.>").await?;
    bob.flush().await?;
    println!("bob subscribing to req.>: {}", bob_errors.recv().await.unwrap_or_default());

    // alice's `>` saw the request and its reply, and never bob's refused publish.
    let mut seen = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(200), everything.next()).await {
        seen.push(msg.subject.to_string());
    }
    println!(
        "alice saw: {}",
        if seen.iter().any(|s| s == "admin.shutdown") {
            "bob's refused publish?!"
        } else {
            "the request and the reply, not bob's refused publish"
        }
    );
    println!("alice saw {} messages in all", seen.len());
    Ok(())
}
