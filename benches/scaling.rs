//! How the subscription index scales: 10k, 100k and 1M subscriptions on
//! random literal subjects (`s.<random>.x`, as scenario j of the side-by-side
//! benchmark, plus `t<random>.<random>` spread over more levels) and one
//! wildcard for every 100 (`w.<n>.*`). Two figures per size:
//!
//! - the cost of one uncached match (`Router::lookup`, what a publisher
//!   pays on a match-cache miss), cycling through 4,096 subjects that are
//!   subscribed (literal and wildcard hits) so no two consecutive lookups
//!   share a path;
//! - the resident memory per subscription (index plus the `Subscription`
//!   itself): growth of the process's RSS while the index is built, with the
//!   server's allocator (jemalloc), printed once per size. (A counting
//!   allocator would need `unsafe`, which the crate forbids in every
//!   target; RSS is also what scenario j reports.)

#[path = "support/fixed.rs"]
mod fixed;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use warden::broker::{Account, Client, Router, Subscription};

/// The server's allocator (see `main.rs`), so resident memory here is
/// what a server with these subscriptions would show.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Resident bytes of this process (`/proc/self/statm`, 4 KiB pages).
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split(' ').nth(1).and_then(|p| p.parse::<usize>().ok()).unwrap_or(0) * 4096
}

/// A fixed-seed xorshift: the same subjects on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The `i`th subject: half `s.<r>.x`, half `t<r % 64>.<r>`, every 100th
/// a wildcard `w.<i>.*`.
fn subject(i: usize, rng: &mut Rng) -> String {
    let r = rng.next();
    match i % 100 {
        0 => format!("w.{i}.*"),
        n if n % 2 == 0 => format!("s.{r:x}.x"),
        _ => format!("t{}.{r:x}", r % 64),
    }
}

/// An index of `n` subscriptions, its subjects, and the resident bytes it added.
fn build(n: usize) -> (Router, Vec<String>, usize) {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
    let client = Arc::new(Client::new(1, addr, 1 << 20));
    let account = Arc::new(Account::new("$G".into(), false));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let subjects: Vec<String> = (0..n).map(|i| subject(i, &mut rng)).collect();
    let before = resident();
    let router = Router::new();
    for (i, s) in subjects.iter().enumerate() {
        let sid = i.to_string();
        router.insert(Arc::new(Subscription::new(
            client.clone(),
            account.clone(),
            s.as_bytes(),
            None,
            sid.as_bytes(),
            None,
        )));
    }
    let bytes = resident().saturating_sub(before);
    (router, subjects, bytes)
}

/// 4,096 literal subjects that match something, spread over the index.
fn probes(subjects: &[String]) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    (0..4096)
        .map(|_| {
            let s = &subjects[rng.next() as usize % subjects.len()];
            s.replace('*', "t7").into_bytes()
        })
        .collect()
}

fn scaling(c: &mut Criterion) {
    let group_name = "index";
    let mut group = c.benchmark_group(group_name);
    for n in [10_000, 100_000, 1_000_000] {
        let name = format!("match, {n} subscriptions");
        if !fixed::selects(&format!("{group_name}/{name}")) {
            continue;
        }
        let (router, subjects, bytes) = build(n);
        eprintln!("index: {n} subscriptions hold {bytes} bytes, {:.1} bytes/subscription", bytes as f64 / n as f64);
        let probes = probes(&subjects);
        drop(subjects);
        let mut next = 0;
        fixed::run(&mut group, group_name, &name, || {
            next = (next + 1) % probes.len();
            let (result, _) = router.lookup(black_box(&probes[next]));
            assert!(!result.is_empty());
            black_box(result);
        });
    }
    group.finish();
}

criterion_group!(benches, scaling);
criterion_main!(benches);
