//! Cost of the permission checks on the hot path: a cached publish decision,
//! the uncached trie walk behind it, the no-rules fast path, the whole
//! publish guard a PUB passes, the delivery filter and a SUB check.

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
    let mut g = c.benchmark_group("publish");
    let subject = b"svc42.eu.events".as_slice();

    let mut off = PublishCache::new(Arc::new(PermissionSet::unrestricted()));
    g.bench_function("no_rules", |b| b.iter(|| off.may_publish(black_box(subject))));

    let set = Arc::new(large_set());
    let mut cache = PublishCache::new(set.clone());
    g.bench_function("cached_hit", |b| b.iter(|| cache.may_publish(black_box(subject))));
    g.bench_function("uncached_trie_walk", |b| b.iter(|| set.may_publish(black_box(subject))));
    g.bench_function("uncached_deny_match", |b| {
        b.iter(|| set.may_publish(black_box(b"svc3.req.admin.reset".as_slice())))
    });
    g.finish();
}

fn deliver_and_subscribe(c: &mut Criterion) {
    let set = large_set();
    let decision = set.may_subscribe(b"svc3.req.>", None);
    let filter = decision.filter().expect("overlaps a deny").clone();
    c.bench_function("delivery_filter", |b| b.iter(|| filter.denies(black_box(b"svc3.req.get.item".as_slice()))));
    c.bench_function("subscribe_check", |b| {
        b.iter(|| set.may_subscribe(black_box(b"svc97.*.events".as_slice()), None))
    });
}

/// The whole check a PUB passes ([`PublishGuard::check`]), for a client
/// without reply grants: the cache-hit and no-rules paths must stay as fast
/// as the cache's own.
fn guard(c: &mut Criterion) {
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
    let client = Arc::new(Client::new(1, addr, 1 << 20));
    let outsider = Standing { in_system: false, serves_callout: false };
    let now = std::time::Instant::now();
    let mut g = c.benchmark_group("guard");
    let subject = b"svc42.eu.events".as_slice();
    let unrestricted = Arc::new(PermissionSet::unrestricted());
    let mut off = PublishGuard::new(unrestricted, client.clone(), outsider, true);
    g.bench_function("no_rules", |b| b.iter(|| off.check(black_box(subject), None, now)));
    let mut guard = PublishGuard::new(Arc::new(large_set()), client, outsider, true);
    g.bench_function("cached_hit", |b| b.iter(|| guard.check(black_box(subject), None, now)));
    let reply = Some(b"svc8.status".as_slice());
    g.bench_function("cached_hit_with_reply", |b| b.iter(|| guard.check(black_box(subject), black_box(reply), now)));
    g.finish();
}

criterion_group!(benches, publish, guard, deliver_and_subscribe);
criterion_main!(benches);
