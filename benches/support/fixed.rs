//! A fixed-count mode for instruction counts: the machine's two cores are
//! shared, so wall-clock is noisy, and callgrind needs a workload of known
//! size. With `BENCH_ITERS=<n>` set, the case whose full name (`group/case`) is
//! `BENCH_CASE` runs exactly `n` times inside [`measured`] instead of under
//! criterion, and every other case is skipped:
//!
//! ```text
//! BENCH_ITERS=10000 BENCH_CASE='request/reply/service import' \
//!   valgrind --tool=callgrind --toggle-collect='*measured*' target/release/deps/accounts-<hash>
//! ```
//!
//! Instructions per iteration are then callgrind's total divided by `n`.

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;

/// `(iterations, case)` when the fixed mode is on.
fn fixed() -> Option<(u64, String)> {
    let n = std::env::var("BENCH_ITERS").ok()?.parse().ok()?;
    Some((n, std::env::var("BENCH_CASE").unwrap_or_default()))
}

/// Runs `n` iterations of `f`; the only code callgrind counts.
#[inline(never)]
fn measured(n: u64, f: &mut dyn FnMut()) {
    for _ in 0..n {
        f();
    }
}

/// Runs the case `group_name/name`: under criterion, or in the fixed mode.
pub fn run(group: &mut BenchmarkGroup<'_, WallTime>, group_name: &str, name: &str, mut f: impl FnMut()) {
    match fixed() {
        Some((n, case)) => {
            if format!("{group_name}/{name}").eq(&case) {
                eprintln!("{group_name}/{name}: {n} iterations");
                measured(n, &mut f);
            }
        }
        None => {
            group.bench_function(name, |b| b.iter(&mut f));
        }
    }
}

/// Whether the fixed mode is on (a case may skip expensive setup when it
/// will not run).
#[allow(dead_code)]
pub fn selects(full_name: &str) -> bool {
    fixed().is_none_or(|(_, case)| full_name.eq(&case))
}
