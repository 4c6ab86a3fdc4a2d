//! Cost of the permission checks on the hot path: a cached publish decision,
//! the uncached trie walk behind it, the no-rules fast path, the whole
//! publish guard a PUB passes, the delivery filter and a SUB check.

#[path = "support/fixed.rs"]
mod fixed;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use warden::broker::Client;
use warden::config::{Permissions, SubjectRules};
use warden::perms::{PermissionSet, PublishCache, PublishGuard, Standing};

fn rules(allow: Vec<String>, deny: Vec<String>) -> Option<SubjectRules> {
    Some(SubjectRules { allow: Some(allow), deny: Some(deny), literal: None })
}

/// A service account with 100 allow patterns and 10 deny patterns.
fn large_set() -> PermissionSet {
    let allow: Vec<String> = (0..100)
        .map(|i| match i % 3 {
            0 => format!("svc{i}.req.>"),
            1 => format!("svc{i}.*.events"),
            _ => format!("svc{i}.status"),
        })
        .collect();
    let deny: Vec<String> = (0..10).map(|i| format!("svc{i}.req.admin.>")).collect();
    PermissionSet::compile(&Permissions {
        publish: rules(allow.clone(), deny.clone()),
        subscribe: rules(allow, deny),
        allow_responses: None,
    })
    .unwrap()
}

fn publish(c: &mut Criterion) {
    let name = "publish";
    let mut g = c.benchmark_group(name);
    let subject = b"svc42.eu.events".as_slice();

    let mut off = PublishCache::new(Arc::new(PermissionSet::unrestricted()));
    fixed::run(&mut g, name, "no_rules", || {
        black_box(off.may_publish(black_box(subject)));
    });

    let set = Arc::new(large_set());
    let mut cache = PublishCache::new(set.clone());
    fixed::run(&mut g, name, "cached_hit", || {
        black_box(cache.may_publish(black_box(subject)));
    });
    fixed::run(&mut g, name, "uncached_trie_walk", || {
        black_box(set.may_publish(black_box(subject)));
    });
    fixed::run(&mut g, name, "uncached_deny_match", || {
        black_box(set.may_publish(black_box(b"svc3.req.admin.reset".as_slice())));
    });
    g.finish();
}

fn deliver_and_subscribe(c: &mut Criterion) {
    let set = large_set();
    let decision = set.may_subscribe(b"svc3.req.>", None);
    let filter = decision.filter().expect("overlaps a deny").clone();
    let name = "filter";
    let mut g = c.benchmark_group(name);
    fixed::run(&mut g, name, "delivery_filter", || {
        black_box(filter.denies(black_box(b"svc3.req.get.item".as_slice())));
    });
    fixed::run(&mut g, name, "subscribe_check", || {
        let _ = black_box(set.may_subscribe(black_box(b"svc97.*.events".as_slice()), None));
    });
    g.finish();
}

/// The whole check a PUB passes ([`PublishGuard::check`]), for a client
/// without reply grants: the cache-hit and no-rules paths must stay as fast
/// as the cache's own.
fn guard(c: &mut Criterion) {
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
    let client = Arc::new(Client::new(1, addr, 1 << 20));
    let outsider = Standing { in_system: false, serves_callout: false };
    let now = std::time::Instant::now();
    let name = "guard";
    let mut g = c.benchmark_group(name);
    let subject = b"svc42.eu.events".as_slice();
    let unrestricted = Arc::new(PermissionSet::unrestricted());
    let mut off = PublishGuard::new(unrestricted, client.clone(), outsider, true);
    fixed::run(&mut g, name, "no_rules", || {
        let _ = black_box(off.check(black_box(subject), None, now));
    });
    let mut guard = PublishGuard::new(Arc::new(large_set()), client, outsider, true);
    fixed::run(&mut g, name, "cached_hit", || {
        let _ = black_box(guard.check(black_box(subject), None, now));
    });
    let reply = Some(b"svc8.status".as_slice());
    fixed::run(&mut g, name, "cached_hit_with_reply", || {
        let _ = black_box(guard.check(black_box(subject), black_box(reply), now));
    });
    g.finish();
}

criterion_group!(benches, publish, guard, deliver_and_subscribe);
criterion_main!(benches);
