//! The pid file (`-P`/`pid_file`, read by `-sl ...=FILE`) and the ports
//! file (`--ports_file_dir`: `<executable>_<pid>.ports` with the bound
//! URLs, as nats-server writes it); both removed at exit.
//!
//! Both are written to a new file beside the path and renamed into place,
//! so a symlink or hard link someone left at the path (in a shared
//! directory such as `/tmp`) is replaced, never followed or truncated: the
//! server often starts as root and would overwrite the link's target.

use std::fs::OpenOptions;
use std::io::{self, Write};
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    websocket: Vec<String>,
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
    /// WebSocket listener and whether it is TLS (`wss`); nats.js's test
    /// harness reads its port here.
    pub websocket: Option<(SocketAddr, bool)>,
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
            write_replacing(path, pid.to_string().as_bytes())?;
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
                websocket: bound.websocket.map(|(a, tls)| url(if tls { "wss" } else { "ws" }, a)).into_iter().collect(),
            };
            let path = dir.join(format!("{program}_{pid}.ports"));
            let json = serde_json::to_vec(&ports).map_err(io::Error::other)?;
            write_replacing(&path, &json)?;
            files.written.push(path);
        }
        Ok(files)
    }
}

/// Writes `data` to a new file (`O_CREAT|O_EXCL`, which follows no link)
/// in `path`'s directory, then renames it over `path`.
fn write_replacing(path: &Path, data: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = dir.join(format!(".{}.{:016x}.tmp", name.to_string_lossy(), rand::random::<u64>()));
    let written = OpenOptions::new().write(true).create_new(true).open(&temp).and_then(|mut file| file.write_all(data));
    let placed = written.and_then(|()| std::fs::rename(&temp, path));
    if placed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    placed
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
            websocket: Some(("0.0.0.0:8080".parse().unwrap(), false)),
        };
        let files = RunFiles::write(Some(&pid_file), Some(&dir), "nats-server", &bound).unwrap();
        assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), std::process::id().to_string());
        let ports = dir.join(format!("nats-server_{}.ports", std::process::id()));
        assert_eq!(
            std::fs::read_to_string(&ports).unwrap(),
            r#"{"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"],"websocket":["ws://127.0.0.1:8080"]}"#
        );
        drop(files);
        assert!(!pid_file.exists() && !ports.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_at_the_pid_or_ports_path_is_replaced_not_followed() {
        let dir = std::env::temp_dir().join(format!("warden-files-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (victim, other) = (dir.join("victim"), dir.join("other"));
        std::fs::write(&victim, "precious").unwrap();
        std::fs::write(&other, "precious too").unwrap();
        let (pid_file, ports) = (dir.join("w.pid"), dir.join(format!("warden_{}.ports", std::process::id())));
        std::os::unix::fs::symlink(&victim, &pid_file).unwrap();
        std::fs::hard_link(&other, &ports).unwrap();
        let bound = Bound {
            client: ("127.0.0.1:4222".parse().unwrap(), false),
            monitoring: None,
            cluster: None,
            websocket: None,
        };
        let files = RunFiles::write(Some(&pid_file), Some(&dir), "warden", &bound).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "the symlink's target is untouched");
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "precious too", "the hard link's file is untouched");
        assert!(!std::fs::symlink_metadata(&pid_file).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), std::process::id().to_string());
        assert!(std::fs::read_to_string(&ports).unwrap().starts_with(r#"{"nats":"#));
        drop(files);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "no temporary files left: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
