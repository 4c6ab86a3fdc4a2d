#!/usr/bin/env bash
# Runs warden's whole test suite on a fresh machine with Rust: installs what
# the tests need (nats-server from Debian for the comparison tests, nats-py
# and nkeys from PyPI, Go's nats-io/jwt from Debian, the npm NATS packages,
# cargo-fuzz from crates.io), then lints and tests
# everything, and runs each fuzz target briefly (WARDEN_FUZZ_SECS, default
# 20 s each; scripts/fuzz.sh runs them longer). `.ci/run` calls this script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

install_debian() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
    echo "test.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test.sh: cannot install ${missing[*]} (needs root and apt); tests that compare with nats-server will say they were skipped"
  fi
}

install_debian nats-server
# nats-py and nkeys from PyPI, for the tests that drive warden with them.
bash scripts/python-deps.sh || echo "test.sh: python-deps.sh failed; the tests that need nats-py will say they were skipped"
# Go and the official nats-io/jwt + nkeys packages from Debian, for the
# operator-mode fixtures (tests/jwtgen).
bash scripts/jwtgen.sh >/dev/null || echo "test.sh: jwtgen.sh failed; the operator-mode tests will say they were skipped"

# The official NATS JavaScript packages from npm (Node.js from Debian if the
# machine has none), for the auth callout service the tests run (tests/callout).
command -v npm >/dev/null || install_debian nodejs npm
# Debian's Chromium, for the headless-browser test of the WebSocket listener.
install_debian chromium
bash scripts/node-deps.sh || echo "test.sh: node-deps.sh failed; the auth callout tests will say they were skipped"

started=$SECONDS
cargo fmt --all -- --check
cargo fmt --all --manifest-path fuzz/Cargo.toml -- --check
# clippy.toml's clock rule binds only the sans-IO modules, which deny it
# themselves; tests, examples and benches read the clock freely.
cargo clippy --all-targets --locked -- -D warnings -A clippy::disallowed_methods
# `--all-targets` builds examples as test harnesses; the example tests run the real binaries.
cargo build --examples --locked
cargo test --all-targets --locked

if ! command -v cargo-fuzz >/dev/null; then
  echo "test.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || true
fi
if command -v cargo-fuzz >/dev/null; then
  bash scripts/fuzz.sh "${WARDEN_FUZZ_SECS:-20}"
else
  echo "test.sh: SKIPPED fuzzing: cargo-fuzz could not be installed (cargo install cargo-fuzz --locked failed)"
fi
echo "test.sh: everything passed in $((SECONDS - started)) s"
