//! The config reader on arbitrary bytes: the parser (`parse_bytes`) on any
//! bytes, and the whole loader (`load_str`: parse, then build `Options`) on
//! UTF-8. Checked: no panic, no hang; every error carries a position in the
//! input's file; a config that loads is loaded the same way twice.
//!
//! Inputs that `include` files or name operator JWT files are skipped: they
//! may name any path on the fuzzing machine (a FIFO would block the run).
//! Both are covered by unit and integration tests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::config::{load_str_with_env, parser::parse_bytes_with_env};

/// A fixed environment, so a run does not depend on the fuzzing machine.
fn env(name: &str) -> Option<String> {
    (name == "FUZZ_ENV").then(|| "4222".to_string())
}

fuzz_target!(|data: &[u8]| {
    let names_files = |word: &[u8]| data.windows(word.len()).any(|w| w.eq_ignore_ascii_case(word));
    if names_files(b"include") || names_files(b"oper") || names_files(b"root") {
        return;
    }
    let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
    let check = |err: &warden::config::ConfigError| {
        assert_eq!(err.file(), Some("fuzz.conf"), "error without its file: {err}");
        if let Some(line) = err.line() {
            assert!(line >= 1 && line as usize <= lines, "error on line {line} of {lines}: {err}");
        }
        let _ = err.to_string();
    };
    if let Err(err) = parse_bytes_with_env(data, "fuzz.conf", &env) {
        check(&err);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    match load_str_with_env(text, "fuzz.conf", &env) {
        Ok(loaded) => {
            let again = load_str_with_env(text, "fuzz.conf", &env).ok();
            assert_eq!(again, Some(loaded), "the same config loaded differently");
        }
        Err(err) => check(&err),
    }
});
