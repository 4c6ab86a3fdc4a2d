//! Command-line flags shared by the examples: `--server URL` (default
//! nats://127.0.0.1:4222), `--count N` (how much work; bounded so tests can
//! run every example), `--ca FILE` (CA certificate for TLS).

/// Parsed example flags.
pub struct Args {
    /// Broker URL.
    pub server: String,
    /// Size of the run (messages, jobs, beats...).
    pub count: usize,
    /// CA certificate for TLS, when the broker uses it.
    pub ca: Option<std::path::PathBuf>,
}

/// Reads the flags; `default_count` is used when `--count` is absent.
pub fn parse(default_count: usize) -> Args {
    let mut args = Args { server: "nats://127.0.0.1:4222".into(), count: default_count, ca: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage(&flag));
        match flag.as_str() {
            "--server" => args.server = value,
            "--count" => args.count = value.parse().unwrap_or_else(|_| usage(&flag)),
            "--ca" => args.ca = Some(value.into()),
            _ => usage(&flag),
        }
    }
    args
}

fn usage(flag: &str) -> ! {
    eprintln!("unexpected or incomplete flag {flag}; flags: --server URL --count N --ca FILE");
    std::process::exit(2)
}
