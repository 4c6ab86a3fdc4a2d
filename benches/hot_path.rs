//! The per-message hot path: parsing a batch of PUBs, matching subjects in
//! the trie (with and without the per-connection cache, many subscriptions),
//! encoding MSG frames, and a publish's subject mapping step (with mappings
//! configured; without, the step is one `Option` test).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use warden::broker::Client;
use warden::broker::{Account, MatchCache, Router, Subscription};
use warden::proto::{write_msg, ParseLimits, Parser, Step};

const LIMITS: ParseLimits = ParseLimits { max_payload: 1 << 20, max_control_line: 4096 };

fn parse_batch(c: &mut Criterion) {
    let mut input = Vec::new();
    for _ in 0..1000 {
        input.extend_from_slice(b"PUB bench.test 16\r\n0123456789abcdef\r\n");
    }
    let mut group = c.benchmark_group("parser");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1000 PUB 16B", |b| {
        b.iter(|| {
            let mut parser = Parser::new();
            let mut used = 0;
            let mut n = 0;
            while let Ok(Step::Op(op, len)) = parser.parse(&input[used..], &LIMITS) {
                black_box(op);
                used += len;
                n += 1;
            }
            assert_eq!(n, 1000);
        })
    });
    group.finish();
}

fn router_with(subs: usize) -> Router {
    let router = Router::new();
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
    let client = Arc::new(Client::new(1, addr, 1 << 20));
    let account = Arc::new(Account::new("$G".into(), false));
    let sub = |subject: &[u8], sid: &[u8]| {
        Arc::new(Subscription::new(client.clone(), account.clone(), subject, None, sid, None))
    };
    for i in 0..subs {
        let subject = format!("svc.{}.{}", i % 100, i);
        router.insert(sub(subject.as_bytes(), i.to_string().as_bytes()));
    }
    router.insert(sub(b"svc.*.7", b"w1"));
    router.insert(sub(b"svc.>", b"w2"));
    router
}

fn matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("match");
    for subs in [10, 10_000] {
        let router = router_with(subs);
        group.bench_function(format!("trie, {subs} subscriptions"), |b| {
            b.iter(|| black_box(router.lookup(black_box(b"svc.7.7"))))
        });
        let mut cache = MatchCache::new();
        group.bench_function(format!("cached, {subs} subscriptions"), |b| {
            b.iter(|| black_box(cache.lookup(&router, black_box(b"svc.7.7"))))
        });
    }
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let mut out = BytesMut::with_capacity(1 << 20);
    let payload = [b'x'; 16];
    c.bench_function("encode MSG 16B", |b| {
        b.iter(|| {
            if out.len() > 1 << 19 {
                out.clear();
            }
            write_msg(&mut out, b"bench.test", b"1", None, None, black_box(&payload), true);
        })
    });
}

/// The per-publish mapping step of a connection whose account has 20
/// rules (10 literal, 10 wildcard): a subject under a literal rule, under
/// a wildcard rule with a function, and under none.
fn mapping(c: &mut Criterion) {
    use warden::broker::{Accounts, Mapper};
    use warden::subject::{MapDestination, MappingRule};
    let one = |source: String, dest: String| MappingRule {
        source,
        destinations: vec![MapDestination { subject: dest, weight: 100, cluster: None }],
    };
    let mut rules: Vec<MappingRule> = (0..10).map(|i| one(format!("lit.{i}"), format!("to.{i}"))).collect();
    rules.extend((0..10).map(|i| one(format!("w{i}.*.*"), "p.{{partition(8,1,2)}}.$1.$2".to_owned())));
    let opts = warden::config::Options { mappings: rules, ..warden::config::Options::default() };
    let accounts = Accounts::new();
    accounts.apply(&opts).unwrap();
    let mut mapper = Mapper::for_account(accounts.global(), 1).unwrap();
    let mut group = c.benchmark_group("mapping");
    for (name, subject) in
        [("literal rule", &b"lit.7"[..]), ("wildcard rule, partition", b"w9.dev42.temp"), ("no rule", b"bench.test")]
    {
        group.bench_function(name, |b| b.iter(|| black_box(mapper.map(black_box(subject)))));
    }
    group.finish();
}

criterion_group!(benches, parse_batch, matching, encoding, mapping);
criterion_main!(benches);
