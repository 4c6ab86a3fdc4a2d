//! Other servers for cluster tests: free loopback ports, nats-server child
//! processes (Debian's 2.9.10 on PATH, PyPI's 2.15.1 in target/pyenv), and
//! waits for what they do asynchronously.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{within, WAIT};

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

/// A child server process, killed when dropped.
pub struct NatsServer(pub Child);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `binary -c <config>` (the config written to a fresh directory).
pub fn spawn_nats_server(binary: &Path, name: &str, config: &str) -> NatsServer {
    let conf = super::temp_dir(name).join("nats.conf");
    std::fs::write(&conf, config).unwrap();
    NatsServer(Command::new(binary).arg("-c").arg(&conf).stderr(Stdio::null()).spawn().unwrap())
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
