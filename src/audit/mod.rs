//! The audit trail: who connected, who was refused, who was denied what,
//! and who changed what (reloads with their diff, KICK, certificate
//! rotations, rate-limit holds, lame duck, shutdown), as JSON lines in a
//! file of its own, separate from the log, and optionally published on
//! `$SYS.AUDIT.<server id>.<TYPE>` in the system account.
//!
//! Recording never blocks whoever records: records go through a bounded
//! queue ([`QUEUE`] records) to one writer thread. A record that finds the
//! queue full is counted, and the writer writes a `records_dropped` record
//! with the count as soon as it gets to it, so a loss is never silent.
//! The counts are in `/varz` (`warden.audit`) and `/metrics`.
//!
//! Floods are bounded where they are recorded: permission denials by a
//! budget per source address (the broker's), logins by the cost of a
//! login (the failure throttle and the accept rate).

pub mod record;

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::logfile::LogFile;
pub use record::{Conn, Event, Line, Method, ReloadCause};

/// Records waiting for the writer before new ones are dropped (and counted).
pub const QUEUE: usize = 8192;

/// How long [`AuditTrail::close`] waits for the writer to finish.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the writer is sent.
enum Msg {
    /// Boxed: an event is a few hundred bytes, and the queue holds many.
    Record(SystemTime, Box<Event>),
    /// Write what is queued, then say so and stop.
    Close(mpsc::Sender<()>),
}

/// Publishes a record's JSON on a subject (in the system account).
pub type Publish = Box<dyn FnMut(&str, &[u8]) + Send>;

/// Where records go: a file, a publisher, or both.
pub struct Sink {
    /// The audit file.
    pub file: Option<Arc<LogFile>>,
    /// The `$SYS.AUDIT` publisher.
    pub publish: Option<Publish>,
}

/// Counters of the trail, for monitoring.
#[derive(Debug, Default)]
pub struct AuditCounts {
    /// Records written (to the file, or published when there is no file).
    pub written: AtomicU64,
    /// Records lost because the queue was full.
    pub dropped: AtomicU64,
    /// Records the file could not take (disk full, ...).
    pub write_errors: AtomicU64,
}

/// The trail's handle, shared by everything that records. Off until
/// [`AuditTrail::start`]; recording to a trail that is off costs one load.
#[derive(Debug, Default)]
pub struct AuditTrail {
    tx: OnceLock<SyncSender<Msg>>,
    /// Records lost since the writer last wrote a `records_dropped`.
    lost: Arc<AtomicU64>,
    counts: Arc<AuditCounts>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Record(_, event) => f.debug_tuple("Record").field(&event.subject_token()).finish(),
            Msg::Close(_) => f.write_str("Close"),
        }
    }
}

impl AuditTrail {
    /// Whether records are kept (callers skip building them otherwise).
    pub fn is_on(&self) -> bool {
        self.tx.get().is_some()
    }

    /// Records `event` now, unless the trail is off. Never blocks: when
    /// the queue is full the record is counted as lost.
    pub fn record(&self, event: Event) {
        let Some(tx) = self.tx.get() else { return };
        #[allow(clippy::disallowed_methods)] // a record carries wall-clock time
        let now = SystemTime::now();
        // Full, or closed by shutdown: lost, and counted.
        if tx.try_send(Msg::Record(now, Box::new(event))).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters.
    pub fn counts(&self) -> &AuditCounts {
        &self.counts
    }

    /// Starts the writer thread for this server (`name`, `id`); records
    /// from now on go to `sink`. A second start is refused.
    pub fn start(&self, name: &str, id: &str, sink: Sink) -> io::Result<()> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        if self.tx.set(tx).is_err() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "the audit trail is already running"));
        }
        let writer = Writer {
            server: name.to_owned(),
            server_id: id.to_owned(),
            sink,
            lost: self.lost.clone(),
            counts: self.counts.clone(),
            line: Vec::with_capacity(1024),
        };
        std::thread::Builder::new().name("warden-audit".into()).spawn(move || writer.run(rx))?;
        self.record(Event::Started { version: crate::proto::WARDEN_VERSION });
        Ok(())
    }

    /// Writes what is queued and stops the writer, waiting at most a few
    /// seconds (shutdown). Records after it are counted as lost.
    pub fn close(&self) {
        let Some(tx) = self.tx.get() else { return };
        let (done, finished) = mpsc::channel();
        if tx.send(Msg::Close(done)).is_ok() {
            let _ = finished.recv_timeout(CLOSE_WAIT);
        }
    }
}

/// The writer thread's state.
struct Writer {
    server: String,
    server_id: String,
    sink: Sink,
    lost: Arc<AtomicU64>,
    counts: Arc<AuditCounts>,
    /// Reused for every line.
    line: Vec<u8>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(Msg::Record(time, event)) => {
                    self.report_lost();
                    self.write(time, &event);
                }
                Ok(Msg::Close(done)) => {
                    while let Ok(Msg::Record(time, event)) = rx.try_recv() {
                        self.write(time, &event);
                    }
                    self.report_lost();
                    let _ = done.send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => self.report_lost(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Writes a `records_dropped` record if records were lost since the last.
    fn report_lost(&mut self) {
        let count = self.lost.swap(0, Ordering::Relaxed);
        if count > 0 {
            #[allow(clippy::disallowed_methods)] // a record carries wall-clock time
            let now = SystemTime::now();
            self.write(now, &Event::RecordsDropped { count });
        }
    }

    fn write(&mut self, time: SystemTime, event: &Event) {
        let time = OffsetDateTime::from(time).format(&Rfc3339).unwrap_or_default();
        let line = Line { time, server: &self.server, server_id: &self.server_id, event };
        self.line.clear();
        if serde_json::to_writer(&mut self.line, &line).is_err() {
            self.counts.write_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(publish) = &mut self.sink.publish {
            let subject = format!("$SYS.AUDIT.{}.{}", self.server_id, event.subject_token());
            publish(&subject, &self.line);
        }
        self.line.push(b'\n');
        let written = match &self.sink.file {
            Some(file) => {
                let mut guard = file.lock();
                guard.write_all(&self.line).is_ok()
            }
            None => true,
        };
        if written {
            self.counts.written.fetch_add(1, Ordering::Relaxed);
        } else {
            if self.counts.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::error!(path = ?self.sink.file.as_ref().map(|f| f.path().to_owned()), "cannot write the audit file; records are being lost (counted in /varz warden.audit.write_errors)");
            }
        }
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("file", &self.file).field("publish", &self.publish.is_some()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str) -> (std::path::PathBuf, Arc<LogFile>) {
        let dir = std::env::temp_dir().join(format!("warden-audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.log");
        let file = LogFile::open(&path, crate::logfile::Rotation::default()).unwrap();
        (path, file)
    }

    fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn records_are_json_lines_in_order_and_published_too() {
        let (path, file) = temp_file("order");
        let published = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = published.clone();
        let publish: Publish = Box::new(move |subject, body| seen.lock().push((subject.to_owned(), body.to_vec())));
        let trail = AuditTrail::default();
        assert!(!trail.is_on());
        trail.record(Event::Shutdown);
        trail.start("s1", "NID", Sink { file: Some(file), publish: Some(publish) }).unwrap();
        let conn = Conn {
            cid: 7,
            kind: "client",
            addr: "10.0.0.1:5000".into(),
            user: Some("alice".into()),
            ..Conn::default()
        };
        trail.record(Event::Login { conn, method: Method::Password });
        trail.record(Event::Shutdown);
        trail.close();
        let lines = lines(&path);
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["started", "login", "shutdown"], "nothing recorded before the start");
        assert_eq!(lines[1]["conn"]["user"], "alice");
        assert_eq!(lines[1]["method"], "password");
        assert_eq!(lines[1]["server"], "s1");
        assert_eq!(lines[1]["server_id"], "NID");
        assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
        let published = published.lock();
        assert_eq!(published[1].0, "$SYS.AUDIT.NID.LOGIN");
        assert_eq!(trail.counts().written.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_full_queue_loses_records_but_says_how_many() {
        let (path, file) = temp_file("lost");
        let trail = AuditTrail::default();
        // The writer cannot take records while the publisher holds it up.
        let (release, gate) = mpsc::channel::<()>();
        let gate = parking_lot::Mutex::new(Some(gate));
        let publish: Publish = Box::new(move |_, _| {
            if let Some(gate) = gate.lock().take() {
                let _ = gate.recv_timeout(Duration::from_secs(10));
            }
        });
        trail.start("s1", "NID", Sink { file: Some(file), publish: Some(publish) }).unwrap();
        for _ in 0..(QUEUE + 500) {
            trail.record(Event::Shutdown);
        }
        let dropped = trail.counts().dropped.load(Ordering::Relaxed);
        assert!(dropped >= 500, "{dropped}");
        release.send(()).unwrap();
        trail.close();
        let lines = lines(&path);
        let reported: u64 =
            lines.iter().filter(|l| l["type"] == "records_dropped").map(|l| l["count"].as_u64().unwrap()).sum();
        assert_eq!(reported, dropped, "every lost record is reported");
        let kept = lines.iter().filter(|l| l["type"] == "shutdown").count() as u64;
        assert_eq!(kept + dropped, QUEUE as u64 + 500);
    }
}
