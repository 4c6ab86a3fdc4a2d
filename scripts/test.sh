#!/usr/bin/env bash
# Runs warden's whole test suite on a fresh machine with Rust: installs what
# the tests need (nats-server from Debian for the comparison tests, nats-py
# and nkeys from PyPI, Go's nats-io/jwt from Debian, the npm NATS packages,
# cargo-fuzz from crates.io), then lints and tests
# everything, and runs each fuzz target briefly (WARDEN_FUZZ_SECS, default
# 20 s each; scripts/fuzz.sh runs them longer). `.ci/run` calls this script.
#
# A test whose dependency is missing is skipped, and the run ends with the
# list of skipped tests and why; under CI=true a missing dependency fails
# the run instead (the scripts above install everything there).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ci() { [[ ${CI:-} == true ]]; }
# A phase header; the phase before it is closed with the time it took.
phase_name=""
phase_started=$SECONDS
phase() {
  [[ -n $phase_name ]] && echo "test.sh: ==== $phase_name took $((SECONDS - phase_started)) s"
  echo "test.sh: ==== $1"
  phase_name=$1
  phase_started=$SECONDS
}
# A dependency that could not be had: fatal under CI=true.
missing() {
  if ci; then
    echo "test.sh: $1; failing because CI=true" >&2
    exit 1
  fi
  echo "test.sh: $1; the tests that need it will be listed as skipped"
}
SKIP_LOG=$(mktemp)
export WARDEN_SKIP_LOG=$SKIP_LOG
trap 'rm -f "$SKIP_LOG"' EXIT

install_debian() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
    echo "test.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    missing "cannot install ${missing[*]} (needs root and apt)"
  fi
}

phase "installing what the tests need"
# curl for the README's monitoring commands, which tests/readme.rs runs.
install_debian nats-server curl haproxy
# nats-py and nkeys from PyPI, for the tests that drive warden with them.
bash scripts/python-deps.sh || missing "scripts/python-deps.sh failed (nats-py, nkeys, nats-server 2.15.1)"
# Go and the official nats-io/jwt + nkeys packages from Debian, for the
# operator-mode fixtures (tests/jwtgen).
bash scripts/jwtgen.sh >/dev/null || missing "scripts/jwtgen.sh failed (Go's NATS packages)"
# Debian's nats-server source package, to decode warden's $SYS answers into
# nats-server's own types as the nats CLI does (tests/sysdecode).
bash scripts/sysdecode.sh >/dev/null || missing "scripts/sysdecode.sh failed (Debian's nats-server Go package)"

# The official NATS JavaScript packages from npm (Node.js from Debian if the
# machine has none), for the auth callout service the tests run (tests/callout).
command -v npm >/dev/null || install_debian nodejs npm
# Debian's Chromium, for the headless-browser test of the WebSocket listener.
install_debian chromium
bash scripts/node-deps.sh || missing "scripts/node-deps.sh failed (the npm NATS packages)"

# A build from a clean clone gains nothing from incremental state, which
# would double the disk the target directory takes.
ci && export CARGO_INCREMENTAL=0
started=$SECONDS
phase "lint"
cargo fmt --all -- --check
cargo fmt --all --manifest-path fuzz/Cargo.toml -- --check
# clippy.toml's clock rule binds only the sans-IO modules, which deny it
# themselves; tests, examples and benches read the clock freely.
cargo clippy --all-targets --locked -- -D warnings -A clippy::disallowed_methods
# The fuzz targets are their own workspace, which clippy above does not
# build: an API change that breaks one is found here, not after the tests.
cargo check --manifest-path fuzz/Cargo.toml --locked --bins
phase "build"
# `--all-targets` builds examples as test harnesses; the example tests run the real binaries.
cargo build --examples --locked
cargo test --all-targets --locked --no-run
echo "test.sh: target/ holds $(du -sh target 2>/dev/null | cut -f1)"
phase "tests"
cargo test --all-targets --locked

phase "fuzzing"
if ! command -v cargo-fuzz >/dev/null; then
  echo "test.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || true
fi
if command -v cargo-fuzz >/dev/null; then
  bash scripts/fuzz.sh "${WARDEN_FUZZ_SECS:-20}"
else
  missing "cargo-fuzz could not be installed (cargo install cargo-fuzz --locked failed)"
  echo "fuzzing: cargo-fuzz is missing (cargo install cargo-fuzz --locked)" >>"$SKIP_LOG"
fi
[[ -n $phase_name ]] && echo "test.sh: ==== $phase_name took $((SECONDS - phase_started)) s"
if [[ -s $SKIP_LOG ]]; then
  echo "test.sh: passed in $((SECONDS - started)) s, but these were SKIPPED for a missing dependency:"
  sort -u "$SKIP_LOG" | sed 's/^/  /'
else
  echo "test.sh: everything passed in $((SECONDS - started)) s, nothing skipped"
fi
