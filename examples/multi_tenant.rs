//! Three tenants on one broker: a weather provider and two customers, each
//! an account (`examples/accounts.conf`).
//!
//! Shows what crosses between accounts and what does not:
//! - the provider's stream reaches each customer under the customer's own
//!   name for it (`ext.weather.updates.paris` for ACME, `updates.paris`
//!   for GLOBEX);
//! - ACME asks for a forecast on its own subject `forecast`, and the
//!   provider's answer finds its way back;
//! - both customers publish to `orders.new`, and neither sees the other's;
//! - GLOBEX, which does not import the service, gets no responders;
//! - each asks the server who it is (`$SYS.REQ.USER.INFO`, which every
//!   account may ask about itself).
//!
//! `cargo run --example multi_tenant [-- --server URL --count N]`

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use async_nats::{ConnectOptions, RequestErrorKind};
use futures::StreamExt;

async fn login(server: &str, user: &str, password: &str) -> Result<async_nats::Client, async_nats::Error> {
    Ok(ConnectOptions::with_user_and_password(user.into(), password.into()).connect(server).await?)
}

/// Prints the next message `sub` receives, past the customer's own
/// question to the server and its answer.
async fn print_next(name: &str, sub: &mut async_nats::Subscriber) -> Result<(), async_nats::Error> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), sub.next()).await?.ok_or("closed")?;
        if !msg.subject.starts_with("$SYS.") && !msg.subject.starts_with("_INBOX.") {
            println!("{name} received on {}: {}", msg.subject, String::from_utf8_lossy(&msg.payload));
            return Ok(());
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = args::parse(2);
    let weather = login(&args.server, "weather", "weather-demo-password").await?;
    let acme = login(&args.server, "acme", "acme-demo-password").await?;
    let globex = login(&args.server, "globex", "globex-demo-password").await?;

    let mut forecasts = weather.subscribe("weather.forecast").await?;
    let provider = weather.clone();
    tokio::spawn(async move {
        while let Some(request) = forecasts.next().await {
            if let Some(reply) = request.reply {
                let city = String::from_utf8_lossy(&request.payload).into_owned();
                let _ = provider.publish(reply, format!("sunny in {city}").into()).await;
            }
        }
    });
    weather.flush().await?;

    let mut acme_all = acme.subscribe(">").await?;
    let mut globex_all = globex.subscribe(">").await?;
    for (name, client) in [("ACME", &acme), ("GLOBEX", &globex)] {
        // Every account may ask the server who it is; once the answer is
        // back, the server also has the SUB sent before the question.
        let me: serde_json::Value =
            serde_json::from_slice(&client.request("$SYS.REQ.USER.INFO", "".into()).await?.payload)?;
        println!("{name} is user {} in account {}", me["data"]["user"], me["data"]["account"]);
    }

    for i in 0..args.count {
        weather.publish("weather.updates.paris", format!("update {}", i + 1).into()).await?;
    }
    weather.flush().await?;
    for (name, client, sub) in [("ACME", &acme, &mut acme_all), ("GLOBEX", &globex, &mut globex_all)] {
        // Each sees the updates under its own name for them...
        for _ in 0..args.count {
            print_next(name, sub).await?;
        }
        // ...and its own order, and nothing of the other's.
        client.publish("orders.new", format!("{} order", name.to_lowercase()).into()).await?;
        print_next(name, sub).await?;
    }
    // A `>` subscriber would answer every request itself.
    acme_all.unsubscribe().await?;
    globex_all.unsubscribe().await?;

    let answer = acme.request("forecast", "paris".into()).await?;
    println!("ACME's forecast request: {}", String::from_utf8_lossy(&answer.payload));
    match globex.request("forecast", "paris".into()).await {
        Ok(m) => println!("GLOBEX's forecast request: {}", String::from_utf8_lossy(&m.payload)),
        Err(e) if e.kind() == RequestErrorKind::NoResponders => {
            println!("GLOBEX's forecast request: no responders (GLOBEX does not import the service)")
        }
        Err(e) => println!("GLOBEX's forecast request: {e}"),
    }
    Ok(())
}
