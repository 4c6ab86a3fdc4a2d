//! Whether the protocol trace is on (`trace`, and `trace_verbose` for the
//! system account's connections): read when a connection starts, and
//! changed by a reload for the live connections too, as nats-server's
//! `reloadClientTraceLevel` does.

use std::sync::atomic::{AtomicBool, Ordering};

/// The server's trace settings.
#[derive(Debug)]
pub struct TraceLevel {
    on: AtomicBool,
    verbose: AtomicBool,
}

impl TraceLevel {
    /// `trace`, `trace_verbose` as configured.
    pub fn new(on: bool, verbose: bool) -> TraceLevel {
        TraceLevel { on: AtomicBool::new(on), verbose: AtomicBool::new(verbose) }
    }

    /// Whether a new connection is traced (until it turns out to be of the
    /// system account: [`TraceLevel::traces`]).
    pub fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Whether a connection is traced, given whether it is in the system
    /// account, whose traffic only `trace_verbose` shows (as `-VV`).
    pub fn traces(&self, in_system: bool) -> bool {
        self.on() && (!in_system || self.verbose.load(Ordering::Relaxed))
    }

    /// Sets both; whether anything changed.
    pub fn set(&self, on: bool, verbose: bool) -> bool {
        let was_on = self.on.swap(on, Ordering::Relaxed);
        let was_verbose = self.verbose.swap(verbose, Ordering::Relaxed);
        was_on != on || was_verbose != verbose
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_account_is_traced_only_verbosely() {
        let level = TraceLevel::new(true, false);
        assert!(level.traces(false) && !level.traces(true));
        assert!(level.set(true, true));
        assert!(level.traces(true));
        assert!(!level.set(true, true), "no change");
        assert!(level.set(false, true));
        assert!(!level.traces(false) && !level.traces(true) && !level.on());
    }
}
