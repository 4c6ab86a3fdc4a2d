"""A minimal raw WebSocket client for the measurement scripts
(resources.sh, ws-throughput.sh): the upgrade, masked binary frames out,
and the server's frames back as the NATS byte stream. No compression, no
TLS: it measures the server, so it does as little as it can itself."""

import os
import socket
import struct


def upgrade(host, port, timeout=10):
    """A socket on which the upgrade to WebSocket is done; returns (socket, stream)."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(
        b"GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (host.encode(), port)
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit(f"server closed during the upgrade; got {head!r}")
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"upgrade refused: {head!r}")
    return s, Frames(s, rest)


def frame(payload, mask=None):
    """A client frame (final, binary, masked) carrying `payload`."""
    mask = mask or os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x82, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x82, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x82, 0x80 | 127, n)
    # XOR with the mask repeated, done on big integers (fast in CPython).
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
    return head + mask + masked


class Frames:
    """The server's frames on a socket, as the byte stream they carry."""

    def __init__(self, sock, raw=b""):
        self.sock, self.raw = sock, raw

    def payloads(self):
        """The payload of the complete frames buffered, receiving until
        there is one (raises on a close)."""
        out = self.parse()
        while not out:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise SystemExit("server closed a WebSocket connection")
            self.raw += chunk
            out = self.parse()
        return out

    def parse(self):
        out, at, raw = [], 0, self.raw
        while len(raw) - at >= 2:
            b0, b1 = raw[at], raw[at + 1] & 0x7F
            hl = 2 + {126: 2, 127: 8}.get(b1, 0)
            if len(raw) - at < hl:
                break
            n = b1 if b1 < 126 else int.from_bytes(raw[at + 2 : at + hl], "big")
            if len(raw) - at < hl + n:
                break
            if b0 & 0x0F == 8:
                raise SystemExit(f"server sent a close: {raw[at + hl : at + hl + n]!r}")
            out.append(raw[at + hl : at + hl + n])
            at += hl + n
        self.raw = raw[at:]
        return b"".join(out)

    def until(self, token):
        buf = b""
        while token not in buf:
            buf += self.payloads()
        return buf
