//! A small auth callout service (the NATS 2.10 protocol) with a fixed user
//! table, for `examples/callout.conf`: it works the same with warden and
//! with nats-server 2.10+.
//!
//! It logs in as the callout account's `auth` user, answers each
//! `authorization_request` on `$SYS.REQ.USER.AUTH`: it checks the request
//! is signed by a server, looks the client's user and password up, and
//! answers with an `authorization_response` signed by the issuer account
//! key, carrying a user JWT for the connection's key (`user_nkey`) that
//! places the user in its account with its permissions for an hour, or
//! with a refusal reason.
//!
//! ```text
//! export CALLOUT_ISSUER=$(warden nkey generate --type account --out issuer.seed)
//! warden -c examples/callout.conf          # its `issuer` is $CALLOUT_ISSUER
//! cargo run --example callout_service -- --issuer-seed issuer.seed
//! nats-py / nats CLI: connect as alice/alice-pw: lands in APP, may use app.>
//! ```
//! Flags: `--server URL` (default nats://127.0.0.1:4222), `--user`,
//! `--password` (default auth/auth-pw), `--issuer-seed FILE`, `--count N`
//! (stop after N requests; for tests).

use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use warden::jwt::{self, ClaimType};
use warden::nkeys::{KeyPair, KeyType};

#[path = "common/users.rs"]
mod users;

/// The parts of the request this service reads.
#[derive(Debug, Deserialize)]
struct AuthRequest {
    user_nkey: String,
    server_id: ServerId,
    #[serde(default)]
    connect_opts: ConnectOpts,
}

#[derive(Debug, Deserialize)]
struct ServerId {
    id: String,
}

#[derive(Debug, Default, Deserialize)]
struct ConnectOpts {
    #[serde(default)]
    user: String,
    #[serde(default)]
    pass: String,
}

impl ClaimType for AuthRequest {
    const TYPE: &'static str = "authorization_request";
    const ISSUERS: &'static [KeyType] = &[KeyType::Server];
    const SUBJECT: KeyType = KeyType::Account;
}

struct Flags {
    server: String,
    user: String,
    password: String,
    issuer_seed: std::path::PathBuf,
    count: Option<usize>,
}

fn flags() -> Flags {
    let mut f = Flags {
        server: "nats://127.0.0.1:4222".into(),
        user: "auth".into(),
        password: "auth-pw".into(),
        issuer_seed: "issuer.seed".into(),
        count: None,
    };
    let mut args = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (args.next(), args.next()) {
        match flag.as_str() {
            "--server" => f.server = value,
            "--user" => f.user = value,
            "--password" => f.password = value,
            "--issuer-seed" => f.issuer_seed = value.into(),
            "--count" => f.count = value.parse().ok(),
            _ => {
                eprintln!("unknown flag {flag}");
                std::process::exit(2);
            }
        }
    }
    f
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The answer to one request: a user JWT, or a refusal.
fn answer(issuer: &KeyPair, request: &jwt::Jwt<AuthRequest>) -> (String, String) {
    let asked = &request.nats;
    let found = users::find(&asked.connect_opts.user, &asked.connect_opts.pass);
    let mut response = json!({
        "sub": asked.user_nkey, "aud": asked.server_id.id, "iat": now(),
        "nats": { "type": "authorization_response", "version": 2 },
    });
    let outcome = match found {
        Some(user) => {
            let granted = json!({
                "sub": asked.user_nkey, "aud": user.account, "name": user.name, "iat": now(), "exp": now() + 3600,
                // -1: no limits of its own (an absent limit is 0, as in
                // nats-server: no payload at all), as the NATS libraries write.
                "nats": {
                    "pub": { "allow": user.publish }, "sub": { "allow": user.subscribe },
                    "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2,
                },
            });
            response["nats"]["jwt"] = jwt::sign(issuer, granted).into();
            format!("admitted {} into {}", user.name, user.account)
        }
        None => {
            response["nats"]["error"] = "unknown user or wrong password".into();
            format!("refused {:?}", asked.connect_opts.user)
        }
    };
    (jwt::sign(issuer, response), outcome)
}

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let flags = flags();
    // Each failure names its file or server: a bare "No such file or
    // directory" tells a newcomer nothing about which file to make.
    let path = flags.issuer_seed.display();
    let seed = std::fs::read_to_string(&flags.issuer_seed).map_err(|e| {
        format!("--issuer-seed {path}: {e} (make one with `warden nkey generate --type account --out {path}` and put its public key in the config's `issuer`)")
    })?;
    let issuer = KeyPair::from_seed(seed.trim()).map_err(|e| format!("--issuer-seed {path}: {e}"))?;
    let client = async_nats::ConnectOptions::with_user_and_password(flags.user, flags.password)
        .connect(&flags.server)
        .await
        .map_err(|e| format!("--server {}: {e}", flags.server))?;
    let mut requests = client.subscribe("$SYS.REQ.USER.AUTH").await?;
    client.flush().await?;
    println!("ready: answering for issuer {}", issuer.public());
    let mut handled = 0;
    while let Some(msg) = requests.next().await {
        let Some(reply) = msg.reply else { continue };
        let token = String::from_utf8_lossy(&msg.payload);
        let request = match jwt::decode::<AuthRequest>(&token, now()) {
            Ok(request) => request,
            Err(err) => {
                println!("ignored a request that does not verify: {err}");
                continue;
            }
        };
        let (response, outcome) = answer(&issuer, &request);
        client.publish(reply, response.into()).await?;
        client.flush().await?;
        println!("{outcome}");
        handled += 1;
        if flags.count.is_some_and(|n| handled >= n) {
            break;
        }
    }
    Ok(())
}
