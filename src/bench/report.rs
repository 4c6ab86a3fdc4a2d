//! Benchmark results and their summary table.

use std::fmt;
use std::time::Duration;

use super::{BenchOptions, Mode};

/// Latency percentiles of a request/reply run.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Requests measured (after warm-up).
    pub count: usize,
    /// Percentiles: p50, p90, p99, p99.9, max.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Latencies {
    /// Exact percentiles of `samples`.
    pub fn from_samples(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        let at = |q: f64| -> Duration {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i]
        };
        Latencies {
            count: samples.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Mode.
    pub mode: Mode,
    /// Payload size.
    pub size: usize,
    /// Messages published.
    pub published: u64,
    /// Time to publish them (publishers flushed).
    pub publish_time: Duration,
    /// Messages delivered to subscribers.
    pub delivered: u64,
    /// Time until every subscriber had its messages.
    pub elapsed: Duration,
    /// Request/reply latencies.
    pub latencies: Option<Latencies>,
}

impl Report {
    pub(super) fn throughput(
        opts: &BenchOptions,
        published: u64,
        publish_time: Duration,
        delivered: u64,
        elapsed: Duration,
    ) -> Report {
        Report { mode: opts.mode, size: opts.size, published, publish_time, delivered, elapsed, latencies: None }
    }

    pub(super) fn latency(opts: &BenchOptions, samples: Vec<Duration>, elapsed: Duration) -> Report {
        let count = samples.len() as u64;
        Report {
            mode: opts.mode,
            size: opts.size,
            published: count,
            publish_time: elapsed,
            delivered: count,
            elapsed,
            latencies: Some(Latencies::from_samples(samples)),
        }
    }

    /// Published messages per second.
    pub fn publish_rate(&self) -> f64 {
        self.published as f64 / self.publish_time.as_secs_f64().max(f64::EPSILON)
    }

    /// Delivered messages per second.
    pub fn delivery_rate(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| mode | size | published | delivered | elapsed | publish msgs/s | delivered msgs/s | delivered MB/s |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        let mbps = self.delivery_rate() * self.size as f64 / 1e6;
        writeln!(
            f,
            "| {:?} | {} | {} | {} | {:.3} s | {:.0} | {:.0} | {:.1} |",
            self.mode,
            self.size,
            self.published,
            self.delivered,
            self.elapsed.as_secs_f64(),
            self.publish_rate(),
            self.delivery_rate(),
            mbps
        )?;
        if let Some(l) = &self.latencies {
            writeln!(f)?;
            writeln!(f, "| requests | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |")?;
            writeln!(f, "|---:|---:|---:|---:|---:|---:|")?;
            writeln!(
                f,
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                l.count,
                us(l.p50),
                us(l.p90),
                us(l.p99),
                us(l.p999),
                us(l.max)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact() {
        let samples: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let l = Latencies::from_samples(samples);
        assert_eq!(l.p50, Duration::from_micros(500));
        assert_eq!(l.p99, Duration::from_micros(990));
        assert_eq!(l.p999, Duration::from_micros(999));
        assert_eq!(l.max, Duration::from_micros(1000));
    }
}
