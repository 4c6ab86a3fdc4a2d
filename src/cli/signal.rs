//! `-sl`/`--signal <command>[=<pid or pid file>]`: nats-server's way of
//! signalling a running server (the Helm chart's preStop runs
//! `nats-server -sl=ldm=/var/run/nats/nats.pid`).
//!
//! A pid file is input, possibly written by someone else: nats-server hands
//! its content to kill(2), so `-1` (here `4294967295`, which `kill` reads as
//! -1) signals every process the caller may signal, and `0` its own process
//! group. warden accepts only a pid above 1 and at most the system's
//! `pid_max`, signals only a process named `warden` or `nats-server` (or
//! like the caller), and calls kill(2) itself rather than whatever `kill`
//! is first on `PATH`. A pid reused between the name check and the signal
//! (microseconds) is the remaining race.

use std::fmt;
use std::process::Command;

use rustix::process::{kill_process, Pid, Signal};

/// What `/proc/sys/kernel/pid_max` may hold at most (Linux' `PID_MAX_LIMIT`
/// on 64-bit systems), the bound when that file cannot be read.
const PID_MAX_LIMIT: u32 = 4_194_304;
/// Process names a signal may go to, besides the caller's own name.
const SERVER_NAMES: &[&str] = &["warden", "nats-server"];
/// Linux keeps this many bytes of a process name (`TASK_COMM_LEN` - 1).
const COMM_LEN: usize = 15;

/// Why a signal could not be sent.
#[derive(Debug, PartialEq, Eq)]
pub enum SignalError {
    /// Not one of nats-server's commands.
    UnknownCommand(String),
    /// More than one `=`.
    BadArguments(String),
    /// Neither a pid nor a readable pid file.
    BadPid(String),
    /// A pid outside 2..=pid_max (`-1`, `0` and `1` would reach every
    /// process, a process group, or init).
    OutOfRange(u32, u32),
    /// The process is not a warden or nats-server (or is gone).
    NotAServer(u32, String),
    /// No pid given and not exactly one server running.
    NoProcess(String),
    /// kill(2) failed.
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
            SignalError::OutOfRange(pid, max) => {
                write!(f, "invalid pid: {pid} (a server's pid is between 2 and pid_max, {max}); nothing signalled")
            }
            SignalError::NotAServer(pid, name) => {
                write!(f, "process {pid} is {name}, not warden or nats-server; nothing signalled")
            }
            SignalError::NoProcess(why) => f.write_str(why),
            SignalError::Failed(why) => f.write_str(why),
        }
    }
}

/// The signal each of nats-server's commands sends, with its name.
pub fn signal_for(command: &str) -> Result<(&'static str, Signal), SignalError> {
    Ok(match command {
        "stop" => ("KILL", Signal::KILL),
        "quit" => ("INT", Signal::INT),
        "reopen" => ("USR1", Signal::USR1),
        "reload" => ("HUP", Signal::HUP),
        "ldm" => ("USR2", Signal::USR2),
        "term" => ("TERM", Signal::TERM),
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

/// The system's largest pid.
fn pid_max() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .map_or(PID_MAX_LIMIT, |max: u32| max.min(PID_MAX_LIMIT))
}

/// `pid` as a process one may signal: above 1 (not "every process", a
/// process group or init), at most `max`.
fn checked_pid(pid: u32, max: u32) -> Result<Pid, SignalError> {
    let raw = i32::try_from(pid).ok().filter(|p| *p > 1 && pid <= max);
    raw.and_then(Pid::from_raw).ok_or(SignalError::OutOfRange(pid, max))
}

/// Whether a process named `comm` (as `/proc/<pid>/comm` holds it) is a
/// server: `warden`, `nats-server`, or the caller's own name.
fn is_server_name(comm: &str, program: &str) -> bool {
    let own = program.get(..COMM_LEN).unwrap_or(program);
    SERVER_NAMES.contains(&comm) || comm == own
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
    let (name, signal) = signal_for(command)?;
    let pid = match target {
        Some(target) => resolve_pid(target)?,
        None => find_pid(program)?,
    };
    let checked = checked_pid(pid, pid_max())?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map_err(|_| SignalError::NoProcess(format!("no process {pid} is running; nothing signalled")))?;
    let comm = comm.trim_end_matches('\n');
    if pid == std::process::id() || !is_server_name(comm, program) {
        return Err(SignalError::NotAServer(pid, format!("{comm:?}")));
    }
    kill_process(checked, signal)
        .map_err(|e| SignalError::Failed(format!("cannot send SIG{name} to process {pid}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_nats_server_signals_and_pids_resolve() {
        assert_eq!(signal_for("ldm"), Ok(("USR2", Signal::USR2)));
        assert_eq!(signal_for("reopen"), Ok(("USR1", Signal::USR1)));
        assert_eq!(signal_for("stop"), Ok(("KILL", Signal::KILL)));
        assert!(matches!(signal_for("nap"), Err(SignalError::UnknownCommand(_))));
        assert_eq!(resolve_pid("42"), Ok(42));
        let file = std::env::temp_dir().join(format!("warden-sl-{}.pid", std::process::id()));
        std::fs::write(&file, "4711\n").unwrap();
        assert_eq!(resolve_pid(&file.to_string_lossy()), Ok(4711));
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(resolve_pid("/nonexistent/x.pid"), Err(SignalError::BadPid(_))));
        assert!(matches!(send("ldm=1=2", "warden"), Err(SignalError::BadArguments(_))));
    }

    #[test]
    fn only_a_single_process_in_range_may_be_signalled() {
        // 4294967295 is what `kill` reads as -1: every process.
        for pid in [0, 1, 4_194_305, u32::MAX, 2_147_483_648] {
            assert_eq!(checked_pid(pid, PID_MAX_LIMIT), Err(SignalError::OutOfRange(pid, PID_MAX_LIMIT)), "{pid}");
        }
        assert_eq!(checked_pid(32_769, 32_768), Err(SignalError::OutOfRange(32_769, 32_768)));
        assert_eq!(checked_pid(2, 32_768).map(|p| p.as_raw_nonzero().get()), Ok(2));
        assert!((2..=PID_MAX_LIMIT).contains(&pid_max()));
        assert!(is_server_name("warden", "nats-server") && is_server_name("nats-server", "warden"));
        assert!(is_server_name("my-broker-build", "my-broker-build-2"), "comm keeps 15 bytes");
        assert!(!is_server_name("sleep", "warden") && !is_server_name("bash", "nats-server"));
    }
}
