//! Logging as nats-server does it: to standard error, or with `-l` /
//! `log_file` to a file that SIGUSR1 reopens (for an outside log rotator)
//! or that rotates itself past `logfile_size_limit`, keeping
//! `logfile_max_num` files, or to a syslog daemon (`syslog`,
//! `remote_syslog`: see [`super::syslog`]); colour codes only on a
//! terminal; timestamps unless `logtime: false` / `-T=false`.

use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer as FieldWriter};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::EnvFilter;

use super::syslog::{MakeLine, Syslog};
use warden::logfile::LogGuard;
pub use warden::logfile::{LogFile, Rotation};

/// Hands tracing the current log file.
#[derive(Clone)]
struct Writer(Arc<LogFile>);

impl<'a> MakeWriter<'a> for Writer {
    type Writer = LogGuard<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        self.0.lock()
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

/// The level the filter was last set to (by [`init`] or [`set_level`]).
static LEVEL: Mutex<String> = Mutex::new(String::new());

/// Sets the log level of the running server (`debug`/`trace` changed by a
/// reload, as nats-server applies them) and returns the one it replaces.
/// Does nothing when `RUST_LOG` set the filter, which then stays in charge.
pub fn set_level(level: &str) -> Result<String, String> {
    let mut current = LEVEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(Some(set)) = SET_FILTER.get() {
        set(level_filter(level))?;
    }
    Ok(std::mem::replace(&mut current, level.to_owned()))
}

/// Sets up logging at `level` (`RUST_LOG` overrides it), to `sink`, as
/// text lines or (`json`) one JSON object a line.
pub fn init(level: &str, logtime: bool, json: bool, sink: Sink) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let reloadable = from_env.is_none();
    *LEVEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = level.to_owned();
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
    use std::io::Write;

    use parking_lot::Mutex;

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
}
