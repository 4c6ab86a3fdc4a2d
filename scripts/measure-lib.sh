# Sourced by the measurement scripts (resources.sh, ws-throughput.sh): the
# server binary ($WARDEN_BIN, else this tree's release build), a scratch
# folder $dir removed at exit, and start_warden [EXTRA_CONFIG], which starts
# a server with a client and a WebSocket listener on free ports of
# 127.0.0.1 and sets $port, $wsport and $pid; stop_warden ends it.
bin=${WARDEN_BIN:-}
if [[ -z $bin ]]; then
  cargo build --release --locked --bin warden
  bin=target/release/warden
fi
dir=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_warden() {
  port=$(free_port)
  wsport=$(free_port)
  cat >"$dir/warden.conf" <<CONF
listen: 127.0.0.1:$port
websocket { listen: "127.0.0.1:$wsport", no_tls: true }
${1:-}
CONF
  "$bin" serve --config "$dir/warden.conf" --log-level warn 2>"$dir/log" &
  pid=$!
}

stop_warden() {
  kill "$pid" && wait "$pid" 2>/dev/null || true
}
