#!/usr/bin/env bash
# Measures what idle clients and subscriptions cost the server: starts the
# release binary, opens CONNECTIONS idle raw-protocol connections (CONNECT +
# PING/PONG each), reads the server's resident memory (VmRSS) before and
# after, then adds SUBS_PER_CONN subscriptions on distinct subjects to each
# connection and reads it again. Then the same over WebSocket (the upgrade,
# then CONNECT + PING/PONG in frames), on a fresh server.
#
#   scripts/resources.sh [CONNECTIONS] [SUBS_PER_CONN]    (default 10000 10)
#   WARDEN_BIN=path/to/warden scripts/resources.sh ...    (another build, such
#                                                          as a base commit's)
#
# Everything runs on 127.0.0.1. Needs python3 (the raw client,
# scripts/wsclient.py) and a file descriptor limit above CONNECTIONS (raised
# here up to the hard limit).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

conns=${1:-10000}
subs=${2:-10}
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < conns + 100)); then
  echo "resources.sh: the file descriptor limit $(ulimit -n) is too low for $conns connections" >&2
  exit 1
fi

# shellcheck source=scripts/measure-lib.sh
source scripts/measure-lib.sh

for transport in tcp websocket; do
start_warden "max_connections: $((conns + 10))"
echo "== $transport"
PYTHONPATH=scripts python3 - "$transport" "$port" "$wsport" "$pid" "$conns" "$subs" <<'PY'
import socket, sys, time
import wsclient

transport = sys.argv[1]
port, wsport, pid, conns, subs = (int(a) for a in sys.argv[2:])

def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("server gone")

def settle():
    # Let the allocator and the server's tasks settle, then take the median of a few readings.
    time.sleep(1.0)
    readings = []
    for _ in range(5):
        readings.append(rss())
        time.sleep(0.2)
    return sorted(readings)[2]

def until(sock, token):
    buf = b""
    while token not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"server closed a connection; got {buf[-200:]!r}")
        buf += chunk
    return buf

class Tcp:
    """A raw-protocol connection."""

    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send(self, data):
        self.sock.sendall(data)

    def until(self, token):
        until(self.sock, token)


class Ws:
    """The same over WebSocket."""

    def __init__(self):
        self.sock, self.frames = wsclient.upgrade("127.0.0.1", wsport)

    def send(self, data):
        self.sock.sendall(wsclient.frame(data))

    def until(self, token):
        self.frames.until(token)


def connect():
    for _ in range(100):
        try:
            c = Tcp() if transport == "tcp" else Ws()
            c.until(b"\r\n")  # INFO
            c.send(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nPING\r\n')
            c.until(b"PONG\r\n")
            return c
        except ConnectionRefusedError:
            time.sleep(0.05)
    raise SystemExit("server did not come up")

first = connect()  # warm-up: the runtime and its first connection
base = settle()
t0 = time.time()
socks = [connect() for _ in range(conns)]
took = time.time() - t0
with_conns = settle()
per_conn = (with_conns - base) / conns

for i, c in enumerate(socks):
    c.send(b"".join(b"SUB res.c%d.s%d %d\r\n" % (i, k, k) for k in range(subs)) + b"PING\r\n")
for c in socks:
    c.until(b"PONG\r\n")
with_subs = settle()
per_sub = (with_subs - with_conns) / (conns * subs)

mib = lambda b: b / (1024 * 1024)
print(f"server RSS: {mib(base):.1f} MiB at start (1 connection)")
print(f"            {mib(with_conns):.1f} MiB with {conns} idle connections (opened in {took:.1f} s)")
print(f"            {mib(with_subs):.1f} MiB with {conns * subs} subscriptions ({subs} per connection, distinct subjects)")
print(f"per idle connection: {per_conn:.0f} bytes")
print(f"per subscription:    {per_sub:.0f} bytes")
for c in socks + [first]:
    c.sock.close()
PY
stop_warden
done
