//! The syslog sink (`syslog`, `remote_syslog`, `-s`, `-r`): each log line
//! as the RFC 3164 message Go's `log/syslog` writes for nats-server, so a
//! daemon's filters written for nats-server match warden's lines too.
//!
//! Logging must never hold up the server, and a syslog daemon can be slow,
//! gone, or (over TCP) stop reading. So the event's thread only frames the
//! line and offers it to a bounded queue; one writer thread owns the
//! socket. A line that finds the queue full, or that the daemon cannot
//! take, is dropped and counted, and the writer reports the count (to the
//! daemon and on standard error) once it can, at most once per
//! [`REPORT_EVERY`].
//!
//! Where warden differs from Go's writer: timestamps are UTC (Go uses the
//! process's zone; the two agree under `TZ=UTC`, the usual container
//! setting), and a line's body is cut at [`MAX_BODY`] bytes.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use warden::config::{SyslogTarget, LOCAL_SYSLOG_SOCKET};

/// Lines waiting for the writer. With [`MAX_BODY`] this bounds the queue
/// at 8 MiB; a burst larger than this is what a daemon that keeps up
/// would take in well under a second.
const QUEUE_LINES: usize = 512;

/// A line's body is cut here (a trace line can carry a whole payload); a
/// UDP datagram cannot carry much more than 64 KiB anyway.
pub const MAX_BODY: usize = 16 * 1024;

/// Dropped lines are reported at most this often.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How long a write to a TCP daemon, or a connection to one, may take
/// before the line counts as lost.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Go's `log/syslog` facility for `syslog.New` (nats-server's local log).
const FACILITY_DAEMON: u8 = 3 << 3;

/// Go's `log/syslog` facility for nats-server's `syslog.Dial(..., LOG_DEBUG,
/// ...)`: `LOG_DEBUG` carries facility 0 (`kern`), and so do its remote
/// lines. Kept, because daemon rules written for nats-server select on it.
const FACILITY_REMOTE: u8 = 0;

const SEVERITY_WARNING: u8 = 4;

/// The syslog severity nats-server gives each of its log calls: `Errorf`
/// is `err`, `Warnf` `warning`, `Noticef` and `Tracef` `notice`, `Debugf`
/// `debug`.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => SEVERITY_WARNING,
        Level::DEBUG => 7,
        _ => 5,
    }
}

/// What the writer thread is asked to do.
enum Job {
    /// Send one framed line.
    Line(Vec<u8>),
    /// Say so on the channel once everything queued before is sent.
    Flush(mpsc::Sender<()>),
}

/// The header fields every line carries, fixed at start.
#[derive(Debug, Clone)]
struct Header {
    facility: u8,
    /// The hostname, for the network form; `None` for the local form.
    hostname: Option<String>,
    tag: String,
    pid: u32,
}

/// `at` as Go's `time.RFC3339` writes a UTC time: `2026-12-06T20:59:21Z`.
fn rfc3339(at: OffsetDateTime) -> String {
    let (date, time) = (at.date(), at.time());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        date.year(),
        u8::from(date.month()),
        date.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// `at` as Go's `time.Stamp` writes it: `Jan _2 15:04:05`, the day padded
/// with a space.
fn stamp(at: OffsetDateTime) -> String {
    let month = &at.month().to_string()[..3];
    format!("{month} {:>2} {:02}:{:02}:{:02}", at.day(), at.hour(), at.minute(), at.second())
}

impl Header {
    /// One message as Go's `log/syslog` writes it: `<PRI>TIME HOST
    /// TAG[PID]: BODY` on the network, `<PRI>TIME TAG[PID]: BODY` to the
    /// local daemon, ending in one newline.
    fn frame(&self, severity: u8, at: SystemTime, body: &[u8]) -> Vec<u8> {
        let at = OffsetDateTime::from(at);
        let (time, host) = match &self.hostname {
            Some(host) => (rfc3339(at), Some(host)),
            None => (stamp(at), None),
        };
        let mut body = &body[..body.len().min(MAX_BODY)];
        while let [rest @ .., b'\n'] = body {
            body = rest;
        }
        let mut out = Vec::with_capacity(body.len() + 64);
        let _ = write!(out, "<{}>{time} ", self.facility | severity);
        if let Some(host) = host {
            let _ = write!(out, "{host} ");
        }
        let _ = write!(out, "{}[{}]: ", self.tag, self.pid);
        out.extend_from_slice(body);
        out.push(b'\n');
        out
    }
}

/// A connection to a syslog daemon.
trait Transport: Send {
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
}

impl Transport for UdpSocket {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        UdpSocket::send(self, frame).map(drop)
    }
}

impl Transport for UnixDatagram {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        UnixDatagram::send(self, frame).map(drop)
    }
}

impl Transport for TcpStream {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.write_all(frame)
    }
}

impl Transport for UnixStream {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.write_all(frame)
    }
}

/// Opens a socket to `target` as Go's `log/syslog` does: UDP and TCP by
/// address, a Unix socket as a datagram socket first and a stream second
/// (`/dev/log` is a datagram socket under rsyslog and journald).
fn connect(target: &SyslogTarget) -> io::Result<Box<dyn Transport>> {
    match target {
        SyslogTarget::Udp(addr) => {
            let peer = resolve(addr)?;
            let bind = if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let socket = UdpSocket::bind(bind)?;
            socket.connect(peer)?;
            Ok(Box::new(socket))
        }
        SyslogTarget::Tcp(addr) => {
            let stream = TcpStream::connect_timeout(&resolve(addr)?, IO_TIMEOUT)?;
            stream.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok(Box::new(stream))
        }
        SyslogTarget::Unix(path) => connect_unix(path),
        SyslogTarget::Local => connect_unix(Path::new(LOCAL_SYSLOG_SOCKET)),
    }
}

fn resolve(addr: &str) -> io::Result<std::net::SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr} resolves to no address")))
}

fn connect_unix(path: &Path) -> io::Result<Box<dyn Transport>> {
    let datagram = UnixDatagram::unbound().and_then(|socket| socket.connect(path).map(|()| socket));
    match datagram {
        Ok(socket) => Ok(Box::new(socket)),
        Err(_) => {
            let stream = UnixStream::connect(path)?;
            stream.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok(Box::new(stream))
        }
    }
}

/// The log's way to a syslog daemon: the queue's sending end and the
/// count of lines that found it full.
#[derive(Debug)]
pub struct Syslog {
    header: Header,
    queue: SyncSender<Job>,
    /// Lines dropped at the queue since the writer last reported.
    dropped: Arc<AtomicU64>,
}

impl Syslog {
    /// Connects to `target` (so that an unreachable daemon stops the start,
    /// as nats-server's `log.Fatalf` does) and starts the writer thread.
    /// `tag` is the program's name, as nats-server tags its lines.
    pub fn connect(target: &SyslogTarget, tag: &str) -> io::Result<Arc<Syslog>> {
        let first = connect(target)?;
        let hostname = target.is_remote().then(hostname);
        let facility = if target.is_remote() { FACILITY_REMOTE } else { FACILITY_DAEMON };
        let header = Header { facility, hostname, tag: tag.to_owned(), pid: std::process::id() };
        let target = target.clone();
        Syslog::start(header, first, Box::new(move || connect(&target)), QUEUE_LINES)
    }

    fn start(
        header: Header,
        first: Box<dyn Transport>,
        reconnect: Box<dyn FnMut() -> io::Result<Box<dyn Transport>> + Send>,
        capacity: usize,
    ) -> io::Result<Arc<Syslog>> {
        let (queue, jobs) = mpsc::sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer { header: header.clone(), conn: Some(first), reconnect, dropped: dropped.clone(), lost: 0 };
        std::thread::Builder::new().name("syslog".into()).spawn(move || writer.run(jobs))?;
        Ok(Arc::new(Syslog { header, queue, dropped }))
    }

    /// Frames `body` now (the time is the event's) and offers it to the
    /// queue; never waits.
    fn offer(&self, level: &Level, body: &[u8]) {
        let frame = self.header.frame(severity(level), SystemTime::now(), body);
        if self.queue.try_send(Job::Line(frame)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits up to `timeout` for the lines queued so far to be sent (at
    /// exit, so the last lines reach the daemon).
    pub fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (done, wait) = mpsc::channel();
        let mut job = Job::Flush(done);
        loop {
            match self.queue.try_send(job) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    job = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let _ = wait.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// The writer thread's state.
struct Writer {
    header: Header,
    /// `None` after a failed reconnect: the next line tries again.
    conn: Option<Box<dyn Transport>>,
    reconnect: Box<dyn FnMut() -> io::Result<Box<dyn Transport>> + Send>,
    dropped: Arc<AtomicU64>,
    /// Lines the daemon could not take, since the last report.
    lost: u64,
}

impl Writer {
    fn run(mut self, jobs: Receiver<Job>) {
        // The first drop is reported at once.
        let mut reported = Instant::now().checked_sub(REPORT_EVERY).unwrap_or_else(Instant::now);
        loop {
            match jobs.recv_timeout(REPORT_EVERY) {
                Ok(Job::Line(frame)) => self.send(&frame),
                Ok(Job::Flush(done)) => {
                    let _ = done.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if reported.elapsed() >= REPORT_EVERY && self.report() {
                reported = Instant::now();
            }
        }
    }

    /// Sends one frame; on an error reconnects and tries once more, as
    /// Go's writer does, then counts the line as lost.
    fn send(&mut self, frame: &[u8]) {
        if let Some(conn) = self.conn.as_mut() {
            if conn.send(frame).is_ok() {
                return;
            }
        }
        self.conn = (self.reconnect)().ok();
        match self.conn.as_mut().map(|conn| conn.send(frame)) {
            Some(Ok(())) => {}
            Some(Err(_)) => {
                self.conn = None;
                self.lost += 1;
            }
            None => self.lost += 1,
        }
    }

    /// Reports the lines dropped since the last report, if any; whether
    /// it did.
    fn report(&mut self) -> bool {
        let count = self.dropped.swap(0, Ordering::Relaxed) + std::mem::take(&mut self.lost);
        if count == 0 {
            return false;
        }
        let what = format!("syslog: {count} log lines dropped (the queue was full or the daemon unreachable)");
        eprintln!("warden: {what}");
        let frame = self.header.frame(SEVERITY_WARNING, SystemTime::now(), what.as_bytes());
        self.send(&frame);
        true
    }
}

/// The host's name for the network header, as Go's `os.Hostname`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// One event's line on its way to the queue: `tracing`'s formatter writes
/// into it, and dropping it offers the line.
pub struct Line<'a> {
    sink: &'a Syslog,
    level: Level,
    body: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = MAX_BODY.saturating_sub(self.body.len());
        self.body.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.body.is_empty() {
            self.sink.offer(&self.level, &self.body);
        }
    }
}

/// Hands `tracing` a [`Line`] per event, knowing the event's level.
#[derive(Clone)]
pub struct MakeLine(pub Arc<Syslog>);

impl<'a> MakeWriter<'a> for MakeLine {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line { sink: &self.0, level: Level::INFO, body: Vec::new() }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line { sink: &self.0, level: *meta.level(), body: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(hostname: Option<&str>) -> Header {
        let facility = if hostname.is_some() { FACILITY_REMOTE } else { FACILITY_DAEMON };
        Header { facility, hostname: hostname.map(str::to_owned), tag: "nats-server".into(), pid: 25326 }
    }

    #[test]
    fn frames_are_what_gos_log_syslog_writes_for_nats_server() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_590_761); // 2026-12-06T20:59:21Z
                                                                              // Captured from nats-server 2.15.1 with `remote_syslog: "udp://..."`.
        assert_eq!(
            header(Some("vm")).frame(5, at, b"Starting nats-server\n"),
            b"<5>2026-12-06T20:59:21Z vm nats-server[25326]: Starting nats-server\n"
        );
        assert_eq!(
            header(Some("vm")).frame(7, at, b"debug"),
            b"<7>2026-12-06T20:59:21Z vm nats-server[25326]: debug\n"
        );
        // The local form (`syslog: true`): facility daemon, `time.Stamp`, no host.
        let jan = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_236_400); // 2026-01-01T03:00:00Z
        assert_eq!(header(None).frame(4, jan, b"w"), b"<28>Jan  1 03:00:00 nats-server[25326]: w\n");
        let long = vec![b'x'; MAX_BODY + 10];
        assert_eq!(
            header(None).frame(5, jan, &long).len(),
            "<29>Jan  1 03:00:00 nats-server[25326]: \n".len() + MAX_BODY
        );
    }

    /// A daemon that takes nothing until the test lets it.
    struct Stuck(Arc<parking_lot::Mutex<Vec<Vec<u8>>>>, Receiver<()>);

    impl Transport for Stuck {
        fn send(&mut self, frame: &[u8]) -> io::Result<()> {
            self.1.recv().map_err(|_| io::ErrorKind::BrokenPipe)?;
            self.0.lock().push(frame.to_vec());
            Ok(())
        }
    }

    #[test]
    fn a_stuck_daemon_never_blocks_the_logger_and_drops_are_counted_and_reported() {
        let sent = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (release, gate) = mpsc::channel();
        let stuck = Box::new(Stuck(sent.clone(), gate));
        let no_reconnect = Box::new(|| Err(io::Error::from(io::ErrorKind::ConnectionRefused)));
        let sink = Syslog::start(header(Some("h")), stuck, no_reconnect, 4).unwrap();
        let started = Instant::now();
        for i in 0..100 {
            sink.offer(&Level::INFO, format!("line {i}").as_bytes());
        }
        assert!(started.elapsed() < Duration::from_secs(1), "offering must not wait on the daemon");
        // Four wait in the queue and the writer may hold one more: the
        // rest were dropped.
        let dropped = sink.dropped.load(Ordering::Relaxed) as usize;
        assert!((95..=96).contains(&dropped), "{dropped}");
        for _ in 0..7 {
            release.send(()).unwrap();
        }
        let (done, wait) = mpsc::channel();
        sink.queue.send(Job::Flush(done)).unwrap();
        wait.recv_timeout(Duration::from_secs(10)).unwrap();
        let sent = sent.lock().clone();
        let text: Vec<String> = sent.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        assert_eq!(text.len(), 100 - dropped + 1, "every line kept, and one report: {text:?}");
        assert!(text[0].ends_with("h nats-server[25326]: line 0\n"), "{text:?}");
        let report = format!("syslog: {dropped} log lines dropped");
        assert!(text[1].starts_with("<4>") && text[1].contains(&report), "reported once the daemon moved: {text:?}");
        let kept: Vec<usize> = text
            .iter()
            .filter_map(|line| line.rsplit_once(": line ").and_then(|(_, n)| n.trim_end().parse().ok()))
            .collect();
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "in the order logged: {kept:?}");
    }
}
