//! The test helper async-nats' own tests call (`nats_server::run_server`
//! and friends). async-nats publishes its tests but not this helper (a path
//! dependency in its repository), so scripts/client-suite.sh supplies this
//! one, written for warden's project. Like the original it starts whatever
//! `nats-server` is first on PATH, with `--store_dir DIR -p PORT|-1 -l LOG
//! -P PIDFILE [-c CONFIG]`, finds the client address in the log line
//! `... client connections on ADDR`, and reads the port and scheme from the
//! server's INFO. It translates no flags: the server must take them.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A running `nats-server`, killed when dropped.
pub struct Server {
    inner: Inner,
}

struct Inner {
    port: Option<String>,
    cfg: String,
    id: String,
    child: Child,
    logfile: PathBuf,
    pidfile: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.inner.child.kill();
        let _ = self.inner.child.wait();
        let _ = std::fs::remove_file(&self.inner.logfile);
        let _ = std::fs::remove_file(&self.inner.pidfile);
    }
}

fn unique_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn start(cfg: &str, port: Option<&str>, id: Option<String>) -> Inner {
    let id = id.unwrap_or_else(unique_id);
    let tmp = std::env::temp_dir();
    let logfile = tmp.join(format!("nats-server-{id}.log"));
    let pidfile = tmp.join(format!("nats-server-{id}.pid"));
    let store_dir = tmp.join(format!("store-dir-{id}"));
    let mut cmd = Command::new("nats-server");
    cmd.arg("--store_dir").arg(&store_dir).arg("-p").arg(port.unwrap_or("-1"));
    cmd.arg("-l").arg(&logfile).arg("-P").arg(&pidfile);
    if !cfg.is_empty() {
        cmd.arg("-c").arg(cfg);
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run nats-server from PATH: {e}"));
    Inner { port: port.map(str::to_owned), cfg: cfg.to_owned(), id, child, logfile, pidfile }
}

impl Server {
    /// Stops the server and starts it again on the same (fixed) port.
    pub fn restart(&mut self) {
        let port = self.inner.port.clone().expect("a server on a dynamic port cannot be restarted");
        let _ = self.inner.child.kill();
        let _ = self.inner.child.wait();
        self.inner = start(&self.inner.cfg.clone(), Some(&port), Some(self.inner.id.clone()));
    }

    /// The address in the log line that says where clients connect.
    fn client_addr(&self) -> String {
        for _ in 0..100 {
            if let Ok(log) = std::fs::read_to_string(&self.inner.logfile) {
                let found = log.lines().find_map(|line| {
                    let at = line.find("client connections on")? + "client connections on".len();
                    line[at..].split_whitespace().next().map(str::to_owned)
                });
                if let Some(addr) = found {
                    return addr.replace("0.0.0.0", "localhost");
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no client address in {}", self.inner.logfile.display());
    }

    fn info(&self) -> serde_json::Value {
        let stream = TcpStream::connect(self.client_addr()).expect("connect for INFO");
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).expect("did not receive INFO");
        serde_json::from_str(line.trim_start_matches("INFO").trim()).expect("could not parse INFO")
    }

    /// `nats://localhost:PORT`, or `tls://` when the server requires TLS.
    pub fn client_url(&self) -> String {
        let info = self.info();
        let port = info["port"].as_u64().expect("port in INFO");
        let scheme = if info["tls_required"].as_bool().unwrap_or(false) { "tls" } else { "nats" };
        format!("{scheme}://localhost:{port}")
    }

    /// The client port from INFO.
    pub fn client_port(&self) -> u16 {
        self.info()["port"].as_u64().expect("port in INFO") as u16
    }

    /// The client URL with a user and password.
    pub fn client_url_with(&self, user: &str, pass: &str) -> String {
        self.client_url().replacen("://", &format!("://{user}:{pass}@"), 1)
    }

    /// The client URL with a token.
    pub fn client_url_with_token(&self, token: &str) -> String {
        self.client_url().replacen("://", &format!("://{token}@"), 1)
    }

    /// The pid from the pid file.
    pub fn client_pid(&self) -> usize {
        std::fs::read_to_string(&self.inner.pidfile).expect("pid file").trim().parse().expect("pid")
    }
}

/// `nats-server --signal ldm=PID`.
pub fn set_lame_duck_mode(s: &Server) {
    Command::new("nats-server")
        .arg("--signal")
        .arg(format!("ldm={}", s.client_pid()))
        .status()
        .expect("nats-server --signal");
}

/// A server with `cfg` (a path, or empty for none) on a free port.
pub fn run_server(cfg: &str) -> Server {
    run_server_with_port(cfg, None)
}

/// A server without a config on a free port.
pub fn run_basic_server() -> Server {
    run_server("")
}

/// A server with `cfg` on `port` (a free one when `None`).
pub fn run_server_with_port(cfg: &str, port: Option<&str>) -> Server {
    Server { inner: start(cfg, port, None) }
}

/// Whether `port` can be bound on 127.0.0.1.
pub fn is_port_available(port: usize) -> bool {
    u16::try_from(port).is_ok_and(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}
