//! Connections accepted and not yet through their handshake or login, in
//! all and per peer address: what one address may make a listener hold
//! before it proves anything (the route listener, the WebSocket listener).
//!
//! A listener may also let the longest-waiting connection give way when all
//! slots are taken ([`Pending::admit_evicting`]), as the monitoring port
//! does: otherwise silent sockets from a few addresses hold every slot
//! until their handshake timeout and nobody else gets in, while a client
//! that completes its handshake promptly is never the longest-waiting one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Client, CloseReason};

/// The pending connections of one listener.
#[derive(Debug)]
pub struct Pending {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    by_ip: HashMap<IpAddr, usize>,
}

/// One pending connection.
#[derive(Debug)]
struct Entry {
    ip: IpAddr,
    since: Instant,
    /// Tells a task that waits on [`PendingSlot::evicted`] to go.
    evicted: Arc<Notify>,
    /// The connection, once it is on the connection driver
    /// ([`PendingSlot::bind`]): closed when the slot is taken away, so an
    /// evicted handshake ends then, not at its authentication timeout.
    client: Option<Weak<Client>>,
}

impl State {
    /// Tells the longest-waiting connection (from `ip`, if given) to go and
    /// frees its slot; ties (one clock tick) go to the earlier slot.
    /// Returns its bound connection, if any, for the caller to close once
    /// the lock is released.
    fn evict_oldest(&mut self, ip: Option<IpAddr>) -> Option<Option<Arc<Client>>> {
        let oldest = self
            .entries
            .iter()
            .filter(|(_, entry)| ip.is_none_or(|ip| entry.ip == ip))
            .min_by_key(|(id, entry)| (entry.since, **id))
            .map(|(id, _)| *id)?;
        let entry = self.release(oldest)?;
        entry.evicted.notify_one();
        Some(entry.client.and_then(|client| client.upgrade()))
    }

    fn release(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if let Some(n) = self.by_ip.get_mut(&entry.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_ip.remove(&entry.ip);
            }
        }
        Some(entry)
    }
}

/// A pending connection's place in [`Pending`]; given back on drop.
#[derive(Debug)]
pub struct PendingSlot {
    pending: Arc<Pending>,
    id: u64,
    evicted: Arc<Notify>,
}

impl PendingSlot {
    /// Completes when the slot was taken away to make room for a newer
    /// connection ([`Pending::admit_evicting`]): close the connection.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// `work` (a handshake before the connection is on the driver), unless
    /// the slot is taken away first: then `None`, and the work is dropped.
    pub async fn unless_evicted<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            done = work => Some(done),
            () = self.evicted() => None,
        }
    }

    /// Hands the slot's connection over for closing when the slot is taken
    /// away (see [`Entry::client`]); one whose slot is gone already is
    /// closed now.
    pub fn bind(&self, client: &Arc<Client>) {
        let bound = match self.pending.state.lock().entries.get_mut(&self.id) {
            Some(entry) => {
                entry.client = Some(Arc::downgrade(client));
                true
            }
            None => false,
        };
        if !bound {
            close_evicted(client);
        }
    }
}

/// Closes a connection whose pending slot was taken away: to the peer it is
/// a handshake that took too long.
fn close_evicted(client: &Client) {
    client.outbound.close(CloseReason::AuthenticationTimeout);
}

impl Pending {
    /// At most `max_total` at once, `max_per_ip` of them from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Pending {
        Pending { max_total, max_per_ip, state: Mutex::new(State::default()) }
    }

    /// A slot for a connection from `ip`, unless a bound is reached.
    /// `per_ip`: whether the per-address bound applies (not to a trusted
    /// proxy, which speaks for many clients).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, per_ip: bool) -> Option<PendingSlot> {
        self.take(ip, per_ip, false)
    }

    /// Like [`Pending::admit`], but when every slot is taken the connection
    /// that has waited longest gives way (its [`PendingSlot::evicted`]
    /// completes); when the address's own slots are taken, its own
    /// longest-waiting one does, so a flood of idle handshakes from behind
    /// a NAT cannot lock out the good client behind the same address.
    pub fn admit_evicting(self: &Arc<Self>, ip: IpAddr, per_ip: bool) -> Option<PendingSlot> {
        self.take(ip, per_ip, true)
    }

    fn take(self: &Arc<Self>, ip: IpAddr, per_ip: bool, evict: bool) -> Option<PendingSlot> {
        // At most two: one from the address, one from anywhere.
        let mut gone = Vec::new();
        let slot = self.take_locked(ip, per_ip, evict, &mut gone);
        for client in gone.iter().flatten() {
            close_evicted(client);
        }
        slot
    }

    fn take_locked(
        self: &Arc<Self>,
        ip: IpAddr,
        per_ip: bool,
        evict: bool,
        gone: &mut Vec<Option<Arc<Client>>>,
    ) -> Option<PendingSlot> {
        let ip = crate::cidr::source(ip);
        let now = Instant::now();
        let mut state = self.state.lock();
        if per_ip && state.by_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            if !evict {
                return None;
            }
            gone.push(state.evict_oldest(Some(ip))?);
        }
        if state.entries.len() >= self.max_total {
            if !evict {
                return None;
            }
            gone.push(state.evict_oldest(None)?);
        }
        let id = state.next_id;
        state.next_id += 1;
        let evicted = Arc::new(Notify::new());
        state.entries.insert(id, Entry { ip, since: now, evicted: evicted.clone(), client: None });
        *state.by_ip.entry(ip).or_insert(0) += 1;
        Some(PendingSlot { pending: self.clone(), id, evicted })
    }

    /// Connections pending now.
    pub fn count(&self) -> usize {
        self.state.lock().entries.len()
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.pending.state.lock().release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_connections_are_bounded_per_address_and_in_all() {
        let pending = Arc::new(Pending::new(20, 4));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<PendingSlot> = (0..4).map(|_| pending.admit(a, true).unwrap()).collect();
        assert!(pending.admit(a, true).is_none(), "per address");
        let proxied = pending.admit(a, false).expect("a trusted proxy is not bound per address");
        let mut others = Vec::new();
        for i in 0..20u8 {
            if let Some(slot) = pending.admit(IpAddr::from([10, 1, 0, i]), true) {
                others.push(slot);
            }
        }
        assert_eq!(pending.count(), 20, "in all");
        drop((slots, proxied, others));
        assert_eq!(pending.count(), 0, "slots are given back");
        assert!(pending.admit(a, true).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_longest_waiting_gives_way_when_full() {
        let pending = Arc::new(Pending::new(3, 2));
        let ip = |i: u8| IpAddr::from([10, 0, 0, i]);
        let first = pending.admit_evicting(ip(1), true).unwrap();
        tokio::time::advance(std::time::Duration::from_millis(1)).await;
        let holders: Vec<PendingSlot> = (2..4).map(|i| pending.admit_evicting(ip(i), true).unwrap()).collect();
        let newcomer = pending.admit_evicting(ip(9), true).expect("a newcomer gets in");
        tokio::time::timeout(std::time::Duration::from_millis(1), first.evicted()).await.expect("the oldest is told");
        assert_eq!(pending.count(), 3);
        drop(first);
        assert_eq!(pending.count(), 3, "an evicted slot is not given back twice");
        tokio::time::advance(std::time::Duration::from_millis(1)).await;
        let second = pending.admit_evicting(ip(9), true).expect("two from one address");
        let third = pending.admit_evicting(ip(9), true).expect("a third from that address gets in");
        tokio::time::timeout(std::time::Duration::from_millis(1), newcomer.evicted())
            .await
            .expect("in place of that address's own longest-waiting one");
        assert_eq!(pending.count(), 3, "and the per-address bound holds");
        assert!(pending.admit(ip(9), true).is_none(), "without eviction the per-address bound refuses");
        drop((holders, newcomer, second, third));
    }

    #[test]
    fn an_evicted_connection_on_the_driver_is_closed_at_once() {
        let pending = Arc::new(Pending::new(1, 1));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let client = |id| Arc::new(Client::new(id, "10.0.0.1:4000".parse().unwrap(), 1024));
        let (old, old_client) = (pending.admit_evicting(ip, true).unwrap(), client(1));
        old.bind(&old_client);
        assert_eq!(old_client.outbound.closed(), None, "bound, still pending");
        let (new, new_client) = (pending.admit_evicting(ip, true).unwrap(), client(2));
        assert_eq!(old_client.outbound.closed(), Some(CloseReason::AuthenticationTimeout), "closed when evicted");
        let newest = pending.admit_evicting(ip, true).unwrap();
        new.bind(&new_client);
        assert_eq!(
            new_client.outbound.closed(),
            Some(CloseReason::AuthenticationTimeout),
            "evicted before it was bound"
        );
        drop((old, new, newest));
        assert_eq!(pending.count(), 0);
    }
}
