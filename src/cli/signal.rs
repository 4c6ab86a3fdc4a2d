//! `-sl`/`--signal <command>[=<pid or pid file>]`: nats-server's way of
//! signalling a running server (the Helm chart's preStop runs
//! `nats-server -sl=ldm=/var/run/nats/nats.pid`).

use std::fmt;
use std::process::Command;

/// Why a signal could not be sent.
#[derive(Debug, PartialEq, Eq)]
pub enum SignalError {
    /// Not one of nats-server's commands.
    UnknownCommand(String),
    /// More than one `=`.
    BadArguments(String),
    /// Neither a pid nor a readable pid file.
    BadPid(String),
    /// No pid given and not exactly one server running.
    NoProcess(String),
    /// `kill` failed.
    Failed(String),
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::UnknownCommand(c) => {
                write!(f, "unknown signal {c:?} (use ldm, stop, quit, term, reopen or reload)")
            }
            SignalError::BadArguments(a) => write!(f, "invalid signal parameters: {a}"),
            SignalError::BadPid(p) => write!(f, "invalid pid: {p}"),
            SignalError::NoProcess(why) => f.write_str(why),
            SignalError::Failed(why) => f.write_str(why),
        }
    }
}

/// The signal each of nats-server's commands sends.
pub fn signal_for(command: &str) -> Result<&'static str, SignalError> {
    Ok(match command {
        "stop" => "KILL",
        "quit" => "INT",
        "reopen" => "USR1",
        "reload" => "HUP",
        "ldm" => "USR2",
        "term" => "TERM",
        other => return Err(SignalError::UnknownCommand(other.to_owned())),
    })
}

/// A pid, or the path of a file that holds one.
fn resolve_pid(target: &str) -> Result<u32, SignalError> {
    if let Ok(pid) = target.parse() {
        return Ok(pid);
    }
    let text = std::fs::read_to_string(target).map_err(|_| SignalError::BadPid(target.to_owned()))?;
    text.trim().parse().map_err(|_| SignalError::BadPid(target.to_owned()))
}

/// The one other process named `program`, found with `pgrep`, as nats-server does.
fn find_pid(program: &str) -> Result<u32, SignalError> {
    let output = Command::new("pgrep")
        .arg("-x")
        .arg(program)
        .output()
        .map_err(|_| SignalError::NoProcess("unable to resolve pid, try providing one".into()))?;
    let me = std::process::id();
    let pids: Vec<u32> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|p| *p != me)
        .collect();
    match pids.as_slice() {
        [pid] => Ok(*pid),
        [] => Err(SignalError::NoProcess(format!("no {program} processes running"))),
        many => {
            let list: Vec<String> = many.iter().map(u32::to_string).collect();
            Err(SignalError::NoProcess(format!("multiple {program} processes running:\n{}", list.join("\n"))))
        }
    }
}

/// Sends the signal `spec` (`command[=pid|file]`) names.
pub fn send(spec: &str, program: &str) -> Result<(), SignalError> {
    let mut parts = spec.split('=');
    let command = parts.next().unwrap_or_default();
    let target = parts.next();
    if let Some(extra) = parts.next() {
        return Err(SignalError::BadArguments(extra.to_owned()));
    }
    let signal = signal_for(command)?;
    let pid = match target {
        Some(target) => resolve_pid(target)?,
        None => find_pid(program)?,
    };
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| SignalError::Failed(format!("cannot run kill: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(SignalError::Failed(format!("cannot send SIG{signal} to process {pid}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_nats_server_signals_and_pids_resolve() {
        assert_eq!(signal_for("ldm"), Ok("USR2"));
        assert_eq!(signal_for("reopen"), Ok("USR1"));
        assert_eq!(signal_for("stop"), Ok("KILL"));
        assert!(matches!(signal_for("nap"), Err(SignalError::UnknownCommand(_))));
        assert_eq!(resolve_pid("42"), Ok(42));
        let file = std::env::temp_dir().join(format!("warden-sl-{}.pid", std::process::id()));
        std::fs::write(&file, "4711\n").unwrap();
        assert_eq!(resolve_pid(&file.to_string_lossy()), Ok(4711));
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(resolve_pid("/nonexistent/x.pid"), Err(SignalError::BadPid(_))));
        assert!(matches!(send("ldm=1=2", "warden"), Err(SignalError::BadArguments(_))));
    }
}
