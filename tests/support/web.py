"""Talking to a running `python -m web` over HTTP and WebSocket, and
publishing to it exactly as tcp workers do: one PUBLISH_SCRIPT call per
batch, so the web tests do not need tcp_worker (the fixtures are in
tests/integration/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tcpws.protocol import PUBLISH_SCRIPT, publish_args, publish_keys
from testkit.procs import Proc, free_port, python_module

StartWeb = Callable[..., "Web"]


class Web:
    """A running `python -m web` and ways to talk to it."""

    def __init__(self, redis_url: str, *args: str) -> None:
        self.port = free_port()
        self.proc = Proc(python_module("web", "--port", str(self.port), "--redis-url", redis_url,
                                       "--name", f"web.test.{self.port}", *args),
                         name=f"web:{self.port}")

    def wait_ready(self) -> Web:
        self.proc.wait_for_output(r"ready: serving", timeout=20)
        return self

    def ws(self, query: str = "", **kwargs: Any) -> connect:
        kwargs.setdefault("max_size", None)
        kwargs.setdefault("open_timeout", 10)
        return connect(f"ws://127.0.0.1:{self.port}/ws{query}", **kwargs)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    async def aget(self, path: str) -> tuple[int, bytes]:
        return await asyncio.to_thread(self.get, path)


class Publisher:
    """Publishes batches exactly as a tcp worker does (one script call)."""

    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url)
        self.sha = redis.Redis.from_url(url).script_load(PUBLISH_SCRIPT)

    async def publish(self, *entries: tuple[int, str], peer: str = "127.0.0.1:5000") -> None:
        """Each entry: (port, lines joined by newlines)."""
        batch = [(port, peer, time.time(), data) for port, data in entries]
        await self.client.evalsha(self.sha, 2, *publish_keys(), *publish_args(100_000, batch))

    async def numbered(self, start: int, stop: int, per_entry: int = 1, port: int = 8001,
                       pause: Callable[[], Awaitable[None]] | None = None) -> None:
        """Lines "n=<i>" for i in [start, stop), `per_entry` lines per entry."""
        for first in range(start, stop, per_entry):
            lines = [f"n={i}" for i in range(first, min(stop, first + per_entry))]
            await self.publish((port, "\n".join(lines)))
            if pause is not None:
                await pause()


async def recv_frames(ws: ClientConnection, until: Callable[[list[str]], bool],
                      within: float = 15.0) -> list[str]:
    frames: list[str] = []
    async with asyncio.timeout(within):
        while not until(frames):
            frames.append(str(await ws.recv()))
    return frames


async def recv_until_closed(ws: ClientConnection, within: float = 15.0) -> list[str]:
    frames: list[str] = []
    async with asyncio.timeout(within):
        try:
            while True:
                frames.append(str(await ws.recv()))
        except ConnectionClosed:
            return frames


def metrics_now(web: Web) -> dict[str, float]:
    """The web's /metrics, as name (with labels) -> value."""
    _, body = web.get("/metrics")
    return {found.group(1): float(found.group(2))
            for found in re.finditer(r"^(\S+) (\S+)$", body.decode(), re.MULTILINE)}


def stalled_socket(web: Web) -> socket.socket:
    """A connected socket with a 4 KiB receive buffer, for a client that
    stops reading: the kernel cannot soak up much of what is sent to it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", web.port))
    return sock


def numbers_in(frames: list[str], fmt: str = "raw") -> list[int]:
    out: list[int] = []
    for frame in frames:
        lines = [o["data"] for o in json.loads(frame)] if fmt == "json" else frame.split("\n")
        out.extend(int(line[2:]) for line in lines if line.startswith("n="))
    return out


def line_count(frames: list[str]) -> int:
    return sum(frame.count("\n") + 1 for frame in frames)
