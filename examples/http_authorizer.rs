//! A small HTTP authorizer for warden's `http_authorizer` (see
//! `examples/http_authorizer.conf`): a fixed user table, and client
//! certificates mapped to accounts by their common name.
//!
//! warden POSTs one JSON document per login it does not decide itself
//! (user, password or token, a proven nkey, the client's address, its TLS
//! certificate's subject and SANs); this answers `{"allow": true,
//! "account", "user", "permissions", "expires"}` or `{"allow": false,
//! "reason"}`. It listens on plain HTTP on a loopback address, which warden
//! accepts only there; anywhere else, serve HTTPS.
//!
//! ```text
//! cargo run --example http_authorizer            # listens on 127.0.0.1:8089
//! warden serve --config examples/http_authorizer.conf
//! nats-py / nats CLI: connect as alice/alice-pw: lands in APP, may use app.>
//! ```
//! Flags: `--listen ADDR` (default 127.0.0.1:8089), `--count N` (stop
//! after N answers; for tests).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

#[path = "common/users.rs"]
mod users;
/// Client certificate common names, and the account each is placed in.
const CERTIFICATES: &[(&str, &str)] = &[("sensor-1", "DEVICES")];

/// What to answer about one login.
fn decide(doc: &Value) -> Value {
    let expires = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) + 3600;
    let (user, password) = (doc["user"].as_str().unwrap_or_default(), doc["password"].as_str().unwrap_or_default());
    if let Some(found) = users::find(user, password) {
        return json!({
            "allow": true, "account": found.account, "user": found.name, "expires": expires,
            "permissions": { "publish": found.publish, "subscribe": found.subscribe },
        });
    }
    let subject = doc["client"]["tls"]["subject"].as_str().unwrap_or_default();
    let common_name = subject.split(',').find_map(|part| part.trim().strip_prefix("CN="));
    if let Some((cn, account)) = CERTIFICATES.iter().find(|(cn, _)| Some(*cn) == common_name) {
        return json!({
            "allow": true, "account": account, "user": cn, "expires": expires,
            "permissions": { "publish": [format!("telemetry.{cn}")], "subscribe": [format!("commands.{cn}")] },
        });
    }
    json!({ "allow": false, "reason": "unknown user or wrong password" })
}

async fn handle(request: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let status_only = |status: StatusCode| {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = status;
        Ok(response)
    };
    if request.method() != hyper::Method::POST || request.uri().path() != "/authorize" {
        return status_only(StatusCode::NOT_FOUND);
    }
    let Ok(body) = Limited::new(request.into_body(), 64 * 1024).collect().await else {
        return status_only(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let Ok(doc) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return status_only(StatusCode::BAD_REQUEST);
    };
    let answer = decide(&doc);
    println!("{} -> {}", doc["user"].as_str().unwrap_or("(no user)"), answer["allow"]);
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().unwrap());
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:8089".parse().unwrap();
    let mut count: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (args.next(), args.next()) {
        match flag.as_str() {
            "--listen" => listen = value.parse().expect("--listen ADDR:PORT"),
            "--count" => count = value.parse().ok(),
            _ => {
                eprintln!("unknown flag {flag}");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(listen).await?;
    println!("ready: http://{}/authorize", listener.local_addr()?);
    let answered = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let counter = answered.clone();
        let connection = tokio::spawn(async move {
            let service = service_fn(move |request| {
                let counter = counter.clone();
                async move {
                    let response = handle(request).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    response
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
        if let Some(n) = count {
            let _ = connection.await;
            if answered.load(Ordering::SeqCst) >= n {
                return Ok(());
            }
        }
    }
}
