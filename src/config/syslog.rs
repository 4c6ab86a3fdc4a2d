//! Where `syslog` / `remote_syslog` (and `-s` / `-r`) send the log, parsed
//! when the config is read so that a bad address is refused with its
//! position instead of when the server starts. The sink itself (framing,
//! the bounded queue) is the CLI's: `src/cli/syslog.rs`.

use std::fmt;
use std::path::PathBuf;

/// The local syslog daemon's socket, as Go's `log/syslog` finds it first.
pub const LOCAL_SYSLOG_SOCKET: &str = "/dev/log";

/// A syslog daemon to send the log to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// `syslog: true`: the local daemon's socket ([`LOCAL_SYSLOG_SOCKET`]),
    /// with facility `daemon` and the short header without a hostname, as
    /// nats-server (Go's `syslog.New`) writes it.
    Local,
    /// `remote_syslog: "udp://host:port"`: one datagram a line.
    Udp(String),
    /// `remote_syslog: "tcp://host:port"`: one newline-ended line after
    /// another on one connection (Go's `log/syslog` framing).
    Tcp(String),
    /// `remote_syslog: "unix:///path"`: a daemon's socket named by path.
    Unix(PathBuf),
}

impl SyslogTarget {
    /// Parses `remote_syslog`'s URL: nats-server takes `udp://`, `tcp://`
    /// and `unix://` and nothing else. The host and port are checked for
    /// shape only; the name is resolved when the server starts.
    pub fn parse_remote(url: &str) -> Result<SyslogTarget, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!(
                "remote_syslog {url:?} is not a URL: use udp://host:port, tcp://host:port or unix:///path"
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "udp" | "tcp" => {
                let addr = rest.trim_end_matches('/');
                let port = addr.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
                match port {
                    Some((host, Ok(port))) if !host.is_empty() && port != 0 && !addr.contains('/') => {
                        let addr = addr.to_owned();
                        Ok(if scheme.eq_ignore_ascii_case("udp") {
                            SyslogTarget::Udp(addr)
                        } else {
                            SyslogTarget::Tcp(addr)
                        })
                    }
                    _ => Err(format!("remote_syslog {url:?} needs a host and a port (1-65535): {scheme}://host:port")),
                }
            }
            "unix" if rest.starts_with('/') && rest.len() > 1 => Ok(SyslogTarget::Unix(PathBuf::from(rest))),
            "unix" => Err(format!("remote_syslog {url:?} needs an absolute socket path: unix:///path")),
            _ => Err(format!("remote_syslog {url:?}: the network must be udp, tcp or unix")),
        }
    }

    /// Whether lines carry the network form of the header (an RFC 3339
    /// time and the hostname) rather than the local one.
    pub fn is_remote(&self) -> bool {
        !matches!(self, SyslogTarget::Local)
    }
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogTarget::Local => write!(f, "unix://{LOCAL_SYSLOG_SOCKET}"),
            SyslogTarget::Udp(addr) => write!(f, "udp://{addr}"),
            SyslogTarget::Tcp(addr) => write!(f, "tcp://{addr}"),
            SyslogTarget::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_as_nats_server_takes_them() {
        assert_eq!(SyslogTarget::parse_remote("udp://foo.com:33"), Ok(SyslogTarget::Udp("foo.com:33".into())));
        assert_eq!(SyslogTarget::parse_remote("tcp://127.0.0.1:514"), Ok(SyslogTarget::Tcp("127.0.0.1:514".into())));
        assert_eq!(SyslogTarget::parse_remote("udp://[::1]:514"), Ok(SyslogTarget::Udp("[::1]:514".into())));
        assert_eq!(SyslogTarget::parse_remote("unix:///dev/log"), Ok(SyslogTarget::Unix("/dev/log".into())));
        for bad in ["foo.com:33", "udp://foo.com", "udp://:514", "udp://h:0", "udp://h:70000", "http://h:1", "unix://"]
        {
            assert!(SyslogTarget::parse_remote(bad).is_err(), "{bad}");
        }
        assert_eq!(SyslogTarget::Udp("h:1".into()).to_string(), "udp://h:1");
    }
}
