//! The pid file (`-P`/`pid_file`, read by `-sl ...=FILE`) and the ports
//! file (`--ports_file_dir`: `<executable>_<pid>.ports` with the bound
//! URLs, as nats-server writes it); both removed at exit.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// nats-server's ports file.
#[derive(Serialize)]
struct Ports {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nats: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    monitoring: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cluster: Vec<String>,
}

/// What was bound, for the ports file.
#[derive(Debug)]
pub struct Bound {
    /// Client listener and whether it is TLS.
    pub client: (SocketAddr, bool),
    /// Monitoring listener and whether it is HTTPS.
    pub monitoring: Option<(SocketAddr, bool)>,
    /// Route listener and whether it is TLS.
    pub cluster: Option<(SocketAddr, bool)>,
}

/// `scheme://ip:port`, with 127.0.0.1 for an unspecified address (what a
/// local tool can connect to).
fn url(scheme: &str, addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() { "127.0.0.1".parse().unwrap_or(addr.ip()) } else { addr.ip() };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

/// The files written at start; removed when dropped.
#[derive(Debug, Default)]
pub struct RunFiles {
    written: Vec<PathBuf>,
}

impl RunFiles {
    /// Writes the pid file and the ports file the options ask for.
    pub fn write(pid_file: Option<&Path>, ports_dir: Option<&Path>, program: &str, bound: &Bound) -> io::Result<Self> {
        let mut files = RunFiles::default();
        let pid = std::process::id();
        if let Some(path) = pid_file {
            std::fs::write(path, pid.to_string())?;
            files.written.push(path.to_owned());
        }
        if let Some(dir) = ports_dir {
            let (client, client_tls) = bound.client;
            let ports = Ports {
                nats: vec![url(if client_tls { "tls" } else { "nats" }, client)],
                monitoring: bound
                    .monitoring
                    .map(|(a, tls)| url(if tls { "https" } else { "http" }, a))
                    .into_iter()
                    .collect(),
                cluster: bound.cluster.map(|(a, tls)| url(if tls { "tls" } else { "nats" }, a)).into_iter().collect(),
            };
            let path = dir.join(format!("{program}_{pid}.ports"));
            let json = serde_json::to_vec(&ports).map_err(io::Error::other)?;
            std::fs::write(&path, json)?;
            files.written.push(path);
        }
        Ok(files)
    }
}

impl Drop for RunFiles {
    fn drop(&mut self) {
        for path in &self.written {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_file_lists_the_urls_and_both_files_go_at_exit() {
        let dir = std::env::temp_dir().join(format!("warden-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("w.pid");
        let bound = Bound {
            client: ("0.0.0.0:4222".parse().unwrap(), false),
            monitoring: Some(("127.0.0.1:8222".parse().unwrap(), false)),
            cluster: None,
        };
        let files = RunFiles::write(Some(&pid_file), Some(&dir), "nats-server", &bound).unwrap();
        assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), std::process::id().to_string());
        let ports = dir.join(format!("nats-server_{}.ports", std::process::id()));
        assert_eq!(
            std::fs::read_to_string(&ports).unwrap(),
            r#"{"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"]}"#
        );
        drop(files);
        assert!(!pid_file.exists() && !ports.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
