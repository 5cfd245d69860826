"""Talking to a running `python -m tcp_worker` and reading what it stored
(the `start_worker` fixture is in tests/integration/conftest.py)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tcpws.protocol import STREAM_KEY, entry_from_stream
from testkit.procs import Proc

StartWorker = Callable[..., tuple[Proc, int]]


def stored_lines(client: redis.Redis) -> list[str]:
    entries = [entry_from_stream(i, f) for i, f in client.xrange(STREAM_KEY)]
    return [line for e in entries for line in e.lines]


def heartbeat(client: redis.Redis, port: int) -> dict[str, str]:
    for key in client.scan_iter("tcpws:worker:*"):
        fields = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        if fields.get("port") == str(port):
            return fields
    return {}


@dataclass(frozen=True)
class Dialer:
    """How a test reaches a worker: plain TCP, or TLS (`args` are the
    worker's flags for it, `context` trusts the test's CA)."""

    args: tuple[str, ...] = ()
    context: ssl.SSLContext | None = None

    def connect(self, port: int, timeout: float = 10) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if self.context is None:
            return sock
        return self.context.wrap_socket(sock, server_hostname="127.0.0.1")


def read_acks(sock: socket.socket, want: int, timeout: float = 15) -> int:
    """Sum the `+N` acks read until they reach `want` (or the worker closes)."""
    sock.settimeout(timeout)
    data = b""
    while sum(int(n[1:]) for n in data.split(b"\n") if n) < want:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return sum(int(n[1:]) for n in data.split(b"\n") if n)
