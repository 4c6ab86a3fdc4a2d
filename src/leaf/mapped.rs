//! Interest in an account's mapping sources and service imports, on its
//! leaf connections.
//!
//! A leaf sends this server only what this server has told it interest
//! in, so when an account maps `foo` to `bar`, a publish on `foo` on the
//! other side of a leaf connection would never come here to be mapped,
//! however many subscribe to `bar`; nor would a request on a subject the
//! account imports as a service reach the exporter. nats-server 2.15.1 tells every leaf
//! connection of the account (both ways, a hub within its leaf user's
//! permissions) of interest in each mapping source, as it does for
//! service imports (`initLeafNodeSmapAndSendSubs`), and adds or removes a
//! source when the account's mappings change (`AddWeightedMappings`,
//! `RemoveMapping`). This does the same: each source counts as one more
//! subscription in the hub's interest counts ([`super::AccountLeafs`]),
//! taken when the first leaf of the account registers and brought up to
//! date by [`follow`] whenever the accounts change (a reload, a pushed
//! JWT).

use std::sync::Weak;

use tokio::sync::watch;

use super::Hub;
use crate::proto::route::{rs_minus, rs_plus, InterestTo};

impl Hub {
    /// The subjects account `name` draws messages in on as they stand now,
    /// sorted: its mapping sources and the subjects of its service imports
    /// (nats-server sends both, `acc.mappings` and `acc.imports.services`),
    /// and the routed replies when this server has gateways.
    pub(super) fn drawn_subjects(&self, name: &str) -> Vec<Box<[u8]>> {
        let Some(account) = self.broker.accounts.get(name) else { return Vec::new() };
        let state = account.state();
        let mut sources = state.mappings.as_ref().map(|m| m.sources()).unwrap_or_default();
        sources.extend(state.services.iter().map(|s| Box::<[u8]>::from(s.local_subject())));
        // With gateways, a leaf's answer on a routed reply must reach this
        // server to go back to the cluster that asked (nats-server, too,
        // tells its leafs of `_GR_.>`).
        if self.broker.routed_replies.get().is_some() {
            sources.push(Box::from(&b"_GR_.>"[..]));
        }
        sources.sort();
        sources.dedup();
        sources
    }

    /// Brings every account's drawn subjects (mapping sources, service
    /// imports) up to date, telling its
    /// leafs of sources added (unless they already see interest there) and
    /// of sources removed (unless interest remains).
    pub(super) fn sync_drawn_subjects(&self) {
        let mut accounts = self.accounts.lock();
        for (name, account) in accounts.iter_mut() {
            if account.leafs.is_empty() {
                account.sources.clear();
                continue;
            }
            let now = self.drawn_subjects(name);
            if now == account.sources {
                continue;
            }
            let before = std::mem::replace(&mut account.sources, now);
            let added = account.sources.iter().filter(|s| !before.contains(s)).map(|s| (s, true));
            let removed = before.iter().filter(|s| !account.sources.contains(s)).map(|s| (s, false));
            for (source, add) in added.chain(removed) {
                let count = account.interest.get(&(source.clone(), None));
                for leaf in account.leafs.iter().filter(|l| l.announces(source, None)) {
                    if count.is_some_and(|c| self.seen(c, leaf) > 0) {
                        continue;
                    }
                    let line = match add {
                        true => rs_plus(InterestTo::Leaf, source, None, 1),
                        false => rs_minus(InterestTo::Leaf, source, None),
                    };
                    leaf.client.send(&line);
                }
            }
        }
    }
}

/// Keeps the hub's mapping sources in step with the accounts until the
/// hub is gone or the accounts stop changing (the broker is dropped).
pub(super) async fn follow(hub: Weak<Hub>, mut changed: watch::Receiver<u64>) {
    while changed.changed().await.is_ok() {
        let Some(hub) = hub.upgrade() else { return };
        hub.sync_drawn_subjects();
    }
}
