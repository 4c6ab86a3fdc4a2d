//! Certificates that rotate without a restart (cert-manager, SPIFFE and
//! Vault issue short-lived ones). Every TLS listener registers the files its
//! TLS is made from (certificate, key, CA, the `certs` of SNI) and how to
//! reload it; a task looks at the files every `tls_watch_interval` and, once
//! a changed set has stayed the same for one more look (so a file being
//! written in place is not read half-way), reloads that listener. A rename
//! into place and a Kubernetes secret's symlink flip both show, since the
//! look follows symlinks to the file's identity, size and time.
//!
//! A reload that fails (a file that does not parse, a key that does not
//! match its certificate, a certificate already expired) keeps the TLS in
//! force: the listener never goes without TLS. It is logged as an error and
//! counted, and not retried until the files change again. Connections
//! already open keep the session they have.
//!
//! The task also warns, at start and then daily, about every certificate a
//! listener presents that expires within `tls_expiry_warning`.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tracing::{error, info, warn};

use super::CertInfo;

/// Reloads one listener's TLS from its files and puts it in force; what it
/// presents now, or why it could not.
pub type Reload = Arc<dyn Fn() -> Result<Vec<CertInfo>, String> + Send + Sync>;

/// What a file looked like: which file (device and inode, so a symlink
/// flip or a rename shows), its size and when it was last written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamps(files: &[PathBuf]) -> Vec<Option<Stamp>> {
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some(Stamp { dev: m.dev(), ino: m.ino(), len: m.len(), modified: m.modified().ok() })
        })
        .collect()
}

/// One watched listener.
struct Entry {
    listener: &'static str,
    files: Vec<PathBuf>,
    /// The files as they were when the TLS in force was loaded from them
    /// (or failed to load: not retried until they change again).
    loaded: Vec<Option<Stamp>>,
    /// As they were at the last look.
    seen: Vec<Option<Stamp>>,
    reload: Reload,
    certificates: Vec<CertInfo>,
}

/// What one look did to a listener's certificates, for an [`Observer`].
#[derive(Debug, Clone, Copy)]
pub enum Rotated<'a> {
    /// The changed files are in force: these are the new certificates.
    Replaced(&'a [CertInfo]),
    /// The changed files could not be used, for this reason; the old
    /// certificates stay in force.
    Failed(&'a str),
}

/// Told of every rotation and failed rotation, by listener (the audit trail).
pub type Observer = Box<dyn Fn(&'static str, Rotated<'_>) + Send + Sync>;

/// The watched listeners of one server. See the module doc.
#[derive(Default)]
pub struct Rotation {
    entries: Mutex<Vec<Entry>>,
    rotated: AtomicU64,
    failures: AtomicU64,
    observer: std::sync::OnceLock<Observer>,
}

impl std::fmt::Debug for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotation").field("listeners", &self.entries.lock().len()).finish_non_exhaustive()
    }
}

impl Rotation {
    /// Watches `files` of `listener`, which presents `certificates` now and
    /// reloads with `reload`; replaces what was watched for it (a config
    /// reload that names other files).
    pub fn watch(&self, listener: &'static str, files: Vec<PathBuf>, certificates: Vec<CertInfo>, reload: Reload) {
        let now = stamps(&files);
        let entry = Entry { listener, files, loaded: now.clone(), seen: now, reload, certificates };
        let mut entries = self.entries.lock();
        entries.retain(|e| e.listener != listener);
        entries.push(entry);
    }

    /// Sets the one observer of rotations (later calls are ignored).
    pub fn observe(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }

    /// Stops watching `listener` (its TLS was turned off by a reload).
    pub fn forget(&self, listener: &'static str) {
        self.entries.lock().retain(|e| e.listener != listener);
    }

    /// Every listener's certificates, for `/varz` and `/metrics`.
    pub fn certificates(&self) -> Vec<(&'static str, CertInfo)> {
        let entries = self.entries.lock();
        entries.iter().flat_map(|e| e.certificates.iter().map(|c| (e.listener, c.clone()))).collect()
    }

    /// Rotations done so far.
    pub fn rotated(&self) -> u64 {
        self.rotated.load(Ordering::Relaxed)
    }

    /// Changed files that could not be loaded, so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// One look at every watched listener's files: reloads those whose
    /// files changed and then held still since the last look. Blocking
    /// (reads files): call it off the async reactor.
    pub fn look(&self) {
        let due: Vec<(&'static str, Reload, Vec<Option<Stamp>>)> = {
            let mut entries = self.entries.lock();
            entries
                .iter_mut()
                .filter_map(|e| {
                    let now = stamps(&e.files);
                    let stable = now == e.seen;
                    e.seen = now.clone();
                    (now != e.loaded && stable).then(|| (e.listener, e.reload.clone(), now))
                })
                .collect()
        };
        for (listener, reload, now) in due {
            // Outside the lock: the reload reads and checks the files.
            let result = reload();
            let mut entries = self.entries.lock();
            let Some(entry) = entries.iter_mut().find(|e| e.listener == listener) else { continue };
            entry.loaded = now;
            match result {
                Ok(certificates) => {
                    self.rotated.fetch_add(1, Ordering::Relaxed);
                    for c in &certificates {
                        info!(
                            listener,
                            subject = %c.subject,
                            serial = %c.serial,
                            expires = c.not_after,
                            "TLS certificate rotated"
                        );
                    }
                    if let Some(observer) = self.observer.get() {
                        observer(listener, Rotated::Replaced(&certificates));
                    }
                    entry.certificates = certificates;
                }
                Err(why) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    error!(listener, error = %why, "TLS files changed but cannot be used; keeping the current certificate");
                    if let Some(observer) = self.observer.get() {
                        observer(listener, Rotated::Failed(&why));
                    }
                }
            }
        }
    }

    /// Warns about every certificate that expires within `window` of `now`.
    pub fn warn_expiring(&self, now: SystemTime, window: Duration) {
        for (listener, c) in self.certificates() {
            if let Some(warning) = c.expiry_warning(now, window) {
                warn!(listener, "{warning}");
            }
        }
    }

    /// Looks every `interval` (never when zero) and warns about expiring
    /// certificates at once and then daily, until `stop` is told (or
    /// dropped).
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        window: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let watching = !interval.is_zero();
        let mut tick = tokio::time::interval(if watching { interval } else { DAY });
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut daily = tokio::time::interval(DAY);
        loop {
            tokio::select! {
                _ = tick.tick(), if watching => {
                    let this = self.clone();
                    let _ = tokio::task::spawn_blocking(move || this.look()).await;
                }
                _ = daily.tick() => {
                    self.warn_expiring(SystemTime::now(), window);
                }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(serial: &str) -> CertInfo {
        CertInfo { subject: "CN=test".into(), serial: serial.into(), not_after: 2_000_000_000 }
    }

    /// A listener whose reload reads `serial` from a file, or fails on
    /// "bad", counting its calls.
    fn watched(dir: &std::path::Path) -> (Rotation, Arc<AtomicU64>, PathBuf) {
        let file = dir.join("cert.pem");
        std::fs::write(&file, "1").unwrap();
        let calls = Arc::new(AtomicU64::new(0));
        let (path, count) = (file.clone(), calls.clone());
        let reload: Reload = Arc::new(move || {
            count.fetch_add(1, Ordering::Relaxed);
            match std::fs::read_to_string(&path).unwrap().as_str() {
                "bad" => Err("does not parse".into()),
                serial => Ok(vec![info(serial)]),
            }
        });
        let rotation = Rotation::default();
        rotation.watch("client", vec![file.clone()], vec![info("1")], reload);
        (rotation, calls, file)
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("warden-rotation-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_changed_file_is_reloaded_once_it_held_still_for_one_look() {
        let dir = temp("still");
        let (rotation, calls, file) = watched(&dir);
        rotation.look();
        assert_eq!(calls.load(Ordering::Relaxed), 0, "nothing changed");
        // Renamed into place, as cert-manager and `mv` do.
        std::fs::write(dir.join("new.pem"), "22").unwrap();
        std::fs::rename(dir.join("new.pem"), &file).unwrap();
        rotation.look();
        assert_eq!(calls.load(Ordering::Relaxed), 0, "first seen changed: wait one look");
        rotation.look();
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(rotation.certificates(), vec![("client", info("22"))]);
        assert_eq!(rotation.rotated(), 1);
        rotation.look();
        assert_eq!(calls.load(Ordering::Relaxed), 1, "loaded files are not loaded again");
    }

    #[test]
    fn files_that_cannot_be_used_keep_the_current_certificate_until_they_change_again() {
        let dir = temp("bad");
        let (rotation, calls, file) = watched(&dir);
        std::fs::write(dir.join("new.pem"), "bad").unwrap();
        std::fs::rename(dir.join("new.pem"), &file).unwrap();
        rotation.look();
        rotation.look();
        assert_eq!((calls.load(Ordering::Relaxed), rotation.failures()), (1, 1));
        assert_eq!(rotation.certificates(), vec![("client", info("1"))], "the old certificate stays");
        rotation.look();
        assert_eq!(calls.load(Ordering::Relaxed), 1, "not retried until the files change");
        std::fs::write(dir.join("new.pem"), "3").unwrap();
        std::fs::rename(dir.join("new.pem"), &file).unwrap();
        rotation.look();
        rotation.look();
        assert_eq!(rotation.certificates(), vec![("client", info("3"))]);
    }

    #[test]
    fn a_symlink_flip_is_a_change() {
        let dir = temp("symlink");
        std::fs::create_dir_all(dir.join("v1")).unwrap();
        std::fs::create_dir_all(dir.join("v2")).unwrap();
        std::fs::write(dir.join("v1/cert.pem"), "1").unwrap();
        std::fs::write(dir.join("v2/cert.pem"), "2").unwrap();
        std::os::unix::fs::symlink("v1", dir.join("data")).unwrap();
        let file = dir.join("data/cert.pem");
        let calls = Arc::new(AtomicU64::new(0));
        let count = calls.clone();
        let reload: Reload = Arc::new(move || {
            count.fetch_add(1, Ordering::Relaxed);
            Ok(vec![info("2")])
        });
        let rotation = Rotation::default();
        rotation.watch("websocket", vec![file], vec![info("1")], reload);
        // A Kubernetes secret update: a new `..data` link renamed over the old.
        std::os::unix::fs::symlink("v2", dir.join("data.new")).unwrap();
        std::fs::rename(dir.join("data.new"), dir.join("data")).unwrap();
        rotation.look();
        rotation.look();
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn expiry_warnings_fall_within_the_window() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let soon = CertInfo { subject: "CN=a".into(), serial: "01".into(), not_after: 1_000_000 + 5 * 86400 };
        assert!(soon.expiry_warning(now, Duration::from_secs(30 * 86400)).unwrap().contains("expires in 5 days"));
        assert!(soon.expiry_warning(now, Duration::from_secs(86400)).is_none());
    }
}
