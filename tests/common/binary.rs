//! The `warden` binary as a child process: started on a free port from a
//! config, signalled, and its memory read from /proc.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{temp_dir, within};

/// A `warden serve` child process, killed when dropped.
pub struct Serving(pub Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on a free port with `config`, and returns it with its address.
pub async fn serve(name: &str, config: &str) -> (Serving, std::net::SocketAddr) {
    let (serving, addr, _) = serve_logged(name, config).await;
    (serving, addr)
}

/// Every line the server has logged so far.
pub type Log = Arc<Mutex<Vec<String>>>;

/// Like [`serve`], also keeping every line the server logs.
pub async fn serve_logged(name: &str, config: &str) -> (Serving, std::net::SocketAddr, Log) {
    let dir = temp_dir(name);
    let conf = dir.join("warden.conf");
    std::fs::write(&conf, format!("listen: 127.0.0.1:0\n{config}")).unwrap();
    serve_file_logged(&conf).await
}

/// Starts the binary with the config file `conf` (which must listen on
/// 127.0.0.1), and returns it with its address.
pub async fn serve_file(conf: &std::path::Path) -> (Serving, std::net::SocketAddr) {
    let (serving, addr, _) = serve_file_logged(conf).await;
    (serving, addr)
}

/// [`serve_file`], also returning every log line the server writes.
pub async fn serve_file_logged(conf: &std::path::Path) -> (Serving, std::net::SocketAddr, Log) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--config"])
        .arg(conf)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let log = Log::default();
    let lines = log.clone();
    // Reads the log until the line that says where it listens, then keeps
    // draining it so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Listening for client connections on") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(listen_addr(&line));
                }
            }
            lines.lock().unwrap().push(line);
        }
    });
    let addr = within(rx).await.expect("the server says where it listens");
    (Serving(child), addr, log)
}

/// The first log line (within [`within`]'s bound) that contains every one of `parts`.
pub async fn log_line(log: &Log, parts: &[&str]) -> String {
    within(async {
        loop {
            let found = log.lock().unwrap().iter().find(|line| parts.iter().all(|p| line.contains(p))).cloned();
            if let Some(line) = found {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// The `127.0.0.1:PORT` in a log line (which may hold colour codes).
fn listen_addr(line: &str) -> std::net::SocketAddr {
    let at = line.find("127.0.0.1:").expect("address in the log line");
    let addr: String = line[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
    addr.parse().expect("socket address")
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([name, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

pub async fn exit_status(serving: &mut Serving) -> std::process::ExitStatus {
    within(async {
        loop {
            if let Some(status) = serving.0.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

impl Serving {
    /// Resident set size of the server process, in bytes (VmRSS).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}
