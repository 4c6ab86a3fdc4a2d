//! Embeds warden as a library with an authenticator of its own.
//!
//! The authenticator here accepts any user whose password is the user name
//! written backwards (a stand-in for a call to your identity service), and
//! gives each user permission to publish and subscribe only under
//! `user.<name>.>`. The program starts the broker on a free loopback port,
//! connects as `ada` with the right and a wrong password, and shows a
//! refused publish outside the user's space. A reload (what SIGHUP does
//! for the `warden` command) keeps the authenticator: the options'
//! `authorization` never applies to a server started this way.
//!
//! Run: `cargo run --example embed_custom_auth`

use std::sync::Arc;

use futures::StreamExt;
use subtle::ConstantTimeEq;
use warden::auth::{Authenticator, Claims, ConnectionFacts, Identity, RefusalReason, Verdict};
use warden::config::{Options, Permissions, SubjectRules};
use warden::perms::PermissionSet;
use warden::server::Server;

/// Accepts `user` when `password` is `user` reversed.
#[derive(Debug)]
struct ReversedName;

impl Authenticator for ReversedName {
    fn authenticate(&self, claims: &Claims, _facts: &ConnectionFacts) -> Verdict {
        let (Some(user), Some(password)) = (&claims.user, &claims.password) else {
            return Verdict::Refuse(RefusalReason::MissingCredentials);
        };
        let expected: String = user.chars().rev().collect();
        // Constant time, so the time an answer takes says nothing about
        // how much of a guess was right.
        if !bool::from(password.expose().as_bytes().ct_eq(expected.as_bytes())) {
            return Verdict::Refuse(RefusalReason::BadCredentials);
        }
        let own = format!("user.{user}.>");
        let rules = SubjectRules { allow: Some(vec![own]), deny: None, literal: None };
        let perms = Permissions { publish: Some(rules.clone()), subscribe: Some(rules), allow_responses: None };
        match PermissionSet::compile(&perms) {
            Ok(set) => Verdict::Accept(Identity::global(Some(user.clone()), Arc::new(set), 0)),
            Err(_) => Verdict::Refuse(RefusalReason::BadCredentials),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = Options { port: 0, ..Options::default() };
    let server = Server::start_with_authenticator(opts.clone(), Arc::new(ReversedName)).await?;
    let url = format!("nats://{}", server.local_addr());
    println!("warden listening on {url} with a custom authenticator");

    let wrong = async_nats::ConnectOptions::with_user_and_password("ada".into(), "ada!".into()).connect(&url).await;
    println!("ada with a wrong password: {}", if wrong.is_err() { "refused" } else { "accepted?!" });

    let (errors_tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
    let ada = async_nats::ConnectOptions::with_user_and_password("ada".into(), "ada".chars().rev().collect())
        .event_callback(move |event| {
            let tx = errors_tx.clone();
            async move {
                if let async_nats::Event::ServerError(err) = event {
                    let _ = tx.send(err.to_string());
                }
            }
        })
        .connect(&url)
        .await?;
    println!("ada with the right password: connected");

    let mut inbox = ada.subscribe("user.ada.inbox").await?;
    ada.publish("user.ada.inbox", "note to self".into()).await?;
    let msg = inbox.next().await.ok_or("subscription ended")?;
    println!("ada received on {}: {}", msg.subject, String::from_utf8_lossy(&msg.payload));

    ada.publish("user.bob.inbox", "snooping".into()).await?;
    ada.flush().await?;
    let err = errors.recv().await.ok_or("no error reported")?;
    println!("ada publishing to user.bob.inbox: {err}");

    // The options have no `authorization`: a reload must not turn that
    // into "no auth".
    server.reload(&opts)?;
    let anonymous = async_nats::ConnectOptions::new().connect(&url).await;
    println!("after a reload, no credentials: {}", if anonymous.is_err() { "refused" } else { "accepted?!" });

    server.shutdown().await;
    Ok(())
}
