//! A log file that rotates itself past a size limit, keeping a number of
//! files, and that can be reopened under the same path (for an outside
//! rotator). The server log (`log_file`) and the audit trail (`audit {
//! file }`) both write one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

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
    /// Files are created readable by the owner only (mode 0600): the
    /// audit trail names users and addresses.
    pub private: bool,
}

/// The open file and how much has been written to it.
#[derive(Debug)]
struct Current {
    file: File,
    size: u64,
}

fn open_append(path: &Path, private: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    options.open(path)
}

impl LogFile {
    /// Opens (or creates) `path` for appending, rotating by `rotation`.
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<Arc<LogFile>> {
        let file = open_append(path, rotation.private)?;
        let size = file.metadata().map_or(0, |m| m.len());
        Ok(Arc::new(LogFile { path: path.to_owned(), rotation, file: Mutex::new(Current { file, size }) }))
    }

    /// Opens the path again (after a log rotator moved the old file away).
    pub fn reopen(&self) -> io::Result<()> {
        let file = open_append(&self.path, self.rotation.private)?;
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
        *current = Current { file: open_append(&self.path, self.rotation.private)?, size: 0 };
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

    /// Holds the file for one record, which may take several writes; the
    /// file rotates when the guard is dropped, after the record.
    pub fn lock(&self) -> LogGuard<'_> {
        LogGuard(self, self.file.lock())
    }

    /// The path it writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One log record's hold on the file; the file rotates after the record
/// that takes it past the size limit.
pub struct LogGuard<'a>(&'a LogFile, MutexGuard<'a, Current>);

impl std::fmt::Debug for LogGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard").field("path", &self.0.path).finish_non_exhaustive()
    }
}

impl Write for LogGuard<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.1.file.write(buf)?;
        self.1.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.1.file.flush()
    }
}

impl Drop for LogGuard<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_moves_aside_and_only_max_num_files_are_kept() {
        let dir = std::env::temp_dir().join(format!("warden-logrotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("warden.log");
        let log = LogFile::open(&path, Rotation { size_limit: 100, max_num: 3, private: false }).unwrap();
        // 51 bytes a record: the file rotates after every second one.
        for i in 0..21 {
            let mut record = log.lock();
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
