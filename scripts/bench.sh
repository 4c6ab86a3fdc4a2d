#!/usr/bin/env bash
# Side-by-side benchmark of warden against nats-server 2.9.10 (Debian):
# runs ../shared/bench/compare.sh (the Go nats.go client, scenarios a-h,
# rounds alternating A B) and `warden bench` against both servers, then
# writes docs/benchmarks.md with the date, commit, machine and raw figures.
#
#   bash scripts/bench.sh [-r ROUNDS] [-x SCALE] [-q PCT]
#   (defaults: 3 rounds, full size, compare.sh's quiet gate of 20 % of a core;
#   on a busy machine -q 300 runs without waiting and says so in the table)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=3
SCALE=1
QUIET=20
while getopts "r:x:q:" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    x) SCALE=$OPTARG ;;
    q) QUIET=$OPTARG ;;
    *) echo "usage: $0 [-r ROUNDS] [-x SCALE] [-q PCT]" >&2; exit 2 ;;
  esac
done
SHARED=${SHARED:-$(cd .. && pwd)/shared}
[[ -f $SHARED/bench/compare.sh ]] || { echo "bench.sh: $SHARED/bench/compare.sh not found (set SHARED=...)" >&2; exit 1; }

cargo build --release --locked
bash "$SHARED/bench/build.sh"
WARDEN=$(pwd)/target/release/warden
OUT=$(mktemp -d /tmp/warden-bench.XXXXXX)

bash "$SHARED/bench/compare.sh" -r "$ROUNDS" -x "$SCALE" -q "$QUIET" -n "$((QUIET > 25 ? QUIET : 25))" -o "$OUT/compare" -l nats-server,warden \
  'nats-server -c {CONF}' "$WARDEN serve --config {CONF} --log-level error" | tee "$OUT/compare.log"

# warden bench against each server: fan-out, queue groups, request/reply.
wb() { # label server-command-with-{PORT}
  local label=$1 port=14999
  local cmd=${2//\{PORT\}/$port}
  $cmd >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  local s=nats://127.0.0.1:$port
  {
    echo "#### $label"
    echo
    "$WARDEN" bench pubsub -s $s -n 2000000 --subs 4
    echo
    "$WARDEN" bench queue -s $s -n 2000000 --subs 4
    echo
    "$WARDEN" bench reqrep -s $s -n 20000
    echo
  } >>"$OUT/warden-bench.md"
  kill $pid; wait $pid 2>/dev/null || true
}
: >"$OUT/warden-bench.md"
wb "nats-server 2.9.10" "nats-server -a 127.0.0.1 -p {PORT}"
wb "warden" "$WARDEN serve --log-level error --listen 127.0.0.1:{PORT}"

# Leaf hop: a publisher on a leaf server, its subscriber on the hub, one
# leaf connection between them; server CPU (both servers, /proc ticks) per
# message, the same warden bench client on both pairs.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
LEAF_MSGS=$((1000000 * SCALE))
leafhop() { # label hub-command leaf-command (each with {CONF})
  local label=$1 dir="$OUT/leaf-$2"
  mkdir -p "$dir"
  printf 'listen: 127.0.0.1:14997\nleafnodes { listen: 127.0.0.1:14996%s }\n' "$4" >"$dir/hub.conf"
  printf 'listen: 127.0.0.1:14998\nleafnodes { remotes = [ { url: "nats-leaf://127.0.0.1:14996" } ] }\n' >"$dir/leaf.conf"
  ${3//\{CONF\}/$dir/hub.conf} >"$dir/hub.log" 2>&1 &
  local hub=$!
  sleep 0.5
  ${3//\{CONF\}/$dir/leaf.conf} >"$dir/leaf.log" 2>&1 &
  local leaf=$!
  for port in 14997 14998; do
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  done
  sleep 1
  local before=$(( $(cpu_ticks $hub) + $(cpu_ticks $leaf) ))
  local result
  result=$("$WARDEN" bench pubsub -s nats://127.0.0.1:14998 --sub-server nats://127.0.0.1:14997 -n "$LEAF_MSGS" --subs 1 2>&1 |
    awk -F'|' '/^\| PubSub/ { gsub(/ /, ""); print $5 " | " $8 }')
  local after=$(( $(cpu_ticks $hub) + $(cpu_ticks $leaf) ))
  kill $hub $leaf; wait $hub $leaf 2>/dev/null || true
  local ns=$(( (after - before) * 10000000 / LEAF_MSGS ))
  printf '| %s | %s ns | %s |\n' "$label" "$ns" "${result:-failed | -}" >>"$OUT/leafhop.md"
}
{
  echo "| servers (hub and leaf) | server CPU per message, both servers | delivered | delivered msgs/s |"
  echo "|---|---:|---:|---:|"
} >"$OUT/leafhop.md"
leafhop "nats-server 2.9.10" nats "nats-server -c {CONF}" ""
leafhop "warden" warden "$WARDEN serve --log-level error --config {CONF}" ", insecure_allow_unauthenticated_leafnodes: true"

# Rate limits (warden only): the same pubsub run by an unlimited user,
# on a server with no limit configured, on one where another user has a
# rate_limit but is idle, and while that user floods (held to 1,000 msgs/s
# by backpressure). Rounds alternate the three.
RATE_MSGS=$((1000000 * SCALE))
ratelimits() {
  local dir="$OUT/rate" port=14995
  mkdir -p "$dir"
  printf 'listen: 127.0.0.1:%s\nauthorization { users: [ {user: calm, password: calm-pw}, {user: flood, password: flood-pw} ] }\n' \
    $port >"$dir/none.conf"
  printf 'listen: 127.0.0.1:%s\nauthorization { users: [ {user: calm, password: calm-pw}, {user: flood, password: flood-pw, rate_limit: { msgs_per_sec: 1000 }} ] }\n' \
    $port >"$dir/limited.conf"
  local s=nats://127.0.0.1:$port
  calm_run() { # config, flood or not -> delivered msgs/s
    "$WARDEN" serve --log-level error --config "$dir/$1.conf" >>"$dir/server.log" 2>&1 &
    local pid=$! flooder=
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    if [[ $2 == flood ]]; then
      "$WARDEN" bench pub -s $s --user flood --pass flood-pw --subject flood.x -n 1000000000 --timeout 600 >/dev/null 2>&1 &
      flooder=$!
      sleep 2 # past its burst: held back from here on
    fi
    "$WARDEN" bench pubsub -s $s --user calm --pass calm-pw -n "$RATE_MSGS" --subs 1 2>&1 |
      awk -F'|' '/^\| PubSub/ { gsub(/ /, ""); print $8 }'
    [[ -n $flooder ]] && { kill "$flooder"; wait "$flooder" 2>/dev/null || true; }
    kill $pid; wait $pid 2>/dev/null || true
  }
  {
    echo "| round | no limit configured | another user limited, idle | another user limited, flooding |"
    echo "|---|---:|---:|---:|"
    for r in $(seq "$ROUNDS"); do
      echo "| $r | $(calm_run none idle) | $(calm_run limited idle) | $(calm_run limited flood) |"
    done
  } >"$OUT/rate.md"
}
ratelimits

kept=$(sed -n '/^## WebSocket transport/,$p' docs/benchmarks.md 2>/dev/null || true)
{
  echo "# Benchmarks"
  echo
  echo "Made by \`bash scripts/bench.sh\` on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)."
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Compare figures only within one run: the machine is shared and absolute numbers move by 15% or more."
  echo
  echo "## Side by side (shared/bench/compare.sh, nats.go client)"
  echo
  cat "$OUT/compare/summary.md"
  echo
  echo "## warden bench against both servers"
  echo
  cat "$OUT/warden-bench.md"
  echo
  echo "## Leaf hop ($LEAF_MSGS messages of 16 B, one leaf connection)"
  echo
  cat "$OUT/leafhop.md"
  echo
  echo "## Rate limits: an unlimited user's pubsub ($RATE_MSGS messages of 16 B, delivered msgs/s)"
  echo
  echo "The neighbour's throughput with no limit configured, with a limit on another"
  echo "user that never triggers, and while that user floods at its 1,000 msgs/s."
  echo
  cat "$OUT/rate.md"
  echo
  echo "Focused measurements (monitoring, permissions and TLS cost, cluster) are in"
  echo "[benchmark-notes.md](benchmark-notes.md)."
  # Sections measured by hand (the WebSocket transport's) are kept.
  if [[ -n $kept ]]; then
    echo
    printf '%s\n' "$kept"
  fi
} >docs/benchmarks.md
echo "bench.sh: wrote docs/benchmarks.md (raw data in $OUT)"

# Scenario l leaves ~25,000 loopback sockets in TIME_WAIT, nearly the
# whole ephemeral port range: for a minute anything binding 127.0.0.1:0
# (the test suite) fails with "Address already in use". Wait them out.
if command -v ss >/dev/null; then
  for _ in $(seq 90); do
    waiting=$(ss -tan state time-wait 2>/dev/null | tail -n +2 | wc -l)
    ((waiting < 2000)) && break
    sleep 1
  done
  echo "bench.sh: $waiting sockets left in TIME_WAIT"
fi
