#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, one after the
# other, and prints executions, corpus size and findings per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 600 s, every target)
#
# Each run starts from the checked-in seed corpus (fuzz/corpus/TARGET) and
# grows a working corpus in fuzz/work/TARGET (not checked in), so the seed
# stays small. Crashes land in fuzz/artifacts/TARGET; the script exits 1 if
# any target found one. Runs on the stable toolchain with RUSTC_BOOTSTRAP=1
# (cargo-fuzz needs nightly flags); the fuzzer runs at low priority.
#
# Sanitizer: none. warden forbids unsafe code, so AddressSanitizer would
# mostly check the standard library, at about half the executions per
# second; panics, overflow (debug assertions are on), hangs, stack overflow
# and memory blow-ups (-rss_limit_mb) are still caught.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

secs=${1:-600}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(proto_parser route_parser connect_json config subject jwt authorizer_answer websocket leaf_session gateway_session msg_trace proxy_header spiffe_id)
fi

if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
nice -n 10 cargo fuzz build -s none
# Run the built binaries directly, so editing the sources during a long run
# does not rebuild the later targets from a half-edited tree.
bin="${CARGO_TARGET_DIR:-target}/$(rustc -vV | sed -n 's/^host: //p')/release"

status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "work/$t" "artifacts/$t"
  log="work/$t.log"
  echo "fuzz.sh: $t for ${secs}s"
  set +e
  nice -n 10 "$bin/$t" "work/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  corpus=$(find "work/$t" -type f | wc -l)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  if ((rc != 0)); then
    status=1
    echo "fuzz.sh: $t FAILED (exit $rc); last lines of $log:"
    tail -20 "$log"
  fi
  summary+=("$(printf '%-14s %6ss %12s execs %7s corpus files %3s artifacts exit %s' "$t" "$secs" "$execs" "$corpus" "$crashes" "$rc")")
done
echo
printf '%s\n' "${summary[@]}"
exit $status
