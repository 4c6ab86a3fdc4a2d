//! Other servers for cluster tests: free loopback ports, nats-server child
//! processes (Debian's 2.9.10 on PATH, PyPI's 2.15.1 in target/pyenv), and
//! waits for what they do asynchronously.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use futures::StreamExt;

use super::{within, WAIT};

/// Ports handed out by [`free_port`]: below the kernel's ephemeral range
/// (32768-60999 on Linux).
const FREE_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port for a server this test starts later, free at the time
/// of asking. It is never one the kernel hands out for `port: 0`: a port
/// from `bind(0)`, once released, was often handed straight to the next
/// `bind(0)` of a warden started meanwhile by another test of the same
/// binary, and the reference server meant for it failed with "address
/// already in use" (the mixed-cluster tests failed so in CI). Each process
/// starts at its own offset and never hands out a port twice.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(FREE_PORTS.end - FREE_PORTS.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = FREE_PORTS.start + u16::try_from(n).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FREE_PORTS:?}");
}

/// Polls `cond` until it holds (bounded by the test timeout).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let ok = tokio::time::timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "timed out waiting for {what}");
}

/// A child server process, killed when dropped. When it is dropped by a
/// failing test, its log (if it kept one) is printed, so a reference server
/// that refused its config or could not bind says why in the test output.
pub struct NatsServer(pub Child, pub Option<PathBuf>);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let (true, Some(log)) = (std::thread::panicking(), &self.1) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!("---- log of the reference server ({}) ----\n{text}---- end of log ----", log.display());
        }
    }
}

/// Starts `binary -c <config>` (the config written to a fresh directory,
/// its log beside it).
pub fn spawn_nats_server(binary: &Path, name: &str, config: &str) -> NatsServer {
    let dir = super::temp_dir(name);
    let conf = dir.join("nats.conf");
    std::fs::write(&conf, config).unwrap();
    let log = dir.join("nats.log");
    let stderr = std::fs::File::create(&log).unwrap();
    let child = Command::new(binary).arg("-c").arg(&conf).stderr(stderr).spawn().unwrap();
    NatsServer(child, Some(log))
}

/// Debian's nats-server 2.9.10, if installed (scripts/test.sh installs it),
/// by its explicit path: never through PATH, where a `nats-server` link to
/// warden (as the README's drop-in section makes) would stand in for it.
pub fn nats_server_2_9() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/sbin/nats-server");
    Command::new(&path).arg("--version").output().ok().map(|_| path)
}

/// nats-server 2.15.1 from PyPI, if scripts/python-deps.sh ran.
pub fn nats_server_2_15() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/nats-server");
    let version = Command::new(&path).arg("--version").output().ok()?;
    String::from_utf8_lossy(&version.stdout).contains("2.15.1").then_some(path)
}

/// Connects (no credentials) to a server that may still be starting.
pub async fn connect_retrying(url: &str) -> async_nats::Client {
    within(async {
        loop {
            if let Ok(client) = async_nats::connect(url).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Logs in to a server that may still be starting.
pub async fn login_retrying(url: &str, user: &str, pass: &str) -> async_nats::Client {
    within(async {
        loop {
            let opts = async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into());
            if let Ok(client) = opts.connect(url).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Publishes on `subject` from `publisher` until `sub` receives it
/// (interest reaches a nats-server asynchronously and cannot be inspected
/// from here).
pub async fn probe_until_received(publisher: &async_nats::Client, subject: &str, sub: &mut async_nats::Subscriber) {
    for i in 0..100 {
        publisher.publish(subject.to_owned(), i.to_string().into()).await.unwrap();
        publisher.flush().await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            assert_eq!(m.subject.as_str(), subject);
            return;
        }
    }
    panic!("{subject} never arrived");
}
