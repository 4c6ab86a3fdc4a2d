#!/usr/bin/env bash
# Runs a client library's own test suite against warden installed as
# `nats-server` on PATH: the tests that async-nats (the crate warden's tests
# already use, 0.38.0 from crates.io) publishes in its package. Their
# helper crate is not published, so scripts/client-suite/nats-server stands
# in for it; it starts `nats-server` with the flags the original passes and
# translates nothing. JetStream, KV and object-store tests are not run
# (warden has no JetStream); nkey and JWT tests run and show what is left.
#
#   bash scripts/client-suite.sh [TEST...]     (default: client_tests tls_tests service_tests nkey_tests jwt_tests)
#
# Not part of scripts/test.sh: it builds async-nats' dev-dependencies
# (several minutes) in target/client-suite. Prints each test binary's result.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tests=("$@")
if ((${#tests[@]} == 0)); then
  tests=(client_tests tls_tests service_tests nkey_tests jwt_tests)
fi
cargo build --release --locked
work=$(pwd)/target/client-suite
src=$(cargo metadata --format-version 1 --locked 2>/dev/null | python3 -c '
import json, sys
meta = json.load(sys.stdin)
print(next(p["manifest_path"] for p in meta["packages"] if p["name"] == "async-nats"))' | xargs dirname)
rm -rf "$work/async-nats" "$work/nats-server" "$work/bin"
mkdir -p "$work/bin"
cp -r "$src" "$work/async-nats"
cp -r scripts/client-suite/nats-server "$work/nats-server"
printf '\n[dev-dependencies.nats-server]\npath = "../nats-server"\n' >>"$work/async-nats/Cargo.toml"
ln -s "$(pwd)/target/release/warden" "$work/bin/nats-server"
export PATH="$work/bin:$PATH"
echo "client-suite.sh: $(nats-server --version) from $(command -v nats-server)"
status=0
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
# The default features of async-nats include server_2_10, for 2.10-only
# server features; warden speaks 2.9.10.
cd "$work/async-nats"
CARGO_TARGET_DIR="$work/target" cargo test --no-fail-fast --no-default-features --features ring,service "${args[@]}" -- --test-threads=2 2>&1 |
  tee "$work/results.log" | grep -E '^(test |test result|     Running)' || status=1
echo "client-suite.sh: full output in $work/results.log"
exit $status
