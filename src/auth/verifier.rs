//! The bounded pool every expensive credential check runs on: client
//! logins, route logins and monitoring logins alike.
//!
//! A fixed set of threads made at start, not tokio's blocking pool: a
//! blocking-pool thread is made per waiting job (up to 512), and each that
//! ran an argon2 check kept the ~19 MiB it allocated in its own malloc
//! arena. 200 wrong argon2id logins left RSS at ~310 MiB that way (16 arenas
//! of 19 MiB); with a fixed pool only its few threads ever touch that
//! memory. At most one job per thread is queued (the semaphore), so a login
//! flood waits in the async world, cheaply, instead of in threads.

use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of verification threads.
#[derive(Debug)]
pub struct Verifier {
    /// One permit per thread: a job is handed over only with a permit, so
    /// the queue never holds more jobs than there are threads.
    slots: Arc<Semaphore>,
    jobs: Mutex<mpsc::SyncSender<Job>>,
    threads: usize,
}

/// Credential checks run at once: half the cores, at least one, so the
/// other half keeps routing messages during a login flood.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl Verifier {
    /// A pool of `threads` threads (at least one). The threads end when the
    /// pool is dropped.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("warden-verify-{i}")).spawn(move || loop {
                let job = rx.lock().recv();
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
            if spawned.is_err() {
                // Fewer threads than asked: the jobs still run on the others;
                // with none, `run` answers `None` (every check fails closed).
                tracing::warn!("cannot start a credential verification thread");
            }
        }
        Verifier { slots: Arc::new(Semaphore::new(threads)), jobs: Mutex::new(tx), threads }
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job` on a pool thread once one is free. `None` if the pool
    /// cannot run it (callers treat that as a failed check). Dropping the
    /// future before the job started means it never runs; once started it
    /// runs to the end, so whatever it records (the failure throttle) is
    /// recorded even if the connection went away meanwhile.
    pub async fn run<R, F>(&self, job: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let permit = self.slots.clone().acquire_owned().await.ok()?;
        let (done, result) = oneshot::channel();
        let boxed: Job = Box::new(move || {
            let _permit = permit;
            let _ = done.send(job());
        });
        self.jobs.lock().send(boxed).ok()?;
        result.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_its_threads_at_most_threads_at_once() {
        let pool = Arc::new(Verifier::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut waits = Vec::new();
        for i in 0..8u32 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            waits.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    let name = std::thread::current().name().unwrap_or_default().to_string();
                    (i, name)
                })
                .await
            }));
        }
        for (i, wait) in waits.into_iter().enumerate() {
            let (n, thread) = wait.await.unwrap().unwrap();
            assert_eq!(n as usize, i);
            assert!(thread.starts_with("warden-verify-"), "{thread}");
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
    }
}
