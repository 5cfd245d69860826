"""Reading `/sse` in tests: events through httpx + httpx-sse (the libraries
`tcpws.tail` uses), curl as a real outside client, and a raw socket for
clients that must stall or come by the thousand."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.support.tools import require_tool

CURL = shutil.which("curl") or "/usr/bin/curl"


def require_curl() -> str:
    require_tool(CURL, "curl", "install it: `make curl` as root")
    return CURL


@dataclass
class Events:
    """What one SSE connection got so far."""

    events: list[ServerSentEvent] = field(default_factory=list)
    ended: bool = False

    @property
    def data_events(self) -> list[ServerSentEvent]:
        return [e for e in self.events if e.event == "message" and e.data]

    @property
    def close(self) -> str | None:
        closes = [e.data for e in self.events if e.event == "close"]
        return closes[-1] if closes else None

    def lines(self) -> list[str]:
        return [line for e in self.data_events for line in e.data.split("\n")]

    def envelopes(self) -> list[dict[str, Any]]:
        return [item for e in self.data_events for item in json.loads(e.data)]


@asynccontextmanager
async def sse(port: int, query: str = "", headers: dict[str, str] | None = None
              ) -> AsyncIterator[tuple[httpx.Response, Events, asyncio.Task[None]]]:
    """Open `/sse?query`; a task collects events into `Events` until the
    body ends (then `ended`) or the context exits."""
    got = Events()
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client, \
            aconnect_sse(client, "GET", f"http://127.0.0.1:{port}/sse?{query}",
                         headers=headers or {}) as source:
        async def collect() -> None:
            async for event in source.aiter_sse():
                got.events.append(event)
            got.ended = True

        task = asyncio.create_task(collect())
        try:
            yield source.response, got, task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def wait_for(cond: Any, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110  (the condition is plain state, no event)
            await asyncio.sleep(0.05)


def curl_stream(port: int, query: str = "") -> subprocess.Popen[str]:
    """`curl -sN` on `/sse?query`, its stdout a pipe."""
    return subprocess.Popen([require_curl(), "-sN", f"http://127.0.0.1:{port}/sse?{query}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def request_head(port: int, query: str = "") -> bytes:
    return (f"GET /sse?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n").encode()
