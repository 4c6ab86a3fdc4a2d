//! A real browser: headless Chromium (Debian's) loads `examples/browser/`
//! from a local HTTP server, connects to warden's WebSocket listener with
//! the stock npm client (nats.ws's browser bundle, installed by
//! `scripts/node-deps.sh`), publishes, makes a request and receives a
//! message from an async-nats client on the TCP listener; the page posts
//! what happened to `/result`, which the test reads.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{options_from, start, temp_dir, url};
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How long the browser may take from launch to posting its result
/// (Chromium's first start on a cold machine takes a few seconds).
const BROWSER_WAIT: Duration = Duration::from_secs(45);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bundle() -> PathBuf {
    repo().join("target/node/node_modules/nats.ws/esm/nats.js")
}

/// Chromium, killed when dropped.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves the example page and the client bundle, and hands each POST to
/// `/result` to `results`.
async fn page_server(listener: TcpListener, results: mpsc::UnboundedSender<Value>) {
    let results = Arc::new(Mutex::new(results));
    while let Ok((tcp, _)) = listener.accept().await {
        let results = results.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let results = results.clone();
                async move {
                    let path = request.uri().path().to_owned();
                    let (body, kind) = match path.as_str() {
                        "/" | "/index.html" => {
                            (std::fs::read(repo().join("examples/browser/index.html")).unwrap_or_default(), "text/html")
                        }
                        "/nats.js" => (std::fs::read(bundle()).unwrap_or_default(), "application/javascript"),
                        "/result" => {
                            let posted = request.into_body().collect().await?.to_bytes();
                            let _ = results.lock().send(serde_json::from_slice(&posted).unwrap_or(Value::Null));
                            (b"ok".to_vec(), "text/plain")
                        }
                        _ => (Vec::new(), "text/plain"),
                    };
                    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                    response.headers_mut().insert("content-type", kind.parse().unwrap());
                    Ok::<_, hyper::Error>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_talks_to_warden_over_websocket_with_the_npm_client() {
    let chromium = Path::new("/usr/bin/chromium");
    let found = (chromium.exists() && bundle().exists()).then_some(());
    let how = "scripts/test.sh installs Chromium from Debian and scripts/node-deps.sh bundles the npm client";
    if common::deps::require(found, "/usr/bin/chromium or the npm bundle", how).is_none() {
        return;
    }
    let pages = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_addr: SocketAddr = pages.local_addr().unwrap();
    let (results_tx, mut results) = mpsc::unbounded_channel();
    tokio::spawn(page_server(pages, results_tx));

    // Only the page's own origin may open a WebSocket.
    let config = format!(
        "authorization {{ users: [ {{user: alice, password: secret, permissions: {{publish: [\"browser.>\", \"_INBOX.>\"], subscribe: [\"browser.>\", \"_INBOX.>\"]}}}}, {{user: svc, password: svcpw}} ] }}\n\
         websocket {{ listen: \"127.0.0.1:0\", no_tls: true, allowed_origins: [\"http://{page_addr}\"] }}\n"
    );
    let server = start(options_from(&config)).await;
    let ws = server.websocket_addr().unwrap();

    // The other side: an async-nats client over TCP.
    let svc = async_nats::ConnectOptions::with_user_and_password("svc".into(), "svcpw".into())
        .connect(url(&server))
        .await
        .unwrap();
    let mut echo = svc.subscribe("browser.echo").await.unwrap();
    let mut out = svc.subscribe("browser.out").await.unwrap();
    svc.flush().await.unwrap();
    let responder = tokio::spawn({
        let svc = svc.clone();
        async move {
            while let Some(request) = echo.next().await {
                svc.publish(request.reply.unwrap(), "pong".into()).await.unwrap();
            }
        }
    });
    // When the browser speaks, answer on the subject it listens to.
    let said = tokio::spawn({
        let svc = svc.clone();
        async move {
            let msg = out.next().await?;
            svc.publish("browser.in", "hello browser".into()).await.ok()?;
            svc.flush().await.ok()?;
            Some(String::from_utf8_lossy(&msg.payload).into_owned())
        }
    });

    let profile = temp_dir("chromium-profile");
    let page = format!("http://{page_addr}/?test=1&server=ws://{ws}&user=alice&pass=secret");
    let _browser = Browser(
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(&page)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let outcome =
        tokio::time::timeout(BROWSER_WAIT, results.recv()).await.expect("the page posted its result").unwrap();
    assert_eq!(outcome["reply"], "pong", "{outcome}");
    assert_eq!(outcome["got"], "hello browser", "{outcome}");
    let said = tokio::time::timeout(BROWSER_WAIT, said).await.unwrap().unwrap().expect("the browser published");
    assert!(said.starts_with("hello from ") && said.contains("Chrom"), "{said}");
    responder.abort();
}
