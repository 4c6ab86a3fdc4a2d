//! The bounded set of monitoring connections, and who gives way when it is
//! full.
//!
//! Idle keep-alive connections and slowloris ones (a request head that
//! never ends) used to hold every slot until their timeouts, so 64 of them
//! made `/healthz` unanswerable and a load balancer would pull a healthy
//! node. Now a new connection takes the slot of the connection that has
//! been waiting longest for a request head; only connections in the middle
//! of answering a request keep theirs.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// One connection's entry.
#[derive(Debug)]
struct Entry {
    /// Since when it has waited for a request head (accept, or its last answer).
    idle_since: Instant,
    /// A request is being answered.
    busy: bool,
    /// Tells its task to close it.
    evict: Arc<Notify>,
}

/// The live monitoring connections.
#[derive(Debug)]
pub(super) struct Slots {
    max: usize,
    entries: Mutex<(u64, HashMap<u64, Entry>)>,
}

/// A connection's hold on a slot; released on drop.
#[derive(Debug)]
pub(super) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// Notified when the connection must close to make room.
    pub(super) evicted: Arc<Notify>,
}

impl Slots {
    /// At most `max` connections.
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Slots { max: max.max(1), entries: Mutex::new((0, HashMap::new())) })
    }

    /// A slot for a new connection at `now`, evicting the longest-idle
    /// connection if all are taken; `None` when every one is busy.
    pub(super) fn take(self: &Arc<Self>, now: Instant) -> Option<Slot> {
        let mut guard = self.entries.lock();
        let (next, entries) = &mut *guard;
        if entries.len() >= self.max {
            let oldest = entries.iter().filter(|(_, e)| !e.busy).min_by_key(|(_, e)| e.idle_since).map(|(id, _)| *id);
            let entry = entries.remove(&oldest?)?;
            entry.evict.notify_one();
        }
        *next += 1;
        let id = *next;
        let evicted = Arc::new(Notify::new());
        entries.insert(id, Entry { idle_since: now, busy: false, evict: evicted.clone() });
        Some(Slot { slots: self.clone(), id, evicted })
    }

    /// Connections held now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.lock().1.len()
    }
}

impl Slot {
    /// A request head arrived: the connection is busy until `idle`.
    pub(super) fn busy(&self) {
        if let Some(entry) = self.slots.entries.lock().1.get_mut(&self.id) {
            entry.busy = true;
        }
    }

    /// The answer went out at `now`: the connection waits for a head again.
    pub(super) fn idle(&self, now: Instant) {
        if let Some(entry) = self.slots.entries.lock().1.get_mut(&self.id) {
            entry.busy = false;
            entry.idle_since = now;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.entries.lock().1.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_set_evicts_the_longest_idle_and_keeps_busy_ones() {
        let slots = Slots::new(3);
        let t = Instant::now();
        let busy = slots.take(t).unwrap();
        busy.busy();
        let old = slots.take(t + Duration::from_secs(1)).unwrap();
        let young = slots.take(t + Duration::from_secs(2)).unwrap();
        let fresh = slots.take(t + Duration::from_secs(3)).unwrap();
        assert_eq!(slots.len(), 3);
        // `old` was told to go; the busy one (idle since earliest) stays.
        let evicted = old.evicted.clone();
        let notified = evicted.notified();
        tokio::pin!(notified);
        assert!(futures_ready(notified.as_mut()), "the longest-idle connection is evicted");
        drop(old);
        assert_eq!(slots.len(), 3, "its slot already went to the newcomer");
        young.busy();
        fresh.busy();
        assert!(slots.take(t + Duration::from_secs(4)).is_none(), "all busy: the newcomer is refused");
        drop((busy, young, fresh));
        assert_eq!(slots.len(), 0);
    }

    /// Whether a future is ready on its first poll.
    fn futures_ready<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        f.poll(&mut cx).is_ready()
    }
}
