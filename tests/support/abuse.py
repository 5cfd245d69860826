"""Clients for the abuse tests: a normal WebSocket client that keeps
receiving in a thread (the "other client" that must stay unaffected), ack
reading for `--ack` senders, and a raw WebSocket that never reads."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from testkit.procfs import rss_kib
from testkit.procs import wait_until
from tests.support.supervised import System


@dataclass
class Watch:
    """A `format=json` client that reads everything, all the time."""

    ws: ClientConnection
    lines: list[str] = field(default_factory=list)
    closed: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _count: int = 0

    @classmethod
    @contextlib.contextmanager
    def open(cls, http_port: int) -> Iterator[Watch]:
        with connect(f"ws://127.0.0.1:{http_port}/ws?format=json", open_timeout=10,
                     close_timeout=5, max_size=None) as ws:
            watch = cls(ws)
            thread = threading.Thread(target=watch._run, daemon=True)
            thread.start()
            try:
                yield watch
            finally:
                watch._stop.set()
                thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                self.closed = str(exc)
                return
            self.lines.extend(item["data"] for item in json.loads(frame))

    def wait_for(self, wanted: list[str], timeout: float = 20) -> None:
        missing = set(wanted)

        def arrived() -> bool:
            assert self.closed is None, f"the normal client was closed: {self.closed}"
            missing.difference_update(self.lines)
            return not missing

        wait_until(arrived, timeout, interval=0.1, what=f"{len(wanted)} lines at the client")

    def canary(self, tcp_port: int, tag: str = "",
               context: ssl.SSLContext | None = None) -> None:
        """Send one fresh line to `tcp_port` (over TLS with `context`) and
        wait until this client has it."""
        self._count += 1
        line = f"canary-{self._count}-{tag}"
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as raw, \
                (context.wrap_socket(raw, server_hostname="127.0.0.1") if context
                 else contextlib.nullcontext(raw)) as s:
            s.sendall(line.encode() + b"\n")
            assert ack_total(s, 1) == 1
        self.wait_for([line])



class RssSampler:
    """Samples the RSS of named processes four times a second in a thread
    and keeps each one's peak, so a short spike during an attack counts."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.peak = dict.fromkeys(self.pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_kib(pid))


def assert_unharmed(system: System, rss: RssSampler, before: Mapping[str, int],
                    bound_kib: int) -> None:
    """After an attack: the same pids as `before`, every child ready, each
    process's peak RSS under `bound_kib`."""
    after = system.status()
    assert {c["name"]: c["pid"] for c in after} == before, after
    assert all(c["state"] == "ready" for c in after), after
    for c in after:
        rss.peak[c["name"]] = max(rss.peak[c["name"]], rss_kib(c["pid"]))
    assert max(rss.peak.values()) < bound_kib, rss.peak


def ack_total(sock: socket.socket, expected: int, timeout: float = 20) -> int:
    """Read `+N` acks until they add up to `expected` (or EOF / time-out)."""
    total, buf = 0, b""
    deadline = time.monotonic() + timeout
    while total < expected and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
        *done, buf = buf.split(b"\n")
        total += sum(int(a[1:]) for a in done if a.startswith(b"+"))
    return total


def raw_ws_handshake(http_port: int, path: str) -> socket.socket:
    """A WebSocket that completes its handshake and then never reads: a
    tiny receive buffer (set before connecting) so the server's side fills."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", http_port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: leave every frame unread
        if not chunk:
            raise AssertionError(f"handshake failed: {head!r}")
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_close_code(sock: socket.socket, timeout: float) -> int | None:
    """Read the (server, unmasked) frames until a close frame; its code."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, used = _close_in(buf)
        if code is not None:
            return code
        buf = buf[used:]
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            return None
        if not chunk:
            return _close_in(buf)[0]
        buf += chunk
    return None


def _close_in(buf: bytes) -> tuple[int | None, int]:
    """Walk whole frames in `buf`: (close code if a close frame, bytes used)."""
    pos = 0
    while len(buf) - pos >= 2:
        opcode, size, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
        if size == 126:
            if len(buf) - pos < 4:
                break
            size, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
        elif size == 127:
            if len(buf) - pos < 10:
                break
            size, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
        if len(buf) - pos < head + size:
            break
        if opcode == 0x8:
            body = buf[pos + head:pos + head + size]
            return (int.from_bytes(body[:2], "big") if len(body) >= 2 else 1005), pos
        pos += head + size
    return None, pos
