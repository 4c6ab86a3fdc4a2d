//! Logging as nats-server does it: to standard error, or with `-l` /
//! `log_file` to a file that SIGUSR1 reopens (for log rotation); colour
//! codes only on a terminal; timestamps unless `logtime: false` / `-T=false`.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// A log file that can be reopened under the same path.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Arc<LogFile>> {
        Ok(Arc::new(LogFile { path: path.to_owned(), file: Mutex::new(open_append(path)?) }))
    }

    /// Opens the path again (after a log rotator moved the old file away).
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = open_append(&self.path)?;
        *self.file.lock() = fresh;
        Ok(())
    }

    /// The path it writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Hands tracing the current log file.
#[derive(Clone)]
struct Writer(Arc<LogFile>);

/// One log record's hold on the file.
struct Guard<'a>(MutexGuard<'a, File>);

impl Write for Guard<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for Writer {
    type Writer = Guard<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Guard(self.0.file.lock())
    }
}

/// Whether [`init`] ran (a refusal before it sets up logging itself).
pub fn is_initialized() -> bool {
    tracing::dispatcher::has_been_set()
}

/// Sets up logging at `level` (`RUST_LOG` overrides it), to `file` or
/// standard error.
pub fn init(level: &str, logtime: bool, file: Option<Arc<LogFile>>) {
    // At `trace`, only warden's own events (the protocol trace among them):
    // the libraries' trace output is noise, and an HTTP client's could show
    // the authorizer's Authorization header.
    let directive = if level.eq_ignore_ascii_case("trace") { "info,warden=trace".to_owned() } else { level.to_owned() };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directive));
    let ansi = file.is_none() && io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let writer = match file {
        Some(file) => BoxMakeWriter::new(Writer(file)),
        None => BoxMakeWriter::new(io::stderr),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer);
    if logtime {
        builder.init();
    } else {
        builder.without_time().init();
    }
}
