//! Logging as nats-server does it: to standard error, or with `-l` /
//! `log_file` to a file that SIGUSR1 reopens (for an outside log rotator)
//! or that rotates itself past `logfile_size_limit`, keeping
//! `logfile_max_num` files, or to a syslog daemon (`syslog`,
//! `remote_syslog`: see [`super::syslog`]); colour codes only on a
//! terminal; timestamps unless `logtime: false` / `-T=false`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, MutexGuard};
use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer as FieldWriter};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::EnvFilter;

use super::syslog::{MakeLine, Syslog};

/// A log file that can be reopened under the same path, and rotates
/// itself when a size limit is set.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    rotation: Rotation,
    file: Mutex<Current>,
}

/// When a log file rotates itself (nats-server's `logfile_size_limit` and
/// `logfile_max_num`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Rotation {
    /// Bytes after which the file is moved aside and a new one started
    /// (0: never).
    pub size_limit: u64,
    /// Files kept, the current one included (0: all).
    pub max_num: usize,
}

/// The open file and how much has been written to it.
#[derive(Debug)]
struct Current {
    file: File,
    size: u64,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    /// Opens (or creates) `path` for appending, rotating by `rotation`.
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<Arc<LogFile>> {
        let file = open_append(path)?;
        let size = file.metadata().map_or(0, |m| m.len());
        Ok(Arc::new(LogFile { path: path.to_owned(), rotation, file: Mutex::new(Current { file, size }) }))
    }

    /// Opens the path again (after a log rotator moved the old file away).
    pub fn reopen(&self) -> io::Result<()> {
        let file = open_append(&self.path)?;
        let size = file.metadata().map_or(0, |m| m.len());
        *self.file.lock() = Current { file, size };
        Ok(())
    }

    /// Moves the full file aside as `PATH.<unix-nanos>` (names that sort
    /// by age), starts a new one, and removes the oldest past `max_num`.
    fn rotate(&self, current: &mut Current) -> io::Result<()> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut aside = self.path.as_os_str().to_owned();
        aside.push(format!(".{nanos:020}"));
        std::fs::rename(&self.path, &aside)?;
        *current = Current { file: open_append(&self.path)?, size: 0 };
        if self.rotation.max_num > 0 {
            let mut old = self.rotated()?;
            old.sort();
            let excess = (old.len() + 1).saturating_sub(self.rotation.max_num);
            for path in old.into_iter().take(excess) {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// The files this log rotated away: `PATH.` and digits.
    fn rotated(&self) -> io::Result<Vec<PathBuf>> {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else { return Ok(Vec::new()) };
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let prefix = format!("{}.", name.to_string_lossy());
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let stamped =
                file.strip_prefix(&prefix).is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
            if stamped {
                found.push(entry.path());
            }
        }
        Ok(found)
    }

    /// The path it writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Hands tracing the current log file.
#[derive(Clone)]
struct Writer(Arc<LogFile>);

/// One log record's hold on the file; the file rotates after the record
/// that takes it past the size limit.
struct Guard<'a>(&'a LogFile, MutexGuard<'a, Current>);

impl Write for Guard<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.1.file.write(buf)?;
        self.1.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.1.file.flush()
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let limit = self.0.rotation.size_limit;
        if limit > 0 && self.1.size >= limit {
            if let Err(err) = self.0.rotate(&mut self.1) {
                // Not through tracing: this is the log writer itself.
                eprintln!("warden: cannot rotate the log file {}: {err}", self.0.path.display());
            }
        }
    }
}

impl<'a> MakeWriter<'a> for Writer {
    type Writer = Guard<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Guard(&self.0, self.0.file.lock())
    }
}

/// Whether [`init`] ran (a refusal before it sets up logging itself).
pub fn is_initialized() -> bool {
    tracing::dispatcher::has_been_set()
}

/// Where the log goes: one place, as nats-server chooses it.
#[derive(Clone)]
pub enum Sink {
    /// Standard error (the default).
    Stderr,
    /// `log_file` / `-l`.
    File(Arc<LogFile>),
    /// `syslog` / `remote_syslog`: the line without time and level, which
    /// the syslog header carries.
    Syslog(Arc<Syslog>),
}

impl Sink {
    /// The log file, if the log goes to one (what SIGUSR1 reopens).
    pub fn file(&self) -> Option<&LogFile> {
        match self {
            Sink::File(file) => Some(file),
            _ => None,
        }
    }
}

/// Changes the level of the installed subscriber (a reload of `debug` or
/// `trace`); `None` when `RUST_LOG` chose it, which a reload leaves alone.
type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;
static SET_FILTER: OnceLock<Option<SetFilter>> = OnceLock::new();

/// The filter for `level`. At `trace`, only warden's own events (the
/// protocol trace among them): the libraries' trace output is noise, and an
/// HTTP client's could show the authorizer's Authorization header.
fn level_filter(level: &str) -> EnvFilter {
    EnvFilter::new(if level.eq_ignore_ascii_case("trace") { "info,warden=trace" } else { level })
}

/// Sets the log level of the running server (`debug`/`trace` changed by a
/// reload, as nats-server applies them). Does nothing when `RUST_LOG` set
/// the filter, which then stays in charge.
pub fn set_level(level: &str) -> Result<(), String> {
    match SET_FILTER.get() {
        Some(Some(set)) => set(level_filter(level)),
        Some(None) | None => Ok(()),
    }
}

/// Sets up logging at `level` (`RUST_LOG` overrides it), to `sink`, as
/// text lines or (`json`) one JSON object a line.
pub fn init(level: &str, logtime: bool, json: bool, sink: Sink) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let reloadable = from_env.is_none();
    let filter = from_env.unwrap_or_else(|| level_filter(level));
    let ansi = matches!(sink, Sink::Stderr) && io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let syslog = matches!(sink, Sink::Syslog(_));
    let logtime = logtime && !syslog;
    let writer = match sink {
        Sink::File(file) => BoxMakeWriter::new(Writer(file)),
        Sink::Syslog(syslog) => BoxMakeWriter::new(MakeLine(syslog)),
        Sink::Stderr => BoxMakeWriter::new(io::stderr),
    };
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_level(!syslog).with_target(!syslog);
    // Each format is its own subscriber type, and so is its reload handle.
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder.with_filter_reloading();
            let handle = builder.reload_handle();
            let set: SetFilter = Box::new(move |filter| handle.reload(filter).map_err(|e| e.to_string()));
            let _ = SET_FILTER.set(reloadable.then_some(set));
            builder.init()
        }};
    }
    match (json, logtime) {
        (true, true) => install!(builder.json()),
        (true, false) => install!(builder.json().without_time()),
        (false, true) => install!(builder.fmt_fields(text_fields()).with_ansi(ansi)),
        (false, false) => install!(builder.fmt_fields(text_fields()).with_ansi(ansi).without_time()),
    }
}

/// The fields of a text line, as `key=value` pairs that a logfmt parser
/// reads back (see [`write_field`]).
fn text_fields() -> impl for<'w> FormatFields<'w> {
    debug_fn(write_field).delimited(" ")
}

/// Writes one field of an event. The message stays as written; any other
/// value that is empty or holds a space, a quote, `=` or a control
/// character is quoted with `"` and `\` escaped (`user="" name="Go
/// client"`), so no field runs into the next; a value logged with `?` is
/// quoted already.
fn write_field(w: &mut FieldWriter<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    if field.name() == "message" {
        return write!(w, "{value:?}");
    }
    let text = format!("{value:?}");
    let quoted = text.len() >= 2 && text.starts_with('"') && text.ends_with('"');
    let plain =
        !text.is_empty() && !text.contains(|c: char| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
    if quoted || plain {
        write!(w, "{}={text}", field.name())
    } else {
        write!(w, "{}={text:?}", field.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event rendered by the text format's field formatter.
    fn line(event: impl FnOnce()) -> String {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(text_fields())
            .with_ansi(false)
            .without_time()
            .with_writer(move || SinkWriter(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, event);
        let text = String::from_utf8(out.lock().clone()).unwrap();
        text
    }

    struct SinkWriter(Arc<Mutex<Vec<u8>>>);

    impl Write for SinkWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_fields_are_key_value_pairs_a_parser_reads_back() {
        let name = "Go client";
        let line = line(
            || tracing::info!(user = %"", name = %name, cid = 7, quote = %"a\"b", kind = ?"leaf", addr = %"127.0.0.1:4222", "client connected"),
        );
        assert!(line.ends_with(
            "client connected user=\"\" name=\"Go client\" cid=7 quote=\"a\\\"b\" kind=\"leaf\" addr=127.0.0.1:4222\n"
        ), "{line}");
    }

    #[test]
    fn a_full_log_moves_aside_and_only_max_num_files_are_kept() {
        let dir = std::env::temp_dir().join(format!("warden-logrotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("warden.log");
        let log = LogFile::open(&path, Rotation { size_limit: 100, max_num: 3 }).unwrap();
        let writer = Writer(log.clone());
        // 51 bytes a record: the file rotates after every second one.
        for i in 0..21 {
            let mut record = writer.make_writer();
            writeln!(record, "record {i:02} {}", "x".repeat(40)).unwrap();
        }
        let mut rotated = log.rotated().unwrap();
        rotated.sort();
        assert_eq!(rotated.len(), 2, "three files in all, the current one included: {rotated:?}");
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.len() < 100 && current.contains("record 20"), "{current}");
        let newest = std::fs::read_to_string(rotated.last().unwrap()).unwrap();
        assert!(newest.contains("record 18") && newest.contains("record 19"), "{newest}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
