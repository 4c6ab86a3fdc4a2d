#!/usr/bin/env bash
# Publish/subscribe throughput over WebSocket (and over TCP, for scale):
# one publisher pipelines MESSAGES messages of SIZE bytes in 64 KiB frames,
# one subscriber receives them; the time is from the first publish to the
# last byte received. Also the server's CPU time (user + system) per
# message, which a busy machine disturbs less than the rate. Each transport
# runs ROUNDS times on a fresh server and the medians are reported.
#
#   scripts/ws-throughput.sh [MESSAGES] [SIZE] [ROUNDS]     (default 1000000 128 3)
#   WARDEN_BIN=path/to/warden scripts/ws-throughput.sh ...  (another build)
#
# Everything runs on 127.0.0.1; the client is python3 (scripts/wsclient.py),
# a publisher and a subscriber process.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

messages=${1:-1000000}
size=${2:-128}
rounds=${3:-3}
# shellcheck source=scripts/measure-lib.sh
source scripts/measure-lib.sh

for transport in websocket tcp; do
  for _ in $(seq "$rounds"); do
    start_warden
    PYTHONPATH=scripts python3 - "$transport" "$port" "$wsport" "$messages" "$size" "$pid" <<'PY'
import multiprocessing, os, socket, sys, time
import wsclient

transport = sys.argv[1]
port, wsport, messages, size, pid = (int(a) for a in sys.argv[2:])


def server_cpu():
    """The server's user + system CPU seconds so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Conn:
    """A client connection, raw protocol over TCP or in WebSocket frames."""

    def __init__(self):
        for _ in range(100):
            try:
                if transport == "tcp":
                    self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                    self.frames = None
                else:
                    self.sock, self.frames = wsclient.upgrade("127.0.0.1", wsport, timeout=30)
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        else:
            raise SystemExit("server did not come up")
        self.until(b"\r\n")
        self.send(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n')

    def wire(self, data):
        return data if self.frames is None else wsclient.frame(data)

    def send(self, data):
        self.sock.sendall(self.wire(data))

    def recv(self):
        if self.frames is None:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise SystemExit("server closed the connection")
            return chunk
        return self.frames.payloads()

    def until(self, token):
        buf = b""
        while token not in buf:
            buf += self.recv()
        return buf


def publish(ready, go):
    pub = Conn()
    pub.send(b"PING\r\n")
    pub.until(b"PONG\r\n")
    one = b"PUB bench %d\r\n" % size + b"x" * size + b"\r\n"
    per_frame = max(1, (64 * 1024) // len(one))
    batch = pub.wire(one * per_frame)
    ready.set()
    go.wait()
    for _ in range(messages // per_frame):
        pub.sock.sendall(batch)
    rest = messages % per_frame
    if rest:
        pub.send(one * rest)
    pub.send(b"PING\r\n")
    pub.until(b"PONG\r\n")


sub = Conn()
sub.send(b"SUB bench 1\r\nPING\r\n")
sub.until(b"PONG\r\n")
ready, go = multiprocessing.Event(), multiprocessing.Event()
publisher = multiprocessing.Process(target=publish, args=(ready, go))
publisher.start()
ready.wait()
want = messages * len(b"MSG bench 1 %d\r\n" % size + b"x" * size + b"\r\n")
got = 0
cpu0 = server_cpu()
go.set()
t0 = time.perf_counter()
while got < want:
    got += len(sub.recv())
took = time.perf_counter() - t0
cpu = server_cpu() - cpu0
publisher.join()
print(
    f"{transport} {messages / took:.0f} msgs/s {cpu / messages * 1e9:.0f} server-ns/msg"
    f" {messages * size / took / 1e6:.1f} MB/s payload ({took:.2f} s)",
    flush=True,
)
PY
    stop_warden
  done
done | tee "$dir/out"
python3 - "$dir/out" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1]):
    transport, rate, _, ns = line.split()[:4]
    runs.setdefault(transport, []).append((float(rate), float(ns)))
median = lambda xs: sorted(xs)[len(xs) // 2]
for transport, r in runs.items():
    rate, ns = median([x[0] for x in r]), median([x[1] for x in r])
    print(f"median {transport}: {rate:.0f} msgs/s, {ns:.0f} server CPU ns/msg over {len(r)} rounds")
PY
