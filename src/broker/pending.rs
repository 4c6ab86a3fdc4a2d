//! Connections accepted and not yet through their handshake or login, in
//! all and per peer address: what one address may make a listener hold
//! before it proves anything (the route listener, the WebSocket listener).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// The pending connections of one listener.
#[derive(Debug)]
pub struct Pending {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A pending connection's place in [`Pending`]; given back on drop.
#[derive(Debug)]
pub struct PendingSlot {
    pending: Arc<Pending>,
    ip: IpAddr,
}

impl Pending {
    /// At most `max_total` at once, `max_per_ip` of them from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Pending {
        Pending { max_total, max_per_ip, state: Mutex::new((0, HashMap::new())) }
    }

    /// A slot for a connection from `ip`, unless a bound is reached.
    /// `per_ip`: whether the per-address bound applies (not to a trusted
    /// proxy, which speaks for many clients).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, per_ip: bool) -> Option<PendingSlot> {
        let mut guard = self.state.lock();
        let (total, by_ip) = &mut *guard;
        let from_ip = by_ip.entry(ip).or_insert(0);
        if *total >= self.max_total || (per_ip && *from_ip >= self.max_per_ip) {
            if *from_ip == 0 {
                by_ip.remove(&ip);
            }
            return None;
        }
        *from_ip += 1;
        *total += 1;
        Some(PendingSlot { pending: self.clone(), ip })
    }

    /// Connections pending now.
    pub fn count(&self) -> usize {
        self.state.lock().0
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut guard = self.pending.state.lock();
        let (total, by_ip) = &mut *guard;
        *total = total.saturating_sub(1);
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
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
}
