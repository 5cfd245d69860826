"""Senders for the TCP TLS / PROXY protocol tests: a steady sender on one
connection (TLS or plain, a PROXY header first if asked) that checks its
`+N` acks, and what the system stored, read back over /ws from the start."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import urllib.request
from typing import Any

from websockets.sync.client import connect

from testkit.procs import wait_until


def proxy_v1(source: str, sport: int, dport: int) -> bytes:
    family = "TCP6" if ":" in source else "TCP4"
    dest = "::1" if family == "TCP6" else "127.0.0.1"
    return f"PROXY {family} {source} {dest} {sport} {dport}\r\n".encode()


def open_sender(port: int, context: ssl.SSLContext | None = None, header: bytes = b"",
                source: str = "") -> socket.socket:
    """A connection to `port` (from `source` if given), `header` first, then TLS."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                    source_address=(source, 0) if source else None)
    if header:
        sock.sendall(header)
    if context is not None:
        return context.wrap_socket(sock, server_hostname="127.0.0.1")
    return sock


class SteadySender(threading.Thread):
    """Lines on one connection until stopped; with `ack`, waits at the end
    until every line is acknowledged (`acked`). Reconnects on a reset only
    if `reconnect` (a killed worker), counting refusals."""

    def __init__(self, port: int, prefix: str, context: ssl.SSLContext | None = None,
                 header: bytes = b"", ack: bool = False, reconnect: bool = False,
                 source: str = "") -> None:
        super().__init__(daemon=True)
        self.port, self.prefix, self.context, self.header = port, prefix, context, header
        self.ack, self.reconnect, self.source = ack, reconnect, source
        self.sent: list[str] = []
        self.acked = 0
        self.written = 0  # lines written so far (`sent` holds them once done with)
        self.refused = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def _session(self) -> None:
        with open_sender(self.port, self.context, self.header, self.source) as sock:
            acked_here = 0
            unconfirmed: list[str] = []
            while not self.stop.is_set():
                line = f"{self.prefix}-{len(self.sent) + len(unconfirmed)}"
                sock.sendall(line.encode() + b"\n")
                unconfirmed.append(line)
                self.written += 1
                if not self.ack:
                    self.sent.extend(unconfirmed)
                    unconfirmed.clear()
                self.stop.wait(0.003)
            if self.ack:
                sock.settimeout(10)
                buffer = b""
                want = len(unconfirmed)
                while acked_here < want:
                    data = sock.recv(4096)
                    if not data:
                        break
                    buffer += data
                    *done, buffer = buffer.split(b"\n")
                    acked_here += sum(int(d[1:]) for d in done if d.startswith(b"+"))
                self.sent.extend(unconfirmed)
                self.acked += acked_here

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._session()
                return
            except ConnectionRefusedError:
                self.refused += 1
            except (OSError, ssl.SSLError) as exc:
                if not self.reconnect:
                    self.errors.append(repr(exc))
                    return
            self.stop.wait(0.01)


def stored(http_port: int, scheme: str = "ws", count: int = 0,
           context: ssl.SSLContext | None = None) -> list[dict[str, Any]]:
    """Every envelope in the history, read over /ws with since=0, until
    `count` came or nothing more comes for a second."""
    got: list[dict[str, Any]] = []
    with connect(f"{scheme}://127.0.0.1:{http_port}/ws?format=json&since=0", ssl=context,
                 open_timeout=10) as ws:
        while count == 0 or len(got) < count:
            try:
                got.extend(json.loads(ws.recv(timeout=2 if count else 1)))
            except TimeoutError:
                if count == 0:
                    break
                raise
    return got


def worker_status(http_port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/status", timeout=10) as r:
        workers: list[dict[str, Any]] = json.load(r)["workers"]
    return [w for w in workers if w.get("kind") == "tcp"]


def tcp_counter(http_port: int, name: str) -> float:
    """The sum over tcp workers of heartbeat counter `name` in /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(f"tcpws_worker_{name}{{") and 'kind="tcp"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_counter(http_port: int, name: str, at_least: float = 1, timeout: float = 15) -> None:
    wait_until(lambda: tcp_counter(http_port, name) >= at_least, timeout,
               what=f"tcpws_worker_{name} >= {at_least}")


def closed_by_server(sock: socket.socket, timeout: float = 15) -> bool:
    """True once the server closed (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    with contextlib.suppress(ssl.SSLError, OSError):
        while sock.recv(4096):
            pass
        return True
    return True
