#!/usr/bin/env bash
# Side-by-side benchmark of warden against nats-server 2.9.10 (Debian's,
# /usr/sbin/nats-server) and nats-server 2.15.1 (target/pyenv/bin/nats-server,
# installed by scripts/python-deps.sh). Every server is started by its path,
# never found on PATH. Sections (-s, comma separated; default all, in this order):
#
#   compare    ../shared/bench/compare.sh (nats.go client, scenarios a-l, rounds
#              alternating), twice: 2.9.10 against warden, 2.15.1 against warden
#   svcimport  request/reply with the requester in account REQ and the responder
#              in SVC (service export/import), next to both in SVC, one config
#              file: latency and server CPU per request
#   ws         publish/subscribe through the WebSocket listener (no TLS), 16 B and
#              8 KiB, with natsbench (nats.go over ws://)
#   leaf       a leaf hop: publisher on a leaf server, subscriber on its hub
#   gateway    a gateway hop: two single-server clusters A and B joined by
#              gateways, publisher on A, subscriber on B
#   wbench     `warden bench` (fan-out, queue group, request/reply), all three servers
#   rate       rate limits (warden only)
#
# svcimport, ws, leaf and gateway run natsbench (the client compare.sh uses) on
# fresh servers, rounds alternating the three servers; the hops report server
# CPU per message summed over both servers. A run that fails (a server refuses
# its config or exits, nothing is delivered) is reported as failed, and the
# script goes on.
#
# The report has the date, commit and machine, one "warden / nats-server" table
# for both versions, and the list of scenarios where warden loses, each with its
# explanation from docs/benchmarks-why.md (written by hand). A full-size run of
# every section (no -s, -c or -x) rewrites docs/benchmarks.md, keeping the
# hand-measured sections after the "hand-measured" marker; any other run writes
# the report only to its output directory.
#
#   bash scripts/bench.sh [-r ROUNDS] [-x SCALE] [-q PCT] [-s SECTIONS] [-c SCENARIOS] [-o DIR]
#   bash scripts/bench.sh -R -o DIR    (the report again from DIR's raw data, e.g. after
#                                       editing docs/benchmarks-why.md; no servers run)
#     -r  rounds (default 3)
#     -x  scale message counts (default 1; -x 0.05 -r 1 is a smoke run of a few minutes)
#     -q  quiet gate: before each run wait (<= 180 s) until the machine's busy CPU
#         is below PCT % of one core (default 20; -q 300 runs at once on a busy
#         machine, and the report says which gate was used)
#     -s  sections (default compare,svcimport,ws,leaf,gateway,wbench,rate)
#     -c  compare.sh's scenarios (default a,b,c,d,e,f,g,h,i,j,k,l)
#     -o  output directory for raw data (default a new /tmp/warden-bench.XXXXXX)
#   WARDEN_BIN=path   measure that build instead of `cargo build --release`'s
#   CI=true           a missing nats-server 2.15.1 is an error (otherwise installed)
#   SHARED=dir        where shared/bench lives (default ../shared)
# Functions called by name (each_round, the EXIT trap) look unreachable to shellcheck:
# shellcheck disable=SC2317
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ALL_SECTIONS=compare,svcimport,ws,leaf,gateway,wbench,rate
ALL_SCENARIOS=a,b,c,d,e,f,g,h,i,j,k,l
ROUNDS=3
SCALE=1
QUIET=20
SECTIONS=$ALL_SECTIONS
SCENARIOS=$ALL_SCENARIOS
OUT=
REPORT_ONLY=0
usage() { awk 'NR > 1 && /^# Functions called by name/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
while getopts "r:x:q:s:c:o:Rh" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    x) SCALE=$OPTARG ;;
    q) QUIET=$OPTARG ;;
    s) SECTIONS=$OPTARG ;;
    c) SCENARIOS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    R) REPORT_ONLY=1 ;;
    *) usage >&2; exit 2 ;;
  esac
done
die() { echo "bench.sh: $*" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "-r wants 1..99"
[[ $QUIET =~ ^[0-9]+$ ]] || die "-q wants a whole percentage"
[[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || die "-x wants a positive number"
[[ $SCENARIOS =~ ^[a-l](,[a-l])*$ ]] || die "-c wants scenarios from a-l, comma separated"
for s in ${SECTIONS//,/ }; do
  [[ ,$ALL_SECTIONS, == *",$s,"* ]] || die "unknown section '$s' (sections: $ALL_SECTIONS)"
done
wants() { [[ ,$SECTIONS, == *",$1,"* ]]; }

SHARED=${SHARED:-$(cd .. && pwd)/shared}
[[ -f $SHARED/bench/compare.sh ]] || die "$SHARED/bench/compare.sh not found (set SHARED=...)"
WHY=docs/benchmarks-why.md
DOC=docs/benchmarks.md
# Sections of docs/benchmarks.md from this line on are measured by hand and kept.
KEEP_MARKER='<!-- hand-measured: bench.sh keeps everything below this line -->'

# ------------------------------------------------------------------ servers
N29=/usr/sbin/nats-server
N215=$(pwd)/target/pyenv/bin/nats-server
SERVERS=(n29 n215 warden)

server_version() { "$1" --version 2>&1 | awk '{ print $2 }'; }
reference_servers() {
  if [[ ! -x $N215 ]]; then
    [[ ${CI:-} == true ]] && die "nats-server 2.15.1 missing at $N215 (scripts/python-deps.sh installs it)"
    bash scripts/python-deps.sh
  fi
  [[ $(server_version "$N29") == v2.9.10 ]] || die "$N29 is $(server_version "$N29"), not v2.9.10"
  [[ $(server_version "$N215") == v2.15.1 ]] || die "$N215 is $(server_version "$N215"), not v2.15.1"
}
warden_binary() {
  if [[ -n ${WARDEN_BIN:-} ]]; then
    WARDEN=$(realpath "$WARDEN_BIN")
  else
    cargo build --release --locked --bin warden
    WARDEN=$(pwd)/target/release/warden
  fi
  [[ -x $WARDEN ]] || die "$WARDEN is not executable"
}
label() {
  case $1 in
    n29) echo "nats-server 2.9.10" ;;
    n215) echo "nats-server 2.15.1" ;;
    warden) echo "warden" ;;
  esac
}
# Sets ARGV to the command that runs server KEY on config file CONF.
server_argv() {
  case $1 in
    n29) ARGV=("$N29" -c "$2") ;;
    n215) ARGV=("$N215" -c "$2") ;;
    warden) ARGV=("$WARDEN" serve --config "$2" --log-level error) ;;
  esac
}
# compare.sh's command template for server KEY.
template() { server_argv "$1" '{CONF}'; echo "${ARGV[*]}"; }

# ------------------------------------------------------------------ processes and ports
PIDS=()
FLOODER=
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
NEXT_PORT=15000
# Sets PORTS to N ports nothing listens on, taken in turn from 15000-23999
# (below the ephemeral range and compare.sh's 24222 and up).
alloc_ports() {
  PORTS=()
  local tries
  for ((tries = 0; ${#PORTS[@]} < $1 && tries < 9000; tries++)); do
    NEXT_PORT=$((NEXT_PORT >= 23999 ? 15000 : NEXT_PORT + 1))
    port_open "$NEXT_PORT" || PORTS+=("$NEXT_PORT")
  done
  ((${#PORTS[@]} == $1)) || die "no free ports in 15000-23999"
}
# start_server KEY CONF LOG PORT...: starts server KEY and waits (<= 10 s a
# port) until it listens on every PORT; fails if it exits or never listens.
start_server() {
  local key=$1 conf=$2 log=$3 port i pid
  shift 3
  server_argv "$key" "$conf"
  "${ARGV[@]}" >"$log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for port in "$@"; do
    for ((i = 0; i < 100; i++)); do
      port_open "$port" && break
      kill -0 "$pid" 2>/dev/null || return 1
      sleep 0.1
    done
    port_open "$port" || return 1
  done
}
# Stops the given processes, last first (a leaf before its hub), each with
# SIGTERM and, if it is still there after 5 s, SIGKILL.
stop_pids() {
  local pids=("$@") i t
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    for ((t = 0; t < 50; t++)); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
stop_servers() { ((${#PIDS[@]})) && stop_pids "${PIDS[@]}"; PIDS=(); }
cleanup() {
  [[ -n $FLOODER ]] && stop_pids "$FLOODER"
  stop_servers
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# Waits (<= 180 s) until the machine's busy CPU over 1 s is below QUIET % of a core.
quiet_gate() {
  ((QUIET >= 200)) && return 0
  local i b0 b1 hz
  hz=$(getconf CLK_TCK)
  for ((i = 0; i < 180; i++)); do
    b0=$(busy_ticks)
    sleep 1
    b1=$(busy_ticks)
    (((b1 - b0) * 100 / hz < QUIET)) && return 0
  done
  echo "  (machine still busy after 180 s; running anyway)"
}
scaled() { awk -v n="$1" -v x="$SCALE" 'BEGIN { v = int(n * x); print (v < 1 ? 1 : v) }'; }
# Value of KEY in a natsbench RESULT line (empty if absent).
get() { if [[ " $2 " =~ \ $1=([^ ]*)\  ]]; then echo "${BASH_REMATCH[1]}"; fi; }

# Runs FUNC KEY ROUND for every round and server; even rounds reverse the order.
each_round() {
  local r key order
  for ((r = 1; r <= ROUNDS; r++)); do
    order=("${SERVERS[@]}")
    ((r % 2 == 0)) && order=(warden n215 n29)
    for key in "${order[@]}"; do "$1" "$key" "$r"; done
  done
}

# ------------------------------------------------------------------ natsbench runs
# measure SECTION CASE KEY ROUND CONF:PORT[:PORT...]... -- NATSBENCH_ARGS...
# Starts one server of kind KEY per CONF (in order, each waited for on its
# ports), runs natsbench with all their PIDs, stops them and appends
# "section case key round status RESULT" to extra.tsv. status: ok, failed,
# timeout, error (natsbench's), nostart (a server refused to start), died
# (a server exited during the run), noresult.
measure() {
  local section=$1 case=$2 key=$3 round=$4 n=0 status=ok spec result='' pids pid ports
  shift 4
  local logs="$OUT/$section/logs"
  local base="$logs/${case//[^A-Za-z0-9]/-}.$key.r$round"
  mkdir -p "$logs"
  quiet_gate
  while [[ $1 != -- ]]; do
    spec=$1
    shift
    n=$((n + 1))
    IFS=: read -r -a ports <<<"${spec#*:}"
    if [[ $status == ok ]] && ! start_server "$key" "${spec%%:*}" "$base.server$n.log" "${ports[@]}"; then
      status=nostart
    fi
  done
  shift
  if [[ $status == ok ]]; then
    pids=$(IFS=,; echo "${PIDS[*]}")
    timeout -k 5 100 "$NATSBENCH" -timeout 60s -label "$key" -server-pid "$pids" "$@" >"$base.client.log" 2>&1 || true
    result=$(grep '^RESULT ' "$base.client.log" | tail -1 || true)
    status=$(get status "$result")
    status=${status:-noresult}
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || status=died; done
  fi
  stop_servers
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$section" "$case" "$key" "$round" "$status" "$result" >>"$OUT/extra.tsv"
  printf '  r%s %-9s %-28s %-7s %-8s msgs/s=%s p50_us=%s srv_ns_per_msg=%s\n' "$round" "$section" "$case" "$key" "$status" \
    "$(get msgs_per_sec "$result")" "$(get p50_us "$result")" "$(get srv_ns_per_msg "$result")"
}

# ------------------------------------------------------------------ compare: scenarios a-l
compare_section() {
  local ref noisy=$((QUIET > 25 ? QUIET : 25))
  for ref in n29 n215; do
    echo "== compare.sh: $(label "$ref") against warden"
    bash "$SHARED/bench/compare.sh" -r "$ROUNDS" -x "$SCALE" -q "$QUIET" -n "$noisy" -s "$SCENARIOS" \
      -o "$OUT/compare-$ref" -l "$(label "$ref"),warden" "$(template "$ref")" "$(template warden)" |
      tee "$OUT/compare-$ref.log"
    [[ -s $OUT/compare-$ref/summary.md ]] || die "compare.sh wrote no summary (see $OUT/compare-$ref.log)"
  done
}

# ------------------------------------------------------------------ svcimport: request/reply across accounts
svcimport_conf() { # port
  cat <<CONF
listen: 127.0.0.1:$1
accounts {
  REQ { users = [ { user: req, password: reqpass } ], imports = [ { service: { account: SVC, subject: "svc.echo" } } ] }
  SVC { users = [ { user: svc, password: svcpass } ], exports = [ { service: "svc.echo" } ] }
}
CONF
}
svcimport_run() { # key round
  local n warmup c conf name user pass
  n=$(scaled 20000)
  warmup=$((n < 1000 ? n : 1000))
  for c in "same account:svc:svcpass" "service import:req:reqpass"; do
    IFS=: read -r name user pass <<<"$c"
    alloc_ports 1
    conf="$OUT/svcimport/conf/${user}.$1.r$2.conf"
    svcimport_conf "${PORTS[0]}" >"$conf"
    measure svcimport "$name" "$1" "$2" "$conf:${PORTS[0]}" -- -s "nats://127.0.0.1:${PORTS[0]}" \
      -mode reqrep -n "$n" -warmup "$warmup" -ms 16 -subj svc.echo -user "$user" -pass "$pass" -sub-user svc -sub-pass svcpass
  done
}

# ------------------------------------------------------------------ ws: pub/sub over WebSocket
ws_run() { # key round
  local c conf name size count
  for c in "1 pub -> 1 sub, 16 B:16:3000000" "1 pub -> 1 sub, 8 KiB:8192:150000"; do
    IFS=: read -r name size count <<<"$c"
    alloc_ports 2
    conf="$OUT/ws/conf/$size.$1.r$2.conf"
    printf 'listen: 127.0.0.1:%s\nwebsocket { listen: "127.0.0.1:%s", no_tls: true }\n' "${PORTS[@]}" >"$conf"
    measure ws "$name" "$1" "$2" "$conf:${PORTS[0]}:${PORTS[1]}" -- -s "ws://127.0.0.1:${PORTS[1]}" \
      -mode pubsub -np 1 -ns 1 -n "$(scaled "$count")" -ms "$size"
  done
}

# ------------------------------------------------------------------ leaf and gateway hops
HOP_MSGS=2000000
leaf_run() { # key round
  local dir="$OUT/leaf/conf" hub leaf
  alloc_ports 3 # hub clients, hub leafnodes, leaf clients
  hub="$dir/hub.$1.r$2.conf"
  leaf="$dir/leaf.$1.r$2.conf"
  printf 'listen: 127.0.0.1:%s\nleafnodes { listen: 127.0.0.1:%s, authorization { user: leaf, password: leafpass } }\n' \
    "${PORTS[0]}" "${PORTS[1]}" >"$hub"
  printf 'listen: 127.0.0.1:%s\nleafnodes { remotes = [ { url: "nats-leaf://leaf:leafpass@127.0.0.1:%s" } ] }\n' \
    "${PORTS[2]}" "${PORTS[1]}" >"$leaf"
  measure leaf "leaf -> hub, 16 B" "$1" "$2" "$hub:${PORTS[0]}:${PORTS[1]}" "$leaf:${PORTS[2]}" -- \
    -s "nats://127.0.0.1:${PORTS[2]}" -sub-s "nats://127.0.0.1:${PORTS[0]}" -mode pubsub -np 1 -ns 1 -n "$(scaled "$HOP_MSGS")" -ms 16
}
gateway_conf() { # name client-port gateway-port gateway-port-of-A gateway-port-of-B
  cat <<CONF
server_name: gw-$1
listen: 127.0.0.1:$2
gateway {
  name: $1
  listen: 127.0.0.1:$3
  authorization { user: gw, password: gwpass }
  gateways = [
    { name: A, urls: ["nats://gw:gwpass@127.0.0.1:$4"] }
    { name: B, urls: ["nats://gw:gwpass@127.0.0.1:$5"] }
  ]
}
CONF
}
gateway_run() { # key round
  local dir="$OUT/gateway/conf" a b
  alloc_ports 4 # A clients, A gateway, B clients, B gateway
  a="$dir/A.$1.r$2.conf"
  b="$dir/B.$1.r$2.conf"
  gateway_conf A "${PORTS[0]}" "${PORTS[1]}" "${PORTS[1]}" "${PORTS[3]}" >"$a"
  gateway_conf B "${PORTS[2]}" "${PORTS[3]}" "${PORTS[1]}" "${PORTS[3]}" >"$b"
  # natsbench -sub-s publishes probes on A until the subscriber on B gets one
  # (the gateway is up and B's interest known), at most 15 s, then times.
  measure gateway "A -> B, 16 B" "$1" "$2" "$a:${PORTS[0]}:${PORTS[1]}" "$b:${PORTS[2]}:${PORTS[3]}" -- \
    -s "nats://127.0.0.1:${PORTS[0]}" -sub-s "nats://127.0.0.1:${PORTS[2]}" -mode pubsub -np 1 -ns 1 -n "$(scaled "$HOP_MSGS")" -ms 16
}

natsbench_section() { # section
  mkdir -p "$OUT/$1/conf"
  echo "== $1"
  each_round "$1_run"
}

# ------------------------------------------------------------------ wbench: warden bench client
wbench_section() {
  local key conf s
  mkdir -p "$OUT/wbench"
  : >"$OUT/wbench/report.md"
  echo "== warden bench"
  for key in "${SERVERS[@]}"; do
    alloc_ports 1
    conf="$OUT/wbench/$key.conf"
    s=nats://127.0.0.1:${PORTS[0]}
    printf 'listen: 127.0.0.1:%s\n' "${PORTS[0]}" >"$conf"
    quiet_gate
    if start_server "$key" "$conf" "$OUT/wbench/$key.server.log" "${PORTS[0]}"; then
      {
        echo "#### $(label "$key")"
        echo
        "$WARDEN" bench pubsub -s "$s" -n "$(scaled 2000000)" --subs 4 || echo "(failed)"
        echo
        "$WARDEN" bench queue -s "$s" -n "$(scaled 2000000)" --subs 4 || echo "(failed)"
        echo
        "$WARDEN" bench reqrep -s "$s" -n "$(scaled 20000)" || echo "(failed)"
        echo
      } >>"$OUT/wbench/report.md" 2>"$OUT/wbench/$key.client.log"
    else
      printf '#### %s\n\nfailed: the server did not start (%s)\n\n' "$(label "$key")" "$OUT/wbench/$key.server.log" >>"$OUT/wbench/report.md"
    fi
    stop_servers
  done
}

# ------------------------------------------------------------------ rate: rate limits (warden only)
# The same pubsub run by an unlimited user on a server with no limit
# configured, on one where another user has a rate_limit but is idle, and
# while that user floods (held to 1,000 msgs/s by backpressure).
rate_run() { # config idle|flood -> delivered msgs/s
  local dir="$OUT/rate" s
  alloc_ports 1
  s=nats://127.0.0.1:${PORTS[0]}
  sed "s/{PORT}/${PORTS[0]}/" "$dir/$1.conf.in" >"$dir/$1.conf"
  quiet_gate >&2
  start_server warden "$dir/$1.conf" "$dir/server.$1.$2.log" "${PORTS[0]}" || { echo failed; stop_servers; return; }
  if [[ $2 == flood ]]; then
    "$WARDEN" bench pub -s "$s" --user flood --pass flood-pw --subject flood.x -n 1000000000 --timeout 600 >/dev/null 2>&1 &
    FLOODER=$!
    sleep 2 # past its burst: held back from here on
  fi
  "$WARDEN" bench pubsub -s "$s" --user calm --pass calm-pw -n "$(scaled 1000000)" --subs 1 2>>"$dir/client.log" |
    awk -F'|' '/^\| PubSub/ { gsub(/ /, ""); print $8; found = 1 } END { if (!found) print "failed" }'
  if [[ -n $FLOODER ]]; then
    stop_pids "$FLOODER"
    FLOODER=
  fi
  stop_servers
}
rate_section() {
  local dir="$OUT/rate" r users
  mkdir -p "$dir"
  echo "== rate limits"
  users='{user: calm, password: calm-pw}, {user: flood, password: flood-pw'
  printf 'listen: 127.0.0.1:{PORT}\nauthorization { users: [ %s} ] }\n' "$users" >"$dir/none.conf.in"
  printf 'listen: 127.0.0.1:{PORT}\nauthorization { users: [ %s, rate_limit: { msgs_per_sec: 1000 }} ] }\n' "$users" >"$dir/limited.conf.in"
  {
    echo "| round | no limit configured | another user limited, idle | another user limited, flooding |"
    echo "|---|---:|---:|---:|"
    for ((r = 1; r <= ROUNDS; r++)); do
      echo "| $r | $(rate_run none idle) | $(rate_run limited idle) | $(rate_run limited flood) |"
    done
  } | tee "$dir/report.md"
}

# ------------------------------------------------------------------ summaries
# Lower is better for latencies, CPU and memory; higher for rates.
LOWER_BETTER='(_us|_ns_per_msg|_us_per_conn|_bytes)$'

# ratios.tsv: key, description, metric, warden/2.9.10, warden/2.15.1 (medians;
# "-" if unknown, "failed" if warden failed where nats-server did not).
compare_ratios() {
  local ref
  for ref in n29 n215; do
    awk -F'|' -v ref="$ref" '
      /^Scenarios: / { n = split(substr($0, 12), d, "; "); for (i = 1; i <= n; i++) if (split(d[i], kv, " = ") == 2) desc[kv[1]] = kv[2] }
      /^\| [a-l] \| [A-Za-z]/ {
        for (i = 2; i <= 8; i++) gsub(/ /, "", $i)
        # no warden median where nats-server has one: every warden run of it failed
        print $2 "\t" desc[$2] "\t" $3 "\t" ref "\t" (($6 == "-" && $4 != "-") ? "failed" : $8)
      }
    ' "$OUT/compare-$ref/summary.md"
  done | awk -F'\t' '
    { k = $1 "\t" $2 "\t" $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k } r[k, $4] = $5 }
    END { for (i = 1; i <= n; i++) { k = order[i]; a = r[k, "n29"]; b = r[k, "n215"]; print k "\t" (a == "" ? "-" : a) "\t" (b == "" ? "-" : b) } }'
}

# The natsbench sections' medians per case: a markdown table with the three
# servers' figures, or (ratios = 1) ratios.tsv rows.
extra_summary() { # section ratios(0|1)
  awk -F'\t' -v want="$1" -v ratios="$2" '
    function median(arr, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
      return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
    }
    function med(c, key, m,   i, a, n) {
      n = 0
      for (i = 1; i <= rows; i++) if (C[i] == c && K[i] == key && ST[i] == "ok" && (i, m) in V) a[++n] = V[i, m]
      return n ? median(a, n) : ""
    }
    function cell(c, key, m,   v) {
      v = med(c, key, m)
      if (v != "") return (v >= 100 ? sprintf("%.0f", v) : sprintf("%.1f", v))
      return ((c, key) in bad) ? "failed (" bad[c, key] ")" : "-"
    }
    function ratio(c, key, m,   a, b) {
      a = med(c, key, m); b = med(c, "warden", m)
      if (a != "" && b != "" && a != 0) return sprintf("%.3f", b / a)
      return (a != "" && b == "" && (c, "warden") in bad) ? "failed" : "-"
    }
    BEGIN { nm = split(want == "svcimport" ? "p50_us p99_us srv_ns_per_msg" : "msgs_per_sec srv_ns_per_msg", M, " ") }
    $1 == want {
      rows++; C[rows] = $2; K[rows] = $3; ST[rows] = $5
      if (!($2 in seen)) { seen[$2] = 1; order[++nc] = $2 }
      if ($5 != "ok") bad[$2, $3] = $5
      for (q = 1; q <= nm; q++) if (match($6, " " M[q] "=[0-9.]+")) V[rows, M[q]] = substr($6, RSTART + length(M[q]) + 2, RLENGTH - length(M[q]) - 2) + 0
    }
    END {
      if (!ratios) {
        print "| case | metric | nats-server 2.9.10 | nats-server 2.15.1 | warden | warden / 2.9.10 | warden / 2.15.1 |"
        print "|---|---|---:|---:|---:|---:|---:|"
      }
      for (i = 1; i <= nc; i++) for (q = 1; q <= nm; q++) {
        c = order[i]; m = M[q]
        if (ratios) print want "\t" c "\t" m "\t" ratio(c, "n29", m) "\t" ratio(c, "n215", m)
        else print "| " c " | " m " | " cell(c, "n29", m) " | " cell(c, "n215", m) " | " cell(c, "warden", m) " | " ratio(c, "n29", m) " | " ratio(c, "n215", m) " |"
      }
    }
  ' "$OUT/extra.tsv"
}

ratio_table() { # ratios.tsv
  echo "| scenario | metric | warden / nats-server 2.9.10 | warden / nats-server 2.15.1 |"
  echo "|---|---|---:|---:|"
  awk -F'\t' '{ d = ($2 == "" ? $1 : $1 " (" $2 ")"); print "| " d " | " $3 " | " $4 " | " $5 " |" }' "$1"
}

# The scenarios where warden loses to either version: one line per scenario
# (key, description, what, 1 if every loss is within 5 %).
losses() { # ratios.tsv
  awk -F'\t' -v lower="$LOWER_BETTER" '
    function worse(r, m) { if (r == "failed") return 1; if (r !~ /^[0-9.]+$/) return 0; return (m ~ lower) ? r > 1 : r < 1 }
    function noise(r) { return r ~ /^[0-9.]+$/ && r >= 0.95 && r <= 1.05 }
    {
      w29 = worse($4, $3); w215 = worse($5, $3)
      if (!w29 && !w215) next
      g = $1 SUBSEP $2
      if (!(g in seen)) { seen[g] = 1; order[++n] = g; small[g] = 1 }
      if ($4 == "failed" || $5 == "failed") { if (failed[g]++) next; what = "warden'"'"'s runs failed (its section below says why)" }
      else what = $3 " " (w29 ? $4 " against 2.9.10" : "") (w29 && w215 ? ", " : "") (w215 ? $5 " against 2.15.1" : "")
      items[g] = items[g] (items[g] == "" ? "" : "; ") what
      if ((w29 && !noise($4)) || (w215 && !noise($5))) small[g] = 0
    }
    END { for (i = 1; i <= n; i++) { g = order[i]; split(g, kd, SUBSEP); print kd[1] "\t" kd[2] "\t" items[g] "\t" small[g] } }
  ' "$1"
}
# The explanation under "## KEY" in docs/benchmarks-why.md (KEY: a-l or a section name).
why_for() {
  [[ -f $WHY ]] || return 0
  awk -v key="$1" '
    /^## / { on = ($2 == key); next }
    on { buf[++n] = $0; if ($0 ~ /[^ ]/) { last = n; if (!first) first = n } }
    END { for (i = first; first && i <= last; i++) print buf[i] }
  ' "$WHY"
}
losses_md() { # ratios.tsv
  local key desc items small why explained=,
  while IFS=$'\t' read -r key desc items small; do
    printf -- '- **%s**%s: %s' "$key" "${desc:+ ($desc)}" "$items"
    ((small)) && printf ' (every loss within 5 %%: noise on this machine)'
    printf '\n'
    [[ $explained == *",$key,"* ]] && continue
    explained+="$key,"
    why=$(why_for "$key")
    if [[ -n $why ]]; then
      printf '%s\n' "$why" | sed 's/^/  /'
    else
      printf '  _No explanation yet: add a "## %s" entry to %s._\n' "$key" "$WHY"
    fi
  done < <(losses "$1")
  [[ $explained != , ]] || echo "None: warden is at least as good as both versions on every metric measured."
}

failures_md() { # the servers that did not start or exited, with the last line of their log
  [[ -s $OUT/extra.tsv ]] || return 0
  awk -F'\t' '$5 != "ok" { print $1 "\t" $2 "\t" $3 "\t" $4 "\t" $5 }' "$OUT/extra.tsv" |
    while IFS=$'\t' read -r section case key round status; do
      local base="$OUT/$section/logs/${case//[^A-Za-z0-9]/-}.$key.r$round" last
      last=$(cat "$base".server*.log "$base.client.log" 2>/dev/null | grep -v '^\s*$' | grep -iE 'error|refus|fail|not support' | head -1 | tr '`' "'" | cut -c1-240 || true)
      printf -- '- %s, %s, %s, round %s: %s%s\n' "$section" "$case" "$(label "$key")" "$round" "$status" "${last:+: \`$last\`}"
    done
}

report() {
  local ratios="$OUT/ratios.tsv" s
  : >"$ratios"
  wants compare && compare_ratios >>"$ratios"
  for s in svcimport ws leaf gateway; do wants $s && extra_summary $s 1 >>"$ratios"; done
  echo "# Benchmarks"
  echo
  echo "Made by \`bash scripts/bench.sh$(printf ' %s' "${ARGS[@]}")\` on $RUN_DATE, commit $RUN_COMMIT."
  echo "Machine: $RUN_MACHINE; load average at the start: $LOAD_START, at the end: $LOAD_END."
  echo "Servers: $RUN_SERVERS."
  echo "Rounds: $ROUNDS, scale: $SCALE, quiet gate: $QUIET % of a core$( ((QUIET >= 200)) && echo ' (off: figures from a busy machine)'). Raw data: \`$OUT\`."
  echo "Compare figures only within one run: the machine is shared and absolute numbers move by 15% or more."
  echo
  echo "## Summary: warden / nats-server"
  echo
  echo "Ratios of medians, warden's over nats-server's, from the sections below. Rates: above 1 is"
  echo "better for warden; latency, server CPU (\`srv_ns_per_msg\`, \`srv_us_per_conn\`) and memory"
  echo "(\`_bytes\`): below 1 is better."
  echo
  ratio_table "$ratios"
  echo
  echo "## Where warden loses"
  echo
  echo "Every scenario above where warden's ratio is worse than 1.0 against either version (or its"
  echo "run failed), listed by the script; the explanations come from [benchmarks-why.md](benchmarks-why.md)."
  echo
  losses_md "$ratios"
  if wants compare; then
    local ref
    for ref in n29 n215; do
      echo
      echo "## Side by side with $(label "$ref") (shared/bench/compare.sh, nats.go client)"
      echo
      echo "A = $(label "$ref"), B = warden. Raw data: \`$OUT/compare-$ref\`."
      cat "$OUT/compare-$ref/summary.md"
    done
  fi
  if wants svcimport; then
    echo
    echo "## Request/reply through a service import"
    echo
    echo "natsbench \`-mode reqrep\` ($(scaled 20000) sequential requests of 16 B on \`svc.echo\`), one config file:"
    echo "account SVC exports the service \`svc.echo\`, account REQ imports it. \"same account\": requester and"
    echo "responder both log in as SVC's user; \"service import\": the requester logs in as REQ's user, so"
    echo "every request crosses the import and its reply comes back through the \`_R_\` reply mapping."
    echo "srv_ns_per_msg is server CPU per request. Medians over $ROUNDS rounds; raw data: \`$OUT/svcimport\`."
    echo
    extra_summary svcimport 0
  fi
  if wants ws; then
    echo
    echo "## WebSocket: publish/subscribe through the WebSocket listener"
    echo
    echo "natsbench \`-mode pubsub\` with nats.go's own WebSocket transport (\`-s ws://...\`: the publisher"
    echo "and the subscriber both connect over WebSocket, no TLS: \`websocket { listen, no_tls: true }\`),"
    echo "1 publisher -> 1 subscriber, $(scaled 3000000) messages of 16 B and $(scaled 150000) of 8 KiB."
    echo "Medians over $ROUNDS rounds; raw data: \`$OUT/ws\`."
    echo
    extra_summary ws 0
  fi
  if wants leaf; then
    echo
    echo "## Leaf hop"
    echo
    echo "A publisher on a leaf server, its subscriber on the hub, one leaf connection (user and"
    echo "password) between them; natsbench \`-sub-s\`, $(scaled "$HOP_MSGS") messages of 16 B, timed after a probe"
    echo "crossed the hop. srv_ns_per_msg: CPU of both servers per message. Raw data: \`$OUT/leaf\`."
    echo
    extra_summary leaf 0
  fi
  if wants gateway; then
    echo
    echo "## Gateway hop"
    echo
    echo "Two single-server clusters A and B joined by gateways (user and password on the gateway"
    echo "port), publisher on A, subscriber on B; natsbench \`-sub-s\`, $(scaled "$HOP_MSGS") messages of 16 B, timed"
    echo "after a probe published on A reached the subscriber on B (at most 15 s). srv_ns_per_msg: CPU"
    echo "of both servers per message. Raw data: \`$OUT/gateway\`."
    echo
    extra_summary gateway 0
  fi
  local failed
  failed=$(failures_md)
  if [[ -n $failed ]]; then
    echo
    echo "Runs that failed (the first error line of the server's or client's log):"
    echo
    printf '%s\n' "$failed"
  fi
  if wants wbench; then
    echo
    echo "## warden bench against the three servers"
    echo
    cat "$OUT/wbench/report.md"
  fi
  if wants rate; then
    echo
    echo "## Rate limits: an unlimited user's pubsub ($(scaled 1000000) messages of 16 B, delivered msgs/s)"
    echo
    echo "The neighbour's throughput with no limit configured, with a limit on another"
    echo "user that never triggers, and while that user floods at its 1,000 msgs/s."
    echo
    cat "$OUT/rate/report.md"
  fi
  echo
  echo "Focused measurements (monitoring, permissions and TLS cost, cluster) are in"
  echo "[benchmark-notes.md](benchmark-notes.md)."
}

# Scenario l leaves ~25,000 loopback sockets in TIME_WAIT, nearly the
# whole ephemeral port range: for a minute anything binding 127.0.0.1:0
# (the test suite) fails with "Address already in use". Wait them out.
drain_time_wait() {
  command -v ss >/dev/null || return 0
  local waiting=0
  for _ in $(seq 90); do
    waiting=$(ss -tan state time-wait 2>/dev/null | tail -n +2 | wc -l)
    ((waiting < 2000)) && break
    sleep 1
  done
  echo "bench.sh: $waiting sockets left in TIME_WAIT"
}

# What the report says about the run, saved with its raw data for -R.
RUN_VARS=(ARGS ROUNDS SCALE QUIET SECTIONS SCENARIOS RUN_DATE RUN_COMMIT RUN_MACHINE RUN_SERVERS LOAD_START LOAD_END)
run_facts() {
  RUN_DATE=$(date -u +%Y-%m-%dT%H:%MZ)
  RUN_COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (with uncommitted changes)')
  RUN_MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
  RUN_SERVERS="nats-server $(server_version "$N29") ($N29), nats-server $(server_version "$N215") (target/pyenv/bin/nats-server), warden $("$WARDEN" --version 2>/dev/null | awk '{ print $2 }') (${WARDEN_BIN:+WARDEN_BIN=}$WARDEN)"
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
}

# ------------------------------------------------------------------ main
started=$SECONDS
if ((REPORT_ONLY)); then
  [[ -n $OUT && -f $OUT/run.env ]] || die "-R needs -o DIR, the output directory of an earlier run"
  # shellcheck source=/dev/null
  source "$OUT/run.env"
else
  ARGS=("$@")
  reference_servers
  warden_binary
  bash "$SHARED/bench/build.sh"
  NATSBENCH=${NATSBENCH:-${BENCH_WORK:-$HOME/.cache/warden-bench}/bin/natsbench}
  OUT=${OUT:-$(mktemp -d /tmp/warden-bench.XXXXXX)}
  mkdir -p "$OUT"
  : >"$OUT/extra.tsv"
  run_facts

  wants compare && compare_section
  for s in svcimport ws leaf gateway; do
    if wants $s; then natsbench_section $s; fi
  done
  wants wbench && wbench_section
  wants rate && rate_section
  LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
  declare -p "${RUN_VARS[@]}" >"$OUT/run.env"
fi

report >"$OUT/benchmarks.md"
echo "bench.sh: report in $OUT/benchmarks.md"
if [[ $SECTIONS == "$ALL_SECTIONS" && $SCENARIOS == "$ALL_SCENARIOS" && $SCALE == 1 ]]; then
  kept=$(sed -n "/^$KEEP_MARKER\$/,\$p" "$DOC" 2>/dev/null || true)
  [[ -n $kept ]] || kept=$(printf '%s\n\n%s' "$KEEP_MARKER" "$(sed -n '/^## WebSocket transport/,$p' "$DOC" 2>/dev/null || true)")
  { cat "$OUT/benchmarks.md"; echo; printf '%s\n' "$kept"; } >"$DOC"
  echo "bench.sh: wrote $DOC"
else
  echo "bench.sh: not a full run of every section: $DOC left as it is"
fi
((REPORT_ONLY)) || ! wants compare || drain_time_wait
echo "bench.sh: sections $SECTIONS took $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
exit 0
