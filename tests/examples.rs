//! Every config in examples/ loads and passes the start-up checks, and
//! every example program runs (bounded) against a broker started from its
//! config, printing what its doc comment promises.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use warden::config::Options;
use warden::server::Server;
use warden::tls::Ca;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Development certificates like `warden certs generate` makes, in a temp dir.
fn dev_certs() -> PathBuf {
    let dir = temp_dir("example-certs");
    let ca = Ca::new("warden development CA").unwrap();
    let save = |name: &str, issued: warden::tls::Issued| {
        std::fs::write(dir.join(format!("{name}.pem")), issued.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), issued.key_pem).unwrap();
    };
    save("ca", ca.issued());
    save("server", ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap());
    save("client-alice", ca.issue_client("alice").unwrap());
    dir
}

/// Loads an example config with `certs/` pointing at `certs` and the
/// environment's `$CALLOUT_ISSUER` given a fresh key, on port 0.
fn example_options(name: &str, certs: &Path) -> Options {
    let path = repo().join("examples").join(name);
    let issuer = warden::nkeys::KeyPair::generate(warden::nkeys::KeyType::Account).unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"certs/", &format!("\"{}/", certs.display()))
        .replace("$CALLOUT_ISSUER", issuer.public().as_str());
    let mut opts = warden::config::load_str(&text, &path.to_string_lossy()).unwrap_or_else(|e| panic!("{e}")).options;
    opts.port = 0;
    if let Some(cluster) = opts.cluster.as_mut() {
        cluster.port = 0;
    }
    opts
}

#[test]
fn every_example_config_loads_and_checks() {
    let certs = dev_certs();
    let mut seen = 0;
    for dir in ["", "cluster", "leaf"] {
        for entry in std::fs::read_dir(repo().join("examples").join(dir)).unwrap() {
            let path = entry.unwrap().path();
            // `nats-*.conf` are configs for the reference nats-server.
            let reference = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("nats-"));
            if path.extension().is_some_and(|e| e == "conf") && !reference {
                let name = Path::new(dir).join(path.file_name().unwrap()).to_string_lossy().into_owned();
                let opts = example_options(&name, &certs);
                warden::server::check(&opts).unwrap_or_else(|e| panic!("{name}: {e}"));
                seen += 1;
            }
        }
    }
    assert!(seen >= 9, "found {seen} configs");
}

fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join("examples").join(name);
    // `cargo test` builds every example first; `cargo test --test examples` alone does not.
    assert!(
        path.exists(),
        "{} missing: build the examples first (`cargo test` or `cargo build --examples`)",
        path.display()
    );
    path
}

fn run_example(name: &str, args: &[&str]) -> String {
    let out = Command::new(example_binary(name)).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_examples_run_against_the_demo_config() {
    let server = start(example_options("demo.conf", Path::new("/nonexistent"))).await;
    let url = url(&server);
    let run = |name: &'static str, count: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || run_example(name, &["--server", &url, "--count", count]))
    };
    let out = within(run("pubsub", "2")).await.unwrap();
    assert_eq!(out, "received on hello: world\nreceived on hello: world\n");

    let out = within(run("request_reply", "2")).await.unwrap();
    assert!(out.contains("answer: B handled request 1"), "{out}");
    assert!(out.contains("service.C: no responders"), "{out}");
    assert!(out.contains("service.silent: timed out"), "{out}");

    let out = within(run("queue_workers", "30")).await.unwrap();
    assert!(out.contains("30 jobs, each handled exactly once: true"), "{out}");

    let out = within(run("heartbeats", "3")).await.unwrap();
    for line in ["billing         3  up", "search          3  up", "mailer          1  silent"] {
        assert!(out.contains(line), "{out}");
    }

    let out = within(run("lowest_latency", "2")).await.unwrap();
    assert!(out.contains("first answer after") && out.contains("fast computed it"), "{out}");
    assert!(out.contains("direct request to service.node.fast: fast answered directly"), "{out}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_requestor_runs_against_the_secure_config() {
    let certs = dev_certs();
    let server = start(example_options("secure.conf", &certs)).await;
    let url = format!("tls://localhost:{}", server.local_addr().port());
    let ca = certs.join("ca.pem").to_string_lossy().into_owned();
    let out =
        within(tokio::task::spawn_blocking(move || run_example("secure_requestor", &["--server", &url, "--ca", &ca])))
            .await
            .unwrap();
    assert!(out.contains("bob's request to req.foo: foo is served"), "{out}");
    assert!(out.contains("Permissions Violation for Publish to \"admin.shutdown\""), "{out}");
    assert!(out.contains("Permissions Violation for Subscription to \"req.>\""), "{out}");
    assert!(out.contains("not bob's refused publish"), "{out}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_tenant_example_runs_against_the_accounts_config() {
    let server = start(example_options("accounts.conf", Path::new("/none"))).await;
    let url = url(&server);
    let out =
        within(tokio::task::spawn_blocking(move || run_example("multi_tenant", &["--server", &url, "--count", "2"])))
            .await
            .unwrap();
    let want = "ACME is user \"acme\" in account \"ACME\"\n\
                GLOBEX is user \"globex\" in account \"GLOBEX\"\n\
                ACME received on ext.weather.updates.paris: update 1\n\
                ACME received on ext.weather.updates.paris: update 2\n\
                ACME received on orders.new: acme order\n\
                GLOBEX received on updates.paris: update 1\n\
                GLOBEX received on updates.paris: update 2\n\
                GLOBEX received on orders.new: globex order\n\
                ACME's forecast request: sunny in paris\n\
                GLOBEX's forecast request: no responders (GLOBEX does not import the service)\n";
    assert_eq!(out, want);
    server.shutdown().await;
}

#[test]
fn embed_custom_auth_example_runs() {
    let out = run_example("embed_custom_auth", &[]);
    assert!(out.contains("ada with a wrong password: refused"), "{out}");
    assert!(out.contains("ada received on user.ada.inbox: note to self"), "{out}");
    assert!(out.contains("Permissions Violation for Publish to \"user.bob.inbox\""), "{out}");
    assert!(out.contains("after a reload, no credentials: refused"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_example_configs_form_a_mesh_and_the_failover_example_runs() {
    // The three demo nodes, on free ports instead of 4222-4224/6222-6224.
    let a = start(example_options("cluster/a.conf", Path::new("/none"))).await;
    let route = |s: &Server| format!("nats-route://route:route-demo-password@{}", s.cluster().unwrap().listen_addr);
    let seeded = |name: &str, routes: Vec<String>| {
        let mut opts = example_options(name, Path::new("/none"));
        opts.cluster.as_mut().unwrap().routes = routes;
        opts
    };
    let b = start(seeded("cluster/b.conf", vec![route(&a)])).await;
    let c = start(seeded("cluster/c.conf", vec![route(&a), route(&b)])).await;
    let deadline = std::time::Instant::now() + WAIT;
    while [&a, &b, &c].iter().any(|s| s.cluster().unwrap().route_count() < 2) {
        assert!(std::time::Instant::now() < deadline, "mesh did not form");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let urls = [&a, &b, &c].iter().map(|s| url(s)).collect::<Vec<_>>().join(",");
    let out = within(tokio::task::spawn_blocking(move || {
        run_example("cluster_failover", &["--server", &urls, "--count", "2"])
    }))
    .await
    .unwrap();
    assert!(out.contains("tick 1 received via node-"), "{out}");
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callout_service_example_admits_its_users_into_their_account() {
    // The config's issuer, replaced by a fresh key whose seed the service gets.
    let issuer = warden::nkeys::KeyPair::generate(warden::nkeys::KeyType::Account).unwrap();
    let seed = temp_dir("callout-example").join("issuer.seed");
    std::fs::write(&seed, issuer.seed().expose()).unwrap();
    let path = repo().join("examples/callout.conf");
    let text = std::fs::read_to_string(&path).unwrap();
    let placeholder = text.lines().find_map(|l| l.trim().strip_prefix("issuer: ")).unwrap().to_owned();
    let text = text.replace(&placeholder, issuer.public().as_str());
    let mut opts = warden::config::load_str(&text, &path.to_string_lossy()).unwrap().options;
    opts.port = 0;
    let server = start(opts).await;
    let url = url(&server);
    let seed = seed.to_string_lossy().into_owned();
    let service = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            run_example("callout_service", &["--server", &url, "--issuer-seed", &seed, "--count", "2"])
        })
    };
    // alice is admitted into APP; a wrong password is refused by the service.
    let alice = within(async {
        loop {
            let opts = async_nats::ConnectOptions::with_user_and_password("alice".into(), "alice-pw".into());
            match opts.connect(&url).await {
                Ok(client) => return client,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    let refused = async_nats::ConnectOptions::with_user_and_password("alice".into(), "nope".into())
        .max_reconnects(Some(1))
        .connect(&url)
        .await;
    assert!(refused.is_err());
    // alice may use app.> (a message with a payload: the JWT sets no limit of 0).
    let mut sub = alice.subscribe("app.hi").await.unwrap();
    alice.flush().await.unwrap();
    alice.publish("app.hi", "hello".into()).await.unwrap();
    assert_eq!(&within(futures::StreamExt::next(&mut sub)).await.unwrap().payload[..], b"hello");
    let out = within(service).await.unwrap();
    assert!(out.contains("admitted alice into APP"), "{out}");
    assert!(out.contains("refused \"alice\""), "{out}");
    let connz = server.broker().clients();
    assert!(connz.iter().any(|c| c.meta.lock().account.as_deref() == Some("APP")));
    drop(alice);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_authorizer_example_decides_logins() {
    let port = common::peers::free_port();
    let listen = format!("127.0.0.1:{port}");
    let authorizer =
        tokio::task::spawn_blocking(move || run_example("http_authorizer", &["--listen", &listen, "--count", "2"]));
    let path = repo().join("examples/http_authorizer.conf");
    let text = std::fs::read_to_string(&path).unwrap().replace("127.0.0.1:8089", &format!("127.0.0.1:{port}"));
    let mut opts = warden::config::load_str(&text, &path.to_string_lossy()).unwrap().options;
    opts.port = 0;
    let server = start(opts).await;
    let addr = server.local_addr();
    within(async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let (mut alice, _) = Raw::connect(addr).await;
    alice.send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"alice-pw\"}\r\nPING\r\n").await;
    alice.expect("PONG").await;
    alice.send("PUB other.x 0\r\n\r\n").await;
    alice.expect("-ERR 'Permissions Violation for Publish to \"other.x\"'").await;
    let (mut raw, _) = Raw::connect(addr).await;
    raw.send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wrong\"}\r\nPING\r\n").await;
    assert_eq!(raw.next_non_ping().await, "-ERR 'Authorization Violation'");
    let out = within(authorizer).await.unwrap();
    assert!(out.contains("alice -> true") && out.contains("alice -> false"), "{out}");
    server.shutdown().await;
}
